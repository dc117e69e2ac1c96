// The S3 BlobStore: any S3-compatible service (AWS, Ceph RGW, MinIO, ...),
// requests signed with SigV4 by blob/sigv4.cpp and sent with libcurl.
// Objects are "<prefix><key>"; puts over the multipart threshold go up in
// parts; reads stream with Range; transient failures are retried with backoff.
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <deque>
#include <future>
#include <thread>

#include <fmt/core.h>

#include "blob/blob_store.hpp"
#include "blob/sigv4.hpp"
#include "util/strings.hpp"
#include "util/task_pool.hpp"

namespace larder::blob {

namespace {

constexpr int k_attempts = 5;

struct CurlFree {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

std::string amz_now() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

// The text of the first <tag>...</tag> in an XML answer.
// "2026-11-27T04:35:01.000Z" -> Unix time; 0 if it does not parse.
int64_t parse_iso_time(const std::string& text) {
    std::tm tm{};
    if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                    &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<int64_t>(::timegm(&tm));
}

std::string xml_field(std::string_view xml, std::string_view tag, size_t from = 0) {
    auto open = fmt::format("<{}>", tag), close = fmt::format("</{}>", tag);
    auto a = xml.find(open, from);
    if (a == std::string_view::npos) return {};
    a += open.size();
    auto b = xml.find(close, a);
    return b == std::string_view::npos ? std::string() : std::string(xml.substr(a, b - a));
}

struct Response {
    long status = 0;
    std::string body;
    bool transport_error = false;
    std::string error;  // transport errors
    std::string etag;   // of a stored object or part
};

class S3Store : public BlobStore {
public:
    struct Settings {
        std::string bucket;
        std::string endpoint;  // scheme://host[:port]
        std::string region = "us-east-1";
        bool virtual_hosted = false;
        std::string prefix;
        size_t multipart_threshold = 64 << 20;
        size_t part_size = 16 << 20;
        Credentials credentials;
        unsigned read_ahead = 8;
        uint64_t read_ahead_memory = 64 << 20;
    };

    S3Store(Settings s, unsigned connections)
        : m_s(std::move(s)), m_fetchers(connections),
          m_read_ahead_left(static_cast<int64_t>(m_s.read_ahead_memory)) {
        static std::once_flag init;
        std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
        auto scheme_end = m_s.endpoint.find("://");
        m_scheme = m_s.endpoint.substr(0, scheme_end);
        auto host = m_s.endpoint.substr(scheme_end + 3);
        // curl sends Host without a default port, so the signed host must
        // not have one either (L8).
        for (auto default_port : {m_scheme == "https" ? ":443" : ":80"})
            if (host.ends_with(default_port)) host.resize(host.size() - std::string_view(default_port).size());
        m_host = m_s.virtual_hosted ? m_s.bucket + "." + host : host;
    }

    // A signed HEAD of the bucket: the credentials, the endpoint and the bucket.
    Result<void> check() {
        auto r = request("HEAD", "", {}, {}, {}, nullptr);
        if (r.transport_error)
            return fail(ErrorCode::unavailable, fmt::format("cannot reach S3 at {}: {}", m_s.endpoint, r.error));
        if (r.status == 403)
            return fail(ErrorCode::unauthorized,
                        fmt::format("S3 at {} refused the credentials for bucket '{}' (403: wrong access key or "
                                    "secret, or no permission on the bucket)",
                                    m_s.endpoint, m_s.bucket));
        if (r.status == 404)
            return fail(ErrorCode::not_found, fmt::format("S3 bucket '{}' does not exist at {}", m_s.bucket, m_s.endpoint));
        if (r.status / 100 != 2)
            return fail(ErrorCode::unavailable, fmt::format("S3 at {} answered {} for bucket '{}'", m_s.endpoint,
                                                            r.status, m_s.bucket));
        return ok();
    }

