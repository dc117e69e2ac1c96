#include "nix/store_path.hpp"

#include <algorithm>

#include <fmt/core.h>

#include "crypto/encoding.hpp"
#include "util/strings.hpp"

namespace larder::nix {

namespace {

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '-' || c == '.' || c == '_' || c == '?' || c == '=';
}

Failure bad(std::string_view path, std::string_view why) {
    return fail(ErrorCode::invalid_input,
                fmt::format("invalid store path '{}': {}", printable(path), why));
}

}  // namespace

bool is_valid_hash_part(std::string_view s) {
    return s.size() == k_hash_part_length && std::all_of(s.begin(), s.end(), crypto::is_nix32_char);
}

std::optional<std::string_view> hash_part_of(std::string_view path) {
    auto base = path;
    if (auto slash = base.rfind('/'); slash != std::string_view::npos) base.remove_prefix(slash + 1);
    auto hash = base.substr(0, k_hash_part_length);
    if (!is_valid_hash_part(hash) || (base.size() > hash.size() && base[hash.size()] != '-')) return std::nullopt;
    return hash;
}

Result<StorePath> StorePath::parse_base_name(std::string_view base) {
    if (base.size() < k_hash_part_length + 2 || base[k_hash_part_length] != '-')
        return bad(base, "expected '<32-character hash>-<name>'");
    if (!is_valid_hash_part(base.substr(0, k_hash_part_length)))
        return bad(base, "the hash part has a character outside nix32 (0-9, a-z without e o u t)");
    auto name = base.substr(k_hash_part_length + 1);
    if (name.size() > k_max_name_length) return bad(base, "the name is longer than 211 characters");
    auto illegal = std::find_if_not(name.begin(), name.end(), is_name_char);
    if (illegal != name.end())
        return bad(base, fmt::format("the name contains the illegal character '{}'",
                                     printable(std::string_view(&*illegal, 1))));
    if (name == "." || name == "..") return bad(base, "the name is '.' or '..'");
    return StorePath(std::string(base));
}

Result<StorePath> StorePath::parse(std::string_view path, std::string_view store_dir) {
    if (path.size() <= store_dir.size() + 1 || path.substr(0, store_dir.size()) != store_dir ||
        path[store_dir.size()] != '/')
        return bad(path, fmt::format("not in the store directory '{}'", store_dir));
    auto base = path.substr(store_dir.size() + 1);
    if (base.find('/') != std::string_view::npos)
        return bad(path, "not a top-level store path");
    return parse_base_name(base);
}

std::string StorePath::full(std::string_view store_dir) const {
    return fmt::format("{}/{}", store_dir, m_base);
}

}  // namespace larder::nix
