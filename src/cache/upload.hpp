// The upload pipeline for one NAR, as a Sink of the bytes the client sends:
//   received -> decompress -> { NarHash + NarSize, NAR validation,
//                               chunk -> compress -> put blob -> chunk row }
// Each chunk's compress-and-put runs on a task pool, up to k_bytes_in_flight
// of one upload's chunks at once (S3 PUTs take tens of ms each; the CPU has several
// cores); results are taken in order, for the file hash. finish() returns the
// committed NAR row. Chunks are content addressed, so an upload that dies
// half way leaves only unreferenced blobs.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "blob/blob_store.hpp"
#include "cache/config.hpp"
#include "codec/codec.hpp"
#include "crypto/hash.hpp"
#include "crypto/sha256.hpp"
#include "db/metadata_store.hpp"
#include "util/histogram.hpp"
#include "util/pipe.hpp"
#include "util/task_pool.hpp"

namespace larder::cache {

// A blob key for new bytes: "<base16 sha256 of the stored bytes>-<16 random
// hex>", unique to the write: garbage collection deletes a blob only after
// its row is gone, and no upload ever writes that key again, so a deletion
// never hits new bytes.
std::string new_blob_key(std::string_view stored_hash);

// A chunk's stored bytes into `sink`: from its row if it is kept there,
// else from its blob (not_found if that is gone).
Result<void> read_chunk(blob::BlobStore& blobs, const db::ChunkRow& chunk, Sink& sink);

// Where a committed upload's time went, for /metrics:
//   receive: from the first byte to the end of the body (the client's pace,
//            and back-pressure from the stages after it);
//   verify:  from the end of the body until decompression, the NAR's
//            hashes and structure, and every chunk's compress-and-put are done;
//   sync:    making the new blobs durable (fdatasync, or nothing on S3);
//   record:  the chunk and NAR rows in the database.
struct UploadStages {
    Histogram receive, verify, sync, record;
};

class NarUpload : public Sink {
public:
    struct Options {
        codec::Method received = codec::Method::zstd;
        // When known (Nix names uploads by the sha256 of the compressed
        // file), checked against what arrives.
        std::optional<crypto::Hash> expected_file_hash;
        // The body is zstd frames, each one chunk (larder push); they are
        // verified and stored as they are, without recompression.
        bool chunk_frames = false;
        // Reuse only chunks that paths of this cache use (nullopt: chunks
        // of any cache).
        std::optional<int64_t> dedup_within;
        // Where chunks are compressed and stored (nullptr: on the writing thread).
        TaskPool* pool = nullptr;
        // Bounds the chunk bytes in flight of all uploads together.
        std::atomic<int64_t>* shared_budget = nullptr;
        // false: the NAR's structure was checked when it was first stored
        // (ingest cuts a verified whole NAR); its NarHash is still computed.
        bool validate = true;
        // Set (zstd only): the file is stored as it arrives, whole, under
        // `whole_key` (deferred ingest: answered as soon as it is durable
        // and verified, cut into chunks later).
        std::unique_ptr<blob::BlobWriter> whole;
        std::string whole_key;
        // Observes the stages of a successful finish() (nullptr: not timed).
        UploadStages* stages = nullptr;
    };

    NarUpload(const Config& config, db::MetadataStore& db, blob::BlobStore& blobs, Options options);
    ~NarUpload() override;

    Result<void> write(std::string_view data) override;
    // Verifies, makes the chunks durable and records them and the NAR.
    Result<void> finish() override;
    // finish() without recording the NAR: its chunks (with ids) and hashes,
    // for replacing another representation of it.
    Result<db::NarRow> finish_chunks();
    // The end of the input, checked (NAR structure): its NarHash and
    // NarSize, before its chunks are stored and durable (finish_chunks()
    // or finish() still do that; they end the input first if this did not).
    Result<std::pair<crypto::Hash, uint64_t>> end_input();
    // After a successful finish(): the NAR as stored.
    const db::NarRow& nar() const { return m_nar; }
    // After finish(): how many of its chunks were stored new (the rest were
    // found stored already).
    size_t new_chunks() const { return m_new_chunks.size(); }
    // Whether it was stored whole, to be cut into chunks later.
    bool stored_whole() const { return m_whole != nullptr; }

    // Chunk bytes of one upload being compressed and stored at once (at
    // least one chunk); `shared_budget`, if given, bounds them for all
    // uploads together (each may always have one chunk in flight).
    static constexpr size_t k_bytes_in_flight = 16 << 20;

    // A chunk as stored: its row (id 0 if new) and its stored bytes.
    struct StoredChunk {
        db::ChunkRow row;
        std::string frame;
        bool is_new = false;
    };

private:
    class NarSink;
    // `frame`: the chunk already compressed, as the client sent it.
    Result<void> store_chunk(std::string_view data, std::optional<std::string_view> frame = std::nullopt);
    // Takes the oldest chunk in flight into m_chunks and the file hash.
    Result<void> take_chunk();

    // A chunk on its way: being stored, or a repeat of an earlier chunk of
    // this NAR (stored once, served twice).
    struct InFlight {
        std::future<Result<StoredChunk>> stored;
        std::optional<size_t> repeat_of;  // index in m_chunks
        size_t size = 0;
    };

    const Config& m_config;
    db::MetadataStore& m_db;
    blob::BlobStore& m_blobs;
    std::optional<crypto::Hash> m_expected_file_hash;
    std::unique_ptr<blob::BlobWriter> m_whole;
    std::string m_whole_key;
    crypto::HashSink m_received_hash;
    crypto::HashSink m_file_hash;  // of the stored (served) bytes
    std::unique_ptr<NarSink> m_nar_sink;
    std::unique_ptr<Sink> m_decompressor;
    // The NAR's chunks in order; rows of new chunks get their ids in finish(),
    // after the blob store has made them durable.
    std::vector<db::ChunkRow> m_chunks;
    std::vector<size_t> m_new_chunks;  // indexes in m_chunks
    std::unordered_map<std::string, size_t> m_seen;  // content hash -> index of its first chunk
    std::deque<InFlight> m_in_flight;
    size_t m_bytes_in_flight = 0;
    bool m_chunk_frames;
    std::optional<int64_t> m_dedup_within;
    TaskPool* m_pool;
    std::atomic<int64_t>* m_shared_budget;
    db::NarRow m_nar;
    std::optional<crypto::Digest> m_nar_digest;  // once the input ended
    UploadStages* m_stages;
    std::chrono::steady_clock::time_point m_started;  // the first write
    std::chrono::steady_clock::time_point m_timing;   // the end of the last stage timed
    // Decompresses on its own thread (whole uploads); destroyed first, as
    // it uses the members above.
    std::unique_ptr<ConsumerThread> m_unpacker;
};

}  // namespace larder::cache
