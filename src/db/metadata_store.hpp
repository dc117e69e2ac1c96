// The metadata store: caches, their keys, NARs and chunks, store path
// objects, tokens, logs. One interface; the SQLite backend (and later
// PostgreSQL) implements it, so everything above is backend-agnostic.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace larder::db {

struct CacheRow {
    int64_t id = 0;
    std::string name;
    bool is_public = false;
    int priority = 40;
    std::string store_dir = "/nix/store";
    std::vector<std::string> upstream_keys;  // key names whose paths pushes skip
    int64_t created_at = 0;
};

struct KeyRow {
    int64_t id = 0;
    int64_t cache_id = 0;
    std::string secret;  // "name:base64", never logged
    std::string public_key;
    bool current = true;
};

// One stored representation of a chunk. Blobs are keyed by the hash of
// their stored bytes, so a blob never changes once written, and one chunk
// (content) may have several representations: the server's own, and frames
// clients pushed. Only the server's are shared across caches by content.
struct ChunkRow {
    int64_t id = 0;
    std::string hash;  // the blob key: base16 sha256 of the stored (compressed) bytes
    uint64_t size = 0;
    uint64_t stored_size = 0;
    std::string compression = "zstd";
    std::string content_hash;  // base16 sha256 of the uncompressed bytes
    bool server_made = false;  // compressed by this server, not sent by a client
};

struct NarRow {
    int64_t id = 0;
    std::string nar_hash;  // "sha256:<nix32>"
    uint64_t nar_size = 0;
    std::string file_hash;  // of the served stream: the stored chunks concatenated
    uint64_t file_size = 0;
    std::vector<ChunkRow> chunks;  // in order
};

struct ObjectRow {
    int64_t id = 0;
    int64_t cache_id = 0;
    std::string hash_part;
    std::string store_path;  // base name
    int64_t nar_id = 0;
    std::vector<std::string> references;  // base names
    std::string deriver;
    std::string system;
    std::string ca;
    std::vector<std::string> sigs;
    int64_t created_at = 0;
    NarRow nar;  // filled by lookups that return an object
};

struct TokenRow {
    int64_t id = 0;
    std::string name;
    std::string secret_hash;  // base16 sha256 of the secret
    std::string scopes;       // JSON
    std::optional<int64_t> expires_at;
    std::optional<int64_t> revoked_at;
    int64_t created_at = 0;
    std::optional<int64_t> parent_id;  // the admin token that minted it; revoked with it
};

class MetadataStore {
public:
    virtual ~MetadataStore() = default;

    // Caches and their signing keys.
    virtual Result<CacheRow> create_cache(const CacheRow& cache, const KeyRow& key) = 0;
    virtual Result<CacheRow> get_cache(std::string_view name) = 0;  // not_found
    virtual Result<std::vector<CacheRow>> list_caches() = 0;
    virtual Result<void> update_cache(const CacheRow& cache) = 0;
    virtual Result<void> delete_cache(int64_t cache_id) = 0;
    virtual Result<std::vector<KeyRow>> cache_keys(int64_t cache_id) = 0;  // current first
    // Makes `key` the current key; older keys stay, no longer current.
    virtual Result<void> add_cache_key(const KeyRow& key) = 0;

    // Chunks and NARs.
    // A representation of this content that the server compressed itself;
    // with `within_cache`, only one that a path of that cache uses.
    virtual Result<std::optional<ChunkRow>> find_server_chunk(std::string_view content_hash,
                                                              std::optional<int64_t> within_cache) = 0;
    // The representation stored under this blob key (byte-identical bytes).
    virtual Result<std::optional<ChunkRow>> find_chunk_by_key(std::string_view blob_key,
                                                              std::optional<int64_t> within_cache) = 0;
    virtual Result<ChunkRow> insert_chunk(const ChunkRow& chunk) = 0;  // idempotent on the blob key
    // Inserts the NAR with its chunk list, or returns the existing one with
    // the same NarHash and FileHash (the same served bytes); a NAR may have
    // several representations. `nar.chunks` must have ids.
    virtual Result<NarRow> insert_nar(const NarRow& nar) = 0;
    virtual Result<std::optional<NarRow>> find_nar(int64_t nar_id) = 0;
    // A NAR by the file hash of its served stream, only if `cache_id` has an
    // object that uses it (caches never see each other's NARs).
    virtual Result<std::optional<NarRow>> find_cache_nar(int64_t cache_id,
                                                         std::string_view file_hash) = 0;
    virtual Result<int64_t> count_chunks() = 0;

    // NAR uploads from plain Nix: the file name it PUT, until the narinfo.
    virtual Result<void> record_upload(int64_t cache_id, std::string_view name, int64_t nar_id) = 0;
    virtual Result<std::optional<int64_t>> find_upload(int64_t cache_id, std::string_view name) = 0;

    // Objects (store paths in a cache).
    virtual Result<std::optional<ObjectRow>> find_object(int64_t cache_id,
                                                         std::string_view hash_part) = 0;
    // Which of these the cache lacks, each once: hash parts, or base names
    // ("<hash>-<name>"), which must then match the stored path exactly.
    virtual Result<std::vector<std::string>> missing_objects(
        int64_t cache_id, const std::vector<std::string>& paths) = 0;
    // Inserts or replaces the object of that hash part.
    virtual Result<void> put_object(const ObjectRow& object) = 0;
    virtual Result<std::vector<ObjectRow>> list_objects(int64_t cache_id) = 0;
    // Removes the object; false if there was none.
    virtual Result<bool> delete_object(int64_t cache_id, std::string_view hash_part) = 0;
    virtual Result<void> set_object_sigs(int64_t object_id, const std::vector<std::string>& sigs) = 0;

    // Files stored as they came: listings (.ls), build logs, realisations.
    // `kind` is "ls", "log" or "realisation"; `name` is the path under the cache.
    virtual Result<void> put_file(int64_t cache_id, std::string_view kind, std::string_view name,
                                  std::string_view data, std::string_view content_encoding) = 0;
    struct File {
        std::string data;
        std::string content_encoding;
    };
    virtual Result<std::optional<File>> get_file(int64_t cache_id, std::string_view kind,
                                                 std::string_view name) = 0;

    // Tokens.
    virtual Result<TokenRow> create_token(const TokenRow& token) = 0;
    virtual Result<std::optional<TokenRow>> find_token(std::string_view secret_hash) = 0;
    virtual Result<std::vector<TokenRow>> list_tokens() = 0;
    // Revokes the token and every token minted under it.
    virtual Result<void> revoke_token(int64_t id, int64_t when) = 0;
};

// The database URL for logs: a password in it (user:PASSWORD@ or
// password=...) replaced by "***".
std::string redact_url(std::string_view url);

// "sqlite:///abs/path.db", a plain path to the database file, or a libpq URL
// ("postgresql://user@host:port/db?...").
Result<std::unique_ptr<MetadataStore>> open_metadata_store(std::string_view url);

}  // namespace larder::db
