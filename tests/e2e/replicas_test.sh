#!/usr/bin/env bash
# Two stateless `larder serve` replicas on one PostgreSQL and one S3 bucket:
# a push to one is served by the other (substituted by the real Nix with
# signatures required), and a token revoked through one is refused by the other.
source "$(dirname "$0")/lib.sh"

start_shared_peers replicas

start_server "$TMP/a" --config "$TMP/shared.toml"
URL_A=$URL SERVER_A=$SERVER_PID
PORT= start_server "$TMP/b" --config "$TMP/shared.toml"
URL_B=$URL SERVER2_PID=$SERVER_PID SERVER_PID=$SERVER_A
[ ! -e "$TMP/b/admin-token" ] || fail "replica B made a second admin token"
KEY_A=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL_A/api/v1/caches/main" | json_field public_key)
KEY_B=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL_B/api/v1/caches/main" | json_field public_key)
[ -n "$KEY_A" ] && [ "$KEY_A" = "$KEY_B" ] || fail "the replicas disagree on the cache key: '$KEY_A' '$KEY_B'"
pass "two replicas on one PostgreSQL and one bucket share cache main and its key"

# 1. Push through A, substitute through B.
root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small replicas-$$)
mapfile -t closure < <(nix-store -qR "$root")
"$LARDER" push main "$root" --server "$URL_A" --token "$ADMIN_TOKEN" > "$TMP/push.out" 2>&1 \
    || { cat "$TMP/push.out"; fail "push to replica A"; }
nix-store --delete "${closure[@]}" > /dev/null 2>&1 || fail "could not delete the closure"
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
sleep 1.1   # B may remember a miss for up to negative_ttl (1 s)
nix-store -r "$root" --option netrc-file "$TMP/netrc" --option substituters "$URL_B/main" \
    --option trusted-public-keys "$KEY_B" --option require-sigs true > /dev/null 2>> "$TMP/nix.log" \
    || fail "substitution from replica B: $(tail -3 "$TMP/nix.log")"
for p in "${closure[@]}"; do [ -e "$p" ] || fail "$p was not substituted"; done
pass "pushed ${#closure[@]} paths to replica A, substituted them from replica B with require-sigs"

# 2. A token made and revoked through A is refused by B at once.
secret=$("$LARDER" token create reader --cache main --pull --server "$URL_A" --token "$ADMIN_TOKEN" --json | jq -r .secret)
[ -n "$secret" ] && [ "$secret" != null ] || fail "no token secret"
h=$(basename "$root" | cut -c1-32)
[ "$(status_anon -H "Authorization: Bearer $secret" "$URL_B/main/$h.narinfo")" = 200 ] || fail "B refused a valid token"
id=$("$LARDER" token list --server "$URL_A" --token "$ADMIN_TOKEN" --json | jq -r '.[] | select(.name == "reader") | .id')
"$LARDER" token revoke "$id" --server "$URL_A" --token "$ADMIN_TOKEN" > /dev/null || fail "revoke through A"
[ "$(status_anon -H "Authorization: Bearer $secret" "$URL_B/main/$h.narinfo")" = 401 ] || fail "B accepted a revoked token"
pass "a token revoked through replica A is refused by replica B immediately"
