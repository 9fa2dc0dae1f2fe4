#!/bin/bash
# t-kill9: switchd kill -9'd at random points of a switch, 100+ times.
#
# Each run sends "switch" (or "back") on the control socket, waits a delay
# drawn from a seeded RNG (0..15 ms: the whole switch takes ~10 ms, so the
# kills land before, during and after it), kill -9s switchd, starts it again
# and checks: state.json parses and its hot pool is the old or the new one;
# every line of history.jsonl parses (no torn line); no intent record is
# left; status, state.json, every HAProxy node's live map and the map file
# on disk all say the same pool is hot.  Part of the runs use two HAProxy
# nodes, and part go through tests/fault_proxy.py holding "commit map" so
# that the kill lands while a commit is in flight (the held commit reaches
# HAProxy after the daemon is dead; a few times the proxy dies too and the
# commit is lost).  One HAProxy setup serves every run; only switchd
# restarts.  At the end an HAProxy reload and restart keep the switched
# state.
#
#   SEED=N   repeat a run's sequence of delays (the seed is printed)
#   RUNS=N   runs per phase are scaled from 100 total (default 100)
. "$(dirname "$0")/../lib.sh"
t_setup

SEED=${SEED:-$(( $(date +%s%N) % 1000000007 ))}
RUNS=${RUNS:-100}
log "seed: $SEED (SEED=$SEED repeats this sequence of kill delays)"

two_pools
start_haproxy h1

# ---------------------------------------------------------------- the helper
# One Python process for the whole test (a Python start costs ~100 ms here,
# 100 of them would be most of the time budget): it fires a request at
# switchd and kill -9s it after an exact delay, draws the random numbers, and
# reads the JSON files.  Line protocol on stdin/stdout.
cat >"$T/k9.py" <<'EOF'
import json, os, random, signal, socket, sys, time

rng = random.Random(int(sys.argv[1]))

def out(*a):
    print(*a, flush=True)

def fire(sock, pid, delay_us, cmd, msg):
    """Send cmd, kill -9 pid delay_us after the request was written, then
    read what the daemon managed to say: the final reply or nothing."""
    args = {"message": msg}
    if cmd == "switch":
        args.update({"force": True, "no_smoke": True})
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock)
    s.sendall((json.dumps({"v": 1, "cmd": cmd, "args": args}) + "\n").encode())
    t0 = time.perf_counter()
    deadline = t0 + delay_us / 1e6
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        if left > 0.002:
            time.sleep(left - 0.001)
    os.kill(pid, signal.SIGKILL)
    elapsed = (time.perf_counter() - t0) * 1e6
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except OSError:
        pass
    s.close()
    final = "none"
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if isinstance(o, dict) and "ok" in o:
            final = "ok" if o["ok"] else "fail:" + str(o.get("code"))
    out("fired %d %s" % (elapsed, final))

