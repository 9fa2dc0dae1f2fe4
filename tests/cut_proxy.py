#!/usr/bin/env python3
"""cut_proxy.py — TCP forwarders on 127.0.0.1 that a test can cut, to put
one client on the far side of a network partition.

    cut_proxy.py --cut-file PATH --port-file PATH UPSTREAM_PORT...

For each UPSTREAM_PORT it listens on a free 127.0.0.1 port and forwards every
connection to 127.0.0.1:UPSTREAM_PORT.  The listening ports are written,
space-separated in the order given, to --port-file once every listener is
up.  While --cut-file exists, every open connection is closed and new ones
are closed as soon as they are accepted: the client sees its peer vanish
(as a partition with resets would look), the upstream servers stay up for
everyone else.  Remove the file and connections go through again.
"""
import argparse
import os
import socket
import sys
import threading
import time

ARGS = None
CONNS = set()
LOCK = threading.Lock()


def cut():
    return os.path.exists(ARGS.cut_file)


def close_pair(pair):
    for s in pair:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def relay(src, dst, pair):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
    except OSError:
        pass
    with LOCK:
        gone = pair in CONNS
        CONNS.discard(pair)
    if gone:
        close_pair(pair)


def serve(ls, up):
    while True:
        c, _ = ls.accept()
        if cut():
            c.close()
            continue
        try:
            u = socket.create_connection(("127.0.0.1", up), timeout=3)
            u.settimeout(None)
        except OSError:
            c.close()
            continue
        pair = (c, u)
        with LOCK:
            CONNS.add(pair)
        threading.Thread(target=relay, args=(c, u, pair), daemon=True).start()
        threading.Thread(target=relay, args=(u, c, pair), daemon=True).start()


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--cut-file", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("upstream", type=int, nargs="+")
    ARGS = ap.parse_args()
    ports = []
    for up in ARGS.upstream:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(64)
        ports.append(ls.getsockname()[1])
        threading.Thread(target=serve, args=(ls, up), daemon=True).start()
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(" ".join(map(str, ports)) + "\n")
    os.rename(tmp, ARGS.port_file)
    while True:
        time.sleep(0.05)
        if cut():
            with LOCK:
                pairs = list(CONNS)
                CONNS.clear()
            for pair in pairs:
                close_pair(pair)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
