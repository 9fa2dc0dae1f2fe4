/*
 * drv-haproxy.c — the HAProxy runtime driver: flips the host map on every
 * node through the runtime API, without a reload.  What it shares with the
 * reload driver (the haproxy section, the map text, the fan-out, counters,
 * discovery's servers) is haproxy.c.
 *
 * A flip is two-phase across the nodes.  Phase 1, on every node at once:
 * show map (what it serves now) -> prepare map -> add map @VER live ->
 * add map @VER cold (and the same for the canary map, when there is one).
 * A failure there fails the switch with nothing changed anywhere: HAProxy
 * drops a version that is never committed.  Phase 2, only once every node
 * is ready, on every node at once: commit map @VER (main map, then canary
 * map), so the nodes change within one round trip of each other instead
 * of one after the other.  The commit swaps both keys in one step, so no
 * request ever sees both host names on one pool or a missing key.  If a
 * commit fails, the nodes that committed are flipped back to what each
 * served before, and the error names the node and HAProxy's own words.
 * Each node reads its map back right after its commit, and once every
 * node has, the map file is replaced atomically so that a reload or
 * restart of HAProxy keeps the new state.  Each node's flip talks on one
 * connection, from its first command to its read-back (hapx_sess_*:
 * HAProxy's interactive mode), with its commands pipelined: a commit costs
 * one round trip, not a connect as well, and the whole flip three.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "haproxy.h"
#include "hapx.h"
#include "log.h"
#include "protocol.h"
#include "run.h"
#include "util.h"

static const char *
hap_no_canary(const struct config *conf)
{
	if (conf->hap_canary_map == NULL)
		return "haproxy.canary_map is not set: a canary needs the canary map and "
		    "the canary frontend rules (see haproxy/haproxy.cfg)";
	return NULL;
}

/* The live host's canary value ("be_green:10") from "show map" of the canary map. */
static void
canary_parse(const struct config *conf, const char *reply, struct lb_mapping *m)
{
	struct lb_mapping c;

	hapx_parse_map(reply, conf->live_host, "", &c);
	snprintf(m->canary, sizeof(m->canary), "%s", c.live);
}

/* ----------------------------------------------------------------- observe */

struct observe_job {
	lb_view_cb	 cb;
	void		*arg;
};

static void
observe_done(struct fan *f)
{
	struct observe_job *job = f->arg;
	struct config *conf = f->lb->conf;
	struct lb_view *v = xcalloc(1, sizeof(*v));
	size_t n;
	char *err;

	v->nnodes = f->nnodes;
	v->nodes = xcalloc(f->nnodes, sizeof(*v->nodes));
	for (n = 0; n < f->nnodes; n++) {
		struct lb_node *node = &v->nodes[n];

		node->name = xstrdup(conf->hap_sockets[n]);
		node->ok = 1;
		if ((err = fan_error(f, n, 0)) != NULL) {
			node->ok = 0;
			snprintf(node->error, sizeof(node->error), "%s", err);
			free(err);
		} else {
			lb_node_set_map(node, hapx_parse_map(f->replies[n * f->ncmds],
			    conf->live_host, conf->cold_host, &node->map), "the map");
		}
		if ((err = fan_error(f, n, 1)) == NULL)
			node->servers = hapx_parse_stat(f->replies[n * f->ncmds + 1]);
		free(err);
		if (f->ncmds > 2 && node->ok) {
			if ((err = fan_error(f, n, 2)) != NULL) {
				node->ok = 0;
				snprintf(node->error, sizeof(node->error), "%s", err);
				free(err);
			} else
				canary_parse(conf, f->replies[n * f->ncmds + 2], &node->map);
		}
	}
	job->cb(v, job->arg);
	free(job);
	fan_free(f);
}

static void
hap_observe(struct lb *lb, lb_view_cb cb, void *arg)
{
	struct observe_job *job = xcalloc(1, sizeof(*job));
	char *showmap = xasprintf("show map %s", lb->conf->hap_map);
	char *showcanary = lb->conf->hap_canary_map ?
	    xasprintf("show map %s", lb->conf->hap_canary_map) : NULL;
	const char *cmds[] = { showmap, "show stat -1 4 -1", showcanary, NULL };

	job->cb = cb;
	job->arg = arg;
	fan_start(lb, (const char *const *)lb->conf->hap_sockets, lb->conf->hap_nsockets, "", "",
	    cmds, observe_done, job);
	free(showmap);
	free(showcanary);
}

