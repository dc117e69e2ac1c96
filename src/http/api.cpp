// The JSON API under /api/v1/: caches and tokens, for the larder CLI.
#include <ctime>

#include <unordered_set>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cache/upstream.hpp"
#include "http/handlers.hpp"
#include "nix/store_path.hpp"
#include "util/strings.hpp"

namespace larder::http {

namespace {

using json = nlohmann::json;
using cache::Permission;

// Nesting and value count, checked in one pass before a DOM is built: a
// body of "[[[[..." or of a million zeros costs nothing to refuse.
Result<void> check_json_shape(std::string_view text, size_t max_depth, size_t max_values) {
    size_t depth = 0, values = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') in_string = true;
        else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return fail(ErrorCode::invalid_input, fmt::format("the JSON body nests deeper than {} levels", max_depth));
        } else if (c == ']' || c == '}') {
            if (depth > 0) --depth;
        } else if (c == ',' && ++values > max_values) {
            return fail(ErrorCode::too_large, fmt::format("the JSON body has more than {} values", max_values));
        }
    }
    return ok();
}

Result<json> parse_body(const Request& request) {
    if (request.body.empty()) return json::object();
    TRY(check_json_shape(request.body, 8, k_max_missing_paths + 64));
    auto j = json::parse(request.body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return fail(ErrorCode::invalid_input, "the request body is not a JSON object");
    return j;
}

template <class T>
Result<std::optional<T>> field(const json& j, const char* name) {
    if (!j.contains(name) || j[name].is_null()) return std::optional<T>();
    try {
        return std::optional<T>(j[name].get<T>());
    } catch (const json::exception&) {
        return fail(ErrorCode::invalid_input, fmt::format("field '{}' has the wrong type", name));
    }
}

// A cache's upstreams as the API shows them: tokens never, only whether set.
json upstreams_of(const db::CacheRow& c) {
    auto list = cache::parse_upstreams(c.upstreams);
    return list ? json::parse(cache::describe_upstreams_json(*list)) : json::array();
}

Result<cache::CacheSettings> settings_from(const json& j) {
    cache::CacheSettings s;
    TRY_ASSIGN(s.is_public, field<bool>(j, "public"));
    if (j.contains("priority") && !j["priority"].is_null() &&
        (!j["priority"].is_number_integer() || j["priority"].get<int64_t>() < 0 || j["priority"].get<int64_t>() > 10000))
        return fail(ErrorCode::invalid_input, "field 'priority' must be an integer from 0 to 10000");
    TRY_ASSIGN(s.priority, field<int>(j, "priority"));
    TRY_ASSIGN(s.upstream_keys, field<std::vector<std::string>>(j, "upstream_keys"));
    // Pull-through: the whole list, in order ([] removes them).
    if (j.contains("upstreams")) {
        if (!j["upstreams"].is_array()) return fail(ErrorCode::invalid_input, "field 'upstreams' must be a list");
        TRY_ASSIGN(s.upstreams, cache::parse_upstreams(j["upstreams"].dump()));
    }
    // Seconds and bytes; 0 removes the setting.
    for (auto [name, target] : {std::pair{"retention", &s.retention}, std::pair{"max_size", &s.max_size},
                                std::pair{"proxy_retention", &s.proxy_retention},
                                std::pair{"proxy_max_size", &s.proxy_max_size}}) {
        if (!j.contains(name)) continue;
        if (!j[name].is_number_integer() || j[name].get<int64_t>() < 0)
            return fail(ErrorCode::invalid_input, fmt::format("field '{}' must be a whole number, 0 for none", name));
        auto v = j[name].get<int64_t>();
        *target = v == 0 ? std::optional<int64_t>() : std::optional<int64_t>(v);
    }
    return s;
}

json gc_json(const cache::GcReport& r) {
    json caches = json::array();
    for (const auto& c : r.caches)
        caches.push_back(json{{"cache", c.cache}, {"paths", c.paths}, {"deleted", c.deleted},
                              {"deleted_bytes", c.deleted_bytes}, {"revived", c.revived},
                              {"size_after", c.size_after}});
    return json{{"started", r.started}, {"finished", r.finished}, {"now", r.now}, {"dry_run", r.dry_run},
                {"caches", caches}, {"nars_deleted", r.nars_deleted}, {"chunks_deleted", r.chunks_deleted},
                {"chunk_bytes_deleted", r.chunk_bytes_deleted}, {"orphan_blobs_deleted", r.orphan_blobs_deleted},
                {"errors", r.errors}};
}

json token_json(const db::TokenRow& t) {
    json j{{"id", t.id}, {"name", t.name}, {"created_at", t.created_at},
           {"scope", json::parse(t.scopes, nullptr, false)}};
    j["expires_at"] = t.expires_at ? json(*t.expires_at) : json();
    j["revoked_at"] = t.revoked_at ? json(*t.revoked_at) : json();
    j["parent_id"] = t.parent_id ? json(*t.parent_id) : json();
    return j;
}

}  // namespace

