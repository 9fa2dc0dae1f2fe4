/*
 * drv-haproxy-reload.c — the HAProxy reload driver (haproxy.mode =
 * "reload"), for sites that cannot open a runtime socket to switchd: the
 * flip is a new map file and a reload of one HAProxy (one master).
 *
 * apply: write the map file atomically (keeping the old text) ->
 * "haproxy -c -f CONFIG" checks the whole configuration before anything is
 * reloaded -> reload (master CLI "reload", or haproxy.reload_command) ->
 * confirm: the master's reload answers before the new worker is up and
 * says nothing of a failure, so "show proc" is polled until a new worker is
 * listed (or the master counts a failed reload) -> the new worker's own
 * "show map" must say what was written.  Any failure puts the old map file
 * back and, once a reload was attempted, reloads again (best effort); the
 * error carries HAProxy's own words.
 *
 * observe and precheck ask the stats socket (haproxy.sockets, at most one)
 * if there is one, else the current worker through the master CLI ("@1
 * show map"), else they can only read the map file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "haproxy.h"
#include "hapx.h"
#include "lb-reload.h"
#include "log.h"
#include "protocol.h"
#include "run.h"
#include "util.h"

#define RELOAD_POLL_MS	100
#define MAX_WORKERS	64

/* ------------------------------------------------- where to ask HAProxy */

/*
 * The worker's CLI: its stats socket as is, or through the master with a
 * prefix ("@1 " the current worker, "@!PID " one worker by pid).  The
 * master keeps a connection open after a reply until the client says
 * "quit" (the stats socket closes by itself), so what goes to the master
 * ends with "; quit" (MASTER_END).
 */
#define MASTER_END	"; quit"

struct target {
	const char	*addr;		/* NULL: no socket at all */
	char		 prefix[32];
	const char	*suffix;
};

static void
target_current(const struct config *conf, struct target *t)
{
	t->prefix[0] = '\0';
	t->suffix = "";
	if (conf->hap_nsockets > 0)
		t->addr = conf->hap_sockets[0];
	else if (conf->master_socket != NULL) {
		t->addr = conf->master_socket;
		snprintf(t->prefix, sizeof(t->prefix), "@1 ");
		t->suffix = MASTER_END;
	} else
		t->addr = NULL;
}

/* ------------------------------------------- a few commands, in parallel */

/* Sends every cmd (NULL-ended) to the target at once: the one fan-out. */
static void
batch_start(struct lb *lb, const struct target *t, const char *const *cmds,
    void (*done)(struct fan *), void *arg)
{
	fan_start(lb, &t->addr, 1, t->prefix, t->suffix, cmds, done, arg);
}

/* Command i's failure, as this driver says it, or NULL. */
static char *
batch_error(struct fan *f, size_t i)
{
	char *herr, *msg;

	if (f->bad[0])
		return xasprintf("%s is not a socket address", f->addrs[0]);
	if (f->errors[i] != NULL)
		return xasprintf("\"%s\": %s", f->cmds[i], f->errors[i]);
	if ((herr = hapx_reply_error(f->cmds[i], f->replies[i])) == NULL)
		return NULL;
	msg = xasprintf("\"%s\" failed: %s", f->cmds[i], herr);
	free(herr);
	return msg;
}

/* The first failure, or NULL. */
static char *
batch_first_error(struct fan *f)
{
	char *err = NULL;
	size_t i;

	for (i = 0; i < f->ncmds && err == NULL; i++)
		err = batch_error(f, i);
	return err;
}

/* ----------------------------------------------------------------- observe */

struct observe_job {
	lb_view_cb	 cb;
	void		*arg;
	char		*name;
};

static struct lb_view *
view_one(const char *name)
{
	struct lb_view *v = xcalloc(1, sizeof(*v));

	v->nnodes = 1;
	v->nodes = xcalloc(1, sizeof(*v->nodes));
	v->nodes[0].name = xstrdup(name);
	return v;
}

