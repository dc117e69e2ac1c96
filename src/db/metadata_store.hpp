// The metadata store: caches, their keys, NARs and chunks, store path
// objects, tokens, logs. One interface; the SQLite backend (and later
// PostgreSQL) implements it, so everything above is backend-agnostic.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace larder::db {

struct CacheRow {
    int64_t id = 0;
    std::string name;
    bool is_public = false;
    int priority = 40;
    std::string store_dir = "/nix/store";
    std::vector<std::string> upstream_keys;  // key names whose paths pushes skip
    int64_t created_at = 0;
    std::optional<int64_t> retention;  // seconds a path is kept after its last use; none: forever
    std::optional<int64_t> max_size;   // bytes of NARs (as served) the cache may hold; none: no cap
    std::string upstreams;             // JSON (cache/upstream.hpp); empty: none
    // For paths fetched from upstreams (objects.proxied), instead of the above.
    std::optional<int64_t> proxy_retention;
    std::optional<int64_t> proxy_max_size;
};

// A narinfo an upstream cache answered for a path (its signature verified),
// kept until the path's NAR is fetched (then it is an object) or it ages out.
struct UpstreamPathRow {
    int64_t cache_id = 0;
    std::string hash_part;
    std::string store_path;  // base name
    std::string nar_hash;    // "sha256:<nix32>"
    std::string narinfo;     // as the upstream sent it
    std::string nar_url;     // absolute
    int64_t seen_at = 0;
};

struct KeyRow {
    int64_t id = 0;
    int64_t cache_id = 0;
    std::string secret;  // "name:base64", never logged
    std::string public_key;
    bool current = true;
};

// One stored representation of a chunk. Blobs are keyed by the hash of
// their stored bytes, so a blob never changes once written, and one chunk
// (content) may have several representations: the server's own, and frames
// clients pushed. Only the server's are shared across caches by content.
struct ChunkRow {
    int64_t id = 0;
    std::string hash;  // base16 sha256 of the stored (compressed) bytes
    uint64_t size = 0;
    uint64_t stored_size = 0;
    std::string compression = "zstd";
    std::string content_hash;  // base16 sha256 of the uncompressed bytes
    bool server_made = false;  // compressed by this server, not sent by a client
    // The blob key: "<hash>-<random>", unique per write, so that a blob is
    // never written again once garbage collection may delete it (older
    // rows: the hash itself).
    std::string blob;
    // Set by an upload that found this row but not its blob: the row takes
    // the blob just written.
    bool replaces_lost_blob = false;
    // No NAR used it when garbage collection last looked: revive_chunk()
    // before a new NAR uses it.
    bool orphaned = false;
    // fsck found its blob missing or corrupt: NARs using it are not served
    // until an upload of the same content stores a new blob.
    bool damaged = false;
    // The stored bytes themselves, for a chunk kept in the database (small
    // ones: Config::inline_chunk_below); then `blob` names nothing stored.
    // Empty: the bytes are in the blob store.
    std::string data = {};
    bool is_inline() const { return !data.empty(); }
};

struct NarRow {
    int64_t id = 0;
    std::string nar_hash;  // "sha256:<nix32>"
    uint64_t nar_size = 0;
    std::string file_hash;  // of the served stream: the stored chunks concatenated
    uint64_t file_size = 0;
    std::vector<ChunkRow> chunks;  // in order
};

struct ObjectRow {
    int64_t id = 0;
    int64_t cache_id = 0;
    std::string hash_part;
    std::string store_path;  // base name
    int64_t nar_id = 0;
    std::vector<std::string> references;  // base names
    std::string deriver;
    std::string system;
    std::string ca;
    std::vector<std::string> sigs;
    int64_t created_at = 0;
    NarRow nar;  // filled by lookups that return an object
    bool proxied = false;  // fetched from an upstream (set on insert only)
};

// What garbage collection needs of an object: no signatures, no NAR chunks.
struct GcObject {
    int64_t id = 0;
    std::string store_path;  // base name
    std::vector<std::string> references;
    int64_t last_used = 0;
    int64_t nar_id = 0;
    uint64_t file_size = 0;
    bool proxied = false;
};

