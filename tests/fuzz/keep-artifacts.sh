#!/bin/bash
# tests/fuzz/keep-artifacts.sh LOG DIR [REGDIR] — file the inputs libFuzzer
# wrote to DIR (crash-*, leak-*, timeout-*, oom-*) into REGDIR (default
# tests/fuzz/regressions/),
# named after the report in LOG: SAN-FUNCTION-HASH, e.g.
# ubsan-cmd_lock_exec-3f2a9c1e (sanitizer, and the function of the first
# stack frame in switchd's sources), breach-HASH (a protocol breach: HASH of
# its reason), timeout-HASH.  An input for a bug already kept (same
# SAN-FUNCTION prefix) is not kept twice.
# Prints what it did.  Run from the repository root.
set -u
log=$1 dir=$2
regs=${3:-tests/fuzz/regressions}

sig() {
	local s loc
	if grep -q 'PROTOCOL BREACH' "$log"; then
		s=$(grep -m1 'PROTOCOL BREACH' "$log" | sed 's/.*PROTOCOL BREACH: //; s/:.*//' | md5sum | cut -c1-8)
		echo "breach-$s"; return
	fi
	if grep -q 'ERROR: libFuzzer: timeout' "$log"; then echo timeout; return; fi
	if grep -q 'out-of-memory\|ERROR: libFuzzer: out-of-memory' "$log"; then echo oom; return; fi
	case $(grep -m1 '^SUMMARY: ' "$log") in
	*UndefinedBehaviorSanitizer*) s=ubsan ;;
	*leaked*) s=leak ;;
	*AddressSanitizer*) s=asan ;;
	*) s=crash ;;
	esac
	# The function of the first stack frame in switchd's sources: stable
	# across edits that move line numbers.
	loc=$(grep -oE ' in [A-Za-z_][A-Za-z0-9_]* [^ ]*switchd/[a-z0-9_.-]+\.c:[0-9]+' "$log" \
		| head -n 1 | awk '{ print $2 }')
	echo "$s${loc:+-$loc}"
}

for a in "$dir"/*; do
	[ -f "$a" ] || continue
	s=$(sig)
	known=$(ls "$regs" 2>/dev/null | grep -F -- "$s-" | head -n 1)
	if [ -n "$known" ] && [ "$s" != crash ] && [ "$s" != timeout ] && [ "$s" != oom ]; then
		echo "known bug ($s): already kept as $regs/$known; $(basename "$a") not kept"
	else
		name="$s-$(sha1sum "$a" | cut -c1-8)"
		cp "$a" "$regs/$name"
		echo "NEW: kept as $regs/$name (git add it; the suite replays it)"
	fi
	rm -f "$a"
done
