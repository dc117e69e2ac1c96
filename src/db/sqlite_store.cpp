// The SQLite metadata store: WAL mode, numbered migrations in PRAGMA
// user_version, a small pool of connections each with its own prepared
// statements. The SQL itself is in sql_store.hpp.
#include <sqlite3.h>

#include <fmt/core.h>

#include "db/metadata_store.hpp"
#include "db/migrations.hpp"
#include "db/sql_store.hpp"
#include "sqlite/sqlite.hpp"
#include "util/strings.hpp"

namespace larder::db {

namespace {

struct SqliteBackend {
    using Connection = sqlite::Connection;
    using Query = sqlite::Query;
    static constexpr const char* k_begin = "BEGIN IMMEDIATE";

    static Result<std::unique_ptr<Connection>> connect(const std::string& path) {
        TRY_ASSIGN(auto conn, sqlite::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
        TRY(conn->exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                       "PRAGMA foreign_keys = ON;"));
        return conn;
    }

    static Result<void> migrate(Connection& conn) {
        size_t version = 0;
        {
            auto q = conn.query("PRAGMA user_version");
            TRY(q.step());
            version = static_cast<size_t>(q.i64(0));
        }
        // Foreign keys off while tables are rebuilt (SQLite's documented
        // procedure): dropping a rebuilt table must not cascade.
        TRY(conn.exec("PRAGMA foreign_keys = OFF"));
        auto r = detail::apply_migrations(conn, version, k_sqlite_migrations, k_begin, "PRAGMA user_version = {}");
        TRY(conn.exec("PRAGMA foreign_keys = ON"));
        return r;
    }
};

}  // namespace

Result<std::unique_ptr<MetadataStore>> open_postgres_store(std::string_view url);  // postgres_store.cpp

Result<std::unique_ptr<MetadataStore>> open_metadata_store(std::string_view url) {
    if (url.starts_with("postgres://") || url.starts_with("postgresql://")) return open_postgres_store(url);
    TRY_ASSIGN(auto path, strip_scheme(url, "sqlite", "database"));
    auto store = std::make_unique<detail::SqlStore<SqliteBackend>>(std::string(path));
    TRY(store->open());
    return std::unique_ptr<MetadataStore>(std::move(store));
}

}  // namespace larder::db
