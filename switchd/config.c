/*
 * config.c — reads switchd.conf (libconfig syntax) into a new struct config.
 *
 * The file is first checked against a schema (unknown keys and wrong types
 * are errors with their line), then read into the struct with defaults, then
 * checked for meaning.  Every error is collected, so `switchd -n` shows them
 * all at once.  A caller swaps configs only when this returns non-NULL.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "conf.h"
#include "config.h"
#include "lb.h"
#include "protocol.h"
#include "util.h"

static const struct conf_key control_keys[] = {
	{ "socket", K_STR, NULL }, { "mode", K_MODE, NULL },
	{ "group", K_STR, NULL }, { "admin_group", K_STR, NULL }, { NULL, 0, NULL }
};
static const struct conf_key hosts_keys[] = {
	{ "live", K_STR, NULL }, { "cold", K_STR, NULL }, { NULL, 0, NULL }
};
static const struct conf_key server_keys[] = {
	{ "name", K_STR, NULL }, { "address", K_STR, NULL },
	{ "instance", K_STR, NULL }, { NULL, 0, NULL }
};
static const struct conf_key pool_keys[] = {
	{ "backend", K_STR, NULL }, { "servers", K_LIST_GROUP, server_keys },
	{ NULL, 0, NULL }
};
static const struct conf_key pools_keys[] = {
	{ "blue", K_GROUP, pool_keys }, { "green", K_GROUP, pool_keys }, { NULL, 0, NULL }
};
static const struct conf_key check_keys[] = {
	{ "name", K_STR, NULL }, { "method", K_STR, NULL }, { "path", K_STR, NULL },
	{ "status", K_INT, NULL }, { "body", K_STR, NULL }, { "max_ms", K_INT, NULL },
	{ NULL, 0, NULL }
};
static const struct conf_key smoke_keys[] = {
	{ "url", K_STR, NULL }, { "timeout_ms", K_INT, NULL },
	{ "checks", K_LIST_GROUP, check_keys }, { "per_server", K_BOOL, NULL },
	{ "command", K_STR, NULL }, { "command_timeout", K_INT, NULL },
	{ "verify_tls", K_BOOL, NULL }, { "ca_file", K_STR, NULL },
	{ "preview", K_BOOL, NULL }, { NULL, 0, NULL }
};
static const struct conf_key guard_keys[] = {
	{ "bake", K_INT, NULL }, { "max_5xx_percent", K_NUM, NULL },
	{ "min_requests", K_INT, NULL }, { "interval_ms", K_INT, NULL }, { NULL, 0, NULL }
};
static const struct conf_key deploy_keys[] = {
	{ "command", K_STR, NULL }, { "timeout", K_INT, NULL }, { NULL, 0, NULL }
};
static const struct conf_key ec2_keys[] = {
	{ "region", K_STR, NULL }, { "role_tag", K_STR, NULL }, { "hot", K_STR, NULL },
	{ "cold", K_STR, NULL }, { "discover", K_BOOL, NULL }, { "pool_tag", K_STR, NULL },
	{ "port", K_INT, NULL }, { "endpoint", K_STR, NULL },
	{ "discover_interval", K_INT, NULL }, { "filters", K_LIST_STR, NULL },
	{ "server_options", K_STR, NULL }, { "port_tag", K_STR, NULL }, { NULL, 0, NULL }
};
static const struct conf_key notify_keys[] = {
	{ "webhook", K_STR, NULL }, { "command", K_STR, NULL }, { "timeout", K_INT, NULL },
	{ NULL, 0, NULL }
};
static const struct conf_key http_keys[] = {
	{ "listen", K_STR, NULL }, { NULL, 0, NULL }
};
static const struct conf_key cluster_keys[] = {
	{ "endpoints", K_LIST_STR, NULL }, { "prefix", K_STR, NULL },
	{ "name", K_STR, NULL }, { "lease_ttl", K_INT, NULL }, { NULL, 0, NULL }
};
static const struct conf_key top_keys[] = {
	{ "control", K_GROUP, control_keys }, { "state_dir", K_STR, NULL },
	{ "hosts", K_GROUP, hosts_keys }, { "pools", K_GROUP, pools_keys },
	{ "smoke", K_GROUP, smoke_keys },
	{ "deploy", K_GROUP, deploy_keys }, { "ec2", K_GROUP, ec2_keys },
	{ "notify", K_GROUP, notify_keys }, { "guard", K_GROUP, guard_keys },
	{ "http", K_GROUP, http_keys }, { "cluster", K_GROUP, cluster_keys },
	{ NULL, 0, NULL }
};

struct conf_ctx {
	const char	*path;
	json_t		*errors;
	const struct lb_driver *const *drivers;	/* c->drivers, handed down */
};

static void __attribute__((format(printf, 3, 0)))
vcerr(struct conf_ctx *c, const config_setting_t *s, const char *fmt, va_list ap)
{
	char msg[512];
	int line = s ? config_setting_source_line(s) : 0;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0)
		json_array_append_new(c->errors,
		    json_sprintf("%s:%d: %s", c->path, line, msg));
	else
		json_array_append_new(c->errors, json_sprintf("%s: %s", c->path, msg));
}

