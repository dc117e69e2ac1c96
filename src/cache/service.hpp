// The cache service: the only place that joins the metadata store, the blob
// store, NARs and signing. The HTTP layer translates requests into these
// calls; the service knows nothing of HTTP.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "blob/blob_store.hpp"
#include "cache/config.hpp"
#include "cache/lookup_cache.hpp"
#include "cache/upload.hpp"
#include "cache/upstream.hpp"
#include "cache/usage.hpp"
#include "crypto/keys.hpp"
#include "db/metadata_store.hpp"
#include "nix/nar_info.hpp"
#include "util/task_pool.hpp"

namespace larder::cache {

// A store path sent by `larder push`: its narinfo as the client's Nix store
// knows it (URL and file fields are ignored), and the references the client
// left to an upstream cache because they carry an upstream key's signature.
struct PushedPath {
    nix::NarInfo info;
    std::vector<std::string> upstream;  // hash parts
    bool chunk_frames = false;          // the body is zstd frames, one per chunk
};

// Paths signed by this key are left to cache.nixos.org by default.
inline constexpr std::string_view k_nixos_cache_key = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";

// The largest field of a push body: the narinfo (itself at most
// nix::k_max_narinfo_size) or the narinfos of the references left upstream.
inline constexpr size_t k_max_push_field = 8 << 20;

// Run just before an upload is committed; a failure (the token was revoked
// meanwhile, say) stops the commit.
using CommitCheck = std::function<Result<void>()>;

struct CacheSettings {
    std::optional<bool> is_public;
    std::optional<int> priority;
    std::optional<std::vector<std::string>> upstream_keys;
    // Given: set to this (nullopt inside: no retention / no cap).
    std::optional<std::optional<int64_t>> retention;
    std::optional<std::optional<int64_t>> max_size;
    std::optional<std::vector<UpstreamSpec>> upstreams;  // given: replaces the list
    // For paths fetched from upstreams, instead of retention; and a cap on
    // their bytes within max_size (nullopt inside: none).
    std::optional<std::optional<int64_t>> proxy_retention;
    std::optional<std::optional<int64_t>> proxy_max_size;
};

// Garbage collection (gc.cpp).
struct GcOptions {
    bool dry_run = false;                // report what would go, change nothing
    std::optional<std::string> cache;    // only this cache's paths (the sweep is global)
    std::optional<int64_t> now;          // "now" for retention and grace (tests, what-ifs)
};

struct GcCacheReport {
    std::string cache;
    size_t paths = 0;                    // before
    std::vector<std::string> deleted;    // base names (would be, in a dry run)
    uint64_t deleted_bytes = 0;          // their NARs as served
    size_t revived = 0;                  // used or referred to while GC ran: kept
    uint64_t size_after = 0;             // NAR bytes the cache still holds
};

struct GcReport {
    int64_t started = 0, finished = 0, now = 0;
    bool dry_run = false;
    std::vector<GcCacheReport> caches;
    int64_t nars_deleted = 0;
    int64_t chunks_deleted = 0;
    uint64_t chunk_bytes_deleted = 0;    // stored (compressed) bytes
    int64_t orphan_blobs_deleted = 0;    // blobs no row named (crashed uploads)
    std::vector<std::string> errors;     // what failed; the rest went on
};

struct FsckOptions {
    bool repair = false;
    std::optional<std::string> cache;  // only chunks this cache's NARs use
    unsigned sample_percent = 100;     // check about this share of the chunks
};

struct FsckReport {
    int64_t chunks_checked = 0, missing = 0, corrupt = 0;
    std::vector<std::string> bad_blobs;      // at most 100
    std::vector<std::string> damaged_paths;  // "<cache>/<base name>"
    std::vector<std::string> withdrawn;      // with repair: "<cache>/<base name>"
    std::vector<std::string> errors;         // chunks that could not be read (not counted as damaged)
};

// What the service counts, for /metrics (since the process started).
struct ServiceCounters {
    std::atomic<uint64_t> uploads{0};            // NARs committed (plain PUT or push)
    std::atomic<uint64_t> chunks_stored{0};      // new chunks those uploads stored
    std::atomic<uint64_t> chunks_deduplicated{0};  // chunks they found stored already
    std::atomic<uint64_t> nars_ingested{0};      // deferred NARs cut into chunks
    std::atomic<uint64_t> ingest_failures{0};
    std::atomic<uint64_t> gc_runs{0}, gc_failures{0};  // runs with and without errors (dry runs too)
    std::atomic<int64_t> gc_last_success{0};     // Unix time a real run last finished without errors
    UploadStages upload_stages;                  // of committed uploads (not of deferred ingest)
    // Pull-through: narinfo misses an upstream answered, or none did; upstream
    // failures (transport, 5xx, refused narinfos); NAR downloads begun and
    // failed; bytes received; narinfo request latency.
    std::atomic<uint64_t> upstream_hits{0}, upstream_misses{0}, upstream_errors{0};
    std::atomic<uint64_t> upstream_nar_fetches{0}, upstream_nar_failures{0}, upstream_bytes{0};
    Histogram upstream_latency;       // of narinfo requests
    Histogram upstream_nar_latency;   // from a NAR request to the upstream's first byte
};

struct PinInfo {
    std::string name;
    std::string store_path;  // base name
    int64_t created_at = 0;
};

class CacheService {
public:
    CacheService(Config config, db::MetadataStore& db, blob::BlobStore& blobs);
    ~CacheService();
    CacheService(const CacheService&) = delete;
    CacheService& operator=(const CacheService&) = delete;

