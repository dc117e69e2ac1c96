#include "client/nix_config.hpp"

#include <fmt/core.h>

#include "util/strings.hpp"

namespace larder::client {

namespace {

std::string begin_marker(std::string_view cache) {
    return fmt::format("# larder: begin {} (written by `larder use`; `larder use {} --remove` removes it)", cache, cache);
}
std::string end_marker(std::string_view cache) { return fmt::format("# larder: end {}", cache); }

// The lines of `text`, each without its newline; a final newline adds no line.
std::vector<std::string> lines_of(std::string_view text) {
    std::vector<std::string> lines;
    for (auto line : split(text, '\n')) lines.emplace_back(line);
    if (!lines.empty() && lines.back().empty()) lines.pop_back();
    return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

}  // namespace

std::string without_cache_block(std::string_view conf, std::string_view cache) {
    auto end = end_marker(cache);
    std::vector<std::string> kept;
    bool inside = false;
    for (auto& line : lines_of(conf)) {
        if (!inside && line.starts_with(fmt::format("# larder: begin {} ", cache))) inside = true;
        else if (inside && line == end) inside = false;
        else if (!inside) kept.push_back(line);
    }
    return join_lines(kept);
}

std::string with_cache_block(std::string_view conf, const CacheConfig& c) {
    auto lines = lines_of(without_cache_block(conf, c.cache));
    lines.push_back(begin_marker(c.cache));
    if (c.extra_settings) {
        lines.push_back("extra-substituters = " + c.url);
        lines.push_back("extra-trusted-public-keys = " + c.public_key);
    } else {
        // Nix < 2.4 has no extra- settings: full lists, keeping the default cache.
        lines.push_back("substituters = https://cache.nixos.org/ " + c.url);
        lines.push_back("trusted-public-keys = cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY= " +
                        c.public_key);
    }
    lines.push_back("netrc-file = " + c.netrc_file);
    lines.push_back(end_marker(c.cache));
    return join_lines(lines);
}

std::string without_netrc_entry(std::string_view netrc, std::string_view host) {
    std::vector<std::string> kept;
    auto prefix = fmt::format("machine {} ", host);
    for (auto& line : lines_of(netrc))
        if (!line.starts_with(prefix)) kept.push_back(line);
    return join_lines(kept);
}

std::string with_netrc_entry(std::string_view netrc, std::string_view host, std::string_view token) {
    auto lines = lines_of(without_netrc_entry(netrc, host));
    lines.push_back(fmt::format("machine {} login larder password {}", host, token));
    return join_lines(lines);
}

std::optional<std::pair<int, int>> parse_nix_version(std::string_view text) {
    auto pos = text.find_first_of("0123456789");
    if (pos == std::string_view::npos) return std::nullopt;
    auto parts = split(text.substr(pos), '.');
    if (parts.size() < 2) return std::nullopt;
    auto major = parse_u64(parts[0]);
    auto minor_text = parts[1].substr(0, parts[1].find_first_not_of("0123456789"));
    auto minor = parse_u64(minor_text);
    if (!major || !minor) return std::nullopt;
    return std::pair{static_cast<int>(*major), static_cast<int>(*minor)};
}

}  // namespace larder::client
