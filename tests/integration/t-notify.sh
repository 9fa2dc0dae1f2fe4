#!/bin/bash
# t-notify: every switch, back and cold-deploy is told to the webhook
# (Slack-compatible JSON with who, what, version, message, result) and to the
# notify command (same facts in its environment).  A webhook that fails or
# hangs is logged and never blocks, fails or undoes a switch.
. "$(dirname "$0")/../lib.sh"
t_setup
STD_NO_SWITCHD=1 std_setup

HP=$(free_port)
start_hook() {	# start_hook [ARGS...]
	"$PYTHON" "$LIB_DIR/hook_receiver.py" --port "$HP" --out "$T/hook.jsonl" "$@" \
		</dev/null >>"$T/hook.log" 2>&1 &
	HOOK=$!
	track "$HOOK"
	wait_for 10 eval "(exec 3<>/dev/tcp/127.0.0.1/$HP) 2>/dev/null" ||
		die "hook receiver did not start"
	: >"$T/hook.jsonl"
}
NOTIFY='notify = { webhook = "http://127.0.0.1:'$HP'/hook/T0KEN-s3cret"; command = "env | grep ^SWITCHD_ | sort > '$T'/notify.env.$$"; timeout = 2; };'
NOTIFY=${NOTIFY//\$\$/\$SWITCHD_ID}
write_config "$NOTIFY"
start_hook
start_switchd

expect_ok cold-deploy -v v42 -m "notify me"
expect_ok switch -m "going live" --expect v42
hook_has() { [ "$(wc -l <"$T/hook.jsonl")" -ge "$1" ]; }
ok "webhook got cold-deploy and switch" wait_for 5 hook_has 2
last=$(tail -n 1 "$T/hook.jsonl")
expect_match "webhook text names who and what" "$(jv "$last" '["text"]')" "root: switch app.example.com: blue -> green \"going live\": ok"
expect_eq "webhook carries the facts: command" "$(jv "$last" '["switchd"]["command"]')" switch
expect_eq "webhook carries the facts: after.hot" "$(jv "$last" '["switchd"]["after"]["hot"]')" green
first=$(head -n 1 "$T/hook.jsonl")
expect_match "cold-deploy notification names the version" "$(jv "$first" '["text"]')" "cold-deploy of v42 to the green pool"
envfile() { ls "$T"/notify.env.* 2>/dev/null | while read -r f; do grep -l "SWITCHD_COMMAND=switch$" "$f"; done | head -n 1; }
ok "notify command ran for the switch" wait_for 5 eval '[ -n "$(envfile)" ]'
f=$(envfile)
expect_grep "^SWITCHD_USER=root$" "$f" "command env: user"
expect_grep "^SWITCHD_MESSAGE=going live$" "$f" "command env: message"
expect_grep "^SWITCHD_FROM=blue$" "$f" "command env: from"
expect_grep "^SWITCHD_TO=green$" "$f" "command env: to"
expect_grep "^SWITCHD_RESULT=ok$" "$f" "command env: result"

# ---- a long version cut inside a character in the notification text: no
# crash, the journal line and the webhook body are whole
LONGV="$(printf 'a%.0s' $(seq 495))é"
: >"$T/hook.jsonl"
expect_ok cold-deploy --no-deploy -v "$LONGV" -m "long version"
ok "switchd is alive after a long UTF-8 version" alive "$(switchd_pid)"
expect_eq "the journal has the long version" "$(ctlj history -n 1 | jget 'd["entries"][0]["version"]')" "$LONGV"
ok "webhook got the long-version cold-deploy" wait_for 5 hook_has 1
expect_match "its text ends before the cut character" "$(tail -n 1 "$T/hook.jsonl" | jget '["text"]')" "cold-deploy of a{400,}"

# ---- a failing webhook: logged, the switch is not affected
stop_pid "$HOOK"
start_hook --status 500
expect_ok back -m "hook says 500"
expect_eq "back done despite a 500 webhook" "$(via_live)" blue
ok "the 500 is logged" wait_for 5 grep -q "webhook .* answered 500" "$T/switchd.log"

# ---- a hanging webhook: the switch answers at once; the timeout is logged
stop_pid "$HOOK"
start_hook --hang
t0=$(now_ms)
expect_ok switch --force --no-smoke -m "hook hangs"
t1=$(now_ms)
ok "switch answered in under 1.5 s with a hanging webhook ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 1500
expect_eq "switch done despite a hanging webhook" "$(via_live)" green
ok "the webhook timeout is logged" wait_for 6 grep -qi "webhook .*time" "$T/switchd.log"

# ---- no receiver at all
stop_pid "$HOOK"
expect_ok back -m "nobody listens"
expect_eq "back done with no receiver" "$(via_live)" blue
ok "connection refused is logged" wait_for 5 grep -qi "webhook .*connect" "$T/switchd.log"

# ---- the webhook URL carries a secret: the log shows scheme://host/... only
expect_grep "webhook http://127.0.0.1:$HP/\.\.\." "$T/switchd.log" "the log names the webhook redacted"
expect_nogrep "s3cret" "$T/switchd.log" "the log never shows the webhook's secret"

# ---- a bad webhook URL is a config error
write_config 'notify = { webhook = "ftp://x"; };' "$T/bad.conf"
run "$SWITCHD" -n -f "$T/bad.conf"
expect_eq "switchd -n refuses a non-HTTP webhook" "$RC" 1
expect_grep "notify.webhook must start with http" - "the error says why"

t_done
