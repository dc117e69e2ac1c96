#include "client/http_client.hpp"

#include <curl/curl.h>

#include <memory>
#include <mutex>

#include <fmt/core.h>

namespace larder::client {

namespace {

size_t collect(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

struct CurlFree {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

ErrorCode code_for_status(long status) {
    switch (status) {
        case 400: return ErrorCode::invalid_input;
        case 401: return ErrorCode::unauthorized;
        case 403: return ErrorCode::forbidden;
        case 404: return ErrorCode::not_found;
        case 409: return ErrorCode::conflict;
        default: return status >= 500 ? ErrorCode::unavailable : ErrorCode::invalid_input;
    }
}

}  // namespace

Result<ApiResponse> send(const ServerLogin& login, std::string_view method, std::string_view path,
                         std::string_view json_body) {
    static std::once_flag init;
    std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
    if (!curl) return fail(ErrorCode::internal, "cannot initialise libcurl");
    auto url = fmt::format("{}{}", login.url, path);
    std::string method_s(method), body(json_body);
    ApiResponse response;
    std::unique_ptr<curl_slist, SlistFree> headers;
    auto add_header = [&](const std::string& h) { headers.reset(curl_slist_append(headers.release(), h.c_str())); };
    add_header("Accept: application/json");
    if (!json_body.empty()) add_header("Content-Type: application/json");
    if (!login.token.empty()) add_header("Authorization: Bearer " + login.token);
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method_s.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
    if (!json_body.empty() || method == "POST" || method == "PATCH") {
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &response.body);
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(curl.get());
    if (rc != CURLE_OK)
        return fail(ErrorCode::unavailable,
                    fmt::format("cannot reach the Larder server at {}: {}", login.url, curl_easy_strerror(rc)));
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response.status);
    return response;
}

Result<std::string> expect_success(Result<ApiResponse> response) {
    TRY_ASSIGN(auto r, std::move(response));
    if (r.status >= 200 && r.status < 300) return std::move(r.body);
    auto message = r.body;
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return fail(code_for_status(r.status), fmt::format("server answered {}: {}", r.status, message));
}

Result<nlohmann::json> call_api(const ServerLogin& login, std::string_view method, std::string_view path,
                                const nlohmann::json& body) {
    TRY_ASSIGN(auto text, expect_success(send(login, method, path, body.is_null() ? "" : body.dump())));
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) return fail(ErrorCode::corrupt, "the server's answer is not JSON");
    return j;
}

}  // namespace larder::client
