/*
 * metrics.c — the figures behind /metrics, /api/status and the status page.
 *
 * A scrape never reaches HAProxy by itself: it reads a snapshot (the reply
 * of "status" and each pool's traffic counters summed over every node) that
 * is refreshed at most once a second, asynchronously.  A snapshot up to 5 s
 * old is served at once (and refreshed behind it); an older one makes the
 * request wait for the refresh, with any others that arrive meanwhile.
 * However often Prometheus and the pages ask, each node sees at most one
 * "show stat" for counters a second.  A journal entry (a switch, back,
 * lock...) makes the next request wait for a new snapshot, so that the page
 * shows a switch within a second.  The journal also feeds the switch counters and the histogram
 * of switch durations.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "lb.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define REFRESH_MS	1000	/* a snapshot younger than this is served as is */
#define STALE_MS	5000	/* older than this, a request waits for a new one */

struct waiter {
	snapshot_cb		 cb;
	void			*arg;
	TAILQ_ENTRY(waiter)	 entry;
};

static struct {
	struct snapshot	 snap;
	int		 have, invalid, refreshing, pending;
	double		 status_ms;	/* when snap.status was asked for */
	double		 counters_ms;	/* when the nodes were last asked */
	json_t		*nodes;		/* {socket: {backend: {requests, 5xx}}}, last known */
	TAILQ_HEAD(, waiter) waiters;
	int		 init;
	/* From the journal. */
	json_t		*switches;	/* {"command\tresult\tby": count} */
	unsigned long long buckets[16];
	double		 dur_sum;
	unsigned long long dur_count;
} M;

/* Switch durations, seconds: a flip is ~1 ms, a switch with smoke seconds. */
static const double bucket_le[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
	5, 10, 30, 60, 300 };
#define NBUCKETS	(sizeof(bucket_le) / sizeof(bucket_le[0]))

static void
metrics_setup(void)
{
	static const char *const zero[] = { "switch\tok\toperator", "switch\tfailed\toperator",
		"back\tok\toperator", "back\tfailed\toperator", "back\tok\tswitchd", NULL };
	int i;

	if (M.init)
		return;
	M.init = 1;
	TAILQ_INIT(&M.waiters);
	M.nodes = json_object();
	M.switches = json_object();
	/* Series that alerts watch exist from the start, at 0. */
	for (i = 0; zero[i] != NULL; i++)
		json_object_set_new(M.switches, zero[i], json_integer(0));
}

/* --------------------------------------------------------------- journal */

static int
is_switch_command(const char *c)
{
	return c != NULL && (strcmp(c, "switch") == 0 || strcmp(c, "back") == 0 ||
	    strcmp(c, "canary") == 0 || strcmp(c, "rollout") == 0);
}

void
metrics_journal(json_t *e)
{
	const char *cmd = json_string_value(json_object_get(e, "command"));
	const char *result = json_string_value(json_object_get(e, "result"));
	const char *user = json_string_value(json_object_get(e, "user"));
	json_t *took = json_object_get(e, "took_ms");
	char key[128];
	size_t i;
	double s;

	metrics_setup();
	M.invalid = 1;
	if (!is_switch_command(cmd) || result == NULL)
		return;
	/* "by" is switchd itself (the guard, a repair) or a person: two values, not one a user. */
	snprintf(key, sizeof(key), "%s\t%s\t%s", cmd, result,
	    user != NULL && strcmp(user, "switchd") == 0 ? "switchd" : "operator");
	json_object_set_new(M.switches, key, json_integer(
	    json_integer_value(json_object_get(M.switches, key)) + 1));
	if (strcmp(result, "ok") != 0 || !json_is_integer(took))
		return;
	s = (double)json_integer_value(took) / 1000.0;
	for (i = 0; i < NBUCKETS; i++)
		if (s <= bucket_le[i])
			M.buckets[i]++;
	M.dur_sum += s;
	M.dur_count++;
}

/* -------------------------------------------------------------- snapshot */

/* One node's counters being read. */
struct counters_req {
	struct daemon	*d;
	char		*addr;
};

