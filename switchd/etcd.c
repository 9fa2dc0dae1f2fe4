/*
 * etcd.c — the etcd v3 JSON gateway client: one POST per call on the async
 * HTTP client, failing over along the endpoint list, and the watch stream
 * (one JSON message a line, delivered as it comes by http.c's on_data).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "http.h"
#include "log.h"
#include "util.h"

#define ETCD_MAX_BODY	(16 * 1024 * 1024)	/* a journal range */
#define ETCD_WATCH_MAX	(16 * 1024 * 1024)	/* one watch message */

struct etcd {
	char		**endpoints;
	size_t		 n;
	size_t		 cur;		/* the endpoint that answered last */
	long		 timeout_ms;
	struct etcd_call *calls;	/* in flight, for etcd_free */
	struct etcd_watch *watches;
};

struct etcd_call {
	struct etcd	*e;
	char		*api;
	char		*body;
	size_t		 idx;		/* endpoint being tried */
	size_t		 tried;
	int		 answered;	/* some endpoint answered (or timed out) */
	int		 in_post;	/* inside etcd_post */
	int		 dead;		/* gave up inside etcd_post */
	char		 last[512];	/* its error */
	struct http_req	*req;
	etcd_cb		 cb;
	void		*arg;
	struct etcd_call *next, **prevp;
};

struct etcd_watch {
	struct etcd	*e;
	size_t		 idx;		/* its endpoint */
	struct http_req	*req;
	char		*buf;
	size_t		 len, cap;
	int		 failed;
	char		 error[512];
	etcd_event_cb	 on_event;
	etcd_cb		 end;
	void		*arg;
	struct etcd_watch *next, **prevp;
};

static void	 etcd_try(struct etcd_call *);

struct etcd *
etcd_new(char *const *endpoints, size_t n, long timeout_ms)
{
	struct etcd	*e = xcalloc(1, sizeof(*e));
	size_t		 i;

	e->endpoints = xcalloc(n, sizeof(char *));
	for (i = 0; i < n; i++) {
		size_t l = strlen(endpoints[i]);

		/* "http://h:2379/" and "http://h:2379" are the same endpoint. */
		e->endpoints[i] = xstrdup(endpoints[i]);
		if (l > 0 && e->endpoints[i][l - 1] == '/')
			e->endpoints[i][l - 1] = '\0';
	}
	e->n = n;
	e->timeout_ms = timeout_ms;
	return e;
}

static void
etcd_call_free(struct etcd_call *c)
{
	if (c->next != NULL)
		c->next->prevp = c->prevp;
	*c->prevp = c->next;
	free(c->api);
	free(c->body);
	free(c);
}

void
etcd_cancel(struct etcd_call *c)
{
	if (c == NULL)
		return;
	http_cancel(c->req);
	etcd_call_free(c);
}

void
etcd_free(struct etcd *e)
{
	size_t i;

	if (e == NULL)
		return;
	while (e->calls != NULL)
		etcd_cancel(e->calls);
	while (e->watches != NULL)
		etcd_watch_cancel(e->watches);
	for (i = 0; i < e->n; i++)
		free(e->endpoints[i]);
	free(e->endpoints);
	free(e);
}

/* What etcd says when this member cannot serve: another one may. */
static int
etcd_retriable(const char *msg)
{
	static const char *const words[] = { "no leader", "leader changed",
		"not capable", "timed out", "unavailable", "stopped", "too many requests",
		"not started", NULL };
	int i;

	for (i = 0; words[i] != NULL; i++)
		if (strstr(msg, words[i]) != NULL)
			return 1;
	return 0;
}

static void
etcd_give_up(struct etcd_call *c)
{
	char msg[768];

	snprintf(msg, sizeof(msg), "%s (%zu endpoint%s tried): %s", c->answered ?
	    "etcd has no quorum" : "etcd is unreachable", c->tried,
	    c->tried == 1 ? "" : "s", c->last);
	c->cb(ETCD_UNAVAILABLE, NULL, msg, c->arg);
	if (c->in_post)
		c->dead = 1;
	else
		etcd_call_free(c);
}

