#!/bin/bash
# t-install: make install honours PREFIX and DESTDIR and installs the
# binaries, man pages, examples, the systemd unit (which systemd-analyze
# verify accepts) and the bash completion (which completes commands and
# options).
. "$(dirname "$0")/../lib.sh"
t_setup
R=$T/root
ok "make install DESTDIR=... PREFIX=/usr" make -s -C "$REPO_DIR" install DESTDIR="$R" PREFIX=/usr
for f in usr/sbin/switchd usr/bin/switchctl usr/share/man/man1/switchctl.1 \
    usr/share/man/man5/switchd.conf.5 usr/share/man/man8/switchd.8 \
    usr/share/doc/switchd/examples/haproxy.cfg usr/share/doc/switchd/README.md \
    usr/lib/systemd/system/switchd.service usr/share/bash-completion/completions/switchctl \
    usr/share/switchd/capistrano/switchd.rb usr/share/switchd/rake/switchd.rake; do
	ok "installed $f" test -f "$R/$f"
done
ok "switchd is executable" test -x "$R/usr/sbin/switchd"
expect_grep "^ExecStart=/usr/sbin/switchd -d" "$R/usr/lib/systemd/system/switchd.service" \
	"the unit runs the installed switchd"

# systemd-analyze verify wants the commands and man pages to exist: point
# the unit at the installed tree.
if command -v systemd-analyze >/dev/null; then
	sed -e "s|/usr/sbin/switchd|$R/usr/sbin/switchd|g" \
	    "$R/usr/lib/systemd/system/switchd.service" >"$T/switchd.service"
	run env MANPATH="$R/usr/share/man" systemd-analyze verify "$T/switchd.service"
	expect_eq "systemd-analyze verify: no complaints" "$OUT$ERR" ""
	for k in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
	    RuntimeDirectory=switchd StateDirectory=switchd ReadWritePaths= "ExecReload=/bin/kill -HUP"; do
		expect_grep "^$k" "$T/switchd.service" "unit has $k"
	done
else
	_fail "systemd-analyze is missing (Debian package systemd)"
fi

comp() {	# comp WORD...: what completion offers for the last word
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _switchctl; echo "${COMPREPLY[*]}"' \
	    _ "$R/usr/share/bash-completion/completions/switchctl" "$@"
}
expect_eq "completion: sw -> switch" "$(comp switchctl sw)" switch
expect_eq "completion: hosts c -> cold" "$(comp switchctl hosts c)" cold
expect_match "completion: switch --n -> --no-smoke" "$(comp switchctl switch --n)" "--no-smoke"
expect_match "completion: -s SOCK then a command" "$(comp switchctl -s /x co)" "cold-deploy"
# Every command of the table is completed.
for c in $(sed -n 's/^\t{ "\([a-z-]*\)", ".*/\1/p' "$REPO_DIR/switchd/cmd-table.c"); do
	expect_match "completion knows $c" "$(comp switchctl "$c")" "(^| )$c( |$)"
done
t_done
