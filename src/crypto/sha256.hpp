// Streaming SHA-256 (OpenSSL).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "util/io.hpp"

struct evp_md_ctx_st;

namespace larder::crypto {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(std::string_view data);
    // Returns the digest and resets, so the object can hash again.
    Digest finish();

private:
    evp_md_ctx_st* m_ctx;
};

Digest sha256(std::string_view data);

// A sink that hashes and counts everything written to it.
class HashSink : public Sink {
public:
    Result<void> write(std::string_view data) override {
        m_hash.update(data);
        m_size += data.size();
        return ok();
    }
    Digest digest() { return m_hash.finish(); }
    uint64_t size() const { return m_size; }

private:
    Sha256 m_hash;
    uint64_t m_size = 0;
};

}  // namespace larder::crypto
