// larder serve [--config FILE] [--listen ADDR:PORT] [--data DIR]
#include <malloc.h>
#include <sys/stat.h>

#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include "app/commands.hpp"
#include "app/server_config.hpp"
#include "blob/blob_store.hpp"
#include "cache/access.hpp"
#include "db/metadata_store.hpp"
#include "http/server.hpp"
#include "util/file.hpp"
#include "util/log.hpp"

namespace larder::app {

namespace {

namespace fs = std::filesystem;

struct ServeOptions {
    std::optional<std::string> config;
    std::optional<std::string> listen;
    std::optional<std::string> data;
    bool check_config = false;
};

// --check-config: what `serve` would use, after the same checks (config,
// database reachable and migrated, storage reachable with its credentials).
void print_config(const ServeConfig& c, const blob::BlobStore& blobs) {
    auto& p = c.cache.chunk_params;
    std::string caches;
    for (const auto& d : c.caches) caches += (caches.empty() ? "" : ", ") + d.name;
    std::cout << fmt::format(
        "config OK\n"
        "  listen:    {}{}{}\n"
        "  data dir:  {}\n"
        "  database:  {}\n"
        "  storage:   {}\n"
        "  threads:   {} I/O, {} workers\n"
        "  chunks:    FastCDC {}/{}/{}, one chunk below {}, zstd level {}, dedup {}; plain uploads {}\n"
        "  gc:        every {} s (0: never), grace {} s\n"
        "  caches declared in the file: {}\n"
        "  log:       {}, {}{}\n",
        c.server.listen, c.server.tls_certificate.empty() ? " (HTTP)" : " (HTTPS)",
        c.server.metrics_listen.empty() ? std::string() : "; metrics on " + c.server.metrics_listen,
        c.data_dir.string(),
        db::redact_url(c.database), blobs.describe(),
        c.server.threads ? std::to_string(c.server.threads) : std::string("one per core"), c.server.workers,
        p.min_size, p.avg_size, p.max_size, c.cache.single_chunk_below, c.cache.zstd_level,
        c.cache.dedup_across_caches ? "global" : "per cache",
        c.cache.defer_ingest ? "stored whole, chunked later (local storage)" : "chunked before the answer",
        c.gc_interval.count(), c.cache.gc_grace_seconds, caches.empty() ? "none" : caches, c.log_level, c.log_format,
        c.server.log_requests ? ", request log on" : "");
}

// First start: an admin token (kept only as a hash, its secret written to
// DATA/admin-token, mode 0600) and the cache "main".
Result<void> bootstrap(const ServeConfig& config, cache::CacheService& service, cache::Access& access) {
    auto token_file = config.data_dir / "admin-token";
    TRY_ASSIGN(auto tokens, access.list_tokens());
    if (tokens.empty()) {
        cache::Scope scope;
        scope.cache_pattern = "*";
        scope.admin = true;
        TRY_ASSIGN(auto token, access.create_token("admin", scope, std::nullopt));
        TRY(write_file_atomic(token_file, token.secret + "\n", 0600));
        spdlog::info("created the admin token; its secret is in {}", token_file.string());
    }
    TRY_ASSIGN(auto caches, service.list_caches());
    std::vector<CacheDeclaration> wanted = config.caches;
    if (caches.empty() && wanted.empty()) wanted.push_back({"main", {}});
    for (const auto& d : wanted) {
        auto existing = service.cache(d.name);
        if (existing) {
            // The file decides retention and size caps of the caches it names.
            // (and their upstreams, when it lists them).
            const auto& w = d.settings;
            if (w.retention || w.max_size || w.upstreams || w.proxy_retention || w.proxy_max_size) {
                cache::CacheSettings limits;
                limits.retention = w.retention;
                limits.max_size = w.max_size;
                limits.upstreams = w.upstreams;
                limits.proxy_retention = w.proxy_retention;
                limits.proxy_max_size = w.proxy_max_size;
                TRY(service.configure(d.name, limits));
            }
            continue;
        }
        if (existing.error().code != ErrorCode::not_found) return Failure{std::move(existing).error()};
        auto created = service.create_cache(d.name, d.settings);
        // A replica starting at the same moment may have created it first.
        if (!created && created.error().code == ErrorCode::conflict) continue;
        if (!created) return Failure{std::move(created).error()};
        spdlog::info("created cache '{}'", d.name);
    }
    return ok();
}

void print_instructions(const std::string& url, const ServeConfig& config, cache::CacheService& service) {
    auto caches = service.list_caches();
    if (!caches) return;
    auto token_file = (config.data_dir / "admin-token").string();
    std::string out = fmt::format("\nLarder is serving {}\n", url);
    for (const auto& c : *caches) {
        auto keys = service.public_keys(c);
        out += fmt::format("  cache {:<12} {}/{}  ({})\n    public key: {}\n", c.name, url, c.name,
                           c.is_public ? "public" : "private",
                           keys && !keys->empty() ? keys->front().to_string() : "?");
    }
    auto first = caches->empty() ? std::string("main") : caches->front().name;
    auto host = url.substr(url.find("://") + 3);
    host = host.substr(0, host.rfind(':'));
    out += fmt::format(
        "\nThe admin token is in {} (mode 0600).\n"
        "Point this machine's Nix at the cache:\n"
        "  larder login local {} < {} && larder use {}\n"
        "Push with plain Nix (the token as the netrc password, in a file only you can read):\n"
        "  (umask 077; printf 'machine {} password %s\\n' \"$(cat {})\" > ~/.larder-netrc)\n"
        "  nix copy --option netrc-file ~/.larder-netrc --to '{}/{}?compression=zstd' ./result\n\n",
        token_file, url, token_file, first, host, token_file, url, first);
    std::cout << out << std::flush;
}

// Writes noted uses of paths every `use_flush`, and collects garbage every
// `gc_interval` (the first time after a random part of it, then +-10 %, so
// that replicas started together do not all try at once; the lease lets one
// run at a time anyway).
class Maintenance {
public:
    Maintenance(cache::CacheService& service, std::chrono::seconds use_flush, std::chrono::seconds gc_interval)
        : m_service(service), m_use_flush(use_flush), m_gc_interval(gc_interval), m_thread([this] { loop(); }) {}
    ~Maintenance() {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_wake.notify_all();
        m_thread.join();
        if (auto r = m_service.flush_uses(); !r) spdlog::warn("cannot record the last uses of paths: {}", r.error().message);
    }

private:
    using Clock = std::chrono::steady_clock;

