#!/usr/bin/env python3
"""tests/cdp.py — a tiny Chrome DevTools Protocol client, standard library only.

Drives a headless Chromium started with --remote-debugging-port: the page it
shows is never reloaded, so a test sees what the page's own script made of
the live data.

    cdp.py PORT eval EXPRESSION      print the value (strings raw, else JSON)
    cdp.py PORT screenshot FILE.png  the page as it is now
    cdp.py PORT url                  the page's URL

The WebSocket (RFC 6455) part is only what CDP needs: a client handshake,
masked text frames out, unfragmented or fragmented text frames in.
"""
import base64
import json
import os
import socket
import struct
import sys
import urllib.request


class WebSocket:
    def __init__(self, url, timeout=20):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key))
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise IOError("websocket: connection closed during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise IOError("websocket: handshake refused: %r" % head[:200])

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise IOError("websocket: connection closed")
            buf += chunk
        return buf

    def send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            hdr = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(hdr + mask + masked)

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._recv(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._recv(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._recv(8))[0]
            if b1 & 0x80:
                mask = self._recv(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._recv(n)))
            else:
                payload = self._recv(n)
            op = b0 & 0x0F
            if op == 0x8:
                raise IOError("websocket: closed by the browser")
            if op in (0x9, 0xA):       # ping/pong: not used by Chromium here
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()


class Page:
    def __init__(self, port):
        with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10) as r:
            targets = [t for t in json.load(r) if t.get("type") == "page"]
        if not targets:
            raise IOError("no page target")
        self.target = targets[0]
        self.ws = WebSocket(self.target["webSocketDebuggerUrl"])
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise IOError("%s: %s" % (method, msg["error"]))
                return msg["result"]


def main():
    port, what = int(sys.argv[1]), sys.argv[2]
    page = Page(port)
    if what == "eval":
        r = page.call("Runtime.evaluate", expression=sys.argv[3], returnByValue=True)
        if "exceptionDetails" in r:
            sys.exit("exception: %s" % r["exceptionDetails"].get("text"))
        v = r["result"].get("value")
        print(v if isinstance(v, str) else json.dumps(v))
    elif what == "screenshot":
        r = page.call("Page.captureScreenshot", format="png")
        with open(sys.argv[3], "wb") as f:
            f.write(base64.b64decode(r["data"]))
    elif what == "url":
        print(page.target.get("url"))
    else:
        sys.exit("usage: cdp.py PORT eval EXPR | screenshot FILE | url")


if __name__ == "__main__":
    main()
