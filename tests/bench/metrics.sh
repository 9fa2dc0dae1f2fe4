#!/bin/bash
# tests/bench/metrics.sh — the cost of switchd's HTTP server (issue 16).
# Not part of "make test"; make bench runs it after run.sh, or by hand
# (release build by default):
#
#   tests/bench/metrics.sh            SWITCHD=build/asan/switchd ... to compare
#
#   M1  GET /metrics with 1000 servers a pool vs 2 (baseline, same run):
#       scrapes 1 s apart (Prometheus at scrape_interval 1s: served from the
#       snapshot, which each one refreshes for the next); back to back
#       (from the snapshot); and 6 s apart (the snapshot is too old: the
#       scrape waits for status + show stat, of which HAProxy's own "show
#       stat" of 2000 servers is ~6 ms, shown for reference).  Target: <= 5
#       ms at 1000.
#   M2  switchctl switch --no-smoke, wall time, with a scraper hitting
#       /metrics every 100 ms vs without (baseline, same run, in alternate
#       blocks of 10 switches).  Target <= 1.1x.
#
# Prints a table; writes it to tests/bench/out/metrics.txt.  Everything on
# 127.0.0.1 in a private temp dir.  HAProxy's servers have no health checks
# (they need not exist).
. "$(dirname "$0")/../lib.sh"

BENCH_DIR=$REPO_DIR/tests/bench
OUT=$BENCH_DIR/out
mkdir -p "$OUT"
: >"$OUT/metrics.txt"
N=${N:-20}
ROUNDS=${ROUNDS:-6}
t_setup

row() { printf '%-4s %-52s %10s  %-18s %-8s %-8s %s\n' "$@" | tee -a "$OUT/metrics.txt"; }
calc() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "-" && a + 0 <= b + 0) ? "PASS" : "FAIL" }'; }
# median FILE: the median of a column of numbers.
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
BENCH() { "$PYTHON" "$BENCH_DIR/bench.py" "$@"; }

FE=$(free_port)
HTTP_PORT=$(free_port)
URL=http://127.0.0.1:$HTTP_PORT
# setup N: HAProxy "m" with N servers a pool, switchd listing them, running.
setup() {
	local n=$1 i pool
	[ -f "$T/m.hpid" ] && stop_pid "$(cat "$T/m.hpid")"
	write_map blue green
	{
		printf 'global\n\tstats socket %s/m.sock mode 600 level admin\n' "$T"
		printf 'defaults\n\tmode http\n\ttimeout connect 1s\n\ttimeout client 5s\n\ttimeout server 5s\n'
		printf 'frontend fe_http\n\tbind 127.0.0.1:%s\n' "$FE"
		printf '\tuse_backend %%[req.hdr(host),lower,field(1,:),map(%s/switchd.map,be_blue)]\n' "$T"
		for pool in blue green; do
			printf 'backend be_%s\n\tbalance roundrobin\n' "$pool"
			for ((i = 1; i <= n; i++)); do printf '\tserver %s%d 127.0.0.1:%d\n' "${pool:0:1}" "$i" $((20000 + i)); done
		done
	} >"$T/m.cfg"
	{
		printf 'control = { socket = "%s/switchd.sock"; mode = 0666; };\nstate_dir = "%s/state-%s";\n' "$T" "$T" "$n"
		printf 'hosts = { live = "%s"; cold = "%s"; };\npools = {\n' "$LIVE_HOST" "$COLD_HOST"
		for pool in blue green; do
			printf '  %s = { backend = "be_%s"; servers = (' "$pool" "$pool"
			for ((i = 1; i <= n; i++)); do
				printf '%s{ name = "%s%d"; address = "127.0.0.1:%d"; }' "$([ "$i" = 1 ] || echo ', ')" \
					"${pool:0:1}" "$i" $((20000 + i))
			done
			printf ' ); };\n'
		done
		printf '};\nhaproxy = { sockets = ( "%s/m.sock" ); map = "%s/switchd.map"; };\n' "$T" "$T"
		printf 'http = { listen = "127.0.0.1:%s"; };\n' "$HTTP_PORT"
	} >"$T/switchd.conf"
	"$HAPROXY" -db -f "$T/m.cfg" </dev/null >>"$T/m.log" 2>&1 &
	echo $! >"$T/m.hpid"
	track "$(cat "$T/m.hpid")"
	wait_for 10 test -S "$T/m.sock" || die "haproxy did not start"
	start_switchd
}
# scrape_times FILE COUNT GAP: COUNT scrapes' time_total in ms, GAP s apart.
scrape_times() {
	local i
	: >"$1"
	for ((i = 0; i < $2; i++)); do
		[ "$3" = 0 ] || sleep "$3"
		curl -s -o /dev/null -w '%{time_total}\n' "$URL/metrics" | awk '{ printf "%.3f\n", $1 * 1000 }' >>"$1"
	done
}

