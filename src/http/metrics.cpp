#include "http/metrics.hpp"

#include <fmt/core.h>

namespace larder::http {

namespace {

constexpr std::string_view k_routes[] = {"narinfo", "nar",    "listing", "log",     "realisation", "cache_info",
                                         "push",    "api",    "health",  "ready",   "metrics",     "landing", "other"};

}  // namespace

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

std::string_view Metrics::route_label(std::string_view target) {
    auto r = route(target);
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
    auto& h = m_latency[std::string(route)];
    for (size_t i = 0; i < k_buckets.size(); ++i)
        if (seconds <= k_buckets[i]) {
            ++h.counts[i];
            break;
        }
    ++h.count;
    h.sum += seconds;
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
    for (const auto& [route, h] : m_latency) {
        uint64_t cumulative = 0;
        for (size_t i = 0; i < k_buckets.size(); ++i) {
            cumulative += h.counts[i];
            out += fmt::format("larder_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n", route,
                               k_buckets[i], cumulative);
        }
        out += fmt::format("larder_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n", route,
                           h.count);
        out += fmt::format("larder_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", route, h.sum);
        out += fmt::format("larder_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", route, h.count);
    }
    out += fmt::format("# HELP larder_http_received_bytes_total Request body bytes received.\n"
                       "# TYPE larder_http_received_bytes_total counter\n"
                       "larder_http_received_bytes_total {}\n"
                       "# HELP larder_http_sent_bytes_total Response body bytes sent.\n"
                       "# TYPE larder_http_sent_bytes_total counter\n"
                       "larder_http_sent_bytes_total {}\n",
                       m_bytes_in, m_bytes_out);
    return out;
}

}  // namespace larder::http
