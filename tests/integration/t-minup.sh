#!/bin/bash
# t-minup: switchd never points the live host at a pool HAProxy cannot serve:
# fewer than haproxy.min_up servers UP (read from "show stat" by its CSV
# header), or a backend HAProxy does not have, refuses the switch (code
# "refused", exit 1) and changes nothing.  --force does not override it.
. "$(dirname "$0")/../lib.sh"
t_setup

b1=$(free_port); g1=$(free_port); g2=$(free_port)
start_backend blue "$b1"
start_backend green1 "$g1" green
start_backend green2 "$g2" green
BLUE_PORTS=$b1 GREEN_PORTS="$g1 $g2"
write_map blue green
start_haproxy h1
MIN_UP=2
write_config
start_switchd

unchanged() {
	expect_eq "$1: HAProxy map unchanged" "$(hap_map h1)" "$(map_text blue green)"
	expect_eq "$1: map file unchanged" "$(file_map)" "$(map_text blue green)"
	expect_eq "$1: state hot still blue" "$(status_get '["hot"]')" blue
	expect_eq "$1: live host still answers blue" "$(via_live)" blue
}

# ---- one of two green servers down, min_up = 2
stop_backend green2
ok "HAProxy marks g2 DOWN" wait_count h1 be_green DOWN 1 10
expect_match "status shows g2 DOWN" \
	"$(status_get '[s["status"] for s in d["pools"]["green"]["servers"] if s["name"] == "g2"][0]')" '^DOWN'
expect_fail 1 refused switch --force -m "one green down"
expect_emsg 'be_green|green' "refusal names the pool"
unchanged "1 of 2 UP"

# ---- all green servers down
stop_backend green1
ok "HAProxy marks all green DOWN" wait_count h1 be_green DOWN 2 10
expect_fail 1 refused switch --force -m "all green down"
unchanged "0 of 2 UP"

# ---- back up: the switch goes through
start_backend green1 "$g1" green
start_backend green2 "$g2" green
ok "HAProxy marks green UP again" wait_count h1 be_green UP 2 10
expect_ok switch --force -m "green healthy"
expect_eq "live host now on green" "$(via_live)" green

# ---- "back" to a pool that has gone down is refused too
stop_backend blue
ok "HAProxy marks blue DOWN" wait_count h1 be_blue DOWN 1 10
MIN_UP=1 write_config
expect_ok reload
expect_fail 1 refused back -m "blue is down"
expect_eq "back refused: live host stays on green" "$(via_live)" green
expect_eq "back refused: map file stays" "$(file_map)" "$(map_text green blue)"
start_backend blue "$b1"
ok "HAProxy marks blue UP again" wait_count h1 be_blue UP 1 10
expect_ok back -m "blue healthy"
expect_eq "live host back on blue" "$(via_live)" blue

# ---- a server in maintenance is not UP
hap h1 "disable server be_green/g1" >/dev/null
hap h1 "disable server be_green/g2" >/dev/null
ok "HAProxy shows green in MAINT" wait_count h1 be_green MAINT 2 5
expect_fail 1 refused switch --force -m "green in maintenance"
unchanged "green in MAINT"
hap h1 "enable server be_green/g1" >/dev/null
hap h1 "enable server be_green/g2" >/dev/null
ok "green UP after maintenance" wait_count h1 be_green UP 2 10

# ---- a pool whose backend HAProxy does not have
write_config
sed -i 's/backend = "be_green"/backend = "be_nope"/' "$T/switchd.conf"
expect_ok reload
expect_fail 1 refused switch --force -m "no such backend"
expect_emsg 'be_nope' "refusal names the missing backend"
expect_eq "missing backend: HAProxy map unchanged" "$(hap_map h1)" "$(map_text blue green)"
ok "missing backend: no request gets a 503" test "$(via_live)" = blue

# ---- the configured map is not the one HAProxy loaded
write_config
sed -i "s|map = \"$T/switchd.map\";|map = \"$T/other.map\";|" "$T/switchd.conf"
cp "$T/switchd.map" "$T/other.map"
expect_ok reload
run ctlj switch --force -m "wrong map"
expect_eq "wrong map path: exit 1" "$RC" 1
expect_match "wrong map path: code haproxy or refused" "$(jv "$OUT" '["code"]')" '^(haproxy|refused)$'
expect_match "wrong map path: the error names the map" "$(jv "$OUT" '["error"]')" 'other\.map'
expect_eq "wrong map path: HAProxy unchanged" "$(hap_map h1)" "$(map_text blue green)"

t_done
