#include "util/log.hpp"

#include <fmt/core.h>
#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace larder {

Result<void> setup_logging(std::string_view level) {
    auto lvl = spdlog::level::from_str(std::string(level));
    if (lvl == spdlog::level::off && level != "off")
        return fail(ErrorCode::invalid_input, fmt::format("unknown log level '{}'", level));
    // A full queue blocks the caller rather than dropping lines.
    spdlog::init_thread_pool(16384, 1);
    auto logger = spdlog::create_async<spdlog::sinks::stderr_sink_mt>("larder");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
    logger->set_level(lvl);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
    return ok();
}

void stop_logging() { spdlog::shutdown(); }

}  // namespace larder
