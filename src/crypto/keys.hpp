// Ed25519 signing keys in Nix's "name:base64" format, and the signatures Nix
// puts on narinfos ("Sig: name:base64").
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace larder::crypto {

// Fills `out` from OpenSSL's CSPRNG; internal error if it has no entropy.
Result<void> random_bytes(uint8_t* out, size_t size);

struct PublicKey {
    std::string name;
    std::array<uint8_t, 32> key{};

    std::string to_string() const;  // "name:base64(32 bytes)"
    // True if `signature` ("name:base64(64 bytes)") carries this key's name and
    // verifies over `message`.
    bool verify(std::string_view message, std::string_view signature) const;
};

struct SecretKey {
    std::string name;
    // libsodium layout, as Nix stores it: 32-byte seed, then the public key.
    std::array<uint8_t, 64> key{};

    std::string to_string() const;  // "name:base64(64 bytes)"
    PublicKey public_key() const;
    std::string sign(std::string_view message) const;  // "name:base64(sig)"

    static SecretKey generate(std::string name);
};

// Trailing newlines (as in key files) are ignored; anything else malformed is
// an error naming what is wrong, never quoting the secret.
Result<SecretKey> parse_secret_key(std::string_view text);
Result<PublicKey> parse_public_key(std::string_view text);

// Key names: non-empty, no ':' and no whitespace.
bool is_valid_key_name(std::string_view name);

}  // namespace larder::crypto
