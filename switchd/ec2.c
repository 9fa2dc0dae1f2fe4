/*
 * ec2.c — the EC2 Query API client: form-encoded POSTs signed by libcurl
 * (CURLOPT_AWS_SIGV4), replies read by ec2-xml.c, CreateTags in batches of
 * 1000 ids and DescribeInstances page by page, retried as the AWS SDKs'
 * "standard" mode does.  Credentials come from ec2-creds.c.
 *
 * One operation (struct ec2_op) is a sequence of calls (a batch or a
 * page), each of up to EC2_MAX_ATTEMPTS attempts.  Its one event does all
 * its waiting: the first send, the backoff before a retry, the wake-up when
 * IMDS credentials arrive, and delivering an early error, so that no
 * callback ever runs inside ec2_create_tags() or ec2_describe().
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "ec2.h"
#include "http.h"
#include "log.h"
#include "util.h"

#define EC2_API_VERSION		"2016-11-15"
#define EC2_MAX_ATTEMPTS	3
#define EC2_TIMEOUT_MS		10000L		/* per attempt */
#define EC2_MAX_BACKOFF_S	20
#define EC2_TAG_BATCH		1000		/* ResourceId.N a call */
#define EC2_PAGE_SIZE		1000		/* MaxResults: EC2's maximum */
#define EC2_MAX_PAGES		200		/* 200,000 instances: beyond, a loop */

/* The SDKs' retry quota (standard mode), per client: here per context. */
#define RETRY_QUOTA		500
#define RETRY_COST		5
#define RETRY_TIMEOUT_COST	10
#define NO_RETRY_INCREMENT	1

#define CONTENT_TYPE \
	"Content-Type: application/x-www-form-urlencoded; charset=utf-8"

enum op_kind {
	OP_CREATE_TAGS,
	OP_DESCRIBE,
};

struct ec2_op {
	struct ec2_ctx		*ctx;
	enum op_kind		 kind;
	const char		*action;
	ec2_done_cb		 done_cb;
	ec2_instances_cb	 inst_cb;
	void			*arg;

	/* CreateTags */
	char			**ids;
	size_t			 nids;
	size_t			 batch;		/* its first id's index */
	char			*tag_params;

	/* DescribeInstances */
	char			*filter_params;
	char			*next_token;
	json_t			*instances;
	int			 pages;

	/* The call under way. */
	char			*body;
	int			 attempt;	/* 1..EC2_MAX_ATTEMPTS */
	int			 retry_cost;	/* quota its last retry took */
	int			 reresolved;	/* creds fetched again once */
	int			 force_refresh;
	int			 temp_creds;	/* signed with expiring keys */
	struct http_req		*req;
	struct ec2_creds_waiter	 waiter;	/* .ev: the op's event */

	int			 finished;	/* code/error to deliver */
	char			*code;
	char			*error;
	TAILQ_ENTRY(ec2_op)	 entry;
};

struct ec2_ctx {
	char			*region;
	char			*endpoint;
	char			*sigv4;		/* "aws:amz:REGION:ec2" */
	double			 backoff_scale;
	int			 retry_quota;
	struct ec2_creds_chain	*creds;
	TAILQ_HEAD(, ec2_op)	 ops;
	TAILQ_ENTRY(ec2_ctx)	 entry;
};

static struct event_base	*ec2_base;
static TAILQ_HEAD(, ec2_ctx)	 ec2_ctxs = TAILQ_HEAD_INITIALIZER(ec2_ctxs);
/*
 * Holds calls made with a NULL context (ec2_ctx_new failed) until their
 * error is delivered: the caller still gets its one callback.
 */
static struct ec2_ctx		 ec2_noctx = {
	.ops = TAILQ_HEAD_INITIALIZER(ec2_noctx.ops),
};

/*
 * botocore's standard-mode throttling and transient error codes, plus the
 * codes EC2 itself answers 5xx with.
 */
static const char *const retry_codes[] = {
	"Throttling", "ThrottlingException", "ThrottledException",
	"RequestThrottledException", "TooManyRequestsException",
	"ProvisionedThroughputExceededException",
	"TransactionInProgressException", "RequestLimitExceeded",
	"BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
	"SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
	"RequestTimeout", "RequestTimeoutException",
	"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable",
	NULL
};

