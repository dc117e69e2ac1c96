// Pull-through caches (issue 14): a cache's upstreams answer the narinfos
// it lacks, and their NARs are fetched on the first request for them,
// streamed to that client (and to every client asking meanwhile) while they
// are verified and stored as chunks like any upload.
//
//   narinfo miss -> upstreams in order (skipping those whose breaker is
//   open) -> the first 200 whose signature verifies with that upstream's keys
//   is remembered (upstream_paths) and served with URL
//   nar/upstream-<NarHash>.nar.zst, its signatures plus the cache's own.
//
//   GET that name -> stored already (uploads)? served from chunks. Else one
//   download per NAR: in this process (a map of downloads), and across
//   replicas (a lease; the others wait for the stored NAR). The download
//   decompresses the upstream's file once and feeds the upload pipeline and
//   a zstd stream spooled to an unlinked file that every reader follows. The
//   stream's last bytes are written only after the NarHash and NarSize
//   match the signed narinfo, so a client never receives a whole stream of
//   unverified bytes; storing the chunks and committing the path follow.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <future>
#include <random>
#include <utility>

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cache/service.hpp"
#include "cache/upstream.hpp"
#include "codec/codec.hpp"
#include "upstream/fetch.hpp"
#include "util/strings.hpp"

namespace larder::cache {

// --- upstream specs ----------------------------------------------------------

Result<void> check_upstreams(const std::vector<UpstreamSpec>& upstreams) {
    for (const auto& u : upstreams) {
        if (!u.url.starts_with("http://") && !u.url.starts_with("https://"))
            return fail(ErrorCode::invalid_input,
                        fmt::format("upstream URL '{}' must start with http:// or https://", printable(u.url, 200)));
        if (u.url.ends_with('/')) return fail(ErrorCode::invalid_input, "an upstream URL must not end with '/'");
        if (u.keys.empty())
            return fail(ErrorCode::invalid_input,
                        fmt::format("upstream {} needs at least one public key (NAME:BASE64): its narinfos are "
                                    "accepted only with a valid signature",
                                    u.url));
        for (const auto& k : u.keys)
            if (!crypto::parse_public_key(k))
                return fail(ErrorCode::invalid_input,
                            fmt::format("'{}' is not a public key (NAME:BASE64 of 32 bytes)", printable(k, 200)));
        if (u.timeout_ms < 100 || u.timeout_ms > 600000)
            return fail(ErrorCode::invalid_input, "an upstream timeout must be 100 ms to 10 minutes");
    }
    return ok();
}

Result<std::vector<UpstreamSpec>> parse_upstreams(std::string_view text) {
    std::vector<UpstreamSpec> out;
    if (text.empty()) return out;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array()) return fail(ErrorCode::invalid_input, "upstreams must be a JSON array");
    for (const auto& e : j) {
        if (!e.is_object() || !e.contains("url") || !e["url"].is_string())
            return fail(ErrorCode::invalid_input, "each upstream needs a \"url\"");
        UpstreamSpec u;
        u.url = e["url"].get<std::string>();
        if (e.contains("keys")) {
            if (!e["keys"].is_array()) return fail(ErrorCode::invalid_input, "an upstream's \"keys\" is a list");
            for (const auto& k : e["keys"]) {
                if (!k.is_string()) return fail(ErrorCode::invalid_input, "an upstream key is a string");
                u.keys.push_back(k.get<std::string>());
            }
        }
        if (e.contains("token") && e["token"].is_string()) u.token = e["token"].get<std::string>();
        if (e.contains("netrc_file") && e["netrc_file"].is_string()) u.netrc_file = e["netrc_file"].get<std::string>();
        if (e.contains("timeout_ms") && e["timeout_ms"].is_number_integer()) u.timeout_ms = e["timeout_ms"].get<int64_t>();
        out.push_back(std::move(u));
    }
    TRY(check_upstreams(out));
    return out;
}

namespace {

nlohmann::json upstreams_json(const std::vector<UpstreamSpec>& upstreams, bool with_secrets) {
    auto list = nlohmann::json::array();
    for (const auto& u : upstreams) {
        nlohmann::json e{{"url", u.url}, {"keys", u.keys}, {"timeout_ms", u.timeout_ms}};
        if (with_secrets) {
            if (!u.token.empty()) e["token"] = u.token;
        } else {
            e["token_set"] = !u.token.empty();
        }
        if (!u.netrc_file.empty()) e["netrc_file"] = u.netrc_file;
        list.push_back(std::move(e));
    }
    return list;
}

}  // namespace

