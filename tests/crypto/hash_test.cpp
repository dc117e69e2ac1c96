#include "crypto/hash.hpp"

#include <gtest/gtest.h>

using namespace larder::crypto;

TEST(Hash, ParsesEveryFormNixAccepts) {
    Hash h{sha256("abc")};
    for (auto text : {h.to_string(), "sha256:" + h.to_base16(), h.to_sri(),
                      "sha256:" + h.to_sri().substr(7),
                      std::string("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")}) {
        auto parsed = parse_hash(text);
        ASSERT_TRUE(parsed) << text << ": " << parsed.error().message;
        EXPECT_EQ(*parsed, h) << text;
    }
    EXPECT_EQ(h.to_sri(), "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
}

TEST(Hash, RejectsWithSpecificMessages) {
    auto msg = [](std::string_view text) { return parse_hash(text).error().message; };
    EXPECT_NE(msg("1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s").find("does not name its algorithm"), std::string::npos);
    EXPECT_NE(msg("sha1:abc").find("only sha256"), std::string::npos);
    EXPECT_NE(msg("sha256:abc").find("has length 3"), std::string::npos);
    EXPECT_NE(msg("sha256:eb8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s").find("invalid nix32"), std::string::npos);
}
