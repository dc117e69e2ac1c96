// Subcommand registration, and the one way commands report failure.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "util/result.hpp"

namespace larder::app {

void add_keygen_command(CLI::App& app);
void add_nar_commands(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_cache_commands(CLI::App& app);
void add_login_command(CLI::App& app);
void add_token_commands(CLI::App& app);
void add_use_command(CLI::App& app);
void add_push_commands(CLI::App& app);
void add_gc_commands(CLI::App& app);

// --server and --token, shared by every client command.
struct ClientOptions {
    std::optional<std::string> server;
    std::optional<std::string> token;
};
void add_client_options(CLI::App& cmd, ClientOptions& options);

// Prints "larder: <message>" for a failed result and records exit status 1.
void report(const Result<void>& result);
int exit_code();

}  // namespace larder::app
