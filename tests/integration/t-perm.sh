#!/bin/bash
# t-perm: read-only commands are open to anyone who can connect; mutating
# ones need uid 0, the daemon's uid or control.admin_group — checked with
# the peer's credentials (SO_PEERCRED).  The socket file gets control.mode.
. "$(dirname "$0")/../lib.sh"
t_setup

# nobody must be able to run the client: copy it into $T if it lives
# somewhere nobody cannot reach (e.g. under /root).
if ! runuser -u nobody -- test -x "$SWITCHCTL"; then
	cp "$SWITCHCTL" "$T/switchctl"
	chmod 755 "$T/switchctl"
	SWITCHCTL=$T/switchctl
fi
ok "nobody can run switchctl" runuser -u nobody -- test -x "$SWITCHCTL"

SOCK_MODE=0666
std_setup
expect_eq "socket file mode is control.mode" "$(stat -c %a "$T/switchd.sock")" 666

CTL_USER=nobody ok "nobody: status" ctlj status
expect_eq "nobody sees the status" "$(jv "$OUT" '["hot"]')" blue
CTL_USER=nobody ok "nobody: history" ctl history
CTL_USER=nobody ok "nobody: hosts hot" ctl hosts hot
expect_eq "nobody: hosts hot output" "$OUT" "127.0.0.1"

for cmd in "switch --force" "back" "lock -m x" "unlock --force" "reload"; do
	# shellcheck disable=SC2086
	CTL_USER=nobody expect_fail 1 permission $cmd
done
expect_eq "nothing switched by nobody" "$(hap_map h1)" "$(map_text blue green)"
expect_eq "no lock taken by nobody" "$(status_get '["lock"]')" null
run ctlj history -n 100
expect_eq "no successful command by nobody in history" \
	"$(jv "$OUT" 'len([e for e in d["entries"] if e.get("uid") == 65534 and e.get("result") == "ok"])')" 0

# ---- the request cannot claim to be root
ok "a forged uid in the request is ignored" "$PYTHON" - "$T/switchd.sock" <<'EOF'
import json, os, socket, sys
os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(b'{"v": 1, "cmd": "switch", "uid": 0, "user": "root", "args": {"force": true}}\n')
buf = b""
while True:
    b = s.recv(65536)
    if not b: break
    buf += b
    last = [l for l in buf.split(b"\n") if l.strip()]
    if last and b'"ok"' in last[-1]: break
final = json.loads([l for l in buf.split(b"\n") if l.strip()][-1])
print(final)
sys.exit(0 if final.get("ok") is False and final.get("code") == "permission" else 1)
EOF
expect_eq "still blue after the forged request" "$(via_live)" blue

# ---- root (uid 0) may
expect_ok switch --force -m "root may"

# ---- control.admin_group: a member may switch
grp=swd$$
usr=swu$$
if groupadd "$grp" 2>/dev/null; then
	at_exit "userdel $usr; groupdel $grp"
	useradd -M -N -g nogroup -G "$grp" -s /usr/sbin/nologin "$usr" 2>/dev/null
	write_config
	sed -i "s|^  mode = .*|&\n  admin_group = \"$grp\";|" "$T/switchd.conf"
	expect_ok reload
	CTL_USER=$usr expect_ok back -m "admin group member"
	expect_eq "the admin group member switched back" "$(via_live)" blue
	CTL_USER=nobody expect_fail 1 permission switch --force
	# A user in more than 256 groups, the admin group after the 256th:
	# before, getgrouplist() into a fixed 256 failed and he was no admin.
	many=""
	for i in $(seq 1 260); do
		groupadd "swf$$x$i" || break
		at_exit "groupdel swf$$x$i"
		many="$many${many:+,}swf$$x$i"
	done
	biggrp=swz$$
	bigusr=swy$$
	groupadd "$biggrp" && at_exit "groupdel $biggrp"
	useradd -M -N -g nogroup -G "$many,$biggrp" -s /usr/sbin/nologin "$bigusr" &&
		at_exit "userdel $bigusr"
	expect_eq "$bigusr is in 261 groups" "$(id -G "$bigusr" | wc -w)" 262
	sed -i "s|admin_group = \"$grp\"|admin_group = \"$biggrp\"|" "$T/switchd.conf"
	expect_ok reload
	CTL_USER=$bigusr expect_ok lock -m "in 261 groups"
	CTL_USER=$bigusr expect_ok unlock
	sed -i "s|admin_group = \"$biggrp\"|admin_group = \"$grp\"|" "$T/switchd.conf"
	expect_ok reload

	# Group lookups are off the event loop: getgrouplist() for $usr hangs
	# (a slow LDAP, played by an LD_PRELOAD shim) until $T/nss.go exists,
	# and root's status answers meanwhile.  Before, accept() looked the
	# groups up in the loop and everything waited.
	cat >"$T/nss-shim.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int
