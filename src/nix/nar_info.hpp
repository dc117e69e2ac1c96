// The .narinfo file: parsed as leniently as Nix 2.8 parses it, rendered
// exactly as Nix writes it (PROTOCOL.md §2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/hash.hpp"
#include "crypto/keys.hpp"
#include "nix/store_path.hpp"
#include "util/result.hpp"

namespace larder::nix {

struct NarInfo {
    StorePath path;
    std::string url;
    std::string compression = "none";
    std::optional<crypto::Hash> file_hash;
    std::optional<uint64_t> file_size;
    crypto::Hash nar_hash;
    uint64_t nar_size = 0;
    std::vector<StorePath> references;  // kept sorted
    std::optional<StorePath> deriver;
    std::string system;
    std::vector<std::string> sigs;
    std::string ca;

    // Byte-identical to Nix's NarInfo::to_string.
    std::string render(std::string_view store_dir = k_default_store_dir) const;

    std::string fingerprint(std::string_view store_dir = k_default_store_dir) const;
    // Adds this key's signature, replacing an older one of the same key name.
    void sign(const crypto::SecretKey& key, std::string_view store_dir = k_default_store_dir);
    // True if some Sig verifies with `key`.
    bool verify(const crypto::PublicKey& key,
                std::string_view store_dir = k_default_store_dir) const;
};

// The largest narinfo parsed: room for ~15,000 references.
inline constexpr size_t k_max_narinfo_size = 1 << 20;

Result<NarInfo> parse_nar_info(std::string_view text,
                               std::string_view store_dir = k_default_store_dir);

// The stricter rules for a narinfo a client uploads (security review L13):
// at most 16 signatures, each "name:" and 64 bytes of base64; System a short
// platform name; CA "fixed:..." or "text:..."; no control characters. What
// parses leniently but breaks clients, or costs them work, is refused.
Result<void> check_uploaded(const NarInfo& info);

// nix-cache-info: "StoreDir", "WantMassQuery", "Priority".
struct CacheInfo {
    std::string store_dir = std::string(k_default_store_dir);
    bool want_mass_query = true;
    int priority = 40;

    std::string render() const;
};

Result<CacheInfo> parse_cache_info(std::string_view text);

}  // namespace larder::nix
