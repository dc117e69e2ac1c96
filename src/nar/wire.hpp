// The NAR wire primitives: little-endian u64, and strings padded to 8 bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace larder::nar::wire {

inline constexpr std::string_view k_magic = "nix-archive-1";

inline size_t padding(uint64_t len) { return static_cast<size_t>((8 - len % 8) % 8); }

inline void append_u64(std::string& out, uint64_t n) {
    for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
}

inline void append_str(std::string& out, std::string_view s) {
    append_u64(out, s.size());
    out.append(s);
    out.append(padding(s.size()), '\0');
}

}  // namespace larder::nar::wire
