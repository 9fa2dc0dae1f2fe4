#!/bin/bash
# t-discover: pool membership from EC2 tags.  switchd adds a new green
# instance to be_green at run time (no HAProxy reload: same PID), and a
# terminated one is drained — its request in flight completes — before it is
# deleted.  `hosts cold` lists the discovered servers (for Capistrano), also
# after a restart with EC2 down; the generated backends file lists them for
# HAProxy reloads.
. "$(dirname "$0")/../lib.sh"
t_setup
EP_PY=/usr/bin/python3
ec2_env

instance() {	# instance ID POOL PORT
	admin POST instances '{"instances": [{"id": "'$1'", "private_ip": "127.0.0.1",
	  "tags": {"switchd:pool": "'$2'", "switchd:port": "'$3'"}}]}' >/dev/null ||
		die "cannot create instance $1"
}

pb=$(free_port); pg1=$(free_port); pg2=$(free_port)
start_backend blue "$pb" blue
start_backend g1 "$pg1" green
start_backend g2 "$pg2" green
# HAProxy starts with empty backends: every server comes from EC2.
BLUE_PORTS="" GREEN_PORTS=""
write_map blue green
start_haproxy h1
HPID=$(hap_pid h1)

start_endpoint
IB=i-0b1000000000000b1; IG1=i-06100000000000061; IG2=i-06200000000000062
instance $IB blue "$pb"
instance $IG1 green "$pg1"
instance i-0deadbeef00000001 other 9 # not in a pool: ignored

write_config "ec2 = { endpoint = \"http://127.0.0.1:$EPORT\"; discover = true; discover_interval = 3600;
  server_options = \"check inter 200ms fall 2 rise 1\"; role_tag = \"group\"; };
notify = { command = \"echo \\\"\$SWITCHD_COMMAND \$SWITCHD_RESULT: \$SWITCHD_MESSAGE\\\" >> $T/notify.log\"; };"
sed -i "s|^haproxy = {|haproxy = {\n  backends_file = \"$T/backends.cfg\";|" "$T/switchd.conf"
run "$SWITCHD" -n -f "$T/switchd.conf"
expect_eq "config with discovery is valid" "$OUT" "configuration OK"
# Only HAProxy's runtime API can follow discovered servers.
sed 's|^haproxy = {|haproxy = {\n  mode = "reload"; reload_command = "true";|' "$T/switchd.conf" >"$T/bad.conf"
run "$SWITCHD" -n -f "$T/bad.conf"
expect_match "discovery with haproxy.mode reload is refused" "$ERR" 'ec2.discover needs haproxy.mode "runtime"'
LB_BACKENDS=none write_lb_config "nginx = { include = \"$T/inc.conf\"; };" \
	"ec2 = { endpoint = \"http://127.0.0.1:$EPORT\"; discover = true; };" "$T/bad.conf"
run "$SWITCHD" -n -f "$T/bad.conf"
expect_match "discovery with the nginx driver is refused" "$ERR" 'ec2.discover needs haproxy.mode "runtime"'
expect_eq "and switchd -n exits 1" "$RC" 1
start_switchd

in_backend() { hap h1 "show stat -1 4 -1" | grep -q "^$1,$2,"; }
ok "start-up discovery adds the blue instance to be_blue" wait_for 10 in_backend be_blue $IB
ok "and the green one to be_green" wait_for 10 in_backend be_green $IG1
ok "they come UP" wait_count h1 be_green UP 1 10
expect_eq "live host answers blue" "$(via_live)" blue
expect_eq "hosts cold: the discovered green host" "$(ctl hosts cold)" "127.0.0.1"
expect_eq "hosts --json lists the server by instance id" \
	"$(ctlj hosts cold | jget '[s["name"] + "=" + s["address"] for s in d["servers"]]')" \
	"[\"$IG1=127.0.0.1:$pg1\"]"
expect_grep "server $IG1 127.0.0.1:$pg1 check" "$T/backends.cfg" "backends file lists the green instance"
expect_grep "^backend be_green from switchd_pools" "$T/backends.cfg" "backends file uses the named defaults"
# The backends file is valid HAProxy configuration beside a main file.
cat >"$T/main.cfg" <<EOF
defaults switchd_pools
	mode http
	timeout connect 1s
	timeout client 5s
	timeout server 5s
	balance roundrobin
frontend fe from switchd_pools
	bind 127.0.0.1:$(free_port)
	default_backend be_blue
EOF
ok "haproxy -c accepts the generated backends file" "$HAPROXY" -c -q -f "$T/main.cfg" -f "$T/backends.cfg"
ok "discovered instances get their role tags" wait_for 10 eval \
	"admin GET instances | jget '[i[\"tags\"].get(\"group\") for i in d[\"instances\"] if i[\"id\"] == \"$IG1\"][0]' | grep -qx cold"

# ---- a new green instance: added at run time, no reload
instance $IG2 green "$pg2"
expect_ok sync
ok "sync adds the new instance to be_green" in_backend be_green $IG2
expect_eq "HAProxy was not reloaded (same PID)" "$(hap_pid h1)" "$HPID"
ok "both green servers UP" wait_count h1 be_green UP 2 10
seen_both() {	# six requests to the cold host reach both g1 and g2
	local i names=""
	for i in 1 2 3 4 5 6; do
		names="$names $(curl -s -o /dev/null -D - -H "Host: $COLD_HOST" \
			"http://127.0.0.1:$FE_PORT/" | tr -d '\r' | sed -n 's/^[Xx]-[Bb]ackend: //p')"
	done
	case $names in *g1*) ;; *) return 1 ;; esac
	case $names in *g2*) ;; *) return 1 ;; esac
}
ok "the cold host is served by both green instances" wait_for 5 seen_both
expect_eq "hosts cold has one host (both on 127.0.0.1)" "$(ctl hosts cold)" "127.0.0.1"
expect_eq "status lists both green servers" \
	"$(status_get 'sorted(s["name"] for s in d["pools"]["green"]["servers"])')" "[\"$IG1\", \"$IG2\"]"

