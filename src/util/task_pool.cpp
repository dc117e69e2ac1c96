#include "util/task_pool.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>

namespace larder {

bool lower_thread_priority() {
    sched_param param{};
    return ::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &param) == 0;
}

TaskPool::TaskPool(unsigned threads, bool idle) {
    for (unsigned i = 0; i < std::max(1u, threads); ++i)
        m_threads.emplace_back([this, idle] {
            if (idle) lower_thread_priority();
            work();
        });
}

TaskPool::~TaskPool() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_ready.notify_all();
    for (auto& t : m_threads) t.join();
}

size_t TaskPool::queued() {
    std::lock_guard lock(m_mutex);
    return m_jobs.size();
}

void TaskPool::post(std::function<void()> job) {
    {
        std::lock_guard lock(m_mutex);
        m_jobs.push_back(std::move(job));
    }
    m_ready.notify_one();
}

void TaskPool::work() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(m_mutex);
            m_ready.wait(lock, [this] { return m_stopping || !m_jobs.empty(); });
            if (m_jobs.empty()) return;  // stopping, and nothing left to run
            job = std::move(m_jobs.front());
            m_jobs.pop_front();
        }
        job();
    }
}

}  // namespace larder
