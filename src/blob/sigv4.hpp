// AWS Signature Version 4 for S3 requests (header-based). Checked against
// AWS's published examples in tests/blob/sigv4_test.cpp.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace larder::blob {

struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // optional
};

struct SignedRequest {
    std::string method;
    std::string host;  // as in the Host header, with a port if not default
    std::string path;  // decoded, starting with '/'; encoded here
    std::vector<std::pair<std::string, std::string>> query;    // decoded
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers to sign (any case)
    std::string payload_hash;  // hex sha256 of the body, or "UNSIGNED-PAYLOAD"
};

// RFC 3986 percent-encoding as SigV4 wants it; '/' kept when `keep_slash`.
std::string uri_encode(std::string_view s, bool keep_slash);

std::string canonical_request(const SignedRequest& r, const std::string& amz_date, bool s3_style);

// The Authorization header value. `amz_date` is "YYYYMMDDTHHMMSSZ"; the
// request must also carry x-amz-date (and x-amz-content-sha256 for S3), which
// the caller includes in `headers`.
std::string authorization(const SignedRequest& r, const Credentials& creds, std::string_view region,
                          std::string_view service, const std::string& amz_date);

std::string hex_sha256(std::string_view data);

}  // namespace larder::blob
