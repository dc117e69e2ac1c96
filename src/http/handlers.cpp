#include "http/handlers.hpp"

#include <chrono>

#include <ctime>

#include <fmt/core.h>

#include "nix/nar_info.hpp"
#include "util/strings.hpp"

namespace larder::http {

namespace {

using cache::Permission;

int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

const char* permission_name(Permission p) {
    switch (p) {
        case Permission::pull: return "pull";
        case Permission::push: return "push";
        case Permission::remove: return "delete";
        case Permission::admin: return "admin";
    }
    return "?";
}

Response ok_text(std::string body, std::string content_type) {
    auto r = text_response(200, std::move(body));
    r.content_type = std::move(content_type);
    return r;
}

struct ByteRange {
    uint64_t offset;
    uint64_t length;
    bool partial;
};

// One "bytes=" range; anything else (several ranges) serves the whole file.
Result<ByteRange> parse_range(std::string_view header, uint64_t total) {
    ByteRange whole{0, total, false};
    if (header.empty() || !header.starts_with("bytes=") || header.find(',') != std::string_view::npos)
        return whole;
    auto spec = header.substr(6);
    auto dash = spec.find('-');
    if (dash == std::string_view::npos) return whole;
    auto first = parse_u64(spec.substr(0, dash));
    auto last = parse_u64(spec.substr(dash + 1));
    auto unsatisfiable = fail(ErrorCode::invalid_input, "range not satisfiable");
    if (!first) {  // suffix: the last N bytes
        if (!last || *last == 0) return unsatisfiable;
        uint64_t n = std::min(*last, total);
        return ByteRange{total - n, n, true};
    }
    if (*first >= total) return unsatisfiable;
    uint64_t end = last && *last < total ? *last + 1 : total;  // no wrap at UINT64_MAX
    if (end <= *first) return unsatisfiable;
    return ByteRange{*first, end - *first, true};
}

}  // namespace

std::string Handler::cache_url(const Request& request, std::string_view cache) const {
    if (!m_config.public_url.empty()) return fmt::format("{}/{}", m_config.public_url, cache);
    return fmt::format("http://{}/{}", request.host, cache);
}

Result<void> Handler::require(const Prepared& p, std::string_view cache, Permission permission) {
    if (p.principal.scope.grants(cache, permission) && p.principal.token) return ok();
    if (!p.principal.token)
        return fail(ErrorCode::unauthorized, "authentication required: send a token (Bearer, or as the "
                                             "password of Basic auth / a netrc entry)");
    return fail(ErrorCode::forbidden,
                fmt::format("this token does not grant {} on cache '{}'", permission_name(permission),
                            printable(cache, 64)));
}

std::optional<Response> Handler::answer_from_memory(const Request& request) {
    if (!request.authorization.empty() || (request.method != Method::get && request.method != Method::head) ||
        request.ops_listener)
        return std::nullopt;
    const auto& r = request.route();
    if (!r || (r->kind != RouteKind::narinfo && r->kind != RouteKind::cache_info)) return std::nullopt;
    auto cache = m_service.remembered_cache(r->cache);
    // Private, absent or not remembered: prepare() decides (and says the same for each).
    if (!cache || !*cache || !(*cache)->is_public) return std::nullopt;
    if (r->kind == RouteKind::cache_info) return ok_text(m_service.cache_info(**cache), "text/x-nix-cache-info");
    auto text = m_service.remembered_narinfo(**cache, r->name);
    if (!text) return std::nullopt;
    if (!*text) return error_response(Error{ErrorCode::not_found, "no such path in this cache"});
    return ok_text(std::move(**text), "text/x-nix-narinfo");
}

Result<Prepared> Handler::prepare(const Request& request) {
    TRY_ASSIGN(auto r, request.route());
    Prepared p{std::move(r), std::nullopt, {}, BodyKind::none, 0, request.authorization};
    // The metrics address answers probes and scrapes only; with it, the
    // main address (perhaps public) has no /metrics.
    bool probe = p.route.kind == RouteKind::health || p.route.kind == RouteKind::ready;
    if (request.ops_listener && !probe && p.route.kind != RouteKind::metrics)
        return fail(ErrorCode::not_found, "this address serves only /metrics, /healthz and /readyz");
    if (!request.ops_listener && m_config.metrics_elsewhere && p.route.kind == RouteKind::metrics)
        return fail(ErrorCode::not_found, "metrics are served on this server's metrics address (metrics_listen)");
    // Probes and scrapers carry no token; these reveal no cache's content.
    if (p.route.kind == RouteKind::health || p.route.kind == RouteKind::ready || p.route.kind == RouteKind::metrics ||
        p.route.kind == RouteKind::landing)
        return p;
    TRY_ASSIGN(p.principal, m_access.authenticate(request.authorization, now()));
    bool writes = request.method == Method::put || request.method == Method::post ||
                  request.method == Method::patch || request.method == Method::del;
    if (p.route.kind == RouteKind::api) {
        if (writes) TRY(admit_api_write(p, request));
        return p;
    }
    Permission needed;
    if (request.method == Method::get || request.method == Method::head) needed = Permission::pull;
    else if (request.method == Method::put) needed = Permission::push;
    else if (request.method == Method::del && p.route.kind == RouteKind::narinfo) needed = Permission::remove;
    else return fail(ErrorCode::invalid_input, "method not allowed here (use GET, HEAD, PUT, or DELETE on a narinfo)");

    auto cache = m_service.cache(p.route.cache);
    if (!cache && cache.error().code != ErrorCode::not_found) return Failure{std::move(cache).error()};
    bool granted = p.principal.token && p.principal.scope.grants(p.route.cache, needed);
    bool public_read = cache && cache->is_public && needed == Permission::pull;
    // Without the right token a private cache, existing or not, answers the
    // same: nothing reveals whether it exists.
    if (!granted && !public_read) TRY(require(p, p.route.cache, needed));
    if (!cache) return fail(ErrorCode::not_found, fmt::format("no cache named '{}'", printable(p.route.cache, 64)));
    p.cache = std::move(*cache);
    if (p.route.kind == RouteKind::push && needed != Permission::push)
        return fail(ErrorCode::invalid_input, "method not allowed here (use PUT)");
    if (needed != Permission::push) return p;
    switch (p.route.kind) {
        case RouteKind::nar:
        case RouteKind::push:
            p.body = BodyKind::nar_upload;
            p.body_limit = m_config.max_nar_size;
            break;
        case RouteKind::narinfo:
            p.body = BodyKind::small;
            p.body_limit = nix::k_max_narinfo_size;
            break;
        default:
            p.body = BodyKind::small;
            p.body_limit = m_config.max_small_body;
    }
    return p;
}

Result<void> Handler::admit_api_write(Prepared& p, const Request& request) {
    p.body = BodyKind::small;
    p.body_limit = k_max_api_body;
    auto path = std::string_view(p.route.name);
    auto parts = split(path, '/');
    bool is_cache = parts.size() >= 2 && parts[0] == "caches";
    if (is_cache && parts.size() == 3 && parts[2] == "missing" && request.method == Method::post) {
        // Pull suffices, and anyone may ask a public cache.
        p.body_limit = k_max_missing_body;
        auto row = m_service.cache(parts[1]);
        if (!row && row.error().code != ErrorCode::not_found) return Failure{std::move(row).error()};
        if (row && row->is_public) return ok();
        return require(p, parts[1], Permission::pull);
    }
    if (is_cache) return require(p, parts[1], Permission::admin);
    // Creating caches and tokens: an admin of some caches; which ones is
    // checked against the body's names.
    if (!p.principal.token)
        return fail(ErrorCode::unauthorized, "authentication required: send an admin token");
    if (!p.principal.scope.admin) return fail(ErrorCode::forbidden, "this token is not an admin token");
    return ok();
}

cache::CommitCheck Handler::still_allowed(const Prepared& p) {
    return [this, authorization = p.authorization, cache = p.cache->name]() -> Result<void> {
        auto principal = m_access.authenticate(authorization, now());
        if (!principal) return fail(ErrorCode::forbidden, "the token was revoked or expired during the upload: " +
                                                              principal.error().message);
        if (!principal->token || !principal->scope.grants(cache, Permission::push))
            return fail(ErrorCode::forbidden, "the token no longer grants push on this cache");
        return ok();
    };
}

Response Handler::handle(const Prepared& p, Request& request) {
    Result<Response> r = fail(ErrorCode::internal, "unhandled");
    if (p.route.kind == RouteKind::health) {
        r = ok_text("ok\n", "text/plain; charset=utf-8");
    } else if (p.route.kind == RouteKind::ready) {
        auto ready = m_service.check_ready(std::chrono::seconds(2));
        r = ready ? ok_text("ready\n", "text/plain; charset=utf-8")
                  : Result<Response>(text_response(503, "not ready: " + ready.error().message + "\n"));
    } else if (p.route.kind == RouteKind::landing) {
        r = landing_page(request);
    } else if (p.route.kind == RouteKind::metrics) {
        // Per-cache series name caches: only for a scrape with an admin token.
        auto principal = request.authorization.empty() ? Result<cache::Principal>(cache::Principal{})
                                                       : m_access.authenticate(request.authorization, now());
        bool admin = principal && principal->token && principal->scope.grants("*", Permission::admin);
        r = ok_text(render_metrics(admin), "text/plain; version=0.0.4; charset=utf-8");
    } else if (p.route.kind == RouteKind::api) r = handle_api(p, request);
    else r = handle_cache(p, request);
    if (!r) return error_response(r.error());
    return std::move(*r);
}

namespace {

std::string html_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

}  // namespace

// What cache.nixos.org's front page tells a visitor, for each public cache:
// its URL, key and priority, and the nix.conf lines that use it. Private
// caches are not mentioned. Plain HTML with inline style: no script, no
// other request (the Content-Security-Policy says so).
Result<Response> Handler::landing_page(const Request& request) {
    if (request.method != Method::get && request.method != Method::head)
        return fail(ErrorCode::invalid_input, "method not allowed here (use GET)");
    TRY_ASSIGN(auto caches, m_service.list_caches());
    std::string body;
    for (const auto& c : caches) {
        if (!c.is_public) continue;
        TRY_ASSIGN(auto keys, m_service.public_keys(c));
        auto url = html_escape(cache_url(request, c.name));
        auto key = keys.empty() ? std::string() : html_escape(keys.front().to_string());
        body += fmt::format(
            "<section id=\"cache-{0}\">\n<h2>{0}</h2>\n<table>\n"
            "<tr><th>URL</th><td><code class=\"url\">{1}</code></td></tr>\n"
            "<tr><th>Public key</th><td><code class=\"key\">{2}</code></td></tr>\n"
            "<tr><th>Priority</th><td>{3}</td></tr>\n</table>\n"
            "<p>In <code>/etc/nix/nix.conf</code> (then restart <code>nix-daemon</code>):</p>\n"
            "<pre class=\"nix-conf\">extra-substituters = {1}\nextra-trusted-public-keys = {2}</pre>\n</section>\n",
            html_escape(c.name), url, key, c.priority);
    }
    if (body.empty()) body = "<p>This server has no public caches.</p>\n";
    auto page = fmt::format(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>Larder: Nix binary caches</title>\n<style>\n"
        "body {{ font-family: sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; "
        "color: #222; }}\n"
        "pre, code {{ font-family: monospace; }}\n"
        "pre {{ background: #f3f3f3; padding: .8rem; overflow-x: auto; }}\n"
        "th {{ text-align: left; padding-right: 1rem; font-weight: normal; color: #555; }}\n"
        "</style>\n</head>\n<body>\n<h1>Nix binary caches</h1>\n"
        "<p>This server is a <a href=\"https://nixos.org/manual/nix/stable/\">Nix</a> binary cache (Larder). "
        "Each public cache below can be used by adding its two lines to <code>nix.conf</code>. Private caches "
        "need a token: <code>larder login</code> and <code>larder use</code> set them up.</p>\n{}"
        "</body>\n</html>\n",
        body);
    Response r = ok_text(std::move(page), "text/html; charset=utf-8");
    r.headers.emplace_back("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
    return r;
}

std::string Handler::render_metrics(bool per_cache) {
    auto out = m_metrics.render();
    const auto& c = m_service.counters();
    auto counter = [&](std::string_view name, std::string_view help, uint64_t value) {
        render_counter(out, name, help, value);
    };
    auto gauge = [&](std::string_view name, std::string_view help, int64_t value) {
        render_gauge(out, name, help, value);
    };
    counter("larder_uploads_total", "NARs uploaded and committed (plain PUT or larder push).", c.uploads);
    counter("larder_chunks_stored_total", "New chunks uploads stored.", c.chunks_stored);
    counter("larder_chunks_deduplicated_total", "Chunks uploads found stored already.", c.chunks_deduplicated);
    counter("larder_ingest_nars_total", "Plain uploads stored whole and later cut into chunks.", c.nars_ingested);
    counter("larder_ingest_failures_total", "Deferred NARs that could not be cut (retried later).",
            c.ingest_failures);
    counter("larder_gc_runs_total", "Garbage collections that finished without errors.", c.gc_runs);
    counter("larder_gc_failures_total", "Garbage collections that failed or reported errors.", c.gc_failures);
    gauge("larder_gc_last_success_timestamp_seconds", "When a garbage collection last finished without errors.",
          c.gc_last_success);
    gauge("larder_upload_queue", "Upload chunks waiting for a compression thread.",
          static_cast<int64_t>(m_service.upload_queue()));
    auto storage = m_service.storage_counters();
    counter("larder_storage_requests_total", "Requests to remote storage (S3); 0 on local disk.", storage.requests);
    counter("larder_storage_failures_total",
            "Remote storage requests that failed (transport, 5xx, throttled, refused; not 404).", storage.failures);
    counter("larder_storage_retries_total", "Remote storage requests repeated after a transient failure.",
            storage.retries);
    counter("larder_read_cache_hits_total", "Stored blobs served from the local read cache ([s3] cache_dir).",
            storage.cache_hits);
    counter("larder_read_cache_misses_total", "Stored blobs fetched from S3 and then kept in the read cache.",
            storage.cache_misses);
    gauge("larder_read_cache_bytes", "Bytes the local read cache holds.", static_cast<int64_t>(storage.cache_bytes));
    for (auto [stage, h] : {std::pair{"receive", &c.upload_stages.receive}, {"verify", &c.upload_stages.verify},
                             {"sync", &c.upload_stages.sync}, {"record", &c.upload_stages.record}}) {
        if (std::string_view(stage) == "receive")
            out += "# HELP larder_upload_stage_seconds Time committed uploads spent in each stage: receive (the "
                   "body arriving), verify (decompressing, hashing, checking, storing chunks after the last byte), "
                   "sync (making blobs durable), record (database rows).\n"
                   "# TYPE larder_upload_stage_seconds histogram\n";
        h->render(out, "larder_upload_stage_seconds", fmt::format("stage=\"{}\"", stage));
    }
    counter("larder_upstream_narinfo_hits_total", "Narinfo misses an upstream answered (signature verified).",
            c.upstream_hits);
    counter("larder_upstream_narinfo_misses_total", "Narinfo misses no upstream had.", c.upstream_misses);
    counter("larder_upstream_errors_total",
            "Upstream failures: unreachable, timed out, 5xx, refused credentials, or a narinfo refused.",
            c.upstream_errors);
    counter("larder_upstream_nar_fetches_total", "NARs fetched from upstreams (each once, however many readers).",
            c.upstream_nar_fetches);
    counter("larder_upstream_nar_failures_total", "Upstream NAR fetches that failed (transport or verification).",
            c.upstream_nar_failures);
    counter("larder_upstream_received_bytes_total", "Bytes received from upstreams for NARs.", c.upstream_bytes);
    out += "# HELP larder_upstream_narinfo_seconds Time upstreams took to answer a narinfo request.\n"
           "# TYPE larder_upstream_narinfo_seconds histogram\n";
    c.upstream_latency.render(out, "larder_upstream_narinfo_seconds", "");
    out += "# HELP larder_upstream_nar_first_byte_seconds Time from asking an upstream for a NAR to its first byte.\n"
           "# TYPE larder_upstream_nar_first_byte_seconds histogram\n";
    c.upstream_nar_latency.render(out, "larder_upstream_nar_first_byte_seconds", "");
    auto pool = m_service.database_pool();
    gauge("larder_db_connections", "Database connections open (idle or in use).", pool.open);
    gauge("larder_db_connections_in_use", "Database connections running a query or transaction.", pool.in_use);
    counter("larder_db_connections_opened_total", "Database connections opened since startup.",
            static_cast<uint64_t>(pool.opened));
    counter("larder_db_connect_failures_total", "Attempts to open a database connection that failed.",
            static_cast<uint64_t>(pool.connect_failures));
    if (!per_cache) return out;
    // A query over every object: at most once per 30 s, whatever the scrape rate.
    std::lock_guard lock(m_sizes_mutex);
    auto at = std::chrono::steady_clock::now();
    if (m_sizes_text.empty() || at - m_sizes_at > std::chrono::seconds(30)) {
        auto sizes = m_service.cache_sizes();
        if (!sizes) return out;  // a scrape still gets the rest
        std::string paths = "# HELP larder_cache_paths Store paths in the cache.\n# TYPE larder_cache_paths gauge\n";
        std::string bytes = "# HELP larder_cache_bytes Bytes of the cache's NARs as served.\n"
                            "# TYPE larder_cache_bytes gauge\n";
        for (const auto& [name, size] : *sizes) {
            paths += fmt::format("larder_cache_paths{{cache=\"{}\"}} {}\n", name, size.paths);
            bytes += fmt::format("larder_cache_bytes{{cache=\"{}\"}} {}\n", name, size.bytes);
        }
        m_sizes_text = paths + bytes;
        m_sizes_at = at;
    }
    return out + m_sizes_text;
}

Result<Response> Handler::handle_cache(const Prepared& p, Request& request) {
    const auto& cache = *p.cache;
    bool put = request.method == Method::put;
    switch (p.route.kind) {
        case RouteKind::cache_info:
            // Nix PUTs nix-cache-info only when it cannot read it; ours is fixed.
            if (put) return text_response(200, "");
            return ok_text(m_service.cache_info(cache), "text/x-nix-cache-info");
        case RouteKind::narinfo:
            if (request.method == Method::del) {
                TRY(m_service.delete_path(cache, p.route.name));
                return text_response(200, "");
            }
            if (put) {
                TRY(m_service.add_narinfo(cache, p.route.name, request.body));
                return text_response(200, "");
            } else {
                TRY_ASSIGN(auto text, m_service.narinfo(cache, p.route.name));
                return ok_text(std::move(text), "text/x-nix-narinfo");
            }
        case RouteKind::listing:
            if (!put) TRY(m_service.narinfo(cache, p.route.name));  // only for visible paths
            return handle_file(p, request, "ls", "application/json");
        case RouteKind::nar: return handle_nar(p, request);
        case RouteKind::log: return handle_file(p, request, "log", "text/plain; charset=utf-8");
        case RouteKind::realisation: return handle_file(p, request, "realisation", "application/json");
        default: return fail(ErrorCode::not_found, "not found");
    }
}

Result<Response> Handler::handle_file(const Prepared& p, Request& request, std::string_view kind,
                                      std::string_view content_type) {
    if (request.method == Method::put) {
        TRY(m_service.put_file(*p.cache, kind, p.route.name, request.body, request.content_encoding));
        return text_response(200, "");
    }
    TRY_ASSIGN(auto file, m_service.get_file(*p.cache, kind, p.route.name));
    auto r = ok_text(std::move(file.data), std::string(content_type));
    if (!file.content_encoding.empty()) r.headers.emplace_back("Content-Encoding", file.content_encoding);
    return r;
}

Result<Response> Handler::handle_nar(const Prepared& p, const Request& request) {
    auto nar = m_service.nar_to_download(*p.cache, p.route.name);
    if (!nar && nar.error().code == ErrorCode::not_found) {
        // HEAD before upload names the client's own file; say if it came.
        if (request.method == Method::head) {
            TRY_ASSIGN(bool uploaded, m_service.has_nar_file(*p.cache, p.route.name));
            if (uploaded) return text_response(200, "");
        }
        auto stream = m_service.open_uploaded_nar(*p.cache, p.route.name);
        // A path an upstream has: fetched now (streamed as it arrives).
        if (!stream && stream.error().code == ErrorCode::not_found && request.method == Method::get)
            stream = m_service.open_upstream_nar(*p.cache, p.route.name);
        if (!stream) return Failure{std::move(stream).error()};
        Response r;
        r.content_type = "application/x-nix-nar";
        r.stream = std::move(*stream);
        return r;
    }
    if (!nar) return Failure{std::move(nar).error()};
    const db::NarRow& row = **nar;
    auto range = parse_range(request.range, row.file_size);
    if (!range) {
        auto r = text_response(416, "range not satisfiable\n");
        r.headers.emplace_back("Content-Range", fmt::format("bytes */{}", row.file_size));
        return r;
    }
    Response r;
    r.status = range->partial ? 206 : 200;
    r.content_type = "application/x-nix-nar";
    r.headers.emplace_back("Accept-Ranges", "bytes");
    if (range->partial)
        r.headers.emplace_back("Content-Range", fmt::format("bytes {}-{}/{}", range->offset,
                                                            range->offset + range->length - 1, row.file_size));
    r.stream = m_service.open_nar(row, range->offset, range->length);
    r.stream_length = range->length;
    return r;
}

Result<std::unique_ptr<Sink>> Handler::begin_nar_upload(const Prepared& p, const Request& request) {
    if (p.route.kind == RouteKind::push)
        return m_service.receive_push(*p.cache, p.route.name, request.push_frames, still_allowed(p));
    return m_service.receive_upload(*p.cache, p.route.name, still_allowed(p), request.content_length);
}

}  // namespace larder::http
