// Result<T>: the value of an operation that can fail because of input, network
// or disk. Expected failures are values; exceptions are for the unrecoverable.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace larder {

enum class ErrorCode {
    not_found,
    invalid_input,
    conflict,
    unauthorized,
    forbidden,
    unavailable,
    timeout,          // a backend (database, S3) did not answer in time
    too_large,        // a body, field or count over its limit
    request_timeout,  // the client was too slow sending its request
    corrupt,
    internal,
};

const char* to_string(ErrorCode code);

struct Error {
    ErrorCode code;
    std::string message;
};

// Wraps an Error so that it converts into any Result<T>.
struct Failure {
    Error error;
};

inline Failure fail(ErrorCode code, std::string message) {
    return Failure{Error{code, std::move(message)}};
}

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : m_v(std::in_place_index<0>, std::move(value)) {}
    Result(Failure f) : m_v(std::in_place_index<1>, std::move(f.error)) {}

    bool ok() const { return m_v.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(m_v); }
    const T& value() const& { return std::get<0>(m_v); }
    T&& value() && { return std::get<0>(std::move(m_v)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& { return std::get<1>(m_v); }
    Error&& error() && { return std::get<1>(std::move(m_v)); }

private:
    std::variant<T, Error> m_v;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Failure f) : m_error(std::move(f.error)), m_ok(false) {}

    bool ok() const { return m_ok; }
    explicit operator bool() const { return m_ok; }
    const Error& error() const& { return m_error; }
    Error&& error() && { return std::move(m_error); }

private:
    Error m_error{ErrorCode::internal, {}};
    bool m_ok = true;
};

inline Result<void> ok() { return {}; }

}  // namespace larder

#define LARDER_CAT2(a, b) a##b
#define LARDER_CAT(a, b) LARDER_CAT2(a, b)

// TRY(expr): return the failure of a Result<...> expression.
#define TRY(expr)                                                             \
    do {                                                                      \
        auto&& larder_try_r = (expr);                                         \
        if (!larder_try_r) return ::larder::Failure{std::move(larder_try_r).error()}; \
    } while (0)

// TRY_ASSIGN(decl, expr): `decl = *expr`, or return its failure.
#define TRY_ASSIGN(decl, expr) TRY_ASSIGN_IMPL(LARDER_CAT(larder_try_, __LINE__), decl, expr)
#define TRY_ASSIGN_IMPL(tmp, decl, expr)                              \
    auto tmp = (expr);                                                \
    if (!tmp) return ::larder::Failure{std::move(tmp).error()};       \
    decl = std::move(tmp).value()
