#include "cache/access.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

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

// Access over a SQLite database in a directory of the test's own.
class AccessStore : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::filesystem::temp_directory_path() /
                ("larder-access-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(m_dir);
        auto db = db::open_metadata_store((m_dir / "db.sqlite").string());
        ASSERT_TRUE(db) << db.error().message;
        m_db = std::move(*db);
        m_access = std::make_unique<Access>(*m_db);
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    std::filesystem::path m_dir;
    std::unique_ptr<db::MetadataStore> m_db;
    std::unique_ptr<Access> m_access;
};

TEST_F(AccessStore, TokensAreStoredHashedAndChecked) {
    auto& access = *m_access;
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
    Scope root;
    root.admin = true;
    ASSERT_TRUE(access.revoke_token(token->row.id, root));
    EXPECT_EQ(access.authenticate("Bearer " + token->secret, 0).error().message, "token has been revoked");
    EXPECT_TRUE(access.authenticate("", 0));  // anonymous
    EXPECT_FALSE(access.authenticate("Digest abc", 0));
}

// Review M8: a token minted by an admin token never outlives it, is revoked
// with it, and a scoped admin manages exactly the tokens within its pattern.
TEST_F(AccessStore, MintedTokensNeverOutliveOrOutrankTheirAdmin) {
    auto& access = *m_access;
    Scope root;
    root.admin = true;
    Scope team;
    team.cache_pattern = "team-*";
    team.admin = true;
    auto team_admin = access.create_token("team admin", team, 5000);
    ASSERT_TRUE(team_admin);
    // Asked for no expiry, or a later one: capped at the parent's.
    auto child = access.create_token("child", team, std::nullopt, team_admin->row);
    ASSERT_TRUE(child);
    EXPECT_EQ(child->row.expires_at, std::optional<int64_t>(5000));
    Scope pull;
    pull.cache_pattern = "team-a";
    pull.pull = true;
    auto grandchild = access.create_token("grandchild", pull, 9000, child->row);
    ASSERT_TRUE(grandchild);
    EXPECT_EQ(grandchild->row.expires_at, std::optional<int64_t>(5000));
    auto other = access.create_token("other", Scope{"ops-*", true, false, false, false}, std::nullopt);
    ASSERT_TRUE(other);
    // The team admin manages its team's tokens, not ops-*.
    auto managed = access.tokens_managed_by(team);
    ASSERT_TRUE(managed);
    std::set<std::string> names;
    for (const auto& t : *managed) names.insert(t.name);
    EXPECT_EQ(names, (std::set<std::string>{"team admin", "child", "grandchild"}));
    EXPECT_FALSE(access.revoke_token(other->row.id, team));
    EXPECT_TRUE(access.authenticate("Bearer " + other->secret, 0));
    // Revoking the team admin revokes what it minted, at any depth.
    ASSERT_TRUE(access.revoke_token(team_admin->row.id, root));
    for (const auto* t : {&*child, &*grandchild}) {
        auto r = access.authenticate("Bearer " + t->secret, 0);
        ASSERT_FALSE(r) << t->row.name;
        EXPECT_EQ(r.error().message, "token has been revoked");
    }
    EXPECT_TRUE(access.authenticate("Bearer " + other->secret, 0));
}
