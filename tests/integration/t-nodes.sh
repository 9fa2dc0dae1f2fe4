#!/bin/bash
# t-nodes: several HAProxy nodes.  A switch flips every node; a node that is
# unreachable refuses the switch before anything is touched; a node that
# fails half way (commit map, add map, a dropped connection) makes switchd
# put the nodes it already changed back, fail naming the node and HAProxy's
# (here: the fault proxy's) words, and leave state and map file alone.
. "$(dirname "$0")/../lib.sh"
t_setup

two_pools
start_haproxy h1
start_haproxy h2

# nodes_are LIVE COLD: both nodes serve that, the map file says it, state.json
# says it (when it exists).
nodes_are() {
	local want; want=$(map_text "$1" "$2")
	expect_eq "h1 map: live on $1" "$(hap_map h1)" "$want"
	expect_eq "h2 map: live on $1" "$(hap_map h2)" "$want"
	expect_eq "map file: live on $1" "$(file_map)" "$want"
	expect_eq "h1 routes the live host to $1" "$(via_live h1)" "$1"
	expect_eq "h2 routes the live host to $1" "$(via_live h2)" "$1"
	if [ -f "$T/state/state.json" ]; then
		expect_eq "state.json hot is $1" "$(state_hot)" "$1"
	fi
}

# ---- both nodes flip, and back
HAP_NODES="h1 h2"
write_config
start_switchd
S=$(ctlj status)
expect_eq "status lists two nodes" "$(jv "$S" 'len(d["nodes"])')" 2
expect_eq "status node 2 socket" "$(jv "$S" '["nodes"][1]["socket"]')" "$T/h2.sock"
expect_ok switch --force -m "two nodes"
expect_eq "switch reply counts 2 nodes" "$(jv "$OUT" '["nodes"]')" 2
nodes_are green blue
expect_ok back
nodes_are blue green

# ---- a node that does not answer: refused before anything is touched
stop_haproxy h2
expect_fail 1 haproxy switch --force -m "h2 is down"
expect_emsg "$T/h2.sock" "error names the unreachable node's socket"
expect_eq "h1 untouched while h2 is down" "$(hap_map h1)" "$(map_text blue green)"
expect_eq "map file untouched while h2 is down" "$(file_map)" "$(map_text blue green)"
expect_eq "state untouched while h2 is down" "$(state_hot)" blue
S=$(ctlj status)
expect_eq "status: node 2 not ok" "$(jv "$S" '["nodes"][1]["ok"]')" false
expect_match "status: node 2 has an error" "$(jv "$S" '["nodes"][1]["error"]')" '.'
restart_haproxy h2

# A socket path where nothing ever listened.
HAP_NODES="h1 $T/dead.sock"
write_config
expect_ok reload
expect_fail 1 haproxy switch --force
expect_emsg "$T/dead.sock" "error names the dead socket"
expect_eq "h1 untouched (dead node)" "$(hap_map h1)" "$(map_text blue green)"

# ---- node 2 fails "commit map" half way: node 1 is put back
start_fault_proxy fp2 h2
HAP_NODES="h1 fp2"
write_config
expect_ok reload
fault_rules fp2 '{"fail_match": "commit map", "fail_reply": "Injected fault 4242: commit refused."}'
expect_fail 1 haproxy switch --force -m "doomed"
expect_emsg "$T/fp2.sock" "error names node 2"
expect_emsg "Injected fault 4242" "error carries HAProxy's own words"
ok "the fault proxy saw a commit for node 2" grep -q '^[0-9.]* fail .*commit map' "$T/fp2.cmdlog"
nodes_are blue green
S=$(ctlj status)
expect_eq "status still hot blue after the failed switch" "$(jv "$S" '["hot"]')" blue

# ---- node 2 fails "add map"
fault_rules fp2 '{"fail_match": "add map", "fail_reply": "Injected fault 77: out of memory."}'
expect_fail 1 haproxy switch --force -m "doomed too"
expect_emsg "Injected fault 77" "add map failure: HAProxy's words"
nodes_are blue green

# ---- node 2 closes the connection on commit without a word
fault_rules fp2 '{"close_match": "commit map"}'
expect_fail 1 haproxy switch --force -m "dropped"
expect_emsg "$T/fp2.sock" "dropped connection: error names node 2"
nodes_are blue green

# ---- node 2 answers the read-back with a stale map: HAProxy's plain-text
# "entry not found" style answers are errors too
fault_rules fp2 '{"fail_match": "^show map", "fail_reply": "Unknown map identifier. Please use #<id> or <file>."}'
expect_fail 1 haproxy switch --force -m "unknown map"
nodes_are blue green
ok "h1 serves the live host from blue after all the failures" test "$(via_live h1)" = blue

