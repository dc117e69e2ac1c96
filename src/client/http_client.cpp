#include "client/http_client.hpp"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <optional>

#include <fmt/core.h>

#include "util/strings.hpp"

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

void init_curl() {
    static std::once_flag init;
    std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

struct Session::Handle {
    std::unique_ptr<CURL, CurlFree> curl;
};

Session::Session(ServerLogin login) : m_login(std::move(login)), m_handle(std::make_unique<Handle>()) {
    init_curl();
    m_handle->curl.reset(curl_easy_init());
}

Session::~Session() = default;

namespace {

struct BodyReader {
    Source& source;
    std::optional<Error> error;
};

size_t read_body(char* buf, size_t size, size_t n, void* userdata) {
    auto* reader = static_cast<BodyReader*>(userdata);
    auto got = reader->source.read(buf, size * n);
    if (!got) {
        reader->error = got.error();
        return CURL_READFUNC_ABORT;
    }
    return *got;
}

}  // namespace

Result<ApiResponse> Session::put_stream(std::string_view path, const std::vector<std::string>& extra,
                                        Source& body) {
    CURL* curl = m_handle->curl.get();
    if (!curl) return fail(ErrorCode::internal, "cannot initialise libcurl");
    curl_easy_reset(curl);
    auto url = fmt::format("{}{}", m_login.url, path);
    ApiResponse response;
    BodyReader reader{body, std::nullopt};
    std::unique_ptr<curl_slist, SlistFree> headers;
    auto add_header = [&](const std::string& h) { headers.reset(curl_slist_append(headers.release(), h.c_str())); };
    for (const auto& h : extra) add_header(h);
    add_header("Transfer-Encoding: chunked");
    if (!m_login.token.empty()) add_header("Authorization: Bearer " + m_login.token);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);  // fewer, larger writes
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(curl, CURLOPT_READDATA, &reader);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    // A stalled transfer (no progress for a minute) is a transient failure.
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(curl);
    if (reader.error) return Failure{*reader.error};
    if (rc != CURLE_OK)
        return fail(ErrorCode::unavailable,
                    fmt::format("cannot reach the Larder server at {}: {}", m_login.url, curl_easy_strerror(rc)));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
    return response;
}

bool is_transient(const ApiResponse& response) {
    return response.status >= 500 || response.status == 408 || response.status == 429;
}

Result<ApiResponse> send(const ServerLogin& login, std::string_view method, std::string_view path,
                         std::string_view json_body, std::chrono::seconds timeout) {
    init_curl();
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
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
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
    // The server's text goes to a terminal: no escape sequences from it (L10).
    return fail(code_for_status(r.status), fmt::format("server answered {}: {}", r.status, printable(message, 2000)));
}

Result<nlohmann::json> call_api(const ServerLogin& login, std::string_view method, std::string_view path,
                                const nlohmann::json& body, std::chrono::seconds timeout) {
    TRY_ASSIGN(auto text, expect_success(send(login, method, path, body.is_null() ? "" : body.dump(), timeout)));
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) return fail(ErrorCode::corrupt, "the server's answer is not JSON");
    return j;
}

}  // namespace larder::client