# ---- a terminated instance is drained, never cut
backend_ctl g1 hold >/dev/null       # g1's answers wait for the test's release
: >"$T/slow.out"
slow=""
for i in 1 2 3 4; do
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 120 -H "Host: $COLD_HOST" \
		"http://127.0.0.1:$FE_PORT/slow$i" >>"$T/slow.out" &
	slow="$slow $!"
done
in_flight() { [ "$(hap h1 "show stat -1 4 -1" | awk -F, -v s=$IG1 '$2 == s { print $5 }')" -ge 1 ]; }
ok "a held request is in flight on $IG1" wait_for 30 in_flight
admin POST terminate '{"ids": ["'$IG1'"]}' >/dev/null
run ctlj sync
expect_eq "sync after termination exits 0" "$RC" 0
expect_match "sync reports $IG1 draining" "$(printf '%s' "$OUT" | jget '["discover"]["draining"]')" "be_green/$IG1"
ok "$IG1 is not deleted while its request is in flight" in_backend be_green $IG1
expect_match "$IG1 takes no new requests (drain)" \
	"$(hap h1 "show servers state be_green" | awk -v s=$IG1 '$4 == s { print $7 }')" '^(8|9|24|25|40|41)$' 
backend_ctl g1 release >/dev/null
wait $slow
expect_eq "every request in flight completed with 200" "$(sort -u "$T/slow.out")" 200
gone() { ! in_backend be_green $IG1; }
ok "once idle, $IG1 is deleted (the drain poll)" wait_for 60 gone
expect_eq "$IG2 still serves" "$(via_cold)" green
expect_eq "hosts --json: only $IG2 left" \
	"$(ctlj hosts cold | jget '[s["name"] for s in d["servers"]]')" "[\"$IG2\"]"
ok "backends file no longer lists $IG1" eval "! grep -q $IG1 '$T/backends.cfg'"


# ---- issue 13: an answer that lists nothing never empties a pool.  A filter
# typo makes DescribeInstances answer "no instances" successfully; taken at
# its word it drained and deleted every discovered server (live host 503).
cp "$T/switchd.conf" "$T/good.conf"
sed -i 's|discover = true;|discover = true; filters = ( "tag:env=prdo" );|' "$T/switchd.conf"
expect_ok reload
expect_ok sync
expect_match "sync reports the refusal" "$(printf '%s' "$OUT" | jget '["discover"]["refused"]')" \
	'none of the 1 instance of blue'
ok "the hot pool keeps its server (filter typo)" in_backend be_blue $IB
ok "the cold pool keeps its server too" in_backend be_green $IG2
expect_eq "live host still answers blue" "$(via_live)" blue
expect_eq "hosts hot still lists the blue host" "$(ctl hosts hot)" "127.0.0.1"
expect_match "status --json shows the refusal" \
	"$(status_get '[r["pool"] for r in d["ec2"]["discover_refused"]]')" '"blue"'
run ctl status
expect_grep "discovery: +REFUSED for blue" - "status (for people) shows the refusal"
expect_eq "the refusal is journaled once (notified)" \
	"$(ctlj history | jget 'len([e for e in d["entries"] if e["command"] == "discover" and e["result"] == "refused"])')" 1
expect_ok sync
expect_eq "a repeated refusal is not journaled again" \
	"$(ctlj history | jget 'len([e for e in d["entries"] if e["command"] == "discover"])')" 1
