#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_getFrameHeader (exported by libzstd 1.5)
#include <zstd.h>

#include <algorithm>

#include <memory>
#include <vector>

#include <fmt/core.h>

#include "codec/codec.hpp"
#include "util/io.hpp"

namespace larder::codec {

namespace {

Failure zstd_error(std::string_view what, size_t rc) {
    return fail(ErrorCode::invalid_input, fmt::format("{}: {}", what, ZSTD_getErrorName(rc)));
}

class ZstdCompressor : public Sink {
public:
    ZstdCompressor(Sink& next, int level)
        : m_next(next), m_ctx(ZSTD_createCCtx()), m_out(ZSTD_CStreamOutSize()) {
        ZSTD_CCtx_setParameter(m_ctx.get(), ZSTD_c_compressionLevel, level < 0 ? 3 : level);
    }

    Result<void> write(std::string_view data) override {
        ZSTD_inBuffer in{data.data(), data.size(), 0};
        while (in.pos < in.size) TRY(step(in, ZSTD_e_continue));
        return ok();
    }

    Result<void> finish() override {
        ZSTD_inBuffer in{nullptr, 0, 0};
        for (;;) {
            TRY_ASSIGN(size_t remaining, step(in, ZSTD_e_end));
            if (remaining == 0) break;
        }
        return m_next.finish();
    }

private:
    Result<size_t> step(ZSTD_inBuffer& in, ZSTD_EndDirective mode) {
        ZSTD_outBuffer out{m_out.data(), m_out.size(), 0};
        size_t rc = ZSTD_compressStream2(m_ctx.get(), &out, &in, mode);
        if (ZSTD_isError(rc)) return zstd_error("zstd compression failed", rc);
        if (out.pos > 0) TRY(m_next.write(std::string_view(m_out.data(), out.pos)));
        return rc;
    }

    struct Free {
        void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
    };
    Sink& m_next;
    std::unique_ptr<ZSTD_CCtx, Free> m_ctx;
    std::vector<char> m_out;
};

class ZstdDecompressor : public Sink {
public:
    explicit ZstdDecompressor(Sink& next)
        : m_next(next), m_ctx(ZSTD_createDCtx()), m_out(ZSTD_DStreamOutSize()) {
        // Bound the window a hostile frame may ask for (zstd's own default
        // limit is 128 MiB; --long=31 frames need 2 GiB).
        ZSTD_DCtx_setParameter(m_ctx.get(), ZSTD_d_windowLogMax, 27);
    }

    Result<void> write(std::string_view data) override {
        ZSTD_inBuffer in{data.data(), data.size(), 0};
        while (in.pos < in.size) {
            ZSTD_outBuffer out{m_out.data(), m_out.size(), 0};
            size_t rc = ZSTD_decompressStream(m_ctx.get(), &out, &in);
            if (ZSTD_isError(rc)) return zstd_error("invalid zstd data", rc);
            m_frame_done = rc == 0;
            if (out.pos > 0) TRY(m_next.write(std::string_view(m_out.data(), out.pos)));
        }
        m_seen_input |= !data.empty();
        return ok();
    }

    Result<void> finish() override {
        // Drain output still buffered inside the context.
        for (;;) {
            ZSTD_inBuffer in{nullptr, 0, 0};
            ZSTD_outBuffer out{m_out.data(), m_out.size(), 0};
            size_t rc = ZSTD_decompressStream(m_ctx.get(), &out, &in);
            if (ZSTD_isError(rc)) return zstd_error("invalid zstd data", rc);
            if (out.pos > 0) TRY(m_next.write(std::string_view(m_out.data(), out.pos)));
            if (out.pos < out.size) {
                m_frame_done = m_frame_done || rc == 0;
                break;
            }
        }
        if (!m_seen_input || !m_frame_done)
            return fail(ErrorCode::invalid_input, "truncated zstd data: the last frame is incomplete");
        return m_next.finish();
    }

private:
    struct Free {
        void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
    };
    Sink& m_next;
    std::unique_ptr<ZSTD_DCtx, Free> m_ctx;
    std::vector<char> m_out;
    bool m_frame_done = false;
    bool m_seen_input = false;
};

// Frames a client made become stored (and served) bytes, so each must be
// one a well-behaved zstd would write for its content: the real magic (no
// legacy or skippable frames), no dictionary, the content size declared and
// true, a window no larger than the content, and no more bytes than
// ZSTD_compressBound allows (no padding with empty blocks). Memory stays
// bounded by `max_content` and its compress bound while splitting.
class ZstdFrameSplitter : public Sink {
public:
    ZstdFrameSplitter(size_t max_content, FrameHandler handler)
        : m_ctx(ZSTD_createDCtx()), m_out(ZSTD_DStreamOutSize()), m_max(max_content),
          m_max_frame(ZSTD_compressBound(max_content)), m_handler(std::move(handler)) {
        ZSTD_DCtx_setParameter(m_ctx.get(), ZSTD_d_windowLogMax, 27);
    }

    Result<void> write(std::string_view data) override {
        if (m_pending.empty()) return process(data);
        std::string joined = std::move(m_pending);
        m_pending.clear();
        joined.append(data);
        return process(joined);
    }