    // Caches.
    Result<db::CacheRow> create_cache(std::string_view name, const CacheSettings& settings);
    Result<db::CacheRow> cache(std::string_view name);
    Result<std::vector<db::CacheRow>> list_caches() { return m_db.list_caches(); }
    Result<db::CacheRow> configure(std::string_view name, const CacheSettings& settings);
    Result<void> delete_cache(std::string_view name);
    // The current public key first, then retired ones.
    Result<std::vector<crypto::PublicKey>> public_keys(const db::CacheRow& cache);
    // A new current key; every object is signed with it too, old signatures stay.
    Result<crypto::PublicKey> rotate_key(const db::CacheRow& cache);

    // What the memo knows, for answering on an I/O thread: nullopt when
    // finding out would take a database query; else the row or narinfo,
    // or nullopt inside for a known absence.
    std::optional<std::optional<db::CacheRow>> remembered_cache(std::string_view name) const;
    std::optional<std::optional<std::string>> remembered_narinfo(const db::CacheRow& cache,
                                                                 std::string_view hash_part) const;

    // The Nix binary cache protocol.
    std::string cache_info(const db::CacheRow& cache) const;
    Result<std::string> narinfo(const db::CacheRow& cache, std::string_view hash_part);
    // `file` is the name under nar/, e.g. "<filehash>.nar.zst".
    Result<db::NarRow> served_nar(const db::CacheRow& cache, std::string_view file);
    // The same for a download, remembered for lookup_ttl: a NAR's row and
    // its hundreds of chunk rows cost more than streaming it from the page
    // cache. (Uploads that link a NAR use served_nar, never a memo.)
    Result<std::shared_ptr<const db::NarRow>> nar_to_download(const db::CacheRow& cache, std::string_view file);
    // The served bytes [offset, offset + length): stored chunks, concatenated.
    std::unique_ptr<Source> open_nar(const db::NarRow& nar, uint64_t offset, uint64_t length);
    // A NAR under the name a client uploaded it as: Nix caches the narinfo
    // it uploaded, with that name, for up to 30 days. Re-encoded on the fly
    // to that name's compression (bzip2 gets zstd, which Nix 2.8 detects).
    Result<std::unique_ptr<Source>> open_uploaded_nar(const db::CacheRow& cache, std::string_view file);
    // `size`: the file's, if the client declared it.
    Result<std::unique_ptr<NarUpload>> begin_upload(const db::CacheRow& cache, std::string_view file,
                                                    std::optional<uint64_t> size = std::nullopt);
    // Pull-through (proxy.cpp): the NAR of a path an upstream has, by the
    // name its narinfo gave (nar/upstream-<NarHash>.nar.zst): fetched once,
    // streamed to every reader as it arrives, stored as chunks.
    Result<std::unique_ptr<Source>> open_upstream_nar(const db::CacheRow& cache, std::string_view file);
    struct Download;  // (proxy.cpp)
    // Records a finished upload under the name the client PUT it as.
    Result<void> record_upload(const db::CacheRow& cache, std::string_view file, const NarUpload& upload);
    // Upload bodies (receive.cpp): written to as they arrive; finish()
    // verifies, runs `check`, and commits. A plain NAR PUT from Nix:
    Result<std::unique_ptr<Sink>> receive_upload(const db::CacheRow& cache, std::string_view file, CommitCheck check,
                                                 std::optional<uint64_t> size = std::nullopt);
    // `larder push`: the body is the narinfo and the narinfos of the
    // references left upstream (themselves length-prefixed, each signed by a
    // key in the cache's upstream_keys), as length-prefixed fields
    // (util/framing.hpp), then the NAR (zstd frames, one per chunk, if
    // `chunk_frames`). Checked as soon as the narinfo is in.
    Result<std::unique_ptr<Sink>> receive_push(const db::CacheRow& cache, std::string_view hash_part,
                                               bool chunk_frames, CommitCheck check);
    Result<bool> has_nar_file(const db::CacheRow& cache, std::string_view file);
    // Commits a narinfo PUT by a client: checks it against its uploaded NAR
    // and its references, signs it, makes it visible.
    Result<void> add_narinfo(const db::CacheRow& cache, std::string_view hash_part, std::string_view text);
    // `larder push`: one request per path, NAR and narinfo together. The
    // narinfo and its references are checked before the body is read; the
    // NAR is verified exactly as a plain upload, and the path becomes visible
    // only after that, with its references rechecked.
    Result<PushedPath> check_push(const db::CacheRow& cache, std::string_view hash_part, std::string_view narinfo,
                                  std::string_view upstream);
    Result<std::unique_ptr<NarUpload>> begin_push(const db::CacheRow& cache, const PushedPath& pushed);
    // After upload.finish(): makes the pushed path visible.
    Result<void> commit_push(const db::CacheRow& cache, const PushedPath& pushed, const NarUpload& upload);
    // Removes a store path from the cache (its storage is reclaimed by
    // garbage collection). Refused (conflict) while another path of the
    // cache refers to it, unless `cascade`: then those go too, and their
    // referrers. A pinned path is never deleted. Returns the base names
    // deleted; not_found if the cache does not have the path.
    Result<std::vector<std::string>> delete_path(const db::CacheRow& cache, std::string_view hash_part,
                                                 bool cascade = false);
    // A path's last use is the latest push, narinfo or NAR fetch; noted in
    // memory and written by flush_uses() (the server calls it periodically).
    Result<void> flush_uses();

