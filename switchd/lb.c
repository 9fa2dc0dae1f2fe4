/*
 * lb.c — picks the load balancer driver for a config and holds what every
 * driver shares: which backend each host name maps to, the text of the
 * file that keeps it across restarts (HAProxy's map, or nginx's include).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv.h"
#include "log.h"
#include "switchd.h"

/* Every driver, by the name lb_driver_name() gives a config. */
static const struct lb_driver *const drivers[] = {
	&drv_haproxy_runtime,		/* "haproxy-runtime" */
	&drv_haproxy_reload,		/* "haproxy-reload" */
	&drv_nginx,			/* "nginx" */
};

/* "haproxy-runtime", "haproxy-reload" or "nginx". */
static void
lb_driver_name(const struct config *conf, char *buf, size_t len)
{
	if (strcmp(conf->driver, "haproxy") == 0)
		snprintf(buf, len, "haproxy-%s", conf->hap_mode);
	else
		snprintf(buf, len, "%s", conf->driver);
}

size_t
lb_one_node(const struct config *conf)
{
	(void)conf;
	return 1;
}

char *
lb_nodes_text(const struct lb *lb)
{
	size_t n = lb->drv->nnodes(lb->conf);

	return xasprintf("%zu %s node%s", n, lb->drv->product, n == 1 ? "" : "s");
}

struct lb *
lb_new(struct event_base *base, struct config *conf)
{
	struct lb *lb = xcalloc(1, sizeof(*lb));
	char name[64];
	size_t i;

	lb->base = base;
	lb->conf = conf;
	lb->refs = 1;
	lb_driver_name(conf, name, sizeof(name));
	for (i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (strcmp(drivers[i]->name, name) == 0)
			lb->drv = drivers[i];
	/* config.c accepts only what this table has. */
	if (lb->drv == NULL)
		fatalx("%s: no load balancer driver \"%s\"", __func__, name);
	return lb;
}

const char *
pool_name(int idx)
{
	return idx == POOL_B ? POOL_BLUE : POOL_GREEN;
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
	/* The canary map follows the roles: the cold pool, at the state's split. */
	m->canary[0] = '\0';
	if (conf->hap_canary_map != NULL)
		snprintf(m->canary, sizeof(m->canary), "%s:%d", conf->pools[!hot].backend,
		    canary_percent(!hot));
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

/* The pool a node serves hot, or -1: it did not answer, or has no valid map. */
int
lb_node_serves(const struct config *conf, const struct lb_node *n)
{
	struct lb_mapping want;
	int hot = n->ok && n->has_map ? lb_mapping_hot(conf, &n->map) : -1;

	/* A node whose canary split is not the state's does not serve it either. */
	if (hot >= 0 && conf->hap_canary_map != NULL) {
		lb_mapping_for(conf, hot, &want);
		if (strcmp(want.canary, n->map.canary) != 0)
			return -1;
	}
	return hot;
}

char *
lb_map_text(const struct config *conf, const struct lb_mapping *m)
{
	if (strcmp(conf->driver, "nginx") == 0)
		return nginx_include_text(conf, m);
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
