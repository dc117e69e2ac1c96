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

#include "blob/sigv4.hpp"
#include "util/io.hpp"

namespace larder::blob {

// Keys: 3-128 of [0-9a-z_-] (content hashes), safe as file and object names.
bool is_valid_key(std::string_view key);

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

// "file:///abs/dir", a plain directory path, "memory://" (for tests: lost at
// exit), or
// "s3://BUCKET[/PREFIX]?endpoint=URL&region=R&addressing=path|virtual" (AWS's
// endpoint for the region when none is given). S3 credentials: `credentials`
// if given, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
// else ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE, profile AWS_PROFILE or
// default). An S3 store is checked with a signed request before it is
// returned, so wrong credentials fail here with a message saying so.
Result<std::unique_ptr<BlobStore>> open_blob_store(std::string_view url,
                                                   const std::optional<Credentials>& credentials = std::nullopt);

}  // namespace larder::blob
