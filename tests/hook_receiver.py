#!/usr/bin/env python3
"""hook_receiver.py — a local webhook receiver for switchd's notification tests.

    hook_receiver.py --port PORT --out FILE [--status 200] [--hang]

Appends each POST body as one line to FILE and answers --status; with --hang
it reads the request and never answers (until killed).  127.0.0.1 only.
"""
import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--status", type=int, default=200)
ap.add_argument("--hang", action="store_true")
args = ap.parse_args()
lock = threading.Lock()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock, open(args.out, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        if args.hang:
            threading.Event().wait()
        self.send_response(args.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", args.port), Hook).serve_forever()