static void __attribute__((format(printf, 3, 4)))
cerr(struct conf_ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vcerr(c, s, fmt, ap);
	va_end(ap);
}

void
conf_error(struct conf_ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vcerr(c, s, fmt, ap);
	va_end(ap);
}

static const char *
type_name(enum ktype t)
{
	switch (t) {
	case K_STR:		return "a string";
	case K_INT:		return "an integer";
	case K_NUM:		return "a number";
	case K_BOOL:		return "true or false";
	case K_GROUP:
	case K_ANYGROUP:	return "a group { ... }";
	case K_LIST_STR:	return "a list of strings ( \"...\", ... )";
	case K_LIST_GROUP:	return "a list of groups ( { ... }, ... )";
	case K_MODE:		return "a file mode (0660 or \"0660\")";
	}
	return "?";
}

/* Dotted path of a setting, for messages. */
static void
setting_path(const config_setting_t *s, char *buf, size_t len)
{
	char tmp[256];
	const char *name;

	buf[0] = '\0';
	for (; s != NULL && config_setting_parent(s) != NULL; s = config_setting_parent(s)) {
		name = config_setting_name(s);
		if (name == NULL)
			snprintf(tmp, sizeof(tmp), "[%d]%s%s", config_setting_index(s),
			    buf[0] && buf[0] != '[' ? "." : "", buf);
		else
			snprintf(tmp, sizeof(tmp), "%s%s%s", name,
			    buf[0] && buf[0] != '[' ? "." : "", buf);
		snprintf(buf, len, "%s", tmp);
	}
}

static void check_group(struct conf_ctx *, const config_setting_t *, const struct conf_key *);

static void
check_value(struct conf_ctx *c, const config_setting_t *s, const struct conf_key *k)
{
	int t = config_setting_type(s), ok = 0, i, n;
	char where[256];

	switch (k->type) {
	case K_STR:	ok = t == CONFIG_TYPE_STRING; break;
	case K_INT:	ok = t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64; break;
	case K_NUM:	ok = t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64 ||
			    t == CONFIG_TYPE_FLOAT; break;
	case K_BOOL:	ok = t == CONFIG_TYPE_BOOL; break;
	case K_MODE:	ok = t == CONFIG_TYPE_INT || t == CONFIG_TYPE_STRING; break;
	case K_GROUP:
	case K_ANYGROUP: ok = t == CONFIG_TYPE_GROUP; break;
	case K_LIST_STR:
	case K_LIST_GROUP: ok = t == CONFIG_TYPE_LIST || t == CONFIG_TYPE_ARRAY; break;
	}
	if (!ok) {
		setting_path(s, where, sizeof(where));
		cerr(c, s, "%s must be %s", where, type_name(k->type));
		return;
	}
	/* Names, hosts, messages: all of it may end up in JSON. */
	if (t == CONFIG_TYPE_STRING && !utf8_valid(config_setting_get_string(s))) {
		setting_path(s, where, sizeof(where));
		cerr(c, s, "%s is not valid UTF-8", where);
		return;
	}
	if (k->type == K_GROUP)
		check_group(c, s, k->sub);
	else if (k->type == K_LIST_STR || k->type == K_LIST_GROUP) {
		n = config_setting_length(s);
		for (i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(s, i);
			int et = config_setting_type(e);

			setting_path(e, where, sizeof(where));
			if (k->type == K_LIST_STR && et != CONFIG_TYPE_STRING)
				cerr(c, e, "%s must be a string", where);
			else if (k->type == K_LIST_STR &&
			    !utf8_valid(config_setting_get_string(e)))
				cerr(c, e, "%s is not valid UTF-8", where);
			else if (k->type == K_LIST_GROUP && et != CONFIG_TYPE_GROUP)
				cerr(c, e, "%s must be a group { ... }", where);
			else if (k->type == K_LIST_GROUP)
				check_group(c, e, k->sub);
		}
	}
}

static void
check_group(struct conf_ctx *c, const config_setting_t *g, const struct conf_key *keys)
{
	int i, n = config_setting_length(g);
	const struct conf_key *k;
	char where[256];

	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *name = config_setting_name(s);

		for (k = keys; k->name != NULL; k++)
			if (name != NULL && strcmp(k->name, name) == 0)
				break;
		if (k->name == NULL) {
			setting_path(s, where, sizeof(where));
			cerr(c, s, "unknown key %s", where);
			continue;
		}
		check_value(c, s, k);
	}
}

/* ------------------------------------------------------------- extraction */

static char *
get_str(const config_setting_t *g, const char *name, const char *def)
{
	const char *v;

	if (g != NULL && config_setting_lookup_string(g, name, &v))
		return xstrdup(v);
	return xstrdup(def);
}