    Result<void> put(std::string_view key, std::string_view data) override {
        TRY_ASSIGN(auto object, object_of(key));
        if (data.size() > m_s.multipart_threshold) return put_multipart(object, data);
        auto r = with_retries("PUT", object, {}, data, {});
        return expect(r, "PUT", key);
    }

    Result<void> get(std::string_view key, Sink& sink, uint64_t offset, std::optional<uint64_t> length) override {
        TRY_ASSIGN(auto object, object_of(key));
        // Resumes where a failed attempt stopped, so the sink sees each byte once.
        uint64_t delivered = 0;
        Result<void> sink_result = ok();
        for (int attempt = 0;; ++attempt) {
            std::vector<std::pair<std::string, std::string>> headers;
            uint64_t from = offset + delivered;
            if (from > 0 || length) {
                if (length && delivered >= *length) return ok();
                headers.emplace_back("Range", length ? fmt::format("bytes={}-{}", from, offset + *length - 1)
                                                     : fmt::format("bytes={}-", from));
            }
            auto deliver = [&](std::string_view piece) -> bool {
                sink_result = sink.write(piece);
                if (!sink_result) return false;
                delivered += piece.size();
                return true;
            };
            auto r = request("GET", object, {}, {}, headers, deliver);
            if (!sink_result) return sink_result;
            if (r.status == 404) return fail(ErrorCode::not_found, fmt::format("no blob '{}' in S3", key));
            if (r.status == 416 && delivered == 0 && length && *length == 0) return ok();
            if (r.status / 100 == 2 && !r.transport_error) return ok();
            if (!transient(r) || attempt + 1 == k_attempts) return expect(r, "GET", key);
            backoff(attempt);
        }
    }

    Result<std::unique_ptr<Source>> open(std::string_view key, uint64_t offset, uint64_t length) override;
    std::unique_ptr<Source> open_ranges(std::vector<BlobRange> ranges) override;

    Result<bool> exists(std::string_view key) override {
        TRY_ASSIGN(auto object, object_of(key));
        auto r = with_retries("HEAD", object, {}, {}, {});
        if (r.status == 404) return false;
        TRY(expect(r, "HEAD", key));
        return true;
    }

    Result<void> remove(std::string_view key) override {
        TRY_ASSIGN(auto object, object_of(key));
        auto r = with_retries("DELETE", object, {}, {}, {});
        if (r.status == 404) return ok();
        return expect(r, "DELETE", key);
    }

    Result<std::vector<BlobInfo>> list() override {
        std::vector<BlobInfo> blobs;
        std::string token;
        for (;;) {
            std::vector<std::pair<std::string, std::string>> query{{"list-type", "2"}};
            if (!m_s.prefix.empty()) query.emplace_back("prefix", m_s.prefix);
            if (!token.empty()) query.emplace_back("continuation-token", token);
            auto r = with_retries("GET", "", query, {}, {});
            TRY(expect(r, "LIST", m_s.prefix));
            for (size_t at = r.body.find("<Contents>"); at != std::string::npos;
                 at = r.body.find("<Contents>", at + 1)) {
                auto name = xml_field(r.body, "Key", at);
                if (name.starts_with(m_s.prefix))
                    blobs.push_back(BlobInfo{name.substr(m_s.prefix.size()),
                                             parse_iso_time(xml_field(r.body, "LastModified", at)),
                                             std::strtoull(xml_field(r.body, "Size", at).c_str(), nullptr, 10)});
            }
            if (xml_field(r.body, "IsTruncated") != "true") break;
            token = xml_field(r.body, "NextContinuationToken");
            if (token.empty()) break;
        }
        return blobs;
    }

    std::string describe() const override {
        return fmt::format("s3://{}/{} at {}", m_s.bucket, m_s.prefix, m_s.endpoint);
    }

private:
    Result<std::string> object_of(std::string_view key) const {
        if (!is_valid_key(key)) return fail(ErrorCode::invalid_input, fmt::format("invalid blob key '{}'", printable(key)));
        return m_s.prefix + std::string(key);
    }

