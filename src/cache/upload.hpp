// The upload pipeline for one NAR, as a Sink of the bytes the client sends:
//   received -> decompress -> { NarHash + NarSize, NAR validation,
//                               chunk -> compress -> put blob -> chunk row }
// finish() returns the committed NAR row. Chunks are content addressed, so
// an upload that dies half way leaves only unreferenced blobs.
#pragma once

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
#include "util/pipe.hpp"

namespace larder::cache {

class NarUpload : public Sink {
public:
    // `expected_file_hash`, when known (Nix names uploads by the sha256 of the
    // compressed file), is checked against what arrives.
    // `chunk_frames`: the body is zstd frames, each one chunk (larder push);
    // they are verified and stored as they are, without recompression.
    // `dedup_within`: reuse only chunks that paths of this cache use
    // (nullopt: chunks of any cache).
    NarUpload(const Config& config, db::MetadataStore& db, blob::BlobStore& blobs,
              codec::Method received, std::optional<crypto::Hash> expected_file_hash, bool chunk_frames = false,
              std::optional<int64_t> dedup_within = std::nullopt);
    ~NarUpload() override;

    Result<void> write(std::string_view data) override;
    Result<void> finish() override;
    // After a successful finish(): the NAR as stored.
    const db::NarRow& nar() const { return m_nar; }

private:
    class NarSink;
    // `frame`: the chunk already compressed, as the client sent it.
    Result<void> store_chunk(std::string_view data, std::optional<std::string_view> frame = std::nullopt);

    const Config& m_config;
    db::MetadataStore& m_db;
    blob::BlobStore& m_blobs;
    std::optional<crypto::Hash> m_expected_file_hash;
    crypto::HashSink m_received_hash;
    crypto::HashSink m_file_hash;  // of the stored (served) bytes
    std::unique_ptr<NarSink> m_nar_sink;
    std::unique_ptr<Sink> m_decompressor;
    // The NAR's chunks in order; rows of new chunks get their ids in finish(),
    // after the blob store has made them durable.
    std::vector<db::ChunkRow> m_chunks;
    std::unordered_map<std::string, size_t> m_new_chunks;  // hash -> index in m_chunks
    bool m_chunk_frames;
    std::optional<int64_t> m_dedup_within;
    codec::FrameCompressor m_compressor;
    std::string m_frame;
    db::NarRow m_nar;
};

}  // namespace larder::cache
