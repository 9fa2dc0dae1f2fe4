/*
 * cmd-history.c — "history [-n N]": the audit journal, newest first.
 */
#include "cmd.h"
#include "daemon.h"
#include "protocol.h"
#include "state.h"

/* The reply of "history", also served as /api/history; NULL if n is out of range. */
json_t *
history_json(struct daemon *d, long long n)
{
	if (n <= 0 || n > HISTORY_MAX_N)
		return NULL;
	return json_pack("{s:o, s:b}", "entries", history_read(d->state, (int)n), P_OK, 1);
}

void
cmd_history_exec(struct cmdq_item *item)
{
	json_t *r = history_json(item->d, cmd_arg_int(item, A_N, 20));

	if (r == NULL) {
		cmd_error(item, E_USAGE, "history: -n must be 1..%d", HISTORY_MAX_N);
		return;
	}
	cmd_done(item, r);
}
