#!/usr/bin/env bash
# Two caches on one server are isolated yet share stored chunks; kill -9 in
# the middle of an upload leaves nothing visible, and pushing again works.
source "$(dirname "$0")/lib.sh"

start_server "$TMP/data"
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
export NIX_CONFIG="$NIX_CONFIG"$'\n'"netrc-file = $TMP/netrc"
export LARDER_SERVER=$URL LARDER_TOKEN=$ADMIN_TOKEN
chunks() { curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/stats" | json_field chunks; }
blob_chunks() {  # chunks with a blob (the others are kept in the database)
    curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/stats" | jq '.chunks - .inline_chunks'; }

"$LARDER" cache create second > /dev/null || fail "larder cache create"
"$LARDER" cache list --json | jq -e 'map(.name) == ["main", "second"]' > /dev/null || fail "cache list"
root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small iso-$$)
h=$(basename "$root" | cut -c1-32)
nix copy --to "$URL/main?compression=zstd" "$root" 2>> "$TMP/nix.log" || fail "push to main"
wait_ingested  # main's NARs cut into the server's chunks, which the second push then finds
before=$(chunks)
nar_url=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$h.narinfo" | sed -n 's/^URL: //p')
expect_status 404 "narinfo of main in second" "$URL/second/$h.narinfo"
expect_status 404 "NAR of main in second" "$URL/second/$nar_url"
expect_status 404 ".ls of main in second" "$URL/second/$h.ls"
export XDG_CACHE_HOME=$TMP/xdg-second
nix copy --to "$URL/second?compression=xz" "$root" 2>> "$TMP/nix.log" || fail "push to second"
after=$(chunks)
[ "$before" -gt 0 ] && [ "$after" -eq "$before" ] || fail "chunk count went from $before to $after"
expect_status 200 "narinfo in second after its push" "$URL/second/$h.narinfo"
blob_files=$(find "$TMP/data/blobs" -type f | wc -l)
[ "$blob_files" -eq "$(blob_chunks)" ] || fail "$blob_files blob files for $(blob_chunks) chunks with a blob"
pass "caches isolated (404 across), yet the second push stored no new chunk ($after chunks)"

"$LARDER" cache delete second > /dev/null
expect_status 404 "deleted cache" "$URL/second/$h.narinfo"
expect_status 200 "main after deleting second" "$URL/main/$h.narinfo"
pass "larder cache delete removes one cache and leaves the other"

# kill -9 while a large NAR is being uploaded.
mkdir "$TMP/big"; head -c 150000000 /dev/urandom > "$TMP/big/blob"
big=$(nix-store --add "$TMP/big")
bh=$(basename "$big" | cut -c1-32)
nix-store --dump "$big" > "$TMP/big.nar"
big_name=$(nix-hash --type sha256 --flat --base32 "$TMP/big.nar").nar
curl -s -o /dev/null --limit-rate 20M -X PUT -H "Authorization: Bearer $ADMIN_TOKEN" \
    --data-binary "@$TMP/big.nar" "$URL/main/nar/$big_name" &
curl_pid=$!
# Kill only once the upload is under way: its first chunks are on disk.
blobs_before=$(find "$TMP/data/blobs" -type f | wc -l)
for _ in $(seq 100); do [ "$(find "$TMP/data/blobs" -type f | wc -l)" -gt "$blobs_before" ] && break; sleep 0.05; done
[ "$(find "$TMP/data/blobs" -type f | wc -l)" -gt "$blobs_before" ] || fail "the upload never started"
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
wait "$curl_pid" 2>/dev/null || true
start_server "$TMP/data"
expect_status 404 "upload after the crash" -I "$URL/main/nar/$big_name"
expect_status 200 "older paths after the crash" "$URL/main/$h.narinfo"
export XDG_CACHE_HOME=$TMP/xdg-retry
nix copy --to "$URL/main?compression=zstd" "$big" 2>> "$TMP/nix.log" || fail "push after the crash"
export XDG_CACHE_HOME=$TMP/xdg-verify
KEY=$("$LARDER" cache info main --json | json_field public_key)
nix store verify --store "$URL/main" --trusted-public-keys "$KEY" --sigs-needed 1 "$big" 2>> "$TMP/nix.log" \
    || fail "the re-pushed path does not verify"
pass "kill -9 mid-upload: nothing visible after restart; pushing again succeeds and verifies"
nix-store --delete "$big" > /dev/null 2>&1 || true
stop_server
