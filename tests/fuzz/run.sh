#!/bin/bash
# tests/fuzz/run.sh [SECONDS] — build the libFuzzer harnesses and run them:
#
#   fuzz-request  switchd's request path (tests/fuzz/fuzz-request.c): seeds
#                 tests/fuzz/corpus/, regressions tests/fuzz/regressions/
#   fuzz-hapx     its readers of HAProxy's replies (tests/fuzz/fuzz-hapx.c):
#                 seeds tests/fuzz/corpus-hapx/, regressions
#                 tests/fuzz/regressions-hapx/
#
# First every regression input is replayed, then the two fuzz for SECONDS
# in all (default: $FUZZ_SECONDS, else 600): five sixths for fuzz-request,
# one sixth for fuzz-hapx.  "make fuzz" runs it.
#
# The corpora grow in build/fuzz/corpus*/ (kept between runs; the seeds in
# tests/fuzz/ are only read).  A crash, leak, timeout or protocol breach
# stops that target: its input is filed in the target's regressions
# directory by tests/fuzz/keep-artifacts.sh (unless that bug is kept
# already; add a new one to git: the test suite replays it from then on)
# and the exit status is 1.  Run from anywhere.
#
#   FUZZ_JOBS=N    N fuzzing processes in parallel (libFuzzer -fork=N)
set -u
cd "$(dirname "$0")/../.." || exit 2
SECS=${1:-${FUZZ_SECONDS:-600}}
B=build/fuzz

if ! make -s -f tests/fuzz/Makefile; then
	echo "tests/fuzz/run.sh: cannot build the harnesses (needs clang and libFuzzer:" \
	    "apt-get install clang libclang-rt-14-dev)" >&2
	exit 1
fi

# ASan/UBSan reports on stderr, next to libFuzzer's; no log_path from a test.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
unset LSAN_OPTIONS
# The harness's files (a crash leaves them): tmpfs, removed at exit.
FUZZ_TMPDIR=$(mktemp -d /dev/shm/switchd-fuzz-run.XXXXXX 2>/dev/null || mktemp -d)
export FUZZ_TMPDIR
trap 'rm -rf "$FUZZ_TMPDIR"' EXIT

status=0

# replay BIN DIR: every input in DIR (but READMEs) runs clean.
replay() {
	local bin=$1 dir=$2 f n=0
	for f in "$dir"/*; do
		[ -f "$f" ] || continue
		case $(basename "$f") in README*) continue ;; esac
		n=$((n + 1))
		if ! "$bin" "$f" >"$B/replay.log" 2>&1; then
			echo "FAIL regression $f:"
			grep -vE '^(INFO|Running|Executed|MS:|base64:)' "$B/replay.log" | head -n 40
			status=1
		fi
	done
	echo "$(basename "$bin"): $n regression input(s) replayed"
}

# fuzz NAME SECONDS SEEDS REGDIR [libFuzzer options...]
fuzz() {
	local name=$1 secs=$2 seeds=$3 regs=$4 rc kept
	shift 4
	local fork=()
	[ -n "${FUZZ_JOBS:-}" ] && fork=(-fork="$FUZZ_JOBS" -ignore_crashes=0)
	mkdir -p "$B/corpus-$name" "$B/artifacts-$name"
	echo "$name: fuzzing for $secs s (corpus $B/corpus-$name, seeds $seeds)"
	"$B/$name" -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
		-artifact_prefix="$B/artifacts-$name/" "$@" "${fork[@]}" \
		"$B/corpus-$name" "$seeds" >"$B/$name.log" 2>&1
	rc=$?
	grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|^Done ' "$B/$name.log" | sed "s/^/$name: /"
	kept=$(tests/fuzz/keep-artifacts.sh "$B/$name.log" "$B/artifacts-$name" "$regs")
	if [ "$rc" -ne 0 ]; then
		echo "FAIL: $name stopped (exit $rc):"
		grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)|^ *"|^###|^INFO|^MS:|^base64:' \
			"$B/$name.log" | tail -n 60
		status=1
	fi
	[ -n "$kept" ] && echo "$kept"
	return 0
}

replay "$B/fuzz-request" tests/fuzz/regressions
replay "$B/fuzz-hapx" tests/fuzz/regressions-hapx
h=$(( SECS / 6 )); [ "$h" -lt 10 ] && h=10
r=$(( SECS - h )); [ "$r" -lt 10 ] && r=10
fuzz fuzz-request "$r" tests/fuzz/corpus tests/fuzz/regressions \
	-max_len=70000 -dict=tests/fuzz/request.dict
fuzz fuzz-hapx "$h" tests/fuzz/corpus-hapx tests/fuzz/regressions-hapx -max_len=65536
exit $status