/* ---------------------------------------------------------------- precheck */

struct precheck_job {
	struct lb	*lb;
	struct lb_mapping to;
	char		*target;
	int		 min_up;
	lb_done_cb	 cb;
	void		*arg;
};

/* The hand-over: an apply that follows at once talks on the checked connections. */
struct lent {
	struct hapx_sess **sess;	/* per node; apply takes them (NULL) */
};

/*
 * Tells the result.  On success the fan's connections, idle and just
 * proven, are lent to an apply started from the callback (a switch: the
 * intent record, then the flip), so the flip connects to no node; what it
 * does not take is closed after.
 */
static void
precheck_finish(struct precheck_job *job, struct fan *f, const char *code, const char *msg)
{
	struct lent lent = { f->sess };

	if (code == NULL)
		job->lb->lent = &lent;
	job->cb(code, msg, job->arg);
	job->lb->lent = NULL;
	fan_free(f);
	lb_unref(job->lb);
	free(job->target);
	free(job);
}

/* Each node's servers of the target backend: which node has too few UP. */
static void
precheck_detail_done(struct fan *f)
{
	struct precheck_job *job = f->arg;
	char msg[2048] = "", *err, *who;
	const char *code = E_REFUSED;
	json_t *stat;
	size_t n;

	for (n = 0; n < f->nnodes && msg[0] == '\0'; n++) {
		const char *node = f->lb->conf->hap_sockets[n];

		if ((err = fan_error(f, n, 0)) != NULL) {
			snprintf(msg, sizeof(msg), "node %s: %s", node, err);
			code = E_HAPROXY;
			free(err);
			break;
		}
		if ((stat = hapx_parse_stat(f->replies[n])) == NULL) {
			snprintf(msg, sizeof(msg), "node %s: \"show stat\" has no status "
			    "column", node);
			code = E_HAPROXY;
			break;
		}
		who = xasprintf("node %s", node);
		hapx_min_up_error(stat, job->target, job->min_up, who, msg, sizeof(msg));
		free(who);
		json_decref(stat);
	}
	precheck_finish(job, f, msg[0] ? code : NULL, msg[0] ? msg : NULL);
}

static void
precheck_done(struct fan *f)
{
	struct precheck_job *job = f->arg;
	struct config *conf = f->lb->conf;
	char msg[2048] = "", *err;
	const char *code = E_REFUSED;
	size_t n, i;
	int up, short_of_up = 0;
	struct lb_mapping cur;

	for (n = 0; n < f->nnodes && msg[0] == '\0'; n++) {
		const char *node = conf->hap_sockets[n];

		/* Transport first, then "show backend": without it nothing else means much. */
		for (i = 0; i < f->ncmds; i++)
			if (f->errors[n * f->ncmds + i] != NULL)
				break;
		if (i == f->ncmds)
			i = 0;
		if ((err = fan_error(f, n, i)) != NULL) {
			snprintf(msg, sizeof(msg), "node %s: %s", node, err);
			code = E_HAPROXY;
			free(err);
			break;
		}
		if (!hapx_has_backend(f->replies[n * 3], job->to.live)) {
			snprintf(msg, sizeof(msg), "node %s: backend %s does not exist "
			    "(show backend)", node, job->to.live);
			break;
		}
		if (!hapx_has_backend(f->replies[n * 3], job->to.cold)) {
			snprintf(msg, sizeof(msg), "node %s: backend %s does not exist "
			    "(show backend)", node, job->to.cold);
			break;
		}
		for (i = 1; i < f->ncmds; i++) {
			if ((err = fan_error(f, n, i)) != NULL) {
				snprintf(msg, sizeof(msg), "node %s: %s", node, err);
				code = E_HAPROXY;
				free(err);
				break;
			}
		}
		if (msg[0] != '\0')
			break;
		if (hapx_parse_map(f->replies[n * 3 + 2], conf->live_host,
		    conf->cold_host, &cur) == -1) {
			snprintf(msg, sizeof(msg), "node %s: map %s has a host name twice",
			    node, conf->hap_map);
			break;
		}
		up = hapx_backend_up(f->replies[n * 3 + 1], job->target);
		if (up == -1) {
			snprintf(msg, sizeof(msg), "node %s: \"show stat %s 2 -1\" has no "
			    "act/bck columns for it", node, job->target);
			code = E_HAPROXY;
			break;
		}
		if (up < job->min_up)
			short_of_up = 1;
	}
	if (msg[0] == '\0' && short_of_up) {
		/* Too few by HAProxy's count: ask for each server, to say which
		 * are not UP (and to count as status shows them). */
		char *showstat = xasprintf("show stat %s 4 -1", job->target);
		const char *cmds[] = { showstat, NULL };

		fan_free(f);
		fan_start(job->lb, (const char *const *)job->lb->conf->hap_sockets,
		    job->lb->conf->hap_nsockets, "", "", cmds, precheck_detail_done, job);
		free(showstat);
		return;
	}
	precheck_finish(job, f, msg[0] ? code : NULL, msg[0] ? msg : NULL);
}

