// The local-disk BlobStore: DIR/<first two key chars>/<key>, written to a
// temporary name and renamed into place; sync() is one syncfs for all of them,
// shared by the uploads that ask for it at the same time (group commit).
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <fmt/core.h>

#include "blob/blob_store.hpp"
#include "util/file.hpp"

namespace larder::blob {

namespace {

namespace fs = std::filesystem;

using SharedFd = std::shared_ptr<const UniqueFd>;

// Blob files kept open for reading, the most recently opened ones: a NAR is
// served as hundreds of chunk files, and opening one walks its path and
// closing it drops it again (perf, 16 clients downloading one 271 MB NAR:
// open and close took 27 % of the server's CPU). A blob is never rewritten
// in place: put() replaces it by rename and remove() unlinks it, and both
// forget it here. Users share an entry: reads use pread and sendfile with
// explicit offsets.
class OpenFiles {
public:
    explicit OpenFiles(size_t capacity) : m_capacity(capacity) {}

    template <class Open>
    Result<SharedFd> get(std::string_view key, Open open) {
        {
            std::lock_guard lock(m_mutex);
            if (auto it = m_index.find(key); it != m_index.end()) {
                m_lru.splice(m_lru.begin(), m_lru, it->second);
                return it->second->fd;
            }
        }
        TRY_ASSIGN(UniqueFd opened, open());
        auto fd = std::make_shared<const UniqueFd>(std::move(opened));
        if (m_capacity == 0) return fd;
        std::lock_guard lock(m_mutex);
        if (auto it = m_index.find(key); it != m_index.end()) return it->second->fd;  // opened meanwhile too
        m_lru.push_front(Entry{std::string(key), fd});
        m_index.emplace(m_lru.front().key, m_lru.begin());
        if (m_lru.size() > m_capacity) {
            m_index.erase(m_lru.back().key);
            m_lru.pop_back();  // closed once its last reader is done
        }
        return fd;
    }

    void forget(std::string_view key) {
        std::lock_guard lock(m_mutex);
        auto it = m_index.find(key);
        if (it == m_index.end()) return;
        auto entry = it->second;
        m_index.erase(it);
        m_lru.erase(entry);
    }

    // A quarter of the process's file descriptor limit, at most 4096: the
    // rest is for connections, the database and writes.
    static size_t default_capacity() {
        struct rlimit limit {};
        if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 4096;
        return std::min<size_t>(4096, static_cast<size_t>(limit.rlim_cur) / 4);
    }

private:
    struct Entry {
        std::string key;
        SharedFd fd;
    };
    size_t m_capacity;
    std::mutex m_mutex;
    std::list<Entry> m_lru;  // most recently used first
    // Blob keys start with a hex SHA-256: their first 16 characters are
    // hash enough (hashing all ~80 was 3 % of the CPU serving a NAR).
    struct KeyHash {
        size_t operator()(std::string_view key) const { return std::hash<std::string_view>()(key.substr(0, 16)); }
    };
    std::unordered_map<std::string_view, std::list<Entry>::iterator, KeyHash> m_index;  // keys are the entries'
};

// Reads a byte range of an open file with pread. The file's path (for a
// message) is built only if a read fails: NARs open hundreds of these.
class RangeSource : public Source {
public:
    RangeSource(SharedFd fd, const fs::path& root, std::string relative, uint64_t offset, uint64_t length)
        : m_fd(std::move(fd)), m_root(root), m_relative(std::move(relative)), m_offset(offset), m_left(length) {}

    Result<size_t> read(char* buf, size_t len) override {
        if (m_left == 0) return size_t{0};
        size_t want = static_cast<size_t>(std::min<uint64_t>(len, m_left));
        for (;;) {
            ssize_t n = ::pread(m_fd->get(), buf, want, static_cast<off_t>(m_offset));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return fail(ErrorCode::corrupt, errno_message("short read from blob", m_root / m_relative));
            m_offset += static_cast<uint64_t>(n);
            m_left -= static_cast<uint64_t>(n);
            return static_cast<size_t>(n);
        }
    }

    Result<std::optional<FileRegion>> take_file_region(size_t max) override {
        auto n = static_cast<size_t>(std::min<uint64_t>(max, m_left));
        FileRegion region{m_fd->get(), m_offset, n};
        m_offset += n;
        m_left -= n;
        return std::optional<FileRegion>(region);
    }

private:
    SharedFd m_fd;
    const fs::path& m_root;  // the store's, which outlives its sources
    std::string m_relative;
    uint64_t m_offset;
    uint64_t m_left;
};

// Written under its own key at once: the key is unique to this write and
// no row names it before commit(), so nobody reads it half written, and a
// crash leaves an unnamed blob for garbage collection. commit() makes it
// durable itself (fdatasync, then the directory), costing one journal
// commit instead of a syncfs that would also wait for every other writer.
class LocalWriter : public BlobWriter {
public:
    LocalWriter(UniqueFd fd, fs::path path) : m_fd(std::move(fd)), m_sink(m_fd.get()), m_path(std::move(path)) {}
    ~LocalWriter() override {
        if (!m_committed) ::unlink(m_path.c_str());
    }