struct PinRow {
    int64_t id = 0;
    int64_t cache_id = 0;
    std::string name;
    std::string store_path;  // base name
    int64_t created_at = 0;
};

// What a sweep removed from the metadata (blobs are removed after).
struct SweptChunk {
    std::string blob;  // empty for a chunk kept in the database
    uint64_t stored_size = 0;
};

struct TokenRow {
    int64_t id = 0;
    std::string name;
    std::string secret_hash;  // base16 sha256 of the secret
    std::string scopes;       // JSON
    std::optional<int64_t> expires_at;
    std::optional<int64_t> revoked_at;
    int64_t created_at = 0;
    std::optional<int64_t> parent_id;  // the admin token that minted it; revoked with it
};

class MetadataStore {
public:
    virtual ~MetadataStore() = default;

    // The connection pool, for metrics: connections open (idle or in use),
    // in use, opened since startup, and attempts to open one that failed.
    struct PoolStats {
        int64_t open = 0, in_use = 0, opened = 0, connect_failures = 0;
    };
    virtual PoolStats pool_stats() const { return {}; }

    // Caches and their signing keys.
    virtual Result<CacheRow> create_cache(const CacheRow& cache, const KeyRow& key) = 0;
    virtual Result<CacheRow> get_cache(std::string_view name) = 0;  // not_found
    virtual Result<std::vector<CacheRow>> list_caches() = 0;
    virtual Result<void> update_cache(const CacheRow& cache) = 0;
    virtual Result<void> delete_cache(int64_t cache_id) = 0;
    virtual Result<std::vector<KeyRow>> cache_keys(int64_t cache_id) = 0;  // current first
    // Makes `key` the current key; older keys stay, no longer current.
    virtual Result<void> add_cache_key(const KeyRow& key) = 0;

    // Chunks and NARs.
    // A representation of this content that the server compressed itself;
    // with `within_cache`, only one that a path of that cache uses.
    virtual Result<std::optional<ChunkRow>> find_server_chunk(std::string_view content_hash,
                                                              std::optional<int64_t> within_cache) = 0;
    // The representation stored under this blob key (byte-identical bytes).
    virtual Result<std::optional<ChunkRow>> find_chunk_by_key(std::string_view blob_key,
                                                              std::optional<int64_t> within_cache) = 0;
    // Inserts the row, or returns the existing one for the same stored bytes
    // (`hash`), whose blob is then kept unless `replaces_lost_blob`. Either
    // way the row is no longer an orphan.
    virtual Result<ChunkRow> insert_chunk(const ChunkRow& chunk) = 0;
    // Claims a row a lookup found for a new NAR: false if garbage collection
    // removed it meanwhile (then store the chunk anew).
    virtual Result<bool> revive_chunk(int64_t chunk_id) = 0;
    // Inserts the NAR with its chunk list, or returns the existing one with
    // the same NarHash and FileHash (the same served bytes); a NAR may have
    // several representations. `nar.chunks` must have ids.
    virtual Result<NarRow> insert_nar(const NarRow& nar) = 0;
    virtual Result<std::optional<NarRow>> find_nar(int64_t nar_id) = 0;
    // A NAR by the file hash of its served stream, only if `cache_id` has an
    // object that uses it (caches never see each other's NARs).
    virtual Result<std::optional<NarRow>> find_cache_nar(int64_t cache_id,
                                                         std::string_view file_hash) = 0;
    // Deferred ingest: a NAR a plain upload stored whole (one chunk: the
    // file as the client compressed it), to be cut into chunks later, with
    // the cache it was uploaded to (the dedup scope).
    struct DeferredNar {
        int64_t nar_id = 0;
        int64_t cache_id = 0;
    };
    virtual Result<void> defer_nar(const DeferredNar& deferred) = 0;
    // Up to `limit` deferred NARs no other process has claimed (or whose
    // claim lapsed), claimed by this caller until `until`.
    virtual Result<std::vector<DeferredNar>> claim_deferred(int64_t now, int64_t until, size_t limit) = 0;
    // Replaces NAR `nar_id`'s representation, if it is still `old_file_hash`,
    // by `chunked` (the same NAR as chunks with ids), in one transaction: in
    // place, or, if that representation is already stored, by moving the
    // objects and uploads to it. Either way it is no longer deferred.
    // Returns the objects whose narinfo changed ("<cache id>/<hash part>");
    // nullopt if the NAR is gone or was replaced meanwhile.
    virtual Result<std::optional<std::vector<std::string>>> replace_nar(int64_t nar_id, std::string_view old_file_hash,
                                                                        const NarRow& chunked) = 0;
    virtual Result<int64_t> count_chunks() = 0;
    // Per cache with paths: how many, and their NARs' bytes as served.
    struct CacheSize {
        int64_t cache_id = 0;
        int64_t paths = 0;
        int64_t bytes = 0;
    };
    virtual Result<std::vector<CacheSize>> cache_sizes() = 0;
    struct StorageCounts {
        int64_t chunks = 0, nars = 0;
        int64_t stored_bytes = 0;                 // of all chunks
        int64_t unused_chunks = 0, unused_nars = 0;  // what garbage collection will remove
        int64_t deferred_nars = 0;                    // stored whole, not yet cut into chunks
        int64_t inline_chunks = 0;                    // kept in their rows, not as blobs
    };
    virtual Result<StorageCounts> storage_counts() = 0;

