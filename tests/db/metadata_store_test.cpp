// The metadata store contract, run against every backend: SQLite always,
// PostgreSQL when LARDER_TEST_PG_URL names an empty database (the e2e script
// metadata_postgres_test.sh starts one and runs these tests against it).
#include "db/metadata_store.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/core.h>

#include "db/postgres.hpp"

using namespace larder;
using namespace larder::db;

namespace {

class MetadataStoreTest : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        if (GetParam() == "sqlite") {
            m_dir = std::filesystem::temp_directory_path() /
                    ("larder-meta-" + std::to_string(getpid()) + "-" + std::to_string(++s_counter));
            std::filesystem::create_directories(m_dir);
            auto s = open_metadata_store("sqlite://" + (m_dir / "db.sqlite").string());
            ASSERT_TRUE(s) << s.error().message;
            m_store = std::move(*s);
            return;
        }
        const char* url = std::getenv("LARDER_TEST_PG_URL");
        if (!url || !*url) GTEST_SKIP() << "LARDER_TEST_PG_URL is not set (metadata_postgres_test.sh sets it)";
        auto conn = db::pg::open(url);
        ASSERT_TRUE(conn) << conn.error().message;
        ASSERT_TRUE((*conn)->exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"));
        auto s = open_metadata_store(url);
        ASSERT_TRUE(s) << s.error().message;
        m_store = std::move(*s);
    }
    void TearDown() override {
        m_store.reset();
        if (!m_dir.empty()) std::filesystem::remove_all(m_dir);
    }

    CacheRow make_cache(const std::string& name) {
        CacheRow c;
        c.name = name;
        c.upstream_keys = {"cache.nixos.org-1", "other-1"};
        auto r = m_store->create_cache(c, KeyRow{0, 0, name + "-1:secret", name + "-1:public", true});
        EXPECT_TRUE(r) << r.error().message;
        return *r;
    }

    NarRow make_nar(const std::string& tag, const std::vector<std::string>& chunk_hashes) {
        NarRow n{0, "sha256:nar" + tag, 100, "sha256:file" + tag, 40, {}};
        for (const auto& h : chunk_hashes) {
            auto c = m_store->insert_chunk(ChunkRow{0, h, 50, 20, "zstd", h, true, h, false, false, false});
            EXPECT_TRUE(c);
            n.chunks.push_back(*c);
        }
        auto r = m_store->insert_nar(n);
        EXPECT_TRUE(r) << r.error().message;
        return *r;
    }

    ObjectRow make_object(const CacheRow& c, const NarRow& n, const std::string& hash) {
        ObjectRow o;
        o.cache_id = c.id;
        o.hash_part = hash;
        o.store_path = hash + "-name";
        o.nar_id = n.id;
        o.references = {"aaa-dep", hash + "-name"};
        o.deriver = "bbb-x.drv";
        o.sigs = {"k-1:sig1", "k-2:sig2"};
        EXPECT_TRUE(m_store->put_object(o, {}));
        return o;
    }

    static inline int s_counter = 0;
    std::filesystem::path m_dir;
    std::unique_ptr<MetadataStore> m_store;
};

}  // namespace

TEST_P(MetadataStoreTest, CachesAndKeys) {
    auto a = make_cache("alpha");
    EXPECT_GT(a.id, 0);
    auto dup = m_store->create_cache(a, KeyRow{0, 0, "s", "p", true});
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code, ErrorCode::conflict);
    EXPECT_EQ(m_store->get_cache("nope").error().code, ErrorCode::not_found);
    auto got = m_store->get_cache("alpha");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->upstream_keys, (std::vector<std::string>{"cache.nixos.org-1", "other-1"}));
    got->is_public = true;
    got->priority = 10;
    ASSERT_TRUE(m_store->update_cache(*got));
    EXPECT_TRUE(m_store->get_cache("alpha")->is_public);
    EXPECT_EQ(m_store->get_cache("alpha")->priority, 10);
    make_cache("beta");
    EXPECT_EQ(m_store->list_caches()->size(), 2u);

    ASSERT_TRUE(m_store->add_cache_key(KeyRow{0, a.id, "alpha-2:secret", "alpha-2:public", true}));
    auto keys = m_store->cache_keys(a.id);
    ASSERT_TRUE(keys);
    ASSERT_EQ(keys->size(), 2u);
    EXPECT_EQ((*keys)[0].public_key, "alpha-2:public");
    EXPECT_TRUE((*keys)[0].current);
    EXPECT_FALSE((*keys)[1].current);

    ASSERT_TRUE(m_store->delete_cache(a.id));
    EXPECT_EQ(m_store->get_cache("alpha").error().code, ErrorCode::not_found);
    EXPECT_TRUE(m_store->cache_keys(a.id)->empty());
}

