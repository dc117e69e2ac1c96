// The metadata store's SQL, written once for both backends. `Backend`
// supplies Connection and Query (bind with '?', step, columns), connect(),
// migrate() and the statement that begins a write transaction. The SQL here
// is the common dialect of SQLite >= 3.35 and PostgreSQL (RETURNING,
// ON CONFLICT ... DO UPDATE SET x = excluded.x).
#pragma once

#include <ctime>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <fmt/core.h>

#include "db/metadata_store.hpp"
#include "util/strings.hpp"

namespace larder::db::detail {

inline int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

inline std::string join(const std::vector<std::string>& items, char sep) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += sep;
        out += item;
    }
    return out;
}

inline std::vector<std::string> split_list(std::string_view text, char sep) {
    std::vector<std::string> out;
    for (auto part : split(text, sep))
        if (!part.empty()) out.emplace_back(part);
    return out;
}

// Applies migrations[version..] in order, each in its own transaction with
// the statement that records it (`record`: a format string taking the new
// version number).
template <class Connection, class Migrations>
Result<void> apply_migrations(Connection& conn, size_t version, const Migrations& migrations, const char* begin,
                              const char* record) {
    // A database a newer larder migrated: this one would misread it.
    if (version > migrations.size())
        return fail(ErrorCode::unavailable,
                    fmt::format("the database's schema is version {}, newer than this larder knows ({}): run the "
                                "newer larder, or restore the backup taken before the upgrade",
                                version, migrations.size()));
    for (size_t i = version; i < migrations.size(); ++i) {
        TRY(conn.exec(begin));
        auto r = conn.exec(migrations[i]);
        if (r) r = conn.exec(fmt::format(fmt::runtime(record), i + 1).c_str());
        if (!r) {
            (void)conn.exec("ROLLBACK");
            return fail(ErrorCode::unavailable,
                        fmt::format("database migration {} failed: {}", i + 1, r.error().message));
        }
        TRY(conn.exec("COMMIT"));
    }
    return ok();
}

template <class Backend>
class SqlStore : public MetadataStore {
public:
    using Connection = typename Backend::Connection;
    using Query = typename Backend::Query;

    explicit SqlStore(std::string url) : m_path(std::move(url)) {}

    Result<void> open() {
        TRY_ASSIGN(auto conn, connect());
        TRY(Backend::migrate(*conn));
        std::lock_guard lock(m_mutex);
        m_idle.push_back(std::move(conn));
        return ok();
    }

    // --- caches -----------------------------------------------------------
    Result<CacheRow> create_cache(const CacheRow& c, const KeyRow& key) override {
        return with_transaction([&](Connection& conn) -> Result<CacheRow> {
            auto q = conn.query(
                "INSERT INTO caches (name, is_public, priority, store_dir, upstream_keys, created_at, retention, "
                "max_size, upstreams, proxy_retention, proxy_max_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id");
            q.bind(c.name).bind(int64_t{c.is_public}).bind(int64_t{c.priority}).bind(c.store_dir)
                .bind(join(c.upstream_keys, ' ')).bind(now()).bind(c.retention).bind(c.max_size).bind(c.upstreams)
                .bind(c.proxy_retention).bind(c.proxy_max_size);
            auto r = q.step();
            if (!r) {
                if (r.error().code == ErrorCode::conflict)
                    return fail(ErrorCode::conflict, fmt::format("a cache named '{}' already exists", c.name));
                return Failure{std::move(r).error()};
            }
            CacheRow row = c;
            row.id = q.i64(0);
            KeyRow k = key;
            k.cache_id = row.id;
            TRY(insert_key(conn, k));
            return row;
        });
    }

    Result<CacheRow> get_cache(std::string_view name) override {
        return with_connection([&](Connection& conn) -> Result<CacheRow> {
            auto q = conn.query(
                "SELECT id, name, is_public, priority, store_dir, upstream_keys, created_at, retention, max_size, upstreams, proxy_retention, proxy_max_size "
                "FROM caches WHERE name = ?");
            q.bind(name);
            TRY_ASSIGN(bool row, q.step());
            if (!row) return fail(ErrorCode::not_found, fmt::format("no cache named '{}'", name));
            return cache_row(q);
        });
    }

    Result<std::vector<CacheRow>> list_caches() override {
        return with_connection([&](Connection& conn) -> Result<std::vector<CacheRow>> {
            auto q = conn.query(
                "SELECT id, name, is_public, priority, store_dir, upstream_keys, created_at, retention, max_size, upstreams, proxy_retention, proxy_max_size "
                "FROM caches ORDER BY name");
            std::vector<CacheRow> rows;
            for (;;) {
                TRY_ASSIGN(bool row, q.step());
                if (!row) return rows;
                rows.push_back(cache_row(q));
            }
        });
    }

    Result<void> update_cache(const CacheRow& c) override {
        return with_connection([&](Connection& conn) {
            auto q = conn.query(
                "UPDATE caches SET is_public = ?, priority = ?, store_dir = ?, upstream_keys = ?, retention = ?, "
                "max_size = ?, upstreams = ?, proxy_retention = ?, proxy_max_size = ? WHERE id = ?");
            q.bind(int64_t{c.is_public}).bind(int64_t{c.priority}).bind(c.store_dir)
                .bind(join(c.upstream_keys, ' ')).bind(c.retention).bind(c.max_size).bind(c.upstreams)
                .bind(c.proxy_retention).bind(c.proxy_max_size).bind(c.id);
            return q.run();
        });
    }

    Result<void> delete_cache(int64_t cache_id) override {
        return with_connection([&](Connection& conn) {
            auto q = conn.query("DELETE FROM caches WHERE id = ?");
            q.bind(cache_id);
            return q.run();
        });
    }

    Result<std::vector<KeyRow>> cache_keys(int64_t cache_id) override {
        return with_connection([&](Connection& conn) -> Result<std::vector<KeyRow>> {
            auto q = conn.query(
                "SELECT id, cache_id, secret, public_key, current FROM cache_keys "
                "WHERE cache_id = ? ORDER BY current DESC, id DESC");
            q.bind(cache_id);
            std::vector<KeyRow> rows;
            for (;;) {
                TRY_ASSIGN(bool row, q.step());
                if (!row) return rows;
                rows.push_back(KeyRow{q.i64(0), q.i64(1), q.text(2), q.text(3), q.i64(4) != 0});
            }
        });
    }

    Result<void> add_cache_key(const KeyRow& key) override {
        return with_transaction([&](Connection& conn) -> Result<void> {
            auto q = conn.query("UPDATE cache_keys SET current = 0 WHERE cache_id = ?");
            q.bind(key.cache_id);
            TRY(q.run());
            return insert_key(conn, key);
        });
    }

