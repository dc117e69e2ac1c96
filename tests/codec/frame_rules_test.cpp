// Security review H5: client frames become stored bytes, so the splitter
// accepts only frames a well-behaved zstd writes for their content.
#include <gtest/gtest.h>

#include <string>

#include "codec/codec.hpp"

using namespace larder;

namespace {

void le(std::string& out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>(v >> (8 * i) & 0xff);
}

struct FrameSpec {
    uint32_t magic = 0xFD2FB528;
    bool single_segment = true;
    bool content_size = true;
    int window_exponent = 0;  // window 2^(10 + e), when not single segment
    int dict_id = 0;
    int padding_blocks = 0;   // empty raw blocks before the content
};

// One frame holding `content` as a raw block, built byte by byte.
std::string frame(std::string_view content, const FrameSpec& s) {
    std::string out;
    le(out, s.magic, 4);
    uint8_t fhd = (s.content_size ? 0x80 : 0) | (s.single_segment ? 0x20 : 0) | (s.dict_id ? 0x01 : 0);
    out += static_cast<char>(fhd);
    if (!s.single_segment) out += static_cast<char>(s.window_exponent << 3);
    if (s.dict_id) out += static_cast<char>(s.dict_id);
    if (s.content_size) le(out, content.size(), 4);
    for (int i = 0; i < s.padding_blocks; ++i) le(out, 0, 3);
    le(out, content.size() << 3 | 1, 3);  // last raw block
    out += content;
    return out;
}

Result<void> split(const std::string& data) {
    auto splitter = codec::make_frame_splitter(1 << 20, [](std::string_view, std::string_view) { return ok(); });
    TRY(splitter->write(data));
    return splitter->finish();
}

std::string refusal(const std::string& data) {
    auto r = split(data);
    return r ? std::string("accepted") : r.error().message;
}

}  // namespace

TEST(FrameRules, AWellFormedFrameIsAccepted) {
    std::string content(1000, 'x');
    EXPECT_TRUE(split(frame(content, {})));
    FrameSpec windowed;
    windowed.single_segment = false;  // a 1 KiB window for 1000 bytes
    EXPECT_TRUE(split(frame(content, windowed)));
}

TEST(FrameRules, PaddedFramesAreRefused) {
    FrameSpec s;
    s.padding_blocks = 1000;
    EXPECT_NE(refusal(frame("tiny", s)).find("padded"), std::string::npos) << refusal(frame("tiny", s));
}

TEST(FrameRules, PaddingIsRefusedBeforeItIsBuffered) {
    // 2 million empty blocks (6 MB) for 4 bytes: refused once the frame
    // outgrows any chunk, not after buffering all of it.
    FrameSpec s;
    s.padding_blocks = 2'000'000;
    EXPECT_NE(refusal(frame("tiny", s)).find("more than any chunk compresses to"), std::string::npos);
}

TEST(FrameRules, ContentSizeMustBeDeclared) {
    FrameSpec s;
    s.single_segment = false;
    s.content_size = false;
    EXPECT_NE(refusal(frame(std::string(1000, 'x'), s)).find("content size"), std::string::npos);
}

TEST(FrameRules, WindowNoLargerThanTheContent) {
    FrameSpec s;
    s.single_segment = false;
    s.window_exponent = 10;  // 1 MiB for 1000 bytes
    EXPECT_NE(refusal(frame(std::string(1000, 'x'), s)).find("window"), std::string::npos);
}

TEST(FrameRules, NoDictionaryNoLegacyNoSkippable) {
    std::string content(1000, 'x');
    FrameSpec dict;
    dict.dict_id = 7;
    EXPECT_NE(refusal(frame(content, dict)), "accepted");
    FrameSpec legacy;
    legacy.magic = 0xFD2FB527;  // zstd v0.7
    EXPECT_NE(refusal(frame(content, legacy)).find("magic number"), std::string::npos);
    std::string skippable;
    le(skippable, 0x184D2A50, 4);
    le(skippable, 4, 4);
    skippable += "abcd";
    EXPECT_NE(refusal(skippable + frame(content, {})).find("magic number"), std::string::npos);
}

TEST(FrameRules, AFrameStartSplitAcrossWritesIsFine) {
    auto data = frame(std::string(1000, 'y'), {}) + frame(std::string(500, 'z'), {});
    size_t frames = 0;
    auto splitter = codec::make_frame_splitter(1 << 20, [&](std::string_view, std::string_view) {
        ++frames;
        return ok();
    });
    for (char c : data) ASSERT_TRUE(splitter->write(std::string_view(&c, 1)));
    ASSERT_TRUE(splitter->finish());
    EXPECT_EQ(frames, 2u);
}
