// Runs a pull-style consumer (a function reading a Source, such as the NAR
// parser) on its own thread, fed by push-style writes to this Sink. Memory is
// bounded by the queue; writes block while it is full. If the consumer fails,
// the next write returns its error, so a producer stops early.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "util/io.hpp"

namespace larder {

class ConsumerThread : public Sink {
public:
    using Consumer = std::function<Result<void>(Source&)>;

    explicit ConsumerThread(Consumer consumer, size_t max_queued_bytes = 4 << 20);
    ~ConsumerThread() override;
    ConsumerThread(const ConsumerThread&) = delete;
    ConsumerThread& operator=(const ConsumerThread&) = delete;

    Result<void> write(std::string_view data) override;
    // Signals the end of input and returns the consumer's result.
    Result<void> finish() override;
    // Ends the input with an error: the consumer's next read fails with it
    // instead of seeing a (truncated) end of stream. Destroying the pipe
    // before finish() aborts it too.
    void abort(Error error);

private:
    class Reader;
    void close(std::optional<Error> error);

    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::deque<std::string> m_queue;
    std::vector<std::string> m_spare;  // emptied buffers, reused by write()
    size_t m_spare_bytes = 0;          // their capacity
    size_t m_queued = 0;
    size_t m_max;
    bool m_closed = false;
    std::optional<Error> m_abort;
    bool m_done = false;
    std::optional<Result<void>> m_result;
    std::thread m_thread;
};

}  // namespace larder
