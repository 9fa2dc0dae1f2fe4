#!/bin/bash
# t-reload: haproxy.mode = "reload" against HAProxy in master-worker mode.
# Switch and back through the master CLI (no stats socket in switchd's
# config): each a new worker serving the new map, seen by curl.  A map that
# "haproxy -c" refuses (haproxy.cfg broken after start) is refused with
# HAProxy's words, the map file put back, nothing reloaded, traffic
# unchanged.  A configuration that passes -c but fails to load (a port in
# use) is caught by "show proc", rolled back.  Then reload_command with the
# stats socket for confirmation, and the guard's bake window going back on
# its own through reload mode.  HAProxy keeps answering under wrk while
# it reloads.
. "$(dirname "$0")/../lib.sh"
t_setup

two_pools
start_haproxy_mw h1
cp "$T/h1.cfg" "$T/h1.cfg.good"

RELOAD_MASTER="haproxy = {
  mode = \"reload\";
  master_socket = \"$T/h1.master\";
  map = \"$T/switchd.map\";
  config = \"$T/h1.cfg\";
  binary = \"$HAPROXY\";
  reload_timeout_ms = 5000;
};"
# ---- config: what reload mode needs
write_lb_config "haproxy = { mode = \"reload\"; map = \"$T/switchd.map\"; };" "" "$T/bad.conf"
nok "reload mode without master_socket or reload_command is refused" "$SWITCHD" -n -f "$T/bad.conf"
expect_grep 'needs haproxy.master_socket .* or haproxy.reload_command' - "the error says what reload mode needs"
write_lb_config "haproxy = { mode = \"reload\"; master_socket = \"$T/h1.master\"; sockets = ( \"$T/a.sock\", \"$T/b.sock\" ); };" "" "$T/bad.conf"
nok "reload mode with two stats sockets is refused" "$SWITCHD" -n -f "$T/bad.conf"
expect_grep 'one HAProxy' - "the error says reload mode drives one HAProxy"
write_lb_config "haproxy = { mode = \"reload\"; master_socket = \"$T/h1.master\"; reload_timeout_ms = 0; };" "" "$T/bad.conf"
nok "reload_timeout_ms 0 is refused" "$SWITCHD" -n -f "$T/bad.conf"
expect_grep 'reload_timeout_ms must be positive' -
write_lb_config "$RELOAD_MASTER"
ok "switchd -n accepts reload mode" "$SWITCHD" -n -f "$T/switchd.conf"
start_switchd

# ---- status through the master CLI (@1 show map / show stat)
run ctlj status
expect_eq "status: hot blue" "$(jv "$OUT" '["hot"]')" blue
expect_eq "status: the node is the master socket" "$(jv "$OUT" '["nodes"][0]["socket"]')" "$T/h1.master"
expect_eq "status: the worker serves the live host from be_blue" "$(jv "$OUT" '["nodes"][0]["map"]["live"]')" be_blue
expect_match "status: server health from the worker" "$(jv "$OUT" '["pools"]["green"]["servers"][0]["status"]')" '^UP'
expect_eq "live host answers blue" "$(via_live)" blue

# ---- switch: a new worker serves the new map
W0=$(hap_workers h1)
run ctlj switch --force -m "reload switch"
expect_eq "reload switch exits 0" "$RC" 0
expect_eq "the switch reply counts the one HAProxy node" "$(jv "$OUT" '["nodes"]')" 1
W1=$(hap_workers h1)
expect_ne "switch started a new worker" "$W1" "$W0"
expect_eq "live host now answers green" "$(via_live)" green
expect_eq "cold host now answers blue" "$(via_cold)" blue
expect_eq "map file flipped" "$(file_map)" "$(map_text green blue)"
expect_eq "the new worker's map flipped" "$(hap h1 "show map $T/switchd.map" | awk 'NF >= 3 { print $2, $3 }' | sort)" "$(map_text green blue)"
expect_eq "state.json hot is green" "$(state_hot)" green
expect_ok back -m "reload back"
expect_eq "after back: live host answers blue" "$(via_live)" blue
expect_eq "after back: map file" "$(file_map)" "$(map_text blue green)"
expect_ne "back started another worker" "$(hap_workers h1)" "$W1"

# ---- haproxy -c refuses: map file back, nothing reloaded
printf '\tbogus_keyword_for_t_reload\n' >>"$T/h1.cfg"
W0=$(hap_workers h1)
MAP_BEFORE=$(cat "$T/switchd.map")
expect_fail 1 haproxy switch --force --no-smoke -m "config broken"
expect_emsg 'haproxy -c' "error names haproxy -c"
expect_emsg 'bogus_keyword_for_t_reload' "error carries HAProxy's own words"
expect_eq "map file restored byte for byte" "$(cat "$T/switchd.map")" "$MAP_BEFORE"
expect_eq "no reload happened (same worker)" "$(hap_workers h1)" "$W0"
expect_eq "traffic unchanged: live host answers blue" "$(via_live)" blue
expect_eq "state.json still hot blue" "$(state_hot)" blue
expect_eq "status still hot blue" "$(status_get '["hot"]')" blue
expect_eq "no temp files left next to the map" "$(ls -A "$T" | grep -c '^switchd\.map.')" 0