    Result<void> write(std::string_view data) override {
        auto r = m_sink.write(data);
        if (!r) return fail(ErrorCode::unavailable, fmt::format("cannot write '{}': {}", m_path.string(), r.error().message));
        // Starts writing back what a large file has so far, so that
        // commit()'s fdatasync, which the client waits for, finds little
        // left to do (a hint: failures show at fdatasync).
        m_written += data.size();
        if (m_written - m_written_back >= k_write_back_every) {
            ::sync_file_range(m_fd.get(), static_cast<off_t>(m_written_back), 0, SYNC_FILE_RANGE_WRITE);
            m_written_back = m_written;
        }
        return ok();
    }

    Result<void> commit() override {
        if (!m_sink.finish() || ::fdatasync(m_fd.get()) != 0)
            return fail(ErrorCode::unavailable, errno_message("cannot write", m_path));
        UniqueFd dir(::open(m_path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir || ::fsync(dir.get()) != 0)
            return fail(ErrorCode::unavailable, errno_message("cannot sync", m_path.parent_path()));
        m_committed = true;
        return ok();
    }

private:
    static constexpr uint64_t k_write_back_every = 8 << 20;
    UniqueFd m_fd;
    FdSink m_sink;
    fs::path m_path;
    uint64_t m_written = 0, m_written_back = 0;
    bool m_committed = false;
};

class LocalStore : public BlobStore {
public:
    // A put()'s temporary file lives for one write; one this old was left by
    // a write that died, and list() removes it.
    static constexpr int64_t k_stale_temporary_seconds = 86400;

    // Reads resolve blobs relative to the directory's fd: one 2-component
    // walk per chunk instead of the whole path's (a NAR is read as
    // hundreds of chunk files).
    explicit LocalStore(fs::path root)
        : m_root(std::move(root)),
          m_root_fd(::open(m_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)),
          m_open_files(OpenFiles::default_capacity()) {
        // The directories of hex-named blobs (chunks, whole NARs), made now:
        // made by the first uploads instead, each cost an inode search that
        // took 4 % of the server's CPU during a first plain `nix copy`.
        constexpr std::string_view k_hex = "0123456789abcdef";
        for (char a : k_hex)
            for (char b : k_hex) {
                const char name[] = {a, b, '\0'};
                (void)::mkdirat(m_root_fd.get(), name, 0700);  // exists already, mostly
            }
    }

    Result<void> put(std::string_view key, std::string_view data) override {
        TRY_ASSIGN(auto path, path_of(key));
        TRY(make_parent(path));
        TRY(write_file_atomic(path, data, 0600, false));  // private caches' NARs
        m_open_files.forget(key);  // a file kept open would be the one replaced
        return ok();
    }

    Result<std::unique_ptr<BlobWriter>> create(std::string_view key) override {
        TRY_ASSIGN(auto path, path_of(key));
        TRY(make_parent(path));
        UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd || ::fchmod(fd.get(), 0600) != 0)
            return fail(ErrorCode::unavailable, errno_message("cannot create", path));
        return std::unique_ptr<BlobWriter>(std::make_unique<LocalWriter>(std::move(fd), std::move(path)));
    }

    // A caller needs a syncfs that starts after it calls: the one running
    // may have started before its puts. Callers waiting meanwhile share the
    // next one.
    Result<void> sync() override {
        std::unique_lock lock(m_sync_mutex);
        uint64_t needed = m_sync_started + 1;
        while (m_sync_done < needed) {
            if (m_sync_running) {
                m_sync_finished.wait(lock);
                continue;
            }
            m_sync_running = true;
            uint64_t generation = ++m_sync_started;
            lock.unlock();
            Result<void> r = ok();
            UniqueFd fd(::open(m_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!fd || ::syncfs(fd.get()) != 0) r = fail(ErrorCode::unavailable, errno_message("cannot sync", m_root));
            lock.lock();
            m_sync_running = false;
            m_sync_done = generation;
            if (!r) m_sync_failed = generation;
            m_sync_finished.notify_all();
        }
        if (m_sync_failed >= needed)
            return fail(ErrorCode::unavailable, fmt::format("cannot sync '{}'", m_root.string()));
        return ok();
    }

    Result<void> get(std::string_view key, Sink& sink, uint64_t offset,
                     std::optional<uint64_t> length) override {
        TRY_ASSIGN(auto fd, open_blob(key));
        auto path = m_root / relative_path(key);
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) return fail(ErrorCode::unavailable, errno_message("cannot stat", path));
        auto size = static_cast<uint64_t>(st.st_size);
        if (offset > size) return fail(ErrorCode::invalid_input, "range starts beyond the blob");
        uint64_t end = length ? std::min(size, offset + *length) : size;
        std::vector<char> buf(std::min<uint64_t>(256 * 1024, std::max<uint64_t>(end - offset, 1)));
        while (offset < end) {
            size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - offset));
            ssize_t n = ::pread(fd.get(), buf.data(), want, static_cast<off_t>(offset));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return fail(ErrorCode::corrupt, errno_message("short read from blob", path));
            TRY(sink.write(std::string_view(buf.data(), static_cast<size_t>(n))));
            offset += static_cast<uint64_t>(n);
        }
        return ok();
    }

