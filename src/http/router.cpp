#include "http/router.hpp"

#include <algorithm>

#include <fmt/core.h>

#include "cache/service.hpp"
#include "nix/store_path.hpp"
#include "util/strings.hpp"

namespace larder::http {

namespace {

Failure bad_path(std::string_view why) {
    return fail(ErrorCode::invalid_input, fmt::format("invalid request path: {}", why));
}

Failure no_route() { return fail(ErrorCode::not_found, "not found"); }

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Store path names may contain + ? = (PROTOCOL.md §1.1), and realisation ids
// contain ':' and '!'.
bool is_safe_segment(std::string_view s) { return is_alnum_or(s, "+-._?=:!~@"); }

}  // namespace

Result<std::string> percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        int hi = i + 1 < s.size() ? hex(s[i + 1]) : -1;
        int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) return bad_path("malformed %-escape");
        char c = static_cast<char>(hi << 4 | lo);
        if (c == '/') return bad_path("an escaped '/' is not allowed");
        out += c;
        i += 2;
    }
    return out;
}

Result<Route> route(std::string_view target) {
    auto q = target.find('?');
    std::string query(q == std::string_view::npos ? "" : target.substr(q + 1));
    auto raw_path = target.substr(0, q);
    if (raw_path.empty() || raw_path.front() != '/') return bad_path("must start with '/'");
    TRY_ASSIGN(auto path, percent_decode(raw_path));
    auto segments = split(std::string_view(path).substr(1), '/');
    for (auto seg : segments) {
        if (seg == "." || seg == "..") return bad_path("'.' and '..' are not allowed");
        if (std::any_of(seg.begin(), seg.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\'; }))
            return bad_path("control characters and '\\' are not allowed");
    }
    if (segments.size() == 1 && segments[0].empty()) return Route{RouteKind::landing, "", "", query};
    if (segments.size() == 1 && (segments[0] == "health" || segments[0] == "healthz"))
        return Route{RouteKind::health, "", "", query};
    if (segments.size() == 1 && segments[0] == "readyz") return Route{RouteKind::ready, "", "", query};
    if (segments.size() == 1 && segments[0] == "metrics") return Route{RouteKind::metrics, "", "", query};
    if (segments.size() >= 2 && segments[0] == "api") {
        if (segments[1] != "v1") return no_route();
        return Route{RouteKind::api, "", path.substr(std::min(path.size(), size_t{8})), query};
    }
    if (segments.size() < 2) return no_route();
    for (auto seg : segments)
        if (seg.empty()) return bad_path("empty path segment");
    // The same rule as `cache create`: nothing else can name a cache.
    if (!cache::is_valid_cache_name(segments[0]))
        return fail(ErrorCode::not_found, fmt::format("no cache named '{}'", printable(segments[0], 64)));
    Route r{RouteKind::health, std::string(segments[0]), "", query};
    auto rest = segments[1];
    if (segments.size() == 2) {
        if (rest == "nix-cache-info") {
            r.kind = RouteKind::cache_info;
            return r;
        }
        for (auto [ext, kind] : {std::pair{std::string_view(".narinfo"), RouteKind::narinfo},
                                 std::pair{std::string_view(".ls"), RouteKind::listing}}) {
            if (rest.ends_with(ext)) {
                auto hash = rest.substr(0, rest.size() - ext.size());
                if (!nix::is_valid_hash_part(hash))
                    return fail(ErrorCode::invalid_input,
                                fmt::format("'{}' is not a store path hash (32 nix32 characters)", printable(hash)));
                r.kind = kind;
                r.name = hash;
                return r;
            }
        }
        return no_route();
    }
    if (segments.size() == 3 && (rest == "nar" || rest == "log")) {
        if (!is_safe_segment(segments[2])) return bad_path("unexpected characters in file name");
        r.kind = rest == "nar" ? RouteKind::nar : RouteKind::log;
        r.name = segments[2];
        return r;
    }
    if (segments.size() == 3 && rest == "push") {
        if (!nix::is_valid_hash_part(segments[2]))
            return fail(ErrorCode::invalid_input,
                        fmt::format("'{}' is not a store path hash (32 nix32 characters)", printable(segments[2])));
        r.kind = RouteKind::push;
        r.name = segments[2];
        return r;
    }
    bool v1 = segments.size() == 3 && rest == "realisations";
    bool v2 = segments.size() == 4 && rest == "build-trace-v2";
    if ((v1 || v2) && segments.back().ends_with(".doi")) {
        for (size_t i = 2; i < segments.size(); ++i)
            if (!is_safe_segment(segments[i])) return bad_path("unexpected characters in realisation name");
        r.kind = RouteKind::realisation;
        r.name = path.substr(r.cache.size() + 2);
        return r;
    }
    return no_route();
}

}  // namespace larder::http
