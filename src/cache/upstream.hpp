// A cache's upstreams (pull-through): binary caches asked, in order, for
// paths the cache does not have. Stored as JSON in the cache's row.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/keys.hpp"
#include "util/result.hpp"

namespace larder::cache {

struct UpstreamSpec {
    std::string url;                // "https://cache.nixos.org", no trailing slash
    std::vector<std::string> keys;  // public keys ("name:base64"); a narinfo needs a signature by one
    std::string token;              // Bearer token for a private upstream (another Larder); secret
    std::string netrc_file;         // or credentials from a netrc file on the server
    int64_t timeout_ms = 3000;      // connect and answer a narinfo; a NAR may stall this long (>= 10 s)
};

// Parses and checks a list (URL http(s), at least one valid key each).
Result<std::vector<UpstreamSpec>> parse_upstreams(std::string_view json);
Result<void> check_upstreams(const std::vector<UpstreamSpec>& upstreams);
std::string render_upstreams(const std::vector<UpstreamSpec>& upstreams);  // as stored
// For the API: the token is never shown, only whether one is set.
std::string describe_upstreams_json(const std::vector<UpstreamSpec>& upstreams);

// The keys of an upstream, parsed (invalid ones were refused on input).
std::vector<crypto::PublicKey> upstream_keys(const UpstreamSpec& upstream);

// The name a proxied path's NAR is served under until it is fetched (and
// after, for clients holding that narinfo): "upstream-<nix32 NarHash>.nar.zst".
inline constexpr std::string_view k_upstream_nar_prefix = "upstream-";

}  // namespace larder::cache
