/*
 * discover.c — pool membership from EC2 (ec2.discover = true).
 *
 * DescribeInstances with tag:<pool_tag> = blue|green and running (plus the
 * user's ec2.filters) says which instances make each pool.  Each is a
 * server named by its instance id at <private ip>:<ec2.port>.  A new one is
 * added to its backend on every HAProxy node at run time (add server, then
 * enable health and enable server: dynamic servers start in maintenance);
 * one that is gone is drained first (set server ... state drain), deleted
 * only once it has no connection left (state maint, del server), so a
 * request in flight is never cut.  haproxy.backends_file, if set, is
 * rewritten atomically with every server so that a reload keeps them (a
 * reload forgets dynamic servers); the admin's haproxy.cfg is never edited.
 *
 * Refreshed at start, on `switchctl sync` and every ec2.discover_interval
 * seconds.  The discovered servers are kept in state.json, so `hosts cold`
 * answers before EC2 does after a restart.  EC2's word is checked before
 * it is used: ids and addresses must look like ones (they go verbatim into
 * admin commands and the backends file), and one answer may not remove
 * too much of a pool (discover_guard).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "discover.h"
#include "ec2.h"
#include "lb.h"
#include "log.h"
#include "protocol.h"
#include "roles.h"
#include "state.h"
#include "util.h"

#define DRAIN_POLL_S	1	/* how often a draining server is looked at */

static struct event	*tick_ev;	/* the periodic refresh */
static int		 refreshing;

struct refresh {
	struct daemon	*d;
	discover_done_cb cb;
	void		*arg;
	json_t		*found;		/* {"blue": [{id, address}], "green": [...]} */
	json_t		*report;	/* {"added": [], "removed": [], "draining": []} */
	size_t		 node;		/* node being changed */
	json_t		*script;	/* the changes for that node (struct lb_servers) */
	struct lb	*lb;
};

/*
 * The pool's servers are the configured ones followed by the discovered
 * ones: rebuild the tail of conf->pools[].servers from state.json.
 */
void
discover_apply_state(struct daemon *d, struct config *conf)
{
	json_t *disc = json_object_get(state_doc(d->state), "discovered"), *list, *s;
	struct pool *p;
	size_t i, j, n;
	int k;

	for (k = 0; k < NPOOLS; k++) {
		p = &conf->pools[k];
		/* The configured servers come first and never change at run time. */
		if (conf->nstatic[k] < 0)
			conf->nstatic[k] = (int)p->nservers;
		for (j = (size_t)conf->nstatic[k]; j < p->nservers; j++) {
			free(p->servers[j].name);
			free(p->servers[j].address);
			free(p->servers[j].instance);
		}
		p->nservers = (size_t)conf->nstatic[k];
		list = json_object_get(disc, pool_name(k));
		n = json_array_size(list);
		if (n == 0)
			continue;
		p->servers = realloc(p->servers, (p->nservers + n) * sizeof(*p->servers));
		if (p->servers == NULL)
			fatalx("out of memory");
		json_array_foreach(list, i, s) {
			struct server *sv;

			/* state.c checked them at load; EC2's answers are checked too. */
			if (!valid_instance_id(json_string_value(json_object_get(s, "id"))) ||
			    !valid_ip_port(json_string_value(json_object_get(s, "address"))))
				continue;
			sv = &p->servers[p->nservers++];
			sv->name = xstrdup(json_string_value(json_object_get(s, "id")));
			sv->instance = xstrdup(sv->name);
			sv->address = xstrdup(json_string_value(json_object_get(s, "address")));
		}
	}
}

static int
is_discovered_name(const char *name)
{
	return strncmp(name, "i-", 2) == 0;
}

static void
refresh_finish(struct refresh *rf, const char *code, const char *error)
{
	struct timeval poll = { DRAIN_POLL_S, 0 };

	refreshing = 0;
	/* Whoever asked (the ticker or sync), a drain is looked at again soon. */
	if (tick_ev != NULL && json_array_size(json_object_get(rf->report, "draining")) > 0) {
		evtimer_del(tick_ev);
		evtimer_add(tick_ev, &poll);
	}
	if (rf->cb != NULL)
		rf->cb(rf->report, code, error, rf->arg);
	json_decref(rf->found);
	json_decref(rf->report);
	json_decref(rf->script);
	lb_unref(rf->lb);
	free(rf);
}

/* ------------------------------------------------- the backends file */

