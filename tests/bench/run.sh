#!/bin/bash
# tests/bench/run.sh — switchd's benchmarks ("make bench"; never part of
# "make test").  Everything on 127.0.0.1, in a private temp dir, bounded in
# time (a few minutes in all).  Prints a table of absolute figures, ratios
# against baselines measured in the same run, and PASS/FAIL against the
# targets; writes it to tests/bench/out/results.txt, and draws which pool
# answered each request during flips in tests/bench/out/flips.png.
#
#   P1  switchctl switch --no-smoke x100: wall time and time to effect (seen
#       by a keep-alive poller through HAProxy), against (a) the socat
#       one-liner "set map", (b) one in-process "set map" round trip (the
#       physical limit), (c) haproxy.mode "reload" (n/a if switchd -n
#       refuses it).  Targets: effect <= the one-liner's, wall <= 3x the
#       one-liner's, reload >= 10x slower than runtime.
#   P2  wrk through HAProxy during 100 flips: non-2xx and socket errors
#       (target 0); through nginx TLS in front when nginx/tls-front.conf
#       exists; beside them, reported only, HAProxy's reload mode and the
#       nginx driver (each flip a reload).
#   P4  switch time with 1000 servers a pool vs 2 (target <= 1.2x), status
#       latency at 1000 servers.
#   P5  switchd's RSS idle and after 10,000 commands; idle wakeups a
#       second (target 0).
#   S   smoke: 50 cold servers x 5 checks, each answer taking 200 ms: the
#       whole run <= 1.5x one check's latency.
#
#   SWITCHD, SWITCHCTL   binaries (default: the release build in switchd/)
#   FLIPS=N              flips per P1/P2 method (default 100)
#   BENCH_STRICT=1       exit 1 if a target is missed
#   KEEP=1               keep the temp dir (raw data)
. "$(dirname "$0")/../lib.sh"

BENCH_DIR=$REPO_DIR/tests/bench
OUT=$BENCH_DIR/out
FLIPS=${FLIPS:-100}
mkdir -p "$OUT"
t_setup
: >"$OUT/results.txt"
BENCH_T0=$(now_ms)

# ---------------------------------------------------------------- output

NPASS=0
NFAIL=0
# row ID WHAT VALUE [BASELINE RATIO TARGET VERDICT]: one line of the table.
row() {
	local line
	line=$(printf '%-4s %-46s %14s  %-26s %-8s %-10s %s' "$1" "$2" "$3" "${4:-}" "${5:-}" \
		"${6:-}" "${7:-}")
	echo "$line" | tee -a "$OUT/results.txt"
	case ${7:-} in PASS) NPASS=$((NPASS + 1)) ;; FAIL) NFAIL=$((NFAIL + 1)) ;; esac
}
note() { echo "     $*" | tee -a "$OUT/results.txt"; }
section() { printf '\n%s\n' "$*" | tee -a "$OUT/results.txt"; }