TEST_P(MetadataStoreTest, ChunksAndNarsAreSharedAndIdempotent) {
    auto c1 = m_store->insert_chunk(ChunkRow{0, "c1hash", 50, 20, "zstd", "c1content", true, "c1hash", false, false, false});
    auto again = m_store->insert_chunk(ChunkRow{0, "c1hash", 50, 20, "zstd", "c1content", true, "c1hash", false, false, false});
    ASSERT_TRUE(c1 && again);
    EXPECT_EQ(c1->id, again->id);
    EXPECT_EQ(*m_store->count_chunks(), 1);
    EXPECT_FALSE(*m_store->find_chunk_by_key("other", std::nullopt));
    EXPECT_EQ((*m_store->find_chunk_by_key("c1hash", std::nullopt))->stored_size, 20u);

    auto n = make_nar("1", {"c1hash", "c2hash", "c1hash"});
    auto same = make_nar("1", {"c1hash"});
    EXPECT_EQ(n.id, same.id);
    auto loaded = m_store->find_nar(n.id);
    ASSERT_TRUE(loaded && *loaded);
    ASSERT_EQ((*loaded)->chunks.size(), 3u);
    EXPECT_EQ((*loaded)->chunks[2].hash, "c1hash");
    EXPECT_FALSE(*m_store->find_nar(n.id + 1000));

    // A NAR is visible to a cache only through an object of that cache.
    auto a = make_cache("alpha"), b = make_cache("beta");
    EXPECT_FALSE(*m_store->find_cache_nar(a.id, "sha256:file1"));
    make_object(a, n, "hash1");
    EXPECT_TRUE(*m_store->find_cache_nar(a.id, "sha256:file1"));
    EXPECT_FALSE(*m_store->find_cache_nar(b.id, "sha256:file1"));
    // Deduplication scoped to a cache finds only chunks its paths use.
    EXPECT_TRUE(*m_store->find_server_chunk("c1content", std::nullopt));
    EXPECT_TRUE(*m_store->find_server_chunk("c1content", a.id));
    EXPECT_FALSE(*m_store->find_server_chunk("c1content", b.id));
    EXPECT_TRUE(*m_store->find_chunk_by_key("c1hash", a.id));
    EXPECT_FALSE(*m_store->find_chunk_by_key("c1hash", b.id));

    ASSERT_TRUE(m_store->record_upload(a.id, "nar/x.nar.zst", n.id));
    EXPECT_EQ(**m_store->find_upload(a.id, "nar/x.nar.zst"), n.id);
    EXPECT_FALSE(*m_store->find_upload(b.id, "nar/x.nar.zst"));
}

