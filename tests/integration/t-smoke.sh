#!/bin/bash
# t-smoke: the live gate.  One misbehaving server among five (wrong status,
# wrong body, too slow, refusing, hung) makes cold-deploy end "failed" with
# that reason, and switch then refuses with live traffic unchanged; a good
# pool ends "verified" and switches; --expect guards the version; failing and
# hanging deploy/live-test commands are reported and killed at their timeout
# with nothing left behind; status keeps answering while a live test runs.
. "$(dirname "$0")/../lib.sh"
t_setup

b1=$(free_port)
start_backend blue "$b1" blue
GREEN_PORTS=""
for i in 1 2 3 4 5; do
	p=$(free_port)
	start_backend "g$i" "$p" green
	GREEN_PORTS="$GREEN_PORTS $p"
done
BLUE_PORTS=$b1
write_map blue green
start_haproxy h1
FE=$FE_PORT

SMOKE='smoke = {
  url = "http://127.0.0.1:'$FE'";
  timeout_ms = 1000;
  per_server = true;
  checks = ( { name = "home"; path = "/"; status = 200; body = "green"; },
             { name = "health"; path = "/health"; status = 200; max_ms = 300; } );
};'
write_config "$SMOKE"
start_switchd

reset_green() {
	for i in 1 2 3 4 5; do backend_ctl "g$i" reset >/dev/null; done
	wait_count h1 be_green UP 5 10 >/dev/null
}

live_unchanged() {
	expect_eq "$1: live host still on blue" "$(via_live)" blue
	expect_eq "$1: HAProxy map unchanged" "$(hap_map h1)" "$(map_text blue green)"
}

# fails_with NAME REASON-REGEX: cold-deploy fails, names g3 and the reason;
# the pool is "failed"; switch refuses.
fails_with() {
	local name=$1 why=$2
	expect_fail 1 smoke_failed cold-deploy -v "bad-$name" -m "$name"
	expect_eq "$name: pool state failed" "$(status_get '["pools"]["green"]["state"]')" failed
	expect_eq "$name: version recorded" "$(status_get '["pools"]["green"]["version"]')" "bad-$name"
	expect_match "$name: the failing check names g3 and why" \
		"$(printf '%s' "$OUT" | jget '[c["target"] + ": " + c.get("why", "") for c in d["checks"] if not c["passed"]]')" \
		"g3: .*$why"
	expect_fail 1 refused switch -m "$name"
	live_unchanged "$name"
	expect_match "$name: history records the failure" \
		"$(ctlj history -n 1 | jget '[d["entries"][0]["command"], d["entries"][0]["result"]]')" \
		"cold-deploy.*failed"
}

# ---- a good pool first: verified, then --expect guards the version
reset_green
expect_ok cold-deploy -v v1 -m "first release"
expect_eq "good pool is verified" "$(status_get '["pools"]["green"]["state"]')" verified
expect_eq "version v1 recorded" "$(status_get '["pools"]["green"]["version"]')" v1
run ctlj cold-deploy -v v1 --no-deploy
expect_eq "12 checks: 2 through HAProxy + 2 x 5 servers" \
	"$(printf '%s' "$OUT" | jget 'len(d["checks"])')" 12
expect_fail 1 refused switch --expect v0 -m "wrong version"
expect_emsg 'v1.*v0|v0.*v1' "refusal names both versions"
live_unchanged "--expect v0"

# ---- one bad server among five, each way a server can be bad
backend_ctl g3 'set?status=500' >/dev/null
fails_with "wrong-status" "status 500, expected 200"
reset_green

backend_ctl g3 'set?body=oops' >/dev/null
fails_with "wrong-body" "does not contain"
reset_green

backend_ctl g3 'set?delay_ms=450' >/dev/null
fails_with "too-slow" "max_ms is 300"
reset_green

stop_backend g3
ok "HAProxy marks g3 DOWN" wait_count h1 be_green DOWN 1 10
fails_with "refused" "[Cc]onnection refused|connect"
start_backend g3 "$(echo $GREEN_PORTS | cut -d' ' -f3)" green
reset_green

backend_ctl g3 'set?delay_ms=4000' >/dev/null
fails_with "hung" "no answer within 1000 ms"
reset_green

