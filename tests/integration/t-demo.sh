#!/bin/bash
# t-demo: scripts/demo (make demo) does what the README says, twice in a
# row, in a directory of the test's own: nginx TLS -> HAProxy -> two pools,
# the EC2 endpoint's tags following the switch, switchd's history; then
# scripts/demo stop ends every process it started and nothing else.
. "$(dirname "$0")/../lib.sh"
t_setup
export SWITCHD_DEMO_DIR=$T/demo
# Whatever happens, the demo's processes go with the test.
at_exit "SWITCHD_DEMO_DIR='$T/demo' '$REPO_DIR/scripts/demo' stop"

demo_pids() { cat "$T/demo/pids/"* 2>/dev/null | sort -n | tr '\n' ' '; }

for round in 1 2; do
	run timeout 240 "$REPO_DIR/scripts/demo" start
	if [ "$RC" -ne 0 ]; then
		_fail "round $round: scripts/demo start exits 0 (exit $RC)"
		_show_last
		tail -n 20 "$T/demo/switchd.log" 2>/dev/null | sed 's/^/#   switchd.log: /'
		continue
	fi
	_pass "round $round: scripts/demo start exits 0"
	expect_grep 'Welcome! blue pool, version v1' "$T/last.out" "round $round: the live host answers blue v1 through TLS"
	expect_grep 'cold-deploy: green pool at v2 is verified' "$T/last.out" "round $round: cold-deploy verifies green at v2"
	expect_grep 'PASS home +lb .*https://127\.0\.0\.1:' "$T/last.out" "round $round: the smoke checks went through nginx's TLS"
	expect_grep 'green is hot now \(was blue\)' "$T/last.out" "round $round: switch moves the live host to green"
	expect_grep 'Welcome! green pool, version v2' "$T/last.out" "round $round: the live host then serves green v2"
	expect_grep 'i-06100000000000061 +g1 +green +group=hot' "$T/last.out" "round $round: the EC2 tags followed the switch"
	expect_grep 'blue is hot now \(was green\)' "$T/last.out" "round $round: back moves it to blue"
	expect_grep 'root|[a-z]+ +back +green -> blue +ok +demo: roll back' "$T/last.out" "round $round: history records the back"
	expect_grep 'canary: 25 % of the live host on green' "$T/last.out" "round $round: a canary puts 25 % on green"
	expect_grep '^(alice|bob|carol|dave|erin|frank|grace|heidi) +Welcome! green pool, version v2' "$T/last.out" "round $round: some canary clients see green v2"
	expect_grep '^(alice|bob|carol|dave|erin|frank|grace|heidi) +Welcome! blue pool, version v1' "$T/last.out" "round $round: the others see blue v1"
	expect_grep 'switchd +back +green -> blue +ok +guard: 5xx' "$T/last.out" "round $round: the guard went back on its own"
	expect_grep 'make demo-stop' "$T/last.out" "round $round: it says how to stop the stack"
	pids=$(demo_pids)
	expect_eq "round $round: eight processes recorded (4 backends, HAProxy, nginx, EC2 endpoint, switchd)" \
	    "$(echo $pids | wc -w)" 8
	for p in $pids; do ok "round $round: process $p is running" alive "$p"; done
	# The stack keeps running and answers as the narration said.
	. "$T/demo/env"
	run curl -sS --max-time 5 --cacert "$T/demo/tls/ca.pem" \
	    --resolve "www.demo.test:$TLS:127.0.0.1" "https://www.demo.test:$TLS/"
	expect_match "round $round: after the demo the live host serves blue v1" "$OUT" 'blue pool, version v1'
	run "$SWITCHCTL" -s "$T/demo/switchd.sock" -j status
	expect_eq "round $round: status: blue hot, green failed (the guard) at v2" \
	    "$(jv "$OUT" '[d["hot"], d["pools"]["green"]["state"], d["pools"]["green"]["version"]]')" \
	    '["blue", "failed", "v2"]'
done

pids=$(demo_pids)
ok "scripts/demo stop" "$REPO_DIR/scripts/demo" stop
for p in $pids; do
	ok "process $p is gone after stop" wait_for 10 eval "! kill -0 $p 2>/dev/null"
done
ok "no PID files left" test ! -e "$T/demo/pids"
t_done
