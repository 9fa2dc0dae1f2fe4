#!/bin/bash
# t-canary: a share of the live host on the cold pool through a real
# HAProxy running the canary rules shipped in haproxy/haproxy.cfg — the
# canary map kept by switchd (runtime API and file), the split's accuracy
# over 10,000 clients at 10 % and 50 %, stickiness by cookie, the preview
# cookie, refusals, "back" and "switch" during a canary (a poller proving no
# request reaches the old pool after the switch's reply), kill -9 during a
# canary and during a bake window.
. "$(dirname "$0")/../lib.sh"
t_setup
two_pools
use_canary
start_haproxy h1
# switchd talks to h1 through a fault proxy that can hold a command.
start_fault_proxy fp1 h1
HAP_NODES=fp1
write_config 'guard = { interval_ms = 200; };'
config_canary
start_switchd

canary_status() { ctlj status | jget '["canary"]'; }
# share_ok COUNTS WANT: the green share of "blue=B green=G other=O" is
# within 1.5 points of WANT percent, and nothing else answered.
share_ok() {
	"$PYTHON" - "$1" "$2" <<'EOF'
import sys
c = dict(kv.split("=") for kv in sys.argv[1].split())
b, g, o = int(c["blue"]), int(c["green"]), int(c["other"])
share = 100.0 * g / (b + g + o)
print("green share %.2f %%" % share)
sys.exit(0 if o == 0 and abs(share - float(sys.argv[2])) <= 1.5 else 1)
EOF
}

# ---- before any canary
expect_eq "status: no canary" "$(canary_status)" null
expect_eq "status: no guard" "$(ctlj status | jget '["guard"]')" null
expect_eq "HAProxy serves be_green:0 from the canary map" "$(hap_canary h1)" be_green:0
expect_eq "plain requests go to blue" "$(split_count "$FE_PORT" 50 a)" "blue=50 green=0 other=0"

# ---- refusals
expect_fail 1 refused canary 10
expect_emsg 'not verified' "canary on an unverified pool is refused"
expect_exit 2 ctl canary 100
expect_exit 2 ctl canary abc
expect_exit 2 ctl canary
ok "cold-deploy green (v2)" ctl cold-deploy -v v2 --no-deploy
expect_fail 1 refused canary 10 --expect v3
expect_emsg 'not v3' "canary --expect names the version"
expect_eq "refusals changed nothing" "$(hap_canary h1)" be_green:0

# ---- 10 %
expect_ok canary 10 -m "first users"
expect_eq "reply: pool green" "$(jv "$OUT" '["pool"]')" green
expect_eq "reply: 10 %" "$(jv "$OUT" '["percent"]')" 10
expect_eq "HAProxy: be_green:10" "$(hap_canary h1)" be_green:10
expect_eq "canary map file: be_green:10" "$(awk -v h=$LIVE_HOST '$1 == h { print $2 }' "$CANARY_MAP")" be_green:10
expect_eq "main map untouched" "$(hap_map h1)" "$(map_text blue green)"
S=$(ctlj status)
expect_eq "status canary pool" "$(jv "$S" '["canary"]["pool"]')" green
expect_eq "status canary percent" "$(jv "$S" '["canary"]["percent"]')" 10
ok "status canary since" jv "$S" '["canary"]["since"]'
expect_eq "status guard watches green" "$(jv "$S" '["guard"]["pool"]')" green
expect_eq "state.json keeps the canary" "$(jget '["canary"]["percent"]' "$T/state/state.json")" 10
ok "human status shows the split" ctl status
expect_grep 'canary: +10 % of app.example.com on green' - "human status: canary line"
expect_eq "journal: canary entry" "$(ctlj history -n 1 | jget '[d["entries"][0][k] for k in ("command", "percent", "message")]')" '["canary", 10, "first users"]'
C=$(split_count "$FE_PORT" 10000 u)
ok "10 %: green share within 1.5 points over 10,000 clients ($C)" share_ok "$C" 10
log "$OUT"

# ---- stickiness: one client, one pool
C=$(split_count "$FE_PORT" 200 - "switchd_id=sticky-user-7")
expect_match "same cookie 200 times -> one pool ($C)" "$C" '^blue=(0 green=200|200 green=0) other=0$'
C=$(split_count "$FE_PORT" 200 - "switchd_id=another-user-42")
expect_match "another cookie, also one pool ($C)" "$C" '^blue=(0 green=200|200 green=0) other=0$'

# ---- no deploy under the canary's users
expect_fail 1 refused cold-deploy -v v9 --no-deploy
expect_emsg 'canary 0' "cold-deploy during a canary is refused, saying how to end it"