/* HAProxy's frontend lower-cases the Host header before the map lookup. */
static char *
lower(char *s)
{
	char *p;

	for (p = s; p != NULL && *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

static int
get_int(const config_setting_t *g, const char *name, int def)
{
	int v;

	if (g != NULL && config_setting_lookup_int(g, name, &v))
		return v;
	return def;
}

char *
conf_str(const config_setting_t *g, const char *name, const char *def)
{
	return get_str(g, name, def);
}

int
conf_int(const config_setting_t *g, const char *name, int def)
{
	return get_int(g, name, def);
}

static int
get_bool(const config_setting_t *g, const char *name, int def)
{
	int v;

	if (g != NULL && config_setting_lookup_bool(g, name, &v))
		return v;
	return def;
}

/*
 * libconfig reads 0660 as decimal 660; a file mode is written as for
 * chmod(1), so its digits are taken as octal.
 */
static int
get_mode(struct conf_ctx *c, const config_setting_t *g, const char *name, int def)
{
	const config_setting_t *s;
	char buf[32], *end;
	long v;

	if (g == NULL || (s = config_setting_get_member(g, name)) == NULL)
		return def;
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		snprintf(buf, sizeof(buf), "%s", config_setting_get_string(s));
	else if (config_setting_type(s) == CONFIG_TYPE_INT)
		snprintf(buf, sizeof(buf), "%d", config_setting_get_int(s));
	else
		return def;
	errno = 0;
	v = strtol(buf, &end, 8);
	if (errno || *end != '\0' || buf[0] == '\0' || v < 0 || v > 0777) {
		cerr(c, s, "control.%s: \"%s\" is not a file mode like 0660", name, buf);
		return def;
	}
	return (int)v;
}


/*
 * Names from the config go into HAProxy admin commands (one line, where ';'
 * starts another command), map files and the generated backends file
 * (where '#' starts a comment and a newline a new statement).  So: not
 * empty, no blanks, ';', '#' or control characters, and not longer than
 * what switchd keeps (a name cut short would name something else).
 */
#define NAME_MAX_BACKEND	127	/* struct lb_mapping */
#define NAME_MAX_HOST		253	/* DNS */
#define NAME_MAX_SERVER		127

static int
name_check(struct conf_ctx *c, const config_setting_t *s, const char *what, const char *v,
    size_t max, const char *also)
{
	const unsigned char *p;

	if (v == NULL)
		return 1;
	if (v[0] == '\0') {
		cerr(c, s, "%s is empty", what);
		return 0;
	}
	if (strlen(v) > max) {
		cerr(c, s, "%s is %zu characters long; at most %zu", what, strlen(v), max);
		return 0;
	}
	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == ';' || *p == '#' ||
		    (also != NULL && strchr(also, *p) != NULL)) {
			char shown[NAME_MAX_HOST + 16], *q;

			/* The message is JSON: show the value with '?' for what is bad. */
			snprintf(shown, sizeof(shown), "%s", v);
			for (q = shown; *q != '\0'; q++)
				if ((unsigned char)*q < ' ' || (unsigned char)*q >= 0x7f)
					*q = '?';
			cerr(c, s, "%s \"%s\" must be ASCII without blanks, ';', '#'%s%s or "
			    "control characters", what, shown, also ? ", " : "", also ? also : "");
			return 0;
		}
	return 1;
}

static int
valid_hostport(const char *a)
{
	const char *colon = strrchr(a, ':');
	char *end;
	long port;

	if (colon == NULL || colon == a)
		return 0;
	port = strtol(colon + 1, &end, 10);
	return *end == '\0' && port > 0 && port < 65536;
}

/* pools.*.backend when it is unset: what the driver whose section is set names it. */
static char *
default_backend(struct conf_ctx *c, const config_setting_t *root, const char *pool)
{
	const struct lb_driver *const *d;

	for (d = c->drivers; *d != NULL; d++)
		if ((*d)->backend_prefix != NULL &&
		    config_setting_get_member(root, (*d)->section) != NULL)
			return xasprintf("%s%s", (*d)->backend_prefix, pool);
	return NULL;
}

static void
read_pool(struct conf_ctx *c, const config_setting_t *pools, int idx, struct config *conf)
{
	struct pool *p = &conf->pools[idx];
	const config_setting_t *g, *list;
	int i, n;
	size_t j;

	p->name = pool_name(idx);
	g = pools ? config_setting_get_member(pools, p->name) : NULL;
	if (g == NULL) {
		cerr(c, pools, "pools.%s is missing", p->name);
		return;
	}
	p->backend = get_str(g, "backend", NULL);
	/* A driver may name them itself (nginx: the upstreams it writes). */
	if (p->backend == NULL)
		p->backend = default_backend(c, config_setting_parent(pools), p->name);
	if (p->backend == NULL)
		cerr(c, g, "pools.%s.backend is missing", p->name);
	else {
		char what[64];

		snprintf(what, sizeof(what), "pools.%s.backend", p->name);
		name_check(c, config_setting_get_member(g, "backend") ?
		    config_setting_get_member(g, "backend") : g, what, p->backend,
		    NAME_MAX_BACKEND, NULL);
	}
	list = config_setting_get_member(g, "servers");
	if (list == NULL || !config_setting_is_aggregate(list))
		return;
	n = config_setting_length(list);
	p->servers = xcalloc((size_t)n, sizeof(*p->servers));
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list, i);
		struct server *s = &p->servers[p->nservers];

		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			continue;
		s->name = get_str(e, "name", NULL);
		s->address = get_str(e, "address", NULL);
		s->instance = get_str(e, "instance", NULL);
		p->nservers++;
		if (s->name == NULL)
			cerr(c, e, "pools.%s.servers.[%d]: name is missing", p->name, i);
		else {
			char what[64];

			snprintf(what, sizeof(what), "pools.%s.servers.[%d]: name", p->name, i);
			name_check(c, config_setting_get_member(e, "name"), what, s->name,
			    NAME_MAX_SERVER, "/");
			snprintf(what, sizeof(what), "pools.%s.servers.[%d]: instance", p->name, i);
			name_check(c, config_setting_get_member(e, "instance"), what,
			    s->instance, NAME_MAX_SERVER, NULL);
		}
		if (s->address == NULL)
			cerr(c, e, "pools.%s.servers.[%d]: address is missing", p->name, i);
		else if (!name_check(c, config_setting_get_member(e, "address"), "address",
		    s->address, NAME_MAX_HOST + 8, NULL))
			;
		else if (!valid_hostport(s->address))
			cerr(c, e, "pools.%s.servers.[%d]: address \"%s\" is not host:port",
			    p->name, i, s->address);
		for (j = 0; s->name != NULL && j + 1 < p->nservers; j++)
			if (p->servers[j].name && strcmp(p->servers[j].name, s->name) == 0)
				cerr(c, e, "pools.%s: server name \"%s\" is used twice",
				    p->name, s->name);
	}
}

