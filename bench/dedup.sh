#!/usr/bin/env bash
# Deduplication across a rebuild, through the real server: `larder push` of
# the medium corpus variant 1, then variant 2 (make_corpus.sh medium 2, which
# differs like a small rebuild), to a fresh local `larder serve`. Prints the
# bytes variant 2 added as a share of its NAR bytes, the total stored against
# `nix copy --to file://?compression=zstd` of both variants, and FastCDC's
# throughput on one core.
#   bench/dedup.sh
#   CHUNKS=small bench/dedup.sh   with [chunks] 64K/256K/1M (the defaults until 2026-11)
source "$(dirname "$0")/lib.sh"
root2=$(bash tests/e2e/make_corpus.sh medium 2)
mapfile -t p1 < <(nix-store -qR "$root")
nar1=$(nix path-info -S --json "$root" | jq '.[0].closureSize')
nar2=$(nix path-info -S --json "$root2" | jq '.[0].closureSize')
bytes() { du -sb "$1" | cut -f1; }

{ printf 'log_requests = false\n'; chunks_config; } > "$TMP/larder.toml"
start_server "$TMP/s" --config "$TMP/larder.toml" > /dev/null
"$LARDER" push main "$root" --server "$URL" --token "$ADMIN_TOKEN" > /dev/null 2>&1
after1=$(bytes "$TMP/s/blobs")
"$LARDER" push main "$root2" --server "$URL" --token "$ADMIN_TOKEN" > /dev/null 2>&1
after2=$(bytes "$TMP/s/blobs")
stop_server

XDG_CACHE_HOME=$TMP/x1 nix copy --to "file://$TMP/files?compression=zstd" "$root" 2> /dev/null
file1=$(bytes "$TMP/files")
XDG_CACHE_HOME=$TMP/x2 nix copy --to "file://$TMP/files?compression=zstd" "$root2" 2> /dev/null
file12=$(bytes "$TMP/files")

added=$((after2 - after1))
printf 'variant 1: %d MB of NAR -> larder stores %d MB (nix copy file://: %d MB, %.2fx)\n' \
    $((nar1 / 1000000)) $((after1 / 1000000)) $((file1 / 1000000)) "$(echo "$after1 / $file1" | bc -l)"
printf 'variant 2: %d MB of NAR -> larder adds %.2f MB = %.2f %% of its NAR bytes\n' \
    $((nar2 / 1000000)) "$(echo "$added / 1000000" | bc -l)" "$(echo "100 * $added / $nar2" | bc -l)"
printf 'both variants: larder %d MB, nix copy file:// %d MB: %.2fx\n' $((after2 / 1000000)) $((file12 / 1000000)) \
    "$(echo "$after2 / $file12" | bc -l)"
B=build/release/bench/larder_bench_chunks
[ -x "$B" ] && "$B" speed "${p1[@]}"
