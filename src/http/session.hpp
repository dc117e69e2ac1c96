// One connection's request loop (internal to the http module).
#pragma once

#include <atomic>

#include <boost/asio/awaitable.hpp>

#include "http/server.hpp"

namespace larder::http {

struct ServerState {
    std::atomic<int> in_flight{0};
};

template <class Stream>
boost::asio::awaitable<void> serve_connection(Stream& stream, std::string remote, Handler& handler,
                                              const ServerConfig& config, ServerState& state);

}  // namespace larder::http
