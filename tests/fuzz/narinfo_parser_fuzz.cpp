// libFuzzer target: narinfo parsing, and render/parse of what parsed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "nix/nar_info.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto info = larder::nix::parse_nar_info(text);
    if (info) {
        // Whatever parses must render to something that parses the same.
        auto again = larder::nix::parse_nar_info(info->render());
        if (!again || again->render() != info->render()) std::abort();
    }
    (void)larder::nix::parse_cache_info(text);
    return 0;
}