    // --- chunks and NARs --------------------------------------------------
#define LARDER_CHUNK_COLUMNS \
    "id, hash, size, stored_size, compression, content_hash, server_made, blob, orphan_since IS NOT NULL, damaged, data"
// The chunk (aliased c) is part of a NAR that a path of the cache (?) uses.
#define LARDER_USED_BY_CACHE \
    "EXISTS (SELECT 1 FROM nar_chunks nc JOIN objects o ON o.nar_id = nc.nar_id WHERE nc.chunk_id = c.id AND o.cache_id = ?)"
    Result<std::optional<ChunkRow>> find_server_chunk(std::string_view content_hash,
                                                      std::optional<int64_t> within_cache) override {
        if (!within_cache)
            return find_chunk_where("SELECT " LARDER_CHUNK_COLUMNS
                                    " FROM chunks WHERE content_hash = ? AND server_made = 1 ORDER BY id LIMIT 1",
                                    content_hash, std::nullopt);
        return find_chunk_where("SELECT " LARDER_CHUNK_COLUMNS " FROM chunks c WHERE content_hash = ? AND server_made = 1"
                                " AND " LARDER_USED_BY_CACHE " ORDER BY id LIMIT 1",
                                content_hash, within_cache);
    }

    Result<std::optional<ChunkRow>> find_chunk_by_key(std::string_view blob_key,
                                                      std::optional<int64_t> within_cache) override {
        if (!within_cache)
            return find_chunk_where("SELECT " LARDER_CHUNK_COLUMNS " FROM chunks WHERE hash = ?", blob_key, std::nullopt);
        return find_chunk_where("SELECT " LARDER_CHUNK_COLUMNS " FROM chunks c WHERE hash = ? AND " LARDER_USED_BY_CACHE,
                                blob_key, within_cache);
    }

    Result<ChunkRow> insert_chunk(const ChunkRow& c) override {
        return with_connection([&](Connection& conn) -> Result<ChunkRow> {
            // A conflicting row describes the very same bytes (its hash);
            // it keeps its own blob unless that one is lost.
            auto q = conn.query(c.replaces_lost_blob
                ? "INSERT INTO chunks (hash, size, stored_size, compression, content_hash, server_made, created_at, "
                  "blob, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO UPDATE SET orphan_since = NULL, "
                  "blob = excluded.blob, data = excluded.data, damaged = 0"
                : "INSERT INTO chunks (hash, size, stored_size, compression, content_hash, server_made, created_at, "
                  "blob, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO UPDATE SET orphan_since = NULL");
            q.bind(c.hash).bind(static_cast<int64_t>(c.size)).bind(static_cast<int64_t>(c.stored_size))
                .bind(c.compression).bind(c.content_hash.empty() ? c.hash : c.content_hash)
                .bind(int64_t{c.server_made}).bind(now()).bind(c.blob.empty() ? c.hash : c.blob);
            if (c.is_inline()) q.bind_blob(c.data);
            else q.bind(std::optional<int64_t>());  // NULL
            TRY(q.run());
            auto s = conn.query("SELECT " LARDER_CHUNK_COLUMNS " FROM chunks WHERE hash = ?");
            s.bind(c.hash);
            TRY_ASSIGN(bool row, s.step());
            if (!row) return fail(ErrorCode::internal, "chunk vanished after insert");
            return chunk_row(s, 0);
        });
    }

    Result<bool> revive_chunk(int64_t chunk_id) override {
        return with_connection([&](Connection& conn) -> Result<bool> {
            auto q = conn.query("UPDATE chunks SET orphan_since = NULL WHERE id = ? RETURNING id");
            q.bind(chunk_id);
            return q.step();
        });
    }

    Result<NarRow> insert_nar(const NarRow& nar) override {
        return with_transaction([&](Connection& conn) -> Result<NarRow> {
            // Another upload (or replica) may have stored the same NAR first.
            auto q = conn.query(
                "INSERT INTO nars (nar_hash, nar_size, file_hash, file_size, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (nar_hash, file_hash) DO NOTHING RETURNING id");
            q.bind(nar.nar_hash).bind(static_cast<int64_t>(nar.nar_size)).bind(nar.file_hash)
                .bind(static_cast<int64_t>(nar.file_size)).bind(now());
            TRY_ASSIGN(bool inserted, q.step());
            if (!inserted) {
                // Only a byte-identical representation is shared.
                auto existing = conn.query("SELECT id FROM nars WHERE nar_hash = ? AND file_hash = ?");
                existing.bind(nar.nar_hash).bind(nar.file_hash);
                TRY_ASSIGN(bool found, existing.step());
                if (!found) return fail(ErrorCode::unavailable, "a NAR vanished while it was stored; try again");
                auto id = existing.i64(0);
                auto revive = conn.query("UPDATE nars SET orphan_since = NULL WHERE id = ?");
                revive.bind(id);
                TRY(revive.run());
                return load_nar(conn, id);
            }
            NarRow row = nar;
            row.id = q.i64(0);
            TRY(insert_nar_chunks(conn, row.id, nar.chunks));
            return row;
        });
    }

    Result<void> defer_nar(const DeferredNar& d) override {
        return with_connection([&](Connection& conn) {
            auto q = conn.query("INSERT INTO deferred_nars (nar_id, cache_id, queued_at) VALUES (?, ?, ?) "
                                "ON CONFLICT (nar_id) DO NOTHING");
            q.bind(d.nar_id).bind(d.cache_id).bind(now());
            return q.run();
        });
    }

    Result<std::vector<DeferredNar>> claim_deferred(int64_t at, int64_t until, size_t limit) override {
        return with_connection([&](Connection& conn) -> Result<std::vector<DeferredNar>> {
            // The claim is checked again on each row it updates: two replicas
            // picking the same rows claim each of them once.
            auto q = conn.query(
                "UPDATE deferred_nars SET claimed_until = ? WHERE claimed_until < ? AND nar_id IN "
                "(SELECT nar_id FROM deferred_nars WHERE claimed_until < ? ORDER BY queued_at LIMIT ?) "
                "RETURNING nar_id, cache_id");
            q.bind(until).bind(at).bind(at).bind(static_cast<int64_t>(limit));
            std::vector<DeferredNar> claimed;
            for (;;) {
                TRY_ASSIGN(bool row, q.step());
                if (!row) return claimed;
                claimed.push_back(DeferredNar{q.i64(0), q.i64(1)});
            }
        });
    }

