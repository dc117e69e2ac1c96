// Small string helpers shared by the parsers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace larder {

std::vector<std::string_view> split(std::string_view s, char sep);

// Plain decimal digits only (no sign, no spaces), as Nix's string2Int accepts
// for sizes; nullopt on anything else or on overflow.
std::optional<uint64_t> parse_u64(std::string_view s);

// Makes untrusted text safe to quote in an error message: non-printable bytes
// become \xNN, and long text is cut.
std::string printable(std::string_view s, size_t max_len = 80);

}  // namespace larder
