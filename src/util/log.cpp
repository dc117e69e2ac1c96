#include "util/log.hpp"

#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <ctime>
#include <iterator>
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
bool g_json = false;

// Length of the valid UTF-8 sequence at `s` (0 if it is not one).
size_t utf8_length(std::string_view s) {
    auto c = static_cast<unsigned char>(s[0]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || n > s.size()) return 0;
    for (size_t i = 1; i < n; ++i)
        if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) return 0;
    return n;
}

// Set while log_event() logs: the message is a JSON object of fields.
thread_local bool t_event = false;

// {"time":"...","level":"...","msg":"..."}, or, for log_event(), the
// event's fields after time and level (spdlog formats on the calling thread).
class JsonFormatter : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        auto t = std::chrono::system_clock::to_time_t(msg.time);
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count() % 1000;
        std::tm tm{};
        ::gmtime_r(&t, &tm);
        auto level = spdlog::level::to_string_view(msg.level);
        fmt::format_to(std::back_inserter(dest), "{{\"time\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"level\":\"{}\",",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms,
                       std::string_view(level.data(), level.size()));
        std::string_view payload(msg.payload.data(), msg.payload.size());
        if (t_event && payload.size() > 2 && payload.starts_with("{\"") && payload.ends_with("}")) {
            dest.append(payload.data() + 1, payload.data() + payload.size());
        } else {
            auto escaped = json_escape(payload);
            fmt::format_to(std::back_inserter(dest), "\"msg\":\"{}\"}}", escaped);
        }
        dest.push_back('\n');
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

std::string json_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 8);
    while (!text.empty()) {
        auto c = static_cast<unsigned char>(text[0]);
        size_t n = utf8_length(text);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f || n == 0) {
            out += fmt::format("\\u{:04x}", c);
            n = 1;
        } else {
            out.append(text.substr(0, n));
        }
        text.remove_prefix(std::max<size_t>(n, 1));
    }
    return out;
}

bool logging_json() { return g_json; }

void log_event(spdlog::level::level_enum level, std::string_view fields) {
    t_event = true;
    spdlog::log(level, "{}", fields);
    t_event = false;
}

Result<void> setup_logging(std::string_view level, std::string_view format) {
    auto lvl = spdlog::level::from_str(std::string(level));
    if (lvl == spdlog::level::off && level != "off")
        return fail(ErrorCode::invalid_input, fmt::format("unknown log level '{}'", level));
    if (format != "text" && format != "json")
        return fail(ErrorCode::invalid_input, fmt::format("unknown log format '{}' (text or json)", format));
    g_json = format == "json";
    auto logger = std::make_shared<spdlog::logger>("larder", std::make_shared<BufferedStderrSink>());
    if (g_json) logger->set_formatter(std::make_unique<JsonFormatter>());
    else logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
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
