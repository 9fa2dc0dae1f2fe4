#!/bin/bash
# t-cluster: three switchd instances sharing two HAProxy nodes through a
# three-member etcd cluster (Debian's etcd-server 3.4, on loopback ports,
# started and stopped here).  SPEC.md "Several switchd instances: etcd".
#
#   0. The README's "More than one host" example passes switchd -n (its
#      endpoints made the test's), and its cluster group is the one every
#      instance here runs with (name and lease_ttl made the test's).
#   a. 30 concurrent switch/back from all three instances at once: each runs
#      or gets code "busy"; the successes are the new journal entries; both
#      nodes, the shared state and every instance's status say one hot pool;
#      every instance's history lists the same ids in the same order, each
#      entry naming its instance.
#   b. "lock" on one instance is seen by the others, which refuse with code
#      "locked" until "unlock".
#   c. The holder killed -9 while one node's "commit map" is held (fault
#      proxy): after its lease ends another instance finishes or undoes the
#      switch, both nodes serve one pool, every live instance agrees, and a
#      journal entry by switchd says so.
#   d. One etcd member down: a switch works.  Two down: refused with code
#      "cluster", traffic untouched, status says "connected": false and how
#      stale; members back: a switch works again, no restart of switchd.
#   e. Without cluster: status --json has "cluster": null, no status line.
#   f. The holder cut off from etcd (tests/cut_proxy.py) with its switch
#      held before the commits: another instance takes over once its lease
#      ends, and the holder, let go on, stops before any node's commit with
#      code "cluster".
# Every wait is for an event (bounded), never for a time.
. "$(dirname "$0")/../lib.sh"
t_setup

PREFIX=/switchd/www      # the README example's prefix
LEASE_TTL=3
NI=3                     # switchd instances
INSTANCES=$(seq 1 "$NI")

# ---------------------------------------------------------------- etcd, HAProxy

etcd_start_cluster 3
two_pools
start_haproxy h1
start_haproxy h2
# sw1 reaches node 1 through a fault proxy (scenarios c and f hold its
# commands there; the others go straight to h1), and etcd through a proxy
# that scenario f cuts.
start_fault_proxy fp1 h1
TIMEOUT_MS=60000          # a held command waits for the test, not for a timeout
start_cut_proxy ec1 $(for i in 1 2 3; do cat "$T/etcd$i.cport"; done)
SW1_ENDPOINTS=$(for p in $(cat "$T/ec1.ports"); do printf '"http://127.0.0.1:%s", ' "$p"; done | sed 's/, $//')

# ---------------------------------------------------------------- 0. the README example

awk '/<!-- README example: cluster begin/ { m = 1; next }
     /<!-- README example: cluster end/ { m = 0 }
     m && /^```conf$/ { b = 1; next } m && b && /^```$/ { b = 0; next }
     m && b' "$REPO_DIR/README.md" >"$T/readme.conf"
grep -q '^cluster = {' "$T/readme.conf" ||
	die "README.md: no \"cluster = {\" block between the \"README example: cluster\" markers"
# readme_cluster NAME TTL [ENDPOINTS]: the example's cluster group,
# endpoints, name and lease_ttl made the test's (each rewrite checked, so
# that a change of the example's shape fails here rather than testing
# something else).
readme_cluster() {
	awk '/^cluster = \{/ { c = 1 } c { print } c && /^\};/ { exit }' "$T/readme.conf" |
		sed -e "s|^\\( *endpoints = (\\).*|\\1 ${3:-$ETCD_ENDPOINTS_CONF} );|" \
		    -e "s|^\\( *name = \\)\"[^\"]*\"|\\1\"$1\"|" \
		    -e "s|^\\( *lease_ttl = \\)[0-9]*|\\1$2|"
}
readme_cluster sw1 "$LEASE_TTL" >"$T/cluster.sample"
for k in "endpoints = ( $ETCD_ENDPOINTS_CONF );" 'name = "sw1"' "lease_ttl = $LEASE_TTL" "prefix = \"$PREFIX\""; do
	grep -qF "$k" "$T/cluster.sample" ||
		die "README.md cluster example: no line with '$k' after the rewrite (its shape changed?)"
