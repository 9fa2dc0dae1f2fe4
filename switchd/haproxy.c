/*
 * haproxy.c — what the two HAProxy drivers (drv-haproxy.c, runtime;
 * drv-haproxy-reload.c, reload) share: the haproxy section of the config,
 * the map file and its text, the one fan-out of commands over nodes, the
 * stats sockets' counters (for the guard and the metrics), and what the
 * EC2 discovery asks of HAProxy (servers added and drained at run time).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "haproxy.h"
#include "hapx.h"
#include "log.h"
#include "util.h"

/* ------------------------------------------------------------------ config */

const struct conf_key hap_keys[] = {
	{ "mode", K_STR, NULL }, { "sockets", K_LIST_STR, NULL }, { "map", K_STR, NULL },
	{ "min_up", K_INT, NULL }, { "timeout_ms", K_INT, NULL },
	{ "master_socket", K_STR, NULL }, { "reload_command", K_STR, NULL },
	{ "config", K_STR, NULL }, { "binary", K_STR, NULL },
	{ "backends_file", K_STR, NULL }, { "backends_defaults", K_STR, NULL },
	{ "reload_timeout_ms", K_INT, NULL }, { "canary_map", K_STR, NULL },
	{ NULL, 0, NULL }
};

/* The haproxy section: runtime mode (the default) or reload mode. */
void
hap_conf_read(struct conf_ctx *c, const config_setting_t *hap, struct config *conf)
{
	const config_setting_t *list;
	int i, n, reload;

	/* config.c chose the driver by the mode, and said if it is neither. */
	conf->hap_mode = conf_str(hap, "mode", "runtime");
	reload = strcmp(conf->hap_mode, "reload") == 0;
	list = hap ? config_setting_get_member(hap, "sockets") : NULL;
	if (list != NULL && config_setting_is_aggregate(list)) {
		n = config_setting_length(list);
		conf->hap_sockets = xcalloc((size_t)n + 1, sizeof(char *));
		for (i = 0; i < n; i++) {
			const char *v = config_setting_get_string_elem(list, i);
			if (v != NULL)
				conf->hap_sockets[conf->hap_nsockets++] = xstrdup(v);
		}
		if (conf->hap_nsockets == 0 && !reload)
			conf_error(c, list, "haproxy.sockets is empty");
	} else if (reload) {
		/* Reload mode is for sites without a runtime socket. */
		conf->hap_sockets = xcalloc(1, sizeof(char *));
	} else {
		conf->hap_sockets = xcalloc(2, sizeof(char *));
		conf->hap_sockets[0] = xstrdup("/run/haproxy/admin.sock");
		conf->hap_nsockets = 1;
	}
	conf->hap_map = conf_str(hap, "map", "/etc/haproxy/switchd.map");
	if (conf->hap_map[0] != '/')
		conf_error(c, config_setting_get_member(hap, "map"),
		    "haproxy.map must be an absolute path (HAProxy names the map by it)");
	conf->min_up = conf_int(hap, "min_up", 1);
	if (conf->min_up < 0)
		conf_error(c, config_setting_get_member(hap, "min_up"), "haproxy.min_up must not be negative");
	conf->timeout_ms = conf_int(hap, "timeout_ms", 2000);
	if (conf->timeout_ms <= 0)
		conf_error(c, config_setting_get_member(hap, "timeout_ms"), "haproxy.timeout_ms must be positive");
	conf->master_socket = conf_str(hap, "master_socket", NULL);
	conf->reload_command = conf_str(hap, "reload_command", NULL);
	conf->hap_config = conf_str(hap, "config", "/etc/haproxy/haproxy.cfg");
	conf->hap_binary = conf_str(hap, "binary", "haproxy");
	conf->reload_timeout_ms = conf_int(hap, "reload_timeout_ms", 10000);
	if (conf->reload_timeout_ms <= 0)
		conf_error(c, config_setting_get_member(hap, "reload_timeout_ms"),
		    "haproxy.reload_timeout_ms must be positive");
	conf->hap_canary_map = conf_str(hap, "canary_map", NULL);
	if (conf->hap_canary_map != NULL && conf->hap_canary_map[0] != '/')
		conf_error(c, config_setting_get_member(hap, "canary_map"),
		    "haproxy.canary_map must be an absolute path (HAProxy names the map by it)");
	if (conf->hap_canary_map != NULL && strcmp(conf->hap_canary_map, conf->hap_map) == 0)
		conf_error(c, config_setting_get_member(hap, "canary_map"),
		    "haproxy.canary_map and haproxy.map must be different files");
	/* A canary changes its percent through the runtime API, never by a reload. */
	if (conf->hap_canary_map != NULL && reload)
		conf_error(c, config_setting_get_member(hap, "canary_map"),
		    "haproxy.canary_map needs haproxy.mode \"runtime\" (a canary is "
		    "set through the runtime API, never by a reload)");
	if (!reload)
		return;
	if (conf->master_socket == NULL && conf->reload_command == NULL)
		conf_error(c, hap, "haproxy.mode \"reload\" needs haproxy.master_socket "
		    "(the master CLI, haproxy -S) or haproxy.reload_command");
	/* A master's workers share one stats socket: one node. */
	if (conf->hap_nsockets > 1)
		conf_error(c, config_setting_get_member(hap, "sockets"),
		    "haproxy.mode \"reload\" drives one HAProxy (one master): "
		    "haproxy.sockets names at most its stats socket");
	if (conf->hap_config[0] == '\0')
		conf_error(c, config_setting_get_member(hap, "config"), "haproxy.config is empty");
}

