// The BlobStore contract, run against the local store always and against S3
// when LARDER_TEST_S3_URL (and AWS_* credentials) are set: s3_test.sh runs
// these tests against the radosgw it starts, including a multipart put.
#include "blob/blob_store.hpp"

#include <gtest/gtest.h>

#include "support/random_bytes.hpp"
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>

#include <fmt/core.h>

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
        if (GetParam() == "cached") {  // memory behind a read cache
            m_dir = std::filesystem::temp_directory_path() / ("larder-read-cache-" + std::to_string(getpid()));
            auto remote = open_blob_store("memory://");
            ASSERT_TRUE(remote);
            auto s = with_read_cache(std::move(*remote), m_dir.string(), 64 << 20);
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
    std::vector<BlobRange> ranges{{"rng-b", 10, 1000}, {"rng-a", 0, 0}, {"rng-a", 3, a.size() - 3, a.size()},
                                  {"rng-b", 0, b.size(), b.size()}};
    for (int i = 0; i < 20; ++i) ranges.push_back({"rng-b", static_cast<uint64_t>(i) * 5000, 5000});
    // Bytes the caller holds (a chunk kept in the database) need no blob.
    ranges.insert(ranges.begin() + 2, BlobRange{"rng-held", 2, 5, 9, "abcdefghi"});
    ranges.push_back(BlobRange{"rng-held", 0, 9, 9, "abcdefghi"});
    std::string expected = b.substr(10, 1000) + "cdefg" + a.substr(3) + b;
    for (int i = 0; i < 20; ++i) expected += b.substr(static_cast<size_t>(i) * 5000, 5000);
    expected += "abcdefghi";
    auto all = m_store->open_ranges(ranges);
    EXPECT_TRUE(read_all(*all) == expected);
    // A missing blob fails the read that reaches it, never a short success;
    // so do held bytes shorter than their range.
    auto broken = m_store->open_ranges({{"rng-b", 0, 100}, {"rng-gone", 0, 100}});
    StringSink sink;
    EXPECT_FALSE(copy(*broken, sink));
    auto short_held = m_store->open_ranges({{"rng-b", 0, 100}, {"rng-held", 0, 10, 10, "abc"}});
    EXPECT_FALSE(copy(*short_held, sink));
    // A reader that stops early leaves nothing behind to wait for.
    auto abandoned = m_store->open_ranges(ranges);
    char buf[10];
    EXPECT_TRUE(abandoned->read(buf, sizeof buf));
    abandoned.reset();
    ASSERT_TRUE(m_store->remove("rng-a"));
    ASSERT_TRUE(m_store->remove("rng-b"));
}

