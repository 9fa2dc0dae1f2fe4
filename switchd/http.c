/*
 * http.c — the asynchronous HTTP client: libcurl's multi_socket_action
 * interface on the daemon's event base.  curl tells us which sockets to
 * watch (http_sock_cb: one event per socket) and when to wake it
 * (http_timer_cb: one evtimer); we hand readiness back to curl and collect
 * finished transfers in http_check_multi_info().  No threads of ours, no
 * blocking, no polling.
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "http.h"
#include "log.h"
#include "util.h"	/* url_redact */

#define HTTP_DEFAULT_TIMEOUT_MS	30000L
#define HTTP_DEFAULT_MAX_BODY	(1024 * 1024)

struct http_req {
	CURL			*easy;
	struct curl_slist	*headers;
	struct curl_slist	*resolve;
	struct curl_slist	*connect_to;
	http_cb			 cb;
	http_data_cb		 on_data;
	struct event		*data_ev;	/* hands the streamed bytes over */
	void			*arg;
	int			 completing;	/* its callback is running */

	char			*body;
	size_t			 body_len;
	size_t			 body_cap;
	size_t			 max_body;
	int			 truncated;

	char			 errbuf[CURL_ERROR_SIZE];
	TAILQ_ENTRY(http_req)	 entry;
};

/* One per socket curl asks us to watch; curl keeps the pointer for us. */
struct http_sock {
	struct event		*ev;
	curl_socket_t		 fd;
	TAILQ_ENTRY(http_sock)	 entry;
};

static struct event_base	*http_base;
static CURLM			*http_multi;
static struct event		*http_timer;
static long			 http_max_conns;
static TAILQ_HEAD(, http_req)	 http_reqs = TAILQ_HEAD_INITIALIZER(http_reqs);
static TAILQ_HEAD(, http_sock)	 http_socks = TAILQ_HEAD_INITIALIZER(http_socks);

static int	 http_sock_cb(CURL *, curl_socket_t, int, void *, void *);
static int	 http_timer_cb(CURLM *, long, void *);
static void	 http_event_cb(evutil_socket_t, short, void *);
static void	 http_timeout_cb(evutil_socket_t, short, void *);
static void	 http_check_multi_info(void);
static void	 http_done(struct http_req *, CURLcode);
static size_t	 http_write_cb(char *, size_t, size_t, void *);
static void	 http_req_free(struct http_req *);
static void	 http_data_fire(evutil_socket_t, short, void *);
static void	 http_sock_free(struct http_sock *);

int
http_init(struct event_base *base)
{
	CURLcode	 rc;

	if (http_multi != NULL)
		return base == http_base ? 0 : -1;

	if ((rc = curl_global_init(CURL_GLOBAL_DEFAULT)) != CURLE_OK) {
		log_warnx("%s: curl_global_init: %s", __func__,
		    curl_easy_strerror(rc));
		return -1;
	}
	if ((http_multi = curl_multi_init()) == NULL) {
		log_warnx("%s: curl_multi_init failed", __func__);
		curl_global_cleanup();
		return -1;
	}
	if ((http_timer = evtimer_new(base, http_timeout_cb, NULL)) == NULL) {
		log_warnx("%s: evtimer_new failed", __func__);
		curl_multi_cleanup(http_multi);
		http_multi = NULL;
		curl_global_cleanup();
		return -1;
	}
	http_base = base;
	curl_multi_setopt(http_multi, CURLMOPT_SOCKETFUNCTION, http_sock_cb);
	curl_multi_setopt(http_multi, CURLMOPT_TIMERFUNCTION, http_timer_cb);
	if (http_max_conns > 0)
		curl_multi_setopt(http_multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
		    http_max_conns);
	return 0;
}

void
http_shutdown(void)
{
	struct http_req		*req;
	struct http_sock	*s;

	if (http_multi == NULL)
		return;
	while ((req = TAILQ_FIRST(&http_reqs)) != NULL) {
		curl_multi_remove_handle(http_multi, req->easy);
		TAILQ_REMOVE(&http_reqs, req, entry);
		http_req_free(req);
	}
	/* Closing cached connections may still call http_sock_cb. */
	curl_multi_cleanup(http_multi);
	http_multi = NULL;
	while ((s = TAILQ_FIRST(&http_socks)) != NULL)
		http_sock_free(s);
	event_free(http_timer);
	http_timer = NULL;
	http_base = NULL;
	curl_global_cleanup();
}

