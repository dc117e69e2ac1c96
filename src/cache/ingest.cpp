// Deferred ingest: a NAR a plain upload stored whole (the file as Nix
// compressed it, verified and durable before the client got its answer) is
// read back, cut into chunks like any upload, and swapped in for the whole
// file in one transaction. Readers of the old representation keep reading
// it: the whole blob is reclaimed by garbage collection a grace period after
// nothing uses it, and clients holding the old URL are served through the
// upload's name.
#include <chrono>
#include <ctime>

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include "cache/service.hpp"

namespace larder::cache {

namespace {

// How long a claim on a deferred NAR lasts: a replica that dies leaves it
// to another after this; a NAR that failed is tried again after it.
constexpr int64_t k_claim_seconds = 600;

}  // namespace

Result<size_t> CacheService::ingest_deferred(size_t limit) {
    auto now = static_cast<int64_t>(std::time(nullptr));
    TRY_ASSIGN(auto claimed, m_db.claim_deferred(now, now + k_claim_seconds, limit));
    for (const auto& d : claimed) {
        auto r = ingest(d);
        if (r) {
            ++m_counters.nars_ingested;
            continue;
        }
        ++m_counters.ingest_failures;
        spdlog::warn("ingest: NAR {} stays whole for now (tried again in {} minutes): {}", d.nar_id,
                     k_claim_seconds / 60, r.error().message);
    }
    return claimed.size();
}

Result<void> CacheService::ingest(const db::MetadataStore::DeferredNar& d) {
    auto started = std::chrono::steady_clock::now();
    TRY_ASSIGN(auto nar, m_db.find_nar(d.nar_id));
    if (!nar) return ok();  // collected meanwhile (the queue row went with it)
    NarUpload::Options o;
    o.received = codec::Method::zstd;
    o.dedup_within = m_config.dedup_across_caches ? std::nullopt : std::optional<int64_t>(d.cache_id);
    o.pool = &m_ingest_pool;
    o.validate = false;  // checked on upload; the NarHash below proves it is the same NAR
    NarUpload upload(m_config, m_db, m_blobs, std::move(o));
    auto source = open_nar(*nar, 0, nar->file_size);
    std::string buffer(std::min<uint64_t>(nar->file_size + 1, 1 << 20), '\0');
    for (;;) {
        TRY_ASSIGN(auto n, source->read(buffer.data(), buffer.size()));
        if (n == 0) break;
        TRY(upload.write(std::string_view(buffer.data(), n)));
        std::lock_guard lock(m_ingest_mutex);
        if (m_ingest_stop) return fail(ErrorCode::unavailable, "the server is stopping");
    }
    TRY_ASSIGN(auto chunked, upload.finish_chunks());
    if (chunked.nar_hash != nar->nar_hash)
        return fail(ErrorCode::corrupt, fmt::format("its stored file reads back as NarHash {}, not {} (larder fsck "
                                                    "checks the stored bytes)",
                                                    chunked.nar_hash, nar->nar_hash));
    TRY_ASSIGN(auto changed, m_db.replace_nar(nar->id, nar->file_hash, chunked));
    if (!changed) return ok();  // collected or replaced meanwhile: the new chunks are unused, and collected
    for (const auto& key : *changed) m_narinfos.erase(key);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    spdlog::info("ingest: NAR {} ({} bytes) cut into {} chunks in {} ms", nar->nar_hash, nar->nar_size,
                 chunked.chunks.size(), ms.count());
    return ok();
}

void CacheService::start_ingest() {
    if (m_ingest_thread.joinable()) return;
    m_ingest_wanted = true;  // what a previous run left, at once
    m_ingest_thread = std::thread([this] { ingest_loop(); });
}

void CacheService::wake_ingest() {
    {
        std::lock_guard lock(m_ingest_mutex);
        m_ingest_wanted = true;
    }
    m_ingest_wake.notify_one();
}

void CacheService::note_upload() {
    m_last_upload.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
}

void CacheService::ingest_loop() {
    // Cutting and compressing use only CPU time nothing else wants, and
    // wait for a pause in uploads (at most k_max_wait): even at idle priority
    // they compete for the disk's journal (each upload's fdatasync commits
    // the ingest's new files too), which measurably slowed plain `nix copy`.
    using namespace std::chrono;
    constexpr auto k_quiet = seconds(2);
    constexpr auto k_max_wait = seconds(60);
    lower_thread_priority();
    std::unique_lock lock(m_ingest_mutex);
    while (!m_ingest_stop) {
        m_ingest_wake.wait_for(lock, seconds(30), [&] { return m_ingest_stop || m_ingest_wanted; });
        m_ingest_wanted = false;
        auto waiting_since = steady_clock::now();
        for (;;) {
            auto last = steady_clock::time_point(steady_clock::duration(m_last_upload.load(std::memory_order_relaxed)));
            auto now = steady_clock::now();
            if (now - last < k_quiet && now - waiting_since < k_max_wait) {
                m_ingest_wake.wait_for(lock, k_quiet - (now - last), [&] { return m_ingest_stop; });
                if (m_ingest_stop) return;
                continue;
            }
            if (m_ingest_stop) return;
            lock.unlock();
            auto r = ingest_deferred(1);
            if (!r) spdlog::warn("ingest: cannot read the queue (retrying in 30 s): {}", r.error().message);
            lock.lock();
            if (!r || *r == 0) break;
        }
    }
}

}  // namespace larder::cache
