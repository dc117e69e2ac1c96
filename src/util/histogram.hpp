// A Prometheus histogram of durations in seconds, safe to observe from any
// thread without a lock (one atomic add per bucket hit), rendered in the
// text exposition format.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace larder {

class Histogram {
public:
    static constexpr std::array<double, 13> k_buckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                         0.25,  0.5,    1,     2.5,  5,    10};

    void observe(double seconds);
    // The _bucket, _sum and _count lines of series `name`; `labels` is
    // what goes inside the braces before `le` ("" or `route="nar"`).
    void render(std::string& out, std::string_view name, std::string_view labels) const;

private:
    std::array<std::atomic<uint64_t>, k_buckets.size()> m_counts{};  // not cumulative
    std::atomic<uint64_t> m_count{0};
    std::atomic<uint64_t> m_sum_us{0};  // microseconds: an atomic integer add
};

}  // namespace larder
