#!/bin/bash
# t-cap: the Capistrano tasks (scripts/capistrano/switchd.rb) with Debian's
# real cap, against a running switchd.  A minimal Capistrano project in $T
# builds its roles from "switchctl hosts cold" and runs the tasks locally (no
# SSH): cold_deploy records the version and verifies, switch puts green live,
# back puts blue back, status and history show; a refused switch (--expect
# mismatch, lock held), failed smoke checks, an unreachable switchd and a
# missing version fail the cap run with switchctl's message; a switch during
# the deploy makes cold_deploy refuse to verify the wrong pool; the
# "after deploy:finished" hook records :current_revision; --dry-run changes
# nothing; under switchd's own deploy.command the hook stands aside.
. "$(dirname "$0")/../lib.sh"
t_setup
command -v cap >/dev/null 2>&1 || die "no cap in PATH (apt-get install capistrano)"

# Nothing outside $T is written: HOME (cap, and switchd's deploy.command
# that runs cap) and the project's log/ are in $T.
mkdir -p "$T/home"
export HOME=$T/home USER=tester
unset SWITCHD_SOCKET VERSION MESSAGE EXPECT FORCE NO_SMOKE TTL N POOL SWITCHD_POOL SWITCHD_HOSTS

STD_NO_SWITCHD=1 std_setup
SMOKE='smoke = {
  url = "http://127.0.0.1:'$FE_PORT'";
  timeout_ms = 10000;
  per_server = true;
  checks = ( { name = "home"; path = "/"; status = 200; },
             { name = "health"; path = "/health"; status = 200; body = "ok"; } );
};'
write_config "$SMOKE"
start_switchd

# ---- a Capistrano project in $T
P=$T/capproj
mkdir -p "$P/config/deploy"

cat >"$P/Capfile" <<EOF
require "capistrano/setup"
require "$REPO_DIR/scripts/capistrano/switchd.rb"

namespace :switchd do
  # What the stage's roles resolved to: "HOST roles=... user=..." per server.
  task :show_cold_role do
    roles(:app).each do |s|
      puts "app #{s.hostname} roles=#{s.roles.to_a.map(&:to_s).sort.join(',')} user=#{s.user}"
    end
    roles(:cold_web).each { |s| puts "cold_web #{s.hostname}" }
  end
end

# Stands in for Capistrano's deploy flow (which needs SSH): it ends, as the
# real one does, with :current_revision set and deploy:finished run.
namespace :deploy do
  task :finished do
    set :current_revision, ENV.fetch("FAKE_REVISION")
    puts "fake deploy of #{fetch(:current_revision)} to #{roles(:app).map(&:hostname).join(' ')}"
  end
end
EOF

cat >"$P/config/deploy.rb" <<EOF
set :application, "tcap"
set :scm, nil
# The switchctl comes from SWITCHCTL (the tasks' default); the socket from here.
set :switchd_socket, ENV.fetch("TEST_SOCKET", "$T/switchd.sock")
EOF

cat >"$P/config/deploy/test.rb" <<'EOF'
switchd_roles :app, :web, pool: :cold, user: "deploy"
switchd_role :cold_web
after "deploy:finished", "switchd:cold_deploy"
EOF

# capx ARGS...: cap in the project, bounded.
capx() { (cd "$P" && timeout 30 cap "$@"); }

# ---- the role helper builds the cold pool's servers
ok "cap test switchd:show_cold_role" capx test switchd:show_cold_role
COLD=$(ctl hosts cold)
expect_eq "roles(:app) are the hosts of 'switchctl hosts cold'" \
	"$(printf '%s\n' "$OUT" | awk '$1 == "app" { print $2 }')" "$COLD"
# (one server: :cold_web is on the same host, and Capistrano merges them)
expect_grep "^app 127\.0\.0\.1 roles=app,cold_web,web user=deploy$" - "servers carry the roles and properties given"
expect_eq "role :cold_web has the cold hosts" \
	"$(printf '%s\n' "$OUT" | awk '$1 == "cold_web" { print $2 }')" "$COLD"

# ---- cold_deploy: needs a version; records VERSION and verifies
nok "cap switchd:cold_deploy without a version fails" capx test switchd:cold_deploy
expect_grep "no version to record" - "it says there is no version"
expect_eq "nothing recorded" "$(status_get '["pools"]["green"]["state"]')" empty

ok "cap test switchd:cold_deploy VERSION=abc123" capx test switchd:cold_deploy VERSION=abc123
expect_grep "cold-deploy: green pool at abc123 is verified" - "switchctl's summary is shown"
expect_grep "cold-deploy .*--no-deploy" - "it passes --no-deploy (cap did the deploy)"
expect_eq "green is at abc123" "$(status_get '["pools"]["green"]["version"]')" abc123
expect_eq "green is verified" "$(status_get '["pools"]["green"]["state"]')" verified
expect_eq "the default message is 'cap STAGE by USER'" \
	"$(ctlj history -n 1 | jget '["entries"][0]["message"]')" "cap test by tester"

# ---- refused switches fail the cap run with switchctl's message
nok "cap switchd:switch EXPECT=wrongversion fails" capx test switchd:switch EXPECT=wrongversion
expect_grep "switchd:switch failed: .*not wrongversion" - "cap shows switchctl's refusal"
expect_eq "refused: live host still blue" "$(via_live)" blue

ok "ctl lock" ctl lock -m "db migration"
nok "cap switchd:switch while the lock is held fails" capx test switchd:switch VERSION=abc123
expect_grep "locked by .*db migration" - "cap shows who holds the lock and why"
expect_eq "locked: live host still blue" "$(via_live)" blue
ok "ctl unlock" ctl unlock

