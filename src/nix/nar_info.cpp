#include "nix/nar_info.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/core.h>

#include "crypto/encoding.hpp"
#include "crypto/fingerprint.hpp"
#include "util/strings.hpp"

namespace larder::nix {

namespace {

Failure corrupt(std::string_view why) {
    return fail(ErrorCode::invalid_input, fmt::format("malformed narinfo: {}", why));
}

struct Field {
    std::string_view key;
    std::string_view value;
};

// Nix reads "Key: value" with the value starting two characters after the
// first ':'. We accept the space as optional, and a missing final newline.
Result<std::vector<Field>> split_fields(std::string_view text) {
    if (text.size() > k_max_narinfo_size) return corrupt("larger than 1 MiB");
    std::vector<Field> fields;
    size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        auto eol = text.find('\n');
        auto line = text.substr(0, eol);
        text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
        auto colon = line.find(':');
        if (colon == std::string_view::npos)
            return corrupt(fmt::format("line {} ('{}') is not 'Key: value'", line_no,
                                       printable(line)));
        auto value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        fields.push_back({line.substr(0, colon), value});
    }
    return fields;
}

Result<uint64_t> parse_size(std::string_view key, std::string_view value) {
    auto n = parse_u64(value);
    if (!n) return corrupt(fmt::format("{} '{}' is not a decimal number", key, printable(value)));
    return *n;
}

Result<crypto::Hash> parse_field_hash(std::string_view key, std::string_view value) {
    auto h = crypto::parse_hash(value);
    if (!h) return corrupt(fmt::format("{}: {}", key, h.error().message));
    return std::move(*h);
}

Result<StorePath> parse_field_path(std::string_view key, std::string_view value) {
    auto p = StorePath::parse_base_name(value);
    if (!p) return corrupt(fmt::format("{}: {}", key, p.error().message));
    return std::move(*p);
}

}  // namespace

Result<NarInfo> parse_nar_info(std::string_view text, std::string_view store_dir) {
    TRY_ASSIGN(auto fields, split_fields(text));
    std::optional<StorePath> path;
    std::optional<crypto::Hash> nar_hash;
    std::optional<uint64_t> nar_size;
    std::optional<std::string> compression;
    bool have_refs = false;
    bool have_ca = false;
    // Holds the optional fields until the mandatory ones are known.
    struct {
        std::string url;
        std::optional<crypto::Hash> file_hash;
        std::optional<uint64_t> file_size;
        std::vector<StorePath> references;
        std::optional<StorePath> deriver;
        std::string system;
        std::vector<std::string> sigs;
        std::string ca;
    } info;
    for (const auto& [key, value] : fields) {
        if (key == "StorePath") {
            auto p = StorePath::parse(value, store_dir);
            if (!p) return corrupt(fmt::format("StorePath: {}", p.error().message));
            path = std::move(*p);
        } else if (key == "URL") {
            info.url = value;
        } else if (key == "Compression") {
            compression = std::string(value);
        } else if (key == "FileHash") {
            TRY_ASSIGN(info.file_hash, parse_field_hash(key, value));
        } else if (key == "FileSize") {
            TRY_ASSIGN(info.file_size, parse_size(key, value));
        } else if (key == "NarHash") {
            TRY_ASSIGN(nar_hash, parse_field_hash(key, value));
        } else if (key == "NarSize") {
            TRY_ASSIGN(nar_size, parse_size(key, value));
        } else if (key == "References") {
            if (have_refs) return corrupt("References appears twice");
            for (auto ref : split(value, ' ')) {
                if (ref.empty()) continue;
                TRY_ASSIGN(auto p, parse_field_path(key, ref));
                info.references.push_back(std::move(p));
            }
            have_refs = !info.references.empty();
        } else if (key == "Deriver") {
            if (value != "unknown-deriver") {
                TRY_ASSIGN(info.deriver, parse_field_path(key, value));
            }
        } else if (key == "System") {
            info.system = value;
        } else if (key == "Sig") {
            info.sigs.emplace_back(value);
        } else if (key == "CA") {
            if (have_ca) return corrupt("CA appears twice");
            have_ca = true;
            info.ca = value;
        }
        // Unknown keys are ignored, as Nix does.
    }
    if (!path) return corrupt("the mandatory field StorePath is missing");
    if (!nar_hash) return corrupt("the mandatory field NarHash is missing");
    if (info.url.empty()) return corrupt("the mandatory field URL is missing");
    if (!nar_size) return corrupt("the mandatory field NarSize is missing");
    if (*nar_size == 0) return corrupt("NarSize is 0");
    std::sort(info.references.begin(), info.references.end());
    info.references.erase(std::unique(info.references.begin(), info.references.end()),
                          info.references.end());
    return NarInfo{
        .path = std::move(*path),
        .url = std::move(info.url),
        // Nix assumes bzip2 when Compression is absent or empty.
        .compression = compression && !compression->empty() ? *compression : "bzip2",
        .file_hash = info.file_hash,
        .file_size = info.file_size,
        .nar_hash = *nar_hash,
        .nar_size = *nar_size,
        .references = std::move(info.references),
        .deriver = std::move(info.deriver),
        .system = std::move(info.system),
        .sigs = std::move(info.sigs),
        .ca = std::move(info.ca),
    };
}

