#!/bin/bash
# t-switch: the basic flip through a real HAProxy — status, switch, back,
# the map file and state on disk, an HAProxy restart and reload keeping the
# switched state, history, hosts, and "not verified" refusing a plain switch.
. "$(dirname "$0")/../lib.sh"
t_setup
std_setup

# ---- initial state
run ctlj status
S=$OUT
ok "status --json is one JSON document" jvalid <<<"$S"
expect_eq "initial hot is blue" "$(jv "$S" '["hot"]')" blue
expect_eq "initial cold is green" "$(jv "$S" '["cold"]')" green
expect_eq "node 0 serves the live host from be_blue" "$(jv "$S" '["nodes"][0]["map"]["live"]')" be_blue
expect_eq "node 0 serves the cold host from be_green" "$(jv "$S" '["nodes"][0]["map"]["cold"]')" be_green
expect_eq "node 0 is ok" "$(jv "$S" '["nodes"][0]["ok"]')" true
expect_eq "blue server address" "$(jv "$S" '["pools"]["blue"]["servers"][0]["address"]')" "127.0.0.1:$BLUE_PORTS"
expect_eq "blue server name" "$(jv "$S" '["pools"]["blue"]["servers"][0]["name"]')" b1
expect_match "blue server status from HAProxy is UP" "$(jv "$S" '["pools"]["blue"]["servers"][0]["status"]')" '^UP'
expect_match "green server status from HAProxy is UP" "$(jv "$S" '["pools"]["green"]["servers"][0]["status"]')" '^UP'
expect_eq "no lock" "$(jv "$S" '["lock"]')" null
ok "status has ec2.drift" jv "$S" '["ec2"]["drift"]'
expect_eq "live host answers blue" "$(via_live)" blue
expect_eq "cold host answers green" "$(via_cold)" green
ok "human status exits 0" ctl status
expect_grep 'blue' - "human status names blue"
expect_grep 'green' - "human status names green"

# ---- a plain switch needs a verified cold pool
expect_fail 1 refused switch -m "not verified"
expect_emsg 'verif' "refusal says the cold pool is not verified"
expect_eq "refused switch changed nothing (HAProxy)" "$(hap_map h1)" "$(map_text blue green)"
expect_eq "refused switch changed nothing (map file)" "$(file_map)" "$(map_text blue green)"

# ---- switch --force
expect_ok switch --force -m "go"
R=$OUT
expect_eq "switch reply: from blue" "$(jv "$R" '["from"]')" blue
expect_eq "switch reply: to green" "$(jv "$R" '["to"]')" green
expect_eq "switch reply: hot green" "$(jv "$R" '["hot"]')" green
expect_eq "switch reply: 1 node" "$(jv "$R" '["nodes"]')" 1
expect_eq "switch reply: took_ms is a number" "$(jv "$R" 'isinstance(d["took_ms"], (int, float))')" true
expect_eq "live host now answers green" "$(via_live)" green
expect_eq "cold host now answers blue" "$(via_cold)" blue
expect_eq "HAProxy map flipped" "$(hap_map h1)" "$(map_text green blue)"
expect_eq "map file flipped" "$(file_map)" "$(map_text green blue)"
expect_eq "map file keeps its mode (0644)" "$(stat -c %a "$T/switchd.map")" 644
ok "state.json parses" jvalid "$T/state/state.json"
expect_eq "state.json hot is green" "$(state_hot)" green
expect_eq "state.json cold is blue" "$(jget '["cold"]' "$T/state/state.json")" blue
expect_eq "no temp files left next to the map" "$(ls -A "$T" | grep -c '^switchd\.map.')" 0
S=$(ctlj status)
expect_eq "status hot is green" "$(jv "$S" '["hot"]')" green
expect_eq "status cold is blue" "$(jv "$S" '["cold"]')" blue
expect_eq "status node map live is be_green" "$(jv "$S" '["nodes"][0]["map"]["live"]')" be_green
expect_eq "status last_switch is the switch to green" "$(jv "$S" '["last_switch"]["after"]["hot"] if "after" in d["last_switch"] else d["last_switch"].get("to")')" green

# ---- an HAProxy restart and a reload keep the switched state
restart_haproxy h1
expect_eq "after HAProxy restart: live host answers green" "$(via_live)" green
expect_eq "after HAProxy restart: cold host answers blue" "$(via_cold)" blue
reload_haproxy h1
expect_eq "after HAProxy reload: live host answers green" "$(via_live)" green
expect_eq "status after HAProxy restart still hot green" "$(status_get '["hot"]')" green
expect_eq "status sees the restarted node's map" "$(status_get '["nodes"][0]["map"]["live"]')" be_green

# ---- back
expect_ok back -m "undo"
expect_eq "back reply: to blue" "$(jv "$OUT" '["to"]')" blue
expect_eq "after back: live host answers blue" "$(via_live)" blue
expect_eq "after back: cold host answers green" "$(via_cold)" green
expect_eq "after back: HAProxy map" "$(hap_map h1)" "$(map_text blue green)"
expect_eq "after back: map file" "$(file_map)" "$(map_text blue green)"
expect_eq "after back: state.json hot" "$(state_hot)" blue

