// Last use of store paths, noted per request in memory and written in
// batches: a narinfo or NAR fetch costs a set insertion, never a database
// write, and each path gets at most one write per flush.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "db/metadata_store.hpp"

namespace larder::cache {

class UsageRecorder {
public:
    // Beyond this many distinct uses between flushes, more are dropped until
    // the next flush (the memory a request flood can take is bounded; a
    // dropped use only makes a path look older to garbage collection).
    static constexpr size_t k_max_pending = 1 << 20;

    void path(int64_t cache_id, std::string_view hash_part) {
        std::lock_guard lock(m_mutex);
        // Looked up first: a path fetched again (most are) allocates nothing.
        if (m_uses.paths.count(PathKey{cache_id, hash_part})) return;
        if (m_count < k_max_pending && m_uses.paths.emplace(cache_id, hash_part).second) ++m_count;
    }
    void nar(int64_t cache_id, int64_t nar_id) {
        std::lock_guard lock(m_mutex);
        if (m_count < k_max_pending && m_uses.nars.emplace(cache_id, nar_id).second) ++m_count;
    }

    // What was noted since the last take().
    db::MetadataStore::Uses take() {
        Pending pending;
        {
            std::lock_guard lock(m_mutex);
            std::swap(pending, m_uses);
            m_count = 0;
        }
        return db::MetadataStore::Uses{{pending.paths.begin(), pending.paths.end()},
                                       {pending.nars.begin(), pending.nars.end()}};
    }

private:
    using PathKey = std::pair<int64_t, std::string_view>;
    struct PathLess {
        using is_transparent = void;
        template <class A, class B>
        bool operator()(const A& a, const B& b) const {
            return PathKey(a.first, a.second) < PathKey(b.first, b.second);
        }
    };
    struct Pending {
        std::set<std::pair<int64_t, std::string>, PathLess> paths;
        std::set<std::pair<int64_t, int64_t>> nars;
    };
    std::mutex m_mutex;
    Pending m_uses;
    size_t m_count = 0;
};

}  // namespace larder::cache
