// The handler without sockets: who may send a body at all (review H2),
// limits (H3, H4), ranges (L4) and the error boundary (L1).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "support/random_bytes.hpp"
#include "support/service_fixture.hpp"

using namespace larder;
using http::Method;

namespace {

class HandlerTest : public test::ServiceFixture {
protected:
    Result<http::Prepared> prepare(Method method, const std::string& target, const std::string& token) {
        http::Request r;
        r.method = method;
        r.target = target;
        if (!token.empty()) r.authorization = "Bearer " + token;
        return handler->prepare(r);
    }
    std::string token(const std::string& pattern, bool pull, bool push, bool admin_) {
        cache::Scope s;
        s.cache_pattern = pattern;
        s.pull = pull;
        s.push = push;
        s.admin = admin_;
        return access->create_token("t", s, std::nullopt)->secret;
    }
};

}  // namespace

TEST_F(HandlerTest, ApiWritesAreRefusedBeforeTheirBody) {
    auto pull = token("*", true, false, false);
    struct Case {
        Method method;
        const char* target;
        std::string token;
        ErrorCode expected;
    };
    for (const auto& c : {Case{Method::post, "/api/v1/tokens", "", ErrorCode::unauthorized},
                          Case{Method::post, "/api/v1/caches", "", ErrorCode::unauthorized},
                          Case{Method::post, "/api/v1/tokens", pull, ErrorCode::forbidden},
                          Case{Method::patch, "/api/v1/caches/main", pull, ErrorCode::forbidden},
                          Case{Method::del, "/api/v1/caches/main", "", ErrorCode::unauthorized},
                          Case{Method::post, "/api/v1/caches/main/rotate-key", pull, ErrorCode::forbidden},
                          Case{Method::post, "/api/v1/caches/main/missing", "", ErrorCode::unauthorized}}) {
        auto p = prepare(c.method, c.target, c.token);
        ASSERT_FALSE(p) << c.target;
        EXPECT_EQ(p.error().code, c.expected) << c.target << ": " << p.error().message;
    }
    auto missing = prepare(Method::post, "/api/v1/caches/main/missing", pull);
    ASSERT_TRUE(missing) << missing.error().message;
    EXPECT_EQ(missing->body_limit, http::k_max_missing_body);
    auto create = prepare(Method::post, "/api/v1/tokens", admin);
    ASSERT_TRUE(create);
    EXPECT_EQ(create->body_limit, http::k_max_api_body);
}

TEST_F(HandlerTest, MissingIsCappedAndSetBased) {
    std::string many = R"({"paths":[)";
    for (size_t i = 0; i <= http::k_max_missing_paths; ++i) many += (i ? ",\"" : "\"") + std::string(32, '0') + "\"";
    many += "]}";
    EXPECT_EQ(run(Method::post, "/api/v1/caches/main/missing", many).status, 413u);
    EXPECT_EQ(run(Method::post, "/api/v1/caches/main/missing", std::string(1000, '[')).status, 400u);
    // 2,500 hashes, duplicates included: one answer, each missing hash once.
    std::string some = R"({"paths":[)";
    for (int i = 0; i < 2500; ++i) some += fmt::format("{}\"{:032d}\"", i ? "," : "", i % 2000);
    some += "]}";
    auto r = run(Method::post, "/api/v1/caches/main/missing", some);
    ASSERT_EQ(r.status, 200u) << r.body;
    auto answer = nlohmann::json::parse(r.body);
    EXPECT_EQ(answer["missing"].size(), 2000u);
}

TEST_F(HandlerTest, ImpossibleCacheNamesCostNothing) {
    db_faults->fail_at(1);  // any database call would fail
    EXPECT_EQ(run(Method::get, "/" + std::string(500, 'a') + "/nix-cache-info").status, 404u);
    EXPECT_EQ(run(Method::get, "/%FF/nix-cache-info").status, 404u);
    EXPECT_EQ(db_faults->calls(), 0);
    db_faults->fail_at(0);
}

TEST_F(HandlerTest, RangeToTheLargestOffsetIsTheWholeFile) {
    auto nar = make_nar(test::random_bytes(5000, 5));
    auto path = store_path("ranged");
    ASSERT_EQ(run(Method::put, "/main/push/" + hash_part(path), push_body(narinfo(path, nar, "none"), nar)).status,
              200u);
    auto info = run(Method::get, "/main/" + hash_part(path) + ".narinfo").body;
    auto url = info.substr(info.find("URL: ") + 5);
    url = url.substr(0, url.find('\n'));
    http::Request r;
    r.method = Method::get;
    r.target = "/main/" + url;
    r.authorization = "Bearer " + admin;
    r.range = "bytes=0-18446744073709551615";
    auto p = handler->prepare(r);
    ASSERT_TRUE(p);
    auto response = handler->handle(*p, r);
    EXPECT_EQ(response.status, 206u);
    StringSink body;
    ASSERT_TRUE(copy(*response.stream, body));
    EXPECT_EQ(body.data().size(), *response.stream_length);
}

