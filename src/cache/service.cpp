#include "cache/service.hpp"

#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <random>
#include <unordered_set>

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include "crypto/encoding.hpp"
#include "nix/nar_info.hpp"
#include "nix/store_path.hpp"
#include "util/framing.hpp"
#include "util/strings.hpp"

namespace larder::cache {

namespace {

constexpr std::string_view k_nar_extension = ".nar.zst";

// "sha256:<nix32>" -> "<nix32>"
std::string_view digest_part(std::string_view hash) {
    auto colon = hash.find(':');
    return colon == std::string_view::npos ? hash : hash.substr(colon + 1);
}

// A row that does not parse is reported as corrupt, never dereferenced.
Result<nix::NarInfo> to_nar_info(const db::ObjectRow& o) {
    auto corrupt = [&](std::string_view what) {
        return fail(ErrorCode::corrupt, fmt::format("object {} in the database has a malformed {}", o.id, what));
    };
    auto path = nix::StorePath::parse_base_name(o.store_path);
    auto file_hash = crypto::parse_hash(o.nar.file_hash);
    auto nar_hash = crypto::parse_hash(o.nar.nar_hash);
    if (!path) return corrupt("store path");
    if (!file_hash || !nar_hash) return corrupt("NAR hash");
    nix::NarInfo info{.path = std::move(*path),
                      .url = fmt::format("nar/{}{}", digest_part(o.nar.file_hash), k_nar_extension),
                      .compression = "zstd",
                      .file_hash = *file_hash,
                      .file_size = o.nar.file_size,
                      .nar_hash = *nar_hash,
                      .nar_size = o.nar.nar_size,
                      .references = {},
                      .deriver = std::nullopt,
                      .system = o.system,
                      .sigs = o.sigs,
                      .ca = o.ca};
    for (const auto& r : o.references) {
        auto ref = nix::StorePath::parse_base_name(r);
        if (!ref) return corrupt("reference");
        info.references.push_back(std::move(*ref));
    }
    if (!o.deriver.empty()) {
        auto deriver = nix::StorePath::parse_base_name(o.deriver);
        if (!deriver) return corrupt("deriver");
        info.deriver = std::move(*deriver);
    }
    return info;
}

}  // namespace

bool is_valid_cache_name(std::string_view name) {
    static constexpr std::string_view k_reserved[] = {"api", "nar", "log", "realisations",
                                                      "build-trace-v2", "static", "health"};
    return !name.empty() && name.size() <= 64 &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
           }) &&
           name.front() != '.' && name.front() != '-' && name.front() != '_' &&
           std::find(std::begin(k_reserved), std::end(k_reserved), name) == std::end(k_reserved);
}

Result<void> check_cache_name(std::string_view name) {
    if (is_valid_cache_name(name)) return ok();
    return fail(ErrorCode::invalid_input,
                fmt::format("invalid cache name '{}': use 1-64 characters a-z 0-9 . _ -, starting "
                            "with a letter or digit (and not api, nar, log, realisations, build-trace-v2, "
                            "static, health)",
                            printable(name, 64)));
}

CacheService::CacheService(Config config, db::MetadataStore& db, blob::BlobStore& blobs)
    : m_config(std::move(config)), m_db(db), m_blobs(blobs), m_upload_pool(m_config.upload_threads),
      m_upload_budget(static_cast<int64_t>(m_config.upload_memory)), m_ingest_pool(m_config.ingest_threads, true) {
    std::random_device random;
    m_gc_holder = fmt::format("{}-{:08x}", ::getpid(), random());
}

struct CacheService::ReadyProbe {
    std::mutex mutex;
    std::condition_variable done;
    std::optional<Result<void>> db, blobs;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    bool answered() const { return db && blobs; }
};

CacheService::~CacheService() {
    {
        std::lock_guard lock(m_ingest_mutex);
        m_ingest_stop = true;
    }
    m_ingest_wake.notify_all();
    if (m_ingest_thread.joinable()) m_ingest_thread.join();
    // A readiness probe's threads use the stores through this object until
    // they are answered (only the last probe can be unanswered): wait for
    // them. S3 gives up after 30 s without progress; a PostgreSQL that
    // stopped answering holds this as long as libpq waits.
    std::shared_ptr<ReadyProbe> probe;
    {
        std::lock_guard lock(m_probe_mutex);
        probe = m_probe;
    }
    if (probe) {
        std::unique_lock lock(probe->mutex);
        if (!probe->answered()) spdlog::info("waiting for the last readiness probe to be answered before stopping");
        probe->done.wait(lock, [&] { return probe->answered(); });
    }
}