# ---- node 2's stat row for the target backend lacks the columns that
# count its usable servers: the pre-check refuses before anything changes
fault_rules fp2 '{"fail_match": "^show stat be_", "fail_reply": "# pxname,svname,status,\nbe_green,BACKEND,UP,\n"}'
expect_fail 1 haproxy switch --force -m "odd stat"
expect_emsg "node $T/fp2.sock: .show stat be_green 2 -1. has no act/bck columns" "the error names the node and the command"
nodes_are blue green
fault_rules fp2 '{}'

# ---- node 2 answers "commit map" too late (after timeout_ms): the switch
# fails, and once the late commit has landed every node, the map file and
# the state still end up agreeing ("every node ends up agreeing") without a
# restart of switchd
TIMEOUT_MS=1000 write_config
expect_ok reload
n=$(grep -c ' release ' "$T/fp2.cmdlog" 2>/dev/null || true)
fault_hold fp2 'commit map'
expect_fail 1 haproxy switch --force -m "too slow"
expect_emsg "$T/fp2.sock" "timeout: error names node 2"
fault_release fp2        # the late commit lands on h2 now, after switchd gave up
ok "the late commit went on to h2" wait_for 30 fault_released fp2 "$n"
fault_rules fp2 '{}'
agree_all() {
	local m; m=$(hap_map h1)
	[ "$(hap_map h2)" = "$m" ] && [ "$(file_map)" = "$m" ] &&
	[ "$(map_text "$(state_hot)" "$(jget '["cold"]' "$T/state/state.json")")" = "$m" ] &&
	[ "$(status_get '["hot"]')" = "$(state_hot)" ] &&
	[ "$(status_get 'bool(d.get("busy"))')" = false ]
}
if ! ok "after a late commit: nodes, map file and state agree" wait_for 60 agree_all; then
	log "h1: $(hap_map h1 | tr '\n' ' ')"
	log "h2: $(hap_map h2 | tr '\n' ' ')"
	log "file: $(file_map | tr '\n' ' ') state hot: $(state_hot) status hot: $(status_get '["hot"]')"
fi
expect_eq "after a late commit: h1 and h2 route the live host alike" "$(via_live h1)" "$(via_live h2)"
write_config
expect_ok reload
# back to a known state for what follows: h2 reloads the map file
restart_haproxy h2
if [ "$(status_get '["hot"]')" = green ]; then ctl -q back; fi
ok "known state: blue hot on both nodes" eval '[ "$(hap_map h1)" = "$(map_text blue green)" ] && [ "$(hap_map h2)" = "$(map_text blue green)" ]'

# ---- with the faults gone the same nodes switch fine
fault_rules fp2 '{}'
expect_ok switch --force -m "healed"
nodes_are green blue
run ctlj history -n 50
expect_eq "the healed switch is in history" "$(jv "$OUT" '["entries"][0]["message"]')" healed
expect_eq "no failed switch counted as ok" \
	"$(jv "$OUT" 'len([e for e in d["entries"] if e.get("message") in ("doomed", "doomed too", "dropped", "unknown map") and e["result"] == "ok"])')" 0

# ---- the flip is one atomic transaction per node: prepare/add/commit map,
# never "set map" (which changes one key at a time)
ok "node 2 saw prepare map" grep -q ' prepare map ' "$T/fp2.cmdlog"
ok "node 2 saw add map @VER" grep -q ' add map @[0-9]' "$T/fp2.cmdlog"
ok "node 2 saw commit map @VER" grep -q ' commit map @[0-9]' "$T/fp2.cmdlog"
expect_nogrep ' (set|del|clear) map ' "$T/fp2.cmdlog" "node 2 never saw set/del/clear map"

# ---- min_up holds on every node: a pool UP on node 1 but DOWN on node 2
# (the nodes' health checks disagree) is refused, naming node 2
hap h2 "disable server be_blue/b1" >/dev/null
ok "h2 shows b1 in MAINT" wait_count h2 be_blue MAINT 1 5
expect_eq "h1 still shows b1 UP" "$(hap_count h1 be_blue UP)" 1
expect_fail 1 refused back -m "blue down on node 2 only"
expect_emsg "$T/fp2.sock" "min_up refusal names node 2"
nodes_are green blue
hap h2 "enable server be_blue/b1" >/dev/null
ok "h2 shows b1 UP again" wait_count h2 be_blue UP 1 10
expect_ok back -m "blue up everywhere"
nodes_are blue green