static void
write_backends_file(const struct config *conf)
{
	char *text = NULL, *line;
	size_t len = 0, i;
	FILE *f;
	int k;

	if (conf->backends_file == NULL)
		return;
	if ((f = open_memstream(&text, &len)) == NULL)
		return;
	fprintf(f, "# written by switchd from its configuration and EC2: do not edit.\n"
	    "# Load it after haproxy.cfg (haproxy -f haproxy.cfg -f %s);\n"
	    "# the options of these backends come from \"defaults %s\" there.\n",
	    conf->backends_file, conf->backends_defaults);
	for (k = 0; k < NPOOLS; k++) {
		const struct pool *p = &conf->pools[k];

		fprintf(f, "\nbackend %s from %s\n", p->backend, conf->backends_defaults);
		for (i = 0; i < p->nservers; i++) {
			line = xasprintf("\tserver %s %s %s\n", p->servers[i].name,
			    p->servers[i].address, conf->ec2_server_options);
			fputs(line, f);
			free(line);
		}
	}
	fclose(f);
	if (file_write_atomic(conf->backends_file, text, len, 0644) == -1)
		log_warn("discover: write %s", conf->backends_file);
	free(text);
}

/* ------------------------------------------------- HAProxy, node by node */

static void node_next(struct refresh *);
static void discover_node_start(struct refresh *);
static void discover_guarded(struct lb_view *, void *);

static void
changes_done(json_t *errors, void *arg)
{
	struct refresh *rf = arg;
	const char *node = rf->lb->drv->servers->node(rf->lb->conf, rf->node);
	json_t *e;
	size_t i;

	/* One server that will not go is not a reason to stop the rest. */
	json_array_foreach(errors, i, e) {
		log_warnx("discover: node %s: %s", node, json_string_value(e));
		json_array_append_new(json_object_get(rf->report, "errors"),
		    json_sprintf("node %s: %s", node, json_string_value(e)));
	}
	node_next(rf);
}

/* The next node, or the end. */
static void
node_next(struct refresh *rf)
{
	rf->node++;
	if (rf->node < rf->lb->drv->servers->nnodes(rf->lb->conf)) {
		discover_node_start(rf);
		return;
	}
	refresh_finish(rf, NULL, NULL);
}

static json_t *
find_server(json_t *list, const char *name)
{
	size_t i;
	json_t *s;

	json_array_foreach(list, i, s)
		if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
			return s;
	return NULL;
}

static void
report_add(struct refresh *rf, const char *what, const char *backend, const char *name)
{
	json_t *list = json_object_get(rf->report, what);
	char *s = xasprintf("%s/%s", backend, name);
	size_t i;

	for (i = 0; i < json_array_size(list); i++)
		if (strcmp(json_string_value(json_array_get(list, i)), s) == 0)
			break;
	if (i == json_array_size(list))
		json_array_append_new(list, json_string(s));
	free(s);
}

/* What this node has against what EC2 says: the changes to get there. */
static void
node_stat(json_t *stat, const char *err, void *arg)
{
	struct refresh *rf = arg;
	const struct config *conf = rf->lb->conf;
	json_t *have, *want, *s;
	size_t i;
	int k;

	if (err != NULL) {
		json_array_append_new(json_object_get(rf->report, "errors"),
		    json_sprintf("node %s: show stat: %s",
		    rf->lb->drv->servers->node(conf, rf->node), err));
		node_next(rf);
		return;
	}
	json_decref(rf->script);
	rf->script = json_array();
	for (k = 0; k < NPOOLS; k++) {
		const char *be = conf->pools[k].backend;

		have = json_object_get(stat, be);
		want = json_object_get(rf->found, pool_name(k));
		json_array_foreach(want, i, s) {
			const char *id = json_string_value(json_object_get(s, "id"));

			if (find_server(have, id) != NULL)
				continue;
			json_array_append_new(rf->script, json_pack("{s:s, s:s, s:s, s:s}",
			    "op", "add", "backend", be, "name", id, "address",
			    json_string_value(json_object_get(s, "address"))));
			report_add(rf, "added", be, id);
		}
		json_array_foreach(have, i, s) {
			const char *name = json_string_value(json_object_get(s, "name"));
			int sessions = json_integer_value(json_object_get(s, "scur")) > 0;
			size_t j;
			int wanted = 0;

			if (!is_discovered_name(name))
				continue;	/* the admin's own servers are theirs */
			for (j = 0; j < json_array_size(want); j++)
				if (strcmp(json_string_value(json_object_get(json_array_get(want,
				    j), "id")), name) == 0)
					wanted = 1;
			if (wanted)
				continue;
			/*
			 * Gone from EC2: no new requests (drain), and deleted
			 * only once its last session has ended; until then the
			 * next tick looks again.  del server itself refuses a
			 * server with connections attached, so a session that
			 * raced in is never cut either.
			 */
			json_array_append_new(rf->script, json_pack("{s:s, s:s, s:s}",
			    "op", "drain", "backend", be, "name", name));
			if (sessions) {
				report_add(rf, "draining", be, name);
				continue;
			}
			json_array_append_new(rf->script, json_pack("{s:s, s:s, s:s}",
			    "op", "remove", "backend", be, "name", name));
			report_add(rf, "removed", be, name);
		}
	}
	json_decref(stat);
	rf->lb->drv->servers->change(rf->lb, rf->node, rf->script, changes_done, rf);
}