static void
refresh_done_one(struct daemon *d)
{
	TAILQ_HEAD(, waiter) ready;
	struct waiter *w;
	json_t *sums, *nc;
	struct config *conf = d->conf;
	const struct lb_stats *stats = conf->drv->stats;
	size_t n;
	int i;

	if (--M.pending > 0)
		return;
	sums = json_object();
	/* Each pool's counters: the sum over the nodes of today's config. */
	for (i = 0; i < NPOOLS && stats != NULL && stats->nnodes(conf) > 0; i++) {
		json_int_t req = 0, h5 = 0;
		int seen = 0;

		for (n = 0; n < stats->nnodes(conf); n++) {
			nc = json_object_get(json_object_get(M.nodes, stats->node(conf, n)),
			    conf->pools[i].backend);
			if (nc == NULL)
				continue;
			seen = 1;
			req += json_integer_value(json_object_get(nc, "requests"));
			h5 += json_integer_value(json_object_get(nc, "5xx"));
		}
		if (seen)
			json_object_set_new(sums, pool_name(i),
			    json_pack("{s:I, s:I}", "requests", req, "5xx", h5));
	}
	json_decref(M.snap.counters);
	M.snap.counters = sums;
	M.snap.taken_ms = M.counters_ms;
	M.have = M.snap.status != NULL;
	M.refreshing = 0;

	/* A callback may ask again: serve the ones waiting now, from a list of their own. */
	TAILQ_INIT(&ready);
	while ((w = TAILQ_FIRST(&M.waiters)) != NULL) {
		TAILQ_REMOVE(&M.waiters, w, entry);
		TAILQ_INSERT_TAIL(&ready, w, entry);
	}
	while ((w = TAILQ_FIRST(&ready)) != NULL) {
		TAILQ_REMOVE(&ready, w, entry);
		w->cb(&M.snap, w->arg);
		free(w);
	}
}

static void
refresh_status(json_t *r, void *arg)
{
	struct daemon *d = arg;

	json_decref(M.snap.status);
	M.snap.status = r;
	refresh_done_one(d);
}

static void
refresh_counters(json_t *counters, const char *err, void *arg)
{
	struct counters_req *cr = arg;
	struct daemon *d = cr->d;

	if (err != NULL)
		log_debug("metrics: %s: %s", cr->addr, err);
	else
		json_object_set(M.nodes, cr->addr, counters);
	free(cr->addr);
	free(cr);
	refresh_done_one(d);
}

static void
refresh_start(struct daemon *d)
{
	struct config *conf = d->conf;
	double now = now_ms();
	size_t n;

	M.refreshing = 1;
	M.invalid = 0;
	M.pending = 1;
	M.status_ms = now;
	/* Traffic counters: never more than one "show stat" a node a second. */
	if (now - M.counters_ms >= REFRESH_MS && conf->drv->stats != NULL) {
		M.counters_ms = now;
		for (n = 0; n < conf->drv->stats->nnodes(conf); n++) {
			struct counters_req *cr = xcalloc(1, sizeof(*cr));

			cr->d = d;
			cr->addr = xstrdup(conf->drv->stats->node(conf, n));
			M.pending++;
			if (conf->drv->stats->counters(d->lb, n, NULL, refresh_counters,
			    cr) == NULL) {
				free(cr->addr);
				free(cr);
				M.pending--;
			}
		}
	}
	status_json(d, refresh_status, d);
}

void
metrics_snapshot(struct daemon *d, snapshot_cb cb, void *arg)
{
	struct waiter *w;
	double age;

	metrics_setup();
	age = now_ms() - M.status_ms;
	/*
	 * Between one and five seconds old: served at once, and refreshed for
	 * the next request, so that a scraper or a page that asks every second
	 * never waits for HAProxy (whose own "show stat" of 2000 servers takes
	 * ~6 ms).  Older, or after a journal entry: the request waits.
	 */
	if (M.have && !M.invalid && age < STALE_MS) {
		cb(&M.snap, arg);	/* first: the refresh must not delay it */
		if (age >= REFRESH_MS && !M.refreshing)
			refresh_start(d);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->cb = cb;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&M.waiters, w, entry);
	if (!M.refreshing)
		refresh_start(d);
}

