#!/usr/bin/env bash
# Tokens from `larder token`: scopes, patterns, expiry and revocation are
# enforced on every request; secrets never reach the server's log.
source "$(dirname "$0")/lib.sh"

start_server "$TMP/data"
export LARDER_SERVER=$URL LARDER_TOKEN=$ADMIN_TOKEN
"$LARDER" cache create team-a > /dev/null
"$LARDER" cache create other > /dev/null
new_token() { "$LARDER" token create "$@" --json | json_field secret; }
pull=$(new_token reader --cache main --pull)
push=$(new_token team-ci --cache 'team-*' --push)
short=$(new_token short --cache main --pull --expires 1s)
revoked=$(new_token gone --cache main --pull)
code() {  # TOKEN METHOD PATH -> status (token as a Basic password, as Nix sends it)
    local auth=(); [ -n "$1" ] && auth=(-u "nix:$1")
    curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -X "$2" --data-binary x "$URL$3" 2>/dev/null
}
check() {  # EXPECTED TOKEN METHOD PATH
    local got; got=$(code "$2" "$3" "$4")
    [ "$got" = "$1" ] || fail "$3 $4 with ${5:-token}: expected $1, got $got"
}
h=0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb
check 200 "$pull" GET /main/nix-cache-info "pull token"
check 403 "$pull" PUT /main/$h.narinfo "pull token"
check 403 "$pull" GET /other/nix-cache-info "pull token for main"
check 403 "$pull" GET /nonexistent/nix-cache-info "pull token for main"
check 400 "$push" PUT /team-a/$h.narinfo "push token for team-*"   # authorised; the narinfo itself is bad
check 200 "$push" GET /team-a/nix-cache-info "push token for team-*"
check 403 "$push" PUT /other/$h.narinfo "push token for team-*"
check 403 "$push" GET /other/nix-cache-info "push token for team-*"
check 401 "lt_wrong" GET /main/nix-cache-info "wrong token"
check 401 "" GET /main/nix-cache-info "no token"
check 401 "" GET /nonexistent/nix-cache-info "no token"
pass "pull-only cannot push; team-* cannot touch other; wrong or missing token: 401"

id=$("$LARDER" token list --json | jq '.[] | select(.name == "gone") | .id')
check 200 "$revoked" GET /main/nix-cache-info "token before revocation"
"$LARDER" token revoke "$id" > /dev/null
check 401 "$revoked" GET /main/nix-cache-info "revoked token"
sleep 2
check 401 "$short" GET /main/nix-cache-info "expired token"
"$LARDER" token list | grep -q 'revoked' || fail "token list does not show the revocation"
pass "revoked and expired tokens are refused at once"

# Review M8: an admin of team-* mints tokens that expire no later than it,
# sees and revokes only team tokens, and its tokens die with it.
team_admin=$(new_token team-admin --cache 'team-*' --admin --expires 1h)
minted_json=$("$LARDER" token create minted --cache team-a --pull --json --token "$team_admin")
minted=$(json_field secret <<< "$minted_json")
team_expiry=$("$LARDER" token list --json | jq '.[] | select(.name == "team-admin") | .expires_at')
[ "$(json_field expires_at <<< "$minted_json")" = "$team_expiry" ] || fail "a minted token outlives its admin"
check 200 "$minted" GET /team-a/nix-cache-info "token minted by the team admin"
seen=$("$LARDER" token list --json --token "$team_admin" | jq -r '.[].name' | sort | tr '\n' ' ')
[ "$seen" = "minted team-admin team-ci " ] || fail "the team admin sees: $seen"
reader_id=$("$LARDER" token list --json | jq '.[] | select(.name == "reader") | .id')
"$LARDER" token revoke "$reader_id" --token "$team_admin" > /dev/null 2>&1 && fail "the team admin revoked a main token"
check 200 "$pull" GET /main/nix-cache-info "a token the team admin may not revoke"
"$LARDER" token create escalate --cache '*' --admin --token "$team_admin" > /dev/null 2>&1 && fail "the team admin minted a '*' admin"
team_admin_id=$("$LARDER" token list --json | jq '.[] | select(.name == "team-admin") | .id')
"$LARDER" token revoke "$team_admin_id" > /dev/null
check 401 "$minted" GET /team-a/nix-cache-info "token minted by a revoked admin"
pass "a scoped admin's tokens expire with it, are revoked with it; it manages only its pattern"

"$LARDER" cache configure main --public > /dev/null
check 200 "" GET /main/nix-cache-info "anonymous, public cache"
check 401 "" PUT /main/$h.narinfo "anonymous push to a public cache"
pass "public caches are readable by anyone, writable only with push"

stop_server
for secret in "$ADMIN_TOKEN" "$pull" "$push" "$short" "$revoked"; do
    grep -qF "$secret" "$TMP/data/serve.log" && fail "a token secret appears in the server log"
done
# The database, whichever backend the run uses (s3_test.sh reruns this on PostgreSQL).
if [ -e "$TMP/data/larder.db" ]; then dump=$(sqlite3 "$TMP/data/larder.db" .dump)
elif [ -n "${PG_URL:-}" ]; then dump=$(pg_dump "$PG_URL")
else fail "found no database to check for token secrets"; fi
# The token's hash must be there, or the next check proves nothing.
grep -qF "$(printf %s "$pull" | sha256sum | cut -d' ' -f1)" <<< "$dump" || fail "the database dump lacks the token hashes"
grep -qF "$pull" <<< "$dump" && fail "a token secret is stored in the database"
pass "no token secret appears in the log or the database"
