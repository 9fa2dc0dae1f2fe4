#!/bin/bash
# t-soak: switchd under a long and a hostile load.
#
#   1. 10,000 commands (status, history and hosts mostly, some switch/back,
#      a few bad requests) from 4 clients, over kept-alive and fresh
#      connections (3,300 of them, past switchd's 1024-client cap): every one answered as it should, no file descriptor
#      leak (/proc/PID/fd counted before and after), RSS reported.
#   2. 256 idle connections held open and a client dribbling one byte a
#      second: "switchctl status" still answers for others within 1 s.
#   3. "ulimit -n 64" and more connections than that: switchd caps its
#      clients below the limit and closes the oldest idle one to make room
#      (t-fdlimit has the switch through it), never spins, stays alive.
#   4. valgrind (release build) through switch (with smoke checks), back,
#      status and SIGTERM: no errors, no definite leaks, exit 0.
#
#   SOAK_N=N       commands in part 1 (default 10000)
#   VALGRIND_SWITCHD=PATH   the non-ASan binary for part 4 (default
#                  build/release/switchd, else switchd/switchd)
. "$(dirname "$0")/../lib.sh"
t_setup

SOAK_N=${SOAK_N:-10000}
T0=$(now_ms)

two_pools
start_haproxy h1
write_config
start_switchd

# ---------------------------------------------------------------- the helper
# One Python process drives the load (a Python start costs ~100 ms here):
#   fresh N SOCK      N status requests, each on a new connection
#   keepalive SOCK    several requests in a row on one connection
#   soak N SOCK       N commands, 4 clients; prints a summary line
#   open N SOCK       open N more connections and hold them; "opened K"
#   dribble SOCK      one more connection that sends a byte a second
#   close K           close the K oldest held connections
#   closeall          close every held connection and stop the dribbler
cat >"$T/soak.py" <<'EOF'
import json, socket, sys, threading, time

held = []
stop_dribble = threading.Event()

def out(*a):
    print(*a, flush=True)

def connect(path, timeout=3):
    """A unix socket connect() with a full backlog fails at once with
    EAGAIN (a timeout makes the socket non-blocking): retry until timeout."""
    deadline = time.time() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.time() >= deadline:
                raise
            time.sleep(0.005)

def ask(s, rf, line):
    s.sendall(line.encode() + b"\n")
    while True:
        r = rf.readline()
        if not r:
            raise EOFError("connection closed before the final reply")
        o = json.loads(r)
        if "ok" in o:
            return o

REQS = {
    "status": '{"v":1,"cmd":"status"}',
    "history": '{"v":1,"cmd":"history","args":{"n":5}}',
    "hosts": '{"v":1,"cmd":"hosts","args":{"pool":"cold"}}',
    "bad-json": '{"v":1,"cmd":',
    "bad-cmd": '{"v":1,"cmd":"stauts"}',
}

def worker(path, n, wid, switcher, res, lock):
    s = rf = None
    flips = 0
    lat = []
    counts = {}
    errors = []
    for i in range(n):
        if i % 97 == 13:
            name = "bad-json" if i % 2 else "bad-cmd"
        elif switcher and i % 100 == 50:
            name = "switch" if flips % 2 == 0 else "back"
            flips += 1
        else:
            name = ("status", "status", "history", "hosts")[i % 4]
        line = REQS.get(name) or json.dumps({"v": 1, "cmd": name, "args":
            {"force": True, "no_smoke": True, "message": "soak"} if name == "switch" else {}})
        # A third of the commands on a fresh connection (more than
        # switchd's 1024-client cap in all), the rest kept alive.
        fresh = (i % 3 == 0)
        if len(errors) >= 3:
            errors.append("worker %d: gave up after 3 errors, at command %d" % (wid, i))
            break
        try:
            if s is None or fresh:
                if s is not None:
                    s.close()
                s = connect(path)
                rf = s.makefile("r")
            t0 = time.perf_counter()
            o = ask(s, rf, line)
            lat.append(time.perf_counter() - t0)
            want_ok = not name.startswith("bad")
            if o.get("ok") is not want_ok or (not want_ok and o.get("code") != "usage"):
                errors.append("%s -> %s" % (name, json.dumps(o)[:200]))
            elif name == "status" and o.get("hot") not in ("blue", "green"):
                errors.append("status without hot: %s" % json.dumps(o)[:200])
            counts[name] = counts.get(name, 0) + 1
            if fresh:
                s.close()
                s = None
        except Exception as e:
            errors.append("%s: %s: %s" % (name, type(e).__name__, e))
            if s is not None:
                s.close()
            s = None
    if s is not None:
        s.close()
    with lock:
        res["lat"] += lat
        res["errors"] += errors
        for k, v in counts.items():
            res["counts"][k] = res["counts"].get(k, 0) + v

