#!/bin/bash
# tests/bench/nodes.sh — a switch across many HAProxy nodes ("make bench";
# never part of "make test").  1, 2, 5, 10 and 20 real haproxy processes on
# 127.0.0.1, each with its own admin socket and frontend port, all routing
# by the map switchd owns; one keep-alive poller (poller.c) per node.  For
# each N, SWITCHES runs of "switchctl switch --force --no-smoke" without
# the pollers, then SWITCHES with them:
#   wall  the command's wall time, median (pollers off: they keep every CPU
#         busy, and would time the scheduler, not switchd);
#   skew  the time between the first and the last node serving the new
#         pool, as the pollers see it (median and max).
# And, at one node, the time to effect of a switch request sent on
# switchd's socket, against the in-process "set map" round trip (setmap.c)
# measured in the same run.
# Ratios against baselines measured in the same run: wall at N against wall
# at 1 node; with BASE_SWITCHD and BASE_SWITCHCTL (binaries of another
# build, e.g. main's), every figure against theirs.  Targets: skew at 20
# nodes <= 2 ms; wall at 20 nodes <= 2x wall at 1 node; time to effect at
# 1 node <= 5x the set map round trip.
# Writes tests/bench/out/nodes.txt and tests/bench/out/nodes.png.
#
#   SWITCHD, SWITCHCTL            binaries measured (default: the release build)
#   BASE_SWITCHD, BASE_SWITCHCTL  binaries to compare with (optional)
#   SWITCHES=N                    switches per N (default 10, even)
#   NODES="1 2 5 10 20"           node counts
#   BENCH_STRICT=1                exit 1 if a target is missed
. "$(dirname "$0")/../lib.sh"

BENCH_DIR=$REPO_DIR/tests/bench
OUT=$BENCH_DIR/out
SWITCHES=${SWITCHES:-10}
NODES=${NODES:-1 2 5 10 20}
mkdir -p "$OUT"
t_setup
: >"$OUT/nodes.txt"
BENCH() { "$PYTHON" "$BENCH_DIR/bench.py" "$@"; }
say() { echo "$*" | tee -a "$OUT/nodes.txt"; }
calc() { awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN { if (a == "-" || b == "-" || (op == "/" && b + 0 == 0)) { print "-"; exit }
	printf "%.2f\n", op == "/" ? a / b : a * b }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "-" && b != "-" && a + 0 <= b + 0) ? "PASS" : "FAIL" }'; }
