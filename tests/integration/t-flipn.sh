#!/bin/bash
# t-flipn: the flip across three HAProxy nodes is two-phase.  Phase 1
# (show, prepare, add map) runs on every node before any commit: a failure
# there leaves every node as it was, with no commit sent anywhere.  Phase 2
# (commit map) runs on every node at once: a commit held on one node while
# the others have already committed proves it; a commit failure on one node
# puts the others back.
. "$(dirname "$0")/../lib.sh"
t_setup

two_pools
start_haproxy h1
start_haproxy h2
start_haproxy h3
start_fault_proxy fp1 h1
start_fault_proxy fp2 h2
start_fault_proxy fp3 h3
HAP_NODES="fp1 fp2 fp3"
TIMEOUT_MS=10000 write_config
start_switchd

# nodes_are LIVE COLD: every node, the map file and state.json say that.
nodes_are() {
	local want h; want=$(map_text "$1" "$2")
	for h in h1 h2 h3; do
		expect_eq "$h map: live on $1" "$(hap_map $h)" "$want"
	done
	expect_eq "map file: live on $1" "$(file_map)" "$want"
	expect_eq "state.json hot is $1" "$(state_hot)" "$1"
}

# mark: remember where each fault proxy's log ends; since NODE: its lines
# after the mark.
mark() { local f; for f in fp1 fp2 fp3; do wc -l <"$T/$f.cmdlog" >"$T/$f.mark"; done; }
since() { tail -n +"$(( $(cat "$T/$1.mark") + 1 ))" "$T/$1.cmdlog"; }

mark
expect_ok switch --force -m "three nodes"
nodes_are green blue
expect_ok back
nodes_are blue green

# ---- one connection a node for a whole switch: the pre-checks' (all
# their commands on it at once), lent to the flip, whose commands are
# pipelined too: show/prepare, then the adds, then commit and read-back
# conns NODE: the commands each connection since the mark carried, one
# connection a line ("cmd|cmd|..."), the map's path as M and versions as @V.
conns() {
	since "$1" | awk -v m="$MAP" '$2 == "fwd" { c = $NF; $1 = $2 = $NF = ""; l = substr($0, 3)
		sub(/ $/, "", l); gsub(m, "M", l); gsub(/@[0-9]+/, "@V", l)
		if (c in cmds) cmds[c] = cmds[c] "|" l; else { cmds[c] = l; order[++n] = c } }
		END { for (i = 1; i <= n; i++) print cmds[order[i]] }'
}
flip_conn() {
	echo "prompt|show backend|show stat be_$1 2 -1|show map M|show map M|prepare map M|add map @V M $LIVE_HOST be_$1|add map @V M $COLD_HOST be_$2|commit map @V M|show map M"
}
for f in fp1 fp2 fp3; do
	expect_eq "$f: one connection a switch carried the pre-checks, the flip and the read-back" \
		"$(conns $f | grep '^prompt|')" "$(flip_conn green blue)
$(flip_conn blue green)"
	expect_nogrep '(prepare|add|commit) map' <(conns $f | grep -v '^prompt|') \
		"$f: no map change on any other connection"
done

# ---- phase 1 fails on node 1 ("add map"): nodes 2 and 3 were prepared
# too (in parallel), but no node saw a commit and every node is untouched
mark
fault_rules fp1 '{"fail_match": "^add map", "fail_reply": "Injected fault 31: out of memory."}'
expect_fail 1 haproxy switch --force -m "add fails on node 1"
expect_emsg "$T/fp1.sock" "add map failure: error names node 1"
expect_emsg "Injected fault 31" "add map failure: HAProxy's words"
for f in fp2 fp3; do
	ok "add map failure: $f was prepared" eval 'since $f | grep -q " prepare map "'
	expect_nogrep ' commit map ' <(since $f) "add map failure: $f saw no commit"
done
expect_nogrep ' commit map ' <(since fp1) "add map failure: node 1 saw no commit"
nodes_are blue green

# ---- phase 1 fails on node 3 ("prepare map"): the same
mark
fault_rules fp1 '{}'
fault_rules fp3 '{"fail_match": "^prepare map", "fail_reply": "Injected fault 32: no more versions."}'
expect_fail 1 haproxy switch --force -m "prepare fails on node 3"
expect_emsg "$T/fp3.sock" "prepare map failure: error names node 3"
expect_emsg "Injected fault 32" "prepare map failure: HAProxy's words"
for f in fp1 fp2 fp3; do
	expect_nogrep ' commit map ' <(since $f) "prepare map failure: $f saw no commit"
done
nodes_are blue green
fault_rules fp3 '{}'

# ---- phase 2 fails on node 2 ("commit map"): nodes 1 and 3 committed and
# are put back to what they served
mark
fault_rules fp2 '{"fail_match": "^commit map", "fail_reply": "Injected fault 33: commit refused."}'
expect_fail 1 haproxy switch --force -m "commit fails on node 2"
expect_emsg "$T/fp2.sock" "commit failure: error names node 2"
expect_emsg "Injected fault 33" "commit failure: HAProxy's words"
for f in fp1 fp3; do
	expect_eq "commit failure: $f committed, then committed the way back" \
		"$(since $f | grep -c ' fwd commit map ')" 2
done
nodes_are blue green
fault_rules fp2 '{}'

# ---- phase 2 is parallel: node 1's commit is held; nodes 2 and 3 (which
# one after the other would come after it) have already committed and
# serve green while it waits; after the release all agree
mark
n=$(grep -c ' hold ' "$T/fp1.cmdlog" 2>/dev/null || true)
fault_hold fp1 '^commit map'
( ctlj switch --force -m "held on node 1" >"$T/held.out" 2>&1; echo $? >"$T/held.rc" ) &
SW=$!
track "$SW"
ok "node 1's commit is held" wait_for 30 fault_held fp1 "$n"
ok "while node 1 waits: h2 and h3 serve green" wait_for 30 eval \
	'[ "$(hap_map h2)" = "$(map_text green blue)" ] && [ "$(hap_map h3)" = "$(map_text green blue)" ]'
expect_eq "while node 1 waits: h1 still serves blue" "$(hap_map h1)" "$(map_text blue green)"
expect_eq "while node 1 waits: h3 routes the live host to green" "$(via_live h3)" green
expect_eq "while node 1 waits: h1 routes the live host to blue" "$(via_live h1)" blue
ok "while node 1 waits: its commit is still held" fault_held fp1 "$n"
expect_nogrep ' release ' <(tail -n +"$(( $(cat "$T/fp1.mark") + 1 ))" "$T/fp1.cmdlog") \
	"while node 1 waits: its commit was not released"
fault_release fp1
ok "the switch ends after the release" wait_for 30 test -s "$T/held.rc"
wait "$SW" 2>/dev/null; untrack "$SW"
expect_eq "the held switch succeeded" "$(cat "$T/held.rc")" 0
fault_rules fp1 '{}'
nodes_are green blue
for h in h1 h2 h3; do
	expect_eq "after the release: $h routes the live host to green" "$(via_live $h)" green
done

t_done
