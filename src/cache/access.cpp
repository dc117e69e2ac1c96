#include "cache/access.hpp"


#include <algorithm>
#include <ctime>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "crypto/encoding.hpp"
#include "crypto/keys.hpp"
#include "crypto/sha256.hpp"

namespace larder::cache {

bool glob_match(std::string_view pattern, std::string_view text) {
    // Iterative '*' matching with backtracking to the last star.
    size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (p < pattern.size() && pattern[p] == text[t]) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

std::string hash_secret(std::string_view secret) { return crypto::to_base16(crypto::sha256(secret)); }

bool Scope::grants(std::string_view cache, Permission p) const {
    if (!glob_match(cache_pattern, cache)) return false;
    if (admin) return true;
    switch (p) {
        case Permission::pull: return pull || push || remove;
        case Permission::push: return push;
        case Permission::remove: return remove;
        case Permission::admin: return admin;
    }
    return false;
}

std::string Scope::to_json() const {
    return nlohmann::json{{"caches", cache_pattern}, {"pull", pull}, {"push", push},
                          {"delete", remove}, {"admin", admin}}
        .dump();
}

Result<Scope> Scope::from_json(std::string_view text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return fail(ErrorCode::corrupt, "token scope is not JSON");
    Scope s;
    s.cache_pattern = j.value("caches", "");
    s.pull = j.value("pull", false);
    s.push = j.value("push", false);
    s.remove = j.value("delete", false);
    s.admin = j.value("admin", false);
    return s;
}

Result<NewToken> Access::create_token(std::string_view name, const Scope& scope, std::optional<int64_t> expires_at,
                                      const std::optional<db::TokenRow>& parent) {
    if (parent && parent->expires_at && (!expires_at || *expires_at > *parent->expires_at))
        expires_at = parent->expires_at;
    std::array<uint8_t, 32> random{};
    TRY(crypto::random_bytes(random.data(), random.size()));
    std::string secret = "lt_" + crypto::to_nix32(random);
    db::TokenRow row;
    row.name = name;
    row.secret_hash = hash_secret(secret);
    row.scopes = scope.to_json();
    row.expires_at = expires_at;
    if (parent) row.parent_id = parent->id;
    TRY_ASSIGN(row, m_db.create_token(row));
    return NewToken{std::move(row), std::move(secret)};
}

namespace {

Failure unauthorized(std::string_view why) { return fail(ErrorCode::unauthorized, std::string(why)); }

// The token inside an Authorization header, or an error.
Result<std::string> token_of(std::string_view header) {
    auto space = header.find(' ');
    if (space == std::string_view::npos) return unauthorized("malformed Authorization header");
    auto scheme = header.substr(0, space);
    auto value = header.substr(space + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (scheme == "Bearer" || scheme == "bearer") return std::string(value);
    if (scheme == "Basic" || scheme == "basic") {
        auto decoded = crypto::from_base64(value);
        if (!decoded) return unauthorized("malformed Basic credentials");
        std::string text(decoded->begin(), decoded->end());
        auto colon = text.find(':');
        if (colon == std::string::npos) return unauthorized("malformed Basic credentials");
        return text.substr(colon + 1);  // any user name; the token is the password
    }
    return unauthorized("unsupported authorization scheme (use Bearer or Basic)");
}

}  // namespace

Result<std::vector<db::TokenRow>> Access::tokens_managed_by(const Scope& admin) {
    TRY_ASSIGN(auto tokens, m_db.list_tokens());
    std::vector<db::TokenRow> managed;
    for (auto& t : tokens) {
        auto scope = Scope::from_json(t.scopes);
        // A pattern checked as a literal against the admin's glob: a subset test.
        if (scope && admin.grants(scope->cache_pattern, Permission::admin)) managed.push_back(std::move(t));
    }
    return managed;
}

Result<void> Access::revoke_token(int64_t id, const Scope& admin) {
    TRY_ASSIGN(auto tokens, tokens_managed_by(admin));
    bool known = std::any_of(tokens.begin(), tokens.end(), [&](const db::TokenRow& t) { return t.id == id; });
    if (!known) return fail(ErrorCode::not_found, fmt::format("no token with id {} that this token manages", id));
    return m_db.revoke_token(id, static_cast<int64_t>(std::time(nullptr)));
}

Result<Principal> Access::authenticate(std::string_view authorization, int64_t now) {
    if (authorization.empty()) return Principal{};
    TRY_ASSIGN(auto secret, token_of(authorization));
    if (secret.empty()) return Principal{};  // e.g. Basic with an empty password
    TRY_ASSIGN(auto row, m_db.find_token(hash_secret(secret)));
    if (!row) return unauthorized("invalid token");
    if (row->revoked_at) return unauthorized("token has been revoked");
    if (row->expires_at && *row->expires_at <= now) return unauthorized("token has expired");
    TRY_ASSIGN(auto scope, Scope::from_json(row->scopes));
    return Principal{std::move(*row), std::move(scope)};
}

}  // namespace larder::cache