    // NAR uploads from plain Nix: the file name it PUT, until the narinfo.
    virtual Result<void> record_upload(int64_t cache_id, std::string_view name, int64_t nar_id) = 0;

    // Pull-through: narinfos upstreams answered (replaced if present).
    virtual Result<void> put_upstream_path(const UpstreamPathRow& row) = 0;
    virtual Result<std::optional<UpstreamPathRow>> find_upstream_path(int64_t cache_id,
                                                                      std::string_view hash_part) = 0;
    virtual Result<std::optional<UpstreamPathRow>> find_upstream_nar(int64_t cache_id, std::string_view nar_hash) = 0;
    // Forgets those seen before `before`; returns how many.
    virtual Result<int64_t> expire_upstream_paths(int64_t before) = 0;
    virtual Result<std::optional<int64_t>> find_upload(int64_t cache_id, std::string_view name) = 0;

    // Objects (store paths in a cache).
    virtual Result<std::optional<ObjectRow>> find_object(int64_t cache_id,
                                                         std::string_view hash_part) = 0;
    // Which of these the cache lacks, each once: hash parts, or base names
    // ("<hash>-<name>"), which must then match the stored path exactly.
    virtual Result<std::vector<std::string>> missing_objects(
        int64_t cache_id, const std::vector<std::string>& paths) = 0;
    // Inserts or replaces the object of that hash part. Each of `references`
    // (base names) must be in the cache: they are marked used in the same
    // transaction, which fails with `conflict` if one is gone (collected
    // meanwhile), so that no visible path ever lacks a reference.
    virtual Result<void> put_object(const ObjectRow& object, const std::vector<std::string>& references) = 0;
    virtual Result<std::vector<ObjectRow>> list_objects(int64_t cache_id) = 0;
    // Removes the object; false if there was none.
    virtual Result<bool> delete_object(int64_t cache_id, std::string_view hash_part) = 0;
    virtual Result<void> set_object_sigs(int64_t object_id, const std::vector<std::string>& sigs) = 0;

    // Use of paths (narinfo or NAR fetched), batched by the caller: each
    // (cache, hash part) and (cache, NAR id) gets last use `when`.
    struct Uses {
        std::vector<std::pair<int64_t, std::string>> paths;
        std::vector<std::pair<int64_t, int64_t>> nars;
    };
    virtual Result<void> record_uses(int64_t when, const Uses& uses) = 0;

