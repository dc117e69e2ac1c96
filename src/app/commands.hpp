// Subcommand registration, and the one way commands report failure.
#pragma once

#include <CLI/CLI.hpp>

#include "util/result.hpp"

namespace larder::app {

void add_keygen_command(CLI::App& app);
void add_nar_commands(CLI::App& app);

// Prints "larder: <message>" for a failed result and records exit status 1.
void report(const Result<void>& result);
int exit_code();

}  // namespace larder::app
