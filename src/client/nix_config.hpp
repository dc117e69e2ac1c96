// Editing Nix's configuration for `larder use`: a marked block per cache in
// nix.conf and one netrc line per host, so running it twice changes nothing
// and --remove takes out exactly what was added.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace larder::client {

struct CacheConfig {
    std::string cache;       // name, used in the block markers
    std::string url;         // substituter URL
    std::string public_key;  // "name:base64"
    std::string netrc_file;  // path written as netrc-file
    bool extra_settings;     // Nix >= 2.4 knows extra-substituters
};

// Returns `conf` with the cache's block added (or replaced) or removed.
std::string with_cache_block(std::string_view conf, const CacheConfig& cache);
std::string without_cache_block(std::string_view conf, std::string_view cache);

// Returns `netrc` with the line for `host` set to the token, or removed.
std::string with_netrc_entry(std::string_view netrc, std::string_view host, std::string_view token);
std::string without_netrc_entry(std::string_view netrc, std::string_view host);

// "nix (Nix) 2.8.0" -> {2, 8}; nullopt when it cannot tell.
std::optional<std::pair<int, int>> parse_nix_version(std::string_view text);

}  // namespace larder::client
