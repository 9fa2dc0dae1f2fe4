# scripts/capistrano/switchd.rb — Capistrano 3 tasks and role helpers that
# wrap switchctl(1), the client of switchd (blue-green switcher for HAProxy).
#
# In the Capfile, after `require "capistrano/setup"`:
#
#   require "/usr/local/share/switchd/capistrano/switchd.rb"
#   # or copy this file to lib/capistrano/tasks/switchd.rake
#
# Tasks (all run switchctl on the machine that runs cap, never over SSH):
#   switchd:status  switchd:hosts[POOL]  switchd:cold_deploy  switchd:smoke
#   switchd:switch  switchd:back  switchd:history[N]  switchd:lock  switchd:unlock
#
# Role helpers, for config/deploy/<stage>.rb:
#   switchd_roles :app, :web, pool: :cold, user: "deploy"   # a server per cold host
#   switchd_role  :cold_web                                 # role :cold_web, cold hosts
#   switchd_cold_hosts                                      # ["10.0.2.11", ...]
#
# Settings (set in config/deploy.rb; ENV in brackets is the default):
#   :switchd_switchctl  switchctl path          [SWITCHCTL, else "switchctl"]
#   :switchd_socket     switchd's socket         [SWITCHD_SOCKET, else switchctl's default]
#   :switchd_version    version to record        [VERSION, else :current_revision]
#   :switchd_message    message for the history  [MESSAGE, else "cap STAGE by USER"]
#   :switchd_expect     switch --expect          [EXPECT, else the version if known]
#   :switchd_no_deploy  cold-deploy --no-deploy  [true: cap did the deploy]
#   :switchd_lock_ttl   lock --ttl               [TTL]
#
# A failed switchctl fails the cap run with switchctl's own message.
# See README.md beside this file.

require "etc"
require "json"
require "open3"
require "shellwords"

