// The BlobStore contract, run against the local store always and against S3
// when LARDER_TEST_S3_URL (and AWS_* credentials) are set: s3_test.sh runs
// these tests against the radosgw it starts, including a multipart put.
#include "blob/blob_store.hpp"

#include <gtest/gtest.h>

#include "support/random_bytes.hpp"
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <random>

using namespace larder;
using larder::test::random_bytes;
using namespace larder::blob;

namespace {

std::string read_all(Source& source) {
    StringSink sink;
    EXPECT_TRUE(copy(source, sink));
    return sink.data();
}

class BlobStoreTest : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        if (GetParam() == "memory") {
            auto s = open_blob_store("memory://");
            ASSERT_TRUE(s) << s.error().message;
            m_store = std::move(*s);
            return;
        }
        if (GetParam() == "local") {
            m_dir = std::filesystem::temp_directory_path() / ("larder-blobs-" + std::to_string(getpid()));
            auto s = open_blob_store("file://" + m_dir.string());
            ASSERT_TRUE(s) << s.error().message;
            m_store = std::move(*s);
            return;
        }
        const char* url = std::getenv("LARDER_TEST_S3_URL");
        if (!url || !*url) GTEST_SKIP() << "LARDER_TEST_S3_URL is not set (s3_test.sh sets it)";
        auto s = open_blob_store(url);
        ASSERT_TRUE(s) << s.error().message;
        m_store = std::move(*s);
    }
    void TearDown() override {
        if (!m_dir.empty()) std::filesystem::remove_all(m_dir);
    }
    std::filesystem::path m_dir;
    std::unique_ptr<BlobStore> m_store;
};

}  // namespace

TEST_P(BlobStoreTest, PutGetRangesListRemove) {
    auto data = random_bytes(300000, 1);
    ASSERT_TRUE(m_store->put("aaa111", data));
    ASSERT_TRUE(m_store->sync());
    EXPECT_TRUE(*m_store->exists("aaa111"));
    EXPECT_FALSE(*m_store->exists("bbb222"));
    StringSink all;
    ASSERT_TRUE(m_store->get("aaa111", all));
    EXPECT_EQ(all.data(), data);
    StringSink part;
    ASSERT_TRUE(m_store->get("aaa111", part, 1000, 5000));
    EXPECT_EQ(part.data(), data.substr(1000, 5000));
    auto source = m_store->open("aaa111", 7, data.size() - 7);
    ASSERT_TRUE(source);
    EXPECT_EQ(read_all(**source), data.substr(7));
    StringSink missing;
    EXPECT_EQ(m_store->get("bbb222", missing).error().code, ErrorCode::not_found);
    auto listed = m_store->list();
    ASSERT_TRUE(listed);
    auto it = std::find_if(listed->begin(), listed->end(), [](const BlobInfo& b) { return b.key == "aaa111"; });
    ASSERT_NE(it, listed->end());
    // Written just now, by the store's clock (S3: the server's).
    EXPECT_LT(std::abs(it->modified - static_cast<int64_t>(std::time(nullptr))), 300);
    ASSERT_TRUE(m_store->remove("aaa111"));
    EXPECT_FALSE(*m_store->exists("aaa111"));
    EXPECT_TRUE(m_store->remove("aaa111"));  // removing what is gone is fine
    EXPECT_FALSE(m_store->put("../etc", "x"));
}

// A stored NAR is its chunks' ranges, read as one stream (S3: fetched ahead
// in parallel, pieces of at most 4 MiB).
TEST_P(BlobStoreTest, RangesReadAsOneStream) {
    auto a = random_bytes(5 << 20, 3), b = random_bytes(200000, 4);
    ASSERT_TRUE(m_store->put("rng-a", a));
    ASSERT_TRUE(m_store->put("rng-b", b));
    std::vector<BlobRange> ranges{{"rng-b", 10, 1000}, {"rng-a", 0, 0}, {"rng-a", 3, a.size() - 3}, {"rng-b", 0, b.size()}};
    for (int i = 0; i < 20; ++i) ranges.push_back({"rng-b", static_cast<uint64_t>(i) * 5000, 5000});
    std::string expected = b.substr(10, 1000) + a.substr(3) + b;
    for (int i = 0; i < 20; ++i) expected += b.substr(static_cast<size_t>(i) * 5000, 5000);
    auto all = m_store->open_ranges(ranges);
    EXPECT_TRUE(read_all(*all) == expected);
    // A missing blob fails the read that reaches it, never a short success.
    auto broken = m_store->open_ranges({{"rng-b", 0, 100}, {"rng-gone", 0, 100}});
    StringSink sink;
    EXPECT_FALSE(copy(*broken, sink));
    // A reader that stops early leaves nothing behind to wait for.
    auto abandoned = m_store->open_ranges(ranges);
    char buf[10];
    EXPECT_TRUE(abandoned->read(buf, sizeof buf));
    abandoned.reset();
    ASSERT_TRUE(m_store->remove("rng-a"));
    ASSERT_TRUE(m_store->remove("rng-b"));
}

TEST_P(BlobStoreTest, LargeBlobsGoUpInParts) {
    auto data = random_bytes((64u << 20) + 12345, 2);  // over the multipart threshold
    ASSERT_TRUE(m_store->put("big000", data));
    StringSink tail;
    ASSERT_TRUE(m_store->get("big000", tail, data.size() - 100000, 100000));
    EXPECT_EQ(tail.data(), data.substr(data.size() - 100000));
    auto source = m_store->open("big000", 0, data.size());
    ASSERT_TRUE(source);
    EXPECT_TRUE(read_all(**source) == data);
    ASSERT_TRUE(m_store->remove("big000"));
}

INSTANTIATE_TEST_SUITE_P(Backends, BlobStoreTest, ::testing::Values("memory", "local", "s3"),
                         [](const auto& info) { return info.param; });

// Security review L8: curl rewrites "." and ".." after signing, so such
// prefixes are refused before any request.
TEST(S3Url, PrefixWithDotSegmentsIsRefused) {
    for (auto url : {"s3://bucket/a/../b?endpoint=http://127.0.0.1:9", "s3://bucket/./b?endpoint=http://127.0.0.1:9",
                     "s3://bucket/a//b?endpoint=http://127.0.0.1:9"}) {
        auto s = open_blob_store(url, StoreOptions{Credentials{"id", "secret", ""}});
        ASSERT_FALSE(s) << url;
        EXPECT_EQ(s.error().code, ErrorCode::invalid_input) << s.error().message;
    }
}
