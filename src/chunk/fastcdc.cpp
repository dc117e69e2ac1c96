#include "chunk/fastcdc.hpp"

#include <array>
#include <bit>
#include <cmath>

#include <fmt/core.h>

namespace larder::chunk {

namespace {

// The gear table: 256 fixed pseudo-random words (splitmix64 from a fixed
// seed). Changing it moves every chunk boundary, so it never changes.
constexpr std::array<uint64_t, 256> make_gear() {
    std::array<uint64_t, 256> table{};
    uint64_t state = 0x4c61726465724344ULL;  // "LarderCD"
    for (auto& g : table) {
        state += 0x9e3779b97f4a7c15ULL;
        uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        g = z ^ (z >> 31);
    }
    return table;
}

constexpr auto k_gear = make_gear();

// `bits` one-bits at the top of the word: with a left-shifting hash the top
// bits depend on the most bytes (the last 64).
uint64_t top_mask(int bits) { return bits <= 0 ? 0 : ~uint64_t{0} << (64 - bits); }

}  // namespace

Result<void> check(const Params& p) {
    if (p.min_size < 64 || p.min_size >= p.avg_size || p.avg_size >= p.max_size || p.max_size > (64u << 20))
        return fail(ErrorCode::invalid_input,
                    fmt::format("chunk sizes must satisfy 64 <= min < avg < max <= 64 MiB (got {} / {} / {})",
                                p.min_size, p.avg_size, p.max_size));
    return ok();
}

FastCdc::FastCdc(const Params& params) : m_params(params) {
    int bits = static_cast<int>(std::lround(std::log2(static_cast<double>(params.avg_size))));
    // Normalization level 2.
    m_mask_small = top_mask(bits + 2);
    m_mask_large = top_mask(bits - 2);
}

size_t FastCdc::cut(const uint8_t* data, size_t size) const {
    if (size <= m_params.min_size) return size;
    size_t end = std::min(size, m_params.max_size);
    size_t normal = std::min(end, m_params.avg_size);
    uint64_t hash = 0;
    size_t i = m_params.min_size;
    for (; i < normal; ++i) {
        hash = (hash << 1) + k_gear[data[i]];
        if (!(hash & m_mask_small)) return i + 1;
    }
    for (; i < end; ++i) {
        hash = (hash << 1) + k_gear[data[i]];
        if (!(hash & m_mask_large)) return i + 1;
    }
    return end;
}

Chunker::Chunker(const Params& params, size_t single_below, Emit emit)
    : m_cdc(params), m_single_below(single_below), m_hold(std::max(params.max_size, single_below)),
      m_emit(std::move(emit)) {}

Result<void> Chunker::cut_while(size_t keep) {
    while (m_buffer.size() - m_start > keep) {
        auto* p = reinterpret_cast<const uint8_t*>(m_buffer.data()) + m_start;
        size_t n = m_cdc.cut(p, m_buffer.size() - m_start);
        TRY(m_emit(std::string_view(m_buffer).substr(m_start, n)));
        m_start += n;
    }
    if (m_start > 0 && m_start >= m_buffer.size() / 2) {
        m_buffer.erase(0, m_start);
        m_start = 0;
    }
    return ok();
}

Result<void> Chunker::write(std::string_view data) {
    m_buffer.append(data);
    m_total += data.size();
    // Cut only with a full window ahead, so every cut sees max_size bytes.
    if (m_total < m_single_below) return ok();
    return cut_while(m_hold - 1);
}

Result<void> Chunker::finish() {
    if (m_total < m_single_below) {
        if (!m_buffer.empty()) TRY(m_emit(m_buffer));
        m_buffer.clear();
        return ok();
    }
    TRY(cut_while(0));
    m_buffer.clear();
    m_start = 0;
    return ok();
}

}  // namespace larder::chunk
