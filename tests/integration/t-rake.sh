#!/bin/bash
# t-rake: the rake tasks (scripts/rake/switchd.rake) with Debian's real rake,
# against a running switchd.  A Rakefile in $T imports them: cold_deploy
# records the version (argument or VERSION) and verifies, switch puts green
# live (with --expect), back puts blue back, status, hosts and history show;
# a refused switch (--expect mismatch, lock held), failed smoke checks, an
# unreachable switchd and a missing version stop rake with switchctl's
# message and its exit status.
. "$(dirname "$0")/../lib.sh"
t_setup
command -v rake >/dev/null 2>&1 || die "no rake in PATH (apt-get install rake)"

mkdir -p "$T/home"
export HOME=$T/home USER=tester
unset VERSION MESSAGE EXPECT FORCE NO_SMOKE NO_DEPLOY TTL N POOL

STD_NO_SWITCHD=1 std_setup
write_config 'smoke = {
  url = "http://127.0.0.1:'$FE_PORT'";
  timeout_ms = 10000;
  per_server = true;
  checks = ( { name = "home"; path = "/"; status = 200; },
             { name = "health"; path = "/health"; status = 200; body = "ok"; } );
};'
start_switchd

P=$T/rakeproj
mkdir -p "$P"
cat >"$P/Rakefile" <<EOF
import "$REPO_DIR/scripts/rake/switchd.rake"

# A Rakefile's own use of the helper: deploy to the cold hosts.
task :deploy_to_cold do
  puts "deploying to #{Switchd::RakeTasks.hosts(:cold).join(' ')}"
end
EOF
# The tasks read SWITCHCTL (exported by lib.sh) and SWITCHD_SOCKET.
export SWITCHD_SOCKET=$T/switchd.sock

# rakex ARGS...: rake in the project, bounded.
rakex() { (cd "$P" && timeout 30 rake "$@"); }

ok "rake -T lists the switchd tasks" rakex -T
for t in status hosts cold_deploy smoke switch back history lock unlock; do
	expect_grep "^rake switchd:$t" - "rake -T has switchd:$t"
done

ok "rake switchd:hosts[cold]" rakex "switchd:hosts[cold]"
expect_eq "hosts[cold] prints 'switchctl hosts cold'" "$OUT" "$(ctl hosts cold)"
ok "Switchd::RakeTasks.hosts(:cold) in a Rakefile" rakex deploy_to_cold
expect_eq "the helper returns the cold hosts" "$OUT" "deploying to $(ctl hosts cold | tr '\n' ' ' | sed 's/ $//')"

# ---- cold_deploy
expect_exit 2 rakex switchd:cold_deploy
expect_grep "no version to record" - "without a version rake says so"
expect_eq "nothing recorded" "$(status_get '["pools"]["green"]["state"]')" empty

ok "rake switchd:cold_deploy[abc123,first release]" rakex "switchd:cold_deploy[abc123,first release]"
expect_grep "cold-deploy: green pool at abc123 is verified" - "switchctl's summary is shown"
expect_nogrep "cold-deploy .*--no-deploy" - "no --no-deploy unless NO_DEPLOY=1"
expect_eq "green is at abc123, verified" \
	"$(status_get 'd["pools"]["green"]["version"] + " " + d["pools"]["green"]["state"]')" "abc123 verified"
expect_eq "the message argument is recorded" "$(ctlj history -n 1 | jget '["entries"][0]["message"]')" "first release"

ok "VERSION=v2 NO_DEPLOY=1 rake switchd:cold_deploy" env VERSION=v2 NO_DEPLOY=1 bash -c "cd '$P' && timeout 30 rake switchd:cold_deploy"
expect_grep "cold-deploy .*--no-deploy" - "NO_DEPLOY=1 passes --no-deploy"
expect_eq "green is at v2" "$(status_get '["pools"]["green"]["version"]')" v2
expect_eq "the default message is 'rake TASK by USER'" \
	"$(ctlj history -n 1 | jget '["entries"][0]["message"]')" "rake switchd:cold_deploy by tester"

# ---- refused switches stop rake with switchctl's message and status
expect_exit 1 rakex "switchd:switch[wrongversion]"
expect_grep "rake switchd:switch failed: .*not wrongversion" - "rake shows switchctl's refusal"
expect_eq "refused: live host still blue" "$(via_live)" blue
EXPECT=wrongversion expect_exit 1 rakex switchd:switch
expect_grep "not wrongversion" - "EXPECT in the environment is passed as --expect"

ok "rake switchd:lock[db migration]" rakex "switchd:lock[db migration,600]"
expect_eq "the lock is held with the message" "$(status_get '["lock"]["message"]')" "db migration"
expect_exit 1 rakex "switchd:switch[v2]"
expect_grep "locked by .*db migration" - "rake shows who holds the lock and why"
expect_eq "locked: live host still blue" "$(via_live)" blue
ok "rake switchd:unlock" rakex switchd:unlock
expect_eq "the lock is released" "$(status_get '["lock"]')" null

# ---- switch and back
ok "VERSION=v2 rake switchd:switch" env VERSION=v2 MESSAGE="go live" bash -c "cd '$P' && timeout 30 rake switchd:switch"
expect_grep "switch .*--expect v2" - "VERSION becomes --expect"
expect_eq "live host answers green" "$(via_live)" green
expect_eq "MESSAGE is recorded" "$(ctlj history -n 1 | jget '["entries"][0]["message"]')" "go live"

ok "rake switchd:back[oops]" rakex "switchd:back[oops]"
expect_eq "live host answers blue again" "$(via_live)" blue

ok "rake switchd:status" rakex switchd:status
expect_grep "^hot +blue" - "status shows blue hot"
expect_grep "^cold +green +be_green +version v2" - "status shows green cold at v2"
ok "rake switchd:history[2]" rakex "switchd:history[2]"
expect_grep "back +green -> blue +ok +oops" - "history shows the back and its message"
ok "rake switchd:smoke" rakex switchd:smoke

# ---- failed smoke checks
backend_ctl green "set?status=500" >/dev/null
expect_exit 1 rakex "switchd:cold_deploy[bad1]"
expect_grep "rake switchd:cold_deploy failed: " - "rake names the task that failed"
expect_grep "500" - "the failed check's status is shown"
expect_eq "green is failed" "$(status_get '["pools"]["green"]["state"]')" failed
expect_exit 1 rakex switchd:switch
expect_grep "verif" - "a switch to a failed pool is refused"
expect_eq "live host still blue" "$(via_live)" blue
backend_ctl green reset >/dev/null

# ---- switchd unreachable: exit 3, usage: exit 2, no switchctl: 127
SWITCHD_SOCKET=$T/nonexistent.sock expect_exit 3 rakex switchd:status
expect_grep "cannot reach switchd" - "rake shows switchctl's message"
expect_exit 2 rakex "switchd:history[zero]"
expect_grep "rake switchd:history failed" - "a usage error fails rake too"
SWITCHCTL=$T/no-such-switchctl expect_exit 127 rakex switchd:status
expect_grep "cannot run .*no-such-switchctl" - "a missing switchctl is named"

t_done