/* The requests waiting are going away with their connections. */
void
metrics_drop_waiters(void)
{
	struct waiter *w;

	if (!M.init)
		return;
	while ((w = TAILQ_FIRST(&M.waiters)) != NULL) {
		TAILQ_REMOVE(&M.waiters, w, entry);
		free(w);
	}
}

void
metrics_shutdown(void)
{
	if (!M.init)
		return;
	metrics_drop_waiters();
	json_decref(M.snap.status);
	json_decref(M.snap.counters);
	json_decref(M.nodes);
	json_decref(M.switches);
	memset(&M, 0, sizeof(M));
}

json_t *
metrics_counters_json(const struct snapshot *s)
{
	return json_pack("{s:I, s:O}", "time_ms", (json_int_t)s->taken_ms,
	    "pools", s->counters);
}

/* ------------------------------------------------------------- rendering */

/* A label value: backslash, double quote and newline escaped. */
static void
label(struct evbuffer *b, const char *v)
{
	const char *p;

	for (p = v ? v : ""; *p; p++) {
		if (*p == '\\')
			evbuffer_add(b, "\\\\", 2);
		else if (*p == '"')
			evbuffer_add(b, "\\\"", 2);
		else if (*p == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, p, 1);
	}
}

static void
family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* "UP 2/3" -> "up", "no check" -> "no_check", "MAINT (via x)" -> "maint". */
static void
status_word(const char *st, char *out, size_t len)
{
	size_t i;

	if (st == NULL || *st == '\0')
		st = "unknown";
	if (strcmp(st, "no check") == 0)
		st = "no_check";
	for (i = 0; i + 1 < len && st[i] != '\0' && st[i] != ' ' && st[i] != '('; i++)
		out[i] = (char)(st[i] >= 'A' && st[i] <= 'Z' ? st[i] - 'A' + 'a' : st[i]);
	out[i] = '\0';
}

static double
iso_to_epoch(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		return 0;
	return (double)timegm(&tm);
}

