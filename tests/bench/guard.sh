#!/bin/bash
# tests/bench/guard.sh — guarded release benchmarks (never part of "make
# test"; make bench runs it after run.sh, or by hand: tests/bench/guard.sh).  Everything on 127.0.0.1, in a
# private temp dir, a couple of minutes in all.  Figures are ratios against
# baselines measured in the same run.
#
#   G1  time from the first 5xx of a broken new pool to the automatic back,
#       under wrk load, for guard.interval_ms 200 and 1000: against the
#       interval (goal <= 2x) and a hand-typed "switchctl back" measured now;
#       beside Flagger's default analysis (interval 1m x threshold 10).
#   G2  errors clients see during a full rollout (10,25,50 %, then switch)
#       under wrk, against the same wrk with no rollout (goal: 0 both).
#   G3  the canary frontend rules' cost on HAProxy: wrk against a frontend
#       with the rules and one with the plain use_backend line, backends
#       answering from HAProxy itself (http-request return) so that HAProxy
#       is what is measured; ratio of requests a second.
#
#   SWITCHD, SWITCHCTL   binaries (default: the release build in switchd/)
#   KEEP=1               keep the temp dir
. "$(dirname "$0")/../lib.sh"

t_setup
OUT_DIR=$REPO_DIR/tests/bench/out
mkdir -p "$OUT_DIR"
RES=$OUT_DIR/guard.txt
: >"$RES"
say() { echo "$*" | tee -a "$RES"; }
fx() { awk "BEGIN { print $1 }"; }	# fx EXPR: floating-point arithmetic (no bc here)
ms_of_log() {	# "HH:MM:SS.mmm" -> ms since midnight
	awk -F'[:.]' '{ printf "%d\n", (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }' <<<"$1"
}
now_clock() { date +%H:%M:%S.%3N; }
# auto_back: switchd's log line of the back the guard made.
auto_back() { awk '/guard: 5xx/ { f = 1 } f && /back: blue is hot now/ { print; exit }' "$T/switchd.log"; }

two_pools
use_canary
start_haproxy h1

# ---------------------------------------------------------------- G1
g1() {	# g1 INTERVAL_MS
	local iv=$1 t0 t1 d back_ms line
	write_config "guard = { interval_ms = $iv; min_requests = 20; max_5xx_percent = 5.0; bake = 600; };"
	config_canary
	[ -f "$T/switchd.pid" ] && alive "$(switchd_pid)" && stop_switchd
	rm -rf "$T/state"; mkdir -p "$T/state"
	: >"$T/switchd.log"
	write_map blue green; hap h1 "set map $T/switchd.map $LIVE_HOST be_blue" >/dev/null
	hap h1 "set map $T/switchd.map $COLD_HOST be_green" >/dev/null
	start_switchd
	backend_ctl green reset >/dev/null
	ctl cold-deploy -v v2 --no-deploy >/dev/null || die "cold-deploy"
	# The baseline: a back by hand, then forth again.
	ctl switch --no-smoke --bake 0 >/dev/null || die "switch"
	t0=$(now_ms); ctl back >/dev/null || die "back"; back_ms=$(( $(now_ms) - t0 ))
	ctl switch --no-smoke --force >/dev/null || die "switch"
	wrk_start "$T/wrk-g1.txt" 30 "http://127.0.0.1:$FE_PORT/"
	wait_for 10 eval "[ \$(ctlj status | jget '[\"guard\"][\"responses\"]') -gt 100 ]" || die "no load"
	t0=$(now_clock)
	backend_ctl green 'set?status=500' >/dev/null
	wait_for 30 eval "auto_back | grep -q ." || die "the guard did not go back"
	wrk_stop
	line=$(auto_back)
	t1=${line%% *}
	d=$(( $(ms_of_log "$t1") - $(ms_of_log "$t0") ))
	say "$(printf 'G1  interval_ms %-5d first 5xx -> automatic back %6d ms = %.2f x interval (goal <= 2)   hand-typed back %d ms   Flagger default 600000 ms = %.0f x slower' \
	    "$iv" "$d" "$(fx "$d / $iv")" "$back_ms" "$(fx "600000 / $d")")"
	say "    $(grep -m1 'guard: 5xx' "$T/switchd.log" | cut -d' ' -f3-)"
}
g1 200
g1 1000