    Result<std::optional<std::vector<std::string>>> replace_nar(int64_t nar_id, std::string_view old_file_hash,
                                                                const NarRow& chunked) override {
        using Changed = std::optional<std::vector<std::string>>;
        return with_transaction([&](Connection& conn) -> Result<Changed> {
            auto done = conn.query("DELETE FROM deferred_nars WHERE nar_id = ?");
            done.bind(nar_id);
            TRY(done.run());
            auto current = conn.query("SELECT nar_hash FROM nars WHERE id = ? AND file_hash = ?");
            current.bind(nar_id).bind(old_file_hash);
            TRY_ASSIGN(bool there, current.step());
            if (!there) return Changed();
            if (current.text(0) != chunked.nar_hash)
                return fail(ErrorCode::internal, fmt::format("NAR {} is {}, but its chunks make {}", nar_id,
                                                             current.text(0), chunked.nar_hash));
            std::vector<std::string> changed;
            auto users = conn.query("SELECT cache_id, hash_part FROM objects WHERE nar_id = ?");
            users.bind(nar_id);
            for (;;) {
                TRY_ASSIGN(bool row, users.step());
                if (!row) break;
                changed.push_back(fmt::format("{}/{}", users.i64(0), users.text(1)));
            }
            auto existing = conn.query("SELECT id FROM nars WHERE nar_hash = ? AND file_hash = ?");
            existing.bind(chunked.nar_hash).bind(chunked.file_hash);
            TRY_ASSIGN(bool found, existing.step());
            if (found) {
                // Already stored so (pushed, or another upload cut first):
                // its users move there, and this row becomes unused.
                auto to = existing.i64(0);
                auto revive = conn.query("UPDATE nars SET orphan_since = NULL WHERE id = ?");
                revive.bind(to);
                TRY(revive.run());
                auto objects = conn.query("UPDATE objects SET nar_id = ? WHERE nar_id = ?");
                objects.bind(to).bind(nar_id);
                TRY(objects.run());
                auto uploads = conn.query("UPDATE uploads SET nar_id = ? WHERE nar_id = ?");
                uploads.bind(to).bind(nar_id);
                TRY(uploads.run());
                return Changed(std::move(changed));
            }
            auto update = conn.query("UPDATE nars SET file_hash = ?, file_size = ? WHERE id = ?");
            update.bind(chunked.file_hash).bind(static_cast<int64_t>(chunked.file_size)).bind(nar_id);
            TRY(update.run());
            auto old_chunks = conn.query("DELETE FROM nar_chunks WHERE nar_id = ?");
            old_chunks.bind(nar_id);
            TRY(old_chunks.run());
            TRY(insert_nar_chunks(conn, nar_id, chunked.chunks));
            return Changed(std::move(changed));
        });
    }

    Result<std::optional<NarRow>> find_nar(int64_t nar_id) override {
        return with_connection([&](Connection& conn) -> Result<std::optional<NarRow>> {
            auto r = load_nar(conn, nar_id);
            if (!r && r.error().code == ErrorCode::not_found) return std::optional<NarRow>();
            if (!r) return Failure{std::move(r).error()};
            return std::optional<NarRow>(std::move(*r));
        });
    }

    Result<std::optional<NarRow>> find_cache_nar(int64_t cache_id, std::string_view file_hash) override {
        return with_connection([&](Connection& conn) -> Result<std::optional<NarRow>> {
            auto q = conn.query(
                "SELECT n.id FROM nars n WHERE n.file_hash = ? AND EXISTS "
                "(SELECT 1 FROM objects o WHERE o.nar_id = n.id AND o.cache_id = ?)");
            q.bind(file_hash).bind(cache_id);
            TRY_ASSIGN(bool row, q.step());
            if (!row) return std::optional<NarRow>();
            auto id = q.i64(0);
            TRY_ASSIGN(auto nar, load_nar(conn, id));
            return std::optional<NarRow>(std::move(nar));
        });
    }

    Result<int64_t> count_chunks() override {
        return with_connection([&](Connection& conn) -> Result<int64_t> {
            auto q = conn.query("SELECT count(*) FROM chunks");
            TRY(q.step());
            return q.i64(0);
        });
    }

    Result<std::vector<CacheSize>> cache_sizes() override {
        return with_connection([&](Connection& conn) -> Result<std::vector<CacheSize>> {
            auto q = conn.query("SELECT o.cache_id, count(*), coalesce(sum(n.file_size), 0) FROM objects o "
                                "JOIN nars n ON n.id = o.nar_id GROUP BY o.cache_id");
            std::vector<CacheSize> sizes;
            for (;;) {
                TRY_ASSIGN(bool row, q.step());
                if (!row) return sizes;
                sizes.push_back(CacheSize{q.i64(0), q.i64(1), q.i64(2)});
            }
        });
    }

    Result<StorageCounts> storage_counts() override {
        return with_connection([&](Connection& conn) -> Result<StorageCounts> {
            auto q = conn.query(
                "SELECT (SELECT count(*) FROM chunks), (SELECT count(*) FROM nars), "
                "(SELECT coalesce(sum(stored_size), 0) FROM chunks), "
                "(SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM nar_chunks nc WHERE nc.chunk_id = c.id)), "
                "(SELECT count(*) FROM nars n WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.nar_id = n.id) "
                "AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.nar_id = n.id)), "
                "(SELECT count(*) FROM deferred_nars), (SELECT count(*) FROM chunks WHERE data IS NOT NULL)");
            TRY(q.step());
            return StorageCounts{q.i64(0), q.i64(1), q.i64(2), q.i64(3), q.i64(4), q.i64(5), q.i64(6)};
        });
    }

    Result<void> record_upload(int64_t cache_id, std::string_view name, int64_t nar_id) override {
        return with_connection([&](Connection& conn) {
            auto q = conn.query(
                "INSERT INTO uploads (cache_id, name, nar_id, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (cache_id, name) DO UPDATE SET nar_id = excluded.nar_id, "
                "created_at = excluded.created_at");
            q.bind(cache_id).bind(name).bind(nar_id).bind(now());
            return q.run();
        });
    }

    Result<void> put_upstream_path(const UpstreamPathRow& r) override {
        return with_connection([&](Connection& conn) {
            auto q = conn.query(
                "INSERT INTO upstream_paths (cache_id, hash_part, store_path, nar_hash, narinfo, nar_url, seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cache_id, hash_part) DO UPDATE SET "
                "store_path = excluded.store_path, nar_hash = excluded.nar_hash, narinfo = excluded.narinfo, "
                "nar_url = excluded.nar_url, seen_at = excluded.seen_at");
            q.bind(r.cache_id).bind(r.hash_part).bind(r.store_path).bind(r.nar_hash).bind(r.narinfo).bind(r.nar_url)
                .bind(r.seen_at);
            return q.run();
        });
    }

