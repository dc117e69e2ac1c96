// The PostgreSQL metadata store: what replicas share. The SQL is in
// sql_store.hpp; this file connects and migrates.
#include <fmt/core.h>

#include "db/metadata_store.hpp"
#include "db/migrations.hpp"
#include "db/postgres.hpp"
#include "db/sql_store.hpp"

namespace larder::db {

namespace {

struct PostgresBackend {
    using Connection = pg::Connection;
    using Query = pg::Query;
    static constexpr const char* k_begin = "BEGIN";

    static Result<std::unique_ptr<Connection>> connect(const std::string& url) { return pg::open(url); }

    static Result<void> migrate(Connection& conn) {
        // One replica migrates; the others wait on the lock, then see it done.
        TRY(conn.exec("SELECT pg_advisory_lock(7234151)"));
        auto result = migrate_locked(conn);
        (void)conn.exec("SELECT pg_advisory_unlock(7234151)");
        return result;
    }

    static Result<void> migrate_locked(Connection& conn) {
        TRY(conn.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
        auto q = conn.query("SELECT coalesce(max(version), 0) FROM schema_version");
        TRY(q.step());
        auto version = static_cast<size_t>(q.i64(0));
        return detail::apply_migrations(conn, version, k_postgres_migrations, k_begin,
                                        "INSERT INTO schema_version VALUES ({})");
    }
};

}  // namespace

std::string redact_url(std::string_view url) {
    std::string out(url);
    auto scheme = out.find("://");
    auto at = out.find('@', scheme == std::string::npos ? 0 : scheme + 3);
    if (scheme != std::string::npos && at != std::string::npos) {
        auto colon = out.find(':', scheme + 3);
        if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
    for (auto p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
        auto end = out.find_first_of("& ", p);
        out.replace(p + 9, (end == std::string::npos ? out.size() : end) - p - 9, "***");
    }
    return out;
}

Result<std::unique_ptr<MetadataStore>> open_postgres_store(std::string_view url) {
    auto store = std::make_unique<detail::SqlStore<PostgresBackend>>(std::string(url));
    TRY(store->open());
    return std::unique_ptr<MetadataStore>(std::move(store));
}

}  // namespace larder::db
