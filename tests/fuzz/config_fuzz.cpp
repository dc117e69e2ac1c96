// libFuzzer target: the TOML configuration of `larder serve`. Any text is
// a config or an error; a config's limits are usable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "app/server_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto config = larder::app::parse_serve_config(text, "fuzz.toml");
    if (!config) return 0;
    if (config->handler.max_nar_size == 0 || config->handler.max_small_body == 0 ||
        config->server.max_connections == 0)
        std::abort();
    return 0;
}