static void
read_checks(struct conf_ctx *c, const config_setting_t *smoke, struct config *conf)
{
	const config_setting_t *list;
	int i, n;

	list = smoke ? config_setting_get_member(smoke, "checks") : NULL;
	if (list == NULL || !config_setting_is_aggregate(list))
		return;
	n = config_setting_length(list);
	conf->checks = xcalloc((size_t)n, sizeof(*conf->checks));
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list, i);
		struct smoke_check *k = &conf->checks[conf->nchecks];

		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			continue;
		conf->nchecks++;
		k->name = get_str(e, "name", NULL);
		k->method = get_str(e, "method", "GET");
		k->path = get_str(e, "path", "/");
		k->status = get_int(e, "status", 200);
		k->body = get_str(e, "body", NULL);
		k->max_ms = get_int(e, "max_ms", 0);
		if (k->name == NULL)
			k->name = xstrdup(k->path);
		if (strcmp(k->method, "GET") != 0 && strcmp(k->method, "HEAD") != 0)
			cerr(c, e, "smoke.checks.[%d]: method must be GET or HEAD", i);
		if (k->path[0] != '/')
			cerr(c, e, "smoke.checks.[%d]: path must start with /", i);
		if (k->status < 100 || k->status > 599)
			cerr(c, e, "smoke.checks.[%d]: status %d is not an HTTP status", i, k->status);
		if (k->max_ms < 0)
			cerr(c, e, "smoke.checks.[%d]: max_ms must not be negative", i);
	}
}

static double
get_num(const config_setting_t *g, const char *name, double def)
{
	const config_setting_t *s;

	if (g == NULL || (s = config_setting_get_member(g, name)) == NULL)
		return def;
	if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		return config_setting_get_float(s);
	if (config_setting_type(s) == CONFIG_TYPE_INT ||
	    config_setting_type(s) == CONFIG_TYPE_INT64)
		return (double)config_setting_get_int64(s);
	return def;
}

