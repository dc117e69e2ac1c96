#include "client/nix_store.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include <fmt/core.h>

#include "crypto/hash.hpp"
#include "sqlite/sqlite.hpp"
#include "util/strings.hpp"

namespace larder::client {

namespace fs = std::filesystem;

namespace {

std::string env_or(const char* name, std::string_view fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : std::string(fallback);
}

}  // namespace

NixStore::NixStore(std::unique_ptr<sqlite::Connection> db, std::string store_dir)
    : m_db(std::move(db)), m_store_dir(std::move(store_dir)) {}

NixStore::~NixStore() = default;

Result<std::unique_ptr<NixStore>> NixStore::open() {
    return open(env_or("NIX_STATE_DIR", "/nix/var/nix") + "/db/db.sqlite",
                env_or("NIX_STORE_DIR", nix::k_default_store_dir));
}

Result<std::unique_ptr<NixStore>> NixStore::open(const std::string& db_path, std::string store_dir) {
    auto db = sqlite::open(db_path, SQLITE_OPEN_READONLY);
    if (!db)
        return fail(ErrorCode::unavailable,
                    fmt::format("cannot read the Nix database {} ({}); run as a user who can read it",
                                db_path, db.error().message));
    // Nix writes in WAL mode, so reading never blocks a running build.
    auto conn = std::move(*db);
    auto probe = conn->query("SELECT count(*) FROM ValidPaths");
    TRY(probe.step());
    return std::unique_ptr<NixStore>(new NixStore(std::move(conn), std::move(store_dir)));
}

Result<std::string> NixStore::resolve(std::string_view argument) const {
    std::error_code ec;
    fs::path p = fs::absolute(fs::path(argument), ec).lexically_normal();
    auto prefix = m_store_dir + "/";
    // Follow symlinks (./result -> /nix/store/...) until the path is in the store.
    for (int hops = 0; !p.string().starts_with(prefix); ++hops) {
        if (hops == 40 || !fs::is_symlink(p, ec))
            return fail(ErrorCode::invalid_input,
                        fmt::format("'{}' is not in the Nix store ({})", printable(argument), m_store_dir));
        auto target = fs::read_symlink(p, ec);
        if (ec) return fail(ErrorCode::invalid_input, fmt::format("cannot read '{}': {}", p.string(), ec.message()));
        p = (p.parent_path() / target).lexically_normal();
    }
    auto full = p.string();
    auto rest = std::string_view(full).substr(prefix.size());
    auto base = rest.substr(0, rest.find('/'));
    TRY(nix::StorePath::parse_base_name(base));
    return prefix + std::string(base);
}

Result<PathInfo> NixStore::read_row(int64_t id, std::string path) {
    auto q = m_db->query(
        "SELECT hash, narSize, deriver, sigs, ca FROM ValidPaths WHERE id = ?");
    q.bind(id);
    TRY_ASSIGN(bool row, q.step());
    if (!row) return fail(ErrorCode::not_found, fmt::format("{} is not valid in the local Nix store", path));
    PathInfo info;
    info.id = id;
    info.path = std::move(path);
    info.nar_hash = q.text(0);
    info.nar_size = static_cast<uint64_t>(q.i64(1));
    info.deriver = q.text(2);
    auto sigs = q.text(3);
    for (auto s : split(sigs, ' '))
        if (!s.empty()) info.sigs.emplace_back(s);
    info.ca = q.text(4);
    auto refs = m_db->query(
        "SELECT v.path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer = ?");
    refs.bind(id);
    for (;;) {
        TRY_ASSIGN(bool more, refs.step());
        if (!more) break;
        auto ref = refs.text(0);
        if (ref == info.path) info.self_reference = true;
        else info.references.push_back(std::move(ref));
    }
    return info;
}

Result<PathInfo> NixStore::query(std::string_view path) {
    auto q = m_db->query("SELECT id FROM ValidPaths WHERE path = ?");
    q.bind(path);
    TRY_ASSIGN(bool row, q.step());
    if (!row) return fail(ErrorCode::not_found, fmt::format("{} is not valid in the local Nix store", path));
    return read_row(q.i64(0), std::string(path));
}

Result<std::vector<PathInfo>> NixStore::closure(const std::vector<std::string>& paths) {
    std::unordered_map<std::string, PathInfo> infos;
    std::vector<std::string> todo(paths.rbegin(), paths.rend());
    while (!todo.empty()) {
        auto path = std::move(todo.back());
        todo.pop_back();
        if (infos.contains(path)) continue;
        TRY_ASSIGN(auto info, query(path));
        for (const auto& r : info.references) todo.push_back(r);
        infos.emplace(path, std::move(info));
    }
    // Depth-first post-order: references before referrers.
    std::vector<PathInfo> ordered;
    std::unordered_set<std::string> placed;
    std::vector<std::pair<std::string, size_t>> stack;
    for (const auto& root : paths) {
        if (placed.contains(root)) continue;
        stack.emplace_back(root, 0);
        placed.insert(root);
        while (!stack.empty()) {
            auto& [path, next] = stack.back();
            const auto& refs = infos.at(path).references;
            if (next < refs.size()) {
                const auto& r = refs[next++];
                if (placed.insert(r).second) stack.emplace_back(r, 0);
                continue;
            }
            ordered.push_back(std::move(infos.at(path)));
            stack.pop_back();
        }
    }
    return ordered;
}

Result<std::vector<PathInfo>> NixStore::added_since(int64_t after) {
    std::vector<std::pair<int64_t, std::string>> rows;
    {
        auto q = m_db->query("SELECT id, path FROM ValidPaths WHERE id > ? ORDER BY id");
        q.bind(after);
        for (;;) {
            TRY_ASSIGN(bool more, q.step());
            if (!more) break;
            rows.emplace_back(q.i64(0), q.text(1));
        }
    }
    std::vector<PathInfo> out;
    for (auto& [id, path] : rows) {
        TRY_ASSIGN(auto info, read_row(id, std::move(path)));
        out.push_back(std::move(info));
    }
    return out;
}

Result<int64_t> NixStore::last_id() {
    auto q = m_db->query("SELECT coalesce(max(id), 0) FROM ValidPaths");
    TRY(q.step());
    return q.i64(0);
}

Result<std::vector<std::string>> NixStore::derivation_outputs(std::string_view drv_path) {
    auto q = m_db->query(
        "SELECT o.path FROM DerivationOutputs o JOIN ValidPaths d ON d.id = o.drv "
        "WHERE d.path = ? AND o.path IN (SELECT path FROM ValidPaths)");
    q.bind(drv_path);
    std::vector<std::string> out;
    for (;;) {
        TRY_ASSIGN(bool more, q.step());
        if (!more) break;
        out.push_back(q.text(0));
    }
    return out;
}

Result<nix::NarInfo> NixStore::to_nar_info(const PathInfo& p, std::string_view compression) const {
    TRY_ASSIGN(auto path, nix::StorePath::parse(p.path, m_store_dir));
    TRY_ASSIGN(auto nar_hash, crypto::parse_hash(p.nar_hash));
    nix::NarInfo info{.path = std::move(path),
                      .url = "nar/pushed",
                      .compression = std::string(compression),
                      .file_hash = std::nullopt,
                      .file_size = std::nullopt,
                      .nar_hash = nar_hash,
                      .nar_size = p.nar_size,
                      .references = {},
                      .deriver = std::nullopt,
                      .system = "",
                      .sigs = p.sigs,
                      .ca = p.ca};
    auto refs = p.references;
    if (p.self_reference) refs.push_back(p.path);
    for (const auto& r : refs) {
        TRY_ASSIGN(auto ref, nix::StorePath::parse(r, m_store_dir));
        info.references.push_back(std::move(ref));
    }
    std::sort(info.references.begin(), info.references.end(),
              [](const auto& a, const auto& b) { return a.base_name() < b.base_name(); });
    if (!p.deriver.empty()) {
        auto deriver = nix::StorePath::parse(p.deriver, m_store_dir);
        if (deriver) info.deriver = std::move(*deriver);
    }
    return info;
}

}  // namespace larder::client
