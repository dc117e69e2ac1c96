// Garbage collection, pins and path deletion through the service and the
// API, on SQLite and an in-memory blob store; "now" moved forward instead
// of waiting.
#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "sqlite/sqlite.hpp"
#include "support/random_bytes.hpp"
#include "support/service_fixture.hpp"

using namespace larder;
using http::Method;
using nlohmann::json;

namespace {

constexpr int64_t k_day = 86400;

class GcTest : public test::ServiceFixture {
protected:
    struct Path {
        std::string path, nar;
        std::string base() const { return path.substr(11); }
    };

    // Pushes a path with these references (paths pushed before).
    Path push(const std::string& name, const std::vector<Path>& refs = {}, size_t size = 3000) {
        Path p{store_path(name), make_nar(test::random_bytes(size, ++m_seed))};
        auto info = narinfo(p.path, p.nar, "none");
        std::string list;
        for (const auto& r : refs) list += (list.empty() ? "" : " ") + r.base();
        info.replace(info.find("References: "), 13, "References: " + list + "\n");
        auto r = run(Method::put, "/main/push/" + hash_part(p.path), push_body(info, p.nar));
        EXPECT_EQ(r.status, 200u) << r.body;
        return p;
    }
    bool present(const Path& p) { return run(Method::get, "/main/" + hash_part(p.path) + ".narinfo").status == 200; }

    json api(Method method, const std::string& target, const json& body = json::object(), unsigned expect = 200) {
        auto r = run(method, target, body.dump());
        EXPECT_EQ(r.status, expect) << target << ": " << r.body;
        return json::parse(r.body, nullptr, false);
    }
    json gc(int64_t days_ahead, bool dry_run = false) {
        return api(Method::post, "/api/v1/gc",
                   json{{"now", static_cast<int64_t>(std::time(nullptr)) + days_ahead * k_day}, {"dry_run", dry_run}});
    }
    int64_t cache_id() { return service->cache("main")->id; }
    void use(const Path& p, int64_t days_ahead) {
        db::MetadataStore::Uses uses;
        uses.paths.emplace_back(cache_id(), hash_part(p.path));
        ASSERT_TRUE(db_faults->record_uses(static_cast<int64_t>(std::time(nullptr)) + days_ahead * k_day, uses));
    }
    size_t blob_count() { return blob_faults->list()->size(); }

