// Starting fetches of upstream NARs (proxy.cpp); the fetches themselves run
// against real upstreams in e2e/proxy_test.sh and proxy_replicas_test.sh.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "crypto/keys.hpp"
#include "support/service_fixture.hpp"

namespace larder::test {
namespace {

using json = nlohmann::json;
using http::Method;

class ProxyFetchTest : public ServiceFixture {
protected:
    void SetUp() override {
        ServiceFixture::SetUp();
        auto key = crypto::SecretKey::generate("up-1").public_key().to_string();
        json upstreams = json::array({json{{"url", "http://127.0.0.1:9"}, {"keys", json::array({key})}}});
        auto r = run(Method::patch, "/api/v1/caches/main", json{{"upstreams", upstreams}}.dump());
        ASSERT_EQ(r.status, 200u) << r.body;
    }

    // The name an upstream path's NAR has here, for a made-up NarHash.
    static std::string upstream_nar(char digit) { return "/main/nar/upstream-" + std::string(64, digit) + ".nar.zst"; }
};

// Deciding whether to fetch one NAR asks the database (its upstream row,
// a lease); a slow answer there must not hold up the first fetch of
// another NAR. Each lookup here waits until both are under way at once:
// if one start waited for the other's, this takes the 5 s timeout.
TEST_F(ProxyFetchTest, StartsOfDifferentNarsDoNotWaitForEachOther) {
    std::mutex mutex;
    std::condition_variable both;
    int asking = 0;
    db_faults->before = [&](std::string_view call) {
        if (call != "find_upstream_nar") return;
        std::unique_lock lock(mutex);
        ++asking;
        both.notify_all();
        both.wait_for(lock, std::chrono::seconds(5), [&] { return asking >= 2; });
    };
    auto started = std::chrono::steady_clock::now();
    Reply other;
    std::thread t([&] { other = run(Method::get, upstream_nar('a')); });
    auto mine = run(Method::get, upstream_nar('b'));
    t.join();
    auto took = std::chrono::steady_clock::now() - started;
    db_faults->before = nullptr;
    EXPECT_EQ(asking, 2);
    EXPECT_LT(took, std::chrono::seconds(4)) << "one start waited for the other's database call";
    // Neither is an upstream path here.
    EXPECT_EQ(mine.status, 404u) << mine.body;
    EXPECT_EQ(other.status, 404u) << other.body;
}

// Many wanting the same NAR at once: one asks the database, the others
// wait for its answer and then see the same (here: not found), and the
// claim is given up, so a later request asks again.
TEST_F(ProxyFetchTest, TheSameNarIsLookedUpByOneAtATimeAndTheClaimIsGivenUp) {
    std::atomic<int> lookups{0};
    std::atomic<int> inside{0};
    std::atomic<int> most_inside{0};
    db_faults->before = [&](std::string_view call) {
        if (call != "find_upstream_nar") return;
        ++lookups;
        int now = ++inside;
        int seen = most_inside.load();
        while (now > seen && !most_inside.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        --inside;
    };
    std::vector<std::thread> clients;
    std::vector<unsigned> statuses(4);
    for (size_t i = 0; i < statuses.size(); ++i)
        clients.emplace_back([&, i] { statuses[i] = run(Method::get, upstream_nar('c')).status; });
    for (auto& c : clients) c.join();
    for (auto s : statuses) EXPECT_EQ(s, 404u);
    EXPECT_EQ(most_inside.load(), 1) << "two lookups of one NAR ran at once";
    EXPECT_EQ(lookups.load(), 4) << "each waiter asks again once the claim is given up";
    EXPECT_EQ(run(Method::get, upstream_nar('c')).status, 404u);
    EXPECT_EQ(lookups.load(), 5);
    db_faults->before = nullptr;
}

}  // namespace
}  // namespace larder::test