# ---- 50 %
expect_ok canary 50 --no-smoke
expect_eq "HAProxy: be_green:50" "$(hap_canary h1)" be_green:50
C=$(split_count "$FE_PORT" 10000 w)
ok "50 %: green share within 1.5 points over 10,000 clients ($C)" share_ok "$C" 50
log "$OUT"

# ---- the canary map file cannot be written: every node is put back
rm -f "$CANARY_MAP"; mkdir "$CANARY_MAP"
expect_fail 1 haproxy canary 20 --no-smoke
expect_emsg 'cannot write the canary map file' "the error names the canary map file"
expect_eq "the node is put back to be_green:50" "$(hap_canary h1)" be_green:50
expect_eq "the state keeps 50 %" "$(status_get '["canary"]["percent"]')" 50
expect_eq "the main map file is untouched" "$(file_map)" "$(map_text blue green)"
rmdir "$CANARY_MAP"; printf '%s be_green:50\n' "$LIVE_HOST" >"$CANARY_MAP"

# ---- preview: the cookie sends the live host name to the cold pool
expect_eq "preview cookie -> green, always" "$(split_count "$FE_PORT" 100 p "switchd_preview=1")" "blue=0 green=100 other=0"

# ---- canary 0 ends it
expect_ok canary 0
expect_eq "canary 0: status canary null" "$(canary_status)" null
expect_eq "canary 0: HAProxy be_green:0" "$(hap_canary h1)" be_green:0
expect_eq "canary 0: everyone on blue" "$(split_count "$FE_PORT" 500 z)" "blue=500 green=0 other=0"
expect_eq "canary 0: the guard stops" "$(ctlj status | jget '["guard"]')" null
expect_eq "preview still reaches the cold pool" "$(split_count "$FE_PORT" 20 p "switchd_preview=1")" "blue=0 green=20 other=0"

# ---- back during a canary ends the canary, the live host stays
expect_ok canary 20
expect_ok back -m "not yet"
expect_eq "back: the live host stays on blue" "$(jv "$OUT" '["hot"]')" blue
expect_eq "back: canary null" "$(canary_status)" null
expect_eq "back: HAProxy be_green:0" "$(hap_canary h1)" be_green:0
expect_eq "back: main map untouched" "$(hap_map h1)" "$(map_text blue green)"
expect_eq "back: journal entry" "$(ctlj history -n 1 | jget '[d["entries"][0][k] for k in ("command", "percent")]')" '["back", 0]'

# ---- switch during a canary: nothing reaches the old pool after the reply
expect_ok canary 30
rm -f "$T/poll.stop"
"$PYTHON" - "$FE_PORT" "$T/poll.out" "$T/poll.stop" <<'EOF' &
import http.client, os, sys, time
port, out, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
i = 0
with open(out, "w") as f:
    while not os.path.exists(stop):
        t = time.time()
        c.request("GET", "/", headers={"Host": "app.example.com", "Cookie": "switchd_id=p%d" % i})
        body = c.getresponse().read().decode().strip()
        f.write("%.6f %s\n" % (t, body))
        f.flush()
        i += 1
EOF
POLLER=$!
track "$POLLER"
wait_for 10 eval "[ \$(grep -c green '$T/poll.out') -gt 20 ]" || _fail "poller sees the canary"
expect_ok switch --no-smoke -m "complete the canary"
T_REPLY=$("$PYTHON" -c 'import time; print("%.6f" % time.time())')
N0=$(wc -l <"$T/poll.out")
wait_for 10 eval "[ \$(wc -l <'$T/poll.out') -gt $((N0 + 200)) ]" || _fail "poller goes on after the switch"
: >"$T/poll.stop"
wait "$POLLER" 2>/dev/null
untrack "$POLLER"
LATE=$(awk -v t="$T_REPLY" '$1 > t && $2 != "green"' "$T/poll.out" | wc -l)
AFTER=$(awk -v t="$T_REPLY" '$1 > t' "$T/poll.out" | wc -l)
expect_eq "after the switch's reply, none of $AFTER requests reached blue" "$LATE" 0
expect_eq "switch: canary null" "$(canary_status)" null
expect_eq "switch: HAProxy canary map be_blue:0 (the new cold pool)" "$(hap_canary h1)" be_blue:0
expect_eq "switch: canary map file be_blue:0" "$(awk -v h=$LIVE_HOST '$1 == h { print $2 }' "$CANARY_MAP")" be_blue:0
expect_eq "switch: main map flipped" "$(hap_map h1)" "$(map_text green blue)"
S=$(ctlj status)
expect_eq "switch: guard bakes green" "$(jv "$S" '[d["guard"]["kind"], d["guard"]["pool"]]')" '["bake", "green"]'
ok "switch: guard has an end" jv "$S" '["guard"]["until"]'