TEST_F(HandlerTest, ServerErrorsSayNothingInternal) {
    db_faults->fail_at(1);
    auto p = prepare(Method::get, "/main/nix-cache-info", admin);
    db_faults->fail_at(0);
    ASSERT_FALSE(p);
    auto response = http::error_response(p.error());
    EXPECT_EQ(response.status, 503u);
    EXPECT_TRUE(response.body.empty());  // the session writes the generic text with the request id
    EXPECT_NE(response.error_detail.find("injected fault"), std::string::npos);
    auto text = http::server_error_text(503, "ab-1");
    EXPECT_NE(text.find("request id ab-1"), std::string::npos);
    EXPECT_EQ(text.find("injected"), std::string::npos);
}

// Anonymous reads of a public cache that the memo can answer are answered on
// the I/O thread, exactly as handle() answers them; anything else is left to
// prepare() (a token, a private cache, something not yet remembered).
TEST_F(HandlerTest, MemoryAnswersMatchHandlerAnswers) {
    cache::CacheSettings settings;
    settings.is_public = true;
    ASSERT_TRUE(service->configure("other", settings));
    auto nar = make_nar(test::random_bytes(3000, 7));
    auto path = store_path("remembered");
    ASSERT_EQ(run(Method::put, "/other/push/" + hash_part(path), push_body(narinfo(path, nar, "none"), nar)).status,
              200u);
    ASSERT_EQ(run(Method::put, "/main/push/" + hash_part(path), push_body(narinfo(path, nar, "none"), nar)).status,
              200u);
    auto anonymous = [](const std::string& target) {
        http::Request r;
        r.method = Method::get;
        r.target = target;
        return r;
    };
    auto hit = anonymous("/other/" + hash_part(path) + ".narinfo");
    auto miss = anonymous("/other/" + std::string(32, '0') + ".narinfo");
    EXPECT_FALSE(handler->answer_from_memory(hit));  // nothing remembered yet
    for (auto* r : {&hit, &miss}) {
        auto p = handler->prepare(*r);
        ASSERT_TRUE(p);
        auto full = handler->handle(*p, *r);
        auto quick = handler->answer_from_memory(*r);
        ASSERT_TRUE(quick) << r->target;
        EXPECT_EQ(quick->status, full.status);
        EXPECT_EQ(quick->body, full.body);
        EXPECT_EQ(quick->content_type, full.content_type);
    }
    EXPECT_EQ(handler->answer_from_memory(hit)->status, 200u);
    EXPECT_EQ(handler->answer_from_memory(miss)->status, 404u);
    // Remembered, but private or with a token: prepare() decides.
    auto private_hit = anonymous("/main/" + hash_part(path) + ".narinfo");
    ASSERT_EQ(run(Method::get, private_hit.target).status, 200u);  // with the admin token: now remembered
    EXPECT_FALSE(handler->answer_from_memory(private_hit));
    hit.authorization = "Bearer " + admin;
    EXPECT_FALSE(handler->answer_from_memory(hit));
}

// A hung database: each readiness check answers within its deadline, and
// checks meanwhile wait for the probe left behind instead of starting more
// (a thread each, per load balancer poll, for as long as it hangs).
TEST_F(HandlerTest, ReadinessChecksOfAHungDatabaseShareOneProbe) {
    std::mutex mutex;
    std::condition_variable released;
    bool hung = true;
    int probes = 0;
    db_faults->before = [&](std::string_view call) {
        if (call != "get_cache") return;
        std::unique_lock lock(mutex);
        ++probes;
        released.notify_all();
        released.wait(lock, [&] { return !hung; });
    };
    for (int i = 0; i < 3; ++i) {
        auto r = service->check_ready(std::chrono::milliseconds(100));
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message.find("the database did not answer within"), std::string::npos)
            << r.error().message;
    }
    {
        std::unique_lock lock(mutex);
        released.wait_for(lock, std::chrono::seconds(5), [&] { return probes > 0; });  // (a loaded machine)
        EXPECT_EQ(probes, 1) << "each check started a probe of its own";
        hung = false;
    }
    released.notify_all();
    // Answered now (the check waits for the probe left behind, or finds it
    // answered and starts anew): ready, and no probe is still out.
    EXPECT_TRUE(service->check_ready(std::chrono::seconds(5)));
    db_faults->before = nullptr;
}

