# scripts/rake/switchd.rake — rake tasks that wrap switchctl(1), the client of
# switchd (blue-green switcher for HAProxy), for teams that deploy with rake.
#
# In a Rakefile:   import "/usr/local/share/switchd/rake/switchd.rake"
#             or:  load "lib/tasks/switchd.rake"   (Rails: copy it to lib/tasks/)
#
#   rake switchd:status
#   rake switchd:hosts[cold]                      cold|hot|blue|green
#   rake switchd:cold_deploy[VERSION,MESSAGE]     NO_DEPLOY=1: --no-deploy
#   rake switchd:smoke
#   rake switchd:switch[EXPECT,MESSAGE]           FORCE=1, NO_SMOKE=1
#   rake switchd:back[MESSAGE]
#   rake switchd:history[N]
#   rake switchd:lock[MESSAGE,TTL]
#   rake switchd:unlock                           FORCE=1: anyone's lock
#
# Every argument may also be given in the environment: VERSION, MESSAGE,
# EXPECT (switch: default VERSION; EXPECT= with no value: no --expect), N,
# TTL, POOL; SWITCHCTL is the switchctl to run (default: switchctl in PATH),
# SWITCHD_SOCKET switchd's socket (default: switchctl's).  A task argument
# wins over the environment.
#
# When switchctl fails, rake stops with switchctl's error message and exits
# with switchctl's status (1 refused or failed, 2 usage, 3 switchd not
# reachable).  See README.md beside this file.

require "etc"
require "json"
require "open3"
require "shellwords"