# ---- kill -9 during a bake window: the guard's window survives
kill9_switchd
start_switchd
S=$(ctlj status)
expect_eq "after kill -9: still baking green" "$(jv "$S" '[d["guard"]["kind"], d["guard"]["pool"]]')" '["bake", "green"]'
expect_eq "after kill -9: hot green" "$(jv "$S" '["hot"]')" green

# ---- kill -9 during a canary: the split survives
expect_ok canary 10
kill9_switchd
start_switchd
S=$(ctlj status)
expect_eq "after kill -9: canary blue 10" "$(jv "$S" '[d["canary"]["pool"], d["canary"]["percent"]]')" '["blue", 10]'
expect_eq "after kill -9: HAProxy be_blue:10" "$(hap_canary h1)" be_blue:10
expect_eq "after kill -9: guard watches the canary" "$(jv "$S" '[d["guard"]["kind"], d["guard"]["pool"]]')" '["canary", "blue"]'

# ---- kill -9 with a switch's canary commit in flight: the node ends consistent
expect_ok canary 0
ok "cold-deploy blue" ctl cold-deploy -v v3 --no-deploy
expect_ok canary 30
fault_hold fp1 "^commit map @[0-9]+ $CANARY_MAP"
ctlj switch --no-smoke -m "killed mid-way" >"$T/sw.out" 2>&1 &
SW=$!
track "$SW"
ok "the switch's canary commit is held" wait_for 20 fault_held fp1 0
expect_eq "main map already flipped to blue on the node" "$(hap_map h1)" "$(map_text blue green)"
kill9_switchd
wait "$SW" 2>/dev/null; untrack "$SW"
fault_release fp1
ok "the held commit went on" wait_for 10 fault_released fp1 0
fault_rules fp1 '{}'
start_switchd
S=$(ctlj status)
HOT=$(jv "$S" '["hot"]')
expect_eq "after restart: the node serves the state's hot pool ($HOT)" "$(hap_map h1)" "$(map_text "$HOT" "$([ "$HOT" = blue ] && echo green || echo blue)")"
if [ "$HOT" = blue ]; then
	expect_eq "switch finished: canary map be_green:0" "$(hap_canary h1)" be_green:0
	expect_eq "switch finished: no canary" "$(jv "$S" '["canary"]')" null
else
	expect_eq "switch undone: canary map be_blue:30" "$(hap_canary h1)" be_blue:30
	expect_eq "switch undone: canary blue 30" "$(jv "$S" '[d["canary"]["pool"], d["canary"]["percent"]]')" '["blue", 30]'
fi
expect_eq "after restart: every node agrees" "$(jv "$S" '["agree"]')" true
[ "$HOT" = blue ] || expect_ok canary 0
[ "$HOT" = green ] || expect_ok back -m "green again"
expect_eq "green hot again" "$(status_get '["hot"]')" green

# ---- the same, but the held canary commit is lost with the proxy: undone
expect_ok canary 30
fault_hold fp1 "^commit map @[0-9]+ $CANARY_MAP"
ctlj switch --no-smoke -m "killed, commit lost" >"$T/sw.out" 2>&1 &
SW=$!
track "$SW"
ok "the canary commit is held again" wait_for 20 fault_held fp1 1
kill9_switchd
wait "$SW" 2>/dev/null; untrack "$SW"
stop_pid "$(cat "$T/fp1.fpid")"
fault_rules fp1 '{}'
start_fault_proxy fp1 h1
start_switchd
S=$(ctlj status)
expect_eq "commit lost: the switch is undone (green hot)" "$(jv "$S" '["hot"]')" green
expect_eq "commit lost: the node serves green again" "$(hap_map h1)" "$(map_text green blue)"
expect_eq "commit lost: the canary is back at be_blue:30" "$(hap_canary h1)" be_blue:30
expect_eq "commit lost: status canary blue 30" "$(jv "$S" '[d["canary"]["pool"], d["canary"]["percent"]]')" '["blue", 30]'
expect_eq "commit lost: every node agrees" "$(jv "$S" '["agree"]')" true
expect_ok canary 10

# ---- the main map's commit fails during a canary: the canary map's
# commit, which would follow it on the same connection, is never sent
n=$(wc -l <"$T/fp1.cmdlog")
fault_rules fp1 "{\"fail_match\": \"^commit map @[0-9]+ $MAP\", \"fail_reply\": \"Injected fault 51: commit refused.\"}"
expect_fail 1 haproxy switch --no-smoke -m "main commit fails"
fault_rules fp1 '{}'
expect_emsg "Injected fault 51" "main commit fails: HAProxy's words"
ok "main commit fails: the canary map was prepared" grep -Eq " prepare map $CANARY_MAP" <(tail -n +$((n + 1)) "$T/fp1.cmdlog")
expect_nogrep " commit map @[0-9]+ $CANARY_MAP" <(tail -n +$((n + 1)) "$T/fp1.cmdlog") \
	"main commit fails: the canary map's commit was never sent"
