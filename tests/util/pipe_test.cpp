#include "util/pipe.hpp"

#include <gtest/gtest.h>

using namespace larder;

namespace {

Result<void> read_all(Source& source, std::string& out) {
    char buf[7];
    for (;;) {
        TRY_ASSIGN(size_t n, source.read(buf, sizeof buf));
        if (n == 0) return ok();
        out.append(buf, n);
    }
}

}  // namespace

TEST(ConsumerThread, DeliversEverythingInOrder) {
    std::string got;
    ConsumerThread pipe([&](Source& s) { return read_all(s, got); }, 16);
    std::string sent;
    for (int i = 0; i < 1000; ++i) {
        auto piece = std::to_string(i) + ",";
        sent += piece;
        ASSERT_TRUE(pipe.write(piece));
    }
    ASSERT_TRUE(pipe.finish());
    EXPECT_EQ(got, sent);
}

TEST(ConsumerThread, AbortIsAnErrorNotAnEnd) {
    std::string got;
    ConsumerThread pipe([&](Source& s) { return read_all(s, got); });
    ASSERT_TRUE(pipe.write("partial"));
    pipe.abort(Error{ErrorCode::corrupt, "the producer failed"});
    auto r = pipe.finish();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "the producer failed");
}

TEST(ConsumerThread, ConsumerFailureStopsTheProducer) {
    ConsumerThread pipe([](Source&) -> Result<void> { return fail(ErrorCode::invalid_input, "refused"); }, 4);
    Result<void> w = ok();
    for (int i = 0; i < 100 && w; ++i) w = pipe.write("12345678");
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().message, "refused");
    EXPECT_EQ(pipe.finish().error().message, "refused");
}