static void
observe_done(struct fan *b)
{
	struct observe_job *job = b->arg;
	struct config *conf = b->lb->conf;
	struct lb_view *v = view_one(job->name);
	struct lb_node *node = &v->nodes[0];
	char *err;
	int found;

	if ((err = batch_error(b, 0)) != NULL)
		snprintf(node->error, sizeof(node->error), "%s", err);
	else {
		node->ok = 1;
		found = hapx_parse_map(b->replies[0], conf->live_host, conf->cold_host,
		    &node->map);
		lb_node_set_map(node, found, "the map");
	}
	free(err);
	if ((err = batch_error(b, 1)) == NULL)
		node->servers = hapx_parse_stat(b->replies[1]);
	free(err);
	job->cb(v, job->arg);
	free(job->name);
	free(job);
	fan_free(b);
}

static void
reload_observe(struct lb *lb, lb_view_cb cb, void *arg)
{
	struct config *conf = lb->conf;
	struct observe_job *job;
	struct target t;
	struct lb_view *v;
	char *showmap, *text;
	int found;

	target_current(conf, &t);
	if (t.addr == NULL) {
		/* No socket: what HAProxy loaded is what the file says. */
		v = view_one(conf->hap_map);
		if ((text = file_read(conf->hap_map)) == NULL)
			snprintf(v->nodes[0].error, sizeof(v->nodes[0].error),
			    "cannot read %s: %s", conf->hap_map, strerror(errno));
		else {
			v->nodes[0].ok = 1;
			found = lb_map_parse(text, 0, conf->live_host, conf->cold_host,
			    &v->nodes[0].map);
			lb_node_set_map(&v->nodes[0], found, "the map file");
		}
		free(text);
		cb(v, arg);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->cb = cb;
	job->arg = arg;
	job->name = xstrdup(t.addr);
	showmap = xasprintf("show map %s", conf->hap_map);
	{
		const char *cmds[] = { showmap, "show stat -1 4 -1", NULL };

		batch_start(lb, &t, cmds, observe_done, job);
	}
	free(showmap);
}

/* ---------------------------------------------------------------- precheck */

struct precheck_job {
	struct lb_mapping to;
	char		*target;
	int		 min_up;
	lb_done_cb	 cb;
	void		*arg;
	char		*name;
};

static void
precheck_done(struct fan *b)
{
	struct precheck_job *job = b->arg;
	char msg[2048] = "", *err;
	const char *code = E_REFUSED;
	json_t *stat = NULL;

	if ((err = batch_first_error(b)) != NULL) {
		snprintf(msg, sizeof(msg), "HAProxy %s: %s", job->name, err);
		code = E_HAPROXY;
	} else if (!hapx_has_backend(b->replies[0], job->to.live) ||
	    !hapx_has_backend(b->replies[0], job->to.cold)) {
		snprintf(msg, sizeof(msg), "HAProxy %s: backend %s does not exist "
		    "(show backend)", job->name,
		    hapx_has_backend(b->replies[0], job->to.live) ? job->to.cold : job->to.live);
	} else if ((stat = hapx_parse_stat(b->replies[1])) == NULL) {
		snprintf(msg, sizeof(msg), "HAProxy %s: \"show stat\" has no status column",
		    job->name);
		code = E_HAPROXY;
	} else {
		char *who = xasprintf("HAProxy %s", job->name);

		hapx_min_up_error(stat, job->target, job->min_up, who, msg, sizeof(msg));
		free(who);
	}
	json_decref(stat);
	free(err);
	job->cb(msg[0] ? code : NULL, msg[0] ? msg : NULL, job->arg);
	free(job->target);
	free(job->name);
	free(job);
	fan_free(b);
}

static void
reload_precheck(struct lb *lb, const struct lb_mapping *to, const char *target,
    int min_up, lb_done_cb cb, void *arg)
{
	const char *cmds[] = { "show backend", "show stat -1 4 -1", NULL };
	struct precheck_job *job;
	struct target t;

	target_current(lb->conf, &t);
	if (t.addr == NULL) {
		log_info("precheck: no stats or master socket: backend %s and min_up "
		    "are left to haproxy -c and the smoke checks", target);
		cb(NULL, NULL, arg);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->to = *to;
	job->target = xstrdup(target);
	job->min_up = min_up;
	job->cb = cb;
	job->arg = arg;
	job->name = xstrdup(t.addr);
	batch_start(lb, &t, cmds, precheck_done, job);
}

/* ------------------------------------------------------------------- apply */

/* What the master's "show proc" says. */
struct procs {
	int		 reloads;	/* the master's reload counter */
	int		 failed;	/* "[failed: N]", 0 if not shown */
	int		 nworkers;
	long		 workers[MAX_WORKERS];	/* current ones, not "old workers" */
};

/*
 *   #<PID>   <type>   <reloads>      <uptime>   <version>
 *   3401     master   1 [failed: 0]  0d00h00m12s 2.6.12
 *   # workers
 *   3420     worker   0              0d00h00m02s 2.6.12
 *   # old workers
 *   3402     worker   1              ...
 */
static int
procs_parse(const char *reply, struct procs *p)
{
	char *copy = xstrdup(reply ? reply : ""), *line, *save = NULL, *f;
	int section = 0, have_master = 0;	/* 0 top, 1 workers, 2 other */
	long pid;
	char type[32];

	memset(p, 0, sizeof(*p));
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#') {
			if (strncmp(line, "#<", 2) == 0)
				continue;
			section = strncmp(line, "# workers", 9) == 0 ? 1 : 2;
			continue;
		}
		if (sscanf(line, "%ld %31s", &pid, type) != 2)
			continue;
		if (strcmp(type, "master") == 0) {
			have_master = 1;
			f = line + strspn(line, "0123456789 \t");
			f += strlen("master");
			p->reloads = atoi(f);
			if ((f = strstr(line, "[failed:")) != NULL)
				p->failed = atoi(f + strlen("[failed:"));
		} else if (section == 1 && strcmp(type, "worker") == 0 &&
		    p->nworkers < MAX_WORKERS)
			p->workers[p->nworkers++] = pid;
	}
	free(copy);
	return have_master ? 0 : -1;
}

