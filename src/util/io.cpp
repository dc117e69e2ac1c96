#include "util/io.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/core.h>

namespace larder {

Result<void> read_exact(Source& source, char* buf, size_t len) {
    while (len > 0) {
        TRY_ASSIGN(size_t n, source.read(buf, len));
        if (n == 0) return fail(ErrorCode::corrupt, "unexpected end of input");
        buf += n;
        len -= n;
    }
    return ok();
}

Result<void> copy(Source& source, Sink& sink, size_t buffer_size) {
    std::vector<char> buf;
    for (;;) {
        TRY_ASSIGN(auto lent, source.borrow(buffer_size));
        if (lent) {
            if (lent->empty()) return ok();
            TRY(sink.write(*lent));
            continue;
        }
        if (buf.empty()) buf.resize(buffer_size);
        TRY_ASSIGN(size_t n, source.read(buf.data(), buf.size()));
        if (n == 0) return ok();
        TRY(sink.write(std::string_view(buf.data(), n)));
    }
}

Result<size_t> StringSource::read(char* buf, size_t len) {
    size_t n = std::min(len, m_data.size());
    std::memcpy(buf, m_data.data(), n);
    m_data.remove_prefix(n);
    return n;
}

Result<size_t> FdSource::read(char* buf, size_t len) {
    for (;;) {
        ssize_t n = ::read(m_fd, buf, len);
        if (n >= 0) return static_cast<size_t>(n);
        if (errno != EINTR)
            return fail(ErrorCode::unavailable, fmt::format("read failed: {}", std::strerror(errno)));
    }
}

Result<void> FdSink::write_all(std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(m_fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail(ErrorCode::unavailable, fmt::format("write failed: {}", std::strerror(errno)));
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return ok();
}

Result<void> FdSink::write(std::string_view data) {
    if (m_buffer.size() + data.size() > m_buffer.capacity()) {
        TRY(write_all(m_buffer));
        m_buffer.clear();
        if (data.size() >= m_buffer.capacity()) return write_all(data);
    }
    m_buffer.append(data);
    return ok();
}

Result<void> FdSink::finish() {
    TRY(write_all(m_buffer));
    m_buffer.clear();
    return ok();
}

}  // namespace larder
