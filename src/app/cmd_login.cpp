// larder login NAME URL [TOKEN | -]
#include <unistd.h>

#include <iostream>
#include <string>

#include <fmt/core.h>

#include "app/commands.hpp"
#include "client/login.hpp"

namespace larder::app {

void add_login_command(CLI::App& app) {
    struct Options {
        std::string name, url, token;
    };
    auto o = std::make_shared<Options>();
    auto* cmd = app.add_subcommand("login", "Save a server URL and token (~/.config/larder/config.toml, 0600)");
    cmd->add_option("name", o->name, "A name for this server")->required();
    cmd->add_option("url", o->url, "Server URL, e.g. https://cache.example.org")->required();
    cmd->add_option("token", o->token,
                    "Token; '-' or none: read from standard input (keeps it out of ps and shell history)");
    cmd->callback([o] {
        if (o->token.empty() || o->token == "-") {
            if (::isatty(0)) std::cerr << fmt::format("token for {}: ", o->url) << std::flush;
            std::getline(std::cin, o->token);
            while (!o->token.empty() && (o->token.back() == '\r' || o->token.back() == ' ')) o->token.pop_back();
        }
        auto r = o->token.empty() ? Result<void>(fail(ErrorCode::invalid_input, "no token given (argument or stdin)"))
                                  : client::save_login(o->name, o->url, o->token);
        if (r) fmt::print("saved login '{}' for {} in {}\n", o->name, o->url, client::config_path().string());
        report(r);
    });
}

}  // namespace larder::app
