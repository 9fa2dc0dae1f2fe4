/*
 * test-http.c — http.c against a real HTTP server: libevent's evhttp on
 * 127.0.0.1 in the same event base, so client and server share one loop
 * just as the daemon's smoke checks share it with the control socket.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http.h"
#include "unit.h"

static struct event_base	*base;
static struct evhttp		*server;
static int			 port;
static char			 url_ok[128], url_503[128], url_slow[128];
static char			 url_echo[128], url_big[128], url_refused[128];

/* What the server saw. */
static int	 slow_inflight, slow_max_inflight, slow_served;
static char	 seen_method[16], seen_host[256], seen_xtest[256];
static char	 seen_auth[1024], seen_body[1024];

/* What the client got. */
struct got {
	int		 calls;
	long		 status;
	char		 body[4096];
	size_t		 body_len;
	char		 error[256];
	int		 has_error;
	int		 timed_out;
	int		 truncated;
	double		 total_ms;
};
static int	 in_start;	/* set around http_start() */
static int	 cb_in_start;	/* a callback ran inside it */
static int	 done;		/* callbacks so far */

struct slow {
	struct evhttp_request	*req;
	struct event		*ev;
};

static void
slow_reply(evutil_socket_t fd, short what, void *arg)
{
	struct slow	*s = arg;
	struct evbuffer	*b = evbuffer_new();

	(void)fd;
	(void)what;
	evbuffer_add_printf(b, "slow");
	evhttp_send_reply(s->req, 200, "OK", b);
	evbuffer_free(b);
	event_free(s->ev);
	free(s);
	slow_inflight--;
	slow_served++;
}

static void
copy_header(struct evhttp_request *req, const char *name, char *dst,
    size_t len)
{
	const char *v;

	v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
	snprintf(dst, len, "%s", v != NULL ? v : "");
}

static void
serve(struct evhttp_request *req, void *arg)
{
	const char	*uri = evhttp_request_get_uri(req);
	struct evbuffer	*b = evbuffer_new(), *in;
	struct timeval	 tv = { 0, 300 * 1000 };
	struct slow	*s;
	size_t		 n;
	int		 i;

	(void)arg;
	if (strcmp(uri, "/ok") == 0) {
		evbuffer_add_printf(b, "hello world");
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/503") == 0) {
		evbuffer_add_printf(b, "down");
		evhttp_send_reply(req, 503, "Service Unavailable", b);
	} else if (strcmp(uri, "/slow") == 0) {
		/* Reply from a timer, so the loop (and the client) runs on. */
		s = calloc(1, sizeof(*s));
		s->req = req;
		s->ev = evtimer_new(base, slow_reply, s);
		evtimer_add(s->ev, &tv);
		if (++slow_inflight > slow_max_inflight)
			slow_max_inflight = slow_inflight;
	} else if (strcmp(uri, "/echo") == 0) {
		switch (evhttp_request_get_command(req)) {
		case EVHTTP_REQ_GET:
			snprintf(seen_method, sizeof(seen_method), "GET");
			break;
		case EVHTTP_REQ_POST:
			snprintf(seen_method, sizeof(seen_method), "POST");
			break;
		case EVHTTP_REQ_PUT:
			snprintf(seen_method, sizeof(seen_method), "PUT");
			break;
		case EVHTTP_REQ_HEAD:
			snprintf(seen_method, sizeof(seen_method), "HEAD");
			break;
		default:
			snprintf(seen_method, sizeof(seen_method), "?");
			break;
		}
		copy_header(req, "Host", seen_host, sizeof(seen_host));
		copy_header(req, "X-Test", seen_xtest, sizeof(seen_xtest));
		copy_header(req, "Authorization", seen_auth, sizeof(seen_auth));
		in = evhttp_request_get_input_buffer(req);
		n = evbuffer_get_length(in);
		if (n >= sizeof(seen_body))
			n = sizeof(seen_body) - 1;
		evbuffer_copyout(in, seen_body, n);
		seen_body[n] = '\0';
		evbuffer_add_printf(b, "echo");
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/big") == 0) {
		for (i = 0; i < 3000; i++)
			evbuffer_add(b, "x", 1);
		evhttp_send_reply(req, 200, "OK", b);
	} else
		evhttp_send_reply(req, 404, "Not Found", b);
	evbuffer_free(b);
}

