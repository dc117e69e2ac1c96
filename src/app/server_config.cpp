#include "app/server_config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <limits>
#include <set>
#include <type_traits>

#include <tuple>

#include <fmt/core.h>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include "util/file.hpp"
#include "util/strings.hpp"

namespace larder::app {

namespace {

Failure bad(const std::string& path, std::string_view why) {
    return fail(ErrorCode::invalid_input, fmt::format("config {}: {}", path, why));
}

Result<void> check_keys(const std::string& path, const toml::table& t, std::string_view where,
                        std::initializer_list<std::string_view> known) {
    for (auto& [key, value] : t) {
        bool found = false;
        for (auto k : known) found |= key.str() == k;
        if (!found) return bad(path, fmt::format("unknown setting '{}{}'", where, key.str()));
    }
    return ok();
}

template <class T>
Result<void> read(const std::string& path, const toml::table& t, std::string_view key, T& out) {
    auto node = t[key];
    if (!node) return ok();
    // Exact types only: toml++'s converting value<T>() turns 65e65 into an
    // integer with undefined behaviour (found by fuzz_config).
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        auto v = node.template value_exact<int64_t>();
        if (!v) return bad(path, fmt::format("'{}' must be an integer", key));
        if (*v < std::numeric_limits<T>::min() || (*v > 0 && static_cast<uint64_t>(*v) > std::numeric_limits<T>::max()))
            return bad(path, fmt::format("'{}' is out of range", key));
        out = static_cast<T>(*v);
    } else {
        auto v = node.template value_exact<T>();
        if (!v) return bad(path, fmt::format("'{}' has the wrong type", key));
        out = *v;
    }
    return ok();
}

Result<void> read_seconds(const std::string& path, const toml::table& t, std::string_view key,
                          std::chrono::seconds& out) {
    int64_t s = out.count();
    TRY(read(path, t, key, s));
    if (s <= 0) return bad(path, fmt::format("'{}' must be a positive number of seconds", key));
    out = std::chrono::seconds(s);
    return ok();
}

std::string default_key_prefix() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || !*host) return "larder";
    std::string name(host);
    for (char& c : name)
        if (c == ':' || c == ' ') c = '-';
    return name;
}

}  // namespace

Result<ServeConfig> load_serve_config(const std::optional<std::string>& path) {
    if (!path) {
        ServeConfig config;
        config.cache.key_prefix = default_key_prefix();
        return config;
    }
    TRY_ASSIGN(auto text, read_file(*path));
    return parse_serve_config(text, *path);
}