    int m_seed = 100;
};

// A small path's NAR is one chunk of a few KB: it is kept in its database
// row, so pushing, serving, checking and collecting it make no request to
// the blob store (on S3, each would be a PUT, GET or DELETE).
TEST_F(GcTest, TinyChunksLiveInTheirRowsWithoutBlobRequests) {
    std::vector<std::string> calls;
    blob_faults->before = [&](std::string_view call) { calls.emplace_back(call); };
    auto tiny = push("tiny", {}, 1000);
    auto listed = [&] { return calls.empty() ? std::string("none") : fmt::format("{}", fmt::join(calls, ", ")); };
    EXPECT_TRUE(calls.empty()) << "blob calls while pushing: " << listed();
    EXPECT_TRUE(decompress(served_nar("main", tiny.path)) == tiny.nar) << "served bytes differ from the pushed NAR";
    auto checked = api(Method::post, "/api/v1/fsck");
    EXPECT_EQ(checked["chunks_checked"], 1);
    EXPECT_EQ(checked["missing"], 0);
    EXPECT_TRUE(calls.empty()) << "blob calls while serving and checking: " << listed();
    ASSERT_EQ(api(Method::del, "/api/v1/caches/main/paths/" + hash_part(tiny.path))["deleted"].size(), 1u);
    gc(0);  // the NAR marked unused
    gc(2);  // deleted; its chunk marked
    EXPECT_EQ(gc(4)["chunks_deleted"], 1);
    EXPECT_EQ(std::count(calls.begin(), calls.end(), "remove"), 0) << listed();
    blob_faults->before = nullptr;
    EXPECT_EQ(blob_count(), 0u);
    // Pushed again after its row is gone: stored and served anew.
    auto again = run(Method::put, "/main/push/" + hash_part(tiny.path),
                     push_body(narinfo(tiny.path, tiny.nar, "none"), tiny.nar));
    ASSERT_EQ(again.status, 200u) << again.body;
    EXPECT_TRUE(present(tiny));
}

// a -> b -> c; d alone. Only a is used later: its closure stays, d goes.
TEST_F(GcTest, RetentionKeepsTheClosuresOfRecentlyUsedPaths) {
    auto c = push("c"), b = push("b", {c}), a = push("a", {b}), d = push("d");
    api(Method::patch, "/api/v1/caches/main", json{{"retention", 10 * k_day}});
    use(a, 15);
    auto dry = gc(20, true);
    ASSERT_EQ(dry["caches"][0]["deleted"].size(), 1u) << dry.dump();
    EXPECT_EQ(dry["caches"][0]["deleted"][0], d.base());
    EXPECT_TRUE(present(d)) << "a dry run deleted";
    auto real = gc(20);
    EXPECT_EQ(real["caches"][0]["deleted"], dry["caches"][0]["deleted"]);
    for (const auto& p : {a, b, c}) EXPECT_TRUE(present(p)) << p.base();
    EXPECT_FALSE(present(d));
    // Later nothing was used: referrers go with what they refer to.
    auto later = gc(40);
    EXPECT_EQ(later["caches"][0]["deleted"].size(), 3u) << later.dump();
    for (const auto& p : {a, b, c}) EXPECT_FALSE(present(p)) << p.base();
}

// Storage goes a grace period after nothing uses it; a re-push heals.
TEST_F(GcTest, StorageIsReclaimedAfterTheGracePeriodAndARepushWorks) {
    auto a = push("a", {}, 900000), b = push("b", {}, 4000);
    auto blobs = blob_count();
    ASSERT_GE(blobs, 3u);
    ASSERT_EQ(api(Method::del, "/api/v1/caches/main/paths/" + hash_part(a.path))["deleted"].size(), 1u);
    auto first = gc(0);
    EXPECT_EQ(first["nars_deleted"], 0) << "within the grace period";
    EXPECT_EQ(blob_count(), blobs);
    gc(2);                    // the NAR: orphaned over a day ago -> deleted; its chunks marked
    auto third = gc(4);       // the chunks
    EXPECT_GE(third["chunks_deleted"].get<int64_t>(), 2) << third.dump();
    EXPECT_EQ(blob_count(), 1u) << "only b's chunk is left";
    EXPECT_TRUE(present(b));
    EXPECT_EQ(run(Method::get, "/main/" + hash_part(b.path) + ".narinfo").status, 200u);
    // A crashed upload's blob (no row) goes too, once old enough.
    ASSERT_TRUE(blob_faults->put("0123abcd-feed", "lost"));
    gc(0);
    EXPECT_EQ(blob_count(), 2u);
    EXPECT_EQ(gc(2)["orphan_blobs_deleted"], 1);
    // The same content pushed again is stored anew and served whole.
    auto info = narinfo(a.path, a.nar, "none");
    ASSERT_EQ(run(Method::put, "/main/push/" + hash_part(a.path), push_body(info, a.nar)).status, 200u);
    auto served = run(Method::get, "/main/" + hash_part(a.path) + ".narinfo");
    ASSERT_EQ(served.status, 200u);
    auto url = served.body.substr(served.body.find("URL: ") + 5);
    url = url.substr(0, url.find('\n'));
    EXPECT_EQ(run(Method::get, "/main/" + url).status, 200u);
}

TEST_F(GcTest, PinsKeepTheirClosureAndTheNewestRevisions) {
    auto c1 = push("c1"), r1 = push("r1", {c1}), r2 = push("r2"), r3 = push("r3"), other = push("other");
    api(Method::patch, "/api/v1/caches/main", json{{"retention", k_day}});
    for (const auto& p : {r1, r2, r3})
        api(Method::post, "/api/v1/caches/main/pins", json{{"name", "release"}, {"path", p.path}, {"keep", 2}}, 201);
    auto pins = api(Method::get, "/api/v1/caches/main/pins");
    ASSERT_EQ(pins.size(), 2u) << pins.dump();
    EXPECT_EQ(pins[0]["path"], r3.base());
    EXPECT_EQ(pins[1]["path"], r2.base());
    gc(5);
    EXPECT_TRUE(present(r2) && present(r3));
    EXPECT_FALSE(present(r1) || present(c1) || present(other));
    api(Method::post, "/api/v1/caches/main/pins", json{{"name", "x"}, {"path", "/nix/store/" + c1.base()}}, 404);
    api(Method::del, "/api/v1/caches/main/pins/release");
    api(Method::del, "/api/v1/caches/main/pins/release", json::object(), 404);
    gc(5);
    EXPECT_FALSE(present(r2) || present(r3));
}

// Over the cap, least recently used first; referrers before what they use.
TEST_F(GcTest, SizeCapRemovesLeastRecentlyUsedClosureSafely) {
    auto lib = push("lib", {}, 20000), app = push("app", {lib}, 20000), old = push("old", {}, 20000),
         fresh = push("fresh", {}, 20000);
    use(old, 1);
    use(app, 2);
    use(fresh, 3);
    api(Method::patch, "/api/v1/caches/main", json{{"max_size", 45000}});
    auto r = gc(4);
    // 4 NARs of ~20 KB: two must go. old (used on day 1) first, then app
    // and lib (lib's effective use is app's, day 2): app, the referrer, first.
    EXPECT_FALSE(present(old));
    EXPECT_FALSE(present(app));
    EXPECT_TRUE(present(lib));
    EXPECT_TRUE(present(fresh));
    EXPECT_LE(r["caches"][0]["size_after"].get<int64_t>(), 45000) << r.dump();
}

// Paths fetched from upstreams (marked here in the database; proxy_test
// fetches real ones) have their own retention and size cap; a path of the
// cache's own that refers to one keeps it.
TEST_F(GcTest, ProxiedPathsHaveTheirOwnRetentionAndCapClosureSafely) {
    auto dep = push("dep", {}, 20000), mine = push("mine", {dep}, 20000), up_old = push("up-old", {}, 20000),
         up_new = push("up-new", {}, 20000), up_stale = push("up-stale", {}, 20000);
    {
        auto conn = sqlite::open((m_dir / "larder.db").string(), SQLITE_OPEN_READWRITE);
        ASSERT_TRUE(conn);
        for (const auto& p : {dep, up_old, up_new, up_stale})
            ASSERT_TRUE((*conn)->exec(("UPDATE objects SET proxied = 1 WHERE store_path = '" + p.base() + "'").c_str()));
    }
    use(up_stale, 1);
    use(up_old, 20);
    use(dep, 21);
    use(up_new, 22);
    use(mine, 23);
    // Proxied paths: 10 days, and at most ~2 of them; the cache's own: forever.
    api(Method::patch, "/api/v1/caches/main", json{{"proxy_retention", 10 * k_day}, {"proxy_max_size", 45000}});
    auto r = gc(25);
    EXPECT_FALSE(present(up_stale)) << "past the proxy retention";
    EXPECT_FALSE(present(up_old)) << "the least recently used proxied path, over the cap";
    EXPECT_TRUE(present(dep)) << "referred to by the cache's own path";
    EXPECT_TRUE(present(up_new));
    EXPECT_TRUE(present(mine));
    auto info = api(Method::get, "/api/v1/caches/main");
    EXPECT_EQ(info["proxy_max_size"], 45000);
    EXPECT_EQ(info["proxy_retention"], 10 * k_day);
}

TEST_F(GcTest, DeletingAPathRefusesWhileReferredToUnlessCascade) {
    auto lib = push("lib"), app = push("app", {lib}), top = push("top", {app});
    auto refused = run(Method::del, "/api/v1/caches/main/paths/" + hash_part(lib.path), "{}");
    EXPECT_EQ(refused.status, 409u) << refused.body;
    EXPECT_NE(refused.body.find("--cascade"), std::string::npos) << refused.body;
    EXPECT_TRUE(present(lib));
    // Plain Nix's DELETE of a narinfo follows the same rule.
    EXPECT_EQ(run(Method::del, "/main/" + hash_part(lib.path) + ".narinfo").status, 409u);
    api(Method::post, "/api/v1/caches/main/pins", json{{"name", "top"}, {"path", top.path}}, 201);
    EXPECT_EQ(run(Method::del, "/api/v1/caches/main/paths/" + hash_part(lib.path), R"({"cascade":true})").status, 409u)
        << "a pinned path was deleted";
    api(Method::del, "/api/v1/caches/main/pins/top");
    auto deleted = api(Method::del, "/api/v1/caches/main/paths/" + hash_part(lib.path), json{{"cascade", true}});
    EXPECT_EQ(deleted["deleted"].size(), 3u);
    EXPECT_FALSE(present(lib) || present(app) || present(top));
}

// A path used while GC runs is kept, and so is what it refers to; a push
// that refers to a path GC removed meanwhile is refused, never half-visible.
TEST_F(GcTest, UseDuringCollectionKeepsThePathAndPushesNeverLoseAReference) {
    auto lib = push("lib"), app = push("app", {lib});
    auto rows = db_faults->gc_objects(cache_id());
    ASSERT_TRUE(rows);
    ASSERT_EQ(rows->size(), 2u);
    for (const auto& o : *rows) {
        // Seen by GC at o.last_used, used since: not deleted.
        use(o.store_path == app.base() ? app : lib, 1);
        EXPECT_TRUE(db_faults->delete_unused_objects({{o.id, o.last_used}}, [](auto&) { return true; })->empty());
    }
    db::ObjectRow orphan;
    orphan.cache_id = cache_id();
    orphan.hash_part = "0000000000000000000000000000000a";
    orphan.store_path = orphan.hash_part + "-x";
    orphan.nar_id = rows->front().nar_id;
    auto put = db_faults->put_object(orphan, {lib.base(), "11111111111111111111111111111111-gone"});
    ASSERT_FALSE(put);
    EXPECT_EQ(put.error().code, ErrorCode::conflict);
    EXPECT_NE(put.error().message.find("-gone"), std::string::npos) << put.error().message;
    EXPECT_FALSE(*db_faults->find_object(cache_id(), orphan.hash_part));
}

TEST_F(GcTest, OneGcAtATime) {
    ASSERT_TRUE(*db_faults->take_lease("gc", "another-replica", std::time(nullptr), std::time(nullptr) + 60));
    auto r = run(Method::post, "/api/v1/gc", "{}");
    EXPECT_EQ(r.status, 409u) << r.body;
    EXPECT_NE(r.body.find("another replica"), std::string::npos) << r.body;
    // An expired lease is free.
    ASSERT_TRUE(*db_faults->take_lease("gc", "another-replica", 0, 1));
    ASSERT_TRUE(db_faults->drop_lease("gc", "nobody"));
    EXPECT_FALSE(*db_faults->take_lease("gc", "third", 0, 10)) << "taken although held until 1 and now is 0";
    EXPECT_EQ(run(Method::post, "/api/v1/gc", "{}").status, 200u);
}

}  // namespace