static void
got_cb(const struct http_result *r, void *arg)
{
	struct got	*g = arg;
	size_t		 n;

	if (in_start)
		cb_in_start = 1;
	g->calls++;
	g->status = r->status;
	n = r->body_len < sizeof(g->body) - 1 ? r->body_len : sizeof(g->body) - 1;
	memcpy(g->body, r->body, n);
	g->body[n] = '\0';
	g->body_len = r->body_len;
	g->has_error = r->error != NULL;
	snprintf(g->error, sizeof(g->error), "%s", r->error ? r->error : "");
	g->timed_out = r->timed_out;
	g->truncated = r->body_truncated;
	g->total_ms = r->total_ms;
	done++;
}

static struct http_req *
start(const struct http_opts *o, struct got *g)
{
	struct http_req	*req;

	in_start = 1;
	req = http_start(o, got_cb, g);
	in_start = 0;
	return (req);
}

static int	 guard_fired;

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	guard_fired = 1;
}

/* Run the loop until *n reaches target; a guard keeps a bug from hanging. */
static void
run_until(const int *n, int target)
{
	struct timeval	 tv = { 10, 0 };
	struct event	*guard = evtimer_new(base, guard_cb, NULL);

	guard_fired = 0;
	evtimer_add(guard, &tv);
	while (*n < target && !guard_fired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	CHECK(!guard_fired);
}

static void
run_for_ms(long ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event	*ev;

	ev = evtimer_new(base, guard_cb, NULL);
	guard_fired = 0;
	evtimer_add(ev, &tv);
	while (!guard_fired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
}

/*
 * One request, run to its end: the callback is never called from inside
 * http_start(), and exactly once.
 */
static void
fetch(const struct http_opts *o, struct got *g)
{
	memset(g, 0, sizeof(*g));
	done = 0;
	CHECK(start(o, g) != NULL);
	CHECK_INT(g->calls, 0);
	run_until(&done, 1);
	CHECK_INT(g->calls, 1);
}

static void
test_ok(void)
{
	struct http_opts o = { .url = url_ok };
	struct got	 g;

	fetch(&o, &g);
	CHECK_INT(g.status, 200);
	CHECK_STR(g.body, "hello world");
	CHECK_INT(g.body_len, 11);
	CHECK(!g.has_error);
	CHECK_INT(g.timed_out, 0);
	CHECK_INT(g.truncated, 0);
	CHECK(g.total_ms > 0);
	CHECK(!cb_in_start);
}

static void
test_503(void)
{
	struct http_opts o = { .url = url_503 };
	struct got	 g;

	fetch(&o, &g);
	CHECK_INT(g.status, 503);
	CHECK_STR(g.body, "down");
	CHECK(!g.has_error);
}

static void
test_refused(void)
{
	struct http_opts o = { .url = url_refused };
	struct got	 g;

	fetch(&o, &g);
	CHECK_INT(g.status, 0);
	CHECK(g.has_error);
	CHECK(strstr(g.error, "Connection refused") != NULL);
	CHECK_INT(g.timed_out, 0);
	printf("# refused: %s\n", g.error);
}

/* An unparsable URL fails from the loop too, not inside http_start(). */
static void
test_bad_url(void)
{
	struct http_opts o = { .url = "http://[::1" };
	struct got	 g;

	fetch(&o, &g);
	CHECK(g.has_error);
	CHECK(!cb_in_start);
	printf("# bad url: %s\n", g.error);
}

static void
test_timeout(void)
{
	struct http_opts o = { .url = url_slow, .timeout_ms = 100 };
	struct got	 g;

	memset(&g, 0, sizeof(g));
	done = 0;
	slow_served = 0;
	CHECK(start(&o, &g) != NULL);
	run_until(&done, 1);
	CHECK_INT(g.timed_out, 1);
	CHECK(g.has_error);
	CHECK(strstr(g.error, "timed out") != NULL);
	printf("# timeout: %s\n", g.error);
	/* Let the server finish its reply before the next test counts. */
	run_until(&slow_served, 1);
	CHECK_INT(slow_inflight, 0);
}

static void
test_concurrent(void)
{
	struct http_opts o = { .url = url_slow };
	struct got	*g;
	int		 i, ok = 0;

	g = calloc(50, sizeof(*g));
	done = 0;
	slow_max_inflight = 0;
	for (i = 0; i < 50; i++)
		CHECK(start(&o, &g[i]) != NULL);
	run_until(&done, 50);
	for (i = 0; i < 50; i++)
		if (g[i].calls == 1 && g[i].status == 200 && !g[i].has_error &&
		    strcmp(g[i].body, "slow") == 0)
			ok++;
	CHECK_INT(ok, 50);
	CHECK(slow_max_inflight > 1);
	printf("# 50 requests, at most %d in flight at the server\n",
	    slow_max_inflight);
	free(g);
}

static void
test_max_connections(void)
{
	struct http_opts o = { .url = url_slow };
	struct got	 g[6];
	int		 i;

	/*
	 * The cap bounds open connections, and idle ones left by earlier
	 * tests would be reused past it: start from an empty cache.
	 */
	memset(g, 0, sizeof(g));
	http_shutdown();
	http_set_max_connections(2);
	CHECK_INT(http_init(base), 0);
	done = 0;
	slow_max_inflight = 0;
	for (i = 0; i < 6; i++)
		CHECK(start(&o, &g[i]) != NULL);
	run_until(&done, 6);
	for (i = 0; i < 6; i++)
		CHECK_INT(g[i].status, 200);
	CHECK(slow_max_inflight <= 2);
	CHECK(slow_max_inflight >= 1);
	http_shutdown();
	http_set_max_connections(0);
	CHECK_INT(http_init(base), 0);
}

static void
test_host_headers(void)
{
	const char *const hdrs[] = { "X-Test: yes", NULL };
	struct http_opts o = { .url = url_echo, .host = "cold.example.test",
	    .headers = hdrs };
	struct got	 g;

	fetch(&o, &g);
	CHECK_INT(g.status, 200);
	CHECK_STR(seen_method, "GET");
	CHECK_STR(seen_host, "cold.example.test");
	CHECK_STR(seen_xtest, "yes");
}

static void
test_resolve(void)
{
	char		 url[128], res[128];
	struct http_opts o = { .url = url, .resolve = res };
	struct got	 g;

	snprintf(url, sizeof(url), "http://cold.example.test:%d/echo", port);
	snprintf(res, sizeof(res), "cold.example.test:%d:127.0.0.1", port);
	fetch(&o, &g);
	CHECK_INT(g.status, 200);
	CHECK(!g.has_error);
	CHECK(strncmp(seen_host, "cold.example.test", 17) == 0);
}

static void
test_post_put(void)
{
	struct http_opts o = { .method = "POST", .url = url_echo,
	    .body = "a=1&b=2", .body_len = 7 };
	struct got	 g;

	fetch(&o, &g);
	CHECK_INT(g.status, 200);
	CHECK_STR(seen_method, "POST");
	CHECK_STR(seen_body, "a=1&b=2");

	o.method = "PUT";
	o.body = "put body";
	o.body_len = 8;
	done = 0;
	CHECK(start(&o, &g) != NULL);
	run_until(&done, 1);
	CHECK_INT(g.status, 200);
	CHECK_STR(seen_method, "PUT");
	CHECK_STR(seen_body, "put body");

	o.method = "HEAD";
	o.body = NULL;
	o.body_len = 0;
	done = 0;
	CHECK(start(&o, &g) != NULL);
	run_until(&done, 1);
	CHECK_INT(g.status, 200);
	CHECK_STR(seen_method, "HEAD");
	CHECK_INT(g.body_len, 0);
}

/* Caller-owned strings may go away as soon as http_start() returns. */
static void
test_copies(void)
{
	struct http_opts o;
	char		*url, *host, *body, *hdr;
	const char	*hdrs[2];
	struct got	 g;

	url = strdup(url_echo);
	host = strdup("copied.example.test");
	body = strdup("copied body");
	hdr = strdup("X-Test: copied");
	hdrs[0] = hdr;
	hdrs[1] = NULL;
	memset(&o, 0, sizeof(o));
	o.method = "POST";
	o.url = url;
	o.host = host;
	o.body = body;
	o.body_len = strlen(body);
	o.headers = hdrs;
	memset(&g, 0, sizeof(g));
	done = 0;
	CHECK(start(&o, &g) != NULL);
	memset(url, 'Z', strlen(url));
	memset(body, 'Z', strlen(body));
	free(url);
	free(host);
	free(body);
	free(hdr);
	run_until(&done, 1);
	CHECK_INT(g.status, 200);
	CHECK_STR(seen_host, "copied.example.test");
	CHECK_STR(seen_body, "copied body");
	CHECK_STR(seen_xtest, "copied");
}

static void
test_sigv4(void)
{
	struct http_opts o = { .method = "POST", .url = url_echo,
	    .body = "Action=DescribeInstances&Version=2016-11-15",
	    .aws_sigv4 = "aws:amz:us-east-1:ec2", .userpwd = "AK:SK" };
	struct got	 g;

	o.body_len = strlen(o.body);
	memset(&g, 0, sizeof(g));
	done = 0;
	seen_auth[0] = '\0';
	CHECK(start(&o, &g) != NULL);
	run_until(&done, 1);
	CHECK_INT(g.status, 200);
	CHECK(strncmp(seen_auth, "AWS4-HMAC-SHA256 Credential=AK/", 31) == 0);
	CHECK(strstr(seen_auth, "/us-east-1/ec2/aws4_request") != NULL);
	CHECK_STR(seen_body, "Action=DescribeInstances&Version=2016-11-15");
}

static void
test_truncate(void)
{
	struct http_opts o = { .url = url_big, .max_body = 1000 };
	struct got	 g;

	fetch(&o, &g);
	CHECK_INT(g.status, 200);
	CHECK(!g.has_error);
	CHECK_INT(g.body_len, 1000);
	CHECK_INT(g.truncated, 1);
	CHECK_INT(strlen(g.body), 1000);
}

static void
test_cancel(void)
{
	struct http_opts o = { .url = url_slow };
	struct http_req	*a, *b;
	struct got	 ga, gb, gc;

	memset(&ga, 0, sizeof(ga));
	memset(&gb, 0, sizeof(gb));
	memset(&gc, 0, sizeof(gc));
	done = 0;
	slow_served = 0;
	/* One cancelled before the loop ever ran, one once it is at the server. */
	a = start(&o, &ga);
	b = start(&o, &gb);
	CHECK(a != NULL && b != NULL);
	http_cancel(a);
	run_until(&slow_inflight, 1);
	http_cancel(b);
	/* A third, not cancelled, to prove the loop went on past them. */
	CHECK(start(&o, &gc) != NULL);
	run_until(&done, 1);
	run_until(&slow_served, 2);
	run_for_ms(100);
	CHECK_INT(ga.calls, 0);
	CHECK_INT(gb.calls, 0);
	CHECK_INT(gc.calls, 1);
	CHECK_INT(gc.status, 200);
	CHECK_INT(done, 1);
}

/* From a callback: start the next transfer, cancel one's own (a no-op). */
static struct got	 chain_second;
static struct http_req	*chain_first;

static void
chain_cb(const struct http_result *r, void *arg)
{
	struct http_opts o = { .url = url_ok };

	(void)arg;
	CHECK_INT(r->status, 200);
	http_cancel(chain_first);
	CHECK(http_start(&o, got_cb, &chain_second) != NULL);
	done++;
}

static void
test_chain(void)
{
	struct http_opts o = { .url = url_ok };

	memset(&chain_second, 0, sizeof(chain_second));
	done = 0;
	CHECK((chain_first = http_start(&o, chain_cb, NULL)) != NULL);
	run_until(&done, 2);
	CHECK_INT(chain_second.calls, 1);
	CHECK_INT(chain_second.status, 200);
}

/* Shutdown with transfers in flight: no callbacks, nothing leaked. */
static void
test_shutdown(void)
{
	struct http_opts o = { .url = url_slow };
	struct got	 g[3];
	int		 i;

	memset(g, 0, sizeof(g));
	done = 0;
	slow_served = 0;
	for (i = 0; i < 3; i++)
		CHECK(start(&o, &g[i]) != NULL);
	run_until(&slow_inflight, 3);
	http_shutdown();
	run_until(&slow_served, 3);
	run_for_ms(50);
	CHECK_INT(done, 0);
	CHECK(start(&o, &g[0]) == NULL);
	/* And it comes back. */
	CHECK_INT(http_init(base), 0);
	o.url = url_ok;
	CHECK(start(&o, &g[0]) != NULL);
	run_until(&done, 1);
	CHECK_INT(g[0].status, 200);
}

static int
closed_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd, p;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		perror("bind");
		exit(1);
	}
	p = ntohs(sin.sin_port);
	close(fd);
	return (p);
}

