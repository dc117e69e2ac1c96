#include <lzma.h>

#include <memory>
#include <vector>

#include <fmt/core.h>

#include "util/io.hpp"

namespace larder::codec {

namespace {

constexpr size_t k_out_size = 128 * 1024;
// Decoder memory per stream: xz -9 (Nix's highest preset) needs 65 MiB; a
// stream asking for more is refused rather than allowed a gigabyte.
constexpr uint64_t k_xz_memlimit = 128ull << 20;

// One class for both directions: liblzma's stream API is the same.
class XzFilter : public Sink {
public:
    XzFilter(Sink& next, bool compress, int level) : m_next(next), m_out(k_out_size) {
        lzma_ret rc = compress
            ? lzma_easy_encoder(&m_stream, level < 0 ? 6 : static_cast<uint32_t>(level), LZMA_CHECK_CRC64)
            : lzma_stream_decoder(&m_stream, k_xz_memlimit, LZMA_CONCATENATED);
        m_init_ok = rc == LZMA_OK;
        m_what = compress ? "xz compression failed" : "invalid xz data";
    }
    ~XzFilter() override { lzma_end(&m_stream); }

    Result<void> write(std::string_view data) override {
        if (!m_init_ok) return fail(ErrorCode::internal, "cannot initialise liblzma");
        m_stream.next_in = reinterpret_cast<const uint8_t*>(data.data());
        m_stream.avail_in = data.size();
        while (m_stream.avail_in > 0) TRY(step(LZMA_RUN));
        return ok();
    }

    Result<void> finish() override {
        if (!m_init_ok) return fail(ErrorCode::internal, "cannot initialise liblzma");
        m_stream.next_in = nullptr;
        m_stream.avail_in = 0;
        for (;;) {
            TRY_ASSIGN(lzma_ret rc, step(LZMA_FINISH));
            if (rc == LZMA_STREAM_END) break;
        }
        return m_next.finish();
    }

private:
    Result<lzma_ret> step(lzma_action action) {
        m_stream.next_out = reinterpret_cast<uint8_t*>(m_out.data());
        m_stream.avail_out = m_out.size();
        lzma_ret rc = lzma_code(&m_stream, action);
        size_t produced = m_out.size() - m_stream.avail_out;
        if (rc == LZMA_BUF_ERROR && action == LZMA_FINISH)
            return fail(ErrorCode::invalid_input, "truncated xz data: the stream is incomplete");
        if (rc != LZMA_OK && rc != LZMA_STREAM_END)
            return fail(ErrorCode::invalid_input, fmt::format("{} (liblzma error {})", m_what, static_cast<int>(rc)));
        if (produced > 0) TRY(m_next.write(std::string_view(m_out.data(), produced)));
        return rc;
    }

    Sink& m_next;
    lzma_stream m_stream = LZMA_STREAM_INIT;
    std::vector<char> m_out;
    bool m_init_ok = false;
    const char* m_what;
};

}  // namespace

std::unique_ptr<Sink> make_xz_compressor(Sink& next, int level) {
    return std::make_unique<XzFilter>(next, true, level);
}

std::unique_ptr<Sink> make_xz_decompressor(Sink& next) {
    return std::make_unique<XzFilter>(next, false, -1);
}

}  // namespace larder::codec
