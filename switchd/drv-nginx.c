/*
 * drv-nginx.c — the nginx driver (an `nginx` section instead of `haproxy`):
 * nginx itself routes by host name, from one include file switchd owns
 * (nginx.include): an upstream per pool, built from pools.*.servers, and
 *
 *     map $host $switchd_pool { hostnames; default UP_HOT;
 *                               LIVE_HOST UP_HOT; COLD_HOST UP_COLD; }
 *
 * which the admin's server block uses as `proxy_pass http://$switchd_pool;`
 * (nginx/switchd-driver.conf).  The upstream names are pools.*.backend,
 * "switchd_blue" and "switchd_green" unless set.
 *
 * apply: write the include atomically (keeping the old text) -> "nginx -t"
 * -> graceful reload (nginx.reload_command, default "nginx -s reload") ->
 * confirm: the master (nginx.pid_file) has new workers, and check_url, if
 * set, answers for the live host with the upstream it now serves.  On a
 * failure the old include goes back, nginx is reloaded again if it was,
 * and the error carries nginx's own words.
 *
 * observe reads the include (it is ours).  nginx OSS has no active health
 * checks: servers are "unknown", min_up is left to the smoke checks, and
 * precheck only asks that the target upstream has a server.
 */
#include <sys/types.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "config.h"
#include "http.h"
#include "lb-reload.h"
#include "log.h"
#include "protocol.h"
#include "run.h"
#include "util.h"

#define NGX_POLL_MS	100
#define NGX_MAX_KIDS	256
#define NGX_CHECK_MS	2000	/* one check_url request */

/* The nginx section, read by ngx_conf_read(): conf->drv_conf. */
struct ngx_conf {
	char		*include;	/* the file switchd writes */
	char		*config;
	char		*binary;
	char		*prefix;
	char		*reload_command;
	char		*pid_file;
	char		*check_url;
	int		 timeout_ms;
};
#define NGX(conf)	((struct ngx_conf *)(conf)->drv_conf)

/* ------------------------------------------------------------------ config */

static const struct conf_key ngx_keys[] = {
	{ "include", K_STR, NULL }, { "config", K_STR, NULL }, { "binary", K_STR, NULL },
	{ "prefix", K_STR, NULL }, { "reload_command", K_STR, NULL },
	{ "pid_file", K_STR, NULL }, { "check_url", K_STR, NULL },
	{ "timeout_ms", K_INT, NULL }, { NULL, 0, NULL }
};

/* Characters that would end a token of nginx's configuration language. */
static int
nginx_token_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && strpbrk(s, " \t\r\n;{}\"'#$\\") == NULL;
}

/* The nginx section: switchd writes an include, tests it and reloads nginx. */
static void
ngx_conf_read(struct conf_ctx *c, const config_setting_t *ngx, struct config *conf)
{
	struct ngx_conf *n = xcalloc(1, sizeof(*n));
	size_t i, j;

	conf->drv_conf = n;
	n->include = conf_str(ngx, "include", "/etc/nginx/switchd-upstreams.conf");
	n->config = conf_str(ngx, "config", "/etc/nginx/nginx.conf");
	n->binary = conf_str(ngx, "binary", "nginx");
	n->prefix = conf_str(ngx, "prefix", NULL);
	n->reload_command = conf_str(ngx, "reload_command", NULL);
	n->pid_file = conf_str(ngx, "pid_file", NULL);
	n->check_url = conf_str(ngx, "check_url", NULL);
	n->timeout_ms = conf_int(ngx, "timeout_ms", 10000);
	/* nginx OSS has no active health checks: the smoke checks judge. */
	conf->min_up = 0;
	conf->timeout_ms = n->timeout_ms;
	if (n->include[0] != '/')
		conf_error(c, config_setting_get_member(ngx, "include"),
		    "nginx.include must be an absolute path");
	if (n->config[0] != '/')
		conf_error(c, config_setting_get_member(ngx, "config"),
		    "nginx.config must be an absolute path");
	if (n->timeout_ms <= 0)
		conf_error(c, config_setting_get_member(ngx, "timeout_ms"),
		    "nginx.timeout_ms must be positive");
	if (n->check_url != NULL && strncmp(n->check_url, "http://", 7) != 0 &&
	    strncmp(n->check_url, "https://", 8) != 0)
		conf_error(c, config_setting_get_member(ngx, "check_url"),
		    "nginx.check_url must start with http:// or https://");
	/* These go verbatim into the include: nothing may break its syntax. */
	for (i = 0; i < NPOOLS; i++) {
		struct pool *p = &conf->pools[i];

		if (p->backend != NULL && !nginx_token_ok(p->backend))
			conf_error(c, ngx, "pools.%s.backend \"%s\" cannot name an nginx upstream",
			    p->name, p->backend);
		for (j = 0; j < p->nservers; j++)
			if (p->servers[j].address != NULL &&
			    !nginx_token_ok(p->servers[j].address))
				conf_error(c, ngx, "pools.%s: address \"%s\" cannot go into an "
				    "nginx server line", p->name, p->servers[j].address);
	}
	if ((conf->live_host && !nginx_token_ok(conf->live_host)) ||
	    (conf->cold_host && !nginx_token_ok(conf->cold_host)))
		conf_error(c, ngx, "hosts.live and hosts.cold must be plain host names for nginx");
}

