#!/bin/bash
# t-busy: one mutating command at a time.  While a switch is held in flight
# (the node's "commit map" held by the fault proxy until the test releases
# it) another mutating command gets code "busy" at once — before the held
# switch can finish — naming the holder; read-only commands still answer; a
# switchctl that goes away does not abort its switch; ten concurrent switches
# leave HAProxy, map file, state and history agreeing; SIGTERM finishes the
# switch in flight before exiting.  Nothing here races a clock: every held
# step waits for the test's release.
. "$(dirname "$0")/../lib.sh"
t_setup

two_pools
start_haproxy h1
start_fault_proxy fp1 h1
HAP_NODES=fp1
TIMEOUT_MS=120000       # a held commit waits for the test, not for switchd's timeout
write_config
start_switchd

# bg_ctl NAME ARGS...: switchctl --json ARGS in the background; output in
# $T/NAME.out, exit status in $T/NAME.rc when done; PID in $BG.
bg_ctl() {
	local name=$1; shift
	rm -f "$T/$name.rc"
	( ctlj "$@" >"$T/$name.out" 2>&1; echo $? >"$T/$name.rc" ) &
	BG=$!
	track "$BG"
}
bg_wait() { wait_for "${2:-15}" test -f "$T/$1.rc" && cat "$T/$1.rc"; }

commits_seen() { grep -c ' hold .*commit map' "$T/fp1.cmdlog" 2>/dev/null || true; }
# commits_gt N: more than N held commits seen so far (for wait_for).
commits_gt() { [ "$(commits_seen)" -gt "$1" ]; }
# still_held: the first switch has not finished (its commit is still held).
still_held() { [ ! -f "$T/first.rc" ] && [ "$(via_live)" = blue ]; }

# ---- a second mutating command while a switch is in flight
fault_hold fp1 'commit map'
bg_ctl first switch --force -m "first"
ok "the switch reached commit map (held until released)" wait_for 30 commits_gt 0
expect_fail 1 busy back -m "second"
ok "busy answered while the first switch is still held" still_held
expect_emsg 'root' "busy error names the holder's user"
expect_emsg 'switch' "busy error names the holder's command"
expect_fail 1 busy lock -m "sneaky"
expect_fail 1 busy switch --force -m "third"
ok "status answers while a switch is in flight" ctlj status
expect_match "status shows the command in flight" "$(jv "$OUT" 'bool(d["busy"])')" true
ok "history answers while a switch is in flight" ctlj history
ok "status and history answered while the switch is still held" still_held
fault_release fp1
expect_eq "the first switch completed once released" "$(bg_wait first 60)" 0
expect_eq "the first switch's reply" "$(jget '["ok"]' "$T/first.out")" true
expect_eq "live host on green" "$(via_live)" green
ctl unlock --force >/dev/null 2>&1   # only if "lock" above wrongly succeeded
expect_eq "status not busy any more" "$(status_get 'bool(d["busy"])')" false

# ---- the client goes away mid-switch; the switch still completes
fault_hold fp1 'commit map'
bg_ctl gone back -m "client leaves"
ok "back reached commit map" wait_for 30 commits_gt 1
kill_tree TERM "$BG"    # the subshell, timeout(1) and switchctl
fault_release fp1
live_is() { [ "$(via_live)" = "$1" ]; }
ok "back completes without its client" wait_for 30 live_is blue
ok "and the daemon is free again" wait_for 5 eval "[ \"\$(status_get 'bool(d[\"busy\"])')\" = false ]"
expect_eq "state after the orphaned back" "$(state_hot)" blue
expect_eq "history has the orphaned back" "$(ctlj history -n 1 | jget '["entries"][0]["message"]')" "client leaves"

# ---- ten concurrent switches on a plain fast node
fault_rules fp1 '{}'
HAP_NODES=h1
write_config
expect_ok reload
pids=""
for i in 1 2 3 4 5 6 7 8 9 10; do
	bg_ctl "c$i" switch --force -m "concurrent $i"
	pids="$pids $BG"
done
n_ok=0 n_busy=0 n_other=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	rc=$(bg_wait "c$i" 60)
	code=$(jget '["code"]' "$T/c$i.out" 2>/dev/null)
	if [ "$rc" = 0 ]; then n_ok=$((n_ok + 1))
	elif [ "$rc" = 1 ] && [ "$code" = busy ]; then n_busy=$((n_busy + 1))
	else n_other=$((n_other + 1)); log "c$i: exit '$rc' code '$code': $(head -c 300 "$T/c$i.out")"
	fi
done
log "concurrent: $n_ok completed, $n_busy busy"
ok "at least one concurrent switch got in" test "$n_ok" -ge 1
expect_eq "every other one got busy (exit 1)" "$n_other" 0
if [ $((n_ok % 2)) -eq 1 ]; then hot=green cold=blue; else hot=blue cold=green; fi
expect_eq "HAProxy map agrees with the number of switches" "$(hap_map h1)" "$(map_text $hot $cold)"
expect_eq "map file agrees" "$(file_map)" "$(map_text $hot $cold)"
expect_eq "state.json agrees" "$(state_hot)" "$hot"
expect_eq "status agrees" "$(status_get '["hot"]')" "$hot"
expect_eq "live host answers $hot" "$(via_live)" "$hot"
run ctlj history -n 1000
expect_eq "history: successful concurrent switches = exit-0 clients" \
	"$(jv "$OUT" 'len([e for e in d["entries"] if e["result"] == "ok" and (e.get("message") or "").startswith("concurrent")])')" "$n_ok"
expect_eq "history newest entry's after.hot agrees" "$(jv "$OUT" '["entries"][0]["after"]["hot"]')" "$hot"
ok "history.jsonl: every line parses" jlines_valid "$T/state/history.jsonl"

# ---- SIGTERM finishes the switch in flight, then exits
HAP_NODES=fp1
write_config
expect_ok reload
n=$(commits_seen)
fault_hold fp1 'commit map'
bg_ctl term switch --force -m "during shutdown"
ok "switch reached commit map" wait_for 30 commits_gt "$n"
kill -TERM "$(switchd_pid)"
# switchd must stay up while its switch is held; the switch's own reply is
# the event that shows SIGTERM did not cut it short.
ok "switchd waits for the held switch after SIGTERM" kill -0 "$(switchd_pid)"
fault_release fp1
expect_eq "the switch in flight completes (exit 0)" "$(bg_wait term 60)" 0
ok "switchd exits after it" wait_for 10 eval "! kill -0 $(switchd_pid) 2>/dev/null"
stop_switchd
expect_eq "switchd exit status 0 after SIGTERM" "$SWITCHD_RC" 0
expect_eq "live host flipped to $cold" "$(via_live)" "$cold"
fault_rules fp1 '{}'
start_switchd
expect_eq "after restart status agrees" "$(status_get '["hot"]')" "$cold"

t_done