module Switchd
  module RakeTasks
    # switchctl exited non-zero (or could not be run).
    class Failed < StandardError
      attr_reader :exitstatus

      def initialize(message, exitstatus = 1)
        super(message)
        @exitstatus = exitstatus
      end
    end

    TRUE_RE = /\A(1|true|yes|on)\z/i.freeze

    module_function

    def blank?(v)
      v.nil? || (v.respond_to?(:empty?) && v.empty?)
    end

    # The first value that is set (task arguments and ENV may be "").
    def first_set(*values)
      values.find { |v| !blank?(v) }
    end

    def flag?(name)
      ENV[name].to_s =~ TRUE_RE ? true : false
    end

    def switchctl_argv
      argv = [first_set(ENV["SWITCHCTL"], "switchctl")]
      socket = first_set(ENV["SWITCHD_SOCKET"])
      argv += ["-s", socket] if socket
      argv
    end

    def user
      first_set(ENV["USER"], ENV["LOGNAME"]) ||
        (Etc.getpwuid(Process.uid)&.name rescue nil) || Process.uid.to_s
    end

    # The message for switchd's history: the argument, MESSAGE, else
    # "rake TASK by USER".
    def message(task, arg = nil)
      first_set(arg, ENV["MESSAGE"]) || "rake #{task} by #{user}"
    end

    # run("switch", "-m", msg): switchctl with stdout inherited (on a
    # terminal switchctl prints its progress lines as a deploy or smoke run
    # goes) and stderr passed through and kept for the error message.
    def run(*args)
      argv = switchctl_argv + args.map(&:to_s)
      $stderr.puts argv.shelljoin unless Rake::FileUtilsExt.verbose_flag == false
      $stdout.flush
      $stderr.flush
      errbuf = +""
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
        raise Failed.new("cannot run #{argv.first}: #{e.message} (set SWITCHCTL)", 127)
      ensure
        rd.close if rd && !rd.closed?
        wr.close if wr && !wr.closed?
      end
      check(args.first.to_s, status, errbuf)
      true
    end

    # hosts(:cold) => ["10.0.2.11", ...]: the hosts of a pool now, for
    # Rakefiles that deploy to them.
    def hosts(pool = :cold)
      argv = switchctl_argv + ["hosts", pool.to_s]
      out, err, status = Open3.capture3(*argv)
      check("hosts", status, err)
      out.split
    rescue SystemCallError => e
      raise Failed.new("cannot run #{argv.first}: #{e.message} (set SWITCHCTL)", 127)
    end

    def check(cmd, status, err)
      return if status.success?

      code = status.exitstatus || 128 + status.termsig.to_i
      raise Failed.new(error_text(cmd, err, code), code)
    end

    # switchctl says "switchctl: COMMAND: message" (or "switchctl: message"
    # when it cannot reach switchd) on stderr; keep the message.
    def error_text(cmd, err, code)
      lines = err.lines.map(&:strip).reject(&:empty?)
      line = lines.reverse.find { |l| l.start_with?("switchctl: ") } || lines.last
      msg = line.to_s.sub(/\Aswitchctl: /, "").sub(/\A#{Regexp.escape(cmd)}: /, "")
      msg = "switchctl exited #{code} without a message" if msg.empty?
      case code
      when 3 then "#{msg}; the socket is set by SWITCHD_SOCKET"
      when 2 then "#{msg} (usage error)"
      when 130 then "#{msg} (interrupted; switchd finishes the command on its own: see rake switchd:status)"
      else msg
      end
    end

    # task_body("switchd:switch") { ... }: a switchctl failure stops rake
    # with switchctl's message and exit status.
    def task_body(name)
      yield
    rescue Failed => e
      $stderr.puts "rake #{name} failed: #{e.message}"
      exit(e.exitstatus.between?(1, 255) ? e.exitstatus : 1)
    end
  end
end

namespace :switchd do
  sd = Switchd::RakeTasks

  desc "Show switchd's status: hot and cold pool, versions, servers, lock"
  task :status do
    sd.task_body("switchd:status") { sd.run("status") }
  end

  desc "Print the hosts of a pool: cold (default), hot, blue or green"
  task :hosts, [:pool] do |_t, args|
    sd.task_body("switchd:hosts") { sd.run("hosts", sd.first_set(args[:pool], ENV["POOL"], "cold")) }
  end

  desc "Deploy VERSION to the cold pool and verify it (NO_DEPLOY=1: only verify)"
  task :cold_deploy, [:version, :message] do |_t, args|
    sd.task_body("switchd:cold_deploy") do
      version = sd.first_set(args[:version], ENV["VERSION"])
      unless version
        raise sd::Failed.new("no version to record: rake switchd:cold_deploy[VERSION] " \
                             "or VERSION=... (e.g. VERSION=$(git rev-parse --short HEAD))", 2)
      end
      argv = ["cold-deploy", "-v", version, "-m", sd.message("switchd:cold_deploy", args[:message])]
      argv << "--no-deploy" if sd.flag?("NO_DEPLOY")
      sd.run(*argv)
    end
  end

  desc "Run the smoke checks against the cold pool now"
  task :smoke do
    sd.task_body("switchd:smoke") { sd.run("smoke") }
  end

  desc "Put the cold pool live (EXPECT or VERSION: --expect; FORCE=1, NO_SMOKE=1)"
  task :switch, [:expect, :message] do |_t, args|
    sd.task_body("switchd:switch") do
      expect = if !sd.blank?(args[:expect]) then args[:expect]
               elsif ENV.key?("EXPECT") then ENV["EXPECT"] # EXPECT= turns it off
               else ENV["VERSION"]
               end
      argv = ["switch", "-m", sd.message("switchd:switch", args[:message])]
      argv += ["--expect", expect] unless sd.blank?(expect)
      argv << "--force" if sd.flag?("FORCE")
      argv << "--no-smoke" if sd.flag?("NO_SMOKE")
      sd.run(*argv)
    end
  end

  desc "Flip back to the previous hot pool at once"
  task :back, [:message] do |_t, args|
    sd.task_body("switchd:back") { sd.run("back", "-m", sd.message("switchd:back", args[:message])) }
  end

  desc "Show switchd's history, newest first (N entries, default 20)"
  task :history, [:n] do |_t, args|
    sd.task_body("switchd:history") do
      n = sd.first_set(args[:n], ENV["N"])
      sd.run("history", *(n ? ["-n", n] : []))
    end
  end

  desc "Hold the deploy lock (TTL in seconds; default: until unlock)"
  task :lock, [:message, :ttl] do |_t, args|
    sd.task_body("switchd:lock") do
      ttl = sd.first_set(args[:ttl], ENV["TTL"])
      sd.run("lock", "-m", sd.message("switchd:lock", args[:message]), *(ttl ? ["--ttl", ttl] : []))
    end
  end

  desc "Release the deploy lock (FORCE=1: anyone's)"
  task :unlock do
    sd.task_body("switchd:unlock") { sd.run("unlock", *(sd.flag?("FORCE") ? ["--force"] : [])) }
  end
end
