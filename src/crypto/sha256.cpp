#include "crypto/sha256.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace larder::crypto {

Sha256::Sha256() : m_ctx(EVP_MD_CTX_new()) {
    if (!m_ctx || EVP_DigestInit_ex(m_ctx, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("OpenSSL: cannot initialise SHA-256");
}

Sha256::~Sha256() { EVP_MD_CTX_free(m_ctx); }

void Sha256::update(std::string_view data) { EVP_DigestUpdate(m_ctx, data.data(), data.size()); }

Digest Sha256::finish() {
    Digest digest{};
    unsigned int len = 0;
    EVP_DigestFinal_ex(m_ctx, digest.data(), &len);
    EVP_DigestInit_ex(m_ctx, EVP_sha256(), nullptr);
    return digest;
}

Digest sha256(std::string_view data) {
    Sha256 h;
    h.update(data);
    return h.finish();
}

}  // namespace larder::crypto