# ---- passes haproxy -c, fails to load (its port is taken): show proc says so
cp "$T/h1.cfg.good" "$T/h1.cfg"
printf '\nfrontend fe_taken\n\tbind 127.0.0.1:%s\n' "$BLUE_PORTS" >>"$T/h1.cfg"
ok "the broken config passes haproxy -c" "$HAPROXY" -c -q -f "$T/h1.cfg"
expect_fail 1 haproxy switch --force --no-smoke -m "load fails"
expect_emsg 'did not load|no new HAProxy worker' "error says the new configuration did not load"
expect_eq "map file restored" "$(cat "$T/switchd.map")" "$MAP_BEFORE"
expect_eq "traffic unchanged after the failed reload: blue" "$(via_live)" blue
expect_eq "state.json still hot blue" "$(state_hot)" blue
cp "$T/h1.cfg.good" "$T/h1.cfg"
expect_ok switch --force --no-smoke -m "config fixed"
expect_eq "with the config fixed the switch works: green" "$(via_live)" green
expect_ok back -m "and back"
expect_eq "back on blue" "$(via_live)" blue

# ---- reload_command, confirmed through the stats socket
write_lb_config "haproxy = {
  mode = \"reload\";
  sockets = ( \"$T/h1.sock\" );
  reload_command = \"kill -USR2 \$(cat $T/h1.pid)\";
  map = \"$T/switchd.map\";
  config = \"$T/h1.cfg\";
  binary = \"$HAPROXY\";
  reload_timeout_ms = 5000;
};"
expect_ok reload
expect_eq "status through the stats socket" "$(status_get '["nodes"][0]["socket"]')" "$T/h1.sock"
P0=$(hap h1 "show info" | awk '$1 == "Pid:" { print $2 }')
expect_ok switch --force --no-smoke -m "reload_command"
expect_ne "a new worker answers the stats socket" "$(hap h1 "show info" | awk '$1 == "Pid:" { print $2 }')" "$P0"
expect_eq "reload_command switch: live host green" "$(via_live)" green

# ---- the bake window works in reload mode too (counters from the stats socket)
expect_eq "reload mode: the guard bakes green" "$(status_get '[d["guard"]["kind"], d["guard"]["pool"]]')" '["bake", "green"]'
backend_ctl green 'set?status=500' >/dev/null
guard_back() { split_count "$FE_PORT" 20 r >/dev/null; [ "$(status_get '["hot"]')" = blue ]; }
ok "reload mode: the guard goes back on its own" wait_for 30 guard_back
expect_eq "reload mode: the automatic back is journalled by switchd" "$(ctlj history -n 1 | jget '[d["entries"][0][k] for k in ("command", "user")]')" '["back", "switchd"]'
expect_eq "reload mode: live host blue again" "$(via_live)" blue
backend_ctl green reset >/dev/null
expect_ok switch --force --no-smoke --bake 0 -m "green again, unwatched"
expect_eq "--bake 0: no guard" "$(status_get '["guard"]')" null
write_lb_config "haproxy = {
  mode = \"reload\";
  reload_command = \"exit 3\";
  map = \"$T/switchd.map\";
  config = \"$T/h1.cfg\";
};"
expect_ok reload
expect_fail 1 haproxy back -m "reload_command fails"
expect_emsg 'reload_command failed: exited 3' "a failing reload_command is reported"
expect_emsg 'the old map file is back, but reloading HAProxy with it failed' "the failed reload back is reported as such"
expect_eq "map file restored after the failed reload_command" "$(file_map)" "$(map_text green blue)"
expect_eq "traffic unchanged: green" "$(via_live)" green

# ---- HAProxy keeps answering while it reloads, under load
write_lb_config "$RELOAD_MASTER"
expect_ok reload
# Load starts only once the current worker has every server UP and the live
# host answers, and stops (SIGINT: wrk still reports) once the six reloads
# are done: nothing here depends on how long they take on this machine.
ok "before the load: every server UP in the current worker" wait_servers_up h1 60
ok "before the load: the live host answers" wait_for 60 eval '[ "$(via_live)" = green ]'
WRK_SCRIPT=$LIB_DIR/wrk-status.lua wrk_start "$T/wrk.out" 240 "http://127.0.0.1:$FE_PORT/"
cumreq() { hap h1 'show info' | awk '$1 == "CumReq:" { print $2 }'; }
ok "wrk is sending (100 requests before the first reload)" wait_for 60 eval '[ "$(cumreq)" -gt 100 ]'
nsw=0
for i in 1 2 3 4 5 6; do
	ctl -q back -m "load $i" >/dev/null 2>&1 && nsw=$((nsw + 1))
done
wrk_stop
expect_eq "6 reloads under load succeeded" "$nsw" 6
read -r n bad err <<<"$(wrk_counts "$T/wrk.out")"
log "reload mode under wrk -t2 -c20 with 6 reloads: $n requests, $bad non-2xx, $err socket errors"
ok "wrk got answers" test "$n" -gt 100
expect_eq "no non-2xx answer during the reloads" "$bad" 0 ||
	{ grep '^status ' "$T/wrk.out" | sed 's/^/#   wrk: /'; hap_master h1 'show proc' | sed 's/^/#   show proc: /'; }
expect_eq "even number of flips from green: back on green" "$(via_live)" green
expect_eq "old workers are gone (hard-stop-after)" "$(wait_for 8 eval "[ \$(hap_master h1 'show proc' | grep -c '^[0-9].*worker') -eq 1 ]" && echo yes)" yes

t_done
