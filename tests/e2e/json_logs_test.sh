#!/usr/bin/env bash
# log_format = "json": every line of the server's log is one JSON object;
# request events carry the request id a client sees in X-Request-Id; hostile
# bytes in a path stay inside their string; no token reaches the log.
source "$(dirname "$0")/lib.sh"

printf 'log_format = "json"\n' > "$TMP/larder.toml"
start_server "$TMP/data" --config "$TMP/larder.toml"
curl -s -o /dev/null -D "$TMP/headers" -H "Authorization: Bearer $ADMIN_TOKEN" \
    "$URL/main/0000000000000000000000000000000a.narinfo"
rid=$(awk 'tolower($1) == "x-request-id:" {print $2}' "$TMP/headers" | tr -d '\r')
[ -n "$rid" ] || fail "no X-Request-Id on a 404: $(cat "$TMP/headers")"
# A quote, a backslash and a byte that is not UTF-8 in the target.
python3 - "$HOST_PORT" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.sendall(b'GET /main/a"b\\c\xff.narinfo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
while s.recv(65536): pass
PY
curl -sf "$URL/healthz" > /dev/null
stop_server  # flushes the log
python3 - "$TMP/data/serve.log" "$rid" "$ADMIN_TOKEN" <<'PY'
import json, sys
log, rid, token = sys.argv[1], sys.argv[2], sys.argv[3]
raw = open(log, "rb").read()
if token.encode() in raw: sys.exit("the admin token is in the log")
events = []
for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
    try: e = json.loads(line)
    except ValueError as x: sys.exit(f"line {n} is not JSON ({x}): {line[:200]}")
    if not isinstance(e, dict) or "time" not in e or "level" not in e: sys.exit(f"line {n} lacks time/level: {line[:200]}")
    events.append(e)
reqs = [e for e in events if e.get("event") == "request"]
if not any(e["request_id"] == rid and e["status"] == 404 and e["path"].endswith(".narinfo") for e in reqs):
    sys.exit(f"no request event with id {rid} and status 404")
if not any(e["path"].startswith('/main/a"b\\c') for e in reqs):
    sys.exit("the hostile path is not logged as it came: " + str([e["path"] for e in reqs]))
if not any("listening on" in e.get("msg", "") for e in events): sys.exit("no 'listening on' line")
print(f"{len(events)} lines, {len(reqs)} request events")
PY
[ $? = 0 ] || fail "JSON log check"
pass "log_format = json: every line parses, request ids match X-Request-Id ($rid), hostile bytes stay quoted, no token"
