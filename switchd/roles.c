/*
 * roles.c — the EC2 role tags that follow the traffic: after every switch
 * and back, role_tag=hot on the new hot pool's instances and role_tag=cold
 * on the cold pool's (Capistrano finds the cold servers by that tag).
 *
 * Traffic flips first; tags follow asynchronously.  An EC2 failure never
 * blocks or undoes a switch: the instances whose tags are not known to be
 * right are recorded as drift in state.json (status shows it), a
 * background retry with backoff repairs it, and `switchctl sync` repairs it
 * on demand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "ec2.h"
#include "lb.h"
#include "log.h"
#include "protocol.h"
#include "roles.h"
#include "state.h"
#include "util.h"

#define RETRY_FIRST	5	/* seconds */
#define RETRY_MAX	300

static struct ec2_ctx	*ctx;
static char		*ctx_region, *ctx_endpoint;
static struct event	*retry_ev;
static int		 retry_delay;
static int		 running;	/* a retag is in flight */
static int		 checking;	/* roles_check()s in flight */
static int		 again;		/* roles changed while it was */
static roles_done_cb	 waiter_cb;	/* told when the "again" retag ends */
static void		*waiter_arg;

struct retag {
	struct daemon	*d;
	char		**ids[NPOOLS];	/* NULL-terminated, per pool */
	size_t		 nids[NPOOLS];
	int		 hot;
	int		 step;		/* 0: hot pool, 1: cold pool */
	roles_done_cb	 cb;
	void		*arg;
};

/* Instance ids of a pool: configured, or discovered (servers named by id). */
static size_t
pool_instances(const struct pool *p, char ***out)
{
	size_t i, n = 0;

	*out = xcalloc(p->nservers + 1, sizeof(char *));
	for (i = 0; i < p->nservers; i++)
		if (p->servers[i].instance != NULL)
			(*out)[n++] = xstrdup(p->servers[i].instance);
	return n;
}

int
roles_enabled(struct daemon *d)
{
	const struct config *conf = d->conf;
	size_t i, j;

	if (conf->ec2_discover)
		return 1;
	for (i = 0; i < NPOOLS; i++)
		for (j = 0; j < conf->pools[i].nservers; j++)
			if (conf->pools[i].servers[j].instance != NULL)
				return 1;
	return 0;
}

struct ec2_ctx *
roles_ec2(struct daemon *d)
{
	const struct config *conf = d->conf;
	const char *ep = conf->ec2_endpoint ? conf->ec2_endpoint : "";

	/* A new region or endpoint takes effect when nothing is in flight. */
	if (ctx != NULL && !running && checking == 0 && (strcmp(ctx_region, conf->ec2_region) != 0 ||
	    strcmp(ctx_endpoint, ep) != 0)) {
		ec2_ctx_free(ctx);
		ctx = NULL;
	}
	if (ctx == NULL) {
		ctx = ec2_ctx_new(conf->ec2_region, conf->ec2_endpoint);
		free(ctx_region);
		free(ctx_endpoint);
		ctx_region = xstrdup(conf->ec2_region);
		ctx_endpoint = xstrdup(ep);
	}
	return ctx;
}

static void
retag_free(struct retag *rt)
{
	size_t i, p;

	for (p = 0; p < NPOOLS; p++) {
		for (i = 0; i < rt->nids[p]; i++)
			free(rt->ids[p][i]);
		free(rt->ids[p]);
	}
	free(rt);
}

/* Record in state.json what is known to be tagged wrong (drift), and why. */
static void
ec2_record(struct daemon *d, json_t *drift, const char *error)
{
	json_t *ec2 = json_object_get(state_doc(d->state), "ec2");
	char when[32];

	iso_time(time(NULL), when, sizeof(when));
	json_object_set_new(ec2, "drift", drift);
	json_object_set_new(ec2, error ? "last_error" : "last_ok", json_string(when));
	if (error != NULL)
		json_object_set_new(ec2, "error", json_string(error));
	else
		json_object_del(ec2, "error");
	state_save(d->state);
}

