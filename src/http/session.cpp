#include "http/session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <optional>
#include <type_traits>
#include <mutex>
#include <vector>

#include "util/log.hpp"

namespace larder::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

constexpr size_t k_piece = 1024 * 1024;
// Nix sends a few hundred bytes of headers; narinfos travel in bodies. This
// also keeps every field under Beast's 64 KiB field limit, past which its
// parser throws instead of failing.
constexpr uint32_t k_header_limit = 32 * 1024;
// Bytes read but not yet parsed (headers, chunk-size lines, trailers): a
// chunk-size line that never ends fails here instead of growing.
constexpr size_t k_buffer_limit = 128 * 1024;
// Room for body bytes in that buffer while a body is read. Beast reads
// into the buffer's free capacity, at least 512 bytes: sized by the
// headers it held, it took 80 MB of upload in 157,000 reads of 512 bytes
// (each with a timer update), which made the receiving I/O thread, not the
// decompression, the bottleneck of a large plain upload. Given back after.
constexpr size_t k_body_read = 64 * 1024;

Method method_of(bhttp::verb v) {
    switch (v) {
        case bhttp::verb::get: return Method::get;
        case bhttp::verb::head: return Method::head;
        case bhttp::verb::put: return Method::put;
        case bhttp::verb::post: return Method::post;
        case bhttp::verb::patch: return Method::patch;
        case bhttp::verb::delete_: return Method::del;
        default: return Method::other;
    }
}

template <class Fields>
std::string header(const Fields& f, bhttp::field name) {
    auto it = f.find(name);
    return it == f.end() ? std::string() : std::string(it->value());
}

// A 1 MiB buffer for body bytes, taken from a shared free list and given
// back. A fresh one is a new mapping (glibc's mmap threshold is 256 KiB, see
// cmd_serve.cpp) whose pages are faulted in and zeroed on first touch:
// that cost more than the rest of a small upload's work (perf: page faults
// and clear_page ~25 % of the server's CPU on 200 small PUTs).
class Piece {
public:
    Piece() {
        std::lock_guard lock(s_mutex);
        if (!s_free.empty()) {
            m_data = std::move(s_free.back());
            s_free.pop_back();
        }
        if (!m_data) m_data.reset(new char[k_piece]);  // not zeroed: only what was read is used
    }
    ~Piece() {
        if (!m_data) return;
        std::lock_guard lock(s_mutex);
        // Enough for the requests of a busy server; more go back to the system.
        if (s_free.size() < 64) s_free.push_back(std::move(m_data));
    }
    Piece(Piece&&) noexcept = default;
    Piece& operator=(Piece&&) noexcept = default;
    char* data() { return m_data.get(); }
    size_t size() const { return k_piece; }

private:
    std::unique_ptr<char[]> m_data;
    static inline std::mutex s_mutex;
    static inline std::vector<std::unique_ptr<char[]>> s_free;
};

// TCP_CORK while a stored NAR is sent: the kernel sends full segments
// only, and what is left when the body ends. A NAR goes out as hundreds of
// stored frames, one sendfile() each; without it each call's tail left as a
// short segment of its own, waking the client once more.
class Cork {
public:
    explicit Cork(int fd) : m_fd(fd) { set(1); }
    ~Cork() { set(0); }
    Cork(const Cork&) = delete;
    Cork& operator=(const Cork&) = delete;

private:
    void set(int on) { (void)::setsockopt(m_fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on); }
    int m_fd;
};

// The status line and header fields of a response: its length if known,
// else chunked (a HEAD answer may have neither).
std::string response_head(const Response& r, unsigned version, bool keep_alive, std::optional<uint64_t> length,
                          bool chunked) {
    auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
    std::string head;
    head.reserve(192);
    fmt::format_to(std::back_inserter(head), "HTTP/{}.{} {} {}\r\nServer: larder\r\nX-Content-Type-Options: nosniff\r\n"
                   "Content-Type: {}\r\n", version / 10, version % 10, r.status, std::string_view(reason), r.content_type);
    for (const auto& [k, v] : r.headers) head.append(k).append(": ").append(v).append("\r\n");
    keep_alive = keep_alive && !r.close;
    if (version >= 11 && !keep_alive) head.append("Connection: close\r\n");
    if (version < 11 && keep_alive) head.append("Connection: keep-alive\r\n");
    if (length) fmt::format_to(std::back_inserter(head), "Content-Length: {}\r\n", *length);
    else if (chunked) head.append("Transfer-Encoding: chunked\r\n");
    head.append("\r\n");
    return head;
}