    Result<std::optional<UpstreamPathRow>> find_upstream_path(int64_t cache_id, std::string_view hash_part) override {
        return find_upstream_by("hash_part", cache_id, hash_part);
    }

    Result<std::optional<UpstreamPathRow>> find_upstream_nar(int64_t cache_id, std::string_view nar_hash) override {
        return find_upstream_by("nar_hash", cache_id, nar_hash);
    }

    Result<int64_t> expire_upstream_paths(int64_t before) override {
        return with_connection([&](Connection& conn) -> Result<int64_t> {
            auto q = conn.query("DELETE FROM upstream_paths WHERE seen_at < ? RETURNING cache_id");
            q.bind(before);
            TRY_ASSIGN(auto ids, column_i64(q));
            return static_cast<int64_t>(ids.size());
        });
    }

    Result<std::optional<int64_t>> find_upload(int64_t cache_id, std::string_view name) override {
        return with_connection([&](Connection& conn) -> Result<std::optional<int64_t>> {
            auto q = conn.query("SELECT nar_id FROM uploads WHERE cache_id = ? AND name = ?");
            q.bind(cache_id).bind(name);
            TRY_ASSIGN(bool row, q.step());
            if (!row) return std::optional<int64_t>();
            return std::optional<int64_t>(q.i64(0));
        });
    }

    // --- objects ----------------------------------------------------------
    Result<std::optional<ObjectRow>> find_object(int64_t cache_id, std::string_view hash_part) override {
        return with_connection([&](Connection& conn) -> Result<std::optional<ObjectRow>> {
            auto q = conn.query(
                "SELECT o.id, o.cache_id, o.hash_part, o.store_path, o.nar_id, o.refs, o.deriver, "
                "o.system, o.ca, o.sigs, o.created_at, n.nar_hash, n.nar_size, n.file_hash, n.file_size "
                "FROM objects o JOIN nars n ON n.id = o.nar_id WHERE o.cache_id = ? AND o.hash_part = ?");
            q.bind(cache_id).bind(hash_part);
            TRY_ASSIGN(bool row, q.step());
            if (!row) return std::optional<ObjectRow>();
            return std::optional<ObjectRow>(object_row(q));
        });
    }

    Result<std::vector<std::string>> missing_objects(int64_t cache_id,
                                                     const std::vector<std::string>& paths) override {
        // Set-based: one query per batch of hash parts, never one per path.
        // One statement text (connections cache statements by its address);
        // a short last batch is padded with a hash part no path has.
        constexpr size_t k_batch = 1000;
        static const std::string sql = [] {
            std::string s = "SELECT hash_part, store_path FROM objects WHERE cache_id = ? AND hash_part IN (?";
            for (size_t i = 1; i < k_batch; ++i) s += ",?";
            return s + ")";
        }();
        // "<hash>-<name>": the hash part is what comes before the first '-'
        // (nix32 has none).
        auto hash_of = [](std::string_view p) { return p.substr(0, p.find('-')); };
        return with_connection([&](Connection& conn) -> Result<std::vector<std::string>> {
            std::unordered_map<std::string, std::string> present;  // hash part -> base name
            for (size_t begin = 0; begin < paths.size(); begin += k_batch) {
                auto q = conn.query(sql.c_str());
                q.bind(cache_id);
                for (size_t i = begin; i < begin + k_batch; ++i)
                    q.bind(i < paths.size() ? hash_of(paths[i]) : std::string_view());
                for (;;) {
                    TRY_ASSIGN(bool row, q.step());
                    if (!row) break;
                    present.emplace(q.text(0), q.text(1));
                }
                q.reset();
            }
            std::vector<std::string> missing;
            std::unordered_set<std::string> seen;
            for (const auto& p : paths) {
                auto it = present.find(std::string(hash_of(p)));
                bool there = it != present.end() && (p.find('-') == std::string::npos || it->second == p);
                if (!there && seen.insert(p).second) missing.push_back(p);
            }
            return missing;
        });
    }

    Result<void> put_object(const ObjectRow& o, const std::vector<std::string>& references) override {
        return with_transaction([&](Connection& conn) -> Result<void> {
            auto t = now();
            for (const auto& ref : references) {
                auto touch = conn.query(
                    "UPDATE objects SET last_accessed_at = ? WHERE cache_id = ? AND store_path = ? RETURNING id");
                touch.bind(t).bind(o.cache_id).bind(ref);
                TRY_ASSIGN(bool there, touch.step());
                if (!there)
                    return fail(ErrorCode::conflict,
                                fmt::format("reference {} left the cache (garbage collected or deleted) while {} was "
                                            "uploaded; push it again",
                                            ref, o.store_path));
            }
            auto q = conn.query(
                "INSERT INTO objects (cache_id, hash_part, store_path, nar_id, refs, deriver, system, "
                "ca, sigs, created_at, last_accessed_at, proxied) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (cache_id, hash_part) DO UPDATE SET store_path = excluded.store_path, "
                "nar_id = excluded.nar_id, refs = excluded.refs, deriver = excluded.deriver, "
                "system = excluded.system, ca = excluded.ca, sigs = excluded.sigs, "
                "last_accessed_at = excluded.last_accessed_at, proxied = excluded.proxied");
            q.bind(o.cache_id).bind(o.hash_part).bind(o.store_path).bind(o.nar_id)
                .bind(join(o.references, ' ')).bind(o.deriver).bind(o.system).bind(o.ca)
                .bind(join(o.sigs, '\n')).bind(t).bind(t).bind(int64_t{o.proxied});
            return q.run();
        });
    }

    Result<std::vector<ObjectRow>> list_objects(int64_t cache_id) override {
        return with_connection([&](Connection& conn) -> Result<std::vector<ObjectRow>> {
            auto q = conn.query(
                "SELECT o.id, o.cache_id, o.hash_part, o.store_path, o.nar_id, o.refs, o.deriver, "
                "o.system, o.ca, o.sigs, o.created_at, n.nar_hash, n.nar_size, n.file_hash, n.file_size "
                "FROM objects o JOIN nars n ON n.id = o.nar_id WHERE o.cache_id = ? ORDER BY o.hash_part");
            q.bind(cache_id);
            std::vector<ObjectRow> rows;
            for (;;) {
                TRY_ASSIGN(bool row, q.step());
                if (!row) return rows;
                rows.push_back(object_row(q));
            }
        });
    }

    Result<bool> delete_object(int64_t cache_id, std::string_view hash_part) override {
        return with_connection([&](Connection& conn) -> Result<bool> {
            auto q = conn.query("DELETE FROM objects WHERE cache_id = ? AND hash_part = ? RETURNING id");
            q.bind(cache_id).bind(hash_part);
            return q.step();
        });
    }