static void
hap_precheck(struct lb *lb, const struct lb_mapping *to, const char *target,
    int min_up, lb_done_cb cb, void *arg)
{
	struct precheck_job *job = xcalloc(1, sizeof(*job));
	char *showmap = xasprintf("show map %s", lb->conf->hap_map);
	char *showstat = xasprintf("show stat %s 2 -1", target);
	const char *cmds[] = { "show backend", showstat, showmap, NULL };

	job->lb = lb_ref(lb);
	job->to = *to;
	job->target = xstrdup(target);
	job->min_up = min_up;
	job->cb = cb;
	job->arg = arg;
	fan_start(lb, (const char *const *)lb->conf->hap_sockets, lb->conf->hap_nsockets, "", "",
	    cmds, precheck_done, job);
	free(showmap);
	free(showstat);
}

/* ------------------------------------------------------ flip of one node */

/*
 * A node's flip in two phases, each ending at a stop where the node waits
 * for every other node (a switch: see apply below):
 *   prepare: show map (what it serves now), prepare map, add map @VER for
 *            both keys; the same for the canary map when there is one.
 *            Nothing is visible yet: HAProxy drops an uncommitted version.
 *   commit:  commit map @VER, then the canary map's, then show map (read
 *            back), and the canary map's.  The main map first: while the
 *            canary still names the new hot pool, every request already
 *            goes to it, so after the main commit none reaches the old
 *            pool (see "switch during a canary").
 * A solo flip (putting a node back) runs both without stopping.
 *
 * Commands are pipelined on the node's session (flip_ready): a step goes
 * out before the earlier ones are answered unless it needs one of their
 * answers (an add needs the version "prepare map" gave) or it makes a
 * change visible (a commit waits for every earlier step, so it is never
 * sent after a failure).  Reads and prepares change nothing anyone sees.
 * So the prepare phase is two round trips and the commit phase one (two
 * with a canary map).
 */
enum flip_step { F_READ, F_CREAD, F_PREPARE, F_CPREPARE, F_ADD_LIVE, F_ADD_COLD,
	F_CADD, F_PREPARED,
	F_COMMIT, F_CCOMMIT, F_VERIFY, F_CVERIFY, F_DONE };

struct flip {
	struct lb	*lb;
	size_t		 node;
	struct lb_mapping to;
	struct lb_mapping prev;		/* what the node served before */
	int		 has_prev;
	int		 committed;
	int		 uncertain;	/* the commit's fate is unknown (no answer) */
	int		 solo;		/* no stop between the phases */
	int		 failed;	/* told done(err): later answers are dropped */
	enum flip_step	 step;		/* the oldest step not answered yet */
	enum flip_step	 sent;		/* the next step to send */
	unsigned long	 ver;		/* of the main map */
	unsigned long	 cver;		/* of the canary map */
	char		*cmds[F_DONE];	/* sent and not answered yet */
	struct hapx_sess *sess;		/* one connection for the whole flip */
	/* At each stop (err NULL) and on a failure; then the flip waits. */
	void		(*done)(struct flip *, const char *err);
	void		*arg;
};

static void flip_send(struct flip *);
static enum flip_step flip_after(const struct flip *, enum flip_step);

