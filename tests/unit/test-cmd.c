/*
 * test-cmd.c — request dispatch through the real cmd.c, with the test as
 * the client side (its own struct client_ops): protocol and argument
 * checks, permission, the busy slot (a command's or switchd's own repair),
 * the deploy lock, and a whole mutating command ("lock") that takes the
 * slot and gives it back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "protocol.h"
#include "state.h"
#include "unit.h"

/* The test's client: every reply, and whether the command is over. */
struct client {
	json_t		*replies;
	struct cmdq_item *item;
	int		 done;
};

static void
t_send(struct client *c, json_t *msg)
{
	json_array_append_new(c->replies, msg);
}

static void
t_attach(struct client *c, struct cmdq_item *item)
{
	c->item = item;
}

static void
t_done(struct client *c)
{
	c->item = NULL;
	c->done++;
}

static const struct client_ops test_clients = { t_send, t_attach, t_done };

static char		 dir[64];
static struct config	 conf;
static struct daemon	 d;

static void
world_up(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-cmd.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	memset(&conf, 0, sizeof(conf));
	conf.admin_group = (char *)"deployers";
	conf.live_host = (char *)"app.example.com";
	memset(&d, 0, sizeof(d));
	d.base = event_base_new();
	d.conf = &conf;
	d.clients = &test_clients;
	d.state = state_open(dir);
	daemon_wire(&d);
}