Result<Response> Handler::handle_api(const Prepared& p, Request& request) {
    auto path = std::string_view(p.route.name);
    if (path == "caches" || path.starts_with("caches/"))
        return api_caches(p, request, path.substr(std::min(path.size(), size_t{7})));
    if (path == "tokens" || path.starts_with("tokens/"))
        return api_tokens(p, request, path.substr(std::min(path.size(), size_t{7})));
    if (path == "gc") {
        TRY(require(p, "*", Permission::admin));
        if (request.method == Method::get) {
            auto last = m_service.last_gc();
            return json_response(200, last ? gc_json(*last).dump() : json::object().dump());
        }
        if (request.method != Method::post) return fail(ErrorCode::invalid_input, "use GET or POST on /api/v1/gc");
        TRY_ASSIGN(auto body, parse_body(request));
        cache::GcOptions options;
        TRY_ASSIGN(auto dry_run, field<bool>(body, "dry_run"));
        TRY_ASSIGN(options.cache, field<std::string>(body, "cache"));
        TRY_ASSIGN(options.now, field<int64_t>(body, "now"));
        options.dry_run = dry_run.value_or(false);
        TRY_ASSIGN(auto report, m_service.collect_garbage(options));
        return json_response(200, gc_json(report).dump());
    }
    if (path == "fsck") {
        TRY(require(p, "*", Permission::admin));
        if (request.method != Method::post) return fail(ErrorCode::invalid_input, "use POST on /api/v1/fsck");
        TRY_ASSIGN(auto body, parse_body(request));
        cache::FsckOptions options;
        TRY_ASSIGN(auto repair, field<bool>(body, "repair"));
        TRY_ASSIGN(options.cache, field<std::string>(body, "cache"));
        TRY_ASSIGN(auto sample, field<int64_t>(body, "sample_percent"));
        if (sample && (*sample < 1 || *sample > 100))
            return fail(ErrorCode::invalid_input, "field 'sample_percent' must be from 1 to 100");
        options.repair = repair.value_or(false);
        options.sample_percent = static_cast<unsigned>(sample.value_or(100));
        TRY_ASSIGN(auto r, m_service.check_integrity(options));
        return json_response(200, json{{"chunks_checked", r.chunks_checked}, {"missing", r.missing},
                                       {"corrupt", r.corrupt}, {"bad_blobs", r.bad_blobs},
                                       {"damaged_paths", r.damaged_paths}, {"withdrawn", r.withdrawn},
                                       {"errors", r.errors}}.dump());
    }
    if (path == "stats" && request.method == Method::get) {
        TRY(require(p, "*", Permission::admin));
        TRY_ASSIGN(auto counts, m_service.storage_counts());
        return json_response(200, json{{"chunks", counts.chunks}, {"nars", counts.nars},
                                       {"stored_bytes", counts.stored_bytes}, {"unused_chunks", counts.unused_chunks},
                                       {"unused_nars", counts.unused_nars},
                                       {"deferred_nars", counts.deferred_nars},
                                       {"inline_chunks", counts.inline_chunks}}.dump());
    }
    return fail(ErrorCode::not_found, "no such API endpoint");
}

