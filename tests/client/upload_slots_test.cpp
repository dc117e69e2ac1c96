// How many uploads `larder push` runs at once: `jobs` large NARs, and small
// ones besides them up to 4x `jobs` in all.
#include <gtest/gtest.h>

#include "client/push.hpp"

using larder::client::UploadSlots;

namespace {

constexpr uint64_t k_small = 136, k_large = UploadSlots::k_small_nar;

TEST(UploadSlots, SmallNarsRunBesidesTheLargeOnes) {
    UploadSlots slots(2);
    EXPECT_EQ(slots.all(), 8u);
    slots.started(k_large);
    slots.started(k_large);
    EXPECT_FALSE(slots.may_start(k_large)) << "a third large NAR with -j 2";
    for (int i = 0; i < 6; ++i) {
        ASSERT_TRUE(slots.may_start(k_small)) << "small NAR " << i << " waits behind two large ones";
        slots.started(k_small);
    }
    EXPECT_FALSE(slots.may_start(k_small)) << "more than 4x -j uploads";
    slots.ended(k_small);
    EXPECT_TRUE(slots.may_start(k_small));
    EXPECT_FALSE(slots.may_start(k_large));
    slots.ended(k_large);
    EXPECT_TRUE(slots.may_start(k_large));
}

TEST(UploadSlots, LargeNarsTakeAnyFreeSlotUpToJobs) {
    UploadSlots slots(1);
    for (int i = 0; i < 3; ++i) slots.started(k_small);
    EXPECT_TRUE(slots.may_start(k_large - 1)) << "just under 1 MiB is small";
    EXPECT_TRUE(slots.may_start(k_large));
    slots.started(k_large);
    EXPECT_FALSE(slots.may_start(k_small)) << "4 uploads with -j 1";
    EXPECT_EQ(UploadSlots(0).all(), 4u) << "-j 0 means one large upload at a time";
}

}  // namespace
