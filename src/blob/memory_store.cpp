// `memory://`: blobs in a map, for tests of everything above the BlobStore
// (the upload pipeline, the service, the handlers) without disk or S3.
#include <algorithm>
#include <ctime>
#include <map>
#include <mutex>

#include <fmt/core.h>

#include "blob/blob_store.hpp"

namespace larder::blob {

namespace {

class MemoryStore : public BlobStore {
public:
    Result<void> put(std::string_view key, std::string_view data) override {
        TRY(check(key));
        std::lock_guard lock(m_mutex);
        m_blobs.insert_or_assign(std::string(key), std::make_shared<const std::string>(data));
        m_modified.insert_or_assign(std::string(key), static_cast<int64_t>(std::time(nullptr)));
        return ok();
    }

    Result<std::unique_ptr<BlobWriter>> create(std::string_view key) override {
        TRY(check(key));
        struct Writer : BlobWriter {
            MemoryStore& store;
            std::string key, data;
            Writer(MemoryStore& s, std::string_view k) : store(s), key(k) {}
            Result<void> write(std::string_view d) override {
                data.append(d);
                return ok();
            }
            Result<void> commit() override { return store.put(key, data); }
        };
        return std::unique_ptr<BlobWriter>(std::make_unique<Writer>(*this, key));
    }

    Result<void> get(std::string_view key, Sink& sink, uint64_t offset, std::optional<uint64_t> length) override {
        TRY_ASSIGN(auto blob, find(key));
        if (offset > blob->size()) return fail(ErrorCode::invalid_input, "range starts beyond the blob");
        auto n = length ? std::min<uint64_t>(*length, blob->size() - offset) : blob->size() - offset;
        return sink.write(std::string_view(*blob).substr(offset, n));
    }

    Result<std::unique_ptr<Source>> open(std::string_view key, uint64_t offset, uint64_t length) override {
        TRY_ASSIGN(auto blob, find(key));
        if (offset > blob->size()) return fail(ErrorCode::invalid_input, "range starts beyond the blob");
        // The Source keeps the bytes alive even if the blob is removed meanwhile.
        struct Slice : Source {
            std::shared_ptr<const std::string> blob;
            StringSource source;
            Slice(std::shared_ptr<const std::string> b, std::string_view view) : blob(std::move(b)), source(view) {}
            Result<size_t> read(char* buf, size_t len) override { return source.read(buf, len); }
        };
        auto view = std::string_view(*blob).substr(offset, std::min<uint64_t>(length, blob->size() - offset));
        return std::unique_ptr<Source>(std::make_unique<Slice>(blob, view));
    }

    Result<bool> exists(std::string_view key) override {
        TRY(check(key));
        std::lock_guard lock(m_mutex);
        return m_blobs.count(std::string(key)) > 0;
    }

    bool exists_is_cheap() const override { return true; }

    Result<void> remove(std::string_view key) override {
        TRY(check(key));
        std::lock_guard lock(m_mutex);
        m_blobs.erase(std::string(key));
        m_modified.erase(std::string(key));
        return ok();
    }

    Result<std::vector<BlobInfo>> list() override {
        std::lock_guard lock(m_mutex);
        std::vector<BlobInfo> blobs;
        for (const auto& [k, v] : m_modified) blobs.push_back(BlobInfo{k, v, m_blobs.at(k)->size()});
        return blobs;
    }

    std::string describe() const override { return "memory://"; }

private:
    static Result<void> check(std::string_view key) {
        if (!is_valid_key(key))
            return fail(ErrorCode::invalid_input, fmt::format("invalid blob key '{}'", key.substr(0, 64)));
        return ok();
    }

    Result<std::shared_ptr<const std::string>> find(std::string_view key) {
        TRY(check(key));
        std::lock_guard lock(m_mutex);
        auto it = m_blobs.find(std::string(key));
        if (it == m_blobs.end()) return fail(ErrorCode::not_found, fmt::format("no blob '{}'", key));
        return it->second;
    }

    std::mutex m_mutex;
    std::map<std::string, std::shared_ptr<const std::string>> m_blobs;
    std::map<std::string, int64_t> m_modified;  // Unix time of the last put
};

}  // namespace

std::unique_ptr<BlobStore> make_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace larder::blob