// Counts a request as in flight, for graceful shutdown.
struct InFlight {
    explicit InFlight(ServerState& s) : state(s) { ++state.gauges.requests_in_flight; }
    ~InFlight() { --state.gauges.requests_in_flight; }
    ServerState& state;
};

// A job started on a pool from a coroutine and awaited later (after other
// I/O): the coroutine's own executor is told when it is done. One job at a
// time; result() must be awaited before the object goes away.
template <class T>
class Background {
public:
    explicit Background(asio::any_io_executor home) : m_home(home), m_done(home) {}

    template <class F>
    void start(asio::thread_pool* pool, F f) {
        m_result.reset();
        m_finished = false;
        m_started = true;
        m_done.expires_at(asio::steady_timer::time_point::max());
        auto run = [this, f = std::move(f)]() mutable {
            std::optional<T> r;
            try {
                r.emplace(f());
            } catch (const std::exception& e) {
                r.emplace(fail(ErrorCode::internal, fmt::format("exception: {}", e.what())));
            }
            asio::post(m_home, [this, r = std::move(r)]() mutable {
                m_result = std::move(r);
                m_finished = true;
                m_done.cancel();
            });
        };
        if (pool) asio::post(*pool, std::move(run));
        else run();
    }

    bool started() const { return m_started; }

    asio::awaitable<T> result() {
        while (!m_finished) co_await m_done.async_wait(k_use_tuple);
        m_started = false;
        co_return std::move(*m_result);
    }

private:
    asio::any_io_executor m_home;
    asio::steady_timer m_done;
    std::optional<T> m_result;
    bool m_started = false;
    bool m_finished = false;
};

template <class Stream>
class Connection {
public:
    Connection(Stream& stream, std::string remote, Handler& handler, const ServerConfig& config)
        : m_stream(stream), m_remote(std::move(remote)), m_handler(handler), m_config(config) {}

