// Logging setup: one line per event on stderr, "time level message", or
// (json) one JSON object per line: {"time", "level", "msg"}, or, for an
// event logged as a JSON object of its own fields (log_event()), those fields
// after time and level.
#pragma once

#include <string>
#include <string_view>

#include <spdlog/common.h>

#include "util/result.hpp"

namespace larder {

// `level`: trace, debug, info, warn, error, off. Lines are buffered and
// written when 64 KiB gather, at each warning or error, and every 50 ms, so
// request logs cost no system call each; stop_logging() writes what is left.
Result<void> setup_logging(std::string_view level, std::string_view format = "text");
void stop_logging();
// Whether lines are JSON objects (then callers may log_event()).
bool logging_json();
// With JSON logs: an event given as a JSON object of its own fields (built
// with a JSON library, so that it is valid), written as one line after the
// time and level.
void log_event(spdlog::level::level_enum level, std::string_view fields);

// `text` as the body of a JSON string: quotes, backslashes and control
// characters escaped; bytes that are not valid UTF-8 as \u00XX.
std::string json_escape(std::string_view text);

}  // namespace larder
