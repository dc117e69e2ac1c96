// Byte encodings Nix uses: nix32 (its own base32), base16 and base64.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace larder::crypto {

using Bytes = std::vector<uint8_t>;

// Characters in nix32 order: no e, o, u, t.
inline constexpr std::string_view k_nix32_alphabet = "0123456789abcdfghijklmnpqrsvwxyz";

inline constexpr size_t nix32_length(size_t bytes) { return (bytes * 8 - 1) / 5 + 1; }

std::string to_nix32(std::span<const uint8_t> bytes);
// Decodes exactly `size` bytes; nullopt on a wrong length, a character outside
// the alphabet, or bits set beyond the hash.
std::optional<Bytes> from_nix32(std::string_view s, size_t size);
bool is_nix32_char(char c);

std::string to_base16(std::span<const uint8_t> bytes);
std::optional<Bytes> from_base16(std::string_view s);  // either case

std::string to_base64(std::span<const uint8_t> bytes);
// Standard alphabet with `=` padding; nullopt on anything malformed.
std::optional<Bytes> from_base64(std::string_view s);

}  // namespace larder::crypto
