/*
 * cmd-reload.c — "reload": re-read the config file; a bad one is refused
 * and the running one kept (as SIGHUP does).
 */
#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "protocol.h"

void
cmd_reload_exec(struct cmdq_item *item)
{
	json_t *errors = NULL, *extra;

	if (item->d->reload(item->d, &errors) == -1) {
		extra = json_pack("{s:o}", "errors", errors ? errors : json_array());
		cmd_error_json(item, E_CONFIG, extra, "the new configuration is refused "
		    "and the running one kept: %s", json_string_value(json_array_get(
		    json_object_get(extra, "errors"), 0)) ?: "unreadable");
		return;
	}
	cmd_done(item, json_pack("{s:s}", "config", item->d->conf->path));
}
