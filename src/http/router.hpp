// Maps a request target to what it names. Paths are percent-decoded once and
// then checked: no "..", ".", empty segments or control characters, so
// nothing below ever sees a path that could climb out of where it belongs.
#pragma once

#include <string>
#include <string_view>

#include "util/result.hpp"

namespace larder::http {

enum class RouteKind {
    health,          // /health and /healthz: the process answers
    ready,           // /readyz: the database and the storage answer in time
    metrics,         // /metrics: Prometheus text
    landing,         // /: the public caches and how to use them (HTML)
    api,             // name: the path after /api/v1/
    cache_info,      // /<cache>/nix-cache-info
    push,            // /<cache>/push/<hash>: larder push (NAR + narinfo in one PUT)
    narinfo,         // /<cache>/<hash>.narinfo       name: hash part
    listing,         // /<cache>/<hash>.ls            name: hash part
    nar,             // /<cache>/nar/<file>           name: file
    log,             // /<cache>/log/<drv>            name: drv base name
    realisation,     // /<cache>/realisations/<id>.doi or build-trace-v2/<drv>/<out>.doi
};

struct Route {
    RouteKind kind;
    std::string cache;
    std::string name;
    std::string query;
};

// not_found for targets that name nothing; invalid_input for malformed ones.
Result<Route> route(std::string_view target);

Result<std::string> percent_decode(std::string_view s);

}  // namespace larder::http
