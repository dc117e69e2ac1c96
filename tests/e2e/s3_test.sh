#!/usr/bin/env bash
# Larder on a real S3 (Ceph radosgw, which checks SigV4) and PostgreSQL: a
# wrong secret stops startup with a clear message; the real-Nix server test
# passes on them; radosgw stopped in the middle of a push gives a clear error
# and nothing partial, and the push succeeds once it is back.
source "$(dirname "$0")/lib.sh"

ceph_s3_start "$TMP/ceph" || fail "could not start radosgw"
postgres_start || fail "could not start PostgreSQL"
s3_config() {  # FILE SECRET
    cat > "$1" <<TOML
database = "$PG_URL"
storage = "s3://$S3_BUCKET/larder?endpoint=$S3_ENDPOINT&region=$S3_REGION"
[s3]
access_key_id = "$S3_ACCESS_KEY"
secret_access_key = "$2"
TOML
    chmod 600 "$1"
}

# 0. The BlobStore contract tests (tests/blob) on this S3, multipart included.
AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY \
    LARDER_TEST_S3_URL="s3://$S3_BUCKET/contract?endpoint=$S3_ENDPOINT&region=$S3_REGION" \
    "$LARDER_TESTS" --gtest_filter='Backends/BlobStoreTest.*/s3' > "$TMP/blob.out" 2>&1 \
    || { cat "$TMP/blob.out"; fail "BlobStore tests on S3"; }
grep -q 'SKIPPED' "$TMP/blob.out" && { cat "$TMP/blob.out"; fail "BlobStore tests were skipped"; }
pass "BlobStore contract on radosgw: $(grep -c '^\[       OK' "$TMP/blob.out") tests (ranges, list, remove, a 64 MiB multipart put)"

# 1. A wrong secret: startup fails and says why, without the secret.
s3_config "$TMP/wrong.toml" "not-the-secret-0000000000000000000000000"
if "$LARDER" serve --data "$TMP/wrong" --listen 127.0.0.1:0 --config "$TMP/wrong.toml" > "$TMP/wrong.log" 2>&1; then
    fail "larder serve started with a wrong S3 secret"
fi
grep -q 'refused the credentials' "$TMP/wrong.log" || fail "unclear error: $(cat "$TMP/wrong.log")"
grep -q 'not-the-secret' "$TMP/wrong.log" && fail "the secret appears in the error"
if "$LARDER" serve --check-config --data "$TMP/wrong" --config "$TMP/wrong.toml" > "$TMP/check.log" 2>&1; then
    fail "--check-config accepted a wrong S3 secret"
fi
grep -q 'refused the credentials' "$TMP/check.log" || fail "--check-config: unclear error: $(cat "$TMP/check.log")"
pass "a wrong S3 secret stops startup: $(tail -1 "$TMP/wrong.log")"
printf 'storage = "s3://%s?endpoint=%s&regoin=x"\n' "$S3_BUCKET" "$S3_ENDPOINT" > "$TMP/typo.toml"
if "$LARDER" serve --data "$TMP/typo" --listen 127.0.0.1:0 --config "$TMP/typo.toml" > "$TMP/typo.log" 2>&1; then
    fail "larder serve started with a misspelt storage URL parameter"
fi
grep -q "unknown storage URL parameter 'regoin'" "$TMP/typo.log" || fail "unclear error: $(cat "$TMP/typo.log")"
pass "a misspelt storage URL parameter stops startup: $(tail -1 "$TMP/typo.log")"

# 2. The real-Nix server test, with NARs on S3 and metadata in PostgreSQL.
s3_config "$TMP/s3.toml" "$S3_SECRET_KEY"
"$LARDER" serve --check-config --data "$TMP/check" --config "$TMP/s3.toml" > "$TMP/check.log" 2>&1 \
    || fail "--check-config: $(cat "$TMP/check.log")"
grep -q '^config OK' "$TMP/check.log" && grep -q "storage: *s3://$S3_BUCKET/larder" "$TMP/check.log" \
    && grep -q 'database: *postgresql://' "$TMP/check.log" || fail "--check-config printed: $(cat "$TMP/check.log")"
