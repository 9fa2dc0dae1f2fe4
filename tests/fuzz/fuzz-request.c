/*
 * fuzz-request.c — libFuzzer harness for switchd's request path: the
 * control socket's framing (newline-delimited lines, 64 KiB cap, blank lines
 * skipped, not-JSON answered), jansson's parse, and cmd_dispatch() with
 * every command behind it.
 *
 * One input is what one client sends on one connection.  Like control.c,
 * the next line is read only when the reply to the previous one is out, so
 * each command runs to its end on the event loop first.  Lines at the start
 * of an input that begin with '#' set up the world instead (the fuzzer
 * finds them through the dictionary):
 *
 *   #nobody        the peer is uid 65534, not an admin (default: root)
 *   #down          both HAProxy nodes close without a word
 *   #fail WORD     node 2 answers "Unknown command." to commands with WORD
 *                  ("commit", "add map", "show stat"...): rollbacks
 *   #smoke-fail    the backends answer 500: smoke checks fail
 *
 * The world lives in this process, on switchd's event loop: two fake
 * HAProxy nodes on unix sockets (show map/backend/stat, prepare/add/commit
 * map, with versions) and an HTTP backend (libevent's evhttp) on
 * 127.0.0.1 for the smoke checks.
 *
 * The harness builds the daemon's context itself and is the client side
 * of the commands (its own struct client_ops), and checks the protocol on every reply: each
 * request gets exactly one final object with a boolean "ok" (and a "code"
 * and an "error" when it is false), after zero or more "event" objects,
 * within a bounded time, and the busy slot is free again afterwards.  A
 * breach aborts, so libFuzzer reports it with the input.  The state
 * directory (in /dev/shm) and the fake nodes are reset before every input.
 *
 * Environment: FUZZ_LOG=1 shows switchd's log on stderr (default: off);
 * FUZZ_TMPDIR is where its files go (default /dev/shm: a crash leaves them
 * behind, so the scripts point it at a directory they remove).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "ec2.h"
#include "http.h"
#include "lb.h"
#include "log.h"
#include "protocol.h"
#include "state.h"
#include "switch.h"
#include "util.h"

#define LIVE_HOST	"app.example.com"
#define COLD_HOST	"cold.app.example.com"

/* The daemon's context, as daemon_start() would build it. */
static struct daemon fz;

/* ------------------------------------- the client side (control.c's part) */

struct client {
	struct cmdq_item *item;		/* in flight; (void *)1 while dispatching */
	int		 finals;	/* final replies to the current request */
	int		 events;
	int		 closing;
};

static const char *current_line;	/* for breach reports */

static void __attribute__((noreturn))
protocol_breach(const char *what, const char *text)
{
	fprintf(stderr, "fuzz-request: PROTOCOL BREACH: %s%s%.2000s\n", what,
	    text ? ": " : "", text ? text : "");
	if (current_line != NULL)
		fprintf(stderr, "fuzz-request: request line: %.2000s\n", current_line);
	abort();
}

