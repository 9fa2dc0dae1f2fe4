/*
 * switch.c — moving the live host name from one pool to the other, and
 * making HAProxy, the state file and the journal agree at start-up.
 *
 * A switch is: pre-checks on every node (nothing touched yet) -> intent
 * record -> the driver's all-or-nothing apply -> journal -> state file ->
 * intent removed.  A switchd killed anywhere in that sequence finds the
 * intent at start and finishes the switch (every node already serves it)
 * or undoes it (any node does not), so the nodes always end up agreeing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "roles.h"
#include "switchd.h"

static json_t *
roles_json(int hot)
{
	return json_pack("{s:s, s:s}", "hot", pool_name(hot), "cold", pool_name(!hot));
}

/* --------------------------------------------------------------- a switch */

struct switch_op {
	struct cmdq_item *item;
	struct lb	*lb;
	int		 from, to;
	char		*command;
	char		 id[64];
	double		 t0;
	struct lb_mapping map_to;
	flip_cb		 cb;
	void		*arg;
	char		*fail_code;	/* a failed apply, told once the view is in */
	char		*fail_error;
};

static void
switch_op_free(struct switch_op *op)
{
	lb_unref(op->lb);
	free(op->command);
	free(op->fail_code);
	free(op->fail_error);
	free(op);
}

static json_t *
switch_entry(struct switch_op *op, const char *result, const char *error)
{
	json_t *e;
	const char *msg = cmd_arg_str(op->item, A_MESSAGE);

	e = json_pack("{s:s, s:I, s:s, s:s, s:s?, s:o, s:o, s:s, s:I}",
	    "id", op->id, "uid", (json_int_t)op->item->uid, "user", op->item->user,
	    "command", op->command, "message", msg,
	    "before", roles_json(op->from),
	    "after", roles_json(strcmp(result, "ok") == 0 ? op->to : op->from),
	    "result", result, "took_ms", (json_int_t)(now_ms() - op->t0));
	if (error != NULL)
		json_object_set_new(e, "error", json_string(error));
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
		if (lb_node_serves(op->lb->conf, &v->nodes[i]) != op->from)
			agree = 0;
	if (agree)
		intent_clear();
	else {
		log_warnx("switch %s: nodes do not all serve %s after the failure; "
		    "repairing in the background", op->id, pool_name(op->from));
		repair_schedule("nodes disagree after a failed switch");
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
	json_t *doc = state_doc(), *last;
	char when[32];

	if (code != NULL) {
		history_append(switch_entry(op, "failed", error));
		op->fail_code = xstrdup(code);
		op->fail_error = xstrdup(error);
		op->lb->drv->observe(op->lb, switch_failed_view, op);
		return;
	}
	log_info("%s: %s is hot now (was %s), by %s", op->command, pool_name(op->to),
	    pool_name(op->from), op->item->user);
	history_append(switch_entry(op, "ok", NULL));

	/* The pool that was serving is proven: it is the new, verified cold pool. */
	state_set_hot(op->to);
	state_set_pool(op->from, NULL, PS_VERIFIED, op->item->user);
	json_object_del(state_pool(op->from), "error");
	iso_time(time(NULL), when, sizeof(when));
	last = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s?, s:s}", "id", op->id,
	    "time", when, "user", op->item->user, "uid", (json_int_t)op->item->uid,
	    "from", pool_name(op->from), "to", pool_name(op->to),
	    "message", cmd_arg_str(op->item, A_MESSAGE), "command", op->command);
	json_object_set_new(doc, "last_switch", last);
	guard_after_switch(op->item, op->command, op->from, op->to);
	if (state_save() == -1)
		log_warnx("the switch is done but the state file could not be written; "
		    "switchd will learn the roles from HAProxy at its next start");
	intent_clear();
	repair_cancel();
	/* Traffic has moved; the EC2 role tags follow, never holding it up. */
	roles_retag(op->command, NULL, NULL);
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
	lb_mapping_for(op->lb->conf, op->from, &from);
	intent = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:{s:s, s:s}, s:{s:s, s:s}}",
	    "id", op->id, "command", op->command, "from", pool_name(op->from),
	    "to", pool_name(op->to), "user", op->item->user,
	    "uid", (json_int_t)op->item->uid,
	    "map_from", "live", from.live, "cold", from.cold,
	    "map_to", "live", op->map_to.live, "cold", op->map_to.cold);
	if (cmd_arg_str(op->item, A_MESSAGE))
		json_object_set_new(intent, "message",
		    json_string(cmd_arg_str(op->item, A_MESSAGE)));
	if (intent_write(intent) == -1) {
		json_decref(intent);
		op->cb(0, E_INTERNAL, "cannot write the intent record in the state "
		    "directory (disk full or read-only?); nothing was changed", op->arg);
		switch_op_free(op);
		return;
	}
	json_decref(intent);
	nodes = lb_nodes_text(op->lb);
	cmd_progress(op->item, "flipping %s to %s on %s", op->lb->conf->live_host,
	    pool_name(op->to), nodes);
	free(nodes);
	op->lb->drv->apply(op->lb, &op->map_to, switch_applied, op);
}