Result<db::CacheRow> CacheService::create_cache(std::string_view name, const CacheSettings& s) {
    TRY(check_cache_name(name));
    db::CacheRow row;
    row.name = name;
    row.is_public = s.is_public.value_or(false);
    row.priority = s.priority.value_or(40);
    row.upstream_keys = s.upstream_keys.value_or(std::vector<std::string>{std::string(k_nixos_cache_key)});
    if (s.retention) row.retention = *s.retention;
    if (s.max_size) row.max_size = *s.max_size;
    if (s.proxy_retention) row.proxy_retention = *s.proxy_retention;
    if (s.proxy_max_size) row.proxy_max_size = *s.proxy_max_size;
    if (s.upstreams) {
        TRY(check_upstreams(*s.upstreams));
        row.upstreams = render_upstreams(*s.upstreams);
    }
    auto key = crypto::SecretKey::generate(fmt::format("{}-{}-1", m_config.key_prefix, name));
    TRY_ASSIGN(auto created, m_db.create_cache(row, db::KeyRow{0, 0, key.to_string(), key.public_key().to_string(), true}));
    forget_cache(name);
    return created;
}

Result<db::CacheRow> CacheService::cache(std::string_view name) {
    // A name no cache can have costs no query and no memo entry.
    if (!is_valid_cache_name(name))
        return fail(ErrorCode::not_found, fmt::format("no cache named '{}'", printable(name, 64)));
    std::string key(name);
    auto memo = m_caches.get(key);
    if (!memo) {
        auto row = m_db.get_cache(name);
        if (!row && row.error().code != ErrorCode::not_found) return row;
        memo = row ? std::optional<db::CacheRow>(std::move(*row)) : std::nullopt;
        m_caches.put(key, *memo, *memo ? m_config.lookup_ttl : m_config.negative_ttl, sizeof(db::CacheRow) + 256);
    }
    if (!*memo) return fail(ErrorCode::not_found, fmt::format("no cache named '{}'", printable(name, 64)));
    return **memo;
}

std::optional<std::optional<db::CacheRow>> CacheService::remembered_cache(std::string_view name) const {
    if (!is_valid_cache_name(name)) return std::optional<db::CacheRow>();
    return m_caches.get(std::string(name));
}

std::optional<std::optional<std::string>> CacheService::remembered_narinfo(const db::CacheRow& cache,
                                                                           std::string_view hash_part) const {
    auto memo = m_narinfos.get(fmt::format("{}/{}", cache.id, hash_part));
    if (memo && *memo) m_usage.path(cache.id, hash_part);
    return memo;
}

void CacheService::forget_cache(std::string_view name) {
    m_caches.erase(std::string(name));
    m_narinfos.clear();
    m_downloads.clear();
}

void CacheService::forget_path(int64_t cache_id, std::string_view hash_part) {
    m_narinfos.erase(fmt::format("{}/{}", cache_id, hash_part));
    m_downloads.clear();  // keyed by file, not by path: a deleted path's NAR stops at once
}

Result<void> CacheService::flush_uses() {
    auto uses = m_usage.take();
    if (uses.paths.empty() && uses.nars.empty()) return ok();
    return m_db.record_uses(static_cast<int64_t>(std::time(nullptr)), uses);
}

Result<db::CacheRow> CacheService::configure(std::string_view name, const CacheSettings& s) {
    TRY_ASSIGN(auto row, m_db.get_cache(name));
    if (s.is_public) row.is_public = *s.is_public;
    if (s.priority) row.priority = *s.priority;
    if (s.upstream_keys) row.upstream_keys = *s.upstream_keys;
    if (s.retention) row.retention = *s.retention;
    if (s.max_size) row.max_size = *s.max_size;
    if (s.proxy_retention) row.proxy_retention = *s.proxy_retention;
    if (s.proxy_max_size) row.proxy_max_size = *s.proxy_max_size;
    if (s.upstreams) {
        TRY(check_upstreams(*s.upstreams));
        row.upstreams = render_upstreams(*s.upstreams);
    }
    TRY(m_db.update_cache(row));
    forget_cache(name);
    return row;
}