static void
ngx_conf_free(struct config *conf)
{
	struct ngx_conf *n = conf->drv_conf;

	if (n == NULL)
		return;
	free(n->include);
	free(n->config);
	free(n->binary);
	free(n->prefix);
	free(n->reload_command);
	free(n->pid_file);
	free(n->check_url);
	free(n);
	conf->drv_conf = NULL;
}

static const char *
ngx_map_file(const struct config *conf)
{
	return NGX(conf)->include;
}

static const char *
ngx_no_canary(const struct config *conf)
{
	(void)conf;
	return "the nginx driver cannot split traffic without a reload; a canary "
	    "needs HAProxy in runtime mode (haproxy.mode = \"runtime\") with "
	    "haproxy.canary_map";
}

/* ------------------------------------------------------------- the include */

static char *
nginx_include_text(const struct config *conf, const struct lb_mapping *m)
{
	size_t len = 0, cap = 4096, i, j;
	char *buf = xcalloc(1, cap);

#define ADD(...) do {							\
	int n_ = snprintf(buf + len, cap - len, __VA_ARGS__);		\
	if (n_ >= 0 && (size_t)n_ >= cap - len) {			\
		cap = cap * 2 + (size_t)n_;				\
		if ((buf = realloc(buf, cap)) == NULL)			\
			fatalx("out of memory");			\
		n_ = snprintf(buf + len, cap - len, __VA_ARGS__);	\
	}								\
	len += n_ > 0 ? (size_t)n_ : 0;					\
} while (0)

	ADD("# written by switchd: %s is served by %s; do not edit.\n"
	    "# Use it in a server block as: proxy_pass http://$switchd_pool;\n",
	    conf->live_host, m->live);
	for (i = 0; i < NPOOLS; i++) {
		const struct pool *p = &conf->pools[i];

		ADD("upstream %s {\n", p->backend);
		for (j = 0; j < p->nservers; j++)
			ADD("\tserver %s;\n", p->servers[j].address);
		/* nginx refuses an empty upstream; precheck refuses to use one. */
		if (p->nservers == 0)
			ADD("\tserver 127.0.0.1:9 down;\t# pool %s has no servers\n", p->name);
		/* Used when the location sets proxy_http_version 1.1 and Connection "". */
		ADD("\tkeepalive 16;\n}\n");
	}
	ADD("map $host $switchd_pool {\n\thostnames;\n\tdefault %s;\n\t%s %s;\n\t%s %s;\n}\n",
	    m->live, conf->live_host, m->live, conf->cold_host, m->cold);
#undef ADD
	return buf;
}