for n in 2 1000; do
	setup "$n"
	curl -sf -o /dev/null "$URL/metrics" || die "no /metrics"
	scrape_times "$T/fresh-$n" "$N" 1.05          # > 1 s apart: each one refreshes
	scrape_times "$T/cached-$n" 200 0            # back to back: from the snapshot
	scrape_times "$T/cold-$n" 5 6                # > 5 s apart: each one waits
	hap_ms=$("$PYTHON" - "$T/m.sock" <<'EOF'
import socket, sys, time
ts = []
for i in range(11):
    t = time.perf_counter()
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"show stat -1 4 -1\n")
    while s.recv(65536):
        pass
    s.close(); ts.append((time.perf_counter() - t) * 1000)
print("%.2f" % sorted(ts)[5])
EOF
)
	echo "$hap_ms" >"$T/hap-$n.med"
	for k in fresh cached cold; do printf '%s\n' "$(median "$T/$k-$n")" >"$T/$k-$n.med"; done
	lines=$(curl -s "$URL/metrics" | wc -l)
	echo "$lines" >"$T/lines-$n"
	if [ "$n" = 1000 ]; then
		# M2 with 1000 servers a pool, the heavier case: blocks of 10
		# switches, alternately without and with the scraper, so that
		# the load of the machine (shared) weighs on both alike.
		( while :; do [ -f "$T/scrape.on" ] && curl -s -o /dev/null "$URL/metrics"; sleep 0.1; done ) &
		SCRAPER=$!
		track "$SCRAPER"
		: >"$T/sw-off"; : >"$T/sw-on"; : >"$T/sw-off-p99"; : >"$T/sw-on-p99"
		for ((r = 0; r < ROUNDS; r++)); do
			for mode in off on; do
				if [ "$mode" = on ]; then touch "$T/scrape.on"; else rm -f "$T/scrape.on"; fi
				read -r med p99 bad <<<"$(BENCH times --n 10 --gap-ms 50 \
					"$SWITCHCTL -s $T/switchd.sock -q switch --force --no-smoke")"
				echo "$med" >>"$T/sw-$mode"
				echo "$p99" >>"$T/sw-$mode-p99"
				echo "$bad" >>"$T/sw-bad"
			done
		done
		rm -f "$T/scrape.on"
		kill_tree TERM "$SCRAPER"
		wait "$SCRAPER" 2>/dev/null
		untrack "$SCRAPER"
		sw_med=$(median "$T/sw-off"); sc_med=$(median "$T/sw-on")
		sw_p99=$(median "$T/sw-off-p99"); sc_p99=$(median "$T/sw-on-p99")
		sw_bad=$(awk '{ s += $1 } END { print s + 0 }' "$T/sw-bad")
	fi
	stop_switchd
done

f2=$(cat "$T/fresh-2.med"); f1k=$(cat "$T/fresh-1000.med")
c2=$(cat "$T/cached-2.med"); c1k=$(cat "$T/cached-1000.med")
o2=$(cat "$T/cold-2.med"); o1k=$(cat "$T/cold-1000.med")
h2=$(cat "$T/hap-2.med"); h1k=$(cat "$T/hap-1000.med")
printf '%-4s %-52s %10s  %-18s %-8s %-8s %s\n' ID WHAT VALUE BASELINE RATIO TARGET VERDICT | tee -a "$OUT/metrics.txt"
row M1 "GET /metrics, 1000 servers a pool, 1 s apart: median" "$f1k ms" "2 servers $f2 ms" "$(calc "$f1k" "$f2")x" "<= 5 ms" "$(le "$f1k" 5)"
row M1 "GET /metrics, 1000 servers a pool, cached: median" "$c1k ms" "2 servers $c2 ms" "$(calc "$c1k" "$c2")x" "<= 5 ms" "$(le "$c1k" 5)"
row M1 "GET /metrics, 1000 servers a pool, 6 s apart: median" "$o1k ms" "2 servers $o2 ms" "$(calc "$o1k" "$o2")x" "" "(waits)"
row M1 "HAProxy's own show stat, 2000 servers (reference)" "$h1k ms" "4 servers $h2 ms" "$(calc "$h1k" "$h2")x" "" ""
row M2 "switch, 1000 servers a pool, scraped every 100 ms: median" "$sc_med ms" "unscraped $sw_med ms" "$(calc "$sc_med" "$sw_med")x" "<= 1.1x" "$(le "$(calc "$sc_med" "$sw_med")" 1.1)"
row M2 "switch, same: p99 (median of the blocks')" "$sc_p99 ms" "unscraped $sw_p99 ms" "$(calc "$sc_p99" "$sw_p99")x" "" ""
echo "     $N refreshing scrapes, 200 cached; /metrics is $(cat "$T/lines-2") lines at 2 servers, $(cat "$T/lines-1000") at 1000; switch failures $sw_bad; M2: $ROUNDS rounds of 10 switches unscraped then 10 scraped, medians of the blocks' medians" | tee -a "$OUT/metrics.txt"
echo "     SWITCHD=$SWITCHD" | tee -a "$OUT/metrics.txt"
t_done
