#!/bin/bash
# t-cli: switchctl's own behaviour — exit 3 when switchd is not reachable,
# exit 2 for usage errors, --json output that is one JSON document (also
# for failures), -q.
. "$(dirname "$0")/../lib.sh"
t_setup

# ---- no daemon
run "$SWITCHCTL" -s "$T/nothing.sock" status
expect_eq "no socket: exit 3" "$RC" 3
expect_match "no socket: says switchd is not running/reachable" "$ERR" '(not running|is switchd running|reach|connect)'
expect_match "no socket: names the socket" "$ERR" "$T/nothing.sock"
"$PYTHON" -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/stale.sock"
run "$SWITCHCTL" -s "$T/stale.sock" status
expect_eq "stale socket file, nobody listening: exit 3" "$RC" 3
run "$SWITCHCTL" -s "$T/nothing.sock" --json status
expect_eq "no socket with --json: exit 3" "$RC" 3
run "$SWITCHCTL" -s "$T/nothing.sock" switch --force
expect_eq "no socket, switch: exit 3" "$RC" 3

# ---- usage errors need no daemon
expect_exit 2 "$SWITCHCTL" -s "$T/nothing.sock" frobnicate
expect_match "unknown command is named" "$ERR" frobnicate
expect_exit 2 "$SWITCHCTL" -s "$T/nothing.sock"
expect_exit 2 "$SWITCHCTL" -s "$T/nothing.sock" switch --bogus-option
expect_exit 2 "$SWITCHCTL" -s "$T/nothing.sock" hosts
expect_exit 2 "$SWITCHCTL" -s "$T/nothing.sock" hosts purple
expect_exit 2 "$SWITCHCTL" -s "$T/nothing.sock" history -n abc
expect_exit 2 "$SWITCHCTL" -s "$T/nothing.sock" status extra-argument
expect_exit 2 "$SWITCHCTL" --no-such-global-option status
run "$SWITCHCTL" --help
expect_eq "--help exits 0" "$RC" 0
expect_match "--help lists switch" "$OUT$ERR" 'switch'

# ---- with a daemon
std_setup
ok "status exits 0" ctl status
run ctl --json status
J=$OUT
ok "--json status is one JSON document" jvalid <<<"$J"
run ctl -j status
J=$OUT
ok "-j status is one JSON document" jvalid <<<"$J"

# a failure with --json is a JSON document with ok/code/error
run ctl --json switch -m "not verified"
J=$OUT
expect_eq "--json failure: exit 1" "$RC" 1
ok "--json failure: stdout is one JSON document" jvalid <<<"$J"
expect_eq "--json failure: ok false" "$(jv "$J" '["ok"]')" false
expect_eq "--json failure: code" "$(jv "$J" '["code"]')" refused
expect_match "--json failure: error text" "$(jv "$J" '["error"]')" 'verif'
expect_nogrep 'Traceback' - "--json failure: no noise"

# human failure: message on stderr, nothing misleading on stdout
run ctl switch -m "not verified"
expect_eq "human failure: exit 1" "$RC" 1
expect_match "human failure: the reason on stderr" "$ERR" 'verif'

# --json switch: one document, even with progress events
run ctl --json switch --force -m "json switch"
J=$OUT
expect_eq "--json switch: exit 0" "$RC" 0
ok "--json switch: stdout is one JSON document (progress folded in or dropped)" jvalid <<<"$J"
expect_eq "--json switch: hot" "$(jv "$J" '["hot"]')" green

# human switch shows progress; -q shows nothing
run ctl back -m "human back"
expect_eq "human back: exit 0" "$RC" 0
expect_match "human back: says something" "$OUT" '.'
run ctl -q switch --force -m "quiet"
expect_eq "-q switch: exit 0" "$RC" 0
expect_eq "-q switch: no output" "$OUT" ""
expect_eq "-q switch did switch" "$(via_live)" green
run ctl -q unlock
expect_eq "-q failure (unlock without a lock): exit 1" "$RC" 1
expect_match "-q failure: the error is still on stderr" "$ERR" '.'

# history -n
run ctl --json history -n 2
expect_eq "history -n 2: two entries" "$(jv "$OUT" 'len(d["entries"])')" 2
run ctl history
expect_match "human history: the messages" "$OUT" 'quiet'

# hosts: one address a line, nothing else
run ctl hosts hot
expect_eq "hosts hot: the host part, one a line" "$OUT" "127.0.0.1"

# a value that is not UTF-8 is refused, never dropped: a switch --expect
# whose guard vanished would switch to whatever the cold pool runs
expect_ok cold-deploy --no-deploy -v v2 -m "cold at v2"
hot0=$(via_live)
run ctl switch --expect $'v3\xff' -m "bad expect"
expect_eq "switch --expect with a non-UTF-8 value: exit 2" "$RC" 2
expect_match "the refusal names the option" "$ERR" 'value of --expect is not valid UTF-8'
expect_eq "nothing switched" "$(via_live)" "$hot0"
run ctl switch --expect=$'v3\xff' -m "bad expect"
expect_eq "switch --expect=VALUE, not UTF-8: exit 2" "$RC" 2
run ctl lock -m $'bad \xc3'
expect_eq "lock -m, not UTF-8: exit 2" "$RC" 2
expect_eq "no lock taken" "$(status_get '["lock"]')" null

# the daemon goes away: exit 3 again
stop_switchd
run ctl status
expect_eq "daemon stopped: exit 3" "$RC" 3

t_done