void
pool_switch(struct cmdq_item *item, int to, const char *command, flip_cb cb, void *arg)
{
	struct switch_op *op = xcalloc(1, sizeof(*op));
	struct config *conf = sd.conf;
	char *nodes;

	op->item = item;
	op->lb = lb_ref(sd.lb);
	op->from = state_hot();
	op->to = to;
	op->command = xstrdup(command);
	op->cb = cb;
	op->arg = arg;
	op->t0 = now_ms();
	new_id(op->id, sizeof(op->id));
	lb_mapping_for(conf, to, &op->map_to);
	nodes = lb_nodes_text(op->lb);
	cmd_progress(item, "checking %s: backend %s, at least %d server%s UP",
	    nodes, conf->pools[to].backend, conf->min_up, conf->min_up == 1 ? "" : "s");
	free(nodes);
	sd.lb->drv->precheck(sd.lb, &op->map_to, conf->pools[to].backend,
	    conf->min_up, switch_prechecked, op);
}

/* -------------------------------------------------------------- reconcile */

/* The pool most answering nodes serve (blue on a tie), -1 if none does. */
static int
majority(const struct config *conf, struct lb_view *v)
{
	int count[NPOOLS] = { 0, 0 }, hot;
	size_t i;

	for (i = 0; i < v->nnodes; i++)
		if (v->nodes[i].ok && (hot = lb_node_serves(conf, &v->nodes[i])) >= 0)
			count[hot]++;
	if (count[POOL_B] == 0 && count[POOL_G] == 0)
		return -1;
	return count[POOL_G] > count[POOL_B] ? POOL_G : POOL_B;
}

struct reconcile {
	struct lb	*lb;
	json_t		*intent;
	int		 target;	/* hot pool every node must serve */
	int		 cand[NPOOLS];	/* nodes disagree: pools to try, in order */
	int		 ncand, icand;
	char		*refusals;	/* why candidates failed their pre-checks */
	const char	*why;
	void		(*done)(void *);
	void		*arg;
};

static void
reconcile_finish(struct reconcile *rc)
{
	if (state_is_new())
		state_save();
	rc->done(rc->arg);
	json_decref(rc->intent);
	lb_unref(rc->lb);
	free(rc->refusals);
	free(rc);
}

static void
reconcile_journal(struct reconcile *rc, int before, int after, const char *result,
    const char *error)
{
	json_t *e = json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:s}", "uid", (json_int_t)0,
	    "user", "switchd", "command", "reconcile", "message", rc->why,
	    "before", roles_json(before), "after", roles_json(after), "result", result);

	if (error != NULL)
		json_object_set_new(e, "error", json_string(error));
	history_append(e);
}

