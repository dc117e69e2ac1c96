#include "crypto/hash.hpp"

#include <algorithm>

#include <fmt/core.h>

#include "crypto/encoding.hpp"
#include "util/strings.hpp"

namespace larder::crypto {

std::string Hash::to_nix32() const { return crypto::to_nix32(digest); }
std::string Hash::to_base16() const { return crypto::to_base16(digest); }
std::string Hash::to_string() const { return "sha256:" + to_nix32(); }
std::string Hash::to_sri() const { return "sha256-" + to_base64(digest); }

namespace {

Result<Hash> from_bytes(std::optional<Bytes> bytes, std::string_view what, std::string_view text) {
    if (!bytes || bytes->size() != 32)
        return fail(ErrorCode::invalid_input,
                    fmt::format("invalid {} in hash '{}'", what, printable(text)));
    Hash h;
    std::copy(bytes->begin(), bytes->end(), h.digest.begin());
    return h;
}

}  // namespace

Result<Hash> parse_sha256_digest(std::string_view s) {
    switch (s.size()) {
        case nix32_length(32): return from_bytes(from_nix32(s, 32), "nix32 digest", s);
        case 64: return from_bytes(from_base16(s), "base16 digest", s);
        case 44: return from_bytes(from_base64(s), "base64 digest", s);
        default:
            return fail(ErrorCode::invalid_input,
                        fmt::format("hash '{}' has length {}, but a sha256 hash is 52 (nix32), "
                                    "64 (base16) or 44 (base64) characters",
                                    printable(s), s.size()));
    }
}

Result<Hash> parse_hash(std::string_view text) {
    auto sep = text.find_first_of(":-");
    if (sep == std::string_view::npos)
        return fail(ErrorCode::invalid_input,
                    fmt::format("hash '{}' does not name its algorithm (expected 'sha256:...')",
                                printable(text)));
    auto algo = text.substr(0, sep);
    if (algo != "sha256")
        return fail(ErrorCode::invalid_input,
                    fmt::format("hash '{}' uses algorithm '{}'; only sha256 is supported",
                                printable(text), printable(algo)));
    auto rest = text.substr(sep + 1);
    if (text[sep] == '-') return from_bytes(from_base64(rest), "SRI base64 digest", text);
    return parse_sha256_digest(rest);
}

}  // namespace larder::crypto
