#!/usr/bin/env bash
# Garbage collection over OBJECTS (default 1,000,000) synthetic store paths
# on PostgreSQL, each with its own NAR and chunk, in blocks of 1,000 paths
# referring to each other; every other block unused for 40 days. Retention
# 30 days: the first GC deletes half the paths, two more (the grace period
# later) their NARs and chunks. Meanwhile wrk fetches narinfos of random
# paths (request logs on); the ratio is its rate during GC over its rate
# without, measured in the same run.
#   bench/gc.sh [OBJECTS]   (needs wrk: scripts/deps.sh --bench)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LARDER=$PWD/build/release/larder LARDER_SOURCE=$PWD
[ -x "$LARDER" ] || scripts/build.sh release > /dev/null
source tests/e2e/lib.sh
objects=${1:-1000000}

postgres_start || fail "could not start PostgreSQL"
cat > "$TMP/larder.toml" <<TOML
database = "$PG_URL"
log_requests = true
[gc]
interval = "off"
[[caches]]
name = "main"
public = true
TOML
start_server "$TMP/data" --config "$TMP/larder.toml"
export LARDER_SERVER=$URL LARDER_TOKEN=$ADMIN_TOKEN

# Hash parts and digests from md5 (hex without 'e' is nix32). Path i refers
# to i-1 and to the path halfway to its block's first, within its block.
now=$(date +%s)
make_rows() {
    local start; start=$(date +%s.%N)
psql "$PG_URL" -q -v ON_ERROR_STOP=1 <<SQL
DELETE FROM objects; DELETE FROM nar_chunks; DELETE FROM nars; DELETE FROM chunks;
CREATE TEMP TABLE gen AS SELECT i,
    translate(substr(md5('h' || i), 1, 32), 'e', 'z') AS hash,
    translate(md5('n' || i) || substr(md5('m' || i), 1, 20), 'e', 'z') AS nar,
    translate(md5('f' || i) || substr(md5('g' || i), 1, 20), 'e', 'z') AS file
    FROM generate_series(1, $objects) i;
INSERT INTO chunks (id, hash, size, stored_size, compression, content_hash, server_made, created_at, blob)
    SELECT i, md5('c' || i) || md5('d' || i), 4000, 2000, 'zstd', md5('c' || i), 1, $now, md5('c' || i) || md5('d' || i)
    FROM gen;
INSERT INTO nars (id, nar_hash, nar_size, file_hash, file_size, created_at)
    SELECT i, 'sha256:' || nar, 4000, 'sha256:' || file, 2000, $now FROM gen;
INSERT INTO nar_chunks (nar_id, seq, chunk_id) SELECT i, 0, i FROM gen;
INSERT INTO objects (cache_id, hash_part, store_path, nar_id, refs, deriver, system, ca, sigs, created_at, last_accessed_at)
    SELECT (SELECT id FROM caches WHERE name = 'main'), g.hash, g.hash || '-path-' || g.i, g.i,
        CASE WHEN (g.i - 1) % 1000 = 0 THEN ''
             ELSE p1.hash || '-path-' || p1.i || ' ' || p2.hash || '-path-' || p2.i END,
        '', 'x86_64-linux', '', '', $now,
        CASE WHEN ((g.i - 1) / 1000) % 2 = 0 THEN $now - 40 * 86400 ELSE $now - 86400 END
    FROM gen g
    LEFT JOIN gen p1 ON p1.i = g.i - 1
    LEFT JOIN gen p2 ON p2.i = g.i - ((g.i - 1) % 1000) + ((g.i - 1) % 1000) / 2;
SELECT setval(pg_get_serial_sequence('chunks', 'id'), $objects);
SELECT setval(pg_get_serial_sequence('nars', 'id'), $objects);
ANALYZE chunks, nars, nar_chunks, objects;
SQL
    echo "made $objects objects, NARs and chunks in $(echo "$(date +%s.%N) - $start" | bc) s"
}
make_rows
# Paths GC keeps (a fetch is a use: it would keep the others too).
psql "$PG_URL" -At -c "SELECT hash_part FROM objects WHERE last_accessed_at > $now - 30 * 86400 ORDER BY random() LIMIT 2000" > "$TMP/hashes"
"$LARDER" cache configure main --retention 30d > /dev/null
# For looking at query plans: stop here with the database up.
[ -n "${STOP_BEFORE_GC:-}" ] && { echo "PG_URL=$PG_URL URL=$URL"; sleep infinity; }