# verdict OK: PASS or FAIL.
verdict() { if [ "$1" = 1 ]; then echo PASS; else echo FAIL; fi; }
# calc A OP B: A OP B (floats, 2 decimals); "-" if an operand is missing.
calc() {
	set -- $*
	if [ $# -ne 3 ] || [ "$1" = - ] || [ "$3" = - ]; then echo -; return; fi
	awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
		if (op == "/") { if (b + 0 == 0) { print "-"; exit } r = a / b }
		else if (op == "*") r = a * b; else if (op == "-") r = a - b; else r = a + b
		printf "%.2f\n", r }'
}
# le A B: 1 if A <= B (floats)
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "-" && b != "-" && a + 0 <= b + 0) ? 1 : 0 }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "-" && b != "-" && a + 0 >= b + 0) ? 1 : 0 }'; }
# jf JSON KEY: a number from bench.py's JSON, 2 decimals, or "-".
jf() { "$PYTHON" -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("-" if v is None else ("%.2f" % v if isinstance(v, float) else v))' "$1" "$2"; }

BENCH() { "$PYTHON" "$BENCH_DIR/bench.py" "$@"; }

# ---------------------------------------------------------------- tools
CC=${CC:-cc}
mkdir -p "$T/bin"
$CC -O2 -Wall -Wextra -o "$T/bin/poller" "$BENCH_DIR/poller.c" || die "cannot build poller.c"
$CC -O2 -Wall -Wextra -o "$T/bin/setmap" "$BENCH_DIR/setmap.c" || die "cannot build setmap.c"

# ---------------------------------------------------------------- backends
# Static backends: one HAProxy answering "blue" or "green" itself on a few
# ports (no Python in the data path: the poller and wrk measure HAProxy and
# switchd, not the backends).
BPORTS="$(free_port) $(free_port)"
GPORTS="$(free_port) $(free_port)"
static_pools_cfg "$T/hb.cfg" "$BPORTS" "$GPORTS"

# hap_start NAME [ARGS...]: haproxy -db -f $T/NAME.cfg, tracked; waits for
# its admin socket $T/NAME.sock.
hap_start() {
	local name=$1; shift
	"$HAPROXY" -c -q -f "$T/$name.cfg" >>"$T/$name.log" 2>&1 || { cat "$T/$name.log"; die "haproxy $name: bad config"; }
	"$HAPROXY" -db -f "$T/$name.cfg" "$@" </dev/null >>"$T/$name.log" 2>&1 &
	local pid=$!
	track "$pid"
	echo "$pid" >"$T/$name.hpid"
	wait_for 10 eval "echo 'show info' | socat - UNIX-CONNECT:$T/$name.sock | grep -q '^Pid:'" \
		|| { tail "$T/$name.log"; die "haproxy $name did not start"; }
}
hap_stop() { [ -f "$T/$1.hpid" ] && stop_pid "$(cat "$T/$1.hpid")"; rm -f "$T/$1.hpid"; }

hap_start hb

# Front HAProxy h1 (tests/lib.sh's config: routes by the map switchd owns).
BLUE_PORTS=$BPORTS
GREEN_PORTS=$GPORTS
write_map blue green
start_haproxy h1
write_config
start_switchd
ctl -q cold-deploy --no-deploy -m "bench: verify the cold pool" >/dev/null || die "cold-deploy failed"

log "switchd: $SWITCHD"
section "switchd benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $("$HAPROXY" -v | head -n 1 | cut -d' ' -f1-3)"
printf '%-4s %-46s %14s  %-26s %-8s %-10s %s\n' ID FIGURE VALUE BASELINE RATIO TARGET VERDICT \
	| tee -a "$OUT/results.txt"

# ---------------------------------------------------------------- P1
section "P1  flip time: switchd (runtime API) vs socat one-liner vs in-process set map vs reload mode"
POLL_SECS=$(( FLIPS * 3 * 220 / 1000 + 60 ))
"$T/bin/poller" "$FE_PORT" "$LIVE_HOST" "$POLL_SECS" "$T/p1.polls" 2>>"$T/poller.log" &
POLLER=$!
track "$POLLER"
sleep 0.5

hot=$(status_get '["hot"]')
BENCH flips --n "$FLIPS" --gap-ms 150 --out "$T/p1-switchd.flips" --first "$([ "$hot" = blue ] && echo green || echo blue)" \
	"$SWITCHCTL -s $T/switchd.sock -q switch --no-smoke -m bench"
stop_switchd
now=$(hap_map_get h1 "$LIVE_HOST"); now=${now#be_}
next=$([ "$now" = blue ] && echo green || echo blue)
BENCH flips --n "$FLIPS" --gap-ms 150 --out "$T/p1-socat.flips" --first "$next" \
	"echo 'set map $T/switchd.map $LIVE_HOST be_$next' | socat stdio unix:$T/h1.sock" \
	"echo 'set map $T/switchd.map $LIVE_HOST be_$now' | socat stdio unix:$T/h1.sock"
now=$(hap_map_get h1 "$LIVE_HOST"); now=${now#be_}
next=$([ "$now" = blue ] && echo green || echo blue)
"$T/bin/setmap" "$T/h1.sock" "$T/switchd.map" "$LIVE_HOST" "be_$next" "be_$now" "$FLIPS" 150 \
	"$T/p1-setmap.raw" || note "setmap: HAProxy reported an error"
awk '{ sub(/^be_/, "", $3); print $1, $2, $3, 0 }' "$T/p1-setmap.raw" >"$T/p1-setmap.flips"
sleep 0.3
kill -TERM "$POLLER" 2>/dev/null
wait "$POLLER" 2>/dev/null
untrack "$POLLER"

SW=$(BENCH effect "$T/p1.polls" "$T/p1-switchd.flips")
SO=$(BENCH effect "$T/p1.polls" "$T/p1-socat.flips")
SM=$(BENCH effect "$T/p1.polls" "$T/p1-setmap.flips")
echo "$SW" >"$T/p1-switchd.json"; echo "$SO" >"$T/p1-socat.json"; echo "$SM" >"$T/p1-setmap.json"

sw_w=$(jf "$SW" wall_median); sw_w99=$(jf "$SW" wall_p99)
sw_e=$(jf "$SW" effect_median); sw_e99=$(jf "$SW" effect_p99)
so_w=$(jf "$SO" wall_median); so_w99=$(jf "$SO" wall_p99)
so_e=$(jf "$SO" effect_median); so_e99=$(jf "$SO" effect_p99)
sm_w=$(jf "$SM" wall_median); sm_w99=$(jf "$SM" wall_p99)
sm_e=$(jf "$SM" effect_median); sm_e99=$(jf "$SM" effect_p99)

row P1 "switchctl switch --no-smoke: wall, median" "${sw_w} ms" "one-liner ${so_w} ms" "$(calc "$sw_w / $so_w")x" "<= 3x" \
	"$(verdict "$(le "$(calc "$sw_w / $so_w")" 3)")"
row P1 "switchctl switch --no-smoke: wall, p99" "${sw_w99} ms" "one-liner ${so_w99} ms" "$(calc "$sw_w99 / $so_w99")x"
row P1 "switchctl switch: time to effect, median" "${sw_e} ms" "one-liner ${so_e} ms" "$(calc "$sw_e / $so_e")x" "<= 1x" \
	"$(verdict "$(le "$sw_e" "$so_e")")"
row P1 "switchctl switch: time to effect, p99" "${sw_e99} ms" "one-liner ${so_e99} ms" "$(calc "$sw_e99 / $so_e99")x"
row P1 "(a) socat one-liner: wall, median / p99" "${so_w} / ${so_w99} ms"
row P1 "(a) socat one-liner: effect, median / p99" "${so_e} / ${so_e99} ms"
row P1 "(b) in-process set map: round trip, med/p99" "${sm_w} / ${sm_w99} ms" "" "" "" "physical limit"
row P1 "(b) in-process set map: effect, median / p99" "${sm_e} / ${sm_e99} ms"
row P1 "switchd wall / in-process round trip" "$(calc "$sw_w / $sm_w")x"
note "flips: $FLIPS each, 150 ms apart; failed commands: switchd $(jf "$SW" failed), socat $(jf "$SO" failed);" \
	"flips the poller never saw: $(jf "$SW" unseen) / $(jf "$SO" unseen) / $(jf "$SM" unseen)"
note "poller: $(wc -l <"$T/p1.polls") responses over P1 (keep-alive GET / Host: $LIVE_HOST on HAProxy);" \
	"errors while flipping: switchd $(jf "$SW" poll_errors), socat $(jf "$SO" poll_errors), set map $(jf "$SM" poll_errors)"
note "commands: $SWITCHCTL -s SOCK -q switch --no-smoke | echo 'set map MAP $LIVE_HOST be_X' | socat stdio unix:SOCK | tests/bench/setmap.c"

# The plot: which pool answered each request during the first switchd flips.
BENCH window "$T/p1.polls" "$T/p1-switchd.flips" 2 6 "$T/flips.dat" "$T/flips.starts"
# The zoom: the third flip, from 2 ms before the command to 4 ms after it.
read -r zs ze _ <<<"$(sed -n 3p "$T/flips.starts")"
cat >"$T/flips.gp" <<EOF
set terminal pngcairo size 1400,900 font "sans,10"
set output "$OUT/flips.png"
set multiplot layout 2,1 title "Which pool answered each request of a keep-alive poller through HAProxy, during switchctl switch --no-smoke"
set xlabel "ms"
set ytics ("error" 0, "blue" 1, "green" 2)
set yrange [-0.5:2.5]
set key outside below
set style fill transparent solid 0.15 noborder
set title "6 flips, 150 ms apart (grey: switchctl running, start to exit)"
plot "$T/flips.starts" using 1:(-0.5):(\$2-\$1):(3) with boxxyerror lc rgb "#888888" title "switchctl running", \\
     "$T/flips.dat" using 1:(\$2 == 1 ? \$2 : 1/0) with points pt 7 ps 0.3 lc rgb "#1f5fd0" title "blue answered", \\
     "$T/flips.dat" using 1:(\$2 == 2 ? \$2 : 1/0) with points pt 7 ps 0.3 lc rgb "#1a9a3a" title "green answered", \\
     "$T/flips.dat" using 1:(\$2 == 0 ? \$2 : 1/0) with points pt 7 ps 0.6 lc rgb "#d02020" title "error"
set title "zoom on the third flip: every response"
set xrange [$zs - 2:$ze + 4]
plot "$T/flips.starts" using 1:(-0.5):(\$2-\$1):(3) with boxxyerror lc rgb "#888888" title "switchctl running", \\
     "$T/flips.dat" using 1:(\$2 == 1 ? \$2 : 1/0) with points pt 7 ps 0.8 lc rgb "#1f5fd0" title "blue answered", \\
     "$T/flips.dat" using 1:(\$2 == 2 ? \$2 : 1/0) with points pt 7 ps 0.8 lc rgb "#1a9a3a" title "green answered", \\
     "$T/flips.dat" using 1:(\$2 == 0 ? \$2 : 1/0) with points pt 7 ps 1 lc rgb "#d02020" title "error"
unset multiplot
EOF
if gnuplot "$T/flips.gp" 2>"$T/gnuplot.err"; then
	note "plot: tests/bench/out/flips.png"
else
	sed 's/^/     gnuplot: /' "$T/gnuplot.err" | head -5
fi

# ---- (c) reload mode
start_switchd
cat >"$T/reload.conf" <<EOF
control = { socket = "$T/sr.sock"; mode = 0600; };
state_dir = "$T/state-r";
hosts = { live = "$LIVE_HOST"; cold = "$COLD_HOST"; };
pools = {
  blue = { backend = "be_blue"; servers = ( $(_servers_conf b "$BPORTS") ); };
  green = { backend = "be_green"; servers = ( $(_servers_conf g "$GPORTS") ); };
};
haproxy = {
  mode = "reload";
  master_socket = "$T/hr-master.sock";
  config = "$T/hr.cfg";
  binary = "$HAPROXY";
  sockets = ( "$T/hr.sock" );
  map = "$T/hr.map";
};
EOF
if ! "$SWITCHD" -n -f "$T/reload.conf" >"$T/reload-n.out" 2>&1; then
	row P1 "(c) reload mode: wall / effect" "n/a" "" "" ">= 10x" "n/a"
	note "reload mode: switchd -n refuses it here: $(head -n 1 "$T/reload-n.out")"
else
	RPORT=$(free_port)
	printf '%s be_blue\n%s be_green\n' "$LIVE_HOST" "$COLD_HOST" >"$T/hr.map"
	sed -e "s|$T/h1.sock|$T/hr.sock|; s|$T/h1.pid|$T/hr.pid|; s|$T/switchd.map|$T/hr.map|" \
	    -e "s|bind 127.0.0.1:$FE_PORT|bind 127.0.0.1:$RPORT|" "$T/h1.cfg" \
	    | awk '{ print } /^global/ { print "\tmaster-worker"; print "\thard-stop-after 5s" }' >"$T/hr.cfg"
	"$HAPROXY" -W -db -S "$T/hr-master.sock" -f "$T/hr.cfg" </dev/null >>"$T/hr.log" 2>&1 &
	HR=$!
	track "$HR"
	wait_for 10 eval "echo 'show info' | socat - UNIX-CONNECT:$T/hr.sock | grep -q '^Pid:'" || note "reload-mode HAProxy did not start"
	"$SWITCHD" -d -f "$T/reload.conf" </dev/null >>"$T/switchd-r.log" 2>&1 &
	SR=$!
	track "$SR"
	wait_for 10 "$SWITCHCTL" -s "$T/sr.sock" status || note "reload-mode switchd did not answer"
	RN=$(( FLIPS / 5 )); [ "$RN" -lt 5 ] && RN=5
	"$T/bin/poller" "$RPORT" "$LIVE_HOST" $(( RN * 4 + 30 )) "$T/p1r.polls" 2>>"$T/poller.log" &
	POLLER=$!
	track "$POLLER"
	sleep 0.5
	BENCH flips --n "$RN" --gap-ms 500 --out "$T/p1-reload.flips" --first green \
		"$SWITCHCTL -s $T/sr.sock -q switch --force --no-smoke -m bench"
	sleep 0.5
	kill -TERM "$POLLER" 2>/dev/null; wait "$POLLER" 2>/dev/null; untrack "$POLLER"
	RL=$(BENCH effect "$T/p1r.polls" "$T/p1-reload.flips")
	rl_w=$(jf "$RL" wall_median); rl_e=$(jf "$RL" effect_median)
	if [ "$(jf "$RL" failed)" != 0 ]; then
		row P1 "(c) reload mode: wall, median" "${rl_w} ms" "" "" ">= 10x" "n/a"
		note "reload mode: $(jf "$RL" failed) of $RN switches failed; see $T/switchd-r.log (KEEP=1)"
		tail -n 5 "$T/switchd-r.log" | sed 's/^/     /'
	else
		row P1 "(c) reload mode: wall, median / p99" "${rl_w} / $(jf "$RL" wall_p99) ms" "runtime ${sw_w} ms" \
			"$(calc "$rl_w / $sw_w")x" ">= 10x" "$(verdict "$(ge "$(calc "$rl_w / $sw_w")" 10)")"
		row P1 "(c) reload mode: effect, median / p99" "${rl_e} / $(jf "$RL" effect_p99) ms" "runtime ${sw_e} ms" \
			"$(calc "$rl_e / $sw_e")x"
		note "reload mode: $RN flips 500 ms apart; poller errors $(jf "$RL" poll_errors) of $(jf "$RL" poll_responses) responses"
	fi
	RELOAD_UP=1	# HR and SR stay for P2
fi

# ---------------------------------------------------------------- P2
section "P2  wrk during $FLIPS flips (2 threads, 32 keep-alive connections): runtime API (target 0), reload modes (reported)"
# wrk_flips NAME URL [SOCK [FLIP_MS [TARGET]]]: wrk for the length of $FLIPS
# switches 80 ms apart through switchd on SOCK, each taking about FLIP_MS
# (30 for the runtime API); TARGET "0" (asserted) or "-" (reported only).
wrk_flips() {
	local name=$1 url=$2 sock=${3:-$T/switchd.sock} flip_ms=${4:-30} target=${5:-0} secs
	secs=$(( FLIPS * (80 + flip_ms) / 1000 + 4 ))
	wrk -t2 -c32 -d"${secs}s" --timeout 3s --latency -H "Host: $LIVE_HOST" "$url" \
		>"$T/wrk-$name.out" 2>&1 &
	local w=$!
	track "$w"
	sleep 1
	BENCH flips --n "$FLIPS" --gap-ms 80 --out "$T/p2-$name.flips" --first green \
		"$SWITCHCTL -s $sock -q switch --force --no-smoke -m bench"
	wait "$w"
	untrack "$w"
	local reqs non2xx serr failed
	reqs=$(awk '/requests in/ { print $1 }' "$T/wrk-$name.out")
	non2xx=$(awk -F': ' '/Non-2xx/ { print $2 }' "$T/wrk-$name.out"); non2xx=${non2xx:-0}
	serr=$(awk '/Socket errors/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$T/wrk-$name.out"); serr=${serr:-0}
	failed=$(awk '$4 != 0' "$T/p2-$name.flips" | wc -l)
	row P2 "$name: requests during the flips" "${reqs:-?}"
	if [ "$target" = 0 ]; then
		row P2 "$name: non-2xx responses" "$non2xx" "" "" "0" "$(verdict "$([ "$non2xx" = 0 ] && echo 1)")"
		row P2 "$name: socket errors (connect/read/write/timeout)" "$serr" "" "" "0" "$(verdict "$([ "$serr" = 0 ] && echo 1)")"
	else
		row P2 "$name: non-2xx responses" "$non2xx" "" "" "reported"
		row P2 "$name: socket errors (connect/read/write/timeout)" "$serr" "" "" "reported"
	fi
	note "$name: $(grep -E 'Latency +[0-9]' "$T/wrk-$name.out" | awk '{ print "latency avg " $2 ", max " $4 }');" \
		"$(grep -E '^ +99%' "$T/wrk-$name.out" | awk '{ print "p99 " $2 }'); switches that failed: $failed;" \
		"$(grep -E 'Requests/sec' "$T/wrk-$name.out" | tr -s ' ')"
	note "command: wrk -t2 -c32 -d${secs}s --latency -H 'Host: $LIVE_HOST' $url"
}
if command -v wrk >/dev/null; then
	wrk_flips runtime "http://127.0.0.1:$FE_PORT/"
	if [ -f "$REPO_DIR/nginx/tls-front.conf" ] && command -v nginx >/dev/null && command -v openssl >/dev/null; then
		# The shipped example, with this run's port, certificate and HAProxy.
		NG=$T/nginx
		NGPORT=$(free_port)
		make_certs "$NG/tls"
		nginx_conf "$NG" "$(tls_front_conf "$NGPORT" "$FE_PORT" "$NG/tls")"
		start_nginx "$NG"
		wrk_flips "nginx-tls" "https://127.0.0.1:$NGPORT/"
		stop_nginx "$NG"
	else
		row P2 "nginx TLS in front: errors during flips" "n/a"
		note "no nginx/tls-front.conf (or no nginx/openssl): skipped"
	fi
	# The reload modes: figures reported beside the runtime mode's, not
	# asserted (a reload is not a runtime change).
	if [ -n "${RELOAD_UP:-}" ]; then
		wrk_flips "reload" "http://127.0.0.1:$RPORT/" "$T/sr.sock" 250 -
	else
		row P2 "reload: errors during flips" "n/a"
	fi
	if command -v nginx >/dev/null; then
		# The nginx driver: nginx in front of the pools, no HAProxy.
		NPORT=$(free_port)
		ND=$T/ngdrv
		nginx_conf "$ND" "$(sed -e "s|listen 80;|listen 127.0.0.1:$NPORT;|" \
			-e "s|/etc/nginx/switchd-upstreams.conf|$ND/switchd-upstreams.conf|" \
			"$REPO_DIR/nginx/switchd-driver.conf")"
		LB_BACKENDS=none write_lb_config "nginx = {
  include = \"$ND/switchd-upstreams.conf\"; config = \"$ND/nginx.conf\"; prefix = \"$ND\";
  binary = \"$(command -v nginx)\"; pid_file = \"$ND/nginx.pid\";
  check_url = \"http://127.0.0.1:$NPORT/switchd-upstream\"; timeout_ms = 5000;
};" "" "$T/ngdrv.conf"
		sed -i -e "s|$T/switchd.sock|$T/sn.sock|" -e "s|state_dir = \"$T/state\"|state_dir = \"$T/state-n\"|" "$T/ngdrv.conf"
		"$SWITCHD" -d -f "$T/ngdrv.conf" </dev/null >>"$T/switchd-n.log" 2>&1 &
		SN=$!
		track "$SN"
		if wait_for 10 test -s "$ND/switchd-upstreams.conf" && start_nginx "$ND"; then
			wrk_flips "nginx-driver" "http://127.0.0.1:$NPORT/" "$T/sn.sock" 250 -
			stop_nginx "$ND"
		else
			row P2 "nginx-driver: errors during flips" "n/a"
			note "nginx driver: switchd or nginx did not start; see $T/switchd-n.log (KEEP=1)"
		fi
		stop_pid "$SN"
	fi
else
	row P2 "wrk during flips" "n/a (no wrk)"
fi
if [ -n "${RELOAD_UP:-}" ]; then
	stop_pid "$SR"
	stop_pid "$HR"
fi

# ---------------------------------------------------------------- P4
section "P4  1000 servers a pool vs 2 (no health checks): switch and status time"
stop_switchd
# p4_setup N: HAProxy p4 with N servers a pool on the static ports, the
# switchd config listing them, switchd running.
p4_setup() {
	local n=$1 i pool
	local -a ports
	hap_stop p4
	{
		printf 'global\n\tstats socket %s/p4.sock mode 600 level admin\n\tnbthread 2\n' "$T"
		printf 'defaults\n\tmode http\n\ttimeout connect 1s\n\ttimeout client 5s\n\ttimeout server 5s\n'
		printf 'frontend fe_http\n\tbind 127.0.0.1:%s\n' "$P4PORT"
		printf '\tuse_backend %%[req.hdr(host),lower,field(1,:),map(%s/switchd.map,be_blue)]\n' "$T"
		for pool in blue green; do
			if [ "$pool" = blue ]; then read -r -a ports <<<"$BPORTS"; else read -r -a ports <<<"$GPORTS"; fi
			printf 'backend be_%s\n\tbalance roundrobin\n' "$pool"
			for ((i = 1; i <= n; i++)); do
				printf '\tserver %s%d 127.0.0.1:%s\n' "${pool:0:1}" "$i" "${ports[(i - 1) % ${#ports[@]}]}"
			done
		done
	} >"$T/p4.cfg"
	{
		printf 'control = { socket = "%s/switchd.sock"; mode = 0666; };\nstate_dir = "%s/state-p4-%s";\n' "$T" "$T" "$n"
		printf 'hosts = { live = "%s"; cold = "%s"; };\npools = {\n' "$LIVE_HOST" "$COLD_HOST"
		for pool in blue green; do
			if [ "$pool" = blue ]; then read -r -a ports <<<"$BPORTS"; else read -r -a ports <<<"$GPORTS"; fi
			printf '  %s = { backend = "be_%s"; servers = (' "$pool" "$pool"
			for ((i = 1; i <= n; i++)); do
				printf '%s{ name = "%s%d"; address = "127.0.0.1:%s"; }' "$([ "$i" = 1 ] || echo ', ')" \
					"${pool:0:1}" "$i" "${ports[(i - 1) % ${#ports[@]}]}"
			done
			printf ' ); };\n'
		done
		printf '};\nhaproxy = { sockets = ( "%s/p4.sock" ); map = "%s/switchd.map"; };\n' "$T" "$T"
	} >"$T/switchd.conf"
	hap_start p4
	start_switchd
}
P4PORT=$(free_port)
p4_setup 2
read -r s2_med s2_p99 s2_bad <<<"$(BENCH times --n 20 --gap-ms 50 "$SWITCHCTL -s $T/switchd.sock -q switch --force --no-smoke")"
read -r st2_med st2_p99 st2_bad <<<"$(BENCH times --n 20 "$SWITCHCTL -s $T/switchd.sock --json status")"
stop_switchd
p4_setup 1000
read -r s1k_med s1k_p99 s1k_bad <<<"$(BENCH times --n 20 --gap-ms 50 "$SWITCHCTL -s $T/switchd.sock -q switch --force --no-smoke")"
read -r st1k_med st1k_p99 st1k_bad <<<"$(BENCH times --n 20 "$SWITCHCTL -s $T/switchd.sock --json status")"
nsrv=$(ctlj status | jget 'len(d["pools"]["blue"]["servers"]) + len(d["pools"]["green"]["servers"])')
stop_switchd
hap_stop p4
row P4 "switch, 1000 servers a pool: wall, median" "${s1k_med} ms" "2 servers ${s2_med} ms" "$(calc "$s1k_med / $s2_med")x" \
	"<= 1.2x" "$(verdict "$(le "$(calc "$s1k_med / $s2_med")" 1.2)")"
row P4 "switch, 1000 servers a pool: wall, p99" "${s1k_p99} ms" "2 servers ${s2_p99} ms" "$(calc "$s1k_p99 / $s2_p99")x"
row P4 "status --json, 1000 servers a pool: median" "${st1k_med} ms" "2 servers ${st2_med} ms" "$(calc "$st1k_med / $st2_med")x"
row P4 "status --json, 1000 servers a pool: p99" "${st1k_p99} ms" "2 servers ${st2_p99} ms"
note "20 runs each; failures: switch $s2_bad/$s1k_bad, status $st2_bad/$st1k_bad; status listed $nsrv servers at 1000 a pool"
note "commands: switchctl switch --force --no-smoke; switchctl --json status"

# ---------------------------------------------------------------- P5
section "P5  switchd memory and idle wakeups (release build)"
write_config
start_switchd
PID=$(switchd_pid)
sleep 1
rss0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status")
fd0=$(ls "/proc/$PID/fd" | wc -l)
load=$(BENCH load 10000 "$T/switchd.sock" 2>"$T/load.err")
sleep 1
rss1=$(awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status")
fd1=$(ls "/proc/$PID/fd" | wc -l)
row P5 "RSS idle" "${rss0} kB"
row P5 "RSS after 10,000 commands" "${rss1} kB" "idle ${rss0} kB" "$(calc "$rss1 / $rss0")x"
row P5 "10,000 commands (fresh connection each)" "$load" "" "" "0 failed" "$(verdict "$(echo "$load" | grep -q 'failed 0 ' && echo 1)")"
row P5 "file descriptors before / after" "$fd0 / $fd1" "" "" "equal" "$(verdict "$([ "$fd1" -le "$fd0" ] && echo 1)")"
[ -s "$T/load.err" ] && note "$(head -n 1 "$T/load.err")"
note "command: tests/bench/bench.py load 10000 SOCK (status 1/2, history 1/4, hosts 1/4)"
if ! alive "$PID" || ! ctl status >/dev/null 2>&1; then
	note "switchd no longer answers after the load: restarting it for the idle measurement"
	stop_switchd
	start_switchd
	PID=$(switchd_pid)
fi
sleep 2
# Three ways to count an idle daemon's wakeups over 10 s: the kernel's count
# of context switches of every thread (/proc/PID/task/*/status), strace -c,
# and perf stat on the epoll_wait tracepoint.
ctxsw() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'; }
c0=$(ctxsw "$PID"); sleep 10; c1=$(ctxsw "$PID")
row P5 "idle wakeups (context switches, 10 s)" "$(calc "$(( c1 - c0 )) / 10") /s" "" "" "0" "$(verdict "$([ "$c1" = "$c0" ] && echo 1)")"
note "command: /proc/PID/task/*/status voluntary+nonvoluntary_ctxt_switches, 10 s apart"
if command -v strace >/dev/null; then
	timeout -s INT 10 strace -f -c -o "$T/strace.out" -p "$PID" >/dev/null 2>&1
	calls=$(awk '$NF ~ /^(epoll_wait|epoll_pwait|poll|select|ppoll|pselect6)$/ { n += $4 } END { print n + 0 }' "$T/strace.out")
	total=$(awk '$NF == "total" { print $3 }' "$T/strace.out")
	row P5 "idle wakeups (strace -c -f, 10 s)" "$(calc "$calls / 10") /s" "" "" "0" "$(verdict "$([ "$calls" = 0 ] && echo 1)")"
	note "strace: ${total:-0} system calls in 10 s, $calls of them event-loop waits (an empty strace -c table: none at all)"
	note "command: timeout -s INT 10 strace -f -c -p PID"
fi
if command -v perf >/dev/null; then
	perf stat -e 'syscalls:sys_enter_epoll_wait' -p "$PID" -o "$T/perf.out" -- sleep 10 >/dev/null 2>&1
	pc=$(awk '/syscalls:sys_enter_epoll_wait/ { print $1 }' "$T/perf.out")
	case $pc in
	"<not") row P5 "idle wakeups (perf stat epoll_wait, 10 s)" "not counted" "" "" "0" ""
		note "perf: <not counted>: switchd was never scheduled in 10 s (a per-task counter runs only while the task does)" ;;
	[0-9]*) pc=${pc//,/}
		row P5 "idle wakeups (perf stat epoll_wait, 10 s)" "$(calc "$pc / 10") /s" "" "" "0" "$(verdict "$([ "$pc" = 0 ] && echo 1)")" ;;
	*) note "perf stat -e syscalls:sys_enter_epoll_wait: not usable here: $(grep -v '^#' "$T/perf.out" 2>/dev/null | grep -m1 . )" ;;
	esac
	note "command: perf stat -e syscalls:sys_enter_epoll_wait -p PID -- sleep 10"
fi
stop_switchd

# ---------------------------------------------------------------- smoke
section "S   smoke: 50 cold servers x 5 checks, every answer after 200 ms"
SPORTS=""
for i in $(seq 50); do SPORTS="$SPORTS $(free_port)"; done
SPORTS=${SPORTS# }
SB=$(free_port)
"$PYTHON" "$BENCH_DIR/slow_backend.py" --name green --delay-ms 200 --ports "$(echo "$SPORTS" | tr ' ' ',')" \
	</dev/null >>"$T/slow.log" 2>&1 &
track $!
"$PYTHON" "$BENCH_DIR/slow_backend.py" --name blue --delay-ms 0 --ports "$SB" </dev/null >>"$T/slow.log" 2>&1 &
track $!
wait_for 10 curl -s --max-time 1 -o /dev/null "http://127.0.0.1:${SPORTS##* }/health" || die "slow backends did not start"
hap_stop h1
BLUE_PORTS=$SB
GREEN_PORTS=$SPORTS
write_map blue green
rm -f "$T/h1.port"
FE_PORT=""
start_haproxy h1
checks=""
for c in home a b c d; do
	checks="$checks${checks:+, }{ name = \"$c\"; path = \"/$c\"; status = 200; body = \"green\"; }"
done
write_config "smoke = { url = \"http://127.0.0.1:$FE_PORT\"; timeout_ms = 5000; per_server = true; checks = ( $checks ); };"
rm -rf "$T/state"; mkdir -p "$T/state"
start_switchd
read -r one_med one_p99 one_bad <<<"$(BENCH times --n 10 "curl -s -o /dev/null -H 'Host: $COLD_HOST' http://127.0.0.1:${SPORTS%% *}/home")"
read -r sm_med sm_p99 sm_bad <<<"$(BENCH times --n 5 "$SWITCHCTL -s $T/switchd.sock -q smoke")"
read -r cd_med cd_p99 cd_bad <<<"$(BENCH times --n 3 "$SWITCHCTL -s $T/switchd.sock -q cold-deploy --no-deploy")"
summary=$(ctlj smoke | jget '["summary"]')
row S "switchctl smoke (255 requests): wall, median" "${sm_med} ms" "one check ${one_med} ms" "$(calc "$sm_med / $one_med")x" \
	"<= 1.5x" "$(verdict "$(le "$(calc "$sm_med / $one_med")" 1.5)")"
row S "cold-deploy --no-deploy: wall, median" "${cd_med} ms" "one check ${one_med} ms" "$(calc "$cd_med / $one_med")x" \
	"<= 1.5x" "$(verdict "$(le "$(calc "$cd_med / $one_med")" 1.5)")"
note "smoke's own summary: $summary; failures: smoke $sm_bad/5, cold-deploy $cd_bad/3"
note "one check: curl -H 'Host: $COLD_HOST' http://127.0.0.1:PORT/home on one slow server (10 runs)"
stop_switchd

section "targets: $NPASS PASS, $NFAIL FAIL; $(( ($(now_ms) - BENCH_T0) / 1000 )) s; table in tests/bench/out/results.txt"
cp "$T"/p1-*.json "$OUT/" 2>/dev/null
[ -n "${BENCH_STRICT:-}" ] && [ "$NFAIL" -gt 0 ] && exit 1
exit 0
