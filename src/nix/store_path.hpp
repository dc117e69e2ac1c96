// Store paths, validated by Nix's rules: "<store dir>/<32 nix32 chars>-<name>".
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace larder::nix {

inline constexpr std::string_view k_default_store_dir = "/nix/store";
inline constexpr size_t k_hash_part_length = 32;
inline constexpr size_t k_max_name_length = 211;

class StorePath {
public:
    // Parses a base name "<hash>-<name>".
    static Result<StorePath> parse_base_name(std::string_view base_name);
    // Parses a full path, which must lie directly in `store_dir`.
    static Result<StorePath> parse(std::string_view path,
                                   std::string_view store_dir = k_default_store_dir);

    std::string_view hash_part() const { return std::string_view(m_base).substr(0, k_hash_part_length); }
    std::string_view name() const { return std::string_view(m_base).substr(k_hash_part_length + 1); }
    const std::string& base_name() const { return m_base; }
    std::string full(std::string_view store_dir = k_default_store_dir) const;

    friend auto operator<=>(const StorePath&, const StorePath&) = default;

private:
    explicit StorePath(std::string base) : m_base(std::move(base)) {}
    std::string m_base;
};

// True for a 32-character nix32 hash part, as in "<hash>.narinfo" URLs.
bool is_valid_hash_part(std::string_view s);

// "/nix/store/<hash>-<name>", "<hash>-<name>" or "<hash>" -> the hash part;
// nullopt if `path` is none of those.
std::optional<std::string_view> hash_part_of(std::string_view path);

}  // namespace larder::nix