void
http_set_max_connections(long total)
{
	http_max_conns = total;
	if (http_multi != NULL)
		curl_multi_setopt(http_multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
		    total);
}

/* curl copies every string option; only the body needs COPYPOSTFIELDS. */
static int
http_setup(struct http_req *req, const struct http_opts *o)
{
	CURL		*e = req->easy;
	const char	*method = o->method != NULL ? o->method : "GET";
	const char	*body = o->body != NULL ? o->body : "";
	struct curl_slist *l;
	char		*host;
	size_t		 i;
	int		 rc = 0;

#define SET(opt, val) do {						\
	if (curl_easy_setopt(e, opt, val) != CURLE_OK) {		\
		char *shown = url_redact(o->url);			\
		log_warnx("http: %s: cannot set %s", shown, #opt);	\
		free(shown);						\
		rc = -1;						\
	}								\
} while (0)
	SET(CURLOPT_URL, o->url);
	SET(CURLOPT_PRIVATE, req);
	SET(CURLOPT_ERRORBUFFER, req->errbuf);
	SET(CURLOPT_WRITEFUNCTION, http_write_cb);
	SET(CURLOPT_WRITEDATA, req);
	/* Signals belong to the daemon's event loop, not to curl's resolver. */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_USERAGENT, "switchd");
#if LIBCURL_VERSION_NUM >= 0x075500
	/* A config typo must not turn into file:// or scp://. */
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
#endif
#if LIBCURL_VERSION_NUM >= 0x075700
	/*
	 * Else cancelling, or timing out, a transfer still resolving its
	 * host joins curl's resolver thread and blocks the loop until
	 * getaddrinfo() gives up.
	 */
	SET(CURLOPT_QUICK_EXIT, 1L);
#endif
	SET(CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms :
	    o->timeout_ms < 0 ? 0L : HTTP_DEFAULT_TIMEOUT_MS);
	if (o->connect_timeout_ms > 0)
		SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	if (o->cainfo != NULL)
		SET(CURLOPT_CAINFO, o->cainfo);
	if (o->insecure) {
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (o->aws_sigv4 != NULL)
		SET(CURLOPT_AWS_SIGV4, o->aws_sigv4);
	if (o->userpwd != NULL)
		SET(CURLOPT_USERPWD, o->userpwd);

	if (strcmp(method, "GET") == 0)
		SET(CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "HEAD") == 0)
		SET(CURLOPT_NOBODY, 1L);
	else {
		if (strcmp(method, "POST") == 0)
			SET(CURLOPT_POST, 1L);
		else
			SET(CURLOPT_CUSTOMREQUEST, method);
		if (o->body != NULL || strcmp(method, "POST") == 0 ||
		    strcmp(method, "PUT") == 0) {
			/* The size first: COPYPOSTFIELDS copies that many bytes. */
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
			SET(CURLOPT_COPYPOSTFIELDS, body);
		}
	}
#undef SET

	/*
	 * A 100-continue round trip only adds latency to small API calls.
	 * Not with SigV4: curl < 8.3 signs the "Expect:" removal as a header
	 * it never sends (curl issue #11664), and AWS refuses the signature.
	 */
	if (o->aws_sigv4 == NULL) {
		if ((l = curl_slist_append(req->headers, "Expect:")) == NULL)
			return -1;
		req->headers = l;
	}
	if (o->host != NULL) {
		if (asprintf(&host, "Host: %s", o->host) == -1)
			return -1;
		l = curl_slist_append(req->headers, host);
		free(host);
		if (l == NULL)
			return -1;
		req->headers = l;
	}
	for (i = 0; o->headers != NULL && o->headers[i] != NULL; i++) {
		if ((l = curl_slist_append(req->headers, o->headers[i])) == NULL)
			return -1;
		req->headers = l;
	}
	if (curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers) != CURLE_OK)
		rc = -1;
	if (o->resolve != NULL) {
		if ((req->resolve = curl_slist_append(NULL, o->resolve)) == NULL)
			return -1;
		if (curl_easy_setopt(e, CURLOPT_RESOLVE, req->resolve) !=
		    CURLE_OK)
			rc = -1;
	}
	if (o->connect_to != NULL) {
		if ((req->connect_to = curl_slist_append(NULL, o->connect_to)) == NULL)
			return -1;
		if (curl_easy_setopt(e, CURLOPT_CONNECT_TO, req->connect_to) !=
		    CURLE_OK)
			rc = -1;
	}
	return rc;
}

