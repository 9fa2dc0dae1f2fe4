/*
 * cmd-status.c — "status": the roles and versions from the state file,
 * and what every load balancer node actually serves, asked live.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "guard.h"
#include "hapx.h"
#include "lb.h"
#include "protocol.h"
#include "state.h"
#include "util.h"

/* Configured servers with HAProxy's word on each, then any it has besides. */
static json_t *
pool_servers(const struct pool *p, struct lb_view *v)
{
	json_t *out = json_array(), *live = NULL, *byname = json_object(), *s;
	size_t i;

	for (i = 0; i < v->nnodes && live == NULL; i++)
		if (v->nodes[i].servers != NULL)
			live = json_object_get(v->nodes[i].servers, p->backend);
	/* By name, so that 1000-server pools cost no more than a lookup each. */
	json_array_foreach(live, i, s)
		json_object_set(byname, json_string_value(json_object_get(s, "name")), s);
	for (i = 0; i < p->nservers; i++) {
		json_t *l = json_object_get(byname, p->servers[i].name);

		json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "name",
		    p->servers[i].name, "address", p->servers[i].address, "status",
		    l ? json_string_value(json_object_get(l, "status")) : "unknown"));
		json_object_del(byname, p->servers[i].name);
	}
	json_array_foreach(live, i, s)
		if (json_object_get(byname, json_string_value(json_object_get(s, "name"))))
			json_array_append(out, s);
	json_decref(byname);
	return out;
}

struct status_job {
	struct daemon	*d;
	status_cb	 cb;
	void		*arg;
};

static void
status_view(struct lb_view *v, void *arg)
{
	struct status_job *job = arg;
	struct state *st = job->d->state;
	struct config *conf = job->d->conf;
	json_t *doc = state_doc(st), *r, *pools, *nodes, *p, *lock;
	int hot = state_hot(st), i, nh, agree = 1, first = -2;
	size_t n;

	pools = json_object();
	for (i = 0; i < NPOOLS; i++) {
		p = json_deep_copy(state_pool(st, i));
		json_object_set_new(p, "backend", json_string(conf->pools[i].backend));
		json_object_set_new(p, "role", json_string(i == hot ? ROLE_HOT : ROLE_COLD));
		json_object_set_new(p, "servers", pool_servers(&conf->pools[i], v));
		json_object_set_new(pools, pool_name(i), p);
	}
	nodes = json_array();
	for (n = 0; n < v->nnodes; n++) {
		struct lb_node *node = &v->nodes[n];
		json_t *j = json_pack("{s:s, s:b}", "socket", node->name, "ok", node->ok);

		nh = lb_node_serves(conf, st, node);
		if (node->error[0])
			json_object_set_new(j, "error", json_string(node->error));
		if (node->ok)
			json_object_set_new(j, "map", json_pack("{s:s, s:s}",
			    "live", node->map.live, "cold", node->map.cold));
		json_object_set_new(j, "serves", nh >= 0 ? json_string(pool_name(nh)) : json_null());
		if (!node->ok || nh != hot)
			agree = 0;
		if (first == -2)
			first = nh;
		json_array_append_new(nodes, j);
	}
	/* Shown until then, and repaired in the background (with pre-checks). */
	if (!agree && !busy_held(job->d))
		repair_schedule(job->d, "status found the nodes not all serving the hot pool");
	lock = state_lock(st);
	r = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:o, s:b, s:O, s:O, s:o, s:O}",
	    "hot", pool_name(hot), "cold", pool_name(!hot),
	    "hosts", "live", conf->live_host, "cold", conf->cold_host,
	    "pools", pools, "nodes", nodes, "agree", agree,
	    "lock", lock ? lock : json_null(),
	    "last_switch", json_object_get(doc, "last_switch"),
	    "busy", cmd_busy_json(job->d),
	    "ec2", json_object_get(doc, "ec2"));
	json_object_set_new(r, "cluster", cluster_status_json());
	json_object_set_new(r, "canary", canary_json(job->d));
	json_object_set_new(r, "guard", guard_json(job->d));
	if (json_array_size(state_load_errors(st)) > 0)
		json_object_set(r, "state_errors", state_load_errors(st));
	lb_view_free(v);
	json_object_set_new(r, P_OK, json_true());
	job->cb(r, job->arg);
	free(job);
}

/*
 * The reply of "status", built for the control socket and for the HTTP
 * server alike, so that /api/status is exactly switchctl --json status.
 */
void
status_json(struct daemon *d, status_cb cb, void *arg)
{
	struct status_job *job = xcalloc(1, sizeof(*job));

	job->d = d;
	job->cb = cb;
	job->arg = arg;
	d->lb->drv->observe(d->lb, status_view, job);
}

static void
status_reply(json_t *r, void *arg)
{
	cmd_done(arg, r);
}

void
cmd_status_exec(struct cmdq_item *item)
{
	status_json(item->d, status_reply, item);
}
