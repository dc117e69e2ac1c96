// Small string helpers shared by the parsers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace larder {

// Without leading and trailing spaces, tabs, CR and LF.
std::string_view trim(std::string_view s);

std::vector<std::string_view> split(std::string_view s, char sep);

// Plain decimal digits only (no sign, no spaces), as Nix's string2Int accepts
// for sizes; nullopt on anything else or on overflow.
std::optional<uint64_t> parse_u64(std::string_view s);

// "90d", "12h", "30m", "45s", "2w" (or plain seconds) -> seconds, at least 1.
Result<int64_t> parse_duration(std::string_view text);
// The same, or "500ms" -> milliseconds.
Result<int64_t> parse_duration_ms(std::string_view text);
// "200G", "512M", "64K", "2T" (powers of 1024; a trailing "B" or "iB" is
// allowed) or plain bytes -> bytes, at least 1.
Result<int64_t> parse_size(std::string_view text);

// The rest of "<scheme>://rest", or `url` itself when it has no scheme;
// another scheme is an error naming `kind` ("storage", "database").
Result<std::string_view> strip_scheme(std::string_view url, std::string_view scheme, std::string_view kind);

// True if every character of `s` is an ASCII letter, a digit, or one of `extra`.
bool is_alnum_or(std::string_view s, std::string_view extra);
// The characters a plain URL may hold besides letters and digits (RFC 3986
// unreserved, reserved, and '%').
inline constexpr std::string_view k_url_characters = "-._~:/?#[]@!&'()*+,;=%";

// Makes untrusted text safe to quote in an error message: non-printable bytes
// become \xNN, and long text is cut.
std::string printable(std::string_view s, size_t max_len = 80);

}  // namespace larder
