// Where chunk bytes live. Keys are content addresses chosen by the caller, so
// a retried or duplicated put writes the same key, and a crash leaves at most
// an unreferenced blob for garbage collection. Backends are picked by URL
// scheme; their classes are private to their .cpp files.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/io.hpp"

namespace larder::blob {

class BlobStore {
public:
    virtual ~BlobStore() = default;

    // Stores `data` under `key`, atomically: readers see all of it or nothing.
    // It is durable only after a following sync().
    virtual Result<void> put(std::string_view key, std::string_view data) = 0;
    // Makes every put() that returned before it durable. Metadata may refer
    // to a blob only after this.
    virtual Result<void> sync() { return ok(); }
    // Writes bytes [offset, offset + length) of the blob to `sink`; a length
    // of nullopt means "to the end". not_found if there is no such blob.
    virtual Result<void> get(std::string_view key, Sink& sink, uint64_t offset = 0,
                             std::optional<uint64_t> length = std::nullopt) = 0;
    // A Source over bytes [offset, offset + length) of the blob, for
    // streaming it out in bounded memory.
    virtual Result<std::unique_ptr<Source>> open(std::string_view key, uint64_t offset,
                                                 uint64_t length) = 0;
    virtual Result<bool> exists(std::string_view key) = 0;
    virtual Result<void> remove(std::string_view key) = 0;
    virtual Result<std::vector<std::string>> list() = 0;
    // The URL with any credentials removed, for logs.
    virtual std::string describe() const = 0;
};

// "file:///abs/dir" or a plain directory path.
Result<std::unique_ptr<BlobStore>> open_blob_store(std::string_view url);

}  // namespace larder::blob
