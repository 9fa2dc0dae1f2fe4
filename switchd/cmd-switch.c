/*
 * cmd-switch.c — "switch" (to the cold pool, if it is proven) and "back"
 * (to the previous hot pool, at once).
 */
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "lb.h"
#include "protocol.h"
#include "smoke.h"
#include "state.h"
#include "switch.h"
#include "util.h"

static void	switch_done(int, const char *, const char *, void *);

/* The command's switch: its user, message and --bake (switch only). */
static void
cmd_pool_switch(struct cmdq_item *item, int to, const char *command)
{
	struct op_who who;

	cmd_who(item, &who);
	pool_switch(item->d, &who, to, command,
	    cmd_arg_int(item, A_BAKE, item->d->conf->guard_bake), switch_done, item);
}

static void
switch_done(int ok, const char *code, const char *error, void *arg)
{
	struct cmdq_item *item = arg;
	struct state *st = item->d->state;
	int hot = state_hot(st);

	if (!ok) {
		cmd_error(item, code, "%s", error);
		return;
	}
	cmd_done(item, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "from", pool_name(!hot),
	    "to", pool_name(hot), "hot", pool_name(hot), "cold", pool_name(!hot),
	    "nodes", (json_int_t)item->d->lb->drv->nnodes(item->d->conf),
	    "took_ms", (json_int_t)(now_ms() - item->started_ms)));
}

/*
 * The smoke checks failed just before traffic was to move (switch, canary,
 * rollout): the cold pool is marked failed, with why, and the command fails
 * saying that nothing moved (OUTCOME).
 */
void
smoke_gate_failed(struct cmdq_item *item, const char *before, const char *outcome,
    json_t *results, const char *summary)
{
	struct state *st = item->d->state;
	int cold = !state_hot(st);

	state_set_pool(st, cold, NULL, PS_FAILED, item->user);
	json_object_set_new(state_pool(st, cold), "error",
	    json_sprintf("smoke checks before %s failed: %s", before, summary));
	state_save(st);
	cmd_error_json(item, E_SMOKE, json_pack("{s:O}", "checks", results),
	    "smoke checks failed on %s (%s); %s, and %s is marked failed",
	    pool_name(cold), summary, outcome, pool_name(cold));
}

/* The last word before traffic moves: the smoke checks, again, now. */
static void
switch_smoked(int passed, json_t *results, const char *summary, void *arg)
{
	struct cmdq_item *item = arg;
	struct state *st = item->d->state;
	int cold = !state_hot(st);

	if (!passed) {
		smoke_gate_failed(item, "a switch", "nothing was switched", results, summary);
		return;
	}
	cmd_progress(item, "smoke: %s", summary);
	cmd_pool_switch(item, cold, "switch");
}

/*
 * The gate before live traffic goes to the cold pool (switch, canary,
 * rollout): at VERSION with --expect (even with --force), and verified —
 * unless the command takes --force and has it.  UNVERIFIED_TAIL ends the
 * refusal ("or switch --force", "nothing was changed").  0 if refused (the
 * reply is sent).
 */
int
cold_pool_gate(struct cmdq_item *item, int can_force, const char *unverified_tail)
{
	struct state *st = item->d->state;
	int cold = !state_hot(st);
	json_t *pool = state_pool(st, cold);
	const char *version = json_string_value(json_object_get(pool, "version"));
	const char *pstate = json_string_value(json_object_get(pool, "state")) ?: PS_EMPTY;
	const char *expect = cmd_arg_str(item, A_EXPECT);

	if (expect != NULL && (version == NULL || strcmp(version, expect) != 0)) {
		cmd_error(item, E_REFUSED, "the cold pool %s is at version %s, not %s; "
		    "nothing was changed", pool_name(cold), version ? version : "(none)",
		    expect);
		return 0;
	}
	if (strcmp(pstate, PS_VERIFIED) == 0)
		return 1;
	if (!can_force || !cmd_arg_bool(item, A_FORCE)) {
		cmd_error(item, E_REFUSED, "the cold pool %s is not verified (state: "
		    "%s); run \"switchctl cold-deploy\" first%s", pool_name(cold), pstate,
		    unverified_tail);
		return 0;
	}
	cmd_progress(item, "--force: switching to %s although it is %s",
	    pool_name(cold), pstate);
	return 1;
}

void
cmd_switch_exec(struct cmdq_item *item)
{
	struct state *st = item->d->state;
	struct op_who who;
	int cold = !state_hot(st);

	/* The guard reads the driver's counters: nginx has none to read. */
	if (cmd_arg_int(item, A_BAKE, 0) > 0 && item->d->conf->drv->stats == NULL) {
		cmd_error(item, E_REFUSED, "switch --bake: the nginx driver has no "
		    "counters for the guard to watch; --bake needs HAProxy (runtime or "
		    "reload mode, with a stats socket); nothing was changed");
		return;
	}
	if (!cold_pool_gate(item, 1, ", or switch --force"))
		return;
	if (cmd_arg_bool(item, A_NO_SMOKE) || item->d->conf->nchecks == 0) {
		cmd_pool_switch(item, cold, "switch");
		return;
	}
	cmd_who(item, &who);
	smoke_start(item->d, &who, cold, switch_smoked, item);
}

void
cmd_back_exec(struct cmdq_item *item)
{
	struct state *st = item->d->state;
	json_t *last = json_object_get(state_doc(st), "last_switch");
	int cold = !state_hot(st);
	const char *pstate = json_string_value(json_object_get(state_pool(st, cold),
	    "state")) ?: PS_EMPTY;
	const char *err = json_string_value(json_object_get(state_pool(st, cold), "error"));

	if (canary_back(item))
		return;
	if (!json_is_object(last)) {
		cmd_error(item, E_REFUSED, "nothing to go back to: no switch is recorded");
		return;
	}
	/*
	 * "back" trusts the old pool because it was serving a moment ago.  A
	 * failed cold-deploy or smoke run since then means it no longer runs
	 * what was live: flipping to it would be no way back.
	 */
	if (strcmp(pstate, PS_FAILED) == 0) {
		cmd_error(item, E_REFUSED, "the cold pool %s is failed since the last switch "
		    "(%s); it no longer runs what was live, so there is nothing to go back "
		    "to; nothing was changed (switch --force flips to it anyway)",
		    pool_name(cold), err ? err : "no reason recorded");
		return;
	}
	cmd_pool_switch(item, cold, "back");
}