# ---- a good pool is verified and switches
expect_ok cold-deploy -v v2 -m "good release"
expect_eq "v2 verified" "$(status_get '["pools"]["green"]["state"]')" verified
expect_ok switch --expect v2 -m "go live"
expect_eq "live host on green" "$(via_live)" green
expect_eq "old hot pool is the verified cold pool" "$(status_get '["pools"]["blue"]["state"]')" verified
expect_ok back -m "and back, no smoke needed"
expect_eq "live host back on blue" "$(via_live)" blue

# ---- switch re-runs the checks: a pool that went bad since is refused
expect_ok cold-deploy -v v3 --no-deploy
backend_ctl g2 'set?status=503' >/dev/null
expect_fail 1 smoke_failed switch -m "went bad"
expect_eq "pool marked failed by the re-run" "$(status_get '["pools"]["green"]["state"]')" failed
live_unchanged "re-run smoke"
# A switch is recorded, so "back" would flip to green: it went bad, refused.
nhist=$(ctlj history | jget 'len(d["entries"])')
expect_fail 1 refused back -m "back to a failed pool"
expect_emsg "cold pool green is failed since the last switch \(smoke checks before a switch failed" \
	"back names the failed pool and why"
live_unchanged "back to a failed pool"
expect_eq "a refused back adds no history entry" "$(ctlj history | jget 'len(d["entries"])')" "$nhist"
reset_green

# ---- all cold servers down: cold-deploy fails, switch --force refuses
for i in 1 2 3 4 5; do backend_ctl "g$i" down >/dev/null; done
ok "all green DOWN" wait_count h1 be_green DOWN 5 10
expect_fail 1 smoke_failed cold-deploy -v v4
expect_fail 1 refused switch --force --no-smoke -m "all down"
live_unchanged "all down"
reset_green

