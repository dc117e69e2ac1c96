#include "chunk/fastcdc.hpp"

#include <gtest/gtest.h>

#include "support/random_bytes.hpp"

#include <random>
#include <set>

using namespace larder;
using larder::test::random_bytes;
using namespace larder::chunk;

namespace {

std::vector<std::string> chunks_of(const std::string& data, const Params& p, size_t single_below, size_t piece) {
    std::vector<std::string> out;
    Chunker chunker(p, single_below, [&](std::string_view c) -> Result<void> {
        out.emplace_back(c);
        return ok();
    });
    for (size_t i = 0; i < data.size(); i += piece) EXPECT_TRUE(chunker.write(std::string_view(data).substr(i, piece)));
    EXPECT_TRUE(chunker.finish());
    return out;
}

const Params k_small{1024, 4096, 16384};

}  // namespace

TEST(FastCdc, ChunksRespectBoundsAndJoinToTheInput) {
    auto data = random_bytes(1 << 20, 1);
    auto chunks = chunks_of(data, k_small, 0, 10000);
    std::string joined;
    for (size_t i = 0; i < chunks.size(); ++i) {
        joined += chunks[i];
        EXPECT_LE(chunks[i].size(), k_small.max_size);
        if (i + 1 < chunks.size()) {
            EXPECT_GE(chunks[i].size(), k_small.min_size);
        }
    }
    EXPECT_EQ(joined, data);
    // The average lands near the target.
    double avg = static_cast<double>(data.size()) / chunks.size();
    EXPECT_GT(avg, k_small.avg_size * 0.6);
    EXPECT_LT(avg, k_small.avg_size * 1.6);
}

TEST(FastCdc, BoundariesDoNotDependOnHowTheStreamArrives) {
    auto data = random_bytes(300000, 2);
    EXPECT_EQ(chunks_of(data, k_small, 0, 1), chunks_of(data, k_small, 0, 65536));
    EXPECT_EQ(chunks_of(data, k_small, 0, 777), chunks_of(data, k_small, 0, data.size()));
}

TEST(FastCdc, AnInsertionChangesOnlyNearbyChunks) {
    auto data = random_bytes(1 << 20, 3);
    auto edited = data;
    edited.insert(500000, "a small edit");
    auto a = chunks_of(data, k_small, 0, 4096);
    auto b = chunks_of(edited, k_small, 0, 4096);
    std::set<std::string> before(a.begin(), a.end());
    size_t new_bytes = 0;
    for (const auto& c : b)
        if (!before.contains(c)) new_bytes += c.size();
    EXPECT_LT(new_bytes, 3 * k_small.max_size);
}

TEST(FastCdc, SmallStreamsStayOneChunk) {
    auto data = random_bytes(50000, 4);
    EXPECT_EQ(chunks_of(data, k_small, 65536, 1000).size(), 1u);
    EXPECT_GT(chunks_of(data, k_small, 40000, 1000).size(), 1u);
    EXPECT_TRUE(chunks_of("", k_small, 65536, 1).empty());
}

TEST(FastCdc, RejectsInconsistentSizes) {
    EXPECT_FALSE(check(Params{4096, 4096, 8192}));
    EXPECT_FALSE(check(Params{16, 4096, 8192}));
    EXPECT_FALSE(check(Params{1024, 4096, 1u << 30}));
    EXPECT_TRUE(check(Params{}));
}
