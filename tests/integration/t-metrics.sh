#!/bin/bash
# t-metrics: the HTTP server's /metrics and /api/*, checked by the real
# things.  promtool accepts the exposition (with label values that need
# escaping); a real Prometheus server scrapes switchd every second and its
# query API shows the hot pool change after a switch; /api/status and
# /api/history are byte for byte switchctl --json; HAProxy's request and
# 5xx counters reach the per-pool counters; scraping 200 times asks each
# node for its counters at most once a second; 500 idle connections and a
# client sending one byte a second do not hold up status or a switch, and
# that client is cut off after 10 s without a response; a
# reload re-binds, or keeps the old listener when the new bind fails; the
# README's scrape config and alert rules pass promtool and evaluate; a bad
# http.listen is a config error with its line.
. "$(dirname "$0")/../lib.sh"
t_setup

PROMTOOL=${PROMTOOL:-$(command -v promtool || true)}
PROMETHEUS=${PROMETHEUS:-$(command -v prometheus || true)}
if [ -z "$PROMTOOL" ] || [ -z "$PROMETHEUS" ]; then
	echo "# SKIP: no promtool/prometheus binary (Debian package prometheus)"
	echo "0 passed, 0 failed"
	exit 0
fi

two_pools
start_haproxy h1
start_fault_proxy fp1 h1        # logs every command switchd sends the node
HAP_NODES=fp1
HTTP_PORT=$(free_port)
write_config "http = { listen = \"127.0.0.1:$HTTP_PORT\"; };"
start_switchd
URL=http://127.0.0.1:$HTTP_PORT
scrape() { curl -sf --max-time 5 "$URL/metrics"; }
# metric 'NAME{LABELS}': its value in a fresh scrape.
metric() { scrape | awk -v m="$1" '$1 == m { print $2; found = 1 } END { exit !found }'; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }

# ---- the exposition format
ctl cold-deploy --no-deploy -v 'v2 "quoted" back\slash' -m "odd version" >/dev/null ||
	die "cold-deploy failed"
scrape >"$T/m1.txt" || die "no /metrics"
ok "promtool check metrics accepts /metrics" sh -c "'$PROMTOOL' check metrics <'$T/m1.txt'"
expect_grep '^# TYPE switchd_hot_pool gauge$' "$T/m1.txt" "HELP/TYPE lines"
for m in switchd_hot_pool switchd_pool_info switchd_servers switchd_switches_total \
    switchd_switch_duration_seconds_bucket switchd_last_switch_timestamp_seconds \
    switchd_canary_percent switchd_lock_held switchd_node_up switchd_ec2_drift_instances \
    switchd_pool_requests_total switchd_pool_responses_5xx_total switchd_nodes_agree; do
	expect_grep "^$m[{ ]" "$T/m1.txt" "/metrics has $m"
done
expect_grep '^switchd_hot_pool\{pool="blue"\} 1$' "$T/m1.txt" "blue is hot in /metrics"
expect_grep '^switchd_hot_pool\{pool="green"\} 0$' "$T/m1.txt" "green is cold in /metrics"
expect_grep '^switchd_pool_info\{pool="green",version="v2 \\"quoted\\" back\\\\slash",state="verified"\} 1$' \
	"$T/m1.txt" "label values are escaped"
expect_grep '^switchd_servers\{pool="green",status="up"\} 1$' "$T/m1.txt" "green's server is counted up"
expect_grep '^switchd_node_up\{node=".*fp1.sock"\} 1$' "$T/m1.txt" "the node is up"
expect_grep '^switchd_lock_held 0$' "$T/m1.txt" "the lock is free"
expect_match "Content-Type of /metrics" "$(curl -s -D - -o /dev/null "$URL/metrics")" \
	'text/plain; version=0.0.4'

# ---- /api/status and /api/history are switchctl --json
curl -sf "$URL/api/status" >"$T/api-status.json"
ctlj status >"$T/ctl-status.json"
ok "/api/status is exactly switchctl --json status" cmp "$T/api-status.json" "$T/ctl-status.json"
curl -sf "$URL/api/history?n=3" >"$T/api-history.json"
ctlj history -n 3 >"$T/ctl-history.json"
ok "/api/history?n=3 is exactly switchctl --json history -n 3" \
	cmp "$T/api-history.json" "$T/ctl-history.json"