/* The first current worker that was not there before, or 0. */
static long
procs_new_worker(const struct procs *before, const struct procs *now)
{
	int i, j, seen;

	for (i = 0; i < now->nworkers; i++) {
		seen = 0;
		for (j = 0; j < before->nworkers; j++)
			seen |= now->workers[i] == before->workers[j];
		if (!seen)
			return now->workers[i];
	}
	return 0;
}

enum apply_step { A_SNAPSHOT, A_RELOAD, A_WAIT, A_VERIFY };

/* This driver's part of a reload (lb-reload.h): rl->to is what the new worker must serve. */
struct apply_job {
	struct lb_reload *rl;
	int		 verify;	/* rl->to is a complete mapping */
	enum apply_step	 step;
	struct procs	 before;
	long		 stats_pid;	/* stats socket's "Pid:" before */
	long		 new_pid;	/* the worker to verify (master socket) */
	double		 deadline;
	char		*last;		/* the last thing the poll saw, for messages */
	struct event	*timer;
};

static void apply_step_run(struct apply_job *);

static void
apply_free(void *arg)
{
	struct apply_job *job = arg;

	event_free(job->timer);
	free(job->last);
	free(job);
}

static void
apply_note(struct apply_job *job, const char *what)
{
	free(job->last);
	job->last = xstrdup(what);
}

static void
apply_poll_later(struct apply_job *job)
{
	struct timeval tv = { 0, RELOAD_POLL_MS * 1000 };

	if (now_ms() >= job->deadline) {
		if (job->step == A_WAIT)
			lb_reload_fail(job->rl, "no new HAProxy worker within %d ms of the reload "
			    "(last seen: %s)", job->rl->lb->conf->reload_timeout_ms,
			    job->last ? job->last : "nothing");
		else
			lb_reload_fail(job->rl, "the new HAProxy worker did not show the new map "
			    "within %d ms (last seen: %s)", job->rl->lb->conf->reload_timeout_ms,
			    job->last ? job->last : "nothing");
		return;
	}
	evtimer_add(job->timer, &tv);
}

