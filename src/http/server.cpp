#include "http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <optional>
#include <thread>
#include <vector>

#include "http/session.hpp"
#include "util/strings.hpp"

namespace larder::http {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {


Result<tcp::endpoint> parse_listen(std::string_view listen) {
    auto colon = listen.rfind(':');
    auto port = colon == std::string_view::npos ? std::nullopt : parse_u64(listen.substr(colon + 1));
    if (!port || *port > 65535)
        return fail(ErrorCode::invalid_input, fmt::format("listen address '{}' is not HOST:PORT", listen));
    auto host = std::string(listen.substr(0, colon));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
    if (ec)
        return fail(ErrorCode::invalid_input,
                    fmt::format("listen address '{}': '{}' is not an IP address", listen, host));
    return tcp::endpoint(address, static_cast<unsigned short>(*port));
}

std::string remote_of(const tcp::socket& socket) {
    boost::system::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    return ec ? std::string("?") : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

// One open connection, counted by the accept loop as it accepts (so the
// count is exact whichever thread runs the connection); released at its end.
// Over the cap, a connection gets a 503 and is closed.
struct ConnectionSlot {
    ConnectionSlot(ServerState& s, int n) : state(s), count(n) {}
    ~ConnectionSlot() { --state.gauges.open_connections; }
    ConnectionSlot(const ConnectionSlot&) = delete;
    ServerState& state;
    int count;
};

constexpr std::string_view k_busy_response =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n"
    "Connection: close\r\nContent-Length: 55\r\n\r\ntoo many connections to this server; try again shortly\n";
static_assert(k_busy_response.size() - k_busy_response.find("\r\n\r\n") - 4 == 55);

asio::awaitable<void> plain_connection(tcp::socket socket, Handler& handler, const ServerConfig& config,
                                       ServerState& state, int count) {
    ConnectionSlot slot(state, count);
    if (slot.count > static_cast<int>(config.max_connections)) {
        beast::tcp_stream stream(std::move(socket));
        stream.expires_after(std::chrono::seconds(5));
        co_await asio::async_write(stream, asio::buffer(k_busy_response), k_use_tuple);
        boost::system::error_code ec;
        stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        co_return;
    }
    auto remote = remote_of(socket);
    beast::tcp_stream stream(std::move(socket));
    co_await serve_connection(stream, remote, handler, config, state);
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> tls_connection(tcp::socket socket, asio::ssl::context& tls, Handler& handler,
                                     const ServerConfig& config, ServerState& state, int count) {
    ConnectionSlot slot(state, count);
    if (slot.count > static_cast<int>(config.max_connections)) co_return;  // no handshake spent on it
    auto remote = remote_of(socket);
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), tls);
    beast::get_lowest_layer(stream).expires_after(config.header_timeout);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, k_use_tuple);
    if (ec) {
        spdlog::debug("TLS handshake with {} failed: {}", remote, ec.message());
        co_return;
    }
    co_await serve_connection(stream, remote, handler, config, state);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    co_await stream.async_shutdown(k_use_tuple);
}

// Connections are spread over the io_contexts round robin; each context is
// run by one thread, so a connection needs no strand and no locking.
asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::vector<std::unique_ptr<asio::io_context>>& contexts,
                                  asio::ssl::context* tls, Handler& handler, const ServerConfig& config,
                                  ServerState& state) {
    size_t next = 0;
    asio::steady_timer backoff(acceptor.get_executor());
    auto last_warning = std::chrono::steady_clock::time_point();
    for (;;) {
        auto& ioc = *contexts[next++ % contexts.size()];
        auto [ec, socket] = co_await acceptor.async_accept(ioc, k_use_tuple);
        if (ec) {
            if (!acceptor.is_open()) co_return;
            // Out of file descriptors (or similar): the pending connection
            // stays readable, so retrying at once would spin. Wait a little,
            // and log once a second at most.
            auto now = std::chrono::steady_clock::now();
            if (now - last_warning > std::chrono::seconds(1)) {
                spdlog::warn("accept failed: {} ({} connections open)", ec.message(), state.gauges.open_connections.load());
                last_warning = now;
            }
            backoff.expires_after(std::chrono::milliseconds(50));
            co_await backoff.async_wait(k_use_tuple);
            continue;
        }
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto executor = socket.get_executor();
        int count = static_cast<int>(++state.gauges.open_connections);
        if (tls)
            asio::co_spawn(executor, tls_connection(std::move(socket), *tls, handler, config, state, count),
                           asio::detached);
        else
            asio::co_spawn(executor, plain_connection(std::move(socket), handler, config, state, count),
                           asio::detached);
    }
}

Result<void> listen_on(tcp::acceptor& acceptor, const tcp::endpoint& endpoint, std::string_view listen) {
    boost::system::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(ErrorCode::unavailable, fmt::format("cannot listen on {}: {}", listen, ec.message()));
    return ok();
}

