# tests/lib.sh — the harness every tests/integration/t-*.sh sources.
#
#   . "$(dirname "$0")/../lib.sh"
#   t_setup                       # $T = private temp dir, cleanup on EXIT
#   std_setup                     # backends + HAProxy h1 + config + switchd
#   ok "live host is blue" test "$(via_live)" = blue
#   expect_exit 1 ctl switch
#   t_done                        # "N passed, N failed"; exit 1 on failure
#
# Rules every test keeps: bind and connect only 127.0.0.1, ports from
# free_port, files only under $T, kill only the PIDs it started (tracked in
# $T/pids and killed on exit), and bound every wait with a timeout.
#
# Environment:
#   SWITCHD, SWITCHCTL   binaries (default: switchd/switchd, switchd/switchctl)
#   KEEP=1               keep $T after the test (its path is printed)
#   VERBOSE=1            trace the helpers' commands
#   HAPROXY              haproxy binary (default: haproxy in PATH or /usr/sbin)

set -u

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LIB_DIR/.." && pwd)
SWITCHD=${SWITCHD:-$REPO_DIR/switchd/switchd}
SWITCHCTL=${SWITCHCTL:-$REPO_DIR/switchd/switchctl}
case $SWITCHD in /*) ;; *) SWITCHD=$PWD/$SWITCHD ;; esac
case $SWITCHCTL in /*) ;; *) SWITCHCTL=$PWD/$SWITCHCTL ;; esac
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
# One Python for the whole harness: Debian's, never whatever "python3" the
# PATH finds first (a version-manager shim can take half a second to start).
PYTHON=/usr/bin/python3
export SWITCHD SWITCHCTL

T=""
PASS=0
FAIL=0
T_NAME=$(basename "$0" .sh)
LIVE_HOST=app.example.com
COLD_HOST=cold.app.example.com

# ---------------------------------------------------------------- basics

log()  { printf '# %s\n' "$*"; }
vlog() { [ -n "${VERBOSE:-}" ] && printf '#   %s\n' "$*" >&2; return 0; }

# die MSG: a setup step failed; count it and stop the test.
die() {
	printf 'not ok - %s\n' "$*"
	FAIL=$((FAIL + 1))
	exit 1
}

now_ms() { date +%s%3N; }

# wait_for SECONDS CMD...: run CMD every 0.1 s until it succeeds; 1 on timeout.
wait_for() {
	local secs=$1; shift
	local deadline=$(( $(now_ms) + secs * 1000 ))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(now_ms)" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

# track PID: kill it (TERM, then KILL) when the test exits.
track() { echo "$1" >>"$T/pids"; }
untrack() {
	[ -f "$T/pids" ] || return 0
	grep -vx "$1" "$T/pids" >"$T/pids.tmp" || true
	mv "$T/pids.tmp" "$T/pids"
}

alive() { kill -0 "$1" 2>/dev/null; }

# at_exit "SHELL COMMAND": run it when the test exits (after the processes
# are stopped), e.g. to remove a user the test created.
at_exit() { printf '%s\n' "$1" >>"$T/atexit"; }

# kill_tree SIG PID: signal PID's children (by parent PID), then PID.
kill_tree() {
	local sig=$1 pid=$2 c
	for c in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
		kill_tree "$sig" "$c"
	done
	kill "-$sig" "$pid" 2>/dev/null
	return 0
}

# stop_pid PID [SECONDS]: TERM, wait (bounded, default 3 s), then KILL.
stop_pid() {
	local pid=$1 secs=${2:-3}
	alive "$pid" || { untrack "$pid"; return 0; }
	kill -TERM "$pid" 2>/dev/null
	wait_for "$secs" eval "! kill -0 $pid 2>/dev/null" || {
		kill -KILL "$pid" 2>/dev/null
		wait_for 2 eval "! kill -0 $pid 2>/dev/null"
	}
	wait "$pid" 2>/dev/null
	untrack "$pid"
	return 0
}

_cleanup() {
	local rc=$? pid pids cmd
	trap - EXIT INT TERM
	[ -n "$T" ] && [ -d "$T" ] || exit "$rc"
	if [ -f "$T/pids" ]; then
		pids=$(tac "$T/pids")
		for pid in $pids; do kill -TERM "$pid" 2>/dev/null; done
		local deadline=$(( $(now_ms) + 3000 ))
		for pid in $pids; do
			while kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
				sleep 0.05
			done
			kill -KILL "$pid" 2>/dev/null
		done
	fi
	if [ -f "$T/atexit" ]; then
		while IFS= read -r cmd; do eval "$cmd" >/dev/null 2>&1; done <"$T/atexit"
	fi
	if sanitizer_reports; then
		# Count each report as a failed check, and say the count again so
		# that it is the last "N passed, N failed" run.sh reads.
		FAIL=$((FAIL + SAN_N))
		echo "$PASS passed, $FAIL failed"
		rc=1
	fi
	if [ "$rc" -ne 0 ] || [ "$FAIL" -ne 0 ]; then
		for f in "$T/switchd.log" "$T"/sw[0-9]*.log; do
			[ -f "$f" ] || continue
			echo "# ---- last 40 lines of $f"
			tail -n 40 "$f" | sed 's/^/#   /'
		done
		[ "$rc" -ne 0 ] || rc=1
	fi
	if [ -n "${KEEP:-}" ]; then
		echo "# KEEP=1: test files left in $T"
	else
		rm -rf "$T"
	fi
	exit "$rc"
}

# sanitizer_reports: print ASan/UBSan reports written by any binary of this
# test (they go to $T/san/ by log_path); 0 if there were any.
sanitizer_reports() {
	local f found=1
	SAN_N=0
	for f in "$T"/san/*; do
		[ -s "$f" ] || continue
		SAN_N=$((SAN_N + 1))
		echo "not ok - sanitizer report $(basename "$f")"
		sed 's/^/#   /' "$f" | head -n 60
		found=0
	done
	return $found
}

t_setup() {
	T=$(mktemp -d /tmp/switchd-test.XXXXXX) || { echo "mktemp failed"; exit 1; }
	chmod 755 "$T"
	: >"$T/pids"
	mkdir -p "$T/san" "$T/state"
	chmod 1777 "$T/san"
	trap _cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# Sanitizer reports go to files we check at the end, so that one in a
	# command whose output a test swallows is still seen.
	# log_exe_name: the report file says which binary; the slow unwinder
	# gives whole stacks through libc (getline, strdup...).
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/san/asan:log_exe_name=1:fast_unwind_on_malloc=0"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/san/ubsan"
	export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}log_path=$T/san/lsan"
	[ -x "$SWITCHD" ] || die "no switchd binary at $SWITCHD (run make, or set SWITCHD)"
	[ -x "$SWITCHCTL" ] || die "no switchctl binary at $SWITCHCTL (run make, or set SWITCHCTL)"
	log "$T_NAME: T=$T"
}

# t_done: stop switchd (so leak checks run), print the count, exit.
t_done() {
	if [ -f "$T/switchd.pid" ] && alive "$(cat "$T/switchd.pid")"; then
		stop_switchd
	fi
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ] && exit 0
	exit 1
}

# ---------------------------------------------------------------- assertions

_pass() { PASS=$((PASS + 1)); printf 'ok - %s\n' "$1"; }
_fail() { FAIL=$((FAIL + 1)); printf 'not ok - %s\n' "$1"; }

# Output of the last command run by ok/nok/expect_exit/run.
OUT=""
ERR=""
RC=0

# run CMD...: run, keep stdout in $OUT, stderr in $ERR, status in $RC.
run() {
	"$@" >"$T/last.out" 2>"$T/last.err"
	RC=$?
	OUT=$(cat "$T/last.out")
	ERR=$(cat "$T/last.err")
	vlog "run $* -> $RC"
	return 0
}

_show_last() {
	[ -n "$OUT" ] && printf '%s\n' "$OUT" | head -n 20 | sed 's/^/#   stdout: /'
	[ -n "$ERR" ] && printf '%s\n' "$ERR" | head -n 20 | sed 's/^/#   stderr: /'
	return 0
}

# ok DESC CMD...: CMD must exit 0.
ok() {
	local desc=$1; shift
	run "$@"
	if [ "$RC" -eq 0 ]; then _pass "$desc"; return 0; fi
	_fail "$desc"; echo "#   command: $* (exit $RC)"; _show_last; return 1
}

# nok DESC CMD...: CMD must exit non-zero.
nok() {
	local desc=$1; shift
	run "$@"
	if [ "$RC" -ne 0 ]; then _pass "$desc"; return 0; fi
	_fail "$desc"; echo "#   command: $* (exit 0, expected failure)"; _show_last; return 1
}

# expect_exit CODE CMD...: CMD must exit CODE.
expect_exit() {
	local want=$1; shift
	run "$@"
	if [ "$RC" -eq "$want" ]; then _pass "exit $want: $*"; return 0; fi
	_fail "exit $want: $*"; echo "#   got exit $RC"; _show_last; return 1
}

# expect_eq DESC ACTUAL EXPECTED
expect_eq() {
	if [ "$2" = "$3" ]; then _pass "$1"; return 0; fi
	_fail "$1"; printf '#   expected: %s\n#   actual:   %s\n' "$3" "$2"; return 1
}

# expect_match DESC ACTUAL REGEX: ACTUAL matches the extended REGEX.
expect_match() {
	if printf '%s\n' "$2" | grep -Eq -- "$3"; then _pass "$1"; return 0; fi
	_fail "$1"; printf '#   /%s/ does not match: %s\n' "$3" "$2"; return 1
}

expect_ne() {
	if [ "$2" != "$3" ]; then _pass "$1"; return 0; fi
	_fail "$1"; printf '#   both are: %s\n' "$2"; return 1
}

# expect_grep PATTERN FILE [DESC]: extended regex PATTERN occurs in FILE
# ("-" or no file: in $OUT and $ERR of the last run).
expect_grep() {
	local pat=$1 file=${2:--} desc=${3:-}
	local text
	if [ "$file" = - ]; then text="$OUT
$ERR"; desc=${desc:-output matches /$pat/}
	else text=$(cat "$file" 2>/dev/null); desc=${desc:-$(basename "$file") matches /$pat/}
	fi
	if printf '%s\n' "$text" | grep -Eq -- "$pat"; then _pass "$desc"; return 0; fi
	_fail "$desc"; printf '%s\n' "$text" | tail -n 15 | sed 's/^/#   | /'; return 1
}

expect_nogrep() {
	local pat=$1 file=${2:--} desc=${3:-}
	local text
	if [ "$file" = - ]; then text="$OUT
$ERR"; desc=${desc:-output does not match /$pat/}
	else text=$(cat "$file" 2>/dev/null); desc=${desc:-$(basename "$file") does not match /$pat/}
	fi
	if ! printf '%s\n' "$text" | grep -Eq -- "$pat"; then _pass "$desc"; return 0; fi
	_fail "$desc"; printf '%s\n' "$text" | grep -E -- "$pat" | head -n 5 | sed 's/^/#   | /'; return 1
}

# ---------------------------------------------------------------- JSON

# jget EXPR [FILE] or jget FILE EXPR (FILE "-" or none: stdin).
# EXPR starting with [ or . is applied to the document d ('["pools"]["blue"]');
# anything else is a Python expression over d ('len(d["entries"])').
# Strings print raw, everything else as JSON with sorted keys (null, true,
# 3, {"cold": "green", "hot": "blue"}).
# The input may be one JSON document, or lines of which the last JSON object
# with an "ok" key (or the last JSON line) is taken — so the output of
# switchctl --json with progress lines works too.  Exit 1 if not found.
jget() {
	local expr file=-
	if [ $# -ge 2 ] && { [ "$1" = - ] || [ -f "$1" ]; }; then file=$1; expr=$2
	else expr=$1; file=${2:--}
	fi
	"$PYTHON" -c '
import json, re, sys
expr, path = sys.argv[1], sys.argv[2]
text = sys.stdin.read() if path == "-" else open(path).read()
def parse(text):
    try:
        return json.loads(text)
    except ValueError:
        pass
    # Several documents (progress lines, a pretty-printed reply, human text
    # around them): take every top-level JSON value that starts a line.
    dec, docs, off, skip = json.JSONDecoder(), [], 0, 0
    for line in text.splitlines(True):
        start = off + len(line) - len(line.lstrip())
        off += len(line)
        if start < skip or not line.lstrip().startswith(("{", "[")):
            continue
        try:
            o, skip = dec.raw_decode(text, start)
            docs.append(o)
        except ValueError:
            pass
    finals = [o for o in docs if isinstance(o, dict) and "ok" in o]
    if finals:
        return finals[-1]
    if docs:
        return docs[-1]
    sys.exit("jget: no JSON in input")
d = parse(text)
try:
    sub = expr[:1] == "." or re.match(r"\[\s*[\"\x270-9-]", expr)
    v = eval("d" + expr if sub else expr, {"d": d, "json": json})
except (KeyError, IndexError, TypeError) as e:
    sys.exit("jget: %s: %r" % (expr, e))
print(v if isinstance(v, str) else json.dumps(v, sort_keys=True))
' "$expr" "$file"
}

# jvalid [FILE]: input is one JSON document.
jvalid() { "$PYTHON" -c 'import json,sys; json.load(sys.stdin)' <"${1:-/dev/stdin}"; }

# jlines_valid FILE: every non-empty line of FILE is a JSON object.
jlines_valid() {
	"$PYTHON" -c '
import json, sys
n = 0
for i, line in enumerate(open(sys.argv[1]), 1):
    if not line.strip():
        continue
    try:
        o = json.loads(line)
    except ValueError as e:
        sys.exit("line %d: %s: %r" % (i, e, line[:200]))
    if not isinstance(o, dict):
        sys.exit("line %d: not an object" % i)
    n += 1
print(n)
' "$1"
}

# jv JSON EXPR: jget on a string.
jv() { printf '%s\n' "$1" | jget "$2"; }

# ---------------------------------------------------------------- switchctl checks

# expect_ok ARGS...: "switchctl --json ARGS" exits 0 with {"ok": true}; the
# reply stays in $OUT.
expect_ok() {
	run ctlj "$@"
	local okv
	okv=$(jv "$OUT" '["ok"]' 2>/dev/null)
	local d="switchctl${CTL_SOCK:+ -s ${CTL_SOCK##*/}} $* -> ok"
	if [ "$RC" -eq 0 ] && [ "$okv" = true ]; then _pass "$d"; return 0; fi
	_fail "$d"; echo "#   exit $RC, ok=$okv"; _show_last; return 1
}

