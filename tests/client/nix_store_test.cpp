// NixStore against a database with Nix's schema, and the upstream check.
#include "client/nix_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <unistd.h>

#include "client/push.hpp"
#include "crypto/keys.hpp"

using namespace larder;
using namespace larder::client;

namespace {

constexpr const char* k_schema = R"(
CREATE TABLE ValidPaths (id integer primary key autoincrement not null, path text unique not null,
  hash text not null, registrationTime integer not null, deriver text, narSize integer,
  ultimate integer, sigs text, ca text);
CREATE TABLE Refs (referrer integer not null, reference integer not null, primary key (referrer, reference));
CREATE TABLE DerivationOutputs (drv integer not null, id text not null, path text not null,
  primary key (drv, id));
)";

std::string path_of(char c, const char* name) { return "/nix/store/" + std::string(32, c) + "-" + name; }

class NixStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::filesystem::temp_directory_path() / ("larder-nixdb-" + std::to_string(getpid()));
        std::filesystem::create_directories(m_dir);
        m_db = (m_dir / "db.sqlite").string();
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(m_db.c_str(), &db), SQLITE_OK);
        std::string sql = k_schema;
        // c -> b -> a, c -> a, d -> c, plus a self reference on b; e.drv builds d.
        const std::pair<char, const char*> paths[] = {{'a', "a"}, {'b', "b"}, {'c', "c"}, {'d', "d"}, {'f', "e.drv"}};
        int id = 0;
        for (auto [c, name] : paths)
            sql += "INSERT INTO ValidPaths (id, path, hash, registrationTime, narSize, sigs) VALUES (" +
                   std::to_string(++id) + ", '" + path_of(c, name) +
                   "', 'sha256:" + std::string(64, '0') + "', 1, 8, " +
                   (c == 'a' ? "'up-1:AAAA other:BBBB'" : "NULL") + ");";
        sql += "INSERT INTO Refs VALUES (3, 2), (2, 1), (3, 1), (4, 3), (2, 2);";
        sql += "INSERT INTO DerivationOutputs VALUES (5, 'out', '" + path_of('d', "d") + "');";
        ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
        sqlite3_close(db);
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    std::filesystem::path m_dir;
    std::string m_db;
};

}  // namespace

TEST_F(NixStoreTest, ClosureListsReferencesFirst) {
    auto store = NixStore::open(m_db, "/nix/store");
    ASSERT_TRUE(store) << store.error().message;
    auto closure = (*store)->closure({path_of('d', "d")});
    ASSERT_TRUE(closure) << closure.error().message;
    std::vector<std::string> order;
    for (const auto& p : *closure) order.push_back(p.path);
    EXPECT_EQ(order, (std::vector<std::string>{path_of('a', "a"), path_of('b', "b"), path_of('c', "c"),
                                               path_of('d', "d")}));
    EXPECT_TRUE((*closure)[1].self_reference);
    EXPECT_EQ((*closure)[1].references, std::vector<std::string>{path_of('a', "a")});
    EXPECT_EQ((*closure)[0].sigs, (std::vector<std::string>{"up-1:AAAA", "other:BBBB"}));
}

TEST_F(NixStoreTest, UnknownPathsAndNewRows) {
    auto store = std::move(*NixStore::open(m_db, "/nix/store"));
    EXPECT_EQ(store->closure({path_of('z', "z")}).error().code, ErrorCode::not_found);
    EXPECT_EQ(*store->last_id(), 5);
    auto added = store->added_since(3);
    ASSERT_TRUE(added);
    ASSERT_EQ(added->size(), 2u);
    EXPECT_EQ((*added)[0].path, path_of('d', "d"));
    EXPECT_EQ(*store->derivation_outputs(path_of('f', "e.drv")), std::vector<std::string>{path_of('d', "d")});
}

TEST_F(NixStoreTest, ResolvesLinksAndSubpaths) {
    auto store = std::move(*NixStore::open(m_db, "/nix/store"));
    EXPECT_EQ(*store->resolve(path_of('a', "a") + "/bin/x"), path_of('a', "a"));
    auto link = m_dir / "result";
    std::filesystem::create_symlink(path_of('b', "b"), link);
    EXPECT_EQ(*store->resolve(link.string()), path_of('b', "b"));
    EXPECT_EQ(store->resolve("/etc/passwd").error().code, ErrorCode::invalid_input);
}

TEST_F(NixStoreTest, NarInfoKeepsTheSelfReference) {
    auto store = std::move(*NixStore::open(m_db, "/nix/store"));
    auto b = *store->query(path_of('b', "b"));
    auto info = store->to_nar_info(b, "zstd");
    ASSERT_TRUE(info) << info.error().message;
    ASSERT_EQ(info->references.size(), 2u);
    EXPECT_EQ(info->compression, "zstd");
    EXPECT_EQ(info->nar_size, 8u);
}

TEST(Upstream, ByNameOrByVerifiedKey) {
    auto key = crypto::SecretKey::generate("up-1");
    nix::NarInfo info{.path = *nix::StorePath::parse(path_of('a', "a")),
                      .url = "nar/x",
                      .compression = "zstd",
                      .file_hash = std::nullopt,
                      .file_size = std::nullopt,
                      .nar_hash = *crypto::parse_hash("sha256:" + std::string(64, '0')),
                      .nar_size = 8,
                      .references = {},
                      .deriver = std::nullopt,
                      .system = "",
                      .sigs = {},
                      .ca = ""};
    EXPECT_FALSE(signed_by_upstream(info, {"up-1"}, "/nix/store"));
    info.sign(key);
    EXPECT_TRUE(signed_by_upstream(info, {"up-1"}, "/nix/store"));
    EXPECT_FALSE(signed_by_upstream(info, {"up"}, "/nix/store"));
    EXPECT_TRUE(signed_by_upstream(info, {key.public_key().to_string()}, "/nix/store"));
    // A signature that only carries the name does not pass a full key.
    auto forged = crypto::SecretKey::generate("up-1");
    EXPECT_FALSE(signed_by_upstream(info, {forged.public_key().to_string()}, "/nix/store"));
}
