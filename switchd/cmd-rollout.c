/*
 * cmd-rollout.c — "rollout": a canary at each step (10, 25, 50 % by
 * default), each watched by the guard for --interval seconds, then a
 * switch with the bake window.  It runs in the daemon (the client may go
 * away) and holds the busy slot throughout; a verdict of the guard ends it
 * and puts the traffic back, and an admin's "switchctl back" aborts it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "guard.h"
#include "lb.h"
#include "log.h"
#include "protocol.h"
#include "smoke.h"
#include "state.h"
#include "util.h"

#define ROLLOUT_MAXSTEPS	16

enum rollout_phase { R_CHECKING, R_SETTING, R_WATCHING, R_SWITCHING, R_UNDOING };

struct rollout {
	struct cmdq_item *item;
	int		 steps[ROLLOUT_MAXSTEPS];
	int		 nsteps, idx;
	int		 interval;
	enum rollout_phase phase;
	struct event	*timer;
	struct cmdq_item *abort_item;	/* the admin's "back" */
	char		 why[256];	/* why it ended early */
	char		*message;	/* the user's -m */
	json_t		*done_steps;
};

static struct rollout *ro;

int
rollout_running(void)
{
	return ro != NULL;
}

static void rollout_step(struct rollout *);

static void
rollout_free(struct rollout *r)
{
	guard_set_hook(NULL, NULL);
	if (r->timer != NULL)
		event_free(r->timer);
	free(r->message);
	json_decref(r->done_steps);
	free(r);
	ro = NULL;
}

/* The journal message of each step: which step, and the user's words. */
static void
rollout_message(struct rollout *r)
{
	json_object_set_new(r->item->args, A_MESSAGE, json_sprintf("rollout step %d of "
	    "%d: %d %%%s%s", r->idx + 1, r->nsteps, r->steps[r->idx],
	    r->message ? ": " : "", r->message ? r->message : ""));
}

static void
rollout_event(struct rollout *r, const char *text)
{
	cmd_event(r->item, json_pack("{s:s, s:s, s:i, s:i}", P_EVENT, EV_STEP, "text", text,
	    "step", r->idx + 1, "percent", r->idx < r->nsteps ? r->steps[r->idx] : 100));
}

/* The end: reply to the rollout's client, and to an aborting "back". */
static void
rollout_finish(struct rollout *r, const char *result, const char *code, const char *error)
{
	struct state *st = r->item->d->state;
	struct cmdq_item *item = r->item, *abort_item = r->abort_item;
	json_t *reply = json_pack("{s:s, s:O, s:s, s:s}", "result", result,
	    "steps", json_object_get(r->done_steps, "steps"), "hot", pool_name(state_hot(st)),
	    "cold", pool_name(!state_hot(st)));

	if (r->why[0] != '\0')
		json_object_set_new(reply, "why", json_string(r->why));
	rollout_free(r);
	if (abort_item != NULL) {
		if (code != NULL && strcmp(result, "aborted") != 0)
			cmd_error(abort_item, code, "%s", error);
		else
			cmd_done(abort_item, json_pack("{s:s, s:s, s:s, s:s, s:s}", "from",
			    pool_name(state_hot(st)), "to", pool_name(state_hot(st)), "hot",
			    pool_name(state_hot(st)), "cold", pool_name(!state_hot(st)),
			    "rollout", "aborted"));
	}
	if (code != NULL)
		cmd_error_json(item, code, reply, "%s", error);
	else
		cmd_done(item, reply);
}

static void
rollout_undone(int ok, const char *code, const char *error, void *arg)
{
	struct rollout *r = arg;
	struct state *st = r->item->d->state;
	char msg[1024];

	if (r->abort_item == NULL && ok)
		/* The guard's verdict: the pool it judged is cold again, and failed. */
		guard_mark_failed(r->item->d, !state_hot(st), r->why);
	if (!ok) {
		snprintf(msg, sizeof(msg), "rollout stopped (%s) but putting the traffic "
		    "back failed: %s", r->why, error);
		rollout_finish(r, "failed", code, msg);
		return;
	}
	state_save(st);
	snprintf(msg, sizeof(msg), "rollout stopped: %s; the traffic is back on %s",
	    r->why, pool_name(state_hot(st)));
	log_warnx("%s", msg);
	rollout_finish(r, r->abort_item ? "aborted" : "rolled back", E_REFUSED, msg);
}