def vals(status_path, state_path, hist_path):
    """status hot, status agree, each node's "serves", state.json hot,
    history verdict ("ok N" or "torn LINE")."""
    try:
        st = json.load(open(status_path))
        shot, agree = st["hot"], str(st.get("agree")).lower()
        serves = ",".join(str(n.get("serves")) for n in st["nodes"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        shot, agree, serves = "unparsable", "-", "-"
    try:
        fhot = json.load(open(state_path))["hot"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        fhot = "unparsable"
    hv = "ok 0"
    try:
        n = 0
        for i, line in enumerate(open(hist_path), 1):
            if not line.strip():
                continue
            try:
                o = json.loads(line)
            except ValueError:
                hv = "torn %d" % i
                break
            if not isinstance(o, dict):
                hv = "torn %d" % i
                break
            n += 1
        else:
            hv = "ok %d" % n
    except OSError:
        pass
    out(shot, agree, serves, fhot, hv)

for line in sys.stdin:
    w = line.split()
    if not w:
        continue
    try:
        if w[0] == "draw":            # draw LO HI -> integer in [LO, HI]
            out(rng.randint(int(w[1]), int(w[2])))
        elif w[0] == "fire":          # fire SOCK PID DELAY_US CMD MSG
            fire(w[1], int(w[2]), int(w[3]), w[4], " ".join(w[5:]))
        elif w[0] == "vals":          # vals STATUS STATE HISTORY
            vals(w[1], w[2], w[3])
        else:
            out("error unknown request")
    except Exception as e:            # say it; the test counts it as a failure
        out("error %s: %s" % (type(e).__name__, e))
EOF

coproc K9 { exec "$PYTHON" "$T/k9.py" "$SEED"; }
track "$K9_PID"
K9_IN=${K9[1]}
K9_OUT=${K9[0]}

# k9 REQUEST...: one request to the helper; its answer in $K9R.
K9R=""
k9() {
	echo "$*" >&"$K9_IN"
	if ! read -r -t 15 K9R <&"$K9_OUT"; then
		die "kill helper did not answer \"$*\""
	fi
	case $K9R in error*) _fail "helper: $* -> $K9R" ;; esac
}

# ---------------------------------------------------------------- one run

NODES_NOW="h1"   # the real HAProxy nodes the config reaches (directly or not)
HOLD_MS=0        # commit map held this long by the fault proxies (0: none)
CUT=0; DONE=0; ON_OLD=0; ON_NEW=0; FAILED_REPLY=0; HELD=0; DROPPED=0; RUN=0

# consistent DESC OLD NEW: switchd (just restarted), state.json, history,
# every node and the map file agree; the hot pool is OLD or NEW.
consistent() {
	local d=$1 old=$2 new=$3 n shot agree serves fhot hv hist_n want mt
	ctlj status >"$T/k9.status" 2>"$T/k9.status.err"
	k9 vals "$T/k9.status" "$T/state/state.json" "$T/state/history.jsonl"
	read -r shot agree serves fhot hv hist_n <<<"$K9R"
	expect_match "$d: state.json parses, hot is $old or $new" "$fhot" "^($old|$new)\$"
	expect_eq "$d: history.jsonl has no torn line" "$hv" ok
	expect_eq "$d: status hot = state.json hot" "$shot" "$fhot"
	expect_eq "$d: status says every node agrees" "$agree" true
	want=$(map_text "$shot" "$([ "$shot" = blue ] && echo green || echo blue)")
	for n in $NODES_NOW; do
		expect_eq "$d: $n's map = status (hot $shot)" "$(hap_map "$n")" "$want"
	done
	mt=$(file_map)
	expect_eq "$d: map file = HAProxy's map" "$mt" "$want"
	ok "$d: no intent record left" no_intent
	LAST_HOT=$shot
}

# kill_run LO_US HI_US: a switch or back (one run in three), kill -9 after a
# random delay in [LO_US, HI_US] microseconds; restart; check.
kill_run() {
	local lo=$1 hi=$2 kind=switch old new delay res elapsed final pid
	RUN=$((RUN + 1))
	old=$(hap_map_get h1 "$LIVE_HOST"); old=${old#be_}
	if [ "$old" = blue ]; then new=green; else new=blue; fi
	# "back" needs a recorded switch; otherwise one run in three uses it.
	k9 draw 0 2
	if [ "$K9R" = 0 ] && [ "$RUN" -gt 1 ]; then kind=back; fi
	k9 draw "$lo" "$hi"; delay=$K9R
	pid=$(switchd_pid)
	k9 fire "$T/switchd.sock" "$pid" "$delay" "$kind" "kill9 run $RUN"
	read -r res elapsed final <<<"$K9R"
	kill9_switchd
	case $final in
	ok) DONE=$((DONE + 1)) ;;
	none) CUT=$((CUT + 1)) ;;
	*) FAILED_REPLY=$((FAILED_REPLY + 1)) ;;
	esac
	log "run $RUN: $kind $old->$new, kill after ${delay} us (measured ${elapsed} us), reply before death: $final"
	if [ "$HOLD_MS" -gt 0 ]; then
		# A commit held when the daemon died reaches HAProxy within the
		# hold; wait it out, so that what switchd finds at start is final
		# (the fault proxy may also be killed to lose it: DROP=1).
		if [ -n "${DROP:-}" ]; then
			local f
			for f in $FPS; do stop_pid "$(cat "$T/$f.fpid")"; done
			for f in $FPS; do start_fault_proxy "$f" "${f/fp/h}"; fault_rules "$f" "$RULES"; done
			DROPPED=$((DROPPED + 1))
		else
			# The proxy logs the time a hold starts: wait until the last
			# one has ended, and 300 ms more for HAProxy to take it.
			local last left
			last=$(awk '$2 == "delay" && / commit map/ { t = $1 } END { printf "%.3f", t }' "$T"/fp*.cmdlog 2>/dev/null)
			left=$(awk -v l="$last" -v h="$HOLD_MS" -v now="$(date +%s.%N)" \
				'BEGIN { w = l + h / 1000 + 0.3 - now; printf "%.3f", (w > 0 ? w : 0) }')
			sleep "$left"
		fi
		if [ "$final" = none ] && grep -q 'delay .*commit map' "$T"/fp*.cmdlog 2>/dev/null; then
			HELD=$((HELD + 1))
		fi
		rm -f "$T"/fp*.cmdlog
	fi
	start_switchd
	consistent "run $RUN ($kind, ${delay} us)" "$old" "$new"
	if [ "$LAST_HOT" = "$new" ]; then ON_NEW=$((ON_NEW + 1)); else ON_OLD=$((ON_OLD + 1)); fi
}

# ---------------------------------------------------------------- phases

# Runs per phase out of $RUNS: 40% one node, 30% two nodes, 30% held commits.
P1=$(( RUNS * 40 / 100 )); P2=$(( RUNS * 30 / 100 )); P3=$(( RUNS - P1 - P2 ))

T0=$(now_ms)
write_config
start_switchd
consistent "start" blue green

log "---- phase 1: one HAProxy node, $P1 runs, kills 0..15 ms after the request"
for i in $(seq "$P1"); do
	kill_run 0 15000
