// larder cache create|list|info|configure|delete|rotate-key, over the JSON API.
#include <iostream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "client/login.hpp"
#include "util/file.hpp"
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
    std::string proxy_retention, proxy_max_size;  // the same, for paths fetched from upstreams
    // Pull-through: "URL=KEY" (repeat a URL for more keys; order is the
    // order asked), "URL=FILE" for a private upstream's token, one timeout.
    std::vector<std::string> upstreams, upstream_token_files;
    std::string upstream_timeout;
    bool no_upstreams = false;
    bool json_output = false;
};

// "URL=VALUE" split at the first '=' after the scheme's "://".
Result<std::pair<std::string, std::string>> url_pair(std::string_view text, std::string_view what) {
    auto scheme = text.find("://");
    auto eq = text.find('=', scheme == std::string_view::npos ? 0 : scheme + 3);
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size())
        return fail(ErrorCode::invalid_input, fmt::format("'{}': expected URL={}", printable(text, 200), what));
    return std::pair{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

Result<json> upstreams_json(const CacheOptions& o) {
    json list = json::array();
    auto entry = [&](const std::string& url) -> json& {
        for (auto& e : list)
            if (e["url"] == url) return e;
        list.push_back(json{{"url", url}, {"keys", json::array()}});
        return list.back();
    };
    for (const auto& u : o.upstreams) {
        TRY_ASSIGN(auto pair, url_pair(u, "KEY"));
        entry(pair.first)["keys"].push_back(pair.second);
    }
    for (const auto& t : o.upstream_token_files) {
        TRY_ASSIGN(auto pair, url_pair(t, "FILE"));
        bool known = std::any_of(list.begin(), list.end(), [&](const json& e) { return e["url"] == pair.first; });
        if (!known) return fail(ErrorCode::invalid_input, fmt::format("--upstream-token-file names {}, which no "
                                                                      "--upstream gives",
                                                                      pair.first));
        TRY_ASSIGN(auto token, read_file(pair.second));
        entry(pair.first)["token"] = std::string(trim(token));
    }
    if (!o.upstream_timeout.empty()) {
        TRY_ASSIGN(auto ms, parse_duration_ms(o.upstream_timeout));
        for (auto& e : list) e["timeout_ms"] = ms;
    }
    return list;
}

Result<json> settings(const CacheOptions& o) {
    json j = json::object();
    // "none" is 0: no limit.
    for (auto [field, text] : {std::pair{"retention", &o.retention}, std::pair{"proxy_retention", &o.proxy_retention}}) {
        if (text->empty()) continue;
        if (*text == "none") {
            j[field] = 0;
        } else {
            TRY_ASSIGN(j[field], parse_duration(*text));
        }
    }
    for (auto [field, text] : {std::pair{"max_size", &o.max_size}, std::pair{"proxy_max_size", &o.proxy_max_size}}) {
        if (text->empty()) continue;
        if (*text == "none") {
            j[field] = 0;
        } else {
            TRY_ASSIGN(j[field], parse_size(*text));
        }
    }
    if (o.make_public) j["public"] = true;
    if (o.make_private) j["public"] = false;
    if (o.priority) j["priority"] = *o.priority;
    if (!o.upstream_keys.empty()) j["upstream_keys"] = o.upstream_keys;
    if (o.no_upstreams) j["upstreams"] = json::array();
    if (!o.upstreams.empty()) {
        TRY_ASSIGN(j["upstreams"], upstreams_json(o));
    } else if (!o.upstream_token_files.empty() || !o.upstream_timeout.empty()) {
        return fail(ErrorCode::invalid_input, "--upstream-token-file and --upstream-timeout go with --upstream");
    }
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
    if (c.contains("proxy_retention") && c["proxy_retention"].is_number())
        std::cout << fmt::format("  upstream paths kept: {} days after last use\n",
                                 c["proxy_retention"].get<int64_t>() / 86400.0);
    if (c.contains("proxy_max_size") && c["proxy_max_size"].is_number())
        std::cout << fmt::format("  upstream paths max size: {} bytes\n", c["proxy_max_size"].get<int64_t>());
    if (c.contains("upstreams") && c["upstreams"].is_array())
        for (const auto& u : c["upstreams"])
            std::cout << fmt::format("  upstream:   {} ({} key{}{}, timeout {} ms)\n", u.value("url", ""),
                                     u["keys"].size(), u["keys"].size() == 1 ? "" : "s",
                                     u.value("token_set", false) ? ", token" : "", u.value("timeout_ms", 0));
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
            cmd->add_option("--upstream", opts->upstreams,
                            "Pull through from this binary cache: URL=PUBLICKEY (repeat for more keys or more "
                            "upstreams, asked in order; replaces the list)");
            cmd->add_option("--upstream-token-file", opts->upstream_token_files,
                            "URL=FILE: a token for a private upstream (another Larder), read from FILE");
            cmd->add_option("--upstream-timeout", opts->upstream_timeout,
                            "For every --upstream: connect and answer a narinfo within this (e.g. 3s, 500ms)");
            cmd->add_flag("--no-upstreams", opts->no_upstreams, "Stop pulling through from upstreams");
            cmd->add_option("--proxy-retention", opts->proxy_retention,
                            "For paths fetched from upstreams, instead of --retention, e.g. 7d; none: as the rest");
            cmd->add_option("--proxy-max-size", opts->proxy_max_size,
                            "Cap on the bytes of paths fetched from upstreams (least recently used first; paths "
                            "your own refer to stay), e.g. 50G; none: no cap of their own");
        }
        cmd->add_flag("--json", opts->json_output, "Print JSON");
        add_client_options(*cmd, opts->client);
        cmd->callback([opts, verb = verb] { report(run(*opts, verb)); });
    }
}

}  // namespace larder::app
