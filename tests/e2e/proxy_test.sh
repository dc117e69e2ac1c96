#!/usr/bin/env bash
# Pull-through (issue 14), with the real Nix 2.8: the upstream is nginx
# serving a `nix copy --to file://` cache signed with its own key, and a
# second larder with a private cache.
#   1. substitute a closure that exists only upstream, through larder alone,
#      signatures required, only the upstream's key trusted; each NAR is
#      fetched from nginx once; then with only larder's key trusted; then
#      with nginx stopped (by a fresh client, and by one holding the old
#      narinfos);
#   2. a private larder upstream (token from a file);
#   3. a dead upstream (closed port, then a blackholed address): misses
#      answer 404 within the timeout once, then at once while the breaker is open;
#   4. an upstream serving a NAR whose hash does not match: the client gets
#      an error, nothing is stored, the next request (fixed) succeeds;
#   5. `nix copy --to` a private closure referring to upstream paths:
#      accepted, no upstream NAR downloaded, substitutes on a clean store;
#   6. 8 clients fetch one 64 MB NAR at once (BIG_MB=270 for the issue's
#      size): one upstream download, verified bytes for all, first byte
#      within 100 ms of nginx's.
source "$(dirname "$0")/lib.sh"

nix-store --generate-binary-cache-key up1 "$TMP/up.sk" "$TMP/up.pk"
UPKEY=$(cat "$TMP/up.pk")
mkdir -p "$TMP/up"
root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small proxy-$$)
mapfile -t closure < <(nix-store -qR "$root")
nix copy --to "file://$TMP/up?compression=xz&secret-key=$TMP/up.sk" "$root" 2>> "$TMP/nix.log" \
    || fail "nix copy to the upstream"
nginx_start "$TMP/up"

# The private upstream: another larder, cache "team", a pull-only token.
start_server "$TMP/data2"
URL2=$URL SERVER2_PID=$SERVER_PID ADMIN2=$ADMIN_TOKEN
LARDER_SERVER=$URL2 LARDER_TOKEN=$ADMIN2 "$LARDER" cache create team > /dev/null
KEY2=$(curl -sf -H "Authorization: Bearer $ADMIN2" "$URL2/api/v1/caches/team" | json_field public_key)
LARDER_SERVER=$URL2 LARDER_TOKEN=$ADMIN2 "$LARDER" token create proxy --cache team --pull > "$TMP/tok.out"
tail -1 "$TMP/tok.out" > "$TMP/team.token"
team_root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small team-$$)
mapfile -t team_closure < <(nix-store -qR "$team_root")
printf 'machine 127.0.0.1 password %s\n' "$ADMIN2" > "$TMP/netrc2"
NIX_CONFIG="$NIX_CONFIG"$'\n'"netrc-file = $TMP/netrc2" nix copy --to "$URL2/team?compression=zstd" "$team_root" \
    2>> "$TMP/nix.log" || fail "nix copy to the private upstream"

unset SERVER_PID
PORT= start_server "$TMP/data"
export LARDER_SERVER=$URL LARDER_TOKEN=$ADMIN_TOKEN
"$LARDER" cache configure main --upstream "$NGINX_URL=$UPKEY" --upstream "$URL2/team=$KEY2" \
    --upstream-token-file "$URL2/team=$TMP/team.token" --upstream-timeout 2s > "$TMP/configure.out" \
    || fail "cache configure --upstream: $(cat "$TMP/configure.out")"
