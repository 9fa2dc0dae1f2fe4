#!/usr/bin/env python3
"""fault_proxy.py — a unix-socket proxy in front of an HAProxy admin socket
that can delay, fail or drop chosen commands.

    fault_proxy.py --listen PATH --upstream PATH
                   [--delay-ms N --delay-match REGEX]
                   [--fail-match REGEX --fail-reply TEXT]
                   [--close-match REGEX]
                   [--rules FILE] [--log FILE]

Each client line (one HAProxy CLI command, or several joined by ';') is
checked against the rules, in this order:
    close_match  -> the connection is closed without an answer
    fail_match   -> fail_reply is answered instead of forwarding (the upstream
                    never sees the command), then the connection is closed
                    (or, in interactive "prompt" mode, a prompt follows)
    hold_match   -> the command is held until the file hold_file exists
                    (the test creates it when it is done looking at the
                    held state: an event, not a guess at a duration), then
                    forwarded; "hold" is logged when it starts, "release"
                    when it goes on (after max_wait it goes on regardless,
                    logged as "release-timeout")
    delay_match  -> the command is forwarded after delay_ms
                    (delay_ms without delay_match delays every command)
anything else is forwarded to the upstream, and the upstream's answer is
relayed back until the upstream closes.  Non-interactive (one command per
connection) and interactive ("prompt") sessions both work; in an
interactive session whose commands are pipelined, a failure or close made
up here waits until the upstream has answered every command before it, so
the answers stay in order.

--rules FILE names a JSON object with the same keys
    {"hold_match": "^commit map", "hold_file": "/tmp/x/fp1.release",
     "delay_ms": 2000, "delay_match": "^commit map",
     "fail_match": "...", "fail_reply": "...", "close_match": "..."}
re-read for every command, so a test can change the behaviour at run time
(let the pre-checks pass, then fail "commit map").  Keys in the file
override the command-line options; a missing or unreadable file means the
command-line options alone.  --log FILE appends every command seen, with
the action taken ("fwd", "hold", "release", "delay", "fail", "close"), one
per line, and every connection accepted as "connect"; each line ends with
"#N", the number of the connection it came on.
Regexes are Python `re.search` patterns.
"""
import argparse
import itertools
import json
import os
import re
import signal
import socket
import sys
import threading
import time

ARGS = None
LOG_LOCK = threading.Lock()


def rules():
    r = {"delay_ms": ARGS.delay_ms, "delay_match": ARGS.delay_match,
         "fail_match": ARGS.fail_match, "fail_reply": ARGS.fail_reply,
         "close_match": ARGS.close_match}
    if ARGS.rules:
        try:
            with open(ARGS.rules) as f:
                r.update(json.load(f))
        except (OSError, ValueError):
            pass
    return r


def matches(pat, line):
    return bool(pat) and re.search(pat, line) is not None


def log(action, line, conn):
    if not ARGS.log:
        return
    with LOG_LOCK, open(ARGS.log, "a") as f:
        f.write("%.3f %s %s #%d\n" % (time.time(), action, line, conn))


CONNS = itertools.count(1)


class Answers:
    """In interactive mode, how many answers the upstream has relayed (each
    ends with the prompt "\n> ") against how many commands went to it: an
    answer made up here must wait for the ones before it, or a client that
    pipelines its commands would read them out of order."""

    def __init__(self):
        self.cv = threading.Condition()
        self.forwarded = 0
        self.relayed = 0
        self.tail = b""
        self.closed = False

    def sent(self):
        with self.cv:
            self.forwarded += 1

    def saw(self, b):
        with self.cv:
            data = self.tail + b
            self.relayed += data.count(b"\n> ")
            self.tail = data[-2:]
            self.cv.notify_all()

    def close(self):
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def wait(self):
        with self.cv:
            self.cv.wait_for(lambda: self.closed or self.relayed >= self.forwarded,
                             ARGS.max_wait)


def relay(src, dst, done, answers=None):
    """Copy src to dst until src closes; then shut dst down."""
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
            if answers is not None:
                answers.saw(b)
    except OSError:
        pass
    finally:
        done.set()
        if answers is not None:
            answers.close()
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(client):
    up = None
    done = threading.Event()
    interactive = False
    answers = Answers()
    buf = b""
    eof = False
    conn = next(CONNS)
    log("connect", "", conn)
    try:
        while True:
            while b"\n" not in buf and not eof:
                b = client.recv(65536)
                if not b:
                    eof = True
                    break
                buf += b
            if b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
            elif buf:
                raw, buf = buf, b""     # a last command without its newline
            else:
                # Client closed its side with nothing pending: let the upstream
                # finish its answer.
                if up is not None:
                    up.shutdown(socket.SHUT_WR)
                    done.wait(ARGS.max_wait)
                return
            line = raw.decode("utf-8", "replace").rstrip("\r")
            r = rules()
            if matches(r.get("close_match"), line):
                log("close", line, conn)
                if interactive:
                    answers.wait()
                return
            if matches(r.get("fail_match"), line):
                log("fail", line, conn)
                if interactive:
                    answers.wait()
                reply = r.get("fail_reply") or ""
                if not reply.endswith("\n"):
                    reply += "\n"
                if interactive:
                    client.sendall((reply + "\n> ").encode())
                    continue
                client.sendall((reply + "\n").encode())
                return
            delay = int(r.get("delay_ms") or 0)
            if matches(r.get("hold_match"), line) and r.get("hold_file"):
                log("hold", line, conn)
                deadline = time.monotonic() + ARGS.max_wait
                while not os.path.exists(r["hold_file"]) and time.monotonic() < deadline:
                    time.sleep(0.005)
                log("release" if os.path.exists(r["hold_file"]) else "release-timeout", line, conn)
            elif delay and (not r.get("delay_match") or matches(r.get("delay_match"), line)):
                log("delay", line, conn)
                time.sleep(delay / 1000.0)
            else:
                log("fwd", line, conn)
            if up is None:
                up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                up.settimeout(ARGS.max_wait)
                try:
                    up.connect(ARGS.upstream)
                except OSError as e:
                    log("upstream-error", str(e), conn)
                    return
                up.settimeout(None)
                threading.Thread(target=relay, args=(up, client, done, answers),
                                 daemon=True).start()
            if line.strip() == "prompt" or line.strip().startswith("prompt"):
                interactive = True
            answers.sent()
            up.sendall(raw + b"\n")
            if not interactive:
                # One command per connection: the upstream answers and closes.
                if buf:
                    up.sendall(buf)
                    buf = b""
                done.wait(ARGS.max_wait)
                return
            if done.is_set():
                return
    except OSError:
        pass
    finally:
        for s in (up, client):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--delay-match")
    ap.add_argument("--fail-match")
    ap.add_argument("--fail-reply", default="Unknown command.\n")
    ap.add_argument("--close-match")
    ap.add_argument("--rules")
    ap.add_argument("--log")
    ap.add_argument("--max-wait", type=float, default=30.0,
                    help="seconds to wait for the upstream, and longest hold (default 30)")
    ARGS = ap.parse_args()

    try:
        os.unlink(ARGS.listen)
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(ARGS.listen)
    os.chmod(ARGS.listen, 0o666)
    ls.listen(128)

    def bye(*_):
        try:
            os.unlink(ARGS.listen)
        except OSError:
            pass
        os._exit(0)
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)

    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
