/*
 * httpd.c — the read-only HTTP server (http.listen): Prometheus metrics,
 * the JSON of status and history, and the status page.
 *
 * Nothing changes state over HTTP: mutations stay on the control socket,
 * where the peer's uid is known.  Only GET and HEAD are answered (others
 * get 405).  A client is bounded in what it may send (headers, body) and
 * in how long it may go without a response, trickling or not; everything runs on the event loop and no
 * handler waits, so a slow or hostile client never delays the control
 * socket or a switch.  Answers come from the snapshot of metrics.c, so
 * scrapes never multiply the questions asked of HAProxy.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define HTTPD_MAX_HEADERS	8192	/* bytes of request line and headers */
#define HTTPD_MAX_BODY		1024	/* a GET has none */
#define HTTPD_TIMEOUT	10	/* seconds a client may stay silent */
#define HTTPD_DEADLINE_MS 10000	/* ... or go without a response, however it trickles */

/*
 * Every connection, for the deadline: evhttp's own timeout is reset by each
 * byte, so a client sending one byte a second would hold its connection
 * for hours.  We create each connection's bufferevent (evhttp_set_bevcb)
 * and keep a reference to it; evhttp_connection_free clears its callbacks,
 * which is how the sweep learns that evhttp is done with it.
 */
struct conn {
	struct bufferevent *bev;
	double		 since;		/* accepted, or its last response */
	TAILQ_ENTRY(conn) entry;
};

static struct {
	struct evhttp	*http;
	struct evhttp_bound_socket *bound;
	char		*listen;
	struct event	*resume;	/* accepting again after EMFILE */
	struct event	*sweep;		/* every second while there are connections */
	TAILQ_HEAD(, conn) conns;
	size_t		 nconns;
} H;

static void
conn_forget(struct conn *c)
{
	TAILQ_REMOVE(&H.conns, c, entry);
	H.nconns--;
	bufferevent_decref(c->bev);
	free(c);
}

/* Close connections past their deadline; forget those evhttp has freed. */
static void
sweep(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c, *next;
	bufferevent_data_cb rcb, wcb;
	bufferevent_event_cb ecb;
	double now = now_ms();

	(void)fd;
	(void)what;
	(void)arg;
	for (c = TAILQ_FIRST(&H.conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		bufferevent_getcb(c->bev, &rcb, &wcb, &ecb, NULL);
		if (rcb == NULL && wcb == NULL && ecb == NULL)
			conn_forget(c);
		else if (now - c->since > HTTPD_DEADLINE_MS && bufferevent_getfd(c->bev) != -1) {
			/* evhttp sees the end of the stream and frees it. */
			log_debug("http: closing a connection without a response for %d s",
			    HTTPD_DEADLINE_MS / 1000);
			shutdown(bufferevent_getfd(c->bev), SHUT_RDWR);
			c->since = now;
		}
	}
	if (H.nconns == 0)
		event_del(H.sweep);
}

static struct bufferevent *
conn_new(struct event_base *base, void *arg)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	struct timeval tv = { 1, 0 };

	(void)arg;
	if ((c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("out of memory");
	bufferevent_incref(c->bev);
	c->since = now_ms();
	TAILQ_INSERT_TAIL(&H.conns, c, entry);
	if (H.nconns++ == 0)
		event_add(H.sweep, &tv);
	return c->bev;
}

/* A response went out: the connection's deadline starts again. */
static void
conn_answered(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	struct conn *c;

	TAILQ_FOREACH(c, &H.conns, entry)
		if (c->bev == bev) {
			c->since = now_ms();
			break;
		}
}

static int
is_loopback(const char *host)
{
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
	    strcmp(host, "localhost") == 0;
}

/* ---------------------------------------------------------------- replies */

static void
reply(struct evhttp_request *req, int code, const char *reason, const char *type,
    struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	conn_answered(req);
	evhttp_send_reply(req, code, reason, body);
}

static void
reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add_printf(b, "%s\n", text);
	reply(req, code, reason, "text/plain; charset=utf-8", b);
	evbuffer_free(b);
}

/* The same bytes as switchctl --json prints. */
static void
reply_json(struct evhttp_request *req, json_t *j)
{
	struct evbuffer *b = evbuffer_new();
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (text == NULL) {
		evbuffer_free(b);
		reply_text(req, 500, "Internal Server Error", "cannot encode JSON");
		return;
	}
	evbuffer_add_printf(b, "%s\n", text);
	free(text);
	reply(req, 200, "OK", "application/json", b);
	evbuffer_free(b);
}

/* ---------------------------------------------------------------- routes */

static void
send_metrics(const struct snapshot *s, void *arg)
{
	struct evhttp_request *req = arg;
	struct evbuffer *b = evbuffer_new();

	metrics_render(s, b);
	reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
	evbuffer_free(b);
}

static void
send_status(const struct snapshot *s, void *arg)
{
	reply_json(arg, s->status);
}

static void
send_counters(const struct snapshot *s, void *arg)
{
	json_t *j = metrics_counters_json(s);

	reply_json(arg, j);
	json_decref(j);
}

static void
send_history(struct daemon *d, struct evhttp_request *req, const char *query)
{
	struct evkeyvalq q;
	const char *nstr;
	long long n = 20;
	char *end;
	json_t *j;

	TAILQ_INIT(&q);
	if (query != NULL && evhttp_parse_query_str(query, &q) == -1) {
		reply_text(req, 400, "Bad Request", "bad query string");
		return;
	}
	if ((nstr = evhttp_find_header(&q, "n")) != NULL) {
		errno = 0;
		n = strtoll(nstr, &end, 10);
		if (errno != 0 || *end != '\0' || end == nstr)
			n = -1;
	}
	evhttp_clear_headers(&q);
	if ((j = history_json(d, n)) == NULL) {
		reply_text(req, 400, "Bad Request", "n must be 1..100000");
		return;
	}
	reply_json(req, j);
	json_decref(j);
}

static void
route(struct evhttp_request *req, void *arg)
{
	struct daemon *d = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer *b;

	if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		reply_text(req, 405, "Method Not Allowed",
		    "switchd's HTTP server is read-only: use switchctl to change anything");
		return;
	}
	if (path == NULL || *path == '\0')
		path = "/";
	if (strcmp(path, "/") == 0) {
		b = evbuffer_new();
		evbuffer_add_reference(b, page_html, strlen(page_html), NULL, NULL);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Security-Policy",
		    "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
		    "img-src 'self' data:");
		reply(req, 200, "OK", "text/html; charset=utf-8", b);
		evbuffer_free(b);
	} else if (strcmp(path, "/metrics") == 0)
		metrics_snapshot(d, send_metrics, req);
	else if (strcmp(path, "/api/status") == 0)
		metrics_snapshot(d, send_status, req);
	else if (strcmp(path, "/api/counters") == 0)
		metrics_snapshot(d, send_counters, req);
	else if (strcmp(path, "/api/history") == 0)
		send_history(d, req, evhttp_uri_get_query(uri));
	else
		reply_text(req, 404, "Not Found", "not found: try /, /metrics, /api/status, "
		    "/api/history?n=20");
}

