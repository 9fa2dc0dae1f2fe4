#!/bin/bash
# t-fuzz: the libFuzzer harness over switchd's request path
# (tests/fuzz/fuzz-request.c: framing, JSON parse, cmd_dispatch and every
# command, with the protocol checked on each reply) builds; every input in
# tests/fuzz/regressions/ and every seed in tests/fuzz/corpus/ replays
# cleanly; and 60 s of fuzzing find nothing.  A crash found here fails the
# test, and its input is filed in tests/fuzz/regressions/ (unless that bug
# is there already: tests/fuzz/keep-artifacts.sh); git add it.
#
#   FUZZ_TEST_SECONDS=N   fuzz for N s instead of 60
. "$(dirname "$0")/../lib.sh"
t_setup

SECS=${FUZZ_TEST_SECONDS:-60}
cd "$REPO_DIR" || die "cd $REPO_DIR"
B=build/fuzz
BIN=$B/fuzz-request

# The harness's own sanitizer settings: reports on stderr, in the fuzz log
# next to libFuzzer's account of the input (not in $T/san).
fuzz_env() {
	env ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=0 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LSAN_OPTIONS= "$@"
}

# ---- it builds (clang and libFuzzer's runtime: libclang-rt-14-dev)
t0=$(now_ms)
if ! ok "the fuzz harness builds (make -f tests/fuzz/Makefile)" \
	make -s -f tests/fuzz/Makefile; then
	log "needs clang and libFuzzer: apt-get install clang libclang-rt-14-dev"
	t_done
fi
log "built in $(( ($(now_ms) - t0) / 1000 )) s"

# ---- regressions and seeds replay
n=0
for f in tests/fuzz/regressions/*; do
	[ -f "$f" ] || continue
	case $(basename "$f") in README*) continue ;; esac
	n=$((n + 1))
	if ! fuzz_env "$BIN" "$f" >"$T/replay.log" 2>&1; then
		_fail "regression $(basename "$f") replays without a crash"
		grep -vE '^(INFO|Running|Executed|MS:|base64:)' "$T/replay.log" | head -n 60 | sed 's/^/#   /'
	else
		_pass "regression $(basename "$f") replays without a crash"
	fi
done
log "$n regression input(s) replayed"
run fuzz_env "$BIN" tests/fuzz/corpus/*
if [ "$RC" -eq 0 ]; then
	_pass "every seed in tests/fuzz/corpus replays without a crash"
else
	_fail "every seed in tests/fuzz/corpus replays without a crash"
	printf '%s\n' "$ERR" | grep -vE '^(INFO|Running|Executed|MS:|base64:)' | tail -n 60 | sed 's/^/#   /'
fi

# ---- fuzz, bounded
mkdir -p "$T/corpus" "$T/artifacts"
log "fuzzing for $SECS s"
fuzz_env "$BIN" -max_total_time="$SECS" -timeout=30 -rss_limit_mb=4096 -max_len=70000 \
	-dict=tests/fuzz/request.dict -artifact_prefix="$T/artifacts/" -print_final_stats=1 \
	"$T/corpus" tests/fuzz/corpus >"$T/fuzz.log" 2>&1
rc=$?
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
	"$T/fuzz.log" | sed 's/^/# /'
kept=$(tests/fuzz/keep-artifacts.sh "$T/fuzz.log" "$T/artifacts")
if [ "$rc" -eq 0 ]; then
	_pass "$SECS s of fuzzing: no crash, leak, hang or protocol breach"
else
	_fail "$SECS s of fuzzing: no crash, leak, hang or protocol breach (exit $rc)"
	grep -vE '^#[0-9]+ +(NEW|REDUCE|pulse|RELOAD)|^ *"|^###|^INFO|^MS:|^base64:' "$T/fuzz.log" \
		| tail -n 80 | sed 's/^/#   /'
	[ -n "$kept" ] && printf '%s\n' "$kept" | sed 's/^/# /'
fi
t_done