Result<Response> Handler::api_caches(const Prepared& p, Request& request, std::string_view rest) {
    auto info = [&](const db::CacheRow& c) -> Result<json> {
        TRY_ASSIGN(auto keys, m_service.public_keys(c));
        json public_keys = json::array();
        for (const auto& k : keys) public_keys.push_back(k.to_string());
        return json{{"name", c.name}, {"public", c.is_public}, {"priority", c.priority},
                    {"store_dir", c.store_dir}, {"upstream_keys", c.upstream_keys},
                    {"url", cache_url(request, c.name)},
                    {"public_key", public_keys.empty() ? json() : public_keys[0]},
                    {"public_keys", public_keys},
                    {"retention", c.retention ? json(*c.retention) : json()},
                    {"max_size", c.max_size ? json(*c.max_size) : json()},
                    {"upstreams", upstreams_of(c)},
                    {"proxy_retention", c.proxy_retention ? json(*c.proxy_retention) : json()},
                    {"proxy_max_size", c.proxy_max_size ? json(*c.proxy_max_size) : json()}};
    };
    if (rest.empty()) {
        if (request.method == Method::get) {
            TRY_ASSIGN(auto rows, m_service.list_caches());
            json out = json::array();
            for (const auto& c : rows) {
                bool visible = c.is_public || (p.principal.token && p.principal.scope.grants(c.name, Permission::pull));
                if (!visible) continue;
                TRY_ASSIGN(auto j, info(c));
                out.push_back(std::move(j));
            }
            return json_response(200, out.dump());
        }
        if (request.method != Method::post) return fail(ErrorCode::invalid_input, "use GET or POST on /api/v1/caches");
        TRY_ASSIGN(auto body, parse_body(request));
        TRY_ASSIGN(auto name, field<std::string>(body, "name"));
        if (!name) return fail(ErrorCode::invalid_input, "field 'name' is required");
        TRY(require(p, *name, Permission::admin));
        TRY_ASSIGN(auto settings, settings_from(body));
        TRY_ASSIGN(auto row, m_service.create_cache(*name, settings));
        TRY_ASSIGN(auto j, info(row));
        return json_response(201, j.dump());
    }
    auto slash = rest.find('/');
    auto name = rest.substr(0, slash);
    auto action = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    auto check_cache = [&](Permission perm) -> Result<db::CacheRow> {
        auto row = m_service.cache(name);
        bool public_read = row && row->is_public && perm == Permission::pull;
        if (!public_read) TRY(require(p, name, perm));
        return row;
    };
    if (action.empty()) {
        switch (request.method) {
            case Method::get: {
                TRY_ASSIGN(auto row, check_cache(Permission::pull));
                TRY_ASSIGN(auto j, info(row));
                return json_response(200, j.dump());
            }
            case Method::patch: {
                TRY(check_cache(Permission::admin));
                TRY_ASSIGN(auto body, parse_body(request));
                TRY_ASSIGN(auto settings, settings_from(body));
                TRY_ASSIGN(auto row, m_service.configure(name, settings));
                TRY_ASSIGN(auto j, info(row));
                return json_response(200, j.dump());
            }
            case Method::del: {
                TRY(check_cache(Permission::admin));
                TRY(m_service.delete_cache(name));
                return json_response(200, json{{"deleted", name}}.dump());
            }
            default: return fail(ErrorCode::invalid_input, "use GET, PATCH or DELETE on a cache");
        }
    }
    if (action == "rotate-key" && request.method == Method::post) {
        TRY_ASSIGN(auto row, check_cache(Permission::admin));
        TRY_ASSIGN(auto key, m_service.rotate_key(row));
        TRY_ASSIGN(auto j, info(row));
        return json_response(200, j.dump());
    }
    if (action == "missing" && request.method == Method::post) {
        TRY_ASSIGN(auto row, check_cache(Permission::pull));
        TRY_ASSIGN(auto body, parse_body(request));
        TRY_ASSIGN(auto paths, field<std::vector<std::string>>(body, "paths"));
        if (!paths) return fail(ErrorCode::invalid_input, "field 'paths' (store paths or hash parts) is required");
        if (paths->size() > k_max_missing_paths)
            return fail(ErrorCode::too_large, fmt::format("ask about at most {} paths per request ({} sent)",
                                                          k_max_missing_paths, paths->size()));
        std::vector<std::string> hashes;
        for (const auto& s : *paths) {
            auto hash = nix::hash_part_of(s);
            if (!hash) return fail(ErrorCode::invalid_input, fmt::format("'{}' is not a store path", printable(s)));
            hashes.emplace_back(*hash);
        }
        TRY_ASSIGN(auto missing, m_service.missing_paths(row, hashes));
        // Paths the cache's upstreams serve (pull-through) are not missing:
        // a push skips them, and paths referring to them are accepted.
        TRY_ASSIGN(auto upstream, m_service.upstream_has(row, missing));
        if (!upstream.empty()) {
            std::unordered_set<std::string> there(upstream.begin(), upstream.end());
            std::erase_if(missing, [&](const std::string& h) { return there.count(h) > 0; });
        }
        // The upstream keys let `larder push` skip what upstream caches serve
        // without asking a second time,
        // and the chunking, so that push can send the chunks as stored.
        const auto& chunking = m_service.config();
        json chunks{{"min_size", chunking.chunk_params.min_size}, {"avg_size", chunking.chunk_params.avg_size},
                    {"max_size", chunking.chunk_params.max_size}, {"single_below", chunking.single_chunk_below},
                    {"zstd_level", chunking.zstd_level}};
        return json_response(200, json{{"missing", missing}, {"upstream", upstream},
                                       {"upstream_keys", row.upstream_keys}, {"chunks", chunks}}.dump());
    }
    if (action == "pins" || action.starts_with("pins/")) {
        auto pin_name = action.substr(std::min(action.size(), size_t{5}));
        if (pin_name.empty() && request.method == Method::get) {
            TRY_ASSIGN(auto row, check_cache(Permission::pull));
            TRY_ASSIGN(auto pins, m_service.pins(row));
            json out = json::array();
            for (const auto& pin : pins)
                out.push_back(json{{"name", pin.name}, {"path", pin.store_path}, {"created_at", pin.created_at}});
            return json_response(200, out.dump());
        }
        if (pin_name.empty() && request.method == Method::post) {
            TRY_ASSIGN(auto row, check_cache(Permission::push));
            TRY_ASSIGN(auto body, parse_body(request));
            TRY_ASSIGN(auto name, field<std::string>(body, "name"));
            TRY_ASSIGN(auto store_path, field<std::string>(body, "path"));
            TRY_ASSIGN(auto keep, field<int64_t>(body, "keep"));
            if (!name || !store_path) return fail(ErrorCode::invalid_input, "fields 'name' and 'path' are required");
            if (keep && (*keep < 1 || *keep > 10000))
                return fail(ErrorCode::invalid_input, "field 'keep' must be from 1 to 10000");
            TRY_ASSIGN(auto pin, m_service.pin(row, *name, *store_path, static_cast<size_t>(keep.value_or(1))));
            return json_response(201, json{{"name", pin.name}, {"path", pin.store_path},
                                           {"created_at", pin.created_at}}.dump());
        }
        if (!pin_name.empty() && request.method == Method::del) {
            TRY_ASSIGN(auto row, check_cache(Permission::push));
            TRY(m_service.unpin(row, pin_name));
            return json_response(200, json{{"unpinned", pin_name}}.dump());
        }
        return fail(ErrorCode::invalid_input, "use GET or POST on .../pins, DELETE on .../pins/NAME");
    }
    if (action.starts_with("paths/") && request.method == Method::del) {
        TRY_ASSIGN(auto row, check_cache(Permission::remove));
        TRY_ASSIGN(auto body, parse_body(request));
        TRY_ASSIGN(auto cascade, field<bool>(body, "cascade"));
        auto hash = action.substr(6, nix::k_hash_part_length);
        if (!nix::is_valid_hash_part(hash))
            return fail(ErrorCode::invalid_input, fmt::format("'{}' is not a store path", printable(action.substr(6))));
        TRY_ASSIGN(auto deleted, m_service.delete_path(row, hash, cascade.value_or(false)));
        return json_response(200, json{{"deleted", deleted}}.dump());
    }
    return fail(ErrorCode::not_found, "no such API endpoint");
}

