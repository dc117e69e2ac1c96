#include <gtest/gtest.h>

#include "codec/codec.hpp"

using namespace larder;

TEST(Transcode, ZstdToXzAndNone) {
    std::string data(300000, 'q');
    for (size_t i = 0; i < data.size(); i += 7) data[i] = static_cast<char>('a' + i % 13);
    StringSink zstd;
    auto c = codec::make_compressor(codec::Method::zstd, zstd);
    ASSERT_TRUE((*c)->write(data) && (*c)->finish());
    for (auto to : {codec::Method::xz, codec::Method::none}) {
        auto source = codec::make_transcoder(std::make_unique<StringSource>(zstd.data()), codec::Method::zstd, to);
        StringSink out;
        ASSERT_TRUE(copy(*source, out, 1000));
        StringSink plain;
        auto d = codec::make_decompressor(to, plain);
        ASSERT_TRUE(d->write(out.data()) && d->finish());
        EXPECT_EQ(plain.data(), data);
    }
}
