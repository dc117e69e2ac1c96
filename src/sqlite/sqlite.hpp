// A thin SQLite wrapper: a connection with cached prepared statements, and
// queries that bind and step with Result errors. Used by the metadata store
// and by the client, which reads Nix's own database.
#pragma once

#include <sqlite3.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace larder::sqlite {

class Connection;

// A prepared statement, reset when the Query goes out of scope.
class Query {
public:
    Query(Connection& conn, sqlite3_stmt* stmt) : m_conn(conn), m_stmt(stmt) {}
    ~Query() {
        sqlite3_reset(m_stmt);
        sqlite3_clear_bindings(m_stmt);
    }
    Query(const Query&) = delete;

    // Makes the statement ready to bind and run again.
    void reset() {
        sqlite3_reset(m_stmt);
        sqlite3_clear_bindings(m_stmt);
        m_index = 0;
    }

    Query& bind(int64_t v) {
        sqlite3_bind_int64(m_stmt, ++m_index, v);
        return *this;
    }
    Query& bind(std::string_view v) {
        sqlite3_bind_text(m_stmt, ++m_index, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Query& bind_blob(std::string_view v) {
        sqlite3_bind_blob(m_stmt, ++m_index, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Query& bind(std::optional<int64_t> v) {
        if (v) return bind(*v);
        sqlite3_bind_null(m_stmt, ++m_index);
        return *this;
    }

    // True while there is a row; errors become Result failures.
    Result<bool> step();
    Result<void> run() {
        TRY_ASSIGN(bool row, step());
        (void)row;
        return ok();
    }

    int64_t i64(int col) const { return sqlite3_column_int64(m_stmt, col); }
    bool is_null(int col) const { return sqlite3_column_type(m_stmt, col) == SQLITE_NULL; }
    std::string text(int col) const {
        auto p = reinterpret_cast<const char*>(sqlite3_column_blob(m_stmt, col));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(m_stmt, col))) : std::string();
    }

private:
    Connection& m_conn;
    sqlite3_stmt* m_stmt;
    int m_index = 0;
};

class Connection {
public:
    explicit Connection(sqlite3* db) : m_db(db) {}
    ~Connection() {
        for (auto& [sql, stmt] : m_statements) sqlite3_finalize(stmt);
        sqlite3_close(m_db);
    }

    // SQL is ours, so a statement that does not prepare is a bug: it throws.
    Query query(const char* sql) {
        auto it = m_statements.find(sql);
        if (it == m_statements.end()) {
            sqlite3_stmt* stmt = nullptr;
            if (sqlite3_prepare_v2(m_db, sql, -1, &stmt, nullptr) != SQLITE_OK)
                throw_prepare_error(sql);
            it = m_statements.emplace(sql, stmt).first;
        }
        return Query(*this, it->second);
    }

    Result<void> exec(const char* sql) {
        char* msg = nullptr;
        if (sqlite3_exec(m_db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
            std::string text = msg ? msg : "unknown error";
            sqlite3_free(msg);
            return fail(ErrorCode::unavailable, "database error: " + text);
        }
        return ok();
    }

    Failure error(std::string_view what) const {
        int code = sqlite3_errcode(m_db);
        auto ec = code == SQLITE_BUSY || code == SQLITE_LOCKED ? ErrorCode::unavailable
                  : code == SQLITE_CONSTRAINT                  ? ErrorCode::conflict
                                                               : ErrorCode::internal;
        return fail(ec, std::string("database error (") + std::string(what) + "): " + sqlite3_errmsg(m_db));
    }

    int64_t last_insert_id() const { return sqlite3_last_insert_rowid(m_db); }
    bool healthy() const { return true; }
    int changes() const { return sqlite3_changes(m_db); }

private:
    [[noreturn]] void throw_prepare_error(const char* sql) const;

    sqlite3* m_db;
    std::map<const char*, sqlite3_stmt*> m_statements;  // keyed by the literal's address
};

inline Result<bool> Query::step() {
    int rc = sqlite3_step(m_stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return m_conn.error("step");
}


// Opens `path` with `flags` (plus NOMUTEX: a connection is used by one
// thread at a time) and a 10 s busy timeout.
Result<std::unique_ptr<Connection>> open(const std::string& path, int flags);

}  // namespace larder::sqlite
