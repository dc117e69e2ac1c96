#!/usr/bin/env bash
# Every endpoint x every kind of caller, against a private cache, with the
# status each must get. Columns: anonymous pull push delete admin expired revoked.
source "$(dirname "$0")/lib.sh"

start_server "$TMP/data"
export LARDER_SERVER=$URL LARDER_TOKEN=$ADMIN_TOKEN
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
p=$(nix-store --add "$LARDER_SOURCE/tests/e2e/lib.sh")
h=$(basename "$p" | cut -c1-32)
nix copy --option netrc-file "$TMP/netrc" --to "$URL/main?write-nar-listing=1" "$p" 2>> "$TMP/nix.log"
nar=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$h.narinfo" | sed -n 's/^URL: //p')
secret() { "$LARDER" token create "$@" --json | json_field secret; }
declare -A token=(
    [anonymous]=""
    [pull]=$(secret t-pull --cache main --pull)
    [push]=$(secret t-push --cache main --push)
    [delete]=$(secret t-delete --cache main --delete)
    [admin]=$(secret t-admin --cache '*' --admin)
    [expired]=$(secret t-expired --cache main --pull --expires 1s)
    [revoked]=$(secret t-revoked --cache '*' --admin)
)
"$LARDER" token revoke "$("$LARDER" token list --json | jq '.[] | select(.name == "t-revoked") | .id')" > /dev/null
sleep 1.1   # let t-expired expire
absent=0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb
callers=(anonymous pull push delete admin expired revoked)

table=$(cat <<TABLE
GET    /main/nix-cache-info           -                                  401 200 200 200 200 401 401
GET    /main/$h.narinfo               -                                  401 200 200 200 200 401 401
HEAD   /main/$h.narinfo               -                                  401 200 200 200 200 401 401
GET    /main/$nar                     -                                  401 200 200 200 200 401 401
GET    /main/$h.ls                    -                                  401 200 200 200 200 401 401
GET    /main/$absent.narinfo          -                                  401 404 404 404 404 401 401
GET    /nope/nix-cache-info           -                                  401 403 403 403 404 401 401
PUT    /main/log/x.drv                log                                401 403 200 403 200 401 401
PUT    /main/$absent.narinfo          garbage                            401 403 400 403 400 401 401
PUT    /main/nar/x.nar.zst            garbage                            401 403 400 403 400 401 401
DELETE /main/$absent.narinfo          -                                  401 403 403 404 404 401 401
GET    /api/v1/caches/main            -                                  401 200 200 200 200 401 401
PATCH  /api/v1/caches/main            {}                                 401 403 403 403 200 401 401
POST   /api/v1/caches                 {"name":"new"}                     401 403 403 403 201 401 401
DELETE /api/v1/caches/zzz             -                                  401 403 403 403 404 401 401
GET    /api/v1/tokens                 -                                  401 403 403 403 200 401 401
POST   /api/v1/tokens                 {"name":"x","caches":"main","pull":true} 401 403 403 403 201 401 401
GET    /api/v1/stats                  -                                  401 403 403 403 200 401 401
POST   /api/v1/caches/main/rotate-key {}                                 401 403 403 403 200 401 401
TABLE
)
checked=0
while read -r method path body expected; do
    read -ra want <<< "$expected"
    for i in "${!callers[@]}"; do
        who=${callers[$i]}
        args=(-s -o /dev/null -w '%{http_code}' -X "$method")
        [ "$method" = HEAD ] && args=(-s -o /dev/null -w '%{http_code}' -I)
        [ -n "${token[$who]}" ] && args+=(-u "nix:${token[$who]}")
        [ "$body" != - ] && args+=(--data-binary "$body")
        got=$(curl "${args[@]}" "$URL$path")
        [ "$got" = "${want[$i]}" ] || fail "$method $path as $who: expected ${want[$i]}, got $got"
        checked=$((checked + 1))
    done
done <<< "$table"
pass "$checked endpoint x caller combinations answer as the table says"

stop_server
for who in "${callers[@]}"; do
    [ -n "${token[$who]}" ] && grep -qF "${token[$who]}" "$TMP/data/serve.log" && fail "the $who token appears in the log"
done
pass "no token used appears in the server log"
