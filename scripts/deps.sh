#!/usr/bin/env bash
# Installs what building and testing Larder needs, from Debian 12's archive.
# Skips apt-get when everything is already there.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config clang
  libssl-dev libzstd-dev liblzma-dev libbz2-dev libboost1.81-dev libcurl4-openssl-dev
  libsqlite3-dev libpq-dev nlohmann-json3-dev libtomlplusplus-dev libcli11-dev
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  nix-bin openssl ca-certificates bc jq curl sqlite3 zstd xz-utils iproute2 python3
  radosgw ceph-mon ceph-osd ceph-common postgresql
  systemd dpkg-dev chromium chromium-driver python3-selenium nginx-light
)
# --bench adds the baselines the benchmarks compare against.
[ "${1:-}" = --bench ] && packages+=(wrk)
[ "${1:-}" = --print ] && { printf '%s\n' "${packages[@]}"; exit 0; }
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
