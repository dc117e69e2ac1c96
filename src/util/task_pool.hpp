// A fixed set of threads running submitted tasks in order of submission, for
// blocking work (S3 requests, compression) that must not run on I/O threads.
// The queue is unbounded: callers bound what they submit (a window per
// stream or upload). The destructor runs what is queued, then joins.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace larder {

// Puts the calling thread at idle priority (SCHED_IDLE); false if refused.
bool lower_thread_priority();

class TaskPool {
public:
    // `idle`: the threads run at idle priority (SCHED_IDLE), only on CPU
    // time nothing else wants (background work such as deferred ingest).
    explicit TaskPool(unsigned threads, bool idle = false);
    ~TaskPool();
    TaskPool(const TaskPool&) = delete;
    TaskPool& operator=(const TaskPool&) = delete;

    template <class F>
    auto submit(F&& f) -> std::future<std::invoke_result_t<F>> {
        auto task = std::make_shared<std::packaged_task<std::invoke_result_t<F>()>>(std::forward<F>(f));
        auto future = task->get_future();
        post([task] { (*task)(); });
        return future;
    }

    unsigned size() const { return static_cast<unsigned>(m_threads.size()); }
    // Tasks waiting for a thread, for metrics and tests.
    size_t queued();

private:
    void post(std::function<void()> job);
    void work();

    std::mutex m_mutex;
    std::condition_variable m_ready;
    std::deque<std::function<void()>> m_jobs;
    bool m_stopping = false;
    std::vector<std::thread> m_threads;
};

}  // namespace larder
