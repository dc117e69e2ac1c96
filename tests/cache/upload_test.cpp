// The upload pipeline, the service and the handler together, without
// sockets or Nix: pushes and plain uploads, a fault at every step, and what
// one cache's uploads may do to what another cache serves (review H7).
#include <gtest/gtest.h>

#include <cstdio>

#include <fmt/format.h>

#include "codec/codec.hpp"
#include "support/random_bytes.hpp"
#include "support/service_fixture.hpp"

using namespace larder;
using http::Method;

namespace {

// Compressible: zstd levels 3 and 19 give different frames for it.
std::string text(size_t lines, int seed) {
    std::string out;
    for (size_t i = 0; i < lines; ++i) out += fmt::format("line {} of {} ({})\n", i * 7 % 1000, seed, i % 13);
    return out;
}

// Binary strings compared without printing them.
bool same(const std::string& a, const std::string& b) { return a == b; }

class UploadTest : public test::ServiceFixture {
protected:
    std::string frame(const std::string& data, int level) {
        codec::FrameCompressor c(level);
        std::string out;
        EXPECT_TRUE(c.compress(data, out));
        return out;
    }
    // Nix's way: the NAR under its file hash, then the narinfo.
    // Plain Nix's upload: the NAR (uncompressed, or zstd: then stored whole
    // and cut into chunks later), then its narinfo.
    unsigned nix_copy(const std::string& cache, const std::string& path, const std::string& nar, bool zstd = false) {
        auto file = zstd ? frame(nar, 3) : nar;
        auto name = crypto::Hash{crypto::sha256(file)}.to_nix32() + (zstd ? ".nar.zst" : ".nar");
        auto put = run(Method::put, fmt::format("/{}/nar/{}", cache, name), file);
        if (put.status != 200) return put.status;
        return run(Method::put, fmt::format("/{}/{}.narinfo", cache, hash_part(path)),
                   narinfo(path, nar, "none", "nar/" + name))
            .status;
    }
};

}  // namespace

TEST_F(UploadTest, PushedPathIsServedAndDecodesToItsNar) {
    auto nar = make_nar(test::random_bytes(600000, 3));
    auto path = store_path("pushed");
    auto r = run(Method::put, "/main/push/" + hash_part(path), push_body(narinfo(path, nar, "none"), nar));
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_TRUE(same(decompress(served_nar("main", path)), nar));
    EXPECT_EQ(run(Method::get, "/other/" + hash_part(path) + ".narinfo").status, 404u);
}

// Review H7: whatever frames a pusher sends to its own cache, another cache
// that receives the same NAR from plain Nix serves the server's own bytes.
TEST_F(UploadTest, ClientFramesNeverChangeWhatAnotherCacheServes) {
    auto nar = make_nar(text(4000, 7));
    auto path = store_path("shared");
    auto odd_frame = frame(nar, 19);  // not what the server makes (level 3)
    ASSERT_FALSE(same(odd_frame, frame(nar, 3)));
    auto pushed = run(Method::put, "/other/push/" + hash_part(path), push_body(narinfo(path, nar, "zstd"), odd_frame),
                      true);
    ASSERT_EQ(pushed.status, 200u) << pushed.body;
    ASSERT_EQ(nix_copy("main", path, nar), 200u);
    EXPECT_TRUE(same(served_nar("main", path), frame(nar, 3)));
    EXPECT_TRUE(same(served_nar("other", path), odd_frame));
    // And the other way round: the server's bytes were there first.
    auto path2 = store_path("second");
    auto nar2 = make_nar(text(4000, 8));
    ASSERT_EQ(nix_copy("main", path2, nar2), 200u);
    auto odd2 = frame(nar2, 19);
    ASSERT_EQ(run(Method::put, "/other/push/" + hash_part(path2), push_body(narinfo(path2, nar2, "zstd"), odd2), true)
                  .status,
              200u);
    EXPECT_TRUE(same(served_nar("main", path2), frame(nar2, 3)));
    EXPECT_TRUE(same(served_nar("other", path2), odd2));
}

TEST_F(UploadTest, ByteIdenticalFramesAreStoredOnce) {
    auto nar = make_nar(test::random_bytes(50000, 9));
    auto path = store_path("same");
    auto f = frame(nar, 3);
    for (auto cache : {"main", "other"})
        ASSERT_EQ(run(Method::put, fmt::format("/{}/push/{}", cache, hash_part(path)),
                      push_body(narinfo(path, nar, "zstd"), f), true)
                      .status,
                  200u);
    EXPECT_EQ(*service->chunk_count(), 1);
}

