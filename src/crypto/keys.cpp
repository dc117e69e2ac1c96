#include "crypto/keys.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

#include <fmt/core.h>

#include "crypto/encoding.hpp"
#include "util/strings.hpp"

namespace larder::crypto {

namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string_view trim_newlines(std::string_view s) {
    while (!s.empty() && (s.back() == '\n')) s.remove_suffix(1);
    return s;
}

struct NamedKey {
    std::string name;
    Bytes bytes;
};

Result<NamedKey> split_key(std::string_view text, std::string_view kind, size_t size) {
    text = trim_newlines(text);
    auto colon = text.find(':');
    if (colon == std::string_view::npos)
        return fail(ErrorCode::invalid_input,
                    fmt::format("{} key is not of the form 'name:base64'", kind));
    auto name = text.substr(0, colon);
    if (!is_valid_key_name(name))
        return fail(ErrorCode::invalid_input, fmt::format("{} key has an invalid name", kind));
    auto bytes = from_base64(text.substr(colon + 1));
    if (!bytes)
        return fail(ErrorCode::invalid_input,
                    fmt::format("{} key '{}' is not valid base64", kind, printable(name)));
    if (bytes->size() != size)
        return fail(ErrorCode::invalid_input,
                    fmt::format("{} key '{}' is {} bytes long, expected {}", kind,
                                printable(name), bytes->size(), size));
    return NamedKey{std::string(name), std::move(*bytes)};
}

std::array<uint8_t, 32> derive_public(const uint8_t* seed) {
    PkeyPtr pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, 32));
    std::array<uint8_t, 32> pub{};
    size_t len = pub.size();
    if (!pkey || EVP_PKEY_get_raw_public_key(pkey.get(), pub.data(), &len) != 1)
        throw std::runtime_error("OpenSSL: cannot derive an ed25519 public key");
    return pub;
}

}  // namespace

bool is_valid_key_name(std::string_view name) {
    if (name.empty()) return false;
    return std::none_of(name.begin(), name.end(), [](char c) {
        return c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0';
    });
}

std::string PublicKey::to_string() const { return name + ":" + to_base64(key); }
std::string SecretKey::to_string() const { return name + ":" + to_base64(key); }

PublicKey SecretKey::public_key() const {
    PublicKey pub{name, {}};
    std::copy(key.begin() + 32, key.end(), pub.key.begin());
    return pub;
}

Result<void> random_bytes(uint8_t* out, size_t size) {
    if (RAND_bytes(out, static_cast<int>(size)) != 1)
        return fail(ErrorCode::internal, "OpenSSL's random number generator has no entropy");
    return ok();
}

SecretKey SecretKey::generate(std::string name) {
    SecretKey sk{std::move(name), {}};
    // Without entropy no key is safe to make: the unrecoverable case.
    if (!random_bytes(sk.key.data(), 32)) throw std::runtime_error("OpenSSL: no randomness");
    auto pub = derive_public(sk.key.data());
    std::copy(pub.begin(), pub.end(), sk.key.begin() + 32);
    return sk;
}

std::string SecretKey::sign(std::string_view message) const {
    PkeyPtr pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, key.data(), 32));
    MdCtxPtr ctx(EVP_MD_CTX_new());
    std::array<uint8_t, 64> sig{};
    size_t len = sig.size();
    if (!pkey || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1 ||
        EVP_DigestSign(ctx.get(), sig.data(), &len,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1)
        throw std::runtime_error("OpenSSL: ed25519 signing failed");
    return name + ":" + to_base64(sig);
}

bool PublicKey::verify(std::string_view message, std::string_view signature) const {
    auto colon = signature.find(':');
    if (colon == std::string_view::npos || signature.substr(0, colon) != name) return false;
    auto sig = from_base64(signature.substr(colon + 1));
    if (!sig || sig->size() != 64) return false;
    PkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size()));
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!pkey || !ctx ||
        EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1)
        return false;
    return EVP_DigestVerify(ctx.get(), sig->data(), sig->size(),
                            reinterpret_cast<const unsigned char*>(message.data()),
                            message.size()) == 1;
}

Result<SecretKey> parse_secret_key(std::string_view text) {
    TRY_ASSIGN(auto named, split_key(text, "secret", 64));
    SecretKey sk{std::move(named.name), {}};
    std::copy(named.bytes.begin(), named.bytes.end(), sk.key.begin());
    if (derive_public(sk.key.data()) != sk.public_key().key)
        return fail(ErrorCode::invalid_input,
                    fmt::format("secret key '{}' is inconsistent: its public half does not "
                                "match its seed",
                                printable(sk.name)));
    return sk;
}

Result<PublicKey> parse_public_key(std::string_view text) {
    TRY_ASSIGN(auto named, split_key(text, "public", 32));
    PublicKey pk{std::move(named.name), {}};
    std::copy(named.bytes.begin(), named.bytes.end(), pk.key.begin());
    return pk;
}

}  // namespace larder::crypto
