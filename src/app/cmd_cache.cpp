// larder cache create|list|info|configure|delete|rotate-key, over the JSON API.
#include <iostream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "client/login.hpp"
#include "util/strings.hpp"

namespace larder::app {

namespace {

using json = nlohmann::json;

struct CacheOptions {
    ClientOptions client;
    std::string name;
    bool make_public = false;
    bool make_private = false;
    std::optional<int> priority;
    std::vector<std::string> upstream_keys;
    std::string retention, max_size;  // "30d" / "200G", or "none"
    bool json_output = false;
};

Result<json> settings(const CacheOptions& o) {
    json j = json::object();
    if (!o.retention.empty()) {
        if (o.retention == "none") {
            j["retention"] = 0;
        } else {
            TRY_ASSIGN(j["retention"], parse_duration(o.retention));
        }
    }
    if (!o.max_size.empty()) {
        if (o.max_size == "none") {
            j["max_size"] = 0;
        } else {
            TRY_ASSIGN(j["max_size"], parse_size(o.max_size));
        }
    }
    if (o.make_public) j["public"] = true;
    if (o.make_private) j["public"] = false;
    if (o.priority) j["priority"] = *o.priority;
    if (!o.upstream_keys.empty()) j["upstream_keys"] = o.upstream_keys;
    return j;
}

void print_cache(const json& c, bool as_json) {
    if (as_json) {
        std::cout << c.dump(2) << "\n";
        return;
    }
    std::cout << fmt::format("{}\n  url:        {}\n  visibility: {}\n  priority:   {}\n  public key: {}\n",
                             c.value("name", ""), c.value("url", ""), c.value("public", false) ? "public" : "private",
                             c.value("priority", 0), c["public_key"].is_string() ? c["public_key"].get<std::string>() : "");
    if (c.contains("retention") && c["retention"].is_number())
        std::cout << fmt::format("  retention:  {} days after last use\n", c["retention"].get<int64_t>() / 86400.0);
    if (c.contains("max_size") && c["max_size"].is_number())
        std::cout << fmt::format("  max size:   {} bytes\n", c["max_size"].get<int64_t>());
}

Result<json> call(const CacheOptions& o, std::string_view method, std::string_view path, const json& body = {}) {
    TRY_ASSIGN(auto login, client::resolve_login(o.client.server, o.client.token));
    return client::call_api(login, method, path, body);
}

Result<void> run(const CacheOptions& o, std::string_view verb) {
    if (o.make_public && o.make_private) return fail(ErrorCode::invalid_input, "--public and --private exclude each other");
    auto path = fmt::format("/api/v1/caches/{}", o.name);
    if (verb == "list") {
        TRY_ASSIGN(auto list, call(o, "GET", "/api/v1/caches"));
        if (o.json_output) std::cout << list.dump(2) << "\n";
        else
            for (const auto& c : list) print_cache(c, false);
        return ok();
    }
    json result;
    if (verb == "create") {
        TRY_ASSIGN(auto body, settings(o));
        body["name"] = o.name;
        TRY_ASSIGN(result, call(o, "POST", "/api/v1/caches", body));
    } else if (verb == "info") {
        TRY_ASSIGN(result, call(o, "GET", path));
    } else if (verb == "configure") {
        TRY_ASSIGN(auto body, settings(o));
        TRY_ASSIGN(result, call(o, "PATCH", path, body));
    } else if (verb == "rotate-key") {
        TRY_ASSIGN(result, call(o, "POST", path + "/rotate-key", json::object()));
    } else if (verb == "delete") {
        TRY(call(o, "DELETE", path));
        if (!o.json_output) std::cout << fmt::format("deleted cache '{}'\n", o.name);
        return ok();
    }
    print_cache(result, o.json_output);
    return ok();
}

}  // namespace

void add_client_options(CLI::App& cmd, ClientOptions& o) {
    cmd.add_option("--server", o.server, "Server URL (else LARDER_SERVER, else the login)");
    cmd.add_option("--token", o.token, "Token (else LARDER_TOKEN, else the login)");
}

void add_cache_commands(CLI::App& app) {
    auto* cache = app.add_subcommand("cache", "Create, list, inspect, configure and delete caches");
    cache->require_subcommand(1);
    const std::pair<std::string, std::string> verbs[] = {
        {"create", "Create a cache with its own signing key"},
        {"list", "List the caches this token may see"},
        {"info", "Show a cache's URL, public keys, visibility, priority, retention and quota"},
        {"configure", "Change a cache's settings (only the options given)"},
        {"delete", "Delete a cache and its paths (storage is reclaimed by gc)"},
        {"rotate-key", "Sign every path with a new key; the old public key stays valid for its signatures"}};
    for (const auto& [verb, description] : verbs) {
        auto opts = std::make_shared<CacheOptions>();
        auto* cmd = cache->add_subcommand(verb, description);
        if (verb != "list") cmd->add_option("name", opts->name, "Cache name")->required();
        if (verb == "create" || verb == "configure") {
            cmd->add_flag("--public", opts->make_public, "Anyone may read the cache");
            cmd->add_flag("--private", opts->make_private, "Reading needs a token with pull (default)");
            cmd->add_option("--priority", opts->priority, "Nix substituter priority (lower is preferred)");
            cmd->add_option("--upstream-key", opts->upstream_keys,
                            "Key name whose signed paths pushes skip (default cache.nixos.org-1)");
            cmd->add_option("--retention", opts->retention,
                            "Keep paths this long after their (or a referrer's) last use, e.g. 30d; none: forever");
            cmd->add_option("--max-size", opts->max_size,
                            "Cap on the cache's NAR bytes, least recently used first, e.g. 200G; none: no cap");
        }
        cmd->add_flag("--json", opts->json_output, "Print JSON");
        add_client_options(*cmd, opts->client);
        cmd->callback([opts, verb = verb] { report(run(*opts, verb)); });
    }
}

}  // namespace larder::app