# ---- history
run ctlj history
H=$OUT
ok "history --json is one JSON document" jvalid <<<"$H"
expect_eq "newest entry is back" "$(jv "$H" '["entries"][0]["command"]')" back
expect_eq "back's message" "$(jv "$H" '["entries"][0]["message"]')" undo
expect_eq "back's result" "$(jv "$H" '["entries"][0]["result"]')" ok
expect_eq "back before.hot" "$(jv "$H" '["entries"][0]["before"]["hot"]')" green
expect_eq "back after.hot" "$(jv "$H" '["entries"][0]["after"]["hot"]')" blue
SW='[e for e in d["entries"] if e["command"] == "switch" and e["result"] == "ok"]'
expect_eq "one successful switch in history" "$(jv "$H" "len($SW)")" 1
expect_eq "switch message" "$(jv "$H" "$SW[0]['message']")" go
expect_eq "switch user" "$(jv "$H" "$SW[0]['user']")" root
expect_eq "switch uid" "$(jv "$H" "$SW[0]['uid']")" 0
expect_eq "switch before" "$(jv "$H" "$SW[0]['before']")" '{"cold": "green", "hot": "blue"}'
expect_eq "switch after" "$(jv "$H" "$SW[0]['after']")" '{"cold": "blue", "hot": "green"}'
ok "entries have a time" jv "$H" '[e["time"] for e in d["entries"]]'
expect_eq "entries are newest first" "$(jv "$H" 'all(d["entries"][i]["time"] >= d["entries"][i+1]["time"] for i in range(len(d["entries"])-1))')" true
run ctlj history -n 1
expect_eq "history -n 1 gives one entry" "$(jv "$OUT" 'len(d["entries"])')" 1
ok "history.jsonl: every line parses" jlines_valid "$T/state/history.jsonl"
ok "human history exits 0" ctl history
expect_grep 'undo' - "human history shows the message"

# ---- hosts: the host part of each address (SSH targets for Capistrano
# roles), one a line
run ctl hosts hot
expect_eq "hosts hot: the blue servers' hosts" "$OUT" "127.0.0.1"
run ctl hosts cold
expect_eq "hosts cold: the green servers' hosts" "$OUT" "127.0.0.1"
run ctlj hosts green
expect_eq "hosts --json green: hosts" "$(jv "$OUT" '["hosts"]')" '["127.0.0.1"]'
expect_eq "hosts --json green: pool" "$(jv "$OUT" '["pool"]')" green
expect_eq "hosts --json green: server addresses" "$(jv "$OUT" '[s["address"] for s in d["servers"]]')" "[\"127.0.0.1:$GREEN_PORTS\"]"
run ctlj hosts hot
expect_eq "hosts --json hot resolves to blue" "$(jv "$OUT" '["pool"]')" blue
expect_exit 2 ctl hosts bogus
expect_exit 2 ctl hosts

# ---- no request fails while switching under keep-alive load
# The load runs from its first answer (the ready file) until the test has
# done its switches (the stop file), at most 240 s: no guess at how long six
# switches take on this machine.
"$PYTHON" - "$FE_PORT" "$T/load.out" "$T/load.ready" "$T/load.stop" <<'EOF' &
import http.client, os, sys, time
port, out, ready, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
bad, n, seen = 0, 0, set()
end = time.monotonic() + 240
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
while not os.path.exists(stop) and time.monotonic() < end:
    if n == 1:
        open(ready, "w").write("ready\n")
    try:
        c.request("GET", "/", headers={"Host": "app.example.com"})
        r = c.getresponse(); body = r.read().decode()
        if r.status != 200 or body not in ("blue", "green"):
            bad += 1
        seen.add(body)
        if r.getheader("Connection", "").lower() == "close":
            c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    except Exception as e:
        # a connection HAProxy closed while idle is a retry, not a failure
        c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request("GET", "/", headers={"Host": "app.example.com"})
            r = c.getresponse(); body = r.read().decode(); seen.add(body)
            if r.status != 200: bad += 1
        except Exception:
            bad += 1
    n += 1
open(out, "w").write("%d %d %s\n" % (n, bad, ",".join(sorted(seen))))
EOF
LOAD=$!
track $LOAD
ok "the load is running" wait_for 60 test -f "$T/load.ready"
nsw=0
for i in 1 2 3 4 5 6; do
	ctl -q switch --force -m "load $i" >/dev/null 2>&1 && nsw=$((nsw + 1))
done
: >"$T/load.stop"
wait_for 60 eval "! kill -0 $LOAD 2>/dev/null"
wait $LOAD 2>/dev/null
untrack $LOAD
expect_eq "6 switches under load succeeded" "$nsw" 6
read -r n bad seen <"$T/load.out"
log "load: $n requests, $bad failed, saw $seen"
expect_eq "no request failed during the switches" "$bad" 0
expect_eq "both pools answered during the switches" "$seen" "blue,green"
expect_eq "even number of switches: back on blue" "$(via_live)" blue

t_done
