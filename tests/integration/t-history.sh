#!/bin/bash
# t-history: a big journal and a client that pipelines many requests do not
# stall anyone else.  history reads the journal backwards from its end (the
# last N lines, not the whole file), and a client gets one request served
# per loop turn, so another client's status answers promptly.
. "$(dirname "$0")/../lib.sh"
t_setup
STD_NO_SWITCHD=1 std_setup

# ~1.6 MB of journal: 8000 entries, e0 the oldest, e7999 the newest.
mkdir -p "$T/state"
"$PYTHON" - "$T/state/history.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(8000):
        f.write(json.dumps({"id": "e%d" % i, "time": "2026-01-01T00:00:00Z", "uid": 0,
            "user": "root", "command": "switch", "message": "x" * 90,
            "before": {"hot": "blue", "cold": "green"},
            "after": {"hot": "green", "cold": "blue"}, "result": "ok"}) + "\n")
        if i == 4000:
            f.write("\n[\"not an object\"]\n")
PY
start_switchd
ok "the journal is over 1.5 MB" test "$(stat -c %s "$T/state/history.jsonl")" -gt 1500000

run ctlj history -n 3
expect_eq "history -n 3: the newest three, newest first" \
	"$(jv "$OUT" '[e["id"] for e in d["entries"]]')" '["e7999", "e7998", "e7997"]'
run ctlj history -n 4500
expect_eq "history -n 4500: across chunks, past a blank and a non-object line" \
	"$(jv "$OUT" '[len(d["entries"]), d["entries"][0]["id"], d["entries"][3998]["id"], d["entries"][3999]["id"], d["entries"][-1]["id"]]')" \
	'[4500, "e7999", "e4001", "e4000", "e3500"]'
run ctlj history -n 100000
expect_eq "history -n 100000: every entry, the oldest last" \
	"$(jv "$OUT" '[len(d["entries"]), d["entries"][-1]["id"]]')" '[8000, "e0"]'

# One client writes 300 history requests at once (12 KB); another asks for
# status right after.  Before: every history parsed the whole journal, all
# 300 inside one read callback, and status waited ~9 s.
"$PYTHON" - "$T/switchd.sock" >"$T/pipeline.out" <<'PY'
import json, socket, sys, time
path = sys.argv[1]
a = socket.socket(socket.AF_UNIX); a.connect(path)
b = socket.socket(socket.AF_UNIX); b.connect(path)
a.sendall(b'{"v":1,"cmd":"history","args":{"n":20}}\n' * 300)
t0 = time.monotonic()
b.sendall(b'{"v":1,"cmd":"status"}\n')
b.settimeout(60)
buf = b""
while b"\n" not in buf:
    chunk = b.recv(65536)
    if not chunk:
        break
    buf += chunk
ms = (time.monotonic() - t0) * 1000
status_ok = json.loads(buf.split(b"\n", 1)[0]).get("ok")
a.settimeout(60)
buf, replies = b"", []
while len(replies) < 300:
    chunk = a.recv(1 << 20)
    if not chunk:
        break
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        replies.append(json.loads(line))
good = sum(1 for r in replies if r.get("ok") and len(r["entries"]) == 20
           and r["entries"][0]["id"] == "e7999" and r["entries"][19]["id"] == "e7980")
print("status_ms=%d" % ms)
print("status_ok=%s" % status_ok)
print("history_good=%d" % good)
PY
log "$(tr '\n' ' ' <"$T/pipeline.out")"
ms=$(sed -n 's/^status_ms=//p' "$T/pipeline.out")
expect_eq "status answered while 300 history requests were pipelined" \
	"$(sed -n 's/^status_ok=//p' "$T/pipeline.out")" True
ok "status answered within 2 s of 300 pipelined history requests (${ms:-?} ms)" test "${ms:-99999}" -lt 2000
expect_eq "all 300 pipelined history requests answered, newest first" \
	"$(sed -n 's/^history_good=//p' "$T/pipeline.out")" 300
ok "switchd is still alive" alive "$(switchd_pid)"

t_done
