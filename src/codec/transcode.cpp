#include <algorithm>
#include <vector>

#include "codec/codec.hpp"

namespace larder::codec {

namespace {

class Transcoder : public Source {
public:
    Transcoder(std::unique_ptr<Source> input, Method from, Method to, int level)
        : m_input(std::move(input)), m_in(64 * 1024) {
        auto compressor = make_compressor(to, m_output, level);
        m_compressor = compressor ? std::move(*compressor) : nullptr;
        if (m_compressor) m_decompressor = make_decompressor(from, *m_compressor);
    }

    Result<size_t> read(char* buf, size_t len) override {
        if (!m_compressor) return fail(ErrorCode::internal, "cannot compress to the requested format");
        while (m_offset == m_output.data().size() && !m_finished) {
            m_output.data().clear();
            m_offset = 0;
            TRY_ASSIGN(size_t n, m_input->read(m_in.data(), m_in.size()));
            if (n == 0) {
                TRY(m_decompressor->finish());  // finishes the compressor too
                m_finished = true;
            } else {
                TRY(m_decompressor->write(std::string_view(m_in.data(), n)));
            }
        }
        size_t n = std::min(len, m_output.data().size() - m_offset);
        std::copy_n(m_output.data().data() + m_offset, n, buf);
        m_offset += n;
        return n;
    }

private:
    std::unique_ptr<Source> m_input;
    StringSink m_output;
    std::unique_ptr<Sink> m_compressor;
    std::unique_ptr<Sink> m_decompressor;
    std::vector<char> m_in;
    size_t m_offset = 0;
    bool m_finished = false;
};

}  // namespace

std::unique_ptr<Source> make_transcoder(std::unique_ptr<Source> input, Method from, Method to, int level) {
    return std::make_unique<Transcoder>(std::move(input), from, to, level);
}

}  // namespace larder::codec
