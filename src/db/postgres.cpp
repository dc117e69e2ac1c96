#include "db/postgres.hpp"

#include <libpq-fe.h>

#include <cstring>
#include <string>

#include <fmt/core.h>

namespace larder::db::pg {

Query::~Query() { reset(); }

void Query::reset() {
    if (m_result) PQclear(m_result);
    m_result = nullptr;
    m_row = -1;
    m_params.clear();
    m_binary.clear();
}

Query& Query::bind(int64_t v) {
    m_params.emplace_back(std::to_string(v));
    m_binary.push_back(0);
    return *this;
}
Query& Query::bind(std::string_view v) {
    m_params.emplace_back(std::string(v));
    m_binary.push_back(0);
    return *this;
}
Query& Query::bind_blob(std::string_view v) {
    m_params.emplace_back(std::string(v));
    m_binary.push_back(1);
    return *this;
}
Query& Query::bind(std::optional<int64_t> v) {
    if (v) return bind(*v);
    m_params.emplace_back(std::nullopt);
    m_binary.push_back(0);
    return *this;
}

Result<bool> Query::step() {
    if (!m_result) {
        std::vector<const char*> values;
        std::vector<int> lengths;
        for (const auto& p : m_params) {
            values.push_back(p ? p->data() : nullptr);
            lengths.push_back(p ? static_cast<int>(p->size()) : 0);
        }
        // Results in binary for bytea columns would differ; ask for text and
        // decode bytea ourselves (escape format is never used: hex it is).
        m_result = PQexecParams(m_conn.raw(), m_sql.c_str(), static_cast<int>(values.size()), nullptr,
                                values.data(), lengths.data(), m_binary.data(), 0);
        auto status = PQresultStatus(m_result);
        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) return m_conn.error("query", m_result);
    }
    ++m_row;
    return m_row < PQntuples(m_result);
}

int64_t Query::i64(int col) const { return std::strtoll(PQgetvalue(m_result, m_row, col), nullptr, 10); }

bool Query::is_null(int col) const { return PQgetisnull(m_result, m_row, col) != 0; }

std::string Query::text(int col) const {
    const char* v = PQgetvalue(m_result, m_row, col);
    int len = PQgetlength(m_result, m_row, col);
    // bytea comes back as "\x" + hex.
    if (PQftype(m_result, col) == 17 && len >= 2 && v[0] == '\\' && v[1] == 'x') {
        std::string out;
        out.reserve(static_cast<size_t>(len - 2) / 2);
        auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
        for (int i = 2; i + 1 < len; i += 2) out += static_cast<char>(nibble(v[i]) << 4 | nibble(v[i + 1]));
        return out;
    }
    return std::string(v, static_cast<size_t>(len));
}

Connection::~Connection() { PQfinish(m_conn); }

bool Connection::healthy() const { return PQstatus(m_conn) == CONNECTION_OK; }

Query Connection::query(const char* sql) {
    auto it = m_sql.find(sql);
    if (it == m_sql.end()) {
        std::string out;
        int n = 0;
        for (const char* p = sql; *p; ++p) {
            if (*p == '?') out += fmt::format("${}", ++n);
            else out += *p;
        }
        it = m_sql.emplace(sql, std::move(out)).first;
    }
    return Query(*this, it->second);
}

Result<void> Connection::exec(const char* sql) {
    PGresult* r = PQexec(m_conn, sql);
    auto status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        auto e = error("exec", r);
        PQclear(r);
        return e;
    }
    PQclear(r);
    return ok();
}

Failure Connection::error(std::string_view what, pg_result* result) const {
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    std::string message = result ? PQresultErrorMessage(result) : PQerrorMessage(m_conn);
    if (message.empty()) message = PQerrorMessage(m_conn);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    auto is = [&](const char* prefix) { return state && std::strncmp(state, prefix, std::strlen(prefix)) == 0; };
    ErrorCode code = ErrorCode::internal;
    if (PQstatus(m_conn) != CONNECTION_OK) code = ErrorCode::unavailable;
    else if (is("23")) code = ErrorCode::conflict;
    // Worth trying again later: serialization failure, deadlock, a statement
    // or lock timeout the operator set (57014, 55P03), too many connections
    // or no room (class 53), the server shutting down (57P0x), a lost
    // connection (class 08).
    else if (is("40001") || is("40P01") || is("57014") || is("55P03") || is("53") || is("57P") || is("08"))
        code = ErrorCode::unavailable;
    return fail(code, fmt::format("database error ({}): {}", what, message));
}

Result<std::unique_ptr<Connection>> open(const std::string& url) {
    // Keywords are applied in order, so the URL (the last, expanded) wins.
    auto timeout = std::to_string(k_connect_timeout);
    const char* keys[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                          "keepalives_count", "tcp_user_timeout", "dbname", nullptr};
    const char* values[] = {timeout.c_str(), "1", "30", "10", "3", "60000", url.c_str(), nullptr};
    PGconn* raw = PQconnectdbParams(keys, values, 1);
    auto conn = std::make_unique<Connection>(raw);
    if (PQstatus(raw) != CONNECTION_OK) {
        std::string message = PQerrorMessage(raw);
        while (!message.empty() && message.back() == '\n') message.pop_back();
        // libpq's messages name host and user, never the password.
        return fail(ErrorCode::unavailable, fmt::format("cannot connect to PostgreSQL: {}", message));
    }
    TRY(conn->exec("SET client_min_messages = warning"));
    return conn;
}

}  // namespace larder::db::pg
