#include "cache/access.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "crypto/encoding.hpp"

using namespace larder;
using namespace larder::cache;

TEST(Access, GlobMatch) {
    EXPECT_TRUE(glob_match("*", "anything"));
    EXPECT_TRUE(glob_match("team-*", "team-a"));
    EXPECT_TRUE(glob_match("team-*", "team-"));
    EXPECT_FALSE(glob_match("team-*", "other"));
    EXPECT_TRUE(glob_match("a*b*c", "axxbyyc"));
    EXPECT_FALSE(glob_match("a*b*c", "axxbyy"));
    EXPECT_TRUE(glob_match("main", "main"));
    EXPECT_FALSE(glob_match("main", "main2"));
}

TEST(Access, ScopesGrant) {
    Scope s;
    s.cache_pattern = "team-*";
    s.pull = true;
    EXPECT_TRUE(s.grants("team-a", Permission::pull));
    EXPECT_FALSE(s.grants("team-a", Permission::push));
    EXPECT_FALSE(s.grants("other", Permission::pull));
    s.push = true;
    EXPECT_TRUE(s.grants("team-a", Permission::push));
    EXPECT_FALSE(s.grants("team-a", Permission::remove));
    Scope admin;
    admin.admin = true;
    EXPECT_TRUE(admin.grants("x", Permission::remove));
    auto round = Scope::from_json(s.to_json());
    ASSERT_TRUE(round);
    EXPECT_EQ(round->cache_pattern, "team-*");
    EXPECT_TRUE(round->push);
}

TEST(Access, TokensAreStoredHashedAndChecked) {
    auto dir = std::filesystem::temp_directory_path() / ("larder-access-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto db = db::open_metadata_store((dir / "db.sqlite").string());
    ASSERT_TRUE(db) << db.error().message;
    Access access(**db);
    Scope scope;
    scope.pull = true;
    auto token = access.create_token("ci", scope, 1000);
    ASSERT_TRUE(token);
    EXPECT_NE(token->row.secret_hash, token->secret);
    EXPECT_EQ(token->row.secret_hash.find(token->secret), std::string::npos);
    EXPECT_TRUE(access.authenticate("Bearer " + token->secret, 999));
    auto basic = "user:" + token->secret;
    EXPECT_TRUE(access.authenticate("Basic " + crypto::to_base64(crypto::Bytes(basic.begin(), basic.end())), 999));
    auto expired = access.authenticate("Bearer " + token->secret, 1000);
    ASSERT_FALSE(expired);
    EXPECT_EQ(expired.error().message, "token has expired");
    auto wrong = access.authenticate("Bearer lt_wrong", 0);
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().code, ErrorCode::unauthorized);
    EXPECT_EQ(wrong.error().message.find("lt_wrong"), std::string::npos);
    ASSERT_TRUE(access.revoke_token(token->row.id));
    EXPECT_EQ(access.authenticate("Bearer " + token->secret, 0).error().message, "token has been revoked");
    EXPECT_TRUE(access.authenticate("", 0));  // anonymous
    EXPECT_FALSE(access.authenticate("Digest abc", 0));
    std::filesystem::remove_all(dir);
}