Result<void> check_uploaded(const NarInfo& info) {
    if (info.sigs.size() > 16) return corrupt(fmt::format("{} Sig lines; at most 16 are accepted", info.sigs.size()));
    for (const auto& sig : info.sigs) {
        auto colon = sig.find(':');
        auto name = std::string_view(sig).substr(0, colon);
        auto bytes = colon == std::string::npos ? std::nullopt : crypto::from_base64(sig.substr(colon + 1));
        if (name.empty() || name.size() > 128 || !is_alnum_or(name, "-._+") || !bytes || bytes->size() != 64)
            return corrupt(fmt::format("Sig '{}' is not NAME:base64 of an ed25519 signature", printable(sig, 80)));
    }
    if (info.system.size() > 64 || !is_alnum_or(info.system, "-_.+"))
        return corrupt(fmt::format("System '{}' is not a platform name", printable(info.system, 80)));
    if (!info.ca.empty() && (!(info.ca.starts_with("fixed:") || info.ca.starts_with("text:")) ||
                             info.ca.size() > 256 || !is_alnum_or(info.ca, ":-_+/=")))
        return corrupt(fmt::format("CA '{}' is not fixed:... or text:...", printable(info.ca, 80)));
    if (info.url.size() > 1024 || !is_alnum_or(info.url, k_url_characters))
        return corrupt(fmt::format("URL '{}' is not a plain relative URL", printable(info.url, 80)));
    return ok();
}

std::string NarInfo::render(std::string_view store_dir) const {
    std::string out;
    out += fmt::format("StorePath: {}\n", path.full(store_dir));
    out += fmt::format("URL: {}\n", url);
    out += fmt::format("Compression: {}\n", compression);
    if (file_hash) out += fmt::format("FileHash: {}\n", file_hash->to_string());
    if (file_size) out += fmt::format("FileSize: {}\n", *file_size);
    out += fmt::format("NarHash: {}\n", nar_hash.to_string());
    out += fmt::format("NarSize: {}\n", nar_size);
    out += "References: ";
    for (size_t i = 0; i < references.size(); ++i) {
        if (i > 0) out += ' ';
        out += references[i].base_name();
    }
    out += '\n';
    if (deriver) out += fmt::format("Deriver: {}\n", deriver->base_name());
    if (!system.empty()) out += fmt::format("System: {}\n", system);
    for (const auto& sig : sigs) out += fmt::format("Sig: {}\n", sig);
    if (!ca.empty()) out += fmt::format("CA: {}\n", ca);
    return out;
}

std::string NarInfo::fingerprint(std::string_view store_dir) const {
    std::vector<std::string> refs;
    refs.reserve(references.size());
    for (const auto& r : references) refs.push_back(r.full(store_dir));
    return crypto::path_fingerprint(path.full(store_dir), nar_hash, nar_size, std::move(refs));
}

void NarInfo::sign(const crypto::SecretKey& key, std::string_view store_dir) {
    auto prefix = key.name + ":";
    std::erase_if(sigs, [&](const std::string& s) { return s.starts_with(prefix); });
    sigs.push_back(key.sign(fingerprint(store_dir)));
}

bool NarInfo::verify(const crypto::PublicKey& key, std::string_view store_dir) const {
    auto message = fingerprint(store_dir);
    return std::any_of(sigs.begin(), sigs.end(),
                       [&](const std::string& sig) { return key.verify(message, sig); });
}

std::string CacheInfo::render() const {
    return fmt::format("StoreDir: {}\nWantMassQuery: {}\nPriority: {}\n", store_dir,
                       want_mass_query ? 1 : 0, priority);
}

Result<CacheInfo> parse_cache_info(std::string_view text) {
    CacheInfo info;
    for (auto line : split(text, '\n')) {
        auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;  // ignored, as Nix does
        auto key = line.substr(0, colon);
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\r')) value.remove_suffix(1);
        if (key == "StoreDir") {
            info.store_dir = value;
        } else if (key == "WantMassQuery") {
            info.want_mass_query = value == "1";
        } else if (key == "Priority") {
            int p = 0;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), p);
            if (ec != std::errc() || end != value.data() + value.size())
                return fail(ErrorCode::invalid_input,
                            fmt::format("nix-cache-info: Priority '{}' is not an integer",
                                        printable(value)));
            info.priority = p;
        }
    }
    return info;
}

}  // namespace larder::nix
