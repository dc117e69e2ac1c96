// A local directory in front of a remote BlobStore (S3), keeping the blobs
// read most recently, up to a size cap (least recently read dropped first).
//
// Blob keys are unique to each write, so a cached copy is never stale and
// needs no invalidation. The cache is a local BlobStore (same layout, and
// sendfile for what it holds); what it holds is indexed in memory, rebuilt
// from the directory at startup (oldest file first out). A file whose size
// is not the blob's (cut short by a power loss) is dropped and fetched again.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <list>
#include <mutex>
#include <unordered_map>

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include "blob/blob_store.hpp"

namespace larder::blob {

std::unique_ptr<BlobStore> make_local_store(std::filesystem::path root);  // local_store.cpp

namespace {

class ReadCache : public BlobStore {
public:
    ReadCache(std::unique_ptr<BlobStore> remote, std::string dir, uint64_t max_size)
        : m_remote(std::move(remote)), m_local(make_local_store(dir)), m_dir(std::move(dir)), m_max(max_size) {}

    // Indexes what the directory holds, oldest first out; drops what no
    // longer fits the cap.
    Result<void> load() {
        TRY_ASSIGN(auto blobs, m_local->list());
        std::sort(blobs.begin(), blobs.end(), [](const BlobInfo& a, const BlobInfo& b) { return a.modified > b.modified; });
        std::vector<std::string> victims;
        {
            std::lock_guard lock(m_mutex);
            for (auto& b : blobs) {
                if (m_bytes + b.size > m_max) {
                    victims.push_back(std::move(b.key));
                    continue;
                }
                m_lru.push_back(b.key);
                m_entries.emplace(std::move(b.key), Entry{b.size, std::prev(m_lru.end())});
                m_bytes += b.size;
            }
        }
        for (const auto& key : victims) (void)m_local->remove(key);
        return ok();
    }

    Result<void> put(std::string_view key, std::string_view data) override { return m_remote->put(key, data); }
    Result<std::unique_ptr<BlobWriter>> create(std::string_view key) override { return m_remote->create(key); }
    Result<void> sync() override { return m_remote->sync(); }
    Result<void> get(std::string_view key, Sink& sink, uint64_t offset, std::optional<uint64_t> length) override {
        return m_remote->get(key, sink, offset, length);
    }
    Result<std::unique_ptr<Source>> open(std::string_view key, uint64_t offset, uint64_t length) override {
        return m_remote->open(key, offset, length);
    }
    std::unique_ptr<Source> open_ranges(std::vector<BlobRange> ranges) override;
    Result<bool> exists(std::string_view key) override { return m_remote->exists(key); }
    bool exists_is_cheap() const override { return m_remote->exists_is_cheap(); }
    Result<void> remove(std::string_view key) override {
        TRY(m_remote->remove(key));
        forget(key);
        return ok();
    }
    Result<std::vector<BlobInfo>> list() override { return m_remote->list(); }

    StoreCounters counters() const override {
        auto c = m_remote->counters();
        c.cache_hits = m_hits;
        c.cache_misses = m_misses;
        std::lock_guard lock(m_mutex);
        c.cache_bytes = m_bytes;
        return c;
    }

    std::string describe() const override { return fmt::format("{} (read cache {})", m_remote->describe(), m_dir); }

private:
    friend class CachedRanges;

    // A blob worth keeping whole: its size known, and small enough not to
    // push a quarter of the cache out at once.
    // Held bytes (a chunk kept in the database) pass through: no request.
    bool cacheable(const BlobRange& r) const { return r.data.empty() && r.blob_size > 0 && r.blob_size <= m_max / 4; }

    // Whether the cache holds `key` at `size` bytes; marks it read now.
    bool lookup(const std::string& key, uint64_t size) {
        {
            std::lock_guard lock(m_mutex);
            auto it = m_entries.find(key);
            if (it == m_entries.end()) return false;
            if (it->second.size == size) {
                m_lru.splice(m_lru.begin(), m_lru, it->second.lru);
                return true;
            }
        }
        spdlog::warn("read cache: '{}' holds {} with a size other than the blob's; fetching it again", m_dir, key);
        forget(key);
        return false;
    }

