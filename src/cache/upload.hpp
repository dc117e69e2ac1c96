// The upload pipeline for one NAR, as a Sink of the bytes the client sends:
//   received -> decompress -> { NarHash + NarSize, NAR validation,
//                               chunk -> compress -> put blob -> chunk row }
// finish() returns the committed NAR row. Chunks are content addressed, so
// an upload that dies half way leaves only unreferenced blobs.
#pragma once

#include <memory>
#include <optional>
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
    NarUpload(const Config& config, db::MetadataStore& db, blob::BlobStore& blobs,
              codec::Method received, std::optional<crypto::Hash> expected_file_hash);
    ~NarUpload() override;

    Result<void> write(std::string_view data) override;
    Result<void> finish() override;
    // After a successful finish(): the NAR as stored.
    const db::NarRow& nar() const { return m_nar; }

private:
    class NarSink;
    Result<void> store_chunk(std::string_view data);

    const Config& m_config;
    db::MetadataStore& m_db;
    blob::BlobStore& m_blobs;
    std::optional<crypto::Hash> m_expected_file_hash;
    crypto::HashSink m_received_hash;
    crypto::HashSink m_file_hash;  // of the stored (served) bytes
    std::unique_ptr<NarSink> m_nar_sink;
    std::unique_ptr<Sink> m_decompressor;
    std::vector<db::ChunkRow> m_chunks;
    db::NarRow m_nar;
};

}  // namespace larder::cache
