#!/usr/bin/env bash
# larder push with the real Nix 2.8: push a closure, substitute it back with
# signatures required; a re-push is one request; upstream-signed paths are
# skipped; a server killed mid-push leaves nothing partial visible.
source "$(dirname "$0")/lib.sh"

start_server "$TMP/data"
export LARDER_SERVER=$URL LARDER_TOKEN=$ADMIN_TOKEN
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
export NIX_CONFIG="$NIX_CONFIG"$'\n'"netrc-file = $TMP/netrc"
KEY=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/caches/main" | json_field public_key)
requests() { sleep 0.1; grep -c ' /main/\| /api/v1/caches/main' "$TMP/data/serve.log" || true; }
visible() { status_anon -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$(basename "$1" | cut -c1-32).narinfo"; }

# 1. Push the small corpus; substitute it back with only the cache's key trusted.
root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small push-$$)
mapfile -t closure < <(nix-store -qR "$root")
# -j 1: one NAR of 1 MiB or more at a time, and small ones (the 20 leaves
# of 136 bytes) besides it, up to 4 uploads at once.
"$LARDER" push -j 1 main "$root" --json > "$TMP/push1.json" 2> "$TMP/push1.err" || { cat "$TMP/push1.err"; fail "larder push"; }
[ "$(jq .pushed "$TMP/push1.json")" -eq "${#closure[@]}" ] || fail "pushed $(jq .pushed "$TMP/push1.json") of ${#closure[@]}"
[ "$(jq .failed "$TMP/push1.json")" -eq 0 ] || fail "failures: $(cat "$TMP/push1.json")"
sleep 0.1  # the request log is written every 50 ms
# The most push requests under way at once, from each line's end time and
# duration, each cut by 1 ms at both ends (the log's time is in ms and taken
# after the answer), so that requests one after the other never count.
overlap=$(awk '/ PUT \/main\/push\// { split(substr($1, 12, 12), t, ":"); end = (t[1] * 3600 + t[2] * 60 + t[3]) * 1000
                 d = $NF + 0; if (d > 2) printf "%.1f 1\n%.1f -1\n", end - d + 1, end - 1 }' "$TMP/data/serve.log" |
          sort -k1,1n -k2,2n | awk '{ n += $2; if (n > most) most = n } END { print most + 0 }')
[ "$overlap" -ge 3 ] || fail "with -j 1, at most $overlap push requests ran at once (small paths should run besides the one large)"
pass "larder push -j 1 pushed ${#closure[@]} paths ($(jq .nar_bytes "$TMP/push1.json") NAR bytes, $(jq .sent_bytes "$TMP/push1.json") sent), up to $overlap at once"

nix-store --delete "${closure[@]}" > /dev/null 2>&1 || fail "could not delete the closure"
for p in "${closure[@]}"; do [ ! -e "$p" ] || fail "$p still exists"; done
export XDG_CACHE_HOME=$TMP/xdg2
nix-store -r "$root" --option substituters "$URL/main" --option trusted-public-keys "$KEY" \
    --option require-sigs true > /dev/null 2>> "$TMP/nix.log" || fail "substitution failed: $(tail -3 "$TMP/nix.log")"
nix store verify -r "$root" --trusted-public-keys "$KEY" --sigs-needed 1 2>> "$TMP/nix.log" || fail "nix store verify"
pass "deleted and substituted ${#closure[@]} pushed paths with require-sigs"

# 2. A second push of the same closure is exactly one request.
before=$(requests)
"$LARDER" push main "$root" --json > "$TMP/push2.json" 2>/dev/null || fail "second push"
after=$(requests)
[ $((after - before)) -eq 1 ] || fail "the re-push made $((after - before)) requests"
[ "$(jq .cached "$TMP/push2.json")" -eq "${#closure[@]}" ] || fail "re-push: $(cat "$TMP/push2.json")"
pass "re-pushing ${#closure[@]} cached paths made exactly one request"

