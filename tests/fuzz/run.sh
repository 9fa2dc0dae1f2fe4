#!/bin/bash
# tests/fuzz/run.sh [SECONDS] — build the libFuzzer harness over switchd's
# request path (tests/fuzz/fuzz-request.c), replay every input in
# tests/fuzz/regressions/, then fuzz for SECONDS (default: $FUZZ_SECONDS, else
# 600) starting from tests/fuzz/corpus/.  "make fuzz" runs it.
#
# The corpus grows in build/fuzz/corpus/ (kept between runs; the seeds in
# tests/fuzz/corpus/ are only read).  A crash, leak, timeout or protocol
# breach stops the run: its input is filed in tests/fuzz/regressions/ by
# tests/fuzz/keep-artifacts.sh (unless that bug is kept already; add a new
# one to git: the test suite replays it from then on) and the exit status
# is 1.  Run from anywhere.
#
#   FUZZ_JOBS=N    N fuzzing processes in parallel (libFuzzer -fork=N)
set -u
cd "$(dirname "$0")/../.." || exit 2
SECONDS_WANTED=${1:-${FUZZ_SECONDS:-600}}
B=build/fuzz
BIN=$B/fuzz-request

if ! make -s -f tests/fuzz/Makefile; then
	echo "tests/fuzz/run.sh: cannot build the harness (needs clang and libFuzzer:" \
	    "apt-get install clang libclang-rt-14-dev)" >&2
	exit 1
fi

# ASan/UBSan reports on stderr, next to libFuzzer's; no log_path from a test.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

status=0
regs=$(find tests/fuzz/regressions -type f ! -name 'README*' ! -name '.*' 2>/dev/null | sort)
if [ -n "$regs" ]; then
	echo "replaying $(echo "$regs" | wc -l) regression input(s)"
	for f in $regs; do
		if ! "$BIN" "$f" >"$B/replay.log" 2>&1; then
			echo "FAIL regression $f:"
			grep -vE '^(INFO|Running|Executed|MS:|base64:)' "$B/replay.log" | head -n 60
			status=1
		fi
	done
fi

mkdir -p "$B/corpus" "$B/artifacts"
echo "fuzzing for $SECONDS_WANTED s (corpus $B/corpus, seeds tests/fuzz/corpus)"
fork=()
[ -n "${FUZZ_JOBS:-}" ] && fork=(-fork="$FUZZ_JOBS" -ignore_crashes=0)
"$BIN" -max_total_time="$SECONDS_WANTED" -timeout=30 -rss_limit_mb=4096 -max_len=70000 \
	-dict=tests/fuzz/request.dict -artifact_prefix="$B/artifacts/" -print_final_stats=1 \
	"${fork[@]}" "$B/corpus" tests/fuzz/corpus >"$B/fuzz.log" 2>&1
rc=$?
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|^Done ' "$B/fuzz.log"
kept=$(tests/fuzz/keep-artifacts.sh "$B/fuzz.log" "$B/artifacts")
if [ "$rc" -ne 0 ]; then
	echo "FAIL: the fuzzer stopped (exit $rc):"
	grep -vE '^#[0-9]+ +(NEW|REDUCE|pulse|RELOAD)|^ *"|^###|^INFO|^MS:|^base64:' "$B/fuzz.log" | tail -n 80
	status=1
fi
[ -n "$kept" ] && echo "$kept"
exit $status
