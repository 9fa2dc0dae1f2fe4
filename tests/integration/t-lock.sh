#!/bin/bash
# t-lock: the deploy lock.  While held, every mutating command of every
# user, the holder's included, fails with code "locked" naming the holder,
# the message and the age; unlock by the holder, unlock --force, or the TTL
# ends it; it survives a switchd restart.
. "$(dirname "$0")/../lib.sh"
t_setup
std_setup

expect_fail 1 not_locked unlock
expect_ok lock -m "db migration"
expect_eq "lock reply: message" "$(jv "$OUT" '["lock"]["message"]')" "db migration"
expect_eq "lock reply: user" "$(jv "$OUT" '["lock"]["user"]')" root

S=$(ctlj status)
expect_eq "status: lock message" "$(jv "$S" '["lock"]["message"]')" "db migration"
expect_eq "status: lock user" "$(jv "$S" '["lock"]["user"]')" root
expect_eq "status: lock uid" "$(jv "$S" '["lock"]["uid"]')" 0
ok "status: lock since" jv "$S" '["lock"]["since"]'
ok "human status mentions the lock" ctl status
expect_grep 'db migration' - "human status shows the lock message"

for cmd in "switch --force" "back" "lock -m again"; do
	# shellcheck disable=SC2086
	expect_fail 1 locked $cmd
	expect_emsg 'db migration' "$cmd: error has the lock message"
	expect_emsg 'root' "$cmd: error names the holder"
done
expect_eq "locked: nothing switched" "$(hap_map h1)" "$(map_text blue green)"
expect_eq "locked: still blue" "$(via_live)" blue
ok "status still works under the lock" ctl status
ok "history still works under the lock" ctl history
ok "hosts still works under the lock" ctl hosts hot

# ---- the lock survives a restart of switchd
stop_switchd
start_switchd
expect_fail 1 locked switch --force
expect_emsg 'db migration' "after restart: still locked by the same lock"

# ---- unlock, then it works
expect_ok unlock
expect_eq "status: no lock after unlock" "$(status_get '["lock"]')" null
expect_ok switch --force -m "after unlock"
expect_eq "switched after unlock" "$(via_live)" green
expect_fail 1 not_locked unlock

# ---- the TTL ends a lock
# A lock with a TTL blocks like any other (a TTL long enough that no slow
# machine sees it end during the check), then one whose TTL ends is gone by
# itself: the test waits for that event, not for a guessed duration.
expect_ok lock -m "with a ttl" --ttl 3600
expect_eq "lock reply: ttl" "$(jv "$OUT" '["lock"]["ttl"]')" 3600
expect_fail 1 locked back
expect_emsg 'with a ttl' "a TTL lock blocks mutating commands"
expect_ok unlock
expect_ok lock -m "short" --ttl 1
expect_eq "lock reply: short ttl" "$(jv "$OUT" '["lock"]["ttl"]')" 1
lock_gone() { [ "$(status_get '["lock"]')" = null ]; }
ok "the TTL ends the lock by itself" wait_for 60 lock_gone
expect_ok back -m "ttl over"
expect_eq "switched back after the TTL" "$(via_live)" blue
expect_eq "status: expired lock is gone" "$(status_get '["lock"]')" null

# ---- unlock --force
expect_ok lock -m "forgotten"
expect_ok unlock --force
expect_eq "status: no lock after unlock --force" "$(status_get '["lock"]')" null
expect_ok switch --force -m "after forced unlock"

# ---- bad arguments
expect_exit 2 ctl lock --ttl abc
expect_exit 2 ctl lock --ttl -5
expect_eq "bad lock arguments took no lock" "$(status_get '["lock"]')" null

t_done
