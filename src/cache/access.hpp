// Who may do what: tokens (stored as hashes of their secrets) with a cache
// name pattern and permissions, checked against the metadata store on every
// request so that every replica agrees on revocation at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/metadata_store.hpp"

namespace larder::cache {

enum class Permission { pull, push, remove, admin };

struct Scope {
    std::string cache_pattern = "*";  // glob: '*' matches any run of characters
    bool pull = false;
    bool push = false;
    bool remove = false;
    bool admin = false;

    bool grants(std::string_view cache, Permission p) const;
    std::string to_json() const;
    static Result<Scope> from_json(std::string_view text);
};

struct Principal {
    std::optional<db::TokenRow> token;  // nullopt: anonymous
    Scope scope;
};

struct NewToken {
    db::TokenRow row;
    std::string secret;  // shown once, never stored
};

class Access {
public:
    explicit Access(db::MetadataStore& db) : m_db(db) {}

    // `parent`: the admin token minting it. The new token expires no later
    // than its parent and is revoked with it.
    Result<NewToken> create_token(std::string_view name, const Scope& scope, std::optional<int64_t> expires_at,
                                  const std::optional<db::TokenRow>& parent = std::nullopt);
    // From an Authorization header ("Bearer T" or "Basic base64(user:T)");
    // an empty header is anonymous. A bad, expired or revoked token is
    // `unauthorized`, with a message that never quotes the token.
    Result<Principal> authenticate(std::string_view authorization, int64_t now);
    Result<std::vector<db::TokenRow>> list_tokens() { return m_db.list_tokens(); }
    // The tokens `admin` manages: those whose cache pattern lies within its
    // own (all of them for a '*' admin).
    Result<std::vector<db::TokenRow>> tokens_managed_by(const Scope& admin);
    // not_found for an unknown id, or one `admin` does not manage; revoking
    // twice keeps the first time. Tokens minted under it are revoked too.
    Result<void> revoke_token(int64_t id, const Scope& admin);

private:
    db::MetadataStore& m_db;
};

bool glob_match(std::string_view pattern, std::string_view text);
std::string hash_secret(std::string_view secret);

}  // namespace larder::cache
