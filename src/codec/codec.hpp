// Streaming compression filters. Each is a Sink that transforms what is
// written to it and writes the result to the next Sink, in bounded memory.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "util/io.hpp"

namespace larder::codec {

enum class Method { none, zstd, xz, bzip2 };

// "none", "zstd", "xz", "bzip2"; anything else is an invalid_input error.
Result<Method> parse_method(std::string_view name);
std::string_view name(Method method);
// The NAR file extension Nix uses: ".zst", ".xz", ".bz2", or "" for none.
std::string_view extension(Method method);

// Compresses into `next`. `level` < 0 picks the method's default.
// bzip2 is read-only here: Larder never writes it.
Result<std::unique_ptr<Sink>> make_compressor(Method method, Sink& next, int level = -1);

// Compresses whole buffers, each into one zstd frame, reusing one context
// (NAR chunks: each is stored, and served, as one frame).
class FrameCompressor {
public:
    explicit FrameCompressor(int level);
    ~FrameCompressor();
    FrameCompressor(const FrameCompressor&) = delete;
    FrameCompressor& operator=(const FrameCompressor&) = delete;
    // Replaces `out` with the frame.
    Result<void> compress(std::string_view in, std::string& out);

private:
    struct Context;
    std::unique_ptr<Context> m_ctx;
};

// Splits a stream of zstd frames, handing each frame's bytes and content to
// `handler` (`larder push` sends every NAR chunk as one frame). A frame whose
// content is empty or over `max_content` bytes, or a truncated one, is an
// invalid_input error.
using FrameHandler = std::function<Result<void>(std::string_view frame, std::string_view content)>;
std::unique_ptr<Sink> make_frame_splitter(size_t max_content, FrameHandler handler);

// Decompresses into `next`. Concatenated zstd frames, xz streams and bzip2
// streams decode as one; finish() fails ("truncated ...") on an incomplete one.
std::unique_ptr<Sink> make_decompressor(Method method, Sink& next);

}  // namespace larder::codec

namespace larder::codec {

// A Source that re-encodes zstd `input` to another compression as it is
// read, in bounded memory: each read decodes at most 128 KiB (the output
// size is not known in advance).
std::unique_ptr<Source> make_transcoder(std::unique_ptr<Source> input, Method to, int level = 1);

}  // namespace larder::codec
