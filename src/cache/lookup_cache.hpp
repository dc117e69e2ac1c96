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

    // Bounded both in entries and in bytes (keys plus the `bytes` each put
    // declares), so no request pattern grows it past that.
    explicit LookupCache(size_t max_entries = 100000, size_t max_bytes = 64 << 20)
        : m_max(max_entries), m_max_bytes(max_bytes) {}

    std::optional<Value> get(const std::string& key) const {
        std::shared_lock lock(m_mutex);
        auto it = m_entries.find(key);
        if (it == m_entries.end() || it->second.expires < Clock::now()) return std::nullopt;
        return it->second.value;
    }

    void put(const std::string& key, Value value, Clock::duration ttl, size_t bytes = 0) {
        size_t cost = key.size() + bytes + k_overhead;
        if (ttl <= Clock::duration::zero() || cost > m_max_bytes / 64) return;
        std::unique_lock lock(m_mutex);
        remove(key);
        if (m_entries.size() >= m_max || m_bytes + cost > m_max_bytes) {
            sweep_expired();
            if (m_entries.size() >= m_max || m_bytes + cost > m_max_bytes) clear_locked();  // crude, but bounded
        }
        m_entries.emplace(key, Entry{std::move(value), Clock::now() + ttl, cost});
        m_bytes += cost;
    }

    void erase(const std::string& key) {
        std::unique_lock lock(m_mutex);
        remove(key);
    }

    void clear() {
        std::unique_lock lock(m_mutex);
        clear_locked();
    }

    size_t size() const {
        std::shared_lock lock(m_mutex);
        return m_entries.size();
    }
    size_t bytes() const {
        std::shared_lock lock(m_mutex);
        return m_bytes;
    }

private:
    static constexpr size_t k_overhead = 96;  // map node, hash, timestamps
    struct Entry {
        Value value;
        Clock::time_point expires;
        size_t cost;
    };

    void remove(const std::string& key) {
        auto it = m_entries.find(key);
        if (it == m_entries.end()) return;
        m_bytes -= it->second.cost;
        m_entries.erase(it);
    }
    void sweep_expired() {
        auto now = Clock::now();
        for (auto it = m_entries.begin(); it != m_entries.end();) {
            if (it->second.expires < now) {
                m_bytes -= it->second.cost;
                it = m_entries.erase(it);
            } else {
                ++it;
            }
        }
    }
    void clear_locked() {
        m_entries.clear();
        m_bytes = 0;
    }

    mutable std::shared_mutex m_mutex;
    std::unordered_map<std::string, Entry> m_entries;
    size_t m_max;
    size_t m_max_bytes;
    size_t m_bytes = 0;
};

}  // namespace larder::cache
