#include "http/metrics.hpp"

#include <fmt/core.h>

namespace larder::http {

namespace {

constexpr std::string_view k_routes[] = {"narinfo", "nar",    "listing", "log",     "realisation", "cache_info",
                                         "push",    "api",    "health",  "ready",   "metrics",     "landing", "other"};

}  // namespace

void render_counter(std::string& out, std::string_view name, std::string_view help, uint64_t value) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, value);
}

void render_gauge(std::string& out, std::string_view name, std::string_view help, int64_t value) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, value);
}

Metrics::Metrics() {
    for (auto r : k_routes) m_latency[std::string(r)];
    // The series dashboards and alerts start from.
    for (unsigned status : {200u, 404u}) m_requests[{"narinfo", "GET", status}] = 0;
    for (unsigned status : {200u, 206u, 404u}) m_requests[{"nar", "GET", status}] = 0;
    for (unsigned status : {200u, 400u}) {
        m_requests[{"nar", "PUT", status}] = 0;
        m_requests[{"narinfo", "PUT", status}] = 0;
        m_requests[{"push", "PUT", status}] = 0;
    }
}

std::string_view Metrics::route_label(std::string_view target) { return route_label(http::route(target)); }

std::string_view Metrics::route_label(const Result<Route>& r) {
    if (!r) return "other";
    switch (r->kind) {
        case RouteKind::health: return "health";
        case RouteKind::ready: return "ready";
        case RouteKind::metrics: return "metrics";
        case RouteKind::landing: return "landing";
        case RouteKind::api: return "api";
        case RouteKind::cache_info: return "cache_info";
        case RouteKind::push: return "push";
        case RouteKind::narinfo: return "narinfo";
        case RouteKind::listing: return "listing";
        case RouteKind::nar: return "nar";
        case RouteKind::log: return "log";
        case RouteKind::realisation: return "realisation";
    }
    return "other";
}

void Metrics::observe(std::string_view route, std::string_view method, unsigned status, double seconds,
                      uint64_t bytes_in, uint64_t bytes_out) {
    std::lock_guard lock(m_mutex);
    ++m_requests[{std::string(route), std::string(method), status}];
    m_latency[std::string(route)].observe(seconds);
    m_bytes_in += bytes_in;
    m_bytes_out += bytes_out;
}

std::string Metrics::render() const {
    std::lock_guard lock(m_mutex);
    std::string out;
    out += "# HELP larder_http_requests_total HTTP requests answered, by route, method and status.\n"
           "# TYPE larder_http_requests_total counter\n";
    for (const auto& [key, n] : m_requests)
        out += fmt::format("larder_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}\n",
                           std::get<0>(key), std::get<1>(key), std::get<2>(key), n);
    out += "# HELP larder_http_request_duration_seconds Time from the request's headers to the end of its response.\n"
           "# TYPE larder_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : m_latency)
        h.render(out, "larder_http_request_duration_seconds", fmt::format("route=\"{}\"", route));
    out += fmt::format("# HELP larder_http_received_bytes_total Request body bytes received.\n"
                       "# TYPE larder_http_received_bytes_total counter\n"
                       "larder_http_received_bytes_total {}\n"
                       "# HELP larder_http_sent_bytes_total Response body bytes sent.\n"
                       "# TYPE larder_http_sent_bytes_total counter\n"
                       "larder_http_sent_bytes_total {}\n",
                       m_bytes_in, m_bytes_out);
    auto gauge = [&](std::string_view name, std::string_view help, const std::atomic<int64_t>& value) {
        render_gauge(out, name, help, value.load());
    };
    gauge("larder_http_open_connections", "Client connections open.", m_gauges.open_connections);
    gauge("larder_http_requests_in_flight", "Requests being answered.", m_gauges.requests_in_flight);
    gauge("larder_worker_threads", "Threads for handlers (database, storage, hashing, compression).",
          m_gauges.workers);
    gauge("larder_worker_tasks", "Handler tasks running or waiting for a worker thread.", m_gauges.workers_busy);
    gauge("larder_stream_worker_threads", "Threads reading response streams from storage.", m_gauges.stream_workers);
    gauge("larder_stream_worker_tasks", "Stream reads running or waiting for a stream thread.",
          m_gauges.stream_workers_busy);
    return out;
}

}  // namespace larder::http
