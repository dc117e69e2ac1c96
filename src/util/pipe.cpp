#include "util/pipe.hpp"

#include <cstring>

namespace larder {

class ConsumerThread::Reader : public Source {
public:
    explicit Reader(ConsumerThread& owner) : m_owner(owner) {}

    Result<size_t> read(char* buf, size_t len) override {
        TRY_ASSIGN(auto lent, borrow(len));
        if (!lent->empty()) std::memcpy(buf, lent->data(), lent->size());  // (an empty view's data may be null)
        return lent->size();
    }

    // The queued buffers themselves: the NAR parser reads a whole upload
    // without copying it again.
    Result<std::optional<std::string_view>> borrow(size_t max) override {
        if (m_offset == m_current.size()) {
            std::unique_lock lock(m_owner.m_mutex);
            m_owner.m_changed.wait(lock, [&] { return !m_owner.m_queue.empty() || m_owner.m_closed; });
            if (m_owner.m_abort) return Failure{*m_owner.m_abort};
            if (m_owner.m_queue.empty()) return std::optional<std::string_view>(std::string_view());
            auto next = std::move(m_owner.m_queue.front());
            m_owner.m_queue.pop_front();
            m_owner.m_queued -= next.size();
            // Kept for the writer if the pipe then holds no more than its
            // queue could: reuse must not raise what an upload may hold.
            if (m_current.capacity() >= 4096 &&
                m_owner.m_queued + m_owner.m_spare_bytes + m_current.capacity() <= m_owner.m_max) {
                m_current.clear();
                m_owner.m_spare_bytes += m_current.capacity();
                m_owner.m_spare.push_back(std::move(m_current));
            }
            m_current = std::move(next);
            m_offset = 0;
            m_owner.m_changed.notify_all();
        }
        size_t n = std::min(max, m_current.size() - m_offset);
        std::string_view lent(m_current.data() + m_offset, n);
        m_offset += n;
        return std::optional<std::string_view>(lent);
    }

private:
    ConsumerThread& m_owner;
    std::string m_current;
    size_t m_offset = 0;
};

ConsumerThread::ConsumerThread(Consumer consumer, size_t max_queued_bytes) : m_max(max_queued_bytes) {
    m_thread = std::thread([this, consumer = std::move(consumer)] {
        Reader reader(*this);
        auto result = consumer(reader);
        std::lock_guard lock(m_mutex);
        m_result = std::move(result);
        m_done = true;
        m_queue.clear();
        m_spare.clear();
        m_spare_bytes = 0;
        m_queued = 0;
        m_changed.notify_all();
    });
}

ConsumerThread::~ConsumerThread() {
    close(Error{ErrorCode::internal, "the stream was abandoned before its end"});
    m_thread.join();
}

void ConsumerThread::close(std::optional<Error> error) {
    std::lock_guard lock(m_mutex);
    if (m_closed) return;
    m_closed = true;
    m_abort = std::move(error);
    m_changed.notify_all();
}

void ConsumerThread::abort(Error error) { close(std::move(error)); }

Result<void> ConsumerThread::write(std::string_view data) {
    if (data.empty()) return ok();
    std::unique_lock lock(m_mutex);
    m_changed.wait(lock, [&] { return m_done || m_queued < m_max; });
    if (m_done) {
        if (m_result && !*m_result) return Failure{m_result->error()};
        return fail(ErrorCode::invalid_input, "unexpected data after the end of the stream");
    }
    // A buffer the reader is done with, if there is one: a new one of a
    // MiB is a fresh mapping whose pages fault in and are zeroed again (perf:
    // 8 % of the server's CPU during a plain `nix copy`).
    if (!m_spare.empty()) {
        m_spare_bytes -= m_spare.back().capacity();
        m_queue.push_back(std::move(m_spare.back()));
        m_spare.pop_back();
        m_queue.back().assign(data);
    } else {
        m_queue.emplace_back(data);
    }
    m_queued += data.size();
    m_changed.notify_all();
    return ok();
}

Result<void> ConsumerThread::finish() {
    close(std::nullopt);
    std::unique_lock lock(m_mutex);
    m_changed.wait(lock, [&] { return m_done; });
    return *m_result;
}

}  // namespace larder