static void
world_down(void)
{
	char path[128];

	state_close(d.state);
	event_base_free(d.base);
	snprintf(path, sizeof(path), "%s/state.json", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/history.jsonl", dir);
	unlink(path);
	rmdir(dir);
}

/* One request line; the final reply (borrowed from c->replies). */
static json_t *
request(struct client *c, const char *line, uid_t uid, int admin, const char *user)
{
	json_t *req = json_loads(line, JSON_DECODE_ANY, NULL);

	c->replies = json_array();
	c->item = NULL;
	c->done = 0;
	cmd_dispatch(&d, c, uid, admin, user, req);
	json_decref(req);
	return json_array_get(c->replies, json_array_size(c->replies) - 1);
}

static const char *
code_of(json_t *r)
{
	return json_string_value(json_object_get(r, P_CODE));
}

static const char *
error_of(json_t *r)
{
	return json_string_value(json_object_get(r, P_ERROR));
}

static void
test_usage(void)
{
	struct client c;
	json_t *r;

	world_up();
	r = request(&c, "[1]", 0, 1, "root");
	CHECK_STR(code_of(r), E_USAGE);
	CHECK_STR(error_of(r), "bad request: not a JSON object");
	CHECK_INT(c.done, 1);
	json_decref(c.replies);

	r = request(&c, "{\"v\": 99, \"cmd\": \"status\"}", 0, 1, "root");
	CHECK_STR(code_of(r), E_USAGE);
	json_decref(c.replies);

	r = request(&c, "{\"v\": 1, \"cmd\": \"swich\"}", 0, 1, "root");
	CHECK(json_is_false(json_object_get(r, P_OK)));
	CHECK_STR(code_of(r), E_USAGE);
	CHECK_STR(error_of(r), "unknown command \"swich\" (did you mean \"switch\"?)");
	json_decref(c.replies);

	r = request(&c, "{\"v\": 1, \"cmd\": \"history\", \"args\": {\"colour\": true}}",
	    0, 1, "root");
	CHECK_STR(code_of(r), E_USAGE);
	CHECK_STR(error_of(r), "history: unknown argument \"colour\" (usage: history [-n N])");
	json_decref(c.replies);

	r = request(&c, "{\"v\": 1, \"cmd\": \"history\", \"args\": {\"n\": \"ten\"}}",
	    0, 1, "root");
	CHECK_STR(code_of(r), E_USAGE);
	CHECK_STR(error_of(r), "history: argument \"n\" must be an integer");
	json_decref(c.replies);

	/* Nothing ran, nothing holds the slot. */
	CHECK_INT(busy_held(&d), 0);
	r = history_read(d.state, 0);
	CHECK_INT(json_array_size(r), 0);
	json_decref(r);
	world_down();
}

static void
test_permission(void)
{
	struct client c;
	json_t *r;

	world_up();
	r = request(&c, "{\"v\": 1, \"cmd\": \"switch\"}", 1001, 0, "eve");
	CHECK_STR(code_of(r), E_PERM);
	CHECK_STR(error_of(r), "permission denied: eve (uid 1001) may not run \"switch\"; "
	    "it needs root, switchd's own user or a member of group deployers");
	CHECK_INT(c.done, 1);
	CHECK_INT(busy_held(&d), 0);
	json_decref(c.replies);

	/* A read-only command is anyone's. */
	r = request(&c, "{\"v\": 1, \"cmd\": \"history\"}", 1001, 0, "eve");
	CHECK(json_is_true(json_object_get(r, P_OK)));
	CHECK(json_is_array(json_object_get(r, "entries")));
	json_decref(c.replies);
	world_down();
}

static void
test_busy(void)
{
	struct client c;
	json_t *r, *b;
	char *text;

	world_up();
	CHECK(json_is_null(b = cmd_busy_json(&d)));
	json_decref(b);

	/* A command in flight holds the slot: a second mutating one is busy. */
	CHECK_INT(busy_take(&d, "cold-deploy", "alice", 1000, NULL), 1);
	CHECK_INT(busy_take(&d, "repair", "switchd", 0, NULL), 0);
	r = request(&c, "{\"v\": 1, \"cmd\": \"switch\"}", 0, 1, "root");
	CHECK_STR(code_of(r), E_BUSY);
	CHECK(strncmp(error_of(r), "busy: alice (uid 1000) is running \"cold-deploy\" since ",
	    54) == 0);
	json_decref(c.replies);

	/* The status field, as on the wire: the same four keys as always. */
	b = cmd_busy_json(&d);
	json_object_del(b, "since");
	text = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK_STR(text, "{\"command\":\"cold-deploy\",\"uid\":1000,\"user\":\"alice\"}");
	free(text);
	json_decref(b);
	b = cmd_busy_json(&d);
	CHECK(json_is_string(json_object_get(b, "since")));
	json_decref(b);

	/* A read-only command is not held up. */
	r = request(&c, "{\"v\": 1, \"cmd\": \"history\"}", 0, 1, "root");
	CHECK(json_is_true(json_object_get(r, P_OK)));
	json_decref(c.replies);
	busy_release(&d);

	/* switchd's own repair holds it the same way, by its honest name. */
	CHECK_INT(busy_take(&d, "repair", "switchd", 0, NULL), 1);
	r = request(&c, "{\"v\": 1, \"cmd\": \"lock\"}", 0, 1, "root");
	CHECK_STR(code_of(r), E_BUSY);
	CHECK(strstr(error_of(r), "switchd (uid 0) is running \"repair\"") != NULL);
	json_decref(c.replies);
	busy_release(&d);
	CHECK_INT(busy_held(&d), 0);

	/* Shutting down: no new mutating command. */
	d.shutting_down = 1;
	r = request(&c, "{\"v\": 1, \"cmd\": \"lock\"}", 0, 1, "root");
	CHECK_STR(code_of(r), E_SHUTDOWN);
	json_decref(c.replies);
	d.shutting_down = 0;
	world_down();
}

static void
test_lock_locked(void)
{
	struct client c;
	json_t *r, *h;

	world_up();
	/* "lock" runs all the way: it holds the slot while it runs, then frees it. */
	r = request(&c, "{\"v\": 1, \"cmd\": \"lock\", \"args\": {\"message\": \"freeze\"}}",
	    1000, 1, "alice");
	CHECK(json_is_true(json_object_get(r, P_OK)));
	CHECK_STR(json_string_value(json_object_get(json_object_get(r, "lock"), "user")), "alice");
	CHECK_INT(c.done, 1);
	CHECK(c.item == NULL);
	CHECK_INT(busy_held(&d), 0);
	json_decref(c.replies);
	h = history_read(d.state, 0);
	CHECK_INT(json_array_size(h), 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(h, 0), "command")), "lock");
	CHECK_STR(json_string_value(json_object_get(json_array_get(h, 0), "message")), "freeze");
	json_decref(h);

	/* A lockable command is refused while it is held. */
	r = request(&c, "{\"v\": 1, \"cmd\": \"switch\"}", 0, 1, "root");
	CHECK_STR(code_of(r), E_LOCKED);
	CHECK(strncmp(error_of(r), "locked by alice for ", 20) == 0);
	CHECK(strstr(error_of(r), ": \"freeze\"") != NULL);
	CHECK_STR(json_string_value(json_object_get(json_object_get(r, "lock"), "message")),
	    "freeze");
	CHECK_INT(busy_held(&d), 0);
	json_decref(c.replies);

	/* "unlock" is not lockable; another user's lock needs --force. */
	r = request(&c, "{\"v\": 1, \"cmd\": \"unlock\"}", 1001, 1, "bob");
	CHECK_STR(code_of(r), E_REFUSED);
	json_decref(c.replies);
	r = request(&c, "{\"v\": 1, \"cmd\": \"unlock\"}", 1000, 1, "alice");
	CHECK(json_is_true(json_object_get(r, P_OK)));
	json_decref(c.replies);
	CHECK(state_lock(d.state) == NULL);
	world_down();
}

int
main(void)
{
	RUN(test_usage);
	RUN(test_permission);
	RUN(test_busy);
	RUN(test_lock_locked);
	return unit_summary();
}
