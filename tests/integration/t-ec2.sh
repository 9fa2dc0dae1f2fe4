#!/bin/bash
# t-ec2: the EC2 role tags follow the traffic.  After switch and back the
# hot pool's instances carry group=hot and the cold pool's group=cold (read
# back with Debian's real awscli against the project's EC2 endpoint).  A
# dead endpoint leaves the switch done and the drift shown by status, then
# repaired by the background retry when the endpoint returns; throttling is
# retried; an auth failure is not retried by the client but repaired later;
# sync repairs tags changed behind switchd's back.
. "$(dirname "$0")/../lib.sh"
t_setup
STD_NO_SWITCHD=1 std_setup
AWS=/usr/bin/aws
EP_PY=/usr/bin/python3
[ -x "$AWS" ] || die "awscli is missing (Debian package awscli)"

ec2_env

awsq() {	# awsq ARGS...: the AWS CLI against the endpoint
	timeout 30 "$AWS" --endpoint-url "http://127.0.0.1:$EPORT" --region us-east-1 \
		--no-cli-pager --output json "$@"
}
# tagged VALUE: the ids with group=VALUE, sorted, space separated
tagged() {
	awsq ec2 describe-instances --filters "Name=tag:group,Values=$1" \
		"Name=instance-state-name,Values=running" |
	jget '" ".join(sorted(i["InstanceId"] for r in d["Reservations"] for i in r["Instances"]))'
}

start_endpoint
BLUE_IDS="i-0b10e000000000001"
GREEN_IDS="i-06ee0000000000001"
admin POST instances '{"instances": [
  {"id": "'$BLUE_IDS'", "private_ip": "127.0.0.1", "tags": {"switchd:pool": "blue", "group": "hot"}},
  {"id": "'$GREEN_IDS'", "private_ip": "127.0.0.1", "tags": {"switchd:pool": "green", "group": "cold"}},
  {"id": "i-0abcd000000000099", "private_ip": "127.0.0.1", "tags": {"group": "hot"}}]}' >/dev/null ||
	die "cannot seed the EC2 endpoint"

write_config "ec2 = { region = \"us-east-1\"; endpoint = \"http://127.0.0.1:$EPORT\"; role_tag = \"group\"; };"
sed -i "s|\(name = \"b1\"; address = \"[^\"]*\";\)|\1 instance = \"$BLUE_IDS\";|; s|\(name = \"g1\"; address = \"[^\"]*\";\)|\1 instance = \"$GREEN_IDS\";|" "$T/switchd.conf"
grep -q "instance = \"$GREEN_IDS\"" "$T/switchd.conf" || die "could not add instance ids to the config"
start_switchd

expect_eq "awscli: before the switch blue is hot" "$(tagged hot)" "i-0abcd000000000099 $BLUE_IDS"
expect_ok switch --force -m "tags follow"
tags_are() { [ "$(tagged hot)" = "$1" ] && [ "$(tagged cold)" = "$2" ]; }
ok "awscli: after switch green is hot, blue cold" wait_for 10 tags_are "$GREEN_IDS i-0abcd000000000099" "$BLUE_IDS"
expect_eq "status: no drift" "$(status_get 'len(d["ec2"]["drift"])')" 0
expect_ok back -m "and back"
ok "awscli: after back blue is hot again" wait_for 10 tags_are "i-0abcd000000000099 $BLUE_IDS" "$GREEN_IDS"
ok "an instance of neither pool was not touched" test "$(admin GET instances | jget '[i["tags"].get("group") for i in d["instances"] if i["id"] == "i-0abcd000000000099"][0]')" = hot

# ---- throttled: retried within the SDK's bounds, the tags end right
admin POST reset_calls >/dev/null
admin POST faults '{"action": "CreateTags", "kind": "throttle", "count": 2}' >/dev/null
expect_ok switch --force -m "throttled"
ok "throttled: tags right after retries" wait_for 10 tags_are "$GREEN_IDS i-0abcd000000000099" "$BLUE_IDS"
n503=$(admin GET 'calls?action=CreateTags' | jget 'len([c for c in d["calls"] if c["status"] == 503])')
expect_eq "throttled: two 503s were retried" "$n503" 2

# ---- dead endpoint: the switch is done, the drift shown, then repaired
stop_pid "$EPID"
t0=$(now_ms)
expect_ok back -m "EC2 is down"
t1=$(now_ms)
expect_eq "dead EC2: the switch happened" "$(via_live)" blue
ok "dead EC2: back answered in under 3 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 3000
has_drift() { [ "$(status_get 'len(d["ec2"]["drift"])')" = 2 ]; }
ok "dead EC2: status shows the 2 instances as drift" wait_for 10 has_drift
expect_match "drift names what each instance should be" \
	"$(status_get '" ".join(x["instance"] + "=" + x["want"] for x in d["ec2"]["drift"])')" \
	"$BLUE_IDS=hot|$GREEN_IDS=cold"
