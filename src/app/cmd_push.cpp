// larder push, larder watch-store and larder enqueue (the post-build hook).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <set>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "client/login.hpp"
#include "client/push.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace larder::app {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct PushCommandOptions {
    ClientOptions client;
    std::string cache;
    std::vector<std::string> paths;
    bool from_stdin = false;
    bool json_output = false;
    unsigned jobs = 8;
    unsigned retries = 4;
    std::string compression = "chunks";
    // watch-store
    std::string queue;
    double interval = 1.0;
    bool include_drv = false;
};

Result<client::PushOptions> push_options(const PushCommandOptions& o) {
    client::PushOptions p;
    if (o.compression == "chunks") p.transit = client::PushOptions::Transit::frames;
    else if (o.compression == "zstd") p.transit = client::PushOptions::Transit::zstd;
    else if (o.compression == "none") p.transit = client::PushOptions::Transit::none;
    else return fail(ErrorCode::invalid_input, "--compression must be chunks, zstd or none");
    p.jobs = std::max(1u, o.jobs);
    p.retries = o.retries;
    p.progress = isatty(STDERR_FILENO) && !o.json_output ? client::ProgressStyle::bar : client::ProgressStyle::lines;
    return p;
}

void print_summary(const client::PushSummary& s, bool as_json) {
    if (as_json) {
        json j{{"closure", s.closure},       {"cached", s.cached},         {"upstream", s.upstream},
               {"pushed", s.pushed},         {"failed", s.failed},         {"nar_bytes", s.nar_bytes},
               {"sent_bytes", s.sent_bytes}, {"seconds", s.seconds},       {"errors", s.errors}};
        std::cout << j.dump(2) << std::endl;
        return;
    }
    fmt::print(stderr, "pushed {} of {} paths ({} NAR, {} sent) in {:.1f} s; {} already cached, {} signed upstream{}\n",
               s.pushed, s.closure, client::human_bytes(s.nar_bytes), client::human_bytes(s.sent_bytes), s.seconds, s.cached, s.upstream,
               s.failed ? fmt::format(", {} FAILED", s.failed) : std::string());
}

Result<void> run_push(const PushCommandOptions& o) {
    auto args = o.paths;
    if (o.from_stdin) {
        std::string word;
        while (std::cin >> word) args.push_back(word);
    }
    if (args.empty()) return fail(ErrorCode::invalid_input, "nothing to push: give store paths, or --stdin");
    TRY_ASSIGN(auto login, client::resolve_login(o.client.server, o.client.token));
    TRY_ASSIGN(auto store, client::NixStore::open());
    std::vector<std::string> paths;
    for (const auto& a : args) {
        TRY_ASSIGN(auto p, store->resolve(a));
        paths.push_back(std::move(p));
    }
    TRY_ASSIGN(auto options, push_options(o));
    TRY_ASSIGN(auto summary, client::push(login, o.cache, *store, paths, options));
    print_summary(summary, o.json_output);
    if (summary.failed)
        return fail(ErrorCode::unavailable, fmt::format("{} of {} paths were not pushed", summary.failed,
                                                        summary.closure - summary.cached - summary.upstream));
    return ok();
}

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

// Sleeps up to `seconds`, waking early when asked to stop.
void nap(double seconds) {
    auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!g_stop && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

std::string default_queue() {
    if (const char* q = std::getenv("LARDER_QUEUE"); q && *q) return q;
    if (geteuid() == 0) return "/var/lib/larder/queue";
    const char* state = std::getenv("XDG_STATE_HOME");
    const char* home = std::getenv("HOME");
    if (state && *state) return fmt::format("{}/larder/queue", state);
    return fmt::format("{}/.local/state/larder/queue", home ? home : ".");
}

std::vector<fs::path> queued_files(const fs::path& dir) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".paths") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
}

