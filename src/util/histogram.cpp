#include "util/histogram.hpp"

#include <fmt/core.h>

namespace larder {

void Histogram::observe(double seconds) {
    for (size_t i = 0; i < k_buckets.size(); ++i)
        if (seconds <= k_buckets[i]) {
            m_counts[i].fetch_add(1, std::memory_order_relaxed);
            break;
        }
    m_count.fetch_add(1, std::memory_order_relaxed);
    m_sum_us.fetch_add(static_cast<uint64_t>(seconds > 0 ? seconds * 1e6 : 0), std::memory_order_relaxed);
}

void Histogram::render(std::string& out, std::string_view name, std::string_view labels) const {
    std::string_view sep = labels.empty() ? "" : ",";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < k_buckets.size(); ++i) {
        cumulative += m_counts[i].load(std::memory_order_relaxed);
        out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, k_buckets[i], cumulative);
    }
    // The total is read last: +Inf is never below a finite bucket.
    uint64_t count = std::max(cumulative, m_count.load(std::memory_order_relaxed));
    out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, count);
    auto braces = labels.empty() ? std::string() : fmt::format("{{{}}}", labels);
    out += fmt::format("{}_sum{} {}\n", name, braces, static_cast<double>(m_sum_us.load()) / 1e6);
    out += fmt::format("{}_count{} {}\n", name, braces, count);
}

}  // namespace larder
