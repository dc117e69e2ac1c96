// Fault injection for unit tests (LevelDB's fault_injection idea): stores
// that pass every call through to a real one, except the Nth, which fails
// with `unavailable` as a dead disk, S3 or database would.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "blob/blob_store.hpp"
#include "db/metadata_store.hpp"

namespace larder::test {

class Faults {
public:
    // Fail the nth call from now on (1-based); 0: never.
    void fail_at(int n) {
        m_fail_at = n;
        m_calls = 0;
    }
    int calls() const { return m_calls; }
    // Called with the method's name before each call passes through: a
    // test can act there as a concurrent client would.
    std::function<void(std::string_view call)> before;

protected:
    bool tick(std::string_view call) {
        if (before) before(call);
        return ++m_calls == m_fail_at;
    }
    static Failure fault(const char* what) {
        return fail(ErrorCode::unavailable, std::string("injected fault in ") + what);
    }

private:
    int m_fail_at = 0;
    int m_calls = 0;
};

#define LARDER_FAULTY(ret, name, params, args)          \
    ret name params override {                          \
        if (tick(#name)) return fault(#name);           \
        return m_inner.name args;                       \
    }

class FaultyBlobStore : public blob::BlobStore, public Faults {
public:
    explicit FaultyBlobStore(blob::BlobStore& inner) : m_inner(inner) {}
    LARDER_FAULTY(Result<void>, put, (std::string_view key, std::string_view data), (key, data))
    LARDER_FAULTY(Result<void>, sync, (), ())
    // The writer's commit() counts as a call too.
    Result<std::unique_ptr<blob::BlobWriter>> create(std::string_view key) override {
        if (tick("create")) return fault("create");
        TRY_ASSIGN(auto inner, m_inner.create(key));
        if (!inner) return inner;
        struct Writer : blob::BlobWriter {
            std::unique_ptr<blob::BlobWriter> inner;
            FaultyBlobStore& faults;
            Writer(std::unique_ptr<blob::BlobWriter> w, FaultyBlobStore& f) : inner(std::move(w)), faults(f) {}
            Result<void> write(std::string_view data) override { return inner->write(data); }
            Result<void> commit() override {
                if (faults.tick("commit")) return fault("commit");
                return inner->commit();
            }
        };
        return std::unique_ptr<blob::BlobWriter>(std::make_unique<Writer>(std::move(inner), *this));
    }
    LARDER_FAULTY(Result<void>, get,
                  (std::string_view key, Sink& sink, uint64_t offset, std::optional<uint64_t> length),
                  (key, sink, offset, length))
    LARDER_FAULTY(Result<std::unique_ptr<Source>>, open, (std::string_view key, uint64_t offset, uint64_t length),
                  (key, offset, length))
    LARDER_FAULTY(Result<bool>, exists, (std::string_view key), (key))
    LARDER_FAULTY(Result<void>, remove, (std::string_view key), (key))
    LARDER_FAULTY(Result<std::vector<blob::BlobInfo>>, list, (), ())
    bool exists_is_cheap() const override { return m_inner.exists_is_cheap(); }
    blob::StoreCounters counters() const override { return m_inner.counters(); }
    std::string describe() const override { return "faulty " + m_inner.describe(); }

private:
    blob::BlobStore& m_inner;
};

class FaultyMetadataStore : public db::MetadataStore, public Faults {
public:
    explicit FaultyMetadataStore(db::MetadataStore& inner) : m_inner(inner) {}
    PoolStats pool_stats() const override { return m_inner.pool_stats(); }
    using sv = std::string_view;
    using strings = std::vector<std::string>;
    LARDER_FAULTY(Result<db::CacheRow>, create_cache, (const db::CacheRow& c, const db::KeyRow& k), (c, k))
    LARDER_FAULTY(Result<db::CacheRow>, get_cache, (sv name), (name))
    LARDER_FAULTY(Result<std::vector<db::CacheRow>>, list_caches, (), ())
    LARDER_FAULTY(Result<void>, update_cache, (const db::CacheRow& c), (c))
    LARDER_FAULTY(Result<void>, delete_cache, (int64_t id), (id))
    LARDER_FAULTY(Result<std::vector<db::KeyRow>>, cache_keys, (int64_t id), (id))
    LARDER_FAULTY(Result<void>, add_cache_key, (const db::KeyRow& k), (k))
    LARDER_FAULTY(Result<std::optional<db::ChunkRow>>, find_server_chunk, (sv h, std::optional<int64_t> c), (h, c))
    LARDER_FAULTY(Result<std::optional<db::ChunkRow>>, find_chunk_by_key, (sv k, std::optional<int64_t> c), (k, c))
    LARDER_FAULTY(Result<db::ChunkRow>, insert_chunk, (const db::ChunkRow& c), (c))
    LARDER_FAULTY(Result<bool>, revive_chunk, (int64_t id), (id))
    LARDER_FAULTY(Result<db::NarRow>, insert_nar, (const db::NarRow& n), (n))
    LARDER_FAULTY(Result<std::optional<db::NarRow>>, find_nar, (int64_t id), (id))
    LARDER_FAULTY(Result<std::optional<db::NarRow>>, find_cache_nar, (int64_t c, sv h), (c, h))
    LARDER_FAULTY(Result<void>, defer_nar, (const DeferredNar& d), (d))
    LARDER_FAULTY(Result<std::vector<DeferredNar>>, claim_deferred, (int64_t n, int64_t u, size_t l), (n, u, l))
    LARDER_FAULTY(Result<std::optional<strings>>, replace_nar, (int64_t id, sv h, const db::NarRow& n), (id, h, n))
    LARDER_FAULTY(Result<int64_t>, count_chunks, (), ())
    LARDER_FAULTY(Result<std::vector<CacheSize>>, cache_sizes, (), ())
    LARDER_FAULTY(Result<StorageCounts>, storage_counts, (), ())
    LARDER_FAULTY(Result<void>, record_upload, (int64_t c, sv n, int64_t id), (c, n, id))
    LARDER_FAULTY(Result<void>, put_upstream_path, (const db::UpstreamPathRow& r), (r))
    LARDER_FAULTY(Result<std::optional<db::UpstreamPathRow>>, find_upstream_path, (int64_t c, sv h), (c, h))
    LARDER_FAULTY(Result<std::optional<db::UpstreamPathRow>>, find_upstream_nar, (int64_t c, sv h), (c, h))
    LARDER_FAULTY(Result<int64_t>, expire_upstream_paths, (int64_t t), (t))
    LARDER_FAULTY(Result<std::optional<int64_t>>, find_upload, (int64_t c, sv n), (c, n))
    LARDER_FAULTY(Result<std::optional<db::ObjectRow>>, find_object, (int64_t c, sv h), (c, h))
    LARDER_FAULTY(Result<strings>, missing_objects, (int64_t c, const strings& h), (c, h))
    LARDER_FAULTY(Result<void>, put_object, (const db::ObjectRow& o, const strings& r), (o, r))
    LARDER_FAULTY(Result<std::vector<db::ObjectRow>>, list_objects, (int64_t c), (c))
    LARDER_FAULTY(Result<bool>, delete_object, (int64_t c, sv h), (c, h))
    LARDER_FAULTY(Result<void>, set_object_sigs, (int64_t id, const strings& s), (id, s))
    LARDER_FAULTY(Result<void>, record_uses, (int64_t when, const Uses& u), (when, u))
    LARDER_FAULTY(Result<std::vector<db::GcObject>>, gc_objects, (int64_t c), (c))
    LARDER_FAULTY(Result<std::vector<int64_t>>, delete_unused_objects,
                  (const std::vector<std::pair<int64_t, int64_t>>& o, const AcceptDeleted& a), (o, a))
    LARDER_FAULTY(Result<int64_t>, sweep_nars, (int64_t now, int64_t cutoff), (now, cutoff))
    LARDER_FAULTY(Result<std::vector<db::SweptChunk>>, sweep_chunks, (int64_t cutoff, size_t limit), (cutoff, limit))
    LARDER_FAULTY(Result<strings>, known_blobs, (const strings& k), (k))
    LARDER_FAULTY(Result<std::vector<db::ChunkRow>>, chunks_after, (int64_t a, size_t l, std::optional<int64_t> c),
                  (a, l, c))
    LARDER_FAULTY(Result<void>, set_chunk_damaged, (int64_t id, bool d), (id, d))
    LARDER_FAULTY(Result<std::vector<DamagedObject>>, damaged_objects, (), ())
    LARDER_FAULTY(Result<bool>, take_lease, (sv n, sv h, int64_t now, int64_t until), (n, h, now, until))
    LARDER_FAULTY(Result<void>, drop_lease, (sv n, sv h), (n, h))
    LARDER_FAULTY(Result<std::optional<std::string>>, lease_holder, (sv n, int64_t now), (n, now))
    LARDER_FAULTY(Result<db::PinRow>, add_pin, (const db::PinRow& p, size_t keep), (p, keep))
    LARDER_FAULTY(Result<std::vector<db::PinRow>>, list_pins, (int64_t c), (c))
    LARDER_FAULTY(Result<int64_t>, delete_pin, (int64_t c, sv n), (c, n))
    LARDER_FAULTY(Result<void>, put_file, (int64_t c, sv k, sv n, sv d, sv e), (c, k, n, d, e))
    LARDER_FAULTY(Result<std::optional<File>>, get_file, (int64_t c, sv k, sv n), (c, k, n))
    LARDER_FAULTY(Result<db::TokenRow>, create_token, (const db::TokenRow& t), (t))
    LARDER_FAULTY(Result<std::optional<db::TokenRow>>, find_token, (sv h), (h))
    LARDER_FAULTY(Result<std::vector<db::TokenRow>>, list_tokens, (), ())
    LARDER_FAULTY(Result<void>, revoke_token, (int64_t id, int64_t when), (id, when))

private:
    db::MetadataStore& m_inner;
};

#undef LARDER_FAULTY

}  // namespace larder::test
