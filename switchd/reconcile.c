/*
 * reconcile.c — at start, make HAProxy, the state file and the journal
 * agree: finish or undo a switch that was interrupted (its intent record),
 * trust the nodes over a stale state file, and when the nodes disagree
 * apply the pool that passes a switch's pre-checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "lb.h"
#include "log.h"
#include "protocol.h"
#include "reconcile.h"
#include "roles.h"
#include "state.h"
#include "switch.h"
#include "util.h"

struct reconcile {
	struct daemon	*d;
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
	if (state_is_new(rc->d->state))
		state_save(rc->d->state);
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
	struct op_who who;

	who_switchd(&who, rc->why);
	who.uid = 0;
	history_append(rc->d->state, journal_entry(&who, "reconcile", before, after, result,
	    error));
}

static void
reconcile_applied(const char *code, const char *error, void *arg)
{
	struct reconcile *rc = arg;
	int before = state_hot(rc->d->state);

	if (code != NULL) {
		log_warnx("reconcile: could not make every node serve %s hot: %s",
		    pool_name(rc->target), error);
		reconcile_journal(rc, before, before, "failed", error);
		repair_schedule(rc->d, "start-up reconcile failed");
		reconcile_finish(rc);
		return;
	}
	log_info("reconcile: every node serves %s hot (%s)", pool_name(rc->target), rc->why);
	if (before != rc->target) {
		state_set_hot(rc->d->state, rc->target);
		roles_retag(rc->d, "reconcile changed the roles", NULL, NULL);
	}
	reconcile_journal(rc, before, rc->target, "ok", NULL);
	state_save(rc->d->state);
	if (rc->intent != NULL)
		intent_clear(rc->d->state);
	reconcile_finish(rc);
}

static void
reconcile_apply(struct reconcile *rc, int target, const char *why)
{
	struct lb_mapping m;

	rc->target = target;
	rc->why = why;
	lb_mapping_for(rc->lb->conf, rc->d->state, target, &m);
	rc->lb->drv->apply(rc->lb, &m, reconcile_applied, rc);
}

/* Finish an interrupted switch, or undo it. */
static void
reconcile_intent(struct reconcile *rc, struct lb_view *v, int all_ok, int agreed)
{
	int from = pool_index(json_string_value(json_object_get(rc->intent, "from")));
	int to = pool_index(json_string_value(json_object_get(rc->intent, "to")));
	const char *id = json_string_value(json_object_get(rc->intent, "id"));
	json_t *e, *doc = state_doc(rc->d->state);

	(void)v;
	if (from < 0 || to < 0 || id == NULL) {
		log_warnx("reconcile: intent record is malformed, ignored");
		intent_clear(rc->d->state);
		json_decref(rc->intent);
		rc->intent = NULL;
		reconcile_finish(rc);
		return;
	}
	if (!all_ok) {
		log_warnx("reconcile: a switch (%s -> %s) was interrupted and not every node "
		    "answers; undoing it as soon as they do", pool_name(from),
		    pool_name(to));
		state_set_hot(rc->d->state, from);
		state_save(rc->d->state);
		repair_schedule(rc->d, "an interrupted switch, with a node not answering");
		reconcile_finish(rc);
		return;
	}
	if (agreed == to) {
		log_info("reconcile: switch %s (%s -> %s) was interrupted after every node "
		    "flipped; finishing it", id, pool_name(from), pool_name(to));
		if (!history_has_id(rc->d->state, id)) {
			struct op_who who = {
				.user = json_string_value(json_object_get(rc->intent, "user")) ?: "?",
				.uid = (uid_t)json_integer_value(json_object_get(rc->intent, "uid")),
				.message = json_string_value(json_object_get(rc->intent, "message")),
			};

			e = journal_entry(&who, json_string_value(json_object_get(rc->intent,
			    "command")) ?: "switch", from, to, "ok", NULL);
			json_object_set_new(e, "id", json_string(id));
			json_object_set_new(e, "note", json_string("finished by switchd at start "
			    "after an interruption"));
			history_append(rc->d->state, e);
		}
		state_set_hot(rc->d->state, to);
		if (!json_is_object(json_object_get(doc, "last_switch")) ||
		    strcmp(json_string_value(json_object_get(json_object_get(doc,
		    "last_switch"), "id")) ?: "", id) != 0) {
			state_set_last_switch(rc->d->state, id,
			    json_string_value(json_object_get(rc->intent, "user")),
			    json_integer_value(json_object_get(rc->intent, "uid")), from, to,
			    json_string_value(json_object_get(rc->intent, "message")),
			    json_string_value(json_object_get(rc->intent, "command")));
			state_set_pool(rc->d->state, from, NULL, PS_VERIFIED, "switchd");
		}
		state_save(rc->d->state);
		map_file_sync(rc->lb, rc->d->state, to);
		intent_clear(rc->d->state);
		roles_retag(rc->d, "an interrupted switch was finished", NULL, NULL);
		reconcile_finish(rc);
		return;
	}
	log_warnx("reconcile: switch %s (%s -> %s) was interrupted half way; undoing it",
	    id, pool_name(from), pool_name(to));
	state_set_hot(rc->d->state, from);
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
		    pool_name(target), state_roles_trusted(rc->d->state) ? "as the state file says" :
		    "no trustworthy state file: the pool the nodes serve most");
		reconcile_apply(rc, target, state_roles_trusted(rc->d->state) ?
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
		reconcile_journal(rc, state_hot(rc->d->state), state_hot(rc->d->state),
		    "refused", rc->refusals);
		repair_schedule(rc->d, "the nodes disagree and no pool passes the pre-checks");
		reconcile_finish(rc);
		return;
	}
	target = rc->cand[rc->icand];
	lb_mapping_for(rc->lb->conf, rc->d->state, target, &m);
	rc->lb->drv->precheck(rc->lb, &m, rc->lb->conf->pools[target].backend,
	    rc->lb->conf->min_up, reconcile_prechecked, rc);
}