done
sed "s|^\\( *endpoints = (\\).*|\\1 $ETCD_ENDPOINTS_CONF );|" "$T/readme.conf" >"$T/readme-test.conf"
run "$SWITCHD" -n -f "$T/readme-test.conf"
expect_eq "README example (test's endpoints): switchd -n says OK${ERR:+ ($ERR)}" "$OUT" "configuration OK"
sed 's/^\( *lease_ttl = \)[0-9]*/\11/' "$T/readme-test.conf" >"$T/readme-bad.conf"
run "$SWITCHD" -n -f "$T/readme-bad.conf"
expect_eq "README example with lease_ttl = 1: switchd -n exits 1" "$RC" 1
expect_match "and names the key and its range" "$OUT $ERR" 'readme-bad\.conf:[0-9]+: cluster\.lease_ttl must be 2\.\.300'

# ---------------------------------------------------------------- e. without cluster
# (the rest of the suite runs without it; here only what status says)
HAP_NODES="h1 h2" write_config
start_switchd
expect_eq "without cluster: status --json has \"cluster\": null" "$(status_get '["cluster"]')" null
run ctl status
expect_nogrep '^cluster:' - "without cluster: the human status has no cluster line"
stop_switchd
expect_eq "without cluster: switchd exits 0 on SIGTERM" "$SWITCHD_RC" 0

# ---------------------------------------------------------------- the instances

HAP_NODES="fp1 h2" inst_config 1 "$(readme_cluster sw1 "$LEASE_TTL" "$SW1_ENDPOINTS")"
for i in 2 3; do
	HAP_NODES="h1 h2" inst_config "$i" "$(readme_cluster "sw$i" "$LEASE_TTL")"
done
for i in $INSTANCES; do inst_start "$i"; done

for i in $INSTANCES; do
	S=$(ictlj "$i" status)
	expect_eq "sw$i: status names its cluster instance and prefix" \
		"$(jv "$S" '[d["cluster"]["name"], d["cluster"]["prefix"], d["cluster"]["connected"]]')" \
		"[\"sw$i\", \"$PREFIX\", true]"
done
run ictl 1 status
expect_grep "^cluster: sw1 at $PREFIX: connected" - "human status: cluster: sw1 at $PREFIX: connected"

# nodes_serve: "POOL" if both nodes route the live host (and the cold host
# to the other pool) alike, by their live maps and by a request; else "split".
nodes_serve() {
	local m1 m2 v1 v2
	m1=$(hap_map h1); m2=$(hap_map h2)
	v1=$(via_live h1); v2=$(via_live h2)
	if [ "$m1" = "$m2" ] && [ "$v1" = "$v2" ] && [ "$m1" = "$(map_text "$v1" "$( [ "$v1" = blue ] && echo green || echo blue)")" ]; then
		echo "$v1"
	else
		echo "split: h1 map [$m1] via [$v1], h2 map [$m2] via [$v2]"
	fi
}
# shared_hot: "hot" of the shared state in etcd.
shared_hot() { etcd_get "$PREFIX/state" | jget '["hot"]'; }
# all_status_hot POOL [INSTANCES]: every (live) instance's status says POOL
# is hot and nothing is in flight.
all_status_hot() {
	local want=$1 i
	for i in ${2:-$INSTANCES}; do
		[ "$(istatus "$i" '[d["hot"], bool(d.get("busy"))]')" = "[\"$want\", false]" ] || return 1
	done
}
# history_ids I: instance I's journal ids, newest first, one line.
history_ids() { ictlj "$1" history -n 1000 | jget '" ".join(e["id"] for e in d["entries"])'; }
# histories_agree [INSTANCES]: every instance lists the same ids.
histories_agree() {
	local ins=${1:-$INSTANCES} i first
	first=$(history_ids "${ins%%[!0-9]*}") || return 1
	for i in $ins; do
		[ "$(history_ids "$i")" = "$first" ] || return 1
	done
}
journal_keys() { etcd_keys "$PREFIX/journal/" | grep -c .; }
# journal_ids_newest_first: the ids of the journal's values in etcd, by key,
# last key first (as history lists them).
journal_ids_newest_first() {
	etcd_values "$PREFIX/journal/" | "$PYTHON" -c 'import json, sys
print(" ".join(json.loads(l)["id"] for l in reversed(sys.stdin.read().splitlines()) if l.strip()))'
}
# agree_on POOL DESC [INSTANCES]: nodes, shared state and every instance
# (polled: the others learn by their watch) say POOL.
agree_on() {
	local want=$1 d=$2 ins=${3:-$INSTANCES} i
	expect_eq "$d: both nodes serve $want" "$(nodes_serve)" "$want"
	expect_eq "$d: the shared state in etcd says $want is hot" "$(shared_hot)" "$want"
	if ! ok "$d: every instance's status says $want is hot, nothing in flight" \
	    wait_for 15 all_status_hot "$want" "$ins"; then
		for i in $ins; do log "sw$i status: $(istatus "$i" '[d["hot"], d.get("busy")]')"; done
	fi
	ok "$d: every instance's history lists the same ids in the same order" \
		wait_for 15 histories_agree "$ins"
}

