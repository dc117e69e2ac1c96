#!/usr/bin/env bash
# Native HTTPS: larder serve with a certificate; curl and Nix talk to it.
source "$(dirname "$0")/lib.sh"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2> /dev/null
cat > "$TMP/config.toml" <<TOML
[tls]
certificate = "$TMP/cert.pem"
key = "$TMP/key.pem"
TOML
start_server "$TMP/data" --config "$TMP/config.toml"
case "$URL" in https://*) ;; *) fail "server did not start with TLS: $URL" ;; esac
got=$(curl -s --cacert "$TMP/cert.pem" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/nix-cache-info")
[ "$got" = 200 ] || fail "https GET: $got"
if curl -sf -o /dev/null "$URL/main/nix-cache-info" 2>/dev/null; then fail "an untrusted certificate was accepted"; fi
pass "larder serve answers over HTTPS with the configured certificate"

printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
export NIX_CONFIG="$NIX_CONFIG"$'\n'"netrc-file = $TMP/netrc" NIX_SSL_CERT_FILE=$TMP/cert.pem
p=$(nix-store --add "$LARDER_SOURCE/README.md")
nix copy --to "$URL/main?compression=none" "$p" 2>> "$TMP/nix.log" || fail "nix copy over https"
KEY=$(curl -sf --cacert "$TMP/cert.pem" -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/caches/main" | json_field public_key)
export XDG_CACHE_HOME=$TMP/xdg2
nix store verify --store "$URL/main" --trusted-public-keys "$KEY" --sigs-needed 1 "$p" 2>> "$TMP/nix.log" \
    || fail "nix store verify over https"
pass "nix copy (compression=none) and nix store verify over HTTPS"

kill -TERM "$SERVER_PID"
rc=0; wait "$SERVER_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "larder serve exited with $rc on SIGTERM"
grep -q 'finishing requests in flight' "$TMP/data/serve.log" || fail "no graceful shutdown in the log"
grep -qF "$ADMIN_TOKEN" "$TMP/data/serve.log" && fail "the admin token appears in the log"
SERVER_PID=
pass "SIGTERM: graceful shutdown, exit status 0; the token never appears in the log"