static void
reconcile_disagree(struct reconcile *rc, struct lb_view *v)
{
	int count[NPOOLS] = { 0, 0 }, first, hot;
	size_t i;

	for (i = 0; i < v->nnodes; i++)
		if ((hot = lb_node_serves(rc->lb->conf, rc->d->state, &v->nodes[i])) >= 0)
			count[hot]++;
	if (count[POOL_B] == 0 && count[POOL_G] == 0) {
		/*
		 * A first start: no node serves either pool, so there is no
		 * traffic to keep, and the driver may need the map written
		 * before its load balancer can even start.
		 */
		log_warnx("reconcile: no node serves a valid blue/green map (a first "
		    "start?); making every node serve %s hot (%s)", pool_name(state_hot(rc->d->state)),
		    state_roles_trusted(rc->d->state) ? "the state file" : "the default");
		reconcile_apply(rc, state_hot(rc->d->state), "no node served a valid map at start");
		return;
	}
	if (state_roles_trusted(rc->d->state))
		first = state_hot(rc->d->state);
	else {
		first = count[POOL_G] > count[POOL_B] ? POOL_G : POOL_B;
		log_warnx("reconcile: no trustworthy state file; the nodes serve blue %d, "
		    "green %d times", count[POOL_B], count[POOL_G]);
	}
	rc->ncand = rc->icand = 0;
	if (count[first] > 0 || state_roles_trusted(rc->d->state))
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
	int all_ok = 1, agreed = -2, hot, state = state_hot(rc->d->state);

	for (i = 0; i < v->nnodes; i++) {
		struct lb_node *n = &v->nodes[i];

		if (!n->ok) {
			log_warnx("reconcile: node %s: %s", n->name, n->error);
			all_ok = 0;
			continue;
		}
		hot = lb_node_serves(rc->lb->conf, rc->d->state, n);
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
		if (agreed != state && state_is_new(rc->d->state)) {
			log_info("reconcile: no state file yet; HAProxy serves %s hot",
			    pool_name(agreed));
			state_set_hot(rc->d->state, agreed);
			state_save(rc->d->state);
		} else if (agreed != state) {
			log_warnx("reconcile: state file says %s is hot but HAProxy serves %s "
			    "on every node that answers; trusting HAProxy", pool_name(state),
			    pool_name(agreed));
			state_set_hot(rc->d->state, agreed);
			rc->why = "state file was stale: HAProxy serves the other pool";
			reconcile_journal(rc, state, agreed, "ok", NULL);
			state_save(rc->d->state);
			roles_retag(rc->d, "reconcile: HAProxy serves the other pool", NULL, NULL);
		} else
			log_info("reconcile: HAProxy and the state file agree: %s is hot",
			    pool_name(agreed));
		map_file_sync(rc->lb, rc->d->state, agreed);
		/* A node that is down now may come back serving the other pool. */
		if (!all_ok)
			repair_schedule(rc->d, "a node did not answer at start");
		reconcile_finish(rc);
	} else if (all_ok)
		reconcile_disagree(rc, v);
	else {
		if (!state_roles_trusted(rc->d->state) && lb_view_majority(rc->lb->conf, rc->d->state, v) >= 0) {
			/* No file to keep: what the nodes that answer serve most. */
			state = lb_view_majority(rc->lb->conf, rc->d->state, v);
			state_set_hot(rc->d->state, state);
		}
		log_warnx("reconcile: not every node answers; keeping %s hot (%s)",
		    pool_name(state), state_roles_trusted(rc->d->state) ? "the state file" :
		    "what most nodes that answer serve");
		repair_schedule(rc->d, "a node did not answer at start");
		reconcile_finish(rc);
	}
	lb_view_free(v);
}

void
reconcile_start(struct daemon *d, void (*done)(void *), void *arg)
{
	struct reconcile *rc = xcalloc(1, sizeof(*rc));

	rc->d = d;
	rc->lb = lb_ref(d->lb);
	rc->intent = intent_read(rc->d->state);
	rc->done = done;
	rc->arg = arg;
	rc->why = "start-up";
	rc->lb->drv->observe(rc->lb, reconcile_view, rc);
}

