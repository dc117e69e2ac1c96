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
