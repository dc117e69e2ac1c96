#!/usr/bin/env bash
# Uploads, each against a baseline measured in the same run, medium closure:
#  - plain `nix copy --to http://…?compression=zstd` into Larder (local disk)
#    vs into nginx's WebDAV (dav_methods PUT, a nix-cache-info in its root);
#  - `larder push` to Larder on S3 20 ms away (radosgw behind
#    tests/tools/delay_proxy.cpp) vs `larder push` to Larder on local disk,
#    and the same with radosgw 0 ms away;
#  - narinfo p99 while the closure's largest NAR is uploaded with plain Nix;
#  - Larder's peak RSS through all of it.
#   bench/upload.sh [DELAY_MS]   (needs nginx and wrk: scripts/deps.sh --bench)
delay=${1:-20}
source "$(dirname "$0")/lib.sh"
mapfile -t paths < <(nix-store -qR "$root")
seconds() { local s; s=$(date +%s.%N); "$@" > /dev/null 2>&1 || fail "$* failed"; echo "$(date +%s.%N) - $s" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
hwm() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$SERVER_PID/status"; }

# nginx with WebDAV PUT.
mkdir -p "$TMP/dav"
printf 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n' > "$TMP/dav/nix-cache-info"
start_nginx "$TMP/dav" "dav_methods PUT; create_full_put_path on;"

larder_with() {  # DATA-DIR [storage URL]: (re)start larder, request logs on
    [ -n "${SERVER_PID:-}" ] && stop_server
    { [ -n "${2:-}" ] && printf 'storage = "%s"\n' "$2"
      printf 'log_requests = true\n'
      [ -n "${2:-}" ] && printf '[s3]\naccess_key_id = "%s"\nsecret_access_key = "%s"\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
    } > "$TMP/larder.toml"
    chmod 600 "$TMP/larder.toml"
    start_server "$1" --config "$TMP/larder.toml"
    printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
}

printf '%-50s %9s %9s %8s\n' "benchmark ($(nproc) cores)" larder baseline ratio
peak=0
note_peak() { local r; r=$(hwm); [ "$r" -gt "$peak" ] && peak=$r; true; }

# 1. Plain nix copy: answered once each NAR is durable and verified; the
# server cuts the NARs into chunks afterwards (deferred ingest), timed too.
# The machine is shared and noisy: ROUNDS rounds (default 3), larder and
# nginx in turn, each into an empty store and with a fresh Nix narinfo
# cache; the medians are shown.
# Both copies read the store from the page cache: the first one measured
# would otherwise also pay for reading 509 MB from disk.
for p in "${paths[@]}"; do nix-store --dump "$p" > /dev/null; done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
lt=() it=() nt=()
for round in $(seq "${ROUNDS:-3}"); do
    larder_with "$TMP/plain-$round"
    export XDG_CACHE_HOME=$TMP/xdg-larder-$round
    started=$(date +%s.%N)
    lt+=("$(seconds nix copy --option netrc-file "$TMP/netrc" --to "$URL/main?compression=zstd" "$root")")
    wait_ingested
    it+=("$(echo "$(date +%s.%N) - $started" | bc -l)")
    note_peak
    find "$TMP/dav" -mindepth 1 ! -name nix-cache-info -delete
    export XDG_CACHE_HOME=$TMP/xdg-nginx-$round
    nt+=("$(seconds nix copy --to "$NGINX_URL?compression=zstd" "$root")")
done
l=$(median "${lt[@]}"); n=$(median "${nt[@]}"); ingested=$(median "${it[@]}")
printf '%-50s %8.2fs %8.2fs %7sx\n' "nix copy (${#paths[@]} paths) vs nginx WebDAV" "$l" "$n" "$(ratio "$l" "$n")"
printf '%-50s %8.2fs %8.2fs %7sx\n' "  the same until all is cut into chunks" "$ingested" "$n" "$(ratio "$ingested" "$n")"
printf '%-50s %s\n' "  each round (larder / nginx, s)" "$(for i in "${!lt[@]}"; do printf '%.2f/%.2f ' "${lt[$i]}" "${nt[$i]}"; done)"

# 2. narinfo p99 while the largest NAR goes up with plain Nix (into a second cache).
big=$(nix path-info --json "${paths[@]}" | jq -r 'max_by(.narSize) | .path')
big_mb=$(( $(nix path-info --json "$big" | jq '.[0].narSize') / 1000000 ))
h0=$(basename "${paths[0]}" | cut -c1-32)
"$LARDER" cache create other --server "$URL" --token "$ADMIN_TOKEN" > /dev/null
cat > "$TMP/one.lua" <<LUA
request = function() return wrk.format("GET", "/main/$h0.narinfo", {["Authorization"] = "Bearer $ADMIN_TOKEN"}) end
LUA
p99() { wrk -t 1 -c 4 -d "$1" --latency -s "$TMP/one.lua" "$URL" | awk '$1 == "99%" {
    v = $2; if (v ~ /us$/) n = v / 1000; else if (v ~ /ms$/) n = v + 0; else n = v * 1000; print n }'; }
idle=$(p99 3s)
nix copy --option netrc-file "$TMP/netrc" --to "$URL/other?compression=zstd" "$big" 2> /dev/null &
copy_pid=$!
sleep 0.3
busy=$(p99 2s)
wait "$copy_pid" || fail "uploading the largest NAR"
printf '%-50s %8.1fms %8.1fms\n' "narinfo p99: during a $big_mb MB nix copy / idle" "$busy" "$idle"
note_peak

# 3. larder push: S3 ${delay} ms away vs local disk, and S3 with no delay
# added (what is left once the latency is hidden: radosgw's own work, which
# shares the machine's cores). ROUNDS rounds, the three in turn, each into a
# fresh server and prefix; medians, and radosgw's and ceph-osd's CPU time.
ceph_s3_start "$TMP/ceph" || fail "could not start radosgw"
ceph_s3_proxy proxy "$delay"
ceph_s3_proxy near 0
ceph_cpu() {  # CPU seconds used so far by radosgw and ceph-osd
    cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(radosgw)" || $2 == "(ceph-osd)" {t += $14 + $15} END {print t / 100}'; }
pl=() ps=() pn=() pc=()
for round in $(seq "${ROUNDS:-3}"); do
    larder_with "$TMP/local-$round"
    pl+=("$(seconds "$LARDER" push main "$root" --server "$URL" --token "$ADMIN_TOKEN")")
    note_peak
    larder_with "$TMP/s3-$round" "s3://$S3_BUCKET/push-$round?endpoint=$proxy&region=$S3_REGION"
    c0=$(ceph_cpu)
    ps+=("$(seconds "$LARDER" push main "$root" --server "$URL" --token "$ADMIN_TOKEN")")
    pc+=("$(echo "$(ceph_cpu) - $c0" | bc -l)")
    note_peak
    larder_with "$TMP/near-$round" "s3://$S3_BUCKET/near-$round?endpoint=$near&region=$S3_REGION"
    pn+=("$(seconds "$LARDER" push main "$root" --server "$URL" --token "$ADMIN_TOKEN")")
done
l=$(median "${pl[@]}"); s=$(median "${ps[@]}"); s0=$(median "${pn[@]}")
printf '%-50s %8.2fs %8.2fs %7sx\n' "larder push to S3 +$delay ms vs to local disk" "$s" "$l" "$(ratio "$s" "$l")"
printf '%-50s %8.2fs %8.2fs %7sx\n' "  larder push to S3 +0 ms vs to local disk" "$s0" "$l" "$(ratio "$s0" "$l")"
printf '%-50s %s\n' "  each round (S3 +$delay / +0 / local, s)" \
    "$(for i in "${!pl[@]}"; do printf '%.2f/%.2f/%.2f ' "${ps[$i]}" "${pn[$i]}" "${pl[$i]}"; done)"
printf '%-50s %s\n' "  radosgw + ceph-osd CPU per S3 +$delay push (s)" "$(printf '%.2f ' "${pc[@]}")"

# 4. The same with S3 on cores of its own, as it is in production (another
# machine): radosgw, ceph-osd, ceph-mon and the proxies on the second half of
# the cores, Larder's server and push on the first half, for both pushes.
cores=$(nproc)
if [ "$cores" -ge 2 ]; then
    larder_cpus=0-$((cores / 2 - 1)) s3_cpus=$((cores / 2))-$((cores - 1))
    for p in $(pgrep -x radosgw) $(pgrep -x ceph-osd) $(pgrep -x ceph-mon) $CEPH_PROXY_PIDS; do
        taskset -a -p -c "$s3_cpus" "$p" > /dev/null
    done
    pin_server() { taskset -a -p -c "$larder_cpus" "$SERVER_PID" > /dev/null; }
    pinned_push() { seconds taskset -c "$larder_cpus" "$LARDER" push main "$root" --server "$URL" --token "$ADMIN_TOKEN"; }
    ql=() qs=()
    for round in $(seq "${ROUNDS:-3}"); do
        larder_with "$TMP/pinned-local-$round" && pin_server
        ql+=("$(pinned_push)")
        note_peak
        larder_with "$TMP/pinned-s3-$round" "s3://$S3_BUCKET/pinned-$round?endpoint=$proxy&region=$S3_REGION" && pin_server
        qs+=("$(pinned_push)")
        note_peak
    done
    l=$(median "${ql[@]}"); s=$(median "${qs[@]}")
    printf '%-50s %8.2fs %8.2fs %7sx\n' "  the same, S3 and larder on cores of their own" "$s" "$l" "$(ratio "$s" "$l")"
    printf '%-50s %s\n' "  each round (S3 +$delay / local, s)" \
        "$(for i in "${!ql[@]}"; do printf '%.2f/%.2f ' "${qs[$i]}" "${ql[$i]}"; done)"
fi
printf '%-50s %7d MB\n' "larder peak RSS (largest of the servers above)" "$peak"
for log in "$TMP"/{plain,local,s3,near,pinned-local,pinned-s3}-*/serve.log; do
    if [ -e "$log" ]; then assert_no_5xx "$log"; fi
done