Result<std::vector<std::pair<std::string, db::MetadataStore::CacheSize>>> CacheService::cache_sizes() {
    TRY_ASSIGN(auto caches, m_db.list_caches());
    TRY_ASSIGN(auto sizes, m_db.cache_sizes());
    std::vector<std::pair<std::string, db::MetadataStore::CacheSize>> out;
    for (const auto& c : caches) {
        db::MetadataStore::CacheSize size{c.id, 0, 0};
        for (const auto& s : sizes)
            if (s.cache_id == c.id) size = s;
        out.emplace_back(c.name, size);
    }
    return out;
}

Result<void> CacheService::delete_cache(std::string_view name) {
    TRY_ASSIGN(auto row, m_db.get_cache(name));
    TRY(m_db.delete_cache(row.id));
    forget_cache(name);
    return ok();
}

Result<std::vector<crypto::PublicKey>> CacheService::public_keys(const db::CacheRow& cache) {
    TRY_ASSIGN(auto rows, m_db.cache_keys(cache.id));
    std::vector<crypto::PublicKey> keys;
    for (const auto& r : rows) {
        TRY_ASSIGN(auto k, crypto::parse_public_key(r.public_key));
        keys.push_back(std::move(k));
    }
    return keys;
}

Result<crypto::SecretKey> CacheService::signing_key(const db::CacheRow& cache) {
    TRY_ASSIGN(auto rows, m_db.cache_keys(cache.id));
    if (rows.empty() || !rows.front().current)
        return fail(ErrorCode::internal, fmt::format("cache '{}' has no signing key", cache.name));
    auto key = crypto::parse_secret_key(rows.front().secret);
    if (!key) return fail(ErrorCode::internal, fmt::format("cache '{}' has a corrupt signing key", cache.name));
    return std::move(*key);
}

Result<crypto::PublicKey> CacheService::rotate_key(const db::CacheRow& cache) {
    TRY_ASSIGN(auto rows, m_db.cache_keys(cache.id));
    auto key = crypto::SecretKey::generate(
        fmt::format("{}-{}-{}", m_config.key_prefix, cache.name, rows.size() + 1));
    TRY(m_db.add_cache_key(db::KeyRow{0, cache.id, key.to_string(), key.public_key().to_string(), true}));
    TRY_ASSIGN(auto objects, m_db.list_objects(cache.id));
    for (const auto& o : objects) {
        TRY_ASSIGN(auto info, to_nar_info(o));
        info.sign(key, cache.store_dir);
        TRY(m_db.set_object_sigs(o.id, info.sigs));
    }
    m_narinfos.clear();
    return key.public_key();
}

std::string CacheService::cache_info(const db::CacheRow& cache) const {
    return nix::CacheInfo{cache.store_dir, true, cache.priority}.render();
}

Result<std::string> CacheService::narinfo(const db::CacheRow& cache, std::string_view hash_part) {
    auto key = fmt::format("{}/{}", cache.id, hash_part);
    auto memo = m_narinfos.get(key);
    if (!memo) {
        TRY_ASSIGN(auto object, m_db.find_object(cache.id, hash_part));
        memo = std::optional<std::string>();  // a known absence
        if (object) {
            TRY_ASSIGN(auto info, to_nar_info(*object));
            memo = std::optional<std::string>(info.render(cache.store_dir));
        } else {
            TRY_ASSIGN(memo, proxied_narinfo(cache, hash_part));  // nullopt: no upstreams, or none has it
        }
        m_narinfos.put(key, *memo, *memo ? m_config.lookup_ttl : m_config.negative_ttl, *memo ? (*memo)->size() : 0);
    }
    if (!*memo) return fail(ErrorCode::not_found, "no such path in this cache");
    m_usage.path(cache.id, hash_part);
    return std::move(**memo);
}

Result<db::NarRow> CacheService::served_nar(const db::CacheRow& cache, std::string_view file) {
    if (!file.ends_with(k_nar_extension)) return fail(ErrorCode::not_found, "no such NAR in this cache");
    auto digest = file.substr(0, file.size() - k_nar_extension.size());
    TRY_ASSIGN(auto nar, m_db.find_cache_nar(cache.id, fmt::format("sha256:{}", digest)));
    if (!nar) return fail(ErrorCode::not_found, "no such NAR in this cache");
    TRY(check_whole(*nar));
    m_usage.nar(cache.id, nar->id);
    return std::move(*nar);
}