/* The map file on disk must say what the nodes serve. */
static void
reconcile_map_file(struct reconcile *rc, int hot)
{
	struct lb_mapping m;
	char *text, buf[4096];
	FILE *f;
	size_t n = 0;

	lb_mapping_for(rc->lb->conf, hot, &m);
	text = lb_map_text(rc->lb->conf, &m);
	if ((f = fopen(rc->lb->conf->hap_map, "re")) != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	if (strcmp(buf, text) != 0) {
		if (file_write_atomic(rc->lb->conf->hap_map, text, strlen(text), 0644) == -1)
			log_warn("reconcile: write %s", rc->lb->conf->hap_map);
		else
			log_info("reconcile: map file %s rewritten: %s is served by %s",
			    rc->lb->conf->hap_map, rc->lb->conf->live_host, m.live);
	}
	if (canary_file_write(rc->lb->conf, &m) == -1)
		log_warn("reconcile: write %s", rc->lb->conf->hap_canary_map);
	free(text);
}

static void
reconcile_applied(const char *code, const char *error, void *arg)
{
	struct reconcile *rc = arg;
	int before = state_hot();

	if (code != NULL) {
		log_warnx("reconcile: could not make every node serve %s hot: %s",
		    pool_name(rc->target), error);
		reconcile_journal(rc, before, before, "failed", error);
		repair_schedule("start-up reconcile failed");
		reconcile_finish(rc);
		return;
	}
	log_info("reconcile: every node serves %s hot (%s)", pool_name(rc->target), rc->why);
	if (before != rc->target) {
		state_set_hot(rc->target);
		roles_retag("reconcile changed the roles", NULL, NULL);
	}
	reconcile_journal(rc, before, rc->target, "ok", NULL);
	state_save();
	if (rc->intent != NULL)
		intent_clear();
	reconcile_finish(rc);
}

static void
reconcile_apply(struct reconcile *rc, int target, const char *why)
{
	struct lb_mapping m;

	rc->target = target;
	rc->why = why;
	lb_mapping_for(rc->lb->conf, target, &m);
	rc->lb->drv->apply(rc->lb, &m, reconcile_applied, rc);
}

/* Finish an interrupted switch, or undo it. */
static void
reconcile_intent(struct reconcile *rc, struct lb_view *v, int all_ok, int agreed)
{
	int from = pool_index(json_string_value(json_object_get(rc->intent, "from")));
	int to = pool_index(json_string_value(json_object_get(rc->intent, "to")));
	const char *id = json_string_value(json_object_get(rc->intent, "id"));
	json_t *e, *doc = state_doc();
	char when[32];

	(void)v;
	if (from < 0 || to < 0 || id == NULL) {
		log_warnx("reconcile: intent record is malformed, ignored");
		intent_clear();
		json_decref(rc->intent);
		rc->intent = NULL;
		reconcile_finish(rc);
		return;
	}
	if (!all_ok) {
		log_warnx("reconcile: a switch (%s -> %s) was interrupted and not every node "
		    "answers; undoing it as soon as they do", pool_name(from),
		    pool_name(to));
		state_set_hot(from);
		state_save();
		repair_schedule("an interrupted switch, with a node not answering");
		reconcile_finish(rc);
		return;
	}
	if (agreed == to) {
		log_info("reconcile: switch %s (%s -> %s) was interrupted after every node "
		    "flipped; finishing it", id, pool_name(from), pool_name(to));
		if (!history_has_id(id)) {
			e = json_pack("{s:s, s:I, s:s, s:s, s:O?, s:o, s:o, s:s, s:s}", "id", id,
			    "uid", json_integer_value(json_object_get(rc->intent, "uid")),
			    "user", json_string_value(json_object_get(rc->intent, "user")) ?: "?",
			    "command", json_string_value(json_object_get(rc->intent, "command")) ?: "switch",
			    "message", json_object_get(rc->intent, "message"),
			    "before", roles_json(from), "after", roles_json(to),
			    "result", "ok", "note", "finished by switchd at start after an interruption");
			history_append(e);
		}
		state_set_hot(to);
		if (!json_is_object(json_object_get(doc, "last_switch")) ||
		    strcmp(json_string_value(json_object_get(json_object_get(doc,
		    "last_switch"), "id")) ?: "", id) != 0) {
			iso_time(time(NULL), when, sizeof(when));
			json_object_set_new(doc, "last_switch", json_pack(
			    "{s:s, s:s, s:O, s:O, s:s, s:s, s:O?, s:O}", "id", id, "time", when,
			    "user", json_object_get(rc->intent, "user"),
			    "uid", json_object_get(rc->intent, "uid"),
			    "from", pool_name(from), "to", pool_name(to),
			    "message", json_object_get(rc->intent, "message"),
			    "command", json_object_get(rc->intent, "command")));
			state_set_pool(from, NULL, PS_VERIFIED, "switchd");
		}
		state_save();
		reconcile_map_file(rc, to);
		intent_clear();
		roles_retag("an interrupted switch was finished", NULL, NULL);
		reconcile_finish(rc);
		return;
	}
	log_warnx("reconcile: switch %s (%s -> %s) was interrupted half way; undoing it",
	    id, pool_name(from), pool_name(to));
	state_set_hot(from);
	reconcile_apply(rc, from, "undo of an interrupted switch");
}

/*
 * The nodes answer but do not agree.  A pool is applied only if it passes
 * the pre-checks a switch uses (backend on every node, min_up UP): tried
 * first the state file's hot pool when the file is sound, else the pool
 * most nodes serve; then the other pool that some node serves.  A pool no
 * node serves is never made up (a missing or damaged state file says
 * nothing).  If none passes, every node keeps what it serves and the
 * background repair tries again.
 */
static void reconcile_try(struct reconcile *);

static void
reconcile_prechecked(const char *code, const char *error, void *arg)
{
	struct reconcile *rc = arg;
	int target = rc->cand[rc->icand];
	char *t;

	if (code == NULL) {
		log_warnx("reconcile: the nodes do not agree; %s passes the pre-checks; "
		    "making every node serve %s hot (%s)", pool_name(target),
		    pool_name(target), state_roles_trusted() ? "as the state file says" :
		    "no trustworthy state file: the pool the nodes serve most");
		reconcile_apply(rc, target, state_roles_trusted() ?
		    "nodes disagreed at start; state file applied" :
		    "nodes disagreed at start, no trustworthy state file; the pool the "
		    "nodes serve most that passes the pre-checks applied");
		return;
	}
	log_warnx("reconcile: %s fails the pre-checks: %s", pool_name(target), error);
	t = xasprintf("%s%s%s: %s", rc->refusals ? rc->refusals : "", rc->refusals ?
	    "; " : "", pool_name(target), error);
	free(rc->refusals);
	rc->refusals = t;
	rc->icand++;
	reconcile_try(rc);
}

static void
reconcile_try(struct reconcile *rc)
{
	struct lb_mapping m;
	int target;

	if (rc->icand >= rc->ncand) {
		log_warnx("reconcile: the nodes do not agree and no pool they serve passes "
		    "the pre-checks (%s); every node keeps what it serves, and switchd "
		    "tries again in the background", rc->refusals ? rc->refusals :
		    "no node serves a valid blue/green map");
		rc->why = "nodes disagreed at start; no pool passed the pre-checks";
		reconcile_journal(rc, state_hot(), state_hot(), "refused", rc->refusals);
		repair_schedule("the nodes disagree and no pool passes the pre-checks");
		reconcile_finish(rc);
		return;
	}
	target = rc->cand[rc->icand];
	lb_mapping_for(rc->lb->conf, target, &m);
	rc->lb->drv->precheck(rc->lb, &m, rc->lb->conf->pools[target].backend,
	    rc->lb->conf->min_up, reconcile_prechecked, rc);
}

static void
reconcile_disagree(struct reconcile *rc, struct lb_view *v)
{
	int count[NPOOLS] = { 0, 0 }, first, hot;
	size_t i;

	for (i = 0; i < v->nnodes; i++)
		if ((hot = lb_node_serves(rc->lb->conf, &v->nodes[i])) >= 0)
			count[hot]++;
	if (count[POOL_B] == 0 && count[POOL_G] == 0) {
		/*
		 * A first start: no node serves either pool, so there is no
		 * traffic to keep, and the driver may need the map written
		 * before its load balancer can even start.
		 */
		log_warnx("reconcile: no node serves a valid blue/green map (a first "
		    "start?); making every node serve %s hot (%s)", pool_name(state_hot()),
		    state_roles_trusted() ? "the state file" : "the default");
		reconcile_apply(rc, state_hot(), "no node served a valid map at start");
		return;
	}
	if (state_roles_trusted())
		first = state_hot();
	else {
		first = count[POOL_G] > count[POOL_B] ? POOL_G : POOL_B;
		log_warnx("reconcile: no trustworthy state file; the nodes serve blue %d, "
		    "green %d times", count[POOL_B], count[POOL_G]);
	}
	rc->ncand = rc->icand = 0;
	if (count[first] > 0 || state_roles_trusted())
		rc->cand[rc->ncand++] = first;
	if (count[!first] > 0)
		rc->cand[rc->ncand++] = !first;
	reconcile_try(rc);
}

static void
reconcile_view(struct lb_view *v, void *arg)
{
	struct reconcile *rc = arg;
	size_t i;
	int all_ok = 1, agreed = -2, hot, state = state_hot();

	for (i = 0; i < v->nnodes; i++) {
		struct lb_node *n = &v->nodes[i];

		if (!n->ok) {
			log_warnx("reconcile: node %s: %s", n->name, n->error);
			all_ok = 0;
			continue;
		}
		hot = lb_node_serves(rc->lb->conf, n);
		log_info("reconcile: node %s serves %s", n->name,
		    hot < 0 ? "no valid blue/green map" : pool_name(hot));
		if (agreed == -2)
			agreed = hot;
		else if (agreed != hot)
			agreed = -1;
	}
	if (agreed == -2)
		agreed = -1;

	if (rc->intent != NULL) {
		reconcile_intent(rc, v, all_ok, agreed);
		lb_view_free(v);
		return;
	}
	if (agreed >= 0) {
		if (agreed != state && state_is_new()) {
			log_info("reconcile: no state file yet; HAProxy serves %s hot",
			    pool_name(agreed));
			state_set_hot(agreed);
			state_save();
		} else if (agreed != state) {
			log_warnx("reconcile: state file says %s is hot but HAProxy serves %s "
			    "on every node that answers; trusting HAProxy", pool_name(state),
			    pool_name(agreed));
			state_set_hot(agreed);
			rc->why = "state file was stale: HAProxy serves the other pool";
			reconcile_journal(rc, state, agreed, "ok", NULL);
			state_save();
			roles_retag("reconcile: HAProxy serves the other pool", NULL, NULL);
		} else
			log_info("reconcile: HAProxy and the state file agree: %s is hot",
			    pool_name(agreed));
		reconcile_map_file(rc, agreed);
		/* A node that is down now may come back serving the other pool. */
		if (!all_ok)
			repair_schedule("a node did not answer at start");
		reconcile_finish(rc);
	} else if (all_ok)
		reconcile_disagree(rc, v);
	else {
		if (!state_roles_trusted() && majority(rc->lb->conf, v) >= 0) {
			/* No file to keep: what the nodes that answer serve most. */
			state = majority(rc->lb->conf, v);
			state_set_hot(state);
		}
		log_warnx("reconcile: not every node answers; keeping %s hot (%s)",
		    pool_name(state), state_roles_trusted() ? "the state file" :
		    "what most nodes that answer serve");
		repair_schedule("a node did not answer at start");
		reconcile_finish(rc);
	}
	lb_view_free(v);
}

void
switchd_reconcile(void (*done)(void *), void *arg)
{
	struct reconcile *rc = xcalloc(1, sizeof(*rc));

	rc->lb = lb_ref(sd.lb);
	rc->intent = intent_read();
	rc->done = done;
	rc->arg = arg;
	rc->why = "start-up";
	sd.lb->drv->observe(sd.lb, reconcile_view, rc);
}

/* ----------------------------------------------------------------- repair */

/*
 * When the nodes may disagree (a commit that was never answered, a node
 * that was down at start), switchd keeps checking, with backoff, and makes
 * every node serve what the state file says, until they all do.  It holds
 * the busy slot while it changes anything.
 */
#define REPAIR_MAX_DELAY	30

static struct event	*repair_ev;
static int		 repair_delay;

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
	struct lb *lb = arg;

	if (code != NULL)
		log_warnx("repair: %s", error);
	else
		log_info("repair: every node made to serve %s hot", pool_name(state_hot()));
	lb_unref(lb);
	cmd_release_internal();
	repair_arm();	/* check again: only a clean observation ends the repair */
}