    static bool transient(const Response& r) {
        return r.transport_error || r.status >= 500 || r.status == 429 || r.status == 408 ||
               (r.status == 400 && r.body.find("RequestTimeout") != std::string::npos);
    }

    StoreCounters counters() const override {
        return StoreCounters{m_requests.load(), m_failures.load(), m_retries.load()};
    }

    // 200 ms doubling, +-50 % so that throttled requests do not come back together.
    void backoff(int attempt) {
        ++m_retries;
        thread_local std::minstd_rand random(static_cast<unsigned>(std::hash<std::thread::id>{}(std::this_thread::get_id())));
        auto base = 200 << attempt;
        std::this_thread::sleep_for(std::chrono::milliseconds(base / 2 + static_cast<int>(random() % base)));
    }

    Result<void> expect(const Response& r, std::string_view op, std::string_view key) const {
        if (!r.transport_error && r.status / 100 == 2) return ok();
        if (r.transport_error)
            return fail(ErrorCode::unavailable, fmt::format("S3 {} of '{}' failed: cannot reach {}: {}", op, key,
                                                            m_s.endpoint, r.error));
        auto code = xml_field(r.body, "Code");
        return fail(r.status == 404 ? ErrorCode::not_found : ErrorCode::unavailable,
                    fmt::format("S3 {} of '{}' failed: {} {}", op, key, r.status, code.empty() ? "" : code));
    }

    Response with_retries(std::string_view method, const std::string& object,
                          const std::vector<std::pair<std::string, std::string>>& query, std::string_view body,
                          const std::vector<std::pair<std::string, std::string>>& headers) {
        for (int attempt = 0;; ++attempt) {
            auto r = request(method, object, query, body, headers, nullptr);
            if (!transient(r) || attempt + 1 == k_attempts) return r;
            backoff(attempt);
        }
    }

    Result<void> put_multipart(const std::string& object, std::string_view data) {
        auto start = with_retries("POST", object, {{"uploads", ""}}, {}, {});
        TRY(expect(start, "multipart start", object));
        auto upload_id = xml_field(start.body, "UploadId");
        if (upload_id.empty()) return fail(ErrorCode::unavailable, "S3 multipart start gave no UploadId");
        std::string complete = "<CompleteMultipartUpload>";
        auto abort = [&] { with_retries("DELETE", object, {{"uploadId", upload_id}}, {}, {}); };
        int part = 0;
        for (size_t at = 0; at < data.size(); at += m_s.part_size) {
            ++part;
            auto r = with_retries("PUT", object, {{"partNumber", std::to_string(part)}, {"uploadId", upload_id}},
                                  data.substr(at, m_s.part_size), {});
            if (auto e = expect(r, "multipart part", object); !e) {
                abort();
                return e;
            }
            complete += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", part, r.etag);
        }
        complete += "</CompleteMultipartUpload>";
        auto done = with_retries("POST", object, {{"uploadId", upload_id}}, complete, {});
        // A 200 may still carry an <Error> (S3 reports late failures so).
        if (done.status / 100 == 2 && done.body.find("<Error>") != std::string::npos) done.status = 500;
        if (auto e = expect(done, "multipart completion", object); !e) {
            abort();
            return e;
        }
        return ok();
    }