void
hap_conf_free(struct config *conf)
{
	size_t i;

	free(conf->hap_mode);
	for (i = 0; i < conf->hap_nsockets; i++)
		free(conf->hap_sockets[i]);
	free(conf->hap_sockets);
	free(conf->hap_map);
	free(conf->hap_canary_map);
	free(conf->master_socket);
	free(conf->reload_command);
	free(conf->hap_config);
	free(conf->hap_binary);
}

const char *
hap_map_file(const struct config *conf)
{
	return conf->hap_map;
}

char *
hap_map_text(const struct config *conf, const struct lb_mapping *m)
{
	return xasprintf("# written by switchd: %s is served by %s; do not edit\n"
	    "%s %s\n%s %s\n", conf->live_host, m->live,
	    conf->live_host, m->live, conf->cold_host, m->cold);
}

/* ----------------------------------------- counters, for guard and metrics */

static size_t
hap_stats_nnodes(const struct config *conf)
{
	return conf->hap_nsockets;
}

static const char *
hap_stats_node(const struct config *conf, size_t n)
{
	return conf->hap_sockets[n];
}

struct lb_req {
	struct hapx_req	*req;
	char		*backend;	/* NULL: every backend */
	lb_counters_cb	 cb;
	void		*arg;
};

static void
counters_free(struct lb_req *r)
{
	free(r->backend);
	free(r);
}

static void
counters_reply(const char *reply, const char *err, void *arg)
{
	struct lb_req *r = arg;
	json_t *c = NULL;
	char *herr = NULL, *msg = NULL;
	long long resp, nerr;

	r->req = NULL;
	if (err != NULL)
		msg = xstrdup(err);
	else if ((herr = hapx_reply_error("show stat", reply)) != NULL)
		msg = xasprintf("show stat: %s", herr);
	else if (r->backend == NULL) {
		if ((c = hapx_parse_backend_counters(reply)) == NULL)
			msg = xstrdup("show stat: no counters");
	} else if (hapx_backend_counters(reply, r->backend, &resp, &nerr) == 0)
		c = json_pack("{s:{s:I, s:I}}", r->backend, "responses", (json_int_t)resp,
		    "5xx", (json_int_t)nerr);
	else
		msg = xasprintf("show stat: no counters for %s", r->backend);
	r->cb(c, msg, r->arg);
	json_decref(c);
	free(herr);
	free(msg);
	counters_free(r);
}

static struct lb_req *
hap_counters(struct lb *lb, size_t node, const char *backend, lb_counters_cb cb, void *arg)
{
	struct lb_req *r = xcalloc(1, sizeof(*r));
	char *cmd = xasprintf("show stat %s 2 -1", backend ? backend : "-1");

	r->backend = backend ? xstrdup(backend) : NULL;
	r->cb = cb;
	r->arg = arg;
	r->req = hapx_cmd(lb->base, lb->conf->hap_sockets[node], cmd, lb->conf->timeout_ms,
	    counters_reply, r);
	free(cmd);
	if (r->req == NULL) {
		counters_free(r);
		return NULL;
	}
	return r;
}

static void
hap_counters_cancel(struct lb_req *r)
{
	if (r == NULL)
		return;
	hapx_cancel(r->req);
	counters_free(r);
}