# ---- one switch and back, so that "back" has something to go back to
on 1 expect_ok switch --force -m "first"
agree_on green "a switch on sw1"
on 2 expect_ok back -m "first back"
agree_on blue "back on sw2"
run ictlj 3 history -n 1000
expect_eq "sw3's history: the back by sw2, then the switch by sw1" \
	"$(jv "$OUT" '[(e["command"], e.get("instance")) for e in d["entries"] if e["command"] in ("switch", "back")]')" \
	'[["back", "sw2"], ["switch", "sw1"]]'

# ---------------------------------------------------------------- a. 30 concurrent switches

N=30
j0=$(journal_keys)
h0=$(history_ids 1 | wc -w)
hot0=$(shared_hot)
rm -f "$T/go"
for k in $(seq 1 "$N"); do
	i=$(( (k - 1) % NI + 1 ))
	if [ $((k % 2)) -eq 1 ]; then cmd="switch --force"; else cmd=back; fi
	# shellcheck disable=SC2086
	( wait_for 20 test -f "$T/go"; ictlj "$i" $cmd -m "c$k" >"$T/c$k.out" 2>&1; echo $? >"$T/c$k.rc" ) &
	track $!
done
: >"$T/go"   # all at once
n_ok=0 n_busy=0 n_other=0 ok_ks="" busy_bad=""
for k in $(seq 1 "$N"); do
	i=$(( (k - 1) % NI + 1 ))
	wait_for 120 test -s "$T/c$k.rc" || { n_other=$((n_other + 1)); log "c$k (sw$i): no answer"; continue; }
	rc=$(cat "$T/c$k.rc")
	okv=$(jget '["ok"]' "$T/c$k.out" 2>/dev/null)
	code=$(jget '["code"]' "$T/c$k.out" 2>/dev/null)
	if [ "$rc" = 0 ] && [ "$okv" = true ]; then
		n_ok=$((n_ok + 1)); ok_ks="$ok_ks c$k:sw$i"
	elif [ "$rc" = 1 ] && [ "$code" = busy ]; then
		n_busy=$((n_busy + 1))
		msg=$(jget '["error"]' "$T/c$k.out" 2>/dev/null)
		printf '%s\n' "$msg" | grep -Eq 'sw[1-3]' || busy_bad="$busy_bad
c$k (sw$i): $msg"
	else
		n_other=$((n_other + 1)); log "c$k (sw$i): exit '$rc' code '$code': $(head -c 300 "$T/c$k.out")"
	fi
done
log "30 concurrent from 3 instances: $n_ok ran, $n_busy busy"
ok "at least one concurrent switch ran" test "$n_ok" -ge 1
expect_eq "every other one got code busy (nothing else)" "$n_other" 0
expect_eq "every busy reply names the holding instance" "$busy_bad" ""
if [ $(( n_ok % 2 )) -eq 0 ]; then hot=$hot0; elif [ "$hot0" = blue ]; then hot=green; else hot=blue; fi
agree_on "$hot" "after $n_ok of $N concurrent switches"
expect_eq "new journal keys in etcd = switches that ran" "$(( $(journal_keys) - j0 ))" "$n_ok"
for i in $INSTANCES; do
	expect_eq "sw$i: new history entries = switches that ran" "$(( $(history_ids "$i" | wc -w) - h0 ))" "$n_ok"
