/*
 * cmd-smoke.c — "smoke": run the smoke checks against the cold pool now,
 * through the real load balancer (smoke.c), without deploying.
 */
#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "protocol.h"
#include "smoke.h"
#include "state.h"

static void
smoke_cmd_done(int passed, json_t *results, const char *summary, void *arg)
{
	struct cmdq_item *item = arg;
	struct state *st = item->d->state;
	json_t *r = json_pack("{s:s, s:b, s:O, s:s}", "pool", pool_name(!state_hot(st)),
	    "passed", passed, "checks", results, "summary", summary);

	if (passed)
		cmd_done(item, r);
	else
		cmd_error_json(item, E_SMOKE, r, "smoke checks failed on %s: %s",
		    pool_name(!state_hot(st)), summary);
}

void
cmd_smoke_exec(struct cmdq_item *item)
{
	struct state *st = item->d->state;
	struct op_who who;

	cmd_who(item, &who);
	smoke_start(item->d, &who, !state_hot(st), smoke_cmd_done, item);
}
