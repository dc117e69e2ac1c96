// larder serve's configuration: TOML file, then command-line overrides.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "blob/blob_store.hpp"
#include "cache/config.hpp"
#include "cache/service.hpp"
#include "http/handlers.hpp"
#include "http/server.hpp"

namespace larder::app {

struct CacheDeclaration {
    std::string name;
    cache::CacheSettings settings;
};

struct ServeConfig {
    std::filesystem::path data_dir = "larder-data";
    std::string database;  // default: sqlite://<data_dir>/larder.db
    std::string storage;   // default: file://<data_dir>/blobs
    blob::StoreOptions storage_options;  // [s3]
    std::string log_level = "info";
    std::string log_format = "text";  // or "json": one object per line
    http::ServerConfig server;
    http::HandlerConfig handler;
    cache::Config cache;
    std::vector<CacheDeclaration> caches;  // created at start if missing
    // [gc]: garbage collection every `interval` (0: never; the first run
    // after a random part of it, later ones +-10 %, so replicas spread out),
    // and how often noted uses of paths are written.
    std::chrono::seconds gc_interval{3600};
    std::chrono::seconds use_flush{300};
};

// Reads `path` (if given) over the defaults. Unknown keys are errors, so a
// typo does not silently leave a setting at its default.
Result<ServeConfig> load_serve_config(const std::optional<std::string>& path);
// The same from text; `source` names it in error messages.
Result<ServeConfig> parse_serve_config(std::string_view text, const std::string& source);

}  // namespace larder::app