struct http_req *
http_start(const struct http_opts *o, http_cb cb, void *arg)
{
	struct http_req	*req;
	CURLMcode	 mrc;

	if (http_multi == NULL || o == NULL || o->url == NULL || cb == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if ((req = calloc(1, sizeof(*req))) == NULL)
		return NULL;
	req->cb = cb;
	req->on_data = o->on_data;
	req->arg = arg;
	req->max_body = o->max_body > 0 ? o->max_body : HTTP_DEFAULT_MAX_BODY;
	if ((req->easy = curl_easy_init()) == NULL) {
		free(req);
		errno = ENOMEM;
		return NULL;
	}
	if (req->on_data != NULL &&
	    (req->data_ev = event_new(http_base, -1, 0, http_data_fire, req)) == NULL) {
		http_req_free(req);
		errno = ENOMEM;
		return (NULL);
	}
	if (http_setup(req, o) == -1) {
		http_req_free(req);
		errno = EINVAL;
		return NULL;
	}
	/*
	 * Adding only arms the timer (http_timer_cb); the transfer starts,
	 * and can fail, from the event loop, so cb never runs in here.
	 */
	if ((mrc = curl_multi_add_handle(http_multi, req->easy)) != CURLM_OK) {
		char *shown = url_redact(o->url);

		log_warnx("http: %s: %s", shown, curl_multi_strerror(mrc));
		free(shown);
		http_req_free(req);
		errno = EIO;
		return NULL;
	}
	TAILQ_INSERT_TAIL(&http_reqs, req, entry);
	return req;
}

void
http_cancel(struct http_req *req)
{
	/* From inside its own callback: it is freed when that returns. */
	if (req == NULL || req->completing)
		return;
	if (http_multi != NULL)
		curl_multi_remove_handle(http_multi, req->easy);
	TAILQ_REMOVE(&http_reqs, req, entry);
	http_req_free(req);
}

static void
http_req_free(struct http_req *req)
{
	curl_easy_cleanup(req->easy);
	if (req->data_ev != NULL)
		event_free(req->data_ev);
	curl_slist_free_all(req->headers);
	curl_slist_free_all(req->resolve);
	curl_slist_free_all(req->connect_to);
	free(req->body);
	free(req);
}

/* Keep at most max_body bytes but read on, so the connection stays usable. */
static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_req	*req = arg;
	size_t		 n = size * nmemb, keep, cap;
	char		*p;

	/*
	 * A stream: kept until the loop hands it over (http_data_fire), for
	 * curl may not be called from here and on_data may start transfers.
	 * Beyond max_body not yet handed over, the transfer fails.
	 */
	if (req->on_data != NULL) {
		if (req->truncated || req->body_len + n > req->max_body)
			return (0);
		event_active(req->data_ev, EV_TIMEOUT, 0);
	}
	keep = req->max_body - req->body_len;
	if (keep < n)
		req->truncated = 1;
	else
		keep = n;
	if (keep == 0)
		return n;
	if (req->body_len + keep + 1 > req->body_cap) {
		cap = req->body_cap > 0 ? req->body_cap : 4096;
		while (cap < req->body_len + keep + 1)
			cap *= 2;
		if (cap > req->max_body + 1)
			cap = req->max_body + 1;
		if ((p = realloc(req->body, cap)) == NULL)
			return 0;	/* CURLE_WRITE_ERROR */
		req->body = p;
		req->body_cap = cap;
	}
	memcpy(req->body + req->body_len, data, keep);
	req->body_len += keep;
	req->body[req->body_len] = '\0';
	return n;
}

static int
http_sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *sockp)
{
	struct http_sock	*s = sockp;
	short			 kind;

	(void)easy;
	(void)userp;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			http_sock_free(s);
		return 0;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return -1;
		s->fd = fd;
		if ((s->ev = event_new(http_base, fd, 0, http_event_cb,
		    NULL)) == NULL) {
			free(s);
			return -1;
		}
		TAILQ_INSERT_TAIL(&http_socks, s, entry);
		curl_multi_assign(http_multi, fd, s);
	} else
		event_del(s->ev);

	kind = EV_PERSIST;
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	event_assign(s->ev, http_base, fd, kind, http_event_cb, NULL);
	if (event_add(s->ev, NULL) == -1)
		return -1;
	return 0;
}