    // Pins (gc.cpp): `path` (store path, base name or hash part) must be in
    // the cache; the newest `keep` pins of the name stay.
    Result<PinInfo> pin(const db::CacheRow& cache, std::string_view name, std::string_view path, size_t keep);
    Result<std::vector<PinInfo>> pins(const db::CacheRow& cache);
    Result<void> unpin(const db::CacheRow& cache, std::string_view name);  // not_found if no such pin

    // Garbage collection, one run at a time across replicas (conflict if
    // another holds the lease): each cache's paths past retention or over
    // its size cap, closure-safely; then NARs, chunks and blobs nothing uses,
    // after the grace period.
    Result<GcReport> collect_garbage(const GcOptions& options);
    std::optional<GcReport> last_gc() const;

    // Integrity (fsck.cpp): reads every chunk (or a sample) back and checks
    // its hash. A missing or corrupt chunk is marked damaged, so NARs using
    // it answer 404 instead of ending early; with `repair`, the paths using
    // them (and their referrers) are withdrawn, so a push uploads them again
    // and heals the chunk.
    Result<FsckReport> check_integrity(const FsckOptions& options);
    Result<std::vector<std::string>> missing_paths(const db::CacheRow& cache,
                                                   const std::vector<std::string>& hash_parts);
    // Which of these paths (hash parts the cache lacks) its upstreams have,
    // with a verified signature: asked 16 at a time (answers and misses
    // remembered as for narinfo requests), so `larder push` skips them and a
    // path referring to them is accepted.
    Result<std::vector<std::string>> upstream_has(const db::CacheRow& cache,
                                                  const std::vector<std::string>& hash_parts);

