#!/bin/bash
# t-hostile: an operator who edits switchd's files by hand, and a state
# directory whose disk is full.  state.json is replaced by ten bad documents
# (not JSON, wrong types for hot, pools, a pool's state and version, the
# lock, missing keys, huge values, a garbage lock, a discovered entry without
# an address); history.jsonl is cut mid-line; the state directory is a full
# tmpfs.  Each time switchd must say clearly what is wrong, keep answering
# status, refuse what it cannot do safely (a lock it cannot read is held),
# and never change traffic: HAProxy's map and the live host stay on blue.
. "$(dirname "$0")/../lib.sh"
t_setup
std_setup

traffic_unchanged() {	# traffic_unchanged WHAT
	expect_eq "$1: HAProxy's map unchanged" "$(hap_map h1)" "$(map_text blue green)"
	expect_eq "$1: the live host still answers blue" "$(via_live)" blue
}

# A sound state file to spoil: green deployed and verified (so that a switch
# would go ahead if the damage were ignored), a switch on record.
expect_ok cold-deploy --no-deploy -v v1
expect_ok switch -m "to green"
expect_ok back -m "to blue"
expect_ok cold-deploy --no-deploy -v v2
expect_eq "baseline: green verified" "$(status_get '["pools"]["green"]["state"]')" verified
stop_switchd
cp "$T/state/state.json" "$T/good.json"
traffic_unchanged "baseline"

# spoil NAME PYTHON: state.json = good.json with PYTHON applied to d, then
# restart switchd; it must start and answer status.
spoil() {
	local name=$1 code=$2
	"$PYTHON" -c '
import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[2])
out = open(sys.argv[3], "w")
out.write(d if isinstance(d, str) else json.dumps(d))
' "$T/good.json" "$code" "$T/state/state.json" || die "spoil $name"
	rm -f "$T/state/state.json.damaged"
	: >"$T/switchd.log"
	start_switchd
	ok "$name: switchd answers status" ctl status
	S=$(ctlj status)
}
# restore: the sound state file, and HAProxy and the map file on blue again
# should a case have moved them, so that every case starts alike.
restore() {
	local v
	stop_switchd
	cp "$T/good.json" "$T/state/state.json"
	rm -f "$T/state/intent.json"
	if [ "$(hap_map h1)" != "$(map_text blue green)" ]; then
		v=$(hap h1 "prepare map $T/switchd.map" | awk '/New version/ { print $NF }')
		hap h1 "add map @$v $T/switchd.map $LIVE_HOST be_blue" >/dev/null
		hap h1 "add map @$v $T/switchd.map $COLD_HOST be_green" >/dev/null
		hap h1 "commit map @$v $T/switchd.map" >/dev/null
		write_map blue green
	fi
}
state_errors() { jv "$S" '" | ".join(d.get("state_errors", []))'; }

# 1. not JSON at all: the lock it may have held cannot be read, so it is held
spoil "not JSON" 'd = "{\"hot\": \"blue\", \"lock\": {\"user\": \"ann\", "'
expect_match "not JSON: status names the damage" "$(state_errors)" 'not JSON'
expect_eq "not JSON: the unreadable lock is held" "$(jv "$S" '["lock"]["damaged"]')" true
expect_fail 1 locked switch --force --no-smoke -m "through a damaged file"
expect_emsg 'could not be read.*unlock --force' "not JSON: the refusal says how to clear it"
expect_fail 1 refused unlock
expect_emsg 'unlock --force' "not JSON: a plain unlock is not enough"
ok "not JSON: the damaged file is kept for the admin" test -s "$T/state/state.json.damaged"
traffic_unchanged "not JSON"
expect_ok unlock --force
restore

# 2. hot of the wrong type: roles come from HAProxy, nothing moves
spoil "hot is a number" 'd["hot"] = 42'
expect_match "hot is a number: status names the field" "$(state_errors)" '^hot is not'
expect_eq "hot is a number: hot learnt from HAProxy" "$(jv "$S" '["hot"]')" blue
run ctl status
expect_grep '^state file: +hot is not' - "hot is a number: status (for people) names the field"
traffic_unchanged "hot is a number"
restore

# 3. pools of the wrong type: both pools not verified; switch refuses
spoil "pools is a string" 'd["pools"] = "blue,green"'
expect_match "pools is a string: status names the field" "$(state_errors)" '^pools is missing or not an object'
expect_fail 1 refused switch --no-smoke
expect_emsg 'not verified \(state: failed\)' "pools is a string: switch refused, green taken as failed"
traffic_unchanged "pools is a string"
restore

# 4. a pool's state of the wrong type (crashed switch and back: strcmp(NULL))
spoil "pool state is a number" 'd["pools"]["green"]["state"] = 7'
expect_match "pool state is a number: status names the field" "$(state_errors)" 'pools.green.state'
expect_fail 1 refused switch --no-smoke
expect_fail 1 refused back
expect_emsg 'record in state.json was damaged' "pool state is a number: back refused, saying why"
ok "pool state is a number: switchd survived switch and back" ctl status
traffic_unchanged "pool state is a number"
restore

