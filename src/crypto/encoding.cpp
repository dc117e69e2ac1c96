#include "crypto/encoding.hpp"

#include <array>

namespace larder::crypto {

namespace {

constexpr std::string_view k_base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> make_reverse(std::string_view alphabet) {
    std::array<int8_t, 256> table{};
    for (auto& v : table) v = -1;
    for (size_t i = 0; i < alphabet.size(); ++i)
        table[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
    return table;
}

constexpr auto k_nix32_reverse = make_reverse(k_nix32_alphabet);
constexpr auto k_base64_reverse = make_reverse(k_base64_alphabet);

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

bool is_nix32_char(char c) { return k_nix32_reverse[static_cast<uint8_t>(c)] >= 0; }

// Character k from the end is the 5-bit group starting at bit 5k of the bytes
// read as one little-endian bit string (hash.cc printHash32).
std::string to_nix32(std::span<const uint8_t> bytes) {
    if (bytes.empty()) return {};
    size_t len = nix32_length(bytes.size());
    std::string out;
    out.reserve(len);
    for (size_t n = len; n-- > 0;) {
        size_t b = n * 5;
        size_t i = b / 8;
        size_t j = b % 8;
        unsigned c = bytes[i] >> j;
        if (i + 1 < bytes.size()) c |= static_cast<unsigned>(bytes[i + 1]) << (8 - j);
        out += k_nix32_alphabet[c & 0x1f];
    }
    return out;
}

std::optional<Bytes> from_nix32(std::string_view s, size_t size) {
    if (size == 0 || s.size() != nix32_length(size)) return std::nullopt;
    Bytes out(size, 0);
    for (size_t n = 0; n < s.size(); ++n) {
        int digit = k_nix32_reverse[static_cast<uint8_t>(s[s.size() - n - 1])];
        if (digit < 0) return std::nullopt;
        size_t b = n * 5;
        size_t i = b / 8;
        size_t j = b % 8;
        out[i] |= static_cast<uint8_t>(digit << j);
        unsigned carry = static_cast<unsigned>(digit) >> (8 - j);
        if (i + 1 < size)
            out[i + 1] |= static_cast<uint8_t>(carry);
        else if (carry)
            return std::nullopt;  // bits beyond the hash
    }
    return out;
}

std::string to_base16(std::span<const uint8_t> bytes) {
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (uint8_t b : bytes) {
        out += k_hex[b >> 4];
        out += k_hex[b & 0xf];
    }
    return out;
}

std::optional<Bytes> from_base16(std::string_view s) {
    if (s.size() % 2 != 0) return std::nullopt;
    Bytes out;
    out.reserve(s.size() / 2);
    for (size_t i = 0; i < s.size(); i += 2) {
        int hi = hex_value(s[i]);
        int lo = hex_value(s[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<uint8_t>(hi << 4 | lo));
    }
    return out;
}

std::string to_base64(std::span<const uint8_t> bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        uint32_t v = bytes[i] << 16 | bytes[i + 1] << 8 | bytes[i + 2];
        for (int k = 3; k >= 0; --k) out += k_base64_alphabet[(v >> (6 * k)) & 0x3f];
    }
    size_t rest = bytes.size() - i;
    if (rest > 0) {
        uint32_t v = bytes[i] << 16 | (rest == 2 ? bytes[i + 1] << 8 : 0);
        out += k_base64_alphabet[(v >> 18) & 0x3f];
        out += k_base64_alphabet[(v >> 12) & 0x3f];
        out += rest == 2 ? k_base64_alphabet[(v >> 6) & 0x3f] : '=';
        out += '=';
    }
    return out;
}

std::optional<Bytes> from_base64(std::string_view s) {
    if (s.size() % 4 != 0) return std::nullopt;
    Bytes out;
    out.reserve(s.size() / 4 * 3);
    for (size_t i = 0; i < s.size(); i += 4) {
        bool last = i + 4 == s.size();
        int pad = 0;
        uint32_t v = 0;
        for (size_t k = 0; k < 4; ++k) {
            char c = s[i + k];
            if (c == '=' && last && k >= 2 && (k == 3 || s[i + 3] == '=')) {
                ++pad;
                v <<= 6;
                continue;
            }
            int d = k_base64_reverse[static_cast<uint8_t>(c)];
            if (d < 0 || pad > 0) return std::nullopt;
            v = v << 6 | static_cast<uint32_t>(d);
        }
        out.push_back(static_cast<uint8_t>(v >> 16));
        if (pad < 2) out.push_back(static_cast<uint8_t>(v >> 8));
        if (pad < 1) out.push_back(static_cast<uint8_t>(v));
    }
    return out;
}

}  // namespace larder::crypto
