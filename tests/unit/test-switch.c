/*
 * test-switch.c — the switch's state machine (switch.c) driven through a
 * fake load balancer driver whose observe, precheck and apply answer what
 * the test says, on an event loop the test runs: a refused pre-check
 * touches nothing, a failed apply leaves the roles as they were and passes
 * the driver's error code on, a switch that works flips the roles, writes
 * one journal entry and tells its progress.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "lb.h"
#include "protocol.h"
#include "state.h"
#include "switch.h"
#include "unit.h"
#include "util.h"

/* ------------------------------------------------------------ the fake */

static struct {
	int		 serving;	/* the pool every node serves */
	struct state	*state;		/* the daemon's, for the canary split */
	const char	*precheck_code, *precheck_error;
	const char	*apply_code, *apply_error;
	int		 nobserve, nprecheck, napply;
	char		 precheck_backend[64];
	int		 precheck_min_up;
	struct lb_mapping applied;
} fk;

struct answer {
	struct lb	*lb;
	lb_done_cb	 done;
	lb_view_cb	 view;
	void		*arg;
	const char	*code, *error;
};

static size_t
fake_nnodes(const struct config *conf)
{
	(void)conf;
	return 2;
}

static void
fake_fire(evutil_socket_t fd, short what, void *arg)
{
	struct answer *a = arg;
	struct lb_view *v;
	size_t i;

	(void)fd;
	(void)what;
	if (a->view != NULL) {
		v = xcalloc(1, sizeof(*v));
		v->nnodes = 2;
		v->nodes = xcalloc(v->nnodes, sizeof(*v->nodes));
		for (i = 0; i < v->nnodes; i++) {
			v->nodes[i].name = xasprintf("fake%zu", i + 1);
			v->nodes[i].ok = 1;
			v->nodes[i].has_map = 1;
			lb_mapping_for(a->lb->conf, fk.state, fk.serving, &v->nodes[i].map);
		}
		a->view(v, a->arg);
	} else
		a->done(a->code, a->error, a->arg);
	free(a);
}

/* Every answer comes from the loop, never before the call returns. */
static void
fake_later(struct lb *lb, lb_done_cb done, lb_view_cb view, void *arg, const char *code,
    const char *error)
{
	struct answer *a = xcalloc(1, sizeof(*a));
	struct timeval now = { 0, 0 };

	a->lb = lb;
	a->done = done;
	a->view = view;
	a->arg = arg;
	a->code = code;
	a->error = error;
	event_base_once(lb->base, -1, EV_TIMEOUT, fake_fire, a, &now);
}

static void
fake_observe(struct lb *lb, lb_view_cb cb, void *arg)
{
	fk.nobserve++;
	fake_later(lb, NULL, cb, arg, NULL, NULL);
}

static void
fake_precheck(struct lb *lb, const struct lb_mapping *to, const char *backend, int min_up,
    lb_done_cb cb, void *arg)
{
	(void)to;
	fk.nprecheck++;
	snprintf(fk.precheck_backend, sizeof(fk.precheck_backend), "%s", backend);
	fk.precheck_min_up = min_up;
	fake_later(lb, cb, NULL, arg, fk.precheck_code, fk.precheck_error);
}

static void
fake_apply(struct lb *lb, const struct lb_mapping *to, lb_done_cb cb, void *arg)
{
	fk.napply++;
	fk.applied = *to;
	if (fk.apply_code == NULL)
		fk.serving = lb_mapping_hot(lb->conf, to);
	fake_later(lb, cb, NULL, arg, fk.apply_code, fk.apply_error);
}

static const char *
fake_map_file(const struct config *c)
{
	return c->hap_map;
}

static char *
fake_map_text(const struct config *c, const struct lb_mapping *m)
{
	return xasprintf("%s %s\n%s %s\n", c->live_host, m->live, c->cold_host, m->cold);
}

static const char *
fake_no_canary(const struct config *c)
{
	(void)c;
	return "the fake driver has no canary";
}

static const struct lb_driver fake_driver = {
	.name = "fake",
	.product = "fake",
	.error_code = E_HAPROXY,
	.section = "fake",
	.nnodes = fake_nnodes,
	.observe = fake_observe,
	.precheck = fake_precheck,
	.apply = fake_apply,
	.map_file = fake_map_file,
	.map_text = fake_map_text,
	.why_no_canary = fake_no_canary,
};

/* ------------------------------------------------------------ the world */

static char		 dir[64];
static struct config	 conf;
static struct lb	 lb;
static struct daemon	 d;