static void
client_send(struct client *c, json_t *msg)
{
	char *text;
	json_t *ok;

	if (msg == NULL)
		protocol_breach("client_send(NULL): a reply could not be built", NULL);
	text = json_dumps(msg, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		protocol_breach("a reply that json_dumps cannot encode", NULL);
	if (!json_is_object(msg))
		protocol_breach("a reply that is not a JSON object", text);
	ok = json_object_get(msg, P_OK);
	if (ok != NULL) {
		if (!json_is_boolean(ok))
			protocol_breach("\"ok\" is not a boolean", text);
		if (json_is_false(ok) &&
		    (!json_is_string(json_object_get(msg, P_CODE)) ||
		    !json_is_string(json_object_get(msg, P_ERROR))))
			protocol_breach("a failure without a code and an error text", text);
		if (c->finals > 0)
			protocol_breach("a second final reply to one request", text);
		c->finals++;
	} else if (json_is_string(json_object_get(msg, P_EVENT))) {
		if (c->finals > 0)
			protocol_breach("a progress event after the final reply", text);
		c->events++;
	} else
		protocol_breach("a reply with neither \"ok\" nor \"event\"", text);
	free(text);
	json_decref(msg);
}

static void
client_attach(struct client *c, struct cmdq_item *item)
{
	c->item = item;
}

static void
client_command_done(struct client *c)
{
	c->item = NULL;
}

static const struct client_ops fuzz_clients = {
	client_send, client_attach, client_command_done
};

/* ---------------------------------------------------- the fake HAProxy */

#define FAKE_NODES	2
#define FAKE_VERS	16

struct fake_node {
	char		 path[300];
	char		 live[128], cold[128];
	unsigned long	 next_ver;
	struct {
		unsigned long	 ver;
		char		 live[128], cold[128];
	} pending[FAKE_VERS];
	struct evconnlistener *l;
};

static struct fake_node fake[FAKE_NODES];
static int	 world_down;		/* "#down" */
static char	 world_fail[64];	/* "#fail WORD" (node 2) */
static int	 world_smoke_fail;	/* "#smoke-fail" */

static void
fake_reset(void)
{
	int i;

	for (i = 0; i < FAKE_NODES; i++) {
		snprintf(fake[i].live, sizeof(fake[i].live), "be_blue");
		snprintf(fake[i].cold, sizeof(fake[i].cold), "be_green");
		fake[i].next_ver = 1;
		memset(fake[i].pending, 0, sizeof(fake[i].pending));
	}
	world_down = world_smoke_fail = 0;
	world_fail[0] = '\0';
}

/* One HAProxy CLI command, answered as HAProxy 2.6 does. */
static void
fake_answer(struct fake_node *n, int idx, const char *cmd, struct evbuffer *out)
{
	char key[256], val[128];
	unsigned long ver;
	int i;

	if (idx == 1 && world_fail[0] && strstr(cmd, world_fail) != NULL) {
		evbuffer_add_printf(out, "Unknown command.\n\n");
		return;
	}
	if (strncmp(cmd, "show map", 8) == 0) {
		evbuffer_add_printf(out, "0x55d0c1d0 %s %s\n0x55d0c1e0 %s %s\n\n",
		    LIVE_HOST, n->live, COLD_HOST, n->cold);
	} else if (strcmp(cmd, "show backend") == 0) {
		evbuffer_add_printf(out, "# name\nbe_blue\nbe_green\nstats\n\n");
	} else if (strncmp(cmd, "show stat", 9) == 0) {
		evbuffer_add_printf(out,
		    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,"
		    "ereq,econ,eresp,wretr,wredis,status,weight,act,bck,addr,\n"
		    "be_blue,b1,0,0,0,1,,9,0,0,,0,,0,0,0,0,UP,1,1,0,127.0.0.1:1,\n"
		    "be_blue,b2,0,0,0,1,,9,0,0,,0,,0,0,0,0,UP,1,1,0,127.0.0.1:2,\n"
		    "be_blue,BACKEND,0,0,0,1,,9,0,0,0,0,,0,0,0,0,UP,2,2,0,,\n"
		    "be_green,g1,0,0,0,1,,9,0,0,,0,,0,0,0,0,UP,1,1,0,127.0.0.1:3,\n"
		    "be_green,BACKEND,0,0,0,1,,9,0,0,0,0,,0,0,0,0,UP,1,1,0,,\n\n");
	} else if (strncmp(cmd, "prepare map", 11) == 0) {
		ver = n->next_ver++;
		i = (int)(ver % FAKE_VERS);
		n->pending[i].ver = ver;
		/* A new version starts empty. */
		n->pending[i].live[0] = n->pending[i].cold[0] = '\0';
		evbuffer_add_printf(out, "New version created: %lu\n\n", ver);
	} else if (sscanf(cmd, "add map @%lu %*s %255s %127s", &ver, key, val) == 3) {
		i = (int)(ver % FAKE_VERS);
		if (n->pending[i].ver != ver) {
			evbuffer_add_printf(out, "Unknown map version\n\n");
			return;
		}
		if (strcmp(key, LIVE_HOST) == 0)
			snprintf(n->pending[i].live, sizeof(n->pending[i].live), "%s", val);
		else if (strcmp(key, COLD_HOST) == 0)
			snprintf(n->pending[i].cold, sizeof(n->pending[i].cold), "%s", val);
		evbuffer_add_printf(out, "\n");
	} else if (sscanf(cmd, "commit map @%lu", &ver) == 1) {
		i = (int)(ver % FAKE_VERS);
		if (n->pending[i].ver != ver) {
			evbuffer_add_printf(out, "Version number out of range.\n\n");
			return;
		}
		/* The new version replaces the whole map: missing keys vanish. */
		snprintf(n->live, sizeof(n->live), "%s", n->pending[i].live);
		snprintf(n->cold, sizeof(n->cold), "%s", n->pending[i].cold);
		n->pending[i].ver = 0;
		evbuffer_add_printf(out, "\n");
	} else
		evbuffer_add_printf(out, "Unknown command. Please enter one of the following "
		    "commands only :\n  help : this message\n\n");
}

static void
fake_written(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void
fake_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void
fake_read(struct bufferevent *bev, void *arg)
{
	struct fake_node *n = arg;
	char *line;
	size_t len;

	if ((line = evbuffer_readln(bufferevent_get_input(bev), &len, EVBUFFER_EOL_LF)) == NULL)
		return;
	bufferevent_disable(bev, EV_READ);
	if (world_down) {
		free(line);
		bufferevent_free(bev);
		return;
	}
	fake_answer(n, (int)(n - fake), line, bufferevent_get_output(bev));
	free(line);
	bufferevent_setcb(bev, NULL, fake_written, fake_event, n);
	bufferevent_enable(bev, EV_WRITE);
}

static void
fake_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct bufferevent *bev;

	(void)l;
	(void)sa;
	(void)salen;
	bev = bufferevent_socket_new(fz.base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, fake_read, NULL, fake_event, arg);
	bufferevent_enable(bev, EV_READ);
}

static void
fake_listen(struct fake_node *n)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", n->path);
	n->l = evconnlistener_new_bind(fz.base, fake_accept, n,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64,
	    (struct sockaddr *)&sun, sizeof(sun));
	if (n->l == NULL) {
		fprintf(stderr, "fuzz-request: cannot listen on %s\n", n->path);
		exit(1);
	}
}