/*
 * What EC2 says to keys it no longer takes.  With expiring (IMDS) keys we
 * fetch new ones and try once more: the role's keys may have been rotated
 * early, or the clock may be off against Expiration.  EC2 answers expired
 * session keys with RequestExpired, not AuthFailure.
 */
static const char *const expired_codes[] = {
	"AuthFailure", "RequestExpired", "ExpiredToken",
	"ExpiredTokenException", "InvalidClientTokenId",
	"UnrecognizedClientException", NULL
};

static struct ec2_op	*op_new(struct ec2_ctx *, enum op_kind, const char *);
static void		 op_free(struct ec2_op *);
static void		 op_cancel(struct ec2_op *);
static void		 op_schedule(struct ec2_op *, double);
static void		 op_result_later(struct ec2_op *, const char *,
			    const char *);
static void		 op_call_start(struct ec2_op *);
static char		*op_body(const struct ec2_op *);
static void		 op_event_cb(evutil_socket_t, short, void *);
static void		 op_send(struct ec2_op *);
static void		 op_http_cb(const struct http_result *, void *);
static void		 op_success(struct ec2_op *, json_t *);
static void		 op_failure(struct ec2_op *, const char *,
			    const char *, int);
static void		 op_finish(struct ec2_op *, const char *,
			    const char *);
static char		*op_context(const struct ec2_op *);
static void		 form_enc(FILE *, const char *);

