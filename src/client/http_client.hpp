// A small libcurl client for Larder's JSON API.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/io.hpp"
#include "util/result.hpp"

namespace larder::client {

struct ApiResponse {
    long status = 0;
    std::string body;
};

struct ServerLogin {
    std::string url;    // "https://cache.example.org", no trailing slash
    std::string token;  // may be empty (anonymous)
};

// Sends one request. Transport failures are `unavailable`; HTTP errors are
// returned as responses for the caller to explain.
Result<ApiResponse> send(const ServerLogin& login, std::string_view method, std::string_view path,
                         std::string_view json_body = {}, std::chrono::seconds timeout = std::chrono::seconds(300));

// One connection kept open across requests (a push worker's).
class Session {
public:
    explicit Session(ServerLogin login);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // A PUT whose body is streamed from `body` with chunked encoding; each
    // header is "Name: value". A failing `body` aborts the request, so the
    // server never sees a short body as a complete one.
    Result<ApiResponse> put_stream(std::string_view path, const std::vector<std::string>& headers, Source& body);

private:
    ServerLogin m_login;
    struct Handle;
    std::unique_ptr<Handle> m_handle;
};

// True for failures worth retrying: the server unreachable or overloaded.
bool is_transient(const ApiResponse& response);

// Turns a non-2xx response into an error carrying the server's message.
Result<std::string> expect_success(Result<ApiResponse> response);

// One JSON API call: the body (if not null) is sent as JSON, a 2xx answer is
// parsed as JSON, anything else is an error with the server's message.
// `timeout`: for the whole call (GC and fsck of a large cache take minutes).
Result<nlohmann::json> call_api(const ServerLogin& login, std::string_view method, std::string_view path,
                                const nlohmann::json& body = {}, std::chrono::seconds timeout = std::chrono::seconds(300));

}  // namespace larder::client