TEST_P(MetadataStoreTest, Objects) {
    auto a = make_cache("alpha");
    auto n = make_nar("1", {"c1hash"});
    auto o = make_object(a, n, "hash1");
    auto found = m_store->find_object(a.id, "hash1");
    ASSERT_TRUE(found && *found);
    EXPECT_EQ((*found)->references, o.references);
    EXPECT_EQ((*found)->sigs, o.sigs);
    EXPECT_EQ((*found)->nar.nar_hash, "sha256:nar1");
    EXPECT_EQ((*found)->nar.file_size, 40u);

    auto missing = m_store->missing_objects(a.id, {"hash1", "hash2", "hash3"});
    EXPECT_EQ(*missing, (std::vector<std::string>{"hash2", "hash3"}));

    o.sigs = {"k-3:sig3"};
    ASSERT_TRUE(m_store->put_object(o, {}));  // replaces
    EXPECT_EQ((*m_store->find_object(a.id, "hash1"))->sigs, std::vector<std::string>{"k-3:sig3"});
    ASSERT_TRUE(m_store->set_object_sigs((*found)->id, {"k-4:sig4", "k-5:sig5"}));
    EXPECT_EQ((*m_store->find_object(a.id, "hash1"))->sigs.size(), 2u);

    make_object(a, n, "hash0");
    auto all = m_store->list_objects(a.id);
    ASSERT_EQ(all->size(), 2u);
    EXPECT_EQ((*all)[0].hash_part, "hash0");

    EXPECT_TRUE(*m_store->delete_object(a.id, "hash1"));
    EXPECT_FALSE(*m_store->delete_object(a.id, "hash1"));
    EXPECT_FALSE(*m_store->find_object(a.id, "hash1"));
}

TEST_P(MetadataStoreTest, FilesKeepBinaryData) {
    auto a = make_cache("alpha");
    std::string data("\x00\x01\xff\x28\xb5\x2f\xfd binary", 14);
    ASSERT_TRUE(m_store->put_file(a.id, "log", "x.drv", data, "zstd"));
    auto f = m_store->get_file(a.id, "log", "x.drv");
    ASSERT_TRUE(f && *f);
    EXPECT_EQ((*f)->data, data);
    EXPECT_EQ((*f)->content_encoding, "zstd");
    ASSERT_TRUE(m_store->put_file(a.id, "log", "x.drv", "replaced", ""));
    EXPECT_EQ((*m_store->get_file(a.id, "log", "x.drv"))->data, "replaced");
    EXPECT_FALSE(*m_store->get_file(a.id, "ls", "x.drv"));
}

TEST_P(MetadataStoreTest, Tokens) {
    auto t = m_store->create_token(TokenRow{0, "ci", "hash1", R"({"caches":"*"})", 2000000000, {}, 0, {}});
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_GT(t->id, 0);
    auto u = m_store->create_token(TokenRow{0, "dev", "hash2", "{}", std::nullopt, {}, 0, {}});
    ASSERT_TRUE(u);
    EXPECT_EQ(m_store->create_token(TokenRow{0, "dup", "hash1", "{}", {}, {}, 0, {}}).error().code, ErrorCode::conflict);
    auto found = m_store->find_token("hash1");
    ASSERT_TRUE(found && *found);
    EXPECT_EQ(*(*found)->expires_at, 2000000000);
    EXPECT_FALSE((*found)->revoked_at);
    EXPECT_FALSE((*m_store->find_token("hash2"))->expires_at);
    ASSERT_TRUE(m_store->revoke_token(t->id, 1234));
    EXPECT_EQ(*(*m_store->find_token("hash1"))->revoked_at, 1234);
    EXPECT_EQ(m_store->list_tokens()->size(), 2u);
    EXPECT_FALSE(*m_store->find_token("absent"));
}

