/*
 * switch.c — moving the live host name from one pool to the other, and
 * the background repair that makes the nodes agree again.
 *
 * A switch is: pre-checks on every node (nothing touched yet) -> intent
 * record -> the driver's all-or-nothing apply -> journal -> state file ->
 * intent removed.  A switchd killed anywhere in that sequence finds the
 * intent at start (reconcile.c) and finishes the switch (every node already
 * serves it) or undoes it (any node does not), so the nodes always end up
 * agreeing.
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
#include "roles.h"
#include "state.h"
#include "switch.h"
#include "util.h"

static void repair_cancel(void);

/* --------------------------------------------------------------- a switch */

struct switch_op {
	struct daemon	*d;
	struct op_who	 who;		/* user and message are copies */
	char		 user[64];
	char		*message;
	struct lb	*lb;
	int		 from, to;
	char		*command;
	long long	 bake;
	char		 id[64];
	double		 t0;
	struct lb_mapping map_to;
	switch_cb		 cb;
	void		*arg;
	char		*fail_code;	/* a failed apply, told once the view is in */
	char		*fail_error;
};

static void
switch_op_free(struct switch_op *op)
{
	lb_unref(op->lb);
	free(op->command);
	free(op->message);
	free(op->fail_code);
	free(op->fail_error);
	free(op);
}

static json_t *
switch_entry(struct switch_op *op, const char *result, const char *error)
{
	json_t *e;

	e = journal_entry(&op->who, op->command, op->from,
	    strcmp(result, "ok") == 0 ? op->to : op->from, result, error);
	json_object_set_new(e, "id", json_string(op->id));
	json_object_set_new(e, "took_ms", json_integer((json_int_t)(now_ms() - op->t0)));
	return e;
}

/* After a failed apply: were all nodes put back?  Only then drop the intent. */
static void
switch_failed_view(struct lb_view *v, void *arg)
{
	struct switch_op *op = arg;
	size_t i;
	int agree = 1;

	for (i = 0; i < v->nnodes; i++)
		if (lb_node_serves(op->lb->conf, op->d->state, &v->nodes[i]) != op->from)
			agree = 0;
	if (agree)
		intent_clear(op->d->state);
	else {
		log_warnx("switch %s: nodes do not all serve %s after the failure; "
		    "repairing in the background", op->id, pool_name(op->from));
		repair_schedule(op->d, "nodes disagree after a failed switch");
	}
	lb_view_free(v);
	/*
	 * Only now is the intent record settled: replying earlier releases
	 * the busy slot, and a newer switch could write its own intent that
	 * the intent_clear() above would then remove.
	 */
	op->cb(0, op->fail_code, op->fail_error, op->arg);
	switch_op_free(op);
}

static void
switch_applied(const char *code, const char *error, void *arg)
{
	struct switch_op *op = arg;

	if (code != NULL) {
		history_append(op->d->state, switch_entry(op, "failed", error));
		op->fail_code = xstrdup(code);
		op->fail_error = xstrdup(error);
		op->lb->drv->observe(op->lb, switch_failed_view, op);
		return;
	}
	log_info("%s: %s is hot now (was %s), by %s", op->command, pool_name(op->to),
	    pool_name(op->from), op->who.user);
	history_append(op->d->state, switch_entry(op, "ok", NULL));

	/* The pool that was serving is proven: it is the new, verified cold pool. */
	state_set_hot(op->d->state, op->to);
	state_set_pool(op->d->state, op->from, NULL, PS_VERIFIED, op->who.user);
	json_object_del(state_pool(op->d->state, op->from), "error");
	state_set_last_switch(op->d->state, op->id, op->who.user, (json_int_t)op->who.uid,
	    op->from, op->to, op->who.message, op->command);
	guard_after_switch(op->d, op->command, op->to, op->bake);
	if (state_save(op->d->state) == -1)
		log_warnx("the switch is done but the state file could not be written; "
		    "switchd will learn the roles from HAProxy at its next start");
	intent_clear(op->d->state);
	repair_cancel();
	/* Traffic has moved; the EC2 role tags follow, never holding it up. */
	roles_retag(op->d, op->command, NULL, NULL);
	op->cb(1, NULL, NULL, op->arg);
	switch_op_free(op);
}

