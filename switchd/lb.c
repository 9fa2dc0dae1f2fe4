/*
 * lb.c — picks the load balancer driver for a config and holds what every
 * driver shares: which backend each host name maps to, the text of the
 * file that keeps it across restarts (HAProxy's map, or nginx's include),
 * and, for the drivers that reload, reading and restoring that file and
 * running a command (haproxy -c, nginx -t, a reload) from the event loop.
 */
#include <sys/wait.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drv.h"
#include "log.h"
#include "proc.h"
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

/* ------------------------------------------------- for drivers that reload */

#define LB_FILE_MAX	(4 * 1024 * 1024)
#define LB_OUTPUT_MAX	4096

char *
lb_file_read(const char *path)
{
	FILE *f;
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, n;
	int err = 0;

	if ((f = fopen(path, "re")) == NULL)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if (cap > LB_FILE_MAX || (nbuf = realloc(buf, cap + 1)) == NULL) {
				err = EFBIG;
				break;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (err == 0 && ferror(f))
		err = EIO;
	fclose(f);
	if (err != 0) {
		free(buf);
		errno = err;
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

int
lb_file_restore(const char *path, const char *prev)
{
	if (prev == NULL)
		return unlink(path) == -1 && errno != ENOENT ? -1 : 0;
	return file_write_atomic(path, prev, strlen(prev), 0644);
}

char *
lb_shell_quote(const char *s)
{
	size_t n = 2, i;
	char *out, *p;

	for (i = 0; s[i] != '\0'; i++)
		n += s[i] == '\'' ? 4 : 1;
	p = out = xcalloc(1, n + 1);
	*p++ = '\'';
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else
			*p++ = s[i];
	}
	*p++ = '\'';
	return out;
}

struct lb_output {
	size_t		 len;
	char		 text[LB_OUTPUT_MAX];
};

struct lb_run {
	lb_run_cb	 cb;
	void		*arg;
	int		 timeout_ms;
	char		*prefer;
	struct lb_output all, preferred;
};

static void
lb_output_add(struct lb_output *o, const char *line)
{
	int n;

	if (o->len >= sizeof(o->text) - 1)
		return;
	n = snprintf(o->text + o->len, sizeof(o->text) - o->len, "%s%s",
	    o->len ? "; " : "", line);
	if (n > 0)
		o->len += (size_t)n;
	if (o->len >= sizeof(o->text))
		o->len = sizeof(o->text) - 1;
}

static void
lb_run_line(const char *line, int is_stderr, void *arg)
{
	struct lb_run *r = arg;

	char buf[PROC_LINE_MAX + 1], *p = buf;

	(void)is_stderr;
	log_debug("output: %s", line);
	/* Runs of blanks (HAProxy aligns its messages) become one space. */
	for (; *line != '\0'; line++)
		if ((*line != ' ' && *line != '\t') ||
		    (p > buf && p[-1] != ' ' && line[1] != '\0'))
			*p++ = *line == '\t' ? ' ' : *line;
	*p = '\0';
	if (buf[0] == '\0')
		return;
	lb_output_add(&r->all, buf);
	if (r->prefer != NULL && strstr(buf, r->prefer) != NULL)
		lb_output_add(&r->preferred, buf);
}

static void
lb_run_exit(int status, int timed_out, void *arg)
{
	struct lb_run *r = arg;
	struct lb_output *o = r->preferred.len > 0 ? &r->preferred : &r->all;
	int ok = !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	char how[64] = "";

	if (timed_out)
		snprintf(how, sizeof(how), "timed out after %d ms", r->timeout_ms);
	else if (!ok && o->len == 0 && WIFEXITED(status))
		snprintf(how, sizeof(how), "exited %d", WEXITSTATUS(status));
	else if (!ok && o->len == 0 && WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
	if (how[0] != '\0')
		lb_output_add(o, how);
	r->cb(ok, o->text, r->arg);
	free(r->prefer);
	free(r);
}

int
lb_run(struct event_base *base, const char *command, int timeout_ms,
    const char *prefer, lb_run_cb cb, void *arg)
{
	struct lb_run *r = xcalloc(1, sizeof(*r));

	r->cb = cb;
	r->arg = arg;
	r->timeout_ms = timeout_ms;
	r->prefer = prefer ? xstrdup(prefer) : NULL;
	log_debug("running: %s", command);
	if (proc_start(base, command, NULL, (timeout_ms + 999) / 1000, lb_run_line,
	    lb_run_exit, r) == NULL) {
		free(r->prefer);
		free(r);
		return -1;
	}
	return 0;
}