INSTANTIATE_TEST_SUITE_P(Backends, MetadataStoreTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

TEST(RedactUrl, HidesPasswords) {
    EXPECT_EQ(redact_url("postgresql://larder:s3cret@db:5432/larder"), "postgresql://larder:***@db:5432/larder");
    EXPECT_EQ(redact_url("postgresql://db/larder?user=x&password=s3cret&sslmode=require"),
              "postgresql://db/larder?user=x&password=***&sslmode=require");
    EXPECT_EQ(redact_url("postgresql://larder@db/larder"), "postgresql://larder@db/larder");
    EXPECT_EQ(redact_url("sqlite:///var/lib/larder.db"), "sqlite:///var/lib/larder.db");
}

// Timeouts an operator sets on PostgreSQL (lock_timeout, statement_timeout)
// fail the call as unavailable (503, try again), not as an internal error
// (500), and the message says which.
TEST_P(MetadataStoreTest, AnOperatorsTimeoutIsUnavailable) {
    if (GetParam() != "postgres") GTEST_SKIP() << "PostgreSQL only (SQLite's busy timeout is covered by its wrapper)";
    make_cache("main");
    std::string url = std::getenv("LARDER_TEST_PG_URL");
    auto impatient = open_metadata_store(url + (url.find('?') == std::string::npos ? "?" : "&") +
                                         "options=-c%20lock_timeout%3D100");
    ASSERT_TRUE(impatient) << impatient.error().message;
    auto holder = db::pg::open(url);
    ASSERT_TRUE(holder) << holder.error().message;
    ASSERT_TRUE((*holder)->exec("BEGIN; LOCK TABLE caches IN ACCESS EXCLUSIVE MODE"));
    auto r = (*impatient)->get_cache("main");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::unavailable) << r.error().message;
    EXPECT_NE(r.error().message.find("lock timeout"), std::string::npos) << r.error().message;
    ASSERT_TRUE((*holder)->exec("ROLLBACK"));
    EXPECT_TRUE((*impatient)->get_cache("main")) << "the same store works once the lock is gone";

    ASSERT_TRUE((*holder)->exec("SET statement_timeout = 50"));
    auto slow = (*holder)->exec("SELECT pg_sleep(5)");
    ASSERT_FALSE(slow);
    EXPECT_EQ(slow.error().code, ErrorCode::unavailable) << slow.error().message;
    EXPECT_NE(slow.error().message.find("statement timeout"), std::string::npos) << slow.error().message;
}

// A PostgreSQL that accepts connections and never answers (a hung server,
// a proxy to nowhere) fails the connection after k_connect_timeout seconds
// instead of holding the caller for good.
TEST(Postgres, AServerThatNeverAnswersFailsTheConnection) {
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
    ASSERT_EQ(::listen(listener, 4), 0);
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    std::atomic<int> accepted = -1;
    std::thread acceptor([&] { accepted = ::accept(listener, nullptr, nullptr); });

    std::mutex mutex;
    std::condition_variable done;
    std::optional<Result<std::unique_ptr<pg::Connection>>> result;
    auto started = std::chrono::steady_clock::now();
    std::thread client([&] {
        auto r = pg::open(fmt::format("postgresql://larder@127.0.0.1:{}/larder?sslmode=disable", ntohs(addr.sin_port)));
        std::lock_guard lock(mutex);
        result = std::move(r);
        done.notify_all();
    });
    bool answered;
    {
        std::unique_lock lock(mutex);
        answered = done.wait_for(lock, std::chrono::seconds(pg::k_connect_timeout + 10), [&] { return result.has_value(); });
    }
    auto waited = std::chrono::steady_clock::now() - started;
    // Unblocks whatever still waits (the client, without a timeout; the acceptor, without a client).
    if (accepted >= 0) ::shutdown(accepted, SHUT_RDWR);
    ::shutdown(listener, SHUT_RDWR);
    client.join();
    acceptor.join();
    if (accepted >= 0) ::close(accepted);
    ::close(listener);
    ASSERT_TRUE(answered) << "still waiting for the server after " << pg::k_connect_timeout + 10 << " s";
    ASSERT_FALSE(*result);
    EXPECT_EQ(result->error().code, ErrorCode::unavailable);
    EXPECT_NE(result->error().message.find("timeout"), std::string::npos) << result->error().message;
    EXPECT_GE(waited, std::chrono::seconds(pg::k_connect_timeout - 1));
}