std::string render_upstreams(const std::vector<UpstreamSpec>& upstreams) {
    return upstreams.empty() ? std::string() : upstreams_json(upstreams, true).dump();
}

std::string describe_upstreams_json(const std::vector<UpstreamSpec>& upstreams) {
    return upstreams_json(upstreams, false).dump();
}

std::vector<crypto::PublicKey> upstream_keys(const UpstreamSpec& upstream) {
    std::vector<crypto::PublicKey> keys;
    for (const auto& k : upstream.keys)
        if (auto key = crypto::parse_public_key(k)) keys.push_back(std::move(*key));
    return keys;
}

// --- downloads ---------------------------------------------------------------

namespace {

upstream::Endpoint endpoint(const UpstreamSpec& u) {
    return upstream::Endpoint{u.url, u.token, u.netrc_file, std::chrono::milliseconds(u.timeout_ms)};
}

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace

namespace {

constexpr uint64_t k_piece_bytes = 1 << 20;

// Readers on other replicas (the blob store is shared) follow a download
// through pieces of its stream in the blob store: "<id>-<n>" of 1 MiB, then
// "<id>-end" saying "ok <pieces>" or "failed <why>". Published only once
// such a reader asked for them (a "<id>-wanted" blob, looked for at most
// once a second), from the stream's start. Left for garbage collection
// (unreferenced blobs go after the grace period).
class PiecePublisher {
public:
    PiecePublisher(blob::BlobStore& blobs, std::string id, int fd) : m_blobs(blobs), m_id(std::move(id)), m_fd(fd) {}

    // The readers' stream has `size` bytes now: publishes its whole pieces,
    // if wanted. A failure stops publishing, never the download: a reader
    // elsewhere that has read nothing yet falls back to the stored NAR, one
    // that has fails when the lease ends (its client tries again).
    void grew(uint64_t size) {
        if (!wanted(false)) return;
        while (!m_broken && m_published + k_piece_bytes <= size) publish(k_piece_bytes);
    }
    // The stream is complete (and verified): the rest, and the end marker.
    void finish(uint64_t size) {
        if (!wanted(true)) return;
        grew(size);
        if (m_published < size && !m_broken) publish(size - m_published);
        if (!m_broken) put(m_id + "-end", fmt::format("ok {}", m_pieces));
        m_ended = true;
    }
    // (After finish(), a failure to store the NAR does not concern readers.)
    void failed(std::string_view why) {
        if (!m_ended && wanted(true)) put(m_id + "-end", fmt::format("failed {}", why));
    }

private:
    bool wanted(bool now) {
        if (m_wanted) return true;
        auto t = std::chrono::steady_clock::now();
        if (!now && t - m_checked < std::chrono::seconds(1)) return false;
        m_checked = t;
        auto there = m_blobs.exists(m_id + "-wanted");
        m_wanted = there && *there;
        return m_wanted;
    }
    void publish(uint64_t length) {
        std::string piece(length, '\0');
        auto n = ::pread(m_fd, piece.data(), length, static_cast<off_t>(m_published));
        if (n != static_cast<ssize_t>(length)) {
            m_broken = true;
            return;
        }
        put(fmt::format("{}-{}", m_id, m_pieces), piece);
        m_published += length;
        ++m_pieces;
    }
    void put(const std::string& key, std::string_view data) {
        if (m_broken) return;
        if (auto r = m_blobs.put(key, data); !r) {
            spdlog::warn("cannot publish {} for other replicas: {}", key, r.error().message);
            m_broken = true;
        }
    }