    Result<void> set_object_sigs(int64_t object_id, const std::vector<std::string>& sigs) override {
        return with_connection([&](Connection& conn) {
            auto q = conn.query("UPDATE objects SET sigs = ? WHERE id = ?");
            q.bind(join(sigs, '\n')).bind(object_id);
            return q.run();
        });
    }

    // --- use and garbage collection --------------------------------------
    Result<void> record_uses(int64_t when, const Uses& uses) override {
        return with_transaction([&](Connection& conn) -> Result<void> {
            for (const auto& [cache_id, hash_part] : uses.paths) {
                auto q = conn.query(
                    "UPDATE objects SET last_accessed_at = ? WHERE cache_id = ? AND hash_part = ? "
                    "AND last_accessed_at < ?");
                q.bind(when).bind(cache_id).bind(hash_part).bind(when);
                TRY(q.run());
            }
            for (const auto& [cache_id, nar_id] : uses.nars) {
                auto q = conn.query(
                    "UPDATE objects SET last_accessed_at = ? WHERE cache_id = ? AND nar_id = ? "
                    "AND last_accessed_at < ?");
                q.bind(when).bind(cache_id).bind(nar_id).bind(when);
                TRY(q.run());
            }
            return ok();
        });
    }

    Result<std::vector<GcObject>> gc_objects(int64_t cache_id) override {
        return with_connection([&](Connection& conn) -> Result<std::vector<GcObject>> {
            auto q = conn.query(
                "SELECT o.id, o.store_path, o.refs, o.last_accessed_at, o.nar_id, n.file_size, o.proxied "
                "FROM objects o JOIN nars n ON n.id = o.nar_id WHERE o.cache_id = ?");
            q.bind(cache_id);
            std::vector<GcObject> rows;
            for (;;) {
                TRY_ASSIGN(bool row, q.step());
                if (!row) return rows;
                rows.push_back(GcObject{q.i64(0), q.text(1), split_list(q.text(2), ' '), q.i64(3), q.i64(4),
                                        static_cast<uint64_t>(q.i64(5)), q.i64(6) != 0});
            }
        });
    }

    Result<std::vector<int64_t>> delete_unused_objects(const std::vector<std::pair<int64_t, int64_t>>& objects,
                                                       const AcceptDeleted& accept) override {
        // Last use only grows, so "not used since" is "still what GC saw".
        constexpr size_t k_batch = 250;
        static const std::string sql = [] {
            std::string s = "DELETE FROM objects WHERE (id, last_accessed_at) IN (VALUES ";
            for (size_t i = 0; i < k_batch; ++i) s += i ? ", (CAST(? AS BIGINT), CAST(? AS BIGINT))" : "(CAST(? AS BIGINT), CAST(? AS BIGINT))";
            return s + ") RETURNING id";
        }();
        return with_transaction([&](Connection& conn) -> Result<std::vector<int64_t>> {
            std::vector<int64_t> deleted;
            for (size_t begin = 0; begin < objects.size(); begin += k_batch) {
                auto q = conn.query(sql.c_str());
                for (size_t i = begin; i < begin + k_batch; ++i) {
                    auto [id, used] = i < objects.size() ? objects[i] : std::pair<int64_t, int64_t>{0, 0};
                    q.bind(id).bind(used);
                }
                for (;;) {
                    TRY_ASSIGN(bool row, q.step());
                    if (!row) break;
                    deleted.push_back(q.i64(0));
                }
            }
            if (!accept(deleted)) return fail(ErrorCode::conflict, "objects were used while they were deleted");
            return deleted;
        });
    }

#define LARDER_NAR_UNUSED \
    "NOT EXISTS (SELECT 1 FROM objects o WHERE o.nar_id = nars.id) AND " \
    "NOT EXISTS (SELECT 1 FROM uploads u WHERE u.nar_id = nars.id)"
#define LARDER_CHUNK_UNUSED "NOT EXISTS (SELECT 1 FROM nar_chunks nc WHERE nc.chunk_id = chunks.id)"
    Result<int64_t> sweep_nars(int64_t now, int64_t cutoff) override {
        return with_connection([&](Connection& conn) -> Result<int64_t> {
            // Each statement is atomic on its own: what it removes is unused
            // at that moment, and uploads revive what they reuse.
            auto in_use = conn.query("UPDATE nars SET orphan_since = NULL WHERE orphan_since IS NOT NULL AND NOT ("
                                     LARDER_NAR_UNUSED ")");
            TRY(in_use.run());
            auto uploads = conn.query(
                "DELETE FROM uploads WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM objects o "
                "WHERE o.nar_id = uploads.nar_id AND o.cache_id = uploads.cache_id)");
            uploads.bind(cutoff);
            TRY(uploads.run());
            auto mark = conn.query("UPDATE nars SET orphan_since = ? WHERE orphan_since IS NULL AND " LARDER_NAR_UNUSED);
            mark.bind(now);
            TRY(mark.run());
            // In batches by id: one huge DELETE would hold its locks (and
            // cascade) for long, and a plan made from stale statistics can
            // turn "orphans first" into a scan per row.
            int64_t deleted = 0;
            for (;;) {
                auto pick = conn.query("SELECT id FROM nars WHERE orphan_since < ? AND " LARDER_NAR_UNUSED " LIMIT ?");
                pick.bind(cutoff).bind(static_cast<int64_t>(k_id_batch));
                TRY_ASSIGN(auto ids, column_i64(pick));
                if (ids.empty()) break;
                static const std::string sql = with_id_list(
                    "DELETE FROM nars WHERE orphan_since < ? AND " LARDER_NAR_UNUSED " AND id IN (", ") RETURNING id");
                auto sweep = conn.query(sql.c_str());
                sweep.bind(cutoff);
                bind_ids(sweep, ids);
                TRY_ASSIGN(auto gone, column_i64(sweep));
                deleted += static_cast<int64_t>(gone.size());
                if (ids.size() < k_id_batch) break;
            }
            auto chunks_in_use = conn.query("UPDATE chunks SET orphan_since = NULL WHERE orphan_since IS NOT NULL "
                                            "AND NOT " LARDER_CHUNK_UNUSED);
            TRY(chunks_in_use.run());
            auto mark_chunks = conn.query("UPDATE chunks SET orphan_since = ? WHERE orphan_since IS NULL AND "
                                          LARDER_CHUNK_UNUSED);
            mark_chunks.bind(now);
            TRY(mark_chunks.run());
            return deleted;
        });
    }