Result<ServeConfig> parse_serve_config(std::string_view text, const std::string& source) {
    ServeConfig config;
    config.cache.key_prefix = default_key_prefix();
    const std::string* path = &source;
    toml::table t;
    try {
        t = toml::parse(text, *path);
    } catch (const toml::parse_error& e) {
        return bad(*path, fmt::format("{} (line {})", e.description(), e.source().begin.line));
    }
    TRY(check_keys(*path, t, "", {"listen", "metrics_listen", "data_dir", "database", "storage", "public_url", "key_prefix",
                                  "threads", "workers", "log_level", "log_format", "log_requests", "limits", "timeouts", "tls", "caches", "chunks",
                                  "s3", "gc", "upstream"}));
    std::string data_dir = config.data_dir.string();
    TRY(read(*path, t, "listen", config.server.listen));
    TRY(read(*path, t, "metrics_listen", config.server.metrics_listen));
    config.handler.metrics_elsewhere = !config.server.metrics_listen.empty();
    TRY(read(*path, t, "data_dir", data_dir));
    config.data_dir = data_dir;
    TRY(read(*path, t, "database", config.database));
    TRY(read(*path, t, "storage", config.storage));
    TRY(read(*path, t, "public_url", config.handler.public_url));
    TRY(read(*path, t, "key_prefix", config.cache.key_prefix));
    TRY(read(*path, t, "log_level", config.log_level));
    TRY(read(*path, t, "log_requests", config.server.log_requests));
    TRY(read(*path, t, "log_format", config.log_format));
    if (config.log_format != "text" && config.log_format != "json")
        return bad(*path, "log_format must be \"text\" or \"json\"");
    int64_t threads = 0;
    TRY(read(*path, t, "threads", threads));
    config.server.threads = static_cast<unsigned>(std::max<int64_t>(threads, 0));
    int64_t workers = config.server.workers;
    TRY(read(*path, t, "workers", workers));
    if (workers < 1 || workers > 1024) return bad(*path, "workers must be 1-1024");
    config.server.workers = static_cast<unsigned>(workers);
    if (auto* limits = t["limits"].as_table()) {
        TRY(check_keys(*path, *limits, "limits.", {"max_nar_size", "max_body", "max_connections"}));
        int64_t connections = config.server.max_connections;
        TRY(read(*path, *limits, "max_connections", connections));
        if (connections <= 0) return bad(*path, "limits.max_connections must be positive");
        config.server.max_connections = static_cast<unsigned>(connections);
        int64_t nar = static_cast<int64_t>(config.handler.max_nar_size);
        int64_t body = static_cast<int64_t>(config.handler.max_small_body);
        TRY(read(*path, *limits, "max_nar_size", nar));
        TRY(read(*path, *limits, "max_body", body));
        if (nar <= 0 || body <= 0) return bad(*path, "limits must be positive");
        config.handler.max_nar_size = static_cast<uint64_t>(nar);
        config.cache.max_nar_size = config.handler.max_nar_size;
        config.handler.max_small_body = static_cast<size_t>(body);
    }
    if (auto* timeouts = t["timeouts"].as_table()) {
        TRY(check_keys(*path, *timeouts, "timeouts.", {"header", "body", "request", "send", "shutdown"}));
        TRY(read_seconds(*path, *timeouts, "request", config.server.request_deadline));
        TRY(read_seconds(*path, *timeouts, "header", config.server.header_timeout));
        TRY(read_seconds(*path, *timeouts, "body", config.server.body_timeout));
        TRY(read_seconds(*path, *timeouts, "send", config.server.send_timeout));
        TRY(read_seconds(*path, *timeouts, "shutdown", config.server.shutdown_grace));
    }
    if (auto* tls = t["tls"].as_table()) {
        TRY(check_keys(*path, *tls, "tls.", {"certificate", "key"}));
        TRY(read(*path, *tls, "certificate", config.server.tls_certificate));
        TRY(read(*path, *tls, "key", config.server.tls_key));
    }
    if (auto* s3 = t["s3"].as_table()) {
        TRY(check_keys(*path, *s3, "s3.", {"access_key_id", "secret_access_key", "session_token", "connections",
                                           "read_ahead", "read_ahead_memory", "cache_dir", "cache_max_size"}));
        auto& options = config.storage_options;
        int64_t connections = options.connections, read_ahead = options.read_ahead,
                memory = static_cast<int64_t>(options.read_ahead_memory);
        TRY(read(*path, *s3, "connections", connections));
        TRY(read(*path, *s3, "read_ahead", read_ahead));
        TRY(read(*path, *s3, "read_ahead_memory", memory));
        if (connections < 1 || connections > 1024) return bad(*path, "s3.connections must be 1-1024");
        if (read_ahead < 1 || read_ahead > 256) return bad(*path, "s3.read_ahead must be 1-256");
        if (memory < 0) return bad(*path, "s3.read_ahead_memory cannot be negative");
        options.connections = static_cast<unsigned>(connections);
        options.read_ahead = static_cast<unsigned>(read_ahead);
        options.read_ahead_memory = static_cast<uint64_t>(memory);
        // A local read cache: "/var/cache/larder" and "20G".
        std::string cache_max;
        TRY(read(*path, *s3, "cache_dir", options.cache_dir));
        TRY(read(*path, *s3, "cache_max_size", cache_max));
        if (!options.cache_dir.empty()) {
            if (options.cache_dir.front() != '/') return bad(*path, "s3.cache_dir must be an absolute path");
            if (cache_max.empty()) return bad(*path, "s3.cache_dir needs s3.cache_max_size (e.g. \"20G\")");
            auto max = parse_size(cache_max);
            if (!max) return bad(*path, fmt::format("s3.cache_max_size: {}", max.error().message));
            if (*max <= 0) return bad(*path, "s3.cache_max_size must be above 0");
            options.cache_max_size = static_cast<uint64_t>(*max);
        } else if (!cache_max.empty()) {
            return bad(*path, "s3.cache_max_size needs s3.cache_dir");
        }
        if ((*s3)["access_key_id"] || (*s3)["secret_access_key"] || (*s3)["session_token"]) {
            blob::Credentials c;
            TRY(read(*path, *s3, "access_key_id", c.access_key_id));
            TRY(read(*path, *s3, "secret_access_key", c.secret_access_key));
            TRY(read(*path, *s3, "session_token", c.session_token));
            if (c.access_key_id.empty() || c.secret_access_key.empty())
                return bad(*path, "[s3] needs both access_key_id and secret_access_key");
            struct stat st {};
            if (::stat(path->c_str(), &st) == 0 && (st.st_mode & 077))
                spdlog::warn("{} holds an S3 secret but is readable by others: chmod 600 it", *path);
            options.credentials = std::move(c);
        }
    }
    if (auto* chunks = t["chunks"].as_table()) {
        TRY(check_keys(*path, *chunks, "chunks.",
                       {"min_size", "avg_size", "max_size", "single_below", "inline_below", "zstd_level", "dedup",
                        "deferred", "ingest_threads"}));
        TRY(read(*path, *chunks, "deferred", config.cache.defer_ingest));
        int64_t ingest_threads = config.cache.ingest_threads;
        TRY(read(*path, *chunks, "ingest_threads", ingest_threads));
        if (ingest_threads < 1 || ingest_threads > 256) return bad(*path, "chunks.ingest_threads must be 1-256");
        config.cache.ingest_threads = static_cast<unsigned>(ingest_threads);
        std::string dedup = config.cache.dedup_across_caches ? "global" : "cache";
        TRY(read(*path, *chunks, "dedup", dedup));
        if (dedup != "global" && dedup != "cache")
            return bad(*path, "chunks.dedup must be \"global\" (share chunks across caches) or \"cache\"");
        config.cache.dedup_across_caches = dedup == "global";
        auto& p = config.cache.chunk_params;
        int64_t min = static_cast<int64_t>(p.min_size), avg = static_cast<int64_t>(p.avg_size),
                max = static_cast<int64_t>(p.max_size), single = static_cast<int64_t>(config.cache.single_chunk_below);
        int64_t level = config.cache.zstd_level;
        int64_t inline_below = static_cast<int64_t>(config.cache.inline_chunk_below);
        TRY(read(*path, *chunks, "inline_below", inline_below));
        // Rows stay small: a database is no place for large values.
        if (inline_below < 0 || inline_below > 65536) return bad(*path, "chunks.inline_below must be 0-65536");
        config.cache.inline_chunk_below = static_cast<size_t>(inline_below);
        TRY(read(*path, *chunks, "min_size", min));
        TRY(read(*path, *chunks, "avg_size", avg));
        TRY(read(*path, *chunks, "max_size", max));
        TRY(read(*path, *chunks, "single_below", single));
        TRY(read(*path, *chunks, "zstd_level", level));
        if (min < 0 || avg < 0 || max < 0 || single < 0) return bad(*path, "chunk sizes cannot be negative");
        p = chunk::Params{static_cast<size_t>(min), static_cast<size_t>(avg), static_cast<size_t>(max)};
        if (auto ok = chunk::check(p); !ok) return bad(*path, "[chunks]: " + ok.error().message);
        if (level < 1 || level > 19) return bad(*path, "chunks.zstd_level must be 1-19");
        config.cache.single_chunk_below = static_cast<size_t>(single);
        config.cache.zstd_level = static_cast<int>(level);
    }
    if (auto* gc = t["gc"].as_table()) {
        TRY(check_keys(*path, *gc, "gc.", {"interval", "grace", "use_flush"}));
        auto duration = [&](std::string_view key, int64_t& seconds, bool may_be_off) -> Result<void> {
            std::string text;
            TRY(read(*path, *gc, key, text));
            if (text.empty()) return ok();
            if (may_be_off && (text == "off" || text == "0")) {
                seconds = 0;
                return ok();
            }
            auto parsed = parse_duration(text);
            if (!parsed) return bad(*path, fmt::format("gc.{}: {}", key, parsed.error().message));
            seconds = *parsed;
            return ok();
        };
        int64_t interval = config.gc_interval.count(), flush = config.use_flush.count();
        TRY(duration("interval", interval, true));
        TRY(duration("grace", config.cache.gc_grace_seconds, false));
        TRY(duration("use_flush", flush, false));
        config.gc_interval = std::chrono::seconds(interval);
        config.use_flush = std::chrono::seconds(flush);
    }
    if (auto* up = t["upstream"].as_table()) {
        TRY(check_keys(*path, *up, "upstream.", {"miss_ttl", "breaker", "narinfo_ttl"}));
        for (auto [key, target] : {std::pair{"miss_ttl", &config.cache.upstream_miss_ttl},
                                   std::pair{"breaker", &config.cache.upstream_breaker}}) {
            std::string text;
            TRY(read(*path, *up, key, text));
            if (text.empty()) continue;
            auto ms = parse_duration_ms(text);
            if (!ms) return bad(*path, fmt::format("upstream.{}: {}", key, ms.error().message));
            *target = std::chrono::milliseconds(*ms);
        }
        std::string text;
        TRY(read(*path, *up, "narinfo_ttl", text));
        if (!text.empty()) {
            auto seconds = parse_duration(text);
            if (!seconds) return bad(*path, fmt::format("upstream.narinfo_ttl: {}", seconds.error().message));
            config.cache.upstream_path_ttl = std::chrono::seconds(*seconds);
        }
    }
    if (auto* caches = t["caches"].as_array()) {
        for (auto& node : *caches) {
            auto* c = node.as_table();
            if (!c) return bad(*path, "[[caches]] entries must be tables");
            TRY(check_keys(*path, *c, "caches.",
                           {"name", "public", "priority", "upstream_keys", "retention", "max_size", "upstreams",
                            "proxy_retention", "proxy_max_size"}));
            CacheDeclaration d;
            TRY(read(*path, *c, "name", d.name));
            if (d.name.empty()) return bad(*path, "every [[caches]] entry needs a name");
            if ((*c)["public"]) {
                bool is_public = false;
                TRY(read(*path, *c, "public", is_public));
                d.settings.is_public = is_public;
            }
            if ((*c)["priority"]) {
                int64_t priority = 0;
                TRY(read(*path, *c, "priority", priority));
                if (priority < 0 || priority > 10000) return bad(*path, "caches.priority must be from 0 to 10000");
                d.settings.priority = static_cast<int>(priority);
            }
            if (auto* keys = (*c)["upstream_keys"].as_array()) {
                std::vector<std::string> names;
                for (auto& k : *keys) {
                    auto name = k.value_exact<std::string>();
                    if (!name) return bad(*path, "caches.upstream_keys must be strings");
                    names.push_back(*name);
                }
                d.settings.upstream_keys = names;
            }
            // Pull-through: [[caches.upstreams]] (or an inline list), in order.
            if (auto* ups = (*c)["upstreams"].as_array()) {
                std::vector<cache::UpstreamSpec> list;
                for (auto& u : *ups) {
                    auto* up = u.as_table();
                    if (!up) return bad(*path, "caches.upstreams entries must be tables");
                    TRY(check_keys(*path, *up, "caches.upstreams.", {"url", "keys", "token_file", "netrc_file",
                                                                     "timeout"}));
                    cache::UpstreamSpec spec;
                    TRY(read(*path, *up, "url", spec.url));
                    if (auto* keys = (*up)["keys"].as_array())
                        for (auto& k : *keys) {
                            auto key = k.value_exact<std::string>();
                            if (!key) return bad(*path, "caches.upstreams.keys must be strings");
                            spec.keys.push_back(*key);
                        }
                    std::string token_file, timeout;
                    TRY(read(*path, *up, "token_file", token_file));
                    TRY(read(*path, *up, "netrc_file", spec.netrc_file));
                    TRY(read(*path, *up, "timeout", timeout));
                    if (!token_file.empty()) {
                        // A secret: kept out of the config file itself.
                        auto token = read_file(token_file);
                        if (!token) return bad(*path, fmt::format("caches.upstreams.token_file: {}", token.error().message));
                        spec.token = std::string(trim(*token));
                    }
                    if (!timeout.empty()) {
                        auto ms = parse_duration_ms(timeout);
                        if (!ms) return bad(*path, fmt::format("caches.upstreams.timeout: {}", ms.error().message));
                        spec.timeout_ms = *ms;
                    }
                    list.push_back(std::move(spec));
                }
                auto checked = cache::check_upstreams(list);
                if (!checked) return bad(*path, checked.error().message);
                d.settings.upstreams = std::move(list);
            }
            // "30d" / "200G", or "none".
            for (auto [key, parse, target] :
                 {std::tuple{"retention", &parse_duration, &d.settings.retention},
                  std::tuple{"max_size", &parse_size, &d.settings.max_size},
                  std::tuple{"proxy_retention", &parse_duration, &d.settings.proxy_retention},
                  std::tuple{"proxy_max_size", &parse_size, &d.settings.proxy_max_size}}) {
                std::string text;
                TRY(read(*path, *c, key, text));
                if (text.empty()) continue;
                if (text == "none") {
                    *target = std::optional<int64_t>();
                    continue;
                }
                auto v = (*parse)(text);
                if (!v) return bad(*path, fmt::format("caches.{}: {}", key, v.error().message));
                *target = std::optional<int64_t>(*v);
            }
            config.caches.push_back(std::move(d));
        }
    }
    return config;
}

}  // namespace larder::app
