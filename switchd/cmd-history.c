/*
 * cmd-history.c — "history [-n N]": the audit journal, newest first.
 */
#include "switchd.h"

void
cmd_history_exec(struct cmdq_item *item)
{
	long long n = cmd_arg_int(item, A_N, 20);

	if (n <= 0 || n > 100000) {
		cmd_error(item, E_USAGE, "history: -n must be 1..100000");
		return;
	}
	cmd_done(item, json_pack("{s:o}", "entries", history_read((int)n)));
}