    Result<std::vector<SweptChunk>> sweep_chunks(int64_t cutoff, size_t limit) override {
        return with_connection([&](Connection& conn) -> Result<std::vector<SweptChunk>> {
            // Picked, then deleted by id with the conditions checked again
            // on each row as it goes (an upload may have revived it).
            auto pick = conn.query("SELECT id FROM chunks WHERE orphan_since < ? AND " LARDER_CHUNK_UNUSED " LIMIT ?");
            pick.bind(cutoff).bind(static_cast<int64_t>(std::min(limit, k_id_batch)));
            TRY_ASSIGN(auto ids, column_i64(pick));
            std::vector<SweptChunk> swept;
            if (ids.empty()) return swept;
            static const std::string sql = with_id_list("DELETE FROM chunks WHERE orphan_since < ? AND " LARDER_CHUNK_UNUSED
                                                        " AND id IN (",
                                                        ") RETURNING CASE WHEN data IS NULL THEN blob "
                                                        "ELSE '' END, stored_size");
            auto q = conn.query(sql.c_str());
            q.bind(cutoff);
            bind_ids(q, ids);
            for (;;) {
                TRY_ASSIGN(bool row, q.step());
                if (!row) return swept;
                swept.push_back(SweptChunk{q.text(0), static_cast<uint64_t>(q.i64(1))});
            }
        });
    }
#undef LARDER_NAR_UNUSED
#undef LARDER_CHUNK_UNUSED

    Result<std::vector<ChunkRow>> chunks_after(int64_t after_id, size_t limit,
                                               std::optional<int64_t> cache_id) override {
        return with_connection([&](Connection& conn) -> Result<std::vector<ChunkRow>> {
            auto q = conn.query(cache_id ? "SELECT " LARDER_CHUNK_COLUMNS " FROM chunks c WHERE id > ? AND "
                                           LARDER_USED_BY_CACHE " ORDER BY id LIMIT ?"
                                         : "SELECT " LARDER_CHUNK_COLUMNS " FROM chunks WHERE id > ? ORDER BY id LIMIT ?");
            q.bind(after_id);
            if (cache_id) q.bind(*cache_id);
            q.bind(static_cast<int64_t>(limit));
            std::vector<ChunkRow> rows;
            for (;;) {
                TRY_ASSIGN(bool row, q.step());
                if (!row) return rows;
                rows.push_back(chunk_row(q, 0));
            }
        });
    }

    Result<void> set_chunk_damaged(int64_t chunk_id, bool damaged) override {
        return with_connection([&](Connection& conn) {
            auto q = conn.query("UPDATE chunks SET damaged = ? WHERE id = ?");
            q.bind(int64_t{damaged}).bind(chunk_id);
            return q.run();
        });
    }

    Result<std::vector<DamagedObject>> damaged_objects() override {
        return with_connection([&](Connection& conn) -> Result<std::vector<DamagedObject>> {
            auto q = conn.query(
                "SELECT o.cache_id, o.hash_part, o.store_path FROM objects o WHERE EXISTS (SELECT 1 FROM nar_chunks nc "
                "JOIN chunks c ON c.id = nc.chunk_id WHERE nc.nar_id = o.nar_id AND c.damaged = 1) "
                "ORDER BY o.cache_id, o.store_path");
            std::vector<DamagedObject> rows;
            for (;;) {
                TRY_ASSIGN(bool row, q.step());
                if (!row) return rows;
                rows.push_back(DamagedObject{q.i64(0), q.text(1), q.text(2)});
            }
        });
    }

    Result<std::vector<std::string>> known_blobs(const std::vector<std::string>& keys) override {
        constexpr size_t k_batch = 500;
        static const std::string sql = [] {
            std::string s = "SELECT blob FROM chunks WHERE blob IN (?";
            for (size_t i = 1; i < k_batch; ++i) s += ",?";
            return s + ")";
        }();
        return with_connection([&](Connection& conn) -> Result<std::vector<std::string>> {
            std::vector<std::string> known;
            for (size_t begin = 0; begin < keys.size(); begin += k_batch) {
                auto q = conn.query(sql.c_str());  // one statement text: padded below
                for (size_t i = begin; i < begin + k_batch; ++i)
                    q.bind(i < keys.size() ? std::string_view(keys[i]) : std::string_view());
                for (;;) {
                    TRY_ASSIGN(bool row, q.step());
                    if (!row) break;
                    known.push_back(q.text(0));
                }
            }
            return known;
        });
    }

    Result<bool> take_lease(std::string_view name, std::string_view holder, int64_t at, int64_t expires_at) override {
        return with_connection([&](Connection& conn) -> Result<bool> {
            auto q = conn.query(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET holder = excluded.holder, expires_at = excluded.expires_at "
                "WHERE leases.expires_at < ? OR leases.holder = excluded.holder RETURNING holder");
            q.bind(name).bind(holder).bind(expires_at).bind(at);
            return q.step();
        });
    }

    Result<void> drop_lease(std::string_view name, std::string_view holder) override {
        return with_connection([&](Connection& conn) {
            auto q = conn.query("DELETE FROM leases WHERE name = ? AND holder = ?");
            q.bind(name).bind(holder);
            return q.run();
        });
    }

    Result<std::optional<std::string>> lease_holder(std::string_view name, int64_t now) override {
        return with_connection([&](Connection& conn) -> Result<std::optional<std::string>> {
            auto q = conn.query("SELECT holder FROM leases WHERE name = ? AND expires_at >= ?");
            q.bind(name).bind(now);
            TRY_ASSIGN(bool row, q.step());
            if (!row) return std::optional<std::string>();
            return std::optional<std::string>(q.text(0));
        });
    }

    // --- pins -------------------------------------------------------------
    Result<PinRow> add_pin(const PinRow& pin, size_t keep) override {
        return with_transaction([&](Connection& conn) -> Result<PinRow> {
            auto q = conn.query("INSERT INTO pins (cache_id, name, store_path, created_at) VALUES (?, ?, ?, ?) "
                                "RETURNING id");
            PinRow row = pin;
            row.created_at = now();
            q.bind(pin.cache_id).bind(pin.name).bind(pin.store_path).bind(row.created_at);
            TRY(q.step());
            row.id = q.i64(0);
            auto trim = conn.query(
                "DELETE FROM pins WHERE cache_id = ? AND name = ? AND id NOT IN (SELECT id FROM pins "
                "WHERE cache_id = ? AND name = ? ORDER BY id DESC LIMIT ?)");
            trim.bind(pin.cache_id).bind(pin.name).bind(pin.cache_id).bind(pin.name)
                .bind(static_cast<int64_t>(std::max<size_t>(keep, 1)));
            TRY(trim.run());
            return row;
        });
    }

