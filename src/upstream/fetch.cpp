#include "upstream/fetch.hpp"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <optional>

#include <fmt/core.h>

namespace larder::upstream {

namespace {

struct CurlFree {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct Transfer {
    std::unique_ptr<CURL, CurlFree> curl;
    std::unique_ptr<curl_slist, SlistFree> headers;
};

// A handle for one GET with the endpoint's credentials and deadlines.
Result<Transfer> open(const Endpoint& e, const std::string& url) {
    static std::once_flag init;
    std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    Transfer t{std::unique_ptr<CURL, CurlFree>(curl_easy_init()), nullptr};
    if (!t.curl) return fail(ErrorCode::internal, "cannot initialise libcurl");
    CURL* c = t.curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(e.timeout.count()));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "larder (pull-through)");
    if (!e.token.empty()) {
        auto header = "Authorization: Bearer " + e.token;
        t.headers.reset(curl_slist_append(nullptr, header.c_str()));
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, t.headers.get());
    } else if (!e.netrc_file.empty()) {
        curl_easy_setopt(c, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_OPTIONAL));
        curl_easy_setopt(c, CURLOPT_NETRC_FILE, e.netrc_file.c_str());
    }
    return t;
}

// What went wrong, without the URL's query or credentials.
Failure transport_error(const Endpoint& e, CURLcode code) {
    return fail(ErrorCode::unavailable, fmt::format("upstream {}: {}", e.url, curl_easy_strerror(code)));
}

struct Collect {
    std::string body;
    size_t max;
    bool too_big = false;
};

size_t collect(char* data, size_t size, size_t n, void* user) {
    auto* c = static_cast<Collect*>(user);
    if (c->body.size() + size * n > c->max) {
        c->too_big = true;
        return 0;
    }
    c->body.append(data, size * n);
    return size * n;
}

struct Streaming {
    CURL* curl;
    const std::function<Result<void>(std::string_view)>* on_data;
    std::optional<Error> error;
    bool checked = false, ok = false;
};

size_t forward(char* data, size_t size, size_t n, void* user) {
    auto* s = static_cast<Streaming*>(user);
    if (!s->checked) {
        long status = 0;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
        s->checked = true;
        s->ok = status == 200;
    }
    if (!s->ok) return size * n;  // an error page: read and dropped
    auto r = (*s->on_data)(std::string_view(data, size * n));
    if (!r) {
        s->error = r.error();
        return 0;
    }
    return size * n;
}

}  // namespace

std::string resolve(const Endpoint& e, std::string_view nar_url) {
    if (nar_url.starts_with("http://") || nar_url.starts_with("https://")) return std::string(nar_url);
    return fmt::format("{}/{}", e.url, nar_url);
}

Result<Answer> get(const Endpoint& e, std::string_view path, size_t max_body) {
    TRY_ASSIGN(auto t, open(e, fmt::format("{}/{}", e.url, path)));
    Collect body{{}, max_body};
    CURL* c = t.curl.get();
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(e.timeout.count()));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    auto code = curl_easy_perform(c);
    if (body.too_big)
        return fail(ErrorCode::unavailable, fmt::format("upstream {}: the answer to {} is over {} bytes", e.url,
                                                        path, max_body));
    if (code != CURLE_OK) return transport_error(e, code);
    Answer a;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    if (a.status == 200) a.body = std::move(body.body);
    return a;
}

Result<long> stream(const Endpoint& e, const std::string& url,
                    const std::function<Result<void>(std::string_view)>& on_data) {
    TRY_ASSIGN(auto t, open(e, url));
    CURL* c = t.curl.get();
    Streaming s{c, &on_data, std::nullopt};
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, forward);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    // Stalled (under 1 byte/s) this long: given up.
    auto stall = std::max<long>(10, static_cast<long>((e.timeout.count() + 999) / 1000));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall);
    auto code = curl_easy_perform(c);
    if (s.error) return Failure{std::move(*s.error)};
    if (code != CURLE_OK) return transport_error(e, code);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

}  // namespace larder::upstream
