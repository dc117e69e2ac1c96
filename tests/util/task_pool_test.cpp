#include "util/task_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

using namespace larder;

TEST(TaskPool, RunsTasksInParallelAndReturnsTheirResults) {
    TaskPool pool(4);
    std::atomic<int> running{0}, most{0};
    std::vector<std::future<int>> results;
    for (int i = 0; i < 16; ++i)
        results.push_back(pool.submit([&, i] {
            int now = ++running;
            for (int seen = most; now > seen && !most.compare_exchange_weak(seen, now);) {}
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            --running;
            return i * i;
        }));
    for (int i = 0; i < 16; ++i) EXPECT_EQ(results[i].get(), i * i);
    EXPECT_GT(most.load(), 1);
    EXPECT_LE(most.load(), 4);
}

TEST(TaskPool, DestructorRunsWhatIsQueued) {
    std::atomic<int> done{0};
    {
        TaskPool pool(1);
        for (int i = 0; i < 10; ++i) pool.submit([&] { ++done; });
    }
    EXPECT_EQ(done.load(), 10);
}
