#include "http/router.hpp"

#include <gtest/gtest.h>

using namespace larder;
using namespace larder::http;

TEST(Router, NixProtocolRoutes) {
    auto r = route("/main/0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb.narinfo");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->kind, RouteKind::narinfo);
    EXPECT_EQ(r->cache, "main");
    EXPECT_EQ(r->name, "0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb");
    EXPECT_EQ(route("/main/nix-cache-info")->kind, RouteKind::cache_info);
    EXPECT_EQ(route("/main/0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb.ls")->kind, RouteKind::listing);
    EXPECT_EQ(route("/main/nar/abc.nar.zst")->name, "abc.nar.zst");
    EXPECT_EQ(route("/main/log/0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb-a+b?=c.drv")->kind, RouteKind::log);
    auto real = route("/main/realisations/sha256:00ff!out.doi");
    ASSERT_TRUE(real);
    EXPECT_EQ(real->kind, RouteKind::realisation);
    EXPECT_EQ(real->name, "realisations/sha256:00ff!out.doi");
    EXPECT_EQ(route("/main/build-trace-v2/x.drv/out.doi")->name, "build-trace-v2/x.drv/out.doi");
    EXPECT_EQ(route("/api/v1/caches/main")->name, "caches/main");
    EXPECT_EQ(route("/health")->kind, RouteKind::health);
    EXPECT_EQ(route("/main/nix-cache-info?x=1")->query, "x=1");
    auto push = route("/main/push/0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb");
    ASSERT_TRUE(push);
    EXPECT_EQ(push->kind, RouteKind::push);
    EXPECT_EQ(push->name, "0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb");
    EXPECT_EQ(route("/main/push/not-a-hash").error().code, ErrorCode::invalid_input);
}

TEST(Router, RejectsPathsThatClimbOut) {
    for (auto target : {"/main/../x", "/main/%2e%2e/x", "/main/nar/%2E%2E", "/main/nar/..",
                        "/main//nix-cache-info", "/main/nar/a%00b", "/main/nar/a%2", "/main/nar/%zz",
                        "relative", "/main/nar/a%5cb", "/main/log/a%2fb"}) {
        auto r = route(target);
        ASSERT_FALSE(r) << target;
        EXPECT_EQ(r.error().code, ErrorCode::invalid_input) << target;
    }
}

TEST(Router, UnknownIsNotFound) {
    for (auto target : {"/main", "/main/other", "/main/nar/a/b", "/api/v2/caches"}) {
        auto r = route(target);
        ASSERT_FALSE(r) << target;
        EXPECT_EQ(r.error().code, ErrorCode::not_found) << target;
    }
    EXPECT_EQ(route("/main/abc.narinfo").error().code, ErrorCode::invalid_input);
}

TEST(Router, ServerRoutes) {
    EXPECT_EQ(route("/")->kind, RouteKind::landing);
    EXPECT_EQ(route("/?x=1")->kind, RouteKind::landing);
    EXPECT_EQ(route("/healthz")->kind, RouteKind::health);
    EXPECT_EQ(route("/readyz")->kind, RouteKind::ready);
    EXPECT_EQ(route("/metrics")->kind, RouteKind::metrics);
    EXPECT_EQ(route("/metrics/nix-cache-info")->kind, RouteKind::cache_info) << "a cache may be called metrics";
}