Result<std::shared_ptr<const db::NarRow>> CacheService::nar_to_download(const db::CacheRow& cache,
                                                                       std::string_view file) {
    auto key = fmt::format("{}/{}", cache.id, file);
    if (auto memo = m_downloads.get(key)) {
        TRY(check_whole(**memo));  // what served_nar() does after its query
        m_usage.nar(cache.id, (*memo)->id);
        return std::move(*memo);
    }
    TRY_ASSIGN(auto row, served_nar(cache, file));
    size_t bytes = sizeof(db::NarRow) + row.chunks.size() * (sizeof(db::ChunkRow) + 200);
    for (const auto& chunk : row.chunks) bytes += chunk.data.size();
    auto nar = std::make_shared<const db::NarRow>(std::move(row));
    m_downloads.put(key, nar, m_config.lookup_ttl, bytes);
    return nar;
}

Result<void> CacheService::check_whole(const db::NarRow& nar) {
    // Never a 200 that ends early: a NAR is served only if every chunk is
    // there (on local disk checked here, at most once a minute per NAR; on
    // S3, as fsck last found).
    auto damaged = fail(ErrorCode::not_found, "this NAR is damaged (a chunk is missing or corrupt; larder fsck "
                                              "lists it): push the path again to heal it");
    for (const auto& chunk : nar.chunks)
        if (chunk.damaged) return damaged;
    if (!m_blobs.exists_is_cheap()) return ok();
    auto key = std::to_string(nar.id);
    if (m_whole_nars.get(key)) return ok();
    for (const auto& chunk : nar.chunks) {
        if (chunk.is_inline()) continue;
        TRY_ASSIGN(bool there, m_blobs.exists(chunk.blob));
        if (there) continue;
        spdlog::warn("chunk {} of NAR {} is missing from storage; its paths are no longer served", chunk.blob,
                     nar.file_hash);
        (void)m_db.set_chunk_damaged(chunk.id, true);
        return damaged;
    }
    m_whole_nars.put(key, true, std::chrono::minutes(1));
    return ok();
}

std::unique_ptr<Source> CacheService::open_nar(const db::NarRow& nar, uint64_t offset, uint64_t length) {
    // The stored frames covering [offset, offset + length), and no others.
    std::vector<blob::BlobRange> ranges;
    for (const auto& chunk : nar.chunks) {
        if (length == 0) break;
        if (offset >= chunk.stored_size) {
            offset -= chunk.stored_size;
            continue;
        }
        uint64_t take = std::min(chunk.stored_size - offset, length);
        ranges.push_back(blob::BlobRange{chunk.blob, offset, take, chunk.stored_size, chunk.data});
        offset = 0;
        length -= take;
    }
    return m_blobs.open_ranges(std::move(ranges));
}

namespace {

// What Nix names an upload: "<nix32 sha256 of the file>.nar[.ext]".
struct UploadName {
    codec::Method compression;
    std::optional<crypto::Hash> file_hash;
};

Result<UploadName> parse_upload_name(std::string_view file) {
    static constexpr std::pair<std::string_view, codec::Method> k_extensions[] = {
        {".nar.zst", codec::Method::zstd}, {".nar.xz", codec::Method::xz},
        {".nar.bz2", codec::Method::bzip2}, {".nar", codec::Method::none}};
    for (auto [ext, method] : k_extensions) {
        if (!file.ends_with(ext)) continue;
        auto stem = file.substr(0, file.size() - ext.size());
        std::optional<crypto::Hash> hash;
        if (stem.size() == crypto::nix32_length(32)) {
            auto h = crypto::parse_sha256_digest(stem);
            if (h) hash = *h;
        }
        return UploadName{method, hash};
    }
    return fail(ErrorCode::invalid_input,
                fmt::format("cannot tell the compression of '{}': NAR uploads must end in .nar, "
                            ".nar.zst, .nar.xz or .nar.bz2",
                            printable(file)));
}

// Holds one of a limited number of slots while it is open.
class CountedSource : public Source {
public:
    CountedSource(std::unique_ptr<Source> inner, std::atomic<unsigned>& count)
        : m_inner(std::move(inner)), m_count(count) {}
    ~CountedSource() override { --m_count; }
    Result<size_t> read(char* buf, size_t len) override { return m_inner->read(buf, len); }

private:
    std::unique_ptr<Source> m_inner;
    std::atomic<unsigned>& m_count;
};

}  // namespace