void
metrics_render(const struct snapshot *s, struct evbuffer *b)
{
	static const char *const usual[] = { "up", "down", "maint", "drain", "unknown", NULL };
	json_t *st = s->status, *pools = json_object_get(st, "pools"), *p, *v, *lock;
	const char *hot = json_string_value(json_object_get(st, "hot")), *key;
	json_t *canary = json_object_get(st, "canary");	/* null, or on the cold pool */
	char word[32], cmd[64], result[32], by[32];
	size_t i;
	int k;

	family(b, "switchd_hot_pool", "gauge", "1 for the pool that serves the live host name, 0 for the other.");
	for (k = 0; k < NPOOLS; k++) {
		evbuffer_add_printf(b, "switchd_hot_pool{pool=\"%s\"} %d\n", pool_name(k),
		    hot != NULL && strcmp(hot, pool_name(k)) == 0);
	}
	family(b, "switchd_pool_info", "gauge", "Always 1: each pool's version and verification state.");
	for (k = 0; k < NPOOLS; k++) {
		p = json_object_get(pools, pool_name(k));
		evbuffer_add_printf(b, "switchd_pool_info{pool=\"%s\",version=\"", pool_name(k));
		label(b, json_string_value(json_object_get(p, "version")));
		evbuffer_add_printf(b, "\",state=\"");
		label(b, json_string_value(json_object_get(p, "state")));
		evbuffer_add_printf(b, "\"} 1\n");
	}
	family(b, "switchd_servers", "gauge", "Servers of each pool by their status in HAProxy.");
	for (k = 0; k < NPOOLS; k++) {
		json_t *count = json_object();

		for (i = 0; usual[i] != NULL; i++)
			json_object_set_new(count, usual[i], json_integer(0));
		json_array_foreach(json_object_get(json_object_get(pools, pool_name(k)), "servers"), i, v) {
			status_word(json_string_value(json_object_get(v, "status")), word, sizeof(word));
			json_object_set_new(count, word, json_integer(
			    json_integer_value(json_object_get(count, word)) + 1));
		}
		json_object_foreach(count, key, v) {
			evbuffer_add_printf(b, "switchd_servers{pool=\"%s\",status=\"", pool_name(k));
			label(b, key);
			evbuffer_add_printf(b, "\"} %lld\n", (long long)json_integer_value(v));
		}
		json_decref(count);
	}
	family(b, "switchd_switches_total", "counter", "Switches, backs, canaries and rollouts in the "
	    "journal since switchd started, by result and by whom (switchd itself or an operator).");
	json_object_foreach(M.switches, key, v) {
		if (sscanf(key, "%63[^\t]\t%31[^\t]\t%31s", cmd, result, by) != 3)
			continue;
		evbuffer_add_printf(b, "switchd_switches_total{command=\"%s\",result=\"%s\",by=\"%s\"} %lld\n",
		    cmd, result, by, (long long)json_integer_value(v));
	}
	family(b, "switchd_switch_duration_seconds", "histogram",
	    "Wall time of the successful switches since switchd started.");
	for (i = 0; i < NBUCKETS; i++)
		evbuffer_add_printf(b, "switchd_switch_duration_seconds_bucket{le=\"%g\"} %llu\n",
		    bucket_le[i], M.buckets[i]);
	evbuffer_add_printf(b, "switchd_switch_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "switchd_switch_duration_seconds_sum %.6f\nswitchd_switch_duration_seconds_count %llu\n",
	    M.dur_count, M.dur_sum, M.dur_count);
	family(b, "switchd_last_switch_timestamp_seconds", "gauge",
	    "When the last switch or back completed, Unix time; 0 if never.");
	evbuffer_add_printf(b, "switchd_last_switch_timestamp_seconds %.0f\n", iso_to_epoch(
	    json_string_value(json_object_get(json_object_get(st, "last_switch"), "time"))));
	family(b, "switchd_canary_percent", "gauge", "Share of the live host's traffic sent to the cold pool.");
	evbuffer_add_printf(b, "switchd_canary_percent %lld\n",
	    (long long)json_integer_value(json_object_get(canary, "percent")));
	lock = json_object_get(st, "lock");
	family(b, "switchd_lock_held", "gauge", "1 while the deploy lock is held.");
	evbuffer_add_printf(b, "switchd_lock_held %d\n", json_is_object(lock));
	family(b, "switchd_busy", "gauge", "1 while a mutating command runs.");
	evbuffer_add_printf(b, "switchd_busy %d\n", json_is_object(json_object_get(st, "busy")));
	family(b, "switchd_node_up", "gauge", "1 for each load balancer node that answered.");
	json_array_foreach(json_object_get(st, "nodes"), i, v) {
		evbuffer_add_printf(b, "switchd_node_up{node=\"");
		label(b, json_string_value(json_object_get(v, "socket")));
		evbuffer_add_printf(b, "\"} %d\n", json_is_true(json_object_get(v, "ok")));
	}
	family(b, "switchd_nodes_agree", "gauge",
	    "1 when every node answers and serves the hot pool on the live host name.");
	evbuffer_add_printf(b, "switchd_nodes_agree %d\n", json_is_true(json_object_get(st, "agree")));
	family(b, "switchd_ec2_drift_instances", "gauge", "EC2 instances whose role tag is not their pool's role.");
	evbuffer_add_printf(b, "switchd_ec2_drift_instances %zu\n",
	    json_array_size(json_object_get(json_object_get(st, "ec2"), "drift")));
	family(b, "switchd_pool_requests_total", "counter",
	    "HTTP requests to each pool's backend, summed over every HAProxy node.");
	for (k = 0; k < NPOOLS; k++)
		if ((v = json_object_get(s->counters, pool_name(k))) != NULL)
			evbuffer_add_printf(b, "switchd_pool_requests_total{pool=\"%s\"} %lld\n",
			    pool_name(k), (long long)json_integer_value(json_object_get(v, "requests")));
	family(b, "switchd_pool_responses_5xx_total", "counter",
	    "HTTP 5xx responses of each pool's backend, summed over every HAProxy node.");
	for (k = 0; k < NPOOLS; k++)
		if ((v = json_object_get(s->counters, pool_name(k))) != NULL)
			evbuffer_add_printf(b, "switchd_pool_responses_5xx_total{pool=\"%s\"} %lld\n",
			    pool_name(k), (long long)json_integer_value(json_object_get(v, "5xx")));
}
