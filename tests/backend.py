#!/usr/bin/env python3
"""backend.py — a tiny HTTP backend for switchd's tests.

    backend.py --port PORT --name NAME [--body TEXT] [--host 127.0.0.1]

Every path answers 200 with the body NAME (or --body), so a request through
HAProxy shows which pool/server answered; /health answers 200 "ok".

Runtime control (for smoke tests that need a misbehaving server):
    GET /_ctl/set?status=500&delay_ms=300&body=xyz&health=503
        status    status code for ordinary paths
        delay_ms  delay before every answer (health included)
        body      body for ordinary paths
        health    status code for /health
    GET /_ctl/down     /health answers 503 (HAProxy marks the server DOWN)
    GET /_ctl/up       /health answers 200 again
    GET /_ctl/hold     ordinary paths (not /health) wait until /_ctl/release
                       (at most 120 s): a request held in flight for as long
                       as the test needs, whatever the machine's speed
    GET /_ctl/release  let the held requests answer
    GET /_ctl/reset    back to the start-up behaviour
    GET /_ctl/state    the current settings as JSON
Control paths always answer at once, never delayed.
HTTP/1.1 with keep-alive; one thread per connection.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class State:
    def __init__(self, name, body):
        self.name = name
        self.lock = threading.Lock()
        self.initial_body = body
        self.reset()

    def reset(self):
        self.status = 200
        self.delay_ms = 0
        self.body = self.initial_body
        self.health = 200
        self.hits = 0
        self.held = 0
        if hasattr(self, "gate"):
            self.gate.set()
        self.gate = threading.Event()
        self.gate.set()

    def snapshot(self):
        with self.lock:
            return {"status": self.status, "delay_ms": self.delay_ms,
                    "body": self.body, "health": self.health, "hits": self.hits,
                    "holding": not self.gate.is_set(), "held": self.held}


STATE = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "switchd-test-backend"
    # Headers and body are two writes: without this, Nagle holds the body
    # for the peer's delayed ACK, 40 ms a keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet unless -v
        if self.server.verbose:
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def reply(self, code, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Backend", STATE.name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.do_GET()

    def do_GET(self):
        url = urlsplit(self.path)
        path = url.path
        if path.startswith("/_ctl/"):
            return self.control(path[len("/_ctl/"):], parse_qs(url.query))
        with STATE.lock:
            STATE.hits += 1
            delay = STATE.delay_ms
            status, body, health = STATE.status, STATE.body, STATE.health
            gate = STATE.gate
            hold = path != "/health" and not gate.is_set()
            if hold:
                STATE.held += 1
        if hold:
            gate.wait(120)
            with STATE.lock:
                STATE.held -= 1
        if delay:
            time.sleep(delay / 1000.0)
        if path == "/health":
            return self.reply(health, "ok" if health == 200 else "down")
        return self.reply(status, body)

    def control(self, what, q):
        one = lambda k: q[k][-1]
        with STATE.lock:
            if what == "set":
                try:
                    if "status" in q:
                        STATE.status = int(one("status"))
                    if "delay_ms" in q:
                        STATE.delay_ms = int(one("delay_ms"))
                    if "body" in q:
                        STATE.body = one("body")
                    if "health" in q:
                        STATE.health = int(one("health"))
                except ValueError as e:
                    return self.reply(400, "bad value: %s\n" % e)
            elif what == "down":
                STATE.health = 503
            elif what == "up":
                STATE.health = 200
            elif what == "hold":
                if STATE.gate.is_set():
                    STATE.gate = threading.Event()
            elif what == "release":
                STATE.gate.set()
            elif what == "reset":
                STATE.reset()
            elif what != "state":
                return self.reply(404, "unknown control %s\n" % what)
        return self.reply(200, json.dumps(STATE.snapshot()) + "\n",
                          "application/json")


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--body", help="body of ordinary paths (default: NAME)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    STATE = State(a.name, a.body if a.body is not None else a.name)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    srv.verbose = a.verbose
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
