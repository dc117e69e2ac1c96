#!/usr/bin/env bash
# Runs every libFuzzer target for LARDER_FUZZ_RUNS executions (default 10
# million) from the corpus kept in tests/fuzz/corpus/<target>, two targets at
# a time, and prints executions, time and crashes per target. New inputs
# that add coverage are merged back into the kept corpus (--merge). Not part
# of CI: it takes about an hour on 2 cores (frame_splitter runs ~3,000/s). scripts/test.sh runs a short
# smoke of the same targets.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(nar_parser narinfo_parser frame_splitter router config)
runs=${LARDER_FUZZ_RUNS:-10000000}
merge=false; [ "${1:-}" = --merge ] && merge=true
scripts/build.sh fuzz $(printf -- '--target fuzz_%s ' "${targets[@]}") > /dev/null
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

fuzz_one() {
    local t=$1 work="$out/$1"
    mkdir -p "$work/corpus" "$work/artifacts"
    cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
    local start=$SECONDS
    build/fuzz/tests/fuzz_"$t" -runs="$runs" -print_final_stats=1 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$work/artifacts/" "$work/corpus" > "$work/log" 2>&1 || true
    local execs crashes
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
    crashes=$(find "$work/artifacts" -type f | wc -l)
    printf '%-15s %12s executions %6d s %3d crashes  %s\n' "$t" "${execs:-?}" $((SECONDS - start)) "$crashes" \
        "$(grep -m1 -E '^==[0-9]+==ERROR|deadly signal' "$work/log" || true)"
    if [ "$crashes" -gt 0 ]; then mkdir -p "bench/fuzz-crashes/$t"; cp "$work/artifacts"/* "bench/fuzz-crashes/$t/"; fi
    if $merge; then
        build/fuzz/tests/fuzz_"$t" -merge=1 -max_len=65536 tests/fuzz/corpus/"$t" "$work/corpus" > /dev/null 2>&1 || true
    fi
}

echo "libFuzzer, $runs executions per target (clang $(clang++ --version | sed -n 's/.*version \([0-9.]*\).*/\1/p;q'), ASan+UBSan)"
# Two lanes, one per core: the slowest target (zstd contexts per input) alone.
fuzz_one frame_splitter &
for t in "${targets[@]}"; do [ "$t" = frame_splitter ] || fuzz_one "$t"; done
wait
