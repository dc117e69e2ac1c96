#!/usr/bin/env bash
# Pull-through on two replicas (one PostgreSQL, one S3 bucket): 8 clients,
# 4 on each replica, fetch one 64 MB upstream NAR at once from an upstream
# sending 8 MB/s; nginx serves it once, the replica holding the download's
# lease streams it, the other streams it too as it arrives (through pieces in
# the bucket), not once it is stored; every client gets the NAR its signed
# narinfo describes.
source "$(dirname "$0")/lib.sh"

start_shared_peers proxy

nix-store --generate-binary-cache-key up1 "$TMP/up.sk" "$TMP/up.pk"
mkdir -p "$TMP/big" "$TMP/up"
head -c $((32 << 20)) /dev/urandom > "$TMP/big/random"
{ yes "larder replicas $$" || true; } | head -c $((32 << 20)) > "$TMP/big/text"
big=$(nix-store --add "$TMP/big")
nix copy --to "file://$TMP/up?compression=zstd&secret-key=$TMP/up.sk" "$big" 2>> "$TMP/nix.log" || fail "nix copy"
nginx_start "$TMP/up" "limit_rate 8m;"

start_server "$TMP/a" --config "$TMP/shared.toml"
URL_A=$URL SERVER_A=$SERVER_PID
PORT= start_server "$TMP/b" --config "$TMP/shared.toml"
URL_B=$URL SERVER2_PID=$SERVER_PID SERVER_PID=$SERVER_A
"$LARDER" cache configure main --server "$URL_A" --token "$ADMIN_TOKEN" --upstream "$NGINX_URL=$(cat "$TMP/up.pk")" \
    > /dev/null || fail "configure"
sleep 6  # replica B's memo of the cache's settings (5 s)
h=$(basename "$big" | cut -c1-32)
for u in "$URL_A" "$URL_B"; do
    curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$u/main/$h.narinfo" > "$TMP/narinfo" || fail "narinfo from $u"
done
served=$(sed -n 's/^URL: //p' "$TMP/narinfo")
[[ "$served" == nar/upstream-* ]] || fail "served URL $served"
upfile=$(sed -n 's/^URL: //p' "$TMP/up/$h.narinfo")

clients=()
start=$(date +%s%N)
for i in $(seq 8); do
    u=$URL_A; [ $((i % 2)) = 0 ] && u=$URL_B
    curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" -o "$TMP/nar.$i" -w '%{time_total}\n' \
        "$u/main/$served" > "$TMP/time.$i" &
    clients+=($!)
done
# When each client's first NAR bytes arrived (its file is no longer empty).
declare -A first_byte=()
while [ ${#first_byte[@]} -lt 8 ] && kill -0 "${clients[@]}" 2>/dev/null; do
    for i in $(seq 8); do
        [ -z "${first_byte[$i]:-}" ] && [ -s "$TMP/nar.$i" ] && first_byte[$i]=$(( ($(date +%s%N) - start) / 1000000 ))
    done
    sleep 0.05
done
for pid in "${clients[@]}"; do wait "$pid" || fail "a client's download failed"; done
downloads=$(grep -c "GET /$upfile " "$NGINX_LOG" || true)
[ "$downloads" = 1 ] || fail "8 clients on 2 replicas caused $downloads upstream downloads"
want=$(sed -n 's/^NarHash: //p' "$TMP/up/$h.narinfo")
for i in $(seq 8); do
    zstd -dc "$TMP/nar.$i" > "$TMP/check.nar" || fail "client $i: not a zstd stream"
    got=$(nix-hash --type sha256 --flat --base32 "$TMP/check.nar")
    [ "sha256:$got" = "$want" ] || fail "client $i's NAR hashes to $got, not $want"
done
# Each replica's clients got their first bytes while the download went on.
[ ${#first_byte[@]} = 8 ] || fail "only ${#first_byte[@]} clients got bytes before the others ended"
first=$(printf '%s\n' "${first_byte[@]}" | sort -n | tail -1)
total=$(cat "$TMP"/time.* | awk '{ if ($1 > m) m = $1 } END { print m }')
awk -v t="$total" 'BEGIN { exit !(t >= 3) }' || fail "the download took only ${total}s: the test shows nothing"
[ "$first" -lt 2000 ] || fail "slowest first NAR byte after ${first} ms of a ${total}s download"
pass "8 clients on 2 replicas, one 64 MB upstream NAR at 8 MB/s: 1 upstream download, all 8 NARs match the signed NarHash; slowest client's first NAR byte after ${first} ms, last after ${total}s"
