#include "cache/upload.hpp"

#include <fmt/core.h>

#include "chunk/fastcdc.hpp"
#include "crypto/encoding.hpp"
#include "nar/nar.hpp"

namespace larder::cache {

// Receives the uncompressed NAR: hashes it, validates it on a parser thread,
// and cuts it into chunks.
class NarUpload::NarSink : public Sink {
public:
    NarSink(NarUpload& owner, bool chunking)
        : m_chunking(chunking), m_limit(owner.m_config.max_nar_size), m_validator([](Source& source) {
              nar::NullVisitor visitor;
              return nar::parse(source, visitor);
          }),
          m_chunker(owner.m_config.chunk_params, owner.m_config.single_chunk_below,
                    [&owner](std::string_view chunk) { return owner.store_chunk(chunk); }) {}

    Result<void> write(std::string_view data) override {
        if (m_hash.size() + data.size() > m_limit)
            return fail(ErrorCode::too_large, fmt::format("the NAR is over the limit of {} bytes (decompressed)",
                                                          m_limit));
        TRY(m_hash.write(data));
        TRY(m_validator.write(data));
        return m_chunking ? m_chunker.write(data) : ok();
    }

    Result<void> finish() override {
        TRY(m_validator.finish());
        return m_chunking ? m_chunker.finish() : ok();
    }

    crypto::HashSink& hash() { return m_hash; }

private:
    bool m_chunking;  // false: the chunks arrive as frames
    uint64_t m_limit;
    crypto::HashSink m_hash;
    ConsumerThread m_validator;
    chunk::Chunker m_chunker;
};

NarUpload::NarUpload(const Config& config, db::MetadataStore& db, blob::BlobStore& blobs,
                     codec::Method received, std::optional<crypto::Hash> expected_file_hash, bool chunk_frames,
                     std::optional<int64_t> dedup_within)
    : m_config(config), m_db(db), m_blobs(blobs), m_expected_file_hash(expected_file_hash),
      m_chunk_frames(chunk_frames), m_dedup_within(dedup_within), m_compressor(config.zstd_level) {
    m_nar_sink = std::make_unique<NarSink>(*this, !chunk_frames);
    if (!chunk_frames) {
        m_decompressor = codec::make_decompressor(received, *m_nar_sink);
        return;
    }
    // Frames up to the largest chunk anyone may configure; a client's chunk
    // boundaries do not matter for correctness (chunks are addressed by content).
    m_decompressor = codec::make_frame_splitter(config.max_chunk_size(), [this](std::string_view frame, std::string_view content) -> Result<void> {
        TRY(m_nar_sink->write(content));
        return store_chunk(content, frame);
    });
}

NarUpload::~NarUpload() = default;

Result<void> NarUpload::write(std::string_view data) {
    if (m_expected_file_hash) TRY(m_received_hash.write(data));
    return m_decompressor->write(data);
}

// Each chunk is stored as a blob keyed by the hash of its stored bytes, so
// no upload can change bytes another one refers to. The server's own
// compression of a content is shared by every cache; a client's frame is
// reused only where the very same bytes arrive again.
Result<void> NarUpload::store_chunk(std::string_view data, std::optional<std::string_view> frame) {
    auto content_hash = crypto::to_base16(crypto::sha256(data));
    if (auto seen = m_new_chunks.find(content_hash); seen != m_new_chunks.end()) {
        // Repeated within this NAR: stored once, served twice.
        m_chunks.push_back(m_chunks[seen->second]);
        return m_blobs.get(m_chunks.back().hash, m_file_hash);
    }
    bool server_made = !frame;
    if (server_made) {
        TRY_ASSIGN(auto existing, m_db.find_server_chunk(content_hash, m_dedup_within));
        if (existing) {
            // Served bytes are the stored ones, so the file hash reads them back.
            auto got = m_blobs.get(existing->hash, m_file_hash);
            if (got) {
                m_chunks.push_back(*existing);
                return ok();
            }
            if (got.error().code != ErrorCode::not_found) return got;
            // The row outlived its blob: store it again below.
        }
        TRY(m_compressor.compress(data, m_frame));
        frame = m_frame;
    }
    auto key = crypto::to_base16(crypto::sha256(*frame));
    if (!server_made) {
        TRY_ASSIGN(auto identical, m_db.find_chunk_by_key(key, m_dedup_within));
        if (identical && identical->size == data.size()) {
            TRY(m_file_hash.write(*frame));
            m_chunks.push_back(*identical);
            return ok();
        }
    }
    TRY(m_blobs.put(key, *frame));
    TRY(m_file_hash.write(*frame));
    m_new_chunks.emplace(content_hash, m_chunks.size());
    m_chunks.push_back(db::ChunkRow{0, std::move(key), data.size(), frame->size(), "zstd", std::move(content_hash),
                                    server_made});
    return ok();
}

Result<void> NarUpload::finish() {
    TRY(m_decompressor->finish());
    if (m_chunk_frames) TRY(m_nar_sink->finish());  // a stream decompressor finishes it itself
    if (m_expected_file_hash) {
        crypto::Hash received{m_received_hash.digest()};
        if (received != *m_expected_file_hash)
            return fail(ErrorCode::invalid_input,
                        fmt::format("the uploaded file's sha256 is {}, but its name says {}: the "
                                    "upload is truncated or corrupt",
                                    received.to_string(), m_expected_file_hash->to_string()));
    }
    // Chunk rows only for durable blobs: a crash before this leaves
    // unreferenced blobs, never a row without its bytes.
    TRY(m_blobs.sync());
    std::unordered_map<std::string, int64_t> ids;  // by blob key
    for (const auto& [content_hash, index] : m_new_chunks) {
        TRY_ASSIGN(auto row, m_db.insert_chunk(m_chunks[index]));
        ids.emplace(row.hash, row.id);
    }
    for (auto& c : m_chunks)
        if (c.id == 0) c.id = ids.at(c.hash);
    auto& nar_hash = m_nar_sink->hash();
    db::NarRow nar;
    nar.nar_size = nar_hash.size();
    nar.nar_hash = crypto::Hash{nar_hash.digest()}.to_string();
    nar.file_size = m_file_hash.size();
    nar.file_hash = crypto::Hash{m_file_hash.digest()}.to_string();
    nar.chunks = std::move(m_chunks);
    TRY_ASSIGN(m_nar, m_db.insert_nar(nar));
    return ok();
}

}  // namespace larder::cache
