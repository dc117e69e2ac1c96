#!/usr/bin/env bash
# The packaged pieces: both systemd units pass `systemd-analyze verify` and
# keep a low exposure (`systemd-analyze security`), and the example config
# passes `larder serve --check-config`. (scripts/release-check.sh builds the
# .deb and runs it in a fresh Debian root; that is not part of CI.)
source "$(dirname "$0")/lib.sh"

for u in larder larder-watch-store; do
    sed "s|/usr/bin/larder|$LARDER|" "$LARDER_SOURCE/packaging/$u.service" > "$TMP/$u.service"
done
systemd-analyze verify "$TMP/larder.service" "$TMP/larder-watch-store.service" > "$TMP/verify.out" 2>&1 \
    || fail "systemd-analyze verify: $(cat "$TMP/verify.out")"
[ ! -s "$TMP/verify.out" ] || fail "systemd-analyze verify warns: $(cat "$TMP/verify.out")"
exposure() {  # UNIT -> the overall exposure level (0 safest, 10 unsafe)
    systemd-analyze security --offline=yes "$TMP/$1.service" 2>/dev/null \
        | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p'
}
server=$(exposure larder) watcher=$(exposure larder-watch-store)
[ -n "$server" ] && [ "$(echo "$server <= 2.0" | bc)" = 1 ] || fail "larder.service exposure $server (over 2.0)"
[ -n "$watcher" ] && [ "$(echo "$watcher <= 5.0" | bc)" = 1 ] || fail "larder-watch-store.service exposure $watcher"
pass "systemd-analyze verify passes both units; exposure: larder.service $server, larder-watch-store.service $watcher"

"$LARDER" serve --check-config --config "$LARDER_SOURCE/packaging/larder.toml" --data "$TMP/data" > "$TMP/check.out" 2>&1 \
    || fail "the example config: $(cat "$TMP/check.out")"
grep -q '^config OK' "$TMP/check.out" || fail "the example config: $(cat "$TMP/check.out")"
pass "the example config (packaging/larder.toml) passes larder serve --check-config"

# The man page renders and names every command `larder --help` lists, and
# every subcommand has a description in --help.
MANWIDTH=100 man -l "$LARDER_SOURCE/docs/larder.1" > "$TMP/man.txt" 2> "$TMP/man.err" || fail "man -l: $(cat "$TMP/man.err")"
[ ! -s "$TMP/man.err" ] || fail "the man page has warnings: $(cat "$TMP/man.err")"
mapfile -t commands < <("$LARDER" --help | awk '/^Subcommands:/ {on = 1; next} on && NF {print $1}')
[ "${#commands[@]}" -ge 10 ] || fail "found only ${#commands[@]} commands in larder --help"
for c in "${commands[@]}"; do
    grep -qw -- "$c" "$TMP/man.txt" || fail "larder(1) does not mention '$c'"
    "$LARDER" "$c" --help > "$TMP/help.txt" || fail "larder $c --help"
    if grep -q '^Subcommands:' "$TMP/help.txt"; then
        awk '/^Subcommands:/ {on = 1; next} on && NF == 1 {print "undescribed: " $1}' "$TMP/help.txt" > "$TMP/bare"
        [ ! -s "$TMP/bare" ] || fail "larder $c --help: $(cat "$TMP/bare")"
    fi
done
pass "larder(1) renders without warnings and names all ${#commands[@]} commands; every subcommand is described"