    // Reads headers; false when the connection is finished.
    asio::awaitable<bool> read_header(bhttp::request_parser<bhttp::buffer_body>& parser) {
        beast::get_lowest_layer(m_stream).expires_after(m_config.header_timeout);
        boost::system::error_code ec;
        try {
            auto [e, n] = co_await bhttp::async_read_header(m_stream, m_buffer, parser, k_use_tuple);
            ec = e;
        } catch (const std::exception& e) {
            spdlog::warn("{}: unreadable request header: {}", m_remote, e.what());
            ec = bhttp::error::bad_field;
        }
        if (!ec) co_return true;
        std::optional<Response> answer;
        if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
            answer = text_response(431, fmt::format("request header fields too large: the header section may have "
                                                    "at most {} bytes\n",
                                                    k_header_limit));
        } else if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
                   ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
            answer = text_response(400, "malformed HTTP request: " + ec.message() + "\n");
        }
        if (answer) {  // say what was wrong, then close
            answer->close = true;
            co_await write(*answer, false, 11, false);
        }
        co_return false;
    }

    // Reads body bytes into `buf` until it is full or the body ends; returns
    // how many. Limits: `limit` bytes in all (counted in `total`), the idle
    // body_timeout, and the request deadline however the body trickles (L3).
    asio::awaitable<Result<size_t>> fill(bhttp::request_parser<bhttp::buffer_body>& parser, Piece& buf,
                                         uint64_t& total, uint64_t limit,
                                         std::chrono::steady_clock::time_point deadline) {
        size_t filled = 0;
        if (m_buffer.capacity() < k_body_read) m_buffer.reserve(k_body_read);
        while (filled < buf.size() && !parser.is_done()) {
            if (std::chrono::steady_clock::now() > deadline)
                co_return fail(ErrorCode::request_timeout, "the request body took longer than the server allows");
            parser.get().body().data = buf.data() + filled;
            parser.get().body().size = buf.size() - filled;
            beast::get_lowest_layer(m_stream).expires_after(m_config.body_timeout);
            auto [ec, n] = co_await bhttp::async_read_some(m_stream, m_buffer, parser, k_use_tuple);
            if (ec == bhttp::error::need_buffer) ec = {};
            if (ec == beast::error::timeout)
                co_return fail(ErrorCode::request_timeout, "timed out waiting for the request body");
            if (ec == bhttp::error::buffer_overflow)
                co_return fail(ErrorCode::too_large, "a chunk-size line or trailer of the request is too long");
            if (ec) co_return fail(ErrorCode::invalid_input, "request body incomplete: " + ec.message());
            size_t got = buf.size() - filled - parser.get().body().size;
            filled += got;
            total += got;
            if (total > limit)
                co_return fail(ErrorCode::too_large, fmt::format("request body over the limit of {} bytes", limit));
        }
        co_return filled;
    }

    // Reads a small body whole into `body`.
    asio::awaitable<Result<void>> read_body(bhttp::request_parser<bhttp::buffer_body>& parser, uint64_t limit,
                                            std::string& body) {
        Piece buf;
        uint64_t total = 0;
        auto deadline = std::chrono::steady_clock::now() + m_config.request_deadline;
        while (!parser.is_done()) {
            auto n = co_await fill(parser, buf, total, limit, deadline);
            if (!n) co_return Failure{std::move(n).error()};
            body.append(buf.data(), *n);
        }
        co_return ok();
    }

    // Streams an upload body into `sink` on the workers, 1 MiB at a time,
    // reading the next piece from the socket while a worker takes the last.
    // Returns the first error of either.
    asio::awaitable<Result<void>> read_upload(bhttp::request_parser<bhttp::buffer_body>& parser, uint64_t limit,
                                              Sink& sink) {
        Piece reading, writing;
        uint64_t total = 0;
        auto deadline = std::chrono::steady_clock::now() + m_config.request_deadline;
        Background<Result<void>> written(co_await asio::this_coro::executor);
        Result<void> r = ok();
        while (r && !parser.is_done()) {
            auto n = co_await fill(parser, reading, total, limit, deadline);
            if (written.started()) {
                auto w = co_await written.result();
                if (!w) r = std::move(w);
            }
            if (!n && r) r = Failure{std::move(n).error()};
            if (!r) break;
            std::swap(reading, writing);
            written.start(workers(), [&sink, piece = std::string_view(writing.data(), *n)] { return sink.write(piece); });
        }
        if (written.started()) {
            auto w = co_await written.result();
            if (!w && r) r = std::move(w);
        }
        co_return r;
    }

    asio::awaitable<void> send_continue(unsigned version) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, version};
        beast::get_lowest_layer(m_stream).expires_after(m_config.send_timeout);
        co_await bhttp::async_write(m_stream, cont, k_use_tuple);
    }

    // Writes a response; false if the connection broke.
    asio::awaitable<bool> write(Response& r, bool head, unsigned version, bool keep_alive) {
        beast::get_lowest_layer(m_stream).expires_after(m_config.send_timeout);
        std::optional<uint64_t> length = r.stream ? r.stream_length : r.body.size();
        auto text = response_head(r, version, keep_alive, length, !length && !head);
        if (head || !r.stream) {
            // Most responses (narinfos): head and body in one gathered write.
            std::array<asio::const_buffer, 2> buffers{asio::buffer(text),
                                                      head ? asio::const_buffer() : asio::buffer(r.body)};
            auto [ec, n] = co_await asio::async_write(m_stream, buffers, k_use_tuple);
            co_return !ec;
        }
        // Bodies of a known length only (stored NARs): a trickling stream
        // (re-encoded, or fetched from an upstream) is sent as it comes.
        std::optional<Cork> cork;
        if (length) cork.emplace(beast::get_lowest_layer(m_stream).socket().native_handle());
        if (auto [ec, n] = co_await asio::async_write(m_stream, asio::buffer(text), k_use_tuple); ec) co_return false;
        if (length) co_return co_await send_raw(*r.stream, *length);
        // Unknown length (re-encoded downloads): chunked, to the stream's
        // end, which is the empty last chunk.
        Piece buf;
        for (;;) {
            auto n = co_await read_stream(*r.stream, buf, buf.size());
            if (!n) co_return false;
            auto size_line = fmt::format("{:x}\r\n", *n);
            std::array<asio::const_buffer, 3> chunk{asio::buffer(size_line), asio::buffer(buf.data(), *n),
                                                    asio::buffer("\r\n", 2)};
            beast::get_lowest_layer(m_stream).expires_after(m_config.send_timeout);
            auto [ec, w] = co_await asio::async_write(m_stream, chunk, k_use_tuple);
            if (ec) co_return false;
            if (*n == 0) co_return true;
        }
    }

    // One read of a response stream on the stream workers; nullopt (logged)
    // if it failed. The client then sees a short body and retries with Range.
    asio::awaitable<std::optional<size_t>> read_stream(Source& stream, Piece& buf, uint64_t want) {
        auto len = static_cast<size_t>(std::min<uint64_t>(buf.size(), want));
        auto n = co_await offload(m_state ? m_state->streams : nullptr, [&] { return stream.read(buf.data(), len); });
        if (n) co_return *n;
        read_failed(n.error().message);
        co_return std::nullopt;
    }

    // A response stream that fails after its header: the connection closes.
    bool read_failed(std::string_view why) {
        spdlog::error("reading a NAR for {} failed: {}", m_remote, why);
        return false;
    }

    // A body of known length after its header, straight to the stream:
    // bytes of local files with sendfile on plain TCP (no copy through this
    // process), anything else read on the stream workers.
    asio::awaitable<bool> send_raw(Source& stream, uint64_t left) {
        std::optional<Piece> buf;  // only if the stream is not a file
        while (left > 0) {
            if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
                auto region = stream.take_file_region(static_cast<size_t>(std::min<uint64_t>(left, 4 * k_piece)));
                if (!region) co_return read_failed(region.error().message);
                if (*region) {
                    if ((*region)->length == 0) co_return read_failed("it ended early");
                    if (!co_await send_file(**region)) co_return false;
                    left -= (*region)->length;
                    continue;
                }
            }
            if (!buf) buf.emplace();
            auto n = co_await read_stream(stream, *buf, left);
            if (!n) co_return false;
            if (*n == 0) co_return read_failed("it ended early");
            beast::get_lowest_layer(m_stream).expires_after(m_config.send_timeout);
            auto [e, w] = co_await asio::async_write(m_stream, asio::buffer(buf->data(), *n), k_use_tuple);
            if (e) co_return false;
            left -= *n;
        }
        co_return true;
    }

    // sendfile() of a whole region to a non-blocking socket, waiting (up to
    // the send timeout each time) while the socket is full.
    asio::awaitable<bool> send_file(FileRegion region) {
        auto& socket = beast::get_lowest_layer(m_stream).socket();
        if (!m_native_non_blocking) {  // once: an ioctl each time cost 2 % of the CPU serving NARs
            boost::system::error_code ignored;
            socket.native_non_blocking(true, ignored);
            m_native_non_blocking = true;
        }
        auto offset = static_cast<off_t>(region.offset);
        size_t left = region.length;
        while (left > 0) {
            ssize_t n = ::sendfile(socket.native_handle(), region.fd, &offset, left);
            if (n > 0) {
                left -= static_cast<size_t>(n);
                // Short (all that was left was asked for): the socket's
                // buffer is full. Wait at once rather than ask again only
                // to hear EAGAIN.
                if (left == 0) continue;
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n == 0 || errno != EAGAIN) {
                if (n == 0) spdlog::error("a stored file for {} is shorter than recorded", m_remote);
                co_return false;
            }
            asio::steady_timer timeout(socket.get_executor());
            timeout.expires_after(m_config.send_timeout);
            timeout.async_wait([&socket](boost::system::error_code e) {
                if (!e) socket.cancel();
            });
            auto [e] = co_await socket.async_wait(asio::ip::tcp::socket::wait_write, k_use_tuple);
            timeout.cancel();
            if (e) co_return false;
        }
        co_return true;
    }

    asio::awaitable<void> run(ServerState& state) {
        m_state = &state;
        for (uint64_t n = 1;; ++n) {
            bhttp::request_parser<bhttp::buffer_body> parser;
            parser.header_limit(k_header_limit);
            parser.body_limit(boost::none);  // enforced per route in read_body
            if (!co_await read_header(parser)) co_return;
            InFlight in_flight(state);
            auto start = std::chrono::steady_clock::now();
            auto& msg = parser.get();
            // Made only when something needs it: most requests are not logged as events.
            auto request_id = [this, n] { return fmt::format("{:x}-{}", m_id, n); };
            Request request;
            request.method = method_of(msg.method());
            request.target = std::string(msg.target());
            request.ops_listener = m_config.ops_listener;
            request.host = header(msg, bhttp::field::host);
            request.authorization = header(msg, bhttp::field::authorization);
            request.content_type = header(msg, bhttp::field::content_type);
            request.content_encoding = header(msg, bhttp::field::content_encoding);
            request.range = header(msg, bhttp::field::range);
            if (auto it = msg.find("X-Larder-Frames"); it != msg.end()) request.push_frames = it->value() == "chunks";
            if (auto length = parser.content_length()) request.content_length = *length;
            bool keep_alive = msg.keep_alive();
            unsigned version = msg.version();
            // The target is logged without its query, which could carry secrets.
            auto logged_target = std::string_view(request.target).substr(0, request.target.find('?'));

            Response response;
            bool body_read = parser.is_done();
            try {
                response = co_await respond(parser, request, body_read);
            } catch (const std::exception& e) {
                // Whatever throws ends this request, never the process.
                response = error_response(Error{ErrorCode::internal, fmt::format("exception: {}", e.what())});
                body_read = parser.is_done();
            }
            if (!response.error_detail.empty()) {
                if (logging_json())
                    log_event(spdlog::level::err, event("error", request_id(), msg.method(), logged_target,
                                                        {{"error", response.error_detail}}));
                else
                    spdlog::error("request {} {} {} {}: {}", request_id(), m_remote, bhttp::to_string(msg.method()),
                                  logged_target, response.error_detail);
                response.body = server_error_text(response.status, request_id());
            }
            if (response.status >= 400) response.headers.emplace_back("X-Request-Id", request_id());
            if (!body_read) response.close = true;  // the rest of the body is still on the wire
            bool sent = false;
            try {
                sent = co_await write(response, request.method == Method::head, version, keep_alive);
            } catch (const std::exception& e) {
                spdlog::error("request {} {}: sending the response failed: {}", request_id(), m_remote, e.what());
            }
            auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
            uint64_t sent_bytes = !sent || request.method == Method::head ? 0
                                  : response.stream                  ? response.stream_length.value_or(0)
                                                                     : response.body.size();
            m_handler.metrics().observe(Metrics::route_label(request.route()), bhttp::to_string(msg.method()),
                                        response.status, ms / 1000, body_read ? parser.content_length().value_or(0) : 0,
                                        sent_bytes);
            if (m_config.log_requests && logging_json())
                log_event(spdlog::level::info,
                          event("request", request_id(), msg.method(), logged_target,
                                {{"status", response.status}, {"ms", std::round(ms * 10) / 10}}));
            else if (m_config.log_requests)
                spdlog::info("{} {} {} {} {:.1f}ms", m_remote, bhttp::to_string(msg.method()), logged_target,
                             response.status, ms);
            if (!sent || response.close || !keep_alive) co_return;
            if (m_buffer.capacity() > 4096) m_buffer.shrink_to_fit();  // an idle connection holds little
        }
    }

    void set_id(uint64_t id) { m_id = id; }