# 3. Paths signed by an upstream key are skipped, and the paths that
# reference them are still accepted: the server verifies each upstream
# reference's signature with the cache's upstream keys (full keys).
root3=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small upstream-$$)
mapfile -t closure3 < <(nix-store -qR "$root3")
nix-store --generate-binary-cache-key cache.nixos.org-1 "$TMP/up.sec" "$TMP/up.pub"
mapfile -t signed < <(nix-store -qR "$root3" | grep -v -e "$root3" | head -5)
nix store sign --key-file "$TMP/up.sec" "${signed[@]}"
# Trusted by name only, the server cannot verify what the client leaves upstream.
"$LARDER" cache configure main --upstream-key cache.nixos.org-1 > /dev/null
if "$LARDER" push main "$root3" --retries 0 > "$TMP/push3-name.out" 2>&1; then fail "upstream trusted by name alone"; fi
grep -q "no signature on it verifies" "$TMP/push3-name.out" || fail "message: $(tail -3 "$TMP/push3-name.out")"
"$LARDER" cache configure main --upstream-key "$(cat "$TMP/up.pub")" > /dev/null
"$LARDER" push main "$root3" --json > "$TMP/push3.json" 2> "$TMP/push3.err" || { cat "$TMP/push3.err"; fail "push with upstream paths"; }
[ "$(jq .upstream "$TMP/push3.json")" -eq "${#signed[@]}" ] || fail "upstream skipped: $(cat "$TMP/push3.json")"
# (the refused attempt above already pushed the paths that refer to nothing upstream)
[ $(( $(jq .pushed "$TMP/push3.json") + $(jq .cached "$TMP/push3.json") )) -eq $(( ${#closure3[@]} - ${#signed[@]} )) ] \
    || fail "pushed: $(cat "$TMP/push3.json")"
for p in "${signed[@]}"; do [ "$(visible "$p")" = 404 ] || fail "upstream-signed $p was pushed"; done
[ "$(visible "$root3")" = 200 ] || fail "the root was not pushed"
pass "${#signed[@]} upstream-signed paths skipped (verified by the server with the full key, refused by name alone), the rest pushed"

# 4. Kill the server in the middle of a push: nothing partial is visible after
# a restart, and pushing again completes.
head -c 200000000 /dev/urandom > "$TMP/big-$$"
big=$(nix-store --add "$TMP/big-$$")
rm "$TMP/big-$$"
cat > "$TMP/big.nix" <<NIX
derivation { name = "holds-big-$$"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "echo \${builtins.storePath "$big"} > \$out" ]; }
NIX
top=$(nix-build --no-out-link "$TMP/big.nix" 2>/dev/null)
blobs() { find "$TMP/data/blobs" -type f | wc -l; }
n0=$(blobs)
"$LARDER" push main "$top" --retries 1 > "$TMP/push4.out" 2>&1 &
push_pid=$!
for _ in $(seq 200); do   # until the first chunks of the big NAR are stored
    [ "$(blobs)" -gt $((n0 + 2)) ] && break
    sleep 0.02
done
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
if wait "$push_pid"; then fail "push succeeded although the server died"; fi
grep -q 'cannot reach the Larder server' "$TMP/push4.out" || fail "no clear error: $(tail -3 "$TMP/push4.out")"
start_server "$TMP/data"
[ "$(visible "$big")" = 404 ] || fail "the big path is visible after the crash"
[ "$(visible "$top")" = 404 ] || fail "the top path is visible before its reference"
"$LARDER" push main "$top" --json > "$TMP/push5.json" 2> "$TMP/push5.err" || { cat "$TMP/push5.err"; fail "push after restart"; }
[ "$(visible "$top")" = 200 ] && [ "$(visible "$big")" = 200 ] || fail "not complete after the second push"
nix store verify --store "$URL/main" --trusted-public-keys "$KEY" --sigs-needed 1 -r "$top" 2>> "$TMP/nix.log" \
    || fail "nix store verify of the cache: $(tail -3 "$TMP/nix.log")"
pass "server killed mid-push: nothing visible, the error said why, the next push completed and verifies"

# 5. Bad requests to the push endpoint are clear 4xx errors. The body starts
# with the narinfo and the upstream hash parts, each as "<length>\n<bytes>".
push_prefix() { printf '%d\n%s%d\n%s' "${#1}" "$1" "${#2}" "$2"; }
expect_push() {  # STATUS WHAT BODY-FILE [HASH] [CURL-ARGS...]
    local want=$1 what=$2 body=$3 hash=${4:-$(basename "$root3" | cut -c1-32)}; shift 3; shift || true
    local got
    got=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT -H "Authorization: Bearer $ADMIN_TOKEN" "$@" \
        --data-binary @"$body" "$URL/main/push/$hash")
    [ "$got" = "$want" ] || fail "$what: got $got: $(cat "$TMP/body")"
}
: > "$TMP/empty"
expect_push 400 "empty body" "$TMP/empty"
grep -q "ended before its narinfo" "$TMP/body" || fail "message: $(cat "$TMP/body")"
printf 'xyz\n' > "$TMP/nolength"
expect_push 400 "no length prefix" "$TMP/nolength"
push_prefix 'StorePath: nope' '' > "$TMP/garbage"
expect_push 400 "garbage narinfo" "$TMP/garbage"
printf '99999999999\n' > "$TMP/huge"
expect_push 413 "narinfo over the limit" "$TMP/huge"
info=$(printf 'StorePath: %s\nURL: nar/x\nCompression: zstd\nNarHash: sha256:%s\nNarSize: 5\nReferences: %s\n' \
    "$root3" "$(printf 0%.0s $(seq 52))" "$(basename "${signed[0]}")")
push_prefix "$info" '' > "$TMP/refmissing"
expect_push 400 "reference missing" "$TMP/refmissing"
grep -q "not in cache 'main'" "$TMP/body" || fail "message: $(cat "$TMP/body")"
# An upstream narinfo for a path that is not a reference, and one whose
# signature is by no key the cache trusts.
upinfo() { nix path-info --json "$1" | jq -r --arg p "$1" '.[0] | "StorePath: \($p)\nURL: nar/x\nCompression: none\nNarHash: \(.narHash)\nNarSize: \(.narSize)\nReferences: \(.references | map(sub(".*/"; "")) | join(" "))\n" + (.signatures // [] | map("Sig: " + .) | join("\n")) + "\n"'; }
notref=$(upinfo "${signed[0]}")
push_prefix "$(printf '%s' "$info" | sed "s|References: .*|References: |")" "$(printf '%d\n%s' "${#notref}" "$notref")" > "$TMP/notref"
expect_push 400 "upstream path that is no reference" "$TMP/notref"
grep -q "is not a reference of" "$TMP/body" || fail "message: $(cat "$TMP/body")"
unsigned=$(upinfo "${signed[0]}" | grep -v '^Sig:')
push_prefix "$info" "$(printf '%d\n%s' "${#unsigned}" "$unsigned")" > "$TMP/unsigned"
expect_push 400 "upstream path without a trusted signature" "$TMP/unsigned"
grep -q "no signature on it verifies" "$TMP/body" || fail "message: $(cat "$TMP/body")"
# A new leaf (never pushed) with a valid narinfo but a body that is not zstd frames.
echo "leaf $$ $RANDOM" > "$TMP/leaf-file"
leaf=$(nix-store --add "$TMP/leaf-file")
[ "$(visible "$leaf")" = 404 ] || fail "the new leaf $leaf is already in the cache"
leafinfo=$(printf 'StorePath: %s\nURL: nar/x\nCompression: zstd\nNarHash: %s\nNarSize: %s\nReferences: \n' "$leaf" \
    "$(nix path-info --json "$leaf" | jq -r '.[0].narHash')" "$(nix path-info --json "$leaf" | jq -r '.[0].narSize')")
{ push_prefix "$leafinfo" ''; echo garbage; } > "$TMP/garbage-frames"
expect_push 400 "garbage frames" "$TMP/garbage-frames" "$(basename "$leaf" | cut -c1-32)" -H "X-Larder-Frames: chunks"
grep -q 'zstd' "$TMP/body" || fail "garbage frames: $(cat "$TMP/body")"
[ "$(visible "$leaf")" = 404 ] || fail "a garbage push became visible"
assert_no_5xx "$TMP/data/serve.log"
pass "malformed pushes get 400 with the reason"
