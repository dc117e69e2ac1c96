#!/usr/bin/env python3
"""An HTTP/1.1 proxy that makes a local server behave like a distant one: it
adds a fixed delay before forwarding each request, and can answer every
request with S3's "503 SlowDown" for a while. Benchmarks put it in front of
radosgw; e2e tests use it for S3 throttling.

Usage: delay_proxy.py --listen PORT --upstream HOST:PORT [--delay-ms N]
                      [--slowdown-file PATH] [--stats-file PATH]

While PATH (--slowdown-file) exists, requests get 503 SlowDown without
reaching the upstream. --stats-file: rewritten after each request with
"requests N slowdowns M".
"""
import argparse
import asyncio
import os

PIECE = 256 * 1024
SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b'<Message>Please reduce your request rate.</Message></Error>')


class Stats:
    requests = 0
    slowdowns = 0


async def read_head(reader):
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None


def headers_of(head):
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return lines[0], fields


async def copy_body(reader, writer, fields, has_body=True):
    """Copies a message body framed by Content-Length or chunked encoding."""
    if not has_body:
        return
    if fields.get("transfer-encoding", "").lower() == "chunked":
        while True:
            line = await reader.readuntil(b"\r\n")
            writer.write(line)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    t = await reader.readuntil(b"\r\n")
                    writer.write(t)
                    if t == b"\r\n":
                        return
            await copy_exact(reader, writer, size + 2)
        return
    await copy_exact(reader, writer, int(fields.get("content-length", "0")))


async def copy_exact(reader, writer, n):
    while n > 0:
        data = await reader.read(min(PIECE, n))
        if not data:
            raise ConnectionError("body ended early")
        writer.write(data)
        n -= len(data)
        await writer.drain()


class Discard:
    def write(self, _):
        pass

    async def drain(self):
        pass


async def handle(client_reader, client_writer, args, stats):
    upstream = None
    try:
        while True:
            head = await read_head(client_reader)
            if head is None:
                return
            request_line, fields = headers_of(head)
            method = request_line.split(" ", 1)[0]
            stats.requests += 1
            if args.delay_ms:
                await asyncio.sleep(args.delay_ms / 1000)
            if args.slowdown_file and os.path.exists(args.slowdown_file):
                stats.slowdowns += 1
                await copy_body(client_reader, Discard(), fields)
                client_writer.write(b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                                    b"Content-Length: %d\r\n\r\n" % len(SLOWDOWN) + SLOWDOWN)
                await client_writer.drain()
                write_stats(args, stats)
                continue
            if upstream is None:
                host, port = args.upstream.rsplit(":", 1)
                upstream = await asyncio.open_connection(host, int(port))
            up_reader, up_writer = upstream
            up_writer.write(head)
            await copy_body(client_reader, up_writer, fields)
            await up_writer.drain()
            response_head = await read_head(up_reader)
            if response_head is None:
                return
            status_line, response_fields = headers_of(response_head)
            status = int(status_line.split(" ")[1])
            client_writer.write(response_head)
            has_body = method != "HEAD" and status not in (204, 304) and status >= 200
            if has_body and "content-length" not in response_fields and \
                    response_fields.get("transfer-encoding", "").lower() != "chunked":
                while data := await up_reader.read(PIECE):  # until the upstream closes
                    client_writer.write(data)
                    await client_writer.drain()
                return
            await copy_body(up_reader, client_writer, response_fields, has_body)
            await client_writer.drain()
            write_stats(args, stats)
            if response_fields.get("connection", "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        return
    finally:
        client_writer.close()
        if upstream:
            upstream[1].close()


def write_stats(args, stats):
    if args.stats_file:
        with open(args.stats_file + ".tmp", "w") as f:
            f.write(f"requests {stats.requests} slowdowns {stats.slowdowns}\n")
        os.replace(args.stats_file + ".tmp", args.stats_file)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--delay-ms", type=float, default=0)
    p.add_argument("--slowdown-file")
    p.add_argument("--stats-file")
    args = p.parse_args()
    stats = Stats()
    server = await asyncio.start_server(lambda r, w: handle(r, w, args, stats), "127.0.0.1", args.listen,
                                        limit=1 << 20)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
