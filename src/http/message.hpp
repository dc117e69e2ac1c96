// What the handlers see of a request and produce as a response: no sockets,
// so they are plain functions that tests can call.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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
    std::string push_narinfo;   // X-Larder-NarInfo: base64 narinfo (push)
    std::string push_upstream;  // X-Larder-Upstream: hash parts (push)
    bool push_frames = false;   // X-Larder-Frames: chunks (push: one zstd frame per chunk)
    std::string body;  // for requests with small bodies
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
};

Response text_response(unsigned status, std::string body);
Response json_response(unsigned status, std::string body);
// The one place that maps error codes to HTTP statuses; the body is the
// error's message, which never contains secrets.
Response error_response(const Error& error);
unsigned status_of(ErrorCode code);

}  // namespace larder::http
