// A cache's upstreams as stored and as the API shows them.
#include <gtest/gtest.h>

#include "cache/upstream.hpp"
#include "crypto/keys.hpp"

namespace larder::cache {
namespace {

std::string a_key() { return crypto::SecretKey::generate("up-1").public_key().to_string(); }

TEST(UpstreamSpecs, RoundTripAndRedaction) {
    std::vector<UpstreamSpec> list{{"https://cache.nixos.org", {a_key()}, "", "", 3000},
                                   {"http://10.0.0.2:8080/team", {a_key(), a_key()}, "lt_secret", "", 500}};
    auto stored = render_upstreams(list);
    auto back = parse_upstreams(stored);
    ASSERT_TRUE(back) << back.error().message;
    ASSERT_EQ(back->size(), 2u);
    EXPECT_EQ((*back)[1].url, list[1].url);
    EXPECT_EQ((*back)[1].keys, list[1].keys);
    EXPECT_EQ((*back)[1].token, "lt_secret");
    EXPECT_EQ((*back)[1].timeout_ms, 500);
    auto shown = describe_upstreams_json(*back);
    EXPECT_EQ(shown.find("lt_secret"), std::string::npos) << shown;
    EXPECT_NE(shown.find("\"token_set\":true"), std::string::npos) << shown;
    EXPECT_EQ(render_upstreams({}), "");
    EXPECT_TRUE(parse_upstreams("")->empty());
    EXPECT_EQ(upstream_keys((*back)[1]).size(), 2u);
}

TEST(UpstreamSpecs, RefusesWhatCannotWork) {
    auto refused = [](const std::string& json) {
        auto r = parse_upstreams(json);
        return r ? std::string() : r.error().message;
    };
    auto key = a_key();
    EXPECT_NE(refused(R"([{"url":"ftp://x","keys":[")" + key + R"("]}])").find("http"), std::string::npos);
    EXPECT_NE(refused(R"([{"url":"http://x/","keys":[")" + key + R"("]}])").find("'/'"), std::string::npos);
    EXPECT_NE(refused(R"([{"url":"http://x"}])").find("public key"), std::string::npos) << "no key: no trust";
    EXPECT_NE(refused(R"([{"url":"http://x","keys":["nope"]}])").find("not a public key"), std::string::npos);
    EXPECT_NE(refused(R"([{"url":"http://x","keys":[")" + key + R"("],"timeout_ms":5}])").find("timeout"),
              std::string::npos);
    EXPECT_NE(refused(R"({"url":"http://x"})").find("array"), std::string::npos);
    EXPECT_NE(refused("[1]").find("url"), std::string::npos);
}

}  // namespace
}  // namespace larder::cache