/* cluster: etcd endpoints, the prefix of this site, this instance's name. */
static void
read_cluster(struct conf_ctx *c, const config_setting_t *g, struct config *conf)
{
	const config_setting_t *eps, *s;
	char host[256];
	const char *v;
	int i, n;

	if (g == NULL)
		return;
	eps = config_setting_get_member(g, "endpoints");
	n = eps != NULL && config_setting_is_aggregate(eps) ? config_setting_length(eps) : 0;
	if (n == 0)
		cerr(c, eps ? eps : g, "cluster.endpoints must list at least one etcd "
		    "endpoint (\"http://HOST:2379\")");
	conf->cluster_endpoints = xcalloc((size_t)n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(eps, i);
		if ((v = config_setting_get_string(s)) == NULL)
			continue;
		if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
		    strpbrk(v, " \t\r\n") != NULL)
			cerr(c, s, "cluster.endpoints: \"%s\" must be an http:// or "
			    "https:// URL", v);
		conf->cluster_endpoints[conf->cluster_nendpoints++] = xstrdup(v);
	}
	conf->cluster_prefix = get_str(g, "prefix", "/switchd");
	s = config_setting_get_member(g, "prefix");
	if (conf->cluster_prefix[0] != '/' || strlen(conf->cluster_prefix) < 2)
		cerr(c, s ? s : g, "cluster.prefix must start with \"/\" and name something");
	else if (conf->cluster_prefix[strlen(conf->cluster_prefix) - 1] == '/')
		cerr(c, s ? s : g, "cluster.prefix must not end with \"/\"");
	else
		name_check(c, s ? s : g, "cluster.prefix", conf->cluster_prefix, 200, NULL);
	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		snprintf(host, sizeof(host), "switchd");
	host[sizeof(host) - 1] = '\0';
	conf->cluster_name = get_str(g, "name", host);
	s = config_setting_get_member(g, "name");
	name_check(c, s ? s : g, "cluster.name", conf->cluster_name, 63, NULL);
	conf->cluster_lease_ttl = get_int(g, "lease_ttl", 10);
	if (conf->cluster_lease_ttl < 2 || conf->cluster_lease_ttl > 300)
		cerr(c, config_setting_get_member(g, "lease_ttl"),
		    "cluster.lease_ttl must be 2..300");
}

/* The guard: how long a switch is watched, and what makes it go back. */
static void
read_guard(struct conf_ctx *c, const config_setting_t *g, struct config *conf)
{
	conf->guard_bake = get_int(g, "bake", 300);
	conf->guard_max_5xx = get_num(g, "max_5xx_percent", 5.0);
	conf->guard_min_requests = get_int(g, "min_requests", 20);
	conf->guard_interval_ms = get_int(g, "interval_ms", 1000);
	if (conf->guard_bake < 0)
		cerr(c, config_setting_get_member(g, "bake"), "guard.bake must not be negative");
	if (conf->guard_max_5xx <= 0 || conf->guard_max_5xx > 100)
		cerr(c, config_setting_get_member(g, "max_5xx_percent"),
		    "guard.max_5xx_percent must be more than 0 and at most 100");
	if (conf->guard_min_requests < 1)
		cerr(c, config_setting_get_member(g, "min_requests"),
		    "guard.min_requests must be at least 1");
	if (conf->guard_interval_ms < 50)
		cerr(c, config_setting_get_member(g, "interval_ms"),
		    "guard.interval_ms must be at least 50");
}

/* "a { ... }, b { ... } or c { ... }": every driver's section, once each. */
static void
driver_sections(struct conf_ctx *c, const char *last_sep, char *buf, size_t len)
{
	const struct lb_driver *const *d, *const *e;
	size_t n = 0, i = 0;

	for (d = c->drivers; *d != NULL; d++) {
		for (e = c->drivers; e < d && strcmp((*e)->section, (*d)->section) != 0; e++)
			;
		n += e == d;
	}
	buf[0] = '\0';
	for (d = c->drivers; *d != NULL; d++) {
		for (e = c->drivers; e < d && strcmp((*e)->section, (*d)->section) != 0; e++)
			;
		if (e < d)
			continue;
		i++;
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s { ... }",
		    i == 1 ? "" : i == n ? last_sep : ", ", (*d)->section);
	}
}

/*
 * The load balancer: the one driver section that is set, and its mode,
 * choose the driver (once, here); the driver reads its own section.
 */
static void
read_driver(struct conf_ctx *c, const config_setting_t *root, struct config *conf)
{
	const struct lb_driver *const *d, *drv = NULL;
	const config_setting_t *sect = NULL, *s;
	char names[256], *mode;

	for (d = c->drivers; *d != NULL; d++) {
		if ((s = config_setting_get_member(root, (*d)->section)) == NULL || s == sect)
			continue;
		if (sect != NULL) {
			cerr(c, s, "%s { ... } and %s { ... } are both set: switchd drives "
			    "one load balancer", drv->section, (*d)->section);
			break;
		}
		sect = s;
		drv = *d;
	}
	if (drv == NULL) {
		driver_sections(c, " or ", names, sizeof(names));
		cerr(c, NULL, "%s is missing: switchd needs a load balancer to drive", names);
		drv = c->drivers[0];
	}
	/* The first driver of a section is its default mode. */
	if (drv->mode != NULL) {
		mode = get_str(sect, "mode", drv->mode);
		for (d = c->drivers; *d != NULL; d++)
			if (strcmp((*d)->section, drv->section) == 0 && (*d)->mode != NULL &&
			    strcmp((*d)->mode, mode) == 0)
				break;
		if (*d != NULL)
			drv = *d;
		else {
			names[0] = '\0';
			for (d = c->drivers; *d != NULL; d++)
				if (strcmp((*d)->section, drv->section) == 0)
					snprintf(names + strlen(names), sizeof(names) - strlen(names),
					    "%s\"%s\"", names[0] ? " or " : "", (*d)->mode);
			cerr(c, config_setting_get_member(sect, "mode"), "%s.mode must be %s",
			    drv->section, names);
		}
		free(mode);
	}
	conf->drv = drv;
	drv->conf_read(c, sect, conf);
}