Result<std::unique_ptr<NarUpload>> CacheService::begin_upload(const db::CacheRow& cache, std::string_view file,
                                                             std::optional<uint64_t> size) {
    TRY_ASSIGN(auto name, parse_upload_name(file));
    // Nix names every upload by the sha256 of its file; a name bound to the
    // bytes is what lets the NAR be served again under it (re-encoded).
    if (!name.file_hash)
        return fail(ErrorCode::invalid_input,
                    fmt::format("NAR uploads are named nar/<nix32 sha256 of the file>.nar[.zst|.xz|.bz2], as Nix "
                                "names them; '{}' is not",
                                printable(file)));
    note_upload();
    NarUpload::Options o;
    o.received = name.compression;
    o.expected_file_hash = name.file_hash;
    o.dedup_within = dedup_scope(cache);
    o.pool = &m_upload_pool;
    o.shared_budget = &m_upload_budget;
    o.stages = &m_counters.upload_stages;
    // Stored whole (as Nix compressed it) and chunked later, where the
    // store can take it as a stream: the client waits only for the bytes
    // to be verified and durable. Not a file small enough to be kept in
    // the database: cut at once, it is one chunk in a row, with no file
    // to write and sync, and nothing left to do later.
    bool small = size && *size < m_config.inline_chunk_below;
    if (m_config.defer_ingest && name.compression == codec::Method::zstd && !small) {
        auto key = new_blob_key(name.file_hash->to_base16());
        TRY_ASSIGN(o.whole, m_blobs.create(key));
        if (o.whole) o.whole_key = std::move(key);
    }
    return std::make_unique<NarUpload>(m_config, m_db, m_blobs, std::move(o));
}

Result<std::unique_ptr<Source>> CacheService::open_uploaded_nar(const db::CacheRow& cache, std::string_view file) {
    auto not_found = fail(ErrorCode::not_found, "no such NAR in this cache");
    TRY_ASSIGN(auto name, parse_upload_name(file));
    TRY_ASSIGN(auto nar_id, m_db.find_upload(cache.id, fmt::format("nar/{}", file)));
    if (!nar_id) return not_found;
    TRY_ASSIGN(auto nar, m_db.find_nar(*nar_id));
    if (!nar) return not_found;
    // Visible only once a narinfo in this cache uses it.
    TRY_ASSIGN(auto served, m_db.find_cache_nar(cache.id, nar->file_hash));
    if (!served) return not_found;
    TRY(check_whole(*served));
    auto stream = open_nar(*served, 0, served->file_size);
    if (name.compression == codec::Method::zstd || name.compression == codec::Method::bzip2) return stream;
    // Re-encoding costs CPU per byte served (xz: tens of MB/s): a few at a time.
    if (++m_transcodes > m_config.max_transcodes) {
        --m_transcodes;
        return fail(ErrorCode::unavailable, "too many re-encoded NAR downloads at once; try again shortly");
    }
    return std::unique_ptr<Source>(std::make_unique<CountedSource>(
        codec::make_transcoder(std::move(stream), name.compression), m_transcodes));
}

namespace {

void count_upload(ServiceCounters& c, const NarUpload& upload) {
    ++c.uploads;
    c.chunks_stored += upload.new_chunks();
    c.chunks_deduplicated += upload.nar().chunks.size() - std::min(upload.nar().chunks.size(), upload.new_chunks());
}

}  // namespace

// Two threads, each asking its store one cheap request: a name no cache
// has, a key no blob has. Left behind if they hang (the destructor waits
// for them).
std::shared_ptr<CacheService::ReadyProbe> CacheService::start_ready_probe() {
    auto probe = std::make_shared<ReadyProbe>();
    auto run = [probe](auto check, std::optional<Result<void>> ReadyProbe::*slot) {
        std::thread([probe, check, slot] {
            auto r = check();
            std::lock_guard lock(probe->mutex);
            (*probe).*slot = std::move(r);
            probe->done.notify_all();
        }).detach();
    };
    run([this]() -> Result<void> {
            auto r = m_db.get_cache("readyz-probe");
            if (!r && r.error().code != ErrorCode::not_found) return Failure{std::move(r).error()};
            return ok();
        }, &ReadyProbe::db);
    run([this]() -> Result<void> {
            TRY(m_blobs.exists("readyz-probe"));
            return ok();
        }, &ReadyProbe::blobs);
    return probe;
}