// Garbage collection's primitives: a NAR no object uses is marked, then
// deleted after the cutoff; its chunks likewise; a chunk revived (or reused
// by an insert) in between stays; leases and pins.
// Deferred ingest: queued NARs are claimed once until the claim lapses; a
// replacement swaps the chunks in place, or moves the users to an existing
// representation; a NAR replaced or gone meanwhile is left alone.
TEST_P(MetadataStoreTest, DeferredIngestPrimitives) {
    auto c = make_cache("main");
    auto whole = make_nar("w", {"whole1"});
    make_object(c, whole, "h1");
    ASSERT_TRUE(m_store->record_upload(c.id, "nar/w.nar.zst", whole.id));
    ASSERT_TRUE(m_store->defer_nar(MetadataStore::DeferredNar{whole.id, c.id}));
    ASSERT_TRUE(m_store->defer_nar(MetadataStore::DeferredNar{whole.id, c.id})) << "queued twice is once";
    EXPECT_EQ(m_store->storage_counts()->deferred_nars, 1);
    auto claimed = m_store->claim_deferred(100, 700, 10);
    ASSERT_TRUE(claimed) << claimed.error().message;
    ASSERT_EQ(claimed->size(), 1u);
    EXPECT_EQ((*claimed)[0].nar_id, whole.id);
    EXPECT_EQ((*claimed)[0].cache_id, c.id);
    EXPECT_TRUE(m_store->claim_deferred(200, 800, 10)->empty()) << "claimed until 700";
    EXPECT_EQ(m_store->claim_deferred(701, 1300, 10)->size(), 1u) << "a lapsed claim is free again";

    // In place: same id, new chunks and file hash.
    NarRow chunked{0, whole.nar_hash, whole.nar_size, "sha256:chunked", 30, {}};
    for (auto h : {"part1", "part2"})
        chunked.chunks.push_back(*m_store->insert_chunk(ChunkRow{0, h, 50, 15, "zstd", h, true, h, false, false, false}));
    EXPECT_FALSE(*m_store->replace_nar(whole.id, "sha256:wrong", chunked)) << "not the representation queued";
    ASSERT_TRUE(m_store->defer_nar(MetadataStore::DeferredNar{whole.id, c.id}));
    auto changed = m_store->replace_nar(whole.id, whole.file_hash, chunked);
    ASSERT_TRUE(changed) << changed.error().message;
    ASSERT_TRUE(*changed);
    EXPECT_EQ(**changed, std::vector<std::string>{fmt::format("{}/h1", c.id)});
    auto now = m_store->find_nar(whole.id);
    ASSERT_TRUE(now && *now);
    EXPECT_EQ((*now)->file_hash, "sha256:chunked");
    ASSERT_EQ((*now)->chunks.size(), 2u);
    EXPECT_EQ((*now)->chunks[1].hash, "part2");
    EXPECT_EQ(m_store->storage_counts()->deferred_nars, 0);
    EXPECT_EQ(m_store->storage_counts()->unused_chunks, 1) << "the whole file";
    EXPECT_FALSE(*m_store->replace_nar(whole.id, whole.file_hash, chunked)) << "replaced already";

    // Onto an existing representation: the object and the upload move.
    NarRow other{0, "sha256:narq", 100, "sha256:fileq", 40, {}};
    other.chunks.push_back(*m_store->insert_chunk(ChunkRow{0, "q1", 50, 20, "zstd", "q1", false, "q1", false, false, false}));
    auto q = *m_store->insert_nar(other);
    make_object(c, q, "h2");
    ASSERT_TRUE(m_store->record_upload(c.id, "nar/q.nar.zst", q.id));
    NarRow existing{0, "sha256:narq", 100, "sha256:fileq2", 30, {chunked.chunks[0]}};
    auto e = *m_store->insert_nar(existing);
    changed = m_store->replace_nar(q.id, "sha256:fileq", NarRow{0, "sha256:narq", 100, "sha256:fileq2", 30,
                                                               {chunked.chunks[0]}});
    ASSERT_TRUE(changed && *changed);
    EXPECT_EQ(m_store->find_object(c.id, "h2")->value().nar_id, e.id);
    EXPECT_EQ(*m_store->find_upload(c.id, "nar/q.nar.zst"), e.id);
    EXPECT_FALSE(m_store->replace_nar(q.id, "sha256:fileq", NarRow{0, "sha256:other", 100, "sha256:x", 1, {}}))
        << "a NarHash that differs is an error";
}

