#!/usr/bin/env bash
# Larder on S3 against S3 itself: every narinfo and NAR of the medium closure
# fetched 16 paths at a time from Larder (storage: radosgw), and the same
# files (`nix copy --to file://`) fetched straight from radosgw, both through
# tests/tools/delay_proxy.cpp adding DELAY ms per request (0 and 20 by
# default). Also narinfo p99 while 16 NARs stream from S3 (baseline: nginx
# serving the narinfo file during the same streams), Larder's peak RSS,
# and the same fetches through Larder's local read cache ([s3] cache_dir), as
# it fills and once it is warm.
#   bench/s3_serve.sh [DELAY_MS...]   (needs wrk: scripts/deps.sh --bench)
#   READ_AHEAD=N CONNECTIONS=N: [s3] settings to try (default 8 and 32)
delays=("$@")
[ ${#delays[@]} -gt 0 ] || delays=(0 20)
source "$(dirname "$0")/lib.sh"
mapfile -t paths < <(nix-store -qR "$root")
ceph_s3_start "$TMP/ceph" || fail "could not start radosgw"

# The baseline: the closure's files as public objects, as a plain S3 cache has them.
nix copy --to "file://$TMP/files?compression=zstd" "$root" 2> /dev/null
(cd "$TMP/files" && find . -name '*.narinfo' -o -name '*.nar.zst') | sed 's|^\./||' > "$TMP/objects"
xargs -P 8 -I{} sh -c '[ "$(curl -s -o /dev/null -w "%{http_code}" -X PUT --aws-sigv4 "aws:amz:$0:s3" \
    --user "$1:$2" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "x-amz-acl: public-read" \
    -T "$3/{}" "$4/$5/files/{}")" = 200 ]' "$S3_REGION" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$TMP/files" \
    "$S3_ENDPOINT" "$S3_BUCKET" < "$TMP/objects" || fail "uploading the baseline files"

larder_on() {  # PROXY-ENDPOINT [CACHE-DIR]: (re)start larder with its storage behind it
    [ -n "${SERVER_PID:-}" ] && stop_server
    cat > "$TMP/larder.toml" <<TOML
storage = "s3://$S3_BUCKET/larder?endpoint=$1&region=$S3_REGION"
log_requests = true
[s3]
access_key_id = "$S3_ACCESS_KEY"
secret_access_key = "$S3_SECRET_KEY"
read_ahead = ${READ_AHEAD:-8}
connections = ${CONNECTIONS:-32}
TOML
    [ -z "${2:-}" ] || printf 'cache_dir = "%s"\ncache_max_size = "2G"\n' "$2" >> "$TMP/larder.toml"
    chmod 600 "$TMP/larder.toml"
    start_server "$TMP/larder" --config "$TMP/larder.toml"
}
hwm() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$SERVER_PID/status"; }

ceph_s3_proxy direct 0
larder_on "$direct"
"$LARDER" cache configure main --public --server "$URL" --token "$ADMIN_TOKEN" > /dev/null
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
NIX_CONFIG="$NIX_CONFIG"$'\nrequire-sigs = false' \
    nix copy --option netrc-file "$TMP/netrc" --to "$URL/main?compression=zstd" "$root" 2> /dev/null

# Two URLs per path, narinfo then NAR, for each side.
for p in "${paths[@]}"; do
    h=$(basename "$p" | cut -c1-32)
    echo "/main/$h.narinfo /main/$(curl -sf "$URL/main/$h.narinfo" | sed -n 's/^URL: //p')"
    echo "/$S3_BUCKET/files/$h.narinfo /$S3_BUCKET/files/$(sed -n 's/^URL: //p' "$TMP/files/$h.narinfo")" >&3
done > "$TMP/larder-urls" 3> "$TMP/s3-urls"
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }  # PID: CPU seconds used
fetch_all() {  # BASE URL-LIST: seconds to fetch every path, 16 at a time
    local start end c0 r0
    c0=$(cpu "$SERVER_PID"); r0=$(cpu "$CEPH_RGW_PID")
    start=$(date +%s.%N)
    sed "s|^|$1|; s| | $1|" "$2" | xargs -P 16 -L 1 curl -sf -o /dev/null -o /dev/null || fail "a fetch from $1 failed"
    end=$(date +%s.%N)
    echo "cpu: larder $(echo "$(cpu "$SERVER_PID") - $c0" | bc) s, radosgw $(echo "$(cpu "$CEPH_RGW_PID") - $r0" | bc) s" >&2
    echo "$end - $start" | bc -l
}
ratio() { echo "scale=2; $1 / $2" | bc -l; }

# narinfo p99 (ms) from wrk while 16 clients download the largest NAR.
big=$(nix path-info --json "${paths[@]}" | jq -r 'max_by(.narSize) | .path')
bh=$(basename "$big" | cut -c1-32)
cat > "$TMP/one.lua" <<LUA
request = function() return wrk.format("GET", "/main/$bh.narinfo") end
LUA
# The baseline: nginx on the same machine serving the same narinfo as a
# file, asked while the same 16 NARs stream from Larder; on a machine the
# streams saturate, its p99 is what scheduling alone costs.
start_nginx "$TMP/files"
cat > "$TMP/nginx.lua" <<LUA
request = function() return wrk.format("GET", "/$bh.narinfo") end
LUA
p99_during_streams() {  # [URL LUA]: whom wrk asks (default: larder)
    local nar pids=() p99
    nar=$URL/main/$(curl -sf "$URL/main/$bh.narinfo" | sed -n 's/^URL: //p')
    for i in $(seq 16); do curl -sf -o /dev/null "$nar" & pids+=($!); done
    p99=$(wrk -t 1 -c 4 -d 3s --latency -s "${2:-$TMP/one.lua}" "${1:-$URL}" | awk '$1 == "99%" {
        v = $2; if (v ~ /us$/) n = v / 1000; else if (v ~ /ms$/) n = v + 0; else n = v * 1000; print n }')
    wait "${pids[@]}"
    echo "$p99"
}

printf '%-44s %10s %10s %8s\n' "benchmark ($(nproc) cores)" larder "s3 (nginx)" ratio
for d in "${delays[@]}"; do
    ceph_s3_proxy proxy "$d"
    larder_on "$proxy"
    l=$(fetch_all "$URL" "$TMP/larder-urls")
    s=$(fetch_all "$proxy" "$TMP/s3-urls")
    printf '%-44s %9.2fs %9.2fs %7sx\n' "closure (${#paths[@]} paths), 16 at a time, S3 +${d} ms" "$l" "$s" "$(ratio "$l" "$s")"
    l=$(p99_during_streams)
    n=$(p99_during_streams "$NGINX_URL" "$TMP/nginx.lua")
    printf '%-44s %9.1fms %8.1fms %7sx\n' "narinfo p99 during 16 NAR streams, +${d} ms" "$l" "$n" "$(ratio "$l" "$n")"
    printf '%-44s %8d MB\n' "larder peak RSS, +${d} ms" "$(hwm)"
    rm -rf "$TMP/read-cache"
    larder_on "$proxy" "$TMP/read-cache"
    l=$(fetch_all "$URL" "$TMP/larder-urls")
    printf '%-44s %9.2fs %9.2fs %7sx\n' "  read cache filling, S3 +${d} ms" "$l" "$s" "$(ratio "$l" "$s")"
    l=$(fetch_all "$URL" "$TMP/larder-urls")
    printf '%-44s %9.2fs %9.2fs %7sx\n' "  read cache warm, S3 +${d} ms" "$l" "$s" "$(ratio "$l" "$s")"
    printf '%-44s %8d MB\n' "larder peak RSS with the read cache, +${d} ms" "$(hwm)"
done
assert_no_5xx "$TMP/larder/serve.log"