/* The map block of our include -> mapping, as lb_map_parse(). */
static int
include_parse(const struct config *conf, const char *text, struct lb_mapping *m)
{
	char *copy = xstrdup(text), *block = xcalloc(1, strlen(text) + 1), *line;
	char *save = NULL;
	size_t len = 0;
	int inmap = 0, found;

	/* The lines after "map ... $switchd_pool {", up to its "}". */
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line += strspn(line, " \t");
		if (!inmap) {
			inmap = strncmp(line, "map ", 4) == 0 && strstr(line, "$switchd_pool");
			continue;
		}
		if (line[0] == '}')
			break;
		len += (size_t)sprintf(block + len, "%s\n", line);
	}
	found = lb_map_parse(block, 0, conf->live_host, conf->cold_host, m);
	free(block);
	free(copy);
	return found;
}

/* nginx's master from nginx.pid_file: its pid, 0 if unset, -1 if not running. */
static long
master_pid(const struct config *conf, char *why, size_t len)
{
	char *text;
	long pid;

	if (NGX(conf)->pid_file == NULL)
		return 0;
	if ((text = file_read(NGX(conf)->pid_file)) == NULL) {
		snprintf(why, len, "nginx is not running: cannot read %s: %s",
		    NGX(conf)->pid_file, strerror(errno));
		return -1;
	}
	pid = atol(text);
	free(text);
	if (pid <= 0 || (kill((pid_t)pid, 0) == -1 && errno == ESRCH)) {
		snprintf(why, len, "nginx is not running (pid file %s)", NGX(conf)->pid_file);
		return -1;
	}
	return pid;
}