static void
etcd_next(struct etcd_call *c)
{
	if (c->tried >= c->e->n) {
		etcd_give_up(c);
		return;
	}
	c->idx = (c->idx + 1) % c->e->n;
	etcd_try(c);
}

static void
etcd_done(const struct http_result *r, void *arg)
{
	struct etcd_call *c = arg;
	json_t *reply = NULL;
	const char *msg;

	c->req = NULL;
	if (r->error != NULL) {
		snprintf(c->last, sizeof(c->last), "%s: %s", c->e->endpoints[c->idx],
		    r->error);
		if (r->timed_out)
			c->answered = 1;
		etcd_next(c);
		return;
	}
	c->answered = 1;
	reply = json_loadb(r->body, r->body_len, 0, NULL);
	msg = json_string_value(json_object_get(reply, "error"));
	if (msg == NULL)
		msg = json_string_value(json_object_get(reply, "message"));
	if (r->status >= 500 || (msg != NULL && etcd_retriable(msg))) {
		snprintf(c->last, sizeof(c->last), "%s: %s", c->e->endpoints[c->idx],
		    msg ? msg : "HTTP error");
		if (msg == NULL)
			snprintf(c->last, sizeof(c->last), "%s: HTTP %ld",
			    c->e->endpoints[c->idx], r->status);
		json_decref(reply);
		etcd_next(c);
		return;
	}
	c->e->cur = c->idx;
	if (r->status != 200 || !json_is_object(reply) || msg != NULL) {
		snprintf(c->last, sizeof(c->last), "%s: %s", c->e->endpoints[c->idx],
		    msg ? msg : "not a JSON answer");
		if (msg == NULL && r->status != 200)
			snprintf(c->last, sizeof(c->last), "%s: HTTP %ld",
			    c->e->endpoints[c->idx], r->status);
		json_decref(reply);
		c->cb(ETCD_ERROR, NULL, c->last, c->arg);
		etcd_call_free(c);
		return;
	}
	c->cb(ETCD_OK, reply, NULL, c->arg);
	json_decref(reply);
	etcd_call_free(c);
}

static void
etcd_try(struct etcd_call *c)
{
	static const char *const headers[] = { "Content-Type: application/json", NULL };
	struct http_opts o;
	char *url = xasprintf("%s%s", c->e->endpoints[c->idx], c->api);

	c->tried++;
	memset(&o, 0, sizeof(o));
	o.method = "POST";
	o.url = url;
	o.headers = headers;
	o.body = c->body;
	o.body_len = strlen(c->body);
	o.timeout_ms = c->e->timeout_ms;
	o.connect_timeout_ms = c->e->timeout_ms;
	o.max_body = ETCD_MAX_BODY;
	c->req = http_start(&o, etcd_done, c);
	free(url);
	if (c->req == NULL) {
		snprintf(c->last, sizeof(c->last), "%s: cannot start a request",
		    c->e->endpoints[c->idx]);
		etcd_next(c);
	}
}

struct etcd_call *
etcd_post(struct etcd *e, const char *api, json_t *body, etcd_cb cb, void *arg)
{
	struct etcd_call *c = xcalloc(1, sizeof(*c));

	c->e = e;
	c->api = xstrdup(api);
	c->body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	c->cb = cb;
	c->arg = arg;
	c->idx = e->cur;
	c->next = e->calls;
	if (c->next != NULL)
		c->next->prevp = &c->next;
	c->prevp = &e->calls;
	e->calls = c;
	/*
	 * http_start never calls back from inside; a request that cannot even
	 * start fails over in here, so the last one may give up at once: the
	 * caller then gets its callback before this returns, and NULL.
	 */
	c->in_post = 1;
	etcd_try(c);
	c->in_post = 0;
	if (c->dead) {
		etcd_call_free(c);
		return NULL;
	}
	return c;
}