// Stopping while a probe of a hung database is out waits for it: its thread
// uses the stores through the service (under ASan, not waiting is a
// use-after-free once it is answered).
TEST_F(HandlerTest, StoppingWaitsForAReadinessProbeLeftBehind) {
    std::mutex mutex;
    std::condition_variable changed;
    bool hung = true, probing = false;
    db_faults->before = [&](std::string_view call) {
        if (call != "get_cache") return;
        std::unique_lock lock(mutex);
        probing = true;
        changed.notify_all();
        changed.wait(lock, [&] { return !hung; });
    };
    ASSERT_FALSE(service->check_ready(std::chrono::milliseconds(50)));
    {
        std::unique_lock lock(mutex);
        ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(5), [&] { return probing; }));
    }
    std::atomic<bool> released = false;
    std::thread release([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        released = true;
        std::lock_guard lock(mutex);
        hung = false;
        changed.notify_all();
    });
    handler.reset();
    service.reset();
    EXPECT_TRUE(released) << "the service was destroyed while its probe was still out";
    release.join();
    db_faults->before = nullptr;
}

// Probes and the scrape need no token; /readyz says which store failed.
TEST_F(HandlerTest, HealthReadinessAndMetrics) {
    for (auto target : {"/health", "/healthz", "/readyz", "/metrics"})
        EXPECT_TRUE(prepare(Method::get, target, "")) << target << " asked for a token";
    EXPECT_EQ(run(Method::get, "/healthz").status, 200u);
    EXPECT_EQ(run(Method::get, "/readyz").status, 200u);
    blob_faults->fail_at(1);
    auto unready = run(Method::get, "/readyz");
    blob_faults->fail_at(0);
    EXPECT_EQ(unready.status, 503u);
    EXPECT_NE(unready.body.find("blob store"), std::string::npos) << unready.body;
    db_faults->fail_at(1);
    unready = run(Method::get, "/readyz");
    db_faults->fail_at(0);
    EXPECT_EQ(unready.status, 503u);
    EXPECT_NE(unready.body.find("database"), std::string::npos) << unready.body;

    auto before = run(Method::get, "/metrics");
    ASSERT_EQ(before.status, 200u);
    EXPECT_NE(before.body.find("larder_uploads_total 0\n"), std::string::npos) << before.body;
    EXPECT_NE(before.body.find("larder_http_requests_total{route=\"narinfo\",method=\"GET\",status=\"404\"} 0\n"),
              std::string::npos);
    auto nar = make_nar(test::random_bytes(5000, 7));
    auto path = store_path("counted");
    ASSERT_EQ(run(Method::put, "/main/push/" + hash_part(path), push_body(narinfo(path, nar, "none"), nar)).status,
              200u);
    auto after = run(Method::get, "/metrics").body;
    EXPECT_NE(after.find("larder_uploads_total 1\n"), std::string::npos) << after;
    EXPECT_NE(after.find("larder_chunks_stored_total 1\n"), std::string::npos) << after;
    EXPECT_NE(after.find("larder_storage_requests_total 0\n"), std::string::npos) << "local storage";
    // The push's stages were timed once each; the database pool is idle.
    for (auto stage : {"receive", "verify", "sync", "record"})
        EXPECT_NE(after.find(fmt::format("larder_upload_stage_seconds_count{{stage=\"{}\"}} 1\n", stage)),
                  std::string::npos)
            << stage << " in:\n" << after;
    EXPECT_NE(before.body.find("larder_upload_stage_seconds_count{stage=\"verify\"} 0\n"), std::string::npos);
    EXPECT_NE(after.find("larder_db_connections_in_use 0\n"), std::string::npos) << "a connection left in use";
    EXPECT_EQ(after.find("larder_db_connections 0\n"), std::string::npos) << "the pool kept no connection";
    EXPECT_NE(after.find("larder_db_connect_failures_total 0\n"), std::string::npos);
    // Per-cache series (they name caches) only for an admin token, computed
    // at most every 30 s: the first scrape's figures (before the upload).
    EXPECT_NE(after.find("larder_cache_paths{cache=\"main\"} 0\n"), std::string::npos) << after;
    EXPECT_NE(after.find("larder_cache_bytes{cache=\"other\"} 0\n"), std::string::npos) << after;
    auto sizes = service->cache_sizes();
    ASSERT_TRUE(sizes);
    ASSERT_EQ(sizes->size(), 2u);
    EXPECT_EQ((*sizes)[0].first, "main");
    EXPECT_EQ((*sizes)[0].second.paths, 1);
    EXPECT_GT((*sizes)[0].second.bytes, 0);
    EXPECT_EQ((*sizes)[1].second.paths, 0);
    http::Request anonymous;
    anonymous.method = Method::get;
    anonymous.target = "/metrics";
    auto p = handler->prepare(anonymous);
    ASSERT_TRUE(p);
    auto scraped = handler->handle(*p, anonymous).body;
    EXPECT_NE(scraped.find("larder_uploads_total 1\n"), std::string::npos);
    EXPECT_EQ(scraped.find("larder_cache_"), std::string::npos) << "cache names without a token";
}

