#include "blob/blob_store.hpp"

#include <algorithm>
#include <filesystem>

#include <fmt/core.h>

#include "util/strings.hpp"

namespace larder::blob {

std::unique_ptr<BlobStore> make_local_store(std::filesystem::path root);  // local_store.cpp
std::unique_ptr<BlobStore> make_memory_store();                            // memory_store.cpp
Result<std::unique_ptr<BlobStore>> open_s3_store(std::string_view url,
                                                 const std::optional<Credentials>& credentials);  // s3_store.cpp

bool is_valid_key(std::string_view key) {
    return key.size() >= 3 && key.size() <= 128 && std::all_of(key.begin(), key.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '_';
           });
}

Result<std::unique_ptr<BlobStore>> open_blob_store(std::string_view url,
                                                   const std::optional<Credentials>& credentials) {
    if (url.starts_with("s3://")) return open_s3_store(url, credentials);
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