const struct lb_stats hap_stats = {
	.nnodes = hap_stats_nnodes,
	.node = hap_stats_node,
	.counters = hap_counters,
	.cancel = hap_counters_cancel,
};

/* --------------------------------------- servers, for the EC2 discovery */

struct servers_read {
	lb_servers_cb	 cb;
	void		*arg;
};

static void
servers_read_reply(const char *reply, const char *err, void *arg)
{
	struct servers_read *r = arg;
	json_t *stat = err == NULL ? hapx_parse_stat(reply) : NULL;

	r->cb(stat, stat != NULL ? NULL : err ? err : "unreadable", r->arg);
	free(r);
}

static void
hap_servers_read(struct lb *lb, size_t node, lb_servers_cb cb, void *arg)
{
	struct servers_read *r = xcalloc(1, sizeof(*r));

	r->cb = cb;
	r->arg = arg;
	if (hapx_cmd(lb->base, lb->conf->hap_sockets[node], "show stat -1 4 -1",
	    lb->conf->timeout_ms, servers_read_reply, r) == NULL)
		servers_read_reply(NULL, "bad socket address", r);
}

/* The changes as HAProxy's commands, sent one after the other on one node. */
struct servers_change {
	struct lb	*lb;
	size_t		 node;
	json_t		*cmds;
	json_t		*errors;
	lb_changes_cb	 cb;
	void		*arg;
};

static void servers_change_next(struct servers_change *);

static void
servers_change_reply(const char *reply, const char *err, void *arg)
{
	struct servers_change *sc = arg;
	const char *cmd = json_string_value(json_array_get(sc->cmds, 0));
	char *herr = NULL;

	if (err != NULL || (herr = hapx_reply_error(cmd, reply)) != NULL)
		json_array_append_new(sc->errors, json_sprintf("\"%s\": %s", cmd,
		    err ? err : herr));
	free(herr);
	json_array_remove(sc->cmds, 0);
	servers_change_next(sc);
}

static void
servers_change_next(struct servers_change *sc)
{
	const struct config *conf = sc->lb->conf;

	if (json_array_size(sc->cmds) == 0) {
		sc->cb(sc->errors, sc->arg);
		json_decref(sc->cmds);
		json_decref(sc->errors);
		lb_unref(sc->lb);
		free(sc);
		return;
	}
	if (hapx_cmd(sc->lb->base, conf->hap_sockets[sc->node],
	    json_string_value(json_array_get(sc->cmds, 0)), conf->timeout_ms,
	    servers_change_reply, sc) == NULL)
		servers_change_reply(NULL, "bad socket address", sc);
}

/*
 * A new server starts in maintenance (dynamic servers do): health checks
 * on if its options have them, then enabled.  One that goes is drained
 * first; "remove" (maint, del) comes once it has no session left, and del
 * server itself refuses a server with connections attached.
 */
static void
hap_servers_change(struct lb *lb, size_t node, json_t *changes, lb_changes_cb cb, void *arg)
{
	struct servers_change *sc = xcalloc(1, sizeof(*sc));
	const struct config *conf = lb->conf;
	const char *opts = conf->ec2_server_options;
	json_t *ch;
	size_t i;

	sc->lb = lb_ref(lb);
	sc->node = node;
	sc->cmds = json_array();
	sc->errors = json_array();
	sc->cb = cb;
	sc->arg = arg;
	json_array_foreach(changes, i, ch) {
		const char *op = json_string_value(json_object_get(ch, "op"));
		const char *be = json_string_value(json_object_get(ch, "backend"));
		const char *name = json_string_value(json_object_get(ch, "name"));

		if (strcmp(op, "add") == 0) {
			json_array_append_new(sc->cmds, json_sprintf("add server %s/%s %s %s",
			    be, name, json_string_value(json_object_get(ch, "address")), opts));
			if (strstr(opts, "check") != NULL)
				json_array_append_new(sc->cmds,
				    json_sprintf("enable health %s/%s", be, name));
			json_array_append_new(sc->cmds,
			    json_sprintf("enable server %s/%s", be, name));
		} else if (strcmp(op, "drain") == 0)
			json_array_append_new(sc->cmds,
			    json_sprintf("set server %s/%s state drain", be, name));
		else {
			json_array_append_new(sc->cmds,
			    json_sprintf("set server %s/%s state maint", be, name));
			json_array_append_new(sc->cmds, json_sprintf("del server %s/%s", be, name));
		}
	}
	servers_change_next(sc);
}

