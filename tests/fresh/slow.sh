#!/bin/bash
# tests/fresh/slow.sh (make check-slow) — the whole suite on a slow, loaded
# machine: a "python3" first on the PATH that sleeps 0.5 s before it starts
# (as a version-manager shim can), and stress-ng --cpu 2 hogging the CPUs
# beside it, RUNS times in a row (default 2).  Every run must pass: a test
# that only passes on a fast machine is a flaky test.
#
#   RUNS=N   how many runs (default 2)       CPU_HOGS=N  stress-ng --cpu N (default 2)
#
# Builds first (make all asan); needs stress-ng (scripts/deps check).
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
mkdir -p tests/out
RUNS=${RUNS:-2}
HOGS=${CPU_HOGS:-2}
command -v stress-ng >/dev/null || { echo "tests/fresh/slow.sh: stress-ng missing (scripts/deps check)" >&2; exit 1; }
SHIM=$(mktemp -d /tmp/switchd-slowpy.XXXXXX)
printf '#!/bin/sh\nsleep 0.5\nexec /usr/bin/python3 "$@"\n' >"$SHIM/python3"
chmod +x "$SHIM/python3"
cp "$SHIM/python3" "$SHIM/python"
stress-ng --cpu "$HOGS" --timeout 4h --quiet &
HOG=$!
trap 'kill "$HOG" 2>/dev/null; wait "$HOG" 2>/dev/null; rm -rf "$SHIM"' EXIT
echo "# python3 on the PATH: $(PATH=$SHIM:$PATH command -v python3) (sleeps 0.5 s); stress-ng --cpu $HOGS pid $HOG"
pass=0 fail=0
for i in $(seq "$RUNS"); do
	t0=$(date +%s)
	PATH=$SHIM:$PATH tests/run.sh build/asan >"tests/out/slow-run$i.txt" 2>&1
	rc=$?
	# keep this run's logs: the next run writes tests/out/*.log again
	rm -rf "tests/out/slow-run$i" && mkdir -p "tests/out/slow-run$i" &&
		cp tests/out/*.log "tests/out/slow-run$i/" 2>/dev/null
	summary=$(tail -n 1 "tests/out/slow-run$i.txt")
	grep -E '^FAIL' "tests/out/slow-run$i.txt"
	echo "# run $i: exit $rc, $summary, $(( $(date +%s) - t0 )) s"
	if [ "$rc" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
