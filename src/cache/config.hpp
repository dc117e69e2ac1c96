// Settings of the cache service, filled from the config file by app/.
#pragma once

#include <cstddef>
#include <string>

namespace larder::cache {

struct Config {
    // Signing key names are "<key_prefix>-<cache>-<n>": unique across servers
    // because Nix looks trusted keys up by name.
    std::string key_prefix = "larder";
    // NARs are stored as chunks of at most this many uncompressed bytes.
    size_t max_chunk_size = 8 << 20;
    int zstd_level = 3;
};

}  // namespace larder::cache