expect_grep "discover: refused: EC2 lists none" "$T/switchd.log" "the refusal is logged"
ok "the refusal is notified (notify.command)" wait_for 10 grep -q '^discover refused: EC2 lists none' "$T/notify.log"
cp "$T/good.conf" "$T/switchd.conf"
expect_ok reload
expect_ok sync
expect_eq "with the filter fixed, the refusal is gone from status" \
	"$(status_get 'd["ec2"].get("discover_refused")')" null

# ---- issue 13: EC2 values are checked before they reach HAProxy's admin
# socket or the backends file: a newline would inject configuration, a ';'
# another admin command.
IBAD=i-0bad0000000000bad
admin POST instances '{"instances": [{"id": "'$IBAD'", "private_ip": "127.0.0.1\nbackend injected",
  "tags": {"switchd:pool": "green", "switchd:port": "'$pg2'"}}]}' >/dev/null || die "cannot create $IBAD"
expect_ok sync
expect_match "sync names the bad private IP" "$(printf '%s' "$OUT" | jget '["discover"]["errors"]')" \
	"$IBAD: private IP .* not valid; skipped"
ok "the instance with a bad IP is not added" eval "! in_backend be_green $IBAD"
ok "backends file has no injected line" eval "! grep -q injected '$T/backends.cfg'"
ok "haproxy -c still accepts the backends file" "$HAPROXY" -c -q -f "$T/main.cfg" -f "$T/backends.cfg"
admin POST remove '{"ids": ["'$IBAD'"]}' >/dev/null

# ---- issue 13: the hot pool never goes below min_up UP servers.  Blue has
# IB (UP) and IB2 (DOWN: nothing listens); EC2 stops listing IB: removing it
# would leave no blue server UP, so it stays until IB2 is UP.
IB2=i-0b2000000000000b2
pb2=$(free_port)
instance $IB2 blue "$pb2"
expect_ok sync
ok "$IB2 added to be_blue" in_backend be_blue $IB2
ok "$IB2 is DOWN (nothing listens)" wait_count h1 be_blue DOWN 1 10
admin POST terminate '{"ids": ["'$IB'"]}' >/dev/null
expect_ok sync
expect_match "sync refuses to take the hot pool below min_up" \
	"$(printf '%s' "$OUT" | jget '["discover"]["refused"]')" 'would leave 0 servers UP, fewer than 1'
ok "$IB (the only blue server UP) is kept" in_backend be_blue $IB
expect_eq "live host still answers blue" "$(via_live)" blue
start_backend b2 "$pb2" blue
ok "$IB2 comes UP" wait_count h1 be_blue UP 2 10
expect_ok sync
ok "with $IB2 UP, $IB goes" wait_for 15 eval "! in_backend be_blue $IB"
expect_eq "live host answers blue (from $IB2)" "$(via_live)" blue

# ---- issue 13: at most half of a pool goes in one pass.  Green has four
# instances; EC2 stops listing three: they are kept; two at a time may go.
IG3=i-06300000000000063; IG4=i-06400000000000064; IG5=i-06500000000000065
for i in $IG3 $IG4 $IG5; do instance $i green "$pg2"; done
expect_ok sync
expect_eq "green has four servers" \
	"$(ctlj hosts cold | jget 'len(d["servers"])')" 4
admin POST terminate '{"ids": ["'$IG3'", "'$IG4'", "'$IG5'"]}' >/dev/null
expect_ok sync
expect_match "three of four gone at once is refused" \
	"$(printf '%s' "$OUT" | jget '["discover"]["refused"]')" 'no longer lists 3 of the 4 instances of green'
ok "$IG3 is kept" in_backend be_green $IG3
admin POST state '{"ids": ["'$IG5'"], "state": "running"}' >/dev/null
expect_ok sync
expect_eq "two of four may go" "$(printf '%s' "$OUT" | jget '["discover"]["refused"]')" "[]"
ok "$IG3 and $IG4 are deleted" wait_for 15 eval "! in_backend be_green $IG3 && ! in_backend be_green $IG4"
admin POST terminate '{"ids": ["'$IG5'"]}' >/dev/null
expect_ok sync
ok "then $IG5 (one of two)" wait_for 15 eval "! in_backend be_green $IG5"
expect_eq "green is back to $IG2 alone" \
	"$(ctlj hosts cold | jget '[s["name"] for s in d["servers"]]')" "[\"$IG2\"]"

# ---- restart with EC2 down: membership comes from the state file
stop_pid "$EPID"
stop_switchd
start_switchd
expect_eq "after restart with EC2 down: hosts --json from state" \
	"$(ctlj hosts cold | jget '[s["name"] for s in d["servers"]]')" "[\"$IG2\"]"
expect_fail 1 ec2 sync
expect_emsg "ConnectionError|connect" "sync names the EC2 failure"
ok "a failed discovery leaves HAProxy's servers alone" in_backend be_green $IG2

t_done
