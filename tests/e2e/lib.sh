# Shared setup for the end-to-end tests: the real Nix client in single-user
# mode, a scratch directory removed on exit, and small assertion helpers.
set -euo pipefail

: "${LARDER:?path to the larder binary}"
: "${LARDER_SOURCE:?path to the source tree}"

export NIX_CONFIG=$'sandbox = false\nbuild-users-group =\nexperimental-features = nix-command\nsubstituters =\nrequire-sigs = true'
TMP=$(mktemp -d /tmp/larder-e2e.XXXXXX)
export XDG_CACHE_HOME=$TMP/xdg-cache   # Nix's narinfo cache, fresh per test
source "$LARDER_SOURCE/tests/peers/ceph_s3.sh"
source "$LARDER_SOURCE/tests/peers/postgres.sh"
source "$LARDER_SOURCE/tests/peers/nginx.sh"
cleanup() {
    if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "${SERVER2_PID:-}" ]; then kill "$SERVER2_PID" 2>/dev/null || true; fi
    ceph_s3_stop
    postgres_stop
    nginx_stop
    if [ -n "${KEEP_TMP:-}" ]; then return 0; fi
    chmod -R u+w "$TMP" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
sha256_of() { openssl dgst -sha256 -r | cut -d' ' -f1; }

# Builds the small test corpus (25 store paths) and prints its root path.
small_corpus() { bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small; }

# Starts `larder serve` on a free port with data in $1 (extra arguments are
# passed on). Sets SERVER_PID, URL, HOST_PORT, ADMIN_TOKEN.
# LARDER_TEST_CONFIG, if set, is the config file unless one is passed (the
# S3/PostgreSQL runs of the server tests use it).
start_server() {
    local data=$1; shift
    mkdir -p "$data"
    # There before the loop below reads it: the background job's redirect
    # may come after the first read (seen once in CI, under ASan).
    : > "$data/serve.log"
    local config=()
    if [ -n "${LARDER_TEST_CONFIG:-}" ] && [[ " $* " != *" --config "* ]]; then config=(--config "$LARDER_TEST_CONFIG"); fi
    "$LARDER" serve --data "$data" --listen 127.0.0.1:${PORT:-0} "${config[@]}" "$@" > "$data/serve.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        URL=$(sed -n 's/.*listening on \(http[s]*:\/\/[0-9.:]*\).*/\1/p' "$data/serve.log" | head -1)
        [ -n "$URL" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$data/serve.log" >&2; fail "larder serve exited"; }
        sleep 0.1
    done
    [ -n "$URL" ] || fail "larder serve did not start"
    HOST_PORT=${URL#*://}
    PORT=${HOST_PORT##*:}
    # A replica of an existing database makes no admin token: keep the one we have.
    if [ -e "$data/admin-token" ]; then ADMIN_TOKEN=$(cat "$data/admin-token"); fi
}

# Starts radosgw and PostgreSQL and writes $TMP/shared.toml (mode 0600):
# replicas using it share one database and the bucket prefix PREFIX.
start_shared_peers() {  # PREFIX
    ceph_s3_start "$TMP/ceph" || fail "could not start radosgw"
    postgres_start || fail "could not start PostgreSQL"
    cat > "$TMP/shared.toml" <<TOML
database = "$PG_URL"
storage = "s3://$S3_BUCKET/$1?endpoint=$S3_ENDPOINT&region=$S3_REGION"
[s3]
access_key_id = "$S3_ACCESS_KEY"
secret_access_key = "$S3_SECRET_KEY"
TOML
    chmod 600 "$TMP/shared.toml"
}

stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }

# curl against the server with the admin token; prints the HTTP status.
status() { curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" "$@"; }
status_anon() { curl -s -o "$TMP/body" -w '%{http_code}' "$@"; }
expect_status() {  # EXPECTED DESCRIPTION CURL-ARGS...
    local want=$1 what=$2; shift 2
    local got; got=$(status "$@")
    [ "$got" = "$want" ] || fail "$what: expected $want, got $got: $(head -c 300 "$TMP/body")"
}
body_has() { grep -qF -- "$1" "$TMP/body" || fail "response body lacks '$1': $(head -c 300 "$TMP/body")"; }
json_field() { jq -r ".$1"; }
# No request in a server log (lines "REMOTE METHOD TARGET STATUS TIMEms")
# was answered with a 5xx, except those the caller allows (a regex of statuses).
assert_no_5xx() {  # LOG [ALLOWED]
    local bad
    sleep 0.1  # the server writes its log every 50 ms
    bad=$(grep -E ' 5[0-9][0-9] [0-9.]+ms$' "$1" | grep -vE " (${2:-none}) [0-9.]+ms$" || true)
    [ -z "$bad" ] || fail "the server answered 5xx: $(echo "$bad" | head -3)"
    grep -qE ' [0-9]{3} [0-9.]+ms$' "$1" || fail "assert_no_5xx: no request lines in $1 (is the log format right?)"
}

# Waits until the server (URL, admin token) has cut every NAR plain uploads
# stored whole into chunks (deferred ingest, after a 2 s pause in uploads).
wait_ingested() {  # [URL]
    local i n
    for i in $(seq 1 300); do
        n=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "${1:-$URL}/api/v1/stats" | jq .deferred_nars)
        [ "$n" = 0 ] && return 0
        sleep 0.2
    done
    fail "the server still has $n NARs to cut into chunks after 60 s"
}

# Of these store paths, every one the server shows (VISIBLE-FN PATH prints
# its narinfo status) has every reference shown too.
assert_closed() {  # VISIBLE-FN PATH...
    local visible=$1 p r; shift
    for p in "$@"; do
        [ "$($visible "$p")" = 200 ] || continue
        for r in $(nix-store -q --references "$p"); do
            [ "$($visible "$r")" = 200 ] || fail "$p is visible without its reference $r"
        done
    done
}
