/*
 * ec2.h — switchd's EC2 client: the Query API (Version=2016-11-15) over
 * http.c, signed by libcurl's SigV4, with the AWS SDKs' credential chain
 * and "standard" retry mode.  Two calls are all switchd needs: CreateTags
 * (role tags after a switch) and DescribeInstances (pool discovery and
 * drift).  Everything runs on the daemon's event loop; nothing blocks.
 *
 * Callbacks: every ec2_create_tags()/ec2_describe() gets exactly one, from
 * the event loop and never from inside the call itself, unless its context
 * is freed (ec2_ctx_free) or ec2_shutdown() runs first — even with a NULL
 * context (code "InvalidParameterValue").  Only a call made before
 * ec2_init() or after ec2_shutdown() is dropped without one.  A callback may
 * free its own context.  Strings and JSON handed to a callback are valid
 * only during it.
 *
 * Test knob: SWITCHD_EC2_BACKOFF_SCALE (a float, read by ec2_ctx_new)
 * multiplies every retry delay, so the unit tests can exercise retries in
 * milliseconds.  Operators have no reason to set it.
 */
#ifndef SWITCHD_EC2_H
#define SWITCHD_EC2_H

#include <sys/queue.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

struct event;
struct event_base;
struct ec2_ctx;

/*
 * code NULL on success; else EC2's own error code ("RequestLimitExceeded",
 * "AuthFailure", "InvalidInstanceID.NotFound", ...) or one of ours:
 * "ConnectionError" (no HTTP answer: refused, reset, timed out),
 * "NoCredentials", "UnexpectedResponse" (an answer that is not EC2's XML),
 * "InvalidParameterValue" (a bad argument caught before sending).
 * error is human text for the operator and includes EC2's request ID.
 */
typedef void	(*ec2_done_cb)(const char *code, const char *error, void *arg);
/* instances (borrowed): [{"id", "private_ip", "state", "tags": {k: v}}] */
typedef void	(*ec2_instances_cb)(json_t *instances, const char *code,
		    const char *error, void *arg);

/* Once, with the daemon's base; also initialises http.c (http_init). */
int		 ec2_init(struct event_base *);
/*
 * Cancels every request of every context, without callbacks.  Contexts
 * stay valid for ec2_ctx_free(); new calls are dropped (no callback).
 * Call it before http_shutdown(), which it does not call: http.c is shared.
 */
void		 ec2_shutdown(void);

/*
 * region NULL or "": $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1.
 * endpoint (ec2.endpoint) NULL: $AWS_ENDPOINT_URL_EC2, $AWS_ENDPOINT_URL,
 * else https://ec2.REGION.amazonaws.com.  The environment and the shared
 * credentials/config files are read here, once: create a new context on
 * reload to pick up changes.  NULL (errno EINVAL) for a malformed region.
 */
struct ec2_ctx	*ec2_ctx_new(const char *region, const char *endpoint);
/* Cancels its requests; no callbacks afterwards. */
void		 ec2_ctx_free(struct ec2_ctx *);
const char	*ec2_ctx_endpoint(const struct ec2_ctx *);
/* Where its credentials come from, for the log ("environment", ...). */
const char	*ec2_ctx_creds_source(const struct ec2_ctx *);
/* The SDK retry quota left (500 when full); for tests and status. */
int		 ec2_ctx_retry_quota(const struct ec2_ctx *);

/*
 * Sets key=value on every id: calls of up to 1000 ids, one after another.
 * Stops at the first failed call and reports it (earlier batches stay
 * tagged; the message says which ids were not).
 */
void		 ec2_create_tags(struct ec2_ctx *, const char *const *ids,
		    size_t nids, const char *key, const char *value,
		    ec2_done_cb, void *arg);
/*
 * Every page (MaxResults=1000, NextToken) of instances matching filters
 * (borrowed, may be NULL): {"tag:switchd:pool": ["blue", "green"],
 * "instance-state-name": ["running"]}; a value may be one string.
 * private_ip and state are null when EC2 gives none (terminated).
 */
void		 ec2_describe(struct ec2_ctx *, json_t *filters,
		    ec2_instances_cb, void *arg);

/* ------------------------------------------------------------------------
 * Internals shared by ec2.c, ec2-creds.c and tests/unit/test-ec2.c.
 */

/* A page of 1000 real instances is a few MB of XML. */
#define EC2_MAX_REPLY		(64 * 1024 * 1024)
/* The XML of an EC2 reply as JSON: {"root", "request_id", "code",
 * "message", "next_token", "return", "instances": [...]}, keys present only
 * when found; NULL if it is not well-formed XML (or has a DOCTYPE). */
json_t		*ec2_xml_reply(const char *xml, size_t len);

struct ec2_creds {
	char		*access_key;
	char		*secret_key;
	char		*token;		/* session token, or NULL */
	time_t		 expiration;	/* 0 for long-term keys */
};

/*
 * An operation waiting for credentials.  The chain never calls back: it
 * activates ev (the waiter's own event) when the IMDS fetch ends, and the
 * operation asks again from its event callback.  So no code of the caller
 * runs inside the chain, and a callback may free everything.
 */
struct ec2_creds_waiter {
	struct event	*ev;
	int		 queued;
	int		 woken;		/* a fetch it waited for has ended */
	char		*error;		/* ... and failed, saying why */
	TAILQ_ENTRY(ec2_creds_waiter) entry;
};

struct ec2_creds_chain;

/* Reads the environment and the shared files now; IMDS comes later. */
struct ec2_creds_chain	*ec2_creds_chain_new(void);
void		 ec2_creds_chain_free(struct ec2_creds_chain *);
/* Cancels an IMDS fetch in flight (its waiters are not woken). */
void		 ec2_creds_abort(struct ec2_creds_chain *);
const char	*ec2_creds_source(const struct ec2_creds_chain *);
/*
 * Credentials to sign with now, or NULL: then either *error says why there
 * are none, or (*error NULL) w is queued and w->ev will fire.  refresh
 * forces a new IMDS fetch (after EC2 refused expiring credentials).
 */
const struct ec2_creds *ec2_creds_get(struct ec2_creds_chain *, int refresh,
		    struct ec2_creds_waiter *w, const char **error);
void		 ec2_creds_cancel(struct ec2_creds_chain *,
		    struct ec2_creds_waiter *);
/*
 * The keys of [section] of an INI text as a JSON object of strings (keys
 * lower-cased), or NULL if there is no such section.  Whitespace inside a
 * section name is collapsed ("[profile  x]" is "profile x").
 */
json_t		*ec2_ini_section(const char *text, const char *section);

#endif
