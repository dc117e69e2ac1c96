// larder fsck: every stored chunk (or a sample) read back and hashed.
#include <future>
#include <map>

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include "cache/service.hpp"
#include "cache/upload.hpp"
#include "crypto/encoding.hpp"
#include "crypto/sha256.hpp"

namespace larder::cache {

namespace {

constexpr size_t k_batch = 256;
constexpr size_t k_max_listed = 100;

enum class ChunkState { whole, missing, corrupt, unreadable };

struct Checked {
    ChunkState state = ChunkState::whole;
    std::string error;
};

// Streams the blob through a hash: memory stays bounded whatever the chunk size.
Checked check_chunk(blob::BlobStore& blobs, const db::ChunkRow& chunk) {
    crypto::HashSink hash;
    auto got = read_chunk(blobs, chunk, hash);
    if (!got && got.error().code == ErrorCode::not_found) return {ChunkState::missing, {}};
    if (!got) return {ChunkState::unreadable, got.error().message};
    bool same = hash.size() == chunk.stored_size && crypto::to_base16(hash.digest()) == chunk.hash;
    return {same ? ChunkState::whole : ChunkState::corrupt, {}};
}

// A fixed, spread-out sample: the same chunks each run at one percentage.
bool sampled(int64_t id, unsigned percent) {
    return percent >= 100 || (static_cast<uint64_t>(id) * 2654435761u) % 100 < percent;
}

}  // namespace

Result<FsckReport> CacheService::check_integrity(const FsckOptions& options) {
    FsckReport report;
    std::optional<int64_t> cache_id;
    if (options.cache) {
        TRY_ASSIGN(auto row, m_db.get_cache(*options.cache));
        cache_id = row.id;
    }
    int64_t after = 0;
    for (;;) {
        TRY_ASSIGN(auto rows, m_db.chunks_after(after, k_batch, cache_id));
        if (rows.empty()) break;
        after = rows.back().id;
        std::vector<std::pair<const db::ChunkRow*, std::future<Checked>>> checks;
        for (const auto& row : rows)
            if (sampled(row.id, options.sample_percent))
                checks.emplace_back(&row, m_upload_pool.submit([this, &row] { return check_chunk(m_blobs, row); }));
        std::vector<std::pair<const db::ChunkRow*, Checked>> results;  // all in before anything can return
        for (auto& [row, done] : checks) results.emplace_back(row, done.get());
        for (auto& [row, checked] : results) {
            ++report.chunks_checked;
            if (checked.state == ChunkState::unreadable) {
                if (report.errors.size() < k_max_listed)
                    report.errors.push_back(fmt::format("blob {}: {}", row->blob, checked.error));
                continue;
            }
            bool bad = checked.state != ChunkState::whole;
            if (checked.state == ChunkState::missing) ++report.missing;
            if (checked.state == ChunkState::corrupt) ++report.corrupt;
            if (bad && report.bad_blobs.size() < k_max_listed)
                report.bad_blobs.push_back(fmt::format("{} ({})", row->blob, checked.state == ChunkState::missing
                                                                                 ? "missing"
                                                                                 : "corrupt"));
            // A fact, repair or not: damaged NARs answer 404, never a short 200.
            if (bad != row->damaged) TRY(m_db.set_chunk_damaged(row->id, bad));
        }
    }
    TRY_ASSIGN(auto damaged, m_db.damaged_objects());
    TRY_ASSIGN(auto caches, m_db.list_caches());
    std::map<int64_t, db::CacheRow> by_id;
    for (auto& c : caches) by_id.emplace(c.id, std::move(c));
    for (const auto& o : damaged) {
        if (cache_id && o.cache_id != *cache_id) continue;
        auto& cache = by_id.at(o.cache_id);
        report.damaged_paths.push_back(fmt::format("{}/{}", cache.name, o.store_path));
        if (!options.repair) continue;
        // Its referrers go too: no visible path may lack a reference. Pins
        // do not hold a path that cannot be served.
        auto removed = remove_path(cache, o.hash_part, true, false);
        if (!removed && removed.error().code == ErrorCode::not_found) continue;  // a referrer of one before
        if (!removed) return Failure{std::move(removed).error()};
        for (const auto& base : *removed) report.withdrawn.push_back(fmt::format("{}/{}", cache.name, base));
    }
    if (report.missing || report.corrupt)
        spdlog::warn("fsck: {} chunks checked: {} missing, {} corrupt; {} paths damaged, {} withdrawn",
                     report.chunks_checked, report.missing, report.corrupt, report.damaged_paths.size(),
                     report.withdrawn.size());
    else
        spdlog::info("fsck: {} chunks checked, all whole", report.chunks_checked);
    return report;
}

}  // namespace larder::cache