def soak(n, path):
    res = {"lat": [], "errors": [], "counts": {}}
    lock = threading.Lock()
    t0 = time.time()
    ths = [threading.Thread(target=worker, args=(path, n // 4 + (1 if w < n % 4 else 0),
                                                  w, w == 0, res, lock)) for w in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    lat = sorted(res["lat"])
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else -1
    for e in res["errors"][:10]:
        sys.stderr.write("soak error: %s\n" % e)
    out("done %d %d %.1f %.2f %.2f %s" % (len(lat), len(res["errors"]), time.time() - t0,
        p(0.5), p(0.99), ",".join("%s=%d" % kv for kv in sorted(res["counts"].items()))))

def keepalive(path):
    """Several requests, one after the other, on one connection: each is
    answered (status is asynchronous in switchd, hosts is not)."""
    s = connect(path)
    rf = s.makefile("r")
    seq = ["status", "hosts", "status", "status", "history", "bad-json", "status"]
    for k, name in enumerate(seq):
        try:
            o = ask(s, rf, REQS[name])
        except Exception as e:
            s.close()
            out("fail request %d (%s, after %s): %s: %s" % (k + 1, name,
                seq[k - 1] if k else "nothing", type(e).__name__, e))
            return
    s.close()
    out("ok %d" % len(seq))

def fresh(n, path):
    """n status requests, each on its own connection, as switchctl does."""
    for k in range(n):
        try:
            s = connect(path)
            o = ask(s, s.makefile("r"), REQS["status"])
            s.close()
            if o.get("ok") is not True:
                raise ValueError(json.dumps(o)[:200])
        except Exception as e:
            out("fail at request %d: %s: %s" % (k + 1, type(e).__name__, e))
            return
    out("ok %d" % n)

def open_n(n, path):
    k = 0
    for _ in range(n):
        try:
            held.append(connect(path, timeout=0.5))
            k += 1
        except OSError:
            break
    out("opened %d" % k)

def dribble(path):
    s = connect(path)
    held.append(s)
    msg = b'{"v":1,"cmd":"status"}' + b" " * 10000
    def run():
        for b in msg:
            if stop_dribble.wait(1.0):
                return
            try:
                s.send(bytes([b]))
            except OSError:
                return
    threading.Thread(target=run, daemon=True).start()
    out("dribbling")

def close(k):
    for _ in range(min(k, len(held))):
        held.pop(0).close()
    out("closed; %d held" % len(held))

for line in sys.stdin:
    w = line.split()
    if not w:
        continue
    try:
        if w[0] == "fresh":
            fresh(int(w[1]), w[2])
        elif w[0] == "keepalive":
            keepalive(w[1])
        elif w[0] == "soak":
            soak(int(w[1]), w[2])
        elif w[0] == "open":
            open_n(int(w[1]), w[2])
        elif w[0] == "dribble":
            dribble(w[1])
        elif w[0] == "close":
            close(int(w[1]))
        elif w[0] == "closeall":
            stop_dribble.set()
            close(len(held))
        else:
            out("error unknown request")
    except Exception as e:
        out("error %s: %s" % (type(e).__name__, e))
EOF

coproc SK { exec "$PYTHON" "$T/soak.py"; }
track "$SK_PID"
SK_IN=${SK[1]}
SK_OUT=${SK[0]}

# sk SECONDS REQUEST...: one request to the helper; its answer in $SKR.
SKR=""
sk() {
	local secs=$1; shift
	echo "$*" >&"$SK_IN"
	if ! read -r -t "$secs" SKR <&"$SK_OUT"; then
		die "soak helper did not answer \"$*\" within $secs s"
	fi
	case $SKR in error*) _fail "helper: $* -> $SKR" ;; esac
}

fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }

# fds_back PID N: the daemon's descriptor count is back to N (its side of
# closed connections is closed when it sees the EOF, not at once).
fds_back() { [ "$(fd_count "$1")" -le "$2" ]; }

# status_ms: wall time of one "switchctl status", in ms ("fail" if it failed).
status_ms() {
	local t0 t1
	t0=$(now_ms)
	if CTL_TIMEOUT=10 ctl status >/dev/null 2>&1; then
		t1=$(now_ms); echo $((t1 - t0))
	else
		echo fail
	fi
}

# ---------------------------------------------------------------- 1. soak
log "---- 1. $SOAK_N commands from 4 clients"
PID=$(switchd_pid)
sleep 0.2
FD0=$(fd_count "$PID"); RSS0=$(rss_kb "$PID")
sk 60 fresh 1100 "$T/switchd.sock"
expect_eq "1100 status requests, each on its own connection (switchctl's way): all answered" \
	"$SKR" "ok 1100"
ok "no descriptor kept for them: $FD0 before" wait_for 5 fds_back "$PID" "$FD0"
sk 20 keepalive "$T/switchd.sock"
expect_eq "one connection, several requests in a row: each answered" "$SKR" "ok 7"
sk 150 soak "$SOAK_N" "$T/switchd.sock"
read -r _ n_done n_err secs p50 p99 counts <<<"$SKR"
log "soak: $n_done replies in $secs s (p50 $p50 ms, p99 $p99 ms): $counts"
expect_eq "all $SOAK_N commands answered" "$n_done" "$SOAK_N"
expect_eq "every reply as expected (ok, or code usage for the bad ones)" "$n_err" 0
expect_match "some switches and backs ran" "$counts" 'switch=[1-9]'
ok "no file descriptor leak: $FD0 before" wait_for 5 fds_back "$PID" "$FD0"
[ "$(fd_count "$PID")" -le "$FD0" ] || ls -l "/proc/$PID/fd" | sed 's/^/#   /'
RSS1=$(rss_kb "$PID")
log "RSS of $SWITCHD: ${RSS0} kB idle, ${RSS1} kB after $SOAK_N commands"
case $SWITCHD in */asan/*) log "(an ASan build: its quarantine keeps up to 256 MB of freed memory; make bench reports the release build's RSS)" ;; esac
ok "daemon alive after the soak" alive "$PID"
ok "history.jsonl parses after the soak" jlines_valid "$T/state/history.jsonl"
hot=$(status_get '["hot"]')
expect_eq "after the soak: HAProxy serves status's hot pool" "$(via_live)" "$hot"
expect_eq "after the soak: map file = HAProxy" "$(file_map)" "$(hap_map h1)"

# ---------------------------------------------------------------- 2. idle + slow
log "---- 2. 256 idle connections and a client sending a byte a second"
FD0=$(fd_count "$PID")
sk 30 open 256 "$T/switchd.sock"
expect_eq "256 idle connections open" "$SKR" "opened 256"
sk 10 dribble "$T/switchd.sock"
sleep 1
worst=0
for i in 1 2 3 4 5; do
	ms=$(status_ms)
	log "status with 257 connections held: $ms ms"
	[ "$ms" = fail ] && { worst=fail; break; }
	[ "$ms" -gt "$worst" ] && worst=$ms
	sleep 0.5
done
# A daemon blocked by one of them would not answer at all (status_ms gives
# up after 10 s); how fast it answers is make bench's business, not a check
# that a loaded machine could fail.
ok "status answers each time while 257 connections are held (worst: $worst ms)" \
	test "$worst" != fail
expect_ok hosts hot
sk 10 closeall
ok "descriptors back to $FD0 after they close" wait_for 5 fds_back "$PID" "$FD0"
stop_switchd
expect_eq "switchd exits 0 on SIGTERM" "$SWITCHD_RC" 0

# ---------------------------------------------------------------- 3. EMFILE
log "---- 3. ulimit -n 64, 100 connections"
cat >"$T/lowfd.sh" <<EOF
#!/bin/sh
ulimit -n 64
exec "$SWITCHD" "\$@"
EOF
chmod +x "$T/lowfd.sh"
REAL_SWITCHD=$SWITCHD
SWITCHD=$T/lowfd.sh
start_switchd
SWITCHD=$REAL_SWITCHD
PID=$(switchd_pid)
expect_eq "switchd runs with 64 descriptors" "$(awk '/^Max open files/ { print $4 }' "/proc/$PID/limits")" 64
L=$(wc -l <"$T/switchd.log")
sk 60 open 100 "$T/switchd.sock"
log "held: $SKR (accepted ones plus the listen backlog)"
sleep 1.5
c0=$(cpu_ticks "$PID"); sleep 2; c1=$(cpu_ticks "$PID")
log "switchd CPU with 100 connections held: $((c1 - c0)) ticks in 2 s"
ok "with 100 connections held, switchd does not spin (< 50 ticks in 2 s)" test $((c1 - c0)) -lt 50
ok "switchd alive with 100 connections held" alive "$PID"
expect_grep 'closing the oldest idle one' <(tail -n +"$((L + 1))" "$T/switchd.log") \
	"the log says the oldest idle clients were closed to make room"
sk 10 close 60
t0=$(now_ms)
ok "status answers once some connections close" wait_for 10 ctl status
log "status answered $(( $(now_ms) - t0 )) ms after 60 connections closed"
ok "switchd alive after EMFILE" alive "$PID"
sk 10 closeall
ok "status answers after they all close" wait_for 10 ctl status
expect_ok switch --force --no-smoke -m "after EMFILE"
expect_eq "the switch after EMFILE took: HAProxy" "$(hap_map h1)" "$(file_map)"
stop_switchd
expect_eq "switchd (64 fds) exits 0 on SIGTERM" "$SWITCHD_RC" 0

# ---------------------------------------------------------------- 4. valgrind
log "---- 4. valgrind: switch (smoke), back, status, SIGTERM"
VG_BIN=${VALGRIND_SWITCHD:-}
if [ -z "$VG_BIN" ]; then
	for b in "$REPO_DIR/build/release/switchd" "$REPO_DIR/switchd/switchd"; do
		[ -x "$b" ] && { VG_BIN=$b; break; }
	done
fi
if ! command -v valgrind >/dev/null; then
	_fail "valgrind is installed (scripts/deps test)"
elif [ -z "$VG_BIN" ]; then
	_fail "a release switchd to run under valgrind (make)"
else
	log "valgrind on $VG_BIN"
	cat >"$T/vg.sh" <<EOF
#!/bin/sh
exec valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --track-fds=no --log-file="$T/valgrind.log" "$VG_BIN" "\$@"
EOF
	chmod +x "$T/vg.sh"
	write_config "smoke = { url = \"http://127.0.0.1:$FE_PORT\"; timeout_ms = 30000;
  checks = ( { name = \"home\"; path = \"/\"; status = 200; } ); per_server = true; };"
	SWITCHD=$T/vg.sh
	start_switchd
	SWITCHD=$REAL_SWITCHD
	hot=$(status_get '["hot"]')
	CTL_TIMEOUT=60 expect_ok switch --force -m "under valgrind"
	expect_ne "switched under valgrind" "$(jv "$OUT" '["hot"]')" "$hot"
	CTL_TIMEOUT=60 expect_ok back -m "back under valgrind"
	CTL_TIMEOUT=60 expect_ok status
	CTL_TIMEOUT=60 expect_ok history -n 3
	CTL_TIMEOUT=60 expect_ok hosts cold
	stop_switchd
	expect_eq "switchd under valgrind exits 0 (99: valgrind found errors)" "$SWITCHD_RC" 0
	expect_grep 'ERROR SUMMARY: 0 errors' "$T/valgrind.log" "valgrind: no errors"
	expect_nogrep 'definitely lost: [1-9]' "$T/valgrind.log" "valgrind: no definite leaks"
	grep -E 'ERROR SUMMARY|definitely lost|in use at exit|All heap' "$T/valgrind.log" | sed 's/^/#   vg: /'
	if [ "$SWITCHD_RC" != 0 ]; then head -n 80 "$T/valgrind.log" | sed 's/^/#   vg: /'; fi
fi

log "total: $(( ($(now_ms) - T0) / 1000 )) s"
t_done