done

log "---- phase 2: two HAProxy nodes, $P2 runs, kills 0..20 ms after the request"
stop_switchd
start_haproxy h2        # loads the map file, which is what h1 serves now
NODES_NOW="h1 h2"
HAP_NODES="h1 h2"
write_config
start_switchd
consistent "two nodes" blue green
for i in $(seq "$P2"); do
	kill_run 0 20000
	if [ $((i % 10)) -eq 0 ]; then
		before=$(status_get '["hot"]')
		expect_ok switch --force --no-smoke -m "after kill run $RUN"
		expect_ne "a switch after the kills works" "$(jv "$OUT" '["hot"]')" "$before"
	fi
done

log "---- phase 3: commit map held by fault proxies, $P3 runs"
HOLD_MS=80
RULES='{"delay_ms": 80, "delay_match": "^commit map"}'
stop_switchd
start_fault_proxy fp1 h1
start_fault_proxy fp2 h2
fault_rules fp1 "$RULES"; fault_rules fp2 "$RULES"
# First half: two nodes behind proxies; second half: one (h2 is left out,
# and the start-up reconcile of the next phase brings it back in line).
for i in $(seq "$P3"); do
	if [ "$i" -eq 1 ] || [ "$i" -eq $(( P3 / 2 + 1 )) ]; then
		if [ "$i" -eq 1 ]; then FPS="fp1 fp2"; NODES_NOW="h1 h2"
		else FPS="fp1"; NODES_NOW="h1"
		fi
		HAP_NODES=$FPS
		write_config
		[ -f "$T/switchd.pid" ] && alive "$(switchd_pid)" && stop_switchd
		start_switchd
	fi
	DROP=""
	[ $((i % 6)) -eq 0 ] && DROP=1
	# The switch reaches the first commit after ~10 ms, then waits 80 ms
	# per node: spread the kills over all of it.
	kill_run 0 $(( (HOLD_MS * $(_ports_count "$FPS") + 20) * 1000 ))
done
fault_rules fp1 '{}'; fault_rules fp2 '{}'

log "kills: $RUN runs in $(( ($(now_ms) - T0) / 1000 )) s; $CUT cut mid-switch (no reply), $DONE after the switch was done, $FAILED_REPLY with a failure reply; $HELD with a commit held, $DROPPED with the held commit lost"
log "after the restarts: $ON_NEW runs ended on the new pool (finished), $ON_OLD on the old one (undone or never started)"
ok "every kill run was checked" test "$RUN" -ge "$RUNS"
ok "kills landed both before and after the flip" test "$ON_NEW" -ge 1 -a "$ON_OLD" -ge 1
ok "some kills landed mid-switch (before the reply)" test "$CUT" -ge $(( RUNS / 10 ))
ok "some kills landed after a completed switch" test "$DONE" -ge 1
ok "some kills landed while a commit was held" test "$HELD" -ge $(( P3 / 3 ))
ok "history.jsonl parses (jlines_valid)" jlines_valid "$T/state/history.jsonl"

# ---------------------------------------------------------------- HAProxy reload / restart
log "---- HAProxy reload and restart keep the switched state"
HAP_NODES="h1 h2"; NODES_NOW="h1 h2"
write_config
stop_switchd
start_switchd
consistent "h2 back in the config" blue green
hot=$(status_get '["hot"]')
if [ "$hot" = blue ]; then other=green; else other=blue; fi
expect_ok switch --force --no-smoke -m "before an HAProxy reload"
expect_eq "switched to $other" "$(jv "$OUT" '["hot"]')" "$other"
reload_haproxy h1
expect_eq "after reload (h1): the live host is on $other" "$(via_live h1)" "$other"
expect_eq "after reload (h1): map = map file" "$(hap_map h1)" "$(file_map)"
restart_haproxy h2
expect_eq "after restart (h2): the live host is on $other" "$(via_live h2)" "$other"
expect_eq "after restart (h2): the cold host is on $hot" "$(via_cold h2)" "$hot"
S=$(ctlj status)
expect_eq "status after the reload/restart: every node agrees" "$(jv "$S" '["agree"]')" true
expect_ok back -m "after an HAProxy restart"
restart_haproxy h1
reload_haproxy h2
expect_eq "back, then restart (h1): live host on $hot" "$(via_live h1)" "$hot"
expect_eq "back, then reload (h2): live host on $hot" "$(via_live h2)" "$hot"
# And a kill -9 mid-switch, then an HAProxy restart: the map file that the
# reconcile left is what HAProxy loads.
kill_run 0 15000
restart_haproxy h1
restart_haproxy h2
hot=$(status_get '["hot"]')
expect_eq "kill -9, reconcile, HAProxy restart (h1): serves status's hot" "$(via_live h1)" "$hot"
expect_eq "kill -9, reconcile, HAProxy restart (h2): serves status's hot" "$(via_live h2)" "$hot"

log "total: $(( ($(now_ms) - T0) / 1000 )) s"
t_done