# ---- HAProxy's counters, per pool
for i in $(seq 30); do via_live >/dev/null; done
blue_reqs() { v=$(metric 'switchd_pool_requests_total{pool="blue"}') && [ "$v" -ge 30 ]; }
ok "30 requests on blue are counted" wait_for 10 blue_reqs
backend_ctl blue 'set?status=500' >/dev/null
for i in $(seq 7); do via_live >/dev/null; done
blue_5xx() { [ "$(metric 'switchd_pool_responses_5xx_total{pool="blue"}')" -ge 7 ]; }
ok "7 errors on blue are counted as 5xx" wait_for 10 blue_5xx
backend_ctl blue 'set?status=200' >/dev/null

# ---- scrapes are cached: at most one counters "show stat" a node a second
n0=$(grep -c 'show stat -1 2 -1' "$T/fp1.cmdlog")
t0=$(now_ms)
for i in $(seq 200); do curl -s -o /dev/null "$URL/metrics"; done
t1=$(now_ms)
n1=$(grep -c 'show stat -1 2 -1' "$T/fp1.cmdlog")
secs=$(( (t1 - t0) / 1000 + 1 ))
log "200 scrapes in $((t1 - t0)) ms asked the node $((n1 - n0)) times"
ok "200 scrapes: at most one counters show stat a second ($((n1 - n0)) in ${secs}s)" \
	test $((n1 - n0)) -le "$secs"

# ---- a real Prometheus server
PROM_PORT=$(free_port)
mkdir -p "$T/prom"
cat >"$T/prom/prometheus.yml" <<EOF
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: switchd
    static_configs: [ { targets: [ "127.0.0.1:$HTTP_PORT" ] } ]
EOF
"$PROMETHEUS" --config.file="$T/prom/prometheus.yml" --storage.tsdb.path="$T/prom/data" \
	--web.listen-address="127.0.0.1:$PROM_PORT" </dev/null >"$T/prometheus.log" 2>&1 &
PROM_PID=$!
track "$PROM_PID"
PQ=http://127.0.0.1:$PROM_PORT/api/v1/query
# prom_hot POOL: Prometheus's latest switchd_hot_pool says POOL is hot.
prom_hot() {
	curl -sf --max-time 3 -G "$PQ" --data-urlencode 'query=switchd_hot_pool == 1' |
		"$PYTHON" -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
sys.exit(0 if [x["metric"]["pool"] for x in r] == [sys.argv[1]] else 1)' "$1"
}
ok "Prometheus is ready" wait_for 30 curl -sf "http://127.0.0.1:$PROM_PORT/-/ready"
ok "Prometheus's query API: blue is hot" wait_for 30 prom_hot blue
expect_ok switch -m "metrics test switch"
ok "Prometheus's query API: green is hot after the switch" wait_for 30 prom_hot green
up=$(curl -sf -G "$PQ" --data-urlencode 'query=up{job="switchd"}' | jget '["data"]["result"][0]["value"][1]')
expect_eq "Prometheus's scrape of switchd is up" "$up" 1
scrape >"$T/m2.txt"
expect_grep '^switchd_switches_total\{command="switch",result="ok",by="operator"\} 1$' "$T/m2.txt" \
	"the switch is counted"
expect_grep '^switchd_switch_duration_seconds_count 1$' "$T/m2.txt" "the switch's duration is observed"
expect_nogrep '^switchd_last_switch_timestamp_seconds 0$' "$T/m2.txt" "the last switch has a time"
ok "promtool still accepts /metrics" sh -c "'$PROMTOOL' check metrics <'$T/m2.txt'"

# ---- the README's Prometheus config and alert rules are valid
# readme_yaml NAME: the README's ```yaml block that starts with "# NAME".
readme_yaml() {
	awk -v n="# $1" '/^```yaml$/ { f = 1; first = 1; next } /^```$/ { f = 0 }
		f && first { first = 0; if ($0 != n) f = 0 } f' "$REPO_DIR/README.md"
}
readme_yaml rules.yml >"$T/rules.yml"
readme_yaml prometheus.yml >"$T/readme-prometheus.yml"
ok "the README has alert rules" test -s "$T/rules.yml"
ok "promtool check rules accepts the README's alert rules" "$PROMTOOL" check rules "$T/rules.yml"
ok "promtool check config accepts the README's scrape config" \
	"$PROMTOOL" check config "$T/readme-prometheus.yml"
# The rules' expressions evaluate against a real scrape.
for e in $(grep -E '^ +expr:' "$T/rules.yml" | sed 's/^ *expr: *//' | tr ' ' '\037'); do
	e=$(printf '%s' "$e" | tr '\037' ' ')
	ok "Prometheus evaluates: $e" sh -c "curl -sf -G '$PQ' --data-urlencode 'query=$e' | grep -q '\"status\":\"success\"'"