done
run ictlj 2 history -n 1000
expect_eq "the journal's concurrent entries are the switches that ran, each by the instance it was sent to" \
	"$(jv "$OUT" '" ".join(sorted("%s:%s" % (e.get("message"), e.get("instance")) for e in d["entries"] if e.get("result") == "ok" and (e.get("message") or "").startswith("c") and e["message"][1:].isdigit()))')" \
	"$(printf '%s\n' $ok_ks | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
expect_eq "every journal entry names its instance" \
	"$(jv "$OUT" '[e["id"] for e in d["entries"] if e.get("instance") not in ("sw1", "sw2", "sw3")]')" '[]'
expect_eq "history (newest first) is the journal's key order in etcd, reversed" \
	"$(history_ids 3)" "$(journal_ids_newest_first)"
# Each host keeps copies of the shared state and journal in its state_dir.
# local_has I: sw I's history.jsonl has every concurrent switch that ran.
local_has() {
	local k
	for k in $(printf '%s\n' $ok_ks | sed 's/:.*//'); do
		grep -q "\"message\":\"$k\"" "$T/state$1/history.jsonl" 2>/dev/null || return 1
	done
}
for i in $INSTANCES; do
	ok "sw$i's state.json (a copy) says $hot is hot" \
		wait_for 15 eval "[ \"\$(jget '[\"hot\"]' '$T/state$i/state.json')\" = '$hot' ]"
	ok "sw$i's history.jsonl (a copy) has every concurrent switch that ran, on any instance" \
		wait_for 15 local_has "$i"
done

# ---------------------------------------------------------------- b. the deploy lock

on 1 expect_ok lock -m "release freeze"
locked_on() { [ "$(istatus "$1" '(d["lock"] or {}).get("message")')" = "release freeze" ]; }
for i in 2 3; do
	ok "sw$i's status shows sw1's lock" wait_for 15 locked_on "$i"
done
on 2 expect_fail 1 locked switch --force -m "while locked"
on 3 expect_fail 1 locked back -m "while locked"
expect_eq "nothing moved while locked" "$(nodes_serve)" "$hot"
on 1 expect_ok unlock
ok "sw2's status shows the lock gone" wait_for 15 eval '! locked_on 2'
on 2 expect_ok switch --force -m "after unlock"
if [ "$hot" = blue ]; then hot=green; else hot=blue; fi
agree_on "$hot" "a switch on sw2 after the unlock"

# ---------------------------------------------------------------- c. the holder dies mid-commit

ids_before=$(history_ids 2)
n=$(grep -c ' hold ' "$T/fp1.cmdlog" 2>/dev/null || true)
fault_hold fp1 'commit map'
( ictlj 1 switch --force -m "held" >"$T/held.out" 2>&1; echo $? >"$T/held.rc" ) &
track $!
ok "sw1's switch reached node 1's commit map (held there)" wait_for 30 fault_held fp1 "$n" ||
	log "sw1's switch: exit $(cat "$T/held.rc" 2>/dev/null): $(head -c 400 "$T/held.out")"
expect_eq "the intent record in etcd names sw1" "$(etcd_get "$PREFIX/intent" | jget '["instance"]')" sw1
on 2 expect_fail 1 busy back -m "while sw1 holds"
expect_emsg 'sw1' "busy names the holder, sw1"
t_kill=$(now_ms)
inst_kill9 1
fault_rules fp1 '{}'   # sw1, started again below, must get its commands through
fault_release fp1      # sw1's held commit goes on to node 1 after its death
ok "sw1's client sees it die (exit non-zero)" wait_for 30 eval "[ -s '$T/held.rc' ] && [ \"\$(cat '$T/held.rc')\" != 0 ]"
# takeover_entries FILE IDS: the entries of a "history --json" reply that
# are not among IDS, written by a live instance (sw2, sw3), by switchd (its
# user, or a note or message that says so), one JSON line each.
takeover_entries() {
	"$PYTHON" - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
old = set(sys.argv[2].split())
new = [e for e in d["entries"] if e["id"] not in old and e.get("instance") in ("sw2", "sw3")
       and (e.get("user") == "switchd"
            or "switchd" in (e.get("note") or "") + (e.get("message") or ""))]
for e in new:
    print(json.dumps(e, sort_keys=True))
sys.exit(0 if new else 1)
PY
}
taken_over() {
	ictlj 2 history -n 1000 >"$T/hist-c.json" || return 1
	takeover_entries "$T/hist-c.json" "$ids_before" >/dev/null
}
settled() {
	local p; p=$(nodes_serve)
	case $p in blue|green) ;; *) return 1 ;; esac
	all_status_hot "$p" "2 3" && taken_over
}
if ok "after sw1's lease (${LEASE_TTL} s) another instance settles its switch" wait_for $((LEASE_TTL + 40)) settled; then
	log "settled $(( $(now_ms) - t_kill )) ms after the kill -9"
