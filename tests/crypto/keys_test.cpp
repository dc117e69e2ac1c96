#include "crypto/keys.hpp"

#include <gtest/gtest.h>

#include "crypto/encoding.hpp"
#include "crypto/fingerprint.hpp"

using namespace larder::crypto;

namespace {

// RFC 8032, section 7.1, test 1 (empty message).
SecretKey rfc8032_key() {
    auto seed = *from_base16("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    auto pub = *from_base16("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    Bytes both(seed);
    both.insert(both.end(), pub.begin(), pub.end());
    return *parse_secret_key("test-1:" + to_base64(both));
}

}  // namespace

TEST(Keys, SignsLikeRfc8032) {
    auto sk = rfc8032_key();
    auto expected = *from_base16(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    EXPECT_EQ(sk.sign(""), "test-1:" + to_base64(expected));
    EXPECT_TRUE(sk.public_key().verify("", sk.sign("")));
}

TEST(Keys, GeneratedKeysRoundTripThroughText) {
    auto sk = SecretKey::generate("cache.example.org-1");
    auto parsed = parse_secret_key(sk.to_string() + "\n");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->key, sk.key);
    auto pk = parse_public_key(sk.public_key().to_string());
    ASSERT_TRUE(pk);
    auto sig = sk.sign("message");
    EXPECT_TRUE(pk->verify("message", sig));
    EXPECT_FALSE(pk->verify("messagE", sig));
    EXPECT_FALSE(pk->verify("message", "other-name" + sig.substr(sig.find(':'))));
    EXPECT_FALSE(pk->verify("message", sig.substr(0, sig.size() - 4)));
}

TEST(Keys, RejectsMalformedWithoutQuotingTheSecret) {
    auto sk = SecretKey::generate("k");
    auto text = sk.to_string();
    auto secret_b64 = text.substr(2);
    for (auto bad : {std::string("nocolon"), ":" + secret_b64, "k:" + secret_b64.substr(4),
                     "k:" + secret_b64 + "x", "k:" + secret_b64 + " "}) {
        auto r = parse_secret_key(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().message.find(secret_b64.substr(0, 10)), std::string::npos);
    }
    // A secret key whose public half was tampered with.
    auto tampered = sk;
    tampered.key[40] ^= 1;
    EXPECT_NE(parse_secret_key(tampered.to_string()).error().message.find("inconsistent"), std::string::npos);
    EXPECT_FALSE(parse_public_key(text));  // 64 bytes is not a public key
}

TEST(Fingerprint, MatchesNixLayout) {
    Hash h{sha256("abc")};
    auto fp = path_fingerprint("/nix/store/x-a", h, 42, {"/nix/store/z-c", "/nix/store/y-b"});
    EXPECT_EQ(fp, "1;/nix/store/x-a;sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s;42;"
                  "/nix/store/y-b,/nix/store/z-c");
    EXPECT_EQ(path_fingerprint("/nix/store/x-a", h, 1, {}).back(), ';');
}
