// Logging setup: one line per event on stderr, "time level message".
#pragma once

#include <string_view>

#include "util/result.hpp"

namespace larder {

// `level`: trace, debug, info, warn, error, off.
Result<void> setup_logging(std::string_view level);

}  // namespace larder