Result<void> CacheService::check_ready(std::chrono::milliseconds deadline) {
    std::shared_ptr<ReadyProbe> probe;
    {
        std::lock_guard lock(m_probe_mutex);
        bool out = false;  // the last probe is still unanswered: wait for it again
        if (m_probe) {
            std::lock_guard pl(m_probe->mutex);
            out = !m_probe->answered();
        }
        if (!out) m_probe = start_ready_probe();
        probe = m_probe;
    }
    std::unique_lock lock(probe->mutex);
    probe->done.wait_for(lock, deadline, [&] { return probe->answered(); });
    auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                        probe->started);
    auto say = [&](const char* what, const std::optional<Result<void>>& r) -> Result<void> {
        if (!r) return fail(ErrorCode::unavailable, fmt::format("the {} did not answer within {} ms", what,
                                                                waited.count()));
        if (!*r) return fail(ErrorCode::unavailable, fmt::format("the {} failed: {}", what, r->error().message));
        return ok();
    };
    TRY(say("database", probe->db));
    return say("blob store", probe->blobs);
}

Result<void> CacheService::record_upload(const db::CacheRow& cache, std::string_view file, const NarUpload& upload) {
    count_upload(m_counters, upload);
    note_upload();
    // Queued first: a crash in between leaves a queued NAR nothing uses
    // (collected), never a whole one that is never cut.
    if (upload.stored_whole()) TRY(m_db.defer_nar(db::MetadataStore::DeferredNar{upload.nar().id, cache.id}));
    TRY(m_db.record_upload(cache.id, fmt::format("nar/{}", file), upload.nar().id));
    if (upload.stored_whole()) wake_ingest();
    return ok();
}

Result<bool> CacheService::has_nar_file(const db::CacheRow& cache, std::string_view file) {
    TRY_ASSIGN(auto upload, m_db.find_upload(cache.id, fmt::format("nar/{}", file)));
    if (upload) return true;
    auto served = served_nar(cache, file);
    if (served) return true;
    if (served.error().code == ErrorCode::not_found) return false;
    return Failure{std::move(served).error()};
}

Result<void> CacheService::add_narinfo(const db::CacheRow& cache, std::string_view hash_part,
                                       std::string_view text) {
    TRY_ASSIGN(auto info, nix::parse_nar_info(text, cache.store_dir));
    TRY(nix::check_uploaded(info));
    if (info.path.hash_part() != hash_part)
        return fail(ErrorCode::invalid_input,
                    fmt::format("narinfo for {} uploaded as {}.narinfo", info.path.full(cache.store_dir),
                                printable(hash_part)));
    // The NAR: an upload to this cache, or one this cache already serves.
    TRY_ASSIGN(auto nar_id, m_db.find_upload(cache.id, info.url));
    std::optional<db::NarRow> nar;
    if (nar_id) {
        TRY_ASSIGN(nar, m_db.find_nar(*nar_id));
    } else if (info.url.starts_with("nar/")) {
        auto served = served_nar(cache, std::string_view(info.url).substr(4));
        if (served) nar = std::move(*served);
    }
    if (!nar)
        return fail(ErrorCode::invalid_input,
                    fmt::format("narinfo for {} refers to '{}', which was not uploaded to cache '{}': "
                                "upload the NAR first",
                                info.path.full(cache.store_dir), printable(info.url), cache.name));
    return commit_object(cache, std::move(info), *nar, {});
}

std::vector<std::string> CacheService::references_in_cache(const nix::NarInfo& info,
                                                          const std::vector<std::string>& upstream) {
    // By full base name: "<hash>-other" does not stand in for "<hash>-name".
    std::vector<std::string> refs;
    for (const auto& r : info.references)
        if (r != info.path && std::find(upstream.begin(), upstream.end(), r.hash_part()) == upstream.end())
            refs.emplace_back(r.base_name());
    return refs;
}

