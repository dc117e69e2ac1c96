// Settings of the cache service, filled from the config file by app/.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstddef>
#include <string>

#include "chunk/fastcdc.hpp"

namespace larder::cache {

struct Config {
    // Signing key names are "<key_prefix>-<cache>-<n>": unique across servers
    // because Nix looks trusted keys up by name.
    std::string key_prefix = "larder";
    // NARs are cut into content-defined chunks (FastCDC) of these sizes;
    // a NAR smaller than `single_chunk_below` stays one chunk. Measured on
    // the medium corpus through the server (bench/dedup.sh): 256K/1M/4M
    // stores 1.5 % less than 64K/256K/1M with 40 % of the chunks, and a
    // rebuild adds 0.25 % new bytes instead of 0.08 %. Fewer chunks are
    // fewer S3 requests, fewer rows, and fewer files to send per download:
    // at 16 connections 64K/256K/1M served a NAR at 0.88-0.93x nginx,
    // 256K/1M/4M at 0.94-0.98x (bench/serve.sh).
    chunk::Params chunk_params;
    size_t single_chunk_below = 1 << 20;
    // A chunk whose stored (compressed) bytes are fewer than this is kept
    // in its database row instead of as a blob: on S3 every blob costs a
    // request to write it and one to read it, whatever its size, and a
    // closure has many tiny paths (a push of the medium corpus stores 200
    // of its 753 chunks in under 4 KiB, 21 KB in all). 0: every chunk is
    // a blob.
    size_t inline_chunk_below = 4096;
    int zstd_level = 3;
    // Whether a chunk stored for one cache is reused for another. Sharing
    // saves storage, but lets a pusher to any cache learn by timing whether
    // content exists anywhere on the server (README, "Hostile input").
    bool dedup_across_caches = true;
    // The largest chunk a NAR may be cut into (client frames included).
    size_t max_chunk_size() const { return std::max(chunk_params.max_size, single_chunk_below); }
    // The largest NAR accepted, counted decompressed (a compressed body
    // could otherwise expand far past any limit on what was sent).
    uint64_t max_nar_size = uint64_t{64} << 30;
    // Downloads re-encoded at once (a NAR fetched under the .nar or .nar.xz
    // name Nix uploaded it as); more get a 503.
    unsigned max_transcodes = 4;
    // Threads compressing and storing upload chunks, for all uploads
    // together (each upload keeps up to NarUpload::k_bytes_in_flight busy).
    unsigned upload_threads = 32;
    // Chunk bytes being compressed and stored for all uploads together.
    uint64_t upload_memory = 48 << 20;
    // How long a replica may answer from memory: cache settings and found
    // narinfos (positive), and absent ones (negative). 0 disables.
    std::chrono::milliseconds lookup_ttl{5000};
    std::chrono::milliseconds negative_ttl{1000};
    // Deferred ingest: a plain NAR upload (Nix's `nix copy`, zstd) to a
    // store that takes streamed writes (local disk) is stored whole and
    // answered as soon as it is durable and verified; it is cut into
    // chunks afterwards, on `ingest_threads` threads of idle priority, and
    // swapped in. Without it the client waits for chunking and compression.
    bool defer_ingest = true;
    unsigned ingest_threads = 2;
    // Garbage collection removes a NAR, chunk or blob only after nothing has
    // used it for this long: longer than any upload can last, so that an
    // upload in flight (on any replica) never loses a chunk it found.
    int64_t gc_grace_seconds = 86400;
    // Pull-through (caches with upstreams): a miss every upstream confirmed
    // is remembered this long (one an unreachable upstream may not have
    // meant, only negative_ttl); an upstream that failed is not asked for
    // `upstream_breaker`; an upstream's narinfo is trusted this long before
    // it is asked again; downloads are spooled for their readers in
    // `spool_dir` (unlinked files).
    std::chrono::milliseconds upstream_miss_ttl{600000};
    std::chrono::milliseconds upstream_breaker{30000};
    std::chrono::seconds upstream_path_ttl{86400};
    std::string spool_dir = "/var/tmp";
};

}  // namespace larder::cache
