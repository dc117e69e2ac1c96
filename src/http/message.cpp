#include "http/message.hpp"

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
        case ErrorCode::corrupt: return 500;
        case ErrorCode::internal: return 500;
    }
    return 500;
}

Response error_response(const Error& error) {
    auto r = text_response(status_of(error.code), error.message + "\n");
    if (error.code == ErrorCode::unauthorized)
        r.headers.emplace_back("WWW-Authenticate", R"(Basic realm="larder", charset="UTF-8")");
    return r;
}

}  // namespace larder::http
