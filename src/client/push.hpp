// larder push: the closure of some store paths, minus what the cache already
// has and what an upstream cache signs, uploaded references first, several at
// a time, each NAR streamed from the store and compressed on the way.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "client/http_client.hpp"
#include "client/nix_store.hpp"

namespace larder::client {

enum class ProgressStyle { bar, lines, quiet };

struct PushOptions {
    unsigned jobs = 4;  // uploads of large NARs at a time (see UploadSlots)
    unsigned retries = 4;  // per path, for transient failures
    std::chrono::milliseconds backoff{500};  // doubled at each retry
    // How NARs travel. frames: cut and compressed here exactly as the server
    // stores them (its chunk settings come with the missing-paths answer), so
    // the server only verifies; zstd: one stream the server re-chunks
    // (also used when a server does not announce its chunking); none.
    enum class Transit { frames, zstd, none } transit = Transit::frames;
    int zstd_level = 1;  // for Transit::zstd
    ProgressStyle progress = ProgressStyle::lines;
};

struct PushSummary {
    size_t closure = 0;   // paths in the closure
    size_t cached = 0;    // already in the cache
    size_t upstream = 0;  // skipped: signed by an upstream key, or served by the cache's upstreams
    size_t pushed = 0;
    size_t failed = 0;    // failed, or not tried because a reference failed
    uint64_t nar_bytes = 0;   // NAR bytes pushed
    uint64_t sent_bytes = 0;  // bytes sent (compressed)
    double seconds = 0;
    std::vector<std::string> errors;
};

// How many uploads run at once. A NAR under k_small_nar costs a round trip
// or two (the server's store: S3 may be tens of ms away) rather than bytes
// or memory, so small ones run besides the `jobs` large ones, up to 4x
// `jobs` uploads in all. (200 paths of 136 bytes to S3 20 ms away: 1.0 s
// with 8 at a time, 0.48 s with 32.)
class UploadSlots {
public:
    static constexpr uint64_t k_small_nar = 1 << 20;
    explicit UploadSlots(unsigned jobs) : m_jobs(jobs ? jobs : 1) {}
    unsigned all() const { return 4 * m_jobs; }
    bool may_start(uint64_t nar_size) const {
        return m_running < all() && (nar_size < k_small_nar || m_large < m_jobs);
    }
    void started(uint64_t nar_size) {
        ++m_running;
        if (nar_size >= k_small_nar) ++m_large;
    }
    void ended(uint64_t nar_size) {
        --m_running;
        if (nar_size >= k_small_nar) --m_large;
    }

private:
    unsigned m_jobs;
    unsigned m_running = 0, m_large = 0;
};

// "512 B", "3.4 MiB", "1.2 GiB".
std::string human_bytes(double n);

// True if some signature on `info` is by one of `upstream_keys`: a key name
// ("cache.nixos.org-1") is trusted by name, a full public key
// ("name:base64") only if the signature verifies.
bool signed_by_upstream(const nix::NarInfo& info, const std::vector<std::string>& upstream_keys,
                        std::string_view store_dir);

// Pushes the closure of `paths` (store paths) to `cache`. Fails only when the
// push could not start; failures of single paths are in the summary.
Result<PushSummary> push(const ServerLogin& login, std::string_view cache, NixStore& store,
                         const std::vector<std::string>& paths, const PushOptions& options);

}  // namespace larder::client
