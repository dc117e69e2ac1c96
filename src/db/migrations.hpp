// Numbered schema migrations, applied in order and recorded in PRAGMA
// user_version (SQLite) or the schema_version table (PostgreSQL). Append only: never edit a migration that shipped.
#pragma once

#include <array>

namespace larder::db {

inline constexpr std::array k_sqlite_migrations = {
    // 1: the initial schema.
    R"SQL(
CREATE TABLE caches (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    is_public INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 40,
    store_dir TEXT NOT NULL DEFAULT '/nix/store',
    upstream_keys TEXT NOT NULL DEFAULT 'cache.nixos.org-1',
    created_at INTEGER NOT NULL
);
CREATE TABLE cache_keys (
    id INTEGER PRIMARY KEY,
    cache_id INTEGER NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    public_key TEXT NOT NULL,
    current INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);
CREATE INDEX cache_keys_cache ON cache_keys(cache_id);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    stored_size INTEGER NOT NULL,
    compression TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE nars (
    id INTEGER PRIMARY KEY,
    nar_hash TEXT NOT NULL UNIQUE,
    nar_size INTEGER NOT NULL,
    file_hash TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX nars_file_hash ON nars(file_hash);
CREATE TABLE nar_chunks (
    nar_id INTEGER NOT NULL REFERENCES nars(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    chunk_id INTEGER NOT NULL REFERENCES chunks(id),
    PRIMARY KEY (nar_id, seq)
);
CREATE INDEX nar_chunks_chunk ON nar_chunks(chunk_id);
CREATE TABLE uploads (
    cache_id INTEGER NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    nar_id INTEGER NOT NULL REFERENCES nars(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (cache_id, name)
);
CREATE TABLE objects (
    id INTEGER PRIMARY KEY,
    cache_id INTEGER NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    hash_part TEXT NOT NULL,
    store_path TEXT NOT NULL,
    nar_id INTEGER NOT NULL REFERENCES nars(id),
    refs TEXT NOT NULL,
    deriver TEXT NOT NULL,
    system TEXT NOT NULL,
    ca TEXT NOT NULL,
    sigs TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_accessed_at INTEGER NOT NULL,
    UNIQUE (cache_id, hash_part)
);
CREATE INDEX objects_nar ON objects(nar_id);
CREATE TABLE files (
    cache_id INTEGER NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    content_encoding TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (cache_id, kind, name)
);
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);
)SQL",
    // 2: blobs keyed by the hash of their stored bytes, several
    // representations per chunk and per NAR (security review H7, M1).
    // Applied with foreign keys off (sqlite_store.cpp), so that the NAR
    // table can be rebuilt without cascading.
    R"SQL(
ALTER TABLE chunks ADD COLUMN content_hash TEXT NOT NULL DEFAULT '';
UPDATE chunks SET content_hash = hash;
ALTER TABLE chunks ADD COLUMN server_made INTEGER NOT NULL DEFAULT 0;
CREATE INDEX chunks_content ON chunks(content_hash, server_made);
CREATE TABLE nars_new (
    id INTEGER PRIMARY KEY,
    nar_hash TEXT NOT NULL,
    nar_size INTEGER NOT NULL,
    file_hash TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (nar_hash, file_hash)
);
INSERT INTO nars_new SELECT id, nar_hash, nar_size, file_hash, file_size, created_at FROM nars;
DROP TABLE nars;
ALTER TABLE nars_new RENAME TO nars;
CREATE INDEX nars_file_hash ON nars(file_hash);
)SQL",
    // 3: tokens remember the admin token that minted them (review M8); the
    // default upstream key becomes cache.nixos.org's full key, as the server
    // now verifies what pushes leave upstream (M10).
    R"SQL(
ALTER TABLE tokens ADD COLUMN parent_id INTEGER REFERENCES tokens(id);
CREATE INDEX tokens_parent ON tokens(parent_id);
UPDATE caches SET upstream_keys = 'cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY='
    WHERE upstream_keys = 'cache.nixos.org-1';
)SQL",
    // 4: garbage collection (issue 12). Blob keys become unique per write
    // (`blob`; old rows keep their hash as key), so a blob GC deletes can never
    // be one an upload is writing again; rows no NAR (chunks) or no object or
    // upload (NARs) uses are marked with the time they were first seen so, and
    // removed a grace period later; chunks fsck found missing or corrupt;
    // retention and size caps per cache; pins; leases (one GC at a time
    // across replicas).
    R"SQL(
ALTER TABLE chunks ADD COLUMN blob TEXT NOT NULL DEFAULT '';
UPDATE chunks SET blob = hash;
CREATE INDEX chunks_blob ON chunks(blob);
ALTER TABLE chunks ADD COLUMN orphan_since INTEGER;
ALTER TABLE chunks ADD COLUMN damaged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nars ADD COLUMN orphan_since INTEGER;
CREATE INDEX chunks_orphan ON chunks(orphan_since) WHERE orphan_since IS NOT NULL;
CREATE INDEX nars_orphan ON nars(orphan_since) WHERE orphan_since IS NOT NULL;
ALTER TABLE caches ADD COLUMN retention INTEGER;
ALTER TABLE caches ADD COLUMN max_size INTEGER;
CREATE INDEX uploads_nar ON uploads(nar_id);
CREATE INDEX objects_use ON objects(cache_id, last_accessed_at);
CREATE TABLE pins (
    id INTEGER PRIMARY KEY,
    cache_id INTEGER NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    store_path TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX pins_cache ON pins(cache_id, name);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
)SQL",
    // 5: deferred ingest (issue 11): NARs a plain upload stored whole, to be
    // cut into chunks in the background; `claimed_until` lets one replica
    // at a time work on each.
    R"SQL(
CREATE TABLE deferred_nars (
    nar_id INTEGER PRIMARY KEY REFERENCES nars(id) ON DELETE CASCADE,
    cache_id INTEGER NOT NULL,
    queued_at INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL DEFAULT 0
);
)SQL",
    // 6: pull-through caches (issue 14): a cache's upstreams (JSON, read
    // by the cache module) and the retention and size cap of the paths
    // fetched from them (objects.proxied), and the narinfos upstreams answered, verified,
    // for paths whose NAR is not fetched yet (by hash part, and by NarHash
    // for the NAR request).
    R"SQL(