# ---- nodes that disagree when switchd starts: it makes them agree (with
# the state file: there is no majority of HAProxy to trust)
stop_switchd
v=$(hap h2 "prepare map $T/switchd.map" | awk '/New version/ { print $NF }')
hap h2 "add map @$v $T/switchd.map $LIVE_HOST be_green" >/dev/null
hap h2 "add map @$v $T/switchd.map $COLD_HOST be_blue" >/dev/null
hap h2 "commit map @$v $T/switchd.map" >/dev/null
expect_eq "h2 flipped behind switchd's back" "$(hap_map h2)" "$(map_text green blue)"
start_switchd
ok "after start: nodes agree within 10 s" wait_for 10 eval '[ "$(hap_map h1)" = "$(hap_map h2)" ]'
expect_eq "after start: map file agrees with the nodes" "$(file_map)" "$(hap_map h1)"
expect_eq "after start: status agrees with the nodes" \
	"$(map_text "$(status_get '["hot"]')" "$(status_get '["cold"]')")" "$(hap_map h1)"
expect_eq "after start: h1 and h2 route the live host alike" "$(via_live h1)" "$(via_live h2)"

# ---- issue 13: with no trustworthy state file, reconcile never applies a
# made-up role.  h1 serves green (healthy), h2 blue whose only server is
# down, state.json is garbage: "applying the state file" meant applying the
# built-in default (blue) to both nodes, and both answered 503.
stop_switchd
HAP_NODES="h1 h2"
write_config
flip_node() {	# flip_node NODE LIVE COLD: behind switchd's back
	local v; v=$(hap "$1" "prepare map $T/switchd.map" | awk '/New version/ { print $NF }')
	hap "$1" "add map @$v $T/switchd.map $LIVE_HOST be_$2" >/dev/null
	hap "$1" "add map @$v $T/switchd.map $COLD_HOST be_$3" >/dev/null
	hap "$1" "commit map @$v $T/switchd.map" >/dev/null
}
flip_node h1 green blue
flip_node h2 blue green
stop_backend blue
ok "blue's only server is DOWN on h2" wait_count h2 be_blue DOWN 1 10
echo 'this is {not json' >"$T/state/state.json"
: >"$T/switchd.log"
start_switchd
expect_eq "damaged state, nodes split: h1 still serves green" "$(via_live h1)" green
expect_eq "damaged state, nodes split: h2 moved to green, not both to blue" "$(via_live h2)" green
expect_eq "no node was moved to the pool that fails the pre-checks" "$(hap_map h1)$(hap_map h2)" \
	"$(map_text green blue)$(map_text green blue)"
expect_eq "status: green hot" "$(status_get '["hot"]')" green
expect_grep "no trustworthy state file" "$T/switchd.log" "the log says the state file was not trusted"
expect_grep "blue fails the pre-checks" "$T/switchd.log" "the log says why blue was not applied"
expect_nogrep "as the state file says" "$T/switchd.log" "the log does not claim the state file was applied"
expect_ok unlock --force
start_backend blue "$BLUE_PORTS"
ok "blue UP again on both nodes" eval 'wait_count h1 be_blue UP 1 10 && wait_count h2 be_blue UP 1 10'

# ---- issue 13: a node down at start is repaired when it comes back.  The
# nodes that answered agreed, so no repair was scheduled, and h2, back
# serving the other pool, stayed split until someone ran sync.
stop_switchd
stop_haproxy h2
: >"$T/switchd.log"
start_switchd
hot=$(status_get '["hot"]')
other=$( [ "$hot" = blue ] && echo green || echo blue )
expect_eq "h2 down at start: status says $hot hot, as h1 serves" "$(hap_map h1)" "$(map_text "$hot" "$other")"
cp "$T/switchd.map" "$T/map.keep"
write_map "$other" "$hot"	# h2 comes back with a stale map file
start_haproxy h2
cp "$T/map.keep" "$T/switchd.map"
# No status, no sync here: only the background repair may fix it.
ok "h2 back serving $other is repaired to $hot in the background" \
	wait_for 45 eval '[ "$(hap_map h2)" = "$(map_text "$hot" "$other")" ]'
expect_eq "h1 untouched ($hot)" "$(hap_map h1)" "$(map_text "$hot" "$other")"
expect_grep "repair scheduled: a node did not answer at start" "$T/switchd.log" \
	"the log says a repair was scheduled for the node that was down"
expect_eq "status: the nodes agree again" "$(status_get '["agree"]')" true

t_done
