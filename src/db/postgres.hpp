// A libpq connection with the same small API as sqlite::Connection (query
// with '?' placeholders, bind, step, columns), so that the metadata store's
// SQL logic is written once (sql_store.hpp) for both backends.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/result.hpp"

struct pg_conn;
struct pg_result;

namespace larder::db::pg {

class Connection;

class Query {
public:
    Query(Connection& conn, const std::string& sql) : m_conn(conn), m_sql(sql) {}
    ~Query();
    Query(const Query&) = delete;

    void reset();
    Query& bind(int64_t v);
    Query& bind(std::string_view v);
    Query& bind_blob(std::string_view v);
    Query& bind(std::optional<int64_t> v);

    // Runs the statement on the first call; true while there is a row.
    Result<bool> step();
    Result<void> run() {
        TRY(step());
        return ok();
    }

    int64_t i64(int col) const;
    bool is_null(int col) const;
    std::string text(int col) const;

private:
    Connection& m_conn;
    const std::string& m_sql;  // with $n placeholders
    std::vector<std::optional<std::string>> m_params;
    std::vector<int> m_binary;
    pg_result* m_result = nullptr;
    int m_row = -1;
};

class Connection {
public:
    explicit Connection(pg_conn* conn) : m_conn(conn) {}
    ~Connection();

    // '?' placeholders become $1, $2, ...; the rewrite is cached per literal.
    Query query(const char* sql);
    Result<void> exec(const char* sql);
    pg_conn* raw() { return m_conn; }
    // False once the server went away: the pool drops such a connection.
    bool healthy() const;
    Failure error(std::string_view what, pg_result* result) const;

private:
    pg_conn* m_conn;
    std::unordered_map<const char*, std::string> m_sql;
};

// Opens a connection from a libpq URL ("postgresql://user@host:port/db").
// Unless the URL sets them, a server that does not answer fails the
// connection after k_connect_timeout seconds, and one that stops answering
// fails its queries within about a minute (TCP keepalives and
// tcp_user_timeout), instead of holding a worker for the hours TCP takes.
Result<std::unique_ptr<Connection>> open(const std::string& url);
constexpr int k_connect_timeout = 10;

}  // namespace larder::db::pg
