#include "http/message.hpp"

#include <fmt/core.h>

namespace larder::http {

Response text_response(unsigned status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

Response json_response(unsigned status, std::string body) {
    Response r;
    r.status = status;
    r.content_type = "application/json";
    r.body = std::move(body);
    return r;
}

unsigned status_of(ErrorCode code) {
    switch (code) {
        case ErrorCode::not_found: return 404;
        case ErrorCode::invalid_input: return 400;
        case ErrorCode::conflict: return 409;
        case ErrorCode::unauthorized: return 401;
        case ErrorCode::forbidden: return 403;
        case ErrorCode::unavailable: return 503;
        case ErrorCode::timeout: return 504;
        case ErrorCode::too_large: return 413;
        case ErrorCode::request_timeout: return 408;
        case ErrorCode::corrupt: return 500;
        case ErrorCode::internal: return 500;
    }
    return 500;
}

std::string server_error_text(unsigned status, std::string_view request_id) {
    std::string_view what = status == 503 ? "the server's storage or database is unavailable; try again later"
                            : status == 504 ? "the server's storage or database did not answer in time; try again"
                                            : "internal server error";
    return fmt::format("{} (request id {}; the server's log has the details)\n", what, request_id);
}

Response error_response(const Error& error) {
    auto status = status_of(error.code);
    if (status >= 500) {
        auto r = text_response(status, "");
        r.error_detail = fmt::format("{}: {}", to_string(error.code), error.message);
        return r;
    }
    auto r = text_response(status, error.message + "\n");
    if (error.code == ErrorCode::unauthorized)
        r.headers.emplace_back("WWW-Authenticate", R"(Basic realm="larder", charset="UTF-8")");
    return r;
}

}  // namespace larder::http
