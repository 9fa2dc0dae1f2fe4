#!/bin/bash
# tests/run.sh BUILD_DIR — run switchd's test suite against the binaries in
# BUILD_DIR (build/asan for "make test"):
#   BUILD_DIR/test-*           unit tests           (timeout 120 s each)
#   tests/integration/t-*.sh   integration tests    (timeout 300 s each)
#   tests/ec2/test_*.sh        EC2 tests, if any    (timeout 300 s each)
# Each prints "PASS name (Ns)" or "FAIL name" with its failed checks and the
# tail of its output; full logs are in tests/out/NAME.log.  The last line is "N passed, N failed",
# the sum of the checks inside every test (a test file that dies without its
# own count counts as one failure).  Exit 1 if anything failed.
#
#   TESTS=REGEX   run only the tests whose name matches (e.g. TESTS=t-lock)
#   KEEP=1        keep each test's temp dir
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: tests/run.sh BUILD_DIR   (e.g. build/asan)" >&2
	exit 2
fi
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_DIR=$(cd "$TESTS_DIR/.." && pwd)
BUILD_DIR=$(cd "$1" && pwd)
OUT_DIR=$TESTS_DIR/out
mkdir -p "$OUT_DIR"

export SWITCHD=$BUILD_DIR/switchd
export SWITCHCTL=$BUILD_DIR/switchctl
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
unset LSAN_OPTIONS
cd "$REPO_DIR"

total_pass=0
total_fail=0
files_failed=""

# run_one NAME TIMEOUT CMD...
run_one() {
	local name=$1 limit=$2; shift 2
	if [ -n "${TESTS:-}" ] && ! [[ $name =~ $TESTS ]]; then
		return 0
	fi
	local log=$OUT_DIR/$name.log
	local t0 t1 rc p f summary
	t0=$(date +%s)
	timeout -k 10 "$limit" "$@" </dev/null >"$log" 2>&1
	rc=$?
	t1=$(date +%s)
	[ "$rc" -eq 124 ] && echo "# run.sh: $name timed out after ${limit}s" >>"$log"
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -n "$summary" ]; then
		p=${summary%% passed*}
		f=${summary#*, }; f=${f%% failed*}
	elif [ "$rc" -eq 0 ]; then
		p=1; f=0
	else
		p=0; f=0
	fi
	# A non-zero exit is a failure even if the inner count says otherwise
	# (crash, timeout, sanitizer report found during cleanup).
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
		echo "PASS $name ($((t1 - t0))s)"
	else
		echo "FAIL $name (exit $rc, $f failed, $((t1 - t0))s) — full log: tests/out/$name.log"
		# Each failed check with its first lines of detail, then the tail:
		# the log may be gone by the time someone reads this (a chroot).
		awk '/^not ok/ { n = 4 } n > 0 { print "    " $0; n-- }' "$log" | head -n 40
		echo "    ---- last lines of the log"
		tail -n 30 "$log" | sed 's/^/    /'
		files_failed="$files_failed $name"
	fi
}

for b in switchd switchctl; do
	if [ ! -x "$BUILD_DIR/$b" ]; then
		echo "tests/run.sh: $BUILD_DIR/$b is missing (build it first)" >&2
		exit 1
	fi
done

for t in "$BUILD_DIR"/test-*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	run_one "$(basename "$t")" 120 "$t"
done
for t in "$TESTS_DIR"/integration/t-*.sh; do
	[ -f "$t" ] || continue
	run_one "$(basename "$t" .sh)" 300 bash "$t"
done
for t in "$TESTS_DIR"/ec2/test_*.sh; do
	[ -f "$t" ] || continue
	run_one "$(basename "$t" .sh)" 300 bash "$t"
done

[ -n "$files_failed" ] && echo "failed:$files_failed"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
