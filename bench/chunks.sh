#!/usr/bin/env bash
# FastCDC on the medium corpus: chunking throughput on one core, and for a few
# chunk-size settings, the bytes a rebuild (variant 2) adds after variant 1 is
# stored, and the total stored against `nix copy --to file://?compression=zstd`
# of the same closures, all measured in this run.
#   bench/chunks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export NIX_CONFIG=$'sandbox = false\nbuild-users-group =\nexperimental-features = nix-command\nsubstituters ='
B=build/release/bench/larder_bench_chunks
[ -x "$B" ] || scripts/build.sh release > /dev/null
r1=$(bash tests/e2e/make_corpus.sh medium)
r2=$(bash tests/e2e/make_corpus.sh medium 2)
mapfile -t p1 < <(nix-store -qR "$r1")
mapfile -t p2 < <(nix-store -qR "$r2")
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

"$B" speed "${p1[@]}"
XDG_CACHE_HOME=$TMP/x1 nix copy --to "file://$TMP/files?compression=zstd" "$r1" 2> /dev/null
v1=$(du -sb "$TMP/files" | cut -f1)
XDG_CACHE_HOME=$TMP/x2 nix copy --to "file://$TMP/files?compression=zstd" "$r2" 2> /dev/null
both=$(du -sb "$TMP/files" | cut -f1)
echo "nix copy --to file://?compression=zstd: variant 1 $((v1 / 1000000)) MB, variants 1+2 $((both / 1000000)) MB"
for cfg in "16384 65536 262144 65536" "65536 262144 1048576 262144" "131072 524288 2097152 524288"; do
    "$B" dedup $cfg 3 -- "${p1[@]}" -- "${p2[@]}" > "$TMP/out"
    grep -v '^stored_bytes' "$TMP/out"
    read -r _ s1 s12 < <(grep '^stored_bytes' "$TMP/out")
    printf '    stored vs nix copy file://: variant 1 %.2fx, variants 1+2 %.2fx\n' \
        "$(echo "$s1 / $v1" | bc -l)" "$(echo "$s12 / $both" | bc -l)"
done
