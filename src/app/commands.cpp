#include "app/commands.hpp"

#include <fmt/core.h>

namespace larder::app {

namespace {
int g_exit_code = 0;  // set once by the single command a process runs
}

void report(const Result<void>& result) {
    if (result) return;
    fmt::print(stderr, "larder: {}\n", result.error().message);
    g_exit_code = 1;
}

int exit_code() { return g_exit_code; }

}  // namespace larder::app