    blob::BlobStore& m_blobs;
    std::string m_id;
    int m_fd;
    bool m_wanted = false, m_broken = false, m_ended = false;
    std::chrono::steady_clock::time_point m_checked;
    uint64_t m_published = 0, m_pieces = 0;
};

}  // namespace

// One NAR being fetched: the zstd stream for clients, in an unlinked file
// that grows; readers wait for more, for the end, or for the failure.
// `id` holds its lease and names its pieces for other replicas.
struct CacheService::Download {
    std::string id;
    std::mutex mutex;
    std::condition_variable grew;
    // While its maker asks the database whether to fetch it (outside the
    // downloads map's lock): others wanting it wait for that answer.
    bool starting = true;
    int fd = -1;
    uint64_t written = 0;
    bool done = false;
    std::optional<Error> failed;
    std::optional<PiecePublisher> pieces;  // used by the fetching thread only
    ~Download() {
        if (fd >= 0) ::close(fd);
    }
};

struct CacheService::ProxyState {
    std::mutex breaker_mutex;
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> open_until;  // breakers, by URL
    std::mutex mutex;  // held for the map only, never across database or network calls
    std::unordered_map<std::string, std::shared_ptr<Download>> downloads;  // by "<cache id>/<NarHash>"
    TaskPool pool{32};  // downloads under way (each mostly waits on the network)
    TaskPool lookups{16};  // narinfo requests for upstream_has()
};

namespace {

class SpoolSink : public Sink {
public:
    explicit SpoolSink(CacheService::Download& d) : m_d(d) {}

    // From now on, what is written waits for release(): the stream's last
    // bytes reach the readers only once the NAR is verified.
    void hold() { m_holding = true; }
    Result<void> release() {
        m_holding = false;
        return write(std::exchange(m_held, {}));
    }

    Result<void> write(std::string_view data) override {
        if (m_holding) {
            m_held.append(data);
            return ok();
        }
        uint64_t at;
        {
            std::lock_guard lock(m_d.mutex);
            at = m_d.written;
        }
        size_t done = 0;
        while (done < data.size()) {
            auto n = ::pwrite(m_d.fd, data.data() + done, data.size() - done, static_cast<off_t>(at + done));
            if (n < 0) {
                if (errno == EINTR) continue;
                return fail(ErrorCode::unavailable, fmt::format("cannot write the download spool: {}", strerror(errno)));
            }
            done += static_cast<size_t>(n);
        }
        uint64_t size;
        {
            std::lock_guard lock(m_d.mutex);
            size = m_d.written += data.size();
        }
        m_d.grew.notify_all();
        if (m_d.pieces) m_d.pieces->grew(size);
        return ok();
    }

private:
    CacheService::Download& m_d;
    bool m_holding = false;
    std::string m_held;
};

class SpoolReader : public Source {
public:
    explicit SpoolReader(std::shared_ptr<CacheService::Download> d) : m_d(std::move(d)) {}
    Result<size_t> read(char* buf, size_t len) override {
        uint64_t available;
        {
            std::unique_lock lock(m_d->mutex);
            m_d->grew.wait(lock, [&] { return m_d->written > m_offset || m_d->done || m_d->failed; });
            if (m_d->failed) return Failure{*m_d->failed};
            available = m_d->written - m_offset;
            if (available == 0) return size_t{0};  // done
        }
        auto n = ::pread(m_d->fd, buf, std::min<uint64_t>(len, available), static_cast<off_t>(m_offset));
        if (n < 0) return fail(ErrorCode::unavailable, fmt::format("cannot read the download spool: {}", strerror(errno)));
        m_offset += static_cast<uint64_t>(n);
        return static_cast<size_t>(n);
    }

private:
    std::shared_ptr<CacheService::Download> m_d;
    uint64_t m_offset = 0;
};

// Another replica is fetching the NAR: waits (at its first read) until it
// is stored, or until that replica's lease lapses and this one takes over.
class WaitingSource : public Source {
public:
    using Attempt = std::function<Result<std::optional<std::unique_ptr<Source>>>()>;
    explicit WaitingSource(Attempt attempt) : m_attempt(std::move(attempt)) {}
    Result<size_t> read(char* buf, size_t len) override {
        auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(30);
        while (!m_inner) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            TRY_ASSIGN(auto source, m_attempt());
            if (source) m_inner = std::move(*source);
            else if (std::chrono::steady_clock::now() > give_up)
                return fail(ErrorCode::unavailable, "another replica's download of this NAR did not finish in time");
        }
        return m_inner->read(buf, len);
    }

private:
    Attempt m_attempt;
    std::unique_ptr<Source> m_inner;
};

// Another replica's download, through its pieces (see PiecePublisher):
// asks for them at the first read, then reads each as it appears. If that
// replica's lease ends without an end marker before any byte was read
// here (it finished before it saw the request, or died), `fallback` takes
// over (the stored NAR, or a download of this replica's own).
class PiecesSource : public Source {
public:
    using Holder = std::function<Result<std::optional<std::string>>()>;
    PiecesSource(blob::BlobStore& blobs, std::string id, Holder holder, WaitingSource::Attempt fallback)
        : m_blobs(blobs), m_id(std::move(id)), m_holder(std::move(holder)), m_fallback(std::move(fallback)) {}

