// Recreates a tree from a NAR. Names were validated by the parser, and every
// file is created exclusively, so a NAR cannot write outside the target.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/core.h>

#include "nar/nar.hpp"
#include "util/file.hpp"

namespace larder::nar {

namespace {

namespace fs = std::filesystem;

bool all_zero(std::string_view data) {
    return !data.empty() && data.front() == 0 &&
           std::memcmp(data.data(), data.data() + 1, data.size() - 1) == 0;
}

class Restorer : public Visitor {
public:
    explicit Restorer(fs::path root) : m_root(std::move(root)) {}

    Result<void> directory_begin(std::string_view path) override {
        auto p = full(path);
        if (::mkdir(p.c_str(), 0777) != 0) return io_error("cannot create directory", p);
        return ok();
    }

    Result<void> regular_begin(std::string_view path, bool executable, uint64_t size,
                               uint64_t) override {
        m_path = full(path);
        m_file = UniqueFd(::open(m_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                 executable ? 0777 : 0666));
        if (!m_file) return io_error("cannot create", m_path);
        m_size = size;
        m_offset = 0;
        return ok();
    }

    Result<void> regular_data(std::string_view data) override {
        // Runs of zeros become holes, so sparse files stay sparse.
        if (data.size() >= 4096 && all_zero(data)) {
            m_offset += data.size();
            return ok();
        }
        while (!data.empty()) {
            ssize_t n = ::pwrite(m_file.get(), data.data(), data.size(), static_cast<off_t>(m_offset));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return io_error("cannot write", m_path);
            data.remove_prefix(static_cast<size_t>(n));
            m_offset += static_cast<uint64_t>(n);
        }
        return ok();
    }

    Result<void> regular_end() override {
        if (::ftruncate(m_file.get(), static_cast<off_t>(m_size)) != 0)
            return io_error("cannot set the size of", m_path);
        m_file = UniqueFd();
        return ok();
    }

    Result<void> symlink(std::string_view path, std::string_view target) override {
        auto p = full(path);
        if (::symlink(std::string(target).c_str(), p.c_str()) != 0)
            return io_error("cannot create symlink", p);
        return ok();
    }

private:
    fs::path full(std::string_view path) const { return path.empty() ? m_root : m_root / path; }

    static Failure io_error(std::string_view what, const fs::path& path) {
        auto code = errno == EEXIST ? ErrorCode::conflict : ErrorCode::unavailable;
        return fail(code, errno_message(what, path));
    }

    fs::path m_root;
    fs::path m_path;
    UniqueFd m_file;
    uint64_t m_size = 0;
    uint64_t m_offset = 0;
};

}  // namespace

std::unique_ptr<Visitor> make_restorer(std::filesystem::path target) {
    return std::make_unique<Restorer>(std::move(target));
}

}  // namespace larder::nar