static void
flip_reply(const char *reply, const char *err, void *arg)
{
	struct flip *fl = arg;
	const char *node = fl->lb->conf->hap_sockets[fl->node];
	struct config *conf = fl->lb->conf;
	enum flip_step at = fl->step;
	const char *cmd = fl->cmds[at];
	struct lb_mapping now;
	char *herr, *msg = NULL;

	if (fl->failed)
		return;
	if (err != NULL) {
		msg = xasprintf("node %s: \"%s\": %s", node, cmd, err);
		/* HAProxy may still run a commit it did not answer in time. */
		if (at == F_COMMIT || at == F_CCOMMIT)
			fl->uncertain = 1;
	}
	else if ((herr = hapx_reply_error(cmd, reply)) != NULL) {
		msg = xasprintf("node %s: \"%s\" failed: %s", node, cmd, herr);
		free(herr);
	} else switch (at) {
	case F_READ:
		fl->has_prev = hapx_parse_map(reply, conf->live_host, conf->cold_host,
		    &fl->prev) == 2;
		break;
	case F_CREAD:
		canary_parse(conf, reply, &fl->prev);
		break;
	case F_CVERIFY:
		canary_parse(conf, reply, &now);
		if (strcmp(now.canary, fl->to.canary) != 0)
			msg = xasprintf("node %s: read-back of %s shows %s -> %s after the "
			    "commit", node, conf->hap_canary_map, conf->live_host,
			    now.canary[0] ? now.canary : "(none)");
		break;
	case F_PREPARE:
	case F_CPREPARE:
		if (hapx_parse_version(reply, at == F_PREPARE ? &fl->ver : &fl->cver) == -1)
			msg = xasprintf("node %s: \"%s\": unexpected reply: %s", node,
			    cmd, reply);
		break;
	case F_COMMIT:
	case F_CCOMMIT:
		fl->committed = 1;
		break;
	case F_VERIFY:
		if (hapx_parse_map(reply, conf->live_host, conf->cold_host, &now) != 2 ||
		    strcmp(now.live, fl->to.live) != 0 || strcmp(now.cold, fl->to.cold) != 0)
			msg = xasprintf("node %s: read-back shows %s -> %s, %s -> %s "
			    "after the commit", node, conf->live_host,
			    now.live[0] ? now.live : "(none)", conf->cold_host,
			    now.cold[0] ? now.cold : "(none)");
		break;
	default:
		break;
	}
	free(fl->cmds[at]);
	fl->cmds[at] = NULL;
	if (msg != NULL) {
		fl->failed = 1;
		fl->done(fl, msg);
		free(msg);
		return;
	}
	fl->step = flip_after(fl, at);
	flip_send(fl);
}

/* Steps this flip has nothing to do at. */
static int
flip_skip(const struct flip *fl, enum flip_step s)
{
	const char *cmap = fl->lb->conf->hap_canary_map;

	switch (s) {
	case F_CREAD:
		return cmap == NULL;
	case F_CPREPARE:
	case F_CADD:
	case F_CCOMMIT:
	case F_CVERIFY:
		/* No canary map, or nothing to put in it. */
		return cmap == NULL || fl->to.canary[0] == '\0';
	case F_PREPARED:
		return fl->solo;
	default:
		return 0;
	}
}

/* The step after s that this flip has something to do at. */
static enum flip_step
flip_after(const struct flip *fl, enum flip_step s)
{
	do
		s++;
	while (s < F_DONE && flip_skip(fl, s));
	return s;
}

/* Can step s go out while the steps before it are not all answered? */
static int
flip_ready(const struct flip *fl, enum flip_step s)
{
	switch (s) {
	case F_ADD_LIVE:
	case F_ADD_COLD:
		return fl->step > F_PREPARE;	/* they need its version */
	case F_CADD:
		return fl->step > F_CPREPARE;
	case F_COMMIT:
	case F_CCOMMIT:
		return fl->step == s;		/* everything before went well */
	default:
		return 1;
	}
}

