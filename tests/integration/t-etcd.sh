#!/bin/bash
# t-etcd: switchd's etcd client and cluster logic against one real etcd
# member (Debian's etcd-server 3.4), two instances sharing two HAProxy
# nodes.  What t-cluster does not reach:
#   a. the keys as the contract names them: P/state (the state document),
#      P/deploy-lock mirroring "lock" and gone after "unlock", P/journal/
#      with 20-digit keys, and a restarted instance reading its state back;
#   b. the lease check before the commit: an instance whose etcd stops
#      answering (SIGSTOP) while its switch waits in "prepare map" stops
#      before the commit with code "cluster", no node changed, and the
#      switch works again once etcd answers (no restart);
#   c. the background repair in a cluster takes the cluster lock: a node
#      flipped behind switchd's back is put back by an instance;
#   d. the only instance killed -9 in a held commit and started again takes
#      over its own switch once its old lease ends (intent and lock still in
#      etcd at its start);
#   e. an instance started while etcd is down answers status (stale) and
#      history from its own copies, other instances' entries included, and
#      connects once etcd is back.
# Every wait is for an event (bounded), never for a time.
. "$(dirname "$0")/../lib.sh"
t_setup

PREFIX=/switchd/t-etcd
LEASE_TTL=2

etcd_start_cluster 1
two_pools
start_haproxy h1
start_haproxy h2
start_fault_proxy fp1 h1
HAP_NODES="fp1 h2"
TIMEOUT_MS=10000

cluster_conf() {
	printf 'cluster = {\n  endpoints = ( %s );\n  prefix = "%s";\n  name = "%s";\n  lease_ttl = %d;\n};\n' \
		"$ETCD_ENDPOINTS_CONF" "$PREFIX" "$1" "$LEASE_TTL"
}
for i in 1 2; do inst_config "$i" "$(cluster_conf "e$i")"; done
for i in 1 2; do inst_start "$i"; done

shared() { etcd_get "$PREFIX/$1"; }
both_nodes() {
	local a b
	a=$(via_live h1); b=$(via_live h2)
	if [ "$a" = "$b" ]; then echo "$a"; else echo "split: $a $b"; fi
}
status_hot() { [ "$(istatus "$1" '["hot"]')" = "$2" ]; }

# ---------------------------------------------------------------- a. the keys

ok "the first instance stored its state at $PREFIX/state" eval "shared state | jget '[\"hot\"]' >/dev/null"
on 1 expect_ok switch --force -m "e1 switches"
expect_eq "both nodes serve green" "$(both_nodes)" green
expect_eq "$PREFIX/state says green is hot" "$(shared state | jget '["hot"]')" green
ok "e2's status follows: green is hot" wait_for 15 status_hot 2 green
keys=$(etcd_keys "$PREFIX/journal/")
expect_match "journal keys are $PREFIX/journal/ and 20 digits" "$(printf '%s\n' "$keys" | tail -n 1)" \
	"^$PREFIX/journal/[0-9]{20}\$"
