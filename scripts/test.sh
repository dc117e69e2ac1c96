#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: unit and end-to-end
# tests (against the real Nix client) in the release build and again under
# AddressSanitizer + UBSan, then a short libFuzzer run of each parser.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

echo "== release build and tests"
scripts/build.sh release
ctest --preset release -j "$jobs"

echo "== asan+ubsan build and tests"
scripts/build.sh asan
ASAN_OPTIONS=detect_leaks=1 ctest --preset asan -j "$jobs"

echo "== fuzz smoke (clang libFuzzer; bench/fuzz.sh runs 10 million executions each)"
targets=(nar_parser narinfo_parser frame_splitter router config)
scripts/build.sh fuzz $(printf -- '--target fuzz_%s ' "${targets[@]}")
seconds=${LARDER_FUZZ_SECONDS:-15}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    cp tests/fuzz/corpus/"$t"/* "$work/$t/"   # the kept corpus stays as it is
    build/fuzz/tests/fuzz_"$t" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$work/" "$work/$t" 2>&1 | tail -1
done
echo "== all tests passed"