# expect_fail EXIT CODE ARGS...: "switchctl --json ARGS" exits EXIT and the
# reply's code is CODE; the reply's error text is left in $EMSG.
EMSG=""
expect_fail() {
	local want=$1 code=$2; shift 2
	run ctlj "$@"
	local reply got
	reply="$OUT
$ERR"
	got=$(jv "$reply" '["code"]' 2>/dev/null)
	EMSG=$(jv "$reply" '["error"]' 2>/dev/null)
	local d="switchctl${CTL_SOCK:+ -s ${CTL_SOCK##*/}} $* -> exit $want, code $code"
	if [ "$RC" -eq "$want" ] && [ "$got" = "$code" ]; then
		_pass "$d"; return 0
	fi
	_fail "$d"
	echo "#   got exit $RC, code '$got'"; _show_last; return 1
}

# expect_emsg REGEX [DESC]: the error text of the last expect_fail matches.
expect_emsg() {
	if printf '%s\n' "$EMSG" | grep -Eq -- "$1"; then _pass "${2:-error text matches /$1/}"; return 0; fi
	_fail "${2:-error text matches /$1/}"; printf '#   error: %s\n' "$EMSG"; return 1
}

# ---------------------------------------------------------------- ports, backends

# free_port: a TCP port on 127.0.0.1 nobody listens on now (and that this
# test has not handed out before).
free_port() {
	local p i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		p=$("$PYTHON" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
		if ! grep -qx "$p" "$T/ports" 2>/dev/null; then
			echo "$p" >>"$T/ports"
			echo "$p"
			return 0
		fi
	done
	die "free_port: no free port"
}

http_up() { curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/health"; }

# start_backend NAME PORT [BODY]: tests/backend.py answering BODY (default
# NAME) on every path, "ok" on /health.  Control: backend_ctl NAME down|up|set?...
start_backend() {
	local name=$1 port=$2 body=${3:-$1}
	"$PYTHON" "$LIB_DIR/backend.py" --name "$name" --body "$body" --port "$port" \
		</dev/null >>"$T/backend-$name.log" 2>&1 &
	local pid=$!
	track "$pid"
	echo "$pid" >"$T/backend-$name.pid"
	echo "$port" >"$T/backend-$name.port"
	wait_for 10 http_up "$port" || die "backend $name did not start on port $port"
	vlog "backend $name on $port pid $pid"
}

stop_backend() {
	local name=$1
	[ -f "$T/backend-$name.pid" ] || return 0
	stop_pid "$(cat "$T/backend-$name.pid")"
	rm -f "$T/backend-$name.pid"
}

# backend_ctl NAME down|up|reset|state|"set?status=500&delay_ms=300"
backend_ctl() {
	curl -sf --max-time 3 "http://127.0.0.1:$(cat "$T/backend-$1.port")/_ctl/$2"
}

# ---------------------------------------------------------------- HAProxy

# The servers of each pool, as "PORT PORT ..." (set by std_setup, or by hand
# before start_haproxy / write_config).
BLUE_PORTS=${BLUE_PORTS:-}
GREEN_PORTS=${GREEN_PORTS:-}
FE_PORT=""
MAP="" # $T/switchd.map, set by write_map

# write_map [LIVE_BACKEND COLD_BACKEND]: the map file HAProxy loads and
# switchd owns (default: live on be_blue, cold on be_green).
write_map() {
	MAP=$T/switchd.map
	printf '%s be_%s\n%s be_%s\n' "$LIVE_HOST" "${1:-blue}" "$COLD_HOST" "${2:-green}" \
		| sed 's/be_be_/be_/g' >"$MAP"
}

_servers_cfg() {
	local prefix=$1 ports=$2 i=1 p
	for p in $ports; do
		printf '\tserver %s%d 127.0.0.1:%s\n' "$prefix" "$i" "$p"
		i=$((i + 1))
	done
}

# hap_cfg NAME PORT: print HAProxy's config for node NAME.
hap_cfg() {
	local name=$1 port=$2
	cat <<EOF
# HAProxy node $name for test $T_NAME (generated by tests/lib.sh)
global
	stats socket $T/$name.sock mode 600 level admin
	stats timeout 10s
	pidfile $T/$name.pid
	nbthread 2

defaults
	mode http
	option idle-close-on-response
	timeout connect 1s
	timeout client 5s
	timeout server 5s
	timeout http-request 5s
	timeout queue 2s

frontend fe_http
	bind 127.0.0.1:$port
	use_backend %[req.hdr(host),lower,field(1,:),map($T/switchd.map,be_blue)]

backend be_blue
	balance roundrobin
	option httpchk GET /health
	default-server check inter 200ms fall 2 rise 1
$(_servers_cfg b "$BLUE_PORTS")

backend be_green
	balance roundrobin
	option httpchk GET /health
	default-server check inter 200ms fall 2 rise 1
$(_servers_cfg g "$GREEN_PORTS")
EOF
}

# hap_sock NODE: the admin socket path of node NODE (or NODE itself if it is
# a path).
hap_sock() { case $1 in /*) echo "$1" ;; *) echo "$T/$1.sock" ;; esac; }

# hap NODE COMMAND: one command on the node's admin socket (via socat; the
# daemon must not use socat, the tests may).
hap() {
	local sock; sock=$(hap_sock "$1"); shift
	printf '%s\n' "$*" | timeout 5 socat -t 3 - "UNIX-CONNECT:$sock"
}

hap_info_ok() { hap "$1" "show info" | grep -q '^Pid:'; }

# hap_map_get NODE KEY: the value HAProxy serves for KEY in the map.
hap_map_get() {
	hap "$1" "show map $T/switchd.map" | awk -v k="$2" '$2 == k { print $3 }'
}

# hap_map NODE: "key value" lines of the live map, sorted.
hap_map() {
	hap "$1" "show map $T/switchd.map" | awk 'NF >= 3 { print $2, $3 }' | sort
}

# file_map: "key value" lines of the map file on disk, sorted, no comments.
file_map() {
	grep -Ev '^[[:space:]]*(#|$)' "$T/switchd.map" | awk '{ print $1, $2 }' | sort
}

# map_text LIVE COLD: what hap_map / file_map print when the live host is on
# pool LIVE and the cold host on COLD.
map_text() { printf '%s be_%s\n%s be_%s\n' "$LIVE_HOST" "$1" "$COLD_HOST" "$2" | sort; }

# hap_stat NODE COLUMN...: every row of "show stat" as "pxname<TAB>svname
# <TAB>COLUMN..." (columns found by the CSV header's names); exit 1 if the
# reply has no header.
hap_stat() {
	local node=$1; shift
	hap "$node" "show stat" | "$PYTHON" -c '
import csv, sys
lines = sys.stdin.read().splitlines()
if not lines or not lines[0].startswith("# "):
    sys.exit(1)
rows = csv.reader([lines[0][2:]] + [l for l in lines[1:] if l.strip()])
ix = {h: i for i, h in enumerate(next(rows))}
for r in rows:
    print("\t".join(r[ix[c]] for c in ["pxname", "svname"] + sys.argv[1:]))
' "$@"
}

# hap_status NODE BACKEND SERVER: the server's status from "show stat".
hap_status() {
	hap_stat "$1" status | awk -F'\t' -v be="$2" -v sv="$3" \
		'$1 == be && $2 == sv { print $3; found = 1; exit } END { exit !found }'
}

# hap_count NODE BACKEND STATUS: how many servers of BACKEND have STATUS
# (first word: "UP", "DOWN", "MAINT"...); nothing, exit 1, if unread.
hap_count() {
	hap_stat "$1" status | awk -F'\t' -v be="$2" -v want="$3" '
		$1 == be && $2 != "FRONTEND" && $2 != "BACKEND" { split($3, w, " "); if (w[1] == want) n++ }
		END { if (NR == 0) exit 1; print n + 0 }'
}

# wait_count NODE BACKEND STATUS N [SECONDS]: until N servers have STATUS.
wait_count() {
	wait_for "${5:-10}" eval "[ \"\$(hap_count '$1' '$2' '$3')\" = '$4' ]"
}

_ports_count() { set -- $1; echo $#; }

# wait_servers_up NODE [SECONDS]: every server of both pools is UP.
wait_servers_up() {
	wait_count "$1" be_blue UP "$(_ports_count "$BLUE_PORTS")" "${2:-10}" &&
	wait_count "$1" be_green UP "$(_ports_count "$GREEN_PORTS")" "${2:-10}"
}

# start_haproxy NAME [PORT]: HAProxy node NAME, admin socket $T/NAME.sock,
# frontend on 127.0.0.1:PORT (default: a free port; the first node's port is
# $FE_PORT), routing by $T/switchd.map.  Waits until the socket answers and,
# unless HAP_NOWAIT=1, until every server is UP.
start_haproxy() {
	local name=$1 port=${2:-}
	[ -n "$MAP" ] || write_map
	if [ -z "$port" ]; then
		if [ -f "$T/$name.port" ]; then port=$(cat "$T/$name.port"); else port=$(free_port); fi
	fi
	echo "$port" >"$T/$name.port"
	[ -n "$FE_PORT" ] || FE_PORT=$port
	hap_cfg "$name" "$port" >"$T/$name.cfg"
	"$HAPROXY" -c -q -f "$T/$name.cfg" >>"$T/$name.log" 2>&1 \
		|| { cat "$T/$name.log"; die "haproxy config $name invalid"; }
	_hap_run "$name"
}

_hap_run() {
	local name=$1; shift
	"$HAPROXY" -db -f "$T/$name.cfg" "$@" </dev/null >>"$T/$name.log" 2>&1 &
	local pid=$!
	track "$pid"
	echo "$pid" >"$T/$name.hpid"
	wait_for 10 eval "hap '$name' 'show info' | grep -qx 'Pid: $pid'" \
		|| { tail -n 20 "$T/$name.log"; die "haproxy $name did not start"; }
	if [ -z "${HAP_NOWAIT:-}" ]; then
		wait_servers_up "$name" 10 || { hap "$name" "show stat" | cut -d, -f1,2,18 | sed 's/^/#   /'
			die "haproxy $name: servers not UP"; }
	fi
	vlog "haproxy $name pid $pid port $(cat "$T/$name.port")"
}

hap_pid() { cat "$T/$1.hpid"; }

stop_haproxy() {
	[ -f "$T/$1.hpid" ] || return 0
	stop_pid "$(cat "$T/$1.hpid")"
	rm -f "$T/$1.hpid"
}

kill9_haproxy() {
	local pid; pid=$(cat "$T/$1.hpid")
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	untrack "$pid"
	rm -f "$T/$1.hpid"
}

# restart_haproxy NAME: stop, start again from the same config and the map
# file as it is on disk now.
restart_haproxy() {
	stop_haproxy "$1"
	rm -f "$T/$1.sock"
	_hap_run "$1"
}

# reload_haproxy NAME: a new process takes over (-sf), the old one finishes.
reload_haproxy() {
	local old; old=$(cat "$T/$1.hpid")
	_hap_run "$1" -sf "$old"
	wait_for 10 eval "! kill -0 $old 2>/dev/null"
	wait "$old" 2>/dev/null
	untrack "$old"
}

# via_live [NODE] / via_cold [NODE]: body of GET / for the live / cold host
# through HAProxy (which pool answered).
via_host() {
	local host=$1 port=$FE_PORT
	[ -n "${2:-}" ] && port=$(cat "$T/$2.port")
	curl -s --max-time 3 -H "Host: $host" "http://127.0.0.1:$port/"
}
via_live() { via_host "$LIVE_HOST" "${1:-}"; }
via_cold() { via_host "$COLD_HOST" "${1:-}"; }

# ---------------------------------------------------------------- fault proxy

# start_fault_proxy NAME UPSTREAM_NODE [fault_proxy.py options...]: a proxy
# listening on $T/NAME.sock in front of the node's admin socket; rules file
# $T/NAME.rules (write it with fault_rules), log $T/NAME.cmdlog.
start_fault_proxy() {
	local name=$1 up; up=$(hap_sock "$2"); shift 2
	rm -f "$T/$name.sock"
	"$PYTHON" "$LIB_DIR/fault_proxy.py" --listen "$T/$name.sock" --upstream "$up" \
		--rules "$T/$name.rules" --log "$T/$name.cmdlog" "$@" \
		</dev/null >>"$T/$name.log" 2>&1 &
	local pid=$!
	track "$pid"
	echo "$pid" >"$T/$name.fpid"
	wait_for 10 test -S "$T/$name.sock" || die "fault proxy $name did not start"
}

# fault_rules NAME JSON: replace the proxy's rules (effective for the next
# command); fault_rules NAME '{}' clears them.
fault_rules() { printf '%s\n' "$2" >"$T/$1.rules.tmp" && mv "$T/$1.rules.tmp" "$T/$1.rules"; }

# fault_hold NAME REGEX: from the next command on, the proxy holds every
# command matching REGEX until fault_release NAME; fault_held NAME N: more
# than N commands have been held so far (for wait_for).  A held command waits
# for the test, not for a clock, so a slow machine cannot make it land early.
fault_hold() {
	rm -f "$T/$1.release"
	fault_rules "$1" "{\"hold_match\": \"$2\", \"hold_file\": \"$T/$1.release\"}"
}
fault_release() { : >"$T/$1.release"; }
fault_held() { [ "$(grep -c ' hold ' "$T/$1.cmdlog" 2>/dev/null || true)" -gt "$2" ]; }
fault_released() { [ "$(grep -c ' release ' "$T/$1.cmdlog" 2>/dev/null || true)" -gt "$2" ]; }

# ---------------------------------------------------------------- switchd

HAP_NODES=${HAP_NODES:-h1}    # nodes (names or socket paths) in the config
MIN_UP=${MIN_UP:-1}
SOCK_MODE=${SOCK_MODE:-0666}

_servers_conf() {
	local prefix=$1 ports=$2 i=1 p sep=""
	for p in $ports; do
		printf '%s{ name = "%s%d"; address = "127.0.0.1:%s"; }' "$sep" "$prefix" "$i" "$p"
		sep=", "
		i=$((i + 1))
	done
}

_sockets_conf() {
	local n sep=""
	for n in $HAP_NODES; do printf '%s"%s"' "$sep" "$(hap_sock "$n")"; sep=", "; done
}

# write_config [EXTRA] [FILE]: the switchd config (libconfig syntax, per
# SPEC.md) for this test; EXTRA is appended verbatim (smoke = {...}; ...).
write_config() {
	local extra=${1:-} file=${2:-$T/switchd.conf}
	cat >"$file" <<EOF
# switchd config for test $T_NAME (generated by tests/lib.sh)
control = {
  socket = "$T/switchd.sock";
  mode = $SOCK_MODE;
};
state_dir = "$T/state";

hosts = {
  live = "$LIVE_HOST";
  cold = "$COLD_HOST";
};

pools = {
  blue = {
    backend = "be_blue";
    servers = ( $(_servers_conf b "$BLUE_PORTS") );
  };
  green = {
    backend = "be_green";
    servers = ( $(_servers_conf g "$GREEN_PORTS") );
  };
};

haproxy = {
  sockets = ( $(_sockets_conf) );
  map = "$T/switchd.map";
  min_up = $MIN_UP;
  timeout_ms = ${TIMEOUT_MS:-2000};
};
$extra
EOF
}

# ctl ARGS...: switchctl against this test's daemon (bounded: 30 s).
# CTL_USER=nobody ctl ...: run it as that user (runuser).
# CTL_SOCK=PATH ctl ...: against another socket (see "on" below).
ctl()  { _ctl_as timeout "${CTL_TIMEOUT:-30}" "$SWITCHCTL" -s "${CTL_SOCK:-$T/switchd.sock}" "$@"; }
ctlj() { _ctl_as timeout "${CTL_TIMEOUT:-30}" "$SWITCHCTL" -s "${CTL_SOCK:-$T/switchd.sock}" --json "$@"; }
_ctl_as() {
	if [ -n "${CTL_USER:-}" ]; then runuser -u "$CTL_USER" -- "$@"; else "$@"; fi
}

# status_get EXPR: a value from "status --json" ('["hot"]').
status_get() { ctlj status | jget "$1"; }

# launch_switchd NAME SECONDS CTL [ARGS...]: switchd -d -f $T/NAME.conf, log
# $T/NAME.log, pid in $T/NAME.pid; waits (SECONDS) until "CTL status"
# answers (CTL may carry arguments: "ictl 2").
launch_switchd() {
	local name=$1 secs=$2 ctlcmd=$3; shift 3
	"$SWITCHD" -d -f "$T/$name.conf" "$@" </dev/null >>"$T/$name.log" 2>&1 &
	local pid=$!
	track "$pid"
	echo "$pid" >"$T/$name.pid"
	local deadline=$(( $(now_ms) + secs * 1000 ))
	# shellcheck disable=SC2086
	while ! $ctlcmd status >/dev/null 2>&1; do
		if ! alive "$pid"; then
			wait "$pid"; local rc=$?
			untrack "$pid"
			tail -n 20 "$T/$name.log" | sed 's/^/#   /'
			die "$name exited during start-up (status $rc)"
		fi
		[ "$(now_ms)" -ge "$deadline" ] && die "$name did not answer status within $secs s"
		sleep 0.1
	done
	vlog "$name pid $pid"
}

# start_switchd [ARGS...]: switchd -d -f $T/switchd.conf, log $T/switchd.log;
# waits (10 s) until "switchctl status" answers.
start_switchd() {
	[ -f "$T/switchd.conf" ] || write_config
	launch_switchd switchd 10 ctl "$@"
}

switchd_pid() { cat "$T/switchd.pid"; }

# stop_switchd_pid PID WHAT: SIGTERM and wait (10 s, then KILL: a failure); its exit
# status is in $SWITCHD_RC.  kill9_pid PID: KILL and reap.
SWITCHD_RC=""
stop_switchd_pid() {
	local pid=$1 what=$2
	if alive "$pid"; then
		kill -TERM "$pid"
		if ! wait_for 10 eval "! kill -0 $pid 2>/dev/null"; then
			kill -KILL "$pid" 2>/dev/null
			_fail "$what exits within 10 s of SIGTERM"
		fi
	fi
	wait "$pid" 2>/dev/null
	SWITCHD_RC=$?
	untrack "$pid"
}

kill9_pid() {
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	untrack "$1"
}

stop_switchd() { stop_switchd_pid "$(cat "$T/switchd.pid")" switchd; }
kill9_switchd() { kill9_pid "$(cat "$T/switchd.pid")"; }

# two_pools: one blue and one green backend on free ports ($BLUE_PORTS,
# $GREEN_PORTS), and the map file with the live host on blue.
two_pools() {
	BLUE_PORTS=$(free_port)
	GREEN_PORTS=$(free_port)
	start_backend blue "$BLUE_PORTS"
	start_backend green "$GREEN_PORTS"
	write_map blue green
}

# std_setup: one blue and one green backend, HAProxy node h1 with the live
# host on blue, a config, switchd running.  STD_NO_SWITCHD=1 stops before
# switchd.
std_setup() {
	[ -n "$T" ] || t_setup
	two_pools
	start_haproxy h1
	write_config
	[ -n "${STD_NO_SWITCHD:-}" ] || start_switchd
}

# hot_of_map: the pool the live host is on, from the map file on disk.
file_hot() { awk -v h="$LIVE_HOST" '$1 == h { sub(/^be_/, "", $2); print $2 }' "$T/switchd.map"; }
# state_hot: "hot" of state.json.
state_hot() { jget '["hot"]' "$T/state/state.json"; }
# no_intent: state_dir/intent.json holds no record (only blanks, or no file).
no_intent() { ! grep -q '[^[:space:]]' "$T/state/intent.json" 2>/dev/null; }

# ---------------------------------------------------------------- reload mode, nginx, TLS, load
# (added for t-reload, t-nginx, t-tls and t-flipload)

NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
WRK=${WRK:-$(command -v wrk || echo wrk)}

# start_haproxy_mw NAME: node NAME as start_haproxy, but in master-worker
# mode (-W) with its master CLI on $T/NAME.master (-S), a hard-stop-after
# so old workers do not pile up, and its pidfile naming the master.  The
# tracked pid ($T/NAME.hpid) is the master's.
start_haproxy_mw() {
	local name=$1 port=${2:-}
	[ -n "$MAP" ] || write_map
	if [ -z "$port" ]; then
		if [ -f "$T/$name.port" ]; then port=$(cat "$T/$name.port"); else port=$(free_port); fi
	fi
	echo "$port" >"$T/$name.port"
	[ -n "$FE_PORT" ] || FE_PORT=$port
	hap_cfg "$name" "$port" | sed '/^global/a\	master-worker\n\thard-stop-after 5s' >"$T/$name.cfg"
	"$HAPROXY" -c -q -f "$T/$name.cfg" >>"$T/$name.log" 2>&1 \
		|| { cat "$T/$name.log"; die "haproxy config $name invalid"; }
	rm -f "$T/$name.master"
	"$HAPROXY" -W -S "$T/$name.master" -db -f "$T/$name.cfg" </dev/null >>"$T/$name.log" 2>&1 &
	local pid=$!
	track "$pid"
	echo "$pid" >"$T/$name.hpid"
	wait_for 10 eval "hap_master '$name' 'show proc' | grep -q '^$pid[[:space:]]*master'" \
		|| { tail -n 20 "$T/$name.log"; die "haproxy $name (master-worker) did not start"; }
	wait_for 10 hap_info_ok "$name" || die "haproxy $name: no worker answers"
	if [ -z "${HAP_NOWAIT:-}" ]; then
		wait_servers_up "$name" 10 || die "haproxy $name: servers not UP"
	fi
}

# hap_master NAME COMMAND: one command on the node's master CLI.
hap_master() {
	local name=$1; shift
	printf '%s\n' "$*" | timeout 5 socat -t 3 - "UNIX-CONNECT:$T/$name.master"
}

# hap_workers NAME: the current workers' pids (show proc), one a line.
hap_workers() {
	hap_master "$1" "show proc" | awk '/^# workers/ { w = 1; next } /^#/ { w = 0 } w && $2 == "worker" { print $1 }'
}

# nginx_conf DIR HTTP_BODY: DIR/nginx.conf for a private nginx — every file
# it writes (pid, lock, logs, temp dirs) under DIR — with HTTP_BODY inside
# http { }.
nginx_conf() {
	local dir=$1 body=$2
	mkdir -p "$dir/logs" "$dir/tmp"
	cat >"$dir/nginx.conf" <<EOF2
# private nginx for test $T_NAME (generated by tests/lib.sh)
worker_processes 2;
pid $dir/nginx.pid;
lock_file $dir/nginx.lock;
error_log $dir/logs/error.log notice;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
$body
}
EOF2
}

# start_nginx DIR: nginx -p DIR -c DIR/nginx.conf in the foreground
# (tracked); waits until its pid file names it and it has workers.
start_nginx() {
	local dir=$1
	"$NGINX" -t -q -p "$dir" -c "$dir/nginx.conf" >>"$dir/logs/start.log" 2>&1 \
		|| { cat "$dir/logs/start.log"; die "nginx config $dir/nginx.conf invalid"; }
	"$NGINX" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' </dev/null >>"$dir/logs/start.log" 2>&1 &
	local pid=$!
	track "$pid"
	echo "$pid" >"$dir/nginx.tpid"
	wait_for 10 eval "[ \"\$(cat '$dir/nginx.pid' 2>/dev/null)\" = $pid ] && [ -n \"\$(ps -o pid= --ppid $pid)\" ]" \
		|| { tail -n 20 "$dir/logs/error.log" "$dir/logs/start.log" 2>/dev/null; die "nginx in $dir did not start"; }
}

stop_nginx() {
	[ -f "$1/nginx.tpid" ] || return 0
	stop_pid "$(cat "$1/nginx.tpid")" 5
	rm -f "$1/nginx.tpid"
}

# nginx_workers DIR: the pids of its workers, sorted, on one line.
nginx_workers() { ps -o pid= --ppid "$(cat "$1/nginx.tpid")" | sort -n | tr -s ' \n' ' ' | sed 's/^ //; s/ $//'; }

# make_certs DIR: a CA (DIR/ca.pem) and a certificate for the live and cold
# host names signed by it (DIR/cert.pem, DIR/key.pem), made now by openssl.
make_certs() {
	local dir=$1
	mkdir -p "$dir"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=switchd test CA" \
		-keyout "$dir/ca.key" -out "$dir/ca.pem" >>"$dir/openssl.log" 2>&1 || die "openssl: CA"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$LIVE_HOST" \
		-keyout "$dir/key.pem" -out "$dir/cert.csr" >>"$dir/openssl.log" 2>&1 || die "openssl: key"
	printf 'subjectAltName=DNS:%s,DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
		"$LIVE_HOST" "$COLD_HOST" >"$dir/ext.cnf"
	openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
		-CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/cert.pem" \
		>>"$dir/openssl.log" 2>&1 || die "openssl: sign"
}

# tls_front_conf PORT HAPROXY_PORT CERT_DIR: the shipped nginx/tls-front.conf
# with its listen address, certificate and HAProxy address made the test's.
tls_front_conf() {
	sed -e "s|listen 443 ssl|listen 127.0.0.1:$1 ssl|" \
	    -e "s|server 127.0.0.1:80 |server 127.0.0.1:$2 |" \
	    -e "s|/etc/ssl/switchd/|$3/|g" \
	    -e "s|app\.example\.com|$LIVE_HOST|g" \
	    "$REPO_DIR/nginx/tls-front.conf"
}

# write_lb_config LB_SECTION [EXTRA] [FILE]: a switchd config like
# write_config's with LB_SECTION ("haproxy = { mode = \"reload\"; ... };" or
# "nginx = { ... };") verbatim as its load balancer.  The pools' backends are
# be_blue and be_green, or left to switchd's default with LB_BACKENDS=none.
write_lb_config() {
	local lb=$1 extra=${2:-} file=${3:-$T/switchd.conf} bb="" gb=""
	if [ "${LB_BACKENDS:-}" != none ]; then
		bb='backend = "be_blue";'
		gb='backend = "be_green";'
	fi
	cat >"$file" <<EOF2
# switchd config for test $T_NAME (generated by tests/lib.sh)
control = {
  socket = "$T/switchd.sock";
  mode = $SOCK_MODE;
};
state_dir = "$T/state";
hosts = { live = "$LIVE_HOST"; cold = "$COLD_HOST"; };
pools = {
  blue = { $bb servers = ( $(_servers_conf b "$BLUE_PORTS") ); };
  green = { $gb servers = ( $(_servers_conf g "$GREEN_PORTS") ); };
};
$lb
$extra
EOF2
}

# static_pools_cfg FILE "BLUE_PORTS" "GREEN_PORTS": an HAProxy config
# (admin socket $T/hb.sock) whose frontends answer "blue" or "green"
# themselves on those ports: backends for benchmarks, with no Python in the
# data path.
static_pools_cfg() {
	local file=$1 blue=$2 green=$3 i p
	{
		printf 'global\n\tstats socket %s/hb.sock mode 600 level admin\n\tnbthread 1\n' "$T"
		printf 'defaults\n\tmode http\n\ttimeout connect 1s\n\ttimeout client 30s\n\ttimeout server 30s\n'
		i=0
		for p in $blue; do i=$((i + 1))
			printf 'frontend blue%d\n\tbind 127.0.0.1:%s\n\thttp-request return status 200 content-type text/plain string "blue"\n' "$i" "$p"
		done
		i=0
		for p in $green; do i=$((i + 1))
			printf 'frontend green%d\n\tbind 127.0.0.1:%s\n\thttp-request return status 200 content-type text/plain string "green"\n' "$i" "$p"
		done
	} >"$file"
}

# wrk_start OUT SECONDS URL [HOST]: wrk -t2 -c20 in the background, on
# loopback, its report in OUT; WRK_PID is its pid.
WRK_PID=""
wrk_start() {
	local out=$1 secs=$2 url=$3 host=${4:-$LIVE_HOST}
	# WRK_SCRIPT=tests/wrk-status.lua: also count the non-200 answers by code
	"$WRK" -t2 -c20 -d"${secs}s" --timeout 5s ${WRK_SCRIPT:+-s "$WRK_SCRIPT"} -H "Host: $host" "$url" >"$out" 2>&1 &
	WRK_PID=$!
	track "$WRK_PID"
}

# wrk_wait [SECONDS]: wait for the wrk of wrk_start (bounded).
wrk_wait() {
	wait_for "${1:-60}" eval "! kill -0 $WRK_PID 2>/dev/null"
	wait "$WRK_PID" 2>/dev/null
	untrack "$WRK_PID"
}

# wrk_counts OUT: "REQUESTS NON2XX SOCKET_ERRORS" from a wrk report (3xx
# counts as non-2xx too: nothing here redirects).
wrk_counts() {
	awk '
	/ requests in / { req = $1 }
	/Non-2xx or 3xx responses:/ { bad = $NF }
	/Socket errors:/ { gsub(",", ""); err = $4 + $6 + $8 + $10 }
	END { printf "%d %d %d\n", req, bad, err }' "$1"
}

# wrk_stop: end the wrk of wrk_start now (SIGINT: it still prints its report).
wrk_stop() {
	kill -INT "$WRK_PID" 2>/dev/null
	wrk_wait 10
}

# ---------------------------------------------------------------- EC2

# ec2_env: credentials for the project's EC2 endpoint (tests/ec2), nothing
# from the machine, and the EC2 client's retries in milliseconds.
ec2_env() {
	export AWS_ACCESS_KEY_ID=AKIDEXAMPLE
	export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
	export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=$T/no-credentials
	export AWS_EC2_METADATA_DISABLED=true SWITCHD_EC2_BACKOFF_SCALE=0.01
	unset AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_EC2 AWS_SESSION_TOKEN
}

# start_endpoint: the EC2 test endpoint, its instances kept in $T; the
# first call picks a free port ($EPORT), later calls reuse it; PID in $EPID.
EPORT=""
start_endpoint() {
	/usr/bin/python3 "$REPO_DIR/tests/ec2/ec2_endpoint.py" --port "${EPORT:-0}" \
		--state "$T/ec2-state.json" </dev/null >"$T/ec2.out" 2>>"$T/ec2.log" &
	EPID=$!
	track "$EPID"
	wait_for 10 grep -q '^PORT=' "$T/ec2.out" || die "EC2 endpoint did not start"
	EPORT=$(sed -n 's/^PORT=//p' "$T/ec2.out")
}

# admin METHOD PATH [JSON]: the endpoint's admin API (tests/ec2/README.md).
admin() {
	curl -sf --max-time 5 -X "$1" -H 'Content-Type: application/json' \
		${3:+--data "$3"} "http://127.0.0.1:$EPORT/_admin/$2"
}

# ---------------------------------------------------------------- canary
# (added for t-canary and t-guard)

CANARY_MAP=""

# canary_rules: the canary frontend rules shipped, commented, in
# haproxy/haproxy.cfg, uncommented, with this test's map paths.
canary_rules() {
	sed -n '/switchd canary rules: begin/,/switchd canary rules: end/p' \
		"$REPO_DIR/haproxy/haproxy.cfg" | grep -E '^[[:space:]]*#	' |
		sed -e 's/^[[:space:]]*#//' -e "s|/etc/haproxy/switchd-canary.map|$CANARY_MAP|g" \
		    -e "s|/etc/haproxy/switchd.map|$T/switchd.map|g"
}

# use_canary [BACKEND:PERCENT]: from now on start_haproxy's nodes route with
# the canary rules (instead of the one-line use_backend) and load
# $CANARY_MAP, written now (default "be_green:0").  Call it before
# start_haproxy; config_canary adds haproxy.canary_map to switchd.conf.
use_canary() {
	CANARY_MAP=$T/switchd-canary.map
	printf '%s %s\n' "$LIVE_HOST" "${1:-be_green:0}" >"$CANARY_MAP"
	canary_rules >"$T/canary.rules"
	[ -s "$T/canary.rules" ] || die "no canary rules in haproxy/haproxy.cfg"
	eval "$(declare -f hap_cfg | sed '1s/^hap_cfg/_hap_cfg_plain/')"
	hap_cfg() {
		_hap_cfg_plain "$@" | awk -v rules="$T/canary.rules" '
			/^\tuse_backend %\[req.hdr\(host\)/ { while ((getline l < rules) > 0) print l; next }
			{ print }'
	}
}

# config_canary [FILE]: haproxy.canary_map in the switchd config.
config_canary() {
	local file=${1:-$T/switchd.conf}
	sed -i "s|^  map = \"$T/switchd.map\";|&\n  canary_map = \"$CANARY_MAP\";|" "$file"
	grep -q canary_map "$file" || die "config_canary: no haproxy.map line in $file"
}

# hap_canary NODE: the canary value HAProxy serves for the live host.
hap_canary() {
	hap "$1" "show map $CANARY_MAP" | awk -v k="$LIVE_HOST" '$2 == k { print $3 }'
}

# split_count PORT N PREFIX [COOKIE...]: N requests for the live host on one
# keep-alive connection, each with cookie switchd_id=PREFIX<i>; prints
# "blue=B green=G other=O".
split_count() {
	"$PYTHON" - "$@" <<'PYEOF'
import http.client, sys
port, n, prefix = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
extra = "; ".join(sys.argv[4:])
counts = {"blue": 0, "green": 0, "other": 0}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for i in range(n):
    cookie = "switchd_id=%s%d" % (prefix, i) if prefix != "-" else ""
    if extra:
        cookie = (cookie + "; " if cookie else "") + extra
    h = {"Host": "app.example.com"}
    if cookie:
        h["Cookie"] = cookie
    c.request("GET", "/", headers=h)
    r = c.getresponse()
    body = r.read().decode(errors="replace").strip()
    counts[body if body in counts else "other"] += 1
print(" ".join("%s=%d" % kv for kv in sorted(counts.items())))
PYEOF
}

# ---------------------------------------------------------------- raw requests

# ctl_raw JSON [SECS]: send one request line to switchd's socket and print
# every reply line (progress events too, as the daemon sent them) up to the
# final {"ok": ...} one; exit 1 if none came within SECS (30).
ctl_raw() {
	"$PYTHON" - "$T/switchd.sock" "$1" "${2:-30}" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(float(sys.argv[3]))
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while True:
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        sys.exit(1)
    if not chunk:
        sys.exit(1)
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        sys.stdout.write(line.decode("utf-8", "backslashreplace") + "\n")
        if "ok" in json.loads(line):
            sys.exit(0)
PY
}

# ---------------------------------------------------------------- etcd
# (added for t-cluster) A private etcd cluster (Debian's etcd-server 3.4) on
# 127.0.0.1 free ports: member I has its client port in $T/etcdI.cport, its
# peer port in $T/etcdI.pport, its data in $T/etcdI.data, its log in
# $T/etcdI.log and its tracked PID in $T/etcdI.pid.

ETCD=${ETCD:-$(command -v etcd || echo /usr/bin/etcd)}
ETCD_N=0
ETCD_ENDPOINTS=""       # "http://127.0.0.1:P1 http://127.0.0.1:P2 ..."
ETCD_ENDPOINTS_CONF=""  # the same as a libconfig list: "http://...", "http://..."

# etcd_url I: member I's client URL.
etcd_url() { echo "http://127.0.0.1:$(cat "$T/etcd$1.cport")"; }

# etcd_healthy I: member I answers /health with "true" (it has a leader
# and a quorum behind it).
etcd_healthy() {
	curl -s --max-time 2 "$(etcd_url "$1")/health" | grep -q '"health":"true"'
}

# etcd_leader I: the member ID of the leader member I knows of (nothing,
# exit 1, if none).
etcd_leader() {
	curl -s --max-time 2 -X POST -d '{}' "$(etcd_url "$1")/v3/maintenance/status" |
		"$PYTHON" -c 'import json, sys
l = json.load(sys.stdin).get("leader", "0")
if l in ("0", 0, None): sys.exit(1)
print(l)'
}

# _etcd_run I: start member I (first time or again: same flags, same data
# dir — on a restart etcd reads its membership from the data dir).
_etcd_run() {
	local i=$1 cluster="" j
	for j in $(seq 1 "$ETCD_N"); do
		cluster="$cluster${cluster:+,}etcd$j=http://127.0.0.1:$(cat "$T/etcd$j.pport")"
	done
	"$ETCD" --name "etcd$i" --data-dir "$T/etcd$i.data" \
		--listen-client-urls "$(etcd_url "$i")" --advertise-client-urls "$(etcd_url "$i")" \
		--listen-peer-urls "http://127.0.0.1:$(cat "$T/etcd$i.pport")" \
		--initial-advertise-peer-urls "http://127.0.0.1:$(cat "$T/etcd$i.pport")" \
		--initial-cluster "$cluster" --initial-cluster-state new \
		--initial-cluster-token "switchd-test-$$" \
		--logger zap --log-outputs stderr --log-level warn \
		</dev/null >>"$T/etcd$i.log" 2>&1 &
	local pid=$!
	track "$pid"
	echo "$pid" >"$T/etcd$i.pid"
	vlog "etcd member $i pid $pid client $(cat "$T/etcd$i.cport")"
}

# etcd_wait I [SECONDS]: until member I is healthy (default 30 s); dies
# with its log's tail if it exited or did not get there.
etcd_wait() {
	local i=$1 secs=${2:-30}
	if ! wait_for "$secs" etcd_healthy "$i"; then
		alive "$(cat "$T/etcd$i.pid")" || log "etcd member $i exited"
		tail -n 20 "$T/etcd$i.log" | sed 's/^/#   /'
		die "etcd member $i not healthy within $secs s"
	fi
}

# etcd_start_cluster N: N members, started together (a new cluster needs a
# quorum of them to elect a leader), then waited for until each is healthy
# and they agree on a leader.  Sets ETCD_N, ETCD_ENDPOINTS and
# ETCD_ENDPOINTS_CONF (exported).
etcd_start_cluster() {
	local n=$1 i
	[ -x "$ETCD" ] || die "no etcd at $ETCD (Debian: etcd-server; scripts/deps test)"
	ETCD_N=$n
	ETCD_ENDPOINTS="" ETCD_ENDPOINTS_CONF=""
	for i in $(seq 1 "$n"); do
		free_port >"$T/etcd$i.cport"
		free_port >"$T/etcd$i.pport"
		ETCD_ENDPOINTS="$ETCD_ENDPOINTS${ETCD_ENDPOINTS:+ }$(etcd_url "$i")"
		ETCD_ENDPOINTS_CONF="$ETCD_ENDPOINTS_CONF${ETCD_ENDPOINTS_CONF:+, }\"$(etcd_url "$i")\""
	done
	export ETCD_ENDPOINTS ETCD_ENDPOINTS_CONF
	for i in $(seq 1 "$n"); do _etcd_run "$i"; done
	for i in $(seq 1 "$n"); do etcd_wait "$i"; done
	wait_for 30 etcd_agree || die "etcd members do not agree on a leader within 30 s"
	log "etcd: $n members, client URLs $ETCD_ENDPOINTS"
}

# etcd_agree: every running member names the same leader.
etcd_agree() {
	local i l first=""
	for i in $(seq 1 "$ETCD_N"); do
		[ -f "$T/etcd$i.pid" ] || continue
		l=$(etcd_leader "$i") || return 1
		[ -z "$first" ] && first=$l
		[ "$l" = "$first" ] || return 1
	done
}

# etcd_stop I [KILL]: stop member I by its PID (SIGTERM, bounded; KILL:
# kill -9 at once).
etcd_stop() {
	local i=$1 pid; pid=$(cat "$T/etcd$i.pid" 2>/dev/null) || return 0
	if [ "${2:-}" = KILL ]; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		untrack "$pid"
	else
		stop_pid "$pid" 10
	fi
	rm -f "$T/etcd$i.pid"
	vlog "etcd member $i (pid $pid) stopped"
}

# etcd_restart I: start member I again from its data dir and wait until it
# is healthy (which needs a quorum: start enough members first).
etcd_restart() {
	etcd_stop "$1"
	_etcd_run "$1"
	etcd_wait "$1" "${2:-30}"
}

# etcd_start I: start a stopped member I again without waiting (members
# that need each other for a quorum: start them all, then etcd_wait each).
etcd_start() { [ -f "$T/etcd$1.pid" ] || _etcd_run "$1"; }

# etcd_keys PREFIX [I]: the keys under PREFIX, one a line in key order, read
# from member I (default: the first member that answers).
# etcd_values PREFIX [I]: their values, one a line (newlines in a value are
# not escaped: for one-line JSON values).
# etcd_get KEY [I]: the value of KEY (exit 1 if none).
_etcd_range() {
	local mode=$1 key=$2 want=${3:-} i
	for i in ${want:-$(seq 1 "$ETCD_N")}; do
		[ -f "$T/etcd$i.pid" ] || [ -n "$want" ] || continue
		"$PYTHON" - "$(etcd_url "$i")" "$mode" "$key" <<'PY' && return 0
import base64, json, sys, urllib.request
url, mode, key = sys.argv[1:4]
k = key.encode()
req = {"key": base64.b64encode(k).decode()}
if mode in ("keys", "values"):
    end = bytearray(k); end[-1] += 1
    req.update(range_end=base64.b64encode(bytes(end)).decode(), keys_only=mode == "keys")
try:
    r = urllib.request.urlopen(url + "/v3/kv/range", json.dumps(req).encode(), timeout=3)
    kvs = json.load(r).get("kvs", [])
except OSError:
    sys.exit(2)
if mode in ("keys", "values"):
    for kv in kvs:
        print(base64.b64decode(kv["key" if mode == "keys" else "value"]).decode())
elif kvs:
    print(base64.b64decode(kvs[0].get("value", "")).decode())
else:
    sys.exit(1)
PY
		[ $? -eq 1 ] && return 1
	done
	return 2
}
etcd_keys() { _etcd_range keys "$1" "${2:-}"; }
etcd_values() { _etcd_range values "$1" "${2:-}"; }
etcd_get() { _etcd_range get "$1" "${2:-}"; }

# ---------------------------------------------------------------- several switchd instances
# (added for t-cluster) Instance I runs from $T/swI.conf with its control
# socket $T/swI.sock, its state_dir $T/stateI, its log $T/swI.log and its
# tracked PID in $T/swI.pid.

# inst_config I [EXTRA]: $T/swI.conf, write_config's file with instance I's
# socket and state_dir, and EXTRA appended.
inst_config() {
	local i=$1
	write_config "${2:-}" "$T/sw$i.conf.tmp"
	sed -e "s|^  socket = \"$T/switchd.sock\";|  socket = \"$T/sw$i.sock\";|" \
	    -e "s|^state_dir = \"$T/state\";|state_dir = \"$T/state$i\";|" \
		"$T/sw$i.conf.tmp" >"$T/sw$i.conf"
	rm -f "$T/sw$i.conf.tmp"
	grep -q "\"$T/sw$i.sock\"" "$T/sw$i.conf" && grep -q "\"$T/state$i\"" "$T/sw$i.conf" ||
		die "inst_config $i: write_config's socket or state_dir line changed shape"
	mkdir -p "$T/state$i"
}

# on I CMD...: run CMD (ctl, ctlj, expect_ok, expect_fail, status_get...)
# against instance I's control socket.
on() { local i=$1; shift; CTL_SOCK=$T/sw$i.sock "$@"; }

# ictl I ARGS... / ictlj I ARGS...: switchctl (--json) against instance I.
ictl()  { on "$1" ctl "${@:2}"; }
ictlj() { on "$1" ctlj "${@:2}"; }

# istatus I EXPR: a value from instance I's "status --json".
istatus() { ictlj "$1" status | jget "$2"; }

inst_pid() { cat "$T/sw$1.pid"; }

# inst_start I: switchd -d -f $T/swI.conf; waits (20 s) until its status
# answers.
inst_start() { launch_switchd "sw$1" 20 "ictl $1"; }

# inst_stop I: stop_switchd_pid for instance I; inst_kill9 I: kill9_pid.
inst_stop() { stop_switchd_pid "$(inst_pid "$1")" "switchd instance $1"; }
inst_kill9() { kill9_pid "$(inst_pid "$1")"; }

# start_cut_proxy NAME UPSTREAM_PORT...: tests/cut_proxy.py, one 127.0.0.1
# forwarder per upstream port (their ports, in order, in $T/NAME.ports);
# cut_on NAME closes every connection through it and refuses new ones until
# cut_off NAME (a client partitioned from servers everyone else reaches).
start_cut_proxy() {
	local name=$1; shift
	rm -f "$T/$name.ports" "$T/$name.cut"
	"$PYTHON" "$LIB_DIR/cut_proxy.py" --cut-file "$T/$name.cut" --port-file "$T/$name.ports" "$@" \
		</dev/null >>"$T/$name.log" 2>&1 &
	local pid=$!
	track "$pid"
	echo "$pid" >"$T/$name.cpid"
	wait_for 10 test -s "$T/$name.ports" || die "cut proxy $name did not start"
}
cut_on()  { : >"$T/$1.cut"; }
cut_off() { rm -f "$T/$1.cut"; }
