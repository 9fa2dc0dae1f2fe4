/*
 * cmd-hosts.c — "hosts POOL": the host part of each server address of a
 * pool, for building Capistrano roles (an SSH target, so no HTTP port).
 */
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "protocol.h"
#include "state.h"

void
cmd_hosts_exec(struct cmdq_item *item)
{
	struct state *st = item->d->state;
	const char *which = cmd_arg_str(item, A_POOL);
	int idx = pool_index(which), hot = state_hot(st);
	const struct pool *p;
	json_t *hosts = json_array(), *servers = json_array();
	size_t i, j;
	char host[256], *colon;

	if (strcmp(which, ROLE_HOT) == 0)
		idx = hot;
	else if (strcmp(which, ROLE_COLD) == 0)
		idx = !hot;
	p = &item->d->conf->pools[idx];
	for (i = 0; i < p->nservers; i++) {
		snprintf(host, sizeof(host), "%s", p->servers[i].address);
		if ((colon = strrchr(host, ':')) != NULL)
			*colon = '\0';
		if (host[0] == '[' && host[strlen(host) - 1] == ']') {
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
		for (j = 0; j < json_array_size(hosts); j++)
			if (strcmp(json_string_value(json_array_get(hosts, j)), host) == 0)
				break;
		if (j == json_array_size(hosts))
			json_array_append_new(hosts, json_string(host));
		json_array_append_new(servers, json_pack("{s:s, s:s}", "name",
		    p->servers[i].name, "address", p->servers[i].address));
	}
	cmd_done(item, json_pack("{s:s, s:s, s:o, s:o}", "pool", p->name,
	    "role", idx == hot ? ROLE_HOT : ROLE_COLD, "hosts", hosts, "servers", servers));
}
