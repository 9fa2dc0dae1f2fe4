/*
 * protocol.h — the switchd control protocol, shared by switchd and switchctl.
 *
 * Unix stream socket, newline-delimited JSON, one object per line both ways.
 *   request:  {"v": 1, "cmd": "switch", "args": {"message": "...", "force": false}}
 *   replies:  zero or more {"event": "...", ...} progress objects, then exactly
 *             one final {"ok": true, ...} or {"ok": false, "code": C, "error": "text"}.
 *
 * Bump SWITCHD_PROTO_VERSION if any name or meaning below changes: scripts
 * parse these keys.
 */
#ifndef SWITCHD_PROTOCOL_H
#define SWITCHD_PROTOCOL_H

#define SWITCHD_PROTO_VERSION	1
#define SWITCHD_MAX_LINE	(64 * 1024)	/* request line cap, newline included */
#define SWITCHD_DEFAULT_SOCKET	"/run/switchd/switchd.sock"
#define SWITCHD_DEFAULT_CONFIG	"/etc/switchd/switchd.conf"

/* Request keys. */
#define P_V		"v"
#define P_CMD		"cmd"
#define P_ARGS		"args"

/* Reply keys. */
#define P_OK		"ok"
#define P_CODE		"code"
#define P_ERROR		"error"
#define P_EVENT		"event"

/* Error codes (the "code" of a failed reply). */
#define E_USAGE		"usage"		/* bad request: unknown command, bad args */
#define E_PERM		"permission"	/* mutating command from a non-admin uid */
#define E_BUSY		"busy"		/* another mutating command is in flight */
#define E_LOCKED	"locked"	/* the deploy lock is held */
#define E_REFUSED	"refused"	/* pre-checks said no: pool not verified, too few UP */
#define E_HAPROXY	"haproxy"	/* a load balancer node failed or is unreachable */
#define E_SMOKE		"smoke_failed"	/* smoke checks or live tests failed */
#define E_DEPLOY	"deploy_failed"	/* deploy.command failed */
#define E_CONFIG	"config"	/* reload: the new config file is bad */
#define E_NOT_LOCKED	"not_locked"	/* unlock without a lock */
#define E_EC2		"ec2"		/* EC2 failed (sync); a switch never fails for EC2 */
#define E_INTERNAL	"internal"	/* disk full, state file unwritable... */
#define E_SHUTDOWN	"shutting_down"	/* daemon is exiting */
#define E_CLUSTER	"cluster"	/* etcd unreachable or without quorum, lease lost */

/* Pools and roles. */
#define POOL_BLUE	"blue"
#define POOL_GREEN	"green"
#define ROLE_HOT	"hot"
#define ROLE_COLD	"cold"

/* Cold-pool states (state.json and status). */
#define PS_EMPTY	"empty"
#define PS_DEPLOYING	"deploying"
#define PS_DEPLOYED	"deployed"
#define PS_VERIFYING	"verifying"
#define PS_VERIFIED	"verified"
#define PS_FAILED	"failed"

/*
 * Commands.  Arguments each takes (all optional unless said):
 *   status                  -
 *   hosts                   pool: "hot"|"cold"|"blue"|"green" (required)
 *   switch                  message, expect, force (bool), no_smoke (bool)
 *   back                    message
 *   history                 n (int, default 20)
 *   lock                    message, ttl (seconds, 0 = until unlocked)
 *   unlock                  force (bool)
 *   reload                  -
 *   cold-deploy             version, message, no_deploy (bool)
 *   smoke                   -
 *   sync                    -
 *   canary                  percent: "0".."99" (required), message, expect, no_smoke (bool)
 *   rollout                 steps ("10,25,50"), interval (seconds), message, expect
 * switch also takes bake (seconds the guard watches it; default guard.bake).
 */
#define A_POOL		"pool"
#define A_MESSAGE	"message"
#define A_EXPECT	"expect"
#define A_FORCE		"force"
#define A_NO_SMOKE	"no_smoke"
#define A_N		"n"
#define A_TTL		"ttl"
#define A_VERSION	"version"
#define A_NO_DEPLOY	"no_deploy"
#define A_PERCENT	"percent"
#define A_BAKE		"bake"
#define A_STEPS		"steps"
#define A_INTERVAL	"interval"

/*
 * Final reply payloads (besides "ok"):
 *   status:  hot, cold, hosts{live,cold}, pools{blue,green}{backend, version,
 *            state, since, by, servers[{name,address,status}]},
 *            nodes[{socket, ok, error, map{live,cold}}], lock, last_switch,
 *            busy, ec2{drift[]}
 *   hosts:   pool, hosts[]
 *   switch/back: from, to, hot, cold, nodes (count), took_ms
 *   history: entries[] newest first: time, uid, user, command, message,
 *            before{hot,cold}, after{hot,cold}, result, id
 *   lock:    lock{user, uid, message, since, ttl}
 *   cold-deploy: pool, version, state, checks[], summary
 *   smoke:   pool, passed (bool), checks[], summary
 *   sync:    hot, cold, nodes ("in sync"|"repaired"|...), ec2{result, drift[]}
 *   canary:  pool, percent, hot, cold, took_ms
 *   rollout: result ("switched"|"rolled back"|"aborted"), steps[], hot, cold, message
 *   status also has canary: null|{pool, percent, since} and
 *            guard: null|{kind, pool, since, until, responses, errors}
 *   status also has cluster: null|{name, prefix, connected, stale_seconds}
 *            (the cluster group; stale_seconds: since etcd last answered);
 *            in a cluster, history entries also have instance
 * Progress events: {"event":"step","text":"..."}.
 */
#define EV_STEP		"step"		/* {"text"}; a rollout's also {"step", "percent"} */
#define EV_CHECK	"check"		/* one smoke result: check, target, url, status, ms, passed, why */
#define EV_OUTPUT	"output"	/* a line of deploy/live-test output: source, stream, text */

#endif
