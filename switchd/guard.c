/*
 * guard.c — guarded release: the canary split as state.json and HAProxy's
 * canary map see it, and the guard.
 *
 * The guard watches one pool: the new hot pool for guard.bake seconds
 * after a switch, or the cold pool while a canary runs.  Every interval_ms
 * it reads "show stat BACKEND 2 -1" on every node, adds up the deltas of
 * the backend's responses and 5xx, and once a window holds min_requests
 * responses it judges it: a 5xx share above max_5xx_percent sends the
 * traffic back (a switch is undone, a canary set to 0), as user "switchd",
 * with one journal entry; then the guard stops, so it never flaps.  A
 * sample in which any node does not answer is no evidence: no verdict.
 * Its window (kind, pool, until) is in state.json, so a restart resumes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "guard.h"
#include "lb.h"
#include "log.h"
#include "protocol.h"
#include "state.h"
#include "util.h"

static void guard_begin(struct daemon *, enum guard_kind, int pool, time_t until);
static void guard_clear(struct daemon *);

/* --------------------------------------------------------------- canary */

json_t *
canary_json(struct daemon *d)
{
	json_t *c = state_canary(d->state);

	if (c == NULL || json_integer_value(json_object_get(c, "percent")) <= 0)
		return json_null();
	return json_pack("{s:O, s:O, s:O}", "pool", json_object_get(c, "pool"),
	    "percent", json_object_get(c, "percent"), "since", json_object_get(c, "since"));
}

const char *
guard_unsupported(const struct config *conf)
{
	return conf->drv->why_no_canary(conf);
}

struct canary_op {
	struct daemon	*d;
	struct op_who	 who;		/* user and message are copies */
	char		 user[64];
	char		*message;
	int		 percent, cold;
	char		*command;
	double		 t0;
	switch_cb		 cb;
	void		*arg;
};

static void
canary_failed_view(struct lb_view *v, void *arg)
{
	struct daemon *d = arg;
	size_t i;
	int agree = 1;

	for (i = 0; i < v->nnodes; i++)
		if (lb_node_serves(d->conf, d->state, &v->nodes[i]) != state_hot(d->state))
			agree = 0;
	lb_view_free(v);
	if (!agree)
		repair_schedule(d, "the nodes disagree after a failed canary change");
}

static void
canary_applied(const char *code, const char *error, void *arg)
{
	struct canary_op *op = arg;
	struct daemon *d = op->d;
	json_t *doc = state_doc(d->state), *e;
	char when[32];

	e = journal_entry(&op->who, op->command, state_hot(d->state),
	    state_hot(d->state), code ? "failed" : "ok", code ? error : NULL);
	json_object_set_new(e, "canary", json_string(pool_name(op->cold)));
	json_object_set_new(e, "percent", json_integer(op->percent));
	json_object_set_new(e, "took_ms", json_integer((json_int_t)(now_ms() - op->t0)));
	if (code != NULL) {
		history_append(d->state, e);
		/* If putting a node back failed too, the repair makes them agree. */
		d->lb->drv->observe(d->lb, canary_failed_view, d);
		op->cb(0, code, error, op->arg);
		goto out;
	}
	history_append(d->state, e);
	if (op->percent > 0) {
		iso_time(time(NULL), when, sizeof(when));
		if (state_canary_percent(d->state, op->cold) > 0)
			snprintf(when, sizeof(when), "%s", json_string_value(json_object_get(
			    state_canary(d->state), "since")));
		json_object_set_new(doc, "canary", json_pack("{s:s, s:i, s:s}", "pool",
		    pool_name(op->cold), "percent", op->percent, "since", when));
		if (guard_can_watch(d->conf))
			guard_begin(d, GUARD_CANARY, op->cold, 0);
	} else {
		json_object_set_new(doc, "canary", json_null());
		guard_clear(d);
	}
	log_info("%s: %d %% of %s on %s, by %s", op->command, op->percent,
	    d->conf->live_host, pool_name(op->cold), op->who.user);
	if (state_save(d->state) == -1)
		log_warnx("the canary is set but the state file could not be written; "
		    "switchd puts the nodes back to the state file's split at its next start");
	op->cb(1, NULL, NULL, op->arg);
out:
	free(op->command);
	free(op->message);
	free(op);
}