# ---- deploy.command and smoke.command: failures, timeouts, no leftovers
MARK="switchd-test-$$-$RANDOM"
write_config "$SMOKE
deploy = { command = \"echo deploying \$SWITCHD_VERSION to \$SWITCHD_POOL: \$SWITCHD_HOSTS; exit 3\"; timeout = 5; };"
expect_ok reload
expect_fail 1 deploy_failed cold-deploy -v v5
expect_emsg "exited with status 3" "the deploy's exit status is reported"
expect_eq "deploy failure: pool failed" "$(status_get '["pools"]["green"]["state"]')" failed
run ctlj history -n 1
expect_match "deploy failure is in the history" "$(printf '%s' "$OUT" | jget 'd["entries"][0]["error"]')" "status 3"

write_config "$SMOKE
deploy = { command = \"trap '' TERM; sleep 30; : $MARK\"; timeout = 1; };"
expect_ok reload
expect_fail 1 deploy_failed cold-deploy -v v6
expect_emsg "killed after its 1 s timeout" "a hung deploy is killed at its timeout"
ok "no deploy process left" test -z "$(pgrep -f "$MARK")"
ok "no zombie child of switchd" test -z "$(ps -o stat= --ppid "$(switchd_pid)" | grep Z)"

write_config "smoke = { url = \"http://127.0.0.1:$FE\"; command = \"echo cold at \$SWITCHD_COLD_URL for \$SWITCHD_COLD_HOST; exit 1\"; command_timeout = 5; };"
expect_ok reload
run ctl cold-deploy -v v7
expect_eq "failing live tests: exit 1" "$RC" 1
expect_grep "live tests \(smoke.command\) exited with status 1" - "live-test failure is reported"
expect_eq "failing live tests: pool failed" "$(status_get '["pools"]["green"]["state"]')" failed

write_config "smoke = { url = \"http://127.0.0.1:$FE\"; command = \"sleep 30; : $MARK\"; command_timeout = 3; };"
expect_ok reload
ctl cold-deploy -v v8 >"$T/long.out" 2>&1 &
cdpid=$!
wait_for 5 eval "ctlj status | jget '[\"pools\"][\"green\"][\"state\"]' | grep -q verifying"
# The daemon keeps answering while a live test runs: best of three.
best=999999
for _ in 1 2 3; do
	t0=$(now_ms); ctl status >/dev/null; t1=$(now_ms)
	[ $((t1 - t0)) -lt $best ] && best=$((t1 - t0))
done
ok "status answers within 100 ms during a live test (best ${best} ms)" test "$best" -lt 100
run ctlj status
expect_match "status shows the cold-deploy holding the lock" \
	"$(printf '%s' "$OUT" | jget 'd["lock"]["message"] + " " + d["busy"]["command"]')" "cold-deploy"
expect_fail 1 busy switch --force -m "during a deploy"
expect_emsg "cold-deploy" "busy names the cold-deploy in flight"
wait "$cdpid"; rc=$?
expect_eq "hung live test: cold-deploy fails" "$rc" 1
expect_grep "killed after its 3 s timeout" "$T/long.out" "hung live test killed at its timeout"
ok "no live-test process left" test -z "$(pgrep -f "$MARK")"
ok "the lock is released after the cold-deploy" test "$(status_get '["lock"]')" = null

# ---- without -v: a deploy makes the version unknown; --no-deploy keeps it
write_config "$SMOKE
deploy = { command = \"echo deploying whatever is newest\"; timeout = 5; };"
expect_ok reload
expect_ok cold-deploy -v v9 -m "known version"
expect_eq "with -v: the version is recorded" "$(status_get '["pools"]["green"]["version"]')" v9
expect_ok cold-deploy --no-deploy -m "verify only"
expect_eq "--no-deploy without -v keeps the version" "$(status_get '["pools"]["green"]["version"]')" v9
expect_ok cold-deploy -m "deploy, no version given"
expect_eq "a deploy without -v: the version is unknown" "$(status_get '["pools"]["green"]["version"]')" null
expect_fail 1 refused switch --expect v9 -m "expects the old version"
expect_emsg "is at version \(none\), not v9" "switch --expect refuses a pool whose version is unknown"
live_unchanged "version unknown"

# ---- output that is not UTF-8 (and a character cut at the 4096-byte line
# piece) reaches the client as valid JSON: the deploy's answer is its own,
# never {"code":"internal"}
write_config "${SMOKE%\};}
  command = \"printf 'live \\\\303'\"; command_timeout = 5; };
deploy = { command = \"printf 'bad \\\\377\\\\376 bytes\\\\n'; head -c 4095 /dev/zero | tr '\\\\0' x; printf '\\\\303\\\\251 end\\\\n'\"; timeout = 5; };
"
expect_ok reload
ok "cold-deploy with non-UTF-8 output gets an answer" \
	ctl_raw '{"v":1,"cmd":"cold-deploy","args":{"version":"v10","message":"non-UTF-8 output"}}'
printf '%s\n' "$OUT" >"$T/utf8.out"
expect_grep '"ok": ?true' "$T/utf8.out" "its answer is ok, not an internal error"
expect_grep '"text": ?"bad \?\? bytes"' "$T/utf8.out" "invalid bytes arrive as ?"
expect_grep '"text": ?"(\\u00e9|é) end"' "$T/utf8.out" "the character at the 4096-byte cut arrives whole"
expect_grep '"text": ?"live \?"' "$T/utf8.out" "a live test's bad last byte arrives as ?"
expect_eq "the pool is verified and says so" "$(status_get '["pools"]["green"]["state"]')" verified

# ---- a deploy that leaves a process in a session of its own (setsid, as
# ssh ControlPersist does): when it ends later, switchd (its subreaper)
# reaps it; no zombie stays
MARK2=orphan-$$-$RANDOM
write_config "$SMOKE
deploy = { command = \"setsid sh -c 'while [ ! -e $T/orphan.go ]; do sleep 0.05; done; : $MARK2' </dev/null >/dev/null 2>&1 & echo started\"; timeout = 5; };"
expect_ok reload
expect_ok cold-deploy -v v11 -m "leaves an orphan"
PID=$(switchd_pid)
orphan() { ps -o pid=,stat= --ppid "$PID" -o args= | grep -- "$MARK2" | grep -v grep; }
ok "the orphan came to switchd (subreaper) and runs" wait_for 5 eval '[ -n "$(orphan)" ]'
touch "$T/orphan.go"
zombies() { ps -o stat= --ppid "$PID" | grep -c '^Z'; }
ok "once it exits, no zombie child of switchd is left" wait_for 5 eval '[ -z "$(orphan)" ] && [ "$(zombies)" = 0 ]'
log "children of switchd: $(ps -o pid=,stat=,args= --ppid "$PID" | tr '\n' ';')"

t_done