grep -q "upstream:   $NGINX_URL (1 key, timeout 2000 ms)" "$TMP/configure.out" || fail "$(cat "$TMP/configure.out")"
grep -q "upstream:   $URL2/team (1 key, token" "$TMP/configure.out" || fail "$(cat "$TMP/configure.out")"
curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/caches/main" > "$TMP/info.json"
! grep -q "$(cat "$TMP/team.token")" "$TMP/info.json" || fail "the API shows the upstream's token"
KEY=$(json_field public_key < "$TMP/info.json")
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
export NIX_CONFIG="$NIX_CONFIG"$'\n'"netrc-file = $TMP/netrc"
metric() { curl -sf "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
substitute() {  # TRUSTED-KEYS PATH...: substitutes from larder's main cache, signatures required
    local keys=$1; shift
    nix-store -r "$@" --option substituters "$URL/main" --option trusted-public-keys "$keys" \
        --option require-sigs true > /dev/null 2>> "$TMP/nix.log"
}
nar_gets() { grep -c '"GET /nar/' "$NGINX_LOG" || true; }
nar_hash_of() { zstd -dc "$1" > "$TMP/check.nar" && nix-hash --type sha256 --flat --base32 "$TMP/check.nar"; }  # FILE.zst

# 1. Only upstream: substitute, each NAR fetched once.
nix-store --delete "${closure[@]}" > /dev/null 2>&1 || fail "could not delete the closure"
export XDG_CACHE_HOME=$TMP/xdg1
substitute "$UPKEY" "$root" || fail "substitution through larder (upstream key trusted): $(tail -5 "$TMP/nix.log")"
for p in "${closure[@]}"; do [ -e "$p" ] || fail "$p was not substituted"; done
[ "$(nar_gets)" = "${#closure[@]}" ] || fail "nginx served $(nar_gets) NARs for ${#closure[@]} paths"
[ "$(metric larder_upstream_nar_fetches_total)" = "${#closure[@]}" ] || fail "fetches $(metric larder_upstream_nar_fetches_total)"
pass "substituted ${#closure[@]} upstream-only paths through larder with only the upstream's key; nginx served each NAR once"

# Stored now: the narinfo names larder's own file; only larder's key trusted.
# (Clients get their last bytes once the NAR is verified; storing follows.)
h=$(basename "$root" | cut -c1-32)
for _ in $(seq 50); do
    curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$h.narinfo" > "$TMP/root.narinfo"
    grep -q '^URL: nar/upstream-' "$TMP/root.narinfo" || break
    sleep 0.1
done
grep -q '^URL: nar/upstream-' "$TMP/root.narinfo" && fail "5 s after the fetch the narinfo still names the upstream"
grep -q "^Sig: up1:" "$TMP/root.narinfo" || fail "the upstream's signature was dropped"
nix-store --delete "${closure[@]}" > /dev/null 2>&1
export XDG_CACHE_HOME=$TMP/xdg2
substitute "$KEY" "$root" || fail "substitution with only larder's key"
# Stored whole as fetched, then cut into chunks by deferred ingest (after a
# 2 s pause in fetches, at idle priority).
for _ in $(seq 150); do [ "$(metric larder_ingest_nars_total)" = "${#closure[@]}" ] && break; sleep 0.2; done
[ "$(metric larder_ingest_nars_total)" = "${#closure[@]}" ] \
    || fail "deferred ingest cut $(metric larder_ingest_nars_total) of ${#closure[@]} fetched NARs into chunks"
pass "stored whole, then cut into chunks (narinfo names larder's file, keeps up1's signature); substitutes with only larder's key"

nginx_stop
for cache in "$TMP/xdg3" "$TMP/xdg1"; do  # a fresh client, and one holding the upstream-named narinfos
    nix-store --delete "${closure[@]}" > /dev/null 2>&1
    export XDG_CACHE_HOME=$cache
    substitute "$UPKEY $KEY" "$root" || fail "substitution with nginx stopped ($cache): $(tail -5 "$TMP/nix.log")"
done
pass "with nginx stopped, the closure substitutes from larder alone (fresh client, and one with the old narinfos)"

# 2. The private larder upstream.
nix-store --delete "${team_closure[@]}" > /dev/null 2>&1 || fail "could not delete the team closure"
export XDG_CACHE_HOME=$TMP/xdg4
substitute "$KEY2" "$team_root" || fail "substitution from the private upstream: $(tail -5 "$TMP/nix.log")"
pass "a private larder upstream (pull token read from a file) serves through larder"

# 3. Dead upstreams: a closed port, then one that accepts connections and
# never answers (a black hole).
"$LARDER" cache create dead > /dev/null
closed=$(free_port) hole=$(free_port)
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(128); print("ready", flush=True); time.sleep(300)' \
    "$hole" > "$TMP/hole.out" &
HOLE_PID=$!
for _ in $(seq 50); do grep -q ready "$TMP/hole.out" 2>/dev/null && break; sleep 0.1; done
"$LARDER" cache configure dead --upstream "http://127.0.0.1:$closed=$UPKEY" \
    --upstream "http://127.0.0.1:$hole=$UPKEY" --upstream-timeout 1s > /dev/null
ask() { curl -s -o /dev/null -w '%{http_code} %{time_total}' -H "Authorization: Bearer $ADMIN_TOKEN" \
    "$URL/dead/$1.narinfo"; }
read -r code1 t1 <<< "$(ask 00000000000000000000000000000001)"
read -r code2 t2 <<< "$(ask 00000000000000000000000000000002)"
[ "$code1" = 404 ] && [ "$code2" = 404 ] || fail "dead upstreams: $code1, $code2"
kill "$HOLE_PID" 2>/dev/null || true
[ "$(echo "$t1 >= 0.9 && $t1 < 2.5" | bc)" = 1 ] || fail "the first miss took $t1 s (the black hole's timeout is 1 s)"
[ "$(echo "$t2 < 0.2" | bc)" = 1 ] || fail "the second miss took $t2 s with both breakers open"
pass "dead upstreams: first miss 404 in ${t1}s (1 s timeout), the next 404 in ${t2}s (breakers open)"

# 4. A NAR whose hash does not match its signed narinfo.
bad_root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small bad-$$)
mkdir -p "$TMP/up2"
nix copy --to "file://$TMP/up2?compression=xz&secret-key=$TMP/up.sk" "$bad_root" 2>> "$TMP/nix.log"
nginx_start "$TMP/up2"
"$LARDER" cache create bad > /dev/null
"$LARDER" cache configure bad --upstream "$NGINX_URL=$UPKEY" > /dev/null
bh=$(basename "$bad_root" | cut -c1-32)
file=$(sed -n 's/^URL: //p' "$TMP/up2/$bh.narinfo")
other=$(ls "$TMP/up2"/nar/*.nar.xz | grep -v "$file" | head -1)
cp "$TMP/up2/$file" "$TMP/good.nar.xz"
cp "$other" "$TMP/up2/$file"  # a valid NAR, of another path
served=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/bad/$bh.narinfo" | sed -n 's/^URL: //p')
[ -n "$served" ] || fail "no narinfo for the bad path"
if curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/bad/$served" -o "$TMP/bad.nar.zst"; then
    fail "the tampered NAR was served completely"
fi
# (Refused at the end for its NarHash, or earlier if it runs past the NarSize.)
mismatch='sent a NAR for .* with NarHash|sent more than the NarSize'
for _ in $(seq 20); do grep -qE "$mismatch" "$TMP/data/serve.log" && break; sleep 0.1; done
grep -qE "$mismatch" "$TMP/data/serve.log" || fail "no log line about the mismatch: $(grep -i upstream "$TMP/data/serve.log" | tail -3)"
curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/bad/$bh.narinfo" | grep -q '^URL: nar/upstream-' \
    || fail "the tampered NAR was stored"
cp "$TMP/good.nar.xz" "$TMP/up2/$file"
curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/bad/$served" -o "$TMP/good.nar.zst" \
    || fail "the next request (upstream fixed) failed"
want=$(sed -n 's/^NarHash: //p' "$TMP/up2/$bh.narinfo")
got=$(nar_hash_of "$TMP/good.nar.zst")
[ "sha256:$got" = "$want" ] || fail "the refetched NAR hashes to $got, not $want"
[ "$(metric larder_upstream_nar_failures_total)" -ge 1 ] || fail "no failed fetch counted"
pass "a NAR not matching its signed NarHash: the client gets an error, nothing is stored, the next request works"
nginx_stop

# Deletes CLOSURE and substitutes ROOT from CACHE by a fresh client, trusting
# only that cache's key.
substitute_again() {  # CACHE ROOT CLOSURE...
    local cache=$1 root=$2; shift 2
    nix-store --delete "$@" > /dev/null 2>&1 || fail "could not delete the closure of $root"
    export XDG_CACHE_HOME=$TMP/xdg-$cache
    nix-store -r "$root" --option substituters "$URL/$cache" --option trusted-public-keys \
        "$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/caches/$cache" | json_field public_key)" \
        --option require-sigs true > /dev/null 2>> "$TMP/nix.log" || fail "substituting $root from $cache"
}

# 5. nix copy --to a private closure whose references are upstream paths.
priv_root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small priv-$$)
mapfile -t priv_closure < <(nix-store -qR "$priv_root")
mkdir -p "$TMP/up3"
deps=(); for p in "${priv_closure[@]}"; do [ "$p" != "$priv_root" ] && deps+=("$p"); done
nix copy --to "file://$TMP/up3?compression=xz&secret-key=$TMP/up.sk" "${deps[@]}" 2>> "$TMP/nix.log"
nginx_start "$TMP/up3"
"$LARDER" cache create priv > /dev/null
"$LARDER" cache configure priv --upstream "$NGINX_URL=$UPKEY" > /dev/null
export XDG_CACHE_HOME=$TMP/xdg5
uploads_before=$(metric larder_uploads_total)
nix copy --to "$URL/priv?compression=zstd" "$priv_root" 2>> "$TMP/nix.log" || fail "nix copy of the private closure: $(tail -3 "$TMP/nix.log")"
[ "$(nar_gets)" = 0 ] || fail "the copy made larder download $(nar_gets) upstream NARs"
puts=$(( $(metric larder_uploads_total) - uploads_before ))
[ "$puts" = 1 ] || fail "nix uploaded $puts NARs (the rest are upstream)"
substitute_again priv "$priv_root" "${priv_closure[@]}"
pass "nix copy of a private path referring to ${#deps[@]} upstream paths: 1 NAR uploaded, none fetched; it substitutes"

# 5b. The same with larder push: the server says which paths its upstreams
# serve (the local paths carry no upstream signature), and push skips them.
push_root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small push-$$)
mapfile -t push_closure < <(nix-store -qR "$push_root")
deps=(); for p in "${push_closure[@]}"; do [ "$p" != "$push_root" ] && deps+=("$p"); done
nix copy --to "file://$TMP/up3?compression=xz&secret-key=$TMP/up.sk" "${deps[@]}" 2>> "$TMP/nix.log"
gets_before=$(nar_gets)
"$LARDER" cache create priv2 > /dev/null
"$LARDER" cache configure priv2 --upstream "$NGINX_URL=$UPKEY" > /dev/null
"$LARDER" push priv2 "$push_root" --json > "$TMP/push.json" 2>> "$TMP/push.log" || fail "larder push: $(tail -3 "$TMP/push.log")"
[ "$(json_field pushed < "$TMP/push.json")" = 1 ] && [ "$(json_field upstream < "$TMP/push.json")" = "${#deps[@]}" ] \
    || fail "larder push: $(cat "$TMP/push.json")"
[ "$(nar_gets)" = "$gets_before" ] || fail "the push made larder download $(( $(nar_gets) - gets_before )) upstream NARs"
substitute_again priv2 "$push_root" "${push_closure[@]}"
pass "larder push of a private path referring to ${#deps[@]} paths only upstream has: 1 pushed, ${#deps[@]} skipped as upstream, none fetched; it substitutes"

# 6. Eight clients, one NAR of BIG_MB (64 MB; the issue's 270 by hand), one upstream download.
half=$(( ${BIG_MB:-64} / 2 ))
mkdir -p "$TMP/big"
head -c $((half << 20)) /dev/urandom > "$TMP/big/random"
{ yes "larder pull-through $$" || true; } | head -c $((half << 20)) > "$TMP/big/text"
big=$(nix-store --add "$TMP/big")
nix copy --to "file://$TMP/up3?compression=zstd&secret-key=$TMP/up.sk" "$big" 2>> "$TMP/nix.log"
bigh=$(basename "$big" | cut -c1-32)
upfile=$(sed -n 's/^URL: //p' "$TMP/up3/$bigh.narinfo")
served=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/priv/$bigh.narinfo" | sed -n 's/^URL: //p')
up_ttfb=$(curl -s -o /dev/null -w '%{time_starttransfer}' "$NGINX_URL/$upfile")
before=$(grep -c "GET /$upfile " "$NGINX_LOG")
clients=()
for i in $(seq 8); do
    curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" -o "$TMP/big.$i" -w '%{time_starttransfer}\n' \
        "$URL/priv/$served" > "$TMP/ttfb.$i" &
    clients+=($!)
done
for pid in "${clients[@]}"; do wait "$pid" || fail "a client's download failed"; done
downloads=$(( $(grep -c "GET /$upfile " "$NGINX_LOG") - before ))
[ "$downloads" = 1 ] || fail "8 clients caused $downloads upstream downloads"
# (A client arriving after the download ended gets the stored chunks: the
# same NAR, other zstd frames.)
want=$(sed -n 's/^NarHash: //p' "$TMP/up3/$bigh.narinfo")
for i in $(seq 8); do
    got=$(nar_hash_of "$TMP/big.$i")
    [ "sha256:$got" = "$want" ] || fail "client $i's NAR hashes to $got, not $want"
done
ttfb=$(sort -n "$TMP"/ttfb.* | tail -1)
[ "$(echo "$ttfb < $up_ttfb + 0.1" | bc)" = 1 ] || fail "first byte after ${ttfb}s (nginx direct: ${up_ttfb}s)"
pass "8 clients, one $((half * 2)) MB NAR: 1 upstream download, each NAR verified against the signed NarHash, slowest first byte ${ttfb}s (nginx direct ${up_ttfb}s)"

for m in larder_upstream_narinfo_hits_total larder_upstream_narinfo_misses_total larder_upstream_errors_total \
         larder_upstream_received_bytes_total larder_upstream_nar_first_byte_seconds_count; do
    [ "$(metric "$m")" -gt 0 ] || fail "$m is $(metric "$m")"
done
pass "upstream metrics move (hits $(metric larder_upstream_narinfo_hits_total), misses $(metric larder_upstream_narinfo_misses_total), errors $(metric larder_upstream_errors_total))"
