#include "cache/upload.hpp"

#include <random>

#include <fmt/core.h>

#include "chunk/fastcdc.hpp"
#include "crypto/encoding.hpp"
#include "nar/nar.hpp"

namespace larder::cache {

namespace {

// Hashes the bytes read through it.
class HashedSource : public Source {
public:
    HashedSource(Source& in, crypto::HashSink& hash) : m_in(in), m_hash(hash) {}
    Result<size_t> read(char* buf, size_t len) override {
        TRY_ASSIGN(auto n, m_in.read(buf, len));
        TRY(m_hash.write(std::string_view(buf, n)));
        return n;
    }
    Result<std::optional<std::string_view>> borrow(size_t max) override {
        TRY_ASSIGN(auto lent, m_in.borrow(max));
        if (lent) TRY(m_hash.write(*lent));
        return lent;
    }

private:
    Source& m_in;
    crypto::HashSink& m_hash;
};

}  // namespace

// Up to this much of a NAR (or of a whole upload's compressed file) is
// handled on the writing thread: a thread of its own costs more than a
// small NAR's work.
constexpr size_t k_inline_bytes = 1 << 20;

// Receives the uncompressed NAR: hashes it, validates it, and cuts it into
// chunks. A NAR over k_inline_bytes is validated on a parser thread, which
// also hashes it (it reads every byte), beside the decompression.
class NarUpload::NarSink : public Sink {
public:
    NarSink(NarUpload& owner, bool chunking, bool validate)
        : m_chunking(chunking), m_validate(validate), m_limit(owner.m_config.max_nar_size),
          m_chunker(owner.m_config.chunk_params, owner.m_config.single_chunk_below,
                    [&owner](std::string_view chunk) { return owner.store_chunk(chunk); }) {}

    Result<void> write(std::string_view data) override {
        if (m_size + data.size() > m_limit)
            return fail(ErrorCode::too_large, fmt::format("the NAR is over the limit of {} bytes (decompressed)",
                                                          m_limit));
        m_size += data.size();
        if (m_validate && !m_validator && m_size <= k_inline_bytes) {
            m_small.append(data);
        } else if (m_validate) {
            if (!m_validator) {
                m_validator.emplace([this](Source& source) { return parse(source); });
                TRY(m_validator->write(m_small));
                std::string().swap(m_small);
            }
            TRY(m_validator->write(data));
        } else {
            TRY(m_hash.write(data));
        }
        return m_chunking ? m_chunker.write(data) : ok();
    }

    Result<void> finish() override {
        if (m_validator) {
            TRY(m_validator->finish());
        } else if (m_validate) {
            StringSource small(m_small);
            TRY(parse(small));
        }
        return m_chunking ? m_chunker.finish() : ok();
    }

    // After finish().
    crypto::HashSink& hash() { return m_hash; }

private:
    Result<void> parse(Source& source) {
        HashedSource hashed(source, m_hash);
        nar::NullVisitor visitor;
        return nar::parse(hashed, visitor);
    }

