#include "sqlite/sqlite.hpp"

#include <stdexcept>

#include <fmt/core.h>

namespace larder::sqlite {

void Connection::throw_prepare_error(const char* sql) const {
    throw std::logic_error(fmt::format("SQL does not prepare: {}: {}", sqlite3_errmsg(m_db), sql));
}

Result<std::unique_ptr<Connection>> open(const std::string& path, int flags) {
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    auto conn = std::make_unique<Connection>(raw);
    if (rc != SQLITE_OK)
        return fail(ErrorCode::unavailable, fmt::format("cannot open database '{}': {}", path, sqlite3_errstr(rc)));
    sqlite3_busy_timeout(raw, 10000);
    return conn;
}

}  // namespace larder::sqlite