namespace {

// A chunk lost by hand: its NAR answers 404 (never a short 200), fsck lists
// the path, --repair withdraws it with its referrer, a push heals it.
TEST_F(GcTest, FsckFindsLostAndCorruptChunksAndAPushHealsThem) {
    auto lib = push("lib", {}, 900000), app = push("app", {lib});
    auto nar_url = [&](const Path& p) {
        auto info = run(Method::get, "/main/" + hash_part(p.path) + ".narinfo").body;
        auto url = info.substr(info.find("URL: ") + 5);
        return "/main/" + url.substr(0, url.find('\n'));
    };
    auto lib_nar = nar_url(lib);
    // app's NAR is one small chunk, kept in its database row: no blob.
    EXPECT_EQ(api(Method::post, "/api/v1/fsck")["chunks_checked"], blob_count() + 1);
    // Lose one of lib's chunks.
    auto blobs = *blob_faults->list();
    std::string lost;
    for (const auto& b : blobs) {
        StringSink data;
        ASSERT_TRUE(blob_faults->get(b.key, data, 0, std::nullopt));
        if (data.data().size() > 10000) lost = b.key;
    }
    ASSERT_FALSE(lost.empty());
    ASSERT_TRUE(blob_faults->remove(lost));
    EXPECT_EQ(run(Method::get, lib_nar).status, 404u) << "a NAR with a lost chunk was served";
    auto r = run(Method::post, "/api/v1/fsck", "{}");
    ASSERT_EQ(r.status, 200u);
    auto report = json::parse(r.body);
    EXPECT_EQ(report["missing"], 1);
    ASSERT_EQ(report["damaged_paths"].size(), 1u) << r.body;
    EXPECT_EQ(report["damaged_paths"][0], "main/" + lib.base());
    EXPECT_TRUE(present(lib)) << "withdrawn without --repair";
    auto repaired = api(Method::post, "/api/v1/fsck", json{{"repair", true}});
    EXPECT_EQ(repaired["withdrawn"].size(), 2u) << repaired.dump();
    EXPECT_FALSE(present(lib) || present(app));
    for (const auto& p : {lib, app}) {
        auto info = narinfo(p.path, p.nar, "none");
        if (&p == &app) info.replace(info.find("References: "), 13, "References: " + lib.base() + "\n");
        ASSERT_EQ(run(Method::put, "/main/push/" + hash_part(p.path), push_body(info, p.nar)).status, 200u);
    }
    auto healed = run(Method::get, nar_url(lib));
    ASSERT_EQ(healed.status, 200u) << healed.body;
    EXPECT_TRUE(healed.body.size() > 900000);
    auto clean = api(Method::post, "/api/v1/fsck");
    EXPECT_EQ(clean["missing"], 0);
    EXPECT_TRUE(clean["damaged_paths"].empty()) << clean.dump();
    // Corrupt bytes under a key are found too (S3 cannot be stat'ed, so
    // only fsck sees this).
    auto now_blobs = *blob_faults->list();
    ASSERT_TRUE(blob_faults->put(now_blobs.front().key, "not what was stored"));
    auto corrupt = api(Method::post, "/api/v1/fsck", json{{"sample_percent", 100}});
    EXPECT_EQ(corrupt["corrupt"], 1) << corrupt.dump();
    EXPECT_EQ(corrupt["damaged_paths"].size(), 1u) << corrupt.dump();
}

}  // namespace