static void
http_sock_free(struct http_sock *s)
{
	event_free(s->ev);
	TAILQ_REMOVE(&http_socks, s, entry);
	free(s);
}

/* curl may not be re-entered from here: arm the timer, act from the loop. */
static int
http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct timeval	 tv;

	(void)multi;
	(void)userp;
	if (timeout_ms < 0) {
		evtimer_del(http_timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(http_timer, &tv);
}

static void
http_event_cb(evutil_socket_t fd, short kind, void *arg)
{
	CURLMcode	 mrc;
	int		 action = 0, running;

	(void)arg;
	if (kind & EV_READ)
		action |= CURL_CSELECT_IN;
	if (kind & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	mrc = curl_multi_socket_action(http_multi, fd, action, &running);
	if (mrc != CURLM_OK)
		log_warnx("http: socket_action: %s", curl_multi_strerror(mrc));
	http_check_multi_info();
}

static void
http_timeout_cb(evutil_socket_t fd, short kind, void *arg)
{
	CURLMcode	 mrc;
	int		 running;

	(void)fd;
	(void)kind;
	(void)arg;
	mrc = curl_multi_socket_action(http_multi, CURL_SOCKET_TIMEOUT, 0,
	    &running);
	if (mrc != CURLM_OK)
		log_warnx("http: socket_action: %s", curl_multi_strerror(mrc));
	http_check_multi_info();
}

static void
http_check_multi_info(void)
{
	CURLMsg		*msg;
	struct http_req	*req;
	CURLcode	 code;
	char		*priv;
	int		 left;

	/* A callback may call http_shutdown(): look at http_multi each time. */
	while (http_multi != NULL &&
	    (msg = curl_multi_info_read(http_multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		code = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		req = (struct http_req *)priv;
		http_done(req, code);
	}
}

/* Streamed bytes to on_data, from the loop; its -1 ends the transfer. */
static int
http_data_flush(struct http_req *req)
{
	size_t n = req->body_len;

	if (n == 0 || req->truncated)
		return (0);
	req->body_len = 0;
	if (req->on_data(req->body, n, req->arg) == -1) {
		req->truncated = 1;
		return (-1);
	}
	return (0);
}

static void
http_data_fire(evutil_socket_t fd, short what, void *arg)
{
	struct http_req *req = arg;

	(void)fd;
	(void)what;
	if (http_data_flush(req) == -1)
		http_done(req, CURLE_WRITE_ERROR);
}

static void
http_done(struct http_req *req, CURLcode code)
{
	struct http_result	 res;
	curl_off_t		 us = 0;
	long			 oserr = 0;
	size_t			 n;

	if (req->on_data != NULL) {
		/* The last bytes first; then the result has no body. */
		event_del(req->data_ev);
		if (code == CURLE_OK)
			http_data_flush(req);
		req->body_len = 0;
	}
	memset(&res, 0, sizeof(res));
	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &res.status);
	curl_easy_getinfo(req->easy, CURLINFO_TOTAL_TIME_T, &us);
	res.total_ms = us / 1000.0;
	res.body = req->body != NULL && req->on_data == NULL ? req->body : "";
	res.body_len = req->body_len;
	res.body_truncated = req->truncated;
	if (code != CURLE_OK) {
		n = strlen(req->errbuf);
		while (n > 0 && req->errbuf[n - 1] == '\n')
			req->errbuf[--n] = '\0';
		if (n == 0)
			snprintf(req->errbuf, sizeof(req->errbuf), "%s",
			    curl_easy_strerror(code));
		/*
		 * Some curl versions say only "Couldn't connect to server";
		 * an operator wants to know whether it was refused.
		 */
		if (curl_easy_getinfo(req->easy, CURLINFO_OS_ERRNO,
		    &oserr) == CURLE_OK && oserr != 0 &&
		    strstr(req->errbuf, strerror(oserr)) == NULL) {
			n = strlen(req->errbuf);
			snprintf(req->errbuf + n, sizeof(req->errbuf) - n,
			    " (%s)", strerror(oserr));
		}
		res.error = req->errbuf;
		res.timed_out = code == CURLE_OPERATION_TIMEDOUT;
	}

	curl_multi_remove_handle(http_multi, req->easy);
	TAILQ_REMOVE(&http_reqs, req, entry);
	req->completing = 1;
	req->cb(&res, req->arg);
	http_req_free(req);
}