grep -q "$S3_SECRET_KEY" "$TMP/check.log" && fail "--check-config printed the S3 secret"
pass "larder serve --check-config: refuses the wrong secret, accepts and describes the right config"
# Each on a fresh schema (the bucket prefix can stay: chunks are content addressed).
export PG_URL  # tokens_test dumps the database it ran on
export S3_ENDPOINT S3_REGION S3_ACCESS_KEY S3_SECRET_KEY S3_BUCKET  # gc_test lists the bucket
for t in serve_nix tokens access_table gc; do
    psql "$PG_URL" -q -c "DROP SCHEMA public CASCADE; CREATE SCHEMA public;" 2>/dev/null
    LARDER_TEST_CONFIG=$TMP/s3.toml bash "$LARDER_SOURCE/tests/e2e/${t}_test.sh" > "$TMP/$t.out" 2>&1 \
        || { cat "$TMP/$t.out"; fail "${t}_test on S3 + PostgreSQL"; }
    pass "${t}_test passes on S3 + PostgreSQL ($(grep -c '^ok' "$TMP/$t.out") checks)"
done
psql "$PG_URL" -q -c "DROP SCHEMA public CASCADE; CREATE SCHEMA public;" 2>/dev/null

# 3. radosgw stops in the middle of a push.
start_server "$TMP/data" --config "$TMP/s3.toml"
export LARDER_SERVER=$URL LARDER_TOKEN=$ADMIN_TOKEN
visible() { status_anon -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$(basename "$1" | cut -c1-32).narinfo"; }
root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small s3-$$)
mapfile -t closure < <(nix-store -qR "$root")
"$LARDER" push main "$root" -j 1 --retries 1 > "$TMP/push1.out" 2>&1 &
push_pid=$!
for _ in $(seq 200); do grep -q 'PUT /main/push' "$TMP/data/serve.log" && break; sleep 0.02; done
ceph_s3_stop_rgw
if wait "$push_pid"; then fail "the push succeeded without radosgw"; fi
# Readiness follows the stores: a load balancer takes this replica out.
unready() {  # WHICH: /readyz answers 503 naming it, within its 2 s deadline
    local t; t=$(date +%s%N)
    [ "$(status_anon --max-time 10 "$URL/readyz")" = 503 ] || fail "/readyz without the $1: $(cat "$TMP/body")"
    grep -q "$1" "$TMP/body" || fail "/readyz does not name the $1: $(cat "$TMP/body")"
    [ $(( ($(date +%s%N) - t) / 1000000 )) -lt 3000 ] || fail "/readyz took over 3 s"
    [ "$(curl -sf "$URL/healthz")" = ok ] || fail "/healthz while the $1 is down"
}
unready "blob store"
readyz_unready=$(cat "$TMP/body")
s3m() { curl -sf "$URL/metrics" | awk -v m="larder_storage_$1_total" '$1 == m {print $2}'; }
[ "$(s3m requests)" -gt 0 ] && [ "$(s3m failures)" -gt 0 ] && [ "$(s3m retries)" -gt 0 ] \
    || fail "storage metrics with radosgw down: requests $(s3m requests), failures $(s3m failures), retries $(s3m retries)"
# The client hears a generic 503 with a request id; the server's log has the
# S3 details under that id.
grep -q 'storage or database is unavailable' "$TMP/push1.out" || fail "the error is not a 503: $(tail -3 "$TMP/push1.out")"
rid=$(grep -o 'request id [0-9a-f]*-[0-9]*' "$TMP/push1.out" | head -1 | cut -d' ' -f3)
[ -n "$rid" ] || fail "no request id in the error: $(tail -3 "$TMP/push1.out")"
grep "request $rid " "$TMP/data/serve.log" | grep -q 'S3' || fail "the log has no S3 error for request $rid"
assert_no_5xx "$TMP/data/serve.log" 503
assert_closed visible "${closure[@]}"
pass "radosgw stopped mid-push: '$(grep -m1 'error:' "$TMP/push1.out" | cut -c1-150)'; no partial closure visible"
ceph_s3_start_rgw || fail "radosgw did not restart"
[ "$(curl -s "$URL/readyz")" = ready ] || fail "/readyz after radosgw came back"
"$LARDER" push main "$root" > "$TMP/push2.out" 2>&1 || { cat "$TMP/push2.out"; fail "push after radosgw came back"; }
KEY=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/caches/main" | json_field public_key)
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
nix store verify --option netrc-file "$TMP/netrc" --store "$URL/main" --trusted-public-keys "$KEY" \
    --sigs-needed 1 -r "$root" 2>> "$TMP/nix.log" || fail "nix store verify against the cache: $(tail -3 "$TMP/nix.log")"
