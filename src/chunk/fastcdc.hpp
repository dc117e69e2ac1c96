// FastCDC content-defined chunking (Xia et al., 2016/2020): a gear rolling
// hash with normalized chunking, so that an edit moves only the chunk
// boundaries near it and successive builds share most chunks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "util/io.hpp"

namespace larder::chunk {

// The defaults are the server's (see cache::Config for how they were chosen).
struct Params {
    size_t min_size = 256 << 10;
    size_t avg_size = 1 << 20;
    size_t max_size = 4 << 20;
};

// min >= 64, min < avg < max, max <= 64 MiB.
Result<void> check(const Params& params);

class FastCdc {
public:
    explicit FastCdc(const Params& params);
    // The length of the first chunk of `data`: a content-defined cut between
    // min and max, or all of `data` when it is shorter than min.
    size_t cut(const uint8_t* data, size_t size) const;
    const Params& params() const { return m_params; }

private:
    Params m_params;
    uint64_t m_mask_small;  // before avg: more bits, cuts less likely
    uint64_t m_mask_large;  // after avg: fewer bits, cuts more likely
};

// A Sink that cuts what is written to it into chunks and hands each to
// `emit`. A stream shorter than `single_below` is one chunk. Memory: at most
// max(max_size, single_below) bytes plus one write.
class Chunker : public Sink {
public:
    using Emit = std::function<Result<void>(std::string_view chunk)>;
    Chunker(const Params& params, size_t single_below, Emit emit);

    Result<void> write(std::string_view data) override;
    Result<void> finish() override;

private:
    Result<void> cut_while(size_t keep);

    FastCdc m_cdc;
    size_t m_single_below;
    size_t m_hold;
    Emit m_emit;
    std::string m_buffer;
    size_t m_start = 0;  // of the unchunked bytes in m_buffer
    uint64_t m_total = 0;
};

}  // namespace larder::chunk
