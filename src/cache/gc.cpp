// Garbage collection, pins and path deletion: everything that removes.
//
// Closure safety: a path's effective last use is the latest use of it or of
// any path of the cache that refers to it (transitively), so a path is never
// older than its referrers, and retention and size caps remove referrers
// before what they refer to. Each deletion is conditional on the path not
// having been used since GC looked (a push touches the references it
// relies on, in the same transaction that makes it visible), and a path
// kept that way keeps everything it refers to.
//
// Storage: NARs no path or upload uses, then chunks no NAR uses, are marked
// and removed a grace period later; uploads revive what they reuse, and blob
// keys are never written twice, so removal never races an upload.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <unordered_map>
#include <unordered_set>

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include "cache/service.hpp"
#include "nix/store_path.hpp"
#include "util/strings.hpp"

namespace larder::cache {

namespace {

constexpr std::string_view k_gc_lease = "gc";
constexpr int64_t k_lease_seconds = 30;  // renewed at least every k_renew_every blob deletions
constexpr size_t k_renew_every = 100;
constexpr size_t k_sweep_batch = 1000;
constexpr size_t k_delete_batch = 2000;  // paths deleted per transaction

int64_t wall_clock() { return static_cast<int64_t>(std::time(nullptr)); }

// Seconds since `start`, for the progress lines in the log.
double since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A cache's paths as a reference graph.
struct Graph {
    std::vector<db::GcObject> objects;
    std::unordered_map<std::string, size_t> by_name;  // base name -> index
    std::vector<std::vector<size_t>> refs;            // in-cache references, self excluded
    std::vector<std::vector<size_t>> referrers;
    std::vector<size_t> order;                        // referrers before what they refer to
    std::vector<bool> in_cycle;                       // not in `order`: never deleted

    explicit Graph(std::vector<db::GcObject> rows) : objects(std::move(rows)) {
        auto n = objects.size();
        for (size_t i = 0; i < n; ++i) by_name.emplace(objects[i].store_path, i);
        refs.resize(n);
        referrers.resize(n);
        for (size_t i = 0; i < n; ++i)
            for (const auto& r : objects[i].references) {
                auto it = by_name.find(r);
                if (it == by_name.end() || it->second == i) continue;
                refs[i].push_back(it->second);
                referrers[it->second].push_back(i);
            }
        // Kahn's algorithm from the paths nothing refers to.
        std::vector<size_t> pending(n);
        for (size_t i = 0; i < n; ++i) pending[i] = referrers[i].size();
        for (size_t i = 0; i < n; ++i)
            if (pending[i] == 0) order.push_back(i);
        for (size_t at = 0; at < order.size(); ++at)
            for (auto j : refs[order[at]])
                if (--pending[j] == 0) order.push_back(j);
        in_cycle.assign(n, true);
        for (auto i : order) in_cycle[i] = false;
    }

    std::optional<size_t> find(std::string_view name) const {
        auto it = by_name.find(std::string(name));
        if (it == by_name.end()) return std::nullopt;
        return it->second;
    }