# 5. a pool's version of the wrong type
spoil "version is an object" 'd["pools"]["green"]["version"] = {"sha": 1}'
expect_match "version is an object: status names the field" "$(state_errors)" 'pools.green.version'
expect_fail 1 refused switch --expect v2 --no-smoke
traffic_unchanged "version is an object"
restore

# 6. a lock that is garbage: held until unlock --force (it failed open)
spoil "lock is a string" 'd["lock"] = "ann was here"'
expect_match "lock is a string: status names the field" "$(state_errors)" '^lock is not an object'
expect_fail 1 locked switch --force --no-smoke -m "past a garbage lock"
traffic_unchanged "lock is a string"
restore

# 7. a lock with fields of the wrong types
spoil "lock fields mistyped" 'd["lock"] = {"user": 5, "uid": "root", "since_epoch": "yesterday"}'
expect_match "lock fields mistyped: status names the lock" "$(state_errors)" 'lock lacks'
expect_fail 1 locked switch --force --no-smoke
traffic_unchanged "lock fields mistyped"
restore

# 8. every key missing: an empty object
spoil "empty object" 'd = {}'
expect_match "empty object: status names the missing keys" "$(state_errors)" 'pools is missing'
expect_eq "empty object: hot learnt from HAProxy" "$(jv "$S" '["hot"]')" blue
expect_fail 1 refused switch --no-smoke
traffic_unchanged "empty object"
restore

# 9. huge values: a 2 MB version, a lock that expires in 2^62 s (held), and
# (next) an integer beyond 64 bits, which makes the whole file unreadable
spoil "huge values" 'd["pools"]["green"]["version"] = "x" * 2000000; d["lock"] = {"user": "ann", "uid": 0, "since_epoch": 1, "expires": 2**62}'
expect_match "huge values: status names the version" "$(state_errors)" 'pools.green.version'
expect_fail 1 locked switch --force --no-smoke
traffic_unchanged "huge values"
restore
spoil "integer beyond 64 bits" 'd["lock"] = {"user": "ann", "uid": 0, "since_epoch": 10**30}'
expect_match "integer beyond 64 bits: status names it" "$(state_errors)" 'too big integer'
expect_fail 1 locked switch --force --no-smoke
traffic_unchanged "integer beyond 64 bits"
expect_ok unlock --force
restore

# 10. a discovered entry without an address (crashed cold-deploy), and a
# last switch that is not one
spoil "discovered without address" 'd["discovered"] = {"green": [{"id": "i-0123456789abcdef0"}], "blue": [{"id": "i-0123456789abcdef1", "address": 7}]}; d["last_switch"] = [1, 2]'
expect_match "discovered without address: status names it" "$(state_errors)" 'discovered.green\[0\]'
expect_match "last_switch garbage: status names it" "$(state_errors)" 'last_switch'
expect_ok cold-deploy --no-deploy -v v3
expect_fail 1 refused back
expect_emsg 'no switch is recorded' "last_switch garbage: back refused"
ok "discovered without address: switchd survived cold-deploy" ctl status
traffic_unchanged "discovered without address"
restore

# ---- history.jsonl cut mid-line
start_switchd
expect_ok lock -m "to be cut"
expect_ok unlock
stop_switchd
size=$(stat -c %s "$T/state/history.jsonl")
truncate -s $((size - 20)) "$T/state/history.jsonl"
: >"$T/switchd.log"
start_switchd
expect_grep "cutting a torn last line" "$T/switchd.log" "torn journal: the log says it was cut"
ok "torn journal: history answers" ctl history
ok "torn journal: every line is JSON again" jlines_valid "$T/state/history.jsonl"
expect_ok lock -m "after the cut"
expect_ok unlock
ok "torn journal: new entries are whole lines" jlines_valid "$T/state/history.jsonl"
traffic_unchanged "torn journal"
stop_switchd

# ---- the state directory's disk is full
mkdir -p "$T/full"
if ! mount -t tmpfs -o size=64k tmpfs "$T/full" 2>"$T/mount.err"; then
	log "SKIP full disk: cannot mount a tmpfs ($(cat "$T/mount.err")); run as root"
else
	at_exit "umount '$T/full'"
	sed -i "s|^state_dir = .*|state_dir = \"$T/full\";|" "$T/switchd.conf"
	start_switchd
	expect_ok lock -m "before the disk fills"
	expect_ok unlock
	dd if=/dev/zero of="$T/full/filler" bs=4k count=64 2>/dev/null
	ok "full disk: the tmpfs is full" eval "! echo x >'$T/full/probe'"
	expect_fail 1 internal lock -m "on a full disk"
	expect_emsg 'cannot write the state file' "full disk: lock refused, saying why"
	expect_fail 1 internal switch --force --no-smoke -m "on a full disk"
	expect_emsg 'nothing was changed' "full disk: switch refused before touching a node"
	ok "full disk: status answers" ctl status
	ok "full disk: history answers" ctl history
	traffic_unchanged "full disk"
	expect_eq "full disk: the map file is unchanged" "$(file_map)" "$(map_text blue green)"
	stop_switchd
	rm -f "$T/full/filler" "$T/full/probe"
fi

t_done