int
main(void)
{
	struct evhttp_bound_socket	*bound;
	struct sockaddr_in		 sin;
	socklen_t			 len = sizeof(sin);

	base = event_base_new();
	server = evhttp_new(base);
	evhttp_set_gencb(server, serve, NULL);
	evhttp_set_allowed_methods(server, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_HEAD);
	if ((bound = evhttp_bind_socket_with_handle(server, "127.0.0.1",
	    0)) == NULL ||
	    getsockname(evhttp_bound_socket_get_fd(bound),
	    (struct sockaddr *)&sin, &len) == -1) {
		perror("evhttp_bind");
		return (1);
	}
	port = ntohs(sin.sin_port);
	snprintf(url_ok, sizeof(url_ok), "http://127.0.0.1:%d/ok", port);
	snprintf(url_503, sizeof(url_503), "http://127.0.0.1:%d/503", port);
	snprintf(url_slow, sizeof(url_slow), "http://127.0.0.1:%d/slow", port);
	snprintf(url_echo, sizeof(url_echo), "http://127.0.0.1:%d/echo", port);
	snprintf(url_big, sizeof(url_big), "http://127.0.0.1:%d/big", port);
	snprintf(url_refused, sizeof(url_refused), "http://127.0.0.1:%d/",
	    closed_port());

	if (http_init(base) != 0) {
		fprintf(stderr, "http_init failed\n");
		return (1);
	}
	RUN(test_ok);
	RUN(test_503);
	RUN(test_refused);
	RUN(test_bad_url);
	RUN(test_timeout);
	RUN(test_concurrent);
	RUN(test_max_connections);
	RUN(test_host_headers);
	RUN(test_resolve);
	RUN(test_post_put);
	RUN(test_copies);
	RUN(test_sigv4);
	RUN(test_truncate);
	RUN(test_cancel);
	RUN(test_chain);
	RUN(test_shutdown);

	http_shutdown();
	evhttp_free(server);
	event_base_free(base);
	return (unit_summary());
}
