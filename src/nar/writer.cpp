// Serialises a file system tree as a NAR, streaming file contents.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/core.h>

#include "nar/nar.hpp"
#include "nar/wire.hpp"
#include "util/file.hpp"

namespace larder::nar {

namespace {

namespace fs = std::filesystem;

constexpr size_t k_io_buffer = 256 * 1024;

Failure io_error(std::string_view what, const fs::path& path) {
    return fail(ErrorCode::unavailable, errno_message(what, path));
}

class Dumper {
public:
    explicit Dumper(Sink& sink) : m_sink(sink), m_buf(k_io_buffer) {}

    Result<void> run(const fs::path& root) {
        wire::append_str(m_header, wire::k_magic);
        // The root is looked up by its path; everything below it relative to
        // its directory's fd, which spares the kernel full path walks.
        TRY(node(AT_FDCWD, root.c_str(), root));
        return flush_header();
    }

private:
    Result<void> flush_header() {
        if (m_header.empty()) return ok();
        TRY(m_sink.write(m_header));
        m_header.clear();
        return ok();
    }

    // `name` is relative to `dir_fd`; `path` is used only in messages.
    Result<void> node(int dir_fd, const char* name, const fs::path& path) {
        struct stat st {};
        if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return io_error("cannot stat", path);
        wire::append_str(m_header, "(");
        wire::append_str(m_header, "type");
        if (S_ISREG(st.st_mode)) {
            wire::append_str(m_header, "regular");
            if (st.st_mode & S_IXUSR) {
                wire::append_str(m_header, "executable");
                wire::append_str(m_header, "");
            }
            wire::append_str(m_header, "contents");
            UniqueFd fd(::openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            if (!fd) return io_error("cannot open", path);
            TRY(contents(fd.get(), path, st));
        } else if (S_ISLNK(st.st_mode)) {
            wire::append_str(m_header, "symlink");
            wire::append_str(m_header, "target");
            TRY_ASSIGN(auto target, read_link(dir_fd, name, path, st));
            wire::append_str(m_header, target);
        } else if (S_ISDIR(st.st_mode)) {
            wire::append_str(m_header, "directory");
            UniqueFd fd(::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!fd) return io_error("cannot open directory", path);
            TRY_ASSIGN(auto names, list_directory(fd.get(), path));
            for (const auto& entry : names) {
                wire::append_str(m_header, "entry");
                wire::append_str(m_header, "(");
                wire::append_str(m_header, "name");
                wire::append_str(m_header, entry);
                wire::append_str(m_header, "node");
                TRY(node(fd.get(), entry.c_str(), path / entry));
                wire::append_str(m_header, ")");
            }
        } else {
            return fail(ErrorCode::invalid_input,
                        fmt::format("'{}' is not a regular file, directory or symlink, which a "
                                    "NAR cannot hold",
                                    path.string()));
        }
        wire::append_str(m_header, ")");
        if (m_header.size() >= k_io_buffer) TRY(flush_header());
        return ok();
    }

    Result<std::string> read_link(int dir_fd, const char* name, const fs::path& path,
                                  const struct stat& st) {
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t n = ::readlinkat(dir_fd, name, target.data(), target.size());
        if (n < 0) return io_error("cannot read symlink", path);
        if (static_cast<size_t>(n) >= target.size())
            return fail(ErrorCode::conflict, fmt::format("symlink '{}' changed while it was read",
                                                         path.string()));
        target.resize(static_cast<size_t>(n));
        return target;
    }

    Result<std::vector<std::string>> list_directory(int fd, const fs::path& path) {
        // fdopendir takes ownership of the fd it is given.
        DIR* dir = ::fdopendir(::dup(fd));
        if (!dir) return io_error("cannot open directory", path);
        std::vector<std::string> names;
        errno = 0;
        while (struct dirent* e = ::readdir(dir)) {
            std::string_view name = e->d_name;
            if (name != "." && name != "..") names.emplace_back(name);
        }
        int err = errno;
        ::closedir(dir);
        if (err != 0) {
            errno = err;
            return io_error("cannot read directory", path);
        }
        std::sort(names.begin(), names.end());  // bytewise, as NARs require
        return names;
    }

    // Writes the size and contents; ranges that are holes in a sparse file are
    // written as zeros without being read.
    Result<void> contents(int fd, const fs::path& path, const struct stat& st) {
        auto size = static_cast<uint64_t>(st.st_size);
        wire::append_u64(m_header, size);
        TRY(flush_header());
        bool sparse = static_cast<uint64_t>(st.st_blocks) * 512 < size;
        uint64_t pos = 0;
        while (pos < size) {
            uint64_t data_end = size;
            if (sparse) {
                off_t data = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
                uint64_t data_start = data < 0 ? size : std::min<uint64_t>(data, size);
                TRY(zeros(data_start - pos));
                pos = data_start;
                if (pos == size) break;
                off_t hole = ::lseek(fd, static_cast<off_t>(pos), SEEK_HOLE);
                data_end = hole < 0 ? size : std::min<uint64_t>(hole, size);
            }
            TRY(copy_range(fd, path, pos, data_end));
            pos = data_end;
        }
        char pad[8] = {};
        return m_sink.write(std::string_view(pad, wire::padding(size)));
    }

    Result<void> copy_range(int fd, const fs::path& path, uint64_t from, uint64_t to) {
        while (from < to) {
            size_t want = static_cast<size_t>(std::min<uint64_t>(m_buf.size(), to - from));
            ssize_t n = ::pread(fd, m_buf.data(), want, static_cast<off_t>(from));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return io_error("cannot read", path);
            if (n == 0)
                return fail(ErrorCode::conflict,
                            fmt::format("'{}' shrank while it was read", path.string()));
            TRY(m_sink.write(std::string_view(m_buf.data(), static_cast<size_t>(n))));
            from += static_cast<uint64_t>(n);
        }
        return ok();
    }

    Result<void> zeros(uint64_t n) {
        static const std::vector<char> k_zeros(k_io_buffer, '\0');
        while (n > 0) {
            size_t take = static_cast<size_t>(std::min<uint64_t>(n, k_zeros.size()));
            TRY(m_sink.write(std::string_view(k_zeros.data(), take)));
            n -= take;
        }
        return ok();
    }

    Sink& m_sink;
    std::string m_header;  // structure bytes, batched into few sink writes
    std::vector<char> m_buf;
};

}  // namespace

Result<void> dump(const std::filesystem::path& path, Sink& sink) {
    return Dumper(sink).run(path);
}

}  // namespace larder::nar
