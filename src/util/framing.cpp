#include "util/framing.hpp"

#include <algorithm>

#include <fmt/core.h>

namespace larder {

std::string length_prefixed(std::string_view field) { return fmt::format("{}\n{}", field.size(), field); }

Result<std::vector<std::string_view>> split_length_prefixed(std::string_view text) {
    std::vector<std::string_view> fields;
    while (!text.empty()) {
        auto newline = text.find('\n');
        if (newline == std::string_view::npos || newline == 0 || newline > 12)
            return fail(ErrorCode::invalid_input, "malformed length-prefixed field");
        uint64_t n = 0;
        for (char c : text.substr(0, newline)) {
            if (c < '0' || c > '9') return fail(ErrorCode::invalid_input, "malformed length-prefixed field");
            n = n * 10 + static_cast<uint64_t>(c - '0');
        }
        text.remove_prefix(newline + 1);
        if (n > text.size()) return fail(ErrorCode::invalid_input, "a length-prefixed field is cut short");
        fields.push_back(text.substr(0, n));
        text.remove_prefix(n);
    }
    return fields;
}

Result<std::string_view> PrefixReader::feed(std::string_view data) {
    while (!done() && !data.empty()) {
        if (m_reading_length) {
            char c = data.front();
            data.remove_prefix(1);
            if (c != '\n') {
                if (c < '0' || c > '9' || m_length.size() >= 12)
                    return fail(ErrorCode::invalid_input,
                                "malformed push body: it must start with the narinfo's length in decimal and a newline");
                m_length += c;
                continue;
            }
            if (m_length.empty()) return fail(ErrorCode::invalid_input, "malformed push body: empty field length");
            m_want = std::stoull(m_length);
            if (m_want > m_max)
                return fail(ErrorCode::too_large, fmt::format("a field of the push body is {} bytes, over the limit "
                                                              "of {} bytes",
                                                              m_want, m_max));
            m_length.clear();
            m_field.clear();
            m_field.reserve(m_want);
            m_reading_length = false;
        }
        size_t take = std::min(data.size(), m_want - m_field.size());
        m_field.append(data.substr(0, take));
        data.remove_prefix(take);
        if (m_field.size() == m_want) {
            m_fields.push_back(std::move(m_field));
            m_field.clear();
            m_reading_length = true;
        }
    }
    return data;
}

}  // namespace larder
