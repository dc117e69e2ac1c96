#!/usr/bin/env bash
# larder nar dump/restore/ls against the real Nix: byte-identical NARs, the
# same NarHash as `nix hash path`, and the same .ls as write-nar-listing=1.
source "$(dirname "$0")/lib.sh"

check_path() {  # PATH: dump equals nix-store --dump; hash equals nix hash path
    local p=$1 ours theirs
    ours=$("$LARDER" nar dump "$p" | sha256_of)
    theirs=$(nix-store --dump "$p" | sha256_of)
    [ "$ours" = "$theirs" ] || fail "nar dump of $p differs from nix-store --dump"
    [ "$ours" = "$(nix hash path --type sha256 --base16 "$p")" ] || fail "hash of $p differs from nix hash path"
}

roundtrip() {  # PATH: dump -> restore -> dump is identical
    local p=$1 out=$TMP/restored.$RANDOM
    "$LARDER" nar dump "$p" | "$LARDER" nar restore "$out"
    [ "$("$LARDER" nar dump "$out" | sha256_of)" = "$("$LARDER" nar dump "$p" | sha256_of)" ] \
        || fail "dump -> restore -> dump changed $p"
    chmod -R u+w "$out"; rm -rf "$out"
}

compare_listings() {  # CACHE-DIR: every .ls Nix wrote equals larder nar ls
    local cache=$1 n=0
    for ls in "$cache"/*.ls; do
        local store_path
        store_path=$(sed -n 's/^StorePath: //p' "${ls%.ls}.narinfo")
        "$LARDER" nar dump "$store_path" | "$LARDER" nar ls > "$TMP/ours.ls"
        cmp -s "$TMP/ours.ls" "$ls" || { diff <(head -c 2000 "$ls") <(head -c 2000 "$TMP/ours.ls") || true; fail ".ls of $store_path differs"; }
        n=$((n + 1))
    done
    echo "$n"
}

# 1. The small corpus: every path of the closure.
root=$(small_corpus)
mapfile -t closure < <(nix-store -qR "$root")
for p in "${closure[@]}"; do check_path "$p"; roundtrip "$p"; done
pass "dump and hash of ${#closure[@]} corpus paths match Nix; all round-trip"

nix copy --to "file://$TMP/cache?write-nar-listing=1&compression=none" "$root" 2>> "$TMP/nix.log"
n=$(compare_listings "$TMP/cache")
[ "$n" -eq "${#closure[@]}" ] || fail "expected ${#closure[@]} listings, compared $n"
pass "$n .ls listings are byte-identical to Nix's"

# 2. A tree of our own with every kind of entry.
t=$TMP/tree
mkdir -p "$t/bin" "$t/empty-dir" "$t/sub/dir"
printf '#!/bin/sh\necho hi\n' > "$t/bin/run"; chmod 755 "$t/bin/run"
: > "$t/empty-file"
: > "$t/empty-exec"; chmod 755 "$t/empty-exec"
printf 'ünïcödé\n' > "$t/ünïcödé-名前.txt"
printf 'x' > "$t/name with spaces"
printf 'q' > "$t/quote\"back\\slash"
ln -s bin/run "$t/link"
ln -s /nonexistent/dangling "$t/dangling"
ln -s "ünïcödé-名前.txt" "$t/unicode-link"
d=$t/deep; for i in $(seq 1 60); do d=$d/d$i; done; mkdir -p "$d"; echo bottom > "$d/f"
head -c 3000000 /dev/urandom > "$t/sub/dir/random.bin"
for f in a B c _ Z 0 . ; do [ "$f" = . ] || echo "$f" > "$t/sub/$f"; done
check_path "$t"; roundtrip "$t"
pass "own tree (executables, symlinks, empty files/dirs, unicode, 60 levels) matches Nix"

tree_path=$(nix-store --add "$t")
nix copy --to "file://$TMP/cache2?write-nar-listing=1" "$tree_path" 2>> "$TMP/nix.log"
compare_listings "$TMP/cache2" > /dev/null
pass ".ls of own tree matches Nix"

# 3. A sparse file of 3 GiB: same bytes as Nix reads, holes not read by us.
s=$TMP/sparse; mkdir "$s"
truncate -s 3G "$s/big"; printf 'middle' | dd of="$s/big" bs=1 seek=1500000000 conv=notrunc status=none
check_path "$s"
pass "3 GiB sparse file dumps identically"

# 4. Invalid NARs: a clear error and exit status 1, never a crash.
for f in "$LARDER_SOURCE"/tests/data/invalid/*.nar; do
    set +e; msg=$("$LARDER" nar ls < "$f" 2>&1 >/dev/null); rc=$?; set -e
    [ $rc -eq 1 ] || fail "$(basename "$f"): exit status $rc"
    grep -qF -- "$(cat "${f%.nar}.expected")" <<< "$msg" || fail "$(basename "$f"): message '$msg'"
done
pass "invalid NARs rejected by larder nar ls with their specific messages"