else
	log "nodes: $(nodes_serve)"
	for i in 2 3; do log "sw$i status: $(istatus "$i" '[d["hot"], d.get("busy")]')"; done
fi
p=$(nodes_serve)
expect_match "both nodes serve one pool" "$p" '^(blue|green)$'
agree_on "$p" "after the takeover" "2 3"
run etcd_get "$PREFIX/intent"
expect_eq "no intent record left in etcd" "$RC" 1
ok "no lock left in etcd" wait_for 10 eval "etcd_get '$PREFIX/lock'; [ \$? = 1 ]"
ictlj 2 history -n 1000 >"$T/hist-c.json"
run takeover_entries "$T/hist-c.json" "$ids_before"
log "journal entries by switchd since the kill: $OUT"
expect_eq "a journal entry by switchd on sw2 or sw3 says what became of sw1's switch" "$RC" 0
inst_start 1
agree_on "$p" "sw1 started again"
hot=$p

# Every etcd member ran through a, b and c: no instance may have lost etcd
# (a false "unreachable" makes it refuse commands and report stale state).
# The words are switchd's log lines (cluster.c, http.c).
cat "$T"/sw[0-9]*.log >"$T/sw-abc.log"
expect_nogrep 'etcd is unreachable|etcd has no quorum|API function called from within callback' \
	"$T/sw-abc.log" "no instance lost etcd while every member ran"

# ---------------------------------------------------------------- d. etcd members down

other() { if [ "$1" = blue ]; then echo green; else echo blue; fi; }
pids0=$(for i in $INSTANCES; do inst_pid "$i"; done | tr '\n' ' ')
etcd_stop 3 KILL     # kill -9: a member that dies
on 1 expect_ok switch --force -m "one etcd member down"
hot=$(other "$hot")
agree_on "$hot" "one etcd member of three down"

etcd_stop 2          # SIGTERM: a member stopped cleanly
log "etcd: members 2 and 3 stopped, member 1 alone (no quorum)"
CTL_TIMEOUT=90 on 2 expect_fail 1 cluster switch --force -m "no quorum"
expect_emsg 'etcd' "the refusal says it is etcd"
expect_eq "no quorum: both nodes still serve $hot (traffic untouched)" "$(nodes_serve)" "$hot"
CTL_TIMEOUT=90 on 3 expect_fail 1 cluster lock -m "no quorum"
disconnected() { [ "$(istatus "$1" '[d["cluster"]["connected"], d["cluster"]["stale_seconds"] >= 1]')" = "[false, true]" ]; }
for i in $INSTANCES; do
	if ! ok "sw$i: status says connected: false and stale_seconds >= 1" wait_for 60 disconnected "$i"; then
		log "sw$i status cluster: $(istatus "$i" '["cluster"]')"
	fi
	expect_eq "sw$i: status still answers from the last state: $hot is hot" "$(istatus "$i" '["hot"]')" "$hot"
done
run ictl 1 status
expect_grep "^cluster: sw1 at $PREFIX: etcd unreachable, state as of [0-9]+ s ago \(stale\)\$" - \
	"human status on sw1 says the state is stale"
ok "history answers without a quorum" ictlj 3 history -n 5
ok "hosts answers without a quorum" ictlj 2 hosts hot
expect_eq "still both nodes on $hot" "$(nodes_serve)" "$hot"

