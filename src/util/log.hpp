// Logging setup: one line per event on stderr, "time level message".
#pragma once

#include <string_view>

#include "util/result.hpp"

namespace larder {

// `level`: trace, debug, info, warn, error, off. Lines are buffered and
// written when 64 KiB gather, at each warning or error, and every 50 ms, so
// request logs cost no system call each; stop_logging() writes what is left.
Result<void> setup_logging(std::string_view level);
void stop_logging();

}  // namespace larder
