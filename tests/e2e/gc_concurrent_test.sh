#!/usr/bin/env bash
# Garbage collection under load, on two replicas (PostgreSQL + radosgw):
# 1. GC runs over and over, alternating replicas, while four clients push
#    closures that overlap each other and an old generation GC is removing:
#    every push succeeds and substitutes afterwards (real Nix, signatures
#    required), and no visible path lacks a reference.
# 2. A replica is killed (-9) in the middle of a GC (its storage 150 ms
#    away, so the sweep takes seconds); GC again: nothing referenced is
#    lost, and no orphan NAR, chunk or blob is left.
source "$(dirname "$0")/lib.sh"

ceph_s3_start "$TMP/ceph" || fail "could not start radosgw"
postgres_start || fail "could not start PostgreSQL"
ceph_s3_proxy SLOW_S3 150
config() {  # ENDPOINT
    cat <<TOML
database = "$PG_URL"
storage = "s3://$S3_BUCKET/gc?endpoint=$1&region=$S3_REGION"
[s3]
access_key_id = "$S3_ACCESS_KEY"
secret_access_key = "$S3_SECRET_KEY"
[gc]
interval = "off"
use_flush = "1s"
grace = "10s"
TOML
}
config "$S3_ENDPOINT" > "$TMP/a.toml"
config "$SLOW_S3" > "$TMP/b.toml"
chmod 600 "$TMP/a.toml" "$TMP/b.toml"
start_server "$TMP/a" --config "$TMP/a.toml"
URL_A=$URL SERVER_A=$SERVER_PID
PORT= start_server "$TMP/b" --config "$TMP/b.toml"
URL_B=$URL SERVER2_PID=$SERVER_PID SERVER_PID=$SERVER_A
export LARDER_TOKEN=$ADMIN_TOKEN
KEY=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL_A/api/v1/caches/main" | json_field public_key)
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
visible() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" "$URL_A/main/$(basename "$1" | cut -c1-32).narinfo"; }

# Twelve leaves of 200 KB; g0 refers to all; client i's root to three
# (each shares one with the next client) and a leaf of its own.
tag=conc-$$-$RANDOM
cat > "$TMP/closures.nix" <<NIX
let
  system = builtins.currentSystem;
  leaf = i: derivation { name = "cleaf-\${toString i}"; inherit system; builder = "/bin/sh";
    args = [ "-c" "echo $tag \${toString i} > \$out; /bin/dd if=/dev/urandom bs=1k count=200 2>/dev/null >> \$out" ]; };
  root = name: deps: derivation { inherit name system; builder = "/bin/sh";
    args = [ "-c" "echo $tag > \$out; for d in \${toString deps}; do echo \$d >> \$out; done" ]; };
  client = i: root "client-\${toString i}" [ (leaf (2 * i)) (leaf (2 * i + 1)) (leaf (2 * i + 2)) (leaf (100 + i)) ];
in {
  g0 = root "g0" (builtins.genList leaf 12);
  c0 = client 0; c1 = client 1; c2 = client 2; c3 = client 3;
}
NIX
g0=$(nix-build "$TMP/closures.nix" -A g0 --no-out-link 2> "$TMP/build.log") || fail "build: $(tail -3 "$TMP/build.log")"
for i in 0 1 2 3; do
    roots[$i]=$(nix-build "$TMP/closures.nix" -A c$i --no-out-link 2>> "$TMP/build.log") || fail "build c$i"
done
"$LARDER" push main "$g0" --server "$URL_A" > "$TMP/push0.out" 2>&1 || { cat "$TMP/push0.out"; fail "push g0"; }
sleep 9   # g0 is now over 8 s old: GC below removes what nothing newer uses
"$LARDER" cache configure main --retention 8s --server "$URL_A" > /dev/null || fail "configure retention"

# 1. GC as fast as it goes, alternating replicas, at the real time (--now
# would age the grace period under the uploads too): paths unused for 8 s
# go. Meanwhile four clients push.
(
    n=0
    while [ ! -e "$TMP/stop" ]; do
        u=$URL_A; [ $((n % 2)) = 1 ] && u=$URL_B
        "$LARDER" gc --json --server "$u" > "$TMP/gc.$n.json" 2> "$TMP/gc.$n.err" || true
        n=$((n + 1))
    done
) &
gc_loop=$!
sleep 0.5
for i in 0 1 2 3; do
    u=$URL_A; [ $((i % 2)) = 1 ] && u=$URL_B
    ( "$LARDER" push main "${roots[$i]}" --server "$u" > "$TMP/push-c$i.out" 2>&1; echo $? > "$TMP/push-c$i.rc" ) &
done
wait_pushes() { for i in 0 1 2 3; do while [ ! -e "$TMP/push-c$i.rc" ]; do sleep 0.1; done; done; }
wait_pushes
sleep 1
touch "$TMP/stop"
wait "$gc_loop"
runs=$(ls "$TMP"/gc.*.json | wc -l)
ran=$(cat "$TMP"/gc.*.json | jq -s '[.[] | select(.caches != null)] | length')
busy=$(cat "$TMP"/gc.*.err | grep -c "another replica" || true)
deleted=$(cat "$TMP"/gc.*.json | jq -s '[.[] | .caches[]?.deleted | length] | add')
[ "$ran" -ge 4 ] || fail "only $ran GC runs completed during the pushes"
[ "$(visible "$g0")" = 404 ] || fail "g0 (unused) was never collected"
for i in 0 1 2 3; do
    [ "$(cat "$TMP/push-c$i.rc")" = 0 ] || fail "push of client $i failed: $(tail -5 "$TMP/push-c$i.out")"