static void
switch_prechecked(const char *code, const char *error, void *arg)
{
	struct switch_op *op = arg;
	json_t *intent;
	struct lb_mapping from;
	char *nodes;

	if (code != NULL) {
		op->cb(0, code, error, op->arg);
		switch_op_free(op);
		return;
	}
	lb_mapping_for(op->lb->conf, op->d->state, op->from, &from);
	intent = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:{s:s, s:s}, s:{s:s, s:s}}",
	    "id", op->id, "command", op->command, "from", pool_name(op->from),
	    "to", pool_name(op->to), "user", op->who.user,
	    "uid", (json_int_t)op->who.uid,
	    "map_from", "live", from.live, "cold", from.cold,
	    "map_to", "live", op->map_to.live, "cold", op->map_to.cold);
	if (op->who.message != NULL)
		json_object_set_new(intent, "message", json_string(op->who.message));
	if (intent_write(op->d->state, intent) == -1) {
		json_decref(intent);
		op->cb(0, E_INTERNAL, "cannot write the intent record in the state "
		    "directory (disk full or read-only?); nothing was changed", op->arg);
		switch_op_free(op);
		return;
	}
	json_decref(intent);
	nodes = lb_nodes_text(op->lb);
	who_progress(&op->who, "flipping %s to %s on %s", op->lb->conf->live_host,
	    pool_name(op->to), nodes);
	free(nodes);
	op->lb->drv->apply(op->lb, &op->map_to, switch_applied, op);
}

void
pool_switch(struct daemon *d, const struct op_who *who, int to, const char *command,
    long long bake, switch_cb cb, void *arg)
{
	struct switch_op *op = xcalloc(1, sizeof(*op));
	struct config *conf = d->conf;
	char *nodes;

	op->d = d;
	who_keep(&op->who, op->user, sizeof(op->user), &op->message, who);
	op->lb = lb_ref(d->lb);
	op->from = state_hot(op->d->state);
	op->to = to;
	op->command = xstrdup(command);
	op->bake = bake;
	op->cb = cb;
	op->arg = arg;
	op->t0 = now_ms();
	new_id(op->id, sizeof(op->id));
	lb_mapping_for(conf, op->d->state, to, &op->map_to);
	nodes = lb_nodes_text(op->lb);
	who_progress(who, "checking %s: backend %s, at least %d server%s UP",
	    nodes, conf->pools[to].backend, conf->min_up, conf->min_up == 1 ? "" : "s");
	free(nodes);
	op->lb->drv->precheck(op->lb, &op->map_to, conf->pools[to].backend,
	    conf->min_up, switch_prechecked, op);
}

/* The pool most answering nodes serve (blue on a tie), -1 if none does. */
int
lb_view_majority(const struct config *conf, struct state *st, struct lb_view *v)
{
	int count[NPOOLS] = { 0, 0 }, hot;
	size_t i;

	for (i = 0; i < v->nnodes; i++)
		if (v->nodes[i].ok && (hot = lb_node_serves(conf, st, &v->nodes[i])) >= 0)
			count[hot]++;
	if (count[POOL_B] == 0 && count[POOL_G] == 0)
		return -1;
	return count[POOL_G] > count[POOL_B] ? POOL_G : POOL_B;
}

