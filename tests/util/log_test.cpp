// JSON logs: message text escaped so that every line stays one JSON object.
#include "util/log.hpp"

#include <gtest/gtest.h>

TEST(JsonEscape, QuotesControlCharactersAndInvalidUtf8) {
    EXPECT_EQ(larder::json_escape("plain \xc3\xa4 \xe2\x82\xac"), "plain \xc3\xa4 \xe2\x82\xac");
    EXPECT_EQ(larder::json_escape("a\"b\\c"), "a\\\"b\\\\c");
    EXPECT_EQ(larder::json_escape(std::string("x\ny\x01\x7f", 5)), "x\\u000ay\\u0001\\u007f");
    EXPECT_EQ(larder::json_escape("\xff\xc3"), "\\u00ff\\u00c3") << "bytes that are not UTF-8";
    EXPECT_EQ(larder::json_escape("\xe2\x82"), "\\u00e2\\u0082") << "a truncated sequence";
}