    Result<std::unique_ptr<Source>> open(std::string_view key, uint64_t offset,
                                         uint64_t length) override {
        // Only a valid key is ever kept: open_blob() checks it.
        TRY_ASSIGN(auto fd, m_open_files.get(key, [&] { return open_blob(key); }));
        return std::unique_ptr<Source>(
            std::make_unique<RangeSource>(std::move(fd), m_root, relative_path(key), offset, length));
    }

    Result<bool> exists(std::string_view key) override {
        if (!is_valid_key(key)) return invalid_key(key);
        struct stat st {};
        return ::fstatat(m_root_fd.get(), relative_path(key).c_str(), &st, 0) == 0;
    }

    bool exists_is_cheap() const override { return true; }

    Result<void> remove(std::string_view key) override {
        TRY_ASSIGN(auto path, path_of(key));
        int unlinked = ::unlink(path.c_str());
        int error = errno;
        m_open_files.forget(key);  // after: an open before the unlink may have kept it
        if (unlinked != 0 && error != ENOENT) {
            errno = error;
            return fail(ErrorCode::unavailable, errno_message("cannot remove", path));
        }
        return ok();
    }

    Result<std::vector<BlobInfo>> list() override {
        std::vector<BlobInfo> blobs;
        std::error_code ec;
        auto stale_before = std::time(nullptr) - k_stale_temporary_seconds;
        for (auto it = fs::recursive_directory_iterator(m_root, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec)) {
            if (!it->is_regular_file()) continue;
            auto name = it->path().filename().string();
            struct stat st {};
            if (::stat(it->path().c_str(), &st) != 0) continue;  // removed since the listing
            if (!is_valid_key(name)) {
                // A put() that died (a crash, a full disk) left its
                // temporary file, which nothing renames or removes.
                if (name.find(".tmp-") != std::string::npos && st.st_mtime < stale_before) ::unlink(it->path().c_str());
                continue;
            }
            blobs.push_back(BlobInfo{std::move(name), static_cast<int64_t>(st.st_mtime), static_cast<uint64_t>(st.st_size)});
        }
        if (ec) return fail(ErrorCode::unavailable, fmt::format("cannot list '{}': {}", m_root.string(), ec.message()));
        return blobs;
    }

    std::string describe() const override { return "file://" + m_root.string(); }

private:
    static Result<void> make_parent(const fs::path& path) {
        std::error_code ec;
        fs::create_directories(path.parent_path(), ec);
        if (ec)
            return fail(ErrorCode::unavailable,
                        fmt::format("cannot create '{}': {}", path.parent_path().string(), ec.message()));
        return ok();
    }

    // "<first two key chars>/<key>", for a valid key.
    static std::string relative_path(std::string_view key) {
        std::string rel;
        rel.reserve(key.size() + 3);
        rel.append(key.substr(0, 2)).append(1, '/').append(key);
        return rel;
    }

    Result<UniqueFd> open_blob(std::string_view key) const {
        if (!is_valid_key(key)) return invalid_key(key);
        auto rel = relative_path(key);
        // O_NOATIME: every sendfile() of a frame otherwise checks whether
        // to update the access time (3 % of the CPU serving a NAR). Only
        // the files' owner may ask for it; anyone else opens them plainly.
        UniqueFd fd(::openat(m_root_fd.get(), rel.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME));
        if (!fd && errno == EPERM) fd = UniqueFd(::openat(m_root_fd.get(), rel.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd)
            return fail(errno == ENOENT ? ErrorCode::not_found : ErrorCode::unavailable,
                        errno_message("cannot open blob", m_root / rel));
        return fd;
    }

    static Failure invalid_key(std::string_view key) {
        return fail(ErrorCode::invalid_input, fmt::format("invalid blob key '{}'", key.substr(0, 64)));
    }

    Result<fs::path> path_of(std::string_view key) const {
        if (!is_valid_key(key)) return invalid_key(key);
        return m_root / relative_path(key);
    }

    fs::path m_root;
    UniqueFd m_root_fd;  // (the directory exists: open_blob_store creates it)
    OpenFiles m_open_files;
    std::mutex m_sync_mutex;
    std::condition_variable m_sync_finished;
    bool m_sync_running = false;
    uint64_t m_sync_started = 0, m_sync_done = 0, m_sync_failed = 0;
};

}  // namespace

std::unique_ptr<BlobStore> make_local_store(std::filesystem::path root) {
    return std::make_unique<LocalStore>(std::move(root));
}

}  // namespace larder::blob