    Result<std::vector<PinRow>> list_pins(int64_t cache_id) override {
        return with_connection([&](Connection& conn) -> Result<std::vector<PinRow>> {
            auto q = conn.query("SELECT id, cache_id, name, store_path, created_at FROM pins WHERE cache_id = ? "
                                "ORDER BY name, id DESC");
            q.bind(cache_id);
            std::vector<PinRow> rows;
            for (;;) {
                TRY_ASSIGN(bool row, q.step());
                if (!row) return rows;
                rows.push_back(PinRow{q.i64(0), q.i64(1), q.text(2), q.text(3), q.i64(4)});
            }
        });
    }

    Result<int64_t> delete_pin(int64_t cache_id, std::string_view name) override {
        return with_connection([&](Connection& conn) -> Result<int64_t> {
            auto q = conn.query("DELETE FROM pins WHERE cache_id = ? AND name = ? RETURNING id");
            q.bind(cache_id).bind(name);
            int64_t n = 0;
            for (;;) {
                TRY_ASSIGN(bool row, q.step());
                if (!row) return n;
                ++n;
            }
        });
    }

    // --- files ------------------------------------------------------------
    Result<void> put_file(int64_t cache_id, std::string_view kind, std::string_view name,
                          std::string_view data, std::string_view encoding) override {
        return with_connection([&](Connection& conn) {
            auto q = conn.query(
                "INSERT INTO files (cache_id, kind, name, data, content_encoding, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (cache_id, kind, name) DO UPDATE SET "
                "data = excluded.data, content_encoding = excluded.content_encoding");
            q.bind(cache_id).bind(kind).bind(name).bind_blob(data).bind(encoding).bind(now());
            return q.run();
        });
    }

    Result<std::optional<File>> get_file(int64_t cache_id, std::string_view kind,
                                         std::string_view name) override {
        return with_connection([&](Connection& conn) -> Result<std::optional<File>> {
            auto q = conn.query(
                "SELECT data, content_encoding FROM files WHERE cache_id = ? AND kind = ? AND name = ?");
            q.bind(cache_id).bind(kind).bind(name);
            TRY_ASSIGN(bool row, q.step());
            if (!row) return std::optional<File>();
            return std::optional<File>(File{q.text(0), q.text(1)});
        });
    }

    // --- tokens -----------------------------------------------------------
    Result<TokenRow> create_token(const TokenRow& t) override {
        return with_connection([&](Connection& conn) -> Result<TokenRow> {
            auto q = conn.query(
                "INSERT INTO tokens (name, secret_hash, scopes, expires_at, revoked_at, created_at, parent_id) "
                "VALUES (?, ?, ?, ?, NULL, ?, ?) RETURNING id");
            auto created = now();
            q.bind(t.name).bind(t.secret_hash).bind(t.scopes).bind(t.expires_at).bind(created).bind(t.parent_id);
            TRY(q.step());
            TokenRow row = t;
            row.id = q.i64(0);
            row.created_at = created;
            return row;
        });
    }

    Result<std::optional<TokenRow>> find_token(std::string_view secret_hash) override {
        return with_connection([&](Connection& conn) -> Result<std::optional<TokenRow>> {
            auto q = conn.query(
                "SELECT id, name, secret_hash, scopes, expires_at, revoked_at, created_at, parent_id "
                "FROM tokens WHERE secret_hash = ?");
            q.bind(secret_hash);
            TRY_ASSIGN(bool row, q.step());
            if (!row) return std::optional<TokenRow>();
            return std::optional<TokenRow>(token_row(q));
        });
    }

    Result<std::vector<TokenRow>> list_tokens() override {
        return with_connection([&](Connection& conn) -> Result<std::vector<TokenRow>> {
            auto q = conn.query(
                "SELECT id, name, secret_hash, scopes, expires_at, revoked_at, created_at, parent_id "
                "FROM tokens ORDER BY id");
            std::vector<TokenRow> rows;
            for (;;) {
                TRY_ASSIGN(bool row, q.step());
                if (!row) return rows;
                rows.push_back(token_row(q));
            }
        });
    }

    Result<void> revoke_token(int64_t id, int64_t when) override {
        return with_connection([&](Connection& conn) -> Result<void> {
            // The token and every token minted under it, at any depth.
            auto q = conn.query(
                "UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL AND id IN ("
                "WITH RECURSIVE minted(id) AS (SELECT CAST(? AS BIGINT) UNION "
                "SELECT t.id FROM tokens t JOIN minted m ON t.parent_id = m.id) SELECT id FROM minted)");
            q.bind(when).bind(id);
            return q.run();
        });
    }

    PoolStats pool_stats() const override {
        std::lock_guard lock(m_mutex);
        return {static_cast<int64_t>(m_idle.size()) + m_in_use, m_in_use, m_opened, m_connect_failures};
    }

private:
    Result<std::unique_ptr<Connection>> connect() {
        auto conn = Backend::connect(m_path);
        std::lock_guard lock(m_mutex);
        ++(conn ? m_opened : m_connect_failures);
        return conn;
    }

    template <class F>
    auto with_connection(F&& f) -> decltype(f(std::declval<Connection&>())) {
        std::unique_ptr<Connection> conn;
        {
            std::lock_guard lock(m_mutex);
            if (!m_idle.empty()) {
                conn = std::move(m_idle.back());
                m_idle.pop_back();
                ++m_in_use;
            }
        }
        if (!conn) {
            auto c = connect();
            if (!c) return Failure{std::move(c).error()};
            conn = std::move(*c);
            std::lock_guard lock(m_mutex);
            ++m_in_use;
        }
        auto result = f(*conn);
        std::lock_guard lock(m_mutex);
        --m_in_use;
        if (!conn->healthy()) return result;  // dropped; the next call connects afresh
        m_idle.push_back(std::move(conn));
        return result;
    }

    template <class F>
    auto with_transaction(F&& f) -> decltype(f(std::declval<Connection&>())) {
        return with_connection([&](Connection& conn) -> decltype(f(conn)) {
            TRY(conn.exec(Backend::k_begin));
            auto result = f(conn);
            if (result) {
                auto c = conn.exec("COMMIT");
                if (!c) {
                    (void)conn.exec("ROLLBACK");
                    return Failure{std::move(c).error()};
                }
            } else {
                (void)conn.exec("ROLLBACK");
            }
            return result;
        });
    }

