// What the handlers see of a request and produce as a response: no sockets,
// so they are plain functions that tests can call.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include "http/router.hpp"
#include "util/io.hpp"

namespace larder::http {

enum class Method { get, head, put, post, patch, del, other };

struct Request {
    Method method = Method::get;
    std::string target;
    std::string host;
    std::string authorization;
    std::string content_type;
    std::string content_encoding;
    std::string range;
    bool push_frames = false;   // X-Larder-Frames: chunks (push: one zstd frame per chunk)
    std::optional<uint64_t> content_length;  // as the client declared it (none: chunked)
    bool ops_listener = false;  // came to the metrics address (metrics_listen), not the main one
    std::string body;  // for requests with small bodies

    // The target parsed by route(), once, by the first that asks (the
    // memory answer, prepare() and the metrics each need it).
    const Result<Route>& route() const {
        if (!m_route) m_route.emplace(http::route(target));
        return *m_route;
    }

private:
    mutable std::optional<Result<Route>> m_route;
};

struct Response {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    // A streamed body (NARs): `stream_length` bytes read from `stream`, or
    // all of it with chunked encoding when the length is not known.
    std::unique_ptr<Source> stream;
    std::optional<uint64_t> stream_length;
    // Close the connection after this response (e.g. an unread body).
    bool close = false;
    // For a 5xx made from an error: the full message, which the session logs
    // with the request id and never sends (it may name hosts or files).
    std::string error_detail;
};

Response text_response(unsigned status, std::string body);
Response json_response(unsigned status, std::string body);
// The one place that maps error codes to HTTP statuses. A 4xx carries the
// error's message (it tells the client what to fix, and never holds
// secrets); a 5xx carries a generic text, and the message goes to the log.
Response error_response(const Error& error);
// The body of a 5xx: what the client may know, and the id to quote.
std::string server_error_text(unsigned status, std::string_view request_id);
unsigned status_of(ErrorCode code);

}  // namespace larder::http