/* A verdict or a "back": the traffic goes back to where it was. */
static void
rollout_undo(struct rollout *r)
{
	struct state *st = r->item->d->state;
	struct daemon *d = r->item->d;
	struct op_who who;

	r->phase = R_UNDOING;
	if (r->timer != NULL)
		evtimer_del(r->timer);
	guard_set_hook(NULL, NULL);
	rollout_event(r, r->why);
	if (r->abort_item != NULL)
		cmd_who(r->abort_item, &who);
	else
		/* The guard's verdict: the journal says switchd did it. */
		who_switchd(&who, r->why);
	if (state_hot(st) != pool_index(json_string_value(json_object_get(r->done_steps,
	    "from")))) {
		/* Only the switch can have moved it: go back. */
		pool_switch(d, &who, !state_hot(st), "back", 0, rollout_undone, r);
		return;
	}
	canary_set(d, &who, 0, "back", rollout_undone, r);
}

static void
rollout_verdict(const char *why, void *arg)
{
	struct rollout *r = arg;

	snprintf(r->why, sizeof(r->why), "%s", why);
	if (r->phase == R_WATCHING)
		rollout_undo(r);
	/* Otherwise the step in flight sees r->why when it is done. */
}

int
rollout_abort(struct cmdq_item *back)
{
	struct rollout *r = ro;
	struct state *st = back->d->state;

	if (r == NULL)
		return 0;
	if (r->abort_item != NULL) {
		cmd_error(back, E_BUSY, "a \"back\" is already stopping the rollout");
		return 1;
	}
	r->abort_item = back;
	snprintf(r->why, sizeof(r->why), "aborted by \"back\" from %s", back->user);
	cmd_progress(back, "stopping the rollout of %s (step %d of %d)",
	    pool_name(!state_hot(st)), r->idx + 1, r->nsteps);
	if (r->phase == R_WATCHING)
		rollout_undo(r);
	return 1;
}

static void
rollout_switched(int ok, const char *code, const char *error, void *arg)
{
	struct rollout *r = arg;
	char msg[1024];

	if (!ok) {
		snprintf(msg, sizeof(msg), "rollout: the final switch failed: %s", error);
		snprintf(r->why, sizeof(r->why), "the final switch failed");
		rollout_undo(r);
		(void)code;
		return;
	}
	if (r->why[0] != '\0') {
		rollout_undo(r);
		return;
	}
	json_array_append_new(json_object_get(r->done_steps, "steps"), json_integer(100));
	rollout_finish(r, "switched", NULL, NULL);
}

static void
rollout_tick(evutil_socket_t fd, short what, void *arg)
{
	struct rollout *r = arg;

	(void)fd;
	(void)what;
	r->idx++;
	rollout_step(r);
}

static void
rollout_set(int ok, const char *code, const char *error, void *arg)
{
	struct rollout *r = arg;
	struct state *st = r->item->d->state;
	struct timeval tv;
	char text[256];

	if (!ok) {
		snprintf(r->why, sizeof(r->why), "step %d (%d %%) failed: %s", r->idx + 1,
		    r->steps[r->idx], error);
		(void)code;
		rollout_undo(r);
		return;
	}
	json_array_append_new(json_object_get(r->done_steps, "steps"),
	    json_integer(r->steps[r->idx]));
	if (r->why[0] != '\0') {
		rollout_undo(r);
		return;
	}
	guard_set_hook(rollout_verdict, r);
	snprintf(text, sizeof(text), "step %d of %d: %d %% of %s on %s; the guard watches "
	    "it for %d s", r->idx + 1, r->nsteps, r->steps[r->idx], r->item->d->conf->live_host,
	    pool_name(!state_hot(st)), r->interval);
	rollout_event(r, text);
	r->phase = R_WATCHING;
	tv.tv_sec = r->interval;
	tv.tv_usec = 0;
	evtimer_add(r->timer, &tv);
}

static void
rollout_prechecked(const char *code, const char *error, void *arg)
{
	struct rollout *r = arg;
	struct op_who who;

	if (code != NULL) {
		snprintf(r->why, sizeof(r->why), "step %d: %s", r->idx + 1, error);
		rollout_undo(r);
		return;
	}
	if (r->why[0] != '\0') {
		rollout_undo(r);
		return;
	}
	r->phase = R_SETTING;
	rollout_message(r);
	cmd_who(r->item, &who);
	canary_set(r->item->d, &who, r->steps[r->idx], "canary", rollout_set, r);
}

