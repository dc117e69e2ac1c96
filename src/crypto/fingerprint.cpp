#include "crypto/fingerprint.hpp"

#include <algorithm>

#include <fmt/core.h>

namespace larder::crypto {

std::string path_fingerprint(std::string_view store_path, const Hash& nar_hash,
                             uint64_t nar_size, std::vector<std::string> references) {
    std::sort(references.begin(), references.end());
    std::string refs;
    for (const auto& r : references) {
        if (!refs.empty()) refs += ',';
        refs += r;
    }
    return fmt::format("1;{};{};{};{}", store_path, nar_hash.to_string(), nar_size, refs);
}

}  // namespace larder::crypto
