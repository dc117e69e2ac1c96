#include "crypto/encoding.hpp"

#include <gtest/gtest.h>

#include "crypto/sha256.hpp"

using namespace larder::crypto;

TEST(Nix32, MatchesNixForSha256OfAbc) {
    auto digest = sha256("abc");
    EXPECT_EQ(to_nix32(digest), "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s");
    EXPECT_EQ(to_base16(digest), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Nix32, RoundTripsEveryLength) {
    for (size_t n = 1; n <= 64; ++n) {
        Bytes bytes(n);
        for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(i * 37 + n);
        auto text = to_nix32(bytes);
        EXPECT_EQ(text.size(), nix32_length(n));
        EXPECT_EQ(from_nix32(text, n), bytes) << n;
    }
}

TEST(Nix32, RejectsCharactersOutsideTheAlphabet) {
    auto text = to_nix32(sha256("x"));
    for (char c : {'e', 'o', 'u', 't', 'A', '-', '\0'}) {
        auto bad = text;
        bad[5] = c;
        EXPECT_FALSE(from_nix32(bad, 32)) << c;
    }
}

TEST(Nix32, RejectsBitsBeyondTheHash) {
    // 52 characters carry 260 bits; the top 4 must be zero for 32 bytes.
    std::string text(52, '0');
    text[0] = '1';  // bit 255 set: still inside
    EXPECT_TRUE(from_nix32(text, 32));
    text[0] = 'z';  // bits 255..259 set
    EXPECT_FALSE(from_nix32(text, 32));
}

TEST(Nix32, RejectsWrongLength) {
    EXPECT_FALSE(from_nix32("abc", 32));
    EXPECT_FALSE(from_nix32("", 0));
}

TEST(Base64, KnownVectors) {
    auto b = [](std::string_view s) { return Bytes(s.begin(), s.end()); };
    EXPECT_EQ(to_base64(b("")), "");
    EXPECT_EQ(to_base64(b("f")), "Zg==");
    EXPECT_EQ(to_base64(b("fo")), "Zm8=");
    EXPECT_EQ(to_base64(b("foo")), "Zm9v");
    EXPECT_EQ(to_base64(b("foobar")), "Zm9vYmFy");
    EXPECT_EQ(from_base64("Zm9vYg=="), b("foob"));
    EXPECT_EQ(from_base64("Zm9vYmE="), b("fooba"));
}

TEST(Base64, RejectsMalformed) {
    for (auto bad : {"Zg=", "Z===", "Zg==Zg==", "Zm9v!A==", "=Zg=", "Zm 9"}) EXPECT_FALSE(from_base64(bad)) << bad;
}

TEST(Base16, EitherCase) {
    EXPECT_EQ(from_base16("00fF10"), (Bytes{0x00, 0xff, 0x10}));
    EXPECT_FALSE(from_base16("0g"));
    EXPECT_FALSE(from_base16("abc"));
}