static const char *
env(const char *name)
{
	const char	*v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static int
in_list(const char *s, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

int
ec2_init(struct event_base *base)
{
	if (http_init(base) == -1)
		return -1;
	ec2_base = base;
	return 0;
}

void
ec2_shutdown(void)
{
	struct ec2_ctx	*ctx;
	struct ec2_op	*op;

	TAILQ_FOREACH(ctx, &ec2_ctxs, entry) {
		while ((op = TAILQ_FIRST(&ctx->ops)) != NULL)
			op_cancel(op);
		ec2_creds_abort(ctx->creds);
	}
	while ((op = TAILQ_FIRST(&ec2_noctx.ops)) != NULL)
		op_cancel(op);
	ec2_base = NULL;
}

/* ----------------------------------------------------------------- ctx */

struct ec2_ctx *
ec2_ctx_new(const char *region, const char *endpoint)
{
	struct ec2_ctx	*ctx;
	const char	*v;
	char		*end;
	double		 scale;

	if (region == NULL || *region == '\0')
		region = env("AWS_REGION");
	if (region == NULL)
		region = env("AWS_DEFAULT_REGION");
	if (region == NULL)
		region = "us-east-1";
	/* It goes into the SigV4 scope and the host name as it is. */
	if (strlen(region) > 32 || region[strspn(region,
	    "abcdefghijklmnopqrstuvwxyz0123456789-")] != '\0') {
		log_warnx("ec2: bad region \"%s\"", region);
		errno = EINVAL;
		return NULL;
	}
	if (endpoint == NULL || *endpoint == '\0')
		endpoint = env("AWS_ENDPOINT_URL_EC2");
	if (endpoint == NULL)
		endpoint = env("AWS_ENDPOINT_URL");

	ctx = xcalloc(1, sizeof(*ctx));
	TAILQ_INIT(&ctx->ops);
	ctx->region = xstrdup(region);
	if (endpoint == NULL)
		ctx->endpoint = xasprintf("https://ec2.%s.amazonaws.com%s",
		    region, strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
	else if (strstr(endpoint, "://") == NULL)
		ctx->endpoint = xasprintf("https://%s", endpoint);
	else
		ctx->endpoint = xstrdup(endpoint);
	/* Provider, region and service explicit: none guessed from the host. */
	ctx->sigv4 = xasprintf("aws:amz:%s:ec2", region);
	ctx->retry_quota = RETRY_QUOTA;
	ctx->backoff_scale = 1.0;
	if ((v = env("SWITCHD_EC2_BACKOFF_SCALE")) != NULL) {
		scale = strtod(v, &end);
		if (*end == '\0' && scale >= 0 && scale <= 1000)
			ctx->backoff_scale = scale;
	}
	ctx->creds = ec2_creds_chain_new();
	TAILQ_INSERT_TAIL(&ec2_ctxs, ctx, entry);
	log_debug("ec2: region %s, endpoint %s, credentials from %s",
	    ctx->region, ctx->endpoint, ec2_creds_source(ctx->creds));
	return ctx;
}

void
ec2_ctx_free(struct ec2_ctx *ctx)
{
	struct ec2_op	*op;

	if (ctx == NULL)
		return;
	while ((op = TAILQ_FIRST(&ctx->ops)) != NULL)
		op_cancel(op);
	TAILQ_REMOVE(&ec2_ctxs, ctx, entry);
	ec2_creds_chain_free(ctx->creds);
	free(ctx->region);
	free(ctx->endpoint);
	free(ctx->sigv4);
	free(ctx);
}

const char *
ec2_ctx_endpoint(const struct ec2_ctx *ctx)
{
	return ctx->endpoint;
}

const char *
ec2_ctx_creds_source(const struct ec2_ctx *ctx)
{
	return ec2_creds_source(ctx->creds);
}

int
ec2_ctx_retry_quota(const struct ec2_ctx *ctx)
{
	return ctx->retry_quota;
}

/* ------------------------------------------------------------ requests */

void
ec2_create_tags(struct ec2_ctx *ctx, const char *const *ids, size_t nids,
    const char *key, const char *value, ec2_done_cb cb, void *arg)
{
	struct ec2_op	*op;
	FILE		*f;
	size_t		 i, len;

	if ((op = op_new(ctx, OP_CREATE_TAGS, "CreateTags")) == NULL)
		return;
	op->done_cb = cb;
	op->arg = arg;
	if (op->ctx == &ec2_noctx) {
		op_result_later(op, "InvalidParameterValue",
		    "CreateTags: no EC2 client (bad ec2.region?)");
		return;
	}
	if (key == NULL || *key == '\0' || value == NULL) {
		op_result_later(op, "InvalidParameterValue",
		    "CreateTags: a tag needs a key and a value");
		return;
	}
	if (nids > 0 && ids == NULL) {
		op_result_later(op, "InvalidParameterValue",
		    "CreateTags: no instance ids");
		return;
	}
	op->ids = xcalloc(nids, sizeof(*op->ids));
	for (i = 0; i < nids; i++) {
		if (ids[i] == NULL || *ids[i] == '\0') {
			op_result_later(op, "InvalidParameterValue",
			    "CreateTags: an empty instance id");
			return;
		}
		op->ids[op->nids++] = xstrdup(ids[i]);
	}
	if ((f = open_memstream(&op->tag_params, &len)) == NULL)
		fatalx("%s: open_memstream", __func__);
	fputs("&Tag.1.Key=", f);
	form_enc(f, key);
	fputs("&Tag.1.Value=", f);
	form_enc(f, value);
	if (fclose(f) != 0)
		fatalx("%s: out of memory", __func__);
	if (nids == 0) {
		op_result_later(op, NULL, NULL);	/* nothing to do */
		return;
	}
	op_call_start(op);
}

static char *
filter_params(json_t *filters, char **error)
{
	FILE		*f;
	const char	*name;
	json_t		*vals, *v;
	char		*s = NULL;
	size_t		 len, n = 0, i;

	*error = NULL;
	if (filters != NULL && !json_is_object(filters)) {
		*error = xstrdup("DescribeInstances: filters must be an "
		    "object");
		return NULL;
	}
	if ((f = open_memstream(&s, &len)) == NULL)
		fatalx("%s: open_memstream", __func__);
	json_object_foreach(filters, name, vals) {
		n++;
		fprintf(f, "&Filter.%zu.Name=", n);
		form_enc(f, name);
		if (json_is_string(vals)) {
			fprintf(f, "&Filter.%zu.Value.1=", n);
			form_enc(f, json_string_value(vals));
			continue;
		}
		if (!json_is_array(vals) || json_array_size(vals) == 0) {
			*error = xasprintf("DescribeInstances: filter %s needs "
			    "a string or a non-empty array of strings", name);
			break;
		}
		json_array_foreach(vals, i, v) {
			if (!json_is_string(v)) {
				*error = xasprintf("DescribeInstances: filter "
				    "%s: values must be strings", name);
				break;
			}
			fprintf(f, "&Filter.%zu.Value.%zu=", n, i + 1);
			form_enc(f, json_string_value(v));
		}
		if (*error != NULL)
			break;
	}
	if (fclose(f) != 0)
		fatalx("%s: out of memory", __func__);
	if (*error != NULL) {
		free(s);
		return NULL;
	}
	return s;
}

void
ec2_describe(struct ec2_ctx *ctx, json_t *filters, ec2_instances_cb cb,
    void *arg)
{
	struct ec2_op	*op;
	char		*error;

	if ((op = op_new(ctx, OP_DESCRIBE, "DescribeInstances")) == NULL)
		return;
	op->inst_cb = cb;
	op->arg = arg;
	op->instances = json_array();
	if (op->ctx == &ec2_noctx) {
		op_result_later(op, "InvalidParameterValue",
		    "DescribeInstances: no EC2 client (bad ec2.region?)");
		return;
	}
	if ((op->filter_params = filter_params(filters, &error)) == NULL) {
		op_result_later(op, "InvalidParameterValue", error);
		free(error);
		return;
	}
	op_call_start(op);
}

/* ------------------------------------------------------------------ ops */

static struct ec2_op *
op_new(struct ec2_ctx *ctx, enum op_kind kind, const char *action)
{
	struct ec2_op	*op;

	if (ec2_base == NULL) {
		log_warnx("ec2: %s dropped: the EC2 client is not running",
		    action);
		return NULL;
	}
	if (ctx == NULL)
		ctx = &ec2_noctx;
	op = xcalloc(1, sizeof(*op));
	op->ctx = ctx;
	op->kind = kind;
	op->action = action;
	if ((op->waiter.ev = evtimer_new(ec2_base, op_event_cb, op)) == NULL)
		fatalx("%s: evtimer_new", __func__);
	TAILQ_INSERT_TAIL(&ctx->ops, op, entry);
	return op;
}

/* Memory only: the op is off its context's list and has nothing pending. */
static void
op_free(struct ec2_op *op)
{
	size_t	 i;

	event_free(op->waiter.ev);
	free(op->waiter.error);
	for (i = 0; i < op->nids; i++)
		free(op->ids[i]);
	free(op->ids);
	free(op->tag_params);
	free(op->filter_params);
	free(op->next_token);
	json_decref(op->instances);
	free(op->body);
	free(op->code);
	free(op->error);
	free(op);
}

static void
op_cancel(struct ec2_op *op)
{
	TAILQ_REMOVE(&op->ctx->ops, op, entry);
	if (op->req != NULL)
		http_cancel(op->req);
	if (op->ctx->creds != NULL)
		ec2_creds_cancel(op->ctx->creds, &op->waiter);
	op_free(op);
}

static void
op_schedule(struct ec2_op *op, double delay_s)
{
	struct timeval	 tv;

	tv.tv_sec = (time_t)delay_s;
	tv.tv_usec = (suseconds_t)((delay_s - (double)tv.tv_sec) * 1e6);
	evtimer_add(op->waiter.ev, &tv);
}

/* A result known before any call (code NULL: success), given from the loop. */
static void
op_result_later(struct ec2_op *op, const char *code, const char *error)
{
	op->finished = 1;
	op->code = xstrdup(code);
	op->error = xstrdup(error);
	op_schedule(op, 0);
}

/* A new batch or page: fresh attempts, sent from the loop. */
static void
op_call_start(struct ec2_op *op)
{
	free(op->body);
	op->body = op_body(op);
	op->attempt = 1;
	op->retry_cost = 0;
	op->reresolved = 0;
	op_schedule(op, 0);
}

static void
form_enc(FILE *f, const char *s)
{
	const unsigned char	*p;

	/* RFC 3986 unreserved characters stay, everything else is %XX. */
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~')
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
	}
}

static char *
op_body(const struct ec2_op *op)
{
	FILE	*f;
	char	*s = NULL;
	size_t	 len, i, end;

	if ((f = open_memstream(&s, &len)) == NULL)
		fatalx("%s: open_memstream", __func__);
	fprintf(f, "Action=%s&Version=%s", op->action, EC2_API_VERSION);
	switch (op->kind) {
	case OP_CREATE_TAGS:
		end = op->batch + EC2_TAG_BATCH;
		if (end > op->nids)
			end = op->nids;
		for (i = op->batch; i < end; i++) {
			fprintf(f, "&ResourceId.%zu=", i - op->batch + 1);
			form_enc(f, op->ids[i]);
		}
		fputs(op->tag_params, f);
		break;
	case OP_DESCRIBE:
		fprintf(f, "&MaxResults=%d%s", EC2_PAGE_SIZE,
		    op->filter_params);
		if (op->next_token != NULL) {
			fputs("&NextToken=", f);
			form_enc(f, op->next_token);
		}
		break;
	}
	if (fclose(f) != 0)
		fatalx("%s: out of memory", __func__);
	return s;
}

static void
op_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ec2_op	*op = arg;

	(void)fd;
	(void)what;
	if (op->finished)
		op_finish(op, op->code, op->error);
	else
		op_send(op);
}

static void
op_send(struct ec2_op *op)
{
	struct ec2_ctx		*ctx = op->ctx;
	const struct ec2_creds	*cr;
	struct http_opts	 o;
	const char		*hdrs[3], *err;
	char			*userpwd, *token_hdr = NULL, *msg;
	int			 saved_errno;

	cr = ec2_creds_get(ctx->creds, op->force_refresh, &op->waiter, &err);
	op->force_refresh = 0;
	if (cr == NULL) {
		if (err != NULL)
			op_finish(op, "NoCredentials", err);
		return;		/* else op->waiter.ev fires when IMDS answers */
	}
	hdrs[0] = CONTENT_TYPE;
	hdrs[1] = NULL;
	hdrs[2] = NULL;
	if (cr->token != NULL) {
		token_hdr = xasprintf("X-Amz-Security-Token: %s", cr->token);
		hdrs[1] = token_hdr;
	}
	userpwd = xasprintf("%s:%s", cr->access_key, cr->secret_key);
	memset(&o, 0, sizeof(o));
	o.method = "POST";
	o.url = ctx->endpoint;
	o.headers = hdrs;
	o.body = op->body;
	o.body_len = strlen(op->body);
	o.timeout_ms = EC2_TIMEOUT_MS;
	o.aws_sigv4 = ctx->sigv4;
	o.userpwd = userpwd;
	o.max_body = EC2_MAX_REPLY;
	op->temp_creds = cr->expiration != 0;
	op->req = http_start(&o, op_http_cb, op);
	saved_errno = errno;
	explicit_bzero(userpwd, strlen(userpwd));
	free(userpwd);
	if (token_hdr != NULL) {
		explicit_bzero(token_hdr, strlen(token_hdr));
		free(token_hdr);
	}
	if (op->req == NULL) {
		msg = xasprintf("POST %s: %s", ctx->endpoint,
		    strerror(saved_errno));
		op_finish(op, "ConnectionError", msg);
		free(msg);
	}
}

/* code/message of a reply that is not a success; NULL code: success. */
static void
reply_classify(const struct ec2_op *op, const struct http_result *res,
    json_t *doc, char **code, char **msg)
{
	const char	*root, *c, *m, *rid, *ret;
	char		 want[64];

	*code = *msg = NULL;
	root = json_string_value(json_object_get(doc, "root"));
	c = json_string_value(json_object_get(doc, "code"));
	m = json_string_value(json_object_get(doc, "message"));
	rid = json_string_value(json_object_get(doc, "request_id"));
	ret = json_string_value(json_object_get(doc, "return"));
	snprintf(want, sizeof(want), "%sResponse", op->action);

	if (res->body_truncated) {
		*code = xstrdup("UnexpectedResponse");
		*msg = xasprintf("%s: reply larger than %d MiB", op->action,
		    EC2_MAX_REPLY / (1024 * 1024));
	} else if (c != NULL && *c != '\0') {
		*code = xstrdup(c);
		*msg = xasprintf("%s (%s, HTTP %ld, request ID %s)",
		    m != NULL && *m != '\0' ? m : c, op->action, res->status,
		    rid != NULL ? rid : "none");
	} else if (res->status >= 200 && res->status < 300 && root != NULL &&
	    strcmp(root, want) == 0) {
		if (ret != NULL && strcmp(ret, "true") != 0) {
			*code = xstrdup("UnexpectedResponse");
			*msg = xasprintf("%s returned %s (request ID %s)",
			    op->action, ret, rid != NULL ? rid : "none");
		}
	} else if (res->status >= 500) {
		/* A proxy's or load balancer's page, or nothing at all. */
		*code = xstrdup(res->status == 503 ? "ServiceUnavailable" :
		    "InternalError");
		*msg = xasprintf("%s: HTTP %ld with no EC2 error in the reply",
		    op->action, res->status);
	} else if (res->status == 429) {
		*code = xstrdup("TooManyRequestsException");
		*msg = xasprintf("%s: HTTP 429", op->action);
	} else {
		*code = xstrdup("UnexpectedResponse");
		*msg = xasprintf("%s: HTTP %ld with %s%s%s from %s", op->action,
		    res->status, doc == NULL ? "a reply that is not XML" :
		    "an unexpected XML reply <", doc == NULL ? "" : root,
		    doc == NULL ? "" : ">", op->ctx->endpoint);
	}
}

static void
op_http_cb(const struct http_result *res, void *arg)
{
	struct ec2_op	*op = arg;
	json_t		*doc = NULL;
	char		*code, *msg;
	int		 cost = RETRY_COST;

	op->req = NULL;
	if (res->error != NULL) {
		code = xstrdup("ConnectionError");
		msg = xasprintf("%s: POST %s: %s", op->action,
		    op->ctx->endpoint, res->error);
		cost = RETRY_TIMEOUT_COST;
	} else {
		doc = ec2_xml_reply(res->body, res->body_len);
		reply_classify(op, res, doc, &code, &msg);
	}
	if (code == NULL)
		op_success(op, doc);
	else
		op_failure(op, code, msg, cost);
	json_decref(doc);
	free(code);
	free(msg);
}

static void
op_success(struct ec2_op *op, json_t *doc)
{
	struct ec2_ctx	*ctx = op->ctx;
	const char	*tok;
	char		*msg;

	/* The SDKs refund a retry's cost on success, else a token. */
	ctx->retry_quota += op->retry_cost > 0 ? op->retry_cost :
	    NO_RETRY_INCREMENT;
	if (ctx->retry_quota > RETRY_QUOTA)
		ctx->retry_quota = RETRY_QUOTA;
	op->retry_cost = 0;

	switch (op->kind) {
	case OP_CREATE_TAGS:
		op->batch += EC2_TAG_BATCH;
		if (op->batch < op->nids) {
			op_call_start(op);
			return;
		}
		break;
	case OP_DESCRIBE:
		json_array_extend(op->instances,
		    json_object_get(doc, "instances"));
		op->pages++;
		tok = json_string_value(json_object_get(doc, "next_token"));
		if (tok == NULL || *tok == '\0')
			break;
		if (op->next_token != NULL &&
		    strcmp(tok, op->next_token) == 0) {
			/* A token that repeats would page forever. */
			msg = xasprintf("DescribeInstances: page %d repeats "
			    "the NextToken of the page before", op->pages);
			op_finish(op, "UnexpectedResponse", msg);
			free(msg);
			return;
		}
		if (op->pages >= EC2_MAX_PAGES) {
			/* Distinct tokens that never end would page forever too. */
			msg = xasprintf("DescribeInstances: still a NextToken after "
			    "%d pages; giving up", op->pages);
			op_finish(op, "UnexpectedResponse", msg);
			free(msg);
			return;
		}
		free(op->next_token);
		op->next_token = xstrdup(tok);
		op_call_start(op);
		return;
	}
	op_finish(op, NULL, NULL);
}

static double
backoff_s(const struct ec2_ctx *ctx, int failed_attempt)
{
	double	 cap = EC2_MAX_BACKOFF_S, r;

	if (failed_attempt - 1 < 5)
		cap = 1 << (failed_attempt - 1);
	if (cap > EC2_MAX_BACKOFF_S)
		cap = EC2_MAX_BACKOFF_S;
	r = (double)arc4random() / 4294967296.0;	/* [0, 1) */
	return ctx->backoff_scale * r * cap;
}

static void
op_failure(struct ec2_op *op, const char *code, const char *msg, int cost)
{
	struct ec2_ctx	*ctx = op->ctx;
	const char	*note = "";
	char		*where, *full;
	double		 delay;
	int		 retryable;

	if (op->temp_creds && !op->reresolved && in_list(code, expired_codes)) {
		log_info("ec2: %s: %s with credentials from %s; fetching new "
		    "ones", op->action, code, ec2_creds_source(ctx->creds));
		op->reresolved = 1;
		op->force_refresh = 1;
		op_schedule(op, 0);
		return;
	}
	/*
	 * Any 5xx answer and any connection failure is worth another try.
	 * InvalidInstanceID.NotFound from CreateTags too, though the SDKs do
	 * not retry it: EC2's ids are eventually consistent, and tagging an
	 * instance launched a moment ago is exactly when EC2's documentation
	 * says to expect it and retry.
	 */
	retryable = in_list(code, retry_codes) ||
	    strcmp(code, "ConnectionError") == 0 ||
	    (op->kind == OP_CREATE_TAGS &&
	    strcmp(code, "InvalidInstanceID.NotFound") == 0);
	if (strcmp(code, "ServiceUnavailable") == 0 ||
	    strcmp(code, "InternalError") == 0)
		retryable = 1;
	if (retryable && op->attempt < EC2_MAX_ATTEMPTS) {
		if (ctx->retry_quota >= cost) {
			ctx->retry_quota -= cost;
			op->retry_cost = cost;
			delay = backoff_s(ctx, op->attempt);
			log_debug("ec2: %s: %s (attempt %d of %d), retrying "
			    "in %.3f s", op->action, code, op->attempt,
			    EC2_MAX_ATTEMPTS, delay);
			op->attempt++;
			op_schedule(op, delay);
			return;
		}
		note = ", retry quota exhausted";
	}
	where = op_context(op);
	full = xasprintf("%s [%d attempt%s%s]%s", msg, op->attempt,
	    op->attempt == 1 ? "" : "s", note, where);
	op_finish(op, code, full);
	free(where);
	free(full);
}

/* Which part of a multi-call operation failed, for the message. */
static char *
op_context(const struct ec2_op *op)
{
	size_t	 end;

	if (op->kind == OP_CREATE_TAGS && op->nids > EC2_TAG_BATCH) {
		end = op->batch + EC2_TAG_BATCH;
		if (end > op->nids)
			end = op->nids;
		if (op->batch == 0)
			return xasprintf("; none of the %zu ids tagged "
			    "(ids 1-%zu failed)", op->nids, end);
		return xasprintf("; ids 1-%zu of %zu tagged, %zu-%zu failed, "
		    "the rest not tried", op->batch, op->nids, op->batch + 1,
		    end);
	}
	if (op->kind == OP_DESCRIBE && op->pages > 0)
		return xasprintf("; at page %d", op->pages + 1);
	return xstrdup("");
}

/*
 * The op leaves its context before its callback runs, so that the callback
 * may free the context (or shut the client down) and the op still goes.
 */
static void
op_finish(struct ec2_op *op, const char *code, const char *error)
{
	char	*c = xstrdup(code), *e = xstrdup(error);

	TAILQ_REMOVE(&op->ctx->ops, op, entry);
	if (op->ctx->creds != NULL)
		ec2_creds_cancel(op->ctx->creds, &op->waiter);
	evtimer_del(op->waiter.ev);
	op->ctx = NULL;
	if (op->kind == OP_DESCRIBE) {
		if (op->inst_cb != NULL)
			op->inst_cb(c == NULL ? op->instances : NULL, c, e,
			    op->arg);
	} else if (op->done_cb != NULL)
		op->done_cb(c, e, op->arg);
	free(c);
	free(e);
	op_free(op);
}