    // Keeps a blob just fetched, then drops the least recently read ones
    // beyond the cap. A failure to write only costs the cache.
    void insert(const std::string& key, std::string_view data) {
        {
            std::lock_guard lock(m_mutex);
            if (m_entries.count(key)) return;
        }
        if (auto r = m_local->put(key, data); !r) {
            spdlog::warn("read cache: cannot keep {}: {}", key, r.error().message);
            return;
        }
        std::vector<std::string> victims;
        {
            std::lock_guard lock(m_mutex);
            if (m_entries.count(key)) return;
            m_lru.push_front(key);
            m_entries.emplace(key, Entry{data.size(), m_lru.begin()});
            m_bytes += data.size();
            while (m_bytes > m_max && !m_lru.empty()) {
                auto& victim = m_lru.back();
                m_bytes -= m_entries.at(victim).size;
                m_entries.erase(victim);
                victims.push_back(std::move(victim));
                m_lru.pop_back();
            }
        }
        for (const auto& victim : victims) (void)m_local->remove(victim);
    }

    void forget(std::string_view key) {
        bool held = false;
        {
            std::lock_guard lock(m_mutex);
            auto it = m_entries.find(std::string(key));
            if (it != m_entries.end()) {
                m_bytes -= it->second.size;
                m_lru.erase(it->second.lru);
                m_entries.erase(it);
                held = true;
            }
        }
        if (held) (void)m_local->remove(key);
    }

    struct Entry {
        uint64_t size;
        std::list<std::string>::iterator lru;
    };

    std::unique_ptr<BlobStore> m_remote;
    std::unique_ptr<BlobStore> m_local;
    std::string m_dir;
    uint64_t m_max;
    mutable std::mutex m_mutex;
    std::unordered_map<std::string, Entry> m_entries;
    std::list<std::string> m_lru;  // most recently read first
    uint64_t m_bytes = 0;
    std::atomic<uint64_t> m_hits{0}, m_misses{0};
};

// The ranges of a NAR: those cached are read from the local copy (sendfile),
// the others from one read-ahead stream of the remote store, which fetches
// each cacheable one whole so that it can be kept.
class CachedRanges : public Source {
public:
    CachedRanges(ReadCache& cache, std::vector<BlobRange> ranges) : m_cache(cache) {
        std::vector<BlobRange> fetched;
        for (auto& r : ranges) {
            Part part{std::move(r), Kind::passed};
            if (m_cache.cacheable(part.range)) {
                part.kind = m_cache.lookup(part.range.key, part.range.blob_size) ? Kind::hit : Kind::kept;
            }
            if (part.kind == Kind::kept)
                fetched.push_back(BlobRange{part.range.key, 0, part.range.blob_size, part.range.blob_size});
            else if (part.kind == Kind::passed)
                fetched.push_back(part.range);
            m_parts.push_back(std::move(part));
        }
        if (!fetched.empty()) m_remote = m_cache.m_remote->open_ranges(std::move(fetched));
    }

    Result<size_t> read(char* buf, size_t len) override {
        TRY_ASSIGN(bool more, next());
        if (!more) return size_t{0};
        size_t want = static_cast<size_t>(std::min<uint64_t>(len, m_left));
        size_t n = 0;
        if (m_local) {
            TRY_ASSIGN(n, m_local->read(buf, want));
        } else if (m_parts[m_at - 1].kind == Kind::passed) {
            TRY_ASSIGN(n, m_remote->read(buf, want));
        } else {
            n = want;
            std::memcpy(buf, m_blob.data() + m_blob_pos, n);
            m_blob_pos += n;
        }
        if (n == 0) return fail(ErrorCode::corrupt, fmt::format("blob '{}' is shorter than recorded", m_parts[m_at - 1].range.key));
        m_left -= n;
        return n;
    }