# ---------------------------------------------------------------- G2
backend_ctl green reset >/dev/null
write_config "guard = { interval_ms = 200; };"
config_canary
stop_switchd
rm -rf "$T/state"; mkdir -p "$T/state"
hap h1 "set map $T/switchd.map $LIVE_HOST be_blue" >/dev/null
hap h1 "set map $T/switchd.map $COLD_HOST be_green" >/dev/null
start_switchd
ctl cold-deploy -v v3 --no-deploy >/dev/null || die "cold-deploy"
wrk_start "$T/wrk-base.txt" 8 "http://127.0.0.1:$FE_PORT/"
wrk_wait 30
read -r BREQ BBAD BERR < <(wrk_counts "$T/wrk-base.txt")
wrk_start "$T/wrk-ro.txt" 30 "http://127.0.0.1:$FE_PORT/"
t0=$(now_ms)
ctl rollout --steps 10,25,50 --interval 2 -m bench >"$T/ro.txt" 2>&1 || { cat "$T/ro.txt"; die "rollout"; }
ro_ms=$(( $(now_ms) - t0 ))
wrk_stop
read -r RREQ RBAD RERR < <(wrk_counts "$T/wrk-ro.txt")
say "G2  rollout 10,25,50 % (2 s each) + switch under wrk: $RREQ requests, $RBAD non-2xx, $RERR socket errors in $ro_ms ms"
say "    baseline, same wrk with no rollout: $BREQ requests, $BBAD non-2xx, $BERR socket errors   (goal: 0 errors both)"
stop_switchd

# ---------------------------------------------------------------- G3
g3_cfg() {	# g3_cfg NAME PORT canary|plain
	{
		printf 'global\n\tnbthread 2\n\tstats socket %s/%s.sock mode 600 level admin\n' "$T" "$1"
		printf 'defaults\n\tmode http\n\ttimeout connect 1s\n\ttimeout client 5s\n\ttimeout server 5s\n'
		printf 'frontend fe\n\tbind 127.0.0.1:%s\n' "$2"
		if [ "$3" = canary ]; then cat "$T/canary.rules"
		else printf '\tuse_backend %%[req.hdr(host),lower,field(1,:),map(%s/switchd.map,be_blue)]\n' "$T"
		fi
		printf 'backend be_blue\n\thttp-request return status 200 content-type text/plain string blue\n'
		printf 'backend be_green\n\thttp-request return status 200 content-type text/plain string green\n'
	} >"$T/$1.cfg"
	"$HAPROXY" -c -q -f "$T/$1.cfg" || die "g3 config $1"
	"$HAPROXY" -db -f "$T/$1.cfg" </dev/null >>"$T/$1.log" 2>&1 &
	track $!
	wait_for 10 curl -s -o /dev/null "http://127.0.0.1:$2/" || die "g3 haproxy $1"
}
printf '%s be_green:10\n' "$LIVE_HOST" >"$CANARY_MAP"
PP=$(free_port); PC=$(free_port)
g3_cfg g3plain "$PP" plain
g3_cfg g3canary "$PC" canary
rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
wrk1() {	# wrk1 PORT OUT
	"$WRK" -t2 -c50 -d5s -H "Host: $LIVE_HOST" -H "Cookie: switchd_id=u$RANDOM" \
	    "http://127.0.0.1:$1/" >"$2" 2>&1
}
# Alternate, twice, so that a neighbour's burst hits both.
wrk1 "$PP" "$T/p1"; wrk1 "$PC" "$T/c1"; wrk1 "$PC" "$T/c2"; wrk1 "$PP" "$T/p2"
P=$(fx "($(rps "$T/p1") + $(rps "$T/p2")) / 2")
C=$(fx "($(rps "$T/c1") + $(rps "$T/c2")) / 2")
say "$(printf 'G3  HAProxy with the canary rules: %.0f req/s; plain use_backend: %.0f req/s; ratio %.3f (cost %.1f %%)' \
    "$C" "$P" "$(fx "$C / $P")" "$(fx "100 * (1 - $C / $P)")")"

echo "results in $RES"
t_done
