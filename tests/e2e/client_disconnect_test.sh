#!/usr/bin/env bash
# Clients that hang up in the middle of a download (wrk at the end of a run,
# a cancelled nix build, a dropped link) must cost the server nothing but
# that response. sendfile() to a socket the peer closed raises SIGPIPE, which
# killed the whole server until the server ignored it.
source "$(dirname "$0")/lib.sh"

start_server "$TMP/data"
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
# A NAR far larger than the socket buffers, so the server is mid-send.
head -c $((48 << 20)) /dev/urandom > "$TMP/big-$$"
big=$(nix-store --add "$TMP/big-$$")
nix copy --option netrc-file "$TMP/netrc" --to "$URL/main?compression=zstd" "$big" 2> "$TMP/copy.err" \
    || fail "nix copy: $(tail -3 "$TMP/copy.err")"
url=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$(basename "$big" | cut -c1-32).narinfo" \
      | awk '$1 == "URL:" {print $2}')
[ -n "$url" ] || fail "no narinfo for $big"
check() {  # WHAT: the server is alive, answers, and serves the NAR whole
    kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died $1"
    [ "$(curl -sf "$URL/healthz")" = ok ] || fail "/healthz $1"
    local got; got=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$url" | wc -c)
    [ "$got" -gt $((40 << 20)) ] || fail "the NAR is $got bytes $1"
}
hang_up() {  # clients read part of the NAR, at full speed or stalled, and close
    python3 - "$HOST_PORT" "/main/$url" "$ADMIN_TOKEN" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
for i in range(16):
    try:
        s = socket.create_connection((host, int(port)))
        s.sendall(f"GET {sys.argv[2]} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sys.argv[3]}\r\n\r\n".encode())
        got, want = 0, (i + 1) << 20
        while got < want:
            got += len(s.recv(1 << 20))
        if i % 2: time.sleep(0.2)  # the server waits for room in the socket
        s.close()                  # unread bytes: the kernel answers with a reset
    except OSError as e:
        sys.exit(f"client {i}: {e}")
PY
    sleep 0.5
}
hang_up || true; check "after 16 clients hung up mid-download (stored whole)"
wait_ingested
url=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$(basename "$big" | cut -c1-32).narinfo" \
      | awk '$1 == "URL:" {print $2}')
hang_up || true; check "after 16 clients hung up mid-download (chunks)"
assert_no_5xx "$TMP/data/serve.log"
nix-store --delete "$big" > /dev/null 2>&1 || true
pass "32 clients hung up mid-download; the server lives and serves the NAR whole"
