#!/usr/bin/env python3
"""Hostile requests of the security review's kinds against one server.

Prints one line per kind with the statuses seen; exits non-zero if a kind
was not refused the way it must be. Usage: hostile.py HOST PORT ADMIN_TOKEN
"""
import socket
import sys
import time

HOST, PORT, TOKEN = sys.argv[1], int(sys.argv[2]), sys.argv[3]
failures = []


def exchange(raw, read_timeout=10):
    """Sends raw bytes, returns the status of the answer (0: closed with none)."""
    s = socket.create_connection((HOST, PORT), timeout=read_timeout)
    try:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before taking it all
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1 ") else 0
    except (ConnectionResetError, socket.timeout):
        return 0
    finally:
        s.close()


def expect(kind, statuses, allowed):
    bad = [s for s in statuses if s not in allowed]
    print(f"{kind}: {len(statuses)} requests, statuses {sorted(set(statuses))}")
    if bad:
        failures.append(f"{kind}: got {sorted(set(bad))}, expected one of {sorted(allowed)}")


def get(path, headers=b""):
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + headers + b"Connection: close\r\n\r\n"


# 1. A 70 KB header value (Beast threw length_error: the process aborted).
expect("70 KB header", [exchange(get("/main/nix-cache-info", b"X-Big: " + b"a" * 70000 + b"\r\n"))
                        for _ in range(30)], {431})

# 2. Chunked body whose chunk-size line never ends (the buffer grew without bound).
def endless_chunk_line():
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.sendall(b"POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
              b"\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n1;")
    status = 0
    try:
        for _ in range(64):  # up to 8 MB of chunk extension
            s.sendall(b"a" * 131072)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    try:
        data = s.recv(4096)
        status = int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1 ") else 0
    except (ConnectionResetError, socket.timeout, OSError):
        pass
    s.close()
    return status
expect("endless chunk-size line", [endless_chunk_line() for _ in range(20)], {0, 400, 413})

# 3. Anonymous API writes with big hostile JSON (parsed before the permission check).
body = b"[" * (1 << 20)
req = (b"POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
       b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
expect("anonymous 1 MB '[[[' to /api/v1/tokens", [exchange(req) for _ in range(30)], {401})
deep = b"[" * 100000 + b"]" * 100000
req = (b"POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
       b"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " + str(len(deep)).encode() +
       b"\r\n\r\n" + deep)
expect("admin 100k-deep JSON", [exchange(req) for _ in range(10)], {400})

# 4. /missing with 150,000 hashes on a public cache, anonymously.
paths = b"[" + b",".join(b'"%032d"' % i for i in range(150000)) + b"]"
body = b'{"paths":' + paths + b"}"
req = (b"POST /api/v1/caches/open/missing HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
expect("/missing with 150k hashes", [exchange(req, 30) for _ in range(10)], {413})

# 5. Cache names no cache can have (each used to cost a query and a memo entry).
expect("30 KB cache name", [exchange(get("/" + "n" * 30000 + "/nix-cache-info")) for _ in range(30)], {404})
expect("invalid UTF-8 cache name", [exchange(get("/%FF%FE/nix-cache-info")) for _ in range(20)], {404})
expect("65-character cache name", [exchange(get("/" + "a" * 65 + "/nix-cache-info")) for _ in range(20)], {404})

# 6. Range arithmetic that wraps (L4 asked for the whole file, not 416).
# (covered in the shell test against a real NAR)

# 7. A huge Content-Length on a narinfo PUT: refused before the body.
req = (b"PUT /main/" + b"0" * 32 + b".narinfo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
       b"\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n")
expect("100 MB narinfo", [exchange(req) for _ in range(10)], {413})

if failures:
    print("FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
