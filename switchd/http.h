/*
 * http.h — switchd's asynchronous HTTP client: libcurl's multi interface
 * driven by the daemon's libevent base.  Smoke checks, the EC2 API, IMDS and
 * the notify webhook all go through it, so none of them blocks the loop.
 *
 * Every transfer started gets exactly one callback, from the event loop and
 * never from inside http_start(), unless it is cancelled first.  The result
 * and everything it points to are valid only during the callback.
 */
#ifndef SWITCHD_HTTP_H
#define SWITCHD_HTTP_H
#include <stddef.h>

struct event_base;
struct http_req;

struct http_result {
	long		 status;	/* HTTP status, 0 if none */
	double		 total_ms;	/* whole transfer time */
	const char	*body;		/* NUL-terminated (may contain NULs before body_len) */
	size_t		 body_len;
	const char	*error;		/* NULL on transport success, else curl's words */
	int		 timed_out;	/* 1 if CURLE_OPERATION_TIMEDOUT */
	int		 body_truncated;
};
typedef void (*http_cb)(const struct http_result *, void *arg);
/*
 * A streaming response (etcd's watch): the body's bytes as they come, from
 * the loop (so it may start other transfers), in order, the last ones
 * before cb.  It must not cancel its own request; returning -1 ends the
 * transfer instead (cb then sees an error).  max_body caps the bytes not
 * handed over yet.  The final result has no body.
 */
typedef int (*http_data_cb)(const char *data, size_t len, void *arg);

struct http_opts {
	const char	*method;	/* "GET" (default), "HEAD", "POST", "PUT" */
	const char	*url;
	const char	*host;		/* optional Host header override */
	const char *const *headers;	/* optional NULL-terminated "Name: value" */
	const char	*body;		/* POST/PUT body, copied */
	size_t		 body_len;
	long		 timeout_ms;	/* whole transfer; 0 = 30 s; < 0: none */
	long		 connect_timeout_ms;	/* 0 = curl's default */
	const char	*aws_sigv4;	/* e.g. "aws:amz:us-east-1:ec2" -> CURLOPT_AWS_SIGV4 */
	const char	*userpwd;	/* "AK:SK" for sigv4 */
	const char	*cainfo;	/* optional CA file */
	int		 insecure;	/* skip TLS verification */
	size_t		 max_body;	/* cap on kept body bytes; 0 = 1 MiB */
	const char	*resolve;	/* optional CURLOPT_RESOLVE entry "host:port:addr" */
	const char	*connect_to;	/* optional CURLOPT_CONNECT_TO "host:port:to:port" */
	http_data_cb	 on_data;	/* optional: stream the body (arg is cb's) */
};

/* Once, before any transfer: curl_global_init and the multi handle. */
int		 http_init(struct event_base *);
/* Cancels everything, without callbacks; http_init may follow again. */
void		 http_shutdown(void);
/*
 * Copies every string it needs.  NULL on immediate failure (errno set);
 * otherwise cb is called exactly once, from the loop, unless cancelled.
 * Always check error before status: a transfer cut short keeps its status.
 */
struct http_req	*http_start(const struct http_opts *, http_cb, void *arg);
/* No callback afterwards; a no-op from inside the request's own callback. */
void		 http_cancel(struct http_req *);
/*
 * Caps open connections (CURLMOPT_MAX_TOTAL_CONNECTIONS; 0 = no cap) and so
 * the transfers in flight: the rest wait in curl's queue.  Idle connections
 * already open are still reused, so set it before the first transfer.
 */
void		 http_set_max_connections(long total);

#endif
