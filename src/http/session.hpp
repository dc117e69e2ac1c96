// One connection's request loop (internal to the http module).
#pragma once

#include <atomic>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "http/server.hpp"

namespace larder::http {

namespace asio = boost::asio;
// Completion token for coroutines that inspect error codes instead of catching.
inline constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);

struct ServerState {
    explicit ServerState(ServerGauges& g) : gauges(g) {}
    // The I/O threads only do I/O. Handlers (database, storage, hashing and
    // compression) run on `workers`; reading response streams, which may
    // wait on S3, on `streams`, so waiting streams never hold up a narinfo.
    boost::asio::thread_pool* workers = nullptr;
    boost::asio::thread_pool* streams = nullptr;
    ServerGauges& gauges;  // connections and requests in flight, busy workers
    std::atomic<uint64_t> connections_served{0};  // also numbers them, for request ids
};

template <class Stream>
boost::asio::awaitable<void> serve_connection(Stream& stream, std::string remote, Handler& handler,
                                              const ServerConfig& config, ServerState& state);

}  // namespace larder::http