static void
discover_node_start(struct refresh *rf)
{
	rf->lb->drv->servers->read(rf->lb, rf->node, node_stat, rf);
}

/* ------------------------------------------------------------ the guard */

static int
list_has_id(json_t *list, const char *id)
{
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e)
		if (strcmp(json_string_value(json_object_get(e, "id")) ?: "", id) == 0)
			return 1;
	return 0;
}

/*
 * UP servers of a backend now, and how many stay UP without `gone`: the
 * fewest over the nodes that answer.  -1 when no node said.
 */
static void
count_up(struct lb_view *v, int (*up)(const char *), const char *backend, json_t *gone,
    int *now, int *after)
{
	size_t i, j;
	json_t *s;
	int n, a;

	*now = *after = -1;
	for (i = 0; v != NULL && i < v->nnodes; i++) {
		json_t *list = v->nodes[i].ok && v->nodes[i].servers ?
		    json_object_get(v->nodes[i].servers, backend) : NULL;

		if (list == NULL)
			continue;
		n = a = 0;
		json_array_foreach(list, j, s) {
			if (!up(json_string_value(json_object_get(s, "status")) ?: ""))
				continue;
			n++;
			if (!list_has_id(gone, json_string_value(json_object_get(s, "name")) ?: ""))
				a++;
		}
		if (*now < 0 || n < *now)
			*now = n;
		if (*after < 0 || a < *after)
			*after = a;
	}
}

/*
 * An answer that lists no instance (a filter typo, a renamed pool tag, tags
 * removed by hand) is a successful answer: taken at its word, it would drain
 * every discovered server of both pools.  So one pass may not remove more
 * than half (rounded up) of a pool's discovered servers, never all of them,
 * and never take the hot pool below min_up UP servers (or below what is UP
 * now, when that is less).  A pool that breaks a rule keeps every server this
 * pass (new ones are still added), and the refusal is logged, kept in
 * state.json for status, and journaled (so notified) when it is new.
 */
static void
discover_guard(struct refresh *rf, struct lb_view *v)
{
	const struct config *conf = rf->lb->conf;
	struct state *st = rf->d->state;
	json_t *prev = json_object_get(state_doc(st), "discovered");
	json_t *ec2 = json_object_get(state_doc(st), "ec2"), *refused = json_array();
	json_t *old, *e;
	char *reason, *ids;
	size_t i, n, nfound;
	int k, hot = state_hot(st), up_now, up_after, need;

	for (k = 0; k < NPOOLS; k++) {
		json_t *prevl = json_object_get(prev, pool_name(k));
		json_t *foundl = json_object_get(rf->found, pool_name(k));
		json_t *gone = json_array(), *kept;

		json_array_foreach(prevl, i, e)
			if (!list_has_id(foundl, json_string_value(json_object_get(e, "id")) ?: ""))
				json_array_append(gone, e);
		n = json_array_size(prevl);
		nfound = json_array_size(foundl);
		reason = NULL;
		if (json_array_size(gone) == 0) {
			json_decref(gone);
			continue;
		}
		count_up(v, rf->lb->drv->servers->up, conf->pools[k].backend, gone, &up_now,
		    &up_after);
		need = up_now < conf->min_up ? up_now : conf->min_up;
		if (nfound == 0)
			reason = xasprintf("EC2 lists none of the %zu instance%s of %s (a "
			    "filter or pool tag typo?); they are kept", n, n == 1 ? "" : "s",
			    pool_name(k));
		else if (json_array_size(gone) > (n + 1) / 2)
			reason = xasprintf("EC2 no longer lists %zu of the %zu instances of %s; "
			    "at most half go in one pass, so they are kept",
			    json_array_size(gone), n, pool_name(k));
		else if (k == hot && up_after >= 0 && up_after < need)
			reason = xasprintf("removing %zu instance%s of %s (hot) would leave %d "
			    "server%s UP, fewer than %d (min_up, or what is UP now); they are kept",
			    json_array_size(gone), json_array_size(gone) == 1 ? "" : "s",
			    pool_name(k), up_after, up_after == 1 ? "" : "s", need);
		if (reason == NULL) {
			json_decref(gone);
			continue;
		}
		/* Keep the pool as it was, plus what is new. */
		kept = json_deep_copy(prevl);
		json_array_foreach(foundl, i, e)
			if (!list_has_id(prevl, json_string_value(json_object_get(e, "id")) ?: ""))
				json_array_append(kept, e);
		json_object_set_new(rf->found, pool_name(k), kept);
		ids = NULL;
		json_array_foreach(gone, i, e) {
			char *t = xasprintf("%s%s%s", ids ? ids : "", ids ? " " : "",
			    json_string_value(json_object_get(e, "id")));
			free(ids);
			ids = t;
		}
		log_warnx("discover: refused: %s (%s)", reason, ids);
		json_array_append_new(refused, json_pack("{s:s, s:s, s:s}", "pool",
		    pool_name(k), "instances", ids, "reason", reason));
		json_array_append_new(json_object_get(rf->report, "refused"),
		    json_string(reason));
		free(ids);
		free(reason);
		json_decref(gone);
	}
	old = json_object_get(ec2, "discover_refused");
	if (json_array_size(refused) == 0) {
		if (old != NULL) {
			json_object_del(ec2, "discover_refused");
			state_save(st);
		}
		json_decref(refused);
		return;
	}
	if (!json_equal(old, refused)) {
		struct op_who who;
		char *msg = NULL;

		json_array_foreach(refused, i, e) {
			char *t = xasprintf("%s%s%s", msg ? msg : "", msg ? "; " : "",
			    json_string_value(json_object_get(e, "reason")));
			free(msg);
			msg = t;
		}
		who_switchd(&who, msg);
		who.uid = 0;
		history_append(st, journal_entry(&who, "discover", hot, hot,
		    "refused", NULL));
		free(msg);
		json_object_set_new(ec2, "discover_refused", refused);
		state_save(st);
	} else
		json_decref(refused);
}

