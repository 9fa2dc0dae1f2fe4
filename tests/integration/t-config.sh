#!/bin/bash
# t-config: switchd -n checks a config (prints "configuration OK", or every
# error with its line number); unknown keys, wrong types, missing required
# sections and syntax errors are errors; "switchctl reload" and SIGHUP refuse
# a bad file and keep the old config, and take a good one.
. "$(dirname "$0")/../lib.sh"
t_setup
STD_NO_SWITCHD=1 std_setup
cp "$T/switchd.conf" "$T/good.conf"

# lineof REGEX FILE: the number of the first line matching REGEX.
lineof() { grep -nE -- "$1" "$2" | head -n 1 | cut -d: -f1; }

# check_bad DESC FILE LINE [REGEX]: switchd -n -f FILE exits 1 and names
# LINE (as "line N" or "FILE:N:"), and REGEX if given.
check_bad() {
	local desc=$1 file=$2 line=$3 re=${4:-}
	run "$SWITCHD" -n -f "$file"
	expect_eq "$desc: switchd -n exits 1" "$RC" 1
	expect_match "$desc: the error names line $line" "$ERR" "(line $line([^0-9]|\$)|:$line:)"
	[ -z "$re" ] || expect_match "$desc: the error says /$re/" "$ERR" "$re"
	expect_nogrep 'configuration OK' - "$desc: not OK"
}

# ---- a good file
run "$SWITCHD" -n -f "$T/good.conf"
expect_eq "good config: exit 0" "$RC" 0
expect_grep 'configuration OK' - "good config: configuration OK"

# ---- the shipped-style minimal config: only hosts, pools and haproxy
cat >"$T/minimal.conf" <<EOF
hosts = { live = "a.example"; cold = "cold.a.example"; };
pools = {
  blue  = { backend = "be_blue";  servers = ( { name = "w1"; address = "127.0.0.1:1"; } ); };
  green = { backend = "be_green"; servers = ( { name = "w2"; address = "127.0.0.1:2"; } ); };
};
haproxy = { sockets = ( "$T/h1.sock" ); map = "$T/switchd.map"; };
EOF
ok "minimal config (everything else defaulted) is OK" "$SWITCHD" -n -f "$T/minimal.conf"

# ---- issue 13: names go into HAProxy admin commands and generated files, so
# ';', '#', blanks and control characters are refused, and a name too long to
# keep is an error (it was cut short silently), each with its line.
cp "$T/good.conf" "$T/n1.conf"
sed -i 's|backend = "be_green";|backend = "be_green;shutdown sessions";|' "$T/n1.conf"
check_bad "backend with ';'" "$T/n1.conf" "$(lineof 'be_green;' "$T/n1.conf")" "pools.green.backend .*';'"
cp "$T/good.conf" "$T/n2.conf"
sed -i 's|name = "g1";|name = "g1#x";|' "$T/n2.conf"
check_bad "server name with '#'" "$T/n2.conf" "$(lineof 'g1#x' "$T/n2.conf")" "servers.\[0\]: name"
cp "$T/good.conf" "$T/n3.conf"
sed -i "s|live = \"$LIVE_HOST\";|live = \"app.example.com\\\\tx\";|" "$T/n3.conf"
check_bad "host name with a control character" "$T/n3.conf" "$(lineof '^  live' "$T/n3.conf")" 'hosts.live'
cp "$T/good.conf" "$T/n4.conf"
long=$(printf 'b%.0s' $(seq 1 200))
sed -i "s|backend = \"be_blue\";|backend = \"$long\";|" "$T/n4.conf"
check_bad "a 200-character backend" "$T/n4.conf" "$(lineof "$long" "$T/n4.conf")" 'at most 127'
cp "$T/good.conf" "$T/n5.conf"
sed -i 's|address = "127.0.0.1:\([0-9]*\)"|address = "127.0.0.1;x:\1"|' "$T/n5.conf"
check_bad "address with ';'" "$T/n5.conf" "$(lineof '127.0.0.1;x' "$T/n5.conf")" 'address'
cp "$T/good.conf" "$T/n6.conf"
sed -i 's|^haproxy = {|haproxy = {\n  backends_defaults = "d x";|' "$T/n6.conf"
check_bad "backends_defaults with a blank" "$T/n6.conf" "$(lineof 'backends_defaults' "$T/n6.conf")" 'haproxy.backends_defaults'

# ---- unknown key at top level
cp "$T/good.conf" "$T/c1.conf"
n=$(lineof '^state_dir' "$T/c1.conf"); n=$((n + 1))
sed -i "${n}i bogus_key = 1;" "$T/c1.conf"
check_bad "unknown top-level key" "$T/c1.conf" "$n" 'bogus_key'

# ---- unknown key inside a group
cp "$T/good.conf" "$T/c2.conf"
n=$(lineof 'min_up' "$T/c2.conf")
sed -i "${n}a \ \ min_upp = 3;" "$T/c2.conf"
check_bad "unknown key in haproxy" "$T/c2.conf" "$((n + 1))" 'min_upp'

# ---- a wrong type
cp "$T/good.conf" "$T/c3.conf"
sed -i 's/min_up = [0-9]*;/min_up = "x";/' "$T/c3.conf"
check_bad "min_up = \"x\"" "$T/c3.conf" "$(lineof 'min_up' "$T/c3.conf")" 'min_up'

