#!/bin/bash
# t-fdlimit: idle clients never take the descriptors a switch needs.
# switchd raises its soft RLIMIT_NOFILE to the hard one, caps its clients
# below the limit with a reserve left for the work, and at the cap closes
# the oldest idle client to make room.  Before: with "ulimit -n 64" and 100
# idle connections, "switch" hung.
. "$(dirname "$0")/../lib.sh"
t_setup
STD_NO_SWITCHD=1 std_setup

# hold N: N connections to switchd that send nothing, held until $T/release
# exists; "held N" in $T/hold.out once they are all connected.
hold() {
	"$PYTHON" -c '
import os, socket, sys, time
path, n, release = sys.argv[1], int(sys.argv[2]), sys.argv[3]
socks = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    socks.append(s)
print("held %d" % len(socks), flush=True)
while not os.path.exists(release):
    time.sleep(0.05)
' "$T/switchd.sock" "$1" "$T/release" >"$T/hold.out" 2>&1 &
	HOLD=$!
	track "$HOLD"
}

# lowfd_switchd NAME ULIMIT-ARGS...: a wrapper that sets the limit, then
# runs switchd.
lowfd_wrapper() {
	local f=$T/$1; shift
	{ echo '#!/bin/sh'; for a in "$@"; do echo "ulimit $a"; done
	  echo "exec \"$SWITCHD\" \"\$@\""; } >"$f"
	chmod +x "$f"
	echo "$f"
}

REAL_SWITCHD=$SWITCHD
W=$(lowfd_wrapper lowfd.sh "-n 64")
SWITCHD=$W start_switchd
SWITCHD=$REAL_SWITCHD
PID=$(switchd_pid)
expect_eq "switchd runs with 64 descriptors" "$(awk '/^Max open files/ { print $4 }' "/proc/$PID/limits")" 64
expect_grep 'at most [0-9]+ clients \(descriptor limit 64' "$T/switchd.log" "the log says the client cap"

rm -f "$T/release"
hold 100
ok "100 idle connections are held" wait_for 20 grep -q '^held 100' "$T/hold.out"
expect_ok cold-deploy --no-deploy -v v2 -m "with 100 idle clients"
CTL_TIMEOUT=20 expect_ok switch --expect v2 -m "with 100 idle clients"
expect_eq "the switch took: HAProxy" "$(hap_map h1)" "$(file_map)"
expect_eq "green is live" "$(via_live)" green
expect_grep 'closing the oldest idle one' "$T/switchd.log" "the log says idle clients were shed"
expect_nogrep 'Too many open files' "$T/switchd.log" "never out of descriptors"
ok "switchd alive" alive "$PID"
n=$(ls "/proc/$PID/fd" | wc -l)
ok "switchd stays below its limit ($n descriptors of 64)" test "$n" -lt 64
touch "$T/release"
wait "$HOLD" 2>/dev/null
untrack "$HOLD"
stop_switchd
expect_eq "switchd exits 0 on SIGTERM" "$SWITCHD_RC" 0

# A soft limit below the hard one is raised to it.
W=$(lowfd_wrapper softfd.sh "-S -n 64")
SWITCHD=$W start_switchd
SWITCHD=$REAL_SWITCHD
lim=$(awk '/^Max open files/ { print $4, $5 }' "/proc/$(switchd_pid)/limits")
ok "the soft limit 64 is raised to the hard one ($lim)" test "${lim% *}" = "${lim#* }" -a "${lim% *}" != 64
stop_switchd

t_done
