// Files: whole-file reads, and writes that land atomically (temp name, fsync,
// rename) with the mode asked for, so a secret is never readable by others even
// for a moment and a crash never leaves half a file.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace larder {

Result<std::string> read_file(const std::filesystem::path& path);

// Readers see the old file or all of the new one. `durable`: fsync before the
// rename; otherwise the caller makes it durable later (e.g. one syncfs).
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view contents,
                               mode_t mode = 0644, bool durable = true);

// An fd closed on destruction.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : m_fd(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();
    int get() const { return m_fd; }
    explicit operator bool() const { return m_fd >= 0; }

private:
    int m_fd = -1;
};

// "<what> '<path>': <strerror(errno)>", for errors from system calls.
std::string errno_message(std::string_view what, const std::filesystem::path& path);

}  // namespace larder