static void
repair_prechecked(const char *code, const char *error, void *arg)
{
	struct lb *lb = arg;
	struct lb_mapping want;

	if (code != NULL) {
		log_warnx("repair: the nodes do not all serve %s hot, but %s fails the "
		    "pre-checks (%s); nothing changed, trying again later",
		    pool_name(state_hot()), pool_name(state_hot()), error);
		lb_unref(lb);
		cmd_release_internal();
		repair_arm();
		return;
	}
	log_warnx("repair: the nodes do not all serve %s hot; making them",
	    pool_name(state_hot()));
	lb_mapping_for(lb->conf, state_hot(), &want);
	lb->drv->apply(lb, &want, repair_applied, lb);
}

static void
repair_view(struct lb_view *v, void *arg)
{
	struct lb *lb = arg;
	struct lb_mapping want;
	size_t i;
	int all_ok = 1, agree = 1;

	if (!state_roles_trusted() && majority(lb->conf, v) >= 0 &&
	    majority(lb->conf, v) != state_hot()) {
		/* Roles never read from a sound state file: never made up either. */
		log_warnx("repair: no trustworthy state file; %s is what most nodes serve",
		    pool_name(majority(lb->conf, v)));
		state_set_hot(majority(lb->conf, v));
	}
	lb_mapping_for(lb->conf, state_hot(), &want);
	for (i = 0; i < v->nnodes; i++) {
		if (!v->nodes[i].ok)
			all_ok = 0;
		else if (lb_node_serves(lb->conf, &v->nodes[i]) != state_hot())
			agree = 0;
	}
	lb_view_free(v);
	if (all_ok && agree) {
		struct reconcile rc = { .lb = lb };

		log_info("repair: every node serves %s hot, as the state file says",
		    pool_name(state_hot()));
		reconcile_map_file(&rc, state_hot());
		intent_clear();
		repair_delay = 0;
		lb_unref(lb);
		cmd_release_internal();
		return;
	}
	if (!all_ok) {
		log_warnx("repair: a node does not answer; trying again in %d s",
		    repair_delay * 2 > REPAIR_MAX_DELAY ? REPAIR_MAX_DELAY : repair_delay * 2);
		lb_unref(lb);
		cmd_release_internal();
		repair_arm();
		return;
	}
	/* The same pre-checks as a switch: a repair must not cause an outage. */
	lb->drv->precheck(lb, &want, lb->conf->pools[state_hot()].backend, lb->conf->min_up,
	    repair_prechecked, lb);
}

static void
repair_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (!cmd_acquire_internal()) {
		if (!sd.shutting_down)
			repair_arm();	/* a command is running; after it */
		return;
	}
	sd.lb->drv->observe(sd.lb, repair_view, lb_ref(sd.lb));
}

void
repair_schedule(const char *why)
{
	if (repair_ev == NULL)
		repair_ev = evtimer_new(sd.base, repair_fire, NULL);
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
void
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