    // Listings, logs and realisations, stored as sent.
    Result<void> put_file(const db::CacheRow& cache, std::string_view kind, std::string_view name,
                          std::string_view data, std::string_view content_encoding);
    Result<db::MetadataStore::File> get_file(const db::CacheRow& cache, std::string_view kind,
                                             std::string_view name);

    // Deferred ingest (ingest.cpp): NARs plain uploads stored whole are cut
    // into chunks (deduplicated with everything else) and swapped in; the
    // whole file is then reclaimed by garbage collection. Claims up to
    // `limit` of them (across replicas) and returns how many it claimed;
    // one that fails is logged and tried again 10 minutes later.
    Result<size_t> ingest_deferred(size_t limit);
    // Runs ingest_deferred() on a thread of idle priority whenever an
    // upload leaves work (and every 30 s, for work other replicas left),
    // until the service is destroyed.
    void start_ingest();

    Result<int64_t> chunk_count() { return m_db.count_chunks(); }
    const ServiceCounters& counters() const { return m_counters; }
    blob::StoreCounters storage_counters() const { return m_blobs.counters(); }
    db::MetadataStore::PoolStats database_pool() const { return m_db.pool_stats(); }
    // Paths and NAR bytes per cache name (a query over every object).
    Result<std::vector<std::pair<std::string, db::MetadataStore::CacheSize>>> cache_sizes();
    // Upload chunk jobs waiting for a thread.
    size_t upload_queue() { return m_upload_pool.queued(); }
    // Readiness: the database and the blob store each answer a cheap request
    // within `deadline` (a hung one is left behind, not waited for);
    // unavailable, saying which did not, otherwise. While a probe left
    // behind is still unanswered, later checks wait for that one instead
    // of starting more: a hung database meets one probe per store, not
    // one thread per load balancer poll.
    Result<void> check_ready(std::chrono::milliseconds deadline);
    Result<db::MetadataStore::StorageCounts> storage_counts() { return m_db.storage_counts(); }
    const Config& config() const { return m_config; }

private:
    Result<crypto::SecretKey> signing_key(const db::CacheRow& cache);
    // The references (base names) that must be in the cache: all but the
    // path itself and those left `upstream` (hash parts; pushes only).
    static std::vector<std::string> references_in_cache(const nix::NarInfo& info,
                                                        const std::vector<std::string>& upstream);
    // Every reference is in the cache, or in `upstream` (pushes only).
    Result<void> check_references(const db::CacheRow& cache, const nix::NarInfo& info,
                                  const std::vector<std::string>& upstream);
    // Checks `info` against the stored NAR and its references, signs it and
    // makes the path visible.
    // `proxied`: fetched from an upstream (its own retention and size cap).
    Result<void> commit_object(const db::CacheRow& cache, nix::NarInfo info, const db::NarRow& nar,
                               const std::vector<std::string>& upstream, bool proxied = false);

    // Pull-through (proxy.cpp). A narinfo miss asked of the upstreams:
    // the narinfo to serve, or nullopt.
    Result<std::optional<std::string>> proxied_narinfo(const db::CacheRow& cache, std::string_view hash_part);
    // The path's narinfo from an upstream, its signature verified: known
    // from an earlier answer, else asked of `upstreams` (the cache's,
    // parsed) in turn; nullopt if none has it.
    Result<std::optional<nix::NarInfo>> upstream_narinfo(const db::CacheRow& cache,
                                                         const std::vector<UpstreamSpec>& upstreams,
                                                         std::string_view hash_part);
    Result<std::string> render_proxied(const db::CacheRow& cache, nix::NarInfo info);
    // `upstream` plus the references an upstream of the cache has (and the
    // cache does not): a path may refer to upstream paths.
    Result<std::vector<std::string>> references_upstream(const db::CacheRow& cache, const nix::NarInfo& info,
                                                         std::vector<std::string> upstream);
    // The stored NAR, a download to follow, or nullopt if another replica
    // holds the download.
    Result<std::optional<std::unique_ptr<Source>>> try_open_upstream_nar(const db::CacheRow& cache,
                                                                         const std::string& file,
                                                                         const std::string& nar_hash);
    Result<void> fetch_upstream_nar(const db::CacheRow& cache, const UpstreamSpec& up,
                                    const db::UpstreamPathRow& row, const std::string& file, Download& d);
    bool breaker_open(const std::string& url);
    void trip_breaker(const std::string& url, const Error& why);
    void reset_breaker(const std::string& url);

