// Counters for Prometheus (GET /metrics): requests by route, method and
// status, their latency by route, bytes in and out, narinfo hits and misses,
// uploads. Every series a dashboard is likely to use exists at 0 from
// startup. Observing a request takes one mutex; rendering is for a scraper
// every few seconds.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "http/router.hpp"

namespace larder::http {

class Metrics {
public:
    Metrics();
    // `route` is the route's label (route_label()).
    void observe(std::string_view route, std::string_view method, unsigned status, double seconds,
                 uint64_t bytes_in, uint64_t bytes_out);
    // The text exposition format, version 0.0.4.
    std::string render() const;

    static std::string_view route_label(std::string_view target);

private:
    static constexpr std::array<double, 13> k_buckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                         0.25,  0.5,    1,     2.5,  5,    10};
    struct Histogram {
        std::array<uint64_t, k_buckets.size()> counts{};  // cumulative at render
        uint64_t count = 0;
        double sum = 0;
    };
    mutable std::mutex m_mutex;
    std::map<std::tuple<std::string, std::string, unsigned>, uint64_t> m_requests;
    std::map<std::string, Histogram> m_latency;
    uint64_t m_bytes_in = 0, m_bytes_out = 0;
};

}  // namespace larder::http