jv1() { "$PYTHON" -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2], {}).get(sys.argv[3]); print("-" if v is None else ("%.2f" % v if isinstance(v, float) else v))' "$1" "$2" "$3"; }
jf() { "$PYTHON" -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("-" if v is None else ("%.2f" % v if isinstance(v, float) else v))' "$1" "$2"; }

CC=${CC:-cc}
mkdir -p "$T/bin"
$CC -O2 -Wall -Wextra -o "$T/bin/poller" "$BENCH_DIR/poller.c" || die "cannot build poller.c"
$CC -O2 -Wall -Wextra -o "$T/bin/setmap" "$BENCH_DIR/setmap.c" || die "cannot build setmap.c"

# Backends: one HAProxy answering "blue" or "green" itself (no Python in
# the data path).
BLUE_PORTS="$(free_port) $(free_port)"
GREEN_PORTS="$(free_port) $(free_port)"
static_pools_cfg "$T/hb.cfg" "$BLUE_PORTS" "$GREEN_PORTS"
"$HAPROXY" -db -f "$T/hb.cfg" </dev/null >>"$T/hb.log" 2>&1 &
track $!
wait_for 10 test -S "$T/hb.sock" || die "backend haproxy did not start"

# The nodes, all serving blue; nodes beyond a round's N stay untouched.
MAXN=0
for n in $NODES; do [ "$n" -gt "$MAXN" ] && MAXN=$n; done
write_map blue green
for ((i = 1; i <= MAXN; i++)); do start_haproxy "h$i"; done

# round LABEL SWITCHD SWITCHCTL N: SWITCHES switches over nodes h1..hN;
# prints the JSON of bench.py skew.  An even number of switches leaves blue
# hot again, so every round starts where the last one began.
round() {
	local label=$1 n=$4 i pids="" polls=""
	SWITCHD=$2 SWITCHCTL=$3
	HAP_NODES=""
	for ((i = 1; i <= n; i++)); do HAP_NODES="$HAP_NODES h$i"; done
	write_config
	start_switchd
	[ "$(status_get '["hot"]')" = blue ] || die "round $label/$n: blue is not hot at the start"
	# Wall time without the pollers, which keep every CPU busy.
	BENCH flips --n "$SWITCHES" --gap-ms 100 --out "$T/$label-$n.wall" --first green \
		"$SWITCHCTL -s $T/switchd.sock -q switch --force --no-smoke -m bench"
	for ((i = 1; i <= n; i++)); do
		"$T/bin/poller" "$(cat "$T/h$i.port")" "$LIVE_HOST" 600 "$T/$label-$n-h$i.polls" 2>>"$T/poller.log" &
		pids="$pids $!"
		track $!
		polls="$polls $T/$label-$n-h$i.polls"
	done
	sleep 0.5
	BENCH flips --n "$SWITCHES" --gap-ms 200 --out "$T/$label-$n.flips" --first green \
		"$SWITCHCTL -s $T/switchd.sock -q switch --force --no-smoke -m bench"
	sleep 0.2
	for i in $pids; do kill -TERM "$i" 2>/dev/null; wait "$i" 2>/dev/null; untrack "$i"; done
	stop_switchd
	"$PYTHON" -c 'import json, sys; w, s = json.loads(sys.argv[1]), json.loads(sys.argv[2])
s.update({k: w[k] for k in ("wall_median", "wall_max")}); s["failed"] += w["failed"]; s["n"] += w["n"]
print(json.dumps(s))' "$(BENCH skew "$T/$label-$n.wall")" "$(BENCH skew "$T/$label-$n.flips" $polls)"
}

# effect LABEL SWITCHD SWITCHCTL: time to effect at one node, against the
# physical limit measured in the same round: SWITCHES switch requests sent
# on switchd's socket (bench.py rflips: from the request's first byte, no
# shell or switchctl starting), then, with switchd stopped, SWITCHES
# in-process "set map" (setmap.c); one poller on h1 sees each take effect.
# Prints {"switch": effect JSON, "setmap": effect JSON}.  An even number of
# each leaves h1 as it was.
effect() {
	local label=$1 poller
	SWITCHD=$2 SWITCHCTL=$3
	HAP_NODES=h1
	write_config
	start_switchd
	"$T/bin/poller" "$(cat "$T/h1.port")" "$LIVE_HOST" 600 "$T/$label-eff.polls" 2>>"$T/poller.log" &
	poller=$!
	track "$poller"
	sleep 0.5
	BENCH rflips --n "$SWITCHES" --gap-ms 150 --out "$T/$label-eff.flips" --first green "$T/switchd.sock" \
		'{"v":1,"cmd":"switch","args":{"force":true,"no_smoke":true,"message":"bench"}}'
	stop_switchd
	"$T/bin/setmap" "$T/h1.sock" "$MAP" "$LIVE_HOST" be_green be_blue "$SWITCHES" 150 \
		"$T/$label-setmap.raw" || die "setmap: HAProxy reported an error"
	awk '{ sub(/^be_/, "", $3); print $1, $2, $3, 0 }' "$T/$label-setmap.raw" >"$T/$label-setmap.flips"
	sleep 0.2
	kill -TERM "$poller" 2>/dev/null; wait "$poller" 2>/dev/null; untrack "$poller"
	"$PYTHON" -c 'import json, sys; print(json.dumps({"switch": json.loads(sys.argv[1]), "setmap": json.loads(sys.argv[2])}))' \
		"$(BENCH effect "$T/$label-eff.polls" "$T/$label-eff.flips")" \
		"$(BENCH effect "$T/$label-eff.polls" "$T/$label-setmap.flips")"
}

sets="this"
[ -n "${BASE_SWITCHD:-}" ] && [ -n "${BASE_SWITCHCTL:-}" ] && sets="base this"
THIS_SWITCHD=$SWITCHD
THIS_SWITCHCTL=$SWITCHCTL
declare -A R E
for s in $sets; do
	if [ "$s" = base ]; then E[$s]=$(effect base "$BASE_SWITCHD" "$BASE_SWITCHCTL" | tail -n 1)
	else E[$s]=$(effect this "$THIS_SWITCHD" "$THIS_SWITCHCTL" | tail -n 1); fi
	log "$s effect: ${E[$s]}"
done
for n in $NODES; do
	for s in $sets; do
		if [ "$s" = base ]; then R[$s,$n]=$(round base "$BASE_SWITCHD" "$BASE_SWITCHCTL" "$n" | tail -n 1)
		else R[$s,$n]=$(round this "$THIS_SWITCHD" "$THIS_SWITCHCTL" "$n" | tail -n 1); fi
		log "$s N=$n: ${R[$s,$n]}"
	done
done

say "switchd: many HAProxy nodes — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $("$HAPROXY" -v | head -n 1 | cut -d' ' -f1-3)"
say "2 x $SWITCHES switchctl switch --force --no-smoke per N: wall without pollers, skew (first to last node serving the new pool) with one poller a node"
say "this: $THIS_SWITCHD"
[ "$sets" != this ] && say "base: $BASE_SWITCHD"
say ""
hdr=$(printf '%-5s %-4s %10s %10s %12s %10s %10s %7s' SET N "WALL ms" "WALL max" "WALL/N=1" "SKEW ms" "SKEW max" FAILED)
[ "$sets" != this ] && hdr="$hdr$(printf ' %10s %10s' "WALL/base" "SKEW/base")"
say "$hdr"
: >"$T/nodes.dat"
first=${NODES%% *}
for s in $sets; do
	for n in $NODES; do
		r=${R[$s,$n]}
		w=$(jf "$r" wall_median); w1=$(jf "${R[$s,$first]}" wall_median)
		line=$(printf '%-5s %-4s %10s %10s %11sx %10s %10s %7s' "$s" "$n" "$w" "$(jf "$r" wall_max)" \
			"$(calc "$w" / "$w1")" "$(jf "$r" skew_median)" "$(jf "$r" skew_max)" \
			"$(jf "$r" failed)/$(jf "$r" n)")
		if [ "$sets" != this ]; then
			b=${R[base,$n]}
			line="$line$(printf ' %9sx %9sx' "$(calc "$w" / "$(jf "$b" wall_median)")" \
				"$(calc "$(jf "$r" skew_median)" / "$(jf "$b" skew_median)")")"
		fi
		say "$line"
		echo "$s $n $w $(jf "$r" skew_median) $(jf "$r" skew_max)" >>"$T/nodes.dat"
	done
done
last=${NODES##* }
r=${R[this,$last]}
say ""
say "target: skew at $last nodes <= 2 ms: $(jf "$r" skew_median) ms (median), $(jf "$r" skew_max) ms (max): $(le "$(jf "$r" skew_median)" 2)"
lim=$(calc "$(jf "${R[this,$first]}" wall_median)" '*' 2)
say "target: wall at $last nodes <= 2x wall at $first: $(jf "$r" wall_median) ms <= $lim ms: $(le "$(jf "$r" wall_median)" "$lim")"
say ""
say "time to effect at 1 node: a switch request on switchd's socket (from its first byte) until a poller on the node sees the new pool,"
say "against the in-process \"set map\" round trip (tests/bench/setmap.c: connect, command, answer) measured in the same round; $SWITCHES each, median (p99)"
for s in $sets; do
	e=${E[$s]}
	ee=$(jv1 "$e" switch effect_median); rt=$(jv1 "$e" setmap wall_median)
	say "$(printf '%-5s switch effect %s ms (%s); switch reply %s ms; set map round trip %s ms (%s), effect %s ms; effect / round trip %sx' \
		"$s" "$ee" "$(jv1 "$e" switch effect_p99)" "$(jv1 "$e" switch wall_median)" "$rt" "$(jv1 "$e" setmap wall_p99)" \
		"$(jv1 "$e" setmap effect_median)" "$(calc "$ee" / "$rt")")"
done
e=${E[this]}
lim=$(calc "$(jv1 "$e" setmap wall_median)" '*' 5)
say "target: time to effect at 1 node <= 5x the set map round trip: $(jv1 "$e" switch effect_median) ms <= $lim ms: $(le "$(jv1 "$e" switch effect_median)" "$lim")"

cat >"$T/nodes.gp" <<EOF
set terminal pngcairo size 1200,500 font "sans,10"
set output "$OUT/nodes.png"
set multiplot layout 1,2 title "switchctl switch --force --no-smoke across N HAProxy nodes (median of $SWITCHES)"
set xlabel "HAProxy nodes"
set logscale x
set xrange [0.8:$(( MAXN * 5 / 4 + 1 ))]
set yrange [0:*]
set xtics ($(echo "$NODES" | sed 's/ /, /g'))
set key top left
set grid
set ylabel "wall time, ms"
plot for [s in "$sets"] "< grep '^".s." ' $T/nodes.dat" using 2:3 with linespoints title s
set ylabel "skew first to last node, ms"
plot for [s in "$sets"] "< grep '^".s." ' $T/nodes.dat" using 2:4 with linespoints title s." median", \\
     for [s in "$sets"] "< grep '^".s." ' $T/nodes.dat" using 2:5 with points title s." max", \\
     2 with lines dt 2 lc rgb "#888888" title "target 2 ms"
unset multiplot
EOF
gnuplot "$T/nodes.gp" 2>>"$T/gnuplot.log" && say "plot: tests/bench/out/nodes.png" || say "plot: gnuplot failed (see KEEP=1 $T/gnuplot.log)"
say "table: tests/bench/out/nodes.txt"
if [ -n "${BENCH_STRICT:-}" ] && grep -q ': FAIL$' "$OUT/nodes.txt"; then exit 1; fi
exit 0
