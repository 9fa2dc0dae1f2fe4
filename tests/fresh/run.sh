#!/bin/bash
# tests/fresh/run.sh (make check-fresh) — the README's two commands on a
# brand-new Debian 12, as a newcomer meets them.
#
# Builds a throwaway Debian 12 (bookworm) chroot with debootstrap
# (--variant=minbase, plus git and make: no compiler, no pkg-config, no curl,
# no python3), from the Debian mirror this machine's apt already uses (read
# from its apt sources, never written here), clones this repository's HEAD
# into it, and there, in order:
#   1. as a non-root user: make demo   -> must fail and print the exact
#                                         "apt-get install ..." line
#   2. as root: make demo              -> installs, builds, runs the demo
#   3. as root: make demo-stop
#   4. as root: make test TESTS=...    -> installs the rest, builds, tests
# Each step's output goes to the terminal and to tests/out/fresh.log; the
# last line is "N passed, N failed" over these steps.  When make test fails,
# the chroot's test logs are copied to tests/out/fresh-logs/.
#
#   FRESH_TESTS=REGEX   the make test selection (default below; "." = all)
#   FRESH_ORDER=test-first   make test first, then make demo and demo-stop
#                       (the README promises either order)
#   FRESH_KEEP=1        keep the chroot (its path is printed)
#   FRESH_DIR=DIR       where to build it (default: a new dir in /var/tmp)
#
# Needs root (debootstrap, chroot, mounts) and a few minutes: every package
# is downloaded and installed.  Too slow for every CI run; run it before
# changing anything about set-up (scripts/deps, the Makefile, the demo).
# Services: the chroot gets a policy-rc.d that forbids starting services, as
# debootstrap'd chroots usually do — otherwise Debian's nginx package would
# start nginx on port 80 of this machine's network (and etcd-server, for
# t-cluster, etcd on 127.0.0.1:2379 and :2380).  (On a real machine
# scripts/deps stops the services Debian started.)  Only processes running
# inside the chroot — all started by this script — are killed at the end.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$REPO/tests/out
mkdir -p "$OUT"
LOG=$OUT/fresh.log
: >"$LOG"
SEL=${FRESH_TESTS:-'^(test-hapx|test-config|t-cli|t-switch|t-busy|t-smoke|t-ec2|t-cluster|test_endpoint)$'}
PASS=0
FAIL=0

say() { printf '# %s\n' "$*" | tee -a "$LOG"; }
pass() { PASS=$((PASS + 1)); printf 'ok - %s\n' "$*" | tee -a "$LOG"; }
fail() { FAIL=$((FAIL + 1)); printf 'not ok - %s\n' "$*" | tee -a "$LOG"; }
finish() { echo "$PASS passed, $FAIL failed" | tee -a "$LOG"; [ "$FAIL" -eq 0 ]; exit $?; }

if [ "$(id -u)" -ne 0 ]; then
	echo "tests/fresh/run.sh: needs root (debootstrap, chroot, mount)" >&2
	exit 2
fi
if ! command -v debootstrap >/dev/null; then
	say "installing debootstrap on this machine"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
		>>"$LOG" 2>&1 || { apt-get update -qq >>"$LOG" 2>&1 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >>"$LOG" 2>&1; } ||
		{ fail "install debootstrap"; finish; }
fi

# The Debian (not security) mirror of this machine's apt sources: deb822
# files first, then one-line sources.
mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
		{ uri = ""; suites = ""
		  for (i = 1; i <= NF; i++) {
			if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uri = u[1] }
			if ($i ~ /^Suites:/) suites = $i
		  }
		  if (uri != "" && suites ~ /bookworm([ \t]|$)/ && uri !~ /security/) { print uri; exit } }' "$f"
	done
	awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' \
		/etc/apt/sources.list 2>/dev/null
}
MIRROR=$(mirror | head -n 1)
[ -n "$MIRROR" ] || { fail "a Debian mirror in this machine's apt sources"; finish; }
say "mirror (from this machine's apt sources): $MIRROR"

DIR=${FRESH_DIR:-$(mktemp -d /var/tmp/switchd-fresh.XXXXXX)}
R=$DIR/root
MOUNTS=""