etcd_start 2
etcd_start 3
etcd_wait 2; etcd_wait 3; etcd_wait 1
log "etcd: members 2 and 3 back"
connected() { [ "$(istatus "$1" '["cluster"]["connected"]')" = true ]; }
for i in $INSTANCES; do
	ok "sw$i reconnects by itself" wait_for 60 connected "$i"
done
# A command refused while etcd had no quorum must not take the lock later,
# when its request, left in the raft log of the member it went to, is
# committed after all: that lock would answer "busy" for a command that
# never ran.
if ! on 3 expect_ok switch --force -m "quorum back"; then
	log "P/lock in etcd now: $(etcd_get "$PREFIX/lock" || echo none)"
	for i in $INSTANCES; do log "sw$i status busy: $(istatus "$i" '["busy"]')"; done
fi
hot=$(other "$hot")
agree_on "$hot" "a switch after the quorum is back"
expect_eq "no switchd was restarted" "$(for i in $INSTANCES; do alive "$(inst_pid "$i")" && inst_pid "$i"; done | tr '\n' ' ')" "$pids0"

# ---------------------------------------------------------------- f. the holder cut off from etcd

# sw1 holds the lock, its switch held before the commits (node 1's "prepare
# map"), when it loses etcd while the others keep it: its lease ends, another
# instance takes over sw1's intent record (nothing committed: undone), and
# sw1, let go on, must find its lease lost before the commits and stop with
# code "cluster", touching no node.
ids_before=$(history_ids 2)
n=$(grep -c ' hold ' "$T/fp1.cmdlog" 2>/dev/null || true)
fault_hold fp1 'prepare map'
( ictlj 1 switch --force -m "partitioned" >"$T/cut.out" 2>&1; echo $? >"$T/cut.rc" ) &
track $!
ok "sw1's switch reached node 1's prepare map (held there)" wait_for 30 fault_held fp1 "$n" ||
	log "sw1's switch: exit $(cat "$T/cut.rc" 2>/dev/null): $(head -c 400 "$T/cut.out")"
cut_id=$(etcd_get "$PREFIX/intent" | jget '["id"]')
expect_match "sw1's intent record is in etcd" "$cut_id" '.'
cut_on ec1
log "sw1 cut off from etcd"
taken_over_cut() {
	ictlj 2 history -n 1000 >"$T/hist-f.json" || return 1
	takeover_entries "$T/hist-f.json" "$ids_before" | grep -qF "$cut_id"
}
ok "another instance takes over sw1's switch once sw1's lease ends" wait_for $((LEASE_TTL + 40)) taken_over_cut
expect_eq "nodes untouched: both serve $hot" "$(nodes_serve)" "$hot"
lost_etcd() { [ "$(istatus 1 '[d["cluster"]["connected"], d["cluster"]["stale_seconds"] >= '"$LEASE_TTL"']')" = "[false, true]" ]; }
ok "sw1's status: not connected for at least its lease TTL" wait_for 30 lost_etcd
fault_rules fp1 '{}'
fault_release fp1        # sw1 goes on to its commits: it must check its lease first
ok "sw1's switch ends" wait_for 60 test -s "$T/cut.rc"
expect_eq "sw1's switch fails (exit 1) with code cluster" \
	"$(cat "$T/cut.rc") $(jget '["code"]' "$T/cut.out" 2>/dev/null)" "1 cluster"
expect_eq "no node committed sw1's switch: both serve $hot" "$(nodes_serve)" "$hot"
cut_off ec1
ok "sw1 reconnects when the cut ends" wait_for 60 connected 1
agree_on "$hot" "sw1 back in touch after its lease was lost"
on 1 expect_ok switch --force -m "sw1 after the cut"
hot=$(other "$hot")
agree_on "$hot" "a switch on sw1 after the cut"

expect_eq "at the end: history is the journal's key order in etcd, reversed" \
	"$(history_ids 1)" "$(journal_ids_newest_first)"

# ---------------------------------------------------------------- the end

for i in $INSTANCES; do
	inst_stop "$i"
	expect_eq "sw$i exits 0 on SIGTERM" "$SWITCHD_RC" 0
done
# One by one: members stopped all at once wait for each other (leadership
# transfer) past the clean-up's patience.
for i in 3 2 1; do etcd_stop "$i"; done
t_done