/* ------------------------------------------------------------------ EC2 */

static void
described(json_t *instances, const char *code, const char *error, void *arg)
{
	struct refresh *rf = arg;
	struct config *conf = rf->lb->conf;
	json_t *inst;
	size_t i;
	int k;

	if (code != NULL) {
		log_warnx("discover: DescribeInstances failed (%s: %s); membership unchanged",
		    code, error);
		refresh_finish(rf, code, error);
		return;
	}
	rf->found = json_pack("{s:[], s:[]}", POOL_BLUE, POOL_GREEN);
	json_array_foreach(instances, i, inst) {
		const char *pool = json_string_value(json_object_get(json_object_get(inst,
		    "tags"), conf->ec2_pool_tag));
		const char *ip = json_string_value(json_object_get(inst, "private_ip"));

		const char *id = json_string_value(json_object_get(inst, "id"));

		if ((k = pool_index(pool)) < 0 || ip == NULL)
			continue;
		/* These go into HAProxy commands and the backends file verbatim. */
		if (!valid_instance_id(id)) {
			log_warnx("discover: an instance id that is not i-[0-9a-f]{8,17} "
			    "(\"%.64s\") is skipped", id ? id : "");
			json_array_append_new(json_object_get(rf->report, "errors"),
			    json_sprintf("instance id \"%.64s\" is not valid; skipped",
			    id ? id : ""));
			continue;
		}
		if (!valid_ip(ip)) {
			log_warnx("discover: %s: private IP \"%.64s\" is not an address; "
			    "skipped", id, ip);
			json_array_append_new(json_object_get(rf->report, "errors"),
			    json_sprintf("%s: private IP \"%.64s\" is not valid; skipped", id, ip));
			continue;
		}
		{
			const char *ptag = json_string_value(json_object_get(json_object_get(inst,
			    "tags"), conf->ec2_port_tag));
			long port = ptag ? strtol(ptag, NULL, 10) : conf->ec2_port;

			if (port <= 0 || port > 65535) {
				log_warnx("discover: %s: tag %s=%s is not a port; using %d",
				    json_string_value(json_object_get(inst, "id")),
				    conf->ec2_port_tag, ptag, conf->ec2_port);
				port = conf->ec2_port;
			}
			json_array_append_new(json_object_get(rf->found, pool), json_pack(
			    "{s:O, s:o}", "id", json_object_get(inst, "id"), "address",
			    strchr(ip, ':') ? json_sprintf("[%s]:%ld", ip, port) :
			    json_sprintf("%s:%ld", ip, port)));
		}
	}
	/* How many servers are UP decides what may go: ask HAProxy first. */
	rf->lb->drv->observe(rf->lb, discover_guarded, rf);
}

