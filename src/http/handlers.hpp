// Request handling without sockets: the Nix binary cache protocol per cache,
// and the JSON API. The session (session.cpp) reads headers, asks prepare()
// what the request needs, reads the body accordingly and calls handle().
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cache/access.hpp"
#include "cache/service.hpp"
#include "http/message.hpp"
#include "http/metrics.hpp"
#include "http/router.hpp"

namespace larder::http {

struct HandlerConfig {
    // The URL clients reach this server at, e.g. "https://cache.example.org";
    // empty: taken from each request's Host header.
    std::string public_url;
    size_t max_small_body = 64 << 20;  // .ls listings, logs, realisations
    uint64_t max_nar_size = uint64_t{64} << 30;
    // /metrics is served on its own address (metrics_listen), not here.
    bool metrics_elsewhere = false;
};

// Per-route body limits below max_small_body.
inline constexpr size_t k_max_api_body = 1 << 20;
inline constexpr size_t k_max_missing_body = 16 << 20;  // 100,000 store paths
inline constexpr size_t k_max_missing_paths = 100000;

enum class BodyKind { none, small, nar_upload };

struct Prepared {
    Route route;
    std::optional<db::CacheRow> cache;
    cache::Principal principal;
    BodyKind body = BodyKind::none;
    uint64_t body_limit = 0;
    std::string authorization;  // rechecked before an upload commits
};

class Handler {
public:
    Handler(cache::CacheService& service, cache::Access& access, HandlerConfig config)
        : m_service(service), m_access(access), m_config(std::move(config)) {}

    const HandlerConfig& config() const { return m_config; }
    Metrics& metrics() { return m_metrics; }

    // The hot anonymous reads of public caches (narinfo, nix-cache-info)
    // when memory alone can answer them, exactly as handle() would; nullopt
    // otherwise. Never waits, so it may run on an I/O thread.
    std::optional<Response> answer_from_memory(const Request& request);
    // Routing, authentication and permission, from the headers alone.
    Result<Prepared> prepare(const Request& request);
    // Everything but a NAR upload's body.
    Response handle(const Prepared& prepared, Request& request);

    // A NAR upload's body goes to the returned Sink; its finish() verifies
    // and commits.
    Result<std::unique_ptr<Sink>> begin_nar_upload(const Prepared& prepared, const Request& request);

private:
    Result<Response> handle_cache(const Prepared& p, Request& request);
    Result<Response> handle_nar(const Prepared& p, const Request& request);
    Result<Response> handle_file(const Prepared& p, Request& request, std::string_view kind,
                                 std::string_view content_type);
    Result<Response> handle_api(const Prepared& p, Request& request);
    Result<Response> api_caches(const Prepared& p, Request& request, std::string_view rest);
    Result<Response> api_tokens(const Prepared& p, Request& request, std::string_view rest);
    Result<void> require(const Prepared& p, std::string_view cache, cache::Permission permission);
    // Who may send this API request a body at all: decided from the path
    // and the token, before a byte of the body is read.
    Result<void> admit_api_write(Prepared& p, const Request& request);
    // The uploader may still push to the cache (token not revoked meanwhile).
    cache::CommitCheck still_allowed(const Prepared& p);
    std::string cache_url(const Request& request, std::string_view cache) const;

    // `per_cache`: also paths and bytes per cache (names every cache).
    std::string render_metrics(bool per_cache);
    Result<Response> landing_page(const Request& request);

    cache::CacheService& m_service;
    cache::Access& m_access;
    HandlerConfig m_config;
    Metrics m_metrics;
    std::mutex m_sizes_mutex;  // per-cache series, recomputed at most every 30 s
    std::string m_sizes_text;
    std::chrono::steady_clock::time_point m_sizes_at;
};

}  // namespace larder::http
