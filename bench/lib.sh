# Shared setup of the benchmarks that run larder against Nix: the release
# build, the e2e helpers (scratch dir, start_server), and the medium corpus.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LARDER=$PWD/build/release/larder LARDER_SOURCE=$PWD
[ -x "$LARDER" ] || scripts/build.sh release > /dev/null
source tests/e2e/lib.sh
export NIX_CONFIG="$NIX_CONFIG"$'\n'"require-sigs = false"
root=$(bash tests/e2e/make_corpus.sh medium)

# nginx serving ROOT, with request logs on (like larder's): sets NGINX_URL.
# EXTRA: more directives for its server block (e.g. WebDAV PUT).
start_nginx() {  # ROOT [EXTRA]
    nginx_start "$@"
}

# CHUNKS=small: a [chunks] table with the sizes that were the default until
# 2026-11 (64K/256K/1M, one chunk below 256K), for comparing with today's.
chunks_config() {
    [ "${CHUNKS:-}" = small ] || return 0
    printf '[chunks]\nmin_size = 65536\navg_size = 262144\nmax_size = 1048576\nsingle_below = 262144\n'
}