Result<std::optional<asio::ssl::context>> make_tls(const ServerConfig& config) {
    if (config.tls_certificate.empty() && config.tls_key.empty()) return std::optional<asio::ssl::context>();
    if (config.tls_certificate.empty() || config.tls_key.empty())
        return fail(ErrorCode::invalid_input, "TLS needs both a certificate and a key file");
    std::optional<asio::ssl::context> tls(std::in_place, asio::ssl::context::tls_server);
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    tls->use_certificate_chain_file(config.tls_certificate, ec);
    if (ec)
        return fail(ErrorCode::invalid_input,
                    fmt::format("cannot load TLS certificate '{}': {}", config.tls_certificate, ec.message()));
    tls->use_private_key_file(config.tls_key, asio::ssl::context::pem, ec);
    if (ec)
        return fail(ErrorCode::invalid_input, fmt::format("cannot load TLS key '{}': {}", config.tls_key, ec.message()));
    return tls;
}

}  // namespace

Result<void> run_server(const ServerConfig& config, Handler& handler,
                        const std::function<void(const std::string&)>& on_listening) {
    TRY_ASSIGN(auto endpoint, parse_listen(config.listen));
    TRY_ASSIGN(auto tls, make_tls(config));
    // A write to a socket its peer reset raises SIGPIPE, whose default
    // action ends the process: Asio's own sends pass MSG_NOSIGNAL, but
    // sendfile() cannot, and one client hanging up mid-download killed the
    // server (client_disconnect_test). The write fails with EPIPE instead.
    ::signal(SIGPIPE, SIG_IGN);
    unsigned threads = config.threads ? config.threads : std::max(1u, std::thread::hardware_concurrency());
    ServerState state(handler.metrics().gauges());  // outlives the contexts, whose coroutine frames refer to it
    asio::thread_pool workers(std::max(1u, config.workers));
    asio::thread_pool streams(std::max(1u, config.stream_workers));
    state.gauges.workers = std::max(1u, config.workers);
    state.gauges.stream_workers = std::max(1u, config.stream_workers);
    state.workers = &workers;
    state.streams = &streams;
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (unsigned i = 0; i < threads; ++i) {
        contexts.push_back(std::make_unique<asio::io_context>(1));
        guards.push_back(asio::make_work_guard(*contexts.back()));
    }
    auto& ioc = *contexts.front();
    tcp::acceptor acceptor(ioc);
    TRY(listen_on(acceptor, endpoint, config.listen));
    // The metrics address: its own acceptor, the same I/O threads.
    ServerConfig ops_config = config;
    ops_config.ops_listener = true;
    tcp::acceptor ops_acceptor(ioc);
    if (!config.metrics_listen.empty()) {
        TRY_ASSIGN(auto ops_endpoint, parse_listen(config.metrics_listen));
        TRY(listen_on(ops_acceptor, ops_endpoint, config.metrics_listen));
        auto ops_bound = ops_acceptor.local_endpoint();
        spdlog::info("metrics and probes on http://{}:{}", ops_bound.address().to_string(), ops_bound.port());
        asio::co_spawn(ioc, accept_loop(ops_acceptor, contexts, nullptr, handler, ops_config, state),
                       asio::detached);
    }
    auto bound = acceptor.local_endpoint();
    on_listening(fmt::format("{}://{}:{}", tls ? "https" : "http", bound.address().to_string(), bound.port()));

    asio::co_spawn(ioc, accept_loop(acceptor, contexts, tls ? &*tls : nullptr, handler, config, state),
                   asio::detached);

    // SIGTERM/SIGINT: stop accepting, wait for requests in flight, stop.
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    asio::steady_timer drain(ioc);
    auto deadline = std::make_shared<std::chrono::steady_clock::time_point>();
    std::function<void()> wait_drained = [&] {
        if (state.gauges.requests_in_flight == 0 || std::chrono::steady_clock::now() >= *deadline) {
            spdlog::info("stopped ({} requests were still in flight)", state.gauges.requests_in_flight.load());
            for (auto& c : contexts) c->stop();
            return;
        }
        drain.expires_after(std::chrono::milliseconds(50));
        drain.async_wait([&](boost::system::error_code) { wait_drained(); });
    };
    signals.async_wait([&](boost::system::error_code error, int signal) {
        if (error) return;
        spdlog::info("signal {} received: finishing requests in flight", signal);
        boost::system::error_code ignored;
        acceptor.close(ignored);
        ops_acceptor.close(ignored);
        *deadline = std::chrono::steady_clock::now() + config.shutdown_grace;
        wait_drained();
    });

    std::vector<std::thread> pool;
    for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&, i] { contexts[i]->run(); });
    ioc.run();
    for (auto& t : pool) t.join();
    workers.join();  // before the contexts (and the frames their jobs use) go
    streams.join();
    return ok();
}

}  // namespace larder::http
