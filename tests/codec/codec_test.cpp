#include "codec/codec.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace larder;

namespace {

std::string sample(size_t n) {
    std::mt19937 rng(42);
    std::string s;
    for (size_t i = 0; i < n; ++i) s += static_cast<char>("abcdefgh\n"[rng() % 9]);
    return s;
}

std::string compress(codec::Method m, std::string_view data) {
    StringSink out;
    auto c = codec::make_compressor(m, out);
    EXPECT_TRUE(c);
    EXPECT_TRUE((*c)->write(data));
    EXPECT_TRUE((*c)->finish());
    return out.data();
}

Result<std::string> decompress(codec::Method m, std::string_view data, size_t piece = 1000) {
    StringSink out;
    auto d = codec::make_decompressor(m, out);
    for (size_t i = 0; i < data.size(); i += piece) TRY(d->write(data.substr(i, piece)));
    TRY(d->finish());
    return out.data();
}

}  // namespace

TEST(Codec, RoundTrips) {
    auto data = sample(1 << 20);
    for (auto m : {codec::Method::none, codec::Method::zstd, codec::Method::xz}) {
        auto packed = compress(m, data);
        auto unpacked = decompress(m, packed);
        ASSERT_TRUE(unpacked) << codec::name(m) << ": " << unpacked.error().message;
        EXPECT_EQ(*unpacked, data) << codec::name(m);
    }
}

TEST(Codec, ConcatenatedFramesAndStreamsDecodeAsOne) {
    for (auto m : {codec::Method::zstd, codec::Method::xz}) {
        auto packed = compress(m, "first,") + compress(m, "") + compress(m, "second");
        auto unpacked = decompress(m, packed, 7);
        ASSERT_TRUE(unpacked) << codec::name(m) << ": " << unpacked.error().message;
        EXPECT_EQ(*unpacked, "first,second");
    }
}

TEST(Codec, TruncatedInputFails) {
    auto data = sample(100000);
    for (auto m : {codec::Method::zstd, codec::Method::xz}) {
        auto packed = compress(m, data);
        auto r = decompress(m, packed.substr(0, packed.size() / 2));
        ASSERT_FALSE(r) << codec::name(m);
        EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << r.error().message;
        EXPECT_FALSE(decompress(m, "")) << codec::name(m);
    }
}

TEST(Codec, GarbageFails) {
    for (auto m : {codec::Method::zstd, codec::Method::xz, codec::Method::bzip2}) {
        auto r = decompress(m, "this is not compressed at all");
        ASSERT_FALSE(r) << codec::name(m);
        EXPECT_EQ(r.error().code, ErrorCode::invalid_input);
    }
}

TEST(Codec, Bzip2DecodesWhatBzip2Wrote) {
    // `printf 'hello\n' | bzip2 | xxd -i`, twice concatenated.
    const unsigned char one[] = {0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0xc1,
                                 0xc0, 0x80, 0xe2, 0x00, 0x00, 0x01, 0x41, 0x00, 0x00, 0x10, 0x02,
                                 0x44, 0xa0, 0x00, 0x30, 0xcd, 0x00, 0xc3, 0x46, 0x29, 0x97, 0x17,
                                 0x72, 0x45, 0x38, 0x50, 0x90, 0xc1, 0xc0, 0x80, 0xe2};
    std::string packed(reinterpret_cast<const char*>(one), sizeof one);
    auto r = decompress(codec::Method::bzip2, packed + packed, 5);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, "hello\nhello\n");
    EXPECT_FALSE(decompress(codec::Method::bzip2, packed.substr(0, 20)));
}

TEST(Codec, MethodNames) {
    EXPECT_EQ(*codec::parse_method("zstd"), codec::Method::zstd);
    EXPECT_EQ(codec::extension(codec::Method::xz), ".xz");
    EXPECT_FALSE(codec::parse_method("gzip"));
    StringSink sink;
    EXPECT_FALSE(codec::make_compressor(codec::Method::bzip2, sink));
}

TEST(FrameSplitter, HandsOverEachFrameWithItsContent) {
    codec::FrameCompressor z(3);
    std::string stream, f1, f2;
    ASSERT_TRUE(z.compress(std::string(100000, 'a'), f1));
    ASSERT_TRUE(z.compress("second chunk", f2));
    stream = f1 + f2;
    std::vector<std::pair<std::string, std::string>> got;
    auto splitter = codec::make_frame_splitter(1 << 20, [&](std::string_view frame, std::string_view content) -> Result<void> {
        got.emplace_back(frame, content);
        return ok();
    });
    for (size_t i = 0; i < stream.size(); i += 7) ASSERT_TRUE(splitter->write(std::string_view(stream).substr(i, 7)));
    ASSERT_TRUE(splitter->finish());
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].first, f1);
    EXPECT_EQ(got[0].second, std::string(100000, 'a'));
    EXPECT_EQ(got[1].first, f2);
    EXPECT_EQ(got[1].second, "second chunk");
}

TEST(FrameSplitter, RejectsOversizedTruncatedAndGarbageFrames) {
    codec::FrameCompressor z(3);
    std::string frame;
    ASSERT_TRUE(z.compress(std::string(5000, 'b'), frame));
    auto none = [](std::string_view, std::string_view) -> Result<void> { return ok(); };
    auto small = codec::make_frame_splitter(4096, none);
    EXPECT_FALSE(small->write(frame));
    auto truncated = codec::make_frame_splitter(1 << 20, none);
    ASSERT_TRUE(truncated->write(std::string_view(frame).substr(0, frame.size() - 3)));
    EXPECT_FALSE(truncated->finish());
    auto garbage = codec::make_frame_splitter(1 << 20, none);
    EXPECT_FALSE(garbage->write("definitely not zstd"));
}