static char *
flip_cmd(const struct flip *fl, enum flip_step s)
{
	struct config *conf = fl->lb->conf;
	const char *map = conf->hap_map, *cmap = conf->hap_canary_map;

	switch (s) {
	case F_CREAD:
	case F_CVERIFY:
		return xasprintf("show map %s", cmap);
	case F_CPREPARE:
		return xasprintf("prepare map %s", cmap);
	case F_CADD:
		return xasprintf("add map @%lu %s %s %s", fl->cver, cmap,
		    conf->live_host, fl->to.canary);
	case F_CCOMMIT:
		return xasprintf("commit map @%lu %s", fl->cver, cmap);
	case F_READ:
	case F_VERIFY:
		return xasprintf("show map %s", map);
	case F_PREPARE:
		return xasprintf("prepare map %s", map);
	case F_ADD_LIVE:
		return xasprintf("add map @%lu %s %s %s", fl->ver, map,
		    conf->live_host, fl->to.live);
	case F_ADD_COLD:
		return xasprintf("add map @%lu %s %s %s", fl->ver, map,
		    conf->cold_host, fl->to.cold);
	case F_COMMIT:
		return xasprintf("commit map @%lu %s", fl->ver, map);
	default:
		return NULL;
	}
}

/* Sends every step that can go out now, or stops at the end of a phase. */
static void
flip_send(struct flip *fl)
{
	struct config *conf = fl->lb->conf;

	for (;;) {
		if (fl->sent == F_PREPARED || fl->sent == F_DONE) {
			if (fl->step == fl->sent)
				fl->done(fl, NULL);
			return;
		}
		if (!flip_ready(fl, fl->sent))
			return;
		if (fl->sess == NULL && (fl->sess = hapx_sess_new(fl->lb->base,
		    conf->hap_sockets[fl->node], conf->timeout_ms)) == NULL) {
			char *msg = xasprintf("node %s: bad socket address",
			    conf->hap_sockets[fl->node]);

			fl->failed = 1;
			fl->done(fl, msg);
			free(msg);
			return;
		}
		fl->cmds[fl->sent] = flip_cmd(fl, fl->sent);
		hapx_sess_cmd(fl->sess, fl->cmds[fl->sent], flip_reply, fl);
		fl->sent = flip_after(fl, fl->sent);
	}
}

/* Its connection closed: only between commands. */
static void
flip_free(struct flip *fl)
{
	size_t i;

	if (fl == NULL)
		return;
	hapx_sess_free(fl->sess);
	for (i = 0; i < F_DONE; i++)
		free(fl->cmds[i]);
	free(fl);
}

/* Past a stop, on to the next phase. */
static void
flip_resume(struct flip *fl)
{
	if (fl->step == F_PREPARED)
		fl->step = fl->sent = flip_after(fl, F_PREPARED);
	flip_send(fl);
}

static struct flip *
flip_new(struct lb *lb, size_t node, const struct lb_mapping *to, int solo,
    void (*done)(struct flip *, const char *), void *arg)
{
	struct flip *fl = xcalloc(1, sizeof(*fl));

	fl->lb = lb;
	fl->node = node;
	fl->to = *to;
	fl->solo = solo;
	fl->done = done;
	fl->arg = arg;
	fl->step = fl->sent = F_READ;
	return fl;
}

/* ------------------------------------------------------------------ apply */

/*
 * A switch runs each phase of the flip on every node at once, and the next
 * phase only when every node has finished the last: so the commits go out
 * together (the nodes change within one round trip of each other, not N),
 * and a failure before them leaves every node as it was.
 */
struct apply_job {
	struct lb	*lb;
	struct lb_mapping to;
	lb_done_cb	 cb;
	void		*arg;
	struct flip    **flips;		/* per node */
	char	       **errors;	/* per node, its failure in this phase */
	size_t		 pending;	/* nodes still in this phase (+1 while starting) */
	struct lb_mapping *prev;	/* per node, what it served */
	int		*changed;	/* per node, committed */
	char		*error;		/* the first failure */
	const char	*code;		/* its E_* (E_HAPROXY if NULL) */
	size_t		 undo;		/* node being put back */
	char		*undo_errors;
};

static void apply_undo_next(struct apply_job *);
static void apply_write_files(struct apply_job *);

