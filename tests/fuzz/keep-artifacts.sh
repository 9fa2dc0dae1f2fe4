#!/bin/bash
# tests/fuzz/keep-artifacts.sh LOG DIR [REGDIR] — file the inputs libFuzzer
# wrote to DIR (crash-*, leak-*, timeout-*, oom-*) into REGDIR (default
# tests/fuzz/regressions/),
# named after the report in LOG: SAN-FILE_LINE-HASH, e.g.
# ubsan-cmd-lock.c_41-3f2a9c1e (sanitizer, and the first switchd source line
# of the report), breach-HASH (a protocol breach), timeout-HASH.  An input
# for a bug already kept (same SAN-FILE_LINE prefix) is not kept twice.
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
	# The first switchd/ source line named by the report (ubsan names it in
	# SUMMARY, ASan in its stack).
	loc=$(grep -oE 'switchd/[a-z0-9_.-]+\.c:[0-9]+' "$log" | head -n 1 | sed 's|switchd/||; s|:|_|')
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