cp "$T/good.conf" "$T/c4.conf"
sed -i 's|^  sockets = .*|  sockets = "'"$T"'/h1.sock";|' "$T/c4.conf"
run "$SWITCHD" -n -f "$T/c4.conf"
# a single string for a list may be accepted; if refused, it names the line
if [ "$RC" -ne 0 ]; then
	check_bad "sockets as a string" "$T/c4.conf" "$(lineof 'sockets' "$T/c4.conf")" 'sockets'
else
	_pass "sockets as a single string accepted"
fi

# ---- missing hosts section
cp "$T/good.conf" "$T/c5.conf"
sed -i '/^hosts = {/,/^};/d' "$T/c5.conf"
run "$SWITCHD" -n -f "$T/c5.conf"
expect_eq "missing hosts: exit 1" "$RC" 1
expect_match "missing hosts: the error says hosts" "$ERR" 'hosts'

# ---- a pool that is neither blue nor green
cp "$T/good.conf" "$T/c6.conf"
sed -i 's/^  green = {/  purple = {/' "$T/c6.conf"
check_bad "pool purple" "$T/c6.conf" "$(lineof 'purple' "$T/c6.conf")" 'purple'

# ---- a syntax error
cp "$T/good.conf" "$T/c7.conf"
n=$(lineof '^hosts' "$T/c7.conf")
sed -i "${n}i this is not libconfig" "$T/c7.conf"
check_bad "syntax error" "$T/c7.conf" "$n"

# ---- every error is reported, not just the first
cp "$T/good.conf" "$T/c8.conf"
sed -i 's/min_up = [0-9]*;/min_up = "x";/; s/timeout_ms = [0-9]*;/timeout_ms = "slow";/' "$T/c8.conf"
run "$SWITCHD" -n -f "$T/c8.conf"
expect_eq "two errors: exit 1" "$RC" 1
expect_match "two errors: min_up's line" "$ERR" "(line $(lineof min_up "$T/c8.conf")([^0-9]|\$)|:$(lineof min_up "$T/c8.conf"):)"
expect_match "two errors: timeout_ms's line" "$ERR" "(line $(lineof timeout_ms "$T/c8.conf")([^0-9]|\$)|:$(lineof timeout_ms "$T/c8.conf"):)"

# ---- a file that does not exist
run "$SWITCHD" -n -f "$T/nonexistent.conf"
expect_eq "missing file: exit 1" "$RC" 1
expect_match "missing file: named" "$ERR" 'nonexistent.conf'

# ---- the shipped HAProxy example is a valid HAProxy config (paths moved
# into $T: the check loads the map file)
sed -e "s|/etc/haproxy/switchd.map|$T/example.map|g" -e "s|/run/haproxy/admin.sock|$T/example.sock|" \
	"$REPO_DIR/haproxy/haproxy.cfg" >"$T/example.cfg"
cp "$REPO_DIR/haproxy/switchd.map" "$T/example.map"
if ! getent passwd haproxy >/dev/null; then
	sed -i '/^\s*\(user\|group\) haproxy/d' "$T/example.cfg"
fi
ok "haproxy -c accepts haproxy/haproxy.cfg" "$HAPROXY" -c -f "$T/example.cfg"
expect_eq "haproxy/switchd.map: the live host on be_blue" \
	"$(awk '$1 == "app.example.com" { print $2 }' "$REPO_DIR/haproxy/switchd.map")" be_blue
expect_eq "haproxy/switchd.map: the cold host on be_green" \
	"$(awk '$1 == "cold.app.example.com" { print $2 }' "$REPO_DIR/haproxy/switchd.map")" be_green

# ---- reload refuses a bad file and keeps the old config
start_switchd
expect_eq "one blue server at start" "$(status_get 'len(d["pools"]["blue"]["servers"])')" 1
cp "$T/c3.conf" "$T/switchd.conf"
expect_fail 1 config reload
expect_emsg 'min_up' "reload error says what is wrong"
ok "daemon still serves after a refused reload" ctl status
expect_ok switch --force -m "old config still works"
expect_eq "switched with the old config" "$(via_live)" green

# ---- a good file is taken: a second blue server appears
bp2=$(free_port)
start_backend blue2 "$bp2" blue
BLUE_PORTS="$BLUE_PORTS $bp2"
write_config
expect_ok reload
expect_eq "reload took the new file: two blue servers" "$(status_get 'len(d["pools"]["blue"]["servers"])')" 2

# ---- SIGHUP with a bad file: refused, old config kept, still serving
cp "$T/c1.conf" "$T/switchd.conf"
L=$(wc -l <"$T/switchd.log")
kill -HUP "$(switchd_pid)"
ok "the refusal is logged" wait_for 5 eval "tail -n +$((L + 1)) '$T/switchd.log' | grep -q bogus_key"
ok "daemon alive after SIGHUP with a bad file" alive "$(switchd_pid)"
ok "status after SIGHUP with a bad file" ctl status
expect_eq "old config kept: still two blue servers" "$(status_get 'len(d["pools"]["blue"]["servers"])')" 2
expect_ok back -m "after bad SIGHUP"
expect_eq "switched back after a bad SIGHUP" "$(via_live)" blue

# ---- SIGHUP with a good file is taken
BLUE_PORTS=${BLUE_PORTS%% *}
write_config
kill -HUP "$(switchd_pid)"
ok "SIGHUP took the good file: one blue server" \
	wait_for 5 eval "[ \"\$(status_get 'len(d[\"pools\"][\"blue\"][\"servers\"])')\" = 1 ]"
ok "daemon alive after a good SIGHUP" alive "$(switchd_pid)"

t_done
