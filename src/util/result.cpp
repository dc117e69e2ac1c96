#include "util/result.hpp"

namespace larder {

const char* to_string(ErrorCode code) {
    switch (code) {
        case ErrorCode::not_found: return "not_found";
        case ErrorCode::invalid_input: return "invalid_input";
        case ErrorCode::conflict: return "conflict";
        case ErrorCode::unauthorized: return "unauthorized";
        case ErrorCode::forbidden: return "forbidden";
        case ErrorCode::unavailable: return "unavailable";
        case ErrorCode::timeout: return "timeout";
        case ErrorCode::too_large: return "too_large";
        case ErrorCode::request_timeout: return "request_timeout";
        case ErrorCode::corrupt: return "corrupt";
        case ErrorCode::internal: return "internal";
    }
    return "internal";
}

}  // namespace larder