done

stop_pid "$PROM_PID"

# ---- hostile clients: 500 idle connections and one byte a second
cat >"$T/hostile.py" <<'EOF'
import select, socket, sys, time
port, n, progress = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
idle = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    idle.append(s)
slow = socket.create_connection(("127.0.0.1", port), timeout=5)
req = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000 + b"\r\n\r\n"
for i, b in enumerate(req):
    try:
        slow.send(bytes([b]))
        closed = select.select([slow], [], [], 0)[0] and slow.recv(1) == b""
    except OSError:
        closed = True
    with open(progress, "w") as f:
        f.write("%d %d%s\n" % (len(idle), i + 1, " closed" if closed else ""))
    if closed:
        break
    time.sleep(1)
EOF
"$PYTHON" "$T/hostile.py" "$HTTP_PORT" 500 "$T/hostile.progress" </dev/null >"$T/hostile.log" 2>&1 &
HOSTILE=$!
track "$HOSTILE"
# slow_sent N: the slow client has sent at least N bytes (and the 500 idle are open).
slow_sent() { [ -f "$T/hostile.progress" ] && [ "$(cut -d' ' -f2 "$T/hostile.progress")" -ge "$1" ]; }
ok "500 idle connections open and the slow client has begun" wait_for 30 slow_sent 2
before=$(cut -d' ' -f2 "$T/hostile.progress")
expect_ok status
expect_ok back -m "back while hostile clients hang on"
after=$(cut -d' ' -f2 "$T/hostile.progress")
log "status and back done while the slow client sent $((after - before)) more bytes"
ok "status and back took fewer than 3 of the slow client's bytes" test $((after - before)) -lt 3
ok "/metrics still answers beside them" scrape
expect_nogrep closed "$T/hostile.progress" "the slow client was still sending meanwhile"
# switchd closes it: no response within 10 s, however it trickles.
slow_closed() { grep -q closed "$T/hostile.progress"; }
ok "switchd closes the one-byte-a-second client" wait_for 30 slow_closed
n=$(cut -d' ' -f2 "$T/hostile.progress")
ok "... after at most 13 of its bytes ($n)" test "$n" -le 13
stop_pid "$HOSTILE"

# ---- reload: re-bind, or keep the old listener
NEW_PORT=$(free_port)
write_config "http = { listen = \"127.0.0.1:$NEW_PORT\"; };"
expect_ok reload
ok "after a reload, the new address answers" curl -sf -o /dev/null "http://127.0.0.1:$NEW_PORT/metrics"
nok "and the old one does not" curl -sf -o /dev/null --max-time 2 "$URL/metrics"
write_config "http = { listen = \"127.0.0.1:$FE_PORT\"; };"       # HAProxy's: in use
expect_ok reload
ok "a reload whose new bind fails keeps the old listener" \
	curl -sf -o /dev/null "http://127.0.0.1:$NEW_PORT/metrics"
expect_grep "still listening on 127.0.0.1:$NEW_PORT" "$T/switchd.log" "the failed bind is logged"
V6_PORT=$(free_port)
write_config "http = { listen = \"[::1]:$V6_PORT\"; };"
expect_ok reload
ok "IPv6 [::1]:PORT answers" curl -sf -o /dev/null -g "http://[::1]:$V6_PORT/api/status"
write_config ""
expect_ok reload
nok "without http.listen nothing listens" curl -sf -o /dev/null --max-time 2 -g "http://[::1]:$V6_PORT/metrics"

# ---- config errors, with their line
for bad in '"nonsense"' '"127.0.0.1"' '"127.0.0.1:0"' '"::1:9180"' '9180' '"[::1:80"'; do
	write_config "http = {
  listen = $bad;
};" "$T/bad.conf"
	line=$(grep -n 'listen = ' "$T/bad.conf" | cut -d: -f1)
	run "$SWITCHD" -n -f "$T/bad.conf"
	expect_grep "bad.conf:$line: .*listen" - "http.listen = $bad: an error naming its line ($line)"
	expect_eq "http.listen = $bad is refused" "$RC" 1
done
write_config "http = { listen = \"127.0.0.1:9180\"; port = 1; };" "$T/bad.conf"
run "$SWITCHD" -n -f "$T/bad.conf"
expect_grep "port" - "an unknown key in http is an error"
t_done