Result<void> run_watch(const PushCommandOptions& o) {
    TRY_ASSIGN(auto login, client::resolve_login(o.client.server, o.client.token));
    TRY_ASSIGN(auto store, client::NixStore::open());
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    TRY_ASSIGN(auto options, push_options(o));
    options.progress = client::ProgressStyle::lines;
    std::set<std::string> pending;  // store paths not pushed yet
    std::vector<fs::path> pending_files;
    TRY_ASSIGN(int64_t last_id, store->last_id());
    if (o.queue.empty())
        fmt::print(stderr, "watching the Nix store for new paths; pushing them to cache '{}' at {}\n", o.cache, login.url);
    else
        fmt::print(stderr, "pushing the paths queued in {} to cache '{}' at {}\n", o.queue, o.cache, login.url);
    double backoff = o.interval;
    while (!g_stop) {
        if (o.queue.empty()) {
            TRY_ASSIGN(auto added, store->added_since(last_id));
            for (const auto& p : added) {
                last_id = std::max(last_id, p.id);
                if (o.include_drv || !p.path.ends_with(".drv")) pending.insert(p.path);
            }
        } else {
            for (const auto& f : queued_files(o.queue)) {
                if (std::find(pending_files.begin(), pending_files.end(), f) != pending_files.end()) continue;
                auto text = read_file(f);
                if (!text) continue;
                for (auto word : split(*text, '\n')) {
                    auto path = store->resolve(word);
                    if (word.empty() || !path) continue;
                    if (!path->ends_with(".drv") || o.include_drv) pending.insert(*path);
                    // A derivation stands for its outputs (see run_enqueue).
                    if (path->ends_with(".drv"))
                        if (auto outputs = store->derivation_outputs(*path))
                            pending.insert(outputs->begin(), outputs->end());
                }
                pending_files.push_back(f);
            }
        }
        if (pending.empty()) {
            nap(o.interval);
            continue;
        }
        // Paths can vanish (garbage collected) between the build and the push.
        std::vector<std::string> batch;
        for (const auto& p : pending)
            if (store->query(p)) batch.push_back(p);
        auto summary = client::push(login, o.cache, *store, batch, options);
        if (summary && summary->failed == 0) {
            print_summary(*summary, false);
            pending.clear();
            for (const auto& f : pending_files) fs::remove(f);
            pending_files.clear();
            backoff = o.interval;
            nap(o.interval);
            continue;
        }
        if (!summary) fmt::print(stderr, "larder: {}\n", summary.error().message);
        else print_summary(*summary, false);
        // Keep the batch and try again later: the server may be down.
        backoff = std::min(backoff * 2, 60.0);
        fmt::print(stderr, "trying again in {:.0f} s\n", backoff);
        nap(backoff);
    }
    return ok();
}

// Run by Nix's post-build-hook: queue the paths and return at once, so a
// build never waits for the network. Nix 2.8 can leave OUT_PATHS empty, so
// DRV_PATH is queued as well; watch-store pushes a derivation's outputs.
Result<void> run_enqueue(const std::string& queue, std::vector<std::string> paths) {
    if (paths.empty()) {
        const char* out = std::getenv("OUT_PATHS");
        for (auto p : split(out ? out : "", ' '))
            if (!p.empty()) paths.emplace_back(p);
        if (const char* drv = std::getenv("DRV_PATH"); drv && *drv) paths.emplace_back(drv);
    }
    if (paths.empty()) return ok();
    std::error_code ec;
    fs::create_directories(queue, ec);
    if (ec) return fail(ErrorCode::unavailable, fmt::format("cannot create the queue {}: {}", queue, ec.message()));
    std::string text;
    for (const auto& p : paths) text += p + "\n";
    auto stamp = std::chrono::system_clock::now().time_since_epoch().count();
    return write_file_atomic(fs::path(queue) / fmt::format("{:020}-{}.paths", stamp, getpid()), text, 0644);
}

constexpr const char* k_jobs_help =
    "Uploads of NARs of 1 MiB or more at a time; smaller ones run besides them, up to 4x as many uploads in all";

}  // namespace

void add_push_commands(CLI::App& app) {
    auto o = std::make_shared<PushCommandOptions>();
    auto push = app.add_subcommand("push", "Push store paths and their closure to a cache");
    push->add_option("cache", o->cache, "The cache")->required();
    push->add_option("paths", o->paths, "Store paths, or links to them such as ./result");
    push->add_flag("--stdin", o->from_stdin, "Also read paths from standard input");
    push->add_option("-j,--jobs", o->jobs, k_jobs_help)->capture_default_str();
    push->add_option("--retries", o->retries, "Retries of a path after a transient failure")->capture_default_str();
    push->add_flag("--json", o->json_output, "Print a summary as JSON");
    push->add_option("--compression", o->compression,
                     "In transit: chunks (zstd frames cut and compressed as the server stores them), "
                     "zstd (one stream), or none")
        ->capture_default_str();
    add_client_options(*push, o->client);
    push->callback([o] { report(run_push(*o)); });

    auto watch = app.add_subcommand("watch-store", "Push every new store path as it appears");
    watch->add_option("cache", o->cache, "The cache")->required();
    watch->add_option("--queue", o->queue,
                      "Push only the paths queued by `larder enqueue` (a post-build-hook) in this directory");
    watch->add_option("--interval", o->interval, "Seconds between looks for new paths")->capture_default_str();
    watch->add_flag("--include-drv", o->include_drv, "Push .drv files too");
    watch->add_option("-j,--jobs", o->jobs, k_jobs_help)->capture_default_str();
    watch->add_option("--compression", o->compression, "In transit: chunks, zstd or none")->capture_default_str();
    add_client_options(*watch, o->client);
    watch->callback([o] { report(run_watch(*o)); });

    auto enqueue = app.add_subcommand(
        "enqueue", "Queue store paths for `watch-store --queue` (for Nix's post-build-hook: reads $OUT_PATHS)");
    enqueue->add_option("--queue", o->queue, "The queue directory")->default_str(default_queue());
    enqueue->add_option("paths", o->paths, "Store paths (default: $OUT_PATHS)");
    enqueue->callback([o] { report(run_enqueue(o->queue.empty() ? default_queue() : o->queue, o->paths)); });
}

}  // namespace larder::app