expect_eq "the newest journal key holds the switch, by e1" \
	"$(shared "journal/${keys##*/}" | jget '[d["command"], d["instance"], d["message"]]')" \
	'["switch", "e1", "e1 switches"]'

on 2 expect_ok lock -m "freeze"
expect_eq "$PREFIX/deploy-lock mirrors the lock" "$(shared deploy-lock | jget '["message"]')" freeze
ok "e1's status shows e2's lock" wait_for 15 eval "[ \"\$(istatus 1 '[\"lock\"][\"message\"]')\" = freeze ]"
on 1 expect_fail 1 locked back -m "while locked"
on 1 expect_ok unlock --force
run shared deploy-lock
expect_eq "$PREFIX/deploy-lock is gone after unlock" "$RC" 1
run shared lock
expect_eq "$PREFIX/lock is gone after each command" "$RC" 1

# A restarted instance reads the shared state (its own file says the same,
# so make the file lie first: etcd wins).
inst_stop 2
"$PYTHON" - "$T/state2/state.json" <<'PY'
import json, sys
p = sys.argv[1]; d = json.load(open(p))
d["hot"], d["cold"] = "blue", "green"
json.dump(d, open(p, "w"))
PY
inst_start 2
ok "restarted e2 says green is hot, as etcd does" wait_for 15 status_hot 2 green
expect_eq "e2's history: the shared journal (e1's switch)" \
	"$(ictlj 2 history -n 50 | jget '[e["instance"] for e in d["entries"] if e["command"] == "switch"]')" '["e1"]'

# ---------------------------------------------------------------- b. lease check before the commit

n=$(grep -c ' hold ' "$T/fp1.cmdlog" 2>/dev/null || true)
fault_hold fp1 'prepare map'
( ictlj 1 back -m "held in prepare" >"$T/held.out" 2>&1; echo $? >"$T/held.rc" ) &
track $!
ok "e1's back waits in node 1's prepare map" wait_for 30 fault_held fp1 "$n"
etcd_pid=$(cat "$T/etcd1.pid")
kill -STOP "$etcd_pid"
lease_gone() { [ "$(istatus 1 '[d["cluster"]["connected"], d["cluster"]["stale_seconds"] > '"$LEASE_TTL"']')" = "[false, true]" ]; }
ok "e1 sees etcd gone for longer than its lease ($LEASE_TTL s)" wait_for 30 lease_gone
fault_rules fp1 '{}'
fault_release fp1
ok "e1's back ends" wait_for 30 test -s "$T/held.rc"
expect_eq "it fails with code cluster" "$(jget '["code"]' "$T/held.out")" cluster
expect_match "and says it stopped before the commit" "$(jget '["error"]' "$T/held.out")" \
	'stopped before the commit'
expect_eq "no node changed: both still serve green" "$(both_nodes)" green
kill -CONT "$etcd_pid"
connected() { [ "$(istatus "$1" '["cluster"]["connected"]')" = true ]; }
for i in 1 2; do ok "e$i reconnects by itself" wait_for 30 connected "$i"; done
run shared intent
expect_eq "no intent record left in etcd" "$RC" 1
ok "back on e1 works again" wait_for 30 eval "on 1 ctlj back -m 'after etcd came back' >/dev/null"
expect_eq "both nodes serve blue" "$(both_nodes)" blue
ok "e2's status follows: blue is hot" wait_for 15 status_hot 2 blue

# ---------------------------------------------------------------- c. repair under the cluster lock

hap h2 "set map $T/switchd.map $LIVE_HOST be_green" >/dev/null
expect_eq "node 2 flipped behind switchd's back" "$(both_nodes)" "split: blue green"
ictlj 2 status >/dev/null   # finds the disagreement, schedules a repair
ok "an instance repairs node 2 (under the cluster lock)" wait_for 60 eval '[ "$(both_nodes)" = blue ]'
ok "and lets the lock go" wait_for 15 eval "shared lock >/dev/null; [ \$? = 1 ]"
expect_grep "repair" "$T/sw2.log" "e2's log tells of the repair"

# ---------------------------------------------------------------- d. self-takeover after a restart

inst_stop 2
expect_eq "e2 exits 0 on SIGTERM" "$SWITCHD_RC" 0
ids_before=$(ictlj 1 history -n 1000 | jget '" ".join(e["id"] for e in d["entries"])')
n=$(grep -c ' hold ' "$T/fp1.cmdlog" 2>/dev/null || true)
fault_hold fp1 'commit map'
( ictlj 1 switch --force -m "held in commit" >/dev/null 2>&1 ) &
track $!
ok "e1's switch waits in node 1's commit map" wait_for 30 fault_held fp1 "$n"
expect_eq "the intent record names e1" "$(shared intent | jget '["instance"]')" e1
inst_kill9 1
fault_rules fp1 '{}'
fault_release fp1
inst_start 1
settled() {
	local p; p=$(both_nodes)
	case $p in blue|green) ;; *) return 1 ;; esac
	status_hot 1 "$p" && ! shared intent >/dev/null
}
ok "e1, started again, settles its own switch after its old lease" wait_for 40 settled
entry=$(ictlj 1 history -n 1000 | "$PYTHON" -c 'import json, sys
old = set(sys.argv[1].split())
d = json.load(sys.stdin)
print(" ".join("%s/%s/%s" % (e["user"], e["command"], e["instance"]) for e in d["entries"]
    if e["id"] not in old and e["user"] == "switchd"))' "$ids_before")
expect_eq "one journal entry by switchd, takeover, on e1" "$entry" "switchd/takeover/e1"
expect_eq "the shared state agrees with the nodes" "$(shared state | jget '["hot"]')" "$(both_nodes)"

# ---------------------------------------------------------------- e. started without etcd

etcd_stop 1
inst_start 2
expect_eq "e2 (etcd down at its start) lists e1's switch from its own journal copy" \
	"$(ictlj 2 history -n 1000 | jget '[e["instance"] for e in d["entries"] if e.get("message") == "e1 switches"]')" \
	'["e1"]'
expect_eq "and its status says it is not connected" "$(istatus 2 '["cluster"]["connected"]')" false
etcd_start 1
etcd_wait 1
for i in 1 2; do ok "e$i connects once etcd is back" wait_for 30 connected "$i"; done
expect_eq "e2's history is the shared one again: the takeover by e1 on top" \
	"$(ictlj 2 history -n 1 | jget '[d["entries"][0]["command"], d["entries"][0]["instance"]]')" \
	'["takeover", "e1"]'

for i in 1 2; do
	inst_stop "$i"
	expect_eq "e$i exits 0 on SIGTERM" "$SWITCHD_RC" 0
done
etcd_stop 1
t_done