static void
apply_finish(struct apply_job *job)
{
	size_t n;

	if (job->error != NULL && job->undo_errors != NULL) {
		char *msg = xasprintf("%s; putting the other nodes back failed too: %s "
		    "(the nodes now disagree: run switchctl sync or restart switchd)",
		    job->error, job->undo_errors);
		job->cb(job->code ? job->code : E_HAPROXY, msg, job->arg);
		free(msg);
	} else
		job->cb(job->error ? job->code ? job->code : E_HAPROXY : NULL, job->error,
		    job->arg);
	for (n = 0; n < job->lb->conf->hap_nsockets; n++) {
		flip_free(job->flips[n]);
		free(job->errors[n]);
	}
	free(job->flips);
	free(job->errors);
	free(job->prev);
	free(job->changed);
	free(job->error);
	free(job->undo_errors);
	lb_unref(job->lb);
	free(job);
}

static void
apply_undo_done(struct flip *fl, const char *err)
{
	struct apply_job *job = fl->arg;

	if (err != NULL) {
		char *old = job->undo_errors;

		log_warnx("rollback: %s", err);
		job->undo_errors = xasprintf("%s%s%s", old ? old : "", old ? "; " : "", err);
		free(old);
	} else
		log_info("rollback: node %s serves %s -> %s again",
		    job->lb->conf->hap_sockets[fl->node], job->lb->conf->live_host,
		    fl->to.live);
	flip_free(fl);
	job->undo++;
	apply_undo_next(job);
}

static void
apply_undo_next(struct apply_job *job)
{
	while (job->undo < job->lb->conf->hap_nsockets && !job->changed[job->undo])
		job->undo++;
	if (job->undo >= job->lb->conf->hap_nsockets) {
		apply_finish(job);
		return;
	}
	flip_send(flip_new(job->lb, job->undo, &job->prev[job->undo], 1,
	    apply_undo_done, job));
}

/* The switch failed: the nodes that committed are put back, one by one. */
static void
apply_fail(struct apply_job *job, const char *err)
{
	size_t n;

	log_warnx("switch failed: %s", err);
	/* The flips are over: their connections are of no more use. */
	for (n = 0; n < job->lb->conf->hap_nsockets; n++) {
		hapx_sess_free(job->flips[n]->sess);
		job->flips[n]->sess = NULL;
	}
	job->error = xstrdup(err);
	job->undo = 0;
	apply_undo_next(job);
}

/* Every node has reached the end of the phase (or failed in it). */
static void
apply_phase_done(struct apply_job *job)
{
	struct config *conf = job->lb->conf;
	enum flip_step at = F_DONE;
	const char *err = NULL;
	char why[1024];
	size_t n;

	for (n = 0; n < conf->hap_nsockets; n++) {
		struct flip *fl = job->flips[n];

		if (fl->step < at)
			at = fl->step;
		/* At the end of the commit phase: which nodes to put back. */
		if (fl->step >= F_COMMIT) {
			job->prev[n] = fl->prev;
			job->changed[n] = (fl->committed || fl->uncertain) && fl->has_prev;
			if ((fl->committed || fl->uncertain) && !fl->has_prev)
				log_warnx("node %s had no complete map before the switch; "
				    "it cannot be put back", conf->hap_sockets[n]);
		}
		/* The first node's failure, as when they went one by one. */
		if (err == NULL && job->errors[n] != NULL)
			err = job->errors[n];
	}
	if (err != NULL) {
		/* Before the commits nothing changed: nothing to put back. */
		apply_fail(job, err);
		return;
	}
	if (at == F_DONE) {
		apply_write_files(job);
		return;
	}
	/*
	 * cluster: an instance that lost its etcd lease (partitioned, or too
	 * slow) may no longer hold the lock: another one may be switching.
	 * Checked before the commits, so no node is touched; the check is
	 * the daemon's (lb->may_commit: cluster.c's lease), NULL without one.
	 */
	if (at == F_PREPARED && job->lb->may_commit != NULL &&
	    !job->lb->may_commit(job->lb->may_commit_arg, why, sizeof(why))) {
		log_warnx("%s", why);
		job->code = E_CLUSTER;
		apply_fail(job, why);
		return;
	}
	/* On to the next phase, on every node at once. */
	job->pending = conf->hap_nsockets + 1;
	for (n = 0; n < conf->hap_nsockets; n++)
		flip_resume(job->flips[n]);
	if (--job->pending == 0)
		apply_phase_done(job);
}

static void
apply_node_done(struct flip *fl, const char *err)
{
	struct apply_job *job = fl->arg;

	if (err != NULL)
		job->errors[fl->node] = xstrdup(err);
	if (--job->pending == 0)
		apply_phase_done(job);
}

