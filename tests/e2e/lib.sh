# Shared setup for the end-to-end tests: the real Nix client in single-user
# mode, a scratch directory removed on exit, and small assertion helpers.
set -euo pipefail

: "${LARDER:?path to the larder binary}"
: "${LARDER_SOURCE:?path to the source tree}"

export NIX_CONFIG=$'sandbox = false\nbuild-users-group =\nexperimental-features = nix-command\nsubstituters =\nrequire-sigs = true'
TMP=$(mktemp -d /tmp/larder-e2e.XXXXXX)
export XDG_CACHE_HOME=$TMP/xdg-cache   # Nix's narinfo cache, fresh per test
cleanup() { chmod -R u+w "$TMP" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
sha256_of() { openssl dgst -sha256 -r | cut -d' ' -f1; }

# Builds the small test corpus (25 store paths) and prints its root path.
small_corpus() { bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small; }
