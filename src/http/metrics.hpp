// Counters for Prometheus (GET /metrics): requests by route, method and
// status, their latency by route, bytes in and out, narinfo hits and misses,
// uploads. Every series a dashboard is likely to use exists at 0 from
// startup. Observing a request takes one mutex; rendering is for a scraper
// every few seconds.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "http/router.hpp"
#include "util/histogram.hpp"

namespace larder::http {

// What the server is doing right now (gauges), kept by the server and the
// sessions while it runs.
struct ServerGauges {
    std::atomic<int64_t> open_connections{0};
    std::atomic<int64_t> requests_in_flight{0};
    std::atomic<int64_t> workers_busy{0}, stream_workers_busy{0};  // tasks running or queued
    std::atomic<int64_t> workers{0}, stream_workers{0};            // threads
};

// One counter or gauge with its HELP and TYPE lines, appended to `out`.
void render_counter(std::string& out, std::string_view name, std::string_view help, uint64_t value);
void render_gauge(std::string& out, std::string_view name, std::string_view help, int64_t value);

class Metrics {
public:
    Metrics();
    // `route` is the route's label (route_label()).
    void observe(std::string_view route, std::string_view method, unsigned status, double seconds,
                 uint64_t bytes_in, uint64_t bytes_out);
    // The text exposition format, version 0.0.4.
    std::string render() const;

    static std::string_view route_label(std::string_view target);
    static std::string_view route_label(const Result<Route>& route);

    ServerGauges& gauges() { return m_gauges; }

private:
    ServerGauges m_gauges;
    mutable std::mutex m_mutex;
    std::map<std::tuple<std::string, std::string, unsigned>, uint64_t> m_requests;
    std::map<std::string, Histogram> m_latency;
    uint64_t m_bytes_in = 0, m_bytes_out = 0;
};

}  // namespace larder::http