    // One signed request. `deliver`, if given, receives the body as it
    // arrives (for 2xx answers) and may stop it by returning false.
    template <class Deliver = std::nullptr_t>
    Response request(std::string_view method, const std::string& object,
                     const std::vector<std::pair<std::string, std::string>>& query, std::string_view body,
                     std::vector<std::pair<std::string, std::string>> headers, Deliver deliver) {
        thread_local std::unique_ptr<CURL, CurlFree> handle(curl_easy_init());
        CURL* curl = handle.get();
        curl_easy_reset(curl);
        Response response;
        auto date = amz_now();
        auto payload = hex_sha256(body);
        headers.emplace_back("x-amz-content-sha256", payload);
        headers.emplace_back("x-amz-date", date);
        if (!m_s.credentials.session_token.empty())
            headers.emplace_back("x-amz-security-token", m_s.credentials.session_token);
        std::string path = m_s.virtual_hosted ? "/" + object : "/" + m_s.bucket + (object.empty() ? "" : "/" + object);
        SignedRequest sr{std::string(method), m_host, path, query, headers, payload};
        std::string url = fmt::format("{}://{}{}", m_scheme, m_host, uri_encode(path, true));
        std::string q;
        for (const auto& [k, v] : query) q += fmt::format("{}{}={}", q.empty() ? "?" : "&", uri_encode(k, false), uri_encode(v, false));
        url += q;
        std::unique_ptr<curl_slist, SlistFree> list;
        auto add = [&](const std::string& h) { list.reset(curl_slist_append(list.release(), h.c_str())); };
        add("Authorization: " + authorization(sr, m_s.credentials, m_s.region, "s3", date));
        for (const auto& [k, v] : headers) add(k + ": " + v);
        add("Expect:");
        std::string method_s(method);
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list.get());
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 30L);
        if (method == "HEAD") curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
        else curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method_s.c_str());
        if (method == "PUT" || method == "POST") {
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        }
        struct Ctx {
            Response* response;
            Deliver* deliver;
            CURL* curl;
        } ctx{&response, &deliver, curl};
        auto write = +[](char* data, size_t size, size_t n, void* user) -> size_t {
            auto* c = static_cast<Ctx*>(user);
            long status = 0;
            curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
            if constexpr (!std::is_same_v<Deliver, std::nullptr_t>) {
                if (status / 100 == 2) return (*c->deliver)(std::string_view(data, size * n)) ? size * n : 0;
            }
            if (c->response->body.size() < (1 << 20)) c->response->body.append(data, size * n);
            return size * n;
        };
        auto header = +[](char* data, size_t size, size_t n, void* user) -> size_t {
            std::string_view h(data, size * n);
            if (h.size() > 5 && (h.starts_with("ETag:") || h.starts_with("etag:"))) {
                auto v = h.substr(5);
                while (!v.empty() && (v.front() == ' ')) v.remove_prefix(1);
                while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
                static_cast<Response*>(user)->etag = std::string(v);
            }
            return size * n;
        };
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ctx);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
        ++m_requests;
        CURLcode rc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
        if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && response.status / 100 == 2)) {
            response.transport_error = true;
            response.error = curl_easy_strerror(rc);
        }
        if (response.transport_error || (response.status >= 400 && response.status != 404 && response.status != 416))
            ++m_failures;
        return response;
    }

    friend class ReadAheadSource;

    Settings m_s;
    std::string m_scheme;
    std::string m_host;
    TaskPool m_fetchers;  // ranged GETs of streams, ahead of their readers
    std::atomic<int64_t> m_read_ahead_left;  // bytes that fetched pieces may still hold
    std::atomic<uint64_t> m_requests{0}, m_failures{0}, m_retries{0};
};

// Byte ranges from S3 (a stored NAR), cut into pieces of at most 4 MiB, up to
// `read_ahead` of them fetched in parallel ahead of the reader. Requests are
// what costs on S3 (tens of ms each), so one at a time would leave a NAR of
// many chunks waiting on them in turn. Memory: the pieces held, bounded per
// stream and for the store; a reader that stops costs its pieces in flight.
class ReadAheadSource : public Source {
public:
    ReadAheadSource(S3Store& store, std::vector<BlobRange> ranges) : m_store(store) {
        for (auto& r : ranges) {
            if (!r.data.empty()) {  // held by the caller: one piece, no request
                m_pieces.push_back(std::move(r));
                continue;
            }
            for (uint64_t at = 0; at < r.length; at += k_max_piece)
                m_pieces.push_back(BlobRange{r.key, r.offset + at, std::min(k_max_piece, r.length - at)});
        }
    }

    ~ReadAheadSource() override {
        *m_cancelled = true;  // queued fetches skip their request
        for (auto& p : m_pending) m_store.m_read_ahead_left += static_cast<int64_t>(p.reserved);
    }

