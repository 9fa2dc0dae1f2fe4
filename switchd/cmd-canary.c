/*
 * cmd-canary.c — "canary PERCENT": a share of the live host's traffic on
 * the cold pool, through HAProxy's canary map (runtime API, no reload),
 * with the refusals and pre-checks of "switch"; "canary 0" ends it.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd-table.h"
#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "guard.h"
#include "lb.h"
#include "protocol.h"
#include "smoke.h"
#include "state.h"
#include "util.h"

static void
canary_done(int ok, const char *code, const char *error, void *arg)
{
	struct cmdq_item *item = arg;
	struct state *st = item->d->state;
	int hot = state_hot(st);

	if (!ok) {
		cmd_error(item, code, "%s", error);
		return;
	}
	cmd_done(item, json_pack("{s:s, s:i, s:s, s:s, s:I}", "pool", pool_name(!hot),
	    "percent", state_canary_percent(st, !hot), "hot", pool_name(hot), "cold", pool_name(!hot),
	    "took_ms", (json_int_t)(now_ms() - item->started_ms)));
}

static int	parse_percent(const char *);

static void
cmd_canary_set(struct cmdq_item *item, int percent)
{
	struct op_who who;

	cmd_who(item, &who);
	canary_set(item->d, &who, percent, "canary", canary_done, item);
}

static void
canary_prechecked(const char *code, const char *error, void *arg)
{
	struct cmdq_item *item = arg;

	if (code != NULL) {
		cmd_error(item, code, "%s; nothing was changed", error);
		return;
	}
	cmd_canary_set(item, parse_percent(cmd_arg_str(item, A_PERCENT)));
}

static void
canary_precheck(struct cmdq_item *item)
{
	struct state *st = item->d->state;
	struct config *conf = item->d->conf;
	struct lb *lb = item->d->lb;
	struct lb_mapping to;
	int cold = !state_hot(st);

	lb_mapping_for(conf, st, state_hot(st), &to);
	cmd_progress(item, "checking every HAProxy node: backend %s, at least %d server%s UP",
	    conf->pools[cold].backend, conf->min_up, conf->min_up == 1 ? "" : "s");
	lb->drv->precheck(lb, &to, conf->pools[cold].backend, conf->min_up,
	    canary_prechecked, item);
}

static void
canary_smoked(int passed, json_t *results, const char *summary, void *arg)
{
	struct cmdq_item *item = arg;

	if (!passed) {
		smoke_gate_failed(item, "a canary", "no canary was set", results, summary);
		return;
	}
	cmd_progress(item, "smoke: %s", summary);
	canary_precheck(item);
}

/* A "back" while a canary runs ends the canary: the live host never moved. */
static void
canary_back_done(int ok, const char *code, const char *error, void *arg)
{
	struct cmdq_item *item = arg;
	int hot = state_hot(item->d->state);

	if (!ok) {
		cmd_error(item, code, "%s", error);
		return;
	}
	cmd_done(item, json_pack("{s:s, s:s, s:s, s:s, s:i, s:I}", "from", pool_name(hot),
	    "to", pool_name(hot), "hot", pool_name(hot), "cold", pool_name(!hot),
	    "canary", 0, "took_ms", (json_int_t)(now_ms() - item->started_ms)));
}

int
canary_back(struct cmdq_item *item)
{
	struct state *st = item->d->state;
	struct op_who who;

	if (rollout_running())
		return rollout_abort(item);
	if (state_canary_percent(st, !state_hot(st)) <= 0)
		return 0;
	cmd_progress(item, "a canary runs: ending it (the live host stays on %s)",
	    pool_name(state_hot(st)));
	cmd_who(item, &who);
	canary_set(item->d, &who, 0, "back", canary_back_done, item);
	return 1;
}

/* "10", "10%": 0..99, else -1. */
static int
parse_percent(const char *s)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	v = strtol(s, &end, 10);
	if (*end == '%')
		end++;
	if (*end != '\0' || end == s || v < 0 || v > 99)
		return -1;
	return (int)v;
}

/*
 * The checks of "switch" before any traffic moves: the cold pool verified
 * (and at VERSION with --expect), its smoke checks passing.  0 if refused
 * (the reply is sent).
 */
int
canary_refusals(struct cmdq_item *item)
{
	const char *why;

	if ((why = guard_unsupported(item->d->conf)) != NULL) {
		cmd_error(item, E_REFUSED, "%s: %s", item->info->name, why);
		return 0;
	}
	return cold_pool_gate(item, 0, "; nothing was changed");
}

void
cmd_canary_exec(struct cmdq_item *item)
{
	struct state *st = item->d->state;
	int percent = parse_percent(cmd_arg_str(item, A_PERCENT));
	struct op_who who;
	const char *why;

	if (percent < 0) {
		cmd_error(item, E_USAGE, "canary: PERCENT must be a whole number from 0 "
		    "to 99 (0 ends the canary), not \"%s\"", cmd_arg_str(item, A_PERCENT));
		return;
	}
	if (percent == 0) {
		/* Ending a canary is always safe, like "back": no checks. */
		if ((why = guard_unsupported(item->d->conf)) != NULL) {
			cmd_error(item, E_REFUSED, "canary: %s", why);
			return;
		}
		cmd_canary_set(item, 0);
		return;
	}
	if (!canary_refusals(item))
		return;
	if (cmd_arg_bool(item, A_NO_SMOKE) || item->d->conf->nchecks == 0) {
		canary_precheck(item);
		return;
	}
	cmd_who(item, &who);
	smoke_start(item->d, &who, !state_hot(st), canary_smoked, item);
}