pass "after radosgw came back the push completed and nix store verify accepts all ${#closure[@]} paths"

# 4. PostgreSQL stopped and started again: /readyz goes unready and back.
postgres_pause
unready "database"
pass "/readyz: 503 '$readyz_unready' / '$(cat "$TMP/body")'; /healthz stays 200; S3 requests $(s3m requests), failures $(s3m failures), retries $(s3m retries)"
postgres_resume || fail "PostgreSQL did not restart"
for _ in $(seq 50); do [ "$(curl -s "$URL/readyz")" = ready ] && break; sleep 0.1; done
[ "$(curl -s "$URL/readyz")" = ready ] || fail "/readyz after PostgreSQL came back: $(curl -s "$URL/readyz")"
visible "$root" > /dev/null && [ "$(visible "$root")" = 200 ] || fail "the cache after PostgreSQL came back"
pass "/readyz is ready again once PostgreSQL is back, and the cache answers"

# 5. A replica with a local read cache ([s3] cache_dir): what it served once
# it serves again with radosgw stopped, from local files.
stop_server
s3_config "$TMP/cached.toml" "$S3_SECRET_KEY"
printf 'cache_dir = "%s"\ncache_max_size = "64M"\n' "$TMP/read-cache" >> "$TMP/cached.toml"
PORT='' start_server "$TMP/data2" --config "$TMP/cached.toml"
grep -q "read cache $TMP/read-cache" "$TMP/data2/serve.log" || fail "the log does not show the read cache"
metric() { curl -sf "$URL/metrics" | awk -v m="larder_read_cache_$1" '$1 == m {print $2}'; }
nix store verify --option netrc-file "$TMP/netrc" --store "$URL/main" --trusted-public-keys "$KEY" \
    --sigs-needed 1 -r "$root" 2>> "$TMP/nix.log" || fail "nix store verify through the read cache: $(tail -3 "$TMP/nix.log")"
misses=$(metric misses_total); cached=$(metric bytes)
[ "$misses" -gt 0 ] && [ "$(metric hits_total)" = 0 ] || fail "read cache after the first pass: $misses misses, $(metric hits_total) hits"
[ "$(find "$TMP/read-cache" -type f | wc -l)" = "$misses" ] || fail "$misses misses but $(find "$TMP/read-cache" -type f | wc -l) files"
[ "$(stat -c %a "$TMP/read-cache")" = 700 ] || fail "the read cache directory is mode $(stat -c %a "$TMP/read-cache")"
ceph_s3_stop_rgw
requests=$(curl -sf "$URL/metrics" | awk '$1 == "larder_storage_requests_total" {print $2}')
rm -rf "$HOME/.cache/nix/binary-cache-v6.sqlite"*
nix store verify --option netrc-file "$TMP/netrc" --store "$URL/main" --trusted-public-keys "$KEY" \
    --sigs-needed 1 -r "$root" 2>> "$TMP/nix.log" || fail "nix store verify with radosgw stopped: $(tail -3 "$TMP/nix.log")"
[ "$(metric hits_total)" = "$misses" ] || fail "second pass: $(metric hits_total) hits for $misses chunks"
[ "$(curl -sf "$URL/metrics" | awk '$1 == "larder_storage_requests_total" {print $2}')" = "$requests" ] \
    || fail "the second pass made S3 requests"
assert_no_5xx "$TMP/data2/serve.log"
ceph_s3_start_rgw || fail "radosgw did not restart"
pass "read cache: ${#closure[@]} paths verified through it ($misses chunks, $cached bytes kept), then again with radosgw stopped: $(metric hits_total) hits, no S3 request"
