#!/bin/bash
# t-proto: the control socket against bad clients.  Garbage, non-objects,
# wrong types, unknown commands and versions get {"ok": false, "code":
# "usage"}; an over-long line (> 64 KiB) gets an error and/or a close; idle,
# half-open and slow clients never stop the daemon from serving others.
. "$(dirname "$0")/../lib.sh"
t_setup
std_setup

# pc [--all] [--timeout S] DATA: send DATA (Python escapes: \n, \x00...) on a
# new connection, print each line received; the last line printed is #EOF
# (the daemon closed), #TIMEOUT, #RESET or #FINAL (a reply with "ok" came;
# with --all we keep reading until EOF/timeout).
cat >"$T/pc.py" <<'EOF'
import codecs, json, socket, sys, time
args = sys.argv[1:]
sock = args.pop(0)
read_all, timeout, repeat = False, 5.0, 1
while args and args[0].startswith("--"):
    o = args.pop(0)
    if o == "--all": read_all = True
    elif o == "--timeout": timeout = float(args.pop(0))
    elif o == "--repeat": repeat = int(args.pop(0))
data = codecs.escape_decode(args[0].encode())[0] * repeat
s = socket.socket(socket.AF_UNIX)
s.settimeout(timeout)
s.connect(sock)
try:
    s.sendall(data)
except (BrokenPipeError, ConnectionResetError):
    pass
buf, end, deadline = b"", None, time.time() + timeout
while end is None:
    s.settimeout(max(0.01, deadline - time.time()))
    try:
        b = s.recv(65536)
    except socket.timeout:
        end = "#TIMEOUT"; break
    except ConnectionResetError:
        end = "#RESET"; break
    if not b:
        end = "#EOF"; break
    buf += b
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        print(line.decode("utf-8", "replace"))
        try:
            o = json.loads(line)
        except ValueError:
            print("#NOTJSON")
            continue
        if isinstance(o, dict) and "ok" in o and not read_all:
            end = "#FINAL"
            break
if buf:
    print(buf.decode("utf-8", "replace"))
print(end)
EOF
pc() { "$PYTHON" "$T/pc.py" "$T/switchd.sock" "$@"; }

# usage_err DESC DATA: DATA gets a final {"ok": false, "code": "usage"}.
usage_err() {
	local desc=$1; shift
	run pc "$@"
	local final; final=$(printf '%s\n' "$OUT" | grep -F '"ok"' | tail -n 1)
	expect_eq "$desc: ok false" "$(jv "$final" '["ok"]' 2>/dev/null)" false
	expect_eq "$desc: code usage" "$(jv "$final" '["code"]' 2>/dev/null)" usage
	expect_match "$desc: a human error text" "$(jv "$final" '["error"]' 2>/dev/null)" '..'
	expect_nogrep '#NOTJSON' - "$desc: every reply line is JSON"
}

alive_serving() {
	ok "$1: daemon still running" alive "$(switchd_pid)"
	ok "$1: another client's status answers" ctl status
}

# ---- the protocol itself works
run pc '{"v": 1, "cmd": "status"}\n'
expect_grep '#FINAL' - "raw status: a final reply"
final=$(printf '%s\n' "$OUT" | grep -F '"ok"' | tail -n 1)
expect_eq "raw status: ok" "$(jv "$final" '["ok"]')" true
expect_eq "raw status: hot" "$(jv "$final" '["hot"]')" blue
run pc '{"v": 1, "cmd": "hosts", "args": {"pool": "green"}}\n'
final=$(printf '%s\n' "$OUT" | grep -F '"ok"' | tail -n 1)
expect_eq "raw hosts green" "$(jv "$final" '[s["address"] for s in d["servers"]]')" "[\"127.0.0.1:$GREEN_PORTS\"]"

# ---- bad requests
usage_err "garbage line" 'hello there\n'
usage_err "JSON array" '[1, 2]\n'
usage_err "JSON string" '"status"\n'
usage_err "JSON number" '42\n'
usage_err "JSON null" 'null\n'
usage_err "empty object" '{}\n'
usage_err "truncated JSON" '{"v": 1, "cmd": "sta\n'
usage_err "unknown command" '{"v": 1, "cmd": "frobnicate"}\n'
expect_grep 'frobnicate' - "unknown command: the error names it"
usage_err "protocol version 999" '{"v": 999, "cmd": "status"}\n'
usage_err "cmd not a string" '{"v": 1, "cmd": 5}\n'
usage_err "args not an object" '{"v": 1, "cmd": "hosts", "args": "blue"}\n'
usage_err "pool not a string" '{"v": 1, "cmd": "hosts", "args": {"pool": 5}}\n'
usage_err "pool not a pool" '{"v": 1, "cmd": "hosts", "args": {"pool": "purple"}}\n'
usage_err "force not a bool" '{"v": 1, "cmd": "switch", "args": {"force": "yes"}}\n'
usage_err "n not an int" '{"v": 1, "cmd": "history", "args": {"n": "ten"}}\n'
usage_err "NUL byte in a line" '{"v": 1, "cmd": "sta\x00tus"}\n'
usage_err "invalid UTF-8" '{"v": 1, "cmd": "\xff\xfe"}\n'
usage_err "deep nesting" "$(printf '%.0s[' $(seq 1 20000))"'\n'
expect_eq "no bad request switched anything" "$(hap_map h1)" "$(map_text blue green)"
alive_serving "after bad requests"