static void
rollout_step(struct rollout *r)
{
	struct state *st = r->item->d->state;
	struct daemon *d = r->item->d;
	struct op_who who;
	struct lb_mapping to;
	int cold = !state_hot(st);
	char text[256];

	if (r->why[0] != '\0') {
		rollout_undo(r);
		return;
	}
	if (r->idx >= r->nsteps) {
		/* The switch's own bake window goes back by itself, not through us. */
		guard_set_hook(NULL, NULL);
		r->phase = R_SWITCHING;
		snprintf(text, sizeof(text), "every step passed: switching %s to %s",
		    d->conf->live_host, pool_name(cold));
		rollout_event(r, text);
		json_object_set_new(r->item->args, A_MESSAGE, json_string(r->message ?
		    r->message : "rollout: every step passed"));
		cmd_who(r->item, &who);
		pool_switch(d, &who, cold, "switch", d->conf->guard_bake, rollout_switched, r);
		return;
	}
	r->phase = R_CHECKING;
	lb_mapping_for(d->conf, st, state_hot(st), &to);
	d->lb->drv->precheck(d->lb, &to, d->conf->pools[cold].backend, d->conf->min_up,
	    rollout_prechecked, r);
}

static void
rollout_smoked(int passed, json_t *results, const char *summary, void *arg)
{
	struct rollout *r = arg;
	struct cmdq_item *item = r->item;

	if (!passed) {
		rollout_free(r);
		smoke_gate_failed(item, "a rollout", "no rollout", results, summary);
		return;
	}
	cmd_progress(item, "smoke: %s", summary);
	rollout_step(r);
}

/* "10,25,50": rising, 1..99; the count, or -1. */
static int
parse_steps(const char *s, int *steps)
{
	char *end;
	long v;
	int n = 0;

	if (s == NULL)
		s = "10,25,50";
	while (*s != '\0') {
		v = strtol(s, &end, 10);
		if (end == s || v < 1 || v > 99 || n == ROLLOUT_MAXSTEPS ||
		    (n > 0 && v <= steps[n - 1]) || (*end != ',' && *end != '\0'))
			return -1;
		steps[n++] = (int)v;
		s = *end == ',' ? end + 1 : end;
	}
	return n > 0 ? n : -1;
}

void
cmd_rollout_exec(struct cmdq_item *item)
{
	struct state *st = item->d->state;
	struct op_who who;
	struct rollout *r;
	int steps[ROLLOUT_MAXSTEPS], n;
	long long interval = cmd_arg_int(item, A_INTERVAL, 60);

	if ((n = parse_steps(cmd_arg_str(item, A_STEPS), steps)) == -1) {
		cmd_error(item, E_USAGE, "rollout: --steps must be rising percentages from "
		    "1 to 99, at most %d, like 10,25,50", ROLLOUT_MAXSTEPS);
		return;
	}
	if (interval < 1 || interval > 86400) {
		cmd_error(item, E_USAGE, "rollout: --interval must be 1 to 86400 seconds");
		return;
	}
	if (!canary_refusals(item))
		return;
	if (!guard_can_watch(item->d->conf)) {
		cmd_error(item, E_REFUSED, "rollout: the guard cannot read HAProxy's counters "
		    "(no haproxy.sockets)");
		return;
	}
	r = ro = xcalloc(1, sizeof(*r));
	r->item = item;
	memcpy(r->steps, steps, sizeof(steps));
	r->nsteps = n;
	r->interval = (int)interval;
	r->message = cmd_arg_str(item, A_MESSAGE) ? xstrdup(cmd_arg_str(item, A_MESSAGE)) : NULL;
	r->timer = evtimer_new(item->d->base, rollout_tick, r);
	r->done_steps = json_pack("{s:s, s:[]}", "from", pool_name(state_hot(st)), "steps");
	/* From the first step to the switch, every verdict of the guard is ours. */
	guard_set_hook(rollout_verdict, r);
	cmd_progress(item, "rollout of %s: steps %s %%, %d s each, then switch",
	    pool_name(!state_hot(st)), cmd_arg_str(item, A_STEPS) ? cmd_arg_str(item, A_STEPS) :
	    "10,25,50", r->interval);
	if (item->d->conf->nchecks == 0) {
		rollout_step(r);
		return;
	}
	cmd_who(item, &who);
	smoke_start(item->d, &who, !state_hot(st), rollout_smoked, r);
}