// Pull-through: a cache's upstreams round-trip; narinfos upstreams answered
// are found by hash part and by NarHash, replaced, expired, and go with
// their cache.
TEST_P(MetadataStoreTest, UpstreamPaths) {
    auto c = make_cache("proxy");
    c.upstreams = R"([{"url":"http://up","keys":["k:x"]}])";
    ASSERT_TRUE(m_store->update_cache(c));
    EXPECT_EQ(m_store->get_cache("proxy")->upstreams, c.upstreams);
    UpstreamPathRow row{c.id, "0123456789abcdfghijklmnpqrsvwxyz", "0123456789abcdfghijklmnpqrsvwxyz-x",
                        "sha256:aaaa", "StorePath: ...", "http://up/nar/a.nar.xz", 100};
    ASSERT_TRUE(m_store->put_upstream_path(row));
    row.narinfo = "StorePath: ... (again)";
    row.seen_at = 200;
    ASSERT_TRUE(m_store->put_upstream_path(row)) << "the same path again replaces it";
    auto by_hash = m_store->find_upstream_path(c.id, row.hash_part);
    ASSERT_TRUE(by_hash && *by_hash);
    EXPECT_EQ((*by_hash)->narinfo, row.narinfo);
    EXPECT_EQ((*by_hash)->seen_at, 200);
    auto by_nar = m_store->find_upstream_nar(c.id, "sha256:aaaa");
    ASSERT_TRUE(by_nar && *by_nar);
    EXPECT_EQ((*by_nar)->nar_url, row.nar_url);
    EXPECT_FALSE(*m_store->find_upstream_nar(c.id + 1, "sha256:aaaa")) << "another cache's";
    EXPECT_EQ(*m_store->expire_upstream_paths(150), 0);
    EXPECT_EQ(*m_store->expire_upstream_paths(201), 1);
    EXPECT_FALSE(*m_store->find_upstream_path(c.id, row.hash_part));
    ASSERT_TRUE(m_store->put_upstream_path(row));
    ASSERT_TRUE(m_store->delete_cache(c.id));
    EXPECT_EQ(*m_store->expire_upstream_paths(1000), 0) << "deleted with its cache";
}

TEST_P(MetadataStoreTest, CacheSizes) {
    auto a = make_cache("a");
    make_cache("b");
    auto n1 = make_nar("s1", {"sz1"}), n2 = make_nar("s2", {"sz2"});
    make_object(a, n1, "h1");
    make_object(a, n2, "h2");
    auto sizes = m_store->cache_sizes();
    ASSERT_TRUE(sizes) << sizes.error().message;
    ASSERT_EQ(sizes->size(), 1u) << "only caches with paths";
    EXPECT_EQ((*sizes)[0].cache_id, a.id);
    EXPECT_EQ((*sizes)[0].paths, 2);
    EXPECT_EQ((*sizes)[0].bytes, 80) << "two NARs of 40 bytes as served";
}