# ---- an error does not poison the connection: the next line is answered,
# or the daemon closes it — it never hangs
run pc --all --timeout 3 'garbage\n{"v": 1, "cmd": "status"}\n'
finals=$(printf '%s\n' "$OUT" | grep -F '"ok"')
expect_eq "garbage then status: first reply is the error" "$(printf '%s\n' "$finals" | head -n 1 | jget '["ok"]')" false
n=$(printf '%s\n' "$finals" | grep -c .)
if [ "$n" -ge 2 ]; then
	expect_eq "garbage then status: second reply is the status" "$(printf '%s\n' "$finals" | sed -n 2p | jget '["ok"]')" true
else
	expect_grep '#EOF' - "garbage then status: the daemon closed the connection"
fi

# ---- long lines
big=$("$PYTHON" -c 'print("A" * 60000)')
run pc '{"v": 1, "cmd": "status", "args": {"pad": "'"$big"'"}}\n'
final=$(printf '%s\n' "$OUT" | grep -F '"ok"' | tail -n 1)
expect_match "60 KB request line: read whole and answered (ok or usage)" \
	"$(jv "$final" 'str(d["ok"]) + " " + str(d.get("code"))')" '^(True None|False usage)$'

run pc --timeout 5 '{"v": 1, "cmd": "status", "args": {"pad": "'"$("$PYTHON" -c 'print("B" * 70000)')"'"}}\n'
expect_nogrep '"ok": *true' - "70 KB line: not executed"
expect_grep '"ok": *false|#EOF|#RESET' - "70 KB line: an error reply and/or a close"
expect_nogrep '#TIMEOUT' - "70 KB line: no hang"
alive_serving "after a 70 KB line"

run pc --timeout 5 --repeat 1048576 'x'
expect_nogrep '"ok": *true' - "1 MiB without a newline: not executed"
expect_grep '"ok": *false|#EOF|#RESET' - "1 MiB without a newline: an error reply and/or a close"
alive_serving "after 1 MiB without a newline"
run pc --timeout 5 --repeat 100 '{"v": 1, "cmd": "status"}\n'
expect_grep '#FINAL' - "100 pipelined requests in one write: the first is answered"
alive_serving "after 100 pipelined requests"

# ---- idle, slow and half-open clients do not block the daemon
# The idle clients stay connected until the test says so (the stop file), so
# a daemon that waited for any of them would never answer: ctl's own bound
# (CTL_TIMEOUT) then fails the check, however fast or slow the machine.
"$PYTHON" - "$T/switchd.sock" "$T/idle.ready" "$T/idle.stop" <<'EOF' &
import os, socket, sys, time
conns = []
for i in range(50):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    if i % 5 == 0:
        s.sendall(b'{"v": 1, "cmd": ')       # half a line, then silence
    conns.append(s)
open(sys.argv[2], "w").write("ready\n")
end = time.monotonic() + 240
while not os.path.exists(sys.argv[3]) and time.monotonic() < end:
    time.sleep(0.05)
EOF
IDLE=$!
track "$IDLE"
ok "50 idle clients connected" wait_for 30 test -f "$T/idle.ready"
t0=$(now_ms)
ok "status answers with 50 idle clients connected" ctl status
t1=$(now_ms)
expect_ok switch --force -m "with idle clients"
t2=$(now_ms)
log "with 50 idle clients: status $((t1 - t0)) ms, switch $((t2 - t1)) ms"
ok "the idle clients were still connected throughout" kill -0 "$IDLE"
: >"$T/idle.stop"
stop_pid "$IDLE"
alive_serving "after the idle clients left"

run pc --timeout 3 '{"v": 1, "cmd": "sta'
expect_nogrep '"ok": *true' - "half a line then silence: not executed"
"$PYTHON" - "$T/switchd.sock" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b'{"v": 1, "cmd": "sta'); s.shutdown(socket.SHUT_WR)
s.settimeout(3)
try:
    print("# half-open got: %r" % s.recv(65536))
except Exception as e:
    print("# half-open recv: %s" % e)
s.close()
# requests whose client is gone before the reply
for req in (b'{"v": 1, "cmd": "status"}\n', b'{"v": 1, "cmd": "history"}\n'):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(req); s.close()
EOF
alive_serving "after half-open and vanished clients"

# ---- a client that never reads a big reply
"$PYTHON" - "$T/switchd.sock" "$T/slow.sent" "$T/slow.stop" <<'EOF' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b'{"v": 1, "cmd": "status"}\n' * 200)
open(sys.argv[2], "w").write("sent\n")
end = time.monotonic() + 240
while not os.path.exists(sys.argv[3]) and time.monotonic() < end:
    time.sleep(0.05)
EOF
SLOW=$!
track "$SLOW"
ok "the non-reading client sent its 200 requests" wait_for 30 test -f "$T/slow.sent"
t0=$(now_ms)
ok "status answers while a client does not read its replies" ctl status
t1=$(now_ms)
log "status beside a non-reading client: $((t1 - t0)) ms"
ok "the non-reading client was still connected" kill -0 "$SLOW"
: >"$T/slow.stop"
stop_pid "$SLOW"
alive_serving "at the end"

t_done