# ---- --dry-run runs nothing that changes state
ok "cap switchd:switch --dry-run" capx test switchd:switch VERSION=abc123 --dry-run
expect_grep "dry run" - "dry run says it did not run switchctl"
expect_eq "dry run: live host still blue" "$(via_live)" blue

# ---- switch and back
ok "cap test switchd:switch VERSION=abc123" capx test switchd:switch VERSION=abc123 MESSAGE="go live"
expect_grep "switch .*--expect abc123" - "switch passes --expect VERSION"
expect_eq "live host answers green" "$(via_live)" green
expect_eq "history: the switch with MESSAGE" "$(ctlj history -n 1 | jget '["entries"][0]["message"]')" "go live"

ok "cap test switchd:back" capx test switchd:back
expect_eq "live host answers blue again" "$(via_live)" blue

ok "cap test switchd:status" capx test switchd:status
expect_grep "^hot +blue" - "status shows blue hot"
expect_grep "^cold +green +be_green +version abc123" - "status shows green cold at abc123"

ok "cap test switchd:history[3]" capx "test" "switchd:history[3]"
expect_grep "back +green -> blue" - "history shows the back"
ok "cap test switchd:hosts[hot]" capx test "switchd:hosts[hot]"
expect_eq "switchd:hosts[hot] prints the hot hosts" "$(printf '%s\n' "$OUT" | grep -v '^switchd: ')" "$(ctl hosts hot)"

# ---- lock and unlock tasks
ok "cap switchd:lock TTL=60" capx test switchd:lock TTL=60 MESSAGE="maintenance"
expect_eq "the lock is held with the message" "$(status_get '["lock"]["message"]')" maintenance
ok "cap switchd:unlock" capx test switchd:unlock
expect_eq "the lock is released" "$(status_get '["lock"]')" null

# ---- failed smoke checks fail cold_deploy
backend_ctl green "set?status=500" >/dev/null
nok "cap switchd:cold_deploy with a failing cold pool fails" capx test switchd:cold_deploy VERSION=bad1
expect_grep "switchd:cold_deploy failed: " - "cap names the task that failed"
expect_grep "500" - "the failed check's status is shown"
expect_eq "green is failed" "$(status_get '["pools"]["green"]["state"]')" failed
backend_ctl green reset >/dev/null

# ---- the after "deploy:finished" hook records :current_revision
ok "cap test deploy:finished (hook runs switchd:cold_deploy)" capx test deploy:finished FAKE_REVISION=r2def
expect_grep "fake deploy of r2def to 127\.0\.0\.1" - "the deploy ran on the cold role"
expect_eq "green is at the deployed revision" "$(status_get '["pools"]["green"]["version"]')" r2def
expect_eq "green is verified again" "$(status_get '["pools"]["green"]["state"]')" verified

# ---- a switch between role building and cold_deploy: refuse to verify
# The roles are built (cold = green) when the stage loads; the switch makes
# green hot; cold_deploy must not record r3 for blue, which cap never touched.
nok "cap switchd:switch switchd:cold_deploy: cold_deploy refuses" \
	capx test switchd:switch switchd:cold_deploy VERSION=r2def
expect_grep "cap deployed to the green pool.*cold pool is blue now" - "it says the pool changed under the deploy"
expect_eq "the switch itself went through" "$(via_live)" green
expect_ne "blue's version was not recorded" "$(status_get '["pools"]["blue"]["version"]')" r2def
ok "cap switchd:back" capx test switchd:back
expect_eq "back to blue" "$(via_live)" blue

# ---- an unreachable switchd fails the run (already when the roles are built)
TEST_SOCKET=$T/nonexistent.sock nok "cap with an unreachable switchd fails" capx test switchd:status
expect_grep "cannot reach switchd" - "cap shows switchctl's message"

# ---- run by switchd's own deploy.command: the hook stands aside
write_config "$SMOKE
deploy = { command = \"cd $P && timeout 30 cap test deploy:finished FAKE_REVISION=\$SWITCHD_VERSION\"; timeout = 60; };"
ok "ctl reload (deploy.command runs cap)" ctl reload
expect_ok cold-deploy -v r3 -m "switchd runs cap"
expect_eq "r3 verified through switchd's deploy.command" \
	"$(status_get 'd["pools"]["green"]["version"] + " " + d["pools"]["green"]["state"]')" "r3 verified"
E=$(ctlj history -n 3)
expect_eq "one cold-deploy in the history, not a nested one" \
	"$(jv "$E" 'sum(1 for e in d["entries"] if e["command"] == "cold-deploy" and e["message"] == "switchd runs cap")')" 1
SWITCHD_POOL=green SWITCHD_HOSTS="10.9.9.1 10.9.9.2" ok "show_cold_role under SWITCHD_POOL" \
	capx test switchd:show_cold_role
expect_eq "roles come from SWITCHD_HOSTS under switchd" \
	"$(printf '%s\n' "$OUT" | awk '$1 == "app" { print $2 }' | tr '\n' ' ')" "10.9.9.1 10.9.9.2 "
SWITCHD_POOL=green SWITCHD_HOSTS=127.0.0.1 ok "cold_deploy under SWITCHD_POOL is skipped" \
	capx test switchd:cold_deploy VERSION=nested
expect_grep "skipped" - "it says why it did nothing"
expect_eq "nothing recorded by the skipped cold_deploy" "$(status_get '["pools"]["green"]["version"]')" r3

ok "the project's log stayed in \$T" test -f "$P/log/capistrano.log"
t_done
