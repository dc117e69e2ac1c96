// larder gc | fsck | pin | pins | unpin | path delete: what removes or checks, over the JSON API.
#include <iostream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "client/http_client.hpp"
#include "client/login.hpp"
#include "client/push.hpp"
#include "nix/store_path.hpp"
#include "util/strings.hpp"

namespace larder::app {

namespace {

using json = nlohmann::json;

// GC and fsck of a large cache run for minutes: the call waits up to a day.
Result<json> call(const ClientOptions& o, std::string_view method, std::string_view path, const json& body = {}) {
    TRY_ASSIGN(auto login, client::resolve_login(o.server, o.token));
    return client::call_api(login, method, path, body, std::chrono::hours(24));
}

struct GcCommand {
    ClientOptions client;
    bool dry_run = false;
    std::string cache;
    std::string now;  // "+40d" or Unix time
    bool json_output = false;
};

std::string bytes(const json& n) { return client::human_bytes(n.get<double>()); }

Result<void> run_gc(const GcCommand& o) {
    json body{{"dry_run", o.dry_run}};
    if (!o.cache.empty()) body["cache"] = o.cache;
    if (!o.now.empty()) {
        if (o.now.starts_with("+")) {
            TRY_ASSIGN(auto ahead, parse_duration(std::string_view(o.now).substr(1)));
            body["now"] = static_cast<int64_t>(std::time(nullptr)) + ahead;
        } else {
            auto at = parse_u64(o.now);
            if (!at || *at > INT64_MAX)
                return fail(ErrorCode::invalid_input, "--now takes a Unix time or +DURATION (e.g. +40d)");
            body["now"] = static_cast<int64_t>(*at);
        }
    }
    TRY_ASSIGN(auto r, call(o.client, "POST", "/api/v1/gc", body));
    if (o.json_output) {
        std::cout << r.dump(2) << "\n";
        return ok();
    }
    for (const auto& c : r["caches"]) {
        std::cout << fmt::format("cache {}: {} {} of {} paths ({} of NARs); {} kept as used meanwhile; {} remain\n",
                                 c["cache"].get<std::string>(), o.dry_run ? "would delete" : "deleted",
                                 c["deleted"].size(), c["paths"].get<int64_t>(), bytes(c["deleted_bytes"]),
                                 c["revived"].get<int64_t>(), bytes(c["size_after"]));
        if (o.dry_run)
            for (const auto& p : c["deleted"]) std::cout << "  /nix/store/" << p.get<std::string>() << "\n";
    }
    if (!o.dry_run)
        std::cout << fmt::format("storage: {} NARs, {} chunks ({}) and {} orphan blobs removed\n",
                                 r["nars_deleted"].get<int64_t>(), r["chunks_deleted"].get<int64_t>(),
                                 bytes(r["chunk_bytes_deleted"]), r["orphan_blobs_deleted"].get<int64_t>());
    for (const auto& e : r["errors"]) std::cout << "error: " << e.get<std::string>() << "\n";
    return ok();
}

struct FsckCommand {
    ClientOptions client;
    bool repair = false;
    std::string cache;
    unsigned sample = 100;
    bool json_output = false;
};

Result<void> run_fsck(const FsckCommand& o) {
    json body{{"repair", o.repair}, {"sample_percent", o.sample}};
    if (!o.cache.empty()) body["cache"] = o.cache;
    TRY_ASSIGN(auto r, call(o.client, "POST", "/api/v1/fsck", body));
    if (o.json_output) std::cout << r.dump(2) << "\n";
    else {
        std::cout << fmt::format("{} chunks checked: {} missing, {} corrupt\n", r["chunks_checked"].get<int64_t>(),
                                 r["missing"].get<int64_t>(), r["corrupt"].get<int64_t>());
        for (const auto& b : r["bad_blobs"]) std::cout << "  bad chunk " << b.get<std::string>() << "\n";
        for (const auto& p : r["damaged_paths"]) std::cout << "  damaged  " << p.get<std::string>() << "\n";
        for (const auto& p : r["withdrawn"]) std::cout << "  withdrawn " << p.get<std::string>() << "\n";
        for (const auto& e : r["errors"]) std::cout << "  unreadable " << e.get<std::string>() << "\n";
    }
    if (!r["damaged_paths"].empty() && !o.repair)
        return fail(ErrorCode::corrupt, fmt::format("{} paths are damaged (their NARs answer 404); larder fsck --repair "
                                                    "withdraws them so that pushing them again heals them",
                                                    r["damaged_paths"].size()));
    if (!r["errors"].empty()) return fail(ErrorCode::unavailable, "some chunks could not be read; run fsck again");
    return ok();
}

struct PinCommand {
    ClientOptions client;
    std::string cache, name, path;
    int keep = 1;
    bool cascade = false;
    bool json_output = false;
};

}  // namespace

void add_gc_commands(CLI::App& app) {
    auto gc = std::make_shared<GcCommand>();
    auto* cmd = app.add_subcommand("gc", "Collect garbage now: paths past retention or over quota, then unused storage");
    cmd->add_flag("--dry-run", gc->dry_run, "List the paths and bytes that would go; change nothing");
    cmd->add_option("--cache", gc->cache, "Only this cache's paths (unused storage is swept for all)");
    cmd->add_option("--now", gc->now,
                    "Pretend it is this Unix time, or +DURATION from now (testing retention; also ages the grace "
                    "period, so do not use it while uploads run)");
    cmd->add_flag("--json", gc->json_output, "Print JSON");
    add_client_options(*cmd, gc->client);
    cmd->callback([gc] { report(run_gc(*gc)); });

    auto fsck = std::make_shared<FsckCommand>();
    auto* fsck_cmd = app.add_subcommand("fsck", "Check that every stored chunk is there with the right hash");
    fsck_cmd->add_flag("--repair", fsck->repair,
                       "Withdraw damaged paths (and their referrers), so that pushing them again heals them");
    fsck_cmd->add_option("--cache", fsck->cache, "Only the chunks this cache's paths use");
    fsck_cmd->add_option("--sample", fsck->sample, "Check about this percentage of the chunks (default 100)")
        ->check(CLI::Range(1, 100));
    fsck_cmd->add_flag("--json", fsck->json_output, "Print JSON");
    add_client_options(*fsck_cmd, fsck->client);
    fsck_cmd->callback([fsck] { report(run_fsck(*fsck)); });

    auto pin = std::make_shared<PinCommand>();
    auto* pin_cmd = app.add_subcommand("pin", "Keep a path's closure regardless of retention and quota");
    pin_cmd->add_option("cache", pin->cache, "Cache name")->required();
    pin_cmd->add_option("name", pin->name, "Pin name (pinning the name again adds a revision)")->required();
    pin_cmd->add_option("path", pin->path, "Store path in the cache")->required();
    pin_cmd->add_option("--keep", pin->keep, "Revisions of this name to keep pinned (default 1)")
        ->check(CLI::Range(1, 10000));
    add_client_options(*pin_cmd, pin->client);
    pin_cmd->callback([pin] {
        report([&]() -> Result<void> {
            json body{{"name", pin->name}, {"path", pin->path}, {"keep", pin->keep}};
            TRY_ASSIGN(auto r, call(pin->client, "POST", fmt::format("/api/v1/caches/{}/pins", pin->cache), body));
            std::cout << fmt::format("pinned /nix/store/{} as '{}' in cache '{}'\n", r["path"].get<std::string>(),
                                     pin->name, pin->cache);
            return ok();
        }());
    });

    auto pins = std::make_shared<PinCommand>();
    auto* pins_cmd = app.add_subcommand("pins", "List a cache's pins, newest revision first");
    pins_cmd->add_option("cache", pins->cache, "Cache name")->required();
    pins_cmd->add_flag("--json", pins->json_output, "Print JSON");
    add_client_options(*pins_cmd, pins->client);
    pins_cmd->callback([pins] {
        report([&]() -> Result<void> {
            TRY_ASSIGN(auto r, call(pins->client, "GET", fmt::format("/api/v1/caches/{}/pins", pins->cache)));
            if (pins->json_output) std::cout << r.dump(2) << "\n";
            else
                for (const auto& p : r)
                    std::cout << fmt::format("{:<24} /nix/store/{}\n", p["name"].get<std::string>(),
                                             p["path"].get<std::string>());
            return ok();
        }());
    });

    auto unpin = std::make_shared<PinCommand>();
    auto* unpin_cmd = app.add_subcommand("unpin", "Remove a pin (every revision of the name)");
    unpin_cmd->add_option("cache", unpin->cache, "Cache name")->required();
    unpin_cmd->add_option("name", unpin->name, "Pin name")->required();
    add_client_options(*unpin_cmd, unpin->client);
    unpin_cmd->callback([unpin] {
        report([&]() -> Result<void> {
            TRY(call(unpin->client, "DELETE", fmt::format("/api/v1/caches/{}/pins/{}", unpin->cache, unpin->name)));
            std::cout << fmt::format("unpinned '{}' in cache '{}'\n", unpin->name, unpin->cache);
            return ok();
        }());
    });

    auto del = std::make_shared<PinCommand>();
    auto* path_cmd = app.add_subcommand("path", "Store paths in a cache");
    path_cmd->require_subcommand(1);
    auto* delete_cmd = path_cmd->add_subcommand("delete", "Delete a path from a cache (storage is reclaimed by gc)");
    delete_cmd->add_option("cache", del->cache, "Cache name")->required();
    delete_cmd->add_option("path", del->path, "Store path (or its hash part)")->required();
    delete_cmd->add_flag("--cascade", del->cascade, "Also delete the paths of the cache that refer to it");
    add_client_options(*delete_cmd, del->client);
    delete_cmd->callback([del] {
        report([&]() -> Result<void> {
            auto hash = nix::hash_part_of(del->path);
            if (!hash) return fail(ErrorCode::invalid_input, fmt::format("'{}' is not a store path", del->path));
            TRY_ASSIGN(auto r, call(del->client, "DELETE",
                                    fmt::format("/api/v1/caches/{}/paths/{}", del->cache, *hash),
                                    json{{"cascade", del->cascade}}));
            for (const auto& p : r["deleted"]) std::cout << "deleted /nix/store/" << p.get<std::string>() << "\n";
            return ok();
        }());
    });
}

}  // namespace larder::app
