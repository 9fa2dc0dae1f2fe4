/*
 * smoke.c — the live gate: every smoke check against the cold pool, through
 * the load balancer (smoke.url with the cold host name as Host) and, with
 * per_server, against each cold server directly.  All requests run at once
 * on libcurl's multi interface (bounded by SMOKE_MAX_CONNECTIONS), so a
 * run takes about as long as its slowest check, and the daemon keeps
 * answering while it runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "http.h"
#include "lb.h"
#include "log.h"
#include "protocol.h"
#include "smoke.h"
#include "util.h"

struct smoke_req {
	struct smoke_run *run;
	size_t		 idx;		/* into results */
	struct http_req	*http;
};

struct smoke_run {
	struct op_who	 who;		/* for progress; quiet if none */
	struct config	*conf;
	struct lb	*lb;		/* holds conf */
	size_t		 nreqs, pending, failed;
	struct smoke_req *reqs;
	json_t		*results;	/* [{check, target, url, status, ms, passed, why}] */
	smoke_done_cb	 cb;
	void		*arg;
	double		 t0;
};

static int
body_contains(const struct http_result *r, const char *needle)
{
	return memmem(r->body, r->body_len, needle, strlen(needle)) != NULL;
}

static void
smoke_finish(struct smoke_run *run)
{
	char summary[256];
	size_t n = json_array_size(run->results);

	if (n == 0)
		snprintf(summary, sizeof(summary), "no smoke checks configured");
	else if (run->failed == 0)
		snprintf(summary, sizeof(summary), "%zu check%s passed in %.0f ms", n,
		    n == 1 ? "" : "s", now_ms() - run->t0);
	else
		snprintf(summary, sizeof(summary), "%zu of %zu check%s failed", run->failed, n,
		    n == 1 ? "" : "s");
	run->cb(run->failed == 0, run->results, summary, run->arg);
	json_decref(run->results);
	free(run->reqs);
	lb_unref(run->lb);
	free(run);
}

static void
smoke_reply(const struct http_result *r, void *arg)
{
	struct smoke_req *req = arg;
	struct smoke_run *run = req->run;
	json_t *res = json_array_get(run->results, req->idx);
	const struct smoke_check *k;
	char why[512] = "";
	int ci = (int)json_integer_value(json_object_get(res, "check_index"));

	req->http = NULL;
	k = &run->conf->checks[ci];
	if (r->error != NULL) {
		if (r->timed_out)
			snprintf(why, sizeof(why), "no answer within %d ms",
			    run->conf->smoke_timeout_ms);
		else
			snprintf(why, sizeof(why), "%s", r->error);
	} else if (r->status != k->status)
		snprintf(why, sizeof(why), "status %ld, expected %d", r->status, k->status);
	else if (k->body != NULL && strcmp(k->method, "HEAD") != 0 && !body_contains(r, k->body))
		snprintf(why, sizeof(why), "body does not contain \"%s\"", k->body);
	else if (k->max_ms > 0 && r->total_ms > k->max_ms)
		snprintf(why, sizeof(why), "took %.0f ms, max_ms is %d", r->total_ms, k->max_ms);
	json_object_del(res, "check_index");
	json_object_set_new(res, "status", json_integer(r->status));
	json_object_set_new(res, "ms", json_integer((json_int_t)(r->total_ms + 0.5)));
	json_object_set_new(res, "passed", json_boolean(why[0] == '\0'));
	if (why[0] != '\0') {
		json_object_set_new(res, "why", json_string(why));
		run->failed++;
	}
	if (run->who.event != NULL) {
		json_t *ev = json_deep_copy(res);

		json_object_set_new(ev, P_EVENT, json_string(EV_CHECK));
		who_event(&run->who, ev);
	}
	if (--run->pending == 0)
		smoke_finish(run);
}

static void
smoke_add(struct smoke_run *run, size_t ci, const char *target, const char *base)
{
	const struct smoke_check *k = &run->conf->checks[ci];
	char *url;
	size_t blen = strlen(base);

	url = xasprintf("%s%s", base, k->path + (blen > 0 && base[blen - 1] == '/'));
	json_array_append_new(run->results, json_pack("{s:s, s:s, s:s, s:s, s:i}",
	    "check", k->name, "target", target, "url", url, "method", k->method,
	    "check_index", (int)ci));
	free(url);
}