void
canary_set(struct daemon *d, const struct op_who *who, int percent, const char *command,
    switch_cb cb, void *arg)
{
	struct canary_op *op = xcalloc(1, sizeof(*op));
	struct lb_mapping to;
	int hot = state_hot(d->state);

	op->d = d;
	who_keep(&op->who, op->user, sizeof(op->user), &op->message, who);
	op->percent = percent;
	op->cold = !hot;
	op->command = xstrdup(command);
	op->t0 = now_ms();
	op->cb = cb;
	op->arg = arg;
	lb_mapping_for(d->conf, d->state, hot, &to);
	snprintf(to.canary, sizeof(to.canary), "%s:%d", d->conf->pools[!hot].backend, percent);
	who_progress(who, "setting %d %% of %s on %s (%s)", percent, d->conf->live_host,
	    pool_name(!hot), to.canary);
	d->lb->drv->apply(d->lb, &to, canary_applied, op);
}

/* ---------------------------------------------------------------- guard */

struct guard_node {
	struct lb_req	*req;
	const struct lb_stats *stats;	/* req's driver */
	int		 have;		/* a baseline */
	int		 answered;	/* this sample */
	long long	 resp, err;	/* baseline */
	long long	 nresp, nerr;	/* this sample */
	struct daemon	*d;		/* whose guard asked */
};

static struct {
	int		 active;
	enum guard_kind	 kind;
	int		 pool;
	time_t		 until;
	struct event	*timer;
	struct guard_node *nodes;
	size_t		 nnodes, pending;
	long long	 win_resp, win_err, tot_resp, tot_err;
	double		 win_start;
	int		 acting;
	char		 why[256];
	guard_verdict_cb hook;
	void		*hook_arg;
	int		 warned;	/* a node did not answer: said once */
} g;

static void guard_tick(evutil_socket_t, short, void *);

int
guard_can_watch(const struct config *conf)
{
	return conf->drv->stats != NULL && conf->drv->stats->nnodes(conf) > 0;
}

void
guard_set_hook(guard_verdict_cb cb, void *arg)
{
	g.hook = cb;
	g.hook_arg = arg;
}

static void
guard_arm(struct daemon *d, int ms)
{
	struct timeval tv;

	if (g.timer == NULL)
		g.timer = evtimer_new(d->base, guard_tick, d);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(g.timer, &tv);
}

static void
guard_cancel_sample(void)
{
	size_t i;

	for (i = 0; i < g.nnodes; i++)
		if (g.nodes[i].req != NULL) {
			g.nodes[i].stats->cancel(g.nodes[i].req);
			g.nodes[i].req = NULL;
		}
	g.pending = 0;
}

/* Stop watching, in memory and in the state document (the caller saves). */
static void
guard_clear(struct daemon *d)
{
	guard_cancel_sample();
	if (g.timer != NULL)
		evtimer_del(g.timer);
	g.active = 0;
	g.acting = 0;
	json_object_set_new(state_doc(d->state), "guard", json_null());
}

static void
guard_start_sampling(struct daemon *d, enum guard_kind kind, int pool, time_t until)
{
	guard_cancel_sample();
	g.active = 1;
	g.acting = 0;
	g.kind = kind;
	g.pool = pool;
	g.until = until;
	g.win_resp = g.win_err = g.tot_resp = g.tot_err = 0;
	g.win_start = now_ms();
	g.warned = 0;
	free(g.nodes);
	g.nnodes = 0;
	g.nodes = NULL;
	guard_arm(d, 0);	/* the baseline, now */
}

/* Watch pool; until is 0 while a canary runs.  The caller saves the state. */
static void
guard_begin(struct daemon *d, enum guard_kind kind, int pool, time_t until)
{
	char since[32], untils[32];

	iso_time(time(NULL), since, sizeof(since));
	iso_time(until, untils, sizeof(untils));
	json_object_set_new(state_doc(d->state), "guard", json_pack(
	    "{s:s, s:s, s:s, s:s?, s:I}", "kind", kind == GUARD_BAKE ? "bake" : "canary",
	    "pool", pool_name(pool), "since", since, "until", until ? untils : NULL,
	    "until_epoch", (json_int_t)until));
	log_info("guard: watching %s's 5xx share %s", pool_name(pool),
	    kind == GUARD_BAKE ? "for the bake window" : "while the canary runs");
	guard_start_sampling(d, kind, pool, until);
}