Result<void> CacheService::check_references(const db::CacheRow& cache, const nix::NarInfo& info,
                                            const std::vector<std::string>& upstream) {
    TRY_ASSIGN(auto missing, m_db.missing_objects(cache.id, references_in_cache(info, upstream)));
    if (!missing.empty())
        return fail(ErrorCode::invalid_input,
                    fmt::format("cannot add {}: its reference {}/{} is not in cache '{}' (push references first)",
                                info.path.full(cache.store_dir), cache.store_dir, missing.front(), cache.name));
    return ok();
}

Result<void> CacheService::commit_object(const db::CacheRow& cache, nix::NarInfo info, const db::NarRow& nar,
                                         const std::vector<std::string>& upstream, bool proxied) {
    if (nar.nar_hash != info.nar_hash.to_string() || nar.nar_size != info.nar_size)
        return fail(ErrorCode::invalid_input,
                    fmt::format("narinfo for {} says NarHash {} and NarSize {}, but the uploaded NAR has "
                                "NarHash {} and NarSize {}",
                                info.path.full(cache.store_dir), info.nar_hash.to_string(), info.nar_size,
                                nar.nar_hash, nar.nar_size));
    // The cache may have been deleted (and its name or id reused) while a
    // long upload was under way: commit only into the cache it was for.
    auto current = m_db.get_cache(cache.name);
    if (!current && current.error().code != ErrorCode::not_found) return Failure{std::move(current).error()};
    if (!current || current->id != cache.id)
        return fail(ErrorCode::conflict, fmt::format("cache '{}' was deleted during the upload", cache.name));
    // First writer wins: a path already in the cache is never replaced by
    // different contents (delete it first); the same contents again is a no-op.
    TRY_ASSIGN(auto existing, m_db.find_object(cache.id, info.path.hash_part()));
    if (existing && existing->store_path == info.path.base_name() && existing->nar.nar_hash == nar.nar_hash) {
        m_usage.path(cache.id, existing->hash_part);  // pushed again: used
        return ok();
    }
    if (existing)
        return fail(ErrorCode::conflict,
                    fmt::format("cache '{}' already has {} with NarHash {}; delete it before pushing different "
                                "contents",
                                cache.name, existing->store_path, existing->nar.nar_hash));
    // The closure must be complete before the path becomes visible; the
    // references are checked again as the object is inserted (garbage
    // collection may run meanwhile, on any replica).
    TRY_ASSIGN(auto left_upstream, references_upstream(cache, info, upstream));
    TRY(check_references(cache, info, left_upstream));
    TRY_ASSIGN(auto key, signing_key(cache));
    info.sign(key, cache.store_dir);
    db::ObjectRow object;
    object.cache_id = cache.id;
    object.hash_part = info.path.hash_part();
    object.store_path = info.path.base_name();
    object.nar_id = nar.id;
    for (const auto& r : info.references) object.references.push_back(r.base_name());
    if (info.deriver) object.deriver = info.deriver->base_name();
    object.system = info.system;
    object.ca = info.ca;
    object.sigs = info.sigs;
    object.proxied = proxied;
    TRY(m_db.put_object(object, references_in_cache(info, left_upstream)));
    m_narinfos.erase(fmt::format("{}/{}", cache.id, object.hash_part));
    return ok();
}

