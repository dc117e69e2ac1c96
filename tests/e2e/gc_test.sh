#!/usr/bin/env bash
# Garbage collection with the real Nix, on SQLite + local disk (or on the
# config in LARDER_TEST_CONFIG: s3_test.sh runs it on PostgreSQL + radosgw).
# Three generations of a closure are pushed (larder push, larder push, plain
# nix copy); the second is pinned; the first is used only through one path.
# GC with retention, "now" moved forward: exactly the pinned closure, the
# newest generation and the used path (with its closure) remain, and each
# substitutes with signatures required. A chunk deleted by hand is found by
# fsck and healed by a push. After the grace period, no NAR,
# chunk or blob is left that nothing uses; a path deleted by hand cannot
# be deleted while referred to; deleting a cache reclaims its storage.
source "$(dirname "$0")/lib.sh"

config=$TMP/gc.toml
# A bucket prefix of its own: other tests leave blobs under theirs.
{ [ -n "${LARDER_TEST_CONFIG:-}" ] && sed 's|^storage = "s3://\([^/?]*\)[^?]*?|storage = "s3://\1/gc-test?|' "$LARDER_TEST_CONFIG"
  printf '[gc]\ninterval = "off"\ngrace = "1h"\n'; } > "$config"
chmod 600 "$config"
start_server "$TMP/data" --config "$config"
export LARDER_SERVER=$URL LARDER_TOKEN=$ADMIN_TOKEN
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
KEY=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/caches/main" | json_field public_key)
api() { curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$@"; }
visible() { status "$URL/main/$(basename "$1" | cut -c1-32).narinfo"; }
gc_at() {  # UNIX-TIME [more larder gc args]: runs GC as if it were then
    local at=$1; shift
    "$LARDER" gc --now "$at" --json "$@" > "$TMP/gc.json" 2> "$TMP/gc.err" || fail "larder gc: $(cat "$TMP/gc.err")"
    [ "$(jq '.errors | length' "$TMP/gc.json")" = 0 ] || fail "gc reported errors: $(jq -c .errors "$TMP/gc.json")"
}

# 1. Three generations, seconds apart.
g1=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small gc1-$$)
g2=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small gc2-$$)
g3=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small gc3-$$)
mapfile -t c1 < <(nix-store -qR "$g1")
mapfile -t c2 < <(nix-store -qR "$g2")
mapfile -t c3 < <(nix-store -qR "$g3")
"$LARDER" push main "$g1" > "$TMP/push1.out" 2>&1 || { cat "$TMP/push1.out"; fail "push g1"; }
"$LARDER" push main "$g2" > "$TMP/push2.out" 2>&1 || { cat "$TMP/push2.out"; fail "push g2"; }
sleep 2
t3=$(date +%s)
nix copy --option netrc-file "$TMP/netrc" --to "$URL/main?compression=zstd" "$g3" 2> "$TMP/copy.err" \
    || fail "nix copy g3: $(tail -3 "$TMP/copy.err")"
wait_ingested  # the whole files become unused chunks now, not during the checks below
"$LARDER" pin main release "$g2" > /dev/null || fail "pin g2"
[ "$("$LARDER" pins main --json | jq -r '.[0].path')" = "$(basename "$g2")" ] || fail "pins lists $(larder pins main)"
# A leaf of g1 (no references) is used after g3 arrived.
leaf1=$(printf '%s\n' "${c1[@]}" | grep -- '-leaf-3$' || true)
[ -z "$(nix-store -q --references "$leaf1")" ] || fail "$leaf1 has references"
[ -n "$leaf1" ] || fail "no leaf in g1"
[ "$(status_anon "$URL/main/$(basename "$leaf1" | cut -c1-32).narinfo" -H "Authorization: Bearer $ADMIN_TOKEN")" = 200 ] \
    || fail "leaf narinfo"
pass "pushed 3 generations of ${#c1[@]} paths (larder push, larder push, nix copy); pinned g2; used one path of g1"

