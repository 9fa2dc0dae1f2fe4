/*
 * etcd.h — a client of etcd v3's JSON gateway (etcd 3.4: POST /v3/...) on
 * the daemon's asynchronous HTTP client (http.h).  Keys and values travel
 * base64-encoded, 64-bit integers as JSON strings; the builders below hide
 * both.  Every call goes to the endpoint that answered last and fails over
 * to the next one on a transport error, a 5xx or an "etcdserver: no
 * leader"-style answer; when every endpoint has been tried the callback
 * gets ETCD_UNAVAILABLE.
 */
#ifndef SWITCHD_ETCD_H
#define SWITCHD_ETCD_H
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct etcd;
struct etcd_call;
struct etcd_watch;

enum etcd_status {
	ETCD_OK,
	ETCD_UNAVAILABLE,	/* no endpoint answered, or none has a quorum */
	ETCD_ERROR		/* etcd answered with an error (error says which) */
};

/* reply is borrowed for the callback (NULL unless ETCD_OK). */
typedef void (*etcd_cb)(enum etcd_status, json_t *reply, const char *error, void *arg);
/* One message of a watch stream: its "result" object, borrowed. */
typedef void (*etcd_event_cb)(json_t *result, void *arg);

struct etcd	*etcd_new(char *const *endpoints, size_t n, long timeout_ms);
/* Cancels every call and watch, without callbacks. */
void		 etcd_free(struct etcd *);

/*
 * POST api ("/v3/kv/range", ...) with body (stolen); cb called once, from
 * the loop — except when no request can even be started: then cb runs
 * before this returns NULL.
 */
struct etcd_call *etcd_post(struct etcd *, const char *api, json_t *body, etcd_cb, void *);
void		 etcd_cancel(struct etcd_call *);

struct etcd_call *etcd_range(struct etcd *, const char *key, int prefix, etcd_cb, void *);
struct etcd_call *etcd_put(struct etcd *, const char *key, const char *value, int64_t lease,
		    etcd_cb, void *);
struct etcd_call *etcd_delete(struct etcd *, const char *key, int prefix, etcd_cb, void *);
/* compare, success, failure: arrays (stolen), built with the etcd_cmp_* and etcd_op_*. */
struct etcd_call *etcd_txn(struct etcd *, json_t *compare, json_t *success, json_t *failure,
		    etcd_cb, void *);
struct etcd_call *etcd_lease_grant(struct etcd *, int ttl, etcd_cb, void *);
struct etcd_call *etcd_lease_keepalive(struct etcd *, int64_t id, etcd_cb, void *);
struct etcd_call *etcd_lease_revoke(struct etcd *, int64_t id, etcd_cb, void *);

/*
 * Watch every key under prefix from revision start_rev (0: now).  on_event
 * for each message; end once, when the stream ends for any reason (then the
 * watch is gone).
 */
struct etcd_watch *etcd_watch(struct etcd *, const char *prefix, int64_t start_rev,
		    etcd_event_cb on_event, etcd_cb end, void *);
void		 etcd_watch_cancel(struct etcd_watch *);
/* 0 once calls fail over to another member than the watch's. */
int		 etcd_watch_current(struct etcd_watch *);

/* Request builders: new references. */
json_t		*etcd_op_put(const char *key, const char *value, int64_t lease);
json_t		*etcd_op_range(const char *key, int prefix, long limit, int descend);
json_t		*etcd_op_delete(const char *key);
json_t		*etcd_cmp_create(const char *key, int64_t rev);	/* create_revision == rev */
json_t		*etcd_cmp_mod(const char *key, int64_t rev);	/* mod_revision == rev */
json_t		*etcd_cmp_value(const char *key, const char *value);	/* value == value */

/* Reading replies. */
int64_t		 etcd_int(json_t *obj, const char *key);	/* "123" or 123; 0 if absent */
char		*etcd_kv_key(json_t *kv);		/* malloc'd */
json_t		*etcd_kv_json(json_t *kv);		/* the value parsed as JSON, or NULL */
json_t		*etcd_txn_kvs(json_t *reply, size_t i);	/* kvs of the i-th response_range */
int		 etcd_txn_ok(json_t *reply);		/* "succeeded" */
char		*etcd_b64_encode(const char *, size_t);
char		*etcd_b64_decode(const char *, size_t *len);	/* NULL if not base64 */

#endif