TEST_P(MetadataStoreTest, GarbageCollectionPrimitives) {
    auto c = make_cache("gc");
    auto c2 = make_cache("gc2");
    c.retention = 3600;
    c.max_size = 1 << 30;
    ASSERT_TRUE(m_store->update_cache(c));
    EXPECT_EQ(m_store->get_cache("gc")->retention, 3600);
    EXPECT_EQ(m_store->get_cache("gc")->max_size, 1 << 30);
    EXPECT_FALSE(m_store->get_cache("gc2")->retention);
    auto kept = make_nar("kept", {"k1", "shared"});
    auto gone = make_nar("gone", {"g1", "g2", "shared"});
    make_object(c, kept, "keep");
    make_object(c, gone, "drop");
    auto objects = m_store->gc_objects(c.id);
    ASSERT_TRUE(objects);
    ASSERT_EQ(objects->size(), 2u);
    for (const auto& o : *objects) {
        if (o.store_path != "drop-name") continue;
        auto yes = [](const std::vector<int64_t>&) { return true; };
        EXPECT_TRUE(m_store->delete_unused_objects({{o.id, o.last_used - 1}}, yes)->empty()) << "deleted although used since";
        auto refused = m_store->delete_unused_objects({{o.id, o.last_used}}, [](const std::vector<int64_t>&) { return false; });
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error().code, ErrorCode::conflict);
        EXPECT_EQ(*m_store->delete_unused_objects({{o.id, o.last_used}, {o.id + 1000, 0}}, yes), std::vector<int64_t>{o.id})
            << "the refused transaction was not rolled back";
    }
    // Marked at 1000, deleted only by a sweep whose cutoff is past that.
    EXPECT_EQ(*m_store->sweep_nars(1000, 500), 0);
    EXPECT_EQ(*m_store->sweep_nars(2000, 1000), 0);
    EXPECT_EQ(*m_store->sweep_nars(3000, 1001), 1);  // chunks g1, g2 marked at 3000
    EXPECT_TRUE(m_store->sweep_chunks(3000, 10)->empty());
    // g1 is reused by a new NAR's insert (revived); g2 is not.
    auto reused = m_store->insert_chunk(ChunkRow{0, "g1", 50, 20, "zstd", "g1", true, "g1-new", false, false, false});
    ASSERT_TRUE(reused);
    EXPECT_EQ(reused->blob, "g1") << "an existing row keeps its blob";
    auto swept = m_store->sweep_chunks(3001, 1);
    ASSERT_TRUE(swept);
    ASSERT_EQ(swept->size(), 1u);
    EXPECT_EQ((*swept)[0].blob, "g2");
    EXPECT_TRUE(m_store->sweep_chunks(3001, 10)->empty());
    auto counts = m_store->storage_counts();
    ASSERT_TRUE(counts);
    EXPECT_EQ(counts->chunks, 3);
    EXPECT_EQ(counts->unused_chunks, 1);  // g1: revived, but no NAR uses it yet
    EXPECT_EQ(counts->nars, 1);
    auto known = m_store->known_blobs({"g1", "g2", "k1", "x"});
    ASSERT_TRUE(known);
    std::sort(known->begin(), known->end());
    EXPECT_EQ(*known, (std::vector<std::string>{"g1", "k1"}));

    // Leases: one holder at a time until it expires.
    EXPECT_TRUE(*m_store->take_lease("gc", "a", 100, 160));
    EXPECT_FALSE(*m_store->take_lease("gc", "b", 150, 210));
    EXPECT_TRUE(*m_store->take_lease("gc", "a", 150, 210)) << "the holder renews";
    EXPECT_TRUE(*m_store->take_lease("gc", "b", 211, 270)) << "an expired lease is free";
    ASSERT_TRUE(m_store->drop_lease("gc", "b"));
    EXPECT_TRUE(*m_store->take_lease("gc", "a", 212, 270));
    EXPECT_EQ(*m_store->lease_holder("gc", 260), std::optional<std::string>("a"));
    EXPECT_EQ(*m_store->lease_holder("gc", 271), std::nullopt) << "expired";
    EXPECT_EQ(*m_store->lease_holder("other", 260), std::nullopt);

    // Pins: the newest `keep` of a name.
    for (auto p : {"p1", "p2", "p3"}) ASSERT_TRUE(m_store->add_pin(PinRow{0, c.id, "rel", p, 0}, 2));
    ASSERT_TRUE(m_store->add_pin(PinRow{0, c.id, "other", "p9", 0}, 1));
    auto pins = m_store->list_pins(c.id);
    ASSERT_TRUE(pins);
    ASSERT_EQ(pins->size(), 3u);
    EXPECT_EQ((*pins)[0].name, "other");
    EXPECT_EQ((*pins)[1].store_path, "p3");
    EXPECT_EQ((*pins)[2].store_path, "p2");
    EXPECT_EQ(*m_store->delete_pin(c.id, "rel"), 2);
    EXPECT_EQ(*m_store->delete_pin(c.id, "rel"), 0);
    EXPECT_TRUE(m_store->list_pins(c2.id)->empty());
}

// A database a newer larder migrated is refused, not misread.
TEST(Migrations, ANewerSchemaIsRefused) {
    auto dir = std::filesystem::temp_directory_path() / ("larder-newer-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    auto url = "sqlite://" + (dir / "db.sqlite").string();
    ASSERT_TRUE(open_metadata_store(url));
    ASSERT_EQ(std::system(("sqlite3 " + (dir / "db.sqlite").string() + " 'PRAGMA user_version = 99'").c_str()), 0);
    auto again = open_metadata_store(url);
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message.find("schema is version 99, newer than this larder knows"), std::string::npos)
        << again.error().message;
    std::filesystem::remove_all(dir);
}
