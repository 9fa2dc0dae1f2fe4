#!/bin/bash
# t-nginx: the nginx driver (an `nginx` section instead of `haproxy`), with
# the shipped nginx/switchd-driver.conf as the server block.  switchd
# writes the include at its first start (before nginx can start without
# it); switch and back each reload nginx gracefully and are seen by curl
# through nginx and by nginx.check_url; a broken nginx.conf makes nginx -t
# refuse — old include back byte for byte, no reload, traffic unchanged; a
# configuration nginx -t accepts but cannot load (its port is taken) is
# caught by waiting for new workers and rolled back; a pool without
# servers is refused before anything is written.
. "$(dirname "$0")/../lib.sh"
t_setup

two_pools
NPORT=$(free_port)
NG=$T/nginx
INC=$NG/switchd-upstreams.conf
NGBODY=$(sed -e "s|listen 80;|listen 127.0.0.1:$NPORT;|" \
	-e "s|/etc/nginx/switchd-upstreams.conf|$INC|" "$REPO_DIR/nginx/switchd-driver.conf")
# A server that cannot start: its port is the blue backend's.
nginx_conf "$NG" "$NGBODY
server { listen 127.0.0.1:$BLUE_PORTS; return 204; }"
mv "$NG/nginx.conf" "$NG/nginx.conf.taken"
nginx_conf "$NG" "$NGBODY"
cp "$NG/nginx.conf" "$NG/nginx.conf.good"

