#include "client/login.hpp"

#include <cstdlib>
#include <sstream>

#include <fmt/core.h>
#include <toml++/toml.h>

#include "util/file.hpp"

namespace larder::client {

namespace fs = std::filesystem;

fs::path config_path() {
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) return fs::path(xdg) / "larder/config.toml";
    const char* home = std::getenv("HOME");
    return fs::path(home ? home : "/root") / ".config/larder/config.toml";
}

namespace {

Result<toml::table> load_config() {
    auto path = config_path();
    auto text = read_file(path);
    if (!text) {
        if (text.error().code == ErrorCode::not_found) return toml::table{};
        return Failure{std::move(text).error()};
    }
    try {
        return toml::parse(*text, path.string());
    } catch (const toml::parse_error& e) {
        return fail(ErrorCode::invalid_input, fmt::format("{}: {}", path.string(), e.description()));
    }
}

std::string trim_url(std::string url) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url;
}

}  // namespace

Result<void> save_login(std::string_view name, std::string_view url, std::string_view token) {
    TRY_ASSIGN(auto config, load_config());
    if (!config.contains("servers")) config.insert("servers", toml::table{});
    auto* servers = config["servers"].as_table();
    servers->insert_or_assign(std::string(name),
                              toml::table{{"url", trim_url(std::string(url))}, {"token", std::string(token)}});
    config.insert_or_assign("default", std::string(name));
    std::ostringstream out;
    out << config << "\n";
    auto path = config_path();
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) return fail(ErrorCode::unavailable, fmt::format("cannot create {}: {}", path.parent_path().string(), ec.message()));
    return write_file_atomic(path, out.str(), 0600);
}

Result<ServerLogin> resolve_login(const std::optional<std::string>& server_flag,
                                  const std::optional<std::string>& token_flag) {
    ServerLogin login;
    const char* env_server = std::getenv("LARDER_SERVER");
    const char* env_token = std::getenv("LARDER_TOKEN");
    if (server_flag) login.url = *server_flag;
    else if (env_server && *env_server) login.url = env_server;
    if (token_flag) login.token = *token_flag;
    else if (env_token && *env_token) login.token = env_token;
    if (login.url.empty() || (login.token.empty() && !token_flag)) {
        TRY_ASSIGN(auto config, load_config());
        auto name = config["default"].value_or(std::string());
        // A server given by flag or environment matches a saved login by URL.
        toml::table* entry = nullptr;
        if (auto* servers = config["servers"].as_table()) {
            for (auto& [key, value] : *servers) {
                auto* t = value.as_table();
                if (!t) continue;
                auto url = trim_url((*t)["url"].value_or(std::string()));
                if ((login.url.empty() && key.str() == name) || (!login.url.empty() && url == trim_url(login.url))) {
                    entry = t;
                    break;
                }
            }
        }
        if (entry) {
            if (login.url.empty()) login.url = (*entry)["url"].value_or(std::string());
            if (login.token.empty()) login.token = (*entry)["token"].value_or(std::string());
        }
    }
    if (login.url.empty())
        return fail(ErrorCode::invalid_input,
                    "no server: pass --server URL, set LARDER_SERVER, or run 'larder login NAME URL TOKEN'");
    login.url = trim_url(login.url);
    return login;
}

}  // namespace larder::client