const struct lb_servers hap_servers = {
	.nnodes = hap_stats_nnodes,
	.node = hap_stats_node,
	.read = hap_servers_read,
	.up = hapx_status_up,
	.change = hap_servers_change,
};

/* ------------------------------------------------- commands on many nodes */

struct fan_slot {
	struct fan	*fan;
	size_t		 idx;
};

static void
fan_reply(const char *reply, const char *err, void *arg)
{
	struct fan_slot *slot = arg;
	struct fan *f = slot->fan;

	f->replies[slot->idx] = reply ? xstrdup(reply) : NULL;
	f->errors[slot->idx] = err ? xstrdup(err) : NULL;
	free(slot);
	if (--f->pending == 0)
		f->done(f);
}

void
fan_free(struct fan *f)
{
	size_t i;

	for (i = 0; i < f->nnodes * f->ncmds; i++) {
		free(f->replies[i]);
		free(f->errors[i]);
	}
	for (i = 0; i < f->ncmds; i++)
		free(f->cmds[i]);
	for (i = 0; i < f->nnodes; i++) {
		hapx_sess_free(f->sess[i]);
		free(f->addrs[i]);
	}
	free(f->sess);
	free(f->addrs);
	free(f->bad);
	free(f->replies);
	free(f->errors);
	lb_unref(f->lb);
	free(f);
}

/*
 * A node's runtime socket gets every command on one connection, pipelined
 * (one connect and one round trip a node); through the master CLI (a
 * prefix routes each line to a worker, the suffix ends its connection)
 * each command has a connection of its own.
 */
void
fan_start(struct lb *lb, const char *const *addrs, size_t naddrs, const char *prefix,
    const char *suffix, const char *const *cmds, void (*done)(struct fan *), void *arg)
{
	struct fan *f = xcalloc(1, sizeof(*f));
	int session = prefix[0] == '\0' && suffix[0] == '\0';
	size_t n, c;

	f->lb = lb_ref(lb);
	f->nnodes = naddrs;
	f->addrs = xcalloc(naddrs, sizeof(char *));
	f->bad = xcalloc(naddrs, sizeof(int));
	f->sess = xcalloc(naddrs, sizeof(*f->sess));
	for (n = 0; n < naddrs; n++)
		f->addrs[n] = xstrdup(addrs[n]);
	for (c = 0; c < FAN_MAXCMD && cmds[c] != NULL; c++)
		f->cmds[c] = xstrdup(cmds[c]);
	f->ncmds = c;
	f->replies = xcalloc(f->nnodes * f->ncmds, sizeof(char *));
	f->errors = xcalloc(f->nnodes * f->ncmds, sizeof(char *));
	f->done = done;
	f->arg = arg;
	f->pending = f->nnodes * f->ncmds;
	for (n = 0; n < f->nnodes; n++) {
		if (session)
			f->sess[n] = hapx_sess_new(lb->base, f->addrs[n], lb->conf->timeout_ms);
		for (c = 0; c < f->ncmds; c++) {
			struct fan_slot *slot = xcalloc(1, sizeof(*slot));
			char *sent = xasprintf("%s%s%s", prefix, f->cmds[c], suffix);

			slot->fan = f;
			slot->idx = n * f->ncmds + c;
			if (f->sess[n] != NULL)
				hapx_sess_cmd(f->sess[n], sent, fan_reply, slot);
			else if (session || hapx_cmd(lb->base, f->addrs[n], sent,
			    lb->conf->timeout_ms, fan_reply, slot) == NULL) {
				/* config.c does not parse addresses: say it from here. */
				free(slot);
				f->bad[n] = 1;
				f->errors[n * f->ncmds + c] = xstrdup("bad socket address");
				f->pending--;
			}
			free(sent);
		}
	}
	if (f->pending == 0)
		done(f);	/* only when every address was bad */
}

/* The node's failure for command c, as text, or NULL. */
char *
fan_error(struct fan *f, size_t node, size_t c)
{
	const char *err = f->errors[node * f->ncmds + c];
	char *herr;

	if (err != NULL)
		return xasprintf("cannot reach it: %s", err);
	herr = hapx_reply_error(f->cmds[c], f->replies[node * f->ncmds + c]);
	if (herr != NULL) {
		char *msg = xasprintf("\"%s\" failed: %s", f->cmds[c], herr);
		free(herr);
		return msg;
	}
	return NULL;
}