    Result<size_t> read(char* buf, size_t len) override {
        while (m_pos == m_piece.size()) {
            fetch_ahead();
            if (m_pending.empty()) return size_t{0};
            auto pending = std::move(m_pending.front());
            m_pending.pop_front();
            auto got = pending.data.get();
            m_store.m_read_ahead_left += static_cast<int64_t>(pending.reserved);
            if (!got) return Failure{std::move(got).error()};
            if (got->size() != pending.length)
                return fail(ErrorCode::corrupt, fmt::format("blob '{}' is shorter than recorded", pending.key));
            m_piece = std::move(*got);
            m_pos = 0;
        }
        size_t n = std::min(len, m_piece.size() - m_pos);
        std::memcpy(buf, m_piece.data() + m_pos, n);
        m_pos += n;
        return n;
    }

private:
    static constexpr uint64_t k_max_piece = 4 << 20;

    struct Pending {
        std::string key;
        uint64_t length;
        uint64_t reserved;  // of the store's read-ahead memory
        std::future<Result<std::string>> data;
    };

    // Keeps up to read_ahead pieces requested; beyond the next one, only
    // while the store's read-ahead memory lasts.
    void fetch_ahead() {
        while (m_next < m_pieces.size() && m_pending.size() < std::max(1u, m_store.m_s.read_ahead)) {
            auto& piece = m_pieces[m_next];
            if (!piece.data.empty()) {
                ++m_next;
                std::promise<Result<std::string>> held;
                held.set_value(std::string(held_bytes(piece)));
                m_pending.push_back(Pending{piece.key, piece.length, 0, held.get_future()});
                continue;
            }
            auto size = static_cast<int64_t>(piece.length);
            if (m_store.m_read_ahead_left.fetch_sub(size) < size && !m_pending.empty()) {
                m_store.m_read_ahead_left += size;
                return;
            }
            ++m_next;
            auto data = m_store.m_fetchers.submit([store = &m_store,
                                                   piece = BlobRange{piece.key, piece.offset, piece.length},
                                                   cancelled = m_cancelled]() -> Result<std::string> {
                if (*cancelled) return fail(ErrorCode::unavailable, "cancelled");
                StringSink sink;
                sink.data().reserve(piece.length);
                TRY(store->get(piece.key, sink, piece.offset, piece.length));
                return std::move(sink.data());
            });
            m_pending.push_back(Pending{piece.key, piece.length, piece.length, std::move(data)});
        }
    }

    S3Store& m_store;
    std::vector<BlobRange> m_pieces;
    size_t m_next = 0;
    std::deque<Pending> m_pending;
    std::shared_ptr<std::atomic<bool>> m_cancelled = std::make_shared<std::atomic<bool>>(false);
    std::string m_piece;
    size_t m_pos = 0;
};

Result<std::unique_ptr<Source>> S3Store::open(std::string_view key, uint64_t offset, uint64_t length) {
    TRY(object_of(key));
    return open_ranges({BlobRange{std::string(key), offset, length}});
}

std::unique_ptr<Source> S3Store::open_ranges(std::vector<BlobRange> ranges) {
    return std::make_unique<ReadAheadSource>(*this, std::move(ranges));
}

// ~/.aws/credentials (or AWS_SHARED_CREDENTIALS_FILE), profile AWS_PROFILE or "default".
Credentials from_shared_file() {
    Credentials c;
    const char* file = std::getenv("AWS_SHARED_CREDENTIALS_FILE");
    const char* home = std::getenv("HOME");
    std::string path = file && *file ? file : fmt::format("{}/.aws/credentials", home ? home : "");
    const char* profile_env = std::getenv("AWS_PROFILE");
    std::string profile = profile_env && *profile_env ? profile_env : "default";
    std::ifstream in(path);
    std::string line;
    bool in_profile = false;
    while (std::getline(in, line)) {
        auto t = std::string(trim(line));
        if (t.empty() || t[0] == '#' || t[0] == ';') continue;
        if (t.front() == '[') {
            in_profile = t == "[" + profile + "]";
            continue;
        }
        if (!in_profile) continue;
        auto eq = t.find('=');
        if (eq == std::string::npos) continue;
        auto k = std::string(trim(t.substr(0, eq))), v = std::string(trim(t.substr(eq + 1)));
        if (k == "aws_access_key_id") c.access_key_id = v;
        else if (k == "aws_secret_access_key") c.secret_access_key = v;
        else if (k == "aws_session_token") c.session_token = v;
    }
    return c;
}

}  // namespace