/* EC2 was read and every tag is right. */
void
roles_mark_synced(struct daemon *d)
{
	ec2_record(d, json_array(), NULL);
}

/* Record what is (not) known to be tagged right after a retag. */
static void
drift_set(struct retag *rt, int from_step, const char *error)
{
	json_t *drift = json_array();
	size_t i;
	int step, pool;

	for (step = from_step; error != NULL && step < NPOOLS; step++) {
		pool = step == 0 ? rt->hot : !rt->hot;
		for (i = 0; i < rt->nids[pool]; i++)
			json_array_append_new(drift, json_pack("{s:s, s:s, s:s, s:s}",
			    "instance", rt->ids[pool][i], "pool", pool_name(pool),
			    "want", pool == rt->hot ? rt->d->conf->ec2_hot : rt->d->conf->ec2_cold,
			    "error", error));
	}
	ec2_record(rt->d, drift, error);
}

static void retag_next(struct retag *);

static void
retry_fire(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd;
	(void)what;
	roles_retag(d, "retrying after an EC2 failure", NULL, NULL);
}

static void
retry_arm(struct daemon *d)
{
	struct timeval tv = { 0, 0 };

	if (retry_ev == NULL)
		retry_ev = evtimer_new(d->base, retry_fire, d);
	retry_delay = retry_delay == 0 ? RETRY_FIRST : retry_delay * 2;
	if (retry_delay > RETRY_MAX)
		retry_delay = RETRY_MAX;
	tv.tv_sec = retry_delay;
	evtimer_add(retry_ev, &tv);
	log_info("ec2: retrying the role tags in %d s", retry_delay);
}

static void
retag_finish(struct retag *rt, const char *code, const char *error)
{
	struct daemon *d = rt->d;
	roles_done_cb cb = rt->cb;
	void *arg = rt->arg;
	char *msg = NULL;

	running = 0;
	if (code != NULL) {
		msg = xasprintf("%s: %s", code, error ? error : "");
		log_warnx("ec2: role tags not written (%s); the switch stands, drift "
		    "recorded", msg);
		drift_set(rt, rt->step, msg);
		if (!again)
			retry_arm(d);
	} else {
		log_info("ec2: %s=%s on the %s pool, %s=%s on the %s pool",
		    d->conf->ec2_role_tag, d->conf->ec2_hot, pool_name(rt->hot),
		    d->conf->ec2_role_tag, d->conf->ec2_cold, pool_name(!rt->hot));
		drift_set(rt, 0, NULL);
		retry_delay = 0;
		if (retry_ev != NULL)
			evtimer_del(retry_ev);
	}
	retag_free(rt);
	if (cb != NULL)
		cb(code, msg, arg);
	free(msg);
	if (again) {
		roles_done_cb wcb = waiter_cb;

		again = 0;
		waiter_cb = NULL;
		roles_retag(d, "the roles changed during the last retag", wcb, waiter_arg);
	}
}

static void
retag_done(const char *code, const char *error, void *arg)
{
	struct retag *rt = arg;

	if (code != NULL) {
		retag_finish(rt, code, error);
		return;
	}
	rt->step++;
	retag_next(rt);
}

static void
retag_next(struct retag *rt)
{
	int pool = rt->step == 0 ? rt->hot : !rt->hot;

	while (rt->step < NPOOLS && rt->nids[pool] == 0) {
		rt->step++;
		pool = !pool;
	}
	if (rt->step >= NPOOLS) {
		retag_finish(rt, NULL, NULL);
		return;
	}
	ec2_create_tags(roles_ec2(rt->d), (const char *const *)rt->ids[pool], rt->nids[pool],
	    rt->d->conf->ec2_role_tag, pool == rt->hot ? rt->d->conf->ec2_hot : rt->d->conf->ec2_cold,
	    retag_done, rt);
}

