#!/usr/bin/env python3
"""slow_backend.py — many small HTTP/1.1 backends in one asyncio process,
for the smoke benchmark (50 cold servers whose every answer takes 200 ms).

    slow_backend.py --ports 9001,9002,... --name green --delay-ms 200

Every path answers 200 with "NAME\\n" (keep-alive) after --delay-ms; /health
answers at once.  One process, one thread: 50 servers x 5 concurrent checks
cost nothing while they wait.
"""
import argparse
import asyncio
import signal


async def handle(reader, writer, name, delay):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split()
            path = parts[1] if len(parts) > 1 else "/"
            lower = head.lower()
            n = 0
            for h in lower.split(b"\r\n"):
                if h.startswith(b"content-length:"):
                    n = int(h.split(b":", 1)[1])
            if n:
                await reader.readexactly(n)
            if path != "/health" and delay > 0:
                await asyncio.sleep(delay / 1000.0)
            body = (name + "\n").encode()
            close = b"connection: close" in lower
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\n%s\r\n" % (len(body),
                         b"Connection: close\r\n" if close else b"") + body)
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--delay-ms", type=int, default=0)
    a = ap.parse_args()
    servers = []
    for p in a.ports.split(","):
        servers.append(await asyncio.start_server(
            lambda r, w: handle(r, w, a.name, a.delay_ms), "127.0.0.1", int(p),
            backlog=512))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