getgrouplist(const char *user, gid_t group, gid_t *groups, int *ngroups)
{
	static int (*real)(const char *, gid_t, gid_t *, int *);
	const char *slow = getenv("SHIM_SLOW_USER"), *dir = getenv("SHIM_DIR");
	char path[512];
	int i, fd;

	if (real == NULL)
		real = (int (*)(const char *, gid_t, gid_t *, int *))dlsym(RTLD_NEXT, "getgrouplist");
	if (slow != NULL && dir != NULL && strcmp(user, slow) == 0) {
		snprintf(path, sizeof(path), "%s/nss.entered", dir);
		if ((fd = open(path, O_WRONLY | O_CREAT, 0644)) != -1)
			close(fd);
		snprintf(path, sizeof(path), "%s/nss.go", dir);
		for (i = 0; i < 600 && access(path, F_OK) != 0; i++)
			usleep(50000);	/* bounded: 30 s */
	}
	return real(user, group, groups, ngroups);
}
EOF
	if cc -shared -fPIC -o "$T/nss-shim.so" "$T/nss-shim.c" -ldl 2>"$T/nss-shim.err"; then
		pre=$T/nss-shim.so
		asan=$(ldd "$SWITCHD" | awk '/libasan/ { print $3 }')
		[ -n "$asan" ] && pre="$asan $pre"
		printf '#!/bin/sh\nLD_PRELOAD="%s" SHIM_SLOW_USER=%s SHIM_DIR=%s exec %s "$@"\n' \
			"$pre" "$usr" "$T" "$SWITCHD" >"$T/shimmed.sh"
		chmod 755 "$T/shimmed.sh"
		stop_switchd
		real=$SWITCHD
		SWITCHD=$T/shimmed.sh
		start_switchd
		SWITCHD=$real
		CTL_USER=$usr ctl status >"$T/slow.out" 2>&1 &
		slow=$!
		ok "the member's connection is stuck in getgrouplist" wait_for 10 test -e "$T/nss.entered"
		CTL_TIMEOUT=5 run ctl status
		expect_eq "root's status answers while the member's groups are looked up" "$RC" 0
		touch "$T/nss.go"
		wait "$slow"
		expect_eq "the member's status answers once its groups are known" "$?" 0
		CTL_USER=$usr expect_ok lock -m "groups looked up off the loop"
		CTL_USER=$usr expect_ok unlock
	else
		_fail "the NSS shim builds"; sed 's/^/#   /' "$T/nss-shim.err"
	fi
else
	log "groupadd not possible here: admin_group check skipped"
fi

# ---- mode 0660: nobody cannot even connect
stop_switchd
SOCK_MODE=0660
write_config
start_switchd
expect_eq "socket file mode 660" "$(stat -c %a "$T/switchd.sock")" 660
CTL_USER=nobody expect_exit 3 ctl status

# ---- temp files: symlinks planted where switchd used to put its temp files
# (FILE.tmp.PID) are not followed; the victims keep their content
echo precious >"$T/victim"
PID=$(switchd_pid)
for f in "$T/switchd.map" "$T/state/state.json" "$T/state/intent.json"; do
	ln -s "$T/victim" "$f.tmp.$PID"
done
expect_ok switch --force --no-smoke -m "with planted symlinks"
expect_eq "the victim of the planted symlinks is untouched" "$(cat "$T/victim")" precious
ok "the map file is a regular file" test -f "$T/switchd.map" -a ! -L "$T/switchd.map"
expect_eq "and it has the switch" "$(hap_map h1)" "$(file_map)"
ok "state.json is a regular file" test -f "$T/state/state.json" -a ! -L "$T/state/state.json"

t_done
