// HTTP GETs against upstream binary caches (cache.nixos.org, an nginx
// directory, another Larder), with the deadlines pull-through needs: a
// narinfo answers within the upstream's timeout or counts as a failure; a
// NAR streams as it arrives and fails if it stalls for that long.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace larder::upstream {

struct Endpoint {
    std::string url;         // base URL, no trailing slash
    std::string token;       // sent as "Authorization: Bearer"; empty: none
    std::string netrc_file;  // credentials by host (Nix's netrc-file); empty: none
    std::chrono::milliseconds timeout{3000};
};

struct Answer {
    long status = 0;
    std::string body;  // of a 200 only
};

// GET <url>/<path>: the whole exchange within the endpoint's timeout, a body
// of at most `max_body` bytes. Transport failures, timeouts and oversized
// bodies are errors (unavailable); HTTP statuses are answers.
Result<Answer> get(const Endpoint& endpoint, std::string_view path, size_t max_body);

// GET `url` (absolute), handing the body to `on_data` as it arrives; an
// error from it aborts the transfer and is returned. Fails if no byte comes
// for the endpoint's timeout (at least 10 s while streaming). Returns the
// status; a non-200 body is not handed over.
Result<long> stream(const Endpoint& endpoint, const std::string& url,
                    const std::function<Result<void>(std::string_view)>& on_data);

// An upstream NAR URL from its narinfo's URL field: relative to the
// upstream's base URL (as Nix resolves it), or absolute.
std::string resolve(const Endpoint& endpoint, std::string_view nar_url);

}  // namespace larder::upstream
