#!/bin/bash
# t-guard: the guard against a real HAProxy.  After a switch it goes back
# on its own when the new pool answers 500 (one journal entry by "switchd",
# a notification, a log line) — but not for one 5xx in 1000, nor with fewer
# responses than min_requests; during a canary it ends the canary; a
# rollout steps through canaries and switches, and is stopped by an
# admin's "back" and by the guard; a node that does not answer stops any
# verdict.  Traffic is driven by the test until the
# expected state shows, bounded: nothing here waits for a clock.
. "$(dirname "$0")/../lib.sh"
t_setup
two_pools
use_canary
start_haproxy h1
# A second node, behind a fault proxy that can hold the guard's "show stat".
start_haproxy h2
start_fault_proxy fp1 h2
HAP_NODES="h1 fp1"
TIMEOUT_MS=500 write_config "guard = { interval_ms = 200; min_requests = 20; max_5xx_percent = 5.0; };
notify = { command = \"env | grep '^SWITCHD_' >>$T/notify.out; echo -- >>$T/notify.out\"; };"
config_canary
start_switchd

traffic() { split_count "$FE_PORT" "$1" "${2:-t$RANDOM-}" >/dev/null; }
guard_get() { ctlj status | jget "$1"; }
# drive_until SECONDS CMD...: send traffic to the live host until CMD succeeds.
drive_until() {
	local secs=$1; shift
	local deadline=$(( $(now_ms) + secs * 1000 ))
	until "$@" >/dev/null 2>&1; do
		[ "$(now_ms)" -ge "$deadline" ] && return 1
		traffic 20
	done
}
hot_is() { [ "$(ctlj status | jget '["hot"]')" = "$1" ]; }
canary_off() { [ "$(ctlj status | jget '["canary"]')" = null ]; }
responses_at_least() { [ "$(ctlj status | jget '["guard"]["responses"]')" -ge "$1" ]; }
newest() { ctlj history -n 1 | jget "[d['entries'][0].get(k) for k in ($1)]"; }

ok "cold-deploy green" ctl cold-deploy -v v2 --no-deploy
expect_ok switch --no-smoke -m "v2 live"
expect_eq "the guard bakes green" "$(guard_get '[d["guard"]["kind"], d["guard"]["pool"]]')" '["bake", "green"]'

# ---- one 5xx in 1000: no verdict
backend_ctl green 'set?status=500' >/dev/null
traffic 1 one-bad
backend_ctl green 'set?status=200' >/dev/null
traffic 999
ok "the guard has counted the 1000 responses" wait_for 20 responses_at_least 1000
expect_eq "one 5xx in 1000: still green" "$(guard_get '["hot"]')" green
expect_eq "one 5xx in 1000: errors counted" "$(guard_get '["guard"]["errors"]')" 1
expect_eq "one 5xx in 1000: the journal's newest is the switch" "$(newest '"command", "user"')" '["switch", "root"]'

# ---- fewer responses than min_requests: no verdict.  A window keeps
# growing until it has min_requests, so this starts from a fresh one (a new
# switch): it then holds exactly these 10 responses.
expect_ok back -m "for a fresh bake window"
expect_ok switch --no-smoke -m "v2 live again"
backend_ctl green 'set?status=500' >/dev/null
traffic 10 few-
ok "the guard has counted the 10 errors" wait_for 20 responses_at_least 10
expect_eq "10 errors < min_requests: still green" "$(guard_get '["hot"]')" green

# ---- a node that does not answer: no verdict, whatever the others say
fault_hold fp1 '^show stat be_green'
traffic 40 held-
ok "the guard's samples of node 2 are held" wait_for 20 fault_held fp1 2
traffic 40 held2-
ok "more samples held" wait_for 20 fault_held fp1 4
expect_eq "node 2 silent: no verdict, still green" "$(guard_get '["hot"]')" green
fault_release fp1
fault_rules fp1 '{}'

# ---- green keeps answering 500: the guard goes back on its own
ok "the guard goes back to blue" drive_until 30 hot_is blue
expect_eq "live host answers blue" "$(via_live)" blue
expect_eq "journal: back by switchd" "$(newest '"command", "user", "result"')" '["back", "switchd", "ok"]'
M=$(ctlj history -n 1 | jget '["entries"][0]["message"]')
expect_match "journal message names the figure ($M)" "$M" '^guard: 5xx [0-9.]+ % of [0-9]+ responses on green in [0-9.]+ s$'
expect_eq "only one automatic back" "$(ctlj history -n 50 | jget 'sum(1 for e in d["entries"] if e["user"] == "switchd")')" 1
expect_eq "green is marked failed" "$(guard_get '["pools"]["green"]["state"]')" failed
expect_eq "the guard stopped" "$(guard_get '["guard"]')" null
expect_grep 'guard: 5xx .* going back' "$T/switchd.log" "a log line says why"
ok "a notification went out" wait_for 10 grep -q 'SWITCHD_EVENT=back' "$T/notify.out"
expect_grep 'SWITCHD_USER=switchd' "$T/notify.out" "the notification names switchd"
traffic 100
expect_eq "no flapping: still blue after more traffic" "$(guard_get '["hot"]')" blue
expect_fail 1 refused back
expect_emsg 'failed' "plain back refuses the failed pool"

# ---- during a canary: the guard ends the canary
backend_ctl green reset >/dev/null
ok "cold-deploy green again" ctl cold-deploy -v v3 --no-deploy
expect_ok canary 50
backend_ctl green 'set?status=500' >/dev/null
ok "the guard ends the canary" drive_until 30 canary_off
expect_eq "canary ended: HAProxy be_green:0" "$(hap_canary h1)" be_green:0
expect_eq "canary ended: still blue hot" "$(guard_get '["hot"]')" blue
expect_eq "journal: back by switchd" "$(newest '"command", "user", "percent"')" '["back", "switchd", 0]'
expect_match "journal message names green" "$(ctlj history -n 1 | jget '["entries"][0]["message"]')" '^guard: 5xx .* on green'
expect_eq "green failed again" "$(guard_get '["pools"]["green"]["state"]')" failed

# ---- a rollout that passes
backend_ctl green reset >/dev/null
ok "cold-deploy green v4" ctl cold-deploy -v v4 --no-deploy
# On the socket itself, to see the progress events (switchctl --json
# prints only the final reply).
"$PYTHON" - "$T/switchd.sock" >"$T/rollout.lines" <<'EOF2'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(json.dumps({"v": 1, "cmd": "rollout", "args": {"steps": "10,50", "interval": 1,
                      "message": "v4 out"}}).encode() + b"\n")
buf = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
    if any('"ok"' in l for l in buf.decode().splitlines()):
        break
sys.stdout.write(buf.decode())
EOF2
OUT=$(tail -n 1 "$T/rollout.lines")
expect_eq "rollout: switched" "$(jv "$OUT" '["result"]')" switched
expect_eq "rollout: steps" "$(jv "$OUT" '["steps"]')" '[10, 50, 100]'
expect_eq "progress events name the steps" "$(grep '"step"' "$T/rollout.lines" | "$PYTHON" -c '
import json, sys
print(sorted({(e["step"], e["percent"]) for e in map(json.loads, sys.stdin) if "step" in e}))')" '[(1, 10), (2, 50), (3, 100)]'
expect_eq "rollout: green hot" "$(guard_get '["hot"]')" green
expect_eq "rollout: the journal has each step" "$(ctlj history -n 3 | jget '[e["command"] for e in d["entries"]]')" '["switch", "canary", "canary"]'
expect_match "rollout: step messages" "$(ctlj history -n 2 | jget '["entries"][1]["message"]')" '^rollout step 2 of 2: 50 %: v4 out$'
expect_eq "rollout: the switch is baking" "$(guard_get '["guard"]["kind"]')" bake
expect_ok back -m "undo the rollout"
expect_eq "back after the rollout: blue" "$(guard_get '["hot"]')" blue

# ---- a rollout aborted by an admin's back
start_rollout() {
	ctlj rollout "$@" >"$T/ro.out" 2>&1 &
	RO=$!
	track "$RO"
}
rollout_rc() { wait "$RO"; local rc=$?; untrack "$RO"; echo "$rc"; }
at_percent() { [ "$(ctlj status | jget '["canary"]["percent"]')" = "$1" ]; }
start_rollout --steps 10,50 --interval 120
ok "rollout reaches 10 %" wait_for 20 at_percent 10
expect_fail 1 busy switch
expect_ok back -m "stop it"
expect_eq "back during a rollout: reply says aborted" "$(jv "$OUT" '["rollout"]')" aborted
ok "the rollout client ends" wait_for 10 eval "! kill -0 $RO 2>/dev/null"
expect_eq "aborted rollout exits 1" "$(rollout_rc)" 1
expect_grep 'aborted by "back"' "$T/ro.out" "the rollout says who aborted it"
expect_eq "aborted: canary off" "$(guard_get '["canary"]')" null
expect_eq "aborted: blue hot" "$(guard_get '["hot"]')" blue
expect_eq "aborted: not busy" "$(guard_get '["busy"]')" null
expect_eq "aborted: journal back by root" "$(newest '"command", "user"')" '["back", "root"]'

# ---- a rollout stopped by the guard
start_rollout --steps 20,50 --interval 120
ok "rollout reaches 20 %" wait_for 20 at_percent 20
backend_ctl green 'set?status=500' >/dev/null
ok "the guard stops the rollout" drive_until 30 eval "! kill -0 $RO 2>/dev/null"
expect_eq "stopped rollout exits 1" "$(rollout_rc)" 1
expect_grep 'rolled back' "$T/ro.out" "the rollout says it was rolled back"
expect_eq "rolled back: canary off" "$(guard_get '["canary"]')" null
expect_eq "rolled back: blue hot" "$(guard_get '["hot"]')" blue
expect_eq "rolled back: journal back by switchd" "$(newest '"command", "user"')" '["back", "switchd"]'
expect_eq "rolled back: green failed" "$(guard_get '["pools"]["green"]["state"]')" failed
backend_ctl green reset >/dev/null

# ---- the client of a rollout goes away: the rollout goes on in switchd
ok "cold-deploy green v5" ctl cold-deploy -v v5 --no-deploy
start_rollout --steps 10 --interval 1
ok "rollout reaches 10 %" wait_for 20 at_percent 10
kill_tree TERM "$RO"
wait "$RO" 2>/dev/null; untrack "$RO"
ok "without its client, the rollout still switches to green" wait_for 30 hot_is green
ok "and frees the busy slot" wait_for 10 eval "[ \"\$(guard_get '[\"busy\"]')\" = null ]"
expect_eq "the switch is in the journal" "$(newest '"command", "message"')" '["switch", "rollout: every step passed"]'

t_done