    // not_found unless every chunk of the NAR is there to be served.
    Result<void> check_whole(const db::NarRow& nar);
    Result<std::vector<std::string>> remove_path(const db::CacheRow& cache, std::string_view hash_part, bool cascade,
                                                 bool respect_pins);
    void forget_cache(std::string_view name);
    void forget_path(int64_t cache_id, std::string_view hash_part);
    // gc.cpp
    Result<GcCacheReport> collect_cache(const db::CacheRow& cache, const GcOptions& options, int64_t now);
    Result<void> sweep(GcReport& report, int64_t now);
    // Takes or renews this process's GC lease; conflict if another holds it.
    Result<void> renew_gc_lease();
    Result<void> ingest(const db::MetadataStore::DeferredNar& deferred);
    void ingest_loop();
    void wake_ingest();
    void note_upload();  // uploads under way make the ingest wait
    std::optional<int64_t> dedup_scope(const db::CacheRow& cache) const {
        return m_config.dedup_across_caches ? std::nullopt : std::optional<int64_t>(cache.id);
    }

    Config m_config;
    db::MetadataStore& m_db;
    blob::BlobStore& m_blobs;
    LookupCache<std::optional<db::CacheRow>> m_caches;   // by name; nullopt: no such cache
    LookupCache<std::optional<std::string>> m_narinfos;  // by "<cache id>/<hash>"
    LookupCache<std::shared_ptr<const db::NarRow>> m_downloads;  // by "<cache id>/<file>"
    // Hash parts every upstream said it lacks, by "<cache id>/<hash>": kept
    // apart from m_narinfos, whose absences last negative_ttl, so that a
    // path pushed through another replica is still seen within that.
    LookupCache<bool> m_upstream_misses;
    // NARs (by id) whose chunks were all found on local disk within the last
    // minute: check_whole() stats each chunk once a minute, not per request.
    LookupCache<bool> m_whole_nars;
    std::atomic<unsigned> m_transcodes{0};  // re-encoded downloads open now
    TaskPool m_upload_pool;                 // chunks of uploads: compress, put
    std::atomic<int64_t> m_upload_budget;   // chunk bytes all uploads may have in flight
    mutable UsageRecorder m_usage;
    ServiceCounters m_counters;
    std::mutex m_gc_mutex;                  // held while this process collects
    mutable std::mutex m_last_gc_mutex;
    std::optional<GcReport> m_last_gc;
    std::string m_gc_holder;  // this process's name for the GC lease
    TaskPool m_ingest_pool;   // chunks of deferred NARs, at idle priority
    std::mutex m_ingest_mutex;
    std::condition_variable m_ingest_wake;
    bool m_ingest_wanted = false, m_ingest_stop = false;
    std::atomic<int64_t> m_last_upload{0};  // steady_clock ticks of the last upload begun or recorded
    std::thread m_ingest_thread;
    struct ReadyProbe;  // (service.cpp)
    std::shared_ptr<ReadyProbe> start_ready_probe();
    std::mutex m_probe_mutex;
    std::shared_ptr<ReadyProbe> m_probe;  // the last started
    struct ProxyState;
    struct ProxyStateDeleter {
        void operator()(ProxyState* p) const;  // (proxy.cpp, where it is complete)
    };
    ProxyState& proxy();  // made on first use (its threads only where upstreams are)
    std::once_flag m_proxy_once;
    std::unique_ptr<ProxyState, ProxyStateDeleter> m_proxy;  // last: its downloads use everything above
};

// Cache names: 1-64 of [a-z0-9._-], starting with a letter or digit, and not
// a word the server uses for itself.
bool is_valid_cache_name(std::string_view name);
Result<void> check_cache_name(std::string_view name);

}  // namespace larder::cache
