// libFuzzer target: the splitter of client zstd frames (review H5). Every
// frame it hands on must obey the rules, and memory must stay bounded.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "codec/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    constexpr size_t k_max = 64 << 10;
    size_t piece = 1 + data[0] % 64;  // the stream arrives in pieces of this size
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto splitter = larder::codec::make_frame_splitter(k_max, [](std::string_view frame, std::string_view content) {
        ZSTD_frameHeader h{};
        if (content.empty() || content.size() > k_max) std::abort();
        if (frame.size() > ZSTD_compressBound(content.size())) std::abort();
        if (ZSTD_getFrameHeader(&h, frame.data(), frame.size()) != 0) std::abort();
        if (h.frameContentSize != content.size() || h.dictID != 0) std::abort();
        return larder::ok();
    });
    for (size_t i = 0; i < input.size(); i += piece)
        if (!splitter->write(input.substr(i, piece))) return 0;
    (void)splitter->finish();
    return 0;
}
