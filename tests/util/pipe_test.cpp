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

// Writes "0,1,2,...,999," in 1000 pieces and finishes; returns what was sent.
std::string write_numbers(ConsumerThread& pipe) {
    std::string sent;
    for (int i = 0; i < 1000; ++i) {
        auto piece = std::to_string(i) + ",";
        sent += piece;
        EXPECT_TRUE(pipe.write(piece));
    }
    EXPECT_TRUE(pipe.finish());
    return sent;
}

}  // namespace

TEST(ConsumerThread, DeliversEverythingInOrder) {
    std::string got;
    ConsumerThread pipe([&](Source& s) { return read_all(s, got); }, 16);
    auto sent = write_numbers(pipe);
    EXPECT_EQ(got, sent);
}

TEST(ConsumerThread, LendsItsQueuedBytesInOrder) {
    std::string got;
    size_t pieces = 0;
    ConsumerThread pipe(
        [&](Source& s) -> Result<void> {
            for (;;) {
                TRY_ASSIGN(auto lent, s.borrow(5));
                if (!lent) return fail(ErrorCode::internal, "the pipe lent nothing");
                if (lent->empty()) return ok();
                EXPECT_LE(lent->size(), 5u);
                got.append(*lent);
                ++pieces;
            }
        },
        64);
    auto sent = write_numbers(pipe);
    EXPECT_EQ(got, sent);
    EXPECT_GE(pieces, 1000u);
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
