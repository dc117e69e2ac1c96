// Settings of the cache service, filled from the config file by app/.
#pragma once

#include <chrono>
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
    // How long a replica may answer from memory: cache settings and found
    // narinfos (positive), and absent ones (negative). 0 disables.
    std::chrono::milliseconds lookup_ttl{5000};
    std::chrono::milliseconds negative_ttl{1000};
};

}  // namespace larder::cache
