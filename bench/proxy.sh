#!/usr/bin/env bash
# Pull-through: substituting the medium closure through Larder, whose cache
# has nginx (a `nix copy --to file://` cache signed with its own key) as its
# upstream, against substituting it from nginx directly, in the same run:
#  - cold: Larder has nothing yet and fetches every NAR from nginx while
#    streaming it to Nix (and storing it whole, cut into chunks afterwards);
#  - warm: Larder has it all (nginx still up, not asked).
# Goals (issue 14): warm <= 1.0x, cold <= 1.3x.
#   bench/proxy.sh [UPSTREAM-COMPRESSION]   (xz, as cache.nixos.org; or zstd)
compression=${1:-xz}
source "$(dirname "$0")/lib.sh"
proxied=$(bash tests/e2e/make_corpus.sh medium proxy-bench)
mapfile -t paths < <(nix-store -qR "$proxied")
seconds() { local s; s=$(date +%s.%N); "$@" > /dev/null 2>> "$TMP/nix.log" || fail "$* failed: $(tail -3 "$TMP/nix.log")"; echo "$(date +%s.%N) - $s" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }

nix-store --generate-binary-cache-key bench-up "$TMP/up.sk" "$TMP/up.pk"
UPKEY=$(cat "$TMP/up.pk")
echo "making the upstream ($compression) ..." >&2
nix copy --to "file://$TMP/up?compression=$compression&secret-key=$TMP/up.sk" "$proxied" 2>> "$TMP/nix.log"
start_nginx "$TMP/up"
cat "$TMP"/up/nar/* > /dev/null  # both read the upstream's files from the page cache

start_server "$TMP/data"
"$LARDER" cache configure main --server "$URL" --token "$ADMIN_TOKEN" --upstream "$NGINX_URL=$UPKEY" > /dev/null
KEY=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/caches/main" | jq -r .public_key)
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"

substitute() {  # LABEL SUBSTITUTER KEYS: into a fresh store in memory, by a fresh client
    # (no narinfo cache). In memory: written to the disk, the store made
    # direct runs of the same closure vary from 10 s to 34 s in one bench.
    local store=/dev/shm/larder-bench-store-$1-$RANDOM
    export XDG_CACHE_HOME=$TMP/xdg-$1-$RANDOM
    seconds nix copy --from "$2" --to "local?root=$store" "$proxied" --option trusted-public-keys "$3" \
        --option require-sigs true --option netrc-file "$TMP/netrc"
    rm -rf "$store"
}
avg() { echo "($1 + $2) / 2" | bc -l; }
# Each Larder run is compared with direct runs on both sides of it, so a
# drift of the machine cancels out.
d1=$(substitute direct "$NGINX_URL" "$UPKEY")
before=$(grep -c '"GET /nar/' "$NGINX_LOG")
cold=$(substitute cold "$URL/main" "$UPKEY")
fetched=$(( $(grep -c '"GET /nar/' "$NGINX_LOG") - before ))
# Larder stores each fetched NAR whole and cuts it into chunks once fetches
# pause (deferred ingest, idle priority): waited for here, so that it slows
# no direct run and the warm run reads chunks.
ingested() { curl -sf "$URL/metrics" | awk '$1 == "larder_ingest_nars_total" {print $2}'; }
t0=$(date +%s.%N)
for _ in $(seq 1200); do [ "$(ingested)" -ge "${#paths[@]}" ] && break; sleep 0.1; done
[ "$(ingested)" -ge "${#paths[@]}" ] || fail "deferred ingest cut $(ingested) of ${#paths[@]} NARs in 120 s"
ingest=$(echo "$(date +%s.%N) - $t0" | bc -l)
d2=$(substitute direct "$NGINX_URL" "$UPKEY")
warm=$(substitute warm "$URL/main" "$KEY")
d3=$(substitute direct "$NGINX_URL" "$UPKEY")
[ "$(grep -c '"GET /nar/' "$NGINX_LOG")" = "$(( before + fetched + 2 * ${#paths[@]} ))" ] \
    || fail "the warm run fetched from the upstream"
direct_cold=$(avg "$d1" "$d2") direct_warm=$(avg "$d2" "$d3")
printf '%-58s %9s %9s %8s\n' "substitute ${#paths[@]} paths ($(nproc) cores, upstream $compression)" larder nginx ratio
printf '%-58s %8.2fs %8.2fs %7sx\n' "cold: through larder, fetching from nginx (goal <= 1.3x)" "$cold" "$direct_cold" "$(ratio "$cold" "$direct_cold")"
printf '%-58s %8.2fs %8.2fs %7sx\n' "warm: from larder's chunks (goal <= 1.0x)" "$warm" "$direct_warm" "$(ratio "$warm" "$direct_warm")"
echo "direct runs: $d1 $d2 $d3 s; after the cold run, cutting every NAR into chunks took $ingest s more" >&2
echo "nginx served larder $fetched NARs for ${#paths[@]} paths (cold run); none in the warm runs" >&2