# 2. Retention 100 s, GC 99 s after g3 started: g1 was pushed over 100 s
# before that "now", except the leaf used since.
"$LARDER" cache configure main --retention 100s > /dev/null || fail "configure retention"
gc_at $((t3 + 99)) --dry-run
would=$(jq '.caches[0].deleted | length' "$TMP/gc.json")
[ "$would" = $(( ${#c1[@]} - 1 )) ] || fail "dry run would delete $would paths, expected $(( ${#c1[@]} - 1 ))"
# (A narinfo fetch counts as use: ask GC again rather than look.)
gc_at $((t3 + 99)) --dry-run
[ "$(jq '.caches[0].deleted | length' "$TMP/gc.json")" = "$would" ] || fail "the dry run deleted"
gc_at $((t3 + 99))
[ "$(jq '.caches[0].deleted | length' "$TMP/gc.json")" = "$would" ] || fail "gc deleted other paths than the dry run listed: $(jq -c '.caches[0] | {paths, revived, n: (.deleted | length)}' "$TMP/gc.json")"
for p in "${c1[@]}"; do
    want=404; [ "$p" = "$leaf1" ] && want=200
    [ "$(visible "$p")" = $want ] || fail "$p: expected $want after GC"
done
for p in "${c2[@]}" "${c3[@]}"; do [ "$(visible "$p")" = 200 ] || fail "$p (pinned or recent) was deleted"; done
pass "GC: deleted exactly the $would unused paths of g1; g2 (pinned), g3 (recent) and the used leaf remain"

# 3. What remains substitutes with signatures required.
nix-store --delete "$g1" "$g2" "$g3" "${c1[@]}" "${c2[@]}" "${c3[@]}" > /dev/null 2>&1 || true
for p in "$g2" "$g3" "$leaf1"; do [ ! -e "$p" ] || fail "could not delete $p locally"; done
# As on another machine: Nix keeps the (unsigned) narinfos it uploaded.
rm -rf "$XDG_CACHE_HOME"
nix-store -r "$g2" "$g3" "$leaf1" --option netrc-file "$TMP/netrc" --option substituters "$URL/main" \
    --option trusted-public-keys "$KEY" --option require-sigs true > /dev/null 2> "$TMP/nix.log" \
    || fail "substituting what GC kept: $(tail -3 "$TMP/nix.log")"
for p in "${c2[@]}" "${c3[@]}" "$leaf1"; do [ -e "$p" ] || fail "$p was not substituted"; done
pass "g2, g3 and the leaf substitute with require-sigs after GC ($(( ${#c2[@]} + ${#c3[@]} + 1 )) paths)"

list_blobs() {  # the storage's object names (S3) or files (local disk)
    if [ -n "${LARDER_TEST_CONFIG:-}" ]; then
        ceph_s3_request GET "/$S3_BUCKET?list-type=2&prefix=gc-test" | grep -o '<Key>[^<]*' | sed 's/<Key>//'
    else
        find "$TMP/data/blobs" -type f ! -name '*.tmp-*'
    fi
}
count_blobs() { list_blobs | wc -l; }
remove_blob() { if [ -n "${LARDER_TEST_CONFIG:-}" ]; then ceph_s3_request DELETE "/$S3_BUCKET/$1" > /dev/null; else rm "$1"; fi; }
nar_status() {  # STORE-PATH: status of its NAR
    local url; url=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$(basename "$1" | cut -c1-32).narinfo" \
        | sed -n 's/^URL: //p')
    status "$URL/main/$url"
}

# 3b. A chunk deleted by hand: fsck reports it and the paths using it, whose
# NAR then answers 404; --repair withdraws them; a push heals them.
# A NAR under 1 MiB is one chunk, whose blob key starts with the NAR's
# FileHash; the tiniest (the leaves) have no blob, being kept in the
# database: the first path of g3 that has one.
victim=
for damaged in "${c3[@]}"; do
    file_hash=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$(basename "$damaged" | cut -c1-32).narinfo" \
        | sed -n 's/^FileHash: sha256://p')
    victim=$(list_blobs | grep "$(nix hash to-base16 --type sha256 "$file_hash")" || true)
    [ -n "$victim" ] && break
done
[ -n "$victim" ] || fail "no path of g3 has a NAR of one blob"
remove_blob "$victim"
if "$LARDER" fsck > "$TMP/fsck.out" 2>&1; then fail "fsck found nothing after a blob was deleted"; fi
grep -q "1 missing" "$TMP/fsck.out" || fail "fsck: $(cat "$TMP/fsck.out")"
grep -q "damaged  main/$(basename "$damaged")" "$TMP/fsck.out" || fail "fsck did not list $damaged: $(cat "$TMP/fsck.out")"
# The server remembers a NAR's chunk list for 5 s (lookup_ttl) after a
# download: fsck, another process, reaches it within that.
for _ in $(seq 70); do [ "$(nar_status "$damaged")" = 404 ] && break; sleep 0.1; done
[ "$(nar_status "$damaged")" = 404 ] || fail "the NAR of $damaged (a chunk gone) answered $(nar_status "$damaged") 7 s after fsck"
"$LARDER" fsck --repair > "$TMP/repair.out" 2>&1 || fail "fsck --repair: $(cat "$TMP/repair.out")"
grep -q "withdrawn main/$(basename "$damaged")" "$TMP/repair.out" || fail "not withdrawn: $(cat "$TMP/repair.out")"
[ "$(visible "$damaged")" = 404 ] || fail "$damaged still visible after --repair"
"$LARDER" push main "$g2" "$g3" "$leaf1" > "$TMP/heal.out" 2>&1 || fail "re-push: $(cat "$TMP/heal.out")"
"$LARDER" fsck > "$TMP/fsck2.out" 2>&1 || fail "fsck after the re-push: $(cat "$TMP/fsck2.out")"
nix-store --delete "$damaged" > /dev/null 2>&1 || true
rm -rf "$XDG_CACHE_HOME"
nix-store -r "$damaged" --option netrc-file "$TMP/netrc" --option substituters "$URL/main" \
    --option trusted-public-keys "$KEY" --option require-sigs true > /dev/null 2> "$TMP/nix.log" \
    || fail "substituting the healed path: $(tail -3 "$TMP/nix.log")"
pass "a chunk deleted by hand: fsck listed $(grep -c "^  damaged" "$TMP/fsck.out") damaged path (NAR 404), --repair withdrew it and its $(( $(grep -c "^  withdrawn" "$TMP/repair.out") - 1 )) referrers, a push healed them ($(head -1 "$TMP/fsck2.out"))"

# 4. After the grace period (1 h): nothing unused is left in the database
# or the storage. Retention off first, so that only storage goes.
"$LARDER" cache configure main --retention none > /dev/null || fail "configure retention none"
gc_at $((t3 + 4000))   # NARs of deleted paths: deleted; their chunks marked
gc_at $((t3 + 8000))   # the chunks and their blobs
stats=$(api "$URL/api/v1/stats")
[ "$(jq .unused_chunks <<< "$stats")" = 0 ] && [ "$(jq .unused_nars <<< "$stats")" = 0 ] \
    || fail "unused rows after the grace period: $stats"
blobs=$(count_blobs)
[ "$blobs" = "$(jq '.chunks - .inline_chunks' <<< "$stats")" ] && [ "$(jq .inline_chunks <<< "$stats")" -gt 0 ] \
    || fail "$blobs blobs for $(jq '.chunks - .inline_chunks' <<< "$stats") chunk rows with a blob: orphans left ($stats)"
pass "after the grace period: $(jq .chunks <<< "$stats") chunks ($(jq .inline_chunks <<< "$stats") kept in the database), $blobs blobs, no unused NAR, chunk or blob ($(jq -c '{nars_deleted, chunks_deleted, orphan_blobs_deleted}' "$TMP/gc.json"))"

# 5. Deleting by hand: refused while referred to, then with --cascade.
base2=$(printf '%s\n' "${c2[@]}" | grep -- '-base$' || true)
"$LARDER" unpin main release > /dev/null || fail "unpin"
if "$LARDER" path delete main "$base2" > "$TMP/refused.out" 2>&1; then fail "deleted a path others refer to"; fi
grep -q -- "--cascade" "$TMP/refused.out" || fail "unclear refusal: $(cat "$TMP/refused.out")"
"$LARDER" path delete main "$base2" --cascade > "$TMP/del.out" 2>&1 || fail "cascade delete: $(cat "$TMP/del.out")"
[ "$(visible "$base2")" = 404 ] && [ "$(visible "$g2")" = 404 ] || fail "cascade left g2 visible"
[ "$(visible "$g3")" = 200 ] || fail "cascade deleted g3"
pass "path delete: refused while referred to ($(cut -c1-90 "$TMP/refused.out")...), --cascade removed $(grep -c deleted "$TMP/del.out") paths"

# 6. Deleting the cache reclaims all of its storage.
"$LARDER" cache delete main > /dev/null || fail "cache delete"
gc_at $((t3 + 12000))   # NARs marked
gc_at $((t3 + 16000))   # NARs deleted, chunks marked
gc_at $((t3 + 20000))   # chunks and blobs deleted
stats=$(api "$URL/api/v1/stats")
[ "$(jq .chunks <<< "$stats")" = 0 ] && [ "$(jq .nars <<< "$stats")" = 0 ] || fail "storage left after cache delete: $stats"
[ "$(count_blobs)" = 0 ] || fail "$(count_blobs) blobs left after deleting the only cache"
pass "deleting the cache and three GC runs left no NAR, chunk or blob"
assert_no_5xx "$TMP/data/serve.log"
