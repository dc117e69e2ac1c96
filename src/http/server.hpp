// The HTTP(S) server: Boost.Beast on an io_context run by a thread pool,
// one coroutine per connection. The session owns timeouts, body limits and
// Expect: 100-continue; the Handler owns what requests mean.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "http/handlers.hpp"

namespace larder::http {

struct ServerConfig {
    std::string listen = "127.0.0.1:8080";
    // A second address (plain HTTP) answering only /metrics, /healthz and
    // /readyz, e.g. "127.0.0.1:9090" for Prometheus; empty: none, and
    // /metrics is on `listen`.
    std::string metrics_listen;
    bool ops_listener = false;  // (internal: this config is the metrics address's)
    unsigned threads = 0;  // I/O threads; 0: one per core
    // Threads for handlers (database and storage calls, hashing and
    // compressing uploads), and for reading responses from storage. Calls
    // that wait (S3, PostgreSQL) wait there, never on an I/O thread.
    unsigned workers = 16;
    unsigned stream_workers = 64;
    // Connections open at once; more get a 503 and are closed. Keep it under
    // the file descriptor limit (serve raises its soft limit to the hard one).
    unsigned max_connections = 1000;
    std::chrono::seconds header_timeout{30};  // to receive a request's headers
    std::chrono::seconds body_timeout{60};    // without a byte of the body arriving
    std::chrono::seconds request_deadline{24 * 3600};  // for a whole request body
    std::chrono::seconds send_timeout{300};   // to send one piece of a response
    std::chrono::seconds shutdown_grace{30};  // for requests in flight at SIGTERM
    bool log_requests = true;  // one line per request (without query strings)
    std::string tls_certificate;  // PEM files; both set: HTTPS
    std::string tls_key;
};

// Serves until SIGINT or SIGTERM, then stops accepting, lets requests in
// flight finish (up to the grace period) and returns. `on_listening` gets the
// bound address (useful with port 0).
Result<void> run_server(const ServerConfig& config, Handler& handler,
                        const std::function<void(const std::string&)>& on_listening);

}  // namespace larder::http