static void
apply_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	apply_step_run(arg);
}

/* A_SNAPSHOT: who serves now, to know the new worker when it comes. */
static void
snapshot_reply(const char *reply, const char *err, void *arg)
{
	struct apply_job *job = arg;
	struct config *conf = job->rl->lb->conf;
	char *herr;

	if (err != NULL) {
		lb_reload_fail(job->rl, "HAProxy %s: %s", conf->master_socket ? conf->master_socket :
		    conf->hap_sockets[0], err);
		return;
	}
	if (conf->master_socket != NULL) {
		if (procs_parse(reply, &job->before) == -1) {
			lb_reload_fail(job->rl, "master socket %s: \"show proc\" lists no master: %s",
			    conf->master_socket, reply);
			return;
		}
	} else {
		const char *p = strstr(reply, "Pid:");

		if ((herr = hapx_reply_error("show info", reply)) != NULL || p == NULL) {
			lb_reload_fail(job->rl, "HAProxy %s: \"show info\": %s", conf->hap_sockets[0],
			    herr ? herr : "no Pid");
			free(herr);
			return;
		}
		job->stats_pid = atol(p + 4);
	}
	job->step = A_RELOAD;
	apply_step_run(job);
}

static void
reload_ran(int ok, const char *output, void *arg)
{
	struct apply_job *job = arg;

	if (!ok) {
		lb_reload_fail(job->rl, "haproxy.reload_command failed: %s", output);
		return;
	}
	if (job->rl->lb->conf->master_socket == NULL && job->rl->lb->conf->hap_nsockets == 0) {
		log_info("reload mode: no master or stats socket: the reload is not "
		    "confirmed beyond the exit status of haproxy.reload_command");
		lb_reload_finish(job->rl, NULL);
		return;
	}
	job->step = A_WAIT;
	apply_step_run(job);
}

static void
master_reloaded(const char *reply, const char *err, void *arg)
{
	struct apply_job *job = arg;

	/* HAProxy 2.6 closes the connection; later ones may say Success=0|1. */
	if (err == NULL && reply != NULL && strstr(reply, "Success=0") != NULL) {
		lb_reload_fail(job->rl, "HAProxy's master refused to reload: %s", reply);
		return;
	}
	if (err != NULL)
		log_info("reload mode: master socket %s after \"reload\": %s (checking "
		    "show proc)", job->rl->lb->conf->master_socket, err);
	job->step = A_WAIT;
	apply_step_run(job);
}

/* A_WAIT: until a new worker is up, or the master counts a failed reload. */
static void
wait_reply(const char *reply, const char *err, void *arg)
{
	struct apply_job *job = arg;
	struct config *conf = job->rl->lb->conf;
	struct procs now;
	const char *p;
	char seen[256];

	if (err != NULL) {
		/* The master re-executes itself: its socket refuses for a moment. */
		apply_note(job, err);
		apply_poll_later(job);
		return;
	}
	if (conf->master_socket == NULL) {
		if ((p = strstr(reply, "Pid:")) != NULL && atol(p + 4) != job->stats_pid) {
			job->step = A_VERIFY;
			apply_step_run(job);
			return;
		}
		snprintf(seen, sizeof(seen), "stats socket answered by the old worker, Pid %ld",
		    job->stats_pid);
		apply_note(job, seen);
		apply_poll_later(job);
		return;
	}
	if (procs_parse(reply, &now) == -1) {
		apply_note(job, reply);
		apply_poll_later(job);
		return;
	}
	snprintf(seen, sizeof(seen), "master reloads %d [failed: %d], %d current worker%s",
	    now.reloads, now.failed, now.nworkers, now.nworkers == 1 ? "" : "s");
	apply_note(job, seen);
	if (now.reloads > job->before.reloads) {
		if ((job->new_pid = procs_new_worker(&job->before, &now)) != 0) {
			job->step = A_VERIFY;
			apply_step_run(job);
			return;
		}
		if (now.failed > 0) {
			lb_reload_fail(job->rl, "HAProxy did not load the new configuration "
			    "(show proc: %s; HAProxy's log says why)", seen);
			return;
		}
	}
	apply_poll_later(job);
}