/* ----------------------------------------------- the fake HTTP backend */

static struct evhttp *backend;

static void
backend_request(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	(void)arg;
	evbuffer_add_printf(b, "Welcome to %s\n", world_smoke_fail ? "an error" : "the pool");
	evhttp_send_reply(req, world_smoke_fail ? 500 : 200, "OK", b);
	evbuffer_free(b);
}

static int
backend_listen(void)
{
	struct evhttp_bound_socket *h;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	backend = evhttp_new(fz.base);
	evhttp_set_gencb(backend, backend_request, NULL);
	h = evhttp_bind_socket_with_handle(backend, "127.0.0.1", 0);
	if (h == NULL || getsockname(evhttp_bound_socket_get_fd(h),
	    (struct sockaddr *)&sin, &len) == -1) {
		fprintf(stderr, "fuzz-request: cannot start the HTTP backend\n");
		exit(1);
	}
	return ntohs(sin.sin_port);
}

/* ------------------------------------------------------------- set-up */

static char	 fuzz_dir[256];
static char	 state_dir[300];
static char	 map_path[300];

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		fprintf(stderr, "fuzz-request: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void
rm_dir_files(const char *dir)
{
	DIR *d;
	struct dirent *de;
	char p[600];

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "state") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
}

static void
cleanup_dir(void)
{
	rm_dir_files(state_dir);
	rmdir(state_dir);
	rm_dir_files(fuzz_dir);
	rmdir(fuzz_dir);
}

/*
 * Run the loop without blocking until done() says so or ms pass; 1 if
 * done.  Sleeps a little between turns after the first few, so that
 * timers and the other side of a socket get their turn.
 */
static int
run_loop(int (*done)(void *), void *arg, int ms)
{
	struct timespec t0, t;
	long el;
	int turns = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (done(arg))
			return 1;
		event_base_loop(fz.base, EVLOOP_NONBLOCK);
		if (++turns > 50)
			usleep(100);
		clock_gettime(CLOCK_MONOTONIC, &t);
		el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (el > ms)
			return done(arg);
	}
}

static int
item_done(void *arg)
{
	return ((struct client *)arg)->item == NULL;
}

