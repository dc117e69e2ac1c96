// larder use CACHE [--dry-run] [--nixos] [--remove]: point this machine's Nix
// at a cache (substituter, trusted key, netrc with the token).
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "client/login.hpp"
#include "client/nix_config.hpp"
#include "crypto/keys.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace larder::app {

namespace {

// What the server says goes into nix.conf (often as root) and netrc: only
// an http(s) URL of plain URL characters, and a key Nix can parse.
Result<void> check_cache_description(std::string_view url, std::string_view key) {
    bool url_ok = (url.starts_with("https://") || url.starts_with("http://")) && url.size() < 2048 &&
                  is_alnum_or(url, k_url_characters);
    if (!url_ok)
        return fail(ErrorCode::corrupt, fmt::format("the server gave a cache URL that is not a plain http(s) URL "
                                                    "('{}'); nothing was written",
                                                    printable(url, 100)));
    auto parsed = crypto::parse_public_key(key);
    bool key_ok = parsed && is_alnum_or(key, "-._:+/=");
    if (!key_ok)
        return fail(ErrorCode::corrupt, fmt::format("the server gave a public key Nix cannot use ('{}'); nothing "
                                                    "was written",
                                                    printable(key, 100)));
    return ok();
}

namespace fs = std::filesystem;

struct UseOptions {
    ClientOptions client;
    std::string cache;
    bool dry_run = false;
    bool nixos = false;
    bool remove = false;
};

struct Targets {
    fs::path conf;
    fs::path netrc;
    bool root;
};

Targets targets() {
    if (::geteuid() == 0) {
        const char* dir = std::getenv("NIX_CONF_DIR");
        fs::path base = dir && *dir ? dir : "/etc/nix";
        return {base / "nix.conf", base / "netrc", true};
    }
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    const char* home = std::getenv("HOME");
    fs::path base = xdg && *xdg ? fs::path(xdg) : fs::path(home ? home : ".") / ".config";
    return {base / "nix/nix.conf", base / "nix/netrc", false};
}

std::string run_nix(const char* command) {
    std::string out;
    FILE* p = ::popen(command, "r");
    if (!p) return out;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    ::pclose(p);
    return out;
}

bool nix_has_extra_settings() {
    auto v = client::parse_nix_version(run_nix("nix --version 2>/dev/null"));
    return !v || *v >= std::pair{2, 4};
}

// Whether the daemon will honour this user's substituters and keys: the
// user, one of its groups (@group) or '*' is in trusted-users.
bool user_is_trusted() {
    auto config = run_nix("nix show-config 2>/dev/null");
    auto pos = config.find("trusted-users = ");
    if (pos == std::string::npos) return false;
    auto line = std::string_view(config).substr(pos + 16);
    line = line.substr(0, line.find('\n'));
    std::vector<std::string> names{"*"};
    if (auto* pw = ::getpwuid(::geteuid())) names.emplace_back(pw->pw_name);
    gid_t groups[256];
    int count = ::getgroups(256, groups);
    for (int i = 0; i < count; ++i)
        if (auto* gr = ::getgrgid(groups[i])) names.push_back(std::string("@") + gr->gr_name);
    for (auto word : split(line, ' '))
        for (const auto& n : names)
            if (word == n) return true;
    return false;
}

std::string host_of(std::string_view url) {
    auto rest = url.substr(url.find("://") == std::string_view::npos ? 0 : url.find("://") + 3);
    rest = rest.substr(0, rest.find('/'));
    if (rest.starts_with('[')) return std::string(rest.substr(0, rest.find(']') + 1));
    return std::string(rest.substr(0, rest.find(':')));
}

Result<std::string> read_or_empty(const fs::path& p) {
    auto text = read_file(p);
    if (!text && text.error().code == ErrorCode::not_found) return std::string();
    return text;
}

// Writes `after` (or removes the file when it became empty); with --dry-run
// prints what would change instead, the token masked.
Result<bool> apply(const fs::path& path, const std::string& before, const std::string& after, mode_t mode,
                   bool dry_run, const std::string& token) {
    if (before == after) return false;
    if (dry_run) {
        auto mask = [&](std::string s) {
            if (!token.empty())
                for (size_t pos; (pos = s.find(token)) != std::string::npos;) s.replace(pos, token.size(), "<token>");
            return s;
        };
        std::cout << fmt::format("--- {} (before)\n{}+++ {} (after)\n{}", path.string(), mask(before), path.string(),
                                 mask(after));
        return true;
    }
    std::error_code ec;
    // NixOS links /etc/nix/nix.conf into the store: replacing the link would
    // silently undo the system's configuration on the next rebuild (L14).
    if (fs::is_symlink(path, ec))
        return fail(ErrorCode::invalid_input,
                    fmt::format("{} is a symlink (NixOS manages it): nothing was written; run `larder use --nixos` "
                                "and put what it prints in configuration.nix",
                                path.string()));
    if (after.empty()) {
        fs::remove(path, ec);
        return true;
    }
    fs::create_directories(path.parent_path(), ec);
    TRY(write_file_atomic(path, after, mode));
    return true;
}

Result<void> use(const UseOptions& o) {
    TRY_ASSIGN(auto login, client::resolve_login(o.client.server, o.client.token));
    auto t = targets();
    if (o.remove) {
        TRY_ASSIGN(auto conf, read_or_empty(t.conf));
        TRY_ASSIGN(auto netrc, read_or_empty(t.netrc));
        auto host = host_of(login.url);
        auto new_conf = client::without_cache_block(conf, o.cache);
        // The netrc line may serve other caches of the same server.
        bool host_still_used = new_conf.find(fmt::format("://{}", host)) != std::string::npos;
        auto new_netrc = host_still_used ? netrc : client::without_netrc_entry(netrc, host);
        TRY_ASSIGN(bool c1, apply(t.conf, conf, new_conf, 0644, o.dry_run, login.token));
        TRY_ASSIGN(bool c2, apply(t.netrc, netrc, new_netrc, 0600, o.dry_run, login.token));
        if (!o.dry_run) std::cout << (c1 || c2 ? fmt::format("removed cache '{}' from {}\n", o.cache, t.conf.string())
                                               : "nothing to remove\n");
        return ok();
    }
    TRY_ASSIGN(auto info, client::call_api(login, "GET", "/api/v1/caches/" + o.cache));
    if (!info["url"].is_string() || !info["public_key"].is_string())
        return fail(ErrorCode::corrupt, "the server's cache description lacks url or public_key");
    auto url = info["url"].get<std::string>();
    auto key = info["public_key"].get<std::string>();
    TRY(check_cache_description(url, key));
    auto host = host_of(url);
    if (o.nixos) {
        std::cout << fmt::format(
            "# NixOS: add to configuration.nix, then put the token in /etc/nix/netrc (mode 0600):\n"
            "#   machine {} login larder password <token>\n"
            "{{\n  nix.settings.substituters = [ \"{}\" ];\n  nix.settings.trusted-public-keys = [ \"{}\" ];\n"
            "  nix.settings.netrc-file = \"/etc/nix/netrc\";\n}}\n",
            host, url, key);
        return ok();
    }
    client::CacheConfig cfg{o.cache, url, key, t.netrc.string(), nix_has_extra_settings()};
    TRY_ASSIGN(auto conf, read_or_empty(t.conf));
    TRY_ASSIGN(auto netrc, read_or_empty(t.netrc));
    auto new_conf = client::with_cache_block(conf, cfg);
    auto new_netrc = login.token.empty() ? netrc : client::with_netrc_entry(netrc, host, login.token);
    TRY_ASSIGN(bool c1, apply(t.conf, conf, new_conf, 0644, o.dry_run, login.token));
    TRY_ASSIGN(bool c2, apply(t.netrc, netrc, new_netrc, 0600, o.dry_run, login.token));
    if (o.dry_run) return ok();
    std::cout << (c1 || c2 ? fmt::format("configured Nix to use {} (key {}) in {}\n", url, key, t.conf.string())
                           : fmt::format("{} already uses {}\n", t.conf.string(), url));
    if (!t.root && !user_is_trusted())
        std::cout << "warning: you are not in trusted-users, so the Nix daemon will ignore the substituter "
                     "and key written to "
                  << t.conf.string() << ". Run `sudo larder use " << o.cache
                  << "` instead, or have root add you to trusted-users.\n";
    return ok();
}

}  // namespace

void add_use_command(CLI::App& app) {
    auto o = std::make_shared<UseOptions>();
    auto* cmd = app.add_subcommand("use", "Configure this machine's Nix to substitute from a cache");
    cmd->add_option("cache", o->cache, "Cache name")->required();
    cmd->add_flag("--dry-run", o->dry_run, "Show the changes without making them");
    cmd->add_flag("--nixos", o->nixos, "Print a NixOS module snippet instead");
    cmd->add_flag("--remove", o->remove, "Undo what `larder use CACHE` added");
    add_client_options(*cmd, o->client);
    cmd->callback([o] { report(use(*o)); });
}

}  // namespace larder::app