struct result {
	int		 called, ok;
	char		 code[32], error[256];
	int		 nprogress;
	char		 progress[4][256];
};

static void
on_progress(void *arg, const char *text)
{
	struct result *r = arg;

	if (r->nprogress < 4)
		snprintf(r->progress[r->nprogress], sizeof(r->progress[0]), "%s", text);
	r->nprogress++;
}

static void
on_done(int ok, const char *code, const char *error, void *arg)
{
	struct result *r = arg;

	r->called++;
	r->ok = ok;
	snprintf(r->code, sizeof(r->code), "%s", code ? code : "");
	snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
}

static void
world_up(void)
{
	char path[128];

	memset(&fk, 0, sizeof(fk));
	fk.serving = POOL_B;
	snprintf(dir, sizeof(dir), "/tmp/test-switch.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	memset(&conf, 0, sizeof(conf));
	conf.drv = &fake_driver;
	conf.live_host = (char *)"app.example.com";
	conf.cold_host = (char *)"cold.app.example.com";
	conf.pools[POOL_B].name = "blue";
	conf.pools[POOL_B].backend = (char *)"be_blue";
	conf.pools[POOL_G].name = "green";
	conf.pools[POOL_G].backend = (char *)"be_green";
	conf.min_up = 2;
	snprintf(path, sizeof(path), "%s/map", dir);
	conf.hap_map = xstrdup(path);
	memset(&d, 0, sizeof(d));
	if ((d.base = event_base_new()) == NULL)
		exit(1);
	memset(&lb, 0, sizeof(lb));
	lb.drv = &fake_driver;
	lb.conf = &conf;
	lb.base = d.base;
	lb.refs = 1;	/* the test's: a switch's unref never frees it */
	d.conf = &conf;
	d.lb = &lb;
	d.state = state_open(dir);
	fk.state = d.state;
	daemon_wire(&d);
	state_set_pool(d.state, POOL_G, "v2", PS_VERIFIED, "alice");
	state_save(d.state);
}

static void
world_down(void)
{
	char path[160];

	repair_stop();
	state_close(d.state);
	event_base_free(d.base);
	free(conf.hap_map);
	snprintf(path, sizeof(path), "%s/state.json", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/history.jsonl", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/intent.json", dir);
	unlink(path);
	rmdir(dir);
}

static void
run_switch(int to, struct result *r)
{
	struct op_who who = { .user = "alice", .uid = 1000, .message = "release 2",
	    .progress = on_progress, .arg = r };

	memset(r, 0, sizeof(*r));
	pool_switch(&d, &who, to, "switch", 0, on_done, r);
	CHECK_INT(r->called, 0);	/* the driver answers from the loop */
	event_base_dispatch(d.base);
	CHECK_INT(r->called, 1);
}

/* ---------------------------------------------------------------- tests */

static void
test_precheck_refused(void)
{
	struct result r;
	json_t *h;

	world_up();
	fk.precheck_code = E_REFUSED;
	fk.precheck_error = "be_green: 1 server UP, min_up is 2";
	run_switch(POOL_G, &r);
	CHECK_INT(r.ok, 0);
	CHECK_STR(r.code, E_REFUSED);
	CHECK_STR(r.error, "be_green: 1 server UP, min_up is 2");
	CHECK_INT(fk.nprecheck, 1);
	CHECK_STR(fk.precheck_backend, "be_green");
	CHECK_INT(fk.precheck_min_up, 2);
	CHECK_INT(fk.napply, 0);	/* nothing touched */
	CHECK_INT(state_hot(d.state), POOL_B);
	CHECK(json_is_null(json_object_get(state_doc(d.state), "last_switch")));
	h = history_read(d.state, 0);
	CHECK_INT(json_array_size(h), 0);
	json_decref(h);
	CHECK(intent_read(d.state) == NULL);
	world_down();
}

static void
test_apply_failed(void)
{
	struct result r;
	json_t *h;

	world_up();
	fk.apply_code = E_HAPROXY;
	fk.apply_error = "node 2: commit refused";
	run_switch(POOL_G, &r);
	CHECK_INT(r.ok, 0);
	CHECK_STR(r.code, E_HAPROXY);	/* the driver's code, passed on */
	CHECK_STR(r.error, "node 2: commit refused");
	CHECK_INT(fk.napply, 1);
	CHECK_STR(fk.applied.live, "be_green");
	CHECK_INT(state_hot(d.state), POOL_B);
	CHECK_STR(json_string_value(json_object_get(state_pool(d.state, POOL_B), "state")),
	    PS_EMPTY);
	CHECK(json_is_null(json_object_get(state_doc(d.state), "last_switch")));
	/* It read the nodes back: all still serve blue, so the intent is gone. */
	CHECK_INT(fk.nobserve, 1);
	CHECK(intent_read(d.state) == NULL);
	h = history_read(d.state, 0);
	CHECK_INT(json_array_size(h), 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(h, 0), "result")), "failed");
	CHECK_STR(json_string_value(json_object_get(json_array_get(h, 0), "error")),
	    "node 2: commit refused");
	json_decref(h);
	world_down();
}

