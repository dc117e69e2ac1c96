#!/usr/bin/env bash
# larder serve with the real Nix 2.8: push with nix copy, substitute with
# signatures required, path-info / store ls / log, realisations, key rotation.
source "$(dirname "$0")/lib.sh"

start_server "$TMP/data"
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
export NIX_CONFIG="$NIX_CONFIG"$'\n'"netrc-file = $TMP/netrc"
KEY=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/caches/main" | json_field public_key)
[ -n "$KEY" ] || fail "no public key"

# Our own store paths (variant "serve") so that deleting them cannot disturb
# tests running in parallel.
root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small serve-$$)
mapfile -t closure < <(nix-store -qR "$root")

metric() { curl -sf "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }  # no token: probes and scrapers
[ "$(curl -sf "$URL/readyz")" = ready ] || fail "/readyz"
[ "$(metric larder_uploads_total)" = 0 ] || fail "larder_uploads_total at start: $(metric larder_uploads_total)"
hits=larder_http_requests_total'{route="narinfo",method="GET",status="200"}'

# 1. Push with plain nix copy (zstd, with listings).
nix copy --to "$URL/main?compression=zstd&write-nar-listing=1" "$root" 2>> "$TMP/nix.log" || fail "nix copy failed"
[ "$(metric larder_uploads_total)" = "${#closure[@]}" ] || fail "larder_uploads_total $(metric larder_uploads_total)"
for stage in receive verify sync record; do
    n=$(metric "larder_upload_stage_seconds_count{stage=\"$stage\"}")
    [ "$n" = "${#closure[@]}" ] || fail "upload stage $stage timed $n times"
done
[ "$(metric larder_db_connections_opened_total)" -ge 1 ] || fail "no database connection counted"
[ "$(metric larder_worker_threads)" -ge 1 ] || fail "no worker threads counted"
pass "nix copy --to $URL/main pushed ${#closure[@]} paths (larder_uploads_total ${#closure[@]}, each upload's 4 stages timed)"
hits_before=$(metric "$hits")

# 2. Delete locally, substitute back with only the cache's key trusted.
nix-store --delete "${closure[@]}" > /dev/null 2>&1 || fail "could not delete the closure"
for p in "${closure[@]}"; do [ ! -e "$p" ] || fail "$p still exists"; done
export XDG_CACHE_HOME=$TMP/xdg2
nix-store -r "$root" --option substituters "$URL/main" --option trusted-public-keys "$KEY" \
    --option require-sigs true > /dev/null 2>> "$TMP/nix.log" || fail "substitution failed"
for p in "${closure[@]}"; do [ -e "$p" ] || fail "$p was not substituted"; done
nix store verify -r "$root" --trusted-public-keys "$KEY" --sigs-needed 1 2>> "$TMP/nix.log" || fail "nix store verify"
[ "$(( $(metric "$hits") - hits_before ))" -ge "${#closure[@]}" ] || fail "narinfo hits went $hits_before -> $(metric "$hits")"
pass "deleted and substituted ${#closure[@]} paths with require-sigs and only the cache key trusted (narinfo hits counted)"

# 2b. Deferred ingest: the NARs were stored as Nix sent them and are cut
# into chunks in the background. Afterwards the narinfos name the server's
# files, the names Nix uploaded (which it keeps in its narinfo cache) still
# download, and the closure substitutes again.
mapfile -t uploaded < <(awk '$4 == "PUT" && $5 ~ /^\/main\/nar\/.*\.nar\.zst$/ && $6 == 200 {print $5}' "$TMP/data/serve.log")
[ "${#uploaded[@]}" -ge 10 ] || fail "found ${#uploaded[@]} NAR uploads in the server log"
wait_ingested
moved=0
for p in "${closure[@]}"; do
    url=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$(basename "$p" | cut -c1-32).narinfo" \
          | awk '$1 == "URL:" {print $2}')
    [ -n "$url" ] || fail "no narinfo for $p after the ingest"
    [[ " ${uploaded[*]} " == *" /main/$url "* ]] || moved=$((moved + 1))
done
[ "$moved" -gt 0 ] || fail "no narinfo names a new file after the ingest"
for u in "${uploaded[@]}"; do
    curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL$u" | zstd -dc > /dev/null || fail "$u (the name Nix uploaded) does not download after the ingest"
done
nix-store --delete "${closure[@]}" > /dev/null 2>&1 || fail "could not delete the closure"
export XDG_CACHE_HOME=$TMP/xdg3
nix-store -r "$root" --option substituters "$URL/main" --option trusted-public-keys "$KEY" \
    --option require-sigs true > /dev/null 2>> "$TMP/nix.log" || fail "substitution after the ingest failed"
nix store verify -r "$root" --trusted-public-keys "$KEY" --sigs-needed 1 2>> "$TMP/nix.log" || fail "nix store verify"
pass "after the ingest: $moved narinfos name new files, ${#uploaded[@]} uploaded names still download, the closure substitutes"

# 3. path-info, store ls, logs.
n=$(nix path-info --store "$URL/main" --json -r "$root" | jq length)
[ "$n" -eq "${#closure[@]}" ] || fail "path-info shows $n paths"
nix path-info --store "$URL/main" --json "$root" | jq -e '.[0].signatures[0] | startswith("'"${KEY%%:*}"':")' > /dev/null \
    || fail "path-info lacks the cache signature"
nix store ls --store "$URL/main" "$root/share" | grep -q 'Apache-2.0' || fail "nix store ls"
drv=$(nix-instantiate -E 'derivation { name = "logged"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo hello-from-the-build-log-'$$'; echo x > $out" ]; }' 2>/dev/null)
out=$(nix-store -r "$drv" 2>/dev/null)
nix copy --derivation --to "$URL/main" "$drv" 2>> "$TMP/nix.log" || fail "nix copy of the .drv"
nix store copy-log --to "$URL/main" "$drv" 2>> "$TMP/nix.log" || fail "nix store copy-log"
nix log --store "$URL/main" "$drv" 2>>"$TMP/nix.log" | grep -q "hello-from-the-build-log-$$" || fail "nix log --store"
pass "nix path-info --json, nix store ls and nix log work against the cache"

# 4. Realisations in both layouts are stored and served as sent.
for path in "realisations/sha256:$(printf %064d 1)!out.doi" "build-trace-v2/$(basename "$drv")/out.doi"; do
    expect_status 200 "PUT $path" -X PUT -H 'Content-Type: application/json' --data-binary '{"outPath":"x"}' "$URL/main/$path"
    expect_status 200 "GET $path" "$URL/main/$path"
    body_has '"outPath":"x"'
done
expect_status 404 "missing realisation" "$URL/main/realisations/sha256:$(printf %064d 2)!out.doi"
pass "realisations (realisations/ and build-trace-v2/) round-trip; unknown ones are 404"

# 5. Range requests on NARs.
nar_url=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$(basename "$root" | cut -c1-32).narinfo" | sed -n 's/^URL: //p')
curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$nar_url" -o "$TMP/full.zst"
expect_status 206 "Range request" -H 'Range: bytes=10-99' "$URL/main/$nar_url"
cmp <(head -c 100 "$TMP/full.zst" | tail -c 90) "$TMP/body" || fail "Range body differs"
curl -sI -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$nar_url" | grep -qi '^accept-ranges: bytes' || fail "no Accept-Ranges"
expect_status 416 "unsatisfiable range" -H 'Range: bytes=999999999-' "$URL/main/$nar_url"
zstd -dc "$TMP/full.zst" | "$LARDER" nar ls > /dev/null || fail "served NAR does not decode"
pass "NAR GET/HEAD with Range (206), Accept-Ranges and 416"

# 6. Key rotation: old and new key both verify.
"$LARDER" cache rotate-key main --server "$URL" --token "$ADMIN_TOKEN" > /dev/null
NEW_KEY=$("$LARDER" cache info main --json --server "$URL" --token "$ADMIN_TOKEN" | json_field public_key)
[ "$NEW_KEY" != "$KEY" ] || fail "rotate-key kept the key"
for k in "$KEY" "$NEW_KEY"; do
    export XDG_CACHE_HOME=$TMP/xdg-$RANDOM
    nix store verify --store "$URL/main" -r "$root" --trusted-public-keys "$k" --sigs-needed 1 2>> "$TMP/nix.log" \
        || fail "after rotation, key ${k%%:*} does not verify"
done
pass "after key rotation, narinfos verify with the old and with the new key"

stop_server