json_t *
guard_json(struct daemon *d)
{
	json_t *s = json_object_get(state_doc(d->state), "guard");

	if (!g.active || !json_is_object(s))
		return json_null();
	return json_pack("{s:O, s:O, s:O, s:O, s:I, s:I}", "kind", json_object_get(s, "kind"),
	    "pool", json_object_get(s, "pool"), "since", json_object_get(s, "since"),
	    "until", json_object_get(s, "until") ? json_object_get(s, "until") : json_null(),
	    "responses", (json_int_t)g.tot_resp, "errors", (json_int_t)g.tot_err);
}

void
guard_after_switch(struct daemon *d, const char *command, int to, long long bake)
{
	/* The live host moved: whatever canary ran is complete or undone. */
	json_object_set_new(state_doc(d->state), "canary", json_null());
	guard_clear(d);
	if (strcmp(command, "switch") != 0 || !guard_can_watch(d->conf))
		return;
	if (bake > 0)
		guard_begin(d, GUARD_BAKE, to, time(NULL) + (time_t)bake);
}

void
guard_resume(struct daemon *d)
{
	json_t *s = json_object_get(state_doc(d->state), "guard");
	const char *kind;
	int pool;
	time_t until;

	if (!json_is_object(s))
		return;
	kind = json_string_value(json_object_get(s, "kind"));
	pool = pool_index(json_string_value(json_object_get(s, "pool")));
	until = (time_t)json_integer_value(json_object_get(s, "until_epoch"));
	if (kind == NULL || pool < 0 || !guard_can_watch(d->conf) ||
	    (strcmp(kind, "bake") == 0 && (until <= time(NULL) ||
	    pool != state_hot(d->state))) ||
	    (strcmp(kind, "canary") == 0 && state_canary_percent(d->state, pool) <= 0)) {
		log_info("guard: the window in the state file is over");
		guard_clear(d);
		state_save(d->state);
		return;
	}
	log_info("guard: resuming the watch over %s (%s)", pool_name(pool), kind);
	guard_start_sampling(d, strcmp(kind, "bake") == 0 ? GUARD_BAKE : GUARD_CANARY, pool, until);
}

void
guard_shutdown(void)
{
	guard_cancel_sample();
	if (g.timer != NULL)
		event_free(g.timer);
	g.timer = NULL;
	free(g.nodes);
	g.nodes = NULL;
	g.nnodes = 0;
	g.active = 0;
}

void
guard_mark_failed(struct daemon *d, int pool, const char *why)
{
	state_set_pool(d->state, pool, NULL, PS_FAILED, "switchd");
	json_object_set_new(state_pool(d->state, pool), "error", json_string(why));
}

/* -------------------------------------------------------------- verdict */

static void
guard_went_back(int ok, const char *code, const char *error, void *arg)
{
	struct daemon *d = arg;
	int bad = g.pool;

	(void)code;
	if (ok) {
		log_warnx("guard: back done: %s serves %s again",
		    pool_name(state_hot(d->state)),
		    d->conf->live_host);
		guard_mark_failed(d, bad, g.why);
	} else
		log_warnx("guard: going back failed: %s", error);
	/* It acted (or tried): it stops, and never flaps. */
	guard_clear(d);
	state_save(d->state);
	busy_release(d);
}

static void
guard_act(struct daemon *d)
{
	struct op_who who;

	/* One change at a time: a command in flight finishes first. */
	if (d->shutting_down ||
	    !busy_take(d, "repair", "switchd", geteuid(), NULL)) {
		log_info("guard: waiting for the command in flight before going back");
		guard_arm(d, d->conf->guard_interval_ms);
		return;
	}
	who_switchd(&who, g.why);
	if (g.kind == GUARD_BAKE)
		pool_switch(d, &who, !g.pool, "back", 0, guard_went_back, d);
	else
		canary_set(d, &who, 0, "back", guard_went_back, d);
}

