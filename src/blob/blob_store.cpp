#include "blob/blob_store.hpp"

#include <algorithm>
#include <array>
#include <filesystem>

#include <fmt/core.h>

#include "util/strings.hpp"

namespace larder::blob {

std::unique_ptr<BlobStore> make_local_store(std::filesystem::path root);  // local_store.cpp
std::unique_ptr<BlobStore> make_memory_store();                            // memory_store.cpp
Result<std::unique_ptr<BlobStore>> open_s3_store(std::string_view url, const StoreOptions& options);  // s3_store.cpp

bool is_valid_key(std::string_view key) {
    // A table: this runs for every chunk of every NAR served.
    static constexpr auto k_allowed = [] {
        std::array<bool, 256> a{};
        for (int c = '0'; c <= '9'; ++c) a[c] = true;
        for (int c = 'a'; c <= 'z'; ++c) a[c] = true;
        a['-'] = a['_'] = true;
        return a;
    }();
    return key.size() >= 3 && key.size() <= 128 &&
           std::all_of(key.begin(), key.end(), [](char c) { return k_allowed[static_cast<unsigned char>(c)]; });
}

std::string_view held_bytes(const BlobRange& range) {
    std::string_view data = range.data;
    if (range.offset >= data.size()) return {};
    return data.substr(range.offset, range.length);
}

namespace {

// Opens each range's blob when the reader gets to it.
class SequentialRanges : public Source {
public:
    SequentialRanges(BlobStore& blobs, std::vector<BlobRange> ranges) : m_blobs(blobs), m_ranges(std::move(ranges)) {}

    Result<size_t> read(char* buf, size_t len) override {
        TRY_ASSIGN(bool more, next());
        if (!more) return size_t{0};
        TRY_ASSIGN(size_t n, m_current->read(buf, static_cast<size_t>(std::min<uint64_t>(len, m_left))));
        if (n == 0) return shorter();
        m_left -= n;
        return n;
    }

    Result<std::optional<FileRegion>> take_file_region(size_t max) override {
        TRY_ASSIGN(bool more, next());
        if (!more) return std::optional<FileRegion>(FileRegion{-1, 0, 0});
        TRY_ASSIGN(auto region, m_current->take_file_region(static_cast<size_t>(std::min<uint64_t>(max, m_left))));
        if (!region) return region;
        if (region->length == 0) return shorter();
        m_left -= region->length;
        return region;
    }

private:
    // Opens the next range with bytes left; false at the end.
    Result<bool> next() {
        while (!m_current || m_left == 0) {
            m_current.reset();
            if (m_next == m_ranges.size()) return false;
            const auto& r = m_ranges[m_next++];
            if (!r.data.empty()) {
                m_current = std::make_unique<StringSource>(held_bytes(r));
            } else {
                TRY_ASSIGN(m_current, m_blobs.open(r.key, r.offset, r.length));
            }
            m_left = r.length;
        }
        return true;
    }

    Failure shorter() const {
        return fail(ErrorCode::corrupt, fmt::format("blob '{}' is shorter than recorded", m_ranges[m_next - 1].key));
    }

    BlobStore& m_blobs;
    std::vector<BlobRange> m_ranges;
    size_t m_next = 0;
    uint64_t m_left = 0;
    std::unique_ptr<Source> m_current;
};

}  // namespace

std::unique_ptr<Source> BlobStore::open_ranges(std::vector<BlobRange> ranges) {
    return std::make_unique<SequentialRanges>(*this, std::move(ranges));
}

Result<std::unique_ptr<BlobStore>> open_blob_store(std::string_view url, const StoreOptions& options) {
    if (url.starts_with("s3://")) {
        TRY_ASSIGN(auto s3, open_s3_store(url, options));
        if (options.cache_dir.empty()) return s3;
        return with_read_cache(std::move(s3), options.cache_dir, options.cache_max_size);
    }
    if (url == "memory://") return make_memory_store();
    TRY_ASSIGN(auto path, strip_scheme(url, "file", "storage"));
    if (path.empty() || path.front() != '/')
        return fail(ErrorCode::invalid_input, "storage path must be absolute");
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec)
        return fail(ErrorCode::unavailable,
                    fmt::format("cannot create storage directory '{}': {}", path, ec.message()));
    return make_local_store(std::filesystem::path(path));
}

}  // namespace larder::blob
