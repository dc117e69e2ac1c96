// Length-prefixed fields ahead of a byte stream ("<decimal length>\n<bytes>"),
// as `larder push` sends a path's narinfo ahead of its NAR in one body.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace larder {

std::string length_prefixed(std::string_view field);
// The fields of a whole string of length-prefixed fields.
Result<std::vector<std::string_view>> split_length_prefixed(std::string_view text);

// Reads `count` length-prefixed fields from the front of a stream that
// arrives in pieces, each field at most `max_field` bytes.
class PrefixReader {
public:
    PrefixReader(size_t count, size_t max_field) : m_count(count), m_max(max_field) {}

    // Takes what belongs to the fields from `data` and returns the rest
    // (empty until the last field is complete). A malformed or oversized
    // length is invalid_input / too_large.
    Result<std::string_view> feed(std::string_view data);
    bool done() const { return m_fields.size() == m_count; }
    const std::vector<std::string>& fields() const { return m_fields; }

private:
    size_t m_count;
    size_t m_max;
    std::vector<std::string> m_fields;
    std::string m_length;  // digits of the current field's length
    bool m_reading_length = true;
    size_t m_want = 0;
    std::string m_field;
};

}  // namespace larder
