// A SHA-256 hash as Nix names it: parsed from every form Nix accepts, printed
// the way Nix prints it ("sha256:" + nix32).
#pragma once

#include <string>
#include <string_view>

#include "crypto/sha256.hpp"
#include "util/result.hpp"

namespace larder::crypto {

struct Hash {
    Digest digest{};

    std::string to_nix32() const;     // 52 characters, no prefix
    std::string to_base16() const;    // 64 characters, no prefix
    std::string to_string() const;    // "sha256:<nix32>", as in narinfos
    std::string to_sri() const;       // "sha256-<base64>"

    friend bool operator==(const Hash&, const Hash&) = default;
};

// Accepts "sha256:" followed by nix32 (52), base16 (64, either case) or
// base64 (44, padded), and SRI "sha256-<base64>". Other algorithms are
// rejected: Nix only ever verifies sha256 NAR hashes.
Result<Hash> parse_hash(std::string_view text);

// Decodes the digest part alone, recognising the encoding by its length.
Result<Hash> parse_sha256_digest(std::string_view encoded);

}  // namespace larder::crypto