/* The schema of the top level: config.c's sections and every driver's. */
static void
check_top(struct conf_ctx *c, const config_setting_t *root)
{
	size_t n = 0, i;
	struct conf_key *keys;
	const struct lb_driver *const *d;

	for (d = c->drivers; *d != NULL; d++)
		n++;
	keys = xcalloc(sizeof(top_keys) / sizeof(top_keys[0]) + n, sizeof(*keys));
	for (n = 0; top_keys[n].name != NULL; n++)
		keys[n] = top_keys[n];
	for (d = c->drivers; *d != NULL; d++) {
		for (i = 0; i < n && strcmp(keys[i].name, (*d)->section) != 0; i++)
			;
		if (i == n) {
			keys[n].name = (*d)->section;
			keys[n].type = K_GROUP;
			keys[n++].sub = (*d)->keys;
		}
	}
	check_group(c, root, keys);
	free(keys);
}

/* hosts: the live and the cold name, different and well-formed. */
static void
read_hosts(struct conf_ctx *c, const config_setting_t *hosts, struct config *conf)
{
	if (hosts == NULL)
		cerr(c, NULL, "hosts { live = ...; cold = ...; } is missing");
	else {
		conf->live_host = lower(get_str(hosts, "live", NULL));
		conf->cold_host = lower(get_str(hosts, "cold", NULL));
		if (conf->live_host == NULL)
			cerr(c, hosts, "hosts.live is missing");
		if (conf->cold_host == NULL)
			cerr(c, hosts, "hosts.cold is missing");
		if (conf->live_host && conf->cold_host &&
		    strcasecmp(conf->live_host, conf->cold_host) == 0)
			cerr(c, hosts, "hosts.live and hosts.cold are the same name");
		name_check(c, config_setting_get_member(hosts, "live") ?
		    config_setting_get_member(hosts, "live") : hosts, "hosts.live",
		    conf->live_host, NAME_MAX_HOST, ":");
		name_check(c, config_setting_get_member(hosts, "cold") ?
		    config_setting_get_member(hosts, "cold") : hosts, "hosts.cold",
		    conf->cold_host, NAME_MAX_HOST, ":");
	}
}

/* pools: blue and green, each its own backend. */
static void
read_pools(struct conf_ctx *c, const config_setting_t *pools, struct config *conf)
{
	if (pools == NULL)
		cerr(c, NULL, "pools { blue = ...; green = ...; } is missing");
	else {
		read_pool(c, pools, POOL_B, conf);
		read_pool(c, pools, POOL_G, conf);
		if (conf->pools[0].backend && conf->pools[1].backend &&
		    strcmp(conf->pools[0].backend, conf->pools[1].backend) == 0)
			cerr(c, pools, "pools.blue and pools.green use the same backend");
	}
	conf->pools[POOL_B].name = POOL_BLUE;
	conf->pools[POOL_G].name = POOL_GREEN;
}

/* smoke: where and what to check, and the preview cookie. */
static void
read_smoke(struct conf_ctx *c, const config_setting_t *smoke, struct config *conf)
{
	conf->smoke_url = get_str(smoke, "url", NULL);
	conf->smoke_timeout_ms = get_int(smoke, "timeout_ms", 5000);
	conf->per_server = get_bool(smoke, "per_server", 0);
	conf->smoke_command = get_str(smoke, "command", NULL);
	conf->smoke_command_timeout = get_int(smoke, "command_timeout", 600);
	conf->smoke_verify_tls = get_bool(smoke, "verify_tls", 1);
	conf->smoke_ca_file = get_str(smoke, "ca_file", NULL);
	read_checks(c, smoke, conf);
	if (conf->nchecks > 0 && conf->smoke_url == NULL && !conf->per_server)
		cerr(c, smoke, "smoke.checks need smoke.url (through the load balancer), "
		    "per_server = true, or both");
	if (conf->smoke_url != NULL && strncmp(conf->smoke_url, "http://", 7) != 0 &&
	    strncmp(conf->smoke_url, "https://", 8) != 0)
		cerr(c, config_setting_get_member(smoke, "url"),
		    "smoke.url must start with http:// or https://");
	if (conf->smoke_timeout_ms <= 0)
		cerr(c, smoke, "smoke.timeout_ms must be positive");
	if (conf->smoke_command_timeout <= 0)
		cerr(c, smoke, "smoke.command_timeout must be positive");

	conf->smoke_preview = get_bool(smoke, "preview", 0);
	if (conf->smoke_preview && conf->smoke_url == NULL)
		cerr(c, config_setting_get_member(smoke, "preview"),
		    "smoke.preview needs smoke.url (the checks go through the load balancer)");
	if (conf->smoke_preview && conf->hap_canary_map == NULL)
		cerr(c, config_setting_get_member(smoke, "preview"),
		    "smoke.preview needs haproxy.canary_map (the preview cookie is "
		    "routed by the canary frontend rules)");
}