    // Statements over a list of ids: always k_id_batch placeholders (one
    // statement text, prepared once), padded with 0, which no row has.
    static constexpr size_t k_id_batch = 1000;
    static std::string with_id_list(const char* head, const char* tail) {
        std::string s = head;
        for (size_t i = 0; i < k_id_batch; ++i) s += i ? ",?" : "?";
        return s + tail;
    }
    static void bind_ids(Query& q, const std::vector<int64_t>& ids) {
        for (size_t i = 0; i < k_id_batch; ++i) q.bind(i < ids.size() ? ids[i] : int64_t{0});
    }
    static Result<std::vector<int64_t>> column_i64(Query& q) {
        std::vector<int64_t> out;
        for (;;) {
            TRY_ASSIGN(bool row, q.step());
            if (!row) return out;
            out.push_back(q.i64(0));
        }
    }

    static Result<void> insert_key(Connection& conn, const KeyRow& k) {
        auto q = conn.query(
            "INSERT INTO cache_keys (cache_id, secret, public_key, current, created_at) VALUES (?, ?, ?, 1, ?)");
        q.bind(k.cache_id).bind(k.secret).bind(k.public_key).bind(now());
        return q.run();
    }

    static Result<void> insert_nar_chunks(Connection& conn, int64_t nar_id, const std::vector<ChunkRow>& chunks) {
        for (size_t i = 0; i < chunks.size(); ++i) {
            auto c = conn.query("INSERT INTO nar_chunks (nar_id, seq, chunk_id) VALUES (?, ?, ?)");
            c.bind(nar_id).bind(static_cast<int64_t>(i)).bind(chunks[i].id);
            auto r = c.run();
            if (!r && r.error().code == ErrorCode::conflict)
                return fail(ErrorCode::unavailable,
                            "a chunk of this NAR was garbage collected while it was uploaded; upload it again");
            TRY(r);
        }
        return ok();
    }

    static Result<NarRow> load_nar(Connection& conn, int64_t id) {
        auto q = conn.query("SELECT id, nar_hash, nar_size, file_hash, file_size FROM nars WHERE id = ?");
        q.bind(id);
        TRY_ASSIGN(bool row, q.step());
        if (!row) return fail(ErrorCode::not_found, "no such NAR");
        NarRow nar{q.i64(0), q.text(1), static_cast<uint64_t>(q.i64(2)), q.text(3),
                   static_cast<uint64_t>(q.i64(4)), {}};
        auto c = conn.query(
            "SELECT c.id, c.hash, c.size, c.stored_size, c.compression, c.content_hash, c.server_made, c.blob, "
            "c.orphan_since IS NOT NULL, c.damaged, c.data "
            "FROM nar_chunks nc "
            "JOIN chunks c ON c.id = nc.chunk_id WHERE nc.nar_id = ? ORDER BY nc.seq");
        c.bind(id);
        for (;;) {
            TRY_ASSIGN(bool more, c.step());
            if (!more) break;
            nar.chunks.push_back(chunk_row(c, 0));
        }
        return nar;
    }

    Result<std::optional<UpstreamPathRow>> find_upstream_by(const char* column, int64_t cache_id,
                                                            std::string_view value) {
        return with_connection([&](Connection& conn) -> Result<std::optional<UpstreamPathRow>> {
            // Two statement texts, each prepared once.
            auto q = conn.query(std::string_view(column) == "hash_part"
                                    ? "SELECT cache_id, hash_part, store_path, nar_hash, narinfo, nar_url, seen_at "
                                      "FROM upstream_paths WHERE cache_id = ? AND hash_part = ?"
                                    : "SELECT cache_id, hash_part, store_path, nar_hash, narinfo, nar_url, seen_at "
                                      "FROM upstream_paths WHERE cache_id = ? AND nar_hash = ? LIMIT 1");
            q.bind(cache_id).bind(value);
            TRY_ASSIGN(bool row, q.step());
            if (!row) return std::optional<UpstreamPathRow>();
            return std::optional<UpstreamPathRow>(
                UpstreamPathRow{q.i64(0), q.text(1), q.text(2), q.text(3), q.text(4), q.text(5), q.i64(6)});
        });
    }

    static CacheRow cache_row(Query& q) {
        CacheRow c{q.i64(0), q.text(1), q.i64(2) != 0, static_cast<int>(q.i64(3)), q.text(4),
                   split_list(q.text(5), ' '), q.i64(6), {}, {}, q.text(9), {}, {}};
        if (!q.is_null(7)) c.retention = q.i64(7);
        if (!q.is_null(8)) c.max_size = q.i64(8);
        if (!q.is_null(10)) c.proxy_retention = q.i64(10);
        if (!q.is_null(11)) c.proxy_max_size = q.i64(11);
        return c;
    }

    static ChunkRow chunk_row(Query& q, int c) {
        return ChunkRow{q.i64(c), q.text(c + 1), static_cast<uint64_t>(q.i64(c + 2)),
                        static_cast<uint64_t>(q.i64(c + 3)), q.text(c + 4), q.text(c + 5), q.i64(c + 6) != 0,
                        q.text(c + 7), false, q.i64(c + 8) != 0, q.i64(c + 9) != 0,
                        q.is_null(c + 10) ? std::string() : q.text(c + 10)};
    }

    Result<std::optional<ChunkRow>> find_chunk_where(const char* sql, std::string_view value,
                                                     std::optional<int64_t> cache_id) {
        return with_connection([&](Connection& conn) -> Result<std::optional<ChunkRow>> {
            auto q = conn.query(sql);
            q.bind(value);
            if (cache_id) q.bind(*cache_id);
            TRY_ASSIGN(bool row, q.step());
            if (!row) return std::optional<ChunkRow>();
            return std::optional<ChunkRow>(chunk_row(q, 0));
        });
    }

    static ObjectRow object_row(Query& q) {
        ObjectRow o{q.i64(0), q.i64(1), q.text(2), q.text(3), q.i64(4), split_list(q.text(5), ' '),
                    q.text(6), q.text(7), q.text(8), split_list(q.text(9), '\n'), q.i64(10), {}};
        o.nar = NarRow{o.nar_id, q.text(11), static_cast<uint64_t>(q.i64(12)), q.text(13),
                       static_cast<uint64_t>(q.i64(14)), {}};
        return o;
    }

    static TokenRow token_row(Query& q) {
        TokenRow t{q.i64(0), q.text(1), q.text(2), q.text(3), {}, {}, q.i64(6), {}};
        if (!q.is_null(7)) t.parent_id = q.i64(7);
        if (!q.is_null(4)) t.expires_at = q.i64(4);
        if (!q.is_null(5)) t.revoked_at = q.i64(5);
        return t;
    }

    std::string m_path;
    mutable std::mutex m_mutex;
    std::vector<std::unique_ptr<Connection>> m_idle;
    int64_t m_in_use = 0, m_opened = 0, m_connect_failures = 0;
};

}  // namespace larder::db::detail