// Reads see the store as it is now, whatever was opened before (the local
// store keeps files open): a removed blob is gone, a replaced one new.
TEST_P(BlobStoreTest, OpenSeesRemovalsAndReplacements) {
    auto first = random_bytes(70000, 5), second = random_bytes(50000, 6);
    ASSERT_TRUE(m_store->put("opn-a", first));
    auto held = m_store->open("opn-a", 0, first.size());
    ASSERT_TRUE(held);
    ASSERT_TRUE(m_store->open("opn-a", 0, first.size()));
    ASSERT_TRUE(m_store->remove("opn-a"));
    auto gone = m_store->open("opn-a", 0, first.size());
    if (gone) {  // S3 opens lazily: the read fails
        StringSink sink;
        EXPECT_FALSE(copy(**gone, sink));
    } else {
        EXPECT_EQ(gone.error().code, ErrorCode::not_found);
    }
    if (GetParam() == "local") {
        EXPECT_EQ(read_all(**held), first);  // an open file outlives its name
    }
    held->reset();
    ASSERT_TRUE(m_store->put("opn-a", first));
    ASSERT_TRUE(m_store->open("opn-a", 0, first.size()));
    ASSERT_TRUE(m_store->put("opn-a", second));
    auto replaced = m_store->open("opn-a", 0, second.size());
    ASSERT_TRUE(replaced);
    EXPECT_EQ(read_all(**replaced), second);
    ASSERT_TRUE(m_store->remove("opn-a"));
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

INSTANTIATE_TEST_SUITE_P(Backends, BlobStoreTest, ::testing::Values("memory", "local", "cached", "s3"),
                         [](const auto& info) { return info.param; });

// Security review L8: curl rewrites "." and ".." after signing, so such
// prefixes are refused before any request.
TEST(S3Url, PrefixWithDotSegmentsIsRefused) {
    for (auto url : {"s3://bucket/a/../b?endpoint=http://127.0.0.1:9", "s3://bucket/./b?endpoint=http://127.0.0.1:9",
                     "s3://bucket/a//b?endpoint=http://127.0.0.1:9"}) {
        StoreOptions options;
        options.credentials = Credentials{"id", "secret", ""};
        auto s = open_blob_store(url, options);
        ASSERT_FALSE(s) << url;
        EXPECT_EQ(s.error().code, ErrorCode::invalid_input) << s.error().message;
    }
}

namespace {

// A read cache over a memory store the test can still reach.
class ReadCacheTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::filesystem::temp_directory_path() / ("larder-read-cache-test-" + std::to_string(getpid()));
        std::filesystem::remove_all(m_dir);
        reopen(4000);
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    // A new cache on the same directory, over a new remote holding `blobs`.
    void reopen(uint64_t max) {
        m_store.reset();
        m_remote = std::move(*open_blob_store("memory://"));
        for (const auto& [key, data] : m_blobs) ASSERT_TRUE(m_remote->put(key, data));
        m_remote_view = m_remote.get();
        auto s = with_read_cache(std::move(m_remote), m_dir.string(), max);
        ASSERT_TRUE(s) << s.error().message;
        m_store = std::move(*s);
    }
    void put(const std::string& key, size_t size, int seed) {
        m_blobs[key] = random_bytes(size, seed);
        ASSERT_TRUE(m_store->put(key, m_blobs[key]));
    }
    // Bytes [offset, offset + length) of `key`, read as a NAR's range.
    std::string read(const std::string& key, uint64_t offset = 0, std::optional<uint64_t> length = std::nullopt) {
        const auto& data = m_blobs.at(key);
        auto source = m_store->open_ranges({BlobRange{key, offset, length.value_or(data.size() - offset), data.size()}});
        StringSink sink;
        auto r = copy(*source, sink);
        return r ? sink.data() : "error: " + r.error().message;
    }
    size_t files() const {
        size_t n = 0;
        for (const auto& e : std::filesystem::recursive_directory_iterator(m_dir)) n += e.is_regular_file();
        return n;
    }

    std::filesystem::path m_dir;
    std::map<std::string, std::string> m_blobs;
    std::unique_ptr<BlobStore> m_remote;
    BlobStore* m_remote_view = nullptr;  // owned by m_store
    std::unique_ptr<BlobStore> m_store;
};

}  // namespace

// What was read once is served again with the remote store gone, from
// local files (sendfile), and partial ranges are cut from the whole copy.
TEST_F(ReadCacheTest, ServesWhatWasReadFromLocalFiles) {
    put("blob-a", 900, 1);
    EXPECT_EQ(read("blob-a", 100, 300), m_blobs["blob-a"].substr(100, 300));  // fetched whole, kept
    ASSERT_TRUE(m_remote_view->remove("blob-a"));
    EXPECT_EQ(read("blob-a"), m_blobs["blob-a"]);
    EXPECT_EQ(read("blob-a", 899, 1), m_blobs["blob-a"].substr(899));
    auto c = m_store->counters();
    EXPECT_EQ(c.cache_misses, 1u);
    EXPECT_EQ(c.cache_hits, 2u);
    EXPECT_EQ(c.cache_bytes, 900u);
    auto source = m_store->open_ranges({BlobRange{"blob-a", 10, 500, 900}});
    auto region = source->take_file_region(1 << 20);
    ASSERT_TRUE(region);
    ASSERT_TRUE(*region);
    EXPECT_GE((*region)->fd, 0);
    EXPECT_EQ((*region)->offset, 10u);
    EXPECT_EQ((*region)->length, 500u);
    // Ranges of unknown blob size, or blobs over a quarter of the cap, are
    // passed through and not kept.
    put("blob-big", 1001, 2);
    EXPECT_EQ(read("blob-big"), m_blobs["blob-big"]);
    EXPECT_EQ(m_store->counters().cache_bytes, 900u);
    EXPECT_EQ(files(), 1u);
}

