/*
 * lb.c — the table of load balancer drivers, a driver bound to a config
 * (struct lb), and what every driver shares: which backend each host name
 * maps to, and which pool a node serves.  It asks no driver which it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "lb.h"
#include "log.h"
#include "state.h"
#include "util.h"

/*
 * Every driver.  Adding one is a new drv-*.c that defines its struct
 * lb_driver, and its line here: config.c then picks it by its section
 * (and mode) and lets it read that section.
 */
#define LB_DRIVERS							\
	D(drv_haproxy_runtime)	/* haproxy { mode = "runtime"; }, the default */ \
	D(drv_haproxy_reload)	/* haproxy { mode = "reload"; } */	\
	D(drv_nginx)		/* nginx { ... } */

#define D(drv)	extern const struct lb_driver drv;
LB_DRIVERS
#undef D

const struct lb_driver *const lb_drivers[] = {
#define D(drv)	&drv,
	LB_DRIVERS
#undef D
	NULL
};

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

	/* config.c chose it: a config without one was refused. */
	if (conf->drv == NULL)
		fatalx("%s: no load balancer driver", __func__);
	lb->base = base;
	lb->conf = conf;
	lb->refs = 1;
	lb->drv = conf->drv;
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
lb_mapping_for(const struct config *conf, struct state *st, int hot, struct lb_mapping *m)
{
	snprintf(m->live, sizeof(m->live), "%s", conf->pools[hot].backend);
	snprintf(m->cold, sizeof(m->cold), "%s", conf->pools[!hot].backend);
	/* The canary map follows the roles: the cold pool, at the state's split. */
	m->canary[0] = '\0';
	if (conf->hap_canary_map != NULL)
		snprintf(m->canary, sizeof(m->canary), "%s:%d", conf->pools[!hot].backend,
		    state_canary_percent(st, !hot));
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
lb_node_serves(const struct config *conf, struct state *st, const struct lb_node *n)
{
	struct lb_mapping want;
	int hot = n->ok && n->has_map ? lb_mapping_hot(conf, &n->map) : -1;

	/* A node whose canary split is not the state's does not serve it either. */
	if (hot >= 0 && conf->hap_canary_map != NULL) {
		lb_mapping_for(conf, st, hot, &want);
		if (strcmp(want.canary, n->map.canary) != 0)
			return -1;
	}
	return hot;
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

/* The canary map file (haproxy.canary_map) for m; 0 without one. */
int
lb_canary_file_write(const struct config *conf, const struct lb_mapping *m)
{
	char *text;
	int r;

	if (conf->hap_canary_map == NULL || m->canary[0] == '\0')
		return 0;
	text = xasprintf("# written by switchd: the share of %s on the cold pool "
	    "(<backend>:<percent>); do not edit\n%s %s\n", conf->live_host,
	    conf->live_host, m->canary);
	r = file_write_atomic(conf->hap_canary_map, text, strlen(text), 0644);
	free(text);
	return r;
}