    Result<size_t> read(char* buf, size_t len) override {
        if (m_inner) return m_inner->read(buf, len);
        if (!m_asked) {
            TRY(m_blobs.put(m_id + "-wanted", "1"));
            m_asked = true;
        }
        auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(30);
        auto checked = std::chrono::steady_clock::now();
        while (m_pos == m_piece.size()) {
            if (m_count && m_next == *m_count) return size_t{0};
            StringSink sink;
            auto got = m_blobs.get(fmt::format("{}-{}", m_id, m_next), sink);
            if (got) {
                m_piece = std::move(sink.data());
                m_pos = 0;
                ++m_next;
                continue;
            }
            if (got.error().code != ErrorCode::not_found) return Failure{std::move(got).error()};
            if (m_count) return fail(ErrorCode::corrupt, fmt::format("piece {} of another replica's download is missing", m_next));
            StringSink end;
            auto ended = m_blobs.get(m_id + "-end", end);
            if (ended) {
                if (end.data().starts_with("failed "))
                    return fail(ErrorCode::unavailable, "another replica's download of this NAR failed: " + end.data().substr(7));
                m_count = std::strtoull(end.data().c_str() + 3, nullptr, 10);
                continue;
            }
            if (ended.error().code != ErrorCode::not_found) return Failure{std::move(ended).error()};
            auto now = std::chrono::steady_clock::now();
            if (now > give_up)
                return fail(ErrorCode::unavailable, "another replica's download of this NAR did not finish in time");
            if (now - checked > std::chrono::seconds(2)) {
                checked = now;
                TRY_ASSIGN(auto holder, m_holder());
                if (holder != m_id) {
                    if (m_next > 0)
                        return fail(ErrorCode::unavailable, "the replica fetching this NAR stopped; try again");
                    m_inner = std::make_unique<WaitingSource>(m_fallback);
                    return m_inner->read(buf, len);
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        size_t n = std::min(len, m_piece.size() - m_pos);
        std::memcpy(buf, m_piece.data() + m_pos, n);
        m_pos += n;
        return n;
    }

private:
    blob::BlobStore& m_blobs;
    std::string m_id;
    Holder m_holder;
    WaitingSource::Attempt m_fallback;
    bool m_asked = false;
    uint64_t m_next = 0;  // the next piece
    std::optional<uint64_t> m_count;
    std::string m_piece;
    size_t m_pos = 0;
    std::unique_ptr<Source> m_inner;
};

constexpr int64_t k_lease_seconds = 60;  // renewed every 20 s of downloading

// A new download's id: its lease holder, and its pieces' key prefix.
std::string new_download_id() {
    thread_local std::mt19937_64 random{std::random_device{}()};
    return fmt::format("spool-{:016x}", random());
}

std::string lease_name(int64_t cache_id, std::string_view nar_hash) {
    return fmt::format("proxy:{}:{}", cache_id, nar_hash);
}

}  // namespace

void CacheService::ProxyStateDeleter::operator()(ProxyState* p) const { delete p; }

CacheService::ProxyState& CacheService::proxy() {
    std::call_once(m_proxy_once, [this] { m_proxy.reset(new ProxyState); });
    return *m_proxy;
}

bool CacheService::breaker_open(const std::string& url) {
    std::lock_guard lock(proxy().breaker_mutex);
    auto it = proxy().open_until.find(url);
    return it != proxy().open_until.end() && std::chrono::steady_clock::now() < it->second;
}

void CacheService::trip_breaker(const std::string& url, const Error& why) {
    {
        std::lock_guard lock(proxy().breaker_mutex);
        proxy().open_until[url] = std::chrono::steady_clock::now() + m_config.upstream_breaker;
    }
    ++m_counters.upstream_errors;
    spdlog::warn("upstream {} failed ({}); not asked again for {} s", url, why.message,
                 std::chrono::duration_cast<std::chrono::seconds>(m_config.upstream_breaker).count());
}

void CacheService::reset_breaker(const std::string& url) {
    std::lock_guard lock(proxy().breaker_mutex);
    proxy().open_until.erase(url);
}

Result<std::string> CacheService::render_proxied(const db::CacheRow& cache, nix::NarInfo info) {
    info.url = fmt::format("nar/{}{}.nar.zst", k_upstream_nar_prefix, info.nar_hash.to_nix32());
    info.compression = "zstd";
    info.file_hash.reset();
    info.file_size.reset();
    // The cache vouches for what it verified: a client trusting only the
    // cache's key substitutes upstream paths too. The upstream's
    // signatures stay, for clients trusting the upstream's key.
    TRY_ASSIGN(auto key, signing_key(cache));
    info.sign(key, cache.store_dir);
    return info.render(cache.store_dir);
}

Result<std::optional<std::string>> CacheService::proxied_narinfo(const db::CacheRow& cache,
                                                                 std::string_view hash_part) {
    if (cache.upstreams.empty()) return std::optional<std::string>();
    TRY_ASSIGN(auto upstreams, parse_upstreams(cache.upstreams));
    TRY_ASSIGN(auto info, upstream_narinfo(cache, upstreams, hash_part));
    if (!info) return std::optional<std::string>();
    TRY_ASSIGN(auto text, render_proxied(cache, std::move(*info)));
    return std::optional<std::string>(std::move(text));
}

Result<std::optional<nix::NarInfo>> CacheService::upstream_narinfo(const db::CacheRow& cache,
                                                                   const std::vector<UpstreamSpec>& upstreams,
                                                                   std::string_view hash_part) {
    using Found = std::optional<nix::NarInfo>;
    // Known from an earlier answer (on any replica): no upstream request.
    TRY_ASSIGN(auto known, m_db.find_upstream_path(cache.id, hash_part));
    if (known && known->seen_at > unix_now() - m_config.upstream_path_ttl.count()) {
        auto info = nix::parse_nar_info(known->narinfo, cache.store_dir);
        if (info) return Found(std::move(*info));
    }
    auto miss_key = fmt::format("{}/{}", cache.id, hash_part);
    if (m_upstream_misses.get(miss_key)) return Found();
    bool definitive = true;  // every upstream answered
    for (const auto& up : upstreams) {
        if (breaker_open(up.url)) {
            definitive = false;
            continue;
        }
        auto e = endpoint(up);
        auto started = std::chrono::steady_clock::now();
        auto answer = upstream::get(e, fmt::format("{}.narinfo", hash_part), nix::k_max_narinfo_size);
        m_counters.upstream_latency.observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        if (!answer) {
            trip_breaker(up.url, answer.error());
            definitive = false;
            continue;
        }
        if (answer->status == 404 || answer->status == 410) {
            reset_breaker(up.url);
            continue;
        }
        if (answer->status != 200) {
            // 5xx, 429, or 401/403 (a wrong token): not an answer about the path.
            trip_breaker(up.url, Error{ErrorCode::unavailable, fmt::format("HTTP {}", answer->status)});
            definitive = false;
            continue;
        }
        reset_breaker(up.url);
        auto info = nix::parse_nar_info(answer->body, cache.store_dir);
        auto refuse = [&](std::string_view why) {
            ++m_counters.upstream_errors;
            spdlog::warn("upstream {} answered a narinfo for {} that is refused: {}", up.url, printable(hash_part, 40),
                         why);
        };
        if (!info) {
            refuse(info.error().message);
            continue;
        }
        if (info->path.hash_part() != hash_part) {
            refuse("it is for another path");
            continue;
        }
        if (!codec::parse_method(info->compression)) {
            refuse(fmt::format("compression '{}' is not one Larder reads", printable(info->compression, 40)));
            continue;
        }
        auto keys = upstream_keys(up);
        bool verified = std::any_of(keys.begin(), keys.end(),
                                    [&](const crypto::PublicKey& k) { return info->verify(k, cache.store_dir); });
        if (!verified) {
            refuse("no signature on it verifies with the keys configured for that upstream");
            continue;
        }
        TRY(m_db.put_upstream_path(db::UpstreamPathRow{cache.id, std::string(hash_part), info->path.base_name(),
                                                       info->nar_hash.to_string(), answer->body,
                                                       upstream::resolve(e, info->url), unix_now()}));
        ++m_counters.upstream_hits;
        return Found(std::move(*info));
    }
    ++m_counters.upstream_misses;
    // A miss every upstream confirmed is not asked of them again for
    // upstream_miss_ttl; one an unreachable upstream may not have meant is
    // remembered only as long as any absence.
    if (definitive) m_upstream_misses.put(miss_key, true, m_config.upstream_miss_ttl);
    return Found();
}

Result<std::vector<std::string>> CacheService::upstream_has(const db::CacheRow& cache,
                                                            const std::vector<std::string>& hash_parts) {
    std::vector<std::string> found;
    if (cache.upstreams.empty() || hash_parts.empty()) return found;
    // Parsed once, and nothing rendered or signed: only whether they have it.
    TRY_ASSIGN(auto upstreams, parse_upstreams(cache.upstreams));
    std::vector<std::future<Result<std::optional<nix::NarInfo>>>> answers;
    answers.reserve(hash_parts.size());
    for (const auto& h : hash_parts)
        answers.push_back(
            proxy().lookups.submit([this, &cache, &upstreams, &h] { return upstream_narinfo(cache, upstreams, h); }));
    std::optional<Error> failed;
    for (size_t i = 0; i < answers.size(); ++i) {
        auto r = answers[i].get();  // every one waited for: they refer to this frame
        if (!r) failed = r.error();
        else if (*r) found.push_back(hash_parts[i]);
    }
    if (failed) return Failure{*failed};
    return found;
}

Result<std::vector<std::string>> CacheService::references_upstream(const db::CacheRow& cache,
                                                                   const nix::NarInfo& info,
                                                                   std::vector<std::string> upstream) {
    if (cache.upstreams.empty()) return upstream;
    TRY_ASSIGN(auto missing, m_db.missing_objects(cache.id, references_in_cache(info, upstream)));
    for (const auto& base : missing) {
        auto path = nix::StorePath::parse_base_name(base);
        if (!path) continue;
        TRY_ASSIGN(auto known, m_db.find_upstream_path(cache.id, path->hash_part()));
        if (known && known->store_path == base) upstream.emplace_back(path->hash_part());
    }
    return upstream;
}

Result<std::unique_ptr<Source>> CacheService::open_upstream_nar(const db::CacheRow& cache, std::string_view file) {
    auto not_found = fail(ErrorCode::not_found, "no such NAR in this cache");
    if (cache.upstreams.empty() || !file.starts_with(k_upstream_nar_prefix) || !file.ends_with(".nar.zst"))
        return not_found;
    auto digest = file.substr(k_upstream_nar_prefix.size(), file.size() - k_upstream_nar_prefix.size() - 8);
    auto hash = crypto::parse_sha256_digest(digest);
    if (!hash) return not_found;
    std::string nar_hash = hash->to_string();
    TRY_ASSIGN(auto first, try_open_upstream_nar(cache, std::string(file), nar_hash));
    if (first) return std::move(*first);
    // Another replica holds the download: wait for it at the first read
    // (on a stream worker, not here on a handler thread).
    return std::unique_ptr<Source>(std::make_unique<WaitingSource>(
        [this, cache, name = std::string(file), nar_hash] { return try_open_upstream_nar(cache, name, nar_hash); }));
}

Result<std::optional<std::unique_ptr<Source>>> CacheService::try_open_upstream_nar(const db::CacheRow& cache,
                                                                                  const std::string& file,
                                                                                  const std::string& nar_hash) {
    using Opened = std::optional<std::unique_ptr<Source>>;
    // Stored meanwhile (here or by another replica)?
    auto stored = open_uploaded_nar(cache, file);
    if (stored) return Opened(std::move(*stored));
    if (stored.error().code != ErrorCode::not_found) return Failure{std::move(stored).error()};
    auto key = fmt::format("{}/{}", cache.id, nar_hash);
    // This process fetches a NAR once: the first to want it claims its
    // entry in the map, then asks the database (the upstream row, the
    // lease) without the map's lock, so first fetches of other NARs need
    // not wait for those calls; others wanting this one wait for the answer.
    std::shared_ptr<Download> d;
    for (;;) {
        std::unique_lock lock(proxy().mutex);
        auto [it, claimed] = proxy().downloads.try_emplace(key);
        if (claimed) {
            d = it->second = std::make_shared<Download>();
            break;
        }
        auto other = it->second;
        lock.unlock();
        std::unique_lock dl(other->mutex);
        other->grew.wait(dl, [&] { return !other->starting; });
        if (other->fd >= 0) return Opened(std::make_unique<SpoolReader>(std::move(other)));
        // Given up (not found, or another replica fetches it): ask again.
    }
    // Until the fetch is under way, every way out gives the claim up.
    bool started = false;
    auto give_up = [&] {
        if (started) return;
        {
            std::lock_guard lock(proxy().mutex);
            proxy().downloads.erase(key);
        }
        {
            std::lock_guard dl(d->mutex);
            d->starting = false;
        }
        d->grew.notify_all();
    };
    struct OnExit {
        decltype(give_up)& f;
        ~OnExit() { f(); }
    } on_exit{give_up};
    TRY_ASSIGN(auto row, m_db.find_upstream_nar(cache.id, nar_hash));
    if (!row) return fail(ErrorCode::not_found, "no such NAR in this cache");
    TRY_ASSIGN(auto upstreams, parse_upstreams(cache.upstreams));
    // The upstream whose narinfo it was (its credentials and deadline).
    const UpstreamSpec* source = nullptr;
    for (const auto& u : upstreams)
        if (row->nar_url.starts_with(u.url + "/") || row->nar_url == u.url) source = &u;
    if (!source) return fail(ErrorCode::not_found, "the upstream this path came from is no longer configured");
    int64_t t = unix_now();
    auto lease = lease_name(cache.id, nar_hash);
    auto id = new_download_id();
    TRY_ASSIGN(bool mine, m_db.take_lease(lease, id, t, t + k_lease_seconds));
    if (!mine) {
        // Another replica is fetching it: follow its pieces.
        TRY_ASSIGN(auto holder, m_db.lease_holder(lease, t));
        if (!holder) return Opened();  // just ended: the next attempt sees why
        return Opened(std::make_unique<PiecesSource>(
            m_blobs, *holder, [this, lease] { return m_db.lease_holder(lease, unix_now()); },
            [this, cache, file, nar_hash] { return try_open_upstream_nar(cache, file, nar_hash); }));
    }
    std::error_code ec;
    std::filesystem::create_directories(m_config.spool_dir, ec);
    int fd = ::open(m_config.spool_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        int error = errno;
        (void)m_db.drop_lease(lease, id);
        return fail(ErrorCode::unavailable,
                    fmt::format("cannot make a spool file in {}: {}", m_config.spool_dir, strerror(error)));
    }
    {
        std::lock_guard dl(d->mutex);
        d->id = id;
        d->fd = fd;
        d->pieces.emplace(m_blobs, id, fd);
        d->starting = false;
    }
    started = true;
    d->grew.notify_all();
    ++m_counters.upstream_nar_fetches;
    proxy().pool.submit([this, cache, row = *row, up = *source, d, key, file] {
        auto r = fetch_upstream_nar(cache, up, row, file, *d);
        if (!r) {
            ++m_counters.upstream_nar_failures;
            spdlog::warn("fetching {} from upstream {} failed: {}", row.store_path, up.url, r.error().message);
            d->pieces->failed(r.error().message);
        }
        {
            std::lock_guard dl(d->mutex);
            if (!d->done && !r) d->failed = r.error();  // (done: the readers got it all, verified)
            d->done = true;
        }
        d->grew.notify_all();
        (void)m_db.drop_lease(lease_name(cache.id, row.nar_hash), d->id);
        std::lock_guard pl(proxy().mutex);
        proxy().downloads.erase(key);
    });
    return Opened(std::make_unique<SpoolReader>(d));
}

Result<void> CacheService::fetch_upstream_nar(const db::CacheRow& cache, const UpstreamSpec& up,
                                              const db::UpstreamPathRow& row, const std::string& file,
                                              Download& d) {
    TRY_ASSIGN(auto info, nix::parse_nar_info(row.narinfo, cache.store_dir));
    TRY_ASSIGN(auto method, codec::parse_method(info.compression));
    if (info.nar_size > m_config.max_nar_size)
        return fail(ErrorCode::too_large, fmt::format("NarSize {} is over this server's limit", info.nar_size));
    note_upload();  // deferred ingest waits for a pause in fetches too
    NarUpload::Options o;
    o.dedup_within = dedup_scope(cache);
    o.pool = &m_upload_pool;
    o.shared_budget = &m_upload_budget;
    // Where the store takes a stream (local disk), the readers' zstd stream
    // is also what is stored, whole, and cut into chunks later at idle
    // priority (deferred ingest): chunking and compressing at level 3 would
    // compete with the very client waiting for this NAR. Else (S3) the plain
    // NAR is cut into chunks as it comes.
    if (m_config.defer_ingest) {
        auto key = new_blob_key(info.nar_hash.to_base16());
        TRY_ASSIGN(o.whole, m_blobs.create(key));
        if (o.whole) o.whole_key = std::move(key);
    }
    bool whole = o.whole != nullptr;
    o.received = whole ? codec::Method::zstd : codec::Method::none;
    NarUpload upload(m_config, m_db, m_blobs, std::move(o));
    // whole: plain NAR -> zstd-1 -> { upload, spool }
    // else:  plain NAR -> { upload, zstd-1 -> spool }
    SpoolSink spool(d);
    TeeSink compressed(upload, spool, false);
    TRY_ASSIGN(auto client, codec::make_compressor(codec::Method::zstd, whole ? static_cast<Sink&>(compressed) : spool, 1));
    TeeSink plain(upload, *client, false);  // finished below, after verification
    CountingSink nar_bytes(whole ? client.get() : &plain);  // a hostile upstream sends no more than NarSize
    auto decompress = codec::make_decompressor(method, nar_bytes);
    auto e = endpoint(up);
    auto asked = std::chrono::steady_clock::now(), renewed = asked;
    bool first = true;
    TRY_ASSIGN(long status, upstream::stream(e, row.nar_url, [&](std::string_view data) -> Result<void> {
        if (first) {
            first = false;
            m_counters.upstream_nar_latency.observe(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count());
        }
        m_counters.upstream_bytes += data.size();
        if (std::chrono::steady_clock::now() - renewed > std::chrono::seconds(20)) {
            renewed = std::chrono::steady_clock::now();
            int64_t t = unix_now();
            (void)m_db.take_lease(lease_name(cache.id, row.nar_hash), d.id, t, t + k_lease_seconds);
        }
        TRY(decompress->write(data));
        if (nar_bytes.count() > info.nar_size)
            return fail(ErrorCode::corrupt, fmt::format("upstream {} sent more than the NarSize ({}) of {}", up.url,
                                                        info.nar_size, row.store_path));
        return ok();
    }));
    if (status != 200)
        return fail(ErrorCode::unavailable, fmt::format("upstream {} answered HTTP {} for the NAR", up.url, status));
    // The zstd stream's last bytes reach the readers only after NarHash and
    // NarSize match the signed narinfo (whole, they complete the stored file
    // first: the decompressor's finish finishes the zstd stream).
    spool.hold();
    TRY(decompress->finish());
    if (!whole) TRY(client->finish());
    TRY_ASSIGN(auto arrived, upload.end_input());
    if (arrived.first != info.nar_hash || arrived.second != info.nar_size)
        return fail(ErrorCode::corrupt,
                    fmt::format("upstream {} sent a NAR for {} with NarHash {} and NarSize {}, but its signed "
                                "narinfo says {} and {}: not stored",
                                up.url, row.store_path, arrived.first.to_string(), arrived.second,
                                info.nar_hash.to_string(), info.nar_size));
    // Verified: the readers' stream ends now; they need not wait for the
    // chunks to be compressed, durable and recorded (a failure there only
    // means the next request fetches it again).
    TRY(spool.release());
    uint64_t size;
    {
        std::lock_guard lock(d.mutex);
        d.done = true;
        size = d.written;
    }
    d.grew.notify_all();
    d.pieces->finish(size);
    TRY_ASSIGN(auto nar, upload.finish_chunks());
    TRY_ASSIGN(auto stored, m_db.insert_nar(nar));
    // Queued before any path uses it (as record_upload does).
    if (whole) TRY(m_db.defer_nar(db::MetadataStore::DeferredNar{stored.id, cache.id}));
    // Its references need not be here: the upstream has them (it signed
    // this path's narinfo, references included).
    TRY_ASSIGN(auto missing, m_db.missing_objects(cache.id, references_in_cache(info, {})));
    std::vector<std::string> left_upstream;
    for (const auto& base : missing) left_upstream.emplace_back(base.substr(0, nix::k_hash_part_length));
    TRY(commit_object(cache, info, stored, left_upstream, true));
    TRY(m_db.record_upload(cache.id, fmt::format("nar/{}", file), stored.id));
    note_upload();
    if (whole) wake_ingest();
    return ok();
}

}  // namespace larder::cache
