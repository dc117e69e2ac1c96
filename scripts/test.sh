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

echo "== fuzz smoke (clang libFuzzer)"
scripts/build.sh fuzz --target fuzz_nar_parser fuzz_narinfo_parser
seconds=${LARDER_FUZZ_SECONDS:-20}
corpus=$(mktemp -d); trap 'rm -rf "$corpus"' EXIT
mkdir -p "$corpus/nar" "$corpus/narinfo"
cp tests/data/invalid/*.nar "$corpus/nar/"; cp tests/data/invalid/*.narinfo "$corpus/narinfo/"
build/fuzz/tests/fuzz_nar_parser -max_total_time="$seconds" -rss_limit_mb=1024 "$corpus/nar" 2>&1 | tail -1
build/fuzz/tests/fuzz_narinfo_parser -max_total_time="$seconds" -rss_limit_mb=1024 "$corpus/narinfo" 2>&1 | tail -1
echo "== all tests passed"
