#!/bin/bash
# t-fuzz: the libFuzzer harnesses build; every input kept in their
# regressions directories and every seed replays cleanly; and bounded
# fuzzing finds nothing:
#   fuzz-request  the request path (framing, JSON, cmd_dispatch and every
#                 command, the protocol checked on each reply): 60 s
#   fuzz-hapx     the readers of HAProxy's replies: 15 s
# A crash found here fails the test, and its input is filed in the target's
# regressions directory (unless that bug is there already:
# tests/fuzz/keep-artifacts.sh); git add it.
#
#   FUZZ_TEST_SECONDS=N   fuzz the request path for N s instead of 60
. "$(dirname "$0")/../lib.sh"
t_setup

SECS=${FUZZ_TEST_SECONDS:-60}
cd "$REPO_DIR" || die "cd $REPO_DIR"
B=build/fuzz

# The harness's files (a crash leaves them): tmpfs, removed at exit.
FT=$(mktemp -d /dev/shm/switchd-fuzz-test.XXXXXX 2>/dev/null || mktemp -d "$T/fuzztmp.XXXXXX")
at_exit "rm -rf '$FT'"

# The harnesses' own sanitizer settings: reports on stderr, in the fuzz log
# next to libFuzzer's account of the input (not in $T/san).
fuzz_env() {
	env ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=0 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LSAN_OPTIONS= FUZZ_TMPDIR="$FT" "$@"
}
noise='^(INFO|Running|Executed|MS:|base64:)'

# ---- they build (clang and libFuzzer's runtime: libclang-rt-14-dev)
t0=$(now_ms)
if ! ok "the fuzz harnesses build (make -f tests/fuzz/Makefile)" \
	make -s -f tests/fuzz/Makefile; then
	log "needs clang and libFuzzer: apt-get install clang libclang-rt-14-dev"
	t_done
fi
log "built in $(( ($(now_ms) - t0) / 1000 )) s"

# check_target NAME SEEDS REGDIR SECONDS [options...]: replay, then fuzz.
check_target() {
	local name=$1 seeds=$2 regs=$3 secs=$4 f n=0 rc kept
	shift 4
	for f in "$regs"/*; do
		[ -f "$f" ] || continue
		case $(basename "$f") in README*) continue ;; esac
		n=$((n + 1))
		if fuzz_env "$B/$name" "$f" >"$T/replay.log" 2>&1; then
			_pass "$name: regression $(basename "$f") replays without a crash"
		else
			_fail "$name: regression $(basename "$f") replays without a crash"
			grep -vE "$noise" "$T/replay.log" | head -n 40 | sed 's/^/#   /'
		fi
	done
	log "$name: $n regression input(s) replayed"
	run fuzz_env "$B/$name" "$seeds"/*
	if [ "$RC" -eq 0 ]; then
		_pass "$name: every seed in $seeds replays without a crash"
	else
		_fail "$name: every seed in $seeds replays without a crash"
		printf '%s\n' "$ERR" | grep -vE "$noise" | tail -n 40 | sed 's/^/#   /'
	fi

	mkdir -p "$T/corpus-$name" "$T/artifacts-$name"
	log "$name: fuzzing for $secs s"
	fuzz_env "$B/$name" -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 \
		-artifact_prefix="$T/artifacts-$name/" -print_final_stats=1 "$@" \
		"$T/corpus-$name" "$seeds" >"$T/$name.log" 2>&1
	rc=$?
	grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
		"$T/$name.log" | sed "s/^/# $name: /"
	kept=$(tests/fuzz/keep-artifacts.sh "$T/$name.log" "$T/artifacts-$name" "$regs")
	if [ "$rc" -eq 0 ]; then
		_pass "$name: $secs s of fuzzing: no crash, leak, hang or protocol breach"
	else
		_fail "$name: $secs s of fuzzing: no crash, leak, hang or protocol breach (exit $rc)"
		grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)|^ *"|^###|^INFO|^MS:|^base64:' \
			"$T/$name.log" | tail -n 60 | sed 's/^/#   /'
		[ -n "$kept" ] && printf '%s\n' "$kept" | sed 's/^/# /'
	fi
}

check_target fuzz-request tests/fuzz/corpus tests/fuzz/regressions "$SECS" \
	-max_len=70000 -dict=tests/fuzz/request.dict
check_target fuzz-hapx tests/fuzz/corpus-hapx tests/fuzz/regressions-hapx 15 -max_len=65536
t_done