expect_eq "main commit fails: the node still serves green" "$(hap_map h1)" "$(map_text green blue)"
expect_eq "main commit fails: the canary is still be_blue:10" "$(hap_canary h1)" be_blue:10
expect_eq "main commit fails: status canary blue 10" "$(jv "$(ctlj status)" '[d["canary"]["pool"], d["canary"]["percent"]]')" '["blue", 10]'

# ---- a canary map HAProxy lost (restart from a stale file) is put right
printf '%s be_blue:77\n' "$LIVE_HOST" >"$CANARY_MAP"
restart_haproxy h1
kill9_switchd
start_switchd
expect_eq "start-up reconcile: HAProxy canary back to be_blue:10" "$(hap_canary h1)" be_blue:10
expect_eq "start-up reconcile: file back to be_blue:10" "$(awk -v h=$LIVE_HOST '$1 == h { print $2 }' "$CANARY_MAP")" be_blue:10
expect_ok canary 0

# ---- smoke.preview: the gate also proves the live host's routing
write_config "smoke = { url = \"http://127.0.0.1:$FE_PORT\"; preview = true;
  checks = ( { name = \"home\"; path = \"/\"; body = \"blue\"; } ); };
guard = { interval_ms = 200; };"
config_canary
expect_ok reload
expect_ok smoke
expect_eq "smoke.preview: the check ran through the LB and as a preview" "$(jv "$OUT" '[c["target"] for c in d["checks"] if c["passed"]]')" '["lb", "preview"]'
hap h1 "set map $CANARY_MAP $LIVE_HOST be_green:0" >/dev/null
expect_fail 1 smoke_failed smoke
expect_eq "a preview routed to the wrong pool fails only the preview check" "$(jv "$OUT" '[c["target"] for c in d["checks"] if not c["passed"]]')" '["preview"]'
expect_ok sync
expect_eq "sync: the canary map is put right" "$(hap_canary h1)" be_blue:0
expect_eq "sync: reports the repair" "$(jv "$OUT" '["nodes"]')" repaired

# ---- refused where no canary can run
write_config 'guard = { interval_ms = 200; };'
expect_ok reload
expect_fail 1 refused canary 10
expect_emsg 'canary_map' "without canary_map: the refusal names it"
write_lb_config "haproxy = { mode = \"reload\"; master_socket = \"$T/m.sock\"; map = \"$T/switchd.map\"; canary_map = \"$CANARY_MAP\"; };" "" "$T/reload.conf"
run "$SWITCHD" -n -f "$T/reload.conf"
expect_eq "reload mode + canary_map: config refused" "$RC" 1
expect_grep 'canary_map needs haproxy.mode "runtime"' - "the config error names runtime mode"

# ---- the smoke gate before a canary: a failing check sets no split, and
# the cold pool is marked failed, as before a switch
write_config "smoke = { url = \"http://127.0.0.1:$FE_PORT\";
  checks = ( { name = \"home\"; path = \"/\"; body = \"served-by-no-pool\"; } ); };
guard = { interval_ms = 200; };"
config_canary
expect_ok reload
cold=$(status_get '["cold"]')
before=$(hap_canary h1)
expect_fail 1 smoke_failed rollout --steps 10 --interval 1
expect_emsg "no rollout, and $cold is marked failed" "a failed smoke: the refusal says no rollout ran"
expect_eq "a failed smoke before a rollout: the split is unchanged" "$(hap_canary h1)" "$before"
expect_eq "a failed smoke before a rollout: the cold pool is marked failed" "$(status_get "[\"pools\"][\"$cold\"][\"state\"]")" failed
# verified again (a deploy with no checks), then the same gate before a canary
write_config 'guard = { interval_ms = 200; };'
config_canary
expect_ok reload
expect_ok cold-deploy --no-deploy -m "verified again"
write_config "smoke = { url = \"http://127.0.0.1:$FE_PORT\";
  checks = ( { name = \"home\"; path = \"/\"; body = \"served-by-no-pool\"; } ); };
guard = { interval_ms = 200; };"
config_canary
expect_ok reload
expect_fail 1 smoke_failed canary 10
expect_emsg "no canary was set, and $cold is marked failed" "a failed smoke: the refusal says no canary was set"
expect_eq "a failed smoke: the split is unchanged" "$(hap_canary h1)" "$before"
expect_eq "a failed smoke: the cold pool is marked failed" "$(status_get "[\"pools\"][\"$cold\"][\"state\"]")" failed

t_done
