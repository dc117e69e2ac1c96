#!/usr/bin/env bash
# larder serve against nginx serving a `nix copy --to file://` cache of the
# same closure (the medium corpus), request logs on on both, measured in the
# same run with wrk:
# narinfo hits, narinfo misses, one large NAR over 1 and 16 connections, and
# larder's memory while 16 clients download that NAR.
#   bench/serve.sh [seconds-per-run]   (needs nginx and wrk: scripts/deps.sh --bench)
#   CHUNKS=small bench/serve.sh        the same with [chunks] 64K/256K/1M (the defaults until 2026-11)
secs=${1:-5}
source "$(dirname "$0")/lib.sh"
mapfile -t paths < <(nix-store -qR "$root")

# Larder: a public cache, so both servers answer anonymous GETs.
# Request logs on on both sides, as in production.
printf 'log_requests = true\n' > "$TMP/larder.toml"
chunks_config >> "$TMP/larder.toml"
start_server "$TMP/larder" --config "$TMP/larder.toml" > /dev/null
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
"$LARDER" cache configure main --public --server "$URL" --token "$ADMIN_TOKEN" > /dev/null
nix copy --option netrc-file "$TMP/netrc" --to "$URL/main?compression=zstd" "$root" 2> /dev/null
wait_ingested  # the server's chunks, and no background work during the runs
LARDER_URL=$URL/main

# nginx: the same closure as files.
nix copy --to "file://$TMP/files?compression=zstd" "$root" 2> /dev/null
start_nginx "$TMP/files"

# The narinfo URLs of every path (hits) and of absent paths (misses).
for p in "${paths[@]}"; do basename "$p" | cut -c1-32; done > "$TMP/hashes"
cat > "$TMP/narinfo.lua" <<'LUA'
local hashes = {}
for line in io.lines(os.getenv("HASHES")) do hashes[#hashes + 1] = line end
local i = 0
request = function()
  i = i + 1
  local h = hashes[(i % #hashes) + 1]
  if os.getenv("MISS") then h = "0000000000000000" .. string.sub(h, 17) end
  return wrk.format("GET", os.getenv("PREFIX") .. "/" .. h .. ".narinfo")
end
LUA
rps() {  # PREFIX-URL CONNECTIONS [MISS]
    HASHES=$TMP/hashes PREFIX=$(echo "$1" | sed 's|^http://[^/]*||') MISS=${3:-} \
        wrk -t "$(( $2 < 2 ? 1 : 2 ))" -c "$2" -d "${secs}s" -s "$TMP/narinfo.lua" "$1" | awk '/Requests\/sec/ {print $2}'
}
throughput() {  # URL CONNECTIONS -> MB/s
    wrk -t "$(( $2 < 2 ? 1 : 2 ))" -c "$2" -d "${secs}s" "$1" | awk '/Transfer\/sec/ {
        v = $2; u = substr(v, length(v) - 1); n = substr(v, 1, length(v) - 2);
        if (u == "GB") n *= 1024; if (u == "KB") n /= 1024; print n }'
}
ratio() { echo "scale=2; $1 / $2" | bc -l; }

# Check both serve what they should before timing them.
h0=$(head -1 "$TMP/hashes")
curl -sf "$LARDER_URL/$h0.narinfo" > /dev/null && curl -sf "$NGINX_URL/$h0.narinfo" > /dev/null

# The largest NAR of the closure.
big=$(nix path-info --json "${paths[@]}" | jq -r 'max_by(.narSize) | .path')
bh=$(basename "$big" | cut -c1-32)
larder_nar=$LARDER_URL/$(curl -sf "$LARDER_URL/$bh.narinfo" | sed -n 's/^URL: //p')
nginx_nar=$NGINX_URL/$(sed -n 's/^URL: //p' "$TMP/files/$bh.narinfo")
nar_mb=$(( $(nix path-info --json "$big" | jq '.[0].narSize') / 1000000 ))

# The machine is shared and noisy: each row runs ROUNDS times, larder and
# nginx in turn, and shows the median of each. The CPU columns are each
# server's own CPU time (user + system, all threads) per request or per MB
# sent, which the load generator sharing the cores disturbs less.
rounds=${ROUNDS:-3}
cpu_ticks() {  # PID... -> their user + system time (all threads, ended ones too), in ticks of 1/100 s
    local t=0 pid
    for pid in "$@"; do t=$(( t + $(awk '{print $14 + $15}' "/proc/$pid/stat") )); done
    echo "$t"
}
nginx_pids() { pgrep -P "$(cat "$NGINX_DIR/nginx.pid")" | tr '\n' ' '; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
row() {  # LABEL UNIT-PER-CPU(req|MB) COMMAND-FOR-LARDER COMMAND-FOR-NGINX
    local label=$1 per=$2 lv=() nv=() lc=() nc=() i v a
    for i in $(seq "$rounds"); do
        a=$(cpu_ticks "$SERVER_PID"); v=$(eval "$3"); lv+=("$v")
        lc+=("$(echo "($(cpu_ticks "$SERVER_PID") - $a) * 10000 / ($v * $secs)" | bc -l)")
        a=$(cpu_ticks $(nginx_pids)); v=$(eval "$4"); nv+=("$v")
        nc+=("$(echo "($(cpu_ticks $(nginx_pids)) - $a) * 10000 / ($v * $secs)" | bc -l)")
    done
    local l n; l=$(median "${lv[@]}"); n=$(median "${nv[@]}")
    printf '%-34s %10.0f %10.0f %6sx %9.1f %9.1f  us CPU/%s\n' "$label" "$l" "$n" "$(ratio "$l" "$n")" \
        "$(median "${lc[@]}")" "$(median "${nc[@]}")" "$per"
}

# Warm larder's memos (each path's narinfo) before timing.
rps "$LARDER_URL" 4 > /dev/null
printf '%-34s %10s %10s %7s %9s %9s\n' "benchmark (${secs}s, median of $rounds, $(nproc) cores)" larder nginx ratio \
    "larder" "nginx"
for c in 1 64; do
    row "narinfo hits, $c conn (req/s)" req "rps $LARDER_URL $c" "rps $NGINX_URL $c"
done
row "narinfo misses, 64 conn (req/s)" req "rps $LARDER_URL 64 miss" "rps $NGINX_URL 64 miss"
for c in 1 16; do
    row "${nar_mb} MB NAR, $c conn (MB/s)" MB "throughput $larder_nar $c" "throughput $nginx_nar $c"
done

# Memory while 16 clients download the large NAR at once.
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$SERVER_PID/status"; }
idle=$(rss)
pids=()
for i in $(seq 16); do curl -sf -o /dev/null "$larder_nar" & pids+=($!); done
peak=$idle
running() { for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while running; do r=$(rss); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.05; done
printf 'larder RSS: %d MB idle, %d MB peak during 16 concurrent downloads of the %d MB NAR\n' "$idle" "$peak" "$nar_mb"