// The least recently read blob goes first; the cap holds.
TEST_F(ReadCacheTest, DropsTheLeastRecentlyReadBeyondItsCap) {
    for (int i = 0; i < 4; ++i) put(fmt::format("blob-{}", i), 1000, 10 + i);
    for (int i = 0; i < 4; ++i) read(fmt::format("blob-{}", i));
    EXPECT_EQ(m_store->counters().cache_bytes, 4000u);
    read("blob-0");  // now the most recent
    put("blob-4", 1000, 20);
    read("blob-4");
    EXPECT_EQ(m_store->counters().cache_bytes, 4000u);
    EXPECT_EQ(files(), 4u);
    for (auto key : {"blob-0", "blob-1", "blob-2", "blob-3", "blob-4"}) ASSERT_TRUE(m_remote_view->remove(key));
    EXPECT_EQ(read("blob-0"), m_blobs["blob-0"]);
    EXPECT_EQ(read("blob-1").substr(0, 6), "error:");  // dropped
    for (auto key : {"blob-2", "blob-3", "blob-4"}) EXPECT_EQ(read(key), m_blobs[key]);
    // Removing a blob drops its copy.
    ASSERT_TRUE(m_store->remove("blob-2"));
    EXPECT_EQ(m_store->counters().cache_bytes, 3000u);
    EXPECT_EQ(files(), 3u);
}

// A restart keeps what the directory holds; a copy cut short (a power loss)
// is fetched again, and a smaller cap drops the oldest.
TEST_F(ReadCacheTest, RestartKeepsCopiesAndRefetchesShortOnes) {
    put("blob-a", 1000, 1);
    put("blob-b", 1000, 2);
    read("blob-a");
    read("blob-b");
    reopen(4000);
    EXPECT_EQ(m_store->counters().cache_bytes, 2000u);
    EXPECT_EQ(read("blob-b"), m_blobs["blob-b"]);
    EXPECT_EQ(m_store->counters().cache_hits, 1u);
    std::filesystem::resize_file(m_dir / "bl" / "blob-a", 10);
    reopen(4000);
    EXPECT_EQ(read("blob-a"), m_blobs["blob-a"]);
    EXPECT_EQ(m_store->counters().cache_misses, 1u);
    EXPECT_EQ(std::filesystem::file_size(m_dir / "bl" / "blob-a"), 1000u);
    reopen(1500);
    EXPECT_EQ(m_store->counters().cache_bytes, 1000u);
    EXPECT_EQ(files(), 1u);
}

// A put() that died leaves its temporary file; listing removes it once it
// is a day old, and never touches one that may still be written. (Not in
// the Backends suite: only a local store writes temporary files, and
// s3_test.sh requires that suite to skip nothing on S3.)
TEST(LocalStore, ListingRemovesTemporaryFilesOfDeadWrites) {
    auto dir = std::filesystem::temp_directory_path() / ("larder-tmp-blobs-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    auto store = open_blob_store("file://" + dir.string());
    ASSERT_TRUE(store) << store.error().message;
    ASSERT_TRUE((*store)->put("aaa111", "kept"));
    auto dead = dir / "aa" / "aaa222.tmp-00000000deadbeef";
    auto live = dir / "aa" / "aaa333.tmp-00000000feedf00d";
    for (const auto& p : {dead, live}) std::ofstream(p) << "half written";
    std::filesystem::last_write_time(dead, std::filesystem::file_time_type::clock::now() - std::chrono::hours(48));
    auto listed = (*store)->list();
    ASSERT_TRUE(listed) << listed.error().message;
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ((*listed)[0].key, "aaa111");
    EXPECT_FALSE(std::filesystem::exists(dead));
    EXPECT_TRUE(std::filesystem::exists(live));
    std::filesystem::remove_all(dir);
}