// A failure at any step of an upload (any database call, any blob call)
// answers an error and leaves nothing visible; the next attempt succeeds.
TEST_F(UploadTest, AFaultAtEveryStepLeavesNothingVisible) {
    int seed = 11;
    for (std::string how : {"larder push", "nix copy", "nix copy (zstd, deferred)"}) {
        bool push = how == "larder push";
        for (test::Faults* faults : {static_cast<test::Faults*>(db_faults.get()),
                                     static_cast<test::Faults*>(blob_faults.get())}) {
            // New content each time: nothing found stored already.
            auto nar = make_nar(test::random_bytes(700000, ++seed));  // a few chunks
            auto path = store_path(push ? "push" : "copy");
            int steps = 0;
            for (int n = 1;; ++n) {
                ASSERT_LT(n, 500) << "the upload never got past its faults";
                faults->fail_at(n);
                unsigned status = push ? run(Method::put, "/main/push/" + hash_part(path),
                                             push_body(narinfo(path, nar, "none"), nar))
                                             .status
                                       : nix_copy("main", path, nar, how != "nix copy");
                int calls = faults->calls();
                faults->fail_at(0);
                if (status == 200 && calls < n) break;  // the fault came after the last call
                ++steps;
                EXPECT_GE(status, 400u) << "fault at call " << n;
                EXPECT_EQ(run(Method::get, "/main/" + hash_part(path) + ".narinfo").status, 404u)
                    << "visible after a fault at call " << n << " (" << how << ")";
            }
            // A whole upload makes two calls to the store: create and commit.
            EXPECT_GE(steps, faults == blob_faults.get() && how.find("deferred") != std::string::npos ? 2 : 3);
            std::printf("%s, faults in the %s: %d failing steps, each left nothing visible\n", how.c_str(),
                        faults == blob_faults.get() ? "blob store" : "database", steps);
            EXPECT_TRUE(same(decompress(served_nar("main", path)), nar));
        }
    }
}

// Review M10: references are matched by full base name, and a path already
// in the cache is not replaced by other contents.
TEST_F(UploadTest, ReferencesMatchByFullNameAndFirstWriterWins) {
    auto nar_a = make_nar("a");
    auto a = store_path("a");
    ASSERT_EQ(run(Method::put, "/main/push/" + hash_part(a), push_body(narinfo(a, nar_a, "none"), nar_a)).status, 200u);
    auto nar_b = make_nar("b");
    auto b = store_path("b");
    auto info = narinfo(b, nar_b, "none");
    auto with_reference = [&](const std::string& ref) {
        auto copy = info;
        return copy.replace(copy.find("References: \n"), 13, "References: " + ref + "\n");
    };
    auto wrong_name = with_reference(hash_part(a) + "-other");
    auto refused = run(Method::put, "/main/push/" + hash_part(b), push_body(wrong_name, nar_b));
    EXPECT_EQ(refused.status, 400u);
    EXPECT_NE(refused.body.find("-other is not in cache"), std::string::npos) << refused.body;
    auto right_name = with_reference(a.substr(11));
    EXPECT_EQ(run(Method::put, "/main/push/" + hash_part(b), push_body(right_name, nar_b)).status, 200u);
    // Same contents again: fine. Other contents under the same path: 409.
    EXPECT_EQ(run(Method::put, "/main/push/" + hash_part(a), push_body(narinfo(a, nar_a, "none"), nar_a)).status, 200u);
    auto nar_c = make_nar("c");
    auto replaced = run(Method::put, "/main/push/" + hash_part(a), push_body(narinfo(a, nar_c, "none"), nar_c));
    EXPECT_EQ(replaced.status, 409u);
    EXPECT_TRUE(same(decompress(served_nar("main", a)), nar_a));
}

// Review M4: the NAR size limit counts decompressed bytes, and a pushed
// narinfo over it is refused before its NAR is read.
TEST_F(UploadTest, NarSizeLimitCountsDecompressedBytes) {
    cache::Config small = config();
    small.max_nar_size = 1 << 20;
    cache::CacheService limited(small, *db_faults, *blob_faults);
    auto main = limited.cache("main");
    ASSERT_TRUE(main);
    // 8 MiB of zeros: a few KB of zstd, far over the limit once decompressed.
    auto nar = make_nar(std::string(8 << 20, '\0'));
    StringSink zstd;
    auto c = codec::make_compressor(codec::Method::zstd, zstd);
    ASSERT_TRUE((*c)->write(nar) && (*c)->finish());
    ASSERT_LT(zstd.data().size(), size_t{64} << 10);
    auto name = crypto::Hash{crypto::sha256(zstd.data())}.to_nix32() + ".nar.zst";
    auto upload = limited.receive_upload(*main, name, nullptr);
    ASSERT_TRUE(upload);
    auto written = (*upload)->write(zstd.data());
    if (written) written = (*upload)->finish();
    ASSERT_FALSE(written);
    EXPECT_EQ(written.error().code, ErrorCode::too_large) << written.error().message;

    auto path = store_path("big");
    auto push = limited.receive_push(*main, hash_part(path), false, nullptr);
    ASSERT_TRUE(push);
    auto refused = (*push)->write(length_prefixed(narinfo(path, nar, "zstd")) + length_prefixed(""));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::too_large) << refused.error().message;
}