/* ---------------------------------------------------------------- base64 */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
etcd_b64_encode(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = xcalloc(4 * ((len + 2) / 3) + 1, 1), *q = out;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		*q++ = b64chars[p[i] >> 2];
		*q++ = b64chars[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*q++ = b64chars[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*q++ = b64chars[p[i + 2] & 63];
	}
	if (i < len) {
		*q++ = b64chars[p[i] >> 2];
		if (i + 1 < len) {
			*q++ = b64chars[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
			*q++ = b64chars[(p[i + 1] & 15) << 2];
		} else {
			*q++ = b64chars[(p[i] & 3) << 4];
			*q++ = '=';
		}
		*q++ = '=';
	}
	*q = '\0';
	return out;
}

char *
etcd_b64_decode(const char *s, size_t *lenp)
{
	size_t len = strlen(s), i, n = 0;
	char *out = xcalloc(len / 4 * 3 + 4, 1);
	unsigned int acc = 0;
	int bits = 0;
	const char *p;

	for (i = 0; i < len && s[i] != '='; i++) {
		if ((p = strchr(b64chars, s[i])) == NULL || s[i] == '\0') {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned int)(p - b64chars);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	if (lenp != NULL)
		*lenp = n;
	return out;
}

static json_t *
b64_json(const char *s)
{
	char *b = etcd_b64_encode(s, strlen(s));
	json_t *j = json_string(b);

	free(b);
	return j;
}

/* The first key after every key that starts with prefix. */
static json_t *
prefix_end(const char *prefix)
{
	char *end = xstrdup(prefix);
	size_t l = strlen(end);
	json_t *j;

	/* Prefixes here are text: the last byte is below 0xff. */
	if (l > 0)
		end[l - 1]++;
	j = b64_json(end);
	free(end);
	return j;
}

static json_t *
jint(int64_t v)
{
	return json_sprintf("%lld", (long long)v);
}

/* -------------------------------------------------------------- builders */

static json_t *
range_req(const char *key, int prefix, long limit, int descend)
{
	json_t *r = json_pack("{s:o}", "key", b64_json(key));

	if (prefix)
		json_object_set_new(r, "range_end", prefix_end(key));
	if (limit > 0)
		json_object_set_new(r, "limit", jint(limit));
	if (descend) {
		json_object_set_new(r, "sort_order", json_string("DESCEND"));
		json_object_set_new(r, "sort_target", json_string("KEY"));
	}
	return r;
}

static json_t *
put_req(const char *key, const char *value, int64_t lease)
{
	json_t *r = json_pack("{s:o, s:o}", "key", b64_json(key), "value", b64_json(value));

	if (lease != 0)
		json_object_set_new(r, "lease", jint(lease));
	return r;
}

json_t *
etcd_op_put(const char *key, const char *value, int64_t lease)
{
	return json_pack("{s:o}", "request_put", put_req(key, value, lease));
}

json_t *
etcd_op_range(const char *key, int prefix, long limit, int descend)
{
	return json_pack("{s:o}", "request_range", range_req(key, prefix, limit, descend));
}

json_t *
etcd_op_delete(const char *key)
{
	return json_pack("{s:{s:o}}", "request_delete_range", "key", b64_json(key));
}

json_t *
etcd_cmp_create(const char *key, int64_t rev)
{
	return json_pack("{s:o, s:s, s:s, s:o}", "key", b64_json(key), "target", "CREATE",
	    "result", "EQUAL", "create_revision", jint(rev));
}

json_t *
etcd_cmp_mod(const char *key, int64_t rev)
{
	return json_pack("{s:o, s:s, s:s, s:o}", "key", b64_json(key), "target", "MOD",
	    "result", "EQUAL", "mod_revision", jint(rev));
}

json_t *
etcd_cmp_value(const char *key, const char *value)
{
	return json_pack("{s:o, s:s, s:s, s:o}", "key", b64_json(key), "target", "VALUE",
	    "result", "EQUAL", "value", b64_json(value));
}

struct etcd_call *
etcd_range(struct etcd *e, const char *key, int prefix, etcd_cb cb, void *arg)
{
	return etcd_post(e, "/v3/kv/range", range_req(key, prefix, 0, 0), cb, arg);
}

struct etcd_call *
etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease, etcd_cb cb,
    void *arg)
{
	return etcd_post(e, "/v3/kv/put", put_req(key, value, lease), cb, arg);
}

struct etcd_call *
etcd_delete(struct etcd *e, const char *key, int prefix, etcd_cb cb, void *arg)
{
	json_t *r = json_pack("{s:o}", "key", b64_json(key));

	if (prefix)
		json_object_set_new(r, "range_end", prefix_end(key));
	return etcd_post(e, "/v3/kv/deleterange", r, cb, arg);
}

struct etcd_call *
etcd_txn(struct etcd *e, json_t *compare, json_t *success, json_t *failure, etcd_cb cb,
    void *arg)
{
	return etcd_post(e, "/v3/kv/txn", json_pack("{s:o, s:o, s:o}",
	    "compare", compare ? compare : json_array(),
	    "success", success ? success : json_array(),
	    "failure", failure ? failure : json_array()), cb, arg);
}

struct etcd_call *
etcd_lease_grant(struct etcd *e, int ttl, etcd_cb cb, void *arg)
{
	return etcd_post(e, "/v3/lease/grant", json_pack("{s:i}", "TTL", ttl), cb, arg);
}

struct etcd_call *
etcd_lease_keepalive(struct etcd *e, int64_t id, etcd_cb cb, void *arg)
{
	return etcd_post(e, "/v3/lease/keepalive", json_pack("{s:o}", "ID", jint(id)), cb,
	    arg);
}

struct etcd_call *
etcd_lease_revoke(struct etcd *e, int64_t id, etcd_cb cb, void *arg)
{
	return etcd_post(e, "/v3/lease/revoke", json_pack("{s:o}", "ID", jint(id)), cb, arg);
}

/* --------------------------------------------------------------- replies */

int64_t
etcd_int(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

char *
etcd_kv_key(json_t *kv)
{
	const char *k = json_string_value(json_object_get(kv, "key"));

	return k != NULL ? etcd_b64_decode(k, NULL) : NULL;
}

json_t *
etcd_kv_json(json_t *kv)
{
	const char *v = json_string_value(json_object_get(kv, "value"));
	char *raw;
	size_t len;
	json_t *j;

	if (v == NULL || (raw = etcd_b64_decode(v, &len)) == NULL)
		return NULL;
	j = json_loadb(raw, len, 0, NULL);
	free(raw);
	return j;
}

json_t *
etcd_txn_kvs(json_t *reply, size_t i)
{
	json_t *r = json_array_get(json_object_get(reply, "responses"), i);
	json_t *kvs = json_object_get(json_object_get(r, "response_range"), "kvs");

	return json_is_array(kvs) ? kvs : NULL;
}

int
etcd_txn_ok(json_t *reply)
{
	return json_is_true(json_object_get(reply, "succeeded"));
}

/* ----------------------------------------------------------------- watch */

static void
etcd_watch_free(struct etcd_watch *w)
{
	if (w->next != NULL)
		w->next->prevp = w->prevp;
	*w->prevp = w->next;
	free(w->buf);
	free(w);
}

int
etcd_watch_current(struct etcd_watch *w)
{
	return w->idx == w->e->cur;
}

void
etcd_watch_cancel(struct etcd_watch *w)
{
	if (w == NULL)
		return;
	http_cancel(w->req);
	etcd_watch_free(w);
}

/* Each message is one JSON object and a newline. */
static int
etcd_watch_data(const char *data, size_t len, void *arg)
{
	struct etcd_watch *w = arg;
	char *nl;
	size_t used;
	json_t *msg, *res, *err;

	if (w->failed)
		return -1;
	if (w->len + len + 1 > w->cap) {
		if (w->len + len + 1 > ETCD_WATCH_MAX) {
			snprintf(w->error, sizeof(w->error), "a watch message is larger "
			    "than %d bytes", ETCD_WATCH_MAX);
			w->failed = 1;
			return -1;
		}
		w->cap = (w->len + len + 1) * 2;
		w->buf = realloc(w->buf, w->cap);
		if (w->buf == NULL)
			fatalx("out of memory");
	}
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	w->buf[w->len] = '\0';
	while ((nl = memchr(w->buf, '\n', w->len)) != NULL) {
		used = (size_t)(nl - w->buf) + 1;
		msg = json_loadb(w->buf, used - 1, 0, NULL);
		memmove(w->buf, w->buf + used, w->len - used);
		w->len -= used;
		res = json_object_get(msg, "result");
		err = json_object_get(msg, "error");
		if (err != NULL || !json_is_object(res) ||
		    json_is_true(json_object_get(res, "canceled"))) {
			snprintf(w->error, sizeof(w->error), "watch ended: %s",
			    json_is_object(err) ? json_string_value(json_object_get(err,
			    "message")) ?: "error" : json_string_value(json_object_get(res,
			    "cancel_reason")) ?: "canceled or unreadable message");
			json_decref(msg);
			w->failed = 1;
			return -1;
		}
		w->on_event(res, w->arg);
		json_decref(msg);
	}
	return 0;
}

static void
etcd_watch_done(const struct http_result *r, void *arg)
{
	struct etcd_watch *w = arg;

	w->req = NULL;
	if (!w->failed)
		snprintf(w->error, sizeof(w->error), "watch on %s ended: %s",
		    w->e->endpoints[w->idx], r->error ? r->error : "stream closed");
	/* The next watch, and call, tries another member first. */
	if (r->error != NULL && w->e->cur == w->idx)
		w->e->cur = (w->e->cur + 1) % w->e->n;
	w->end(ETCD_UNAVAILABLE, NULL, w->error, w->arg);
	etcd_watch_free(w);
}

struct etcd_watch *
etcd_watch(struct etcd *e, const char *prefix, int64_t start_rev, etcd_event_cb on_event,
    etcd_cb end, void *arg)
{
	static const char *const headers[] = { "Content-Type: application/json", NULL };
	struct etcd_watch *w = xcalloc(1, sizeof(*w));
	struct http_opts o;
	json_t *req = json_pack("{s:o, s:o}", "key", b64_json(prefix), "range_end",
	    prefix_end(prefix));
	char *body, *url;

	if (start_rev > 0)
		json_object_set_new(req, "start_revision", jint(start_rev));
	req = json_pack("{s:o}", "create_request", req);
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	w->e = e;
	w->idx = e->cur;
	w->on_event = on_event;
	w->end = end;
	w->arg = arg;
	url = xasprintf("%s/v3/watch", e->endpoints[e->cur]);
	memset(&o, 0, sizeof(o));
	o.method = "POST";
	o.url = url;
	o.headers = headers;
	o.body = body;
	o.body_len = strlen(body);
	o.timeout_ms = -1;
	o.connect_timeout_ms = e->timeout_ms;
	o.on_data = etcd_watch_data;
	w->req = http_start(&o, etcd_watch_done, w);
	free(url);
	free(body);
	if (w->req == NULL) {
		free(w);
		return NULL;
	}
	w->next = e->watches;
	if (w->next != NULL)
		w->next->prevp = &w->next;
	w->prevp = &e->watches;
	e->watches = w;
	return w;
}
