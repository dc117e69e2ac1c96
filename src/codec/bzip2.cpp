#include <bzlib.h>

#include <memory>
#include <vector>

#include <fmt/core.h>

#include "util/io.hpp"

namespace larder::codec {

namespace {

// Decoding only: Nix assumes bzip2 when a narinfo names no compression, so
// old caches hold such NARs.
class Bzip2Decompressor : public Sink {
public:
    explicit Bzip2Decompressor(Sink& next) : m_next(next), m_out(128 * 1024) { init(); }
    ~Bzip2Decompressor() override {
        if (m_open) BZ2_bzDecompressEnd(&m_stream);
    }

    Result<void> write(std::string_view data) override {
        m_stream.next_in = const_cast<char*>(data.data());
        m_stream.avail_in = static_cast<unsigned>(data.size());
        while (m_stream.avail_in > 0) {
            if (!m_open) init();  // a concatenated stream begins
            m_stream.next_out = m_out.data();
            m_stream.avail_out = static_cast<unsigned>(m_out.size());
            int rc = BZ2_bzDecompress(&m_stream);
            if (rc != BZ_OK && rc != BZ_STREAM_END)
                return fail(ErrorCode::invalid_input, fmt::format("invalid bzip2 data (libbz2 error {})", rc));
            size_t produced = m_out.size() - m_stream.avail_out;
            if (produced > 0) TRY(m_next.write(std::string_view(m_out.data(), produced)));
            if (rc == BZ_STREAM_END) {
                BZ2_bzDecompressEnd(&m_stream);
                m_open = false;
                m_ended_any = true;
            }
        }
        return ok();
    }

    Result<void> finish() override {
        // Flush what the decoder still holds for the current stream.
        while (m_open) {
            m_stream.next_in = nullptr;
            m_stream.avail_in = 0;
            m_stream.next_out = m_out.data();
            m_stream.avail_out = static_cast<unsigned>(m_out.size());
            int rc = BZ2_bzDecompress(&m_stream);
            size_t produced = m_out.size() - m_stream.avail_out;
            if (produced > 0) TRY(m_next.write(std::string_view(m_out.data(), produced)));
            if (rc == BZ_STREAM_END) {
                BZ2_bzDecompressEnd(&m_stream);
                m_open = false;
                m_ended_any = true;
            } else if (produced == 0) {
                break;
            }
        }
        if (m_open || !m_ended_any)
            return fail(ErrorCode::invalid_input, "truncated bzip2 data: the stream is incomplete");
        return m_next.finish();
    }

private:
    void init() {
        // Keep the pending input: a new stream may start mid-buffer.
        char* next_in = m_stream.next_in;
        unsigned avail_in = m_stream.avail_in;
        m_stream = bz_stream{};
        m_stream.next_in = next_in;
        m_stream.avail_in = avail_in;
        m_open = BZ2_bzDecompressInit(&m_stream, 0, 0) == BZ_OK;
    }

    Sink& m_next;
    bz_stream m_stream{};
    std::vector<char> m_out;
    bool m_open = false;
    bool m_ended_any = false;
};

}  // namespace

std::unique_ptr<Sink> make_bzip2_decompressor(Sink& next) {
    return std::make_unique<Bzip2Decompressor>(next);
}

}  // namespace larder::codec