/* deploy: the command that puts a version on the cold pool. */
static void
read_deploy(struct conf_ctx *c, const config_setting_t *dep, struct config *conf)
{
	conf->deploy_command = get_str(dep, "command", NULL);
	conf->deploy_timeout = get_int(dep, "timeout", 1800);
	if (conf->deploy_timeout <= 0)
		cerr(c, dep, "deploy.timeout must be positive");
}

/* ec2: the role tags, discovery and its filters; the generated backends file. */
static void
read_ec2(struct conf_ctx *c, const config_setting_t *ec2, const config_setting_t *hap,
    struct config *conf)
{
	conf->ec2_region = get_str(ec2, "region", "us-east-1");
	conf->ec2_role_tag = get_str(ec2, "role_tag", "group");
	conf->ec2_hot = get_str(ec2, "hot", "hot");
	conf->ec2_cold = get_str(ec2, "cold", "cold");
	conf->ec2_discover = get_bool(ec2, "discover", 0);
	conf->ec2_pool_tag = get_str(ec2, "pool_tag", "switchd:pool");
	conf->ec2_port = get_int(ec2, "port", 8080);
	conf->ec2_endpoint = get_str(ec2, "endpoint", NULL);
	conf->ec2_pool_tag_filter = xasprintf("tag:%s", conf->ec2_pool_tag);
	conf->ec2_port_tag = get_str(ec2, "port_tag", "switchd:port");
	conf->ec2_discover_interval = get_int(ec2, "discover_interval", 60);
	if (conf->ec2_discover_interval <= 0)
		cerr(c, config_setting_get_member(ec2, "discover_interval"),
		    "ec2.discover_interval must be positive");
	conf->ec2_server_options = get_str(ec2, "server_options", "check inter 2s fall 3 rise 2");
	if (strpbrk(conf->ec2_server_options, "\r\n;#") != NULL)
		cerr(c, config_setting_get_member(ec2, "server_options"),
		    "ec2.server_options must be one line of server keywords");
	conf->ec2_filters = json_array();
	{
		const config_setting_t *fl = ec2 ? config_setting_get_member(ec2, "filters") : NULL;
		int fi, fn = fl && config_setting_is_aggregate(fl) ? config_setting_length(fl) : 0;

		for (fi = 0; fi < fn; fi++) {
			const char *v = config_setting_get_string_elem(fl, fi);

			if (v == NULL)
				continue;
			if (strchr(v, '=') == NULL || v[0] == '=' || strchr(v, '=')[1] == '\0')
				cerr(c, config_setting_get_elem(fl, fi), "ec2.filters: \"%s\" "
				    "is not NAME=VALUE[,VALUE...]", v);
			json_array_append_new(conf->ec2_filters, json_string(v));
		}
	}
	conf->backends_file = get_str(hap, "backends_file", NULL);
	conf->backends_defaults = get_str(hap, "backends_defaults", "switchd_pools");
	/* It goes into the generated backends file: the same rules as a name. */
	name_check(c, hap && config_setting_get_member(hap, "backends_defaults") ?
	    config_setting_get_member(hap, "backends_defaults") : hap,
	    "haproxy.backends_defaults", conf->backends_defaults, NAME_MAX_BACKEND, NULL);
	/* Discovered servers are added to and drained from HAProxy's
	 * backends at run time: no other driver can follow them. */
	if (conf->ec2_discover && conf->drv->servers == NULL)
		cerr(c, config_setting_get_member(ec2, "discover"),
		    "ec2.discover needs haproxy.mode \"runtime\" (servers are added at run time)");
	conf->nstatic[0] = conf->nstatic[1] = -1;
	if (conf->ec2_port <= 0 || conf->ec2_port > 65535)
		cerr(c, config_setting_get_member(ec2, "port"), "ec2.port must be 1..65535");
}

/* notify: the webhook and the command told of every journal entry. */
static void
read_notify(struct conf_ctx *c, const config_setting_t *notify, struct config *conf)
{
	conf->notify_webhook = get_str(notify, "webhook", NULL);
	conf->notify_command = get_str(notify, "command", NULL);
	conf->notify_timeout = get_int(notify, "timeout", 10);
	if (conf->notify_timeout <= 0)
		cerr(c, notify, "notify.timeout must be positive");
	if (conf->notify_webhook != NULL && strncmp(conf->notify_webhook, "http://", 7) != 0 &&
	    strncmp(conf->notify_webhook, "https://", 8) != 0)
		cerr(c, config_setting_get_member(notify, "webhook"),
		    "notify.webhook must start with http:// or https://");
}

/* http: the read-only HTTP server, off without listen. */
static void
read_http(struct conf_ctx *c, const config_setting_t *http, struct config *conf)
{
	char host[256];
	int port;

	conf->http_listen = get_str(http, "listen", NULL);
	if (conf->http_listen != NULL && listen_addr_parse(conf->http_listen, host,
	    sizeof(host), &port) == -1)
		cerr(c, config_setting_get_member(http, "listen"), "http.listen: \"%s\" is not "
		    "ADDRESS:PORT (127.0.0.1:9180, [::1]:9180)", conf->http_listen);
}

