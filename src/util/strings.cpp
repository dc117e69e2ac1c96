#include "util/strings.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/core.h>

namespace larder {

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    for (;;) {
        auto pos = s.find(sep);
        parts.push_back(s.substr(0, pos));
        if (pos == std::string_view::npos) return parts;
        s.remove_prefix(pos + 1);
    }
}

std::optional<uint64_t> parse_u64(std::string_view s) {
    if (s.empty() || s.size() > 20) return std::nullopt;
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return value;
}

Result<int64_t> parse_duration(std::string_view text) {
    int64_t unit = 0;
    switch (text.empty() ? '\0' : text.back()) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        default: unit = 0;
    }
    auto n = parse_u64(unit ? text.substr(0, text.size() - 1) : text);
    if (!n || *n == 0 || *n > 100000000)
        return fail(ErrorCode::invalid_input,
                    fmt::format("invalid duration '{}': use a number with s, m, h, d or w, e.g. 90d", printable(text, 40)));
    return static_cast<int64_t>(*n) * (unit ? unit : 1);
}

Result<int64_t> parse_duration_ms(std::string_view text) {
    if (text.ends_with("ms")) {
        auto n = parse_u64(text.substr(0, text.size() - 2));
        if (!n || *n == 0 || *n > 100000000)
            return fail(ErrorCode::invalid_input, fmt::format("invalid duration '{}'", printable(text, 40)));
        return static_cast<int64_t>(*n);
    }
    TRY_ASSIGN(auto seconds, parse_duration(text));
    return seconds * 1000;
}

Result<int64_t> parse_size(std::string_view text) {
    auto digits = text;
    if (digits.ends_with("iB")) digits.remove_suffix(2);
    else if (digits.ends_with("B")) digits.remove_suffix(1);
    int shift = 0;
    if (!digits.empty()) {
        switch (digits.back()) {
            case 'K': case 'k': shift = 10; break;
            case 'M': shift = 20; break;
            case 'G': shift = 30; break;
            case 'T': shift = 40; break;
            case 'P': shift = 50; break;
            default: break;
        }
    }
    if (shift) digits.remove_suffix(1);
    auto n = parse_u64(digits);
    if (!n || *n == 0 || *n > (uint64_t{1} << (62 - shift)))
        return fail(ErrorCode::invalid_input,
                    fmt::format("invalid size '{}': use a number with K, M, G or T, e.g. 200G", printable(text, 40)));
    return static_cast<int64_t>(*n << shift);
}

Result<std::string_view> strip_scheme(std::string_view url, std::string_view scheme, std::string_view kind) {
    auto sep = url.find("://");
    if (sep == std::string_view::npos) return url;
    if (url.substr(0, sep) == scheme) return url.substr(sep + 3);
    return fail(ErrorCode::invalid_input, fmt::format("unsupported {} URL scheme '{}://' (supported: {}://)", kind,
                                                      printable(url.substr(0, sep), 32), scheme));
}

std::string printable(std::string_view s, size_t max_len) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (out.size() >= max_len) {
            out += "...";
            break;
        }
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out += static_cast<char>(c);
        else
            out += fmt::format("\\x{:02x}", c);
    }
    return out;
}

std::string_view trim(std::string_view s) {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    return s;
}

bool is_alnum_or(std::string_view s, std::string_view extra) {
    return std::all_of(s.begin(), s.end(), [&](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               extra.find(c) != std::string_view::npos;
    });
}

}  // namespace larder
