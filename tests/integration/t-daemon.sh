#!/bin/bash
# t-daemon: switchd without -d goes to the background only once it listens:
# it exits 0 when the daemon serves, and 1 with the reason on stderr when it
# cannot start (another switchd on the socket, an unusable state_dir) --
# nothing left running then.  It keeps its working directory, so a relative
# -f still works for SIGHUP, and it makes a missing socket directory.
. "$(dirname "$0")/../lib.sh"
t_setup
STD_NO_SWITCHD=1 std_setup

# Our daemons: the switchd processes whose working directory is $T.
ours() {
	local p
	for p in $(pgrep -x switchd) $(pgrep -f "^$SWITCHD "); do
		[ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$T" ] && echo "$p"
	done | sort -u
}

SOCK=$T/run/switchd.sock
sed "s|socket = \"$T/switchd.sock\"|socket = \"$SOCK\"|" "$T/switchd.conf" >"$T/daemon.conf"
grep -q "$SOCK" "$T/daemon.conf" || die "could not move the socket in daemon.conf"
ok "the socket directory does not exist yet" test ! -e "$T/run"

cd "$T" || die "cd $T"
run timeout 20 "$SWITCHD" -f daemon.conf
expect_eq "switchd (no -d) exits 0 once the daemon listens" "$RC" 0
expect_eq "and prints nothing" "$OUT$ERR" ""
pid=$(ours)
[ -n "$pid" ] && track "$pid"
expect_eq "one daemon is running" "$(echo $pid | wc -w)" 1
ok "the socket is there as soon as switchd returned" test -S "$SOCK"
expect_eq "its directory was made, mode 755" "$(stat -c %a "$T/run")" 755
ok "status answers" timeout 10 "$SWITCHCTL" -s "$SOCK" status
ok "it is in a session of its own" test "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid"

# ---- a second one refuses, says why on stderr, leaves the first alone
run timeout 20 "$SWITCHD" -f daemon.conf
expect_eq "a second switchd exits 1" "$RC" 1
expect_match "it says another switchd uses the state_dir" "$ERR" \
	"another switchd \(pid $pid\) uses state_dir $T/state \($T/state/switchd.lock is locked\)"
expect_eq "still one daemon" "$(ours)" "$pid"
ok "the first still answers" timeout 10 "$SWITCHCTL" -s "$SOCK" status

# ---- same state_dir, another socket: refused by the lock, not by the socket
sed -e "s|socket = \"$SOCK\"|socket = \"$T/second.sock\"|" daemon.conf >second.conf
run timeout 20 "$SWITCHD" -f second.conf
expect_eq "a second switchd on the same state_dir (other socket) exits 1" "$RC" 1
expect_match "it names the state_dir" "$ERR" "another switchd .* uses state_dir $T/state"
expect_eq "still one daemon, after the lock refusal" "$(ours)" "$pid"
ok "the refused one made no socket" test ! -e "$T/second.sock"

# ---- same socket, another state_dir: refused by the live socket
sed -e "s|state_dir = \"[^\"]*\"|state_dir = \"$T/state2\"|" daemon.conf >third.conf
run timeout 20 "$SWITCHD" -f third.conf
expect_eq "a second switchd on the same socket exits 1" "$RC" 1
expect_match "it says another switchd is running on the socket" "$ERR" "another switchd is already running on $SOCK"

# ---- an unusable state_dir: exit 1 with the reason, nothing left running
sed -e "s|socket = \"$SOCK\"|socket = \"$T/other.sock\"|" \
    -e "s|state_dir = \"[^\"]*\"|state_dir = \"$T/daemon.conf/state\"|" daemon.conf >bad-state.conf
run timeout 20 "$SWITCHD" -f bad-state.conf
expect_eq "a bad state_dir: exit 1" "$RC" 1
expect_match "the reason is on stderr" "$ERR" "cannot use state_dir $T/daemon.conf/state"
expect_eq "no second daemon left behind" "$(ours)" "$pid"
ok "no socket left behind" test ! -e "$T/other.sock"

# ---- a socket directory that cannot be made: exit 1 with the reason
sed -e "s|socket = \"$SOCK\"|socket = \"$T/daemon.conf/run/s.sock\"|" \
    -e "s|state_dir = \"[^\"]*\"|state_dir = \"$T/state3\"|" daemon.conf >bad-dir.conf
run timeout 20 "$SWITCHD" -f bad-dir.conf
expect_eq "an impossible socket directory: exit 1" "$RC" 1
expect_match "the reason names the directory" "$ERR" "control: socket directory $T/daemon.conf/run: Not a directory"
expect_eq "no second daemon left behind" "$(ours)" "$pid"

# ---- SIGHUP re-reads the relative -f from the kept working directory
bp2=$(free_port)
start_backend blue2 "$bp2" blue
BLUE_PORTS="$BLUE_PORTS $bp2"
write_config "" "$T/new.conf"
sed "s|socket = \"$T/switchd.sock\"|socket = \"$SOCK\"|" "$T/new.conf" >"$T/daemon.conf"
kill -HUP "$pid"
ok "SIGHUP took daemon.conf (relative path): two blue servers" wait_for 10 eval \
	"[ \"\$(timeout 5 '$SWITCHCTL' -s '$SOCK' -j status | jget 'len(d[\"pools\"][\"blue\"][\"servers\"])')\" = 2 ]"
ok "switch --force works in the daemon" timeout 20 "$SWITCHCTL" -s "$SOCK" switch --force -m daemon
expect_eq "HAProxy serves green" "$(via_live)" green

kill -TERM "$pid"
ok "the daemon exits on SIGTERM" wait_for 10 eval "! kill -0 $pid 2>/dev/null"
untrack "$pid"
ok "its socket is removed" test ! -e "$SOCK"

# ---- an exiting switchd removes only the socket it made: A's socket was
# removed by hand and B (its own state_dir) bound the same path; A exits
cd "$T" || die "cd $T"
run timeout 20 "$SWITCHD" -f daemon.conf
pidA=$(ours)
[ -n "$pidA" ] && track "$pidA"
ok "daemon A answers" timeout 10 "$SWITCHCTL" -s "$SOCK" status
rm -f "$SOCK"
run timeout 20 "$SWITCHD" -f third.conf
expect_eq "daemon B (state2) starts on the same path" "$RC" 0
pidB=$(ours | grep -vx "$pidA")
[ -n "$pidB" ] && track "$pidB"
kill -TERM "$pidA"
ok "daemon A exits" wait_for 10 eval "! kill -0 $pidA 2>/dev/null"
untrack "$pidA"
ok "B's socket is still there" test -S "$SOCK"
ok "B still answers" timeout 10 "$SWITCHCTL" -s "$SOCK" status
kill -TERM "$pidB"
ok "daemon B exits" wait_for 10 eval "! kill -0 $pidB 2>/dev/null"
untrack "$pidB"
ok "B removed its own socket" test ! -e "$SOCK"
t_done