cat > "$TMP/random.lua" <<LUA
local hashes = {}
for line in io.lines("$TMP/hashes") do hashes[#hashes + 1] = line end
math.randomseed(os.time())
request = function() return wrk.format("GET", "/main/" .. hashes[math.random(#hashes)] .. ".narinfo") end
LUA
rate() {  # SECONDS: narinfo requests per second over that long
    wrk -t 2 -c 16 -d "$1" -s "$TMP/random.lua" "$URL" | awk '/Requests\/sec/ {print $2}'
}
# A GC run with wrk in 2-second windows until it ends; prints seconds and
# the rate during it.
gc_with_load() {  # LARDER-GC-ARGS...
    local s e; s=$(date +%s.%N)
    "$LARDER" gc --json "$@" > "$TMP/gc.json" 2> "$TMP/gc.err" &
    local pid=$! rates=()
    while kill -0 "$pid" 2> /dev/null; do rates+=("$(rate 2s)"); done
    wait "$pid" || fail "larder gc: $(cat "$TMP/gc.err")"
    e=$(date +%s.%N)
    local sum=0; for r in "${rates[@]}"; do sum=$(echo "$sum + $r" | bc -l); done
    printf '%s %s\n' "$(echo "$e - $s" | bc -l)" "$(echo "$sum / ${#rates[@]}" | bc -l)"
}
gc_alone() {  # LARDER-GC-ARGS...: prints seconds
    local s; s=$(date +%s.%N)
    "$LARDER" gc --json "$@" > "$TMP/gc.json" 2> "$TMP/gc.err" || fail "larder gc: $(cat "$TMP/gc.err")"
    echo "$(date +%s.%N) - $s" | bc -l
}
row() { printf '%-54s %9.1f %12s %7s\n' "$@"; }
printf '%-54s %9s %12s %7s\n' "GC over $objects paths on PostgreSQL ($(nproc) cores)" seconds "narinfo/s" ratio
# Alone: what a GC run costs.
t1=$(gc_alone); d1=$(jq '.caches[0].deleted | length' "$TMP/gc.json")
t2=$(gc_alone --now $((now + 2 * 86400))); n2=$(jq .nars_deleted "$TMP/gc.json")
t3=$(gc_alone --now $((now + 4 * 86400))); c3=$(jq .chunks_deleted "$TMP/gc.json")
row "alone, 1: retention: $d1 paths deleted (closure-safe)" "$t1" "" ""
row "alone, 2: a day later: $n2 NARs deleted, chunks marked" "$t2" "" ""
row "alone, 3: a day later: $c3 chunks (and blobs) deleted" "$t3" "" ""
row "alone, total" "$(echo "$t1 + $t2 + $t3" | bc -l)" "" ""
stats=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/stats")
[ "$(jq .unused_chunks <<< "$stats")" = 0 ] && [ "$(jq .unused_nars <<< "$stats")" = 0 ] || fail "garbage left: $stats"
# Again on fresh rows, with narinfo requests as fast as they go (wrk, 16
# connections): the rate during each run over the rate without.
make_rows
psql "$PG_URL" -At -c "SELECT hash_part FROM objects WHERE last_accessed_at > $now - 30 * 86400 ORDER BY random() LIMIT 2000" > "$TMP/hashes"
idle=$(rate 5s)
printf '%-54s %9s %12.0f %7s\n' "under load: no GC running" "" "$idle" ""
for step in 1 2 3; do
    at=$((now + (step - 1) * 2 * 86400))
    read -r secs busy < <(gc_with_load --now "$at")
    printf '%-54s %9.1f %12.0f %6.2fx\n' "under load, run $step" "$secs" "$busy" "$(echo "$busy / $idle" | bc -l)"
done
stats=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/stats")
[ "$(jq .unused_chunks <<< "$stats")" = 0 ] && [ "$(jq .unused_nars <<< "$stats")" = 0 ] || fail "garbage left: $stats"
echo "left: $(jq -c '{chunks, nars}' <<< "$stats"); server peak RSS $(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$SERVER_PID/status") MB"