/* Every node serves the new map: make a reload or restart keep it. */
static void
apply_write_files(struct apply_job *job)
{
	struct config *conf = job->lb->conf;
	char *text, *prev, *cprev = NULL;
	int prev_ok, cprev_ok = 1;

	/* The canary map's file first: on a failure, both files are put back. */
	if (conf->hap_canary_map != NULL && job->to.canary[0] != '\0') {
		errno = 0;
		cprev = file_read(conf->hap_canary_map);
		cprev_ok = cprev != NULL || errno == ENOENT;
		if (lb_canary_file_write(conf, &job->to) == -1) {
			char *msg = xasprintf("cannot write the canary map file %s: %s",
			    conf->hap_canary_map, strerror(errno));

			if (!cprev_ok || file_restore(conf->hap_canary_map, cprev) == -1)
				log_warn("the old canary map file %s could not be put back",
				    conf->hap_canary_map);
			free(cprev);
			apply_fail(job, msg);
			free(msg);
			return;
		}
	}
	text = hap_map_text(conf, &job->to);
	errno = 0;
	prev = file_read(conf->hap_map);
	prev_ok = prev != NULL || errno == ENOENT;
	if (file_write_atomic(conf->hap_map, text, strlen(text), 0644) == -1) {
		char *msg = xasprintf("cannot write the map file %s: %s", conf->hap_map,
		    strerror(errno));

		/*
		 * The rename may have happened before the directory fsync
		 * failed: the nodes are about to be put back, so the file
		 * must say what they will serve, or a reload would flip.
		 */
		if (!prev_ok || file_restore(conf->hap_map, prev) == -1)
			log_warn("switch failed and the old map file %s could not be put "
			    "back", conf->hap_map);
		if (conf->hap_canary_map != NULL && job->to.canary[0] != '\0' &&
		    (!cprev_ok || file_restore(conf->hap_canary_map, cprev) == -1))
			log_warn("the old canary map file %s could not be put back",
			    conf->hap_canary_map);
		free(cprev);
		free(prev);
		free(text);
		apply_fail(job, msg);
		free(msg);
		return;
	}
	free(cprev);
	free(prev);
	free(text);
	apply_finish(job);
}

static void
hap_apply(struct lb *lb, const struct lb_mapping *to, lb_done_cb cb, void *arg)
{
	struct apply_job *job = xcalloc(1, sizeof(*job));
	struct lent *lent = lb->lent;
	size_t n, nn = lb->conf->hap_nsockets;

	job->lb = lb_ref(lb);
	job->to = *to;
	job->cb = cb;
	job->arg = arg;
	job->flips = xcalloc(nn, sizeof(*job->flips));
	job->errors = xcalloc(nn, sizeof(*job->errors));
	job->prev = xcalloc(nn, sizeof(*job->prev));
	job->changed = xcalloc(nn, sizeof(int));
	for (n = 0; n < nn; n++) {
		job->flips[n] = flip_new(lb, n, to, 0, apply_node_done, job);
		/* Right after a precheck: its connection to the node. */
		if (lent != NULL && hapx_sess_usable(lent->sess[n])) {
			job->flips[n]->sess = lent->sess[n];
			lent->sess[n] = NULL;
		}
	}
	/* Phase 1 on every node; a bad address fails at once, so count the start. */
	job->pending = nn + 1;
	for (n = 0; n < nn; n++)
		flip_send(job->flips[n]);
	if (--job->pending == 0)
		apply_phase_done(job);
}

static size_t
hap_nnodes(const struct config *conf)
{
	return conf->hap_nsockets;
}

const struct lb_driver drv_haproxy_runtime = {
	.name = "haproxy-runtime",
	.product = "HAProxy",
	.error_code = E_HAPROXY,
	.section = "haproxy",
	.mode = "runtime",
	.keys = hap_keys,
	.conf_read = hap_conf_read,
	.conf_free = hap_conf_free,
	.nnodes = hap_nnodes,
	.observe = hap_observe,
	.precheck = hap_precheck,
	.apply = hap_apply,
	.map_file = hap_map_file,
	.map_text = hap_map_text,
	.why_no_canary = hap_no_canary,
	.stats = &hap_stats,
	.servers = &hap_servers,	/* haproxy.c */
};