/* The map file on disk must say what the nodes serve. */
void
map_file_sync(struct lb *lb, struct state *st, int hot)
{
	struct lb_mapping m;
	char *text, buf[4096];
	FILE *f;
	size_t n = 0;

	lb_mapping_for(lb->conf, st, hot, &m);
	text = lb->drv->map_text(lb->conf, &m);
	if ((f = fopen(lb->drv->map_file(lb->conf), "re")) != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	if (strcmp(buf, text) != 0) {
		if (file_write_atomic(lb->drv->map_file(lb->conf), text, strlen(text),
		    0644) == -1)
			log_warn("reconcile: write %s", lb->drv->map_file(lb->conf));
		else
			log_info("reconcile: map file %s rewritten: %s is served by %s",
			    lb->drv->map_file(lb->conf), lb->conf->live_host, m.live);
	}
	if (lb_canary_file_write(lb->conf, &m) == -1)
		log_warn("reconcile: write %s", lb->conf->hap_canary_map);
	free(text);
}

/* ----------------------------------------------------------------- repair */

/*
 * When the nodes may disagree (a commit that was never answered, a node
 * that was down at start), switchd keeps checking, with backoff, and makes
 * every node serve what the state file says, until they all do.  It holds
 * the busy slot while it changes anything.
 */
#define REPAIR_MAX_DELAY	30

static struct event	*repair_ev;	/* its arg is the daemon */
static int		 repair_delay;

/* One pass: the daemon, and the load balancer it observes and changes. */
struct repair_op {
	struct daemon	*d;
	struct lb	*lb;
};

static void
repair_op_free(struct repair_op *op)
{
	lb_unref(op->lb);
	busy_release(op->d);
	free(op);
}

static void
repair_arm(void)
{
	struct timeval tv;

	repair_delay = repair_delay == 0 ? 1 : repair_delay * 2;
	if (repair_delay > REPAIR_MAX_DELAY)
		repair_delay = REPAIR_MAX_DELAY;
	tv.tv_sec = repair_delay;
	tv.tv_usec = 0;
	evtimer_add(repair_ev, &tv);
}

static void
repair_applied(const char *code, const char *error, void *arg)
{
	struct repair_op *op = arg;

	if (code != NULL)
		log_warnx("repair: %s", error);
	else
		log_info("repair: every node made to serve %s hot",
		    pool_name(state_hot(op->d->state)));
	repair_op_free(op);
	repair_arm();	/* check again: only a clean observation ends the repair */
}

static void
repair_prechecked(const char *code, const char *error, void *arg)
{
	struct repair_op *op = arg;
	struct lb *lb = op->lb;
	struct lb_mapping want;

	if (code != NULL) {
		log_warnx("repair: the nodes do not all serve %s hot, but %s fails the "
		    "pre-checks (%s); nothing changed, trying again later",
		    pool_name(state_hot(op->d->state)), pool_name(state_hot(op->d->state)), error);
		repair_op_free(op);
		repair_arm();
		return;
	}
	log_warnx("repair: the nodes do not all serve %s hot; making them",
	    pool_name(state_hot(op->d->state)));
	lb_mapping_for(lb->conf, op->d->state, state_hot(op->d->state), &want);
	lb->drv->apply(lb, &want, repair_applied, op);
}

static void
repair_view(struct lb_view *v, void *arg)
{
	struct repair_op *op = arg;
	struct lb *lb = op->lb;
	struct lb_mapping want;
	size_t i;
	int all_ok = 1, agree = 1;

	if (!state_roles_trusted(op->d->state) && lb_view_majority(lb->conf, op->d->state, v) >= 0 &&
	    lb_view_majority(lb->conf, op->d->state, v) != state_hot(op->d->state)) {
		/* Roles never read from a sound state file: never made up either. */
		log_warnx("repair: no trustworthy state file; %s is what most nodes serve",
		    pool_name(lb_view_majority(lb->conf, op->d->state, v)));
		state_set_hot(op->d->state, lb_view_majority(lb->conf, op->d->state, v));
	}
	lb_mapping_for(lb->conf, op->d->state, state_hot(op->d->state), &want);
	for (i = 0; i < v->nnodes; i++) {
		if (!v->nodes[i].ok)
			all_ok = 0;
		else if (lb_node_serves(lb->conf, op->d->state, &v->nodes[i]) != state_hot(op->d->state))
			agree = 0;
	}
	lb_view_free(v);
	if (all_ok && agree) {
		log_info("repair: every node serves %s hot, as the state file says",
		    pool_name(state_hot(op->d->state)));
		map_file_sync(lb, op->d->state, state_hot(op->d->state));
		intent_clear(op->d->state);
		repair_delay = 0;
		repair_op_free(op);
		return;
	}
	if (!all_ok) {
		log_warnx("repair: a node does not answer; trying again in %d s",
		    repair_delay * 2 > REPAIR_MAX_DELAY ? REPAIR_MAX_DELAY : repair_delay * 2);
		repair_op_free(op);
		repair_arm();
		return;
	}
	/* The same pre-checks as a switch: a repair must not cause an outage. */
	lb->drv->precheck(lb, &want, lb->conf->pools[state_hot(op->d->state)].backend,
	    lb->conf->min_up,
	    repair_prechecked, op);
}

static void
repair_fire(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct repair_op *op;

	(void)fd;
	(void)what;
	if (d->shutting_down ||
	    !busy_take(d, "repair", "switchd", geteuid(), NULL)) {
		if (!d->shutting_down)
			repair_arm();	/* a command is running; after it */
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->d = d;
	op->lb = lb_ref(d->lb);
	op->lb->drv->observe(op->lb, repair_view, op);
}

void
repair_schedule(struct daemon *d, const char *why)
{
	if (repair_ev == NULL)
		repair_ev = evtimer_new(d->base, repair_fire, d);
	if (evtimer_pending(repair_ev, NULL))
		return;
	log_info("repair scheduled: %s", why);
	repair_delay = 0;
	repair_arm();
}

/*
 * A switch or back that every node took leaves nothing to repair: a repair
 * still pending from before (a node that was down, say) would only find the
 * nodes agreeing and rewrite the map file from whatever the config says by
 * then — a config reload later is not its business.
 */
static void
repair_cancel(void)
{
	if (repair_ev != NULL && evtimer_pending(repair_ev, NULL)) {
		evtimer_del(repair_ev);
		log_info("repair no longer needed: every node took the switch");
	}
	repair_delay = 0;
}

/* The cluster lock it waits for is held now (cluster.c): no backoff wait. */
void
repair_kick(void)
{
	if (repair_ev != NULL && evtimer_pending(repair_ev, NULL)) {
		evtimer_del(repair_ev);
		event_active(repair_ev, EV_TIMEOUT, 0);
	}
}

void
repair_stop(void)
{
	if (repair_ev != NULL) {
		event_free(repair_ev);
		repair_ev = NULL;
	}
}
