// Logging setup: one line per event on stderr, "time level message".
#pragma once

#include <string_view>

#include "util/result.hpp"

namespace larder {

// `level`: trace, debug, info, warn, error, off. Lines are formatted by the
// caller and written by a logging thread, so a slow stderr (a pipe to
// journald) never holds up a request; stop_logging() flushes them.
Result<void> setup_logging(std::string_view level);
void stop_logging();

}  // namespace larder