/*
 * An https smoke.url, verified: the request names the host (the cold one,
 * or the live one for a preview check: its SNI,
 * and the name its certificate must carry) and is sent to smoke.url's
 * address with CURLOPT_CONNECT_TO.  *url and *connect_to are malloc'd.
 */
static void
smoke_tls_target(const char *name, const char *check_url, char **url,
    char **connect_to)
{
	const char *auth = check_url + strlen("https://"), *rest, *colon;
	char *host, *port;

	rest = auth + strcspn(auth, "/?#");
	if (*auth == '[') {
		colon = memchr(auth, ']', (size_t)(rest - auth));
		colon = colon != NULL && colon + 1 < rest && colon[1] == ':' ? colon + 1 : NULL;
	} else
		colon = memchr(auth, ':', (size_t)(rest - auth));
	host = xasprintf("%.*s", (int)((colon ? colon : rest) - auth), auth);
	port = colon ? xasprintf("%.*s", (int)(rest - colon - 1), colon + 1) : xstrdup("443");
	*url = xasprintf("https://%s:%s%s", name, port, rest);
	*connect_to = xasprintf("%s:%s:%s:%s", name, port, host, port);
	free(host);
	free(port);
}

void
smoke_start(struct daemon *d, const struct op_who *who, int pool, smoke_done_cb cb,
    void *arg)
{
	struct smoke_run *run = xcalloc(1, sizeof(*run));
	struct config *conf = d->conf;
	const struct pool *p = &conf->pools[pool];
	size_t c, s, i;
	char *base;

	if (who != NULL)
		run->who = *who;
	run->lb = lb_ref(d->lb);
	run->conf = conf;
	run->cb = cb;
	run->arg = arg;
	run->t0 = now_ms();
	run->results = json_array();
	for (c = 0; c < conf->nchecks; c++) {
		if (conf->smoke_url != NULL)
			smoke_add(run, c, "lb", conf->smoke_url);
		/* The live host name with the preview cookie: its routing too. */
		if (conf->smoke_url != NULL && conf->smoke_preview)
			smoke_add(run, c, "preview", conf->smoke_url);
		for (s = 0; conf->per_server && s < p->nservers; s++) {
			base = xasprintf("http://%s", p->servers[s].address);
			smoke_add(run, c, p->servers[s].name, base);
			free(base);
		}
	}
	run->nreqs = json_array_size(run->results);
	if (run->nreqs == 0) {
		smoke_finish(run);
		return;
	}
	who_progress(&run->who, "smoke: %zu check%s on the %s pool (Host: %s)", run->nreqs,
	    run->nreqs == 1 ? "" : "s", p->name, conf->cold_host);
	run->reqs = xcalloc(run->nreqs, sizeof(*run->reqs));
	/*
	 * One more than the requests while this loop runs: a request that
	 * cannot start is answered at once, and if all of them are, the run
	 * must not finish (and be freed) under the loop still reading it.
	 */
	run->pending = run->nreqs + 1;
	http_set_max_connections(SMOKE_MAX_CONNECTIONS);
	for (i = 0; i < run->nreqs; i++) {
		json_t *res = json_array_get(run->results, i);
		struct http_opts o;
		static const char *const preview[] = { "Cookie: switchd_preview=1", NULL };
		int is_preview = strcmp(json_string_value(json_object_get(res, "target")),
		    "preview") == 0;
		char *tls_url = NULL, *connect_to = NULL;

		memset(&o, 0, sizeof(o));
		o.method = json_string_value(json_object_get(res, "method"));
		o.url = json_string_value(json_object_get(res, "url"));
		o.host = is_preview ? conf->live_host : conf->cold_host;
		o.headers = is_preview ? preview : NULL;
		o.timeout_ms = conf->smoke_timeout_ms;
		if (conf->smoke_verify_tls && strncmp(o.url, "https://", 8) == 0) {
			smoke_tls_target(o.host, o.url, &tls_url, &connect_to);
			o.url = tls_url;
			o.connect_to = connect_to;
			o.cainfo = conf->smoke_ca_file;
		} else
			o.insecure = 1;	/* by address: no name to verify */
		run->reqs[i].run = run;
		run->reqs[i].idx = i;
		run->reqs[i].http = http_start(&o, smoke_reply, &run->reqs[i]);
		free(tls_url);
		free(connect_to);
		if (run->reqs[i].http == NULL) {
			struct http_result r = { 0 };

			r.error = "could not start the request";
			smoke_reply(&r, &run->reqs[i]);
		}
	}
	if (--run->pending == 0)
		smoke_finish(run);
}
