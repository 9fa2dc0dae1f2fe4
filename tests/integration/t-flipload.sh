#!/bin/bash
# t-flipload: 20 flips under load (wrk -t2 -c20, loopback) in each mode,
# counting non-2xx answers and socket errors:
#   runtime        HAProxy runtime map flip, wrk -> HAProxy
#   runtime-tls    the same flips, wrk -> nginx (nginx/tls-front.conf) -> HAProxy
#   reload         haproxy.mode = "reload": new map file, master CLI reload
#   nginx          the nginx driver: new include, nginx -t, graceful reload
# The runtime modes must lose nothing (asserted); the reload modes' figures
# are printed, not asserted.  One line per mode: "flipload: MODE ...".
. "$(dirname "$0")/../lib.sh"
t_setup

two_pools
start_haproxy_mw h1

make_certs "$T/tls"
TLS_PORT=$(free_port)
nginx_conf "$T/ngtls" "$(tls_front_conf "$TLS_PORT" "$FE_PORT" "$T/tls")"
start_nginx "$T/ngtls"

NPORT=$(free_port)
NG=$T/ngdrv
nginx_conf "$NG" "$(sed -e "s|listen 80;|listen 127.0.0.1:$NPORT;|" \
	-e "s|/etc/nginx/switchd-upstreams.conf|$NG/switchd-upstreams.conf|" \
	"$REPO_DIR/nginx/switchd-driver.conf")"

NFLIPS=20
SUMMARY=""

# flipload MODE URL: wrk on URL while NFLIPS switches run, one after the
# other; sets N BAD SOCKERR and NSW, and logs the figures.
flipload() {
	local mode=$1 url=$2 i t0 t1
	wrk_start "$T/wrk-$mode.out" 90 "$url"
	sleep 1
	NSW=0
	t0=$(now_ms)
	for i in $(seq "$NFLIPS"); do
		if ctl -q switch --force --no-smoke -m "$mode $i" >>"$T/flips-$mode.out" 2>&1; then
			NSW=$((NSW + 1))
		fi
		sleep 0.1
	done
	t1=$(now_ms)
	sleep 1
	wrk_stop
	read -r N BAD SOCKERR <<<"$(wrk_counts "$T/wrk-$mode.out")"
	local line
	line=$(printf 'flipload: %-12s %2d/%d flips in %5d ms; wrk: %6d requests, %d non-2xx, %d socket errors' \
		"$mode" "$NSW" "$NFLIPS" "$((t1 - t0))" "$N" "$BAD" "$SOCKERR")
	log "$line"
	SUMMARY="$SUMMARY
# $line"
	grep -E 'Socket errors|Non-2xx' "$T/wrk-$mode.out" | sed 's/^/#     /'
	expect_eq "$mode: all $NFLIPS flips succeeded" "$NSW" "$NFLIPS"
	ok "$mode: wrk got answers" test "$N" -gt 100
}

# ---- runtime, through HAProxy and through nginx TLS -> HAProxy
write_config
start_switchd
flipload runtime "http://127.0.0.1:$FE_PORT/"
expect_eq "runtime: no non-2xx answer" "$BAD" 0
expect_eq "runtime: no socket error" "$SOCKERR" 0
flipload runtime-tls "https://127.0.0.1:$TLS_PORT/"
expect_eq "runtime-tls: no non-2xx answer" "$BAD" 0
expect_eq "runtime-tls: no socket error" "$SOCKERR" 0
stop_switchd

# ---- reload mode on the same HAProxy (master CLI)
write_lb_config "haproxy = {
  mode = \"reload\";
  master_socket = \"$T/h1.master\";
  map = \"$T/switchd.map\";
  config = \"$T/h1.cfg\";
  binary = \"$HAPROXY\";
  reload_timeout_ms = 5000;
};"
start_switchd
flipload reload "http://127.0.0.1:$FE_PORT/"
stop_switchd

# ---- the nginx driver (nginx in front of the pools, no HAProxy)
LB_BACKENDS=none write_lb_config "nginx = {
  include = \"$NG/switchd-upstreams.conf\";
  config = \"$NG/nginx.conf\";
  prefix = \"$NG\";
  binary = \"$NGINX\";
  pid_file = \"$NG/nginx.pid\";
  check_url = \"http://127.0.0.1:$NPORT/switchd-upstream\";
  timeout_ms = 5000;
};"
start_switchd
wait_for 10 test -s "$NG/switchd-upstreams.conf" || die "switchd did not write the nginx include"
start_nginx "$NG"
flipload nginx "http://127.0.0.1:$NPORT/"

log "---- summary (wrk -t2 -c20, $NFLIPS flips per mode, loopback)$SUMMARY"
t_done
