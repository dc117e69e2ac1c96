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

# M9: a server that describes its cache with a newline in the URL (to smuggle
# a nix.conf line) or a bogus key gets nothing written.
stub_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$stub_port" <<'PY' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        bad = {"/api/v1/caches/evil": {"url": "http://127.0.0.1/x\npost-build-hook = /tmp/p", "public_key": "k:AAAA"},
               "/api/v1/caches/badkey": {"url": "http://127.0.0.1/x", "public_key": "${builtins.abort 1}"}}
        body = json.dumps(bad.get(self.path, {})).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
stub_pid=$!
sleep 0.5
cp "$NIX_CONF_DIR/nix.conf" "$TMP/before-evil.conf"
for c in evil badkey; do
    if "$LARDER" use "$c" --server "http://127.0.0.1:$stub_port" --token x > "$TMP/evil.out" 2>&1; then
        kill "$stub_pid"; fail "larder use accepted the '$c' description"
    fi
    cmp -s "$NIX_CONF_DIR/nix.conf" "$TMP/before-evil.conf" || { kill "$stub_pid"; fail "nix.conf changed for '$c'"; }
done
kill "$stub_pid"
grep -q "nothing was written" "$TMP/evil.out" || fail "message: $(cat "$TMP/evil.out")"
pass "larder use refuses a URL with a newline and an unparsable key; nix.conf untouched"

# L14: a nix.conf that is a symlink (NixOS) is not replaced.
mv "$NIX_CONF_DIR/nix.conf" "$TMP/real-nix.conf"
ln -s "$TMP/real-nix.conf" "$NIX_CONF_DIR/nix.conf"
if "$LARDER" use main > "$TMP/link.out" 2>&1; then fail "larder use replaced a symlinked nix.conf"; fi
[ -L "$NIX_CONF_DIR/nix.conf" ] || fail "the symlink was replaced"
grep -q -- "--nixos" "$TMP/link.out" || fail "message: $(cat "$TMP/link.out")"
pass "a symlinked nix.conf is left alone, pointing at --nixos"

# L11: the token can come on standard input, out of ps and shell history.
printf '%s\n' "$pull" | "$LARDER" login from-stdin "$URL" > /dev/null
grep -qF "$pull" "$HOME/.config/larder/config.toml" || fail "login from stdin did not save the token"
[ "$(stat -c %a "$HOME/.config/larder/config.toml")" = 600 ] || fail "login file mode"
pass "larder login reads the token from stdin"