static void
test_switch_ok(void)
{
	struct result r;
	json_t *h, *e, *last;

	world_up();
	run_switch(POOL_G, &r);
	CHECK_INT(r.ok, 1);
	CHECK_STR(r.code, "");
	CHECK_INT(fk.napply, 1);
	CHECK_STR(fk.applied.live, "be_green");
	CHECK_STR(fk.applied.cold, "be_blue");
	CHECK_INT(state_hot(d.state), POOL_G);
	/* The pool that served is the proven, verified cold pool now. */
	CHECK_STR(json_string_value(json_object_get(state_pool(d.state, POOL_B), "state")),
	    PS_VERIFIED);
	CHECK_STR(json_string_value(json_object_get(state_pool(d.state, POOL_B), "by")), "alice");
	last = json_object_get(state_doc(d.state), "last_switch");
	CHECK_STR(json_string_value(json_object_get(last, "from")), "blue");
	CHECK_STR(json_string_value(json_object_get(last, "to")), "green");
	CHECK_STR(json_string_value(json_object_get(last, "message")), "release 2");
	CHECK(intent_read(d.state) == NULL);

	h = history_read(d.state, 0);
	CHECK_INT(json_array_size(h), 1);
	e = json_array_get(h, 0);
	CHECK_STR(json_string_value(json_object_get(e, "command")), "switch");
	CHECK_STR(json_string_value(json_object_get(e, "user")), "alice");
	CHECK_INT(json_integer_value(json_object_get(e, "uid")), 1000);
	CHECK_STR(json_string_value(json_object_get(e, "message")), "release 2");
	CHECK_STR(json_string_value(json_object_get(e, "result")), "ok");
	CHECK_STR(json_string_value(json_object_get(json_object_get(e, "before"), "hot")), "blue");
	CHECK_STR(json_string_value(json_object_get(json_object_get(e, "after"), "hot")), "green");
	CHECK_STR(json_string_value(json_object_get(e, "id")),
	    json_string_value(json_object_get(last, "id")));
	CHECK(json_is_integer(json_object_get(e, "took_ms")));
	json_decref(h);

	/* Progress: the pre-checks, then the flip. */
	CHECK_INT(r.nprogress, 2);
	CHECK_STR(r.progress[0], "checking 2 fake nodes: backend be_green, at least 2 "
	    "servers UP");
	CHECK_STR(r.progress[1], "flipping app.example.com to green on 2 fake nodes");

	/* The state file says so after a restart. */
	state_close(d.state);
	d.state = state_open(dir);
	CHECK_INT(state_hot(d.state), POOL_G);
	world_down();
}

/* A switch with no one listening for progress (switchd's own) is quiet. */
static void
test_switch_quiet(void)
{
	struct op_who who;
	struct result r;
	json_t *h;

	world_up();
	memset(&r, 0, sizeof(r));
	who_switchd(&who, "the guard's verdict");
	pool_switch(&d, &who, POOL_G, "back", 0, on_done, &r);
	event_base_dispatch(d.base);
	CHECK_INT(r.called, 1);
	CHECK_INT(r.ok, 1);
	CHECK_INT(state_hot(d.state), POOL_G);
	h = history_read(d.state, 0);
	CHECK_STR(json_string_value(json_object_get(json_array_get(h, 0), "user")), "switchd");
	CHECK_INT(json_integer_value(json_object_get(json_array_get(h, 0), "uid")),
	    (long long)geteuid());
	CHECK_STR(json_string_value(json_object_get(json_array_get(h, 0), "command")), "back");
	json_decref(h);
	world_down();
}

int
main(void)
{
	RUN(test_precheck_refused);
	RUN(test_apply_failed);
	RUN(test_switch_ok);
	RUN(test_switch_quiet);
	return unit_summary();
}