static void
discover_guarded(struct lb_view *v, void *arg)
{
	struct refresh *rf = arg;
	struct daemon *d = rf->d;
	struct config *conf = rf->lb->conf;
	json_t *disc;
	int changed;

	discover_guard(rf, v);
	lb_view_free(v);
	disc = json_object_get(state_doc(d->state), "discovered");
	changed = !json_equal(disc, rf->found);
	if (changed) {
		log_info("discover: blue has %zu instance%s, green %zu",
		    json_array_size(json_object_get(rf->found, POOL_BLUE)),
		    json_array_size(json_object_get(rf->found, POOL_BLUE)) == 1 ? "" : "s",
		    json_array_size(json_object_get(rf->found, POOL_GREEN)));
		json_object_set(state_doc(d->state), "discovered", rf->found);
		state_save(d->state);
		discover_apply_state(d, conf);
		write_backends_file(conf);
		roles_retag(d, "pool membership changed", NULL, NULL);
	}
	json_object_set_new(rf->report, "blue", json_deep_copy(json_object_get(rf->found,
	    POOL_BLUE)));
	json_object_set_new(rf->report, "green", json_deep_copy(json_object_get(rf->found,
	    POOL_GREEN)));
	rf->node = 0;
	if (rf->lb->drv->servers == NULL || rf->lb->drv->servers->nnodes(conf) == 0) {
		refresh_finish(rf, NULL, NULL);
		return;
	}
	discover_node_start(rf);
}

void
discover_refresh(struct daemon *d, discover_done_cb cb, void *arg)
{
	struct refresh *rf;
	json_t *filters;
	struct config *conf = d->conf;
	size_t i;

	if (!conf->ec2_discover) {
		if (cb != NULL)
			cb(NULL, NULL, NULL, arg);
		return;
	}
	if (refreshing) {
		if (cb != NULL)
			cb(NULL, "Busy", "a discovery is already running", arg);
		return;
	}
	refreshing = 1;
	rf = xcalloc(1, sizeof(*rf));
	rf->d = d;
	rf->cb = cb;
	rf->arg = arg;
	rf->lb = lb_ref(d->lb);
	rf->report = json_pack("{s:[], s:[], s:[], s:[], s:[]}", "added", "removed",
	    "draining", "errors", "refused");
	filters = json_pack("{s:[s]}", "instance-state-name", "running");
	json_object_set_new(filters, conf->ec2_pool_tag_filter, json_pack("[s, s]",
	    POOL_BLUE, POOL_GREEN));
	for (i = 0; i < json_array_size(conf->ec2_filters); i++) {
		const char *f = json_string_value(json_array_get(conf->ec2_filters, i));
		const char *eq = strchr(f, '=');
		char *name = strndup(f, (size_t)(eq - f));
		json_t *vals = json_array();
		char *copy = xstrdup(eq + 1), *v, *save = NULL;

		for (v = strtok_r(copy, ",", &save); v; v = strtok_r(NULL, ",", &save))
			json_array_append_new(vals, json_string(v));
		json_object_set_new(filters, name, vals);
		free(copy);
		free(name);
	}
	ec2_describe(roles_ec2(d), filters, described, rf);
	json_decref(filters);
}

/* ------------------------------------------------------------ the ticker */

static void
tick_done(json_t *report, const char *code, const char *error, void *arg)
{
	struct daemon *d = arg;
	struct timeval tv = { 0, 0 };

	(void)code;
	(void)error;
	(void)report;
	/* refresh_finish() already set the drain poll if one is needed. */
	tv.tv_sec = d->conf->ec2_discover_interval;
	if (tick_ev != NULL && !evtimer_pending(tick_ev, NULL))
		evtimer_add(tick_ev, &tv);
}

static void
tick_fire(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd;
	(void)what;
	discover_refresh(d, tick_done, d);
}

void
discover_start(struct daemon *d)
{
	struct timeval now = { 0, 0 };

	if (tick_ev == NULL)
		tick_ev = evtimer_new(d->base, tick_fire, d);
	if (!d->conf->ec2_discover) {
		evtimer_del(tick_ev);
		return;
	}
	if (d->conf->backends_file == NULL)
		log_warnx("discover: haproxy.backends_file is not set: an HAProxy reload "
		    "will forget the discovered servers until the next refresh");
	evtimer_add(tick_ev, &now);
}

void
discover_stop(void)
{
	if (tick_ev != NULL) {
		event_free(tick_ev);
		tick_ev = NULL;
	}
}