static int
not_busy(void *arg)
{
	(void)arg;
	return !busy_held(&fz);
}

/* Nothing active for a few turns in a row: what was in flight has landed. */
static int
quiet(void *arg)
{
	int *calm = arg;

	if (event_base_get_num_events(fz.base, EVENT_BASE_COUNT_ACTIVE) == 0)
		(*calm)++;
	else
		*calm = 0;
	return *calm >= 20;
}

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char conf_path[600], *conf_text;
	const char *tmp = getenv("FUZZ_TMPDIR");
	json_t *errors = NULL;
	int i, port;

	(void)argc;
	(void)argv;
	/* tmpfs: the state files are fsync'd at every change. */
	if (tmp == NULL)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/switchd-fuzz.XXXXXX", tmp);
	if (mkdtemp(fuzz_dir) == NULL) {
		fprintf(stderr, "fuzz-request: mkdtemp: %s\n", strerror(errno));
		exit(1);
	}
	atexit(cleanup_dir);
	snprintf(state_dir, sizeof(state_dir), "%s/state", fuzz_dir);
	snprintf(conf_path, sizeof(conf_path), "%s/switchd.conf", fuzz_dir);
	snprintf(map_path, sizeof(map_path), "%s/switchd.map", fuzz_dir);
	for (i = 0; i < FAKE_NODES; i++)
		snprintf(fake[i].path, sizeof(fake[i].path), "%s/h%d.sock", fuzz_dir, i + 1);
	write_file(map_path, LIVE_HOST " be_blue\n" COLD_HOST " be_green\n");

	signal(SIGPIPE, SIG_IGN);
	log_init(getenv("FUZZ_LOG") == NULL ? 0 : 1, getenv("FUZZ_LOG") != NULL);
	if ((fz.base = event_base_new()) == NULL) {
		fprintf(stderr, "fuzz-request: event_base_new failed\n");
		exit(1);
	}
	for (i = 0; i < FAKE_NODES; i++)
		fake_listen(&fake[i]);
	port = backend_listen();
	fake_reset();

	conf_text = xasprintf(
	    "control = { socket = \"%s/switchd.sock\"; mode = 0660; };\n"
	    "state_dir = \"%s\";\n"
	    "hosts = { live = \"" LIVE_HOST "\"; cold = \"" COLD_HOST "\"; };\n"
	    "pools = {\n"
	    "  blue = { backend = \"be_blue\"; servers = (\n"
	    "    { name = \"b1\"; address = \"127.0.0.1:%d\"; },\n"
	    "    { name = \"b2\"; address = \"127.0.0.1:%d\"; } ); };\n"
	    "  green = { backend = \"be_green\"; servers = (\n"
	    "    { name = \"g1\"; address = \"127.0.0.1:%d\"; } ); };\n"
	    "};\n"
	    "haproxy = { sockets = ( \"%s\", \"unix@%s\" );\n"
	    "  map = \"%s\"; min_up = 1; timeout_ms = 1000; };\n"
	    "smoke = { url = \"http://127.0.0.1:%d\"; timeout_ms = 1000; per_server = true;\n"
	    "  checks = ( { name = \"home\"; path = \"/\"; status = 200; body = \"Welcome\"; },\n"
	    "             { name = \"health\"; path = \"/health\"; status = 200; max_ms = 900; } ); };\n",
	    fuzz_dir, state_dir, port, port, port, fake[0].path, fake[1].path, map_path, port);
	write_file(conf_path, conf_text);
	free(conf_text);

	if ((fz.conf = config_load(conf_path, lb_drivers, &errors)) == NULL) {
		char *e = json_dumps(errors, JSON_INDENT(2));

		fprintf(stderr, "fuzz-request: the harness's config is refused:\n%s\n", e);
		exit(1);
	}
	if ((fz.state = state_open(fz.conf->state_dir)) == NULL) {
		fprintf(stderr, "fuzz-request: cannot use %s\n", fz.conf->state_dir);
		exit(1);
	}
	deploy_recover(&fz);
	if (http_init(fz.base) == -1 || ec2_init(fz.base) == -1) {
		fprintf(stderr, "fuzz-request: http_init/ec2_init failed\n");
		exit(1);
	}
	fz.lb = lb_new(fz.base, fz.conf);
	fz.clients = &fuzz_clients;
	daemon_wire(&fz);
	return 0;
}