    // Marks i and everything it refers to (`refs`), or every path that
    // refers to it (`referrers`), transitively.
    static void mark_reachable(size_t i, const std::vector<std::vector<size_t>>& edges, std::vector<bool>& marked) {
        std::vector<size_t> stack{i};
        while (!stack.empty()) {
            auto at = stack.back();
            stack.pop_back();
            if (marked[at]) continue;
            marked[at] = true;
            for (auto j : edges[at]) stack.push_back(j);
        }
    }
    void mark_closure(size_t i, std::vector<bool>& marked) const { mark_reachable(i, refs, marked); }
    void mark_referrers(size_t i, std::vector<bool>& marked) const { mark_reachable(i, referrers, marked); }
};


}  // namespace

// --- deleting paths and pins -----------------------------------------------

Result<std::vector<std::string>> CacheService::delete_path(const db::CacheRow& cache, std::string_view hash_part,
                                                          bool cascade) {
    return remove_path(cache, hash_part, cascade, true);
}

Result<std::vector<std::string>> CacheService::remove_path(const db::CacheRow& cache, std::string_view hash_part,
                                                          bool cascade, bool respect_pins) {
    TRY_ASSIGN(auto object, m_db.find_object(cache.id, hash_part));
    if (!object) return fail(ErrorCode::not_found, "no such path in this cache");
    TRY_ASSIGN(auto rows, m_db.gc_objects(cache.id));
    Graph graph(std::move(rows));
    auto target = graph.find(object->store_path);
    if (!target) return fail(ErrorCode::not_found, "no such path in this cache");
    std::vector<bool> doomed(graph.objects.size(), false);
    graph.mark_referrers(*target, doomed);
    std::vector<std::string> referrers;
    for (size_t i = 0; i < doomed.size(); ++i)
        if (doomed[i] && i != *target) referrers.push_back(graph.objects[i].store_path);
    if (!referrers.empty() && !cascade)
        return fail(ErrorCode::conflict,
                    fmt::format("{} paths of cache '{}' refer to {} (e.g. {}); delete them first, or delete with "
                                "--cascade to remove them too",
                                referrers.size(), cache.name, object->store_path, referrers.front()));
    TRY_ASSIGN(auto pins, m_db.list_pins(cache.id));
    for (const auto& pin : pins)
        if (auto i = graph.find(pin.store_path); i && doomed[*i] && respect_pins)
            return fail(ErrorCode::conflict, fmt::format("{} is pinned as '{}' in cache '{}'; unpin it first",
                                                         pin.store_path, pin.name, cache.name));
    // Referrers first: a failure part way leaves no path without a reference.
    std::vector<std::string> deleted;
    std::vector<size_t> order = graph.order;
    for (size_t i = 0; i < graph.objects.size(); ++i)
        if (graph.in_cycle[i]) order.push_back(i);
    for (auto i : order) {
        if (!doomed[i]) continue;
        auto hash = graph.objects[i].store_path.substr(0, nix::k_hash_part_length);
        TRY(m_db.delete_object(cache.id, hash));
        forget_path(cache.id, hash);
        deleted.push_back(graph.objects[i].store_path);
    }
    return deleted;
}

Result<PinInfo> CacheService::pin(const db::CacheRow& cache, std::string_view name, std::string_view path,
                                  size_t keep) {
    if (name.empty() || name.size() > 128 || !is_alnum_or(name, "-._+@:"))
        return fail(ErrorCode::invalid_input,
                    fmt::format("invalid pin name '{}': use 1-128 of letters, digits and - . _ + @ :",
                                printable(name, 64)));
    auto hash = nix::hash_part_of(path);
    if (!hash) return fail(ErrorCode::invalid_input, fmt::format("'{}' is not a store path", printable(path)));
    TRY_ASSIGN(auto object, m_db.find_object(cache.id, *hash));
    if (!object)
        return fail(ErrorCode::not_found, fmt::format("cache '{}' has no path {}", cache.name, printable(path)));
    TRY_ASSIGN(auto row, m_db.add_pin(db::PinRow{0, cache.id, std::string(name), object->store_path, 0}, keep));
    return PinInfo{row.name, row.store_path, row.created_at};
}

Result<std::vector<PinInfo>> CacheService::pins(const db::CacheRow& cache) {
    TRY_ASSIGN(auto rows, m_db.list_pins(cache.id));
    std::vector<PinInfo> out;
    for (auto& r : rows) out.push_back(PinInfo{std::move(r.name), std::move(r.store_path), r.created_at});
    return out;
}

Result<void> CacheService::unpin(const db::CacheRow& cache, std::string_view name) {
    TRY_ASSIGN(auto removed, m_db.delete_pin(cache.id, name));
    if (removed == 0)
        return fail(ErrorCode::not_found, fmt::format("cache '{}' has no pin '{}'", cache.name, printable(name, 64)));
    return ok();
}

// --- garbage collection ----------------------------------------------------

Result<void> CacheService::renew_gc_lease() {
    auto t = wall_clock();
    TRY_ASSIGN(bool held, m_db.take_lease(k_gc_lease, m_gc_holder, t, t + k_lease_seconds));
    if (!held) return fail(ErrorCode::conflict, "garbage collection is running on another replica; try again later");
    return ok();
}

std::optional<GcReport> CacheService::last_gc() const {
    std::lock_guard lock(m_last_gc_mutex);
    return m_last_gc;
}

Result<GcReport> CacheService::collect_garbage(const GcOptions& options) {
    std::unique_lock local(m_gc_mutex, std::try_to_lock);
    if (!local.owns_lock()) return fail(ErrorCode::conflict, "garbage collection is already running on this server");
    TRY(renew_gc_lease());
    GcReport report;
    report.started = wall_clock();
    report.now = options.now.value_or(report.started);
    report.dry_run = options.dry_run;
    auto run = [&]() -> Result<void> {
        // This replica's uses count; others' arrive with their next flush.
        TRY(flush_uses());
        std::vector<db::CacheRow> caches;
        if (options.cache) {
            TRY_ASSIGN(auto row, m_db.get_cache(*options.cache));
            caches.push_back(std::move(row));
        } else {
            TRY_ASSIGN(caches, m_db.list_caches());
        }
        for (const auto& c : caches) {
            TRY(renew_gc_lease());
            auto r = collect_cache(c, options, report.now);
            if (!r) {
                report.errors.push_back(fmt::format("cache '{}': {}", c.name, r.error().message));
                continue;
            }
            if (!r->deleted.empty())
                spdlog::info("gc: cache '{}': {} {} of {} paths ({} bytes of NARs), {} kept as used meanwhile; "
                             "{} bytes remain",
                             c.name, options.dry_run ? "would delete" : "deleted", r->deleted.size(), r->paths,
                             r->deleted_bytes, r->revived, r->size_after);
            report.caches.push_back(std::move(*r));
        }
        if (!options.dry_run) {
            // Upstream narinfos not looked at for a while are asked for again
            // when next wanted; those of fetched paths are no longer needed.
            TRY(m_db.expire_upstream_paths(report.now - m_config.upstream_path_ttl.count()));
            TRY(sweep(report, report.now));
        }
        return ok();
    };
    auto result = run();
    (void)m_db.drop_lease(k_gc_lease, m_gc_holder);
    ++(result && report.errors.empty() ? m_counters.gc_runs : m_counters.gc_failures);
    if (!result) return Failure{std::move(result).error()};
    report.finished = wall_clock();
    if (report.errors.empty() && !options.dry_run) m_counters.gc_last_success = report.finished;
    for (const auto& e : report.errors) spdlog::warn("gc: {}", e);
    spdlog::info("gc: {} in {} s: {} NARs, {} chunks ({} bytes), {} orphan blobs removed; {} errors",
                 options.dry_run ? "dry run" : "done", report.finished - report.started, report.nars_deleted,
                 report.chunks_deleted, report.chunk_bytes_deleted, report.orphan_blobs_deleted, report.errors.size());
    std::lock_guard lock(m_last_gc_mutex);
    m_last_gc = report;
    return report;
}

Result<GcCacheReport> CacheService::collect_cache(const db::CacheRow& cache, const GcOptions& options, int64_t now) {
    GcCacheReport report;
    report.cache = cache.name;
    auto start = std::chrono::steady_clock::now();
    TRY_ASSIGN(auto rows, m_db.gc_objects(cache.id));
    spdlog::info("gc: cache '{}': read {} paths in {:.1f} s", cache.name, rows.size(), since(start));
    TRY_ASSIGN(auto pins, m_db.list_pins(cache.id));
    Graph graph(std::move(rows));
    auto n = graph.objects.size();
    report.paths = n;

    // Effective last use, pushed from referrers down to what they refer to.
    std::vector<int64_t> used(n);
    for (size_t i = 0; i < n; ++i) used[i] = graph.objects[i].last_used;
    for (auto i : graph.order)
        for (auto j : graph.refs[i]) used[j] = std::max(used[j], used[i]);

    // Kept: pinned closures, paths in a cycle (corrupt data: never touched),
    // and what retention keeps.
    std::vector<bool> pinned(n, false), keep(n, false);
    for (const auto& pin : pins)
        if (auto i = graph.find(pin.store_path)) graph.mark_closure(*i, pinned);
    for (size_t i = 0; i < n; ++i)
        if (graph.in_cycle[i]) graph.mark_closure(i, pinned);
    // Paths fetched from upstreams have their own retention (if set).
    for (size_t i = 0; i < n; ++i) {
        const auto& retention =
            graph.objects[i].proxied && cache.proxy_retention ? cache.proxy_retention : cache.retention;
        keep[i] = pinned[i] || !retention || used[i] >= now - *retention;
    }

    // The size caps: least recently used first (referrers before what they
    // refer to on equal use), never a pinned path nor one a kept path
    // refers to. Each NAR counts once. First the proxied paths' own cap
    // (over their bytes only), then the cache's (over all).
    std::vector<size_t> position(n);
    for (size_t at = 0; at < graph.order.size(); ++at) position[graph.order[at]] = at;
    auto cap = [&](std::optional<int64_t> limit, bool proxied_only) -> uint64_t {
        std::unordered_map<int64_t, size_t> nar_users;
        uint64_t size = 0;
        auto counts = [&](size_t i) { return keep[i] && (!proxied_only || graph.objects[i].proxied); };
        for (size_t i = 0; i < n; ++i)
            if (counts(i) && nar_users[graph.objects[i].nar_id]++ == 0) size += graph.objects[i].file_size;
        if (!limit || size <= static_cast<uint64_t>(*limit)) return size;
        std::vector<size_t> candidates;
        for (auto i : graph.order)
            if (counts(i) && !pinned[i]) candidates.push_back(i);
        std::stable_sort(candidates.begin(), candidates.end(), [&](size_t a, size_t b) {
            return used[a] != used[b] ? used[a] < used[b] : position[a] < position[b];
        });
        for (auto i : candidates) {
            if (size <= static_cast<uint64_t>(*limit)) break;
            bool referred = std::any_of(graph.referrers[i].begin(), graph.referrers[i].end(),
                                        [&](size_t r) { return keep[r]; });
            if (referred) continue;
            keep[i] = false;
            if (--nar_users[graph.objects[i].nar_id] == 0) size -= graph.objects[i].file_size;
        }
        return size;
    };
    if (cache.proxy_max_size) cap(cache.proxy_max_size, true);
    report.size_after = cap(cache.max_size, false);
    spdlog::info("gc: cache '{}': planned in {:.1f} s", cache.name, since(start));

    // Delete, referrers first, in transactions of k_delete_batch. A path used
    // (or newly referred to) since the rows were read stays, and so does
    // everything it refers to: a batch in which such a path's reference was
    // deleted is rolled back and done again one path at a time.
    std::vector<bool> stays = keep;
    std::unordered_set<int64_t> deleted;
    auto last_renewal = std::chrono::steady_clock::now();
    auto delete_batch = [&](const std::vector<size_t>& batch, bool checked) -> Result<bool> {
        std::vector<size_t> go;
        std::vector<std::pair<int64_t, int64_t>> rows;
        for (auto i : batch) {
            bool referred = std::any_of(graph.referrers[i].begin(), graph.referrers[i].end(),
                                        [&](size_t r) { return stays[r]; });
            if (referred) {
                stays[i] = true;
                continue;
            }
            go.push_back(i);
            rows.emplace_back(graph.objects[i].id, graph.objects[i].last_used);
        }
        if (rows.empty()) return true;
        std::vector<int64_t> ids;
        if (options.dry_run) {
            for (const auto& [id, used] : rows) ids.push_back(id);
        } else {
            if (since(last_renewal) > 5) {
                TRY(renew_gc_lease());
                last_renewal = std::chrono::steady_clock::now();
            }
            // Refused if a path kept (used meanwhile) refers to one deleted.
            auto accept = [&](const std::vector<int64_t>& gone) {
                if (!checked) return true;
                std::unordered_set<int64_t> set(gone.begin(), gone.end());
                for (auto i : go)
                    if (!set.count(graph.objects[i].id))
                        for (auto j : graph.refs[i])
                            if (set.count(graph.objects[j].id)) return false;
                return true;
            };
            auto r = m_db.delete_unused_objects(rows, accept);
            if (!r && r.error().code == ErrorCode::conflict) return false;
            if (!r) return Failure{std::move(r).error()};
            ids = std::move(*r);
        }
        deleted.insert(ids.begin(), ids.end());
        for (auto i : go) {
            const auto& o = graph.objects[i];
            if (!deleted.count(o.id)) {
                stays[i] = true;
                continue;
            }
            if (!options.dry_run) forget_path(cache.id, o.store_path.substr(0, nix::k_hash_part_length));
            report.deleted.push_back(o.store_path);
            report.deleted_bytes += o.file_size;
        }
        return true;
    };
    std::vector<size_t> doomed;
    for (auto i : graph.order)
        if (!keep[i]) doomed.push_back(i);
    for (size_t begin = 0; begin < doomed.size(); begin += k_delete_batch) {
        std::vector<size_t> batch(doomed.begin() + static_cast<ptrdiff_t>(begin),
                                  doomed.begin() + static_cast<ptrdiff_t>(std::min(doomed.size(), begin + k_delete_batch)));
        TRY_ASSIGN(bool done, delete_batch(batch, true));
        if (done) continue;
        for (auto i : batch) TRY(delete_batch({i}, false));  // one at a time: nothing to check within
    }
    for (size_t i = 0; i < n; ++i)
        if (stays[i] && !keep[i]) ++report.revived;
    return report;
}

Result<void> CacheService::sweep(GcReport& report, int64_t now) {
    auto cutoff = now - m_config.gc_grace_seconds;
    auto start = std::chrono::steady_clock::now();
    TRY_ASSIGN(report.nars_deleted, m_db.sweep_nars(now, cutoff));
    spdlog::info("gc: {} NARs deleted, chunks marked, in {:.1f} s", report.nars_deleted, since(start));
    // A blob that cannot be removed is reported; the rest go on (its row is
    // gone, so the orphan-blob pass of a later run retries it).
    auto remove = [&](const std::string& key) {
        auto r = m_blobs.remove(key);
        if (!r && r.error().code != ErrorCode::not_found) {
            if (report.errors.size() < 100) report.errors.push_back(fmt::format("blob {}: {}", key, r.error().message));
            return false;
        }
        return true;
    };
    for (;;) {
        TRY(renew_gc_lease());
        TRY_ASSIGN(auto swept, m_db.sweep_chunks(cutoff, k_sweep_batch));
        for (size_t i = 0; i < swept.size(); ++i) {
            if (i % k_renew_every == k_renew_every - 1) TRY(renew_gc_lease());
            if (!swept[i].blob.empty()) remove(swept[i].blob);  // empty: the bytes were in the row
            ++report.chunks_deleted;
            report.chunk_bytes_deleted += swept[i].stored_size;
        }
        if (swept.size() < k_sweep_batch) break;
    }
    // Blobs no row names and older than the grace period: uploads that
    // crashed between storing a chunk and recording it, and the pieces of
    // pull-through downloads other replicas followed.
    spdlog::info("gc: {} chunks deleted in {:.1f} s", report.chunks_deleted, since(start));
    TRY_ASSIGN(auto listed, m_blobs.list());
    std::vector<std::string> old;
    for (auto& b : listed)
        if (b.modified < cutoff) old.push_back(std::move(b.key));
    TRY_ASSIGN(auto known, m_db.known_blobs(old));
    std::unordered_set<std::string> named(known.begin(), known.end());
    for (size_t i = 0; i < old.size(); ++i) {
        if (i % k_renew_every == k_renew_every - 1) TRY(renew_gc_lease());
        if (!named.count(old[i]) && remove(old[i])) ++report.orphan_blobs_deleted;
    }
    return ok();
}

}  // namespace larder::cache