    // Garbage collection.
    virtual Result<std::vector<GcObject>> gc_objects(int64_t cache_id) = 0;
    // Deletes each object (id, last use GC saw) unless it was used since, in
    // one transaction, which commits only if `accept` approves the ids
    // deleted (else: conflict, nothing deleted). Returns the ids deleted.
    using AcceptDeleted = std::function<bool(const std::vector<int64_t>& deleted)>;
    virtual Result<std::vector<int64_t>> delete_unused_objects(
        const std::vector<std::pair<int64_t, int64_t>>& objects, const AcceptDeleted& accept) = 0;
    // Marks NARs no object or upload uses as orphans since `now` (and clears
    // the mark of those in use again), drops uploads older than `cutoff` whose
    // NAR no path of their cache uses, deletes NARs orphaned before `cutoff`,
    // then marks chunks the same way. Returns the NARs deleted.
    virtual Result<int64_t> sweep_nars(int64_t now, int64_t cutoff) = 0;
    // Deletes up to `limit` chunks orphaned before `cutoff`.
    virtual Result<std::vector<SweptChunk>> sweep_chunks(int64_t cutoff, size_t limit) = 0;
    // Integrity checks: chunks in id order after `after_id` (only those of
    // NARs a path of `cache_id` uses, if given); marking one (un)damaged; the
    // paths whose NAR has a damaged chunk (cache id, hash part, base name).
    virtual Result<std::vector<ChunkRow>> chunks_after(int64_t after_id, size_t limit,
                                                       std::optional<int64_t> cache_id) = 0;
    virtual Result<void> set_chunk_damaged(int64_t chunk_id, bool damaged) = 0;
    struct DamagedObject {
        int64_t cache_id = 0;
        std::string hash_part, store_path;
    };
    virtual Result<std::vector<DamagedObject>> damaged_objects() = 0;
    // Which of these blob keys a chunk row names.
    virtual Result<std::vector<std::string>> known_blobs(const std::vector<std::string>& keys) = 0;
    // Takes (or renews) the lease `name` for `holder` until `expires_at`,
    // if it is free, expired, or already the holder's.
    virtual Result<bool> take_lease(std::string_view name, std::string_view holder, int64_t now,
                                    int64_t expires_at) = 0;
    virtual Result<void> drop_lease(std::string_view name, std::string_view holder) = 0;
    // Who holds lease `name` unexpired at `now` (nullopt: nobody).
    virtual Result<std::optional<std::string>> lease_holder(std::string_view name, int64_t now) = 0;

    // Pins: named roots, newest first.
    virtual Result<PinRow> add_pin(const PinRow& pin, size_t keep) = 0;  // keeps the newest `keep` of the name
    virtual Result<std::vector<PinRow>> list_pins(int64_t cache_id) = 0;
    virtual Result<int64_t> delete_pin(int64_t cache_id, std::string_view name) = 0;  // rows removed
    // Files stored as they came: listings (.ls), build logs, realisations.
    // `kind` is "ls", "log" or "realisation"; `name` is the path under the cache.
    virtual Result<void> put_file(int64_t cache_id, std::string_view kind, std::string_view name,
                                  std::string_view data, std::string_view content_encoding) = 0;
    struct File {
        std::string data;
        std::string content_encoding;
    };
    virtual Result<std::optional<File>> get_file(int64_t cache_id, std::string_view kind,
                                                 std::string_view name) = 0;

    // Tokens.
    virtual Result<TokenRow> create_token(const TokenRow& token) = 0;
    virtual Result<std::optional<TokenRow>> find_token(std::string_view secret_hash) = 0;
    virtual Result<std::vector<TokenRow>> list_tokens() = 0;
    // Revokes the token and every token minted under it.
    virtual Result<void> revoke_token(int64_t id, int64_t when) = 0;
};

// The database URL for logs: a password in it (user:PASSWORD@ or
// password=...) replaced by "***".
std::string redact_url(std::string_view url);

// "sqlite:///abs/path.db", a plain path to the database file, or a libpq URL
// ("postgresql://user@host:port/db?...").
Result<std::unique_ptr<MetadataStore>> open_metadata_store(std::string_view url);

}  // namespace larder::db