// Deferred ingest: a plain zstd upload is stored as it came and answered;
// later it is cut into chunks and swapped in. The served bytes change (and
// with them the narinfo's URL), the name Nix uploaded keeps working, and
// garbage collection reclaims the whole file.
// A plain upload small enough to be kept in the database is cut at once:
// no file to write and sync, nothing queued to cut later.
TEST_F(UploadTest, SmallPlainZstdUploadsAreKeptInTheDatabaseAtOnce) {
    auto nar = make_nar(text(20, 3));
    auto path = store_path("small");
    auto sent = frame(nar, 3);
    ASSERT_LT(sent.size(), 4096u);
    std::vector<std::string> calls;
    blob_faults->before = [&](std::string_view call) { calls.emplace_back(call); };
    ASSERT_EQ(nix_copy("main", path, nar, true), 200u);
    blob_faults->before = nullptr;
    EXPECT_TRUE(calls.empty()) << "blob calls: " << fmt::format("{}", fmt::join(calls, ", "));
    auto counts = service->storage_counts();
    ASSERT_TRUE(counts);
    EXPECT_EQ(counts->deferred_nars, 0);
    EXPECT_EQ(counts->inline_chunks, 1);
    EXPECT_TRUE(same(decompress(served_nar("main", path)), nar));
    // Under the name it was uploaded as, too (a client's cached narinfo).
    auto old = run(Method::get, "/main/nar/" + crypto::Hash{crypto::sha256(sent)}.to_nix32() + ".nar.zst");
    ASSERT_EQ(old.status, 200u) << old.body;
    EXPECT_TRUE(same(decompress(old.body), nar));
}

TEST_F(UploadTest, PlainZstdUploadsAreStoredWholeThenCutIntoChunks) {
    auto nar = make_nar(text(40000, 5));  // a few chunks
    auto path = store_path("copied");
    ASSERT_EQ(nix_copy("main", path, nar, true), 200u);
    auto sent = frame(nar, 3);
    auto sent_name = "nar/" + crypto::Hash{crypto::sha256(sent)}.to_nix32() + ".nar.zst";
    auto counts = service->storage_counts();
    ASSERT_TRUE(counts);
    EXPECT_EQ(counts->deferred_nars, 1);
    EXPECT_TRUE(same(served_nar("main", path), sent)) << "served as it was sent until it is cut";

    auto done = service->ingest_deferred(10);
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_EQ(*done, 1u);
    EXPECT_EQ(*service->ingest_deferred(10), 0u);
    counts = service->storage_counts();
    EXPECT_EQ(counts->deferred_nars, 0);
    EXPECT_EQ(counts->unused_chunks, 1) << "the whole file, until garbage collection";
    EXPECT_GE(counts->chunks, 3);
    auto info = run(Method::get, "/main/" + hash_part(path) + ".narinfo").body;
    EXPECT_EQ(info.find(sent_name), std::string::npos) << info;
    auto served = served_nar("main", path);
    EXPECT_TRUE(same(decompress(served), nar));
    EXPECT_NE(info.find("FileHash: " + crypto::Hash{crypto::sha256(served)}.to_string()), std::string::npos) << info;
    EXPECT_NE(info.find(fmt::format("FileSize: {}\n", served.size())), std::string::npos) << info;
    // A client holding the narinfo it uploaded still gets the NAR.
    auto old = run(Method::get, "/main/" + sent_name);
    ASSERT_EQ(old.status, 200u) << old.body;
    EXPECT_TRUE(same(decompress(old.body), nar));

    // The same NAR pushed to another cache first (the server's chunks): the
    // copy's ingest moves its path to that representation.
    auto path2 = store_path("again");
    ASSERT_EQ(run(Method::put, "/other/push/" + hash_part(path2), push_body(narinfo(path2, nar, "none"), nar)).status,
              200u);
    ASSERT_EQ(nix_copy("main", path2, nar, true), 200u);
    EXPECT_EQ(*service->ingest_deferred(10), 1u);
    EXPECT_TRUE(same(decompress(served_nar("main", path2)), nar));
    EXPECT_EQ(served_nar("main", path2), served_nar("other", path2));

    // A deferred NAR whose path is gone before it is cut: nothing breaks.
    auto path3 = store_path("gone");
    auto nar3 = make_nar(text(3000, 9));
    ASSERT_EQ(nix_copy("main", path3, nar3, true), 200u);
    ASSERT_EQ(run(Method::del, "/api/v1/caches/main/paths/" + hash_part(path3), "{}").status, 200u);
    EXPECT_EQ(*service->ingest_deferred(10), 1u);

    // Garbage collection a grace period later: the whole files go.
    auto now = static_cast<int64_t>(std::time(nullptr));
    for (int days : {2, 4, 6})
        ASSERT_EQ(run(Method::post, "/api/v1/gc", nlohmann::json{{"now", now + days * 86400}}.dump()).status, 200u);
    counts = service->storage_counts();
    EXPECT_EQ(counts->unused_chunks, 0);
    EXPECT_EQ(static_cast<int64_t>(blob_faults->list()->size()), counts->chunks);
    EXPECT_TRUE(same(decompress(served_nar("main", path)), nar));
}
