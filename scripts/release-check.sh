#!/usr/bin/env bash
# Release check (not part of CI; needs root and Debian's archive): builds the
# .deb, installs it with apt into a fresh Debian 12 root made by debootstrap,
# runs the packaged `larder serve` there with the packaged example config,
# and from this machine pushes a store path to it with real Nix and
# substitutes it back with signatures required.
#   scripts/release-check.sh [ROOT-DIR]   (default: a temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh > /dev/null
command -v debootstrap > /dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap > /dev/null
root=${1:-$(mktemp -d /tmp/larder-release.XXXXXX)}
work=$(mktemp -d)
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    for m in proc dev; do umount "$root/$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
step() { echo "== $*"; }

step "build and package"
scripts/build.sh release > /dev/null
(cd build/release && rm -f larder_*.deb && cpack -G DEB > /dev/null)
deb=$(ls build/release/larder_*.deb)
dpkg-deb -f "$deb" Package Version Depends

step "a fresh Debian 12 root in $root"
[ -x "$root/bin/sh" ] || debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian > "$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
mount -t proc proc "$root/proc"; mount --bind /dev "$root/dev"
cp "$deb" "$root/tmp/larder.deb"
chroot "$root" apt-get install -y -q /tmp/larder.deb > "$work/apt.log" 2>&1 || { tail -20 "$work/apt.log"; exit 1; }
grep -E '^(Setting up|Unpacking) ' "$work/apt.log" | grep -c . | xargs printf '%s packages unpacked or set up by apt\n'
chroot "$root" larder --version
chroot "$root" ls -l /etc/larder/larder.toml /usr/lib/systemd/system/larder.service /usr/lib/systemd/system/larder-watch-store.service \
    /usr/share/man/man1/larder.1

step "the packaged larder serve, with the packaged config"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
chroot "$root" larder serve --check-config --config /etc/larder/larder.toml --data /var/lib/larder
chroot "$root" larder serve --config /etc/larder/larder.toml --data /var/lib/larder --listen "127.0.0.1:$port" \
    > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/readyz"
url=http://127.0.0.1:$port
token=$(cat "$root/var/lib/larder/admin-token")
key=$(curl -sf -H "Authorization: Bearer $token" "$url/api/v1/caches/main" | jq -r .public_key)
echo "cache main, key $key"

step "push with real Nix from this machine, then substitute it back"
export NIX_CONFIG=$'sandbox = false\nbuild-users-group =\nexperimental-features = nix-command\nsubstituters =\nrequire-sigs = true'
export XDG_CACHE_HOME=$work/xdg
printf 'machine 127.0.0.1 password %s\n' "$token" > "$work/netrc"
echo "release check $(date +%s%N)" > "$work/payload"
path=$(nix-store --add "$work/payload")
nix copy --option netrc-file "$work/netrc" --to "$url/main?compression=zstd" "$path"
echo "pushed $path"
nix-store --delete "$path" > /dev/null
rm -rf "$XDG_CACHE_HOME"
nix-store -r "$path" --option netrc-file "$work/netrc" --option substituters "$url/main" \
    --option trusted-public-keys "$key" --option require-sigs true
[ "$(cat "$path")" = "$(cat "$work/payload")" ] && echo "substituted $path with require-sigs, content intact"
grep -cE ' (GET|PUT|HEAD) ' "$work/serve.log" | xargs printf 'the packaged server logged %s requests, '
grep -cE ' 5[0-9][0-9] [0-9.]+ms$' "$work/serve.log" | xargs printf '%s of them 5xx\n' || true
echo "== release check passed"