    // Cached ranges as file regions; the others (fetched on the stream
    // workers by read()) not.
    Result<std::optional<FileRegion>> take_file_region(size_t max) override {
        if (m_left == 0) {
            m_local.reset();
            if (m_at == m_parts.size()) return std::optional<FileRegion>(FileRegion{-1, 0, 0});
            // A part to fetch, or a cached copy dropped since the lookup:
            // read() fetches it, on a stream worker.
            if (m_parts[m_at].kind != Kind::hit || !open_cached(m_parts[m_at])) return std::optional<FileRegion>();
            ++m_at;
        }
        if (!m_local) return std::optional<FileRegion>();
        TRY_ASSIGN(auto region, m_local->take_file_region(static_cast<size_t>(std::min<uint64_t>(max, m_left))));
        if (region) m_left -= region->length;
        return region;
    }

private:
    enum class Kind {
        hit,     // read from the cache
        kept,    // fetched whole and kept
        passed,  // fetched as asked, not kept
    };
    struct Part {
        BlobRange range;
        Kind kind;
    };

    // Moves to the next part with bytes left; false at the end.
    Result<bool> next() {
        while (m_left == 0) {
            m_local.reset();
            m_blob.clear();
            if (m_at == m_parts.size()) return false;
            auto& part = m_parts[m_at++];
            const auto& r = part.range;
            m_left = r.length;
            if (part.kind == Kind::hit) {
                if (open_cached(part)) continue;
                // Dropped since the lookup: fetched on its own.
                TRY(fetch_whole(part, nullptr));
            } else if (part.kind == Kind::kept) {
                TRY(fetch_whole(part, m_remote.get()));
            }
        }
        return true;
    }

    // The cached copy of a part as the current source.
    bool open_cached(const Part& part) {
        const auto& r = part.range;
        auto local = m_cache.m_local->open(r.key, r.offset, r.length);
        if (!local) return false;
        ++m_cache.m_hits;
        m_local = std::move(*local);
        m_left = r.length;
        return true;
    }

    // The whole blob into memory, from the read-ahead stream or else with
    // a request of its own, and into the cache.
    Result<void> fetch_whole(const Part& part, Source* from) {
        const auto& r = part.range;
        m_blob.resize(r.blob_size);
        if (from) {
            TRY(read_exact(*from, m_blob.data(), m_blob.size()));
        } else {
            StringSink sink;
            sink.data().reserve(r.blob_size);
            TRY(m_cache.m_remote->get(r.key, sink, 0, r.blob_size));
            if (sink.data().size() != r.blob_size)
                return fail(ErrorCode::corrupt, fmt::format("blob '{}' is shorter than recorded", r.key));
            m_blob = std::move(sink.data());
        }
        ++m_cache.m_misses;
        m_cache.insert(r.key, m_blob);
        m_blob_pos = r.offset;
        return ok();
    }

    ReadCache& m_cache;
    std::vector<Part> m_parts;
    size_t m_at = 0;      // parts begun
    uint64_t m_left = 0;  // bytes of the current part not yet returned
    std::unique_ptr<Source> m_remote;
    std::unique_ptr<Source> m_local;
    std::string m_blob;
    size_t m_blob_pos = 0;
};

std::unique_ptr<Source> ReadCache::open_ranges(std::vector<BlobRange> ranges) {
    return std::make_unique<CachedRanges>(*this, std::move(ranges));
}

}  // namespace

Result<std::unique_ptr<BlobStore>> with_read_cache(std::unique_ptr<BlobStore> remote, std::string dir,
                                                   uint64_t max_size) {
    if (dir.empty() || dir.front() != '/') return fail(ErrorCode::invalid_input, "the read cache directory must be absolute");
    if (max_size == 0) return fail(ErrorCode::invalid_input, "the read cache needs a size cap above 0");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        return fail(ErrorCode::unavailable, fmt::format("cannot create read cache directory '{}': {}", dir, ec.message()));
    auto cache = std::make_unique<ReadCache>(std::move(remote), std::move(dir), max_size);
    TRY(cache->load());
    return std::unique_ptr<BlobStore>(std::move(cache));
}

}  // namespace larder::blob