    Clock::duration jitter(double low, double high) {
        std::uniform_real_distribution<double> d(low, high);
        return std::chrono::duration_cast<Clock::duration>(m_gc_interval * d(m_random));
    }

    void loop() {
        auto next_flush = Clock::now() + m_use_flush;
        auto next_gc = m_gc_interval.count() > 0 ? Clock::now() + jitter(0.05, 1.0) : Clock::time_point::max();
        std::unique_lock lock(m_mutex);
        while (!m_stop) {
            m_wake.wait_until(lock, std::min(next_flush, next_gc), [&] { return m_stop; });
            if (m_stop) break;
            lock.unlock();
            auto now = Clock::now();
            if (now >= next_flush) {
                if (auto r = m_service.flush_uses(); !r)
                    spdlog::warn("cannot record the last uses of paths (retrying later): {}", r.error().message);
                next_flush = now + m_use_flush;
            }
            if (now >= next_gc) {
                auto r = m_service.collect_garbage({});
                if (!r && r.error().code == ErrorCode::conflict) spdlog::info("gc: skipped: {}", r.error().message);
                else if (!r) spdlog::warn("gc failed (retrying at the next interval): {}", r.error().message);
                next_gc = Clock::now() + jitter(0.9, 1.1);
            }
            lock.lock();
        }
    }

    cache::CacheService& m_service;
    std::chrono::seconds m_use_flush, m_gc_interval;
    std::mt19937_64 m_random{std::random_device{}()};
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_stop = false;
    std::thread m_thread;  // last: started once the rest is ready
};

Result<void> serve(const ServeOptions& o) {
    // Many threads handle MiB-sized buffers. glibc would give each thread its
    // own heap and raise its mmap threshold as buffers are freed, so freed
    // buffers stay in the heaps: measured 220 MB RSS through bench/upload.sh.
    // A fixed threshold returns them to the system; few heaps cap the rest.
    ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    ::mallopt(M_ARENA_MAX, 4);
    TRY_ASSIGN(auto config, load_serve_config(o.config));
    if (o.listen) config.server.listen = *o.listen;
    if (o.data) config.data_dir = *o.data;
    TRY(setup_logging(config.log_level, config.log_format));
    // The database holds every cache's signing key and the blobs hold
    // private NARs: nothing the server creates is for other local users.
    ::umask(077);
    std::error_code ec;
    fs::create_directories(config.data_dir, ec);
    if (!ec) fs::permissions(config.data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec) return fail(ErrorCode::unavailable, fmt::format("cannot create data directory '{}': {}",
                                                            config.data_dir.string(), ec.message()));
    config.data_dir = fs::absolute(config.data_dir);
    if (config.database.empty()) config.database = "sqlite://" + (config.data_dir / "larder.db").string();
    if (config.storage.empty()) config.storage = "file://" + (config.data_dir / "blobs").string();
    config.cache.spool_dir = (config.data_dir / "spool").string();  // pull-through downloads (unlinked files)
    if (!config.storage.starts_with("s3://") && !config.storage_options.cache_dir.empty())
        spdlog::warn("[s3] cache_dir is ignored: the storage is local");

    TRY_ASSIGN(auto db, db::open_metadata_store(config.database));
    TRY_ASSIGN(auto blobs, blob::open_blob_store(config.storage, config.storage_options));
    if (o.check_config) {
        TRY(blobs->exists("check-config-probe"));  // a request with the credentials (S3 checks them on open too)
        print_config(config, *blobs);
        return ok();
    }
    cache::CacheService service(config.cache, *db, *blobs);
    cache::Access access(*db);
    TRY(bootstrap(config, service, access));
    http::Handler handler(service, access, config.handler);
    Maintenance maintenance(service, config.use_flush, config.gc_interval);
    service.start_ingest();  // also picks up what a previous run left
    spdlog::info("metadata: {}; storage: {}", db::redact_url(config.database), blobs->describe());
    return http::run_server(config.server, handler, [&](const std::string& url) {
        spdlog::info("listening on {}", url);
        spdlog::default_logger()->flush();  // scripts wait for this line
        // On a terminal (or in text logs); JSON logs are for a log collector.
        if (config.log_format != "json") print_instructions(url, config, service);
    });
}

}  // namespace

void add_serve_command(CLI::App& app) {
    auto opts = std::make_shared<ServeOptions>();
    auto* cmd = app.add_subcommand("serve", "Run the binary cache server");
    cmd->add_option("--config", opts->config, "TOML configuration file");
    cmd->add_option("--listen", opts->listen, "Address to listen on (default 127.0.0.1:8080)");
    cmd->add_option("--data", opts->data, "Data directory (default ./larder-data)");
    cmd->add_flag("--check-config", opts->check_config,
                  "Check the configuration, connect to the database (migrating it) and the storage, print what "
                  "would be used, and exit (1 on any problem)");
    cmd->callback([opts] {
        auto result = serve(*opts);
        stop_logging();  // flushes what the logging thread still holds
        report(result);
    });
}

}  // namespace larder::app
