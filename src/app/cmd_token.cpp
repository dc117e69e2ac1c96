// larder token create|list|revoke, over the JSON API.
#include <iostream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "client/login.hpp"
#include "util/strings.hpp"

namespace larder::app {

namespace {

using json = nlohmann::json;

struct TokenOptions {
    ClientOptions client;
    std::string name;
    std::string caches;
    bool pull = false, push = false, del = false, admin = false;
    std::string expires;
    int64_t id = 0;
    bool json_output = false;
};

Result<json> call(const TokenOptions& o, std::string_view method, std::string_view path, const json& body = {}) {
    TRY_ASSIGN(auto login, client::resolve_login(o.client.server, o.client.token));
    return client::call_api(login, method, path, body);
}

Result<void> run(const TokenOptions& o, std::string_view verb) {
    if (verb == "create") {
        json body{{"name", o.name}, {"caches", o.caches}, {"pull", o.pull}, {"push", o.push},
                  {"delete", o.del}, {"admin", o.admin}};
        if (!o.expires.empty()) {
            TRY_ASSIGN(auto seconds, parse_duration(o.expires));
            body["expires_in"] = seconds;
        }
        TRY_ASSIGN(auto t, call(o, "POST", "/api/v1/tokens", body));
        if (o.json_output) std::cout << t.dump(2) << "\n";
        else
            std::cout << fmt::format("token {} (id {}) created; this is the only time its secret is shown:\n{}\n",
                                     printable(t.value("name", ""), 64), t.value("id", 0), t.value("secret", ""));
        return ok();
    }
    if (verb == "list") {
        TRY_ASSIGN(auto list, call(o, "GET", "/api/v1/tokens"));
        if (o.json_output) {
            std::cout << list.dump(2) << "\n";
            return ok();
        }
        for (const auto& t : list) {
            const auto& s = t["scope"];
            std::string perms;
            for (auto p : {"pull", "push", "delete", "admin"})
                if (s.value(p, false)) perms += std::string(perms.empty() ? "" : ",") + p;
            // Names come from any admin: printed without escape sequences (L10).
            std::cout << fmt::format("{:>4}  {:<20} caches={:<12} {:<22} {}\n", t.value("id", 0),
                                     printable(t.value("name", ""), 64), printable(s.value("caches", ""), 64), perms,
                                     !t["revoked_at"].is_null() ? "revoked"
                                     : !t["expires_at"].is_null() ? fmt::format("expires_at={}", t["expires_at"].get<int64_t>())
                                                                  : "");
        }
        return ok();
    }
    TRY(call(o, "DELETE", fmt::format("/api/v1/tokens/{}", o.id)));
    if (!o.json_output) std::cout << fmt::format("revoked token {}\n", o.id);
    return ok();
}

}  // namespace

void add_token_commands(CLI::App& app) {
    auto* token = app.add_subcommand("token", "Create, list and revoke access tokens");
    token->require_subcommand(1);
    const std::pair<std::string, std::string> verbs[] = {
        {"create", "Mint a token (printed once; the server keeps only its hash)"},
        {"list", "List tokens: id, name, caches, permissions, expiry, revocation"},
        {"revoke", "Revoke a token and every token minted with it"}};
    for (const auto& [verb, description] : verbs) {
        auto o = std::make_shared<TokenOptions>();
        auto* cmd = token->add_subcommand(verb, description);
        if (verb == "create") {
            cmd->add_option("name", o->name, "What the token is for, e.g. ci")->required();
            cmd->add_option("--cache", o->caches, "Cache name or pattern such as team-*")->required();
            cmd->add_flag("--pull", o->pull, "May read private caches");
            cmd->add_flag("--push", o->push, "May upload");
            cmd->add_flag("--delete", o->del, "May delete");
            cmd->add_flag("--admin", o->admin, "May configure caches and tokens");
            cmd->add_option("--expires", o->expires, "Lifetime, e.g. 30d, 12h");
        }
        if (verb == "revoke") cmd->add_option("id", o->id, "Token id (see token list)")->required();
        cmd->add_flag("--json", o->json_output, "Print JSON");
        add_client_options(*cmd, o->client);
        cmd->callback([o, verb = verb] { report(run(*o, verb)); });
    }
}

}  // namespace larder::app