run ctl status
expect_grep "ec2 drift: +2 instances" - "human status shows the drift"
start_endpoint   # same port, same instances (state file)
no_drift() { [ "$(status_get 'len(d["ec2"]["drift"])')" = 0 ]; }
ok "endpoint back: the background retry repairs the drift" wait_for 20 no_drift
ok "endpoint back: tags right" wait_for 5 tags_are "i-0abcd000000000099 $BLUE_IDS" "$GREEN_IDS"

# ---- an auth failure is not retried by the client (one call)...
admin POST reset_calls >/dev/null
admin POST faults '{"action": "CreateTags", "kind": "auth", "count": 1}' >/dev/null
expect_ok switch --force -m "auth failure"
ok "auth failure: drift recorded" wait_for 10 eval '[ "$(status_get "d[\"ec2\"].get(\"error\", \"\")")" != "" ]'
expect_match "auth failure: the error is EC2's" "$(status_get 'd["ec2"]["error"]')" "AuthFailure"
nauth=$(admin GET 'calls?action=CreateTags' | jget 'len([c for c in d["calls"] if c["status"] == 401])')
expect_eq "auth failure: not retried by the client" "$nauth" 1
# ...but the background retry (5 s) repairs it once EC2 accepts again.
ok "auth failure: repaired by the background retry" wait_for 20 no_drift
ok "auth failure: tags right" wait_for 5 tags_are "$GREEN_IDS i-0abcd000000000099" "$BLUE_IDS"

# ---- tags changed behind switchd's back: sync finds and fixes them
admin POST tags '{"ids": ["'$BLUE_IDS'"], "set": {"group": "hot"}}' >/dev/null
run ctlj sync
expect_eq "sync exits 0" "$RC" 0
expect_eq "sync reports the drift it found" "$(printf '%s' "$OUT" | jget '[x["instance"] for x in d["ec2"]["drift"]]')" "[\"$BLUE_IDS\"]"
expect_eq "sync: ec2 fixed" "$(printf '%s' "$OUT" | jget '["ec2"]["result"]')" fixed
ok "sync: tags right again" wait_for 5 tags_are "$GREEN_IDS i-0abcd000000000099" "$BLUE_IDS"
run ctlj sync
expect_eq "sync again: in sync" "$(printf '%s' "$OUT" | jget '["ec2"]["result"]')" "in sync"
expect_eq "sync: nodes in sync" "$(printf '%s' "$OUT" | jget '["nodes"]')" "in sync"

run ctl sync
expect_grep '^sync: green is hot, blue cold' - "human sync: the roles"
expect_grep '^  nodes: +in sync' - "human sync: the nodes"
expect_grep '^  role tags: +in sync' - "human sync: the tags"
admin POST tags '{"ids": ["'$GREEN_IDS'"], "set": {"group": "cold"}}' >/dev/null
run ctl sync
expect_grep '^  role tags: +fixed \(1 instance had the wrong tag\)' - "human sync: what it fixed"

# ---- sync while a retag is still in flight answers only once the tags
# are written (not when the earlier retag was merely started)
admin POST faults '{"action": "CreateTags", "kind": "slow", "delay_ms": 1500, "count": 2}' >/dev/null
expect_ok back -m "slow EC2"
run ctlj sync
expect_eq "sync during a slow retag exits 0" "$RC" 0
expect_eq "sync during a slow retag: fixed" "$(printf '%s' "$OUT" | jget '["ec2"]["result"]')" fixed
ok "when sync answers, the tags are already right" tags_are "i-0abcd000000000099 $BLUE_IDS" "$GREEN_IDS"
admin POST faults/clear >/dev/null

# ---- sync that finds the tags right clears an EC2 error recorded earlier
admin POST faults '{"action": "CreateTags", "kind": "auth", "count": 1}' >/dev/null
expect_ok switch --force -m "auth failure again"
ok "an EC2 error is recorded" wait_for 10 eval '[ "$(status_get "d[\"ec2\"].get(\"error\", \"\")")" != "" ]'
admin POST tags '{"ids": ["'$GREEN_IDS'"], "set": {"group": "hot"}}' >/dev/null
admin POST tags '{"ids": ["'$BLUE_IDS'"], "set": {"group": "cold"}}' >/dev/null
run ctlj sync
expect_eq "sync: the tags are right: in sync" "$(printf '%s' "$OUT" | jget '["ec2"]["result"]')" "in sync"
expect_eq "status: the old EC2 error is gone" "$(status_get 'd["ec2"].get("error", "none")')" none
expect_eq "status: no drift" "$(status_get 'len(d["ec2"]["drift"])')" 0
ok "status: last_ok is set" test -n "$(status_get 'd["ec2"]["last_ok"]')"

# ---- sync with the endpoint down: a clear ec2 error, exit 1
stop_pid "$EPID"
expect_fail 1 ec2 sync
expect_emsg "ConnectionError|connect" "sync names the EC2 failure"

t_done