module Switchd
  module Cap
    # switchctl exited non-zero (or could not be run): the message is
    # switchctl's own error text; exitstatus is switchctl's (1 refused or
    # failed, 2 usage, 3 switchd not reachable, 127 not found).
    class Failed < StandardError
      attr_reader :exitstatus, :argv

      def initialize(message, exitstatus, argv)
        super(message)
        @exitstatus = exitstatus
        @argv = argv
      end
    end

    module_function

    # run(argv): switchctl with stdout inherited (so that on a terminal
    # switchctl shows its progress lines while a deploy or smoke run is
    # under way) and stderr passed through and kept for the error message.
    def run(argv, cmd)
      $stdout.flush
      $stderr.flush
      errbuf = +""
      status = nil
      begin
        rd, wr = IO.pipe
        pid = Process.spawn(*argv, err: wr, in: :in, out: :out)
        wr.close
        begin
          while (chunk = rd.readpartial(4096))
            errbuf << chunk
            $stderr.write(chunk)
          end
        rescue EOFError
          nil
        end
        _, status = Process.wait2(pid)
      rescue SystemCallError => e
        raise Failed.new("cannot run #{argv.first}: #{e.message}" \
                         " (set :switchd_switchctl or SWITCHCTL)", 127, argv)
      ensure
        rd.close if rd && !rd.closed?
        wr.close if wr && !wr.closed?
      end
      check(argv, cmd, status, errbuf)
      true
    end

    # capture(argv): switchctl's stdout as a string (for `hosts`).
    def capture(argv, cmd)
      out, err, status = Open3.capture3(*argv)
    rescue SystemCallError => e
      raise Failed.new("cannot run #{argv.first}: #{e.message}" \
                       " (set :switchd_switchctl or SWITCHCTL)", 127, argv)
    else
      $stderr.write(err) unless status.success? || err.empty?
      check(argv, cmd, status, err)
      out
    end

    def check(argv, cmd, status, err)
      return if status.success?

      code = status.exitstatus || 128 + status.termsig.to_i
      raise Failed.new(error_text(cmd, err, code), code, argv)
    end

    # switchctl prints "switchctl: COMMAND: message" (or "switchctl:
    # message" when switchd cannot be reached) on stderr; keep the message.
    def error_text(cmd, err, code)
      lines = err.lines.map(&:strip).reject(&:empty?)
      line = lines.reverse.find { |l| l.start_with?("switchctl: ") } || lines.last
      msg = line.to_s.sub(/\Aswitchctl: /, "")
      msg = msg.sub(/\A#{Regexp.escape(cmd)}: /, "")
      msg = "no error message" if msg.empty?
      case code
      when 3 then "#{msg}; the socket is set by :switchd_socket or SWITCHD_SOCKET"
      when 2 then "#{msg} (usage error)"
      when 130 then "#{msg} (interrupted; switchd finishes the command on its own: see switchd:status)"
      else msg
      end
    end

    def blank?(v)
      v.nil? || (v.respond_to?(:empty?) && v.empty?)
    end

    # The first of the values that is set (ENV values may be empty strings).
    def first_set(*values)
      values.find { |v| !blank?(v) }
    end

    # Helpers for Capfiles, the stage files and the tasks below; mixed into
    # the top level as Capistrano's own DSL is.
    module DSL
      def switchd_switchctl_argv
        argv = [Switchd::Cap.first_set(fetch(:switchd_switchctl, nil), ENV["SWITCHCTL"], "switchctl").to_s]
        socket = Switchd::Cap.first_set(fetch(:switchd_socket, nil), ENV["SWITCHD_SOCKET"])
        argv += ["-s", socket.to_s] if socket
        argv
      end

      # switchd_switchctl("switch", "-m", msg): run it; raise
      # Switchd::Cap::Failed with switchctl's message if it fails.  With
      # `cap --dry-run` a command that changes something is only printed.
      def switchd_switchctl(*args, mutating: true)
        argv = switchd_switchctl_argv + args.map(&:to_s)
        $stdout.puts "switchd: $ #{argv.shelljoin}"
        if mutating && dry_run?
          $stdout.puts "switchd: (dry run: not run)"
          return true
        end
        Switchd::Cap.run(argv, args.first.to_s)
      end

      # The version to record and to --expect: VERSION, :switchd_version,
      # then the revision cap deployed (:current_revision), else nil.
      def switchd_version
        Switchd::Cap.first_set(ENV["VERSION"], fetch(:switchd_version, nil),
                               fetch(:current_revision, nil))&.to_s
      end

      def switchd_message
        Switchd::Cap.first_set(ENV["MESSAGE"], fetch(:switchd_message, nil)) ||
          "cap #{fetch(:stage, '?')} by #{switchd_user}"
      end

      def switchd_user
        Switchd::Cap.first_set(fetch(:local_user, nil), ENV["USER"], ENV["LOGNAME"]) ||
          (Etc.getpwuid(Process.uid)&.name rescue nil) || Process.uid.to_s
      end

      # switchd_pool_hosts(:cold) => {"pool" => "green", "hosts" => [...]}.
      # Under switchd's own deploy.command (SWITCHD_POOL and SWITCHD_HOSTS
      # set) the cold pool is the one switchd is deploying to.
      def switchd_pool_hosts(pool = :cold)
        pool = pool.to_s
        unless %w[cold hot blue green].include?(pool)
          raise ArgumentError, "switchd: pool must be cold, hot, blue or green, not #{pool.inspect}"
        end
        if pool == "cold" && !Switchd::Cap.blank?(ENV["SWITCHD_POOL"]) && ENV.key?("SWITCHD_HOSTS")
          return { "pool" => ENV["SWITCHD_POOL"], "hosts" => ENV["SWITCHD_HOSTS"].split }
        end
        out = Switchd::Cap.capture(switchd_switchctl_argv + ["--json", "hosts", pool], "hosts")
        reply = JSON.parse(out)
        hosts = Array(reply["hosts"])
        raise Switchd::Cap::Failed.new("switchd lists no server in the #{pool} pool", 1, []) if hosts.empty?
        { "pool" => reply["pool"].to_s, "hosts" => hosts }
      rescue JSON::ParserError => e
        raise Switchd::Cap::Failed.new("switchctl hosts #{pool}: unreadable reply: #{e.message}", 1, [])
      end

      # The hosts of a pool now (`switchctl hosts POOL`).
      def switchd_hosts(pool = :cold)
        switchd_pool_hosts(pool)["hosts"]
      end

      def switchd_cold_hosts
        switchd_hosts(:cold)
      end

      # switchd_roles(:app, :web, pool: :cold, user: "deploy", ...): a
      # `server HOST, roles: [:app, :web], user: "deploy", ...` for each host
      # of the pool.  Returns the hosts.
      def switchd_roles(*roles, pool: :cold, **properties)
        ph = switchd_pool_hosts(pool)
        switchd_remember_pool(pool, ph["pool"], roles)
        ph["hosts"].each { |host| server host, properties.merge(roles: roles.flatten) }
        ph["hosts"]
      end

      # switchd_role(:cold_web, pool: :cold, ...): `role :cold_web, HOSTS, ...`.
      def switchd_role(name, pool: :cold, **properties)
        ph = switchd_pool_hosts(pool)
        switchd_remember_pool(pool, ph["pool"], [name])
        role name, ph["hosts"], properties
        ph["hosts"]
      end

      # Run a task body; a switchctl failure fails the cap run with
      # switchctl's message, prefixed with the task's name.
      def switchd_task(name)
        yield
      rescue Switchd::Cap::Failed => e
        raise Switchd::Cap::Failed.new("#{name} failed: #{e.message}", e.exitstatus, e.argv), cause: nil
      end

      # Remember which pool (blue/green) the roles were built from, so that
      # switchd:cold_deploy can refuse to verify (and record the version
      # for) a pool other than the one cap deployed to, should someone have
      # switched while cap was deploying.  A role on the hot pool is an
      # explicit choice and is not checked.
      def switchd_remember_pool(spec, pool, roles)
        return if spec.to_s == "hot"

        set :switchd_deployed_pools, fetch(:switchd_deployed_pools, {}).merge(pool => roles.flatten)
      end
    end
  end
end

include Switchd::Cap::DSL # rubocop:disable Style/MixinUsage

namespace :load do
  task :defaults do
    set_if_empty :switchd_switchctl, -> { ENV["SWITCHCTL"] || "switchctl" }
    set_if_empty :switchd_socket, -> { ENV["SWITCHD_SOCKET"] }
    set_if_empty :switchd_no_deploy, true
  end
end

namespace :switchd do
  desc "Show switchd's status: hot and cold pool, versions, servers, lock"
  task :status do
    switchd_task("switchd:status") { switchd_switchctl("status", mutating: false) }
  end

  desc "Print the hosts of a pool (cold, hot, blue, green; default cold)"
  task :hosts, [:pool] do |_t, args|
    switchd_task("switchd:hosts") do
      switchd_switchctl("hosts", (args[:pool] || ENV["POOL"] || "cold").to_s, mutating: false)
    end
  end

  desc "Verify the cold pool at the deployed revision (switchctl cold-deploy)"
  task :cold_deploy do
    if !Switchd::Cap.blank?(ENV["SWITCHD_POOL"])
      # This cap run is switchd's deploy.command: switchd holds the deploy
      # lock and verifies the pool itself when the deploy returns.
      $stdout.puts "switchd:cold_deploy: skipped: run by switchd's cold-deploy " \
                   "(SWITCHD_POOL=#{ENV['SWITCHD_POOL']}), which verifies the pool itself"
      next
    end
    switchd_task("switchd:cold_deploy") do
      version = switchd_version
      if version.nil?
        raise Switchd::Cap::Failed.new(
          "no version to record: run it after deploy (:current_revision), " \
          "set :switchd_version, or pass VERSION=", 2, []
        )
      end
      deployed = fetch(:switchd_deployed_pools, {})
      unless deployed.empty?
        cold = switchd_pool_hosts(:cold)["pool"]
        stale = deployed.keys - [cold]
        unless stale.empty?
          raise Switchd::Cap::Failed.new(
            "cap deployed to the #{stale.join(', ')} pool (roles #{deployed.values_at(*stale).flatten.join(', ')}), " \
            "but the cold pool is #{cold} now: someone switched during the deploy; " \
            "nothing was verified (see switchd:status and switchd:history)", 1, []
          )
        end
      end
      args = ["cold-deploy", "-v", version, "-m", switchd_message]
      args << "--no-deploy" if fetch(:switchd_no_deploy, true)
      switchd_switchctl(*args)
    end
  end

  desc "Run the smoke checks against the cold pool now"
  task :smoke do
    switchd_task("switchd:smoke") { switchd_switchctl("smoke", mutating: false) }
  end

  desc "Put the cold pool live (switchctl switch --expect VERSION)"
  task :switch do
    switchd_task("switchd:switch") do
      args = ["switch", "-m", switchd_message]
      expect = if ENV.key?("EXPECT") then ENV["EXPECT"] # EXPECT= turns it off
               else Switchd::Cap.first_set(fetch(:switchd_expect, nil), switchd_version)
               end
      args += ["--expect", expect.to_s] unless Switchd::Cap.blank?(expect)
      args << "--force" if Switchd::Cap.first_set(ENV["FORCE"], fetch(:switchd_force, nil)).to_s =~ /\A(1|true|yes)\z/i
      args << "--no-smoke" if Switchd::Cap.first_set(ENV["NO_SMOKE"], fetch(:switchd_no_smoke, nil)).to_s =~ /\A(1|true|yes)\z/i
      switchd_switchctl(*args)
    end
  end

  desc "Flip back to the previous hot pool at once"
  task :back do
    switchd_task("switchd:back") { switchd_switchctl("back", "-m", switchd_message) }
  end

  desc "Show switchd's history, newest first (N entries, default 20)"
  task :history, [:n] do |_t, args|
    switchd_task("switchd:history") do
      n = Switchd::Cap.first_set(args[:n], ENV["N"])
      switchd_switchctl("history", *(n ? ["-n", n] : []), mutating: false)
    end
  end

  desc "Hold the deploy lock (MESSAGE=, TTL=seconds)"
  task :lock, [:ttl] do |_t, args|
    switchd_task("switchd:lock") do
      ttl = Switchd::Cap.first_set(args[:ttl], ENV["TTL"], fetch(:switchd_lock_ttl, nil))
      switchd_switchctl("lock", "-m", switchd_message, *(ttl ? ["--ttl", ttl] : []))
    end
  end

  desc "Release the deploy lock (FORCE=1: anyone's)"
  task :unlock do
    switchd_task("switchd:unlock") do
      force = ENV["FORCE"].to_s =~ /\A(1|true|yes)\z/i
      switchd_switchctl("unlock", *(force ? ["--force"] : []))
    end
  end
end