in_chroot_pids() {
	local p root
	for p in /proc/[0-9]*; do
		root=$(readlink "$p/root" 2>/dev/null) || continue
		case $root in "$R" | "$R"/*) echo "${p#/proc/}" ;; esac
	done
}
cleanup() {
	local pids m i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(in_chroot_pids)
		[ -z "$pids" ] && break
		# shellcheck disable=SC2086
		kill $([ "$i" -lt 5 ] && echo -TERM || echo -KILL) $pids 2>/dev/null
		sleep 0.5
	done
	for m in $MOUNTS; do umount -l "$m" 2>/dev/null; done
	if [ -n "${FRESH_KEEP:-}" ]; then
		say "kept: $R"
	else
		rm -rf --one-file-system "$DIR"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
say "debootstrap --variant=minbase --include=git,make bookworm $R"
if debootstrap --variant=minbase --include=git,make bookworm "$R" "$MIRROR" >>"$LOG" 2>&1; then
	pass "debootstrap: a minimal Debian 12 with git and make ($(( $(date +%s) - t0 )) s)"
else
	tail -n 20 "$LOG"
	fail "debootstrap"
	finish
fi

mnt() { mount "$@" && MOUNTS="${*: -1} $MOUNTS"; }
mnt -t proc proc "$R/proc"
mnt --bind /dev "$R/dev"
mnt --bind /dev/pts "$R/dev/pts"
mnt -t tmpfs tmpfs "$R/dev/shm"
mnt -t sysfs sysfs "$R/sys"
mnt -t tmpfs tmpfs "$R/run"
cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 0755 "$R/usr/sbin/policy-rc.d"

say "what the new machine lacks: $(for c in cc gcc pkg-config curl python3 haproxy nginx; do
	chroot "$R" sh -c "command -v $c" >/dev/null 2>&1 || printf '%s ' "$c"; done)"

git clone -q --no-hardlinks "$REPO" "$R/src/switchd" >>"$LOG" 2>&1 || { fail "git clone"; finish; }
say "cloned $(git -C "$REPO" rev-parse --short HEAD) into $R/src/switchd"

# in_root [USER] CMD: run CMD in the chroot's /src/switchd with a clean
# environment, as root or USER; its output to the terminal and the log.
in_root() {
	local user=root
	[ "$1" = "--as" ] && { user=$2; shift 2; }
	chroot "$R" /usr/bin/env -i HOME="/root" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 TERM=dumb CI=true \
		/bin/sh -c "cd /src/switchd && exec runuser -u $user -- /bin/sh -c \"\$0\"" "$*" 2>&1 | tee -a "$LOG"
	return "${PIPESTATUS[0]}"
}

# 1. a non-root newcomer: the exact apt-get line, nothing half-built
chroot "$R" useradd -m newcomer >>"$LOG" 2>&1
chroot "$R" chown -R newcomer /src/switchd
say "1. as a non-root user: make demo"
in_root --as newcomer make demo >"$DIR/nonroot.out"; rc=$?
cat "$DIR/nonroot.out"
if [ "$rc" -ne 0 ] && grep -q 'apt-get update && apt-get install -y --no-install-recommends .*gcc.*pkg-config' "$DIR/nonroot.out"; then
	pass "non-root make demo stops and prints the exact apt-get line (exit $rc)"
else
	fail "non-root make demo stops and prints the exact apt-get line (exit $rc)"
fi
in_root --as newcomer make test >"$DIR/nonroot-test.out"; rc=$?
if [ "$rc" -ne 0 ] && grep -q 'apt-get update && apt-get install -y --no-install-recommends ' "$DIR/nonroot-test.out"; then
	pass "non-root make test stops and prints the exact apt-get line (exit $rc)"
else
	cat "$DIR/nonroot-test.out"
	fail "non-root make test stops and prints the exact apt-get line (exit $rc)"
fi
chroot "$R" chown -R root:root /src/switchd

# 2-4. root, first time
step_demo() {
	local t1; t1=$(date +%s)
	say "as root: make demo"
	if in_root make demo; then
		pass "make demo as root, first time ($(( $(date +%s) - t1 )) s)"
	else
		fail "make demo as root, first time"
	fi
	say "as root: make demo-stop"
	if in_root make demo-stop; then pass "make demo-stop"; else fail "make demo-stop"; fi
}
step_test() {
	local t1 rc summary; t1=$(date +%s)
	say "as root: make test TESTS='$SEL'"
	in_root make test "TESTS='$SEL'" >"$DIR/test.out"; rc=$?
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$DIR/test.out" | tail -n 1)
	if [ "$rc" -eq 0 ] && [ -n "$summary" ] && [ "${summary%% passed*}" -gt 0 ]; then
		pass "make test as root, first time: $summary ($(( $(date +%s) - t1 )) s)"
	else
		# Beside, not over, this checkout's own logs (a later local run
		# would write them again).
		rm -rf "$OUT/fresh-logs" && mkdir -p "$OUT/fresh-logs" &&
			cp "$R"/src/switchd/tests/out/*.log "$OUT/fresh-logs/" 2>/dev/null
		fail "make test as root, first time (exit $rc: ${summary:-no summary})"
	fi
}
if [ "${FRESH_ORDER:-}" = test-first ]; then
	step_test
	step_demo
else
	step_demo
	step_test
fi
say "total $(( $(date +%s) - t0 )) s"
finish