NGINX_SECTION="nginx = {
  include = \"$INC\";
  config = \"$NG/nginx.conf\";
  prefix = \"$NG\";
  binary = \"$NGINX\";
  pid_file = \"$NG/nginx.pid\";
  check_url = \"http://127.0.0.1:$NPORT/switchd-upstream\";
  timeout_ms = 10000;
};"
# ---- config: the nginx section
LB_BACKENDS=none write_lb_config "$NGINX_SECTION
haproxy = { sockets = ( \"$T/h1.sock\" ); };" "" "$T/bad.conf"
nok "haproxy and nginx sections together are refused" "$SWITCHD" -n -f "$T/bad.conf"
expect_grep 'both set' - "the error says only one load balancer"
LB_BACKENDS=none write_lb_config "nginx = { include = \"$INC\"; bogus = 1; check_url = \"ftp://x\"; };" "" "$T/bad.conf"
nok "unknown nginx key and a bad check_url are refused" "$SWITCHD" -n -f "$T/bad.conf"
expect_grep 'bad.conf:[0-9]+: unknown key nginx.bogus' - "unknown key named with its line"
expect_grep 'check_url must start with http' - "bad check_url named"
LB_BACKENDS=none write_lb_config "nginx = { include = \"relative.conf\"; };" "" "$T/bad.conf"
nok "a relative include is refused" "$SWITCHD" -n -f "$T/bad.conf"
LB_BACKENDS=none write_lb_config "$NGINX_SECTION"
ok "switchd -n accepts the nginx section" "$SWITCHD" -n -f "$T/switchd.conf"

# ---- first start: switchd writes the include, then nginx can start
start_switchd
ok "switchd wrote the include at start" wait_for 10 test -s "$INC"
expect_grep 'upstream switchd_blue' "$INC" "include has the blue upstream (default name)"
expect_grep "server 127\.0\.0\.1:$GREEN_PORTS;" "$INC" "include has the green server"
expect_grep "^[[:space:]]*$LIVE_HOST switchd_blue;" "$INC" "include maps the live host to blue"
expect_grep "^[[:space:]]*default switchd_blue;" "$INC" "unknown hosts go to the hot pool"
start_nginx "$NG"

via_nginx() { curl -s --max-time 3 -H "Host: $1" "http://127.0.0.1:$NPORT${2:-/}"; }
expect_eq "live host through nginx answers blue" "$(via_nginx "$LIVE_HOST")" blue
expect_eq "cold host through nginx answers green" "$(via_nginx "$COLD_HOST")" green
expect_eq "check_url location names the upstream" "$(via_nginx "$LIVE_HOST" /switchd-upstream)" switchd_blue

run ctlj status
expect_eq "status: hot blue" "$(jv "$OUT" '["hot"]')" blue
expect_eq "status: node is nginx" "$(jv "$OUT" '["nodes"][0]["socket"]')" "nginx $NG/nginx.conf"
expect_eq "status: nginx serves the live host from switchd_blue" "$(jv "$OUT" '["nodes"][0]["map"]["live"]')" switchd_blue
expect_eq "status: nodes agree" "$(jv "$OUT" '["agree"]')" true
expect_eq "status: server health is unknown (no active checks in nginx OSS)" "$(jv "$OUT" '["pools"]["blue"]["servers"][0]["status"]')" unknown

# ---- switch and back: graceful reloads, new workers, new mapping
W0=$(nginx_workers "$NG")
run ctlj switch --force -m "nginx switch"
expect_eq "nginx switch exits 0" "$RC" 0
expect_eq "the switch reply counts the one nginx node" "$(jv "$OUT" '["nodes"]')" 1
expect_ne "the switch started new nginx workers" "$(nginx_workers "$NG")" "$W0"
expect_eq "live host through nginx now answers green" "$(via_nginx "$LIVE_HOST")" green
expect_eq "cold host through nginx now answers blue" "$(via_nginx "$COLD_HOST")" blue
expect_grep "^[[:space:]]*$LIVE_HOST switchd_green;" "$INC" "include maps the live host to green"
expect_eq "status: nginx serves the live host from switchd_green" "$(status_get '["nodes"][0]["map"]["live"]')" switchd_green
expect_eq "state.json hot is green" "$(state_hot)" green
expect_eq "no temp files left next to the include" "$(ls -A "$NG" | grep -c '^switchd-upstreams\.conf.')" 0
# On a terminal switchctl shows its progress: it names nginx, not HAProxy.
run script -qec "$SWITCHCTL -s $T/switchd.sock back -m 'nginx back'" /dev/null
expect_eq "nginx back exits 0" "$RC" 0
expect_grep 'flipping .* to blue on 1 nginx node' - "back's progress: on 1 nginx node"
expect_eq "after back: live host answers blue" "$(via_nginx "$LIVE_HOST")" blue
expect_eq "after back: cold host answers green" "$(via_nginx "$COLD_HOST")" green

# ---- nginx -t refuses (nginx.conf broken): old include back, no reload
printf 'bogus_directive_for_t_nginx on;\n' >>"$NG/nginx.conf"
INC_BEFORE=$(cat "$INC")
W0=$(nginx_workers "$NG")
expect_fail 1 haproxy switch --force --no-smoke -m "nginx -t fails"
expect_emsg 'nginx -t' "error names nginx -t"
expect_emsg 'unknown directive "bogus_directive_for_t_nginx"' "error carries nginx's own words"
expect_eq "include restored byte for byte" "$(cat "$INC")" "$INC_BEFORE"
expect_eq "no reload happened (same workers)" "$(nginx_workers "$NG")" "$W0"
expect_eq "traffic unchanged: live host answers blue" "$(via_nginx "$LIVE_HOST")" blue
expect_eq "state.json still hot blue" "$(state_hot)" blue

# ---- nginx -t accepts, the reload cannot load (port taken): rolled back
cp "$NG/nginx.conf.taken" "$NG/nginx.conf"
ok "the broken config passes nginx -t" "$NGINX" -t -q -p "$NG" -c "$NG/nginx.conf"
expect_fail 1 haproxy switch --force --no-smoke -m "reload fails"
expect_emsg 'no new workers' "error says nginx started no new workers"
expect_eq "include restored" "$(cat "$INC")" "$INC_BEFORE"
expect_eq "traffic unchanged: live host answers blue" "$(via_nginx "$LIVE_HOST")" blue
expect_grep 'Address already in use' "$NG/logs/error.log" "nginx logged why it did not load"
cp "$NG/nginx.conf.good" "$NG/nginx.conf"
expect_ok switch --force --no-smoke -m "config fixed"
expect_eq "with nginx.conf fixed the switch works: green" "$(via_nginx "$LIVE_HOST")" green
expect_ok back -m "and back"

# ---- a pool without servers is refused before anything changes
GREEN_PORTS="" LB_BACKENDS=none write_lb_config "$NGINX_SECTION"
expect_ok reload
expect_fail 1 refused switch --force --no-smoke -m "empty pool"
expect_emsg 'switchd_green .*has no servers' "refusal names the empty upstream"
expect_eq "include untouched by the refused switch" "$(cat "$INC")" "$INC_BEFORE"
LB_BACKENDS=none write_lb_config "$NGINX_SECTION"
expect_ok reload

# ---- canary, rollout and the bake window need HAProxy: refused, clearly
expect_fail 1 refused canary 10
expect_emsg 'nginx driver cannot split traffic.*runtime' "canary: the refusal names runtime mode"
expect_fail 1 refused rollout
expect_emsg 'nginx driver cannot split traffic.*runtime' "rollout: the refusal names runtime mode"
expect_fail 1 refused switch --force --no-smoke --bake 60
expect_emsg 'bake.*nginx' "switch --bake: refused with the nginx driver"
expect_eq "include untouched by the refusals" "$(cat "$INC")" "$INC_BEFORE"

# ---- nginx stopped: a switch is refused, the include kept
stop_nginx "$NG"
expect_fail 1 haproxy switch --force --no-smoke -m "nginx down"
expect_emsg 'nginx is not running' "refusal says nginx is not running"
expect_eq "include untouched" "$(cat "$INC")" "$INC_BEFORE"

t_done
