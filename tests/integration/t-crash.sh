#!/bin/bash
# t-crash: switchd killed at the worst moments, and stale files on disk.
# After every restart HAProxy, the map file, state.json and status agree;
# state.json and history.jsonl parse.  On start switchd finishes or undoes an
# interrupted switch (intent record), trusts what HAProxy serves over a stale
# state file, rewrites a stale map file, and says so in its log.
. "$(dirname "$0")/../lib.sh"
t_setup

two_pools
start_haproxy h1
start_fault_proxy fp1 h1
HAP_NODES=fp1
TIMEOUT_MS=120000       # a held commit waits for the test, not for switchd's timeout
write_config
start_switchd

commits_seen() { grep -c ' hold .*commit map' "$T/fp1.cmdlog" 2>/dev/null || true; }
commits_gt() { [ "$(commits_seen)" -gt "$1" ]; }
live_on() { [ "$(hap_map_get h1 "$LIVE_HOST")" = "be_$1" ]; }

# agree DESC: everything agrees with what HAProxy serves.
agree() {
	local d=$1 hot cold
	hot=$(hap_map_get h1 "$LIVE_HOST"); hot=${hot#be_}
	cold=$(hap_map_get h1 "$COLD_HOST"); cold=${cold#be_}
	log "$d: HAProxy serves live=$hot cold=$cold"
	expect_match "$d: HAProxy live host on a pool" "$hot" '^(blue|green)$'
	expect_ne "$d: live and cold hosts on different pools" "$hot" "$cold"
	expect_eq "$d: map file = HAProxy" "$(file_map)" "$(hap_map h1)"
	ok "$d: state.json parses" jvalid "$T/state/state.json"
	expect_eq "$d: state.json hot = HAProxy" "$(state_hot)" "$hot"
	expect_eq "$d: status hot = HAProxy" "$(status_get '["hot"]')" "$hot"
	expect_eq "$d: status cold = HAProxy" "$(status_get '["cold"]')" "$cold"
	if [ -f "$T/state/history.jsonl" ]; then
		ok "$d: every line of history.jsonl parses" jlines_valid "$T/state/history.jsonl"
	fi
	ok "$d: history --json answers" ctlj history -n 100
	AGREED_HOT=$hot
}

# log_since N: switchd.log after its first N lines.
log_lines() { wc -l <"$T/switchd.log"; }
log_since() { tail -n +"$(($1 + 1))" "$T/switchd.log"; }

# ---- kill -9 right after a switch returned: the switch stands
expect_ok switch --force -m "then crash"
kill9_switchd
start_switchd
agree "kill -9 after switch"
expect_eq "the completed switch stands" "$AGREED_HOT" green

# ---- kill -9 while "commit map" is held; the commit lands after the death
n=$(commits_seen)
fault_hold fp1 'commit map'
( ctlj switch --force -m "killed mid-commit" >"$T/mid1.out" 2>&1; echo $? >"$T/mid1.rc" ) &
track $!
ok "switch reached commit map" wait_for 30 commits_gt "$n"
kill9_switchd
ok "the client sees the daemon go (exit non-zero)" wait_for 30 eval "[ -f '$T/mid1.rc' ] && [ \"\$(cat '$T/mid1.rc')\" != 0 ]"
expect_eq "the commit is still held after the kill" "$(hap_map_get h1 "$LIVE_HOST")" be_green
fault_release fp1
ok "the held commit reaches HAProxy after the kill" wait_for 30 live_on blue
expect_eq "map file still old (the daemon died before writing it)" "$(file_map)" "$(map_text green blue)"
fault_rules fp1 '{}'
L=$(log_lines)
start_switchd
agree "kill -9 mid-commit (commit landed)"
log_since "$L" >"$T/log.mid1"
expect_grep 'interrupt|intent|unfinished|incomplete|resum|finish|undo|roll' "$T/log.mid1" \
	"log says an interrupted switch was reconciled"
expect_eq "node and file agree with the committed switch" "$AGREED_HOT" blue

# ---- kill -9 while "commit map" is held; the commit never lands
n=$(commits_seen)
fault_hold fp1 'commit map'
before=$(hap_map h1)
( ctlj switch --force -m "killed, commit lost" >"$T/mid2.out" 2>&1; echo $? >"$T/mid2.rc" ) &
track $!
ok "switch reached commit map" wait_for 30 commits_gt "$n"
kill9_switchd
stop_pid "$(cat "$T/fp1.fpid")"   # the held commit dies with the proxy
fault_rules fp1 '{}'
start_fault_proxy fp1 h1
expect_eq "HAProxy never saw the commit" "$(hap_map h1)" "$before"
L=$(log_lines)
start_switchd
agree "kill -9 mid-commit (commit lost)"
log_since "$L" >"$T/log.mid2"
expect_grep 'interrupt|intent|unfinished|incomplete|resum|finish|undo|roll' "$T/log.mid2" \
	"log says an interrupted switch was reconciled"
expect_ok switch --force -m "after recovery"
agree "a switch after recovery"

# ---- a stale state.json: HAProxy is trusted
stop_switchd
served=$(hap_map_get h1 "$LIVE_HOST"); served=${served#be_}
"$PYTHON" - "$T/state/state.json" <<'EOF'
import json, sys
p = sys.argv[1]; d = json.load(open(p))
d["hot"], d["cold"] = d["cold"], d["hot"]
json.dump(d, open(p, "w"))
EOF
expect_ne "state.json now disagrees with HAProxy" "$(state_hot)" "$served"
L=$(log_lines)
start_switchd
agree "stale state.json"
expect_eq "HAProxy was trusted over state.json" "$AGREED_HOT" "$served"
log_since "$L" >"$T/log.stale"
expect_grep 'stale|disagree|differ|mismatch|trust|instead|correct' "$T/log.stale" \
	"log says the state file was stale"

# ---- a stale map file: rewritten to what HAProxy serves
stop_switchd
served=$(hap_map_get h1 "$LIVE_HOST"); served=${served#be_}
if [ "$served" = blue ]; then other=green; else other=blue; fi
printf '%s be_%s\n%s be_%s\n' "$LIVE_HOST" "$other" "$COLD_HOST" "$served" >"$T/switchd.map"
start_switchd
agree "stale map file"
expect_eq "map file rewritten to what HAProxy serves" "$(file_map)" "$(map_text "$served" "$other")"
restart_haproxy h1
expect_eq "and an HAProxy restart keeps it" "$(via_live)" "$served"

# ---- a torn last line in history.jsonl (crash mid-append)
stop_switchd
printf '{"time": "2024-01-01T00:00:00Z", "command": "swi' >>"$T/state/history.jsonl"
start_switchd
expect_ok switch --force -m "after a torn line"
run ctlj history -n 5
expect_eq "history answers; newest is the new switch" "$(jv "$OUT" '["entries"][0]["message"]')" "after a torn line"
ok "the new entry is a whole line of its own" eval "tail -n 1 '$T/state/history.jsonl' | jvalid"

# ---- state.json unreadable garbage: no crash; either a clear refusal to
# start or a recovery from what HAProxy serves
stop_switchd
echo '{"hot": "gre' >"$T/state/state.json"
"$SWITCHD" -d -f "$T/switchd.conf" </dev/null >>"$T/switchd.log" 2>&1 &
pid=$!
track "$pid"
echo "$pid" >"$T/switchd.pid"
L=$(log_lines)
ok "switchd either serves or exits within 10 s" wait_for 10 eval "ctl status || ! kill -0 $pid"
if alive "$pid"; then
	agree "corrupt state.json"
else
	wait "$pid"; rc=$?
	untrack "$pid"
	expect_ne "refused to start: non-zero exit" "$rc" 0
	expect_grep 'state' "$T/switchd.log" "the refusal names the state file"
	ok "no core dump / signal death" test "$rc" -lt 128
fi

# ---- issue 13: a failed switch replies only once its intent record is
# settled.  It used to reply (releasing the busy slot) and only then look at
# the nodes and clear the intent, so a newer switch started in between had
# its own intent record removed.  The look is slowed down here ("show map"
# delayed): when the failed switch's reply arrives, no intent may be left.
stop_switchd 2>/dev/null
rm -f "$T/state/state.json" "$T/state/intent.json"
write_map blue green
restart_haproxy h1
fault_rules fp1 '{}'
start_switchd
fault_rules fp1 '{"fail_match": "^add map", "fail_reply": "Unknown map identifier.\n",
  "delay_match": "show map", "delay_ms": 1500}'
expect_fail 1 haproxy switch --force --no-smoke -m "fails at add map"
ok "the failed switch replied after its intent record was settled" \
	no_intent
fault_rules fp1 '{}'
expect_eq "failed at add map: HAProxy still on blue" "$(hap_map h1)" "$(map_text blue green)"
ok "switchd answers after the failed switch" ctl status

# ---- issue 13: the map file's rename succeeds but the directory fsync
# fails.  The switch fails and the nodes are put back, so the file on disk
# must be put back too, or the next HAProxy reload would flip the site.  A
# preloaded fsync() fails on the map file's directory while $T/fail-dirsync
# exists (and on no other).
cat >"$T/dirsync.c" <<'EOF2'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int
fsync(int fd)
{
	static int (*real)(int);
	const char *dir = getenv("FAIL_DIRSYNC_DIR"), *trig = getenv("FAIL_DIRSYNC_IF");
	char link[64], path[PATH_MAX];
	ssize_t n;

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if (dir != NULL && trig != NULL && access(trig, F_OK) == 0 &&
	    (n = readlink(link, path, sizeof(path) - 1)) > 0) {
		path[n] = '\0';
		if (strcmp(path, dir) == 0) {
			errno = EIO;
			return -1;
		}
	}
	return real(fd);
}
EOF2
if ! cc -shared -fPIC -o "$T/dirsync.so" "$T/dirsync.c" -ldl 2>"$T/cc.err"; then
	log "SKIP map file fsync failure: cannot build the fsync shim ($(head -1 "$T/cc.err"))"
else
	stop_switchd 2>/dev/null
	rm -f "$T/state/state.json"
	write_map blue green
	restart_haproxy h1
	fault_rules fp1 '{}'
	: >"$T/switchd.log"
	ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0" LD_PRELOAD="$T/dirsync.so" \
	    FAIL_DIRSYNC_DIR="$T" FAIL_DIRSYNC_IF="$T/fail-dirsync" start_switchd
	expect_eq "fsync shim: live on blue" "$(hap_map h1)" "$(map_text blue green)"
	touch "$T/fail-dirsync"
	expect_fail 1 haproxy switch --force --no-smoke -m "dir fsync fails"
	expect_emsg 'cannot write the map file' "the failure names the map file"
	rm -f "$T/fail-dirsync"
	expect_eq "dir fsync failed: HAProxy put back on blue" "$(hap_map h1)" "$(map_text blue green)"
	expect_eq "dir fsync failed: the map file put back on blue too" "$(file_map)" "$(map_text blue green)"
	stop_switchd
fi

t_done