/* A_VERIFY: the new worker's own map. */
static void
verify_reply(const char *reply, const char *err, void *arg)
{
	struct apply_job *job = arg;
	struct config *conf = job->rl->lb->conf;
	struct lb_mapping now;
	char *herr = NULL, seen[512];

	if (err != NULL || (herr = hapx_reply_error("show map", reply)) != NULL) {
		/* A worker just forked may not answer yet. */
		snprintf(seen, sizeof(seen), "show map: %s", err ? err : herr);
		free(herr);
		apply_note(job, seen);
		apply_poll_later(job);
		return;
	}
	if (hapx_parse_map(reply, conf->live_host, conf->cold_host, &now) != 2 ||
	    strcmp(now.live, job->rl->to.live) != 0 || strcmp(now.cold, job->rl->to.cold) != 0) {
		lb_reload_fail(job->rl, "the new HAProxy worker serves %s -> %s, %s -> %s, "
		    "not the map written", conf->live_host, now.live[0] ? now.live : "(none)",
		    conf->cold_host, now.cold[0] ? now.cold : "(none)");
		return;
	}
	if (job->rl->rolling_back) {
		log_info("reload mode: rollback: HAProxy serves %s -> %s again",
		    conf->live_host, now.live);
		lb_reload_finish(job->rl, NULL);
		return;
	}
	log_info("reload mode: HAProxy%s serves %s -> %s, %s -> %s",
	    job->new_pid ? " (new worker)" : "", conf->live_host, now.live,
	    conf->cold_host, now.cold);
	lb_reload_finish(job->rl, NULL);
}

static void
apply_cmd(struct apply_job *job, const char *addr, const char *cmd, hapx_cb cb)
{
	if (hapx_cmd(job->rl->lb->base, addr, cmd, job->rl->lb->conf->timeout_ms, cb, job) == NULL)
		lb_reload_fail(job->rl, "%s is not a socket address", addr);
}

static void
apply_step_run(struct apply_job *job)
{
	struct config *conf = job->rl->lb->conf;
	char *cmd;

	switch (job->step) {
	case A_SNAPSHOT:
		if (conf->master_socket != NULL)
			apply_cmd(job, conf->master_socket, "show proc" MASTER_END,
			    snapshot_reply);
		else if (conf->hap_nsockets > 0)
			apply_cmd(job, conf->hap_sockets[0], "show info", snapshot_reply);
		else {
			job->step = A_RELOAD;
			apply_step_run(job);
		}
		break;
	case A_RELOAD:
		job->rl->reloaded = 1;
		job->deadline = now_ms() + conf->reload_timeout_ms;
		if (conf->reload_command != NULL) {
			if (run_shell(job->rl->lb->base, conf->reload_command, conf->reload_timeout_ms,
			    NULL, reload_ran, job) == -1)
				lb_reload_fail(job->rl, "cannot run haproxy.reload_command: %s",
				    strerror(errno));
		} else
			apply_cmd(job, conf->master_socket, "reload" MASTER_END,
			    master_reloaded);
		break;
	case A_WAIT:
		if (conf->master_socket != NULL)
			apply_cmd(job, conf->master_socket, "show proc" MASTER_END, wait_reply);
		else
			apply_cmd(job, conf->hap_sockets[0], "show info", wait_reply);
		break;
	case A_VERIFY:
		if (!job->verify) {
			log_info("reload mode: rollback: the old map file had no complete "
			    "map; not verified");
			lb_reload_finish(job->rl, NULL);
			break;
		}
		if (conf->master_socket != NULL) {
			cmd = xasprintf("@!%ld show map %s" MASTER_END, job->new_pid,
			    conf->hap_map);
			apply_cmd(job, conf->master_socket, cmd, verify_reply);
		} else {
			cmd = xasprintf("show map %s", conf->hap_map);
			apply_cmd(job, conf->hap_sockets[0], cmd, verify_reply);
		}
		free(cmd);
		break;
	}
}