/* ------------------------------------------------------------ listening */

static void
resume_accept(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (H.bound != NULL)
		evconnlistener_enable(evhttp_bound_socket_get_listener(H.bound));
}

/* Out of descriptors: stop accepting for a second rather than spin. */
static void
accept_error(struct evconnlistener *l, void *arg)
{
	struct timeval tv = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	(void)arg;
	log_warnx("http: accept: %s; pausing new HTTP connections for a second",
	    evutil_socket_error_to_string(err));
	evconnlistener_disable(l);
	evtimer_add(H.resume, &tv);
}

static struct evhttp_bound_socket *
bind_listen(const char *listen)
{
	struct evhttp_bound_socket *bound;
	char host[256];
	int port;

	if (listen_addr_parse(listen, host, sizeof(host), &port) == -1) {
		log_warnx("http.listen %s: not ADDRESS:PORT", listen);
		return NULL;
	}
	if ((bound = evhttp_bind_socket_with_handle(H.http, host, (ev_uint16_t)port)) == NULL) {
		log_warn("http: cannot listen on %s", listen);
		return NULL;
	}
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), accept_error);
	if (!is_loopback(host))
		log_warnx("http: listening on %s, which is not a loopback address: anyone who "
		    "reaches it sees the status, versions and metrics", listen);
	else
		log_info("http: listening on %s", listen);
	return bound;
}

int
httpd_configure(struct daemon *d, const struct config *conf)
{
	struct event_base *base = d->base;
	struct evhttp_bound_socket *bound;

	if (conf->http_listen == NULL) {
		if (H.http != NULL)
			log_info("http: no http.listen any more; stopped listening on %s", H.listen);
		httpd_stop();
		return 0;
	}
	if (H.listen != NULL && strcmp(H.listen, conf->http_listen) == 0)
		return 0;
	if (H.http == NULL) {
		if ((H.http = evhttp_new(base)) == NULL)
			fatalx("evhttp_new failed");
		H.resume = evtimer_new(base, resume_accept, NULL);
		H.sweep = event_new(base, -1, EV_PERSIST, sweep, NULL);
		TAILQ_INIT(&H.conns);
		evhttp_set_bevcb(H.http, conn_new, NULL);
		evhttp_set_max_headers_size(H.http, HTTPD_MAX_HEADERS);
		evhttp_set_max_body_size(H.http, HTTPD_MAX_BODY);
		evhttp_set_timeout(H.http, HTTPD_TIMEOUT);
		/* Every method reaches route(), which answers 405 (evhttp would say 501). */
		evhttp_set_allowed_methods(H.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
		    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
		    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
		evhttp_set_gencb(H.http, route, d);
	}
	/*
	 * The same evhttp keeps its connections; only the listening socket
	 * changes, and only once the new one is bound.
	 */
	if ((bound = bind_listen(conf->http_listen)) == NULL) {
		if (H.bound != NULL) {
			log_warnx("http: still listening on %s", H.listen);
			return -1;
		}
		httpd_stop();
		return -1;
	}
	if (H.bound != NULL)
		evhttp_del_accept_socket(H.http, H.bound);
	H.bound = bound;
	free(H.listen);
	H.listen = xstrdup(conf->http_listen);
	return 0;
}

void
httpd_stop(void)
{
	/* Requests waiting for a snapshot are freed with their connections. */
	metrics_drop_waiters();
	if (H.http != NULL)
		evhttp_free(H.http);
	while (H.http != NULL && !TAILQ_EMPTY(&H.conns))
		conn_forget(TAILQ_FIRST(&H.conns));
	if (H.resume != NULL)
		event_free(H.resume);
	if (H.sweep != NULL)
		event_free(H.sweep);
	free(H.listen);
	memset(&H, 0, sizeof(H));
}
