/*
 * lb.c — picks the load balancer driver for a config and holds what every
 * driver shares: which backend each host name maps to, and the map text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "switchd.h"

struct lb *
lb_new(struct event_base *base, struct config *conf)
{
	struct lb *lb = xcalloc(1, sizeof(*lb));

	lb->base = base;
	lb->conf = conf;
	lb->refs = 1;
	lb->drv = &drv_haproxy_runtime;
	return lb;
}

struct lb *
lb_ref(struct lb *lb)
{
	lb->refs++;
	return lb;
}

void
lb_unref(struct lb *lb)
{
	if (lb == NULL || --lb->refs > 0)
		return;
	config_free(lb->conf);
	free(lb);
}

void
lb_mapping_for(const struct config *conf, int hot, struct lb_mapping *m)
{
	snprintf(m->live, sizeof(m->live), "%s", conf->pools[hot].backend);
	snprintf(m->cold, sizeof(m->cold), "%s", conf->pools[!hot].backend);
}

/* Which pool a mapping makes hot, or -1 if it is not blue/green crosswise. */
int
lb_mapping_hot(const struct config *conf, const struct lb_mapping *m)
{
	int hot;

	for (hot = 0; hot < NPOOLS; hot++)
		if (strcmp(m->live, conf->pools[hot].backend) == 0 &&
		    strcmp(m->cold, conf->pools[!hot].backend) == 0)
			return hot;
	return -1;
}

char *
lb_map_text(const struct config *conf, const struct lb_mapping *m)
{
	return xasprintf("# written by switchd: %s is served by %s; do not edit\n"
	    "%s %s\n%s %s\n", conf->live_host, m->live,
	    conf->live_host, m->live, conf->cold_host, m->cold);
}

void
lb_view_free(struct lb_view *v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < v->nnodes; i++) {
		free(v->nodes[i].name);
		json_decref(v->nodes[i].servers);
	}
	free(v->nodes);
	free(v);
}
