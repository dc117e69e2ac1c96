#include "util/log.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/core.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

namespace larder {

namespace {

// stderr through a 64 KiB buffer: a request line costs a format and a copy,
// not a write() (nor, as with spdlog's async logger, a thread wake-up).
// Flushed when full, at every warning or error, and every 50 ms.
class BufferedStderrSink : public spdlog::sinks::base_sink<std::mutex> {
public:
    ~BufferedStderrSink() override { flush_(); }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t formatted;
        formatter_->format(msg, formatted);
        m_buffer.append(formatted.data(), formatted.size());
        if (m_buffer.size() >= k_capacity) flush_();
    }

    void flush_() override {
        size_t done = 0;
        while (done < m_buffer.size()) {
            ssize_t n = ::write(STDERR_FILENO, m_buffer.data() + done, m_buffer.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;  // nowhere to log to: drop rather than block the server
            done += static_cast<size_t>(n);
        }
        m_buffer.clear();
    }

private:
    static constexpr size_t k_capacity = 64 * 1024;
    std::string m_buffer;
};

// Writes what the buffer holds every 50 ms, so a quiet server's lines still
// appear at once.
class Flusher {
public:
    void start(std::shared_ptr<spdlog::logger> logger) {
        stop();
        m_stop = false;
        m_thread = std::thread([this, logger] {
            std::unique_lock lock(m_mutex);
            while (!m_wake.wait_for(lock, std::chrono::milliseconds(50), [this] { return m_stop; })) logger->flush();
        });
    }
    void stop() {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_wake.notify_all();
        if (m_thread.joinable()) m_thread.join();
    }
    ~Flusher() { stop(); }

private:
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_stop = false;
    std::thread m_thread;
};

Flusher g_flusher;

}  // namespace

Result<void> setup_logging(std::string_view level) {
    auto lvl = spdlog::level::from_str(std::string(level));
    if (lvl == spdlog::level::off && level != "off")
        return fail(ErrorCode::invalid_input, fmt::format("unknown log level '{}'", level));
    auto logger = std::make_shared<spdlog::logger>("larder", std::make_shared<BufferedStderrSink>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
    logger->set_level(lvl);
    logger->flush_on(spdlog::level::warn);
    spdlog::set_default_logger(logger);
    g_flusher.start(logger);
    return ok();
}

void stop_logging() {
    g_flusher.stop();
    if (auto logger = spdlog::default_logger()) logger->flush();
    spdlog::shutdown();
}

}  // namespace larder
