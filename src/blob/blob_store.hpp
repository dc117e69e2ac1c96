// Where chunk bytes live. Keys are chosen by the caller (content hashes with a
// part unique to the write), and a crash leaves at most an unreferenced blob
// for garbage collection. Backends are picked by URL
// scheme; their classes are private to their .cpp files.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blob/sigv4.hpp"
#include "util/io.hpp"

namespace larder::blob {

// Keys: 3-128 of [0-9a-z_-] (content hashes), safe as file and object names.
bool is_valid_key(std::string_view key);

// Bytes [offset, offset + length) of one blob.
struct BlobRange {
    std::string key;
    uint64_t offset = 0;
    uint64_t length = 0;
    // The whole blob's size, if the caller knows it (0: unknown). A read
    // cache keeps only whole blobs, and only those whose size it can check.
    uint64_t blob_size = 0;
    // The whole blob's bytes, if the caller holds them (a chunk kept in the
    // database): read from here, with no request to the store.
    std::string data = {};
};

// Bytes [offset, offset + length) of a range's `data`, cut short where the
// data is (a reader then finds the blob shorter than recorded).
std::string_view held_bytes(const BlobRange& range);

// A stored blob as listed: its key, when it was last written (Unix time),
// and its size.
struct BlobInfo {
    std::string key;
    int64_t modified = 0;
    uint64_t size = 0;
};

struct StoreOptions {
    // S3: these, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
    // AWS_SESSION_TOKEN, else ~/.aws/credentials.
    std::optional<Credentials> credentials;
    // S3: requests in flight at once for the whole server (each on its own
    // thread with its own connection).
    unsigned connections = 32;
    // S3: pieces of a stream fetched ahead of its reader, at most
    // `read_ahead_memory` bytes of them held for all streams together (each
    // stream may always hold its next piece).
    unsigned read_ahead = 8;
    uint64_t read_ahead_memory = 64 << 20;
    // S3: a local directory keeping the blobs most recently read, up to
    // `cache_max_size` bytes (least recently read dropped first); empty: no
    // such cache.
    std::string cache_dir;
    uint64_t cache_max_size = 0;
};

// A blob written as a stream, for one too large to hold in memory (a whole
// NAR as a client sent it). The key must be new (unique to this write, as
// every key is): readers must not use it before commit(), which makes the
// blob complete and durable on its own (no sync() needed); destroyed
// uncommitted, it leaves nothing (a crash may leave an unnamed blob, for
// garbage collection).
class BlobWriter : public Sink {
public:
    virtual Result<void> commit() = 0;
};

// Requests a remote store (S3) made since the server started.
struct StoreCounters {
    uint64_t requests = 0;
    uint64_t failures = 0;  // transport errors, 5xx, throttling, refusals (not 404)
    uint64_t retries = 0;   // attempts repeated after a transient failure
    // The local read cache in front of it, if any.
    uint64_t cache_hits = 0;    // blobs read from the cache
    uint64_t cache_misses = 0;  // blobs fetched that the cache then kept
    uint64_t cache_bytes = 0;   // bytes it holds now
};

class BlobStore {
public:
    virtual ~BlobStore() = default;

    // Stores `data` under `key`, atomically: readers see all of it or nothing.
    // It is durable only after a following sync().
    virtual Result<void> put(std::string_view key, std::string_view data) = 0;
    // A streamed put(); nullptr if this store takes blobs only whole (S3:
    // there a NAR is stored as chunks from the start).
    virtual Result<std::unique_ptr<BlobWriter>> create(std::string_view /*key*/) {
        return std::unique_ptr<BlobWriter>();
    }
    // Makes every put() that returned before it durable. Metadata may refer
    // to a blob only after this.
    virtual Result<void> sync() { return ok(); }
    // Writes bytes [offset, offset + length) of the blob to `sink`; a length
    // of nullopt means "to the end". not_found if there is no such blob.
    virtual Result<void> get(std::string_view key, Sink& sink, uint64_t offset = 0,
                             std::optional<uint64_t> length = std::nullopt) = 0;
    // A Source over bytes [offset, offset + length) of the blob, for
    // streaming it out in bounded memory.
    virtual Result<std::unique_ptr<Source>> open(std::string_view key, uint64_t offset,
                                                 uint64_t length) = 0;
    // The ranges' bytes, concatenated: a stored NAR. This default opens each
    // blob when the reader gets to it; stores whose requests are slow (S3)
    // fetch ahead in parallel. A missing blob fails the read that reaches it.
    virtual std::unique_ptr<Source> open_ranges(std::vector<BlobRange> ranges);
    virtual Result<bool> exists(std::string_view key) = 0;
    // Whether exists() costs no request (a stat): then a NAR's chunks are
    // all checked before it is served.
    virtual bool exists_is_cheap() const { return false; }
    virtual Result<void> remove(std::string_view key) = 0;
    // Every blob. A local store also removes, as it lists, the temporary
    // files of put()s that died over a day ago.
    virtual Result<std::vector<BlobInfo>> list() = 0;
    // All zero for local stores.
    virtual StoreCounters counters() const { return {}; }
    // The URL with any credentials removed, for logs.
    virtual std::string describe() const = 0;
};

// "file:///abs/dir", a plain directory path, "memory://" (for tests: lost at
// exit), or
// "s3://BUCKET[/PREFIX]?endpoint=URL&region=R&addressing=path|virtual" (AWS's
// endpoint for the region when none is given). S3 credentials: see
// StoreOptions (~/.aws/credentials: AWS_SHARED_CREDENTIALS_FILE, profile
// AWS_PROFILE or default). An S3 store is checked with a signed request
// before it is returned, so wrong credentials fail here with a message saying so.
Result<std::unique_ptr<BlobStore>> open_blob_store(std::string_view url, const StoreOptions& options = {});

// `remote` behind a read cache in local directory `dir` holding at most
// `max_size` bytes (StoreOptions::cache_dir). Keys are unique to each write,
// so a cached blob is never stale: only reads of NAR ranges whose blob size
// is known go through it; writes, lists and removals go to `remote` (a
// removal also drops the cached copy). Blobs already in `dir` are kept.
Result<std::unique_ptr<BlobStore>> with_read_cache(std::unique_ptr<BlobStore> remote, std::string dir,
                                                   uint64_t max_size);

}  // namespace larder::blob