Result<Response> Handler::api_tokens(const Prepared& p, Request& request, std::string_view rest) {
    if (rest.empty() && request.method == Method::get) {
        if (!p.principal.token || !p.principal.scope.admin) TRY(require(p, "*", Permission::admin));
        TRY_ASSIGN(auto rows, m_access.tokens_managed_by(p.principal.scope));
        json out = json::array();
        for (const auto& t : rows) out.push_back(token_json(t));
        return json_response(200, out.dump());
    }
    if (rest.empty() && request.method == Method::post) {
        TRY_ASSIGN(auto body, parse_body(request));
        TRY_ASSIGN(auto name, field<std::string>(body, "name"));
        TRY_ASSIGN(auto pattern, field<std::string>(body, "caches"));
        if (!name || name->empty()) return fail(ErrorCode::invalid_input, "field 'name' is required");
        if (!pattern || pattern->empty()) return fail(ErrorCode::invalid_input, "field 'caches' (a cache name or pattern) is required");
        // An admin may hand out only what its own pattern covers.
        TRY(require(p, *pattern, Permission::admin));
        cache::Scope scope;
        scope.cache_pattern = *pattern;
        TRY_ASSIGN(auto pull, field<bool>(body, "pull"));
        TRY_ASSIGN(auto push, field<bool>(body, "push"));
        TRY_ASSIGN(auto del, field<bool>(body, "delete"));
        TRY_ASSIGN(auto admin, field<bool>(body, "admin"));
        TRY_ASSIGN(auto expires_in, field<int64_t>(body, "expires_in"));
        scope.pull = pull.value_or(false);
        scope.push = push.value_or(false);
        scope.remove = del.value_or(false);
        scope.admin = admin.value_or(false);
        if (!scope.pull && !scope.push && !scope.remove && !scope.admin)
            return fail(ErrorCode::invalid_input, "a token needs at least one of pull, push, delete, admin");
        std::optional<int64_t> expires_at;
        if (expires_in) {
            constexpr int64_t k_century = int64_t{100} * 366 * 86400;
            if (*expires_in <= 0 || *expires_in > k_century)
                return fail(ErrorCode::invalid_input, "expires_in must be between 1 second and 100 years");
            expires_at = static_cast<int64_t>(std::time(nullptr)) + *expires_in;
        }
        // Minted under the caller: it expires no later and is revoked with it.
        TRY_ASSIGN(auto token, m_access.create_token(*name, scope, expires_at, p.principal.token));
        auto j = token_json(token.row);
        j["secret"] = token.secret;
        return json_response(201, j.dump());
    }
    if (!rest.empty() && request.method == Method::del) {
        if (!p.principal.token || !p.principal.scope.admin) TRY(require(p, "*", Permission::admin));
        auto id = parse_u64(rest);
        if (!id || *id > INT64_MAX) return fail(ErrorCode::invalid_input, "token id must be a number");
        TRY(m_access.revoke_token(static_cast<int64_t>(*id), p.principal.scope));
        return json_response(200, json{{"revoked", *id}}.dump());
    }
    return fail(ErrorCode::not_found, "no such API endpoint");
}

}  // namespace larder::http
