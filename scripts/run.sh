#!/usr/bin/env bash
# Installs dependencies, builds (release) and runs `larder serve` with the
# embedded defaults (127.0.0.1:8080, ./larder-data, SQLite + local disk).
# Extra arguments go to `larder serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh release
exec build/release/larder serve "$@"