// With metrics_listen, the main address has no /metrics and the metrics
// address nothing else (not even a public narinfo remembered in memory).
TEST_F(HandlerTest, MetricsAddressServesOnlyProbesAndMetrics) {
    http::HandlerConfig config;
    config.metrics_elsewhere = true;
    http::Handler separate(*service, *access, config);
    auto ask = [&](std::string_view target, bool ops) {
        http::Request r;
        r.method = Method::get;
        r.target = std::string(target);
        r.ops_listener = ops;
        if (auto quick = separate.answer_from_memory(r)) return quick->status;
        auto p = separate.prepare(r);
        if (!p) return http::error_response(p.error()).status;
        return separate.handle(*p, r).status;
    };
    EXPECT_EQ(ask("/metrics", true), 200u);
    EXPECT_EQ(ask("/healthz", true), 200u);
    EXPECT_EQ(ask("/readyz", true), 200u);
    EXPECT_EQ(ask("/metrics", false), 404u);
    EXPECT_EQ(ask("/healthz", false), 200u);
    EXPECT_EQ(ask("/main/nix-cache-info", false), 401u) << "a private cache, as usual";
    EXPECT_EQ(ask("/main/nix-cache-info", true), 404u);
    EXPECT_EQ(ask("/", true), 404u);
    EXPECT_EQ(ask("/api/v1/caches", true), 404u);
}

// The request counters and the latency histogram (cumulative buckets).
TEST(MetricsTest, CountsRequestsAndLatency) {
    http::Metrics m;
    EXPECT_EQ(http::Metrics::route_label("/main/0123456789abcdfghijklmnpqrsvwxyz.narinfo"), "narinfo");
    EXPECT_EQ(http::Metrics::route_label("/main/nar/x.nar.zst"), "nar");
    EXPECT_EQ(http::Metrics::route_label("/../x"), "other");
    m.observe("narinfo", "GET", 200, 0.0004, 0, 100);
    m.observe("narinfo", "GET", 200, 0.02, 0, 100);
    m.observe("nar", "PUT", 200, 3, 5000, 0);
    auto text = m.render();
    for (auto line : {"larder_http_requests_total{route=\"narinfo\",method=\"GET\",status=\"200\"} 2\n",
                      "larder_http_requests_total{route=\"nar\",method=\"PUT\",status=\"200\"} 1\n",
                      "larder_http_request_duration_seconds_bucket{route=\"narinfo\",le=\"0.001\"} 1\n",
                      "larder_http_request_duration_seconds_bucket{route=\"narinfo\",le=\"0.025\"} 2\n",
                      "larder_http_request_duration_seconds_bucket{route=\"nar\",le=\"2.5\"} 0\n",
                      "larder_http_request_duration_seconds_bucket{route=\"nar\",le=\"5\"} 1\n",
                      "larder_http_request_duration_seconds_count{route=\"nar\"} 1\n",
                      "larder_http_received_bytes_total 5000\n", "larder_http_sent_bytes_total 200\n"})
        EXPECT_NE(text.find(line), std::string::npos) << line << " missing from:\n" << text;
}

// The landing page names public caches only, and escapes what the request
// brought (the Host header ends up in the URLs it shows).
TEST_F(HandlerTest, LandingPageShowsPublicCachesEscaped) {
    cache::CacheSettings settings;
    settings.is_public = true;
    ASSERT_TRUE(service->configure("main", settings));
    http::Request r;
    r.method = Method::get;
    r.target = "/";
    r.host = "evil.test\"><script>alert(1)</script>";
    auto p = handler->prepare(r);
    ASSERT_TRUE(p) << "the page needs no token";
    auto page = handler->handle(*p, r);
    ASSERT_EQ(page.status, 200u) << page.body;
    EXPECT_NE(page.body.find("id=\"cache-main\""), std::string::npos);
    EXPECT_EQ(page.body.find("cache-other"), std::string::npos) << "a private cache is named";
    EXPECT_EQ(page.body.find("<script>"), std::string::npos) << "the Host header was not escaped";
    EXPECT_NE(page.body.find("&lt;script&gt;"), std::string::npos);
}
