#!/usr/bin/env bash
# NAR dump + SHA-256 of every path of the medium corpus: Larder (one process,
# in-process hashing) against `nix-store --dump | sha256sum` per path, in the
# same run, and against `nix hash path` hashing all paths in one process
# (no per-process start-up). Prints the best of N runs of each and the ratio.
#   bench/nar_hash.sh [runs]     (needs a release build: scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
export NIX_CONFIG=$'sandbox = false\nbuild-users-group =\nexperimental-features = nix-command\nsubstituters ='
bench_bin=build/release/bench/larder_bench_nar_hash
[ -x "$bench_bin" ] || scripts/build.sh release > /dev/null
root=$(bash tests/e2e/make_corpus.sh medium)
mapfile -t paths < <(nix-store -qR "$root")
bytes=$(nix path-info -S "$root" | awk '{print $2}')

best() {  # best wall time in seconds of running "$@" $runs times
    local best=
    for _ in $(seq "$runs"); do
        local t0 t1 t
        t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N)
        t=$(echo "$t1 - $t0" | bc -l)
        if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
    done
    echo "$best"
}
nix_dump_all() { for p in "${paths[@]}"; do nix-store --dump "$p" | sha256sum; done; }

# Both sides must agree on every hash before timing means anything.
diff <("$bench_bin" "${paths[@]}" 2>/dev/null | awk '{print $1}' | sed 's/^sha256://') \
     <(for p in "${paths[@]}"; do nix hash path --type sha256 --base32 "$p"; done) > /dev/null \
    || { echo "hash mismatch between larder and nix" >&2; exit 1; }

nix_hash_all() { nix hash path --type sha256 "${paths[@]}"; }

nix_dump_all > /dev/null   # warm the page cache
larder=$(best "$bench_bin" "${paths[@]}")
nix=$(best nix_dump_all)
nix_one=$(best nix_hash_all)
printf 'medium corpus: %d paths, %d MB of NAR\n' "${#paths[@]}" $((bytes / 1000000))
printf 'larder nar dump + sha256:        %.3f s (%.0f MB/s)\n' "$larder" "$(echo "$bytes / $larder / 1000000" | bc -l)"
printf 'nix-store --dump | sha256sum:    %.3f s (%.0f MB/s)\n' "$nix" "$(echo "$bytes / $nix / 1000000" | bc -l)"
printf 'nix hash path (one process):     %.3f s (%.0f MB/s)\n' "$nix_one" "$(echo "$bytes / $nix_one / 1000000" | bc -l)"
printf 'ratio vs nix-store --dump | sha256sum: %.2fx\n' "$(echo "$nix / $larder" | bc -l)"
printf 'ratio vs nix hash path:                %.2fx\n' "$(echo "$nix_one / $larder" | bc -l)"
