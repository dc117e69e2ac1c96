// A small libcurl client for Larder's JSON API.
#pragma once

#include <string>
#include <string_view>

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

}  // namespace larder::client
