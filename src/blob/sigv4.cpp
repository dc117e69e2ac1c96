#include "blob/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/core.h>

namespace larder::blob {

namespace {

std::string to_hex(const unsigned char* p, size_t n) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out(n * 2, '0');
    for (size_t i = 0; i < n; ++i) {
        out[2 * i] = k_digits[p[i] >> 4];
        out[2 * i + 1] = k_digits[p[i] & 15];
    }
    return out;
}

std::string hmac(std::string_view key, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), out.data(), &len);
    return std::string(reinterpret_cast<const char*>(out.data()), len);
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Header values: leading/trailing spaces dropped, inner runs of spaces as one.
std::string trim_value(std::string_view v) {
    std::string out;
    bool space = false;
    for (char c : v) {
        if (c == ' ' || c == '\t') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> canonical_headers(const SignedRequest& r,
                                                                   const std::string& amz_date) {
    std::vector<std::pair<std::string, std::string>> h;
    h.emplace_back("host", r.host);
    bool has_date = false;
    for (const auto& [k, v] : r.headers) {
        auto name = lower(k);
        has_date |= name == "x-amz-date";
        h.emplace_back(name, trim_value(v));
    }
    if (!has_date) h.emplace_back("x-amz-date", amz_date);
    std::sort(h.begin(), h.end());
    return h;
}

}  // namespace

std::string hex_sha256(std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned len = 0;
    EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
    return to_hex(out.data(), len);
}

std::string uri_encode(std::string_view s, bool keep_slash) {
    std::string out;
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/'))
            out += c;
        else
            out += fmt::format("%{:02X}", u);
    }
    return out;
}

std::string canonical_request(const SignedRequest& r, const std::string& amz_date, bool s3_style) {
    // S3 encodes the path once; other services encode it twice.
    auto path = uri_encode(r.path, true);
    if (!s3_style) path = uri_encode(path, true);
    std::vector<std::pair<std::string, std::string>> query;
    for (const auto& [k, v] : r.query) query.emplace_back(uri_encode(k, false), uri_encode(v, false));
    std::sort(query.begin(), query.end());
    std::string q;
    for (const auto& [k, v] : query) q += fmt::format("{}{}={}", q.empty() ? "" : "&", k, v);
    auto headers = canonical_headers(r, amz_date);
    std::string h, names;
    for (const auto& [k, v] : headers) {
        h += fmt::format("{}:{}\n", k, v);
        names += (names.empty() ? "" : ";") + k;
    }
    return fmt::format("{}\n{}\n{}\n{}\n{}\n{}", r.method, path, q, h, names, r.payload_hash);
}

std::string authorization(const SignedRequest& r, const Credentials& creds, std::string_view region,
                          std::string_view service, const std::string& amz_date) {
    auto date = amz_date.substr(0, 8);
    auto scope = fmt::format("{}/{}/{}/aws4_request", date, region, service);
    auto creq = canonical_request(r, amz_date, service == "s3");
    auto to_sign = fmt::format("AWS4-HMAC-SHA256\n{}\n{}\n{}", amz_date, scope, hex_sha256(creq));
    auto key = hmac("AWS4" + creds.secret_access_key, date);
    key = hmac(key, region);
    key = hmac(key, service);
    key = hmac(key, "aws4_request");
    auto sig = hmac(key, to_sign);
    std::string names;
    for (const auto& [k, v] : canonical_headers(r, amz_date)) names += (names.empty() ? "" : ";") + k;
    return fmt::format("AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}", creds.access_key_id, scope,
                       names, to_hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size()));
}

}  // namespace larder::blob