static void
read_config(struct conf_ctx *c, config_t *cf, struct config *conf)
{
	const config_setting_t *root = config_root_setting(cf), *ctl;

	ctl = config_setting_get_member(root, "control");
	conf->ctl_socket = get_str(ctl, "socket", SWITCHD_DEFAULT_SOCKET);
	conf->ctl_mode = get_mode(c, ctl, "mode", 0660);
	conf->ctl_group = get_str(ctl, "group", NULL);
	conf->admin_group = get_str(ctl, "admin_group", NULL);
	conf->state_dir = get_str(root, "state_dir", "/var/lib/switchd");
	read_hosts(c, config_setting_get_member(root, "hosts"), conf);
	read_pools(c, config_setting_get_member(root, "pools"), conf);
	read_driver(c, root, conf);
	read_smoke(c, config_setting_get_member(root, "smoke"), conf);	/* after the driver */
	read_guard(c, config_setting_get_member(root, "guard"), conf);
	read_cluster(c, config_setting_get_member(root, "cluster"), conf);
	read_deploy(c, config_setting_get_member(root, "deploy"), conf);
	read_ec2(c, config_setting_get_member(root, "ec2"),
	    config_setting_get_member(root, "haproxy"), conf);
	read_notify(c, config_setting_get_member(root, "notify"), conf);
	read_http(c, config_setting_get_member(root, "http"), conf);
}

struct config *
config_load(const char *path, const struct lb_driver *const *drivers, json_t **errors)
{
	struct conf_ctx c = { path, json_array(), drivers };
	struct config *conf;
	config_t cf;

	*errors = NULL;
	config_init(&cf);
	if (!config_read_file(&cf, path)) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			json_array_append_new(c.errors, json_sprintf("%s: cannot read: %s",
			    path, strerror(errno)));
		else
			json_array_append_new(c.errors, json_sprintf("%s:%d: %s",
			    path, config_error_line(&cf), config_error_text(&cf)));
		config_destroy(&cf);
		*errors = c.errors;
		return NULL;
	}
	check_top(&c, config_root_setting(&cf));
	conf = xcalloc(1, sizeof(*conf));
	conf->path = xstrdup(path);
	read_config(&c, &cf, conf);
	config_destroy(&cf);
	if (json_array_size(c.errors) > 0) {
		config_free(conf);
		*errors = c.errors;
		return NULL;
	}
	json_decref(c.errors);
	return conf;
}

void
config_free(struct config *conf)
{
	size_t i, j;

	if (conf == NULL)
		return;
	free(conf->path);
	free(conf->ctl_socket);
	free(conf->ctl_group);
	free(conf->admin_group);
	free(conf->state_dir);
	free(conf->live_host);
	free(conf->cold_host);
	for (i = 0; i < NPOOLS; i++) {
		free(conf->pools[i].backend);
		for (j = 0; j < conf->pools[i].nservers; j++) {
			free(conf->pools[i].servers[j].name);
			free(conf->pools[i].servers[j].address);
			free(conf->pools[i].servers[j].instance);
		}
		free(conf->pools[i].servers);
	}
	if (conf->drv != NULL)
		conf->drv->conf_free(conf);
	free(conf->smoke_url);
	for (i = 0; i < conf->nchecks; i++) {
		free(conf->checks[i].name);
		free(conf->checks[i].method);
		free(conf->checks[i].path);
		free(conf->checks[i].body);
	}
	free(conf->checks);
	free(conf->smoke_command);
	free(conf->smoke_ca_file);
	free(conf->deploy_command);
	free(conf->ec2_region);
	free(conf->ec2_role_tag);
	free(conf->ec2_hot);
	free(conf->ec2_cold);
	free(conf->ec2_pool_tag);
	free(conf->ec2_endpoint);
	free(conf->ec2_pool_tag_filter);
	free(conf->ec2_port_tag);
	free(conf->ec2_server_options);
	json_decref(conf->ec2_filters);
	free(conf->backends_file);
	free(conf->backends_defaults);
	free(conf->notify_webhook);
	free(conf->notify_command);
	free(conf->http_listen);
	for (i = 0; i < conf->cluster_nendpoints; i++)
		free(conf->cluster_endpoints[i]);
	free(conf->cluster_endpoints);
	free(conf->cluster_prefix);
	free(conf->cluster_name);
	free(conf);
}

int
pool_index(const char *name)
{
	if (name == NULL)
		return -1;
	if (strcmp(name, POOL_BLUE) == 0)
		return POOL_B;
	if (strcmp(name, POOL_GREEN) == 0)
		return POOL_G;
	return -1;
}

const char *
pool_name(int idx)
{
	return idx == POOL_B ? POOL_BLUE : POOL_GREEN;
}