ALTER TABLE caches ADD COLUMN upstreams TEXT NOT NULL DEFAULT '';
ALTER TABLE caches ADD COLUMN proxy_retention BIGINT;
ALTER TABLE caches ADD COLUMN proxy_max_size BIGINT;
ALTER TABLE objects ADD COLUMN proxied INTEGER NOT NULL DEFAULT 0;
CREATE TABLE upstream_paths (
    cache_id INTEGER NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    hash_part TEXT NOT NULL,
    store_path TEXT NOT NULL,
    nar_hash TEXT NOT NULL,
    narinfo TEXT NOT NULL,
    nar_url TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (cache_id, hash_part)
);
CREATE INDEX upstream_paths_nar ON upstream_paths(cache_id, nar_hash);
CREATE INDEX upstream_paths_seen ON upstream_paths(seen_at);
)SQL",    // 7: chunks whose stored bytes are tiny (a small path's whole NAR, a
    // frame that compresses to almost nothing) are kept in the row itself
    // (`data`; NULL: in the blob store), not as a blob: on S3 each blob is
    // a request to write and to read.
    R"SQL(
ALTER TABLE chunks ADD COLUMN data BLOB;
)SQL",

};

// PostgreSQL: the same tables; version in schema_version, applied under an
// advisory lock so that replicas starting together migrate once.
inline constexpr std::array k_postgres_migrations = {
    // 1: the initial schema.
    R"SQL(
CREATE TABLE caches (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    is_public INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 40,
    store_dir TEXT NOT NULL DEFAULT '/nix/store',
    upstream_keys TEXT NOT NULL DEFAULT 'cache.nixos.org-1',
    created_at BIGINT NOT NULL
);
CREATE TABLE cache_keys (
    id BIGSERIAL PRIMARY KEY,
    cache_id BIGINT NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    public_key TEXT NOT NULL,
    current INTEGER NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);
CREATE INDEX cache_keys_cache ON cache_keys(cache_id);
CREATE TABLE chunks (
    id BIGSERIAL PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    size BIGINT NOT NULL,
    stored_size BIGINT NOT NULL,
    compression TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE nars (
    id BIGSERIAL PRIMARY KEY,
    nar_hash TEXT NOT NULL UNIQUE,
    nar_size BIGINT NOT NULL,
    file_hash TEXT NOT NULL,
    file_size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX nars_file_hash ON nars(file_hash);
CREATE TABLE nar_chunks (
    nar_id BIGINT NOT NULL REFERENCES nars(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    chunk_id BIGINT NOT NULL REFERENCES chunks(id),
    PRIMARY KEY (nar_id, seq)
);
CREATE INDEX nar_chunks_chunk ON nar_chunks(chunk_id);
CREATE TABLE uploads (
    cache_id BIGINT NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    nar_id BIGINT NOT NULL REFERENCES nars(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (cache_id, name)
);
CREATE TABLE objects (
    id BIGSERIAL PRIMARY KEY,
    cache_id BIGINT NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    hash_part TEXT NOT NULL,
    store_path TEXT NOT NULL,
    nar_id BIGINT NOT NULL REFERENCES nars(id),
    refs TEXT NOT NULL,
    deriver TEXT NOT NULL,
    system TEXT NOT NULL,
    ca TEXT NOT NULL,
    sigs TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_accessed_at BIGINT NOT NULL,
    UNIQUE (cache_id, hash_part)
);
CREATE INDEX objects_nar ON objects(nar_id);
CREATE TABLE files (
    cache_id BIGINT NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    data BYTEA NOT NULL,
    content_encoding TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (cache_id, kind, name)
);
CREATE TABLE tokens (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
)SQL",
    // 2: blobs keyed by the hash of their stored bytes, several
    // representations per chunk and per NAR (security review H7, M1).
    R"SQL(
ALTER TABLE chunks ADD COLUMN content_hash TEXT NOT NULL DEFAULT '';
UPDATE chunks SET content_hash = hash;
ALTER TABLE chunks ADD COLUMN server_made INTEGER NOT NULL DEFAULT 0;
CREATE INDEX chunks_content ON chunks(content_hash, server_made);
ALTER TABLE nars DROP CONSTRAINT nars_nar_hash_key;
ALTER TABLE nars ADD CONSTRAINT nars_identity UNIQUE (nar_hash, file_hash);
)SQL",
    // 3: tokens remember the admin token that minted them (review M8); the
    // default upstream key becomes cache.nixos.org's full key, as the server
    // now verifies what pushes leave upstream (M10).
    R"SQL(
ALTER TABLE tokens ADD COLUMN parent_id BIGINT REFERENCES tokens(id);
CREATE INDEX tokens_parent ON tokens(parent_id);
UPDATE caches SET upstream_keys = 'cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY='
    WHERE upstream_keys = 'cache.nixos.org-1';
)SQL",
    // 4: garbage collection (issue 12). Blob keys become unique per write
    // (`blob`; old rows keep their hash as key), so a blob GC deletes can never
    // be one an upload is writing again; rows no NAR (chunks) or no object or
    // upload (NARs) uses are marked with the time they were first seen so, and
    // removed a grace period later; chunks fsck found missing or corrupt;
    // retention and size caps per cache; pins; leases (one GC at a time
    // across replicas).
    R"SQL(
ALTER TABLE chunks ADD COLUMN blob TEXT NOT NULL DEFAULT '';
UPDATE chunks SET blob = hash;
CREATE INDEX chunks_blob ON chunks(blob);
ALTER TABLE chunks ADD COLUMN orphan_since BIGINT;
ALTER TABLE chunks ADD COLUMN damaged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nars ADD COLUMN orphan_since BIGINT;
CREATE INDEX chunks_orphan ON chunks(orphan_since) WHERE orphan_since IS NOT NULL;
CREATE INDEX nars_orphan ON nars(orphan_since) WHERE orphan_since IS NOT NULL;
ALTER TABLE caches ADD COLUMN retention BIGINT;
ALTER TABLE caches ADD COLUMN max_size BIGINT;
CREATE INDEX uploads_nar ON uploads(nar_id);
CREATE INDEX objects_use ON objects(cache_id, last_accessed_at);
CREATE TABLE pins (
    id BIGSERIAL PRIMARY KEY,
    cache_id BIGINT NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    store_path TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX pins_cache ON pins(cache_id, name);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
)SQL",
    // 5: deferred ingest (issue 11): NARs a plain upload stored whole, to be
    // cut into chunks in the background; `claimed_until` lets one replica
    // at a time work on each.
    R"SQL(
CREATE TABLE deferred_nars (
    nar_id BIGINT PRIMARY KEY REFERENCES nars(id) ON DELETE CASCADE,
    cache_id BIGINT NOT NULL,
    queued_at BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL DEFAULT 0
);
)SQL",
    // 6: pull-through caches (issue 14): a cache's upstreams (JSON, read
    // by the cache module) and the retention and size cap of the paths
    // fetched from them (objects.proxied), and the narinfos upstreams answered, verified,
    // for paths whose NAR is not fetched yet (by hash part, and by NarHash
    // for the NAR request).
    R"SQL(
ALTER TABLE caches ADD COLUMN upstreams TEXT NOT NULL DEFAULT '';
ALTER TABLE caches ADD COLUMN proxy_retention BIGINT;
ALTER TABLE caches ADD COLUMN proxy_max_size BIGINT;
ALTER TABLE objects ADD COLUMN proxied INTEGER NOT NULL DEFAULT 0;
CREATE TABLE upstream_paths (
    cache_id BIGINT NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    hash_part TEXT NOT NULL,
    store_path TEXT NOT NULL,
    nar_hash TEXT NOT NULL,
    narinfo TEXT NOT NULL,
    nar_url TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (cache_id, hash_part)
);
CREATE INDEX upstream_paths_nar ON upstream_paths(cache_id, nar_hash);
CREATE INDEX upstream_paths_seen ON upstream_paths(seen_at);
)SQL",    // 7: chunks whose stored bytes are tiny (a small path's whole NAR, a
    // frame that compresses to almost nothing) are kept in the row itself
    // (`data`; NULL: in the blob store), not as a blob: on S3 each blob is
    // a request to write and to read.
    R"SQL(
ALTER TABLE chunks ADD COLUMN data BYTEA;
)SQL",

};

}  // namespace larder::db