namespace {

// A path used while GC deletes its batch: the batch is rolled back and done
// one path at a time, so the used path keeps everything it refers to.
TEST_F(GcTest, APathUsedDuringTheDeletionKeepsItsClosure) {
    auto low = push("low"), mid = push("mid", {low}), top = push("top", {mid}), other = push("other");
    api(Method::patch, "/api/v1/caches/main", json{{"retention", k_day}});
    bool used = false;
    db_faults->before = [&](std::string_view call) {
        if (call != "delete_unused_objects" || used) return;
        used = true;  // first, or the call below would come back here
        use(top, 3);
    };
    auto r = gc(2);
    db_faults->before = nullptr;
    EXPECT_TRUE(used);
    EXPECT_TRUE(present(top) && present(mid) && present(low)) << r.dump();
    EXPECT_FALSE(present(other));
    EXPECT_EQ(r["caches"][0]["revived"], 3) << r.dump();
    EXPECT_EQ(r["caches"][0]["deleted"].size(), 1u) << r.dump();
}

}  // namespace

// A NAR downloaded a moment ago stops with its path: the server remembers
// a downloaded NAR's chunk list for a few seconds, and a deletion drops that.
TEST_F(GcTest, ADeletedPathsNarStopsAtOnceThoughJustDownloaded) {
    auto leaf = push("leaf");
    auto info = run(Method::get, "/main/" + hash_part(leaf.path) + ".narinfo");
    ASSERT_EQ(info.status, 200u) << info.body;
    auto url = info.body.substr(info.body.find("URL: ") + 5);
    url = "/main/" + url.substr(0, url.find('\n'));
    ASSERT_EQ(run(Method::get, url).status, 200u);
    api(Method::del, "/api/v1/caches/main/paths/" + hash_part(leaf.path), json::object());
    EXPECT_EQ(run(Method::get, url).status, 404u);
}