/* haproxy -c said yes or no about the configuration with the new map. */
static void
check_ran(int ok, const char *output, void *arg)
{
	struct apply_job *job = arg;
	struct config *conf = job->rl->lb->conf;

	if (!ok) {
		lb_reload_fail(job->rl, "haproxy -c -f %s refused the configuration with the "
		    "new map, nothing was reloaded: %s", conf->hap_config, output);
		return;
	}
	lb_reload_tested(job->rl);
}

/* The map file is written: haproxy -c checks the whole configuration. */
static void
apply_test(struct lb_reload *rl)
{
	struct apply_job *job = rl->drv;
	struct config *conf = rl->lb->conf;
	char *bin, *cfg, *cmd;

	job->rl = rl;
	bin = shell_quote(conf->hap_binary);
	cfg = shell_quote(conf->hap_config);
	/* Not -q: that silences HAProxy's reasons too.  Its ALERTs say why. */
	cmd = xasprintf("%s -c -f %s", bin, cfg);
	if (run_shell(rl->lb->base, cmd, conf->reload_timeout_ms, "[ALERT]", check_ran,
	    job) == -1)
		lb_reload_fail(rl, "cannot run %s: %s", cmd, strerror(errno));
	free(bin);
	free(cfg);
	free(cmd);
}

/* Reload (the new map, or the old one back) and see the new worker serve it. */
static void
apply_reload(struct lb_reload *rl)
{
	struct apply_job *job = rl->drv;
	struct config *conf = rl->lb->conf;

	if (rl->rolling_back)
		job->verify = rl->prev != NULL && lb_map_parse(rl->prev, 0, conf->live_host,
		    conf->cold_host, &rl->to) == 2;
	job->step = A_SNAPSHOT;
	apply_step_run(job);
}

static const struct lb_reload_ops reload_ops = {
	.log = "reload mode",
	.product = "HAProxy",
	.file = "map file",
	.the_file = "the map file ",
	.old_file = "the old map file ",
	.test = apply_test,
	.reload = apply_reload,
	.free = apply_free,
};

static void
reload_apply(struct lb *lb, const struct lb_mapping *to, lb_done_cb cb, void *arg)
{
	struct apply_job *job = xcalloc(1, sizeof(*job));

	job->verify = 1;
	if ((job->timer = evtimer_new(lb->base, apply_timer, job)) == NULL)
		fatalx("out of memory");
	lb_reload_start(lb, &reload_ops, job, to, cb, arg);
}

static const char *
reload_no_canary(const struct config *conf)
{
	(void)conf;
	return "haproxy.mode \"reload\" cannot split traffic without a reload; a "
	    "canary needs haproxy.mode = \"runtime\" with haproxy.canary_map";
}

/* The haproxy section, read as for the runtime driver (drv-haproxy.c). */
const struct lb_driver drv_haproxy_reload = {
	.name = "haproxy-reload",
	.product = "HAProxy",
	.error_code = E_HAPROXY,
	.section = "haproxy",
	.mode = "reload",
	.keys = hap_keys,
	.conf_read = hap_conf_read,
	.conf_free = hap_conf_free,
	.nnodes = lb_one_node,
	.observe = reload_observe,
	.precheck = reload_precheck,
	.apply = reload_apply,
	.map_file = hap_map_file,
	.map_text = hap_map_text,
	.why_no_canary = reload_no_canary,
	/* Counters from its stats socket, when haproxy.sockets names one. */
	.stats = &hap_stats,
};