done
again=$(cat "$TMP"/push-c*.out | grep -c "pushing again" || true)
pass "$ran GC runs ($busy refused while another held the lease) deleted $deleted paths while 4 clients pushed; all 4 pushes succeeded ($again pushed again after a reference was collected)"

# Every visible path has its references; every pushed closure substitutes.
"$LARDER" cache configure main --retention none --server "$URL_A" > /dev/null || fail "configure retention none"
mapfile -t all < <(nix-store -qR "$g0" "${roots[@]}" | sort -u)
assert_closed visible "${all[@]}"
mapfile -t pushed < <(nix-store -qR "${roots[@]}" | sort -u)
nix-store --delete "$g0" "${roots[@]}" "${all[@]}" > /dev/null 2>&1 || true
for p in "${pushed[@]}"; do [ ! -e "$p" ] || fail "could not delete $p locally"; done
nix-store -r "${roots[@]}" --option netrc-file "$TMP/netrc" --option substituters "$URL_B/main" \
    --option trusted-public-keys "$KEY" --option require-sigs true > /dev/null 2> "$TMP/nix.log" \
    || fail "substituting the pushed closures: $(tail -3 "$TMP/nix.log")"
for p in "${pushed[@]}"; do [ -e "$p" ] || fail "$p was not substituted"; done
pass "no visible path lacks a reference; the 4 pushed closures (${#pushed[@]} paths) substitute from replica B with require-sigs"

# 2. kill -9 in the middle of a GC: B sweeps through storage 150 ms away.
"$LARDER" cache delete main --server "$URL_A" > /dev/null || fail "cache delete"
"$LARDER" cache create main --server "$URL_A" > /dev/null || fail "cache create"
KEY=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL_A/api/v1/caches/main" | json_field public_key)
keep=${roots[0]}
"$LARDER" push main "$keep" --server "$URL_A" > "$TMP/push-keep.out" 2>&1 || fail "push $keep"
"$LARDER" gc --now +30s --server "$URL_A" > /dev/null 2>&1 || fail "gc (mark NARs)"
"$LARDER" gc --now +60s --server "$URL_A" > /dev/null 2>&1 || fail "gc (delete NARs, mark chunks)"
count_blobs() {
    ceph_s3_request GET "/$S3_BUCKET?list-type=2&prefix=gc" | grep -o '<Key>' | wc -l
}
stats() { curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL_A/api/v1/stats"; }
before=$(stats)
blobs_before=$(count_blobs)
[ "$(jq .unused_chunks <<< "$before")" -ge 10 ] || fail "too little garbage to sweep: $before"
"$LARDER" gc --now +90s --server "$URL_B" > "$TMP/killed.out" 2>&1 &
sleep 1.2
kill -9 "$SERVER2_PID"
wait "$SERVER2_PID" 2>/dev/null || true
# The chunk rows go first (one statement), their blobs one by one after.
mid=$(stats)
blobs_mid=$(count_blobs)
[ "$blobs_mid" -lt "$blobs_before" ] && [ "$blobs_mid" -gt "$(jq '.chunks - .inline_chunks' <<< "$mid")" ] \
    || fail "the kill did not land in the middle of the sweep: $blobs_before -> $blobs_mid blobs, $(jq '.chunks - .inline_chunks' <<< "$mid") chunks with a blob"
# The dead replica's lease (30 s) must expire before another GC may run.
if "$LARDER" gc --now +90s --server "$URL_A" > "$TMP/held.out" 2>&1; then fail "GC ran while the dead replica held the lease"; fi
grep -q "another replica" "$TMP/held.out" || fail "unclear refusal: $(cat "$TMP/held.out")"
for _ in $(seq 40); do
    "$LARDER" gc --now +90s --server "$URL_A" > "$TMP/after.out" 2>&1 && break
    sleep 1
done
grep -q "storage:" "$TMP/after.out" || fail "GC after the kill: $(cat "$TMP/after.out")"
after=$(stats)
[ "$(jq .unused_chunks <<< "$after")" = 0 ] && [ "$(jq .unused_nars <<< "$after")" = 0 ] || fail "garbage left: $after"
blobs=$(count_blobs)
[ "$blobs" = "$(jq '.chunks - .inline_chunks' <<< "$after")" ] \
    || fail "$blobs blobs for $(jq '.chunks - .inline_chunks' <<< "$after") chunks with a blob after the kill"
"$LARDER" fsck --server "$URL_A" > "$TMP/fsck.out" 2>&1 || fail "fsck after the kill: $(cat "$TMP/fsck.out")"
mapfile -t kept < <(nix-store -qR "$keep")
nix-store --delete "${kept[@]}" > /dev/null 2>&1 || true
rm -rf "$XDG_CACHE_HOME"
nix-store -r "$keep" --option netrc-file "$TMP/netrc" --option substituters "$URL_A/main" \
    --option trusted-public-keys "$KEY" --option require-sigs true > /dev/null 2> "$TMP/nix.log" \
    || fail "substituting after the kill: $(tail -3 "$TMP/nix.log")"
pass "kill -9 mid-sweep ($blobs_before -> $blobs_mid blobs, $(jq .chunks <<< "$mid") chunk rows), lease expired, GC again: $blobs blobs = chunks not kept in the database, fsck clean, $(basename "$keep")'s closure substitutes"
assert_no_5xx "$TMP/a/serve.log"
