#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <algorithm>
#include <vector>

#include <fmt/core.h>

#include "codec/codec.hpp"

namespace larder::codec {

namespace {

// Pull-based: each read() decodes at most one output buffer of the zstd
// input (128 KiB) and re-encodes it, so what is pending stays bounded no
// matter how well the input compressed (a run of zeros expands 30,000-fold).
class ZstdTranscoder : public Source {
public:
    ZstdTranscoder(std::unique_ptr<Source> input, Method to, int level)
        : m_input(std::move(input)), m_dctx(ZSTD_createDCtx(), &ZSTD_freeDCtx), m_in(64 * 1024),
          m_decoded(ZSTD_DStreamOutSize()) {
        ZSTD_DCtx_setParameter(m_dctx.get(), ZSTD_d_windowLogMax, 27);
        if (to == Method::none) return;
        auto compressor = make_compressor(to, m_output, level);
        if (compressor) m_compressor = std::move(*compressor);
        else m_error = compressor.error().message;
    }

    Result<size_t> read(char* buf, size_t len) override {
        if (!m_error.empty()) return fail(ErrorCode::internal, m_error);
        while (m_offset == m_output.data().size() && !m_done) {
            m_output.data().clear();
            m_offset = 0;
            TRY(step());
        }
        size_t n = std::min(len, m_output.data().size() - m_offset);
        std::copy_n(m_output.data().data() + m_offset, n, buf);
        m_offset += n;
        return n;
    }

private:
    // Decodes one buffer's worth and encodes it into m_output.
    Result<void> step() {
        if (m_in_pos == m_in_size && !m_input_done) {
            TRY_ASSIGN(m_in_size, m_input->read(m_in.data(), m_in.size()));
            m_in_pos = 0;
            m_input_done = m_in_size == 0;
        }
        ZSTD_inBuffer in{m_in.data(), m_in_size, m_in_pos};
        ZSTD_outBuffer out{m_decoded.data(), m_decoded.size(), 0};
        size_t rc = ZSTD_decompressStream(m_dctx.get(), &out, &in);
        if (ZSTD_isError(rc))
            return fail(ErrorCode::corrupt, fmt::format("stored NAR is not valid zstd: {}", ZSTD_getErrorName(rc)));
        // 0 once a frame is complete; a call that moved nothing keeps the last word.
        if (in.pos != m_in_pos || out.pos > 0) m_frame_complete = rc == 0;
        m_in_pos = in.pos;
        std::string_view decoded(m_decoded.data(), out.pos);
        if (!decoded.empty()) TRY(m_compressor ? m_compressor->write(decoded) : m_output.write(decoded));
        bool drained = out.pos < out.size;  // nothing more buffered inside the decoder
        if (m_input_done && m_in_pos == m_in_size && drained) {
            if (!m_frame_complete) return fail(ErrorCode::corrupt, "stored NAR ends inside a zstd frame");
            if (m_compressor) TRY(m_compressor->finish());
            m_done = true;
        }
        return ok();
    }

    std::unique_ptr<Source> m_input;
    std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> m_dctx;
    std::vector<char> m_in;
    size_t m_in_size = 0;
    size_t m_in_pos = 0;
    bool m_input_done = false;
    bool m_frame_complete = false;
    std::vector<char> m_decoded;
    StringSink m_output;
    std::unique_ptr<Sink> m_compressor;  // null: plain NAR
    size_t m_offset = 0;
    bool m_done = false;
    std::string m_error;
};

}  // namespace

std::unique_ptr<Source> make_transcoder(std::unique_ptr<Source> input, Method to, int level) {
    return std::make_unique<ZstdTranscoder>(std::move(input), to, level);
}

}  // namespace larder::codec