static void
guard_verdict(struct daemon *d)
{
	double secs = (now_ms() - g.win_start) / 1000.0;

	snprintf(g.why, sizeof(g.why), "guard: 5xx %.1f %% of %lld responses on %s in %.*f s",
	    100.0 * (double)g.win_err / (double)g.win_resp, g.win_resp, pool_name(g.pool),
	    secs < 10 ? 1 : 0, secs);
	log_warnx("%s (max_5xx_percent %.1f): %s", g.why, d->conf->guard_max_5xx,
	    g.kind == GUARD_BAKE ? "going back" : "ending the canary");
	g.acting = 1;
	if (g.hook != NULL) {
		guard_verdict_cb hook = g.hook;

		g.active = 0;
		hook(g.why, g.hook_arg);
		return;
	}
	guard_act(d);
}

static void
guard_sampled(struct daemon *d)
{
	struct config *conf = d->conf;
	long long dr = 0, de = 0;
	size_t i;
	int all = 1;

	for (i = 0; i < g.nnodes; i++)
		if (!g.nodes[i].answered)
			all = 0;
	for (i = 0; i < g.nnodes; i++) {
		struct guard_node *n = &g.nodes[i];

		if (!n->answered) {
			n->have = 0;
			continue;
		}
		if (n->have && all) {
			/* A counter that went down: HAProxy restarted; count from 0. */
			dr += n->nresp >= n->resp ? n->nresp - n->resp : n->nresp;
			de += n->nerr >= n->err ? n->nerr - n->err : n->nerr;
		}
		n->resp = n->nresp;
		n->err = n->nerr;
		n->have = 1;
	}
	if (!all && !g.warned) {
		log_warnx("guard: not every node answers \"show stat\"; no verdict "
		    "until they do");
		g.warned = 1;
	} else if (all)
		g.warned = 0;
	g.win_resp += dr;
	g.win_err += de;
	g.tot_resp += dr;
	g.tot_err += de;
	if (g.win_resp >= conf->guard_min_requests) {
		if (100.0 * (double)g.win_err > conf->guard_max_5xx * (double)g.win_resp) {
			guard_verdict(d);
			return;
		}
		g.win_resp = g.win_err = 0;
		g.win_start = now_ms();
	}
	guard_arm(d, conf->guard_interval_ms);
}

static void
guard_reply(json_t *counters, const char *err, void *arg)
{
	struct guard_node *n = arg;
	struct daemon *d = n->d;
	json_t *c = json_object_get(counters, d->conf->pools[g.pool].backend);

	n->req = NULL;
	n->answered = err == NULL && c != NULL;
	if (n->answered) {
		n->nresp = json_integer_value(json_object_get(c, "responses"));
		n->nerr = json_integer_value(json_object_get(c, "5xx"));
	}
	if (--g.pending == 0)
		guard_sampled(d);
}

static void
guard_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct config *conf = d->conf;
	size_t i;

	(void)fd;
	(void)what;
	if (!g.active)
		return;
	if (g.acting) {
		guard_act(d);
		return;
	}
	if (g.kind == GUARD_BAKE && time(NULL) >= g.until) {
		log_info("guard: the bake window is over: %s keeps %s (%lld responses, "
		    "%lld 5xx)", pool_name(g.pool), conf->live_host, g.tot_resp, g.tot_err);
		guard_clear(d);
		state_save(d->state);
		return;
	}
	if (!guard_can_watch(conf)) {
		guard_arm(d, conf->guard_interval_ms);
		return;
	}
	if (g.nnodes != conf->drv->stats->nnodes(conf)) {
		free(g.nodes);
		g.nnodes = conf->drv->stats->nnodes(conf);
		g.nodes = xcalloc(g.nnodes, sizeof(*g.nodes));
	}
	g.pending = g.nnodes;
	for (i = 0; i < g.nnodes; i++) {
		g.nodes[i].answered = 0;
		g.nodes[i].d = d;
		g.nodes[i].stats = d->lb->drv->stats;
		g.nodes[i].req = d->lb->drv->stats->counters(d->lb, i,
		    conf->pools[g.pool].backend, guard_reply, &g.nodes[i]);
		if (g.nodes[i].req == NULL)
			g.pending--;
	}
	if (g.pending == 0)
		guard_sampled(d);
}