/* The master's children (its workers), from procfs; -1 if it is gone. */
static int
master_kids(long master, long *kids, int max)
{
	char path[300], *text, *p, *end;
	DIR *d;
	struct dirent *de;
	FILE *f;
	int n = 0;
	long ppid;

	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", master, master);
	if ((text = file_read(path)) != NULL) {
		for (p = text; n < max; p = end) {
			long pid = strtol(p, &end, 10);

			if (end == p)
				break;
			kids[n++] = pid;
		}
		free(text);
		return n;
	}
	if (kill((pid_t)master, 0) == -1 && errno == ESRCH)
		return -1;
	/* No CONFIG_PROC_CHILDREN: every process's parent, from its stat. */
	if ((d = opendir("/proc")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		char line[512];

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((f = fopen(path, "re")) == NULL)
			continue;
		if (fgets(line, sizeof(line), f) != NULL && (p = strrchr(line, ')')) != NULL &&
		    sscanf(p + 1, " %*c %ld", &ppid) == 1 && ppid == master)
			kids[n++] = atol(de->d_name);
		fclose(f);
	}
	closedir(d);
	return n;
}

/*
 * nginx's words without its log prefix: "2024/01/02 03:04:05 [emerg]
 * 123#123: unknown directive ..." -> "[emerg] unknown directive ...".
 */
static char *
nginx_words(const char *out)
{
	char *buf = xstrdup(out), *w = buf;
	const char *r = out, *p;

	while (*r != '\0') {
		/* At the start of a message: the date, the time, a level. */
		if ((r == out || (r[-2] == ';' && r[-1] == ' ')) &&
		    strlen(r) > 20 && isdigit((unsigned char)r[0]) && r[4] == '/' &&
		    r[7] == '/' && r[10] == ' ' && r[13] == ':' && r[19] == ' ' &&
		    r[20] == '[' && (p = strchr(r + 20, ']')) != NULL) {
			size_t n = (size_t)(p + 1 - (r + 20));

			memmove(w, r + 20, n);
			w += n;
			r = p + 1;
			/* " 123#123:" */
			p = r + strspn(r, " 0123456789");
			if (*p == '#') {
				p += 1 + strspn(p + 1, "0123456789");
				if (*p == ':')
					r = p + 1;
			}
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
	return buf;
}

/* "nginx -t" and "nginx -s reload" with the configured -c and -p. */
static char *
nginx_command(const struct config *conf, const char *args)
{
	char *bin = shell_quote(NGX(conf)->binary), *cfg = shell_quote(NGX(conf)->config);
	char *pfx = NGX(conf)->prefix ? shell_quote(NGX(conf)->prefix) : NULL;
	char *cmd = xasprintf("%s %s -c %s%s%s", bin, args, cfg, pfx ? " -p " : "",
	    pfx ? pfx : "");

	free(bin);
	free(cfg);
	free(pfx);
	return cmd;
}

/* ----------------------------------------------------------------- observe */

static void
ngx_observe(struct lb *lb, lb_view_cb cb, void *arg)
{
	struct config *conf = lb->conf;
	struct lb_view *v = xcalloc(1, sizeof(*v));
	struct lb_node *node;
	char *text;
	int found;

	v->nnodes = 1;
	v->nodes = node = xcalloc(1, sizeof(*node));
	node->name = xasprintf("nginx %s", NGX(conf)->config);
	if ((text = file_read(NGX(conf)->include)) == NULL) {
		/*
		 * No include yet (first start): answer, so that the reconcile
		 * writes it, even before nginx runs (it cannot start without).
		 */
		node->ok = errno == ENOENT;
		snprintf(node->error, sizeof(node->error), "cannot read %s: %s",
		    NGX(conf)->include, strerror(errno));
	} else if (master_pid(conf, node->error, sizeof(node->error)) >= 0) {
		node->ok = 1;
		found = include_parse(conf, text, &node->map);
		lb_node_set_map(node, found, NGX(conf)->include);
	}
	free(text);
	cb(v, arg);
}

/* ---------------------------------------------------------------- precheck */

static void
ngx_precheck(struct lb *lb, const struct lb_mapping *to, const char *target,
    int min_up, lb_done_cb cb, void *arg)
{
	struct config *conf = lb->conf;
	char why[512];
	int i;

	(void)to;
	(void)min_up;
	if (master_pid(conf, why, sizeof(why)) < 0) {
		cb(lb->drv->error_code, why, arg);
		return;
	}
	for (i = 0; i < NPOOLS; i++) {
		if (strcmp(conf->pools[i].backend, target) != 0)
			continue;
		if (conf->pools[i].nservers == 0) {
			snprintf(why, sizeof(why), "upstream %s (pool %s) has no servers",
			    target, conf->pools[i].name);
			cb(E_REFUSED, why, arg);
			return;
		}
		cb(NULL, NULL, arg);
		return;
	}
	snprintf(why, sizeof(why), "upstream %s is not a pool's", target);
	cb(E_REFUSED, why, arg);
}

/* ------------------------------------------------------------------- apply */

enum ngx_step { N_TEST, N_RELOAD, N_WORKERS, N_CHECK };

/* This driver's part of a reload (lb-reload.h). */
struct ngx_job {
	struct lb_reload *rl;
	enum ngx_step	 step;
	long		 master;
	long		 kids[NGX_MAX_KIDS];
	int		 nkids;
	double		 deadline;
	char		*last;		/* what the last poll saw */
	struct event	*timer;
	struct http_req	*http;
};

static void ngx_poll(struct ngx_job *);

static void
ngx_free(void *arg)
{
	struct ngx_job *job = arg;

	if (job->http != NULL)
		http_cancel(job->http);
	event_free(job->timer);
	free(job->last);
	free(job);
}

static void
ngx_note(struct ngx_job *job, const char *what)
{
	free(job->last);
	job->last = xstrdup(what);
}

static void
ngx_poll_later(struct ngx_job *job)
{
	struct timeval tv = { 0, NGX_POLL_MS * 1000 };

	if (now_ms() < job->deadline) {
		evtimer_add(job->timer, &tv);
		return;
	}
	if (job->step == N_WORKERS)
		lb_reload_fail(job->rl, "nginx started no new workers within %d ms of the reload, so "
		    "it did not load the new configuration (its error log says why)",
		    NGX(job->rl->lb->conf)->timeout_ms);
	else
		lb_reload_fail(job->rl, "nginx.check_url did not show %s for %s within %d ms (last "
		    "seen: %s)", job->rl->to.live, job->rl->lb->conf->live_host,
		    NGX(job->rl->lb->conf)->timeout_ms, job->last ? job->last : "nothing");
}

static void
ngx_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ngx_poll(arg);
}

static void
ngx_done(struct ngx_job *job)
{
	log_info("nginx: reloaded: %s -> %s, %s -> %s", job->rl->lb->conf->live_host,
	    job->rl->to.live, job->rl->lb->conf->cold_host, job->rl->to.cold);
	lb_reload_finish(job->rl, NULL);
}

static void
check_reply(const struct http_result *r, void *arg)
{
	struct ngx_job *job = arg;
	char seen[256];
	const char *b;
	size_t n;

	job->http = NULL;
	if (r->error != NULL)
		snprintf(seen, sizeof(seen), "%s", r->error);
	else {
		b = r->body + strspn(r->body, " \t\r\n");
		n = strcspn(b, " \t\r\n");
		if (r->status == 200 && n == strlen(job->rl->to.live) &&
		    strncmp(b, job->rl->to.live, n) == 0) {
			ngx_done(job);
			return;
		}
		snprintf(seen, sizeof(seen), "status %ld, \"%.*s\"", r->status,
		    (int)(n > 128 ? 128 : n), b);
	}
	ngx_note(job, seen);
	ngx_poll_later(job);
}

static void
ngx_poll(struct ngx_job *job)
{
	struct config *conf = job->rl->lb->conf;
	struct http_opts o;
	long kids[NGX_MAX_KIDS];
	int n, i, j, fresh = 0;

	if (job->step == N_WORKERS) {
		if ((n = master_kids(job->master, kids, NGX_MAX_KIDS)) < 0) {
			lb_reload_fail(job->rl, "nginx's master (pid %ld) exited during the reload",
			    job->master);
			return;
		}
		for (i = 0; i < n && !fresh; i++) {
			fresh = 1;
			for (j = 0; j < job->nkids; j++)
				if (kids[i] == job->kids[j])
					fresh = 0;
		}
		if (!fresh) {
			ngx_poll_later(job);
			return;
		}
		job->step = N_CHECK;
	}
	if (NGX(conf)->check_url == NULL) {
		ngx_done(job);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.url = NGX(conf)->check_url;
	o.host = conf->live_host;
	o.timeout_ms = NGX_CHECK_MS;
	o.insecure = 1;		/* reached by address, as the smoke checks */
	o.max_body = 4096;
	if ((job->http = http_start(&o, check_reply, job)) == NULL)
		lb_reload_fail(job->rl, "cannot request nginx.check_url: %s", strerror(errno));
}

static void
reload_ran(int ok, const char *output, void *arg)
{
	struct ngx_job *job = arg;
	struct config *conf = job->rl->lb->conf;

	if (!ok) {
		char *words = nginx_words(output);

		lb_reload_fail(job->rl, "reloading nginx failed: %s", words);
		free(words);
		return;
	}
	job->deadline = now_ms() + NGX(conf)->timeout_ms;
	if (job->master == 0 && NGX(conf)->check_url == NULL) {
		log_info("nginx: reloaded; neither nginx.pid_file nor nginx.check_url is "
		    "set, so the new workers are not confirmed");
		ngx_done(job);
		return;
	}
	job->step = job->master != 0 ? N_WORKERS : N_CHECK;
	ngx_poll(job);
}

static void
test_ran(int ok, const char *output, void *arg)
{
	struct ngx_job *job = arg;

	if (!ok) {
		char *words = nginx_words(output);

		lb_reload_fail(job->rl, "nginx -t refused the configuration with the new "
		    "include, nothing was reloaded: %s", words);
		free(words);
		return;
	}
	lb_reload_tested(job->rl);
}

/* The include is written: nginx -t tests the whole configuration with it. */
static void
ngx_test(struct lb_reload *rl)
{
	struct ngx_job *job = rl->drv;
	char *cmd = nginx_command(rl->lb->conf, "-t -q");

	job->rl = rl;
	job->step = N_TEST;
	if (run_shell(rl->lb->base, cmd, NGX(rl->lb->conf)->timeout_ms, "[emerg]", test_ran,
	    job) == -1)
		lb_reload_fail(rl, "cannot run %s: %s", cmd, strerror(errno));
	free(cmd);
}

static void
rollback_reloaded(int ok, const char *output, void *arg)
{
	struct ngx_job *job = arg;
	char *words;

	if (ok) {
		log_info("nginx: rollback: reloaded with the old include");
		lb_reload_finish(job->rl, NULL);
		return;
	}
	words = nginx_words(output);
	lb_reload_fail(job->rl, "%s", words);
	free(words);
}

/* Reload, and confirm the new workers; or, rolling back, reload alone. */
static void
ngx_reload(struct lb_reload *rl)
{
	struct ngx_job *job = rl->drv;
	struct config *conf = rl->lb->conf;
	char why[512], *cmd;

	cmd = NGX(conf)->reload_command ? xstrdup(NGX(conf)->reload_command) :
	    nginx_command(conf, "-s reload");
	if (rl->rolling_back) {
		if (run_shell(rl->lb->base, cmd, NGX(conf)->timeout_ms, "[emerg]",
		    rollback_reloaded, job) == -1) {
			char *err = xasprintf("the old include is back, but nginx cannot "
			    "be reloaded with it: %s", strerror(errno));

			lb_reload_finish(rl, err);
			free(err);
		}
		free(cmd);
		return;
	}
	/* Who serves now, to know the new workers when they come. */
	if ((job->master = master_pid(conf, why, sizeof(why))) < 0) {
		/* A switch is prechecked; this is a reconcile with nginx down. */
		log_warnx("nginx: %s; %s is written and passes nginx -t: nginx "
		    "serves it when it starts", why, NGX(conf)->include);
		lb_reload_finish(rl, NULL);
		free(cmd);
		return;
	}
	if (job->master > 0)
		job->nkids = master_kids(job->master, job->kids, NGX_MAX_KIDS);
	job->step = N_RELOAD;
	rl->reloaded = 1;
	if (run_shell(rl->lb->base, cmd, NGX(conf)->timeout_ms, "[emerg]", reload_ran,
	    job) == -1)
		lb_reload_fail(rl, "cannot run %s: %s", cmd, strerror(errno));
	free(cmd);
}

static const struct lb_reload_ops ngx_reload_ops = {
	.log = "nginx",
	.product = "nginx",
	.file = "include",
	.the_file = "",
	.old_file = "the old ",
	.keep_new = 1,	/* nginx cannot start without it, and nginx -t took it */
	.test = ngx_test,
	.reload = ngx_reload,
	.free = ngx_free,
};

static void
ngx_apply(struct lb *lb, const struct lb_mapping *to, lb_done_cb cb, void *arg)
{
	struct ngx_job *job = xcalloc(1, sizeof(*job));

	if ((job->timer = evtimer_new(lb->base, ngx_timer, job)) == NULL)
		fatalx("out of memory");
	lb_reload_start(lb, &ngx_reload_ops, job, to, cb, arg);
}

const struct lb_driver drv_nginx = {
	.name = "nginx",
	.product = "nginx",
	/*
	 * The wire has one code for a load balancer node that fails
	 * (protocol.h, SPEC): "haproxy" is its name from when HAProxy was
	 * the only one, and clients match on it.
	 */
	.error_code = E_HAPROXY,
	.section = "nginx",
	.keys = ngx_keys,
	.backend_prefix = "switchd_",	/* the upstreams it writes: switchd_blue */
	.conf_read = ngx_conf_read,
	.conf_free = ngx_conf_free,
	.nnodes = lb_one_node,
	.observe = ngx_observe,
	.precheck = ngx_precheck,
	.apply = ngx_apply,
	.map_file = ngx_map_file,
	.map_text = nginx_include_text,
	.why_no_canary = ngx_no_canary,
};
