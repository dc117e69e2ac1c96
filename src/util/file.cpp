#include "util/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include <fmt/core.h>

#include "util/io.hpp"

namespace larder {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
        if (m_fd >= 0) ::close(m_fd);
        m_fd = std::exchange(o.m_fd, -1);
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (m_fd >= 0) ::close(m_fd);
}

std::string errno_message(std::string_view what, const std::filesystem::path& path) {
    return fmt::format("{} '{}': {}", what, path.string(), std::strerror(errno));
}

Result<std::string> read_file(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        auto code = errno == ENOENT ? ErrorCode::not_found : ErrorCode::unavailable;
        return fail(code, errno_message("cannot open", path));
    }
    FdSource source(fd.get());
    StringSink sink;
    TRY(copy(source, sink, 64 * 1024));
    return std::move(sink.data());
}

Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view contents,
                               mode_t mode, bool durable) {
    thread_local std::mt19937_64 random(std::random_device{}());
    auto tmp = path;
    tmp += fmt::format(".tmp-{:016x}", random());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd) return fail(ErrorCode::unavailable, errno_message("cannot create", tmp));
    // The umask may have narrowed the mode; set it exactly.
    bool written = ::fchmod(fd.get(), mode) == 0;
    if (written) {
        FdSink sink(fd.get(), 0);
        written = sink.write(contents).ok() && (!durable || ::fsync(fd.get()) == 0);
    }
    if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
        auto message = errno_message("cannot write", path);
        ::unlink(tmp.c_str());
        return fail(ErrorCode::unavailable, message);
    }
    return ok();
}

}  // namespace larder