Result<PushedPath> CacheService::check_push(const db::CacheRow& cache, std::string_view hash_part,
                                            std::string_view narinfo, std::string_view upstream) {
    TRY_ASSIGN(auto parsed, nix::parse_nar_info(narinfo, cache.store_dir));
    TRY(nix::check_uploaded(parsed));
    PushedPath pushed{std::move(parsed), {}};
    const auto& info = pushed.info;
    if (info.path.hash_part() != hash_part)
        return fail(ErrorCode::invalid_input, fmt::format("narinfo for {} pushed as {}",
                                                          info.path.full(cache.store_dir), printable(hash_part)));
    if (info.nar_size > m_config.max_nar_size)
        return fail(ErrorCode::too_large, fmt::format("NarSize {} is over this server's limit of {} bytes",
                                                      info.nar_size, m_config.max_nar_size));
    TRY_ASSIGN(auto method, codec::parse_method(info.compression));
    if (method == codec::Method::bzip2)
        return fail(ErrorCode::invalid_input, "push the NAR uncompressed, or with zstd or xz");
    // Each reference left upstream comes with its narinfo, and must carry a
    // signature by a full key the cache trusts for upstream paths: a pusher
    // cannot make a path visible without its closure by calling it upstream.
    TRY_ASSIGN(auto upstream_infos, split_length_prefixed(upstream));
    std::vector<crypto::PublicKey> trusted;
    for (const auto& entry : cache.upstream_keys)
        if (auto key = crypto::parse_public_key(entry)) trusted.push_back(std::move(*key));
    for (auto text : upstream_infos) {
        TRY_ASSIGN(auto up, nix::parse_nar_info(text, cache.store_dir));
        bool is_reference = std::find(info.references.begin(), info.references.end(), up.path) != info.references.end();
        if (!is_reference)
            return fail(ErrorCode::invalid_input,
                        fmt::format("upstream path {} is not a reference of {}", up.path.full(cache.store_dir),
                                    info.path.full(cache.store_dir)));
        bool signed_upstream = std::any_of(trusted.begin(), trusted.end(), [&](const crypto::PublicKey& key) {
            return up.verify(key, cache.store_dir);
        });
        if (!signed_upstream)
            return fail(ErrorCode::invalid_input,
                        fmt::format("{} is left upstream, but no signature on it verifies with a public key cache "
                                    "'{}' trusts for upstream paths (give full keys: larder cache configure {} "
                                    "--upstream-key NAME:KEY)",
                                    up.path.full(cache.store_dir), cache.name, cache.name));
        pushed.upstream.emplace_back(up.path.hash_part());
    }
    TRY_ASSIGN(auto left_upstream, references_upstream(cache, info, pushed.upstream));
    TRY(check_references(cache, info, left_upstream));
    return pushed;
}

Result<std::unique_ptr<NarUpload>> CacheService::begin_push(const db::CacheRow& cache, const PushedPath& pushed) {
    TRY_ASSIGN(auto method, codec::parse_method(pushed.info.compression));
    if (pushed.chunk_frames && method != codec::Method::zstd)
        return fail(ErrorCode::invalid_input, "chunk frames must be zstd (Compression: zstd)");
    note_upload();
    NarUpload::Options o;
    o.received = method;
    o.chunk_frames = pushed.chunk_frames;
    o.dedup_within = dedup_scope(cache);
    o.pool = &m_upload_pool;
    o.shared_budget = &m_upload_budget;
    o.stages = &m_counters.upload_stages;
    return std::make_unique<NarUpload>(m_config, m_db, m_blobs, std::move(o));
}

Result<void> CacheService::commit_push(const db::CacheRow& cache, const PushedPath& pushed, const NarUpload& upload) {
    count_upload(m_counters, upload);
    return commit_object(cache, pushed.info, upload.nar(), pushed.upstream);
}

Result<std::vector<std::string>> CacheService::missing_paths(const db::CacheRow& cache,
                                                             const std::vector<std::string>& hash_parts) {
    TRY_ASSIGN(auto missing, m_db.missing_objects(cache.id, hash_parts));
    // A push that finds a path there counts as pushing it again: used.
    std::unordered_set<std::string_view> absent(missing.begin(), missing.end());
    for (const auto& h : hash_parts)
        if (!absent.count(h)) m_usage.path(cache.id, h);
    return missing;
}

Result<void> CacheService::put_file(const db::CacheRow& cache, std::string_view kind, std::string_view name,
                                    std::string_view data, std::string_view content_encoding) {
    // Sent back as it came, so only encodings clients understand (L12).
    static constexpr std::string_view k_encodings[] = {"", "identity", "br", "gzip", "deflate", "zstd", "xz"};
    if (std::find(std::begin(k_encodings), std::end(k_encodings), content_encoding) == std::end(k_encodings))
        return fail(ErrorCode::invalid_input, fmt::format("Content-Encoding '{}' is not one of br, gzip, deflate, "
                                                          "zstd, xz",
                                                          printable(content_encoding, 40)));
    return m_db.put_file(cache.id, kind, name, data, content_encoding);
}

Result<db::MetadataStore::File> CacheService::get_file(const db::CacheRow& cache, std::string_view kind,
                                                       std::string_view name) {
    TRY_ASSIGN(auto file, m_db.get_file(cache.id, kind, name));
    if (!file) return fail(ErrorCode::not_found, "no such file in this cache");
    return std::move(*file);
}

}  // namespace larder::cache
