#!/bin/bash
# t-team: the documented team setup works end to end, as the shipped unit
# runs it: switchd as a non-root user in the deploy group (User=switchd,
# its groups from /etc/group), the socket directory 0755 as
# RuntimeDirectoryMode= makes it, control.group and control.admin_group the
# deploy group.  A member of the group can switch; someone else cannot even
# connect.  switchd refuses to start when it cannot give the socket to the
# group (not a member) or when the group cannot pass the socket's directory
# (the old unit's 0750): before, it logged EPERM and went on, and the team
# was locked out.
. "$(dirname "$0")/../lib.sh"
t_setup
STD_NO_SWITCHD=1 std_setup
command -v setpriv >/dev/null || die "setpriv (util-linux) is missing"

grp=swt$$
daemon=swd$$
member=swm$$
outsider=swo$$
stranger=sws$$
groupadd "$grp" || die "groupadd $grp"
at_exit "for u in $daemon $member $outsider $stranger; do userdel \$u 2>/dev/null; done; groupdel $grp"
useradd -M -N -g nogroup -G "$grp" -s /usr/sbin/nologin "$daemon" || die "useradd $daemon"
useradd -M -N -g nogroup -G "$grp" -s /usr/sbin/nologin "$member" || die "useradd $member"
useradd -M -N -g nogroup -s /usr/sbin/nologin "$outsider" || die "useradd $outsider"
useradd -M -N -g nogroup -s /usr/sbin/nologin "$stranger" || die "useradd $stranger"

# The binaries where everybody can run them (the build tree may be private).
cp "$SWITCHD" "$T/switchd.bin"; cp "$SWITCHCTL" "$T/switchctl"
chmod 755 "$T/switchd.bin" "$T/switchctl"
SWITCHCTL=$T/switchctl
REAL_SWITCHD=$SWITCHD

# What the unit makes: the state directory and /run/switchd owned by the
# daemon's user; the daemon writes the map (temp file + rename) in $T.
chown "$daemon" "$T" "$T/switchd.map"
chown -R "$daemon" "$T/state"
chown "$daemon" "$(hap_sock h1)"
mkdir -m 0755 "$T/run"
chown "$daemon" "$T/run"

# as_user USER: a wrapper that runs switchd as USER with USER's groups, as
# systemd does for User= (initgroups).
as_user() {
	local f=$T/as-$1.sh
	printf '#!/bin/sh\nexec setpriv --reuid=%s --regid=nogroup --init-groups %s "$@"\n' \
		"$1" "$T/switchd.bin" >"$f"
	chmod 755 "$f"
	echo "$f"
}

team_config() {
	write_config
	sed -i -e "s|socket = \"$T/switchd.sock\"|socket = \"$T/run/switchd.sock\"|" \
	    -e "s|^  mode = .*|  mode = 0660;\n  group = \"$grp\";\n  admin_group = \"$grp\";|" \
	    "$T/switchd.conf"
	grep -q "group = \"$grp\"" "$T/switchd.conf" || die "could not set control.group"
}
team_config
tctl() { runuser -u "$1" -- timeout 30 "$SWITCHCTL" -s "$T/run/switchd.sock" "${@:2}"; }

# ---- the documented setup: a group member switches, an outsider cannot
SWITCHD=$(as_user "$daemon")
"$SWITCHD" -d -f "$T/switchd.conf" </dev/null >>"$T/switchd.log" 2>&1 &
pid=$!
track "$pid"
echo "$pid" >"$T/switchd.pid"
ok "switchd runs as $daemon and answers its group" wait_for 10 tctl "$member" status
expect_eq "switchd's user" "$(ps -o user= -p "$pid" | tr -d ' ')" "$daemon"
expect_eq "the socket's group is control.group" "$(stat -c %G "$T/run/switchd.sock")" "$grp"
expect_eq "the socket's mode is control.mode" "$(stat -c %a "$T/run/switchd.sock")" 660
run tctl "$member" cold-deploy --no-deploy -v v2 -m "team member"
expect_eq "a member of $grp runs cold-deploy" "$RC" 0
run tctl "$member" switch --expect v2 -m "team member"
expect_eq "a member of $grp switches" "$RC" 0
expect_eq "green is live" "$(via_live)" green
run tctl "$outsider" switch --force -m "not in the team"
expect_eq "a non-member cannot connect: exit 3" "$RC" 3
expect_match "and is told why" "$ERR" "Permission denied"
expect_eq "still green" "$(via_live)" green
stop_switchd

# ---- the old unit's /run/switchd 0750: refused, with the reason
chmod 0750 "$T/run"
run timeout 20 "$SWITCHD" -d -f "$T/switchd.conf"
expect_eq "socket directory closed to the group: switchd exits 1" "$RC" 1
expect_match "it says the group cannot reach the socket" "$ERR" \
	"members of group $grp cannot reach $T/run/switchd.sock: its directory $T/run is mode 0750"
ok "no socket left behind" test ! -e "$T/run/switchd.sock"
chmod 0755 "$T/run"

# ---- a daemon user outside the group: cannot chown the socket, refused
chown "$stranger" "$T" "$T/switchd.map" "$T/run" "$(hap_sock h1)"
chown -R "$stranger" "$T/state"
run timeout 20 "$(as_user "$stranger")" -d -f "$T/switchd.conf"
expect_eq "switchd not in control.group: exits 1" "$RC" 1
expect_match "it says it must be a member" "$ERR" \
	"cannot give $T/run/switchd.sock to group $grp: Operation not permitted; switchd must be a member of $grp"
ok "no socket left behind (not a member)" test ! -e "$T/run/switchd.sock"
chown root "$T"

# ---- the shipped unit is this setup
U=$REPO_DIR/scripts/switchd.service
expect_grep '^RuntimeDirectoryMode=0755' "$U" "the unit makes /run/switchd 0755"
expect_grep '--groups haproxy,deploy' "$U" "the unit's instructions put switchd in the deploy group"

t_done