/* ------------------------------------------------------------- one input */

/* One request line, as control.c's client_readcb handles it. */
static void
one_line(struct client *c, const char *line, size_t len, uid_t uid, int admin,
    const char *user)
{
	json_error_t jerr;
	json_t *req;

	c->finals = 0;
	c->events = 0;
	current_line = line;
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (req == NULL) {
		client_send(c, json_pack("{s:b, s:s, s:s}", P_OK, 0, P_CODE, E_USAGE,
		    P_ERROR, "bad request: not JSON"));
		current_line = NULL;
		return;
	}
	c->item = (struct cmdq_item *)1;
	cmd_dispatch(&fz, c, uid, admin, user, req);
	if (c->item == (struct cmdq_item *)1)
		c->item = NULL;
	json_decref(req);
	if (!run_loop(item_done, c, 10000))
		protocol_breach("a command still unanswered after 10 s", NULL);
	if (c->finals != 1)
		protocol_breach("a request answered without a final reply", NULL);
	current_line = NULL;
}

/* "#..." set-up lines at the start of an input; returns where requests start. */
static const char *
world_setup(const char *p, const char *end, uid_t *uid, int *admin, const char **user)
{
	const char *nl;
	size_t len;

	while (p < end && *p == '#' && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		len = (size_t)(nl - p);
		if (len == 7 && memcmp(p, "#nobody", 7) == 0) {
			*uid = 65534;
			*admin = 0;
			*user = "nobody";
		} else if (len == 5 && memcmp(p, "#down", 5) == 0)
			world_down = 1;
		else if (len == 11 && memcmp(p, "#smoke-fail", 11) == 0)
			world_smoke_fail = 1;
		else if (len > 6 && len - 6 < sizeof(world_fail) && memcmp(p, "#fail ", 6) == 0) {
			memcpy(world_fail, p + 6, len - 6);
			world_fail[len - 6] = '\0';
		} else
			break;	/* not ours: an ordinary (not JSON) request line */
		p = nl + 1;
	}
	return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client c;
	const char *p = (const char *)data, *end = p + size, *nl;
	uid_t uid = 0;
	int admin = 1, calm = 0;
	const char *user = "root";
	size_t len;
	char *line;

	/* Every input starts from an empty state directory and fresh nodes. */
	state_close(fz.state);
	rm_dir_files(state_dir);
	if ((fz.state = state_open(state_dir)) == NULL)
		protocol_breach("state_open failed", state_dir);
	write_file(map_path, LIVE_HOST " be_blue\n" COLD_HOST " be_green\n");
	fake_reset();

	memset(&c, 0, sizeof(c));
	p = world_setup(p, end, &uid, &admin, &user);
	while (p < end && !c.closing) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			/* No newline yet: control.c waits for more, unless the
			 * buffer already holds a whole line's worth. */
			if ((size_t)(end - p) >= SWITCHD_MAX_LINE)
				c.closing = 1;
			break;
		}
		len = (size_t)(nl - p);
		if (len + 1 > SWITCHD_MAX_LINE) {
			c.closing = 1;	/* "line longer than 65536 bytes", then close */
			break;
		}
		if (len == 0 || (len == 1 && p[0] == '\r')) {
			p = nl + 1;
			continue;
		}
		line = malloc(len + 1);
		if (line == NULL)
			abort();
		memcpy(line, p, len);
		line[len] = '\0';
		one_line(&c, line, len, uid, admin, user);
		free(line);
		p = nl + 1;
	}
	/*
	 * Let what a command left running (a read-back after a failure, a
	 * repair) end, then drop the repair timer: the next input starts
	 * from an idle daemon.  repair_stop() only when no repair is in
	 * flight (one holds the busy slot): it frees the timer a repair
	 * re-arms, as switchd does only after its loop has ended.
	 */
	if (!run_loop(not_busy, NULL, 5000))
		protocol_breach("the busy slot is still held 5 s after the last reply", NULL);
	repair_stop();
	run_loop(quiet, &calm, 2000);
	return 0;
}