Result<std::unique_ptr<BlobStore>> open_s3_store(std::string_view url, const StoreOptions& options) {
    const auto& given = options.credentials;
    // s3://bucket[/prefix]?endpoint=...&region=...&addressing=path|virtual
    auto rest = url.substr(5);
    auto qpos = rest.find('?');
    auto location = rest.substr(0, qpos);
    S3Store::Settings s;
    auto slash = location.find('/');
    s.bucket = std::string(location.substr(0, slash));
    if (slash != std::string_view::npos) {
        s.prefix = std::string(location.substr(slash + 1));
        if (!s.prefix.empty() && s.prefix.back() != '/') s.prefix += '/';
        // curl would rewrite "." and ".." segments after the request was signed (L8).
        for (auto seg : split(s.prefix, '/'))
            if (seg == "." || seg == "..")
                return fail(ErrorCode::invalid_input, "the S3 prefix must not contain '.' or '..' segments");
        if (s.prefix.find("//") != std::string::npos || s.prefix.front() == '/')
            return fail(ErrorCode::invalid_input, "the S3 prefix must not contain empty segments");
    }
    if (s.bucket.empty()) return fail(ErrorCode::invalid_input, "storage URL s3://BUCKET?... lacks the bucket");
    if (qpos != std::string_view::npos) {
        for (auto param : split(rest.substr(qpos + 1), '&')) {
            auto eq = param.find('=');
            auto k = param.substr(0, eq);
            auto v = eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
            if (k == "endpoint") s.endpoint = std::string(v);
            else if (k == "region") s.region = std::string(v);
            else if (k == "addressing" && (v == "path" || v == "virtual")) s.virtual_hosted = v == "virtual";
            else
                return fail(ErrorCode::invalid_input,
                            fmt::format("unknown storage URL parameter '{}' (use endpoint, region, "
                                        "addressing=path|virtual)", printable(k)));
        }
    }
    if (s.endpoint.empty()) {
        s.endpoint = fmt::format("https://s3.{}.amazonaws.com", s.region);
        s.virtual_hosted = true;
    }
    while (s.endpoint.ends_with('/')) s.endpoint.pop_back();
    if (!s.endpoint.starts_with("http://") && !s.endpoint.starts_with("https://"))
        return fail(ErrorCode::invalid_input, "the S3 endpoint must start with http:// or https://");
    if (given && !given->access_key_id.empty()) {
        s.credentials = *given;
    } else if (const char* id = std::getenv("AWS_ACCESS_KEY_ID"); id && *id) {
        const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
        const char* token = std::getenv("AWS_SESSION_TOKEN");
        s.credentials = Credentials{id, secret ? secret : "", token ? token : ""};
    } else {
        s.credentials = from_shared_file();
    }
    if (s.credentials.access_key_id.empty() || s.credentials.secret_access_key.empty())
        return fail(ErrorCode::invalid_input,
                    "no S3 credentials: set [s3] access_key_id and secret_access_key in the config, or "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials");
    s.read_ahead = std::max(1u, options.read_ahead);
    s.read_ahead_memory = options.read_ahead_memory;
    auto store = std::make_unique<S3Store>(std::move(s), std::max(1u, options.connections));
    TRY(store->check());
    return std::unique_ptr<BlobStore>(std::move(store));
}

}  // namespace larder::blob
