// A small time-bounded memo for hot lookups (cache rows, rendered narinfos),
// so that a narinfo hit needs no database query. Entries expire after a TTL,
// which bounds how stale another replica's view can be; this process drops
// entries itself when it changes them.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace larder::cache {

template <class Value>
class LookupCache {
public:
    using Clock = std::chrono::steady_clock;

    explicit LookupCache(size_t max_entries = 100000) : m_max(max_entries) {}

    std::optional<Value> get(const std::string& key) const {
        std::shared_lock lock(m_mutex);
        auto it = m_entries.find(key);
        if (it == m_entries.end() || it->second.expires < Clock::now()) return std::nullopt;
        return it->second.value;
    }

    void put(const std::string& key, Value value, Clock::duration ttl) {
        if (ttl <= Clock::duration::zero()) return;
        std::unique_lock lock(m_mutex);
        if (m_entries.size() >= m_max) m_entries.clear();  // crude, but bounded
        m_entries.insert_or_assign(key, Entry{std::move(value), Clock::now() + ttl});
    }

    void erase(const std::string& key) {
        std::unique_lock lock(m_mutex);
        m_entries.erase(key);
    }

    void clear() {
        std::unique_lock lock(m_mutex);
        m_entries.clear();
    }

private:
    struct Entry {
        Value value;
        Clock::time_point expires;
    };
    mutable std::shared_mutex m_mutex;
    std::unordered_map<std::string, Entry> m_entries;
    size_t m_max;
};

}  // namespace larder::cache
