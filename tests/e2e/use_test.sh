#!/usr/bin/env bash
# A machine configured only by `larder login` + `larder use` substitutes from
# a private cache with a pull token; `use` is idempotent and `--remove`
# restores the original files.
source "$(dirname "$0")/lib.sh"

start_server "$TMP/data"
root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small use-$$)
mapfile -t closure < <(nix-store -qR "$root")
push=$("$LARDER" token create ci --cache main --push --json --server "$URL" --token "$ADMIN_TOKEN" | json_field secret)
printf 'machine 127.0.0.1 password %s\n' "$push" > "$TMP/push-netrc"
nix copy --option netrc-file "$TMP/push-netrc" --to "$URL/main?compression=zstd" "$root" 2>> "$TMP/nix.log" \
    || fail "nix copy with a push token in a netrc"
pass "nix copy to a private cache with a push token in a netrc"
pull=$("$LARDER" token create laptop --cache main --pull --json --server "$URL" --token "$ADMIN_TOKEN" | json_field secret)

# The "machine": its own HOME and Nix configuration directory.
export HOME=$TMP/home NIX_CONF_DIR=$TMP/nixconf XDG_CONFIG_HOME=$TMP/home/.config XDG_CACHE_HOME=$TMP/home/.cache
mkdir -p "$HOME" "$NIX_CONF_DIR"
printf '# the original configuration\nsubstituters =\nconnect-timeout = 5\n' > "$NIX_CONF_DIR/nix.conf"
cp "$NIX_CONF_DIR/nix.conf" "$TMP/original.conf"
export NIX_CONFIG=$'sandbox = false\nbuild-users-group =\nexperimental-features = nix-command\nrequire-sigs = true'
unset LARDER_SERVER LARDER_TOKEN

"$LARDER" login work "$URL" "$pull" > /dev/null
[ "$(stat -c %a "$XDG_CONFIG_HOME/larder/config.toml")" = 600 ] || fail "login file is not 0600"
"$LARDER" use main --dry-run > "$TMP/dry"
cmp -s "$NIX_CONF_DIR/nix.conf" "$TMP/original.conf" || fail "--dry-run changed nix.conf"
[ ! -e "$NIX_CONF_DIR/netrc" ] || fail "--dry-run wrote the netrc"
grep -q "extra-substituters = $URL/main" "$TMP/dry" || fail "--dry-run does not show the change"
grep -qF "$pull" "$TMP/dry" && fail "--dry-run prints the token"
"$LARDER" use main > /dev/null
sum1=$(cat "$NIX_CONF_DIR/nix.conf" "$NIX_CONF_DIR/netrc" | sha256_of)
"$LARDER" use main > /dev/null
sum2=$(cat "$NIX_CONF_DIR/nix.conf" "$NIX_CONF_DIR/netrc" | sha256_of)
[ "$sum1" = "$sum2" ] || fail "a second larder use changed the files"
[ "$(stat -c %a "$NIX_CONF_DIR/netrc")" = 600 ] || fail "netrc is not 0600"
grep -q '^extra-trusted-public-keys = ' "$NIX_CONF_DIR/nix.conf" || fail "no extra-trusted-public-keys (Nix 2.8 has extra- settings)"
pass "larder use: --dry-run changes nothing and hides the token; twice leaves identical files; netrc 0600"

nix-store --delete "${closure[@]}" > /dev/null 2>> "$TMP/nix.log" || { tail -3 "$TMP/nix.log"; fail "could not delete the closure"; }
nix-store -r "$root" > /dev/null 2>> "$TMP/nix.log" || fail "substitution on the configured machine failed"
for p in "${closure[@]}"; do [ -e "$p" ] || fail "$p was not substituted"; done
pass "substituted ${#closure[@]} paths with a pull token, configured only by larder login + larder use"

"$LARDER" use main --nixos | grep -q "nix.settings.substituters = \[ \"$URL/main\" \]" || fail "--nixos snippet"
"$LARDER" use main --remove > /dev/null
cmp -s "$NIX_CONF_DIR/nix.conf" "$TMP/original.conf" || fail "--remove did not restore nix.conf"
[ ! -e "$NIX_CONF_DIR/netrc" ] || fail "--remove left the netrc it created"
pass "--remove restores the original configuration; --nixos prints a module"
