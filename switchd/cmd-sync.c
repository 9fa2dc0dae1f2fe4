/*
 * cmd-sync.c — "sync": make everything agree with the state file, now.
 * Every HAProxy node is made to serve the state's roles (as the background
 * repair does), then EC2's role tags are read and the drifting ones
 * rewritten.  It reports what it found and what it fixed.
 */
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "discover.h"
#include "lb.h"
#include "protocol.h"
#include "roles.h"
#include "state.h"
#include "util.h"

struct sync_op {
	struct cmdq_item *item;
	struct lb	*lb;
	json_t		*report;
};

static void
sync_finish(struct sync_op *op, const char *code, const char *error)
{
	if (code != NULL)
		cmd_error_json(op->item, code, op->report, "%s", error);
	else
		cmd_done(op->item, op->report);
	lb_unref(op->lb);
	free(op);
}

static void
sync_retagged(const char *code, const char *error, void *arg)
{
	struct sync_op *op = arg;
	json_t *ec2 = json_object_get(op->report, "ec2");

	if (code != NULL) {
		json_object_set_new(ec2, "result", json_string("failed"));
		sync_finish(op, E_EC2, error);
		return;
	}
	json_object_set_new(ec2, "result", json_string("fixed"));
	sync_finish(op, NULL, NULL);
}

static void
sync_checked(json_t *drift, const char *code, const char *error, void *arg)
{
	struct sync_op *op = arg;
	json_t *ec2;

	if (code != NULL) {
		json_object_set_new(op->report, "ec2", json_pack("{s:s, s:s}", "result",
		    "failed", "error", error));
		sync_finish(op, E_EC2, error);
		return;
	}
	ec2 = json_pack("{s:O}", "drift", drift);
	json_object_set_new(op->report, "ec2", ec2);
	if (json_array_size(drift) == 0) {
		json_object_set_new(ec2, "result", json_string("in sync"));
		roles_mark_synced(op->item->d);
		sync_finish(op, NULL, NULL);
		return;
	}
	cmd_progress(op->item, "ec2: %zu instance%s not tagged as their role; retagging",
	    json_array_size(drift), json_array_size(drift) == 1 ? "" : "s");
	roles_retag(op->item->d, "switchctl sync", sync_retagged, op);
}

static void
sync_ec2(struct sync_op *op)
{
	if (!roles_enabled(op->item->d)) {
		json_object_set_new(op->report, "ec2", json_pack("{s:s}", "result",
		    "not configured"));
		sync_finish(op, NULL, NULL);
		return;
	}
	cmd_progress(op->item, "ec2: reading the role tags");
	roles_check(op->item->d, sync_checked, op);
}

static void
sync_applied(const char *code, const char *error, void *arg)
{
	struct sync_op *op = arg;
	struct state *st = op->item->d->state;

	if (code != NULL) {
		json_object_set_new(op->report, "nodes", json_string("failed"));
		sync_finish(op, code, error);
		return;
	}
	json_object_set_new(op->report, "nodes", json_string("repaired"));
	intent_clear(st);
	sync_ec2(op);
}

static void
sync_view(struct lb_view *v, void *arg)
{
	struct sync_op *op = arg;
	struct state *st = op->item->d->state;
	struct lb_mapping want;
	size_t i;
	int agree = 1;

	lb_mapping_for(op->lb->conf, st, state_hot(st), &want);
	for (i = 0; i < v->nnodes; i++) {
		if (!v->nodes[i].ok) {
			char *msg = xasprintf("node %s: %s", v->nodes[i].name, v->nodes[i].error);

			lb_view_free(v);
			json_object_set_new(op->report, "nodes", json_string("unreachable"));
			sync_finish(op, op->lb->drv->error_code, msg);
			free(msg);
			return;
		}
		if (lb_node_serves(op->lb->conf, st, &v->nodes[i]) != state_hot(st))
			agree = 0;
	}
	lb_view_free(v);
	if (agree) {
		json_object_set_new(op->report, "nodes", json_string("in sync"));
		sync_ec2(op);
		return;
	}
	cmd_progress(op->item, "nodes disagree with the state file; making every node "
	    "serve %s hot", pool_name(state_hot(st)));
	op->lb->drv->apply(op->lb, &want, sync_applied, op);
}

static void
sync_nodes(struct sync_op *op)
{
	cmd_progress(op->item, "checking every HAProxy node against the state file");
	op->lb->drv->observe(op->lb, sync_view, op);
}

static void
sync_discovered(json_t *report, const char *code, const char *error, void *arg)
{
	struct sync_op *op = arg;

	if (code != NULL) {
		json_object_set_new(op->report, "discover", json_pack("{s:s, s:s}",
		    "result", "failed", "error", error));
		sync_finish(op, E_EC2, error);
		return;
	}
	json_object_set(op->report, "discover", report);
	cmd_progress(op->item, "ec2: pools have %zu blue and %zu green instance(s); "
	    "%zu added, %zu draining, %zu removed",
	    json_array_size(json_object_get(report, "blue")),
	    json_array_size(json_object_get(report, "green")),
	    json_array_size(json_object_get(report, "added")),
	    json_array_size(json_object_get(report, "draining")),
	    json_array_size(json_object_get(report, "removed")));
	sync_nodes(op);
}

void
cmd_sync_exec(struct cmdq_item *item)
{
	struct state *st = item->d->state;
	struct sync_op *op = xcalloc(1, sizeof(*op));

	op->item = item;
	op->lb = lb_ref(item->d->lb);
	op->report = json_pack("{s:s, s:s}", "hot", pool_name(state_hot(st)),
	    "cold", pool_name(!state_hot(st)));
	if (item->d->conf->ec2_discover) {
		cmd_progress(item, "ec2: discovering the pools' instances");
		discover_refresh(item->d, sync_discovered, op);
		return;
	}
	sync_nodes(op);
}