private:
    // A JSON log event about a request; invalid UTF-8 in the target is replaced.
    std::string event(std::string_view kind, const std::string& request_id, bhttp::verb method,
                      std::string_view target, nlohmann::json extra) {
        nlohmann::json e{{"event", kind},
                         {"request_id", request_id},
                         {"remote", m_remote},
                         {"method", std::string(bhttp::to_string(method))},
                         {"path", std::string(target)}};
        e.update(extra);
        return e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }

private:
    // Runs `f` on `pool` (inline without one); the coroutine resumes on its
    // own I/O thread. What `f` throws is rethrown here.
    template <class F>
    asio::awaitable<std::invoke_result_t<F>> offload(asio::thread_pool* pool, F f) {
        if (!pool) co_return f();
        auto& gauges = m_handler.metrics().gauges();
        auto& busy = m_state && pool == m_state->streams ? gauges.stream_workers_busy : gauges.workers_busy;
        ++busy;
        struct Done {
            std::atomic<int64_t>& busy;
            ~Done() { --busy; }
        } done{busy};
        std::optional<std::invoke_result_t<F>> result;
        co_await asio::co_spawn(
            pool->get_executor(),
            [&]() -> asio::awaitable<void> {
                result.emplace(f());
                co_return;
            },
            asio::use_awaitable);
        co_return std::move(*result);
    }

    asio::thread_pool* workers() const { return m_state ? m_state->workers : nullptr; }

    asio::awaitable<Response> respond(bhttp::request_parser<bhttp::buffer_body>& parser, Request& request,
                                      bool& body_read) {
        auto& msg = parser.get();
        bool expects_continue = beast::iequals(header(msg, bhttp::field::expect), "100-continue");
        unsigned version = msg.version();
        if (auto quick = m_handler.answer_from_memory(request)) co_return std::move(*quick);
        // One trip to a worker for a request without a body (most of them).
        std::optional<Response> answered;
        auto prepared = co_await offload(workers(), [&] {
            auto p = m_handler.prepare(request);
            if (p && p->body == BodyKind::none) answered = m_handler.handle(*p, request);
            return p;
        });
        if (!prepared) co_return error_response(prepared.error());
        if (answered) co_return std::move(*answered);
        auto handle = [&] { return m_handler.handle(*prepared, request); };
        uint64_t limit = prepared->body_limit;
        if (auto length = parser.content_length(); length && *length > limit)
            co_return error_response(Error{ErrorCode::too_large, fmt::format("request body of {} bytes is over "
                                                                             "the limit of {} bytes",
                                                                             *length, limit)});
        if (prepared->body == BodyKind::small) {
            if (expects_continue) co_await send_continue(version);
            auto r = co_await read_body(parser, limit, request.body);
            body_read = r.ok();
            if (!r) co_return error_response(r.error());
            co_return co_await offload(workers(), handle);
        }
        auto upload = co_await offload(workers(), [&] { return m_handler.begin_nar_upload(*prepared, request); });
        if (!upload) co_return error_response(upload.error());
        if (expects_continue) co_await send_continue(version);
        auto& sink = **upload;
        auto r = co_await read_upload(parser, limit, sink);
        body_read = parser.is_done();
        if (r) r = co_await offload(workers(), [&] { return sink.finish(); });
        if (!r) co_return error_response(r.error());
        co_return text_response(200, "");
    }

    Stream& m_stream;
    std::string m_remote;
    Handler& m_handler;
    const ServerConfig& m_config;
    beast::flat_buffer m_buffer{k_buffer_limit};
    uint64_t m_id = 0;
    ServerState* m_state = nullptr;
    bool m_native_non_blocking = false;
};

}  // namespace

template <class Stream>
asio::awaitable<void> serve_connection(Stream& stream, std::string remote, Handler& handler,
                                       const ServerConfig& config, ServerState& state) {
    Connection<Stream> connection(stream, std::move(remote), handler, config);
    connection.set_id(++state.connections_served);
    try {
        co_await connection.run(state);
    } catch (const std::exception& e) {
        spdlog::error("connection failed: {}", e.what());
    }
}

template asio::awaitable<void> serve_connection(beast::tcp_stream&, std::string, Handler&, const ServerConfig&,
                                                ServerState&);
template asio::awaitable<void> serve_connection(beast::ssl_stream<beast::tcp_stream>&, std::string, Handler&,
                                                const ServerConfig&, ServerState&);

}  // namespace larder::http
