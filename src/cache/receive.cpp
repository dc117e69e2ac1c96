// Upload bodies as Sinks whose finish() verifies and commits: a plain NAR
// PUT (visible once its narinfo is PUT), and `larder push` (narinfo and NAR
// in one body, visible at once).
#include <fmt/core.h>

#include "cache/service.hpp"
#include "util/framing.hpp"

namespace larder::cache {

namespace {

class NarFileReceiver : public Sink {
public:
    NarFileReceiver(CacheService& service, db::CacheRow cache, std::string file, std::unique_ptr<NarUpload> upload,
                    CommitCheck check)
        : m_service(service), m_cache(std::move(cache)), m_file(std::move(file)), m_upload(std::move(upload)),
          m_check(std::move(check)) {}

    Result<void> write(std::string_view data) override { return m_upload->write(data); }

    Result<void> finish() override {
        TRY(m_upload->finish());
        if (m_check) TRY(m_check());
        return m_service.record_upload(m_cache, m_file, *m_upload);
    }

private:
    CacheService& m_service;
    db::CacheRow m_cache;
    std::string m_file;
    std::unique_ptr<NarUpload> m_upload;
    CommitCheck m_check;
};

// The push body: two length-prefixed fields (the narinfo, then the hash
// parts of references left upstream, space separated), then the NAR.
class PushReceiver : public Sink {
public:
    PushReceiver(CacheService& service, db::CacheRow cache, std::string hash_part, bool chunk_frames,
                 CommitCheck check)
        : m_service(service), m_cache(std::move(cache)), m_hash_part(std::move(hash_part)),
          m_chunk_frames(chunk_frames), m_check(std::move(check)),
          m_prefix(2, k_max_push_field) {}

    Result<void> write(std::string_view data) override {
        if (!m_upload) {
            TRY_ASSIGN(data, m_prefix.feed(data));
            if (!m_prefix.done()) return ok();
            TRY_ASSIGN(auto pushed, m_service.check_push(m_cache, m_hash_part, m_prefix.fields()[0],
                                                         m_prefix.fields()[1]));
            pushed.chunk_frames = m_chunk_frames;
            m_pushed = std::move(pushed);
            TRY_ASSIGN(m_upload, m_service.begin_push(m_cache, *m_pushed));
        }
        return data.empty() ? ok() : m_upload->write(data);
    }

    Result<void> finish() override {
        if (!m_upload) return fail(ErrorCode::invalid_input, "the push body ended before its narinfo did");
        TRY(m_upload->finish());
        if (m_check) TRY(m_check());
        return m_service.commit_push(m_cache, *m_pushed, *m_upload);
    }

private:
    CacheService& m_service;
    db::CacheRow m_cache;
    std::string m_hash_part;
    bool m_chunk_frames;
    CommitCheck m_check;
    PrefixReader m_prefix;
    std::optional<PushedPath> m_pushed;
    std::unique_ptr<NarUpload> m_upload;
};

}  // namespace

Result<std::unique_ptr<Sink>> CacheService::receive_upload(const db::CacheRow& cache, std::string_view file,
                                                           CommitCheck check, std::optional<uint64_t> size) {
    TRY_ASSIGN(auto upload, begin_upload(cache, file, size));
    return std::unique_ptr<Sink>(
        std::make_unique<NarFileReceiver>(*this, cache, std::string(file), std::move(upload), std::move(check)));
}

Result<std::unique_ptr<Sink>> CacheService::receive_push(const db::CacheRow& cache, std::string_view hash_part,
                                                         bool chunk_frames, CommitCheck check) {
    return std::unique_ptr<Sink>(
        std::make_unique<PushReceiver>(*this, cache, std::string(hash_part), chunk_frames, std::move(check)));
}

}  // namespace larder::cache