    bool m_chunking;  // false: the chunks arrive as frames
    bool m_validate;
    uint64_t m_limit;
    uint64_t m_size = 0;
    crypto::HashSink m_hash;  // written by the validator's thread, if there is one
    std::string m_small;      // a NAR so far small enough to validate at finish()
    std::optional<ConsumerThread> m_validator;
    chunk::Chunker m_chunker;
};

std::string new_blob_key(std::string_view stored_hash) {
    thread_local std::mt19937_64 random{std::random_device{}()};
    return fmt::format("{}-{:016x}", stored_hash, random());
}

Result<void> read_chunk(blob::BlobStore& blobs, const db::ChunkRow& chunk, Sink& sink) {
    if (chunk.is_inline()) return sink.write(chunk.data);
    return blobs.get(chunk.blob, sink);
}

NarUpload::NarUpload(const Config& config, db::MetadataStore& db, blob::BlobStore& blobs, Options o)
    : m_config(config), m_db(db), m_blobs(blobs), m_expected_file_hash(o.expected_file_hash),
      m_whole(std::move(o.whole)), m_whole_key(std::move(o.whole_key)), m_chunk_frames(o.chunk_frames),
      m_dedup_within(o.dedup_within), m_pool(o.pool), m_shared_budget(o.shared_budget),
      m_stages(o.stages) {
    bool chunking = !m_chunk_frames && !m_whole;
    m_nar_sink = std::make_unique<NarSink>(*this, chunking, o.validate);
    if (!m_chunk_frames) {
        m_decompressor = codec::make_decompressor(o.received, *m_nar_sink);
        return;
    }
    // Frames up to the largest chunk anyone may configure; a client's chunk
    // boundaries do not matter for correctness (chunks are addressed by content).
    m_decompressor = codec::make_frame_splitter(config.max_chunk_size(), [this](std::string_view frame, std::string_view content) -> Result<void> {
        TRY(m_nar_sink->write(content));
        return store_chunk(content, frame);
    });
}

NarUpload::~NarUpload() {
    m_unpacker.reset();  // an upload given up: stops the decompression
    // Chunks still being stored use the stores: wait for them.
    for (auto& c : m_in_flight)
        if (c.stored.valid()) c.stored.wait();
    if (m_shared_budget) *m_shared_budget += static_cast<int64_t>(m_bytes_in_flight);
}

Result<void> NarUpload::write(std::string_view data) {
    if (m_stages && m_started == std::chrono::steady_clock::time_point()) m_started = std::chrono::steady_clock::now();
    if (m_expected_file_hash || m_whole) TRY(m_received_hash.write(data));
    if (!m_whole) return m_decompressor->write(data);
    TRY(m_whole->write(data));
    if (!m_unpacker && m_received_hash.size() <= k_inline_bytes) return m_decompressor->write(data);
    // The client waits for a whole upload's answer: a large one is
    // decompressed on a thread of its own, beside the hashing and writing.
    if (!m_unpacker)
        m_unpacker = std::make_unique<ConsumerThread>([this](Source& compressed) -> Result<void> {
            TRY(copy(compressed, *m_decompressor));
            return m_decompressor->finish();
        });
    return m_unpacker->write(data);
}

namespace {

struct ChunkJob {
    db::MetadataStore& db;
    blob::BlobStore& blobs;
    int zstd_level;
    size_t inline_below;  // Config::inline_chunk_below
    std::optional<int64_t> dedup_within;
    uint64_t size;                     // of the content
    std::string data;                  // the content, to compress; empty if the client sent a frame
    std::optional<std::string> frame;  // as the client compressed it
    std::string content_hash;
};


// Reuses a stored row for a new NAR: false if garbage collection took it.
Result<bool> reuse(db::MetadataStore& db, const db::ChunkRow& row) {
    if (!row.orphaned) return true;
    return db.revive_chunk(row.id);
}

// Each chunk is stored as a blob of its own, never rewritten, so no upload
// can change bytes another one refers to. The server's own compression of a
// content is shared by every cache; a client's frame is reused only where
// the very same bytes arrive again.
Result<NarUpload::StoredChunk> store(ChunkJob& job) {
    bool server_made = !job.frame;
    bool lost = false;  // a row whose blob is gone: the new blob replaces it
    if (server_made) {
        TRY_ASSIGN(auto existing, job.db.find_server_chunk(job.content_hash, job.dedup_within));
        if (existing) {
            TRY_ASSIGN(bool kept, reuse(job.db, *existing));
            // Served bytes are the stored ones, so the file hash reads them back.
            StringSink stored;
            auto got = kept && !existing->damaged ? read_chunk(job.blobs, *existing, stored) : Result<void>(ok());
            if (kept && !existing->damaged && got)
                return NarUpload::StoredChunk{std::move(*existing), std::move(stored.data()), false};
            if (!got && got.error().code != ErrorCode::not_found) return Failure{std::move(got).error()};
            lost = kept;  // the row outlived its blob (or fsck found it damaged): store it again below
        }
        thread_local std::unique_ptr<codec::FrameCompressor> compressor;
        thread_local int compressor_level = 0;
        if (!compressor || compressor_level != job.zstd_level) {
            compressor = std::make_unique<codec::FrameCompressor>(job.zstd_level);
            compressor_level = job.zstd_level;
        }
        job.frame.emplace();
        TRY(compressor->compress(job.data, *job.frame));
    }
    auto hash = crypto::to_base16(crypto::sha256(*job.frame));
    if (!server_made) {
        TRY_ASSIGN(auto identical, job.db.find_chunk_by_key(hash, job.dedup_within));
        if (identical && identical->size == job.size) {
            TRY_ASSIGN(bool kept, reuse(job.db, *identical));
            bool usable = kept && !identical->damaged;
            TRY_ASSIGN(bool there, !usable                 ? Result<bool>(false)
                                   : identical->is_inline() ? Result<bool>(true)
                                                            : job.blobs.exists(identical->blob));
            if (there) return NarUpload::StoredChunk{std::move(*identical), std::move(*job.frame), false};
            lost = kept;
        }
    }
    auto key = new_blob_key(hash);
    auto stored_size = job.frame->size();
    bool in_row = stored_size < job.inline_below;
    if (!in_row) TRY(job.blobs.put(key, *job.frame));
    db::ChunkRow row{0, std::move(hash), job.size, stored_size, "zstd", std::move(job.content_hash), server_made,
                     std::move(key), lost, false, false, in_row ? *job.frame : std::string()};
    return NarUpload::StoredChunk{std::move(row), std::move(*job.frame), true};
}

}  // namespace

Result<void> NarUpload::store_chunk(std::string_view data, std::optional<std::string_view> frame) {
    // Room for this chunk: within this upload's share, and the server's.
    auto size = static_cast<int64_t>(data.size());
    while (!m_in_flight.empty() && m_bytes_in_flight + data.size() > k_bytes_in_flight) TRY(take_chunk());
    while (m_shared_budget && m_shared_budget->fetch_sub(size) < size && !m_in_flight.empty()) {
        *m_shared_budget += size;
        TRY(take_chunk());
    }
    auto content_hash = crypto::to_base16(crypto::sha256(data));
    InFlight chunk;
    chunk.size = data.size();
    if (auto seen = m_seen.find(content_hash); seen != m_seen.end()) {
        chunk.repeat_of = seen->second;
    } else {
        m_seen.emplace(content_hash, m_chunks.size() + m_in_flight.size());
        // A client's frame is stored as it came: the content is not kept
        // (it was 3/4 of the memory of a push's chunks in flight).
        auto job = std::make_shared<ChunkJob>(ChunkJob{m_db, m_blobs, m_config.zstd_level,
                                                       m_config.inline_chunk_below, m_dedup_within, data.size(),
                                                       {}, std::nullopt, std::move(content_hash)});
        if (frame) job->frame.emplace(*frame);
        else job->data.assign(data);
        if (m_pool) {
            chunk.stored = m_pool->submit([job] { return store(*job); });
        } else {
            std::promise<Result<StoredChunk>> done;
            done.set_value(store(*job));
            chunk.stored = done.get_future();
        }
    }
    m_bytes_in_flight += chunk.size;
    m_in_flight.push_back(std::move(chunk));
    return ok();
}

Result<void> NarUpload::take_chunk() {
    auto chunk = std::move(m_in_flight.front());
    m_in_flight.pop_front();
    m_bytes_in_flight -= chunk.size;
    if (m_shared_budget) *m_shared_budget += static_cast<int64_t>(chunk.size);
    if (chunk.repeat_of) {
        m_chunks.push_back(m_chunks[*chunk.repeat_of]);
        return read_chunk(m_blobs, m_chunks.back(), m_file_hash);
    }
    TRY_ASSIGN(auto stored, chunk.stored.get());
    TRY(m_file_hash.write(stored.frame));
    if (stored.is_new) m_new_chunks.push_back(m_chunks.size());
    m_chunks.push_back(std::move(stored.row));
    return ok();
}

namespace {

// Seconds since `since`, which becomes now.
double lap(std::chrono::steady_clock::time_point& since) {
    auto now = std::chrono::steady_clock::now();
    auto seconds = std::chrono::duration<double>(now - since).count();
    since = now;
    return seconds;
}

}  // namespace

Result<void> NarUpload::finish() {
    TRY_ASSIGN(auto nar, finish_chunks());
    TRY_ASSIGN(m_nar, m_db.insert_nar(nar));
    if (m_stages) m_stages->record.observe(lap(m_timing));
    return ok();
}

Result<std::pair<crypto::Hash, uint64_t>> NarUpload::end_input() {
    if (!m_nar_digest) {
        TRY(m_unpacker ? m_unpacker->finish() : m_decompressor->finish());
        if (m_chunk_frames) TRY(m_nar_sink->finish());  // a stream decompressor finishes it itself
        m_nar_digest = m_nar_sink->hash().digest();
    }
    return std::pair{crypto::Hash{*m_nar_digest}, m_nar_sink->hash().size()};
}

Result<db::NarRow> NarUpload::finish_chunks() {
    auto start = m_started == std::chrono::steady_clock::time_point() ? std::chrono::steady_clock::now() : m_started;
    m_timing = start;
    double receive = lap(m_timing);
    TRY(end_input());
    while (!m_in_flight.empty()) TRY(take_chunk());
    std::optional<crypto::Hash> received;  // of the file as it came
    if (m_expected_file_hash || m_whole) received = crypto::Hash{m_received_hash.digest()};
    if (m_expected_file_hash) {
        if (*received != *m_expected_file_hash)
            return fail(ErrorCode::invalid_input,
                        fmt::format("the uploaded file's sha256 is {}, but its name says {}: the "
                                    "upload is truncated or corrupt",
                                    received->to_string(), m_expected_file_hash->to_string()));
    }
    auto& nar_hash = m_nar_sink->hash();
    auto nar_digest = *m_nar_digest;
    double verify = lap(m_timing);
    if (m_whole) {
        // The file as it came is the NAR's one chunk (verified above).
        TRY(m_whole->commit());
        m_new_chunks.push_back(m_chunks.size());
        m_chunks.push_back(db::ChunkRow{0, crypto::to_base16(received->digest), nar_hash.size(),
                                        m_received_hash.size(), "zstd", crypto::to_base16(nar_digest), false,
                                        m_whole_key, false, false, false});
    }
    // Chunk rows only for durable blobs: a crash before this leaves
    // unreferenced blobs, never a row without its bytes. (A whole file is
    // durable once committed.)
    bool any_blob = std::any_of(m_new_chunks.begin(), m_new_chunks.end(),
                                [&](size_t i) { return !m_chunks[i].is_inline(); });
    if (any_blob && !m_whole) TRY(m_blobs.sync());
    if (m_stages) {
        m_stages->receive.observe(receive);
        m_stages->verify.observe(verify);
        m_stages->sync.observe(lap(m_timing));
    }
    std::unordered_map<std::string, db::ChunkRow> rows;  // by hash of the stored bytes
    for (auto index : m_new_chunks) {
        const auto& chunk = m_chunks[index];
        TRY_ASSIGN(auto row, m_db.insert_chunk(chunk));
        // Another upload stored the same bytes first: its blob serves both.
        if (row.blob != chunk.blob && !chunk.is_inline()) (void)m_blobs.remove(chunk.blob);
        rows.emplace(row.hash, std::move(row));
    }
    for (auto& c : m_chunks)
        if (c.id == 0) c = rows.at(c.hash);
    db::NarRow nar;
    nar.nar_size = nar_hash.size();
    nar.nar_hash = crypto::Hash{nar_digest}.to_string();
    if (m_whole) {
        nar.file_size = m_received_hash.size();
        nar.file_hash = received->to_string();
    } else {
        nar.file_size = m_file_hash.size();
        nar.file_hash = crypto::Hash{m_file_hash.digest()}.to_string();
    }
    nar.chunks = std::move(m_chunks);
    return nar;
}

}  // namespace larder::cache