    Result<void> finish() override {
        if (!m_frame.empty() || !m_pending.empty())
            return fail(ErrorCode::invalid_input, "truncated zstd data: the last frame is incomplete");
        return ok();
    }

private:
    Result<void> process(std::string_view data) {
        ZSTD_inBuffer in{data.data(), data.size(), 0};
        bool flushing = false;
        while (in.pos < in.size || flushing) {
            if (m_frame.empty() && !flushing) {
                // A frame starts: read its magic number before decoding anything.
                auto head = data.substr(in.pos);
                if (head.size() < 4) {
                    m_pending.assign(head);
                    return ok();
                }
                uint32_t magic = static_cast<uint8_t>(head[0]) | static_cast<uint8_t>(head[1]) << 8 |
                                 static_cast<uint8_t>(head[2]) << 16 | uint32_t{static_cast<uint8_t>(head[3])} << 24;
                if (magic != ZSTD_MAGICNUMBER)
                    return fail(ErrorCode::invalid_input, "invalid zstd data: a chunk must be a zstd frame (magic "
                                                          "number FD2FB528; no skippable or legacy frames)");
            }
            size_t before = in.pos;
            ZSTD_outBuffer out{m_out.data(), m_out.size(), 0};
            size_t rc = ZSTD_decompressStream(m_ctx.get(), &out, &in);
            if (ZSTD_isError(rc)) return zstd_error("invalid zstd data", rc);
            m_frame.append(data.substr(before, in.pos - before));
            m_content.append(m_out.data(), out.pos);
            if (m_content.size() > m_max)
                return fail(ErrorCode::invalid_input,
                            fmt::format("a zstd frame holds more than {} bytes, the largest chunk allowed", m_max));
            if (m_frame.size() > m_max_frame)
                return fail(ErrorCode::invalid_input,
                            fmt::format("a zstd frame is over {} bytes, more than any chunk compresses to", m_max_frame));
            flushing = rc != 0 && out.pos == out.size;
            if (rc == 0) {
                TRY(check_frame());
                TRY(m_handler(m_frame, m_content));
                m_frame.clear();
                m_content.clear();
            }
        }
        return ok();
    }

    Result<void> check_frame() const {
        if (m_content.empty()) return fail(ErrorCode::invalid_input, "an empty zstd frame is not a chunk");
        ZSTD_frameHeader h{};
        size_t rc = ZSTD_getFrameHeader(&h, m_frame.data(), m_frame.size());
        if (rc != 0 || h.frameType != ZSTD_frame) return fail(ErrorCode::invalid_input, "invalid zstd frame header");
        if (h.dictID != 0) return fail(ErrorCode::invalid_input, "a chunk's zstd frame must not need a dictionary");
        if (h.frameContentSize != m_content.size())
            return fail(ErrorCode::invalid_input, fmt::format("a chunk's zstd frame must declare its content size ({} "
                                                              "bytes)",
                                                              m_content.size()));
        if (h.windowSize > std::max<uint64_t>(m_content.size(), 1 << 10))
            return fail(ErrorCode::invalid_input,
                        fmt::format("a chunk's zstd frame asks for a {}-byte window for {} bytes of content",
                                    h.windowSize, m_content.size()));
        if (m_frame.size() > ZSTD_compressBound(m_content.size()))
            return fail(ErrorCode::invalid_input,
                        fmt::format("a zstd frame of {} bytes for {} bytes of content is padded (at most {})",
                                    m_frame.size(), m_content.size(), ZSTD_compressBound(m_content.size())));
        return ok();
    }

    struct Free {
        void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
    };
    std::unique_ptr<ZSTD_DCtx, Free> m_ctx;
    std::vector<char> m_out;
    size_t m_max;
    size_t m_max_frame;
    FrameHandler m_handler;
    std::string m_pending;  // under 4 bytes of a frame's start, until more arrive
    std::string m_frame;    // compressed bytes of the current frame
    std::string m_content;  // its content so far
};

}  // namespace

std::unique_ptr<Sink> make_frame_splitter(size_t max_content, FrameHandler handler) {
    return std::make_unique<ZstdFrameSplitter>(max_content, std::move(handler));
}

struct FrameCompressor::Context {
    std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx{ZSTD_createCCtx(), &ZSTD_freeCCtx};
};

FrameCompressor::FrameCompressor(int level) : m_ctx(std::make_unique<Context>()) {
    ZSTD_CCtx_setParameter(m_ctx->cctx.get(), ZSTD_c_compressionLevel, level < 0 ? 3 : level);
}

FrameCompressor::~FrameCompressor() = default;

Result<void> FrameCompressor::compress(std::string_view in, std::string& out) {
    out.resize(ZSTD_compressBound(in.size()));
    size_t n = ZSTD_compress2(m_ctx->cctx.get(), out.data(), out.size(), in.data(), in.size());
    if (ZSTD_isError(n)) return zstd_error("zstd compression failed", n);
    out.resize(n);
    return ok();
}

std::unique_ptr<Sink> make_zstd_compressor(Sink& next, int level) {
    return std::make_unique<ZstdCompressor>(next, level);
}

std::unique_ptr<Sink> make_zstd_decompressor(Sink& next) {
    return std::make_unique<ZstdDecompressor>(next);
}

}  // namespace larder::codec
