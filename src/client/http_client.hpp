// A small libcurl client for Larder's JSON API.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

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
                         std::string_view json_body = {});

// Turns a non-2xx response into an error carrying the server's message.
Result<std::string> expect_success(Result<ApiResponse> response);

// One JSON API call: the body (if not null) is sent as JSON, a 2xx answer is
// parsed as JSON, anything else is an error with the server's message.
Result<nlohmann::json> call_api(const ServerLogin& login, std::string_view method, std::string_view path,
                                const nlohmann::json& body = {});

}  // namespace larder::client
