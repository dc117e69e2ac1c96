// The message Nix signs for a store path (ValidPathInfo::fingerprint).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/hash.hpp"

namespace larder::crypto {

// "1;<store path>;sha256:<nix32>;<nar size>;<sorted comma-separated full
// reference paths>". `references` are full store paths; they are sorted here.
std::string path_fingerprint(std::string_view store_path, const Hash& nar_hash,
                             uint64_t nar_size, std::vector<std::string> references);

}  // namespace larder::crypto
