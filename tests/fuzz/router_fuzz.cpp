// libFuzzer target: request targets. Whatever routes names a valid cache
// and a name with no way out of where it belongs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cache/service.hpp"
#include "http/router.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view target(reinterpret_cast<const char*>(data), size);
    auto r = larder::http::route(target);
    if (!r) return 0;
    using larder::http::RouteKind;
    // The server's own routes name no cache.
    if (r->kind == RouteKind::health || r->kind == RouteKind::ready || r->kind == RouteKind::metrics || r->kind == RouteKind::landing ||
        r->kind == RouteKind::api) {
        if (!r->cache.empty()) std::abort();
        return 0;
    }
    if (!larder::cache::is_valid_cache_name(r->cache)) std::abort();
    std::string_view name = r->name;
    if (name == ".." || name.starts_with("../") || name.find("/../") != std::string_view::npos ||
        name.ends_with("/..") || name.find('\0') != std::string_view::npos || name.find('\\') != std::string_view::npos)
        std::abort();
    if (r->kind != RouteKind::realisation && name.find('/') != std::string_view::npos) std::abort();
    return 0;
}
