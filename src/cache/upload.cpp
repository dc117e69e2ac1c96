#include "cache/upload.hpp"

#include <fmt/core.h>

#include "crypto/encoding.hpp"
#include "nar/nar.hpp"

namespace larder::cache {

// Receives the uncompressed NAR: hashes it, validates it on a parser thread,
// and cuts it into chunks.
class NarUpload::NarSink : public Sink {
public:
    explicit NarSink(NarUpload& owner)
        : m_owner(owner), m_validator([](Source& source) {
              nar::NullVisitor visitor;
              return nar::parse(source, visitor);
          }) {
        m_chunk.reserve(owner.m_config.max_chunk_size);
    }

    Result<void> write(std::string_view data) override {
        TRY(m_hash.write(data));
        TRY(m_validator.write(data));
        while (!data.empty()) {
            size_t take = std::min(data.size(), m_owner.m_config.max_chunk_size - m_chunk.size());
            m_chunk.append(data.substr(0, take));
            data.remove_prefix(take);
            if (m_chunk.size() == m_owner.m_config.max_chunk_size) TRY(flush());
        }
        return ok();
    }

    Result<void> finish() override {
        TRY(m_validator.finish());
        return flush();
    }

    crypto::HashSink& hash() { return m_hash; }

private:
    Result<void> flush() {
        if (m_chunk.empty()) return ok();
        TRY(m_owner.store_chunk(m_chunk));
        m_chunk.clear();
        return ok();
    }

    NarUpload& m_owner;
    crypto::HashSink m_hash;
    ConsumerThread m_validator;
    std::string m_chunk;
};

NarUpload::NarUpload(const Config& config, db::MetadataStore& db, blob::BlobStore& blobs,
                     codec::Method received, std::optional<crypto::Hash> expected_file_hash)
    : m_config(config), m_db(db), m_blobs(blobs), m_expected_file_hash(expected_file_hash) {
    m_nar_sink = std::make_unique<NarSink>(*this);
    m_decompressor = codec::make_decompressor(received, *m_nar_sink);
}

NarUpload::~NarUpload() = default;

Result<void> NarUpload::write(std::string_view data) {
    TRY(m_received_hash.write(data));
    return m_decompressor->write(data);
}

Result<void> NarUpload::store_chunk(std::string_view data) {
    auto hash = crypto::to_base16(crypto::sha256(data));
    TRY_ASSIGN(auto existing, m_db.find_chunk(hash));
    if (existing) {
        // Served bytes are the stored ones, so the file hash reads them back.
        auto got = m_blobs.get(existing->hash, m_file_hash);
        if (got) {
            m_chunks.push_back(*existing);
            return ok();
        }
        if (got.error().code != ErrorCode::not_found) return got;
        // The row outlived its blob (interrupted garbage collection): store again.
    }
    StringSink compressed;
    TRY_ASSIGN(auto compressor, codec::make_compressor(codec::Method::zstd, compressed, m_config.zstd_level));
    TRY(compressor->write(data));
    TRY(compressor->finish());
    TRY(m_blobs.put(hash, compressed.data()));
    TRY_ASSIGN(auto row, m_db.insert_chunk(db::ChunkRow{0, hash, data.size(), compressed.data().size(), "zstd"}));
    TRY(m_file_hash.write(compressed.data()));
    m_chunks.push_back(std::move(row));
    return ok();
}

Result<void> NarUpload::finish() {
    TRY(m_decompressor->finish());
    if (m_expected_file_hash) {
        crypto::Hash received{m_received_hash.digest()};
        if (received != *m_expected_file_hash)
            return fail(ErrorCode::invalid_input,
                        fmt::format("the uploaded file's sha256 is {}, but its name says {}: the "
                                    "upload is truncated or corrupt",
                                    received.to_string(), m_expected_file_hash->to_string()));
    }
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