void
roles_retag(struct daemon *d, const char *why, roles_done_cb cb, void *arg)
{
	struct retag *rt;
	int p;

	if (!roles_enabled(d)) {
		if (cb != NULL)
			cb(NULL, NULL, arg);
		return;
	}
	if (running) {
		/* The one in flight may tag the old roles; go again after it,
		 * and tell the caller when that one ends (one waiter: sync is
		 * the only caller that waits, and it runs alone). */
		again = 1;
		if (cb != NULL && waiter_cb == NULL) {
			waiter_cb = cb;
			waiter_arg = arg;
		} else if (cb != NULL)
			cb(E_BUSY, "a role retag is already waiting", arg);
		return;
	}
	rt = xcalloc(1, sizeof(*rt));
	rt->d = d;
	rt->hot = state_hot(d->state);
	rt->cb = cb;
	rt->arg = arg;
	for (p = 0; p < NPOOLS; p++)
		rt->nids[p] = pool_instances(&d->conf->pools[p], &rt->ids[p]);
	running = 1;
	log_debug("ec2: retagging (%s)", why);
	retag_next(rt);
}

/* ---------------------------------------------------------------- checking */

struct check {
	struct daemon	*d;
	roles_check_cb	 cb;
	void		*arg;
	int		 hot;
};

/* What EC2 says each instance's role tag is, against what it should be. */
static void
check_described(json_t *instances, const char *code, const char *error, void *arg)
{
	struct check *ck = arg;
	const struct config *conf = ck->d->conf;
	json_t *drift = json_array();
	size_t p, i, j;

	checking--;
	if (code != NULL) {
		ck->cb(NULL, code, error, ck->arg);
		json_decref(drift);
		free(ck);
		return;
	}
	for (p = 0; p < NPOOLS; p++) {
		const struct pool *pool = &conf->pools[p];
		const char *want = (int)p == ck->hot ? conf->ec2_hot : conf->ec2_cold;

		for (i = 0; i < pool->nservers; i++) {
			const char *id = pool->servers[i].instance, *have = NULL;
			int found = 0;

			if (id == NULL)
				continue;
			for (j = 0; j < json_array_size(instances); j++) {
				json_t *in = json_array_get(instances, j);

				if (strcmp(json_string_value(json_object_get(in, "id")), id) == 0) {
					found = 1;
					have = json_string_value(json_object_get(json_object_get(in,
					    "tags"), conf->ec2_role_tag));
				}
			}
			if (!found || have == NULL || strcmp(have, want) != 0)
				json_array_append_new(drift, json_pack("{s:s, s:s, s:s, s:s?}",
				    "instance", id, "pool", pool_name((int)p), "want", want,
				    "have", found ? have : "(no such running instance)"));
		}
	}
	ck->cb(drift, NULL, NULL, ck->arg);
	json_decref(drift);
	free(ck);
}

void
roles_check(struct daemon *d, roles_check_cb cb, void *arg)
{
	struct check *ck = xcalloc(1, sizeof(*ck));
	json_t *filters = json_object(), *ids = json_array();
	size_t p, i;

	ck->d = d;
	ck->cb = cb;
	ck->arg = arg;
	ck->hot = state_hot(d->state);
	for (p = 0; p < NPOOLS; p++)
		for (i = 0; i < d->conf->pools[p].nservers; i++)
			if (d->conf->pools[p].servers[i].instance != NULL)
				json_array_append_new(ids,
				    json_string(d->conf->pools[p].servers[i].instance));
	if (json_array_size(ids) == 0) {
		/* Nothing to look at (discovery found no instance): in sync. */
		json_t *none = json_array();

		json_decref(ids);
		json_decref(filters);
		cb(none, NULL, NULL, arg);
		json_decref(none);
		free(ck);
		return;
	}
	json_object_set_new(filters, "instance-id", ids);
	checking++;
	ec2_describe(roles_ec2(d), filters, check_described, ck);
	json_decref(filters);
}

void
roles_shutdown(void)
{
	if (retry_ev != NULL) {
		event_free(retry_ev);
		retry_ev = NULL;
	}
	if (ctx != NULL)
		ec2_ctx_free(ctx);
	ctx = NULL;
	free(ctx_region);
	free(ctx_endpoint);
	ctx_region = ctx_endpoint = NULL;
}
