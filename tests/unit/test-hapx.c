/*
 * test-hapx.c — HAProxy reply parsing: errors in plain text, maps, CSV by
 * header; and the session's framing of pipelined answers, against a peer
 * on a unix socket that this test writes exactly the bytes it wants to
 * (HAProxy itself cannot be made to split an answer where a test says).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "hapx.h"
#include "lb.h"
#include "unit.h"

static void
test_reply_errors(void)
{
	char *e;

	CHECK(hapx_reply_error("add map @1 /m k v", "\n") == NULL);
	CHECK(hapx_reply_error("commit map @1 /m", "") == NULL);
	e = hapx_reply_error("add map @1 /m k v", "Unknown map identifier. Please use #<id> or <file>.\n\n");
	CHECK_STR(e, "Unknown map identifier. Please use #<id> or <file>.");
	free(e);
	e = hapx_reply_error("commit map @7 /m", "Version number out of range.\n");
	CHECK_STR(e, "Version number out of range.");
	free(e);
	e = hapx_reply_error("show map /nope", "Unknown map identifier. Please use #<id> or <file>.\n");
	CHECK(e != NULL);
	free(e);
	CHECK(hapx_reply_error("show map /m", "0x1 a.example.com be_blue\n\n") == NULL);
	e = hapx_reply_error("del map /m k", "entry not found.\n");
	CHECK_STR(e, "entry not found.");
	free(e);
	e = hapx_reply_error("show servers state be_x", "Can't find backend.\n");
	CHECK(e != NULL);
	free(e);
	CHECK(hapx_reply_error("add server be/i-1 127.0.0.1:80", "New server registered.\n\n") == NULL);
	CHECK(hapx_reply_error("del server be/i-1", "Server deleted.\n") == NULL);
	e = hapx_reply_error("del server be/i-1", "Server still has connections attached to it, cannot remove it.\n");
	CHECK(e != NULL);
	free(e);
	e = hapx_reply_error("disable server be/x", "No such server.\n");
	CHECK_STR(e, "No such server.");
	free(e);
}

static void
test_version(void)
{
	unsigned long v = 0;

	CHECK_INT(hapx_parse_version("New version created: 12\n\n", &v), 0);
	CHECK_INT(v, 12);
	CHECK_INT(hapx_parse_version("Unknown map identifier.\n", &v), -1);
	CHECK_INT(hapx_parse_version(NULL, &v), -1);
}

static void
test_map(void)
{
	struct lb_mapping m;

	CHECK_INT(hapx_parse_map("0x55 app.example.com be_green\n0x56 cold.example.com be_blue\n\n",
	    "app.example.com", "cold.example.com", &m), 2);
	CHECK_STR(m.live, "be_green");
	CHECK_STR(m.cold, "be_blue");
	CHECK_INT(hapx_parse_map("0x55 APP.example.com be_green\n", "app.example.com",
	    "cold.example.com", &m), 1);
	CHECK_STR(m.cold, "");
	CHECK_INT(hapx_parse_map("0x1 app.example.com a\n0x2 app.example.com b\n",
	    "app.example.com", "cold.example.com", &m), -1);
	CHECK_INT(hapx_parse_map("", "a", "b", &m), 0);
}

static void
test_backend(void)
{
	const char *r = "# name\nbe_blue\nbe_green\nMASTER\n\n";

	CHECK(hapx_has_backend(r, "be_blue"));
	CHECK(hapx_has_backend(r, "be_green"));
	CHECK(!hapx_has_backend(r, "be_gree"));
	CHECK(!hapx_has_backend(r, "# name"));
}

static void
test_stat(void)
{
	/* Columns in an order no HAProxy uses: found by name, not position. */
	const char *r = "# svname,pxname,addr,foo,status,\n"
	    "b1,be_blue,127.0.0.1:1,x,UP,\n"
	    "b2,be_blue,127.0.0.1:2,x,DOWN 1/2,\n"
	    "BACKEND,be_blue,,x,UP,\n"
	    "g1,be_green,127.0.0.1:3,x,no check,\n"
	    "g2,be_green,127.0.0.1:4,x,MAINT,\n\n";
	json_t *s = hapx_parse_stat(r), *blue, *green;

	CHECK(s != NULL);
	blue = json_object_get(s, "be_blue");
	green = json_object_get(s, "be_green");
	CHECK_INT(json_array_size(blue), 2);
	CHECK_INT(json_array_size(green), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(blue, 1), "status")), "DOWN 1/2");
	CHECK_STR(json_string_value(json_object_get(json_array_get(green, 0), "address")), "127.0.0.1:3");
	json_decref(s);
	CHECK(hapx_parse_stat("Permission denied\n") == NULL);
	CHECK(hapx_status_up("UP"));
	CHECK(hapx_status_up("UP 1/3"));
	CHECK(hapx_status_up("no check"));
	CHECK(!hapx_status_up("DOWN"));
	CHECK(!hapx_status_up("DOWN 1/2"));
	CHECK(!hapx_status_up("MAINT"));
	CHECK(!hapx_status_up("DRAIN"));
}

static void
test_backend_up(void)
{
	/* The BACKEND row's act + bck, found by column name. */
	const char *r = "# pxname,svname,bck,x,act,status,\n"
	    "be_blue,BACKEND,1,x,3,UP,\n"
	    "be_green,g1,0,x,1,UP,\n"
	    "be_green,BACKEND,0,x,0,DOWN,\n\n";

	CHECK_INT(hapx_backend_up(r, "be_blue"), 4);
	CHECK_INT(hapx_backend_up(r, "be_green"), 0);
	CHECK_INT(hapx_backend_up(r, "be_other"), -1);
	CHECK_INT(hapx_backend_up("# pxname,svname,status,\nbe_blue,BACKEND,UP,\n", "be_blue"), -1);
	CHECK_INT(hapx_backend_up("Unknown command.\n", "be_blue"), -1);
	CHECK_INT(hapx_backend_up(NULL, "be_blue"), -1);
}

static void
test_backend_counters(void)
{
	/* The guard's figures: every hrsp_* column of the BACKEND row, by name. */
	const char *r = "# pxname,svname,hrsp_1xx,hrsp_2xx,x,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,\n"
	    "be_green,g1,0,50,x,0,0,9,0,\n"
	    "be_green,BACKEND,1,90,x,2,3,4,5,\n"
	    "be_blue,BACKEND,0,7,x,0,0,0,0,\n";
	long long resp = -1, err = -1;

	CHECK_INT(hapx_backend_counters(r, "be_green", &resp, &err), 0);
	CHECK_INT(resp, 105);
	CHECK_INT(err, 4);
	CHECK_INT(hapx_backend_counters(r, "be_blue", &resp, &err), 0);
	CHECK_INT(resp, 7);
	CHECK_INT(err, 0);
	CHECK_INT(hapx_backend_counters(r, "be_other", &resp, &err), -1);
	/* A column missing: no figure rather than a wrong one. */
	CHECK_INT(hapx_backend_counters("# pxname,svname,hrsp_2xx,hrsp_5xx,\n"
	    "be_blue,BACKEND,5,1,\n", "be_blue", &resp, &err), -1);
	CHECK_INT(hapx_backend_counters("Unknown command.\n", "be_blue", &resp, &err), -1);
	CHECK_INT(hapx_backend_counters(NULL, "be_blue", &resp, &err), -1);
}

static void
test_addr(void)
{
	struct sockaddr_storage ss;
	socklen_t len;

	CHECK_INT(hapx_parse_addr("/run/haproxy/admin.sock", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_UNIX);
	CHECK_INT(hapx_parse_addr("unix@/run/x.sock", &ss, &len), 0);
	CHECK_INT(hapx_parse_addr("ipv4@127.0.0.1:9999", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET);
	CHECK_INT(hapx_parse_addr("ipv6@[::1]:9999", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET6);
	CHECK_INT(hapx_parse_addr("ipv4@127.0.0.1", &ss, &len), -1);
	CHECK_INT(hapx_parse_addr("ipv4@nothost:80", &ss, &len), -1);
	CHECK_INT(hapx_parse_addr("127.0.0.1:0", &ss, &len), -1);
}

/* ------------------------------------------------------------ sessions */

struct peer {
	struct event_base *base;
	int		 lfd, fd;
	char		 path[108];
};

#define MAXGOT	8
struct got {
	int		 n;
	char		*reply[MAXGOT];
	char		*err[MAXGOT];
	struct hapx_sess *free_at_first;	/* freed from the first callback */
};

static void
rec(const char *reply, const char *err, void *arg)
{
	struct got *g = arg;

	if (g->n < MAXGOT) {
		g->reply[g->n] = reply ? strdup(reply) : NULL;
		g->err[g->n] = err ? strdup(err) : NULL;
	}
	g->n++;
	if (g->n == 1 && g->free_at_first != NULL)
		hapx_sess_free(g->free_at_first);
}

static void
got_free(struct got *g)
{
	int i;

	for (i = 0; i < g->n && i < MAXGOT; i++) {
		free(g->reply[i]);
		free(g->err[i]);
	}
}

/* Runs the loop until nothing is left to do now (no waiting on time). */
static void
spin(struct peer *p)
{
	int i;

	for (i = 0; i < 20; i++)
		event_base_loop(p->base, EVLOOP_NONBLOCK);
}

static struct hapx_sess *
peer_open(struct peer *p)
{
	struct sockaddr_un sun;
	struct hapx_sess *s;

	memset(p, 0, sizeof(*p));
	snprintf(p->path, sizeof(p->path), "/tmp/test-hapx.%d.sock", (int)getpid());
	unlink(p->path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p->path);
	p->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (p->lfd == -1 || bind(p->lfd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(p->lfd, 1) == -1) {
		perror("peer");
		exit(1);
	}
	p->base = event_base_new();
	s = hapx_sess_new(p->base, p->path, 60000);
	/* A unix socket's connect is done at once: the peer is in the backlog. */
	if ((p->fd = accept(p->lfd, NULL, NULL)) == -1) {
		perror("accept");
		exit(1);
	}
	return s;
}

static void
peer_close(struct peer *p)
{
	if (p->fd != -1)
		close(p->fd);
	close(p->lfd);
	unlink(p->path);
	event_base_free(p->base);
}

/* What the session has written so far. */
static char *
peer_read(struct peer *p)
{
	static char buf[4096];
	struct pollfd pfd = { p->fd, POLLIN, 0 };
	size_t len = 0;
	ssize_t n;

	spin(p);
	while (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN) &&
	    (n = read(p->fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return buf;
}

/* Writes DATA (LEN bytes, or a string if 0) and runs the loop. */
static void
peer_write(struct peer *p, const char *data, size_t len)
{
	if (len == 0)
		len = strlen(data);
	if (write(p->fd, data, len) != (ssize_t)len) {
		perror("write");
		exit(1);
	}
	spin(p);
}

/* Commands "c1" .. "cN", each answered into g. */
static void
send_cmds(struct hapx_sess *s, struct got *g, int n)
{
	char cmd[16];
	int i;

	for (i = 1; i <= n; i++) {
		snprintf(cmd, sizeof(cmd), "c%d", i);
		hapx_sess_cmd(s, cmd, rec, g);
	}
}

static void
finish(struct peer *p, struct hapx_sess *s, struct got *g)
{
	hapx_sess_free(s);
	got_free(g);
	peer_close(p);
}

#define ANSWERS	"\n> " "r1\n\n> " "\n> " "r3 a\nr3 b\n\n> "

static void
check_answers(struct got *g)
{
	CHECK_INT(g->n, 3);
	CHECK_STR(g->reply[0], "r1\n\n");
	CHECK_STR(g->reply[1], "\n");
	CHECK_STR(g->reply[2], "r3 a\nr3 b\n\n");
	CHECK(g->err[0] == NULL && g->err[1] == NULL && g->err[2] == NULL);
}

/* Three commands go out before any answer; three answers in one read. */
static void
test_sess_pipelined(void)
{
	struct peer p;
	struct hapx_sess *s = peer_open(&p);
	struct got g = { 0 };

	send_cmds(s, &g, 3);
	CHECK_STR(peer_read(&p), "prompt\nc1\nc2\nc3\n");
	CHECK_INT(g.n, 0);
	peer_write(&p, ANSWERS, 0);
	check_answers(&g);
	CHECK(hapx_sess_usable(s));
	finish(&p, s, &g);
}

/* The same bytes one at a time: an answer is told only once complete. */
static void
test_sess_bytewise(void)
{
	struct peer p;
	struct hapx_sess *s = peer_open(&p);
	struct got g = { 0 };
	const char *a = ANSWERS;
	size_t i, first_end = 3 + 6;	/* greeting, then "r1\n\n> " */

	send_cmds(s, &g, 3);
	for (i = 0; i < strlen(a); i++) {
		peer_write(&p, a + i, 1);
		if (i + 1 == first_end - 1)
			CHECK_INT(g.n, 0);	/* "r1\n\n>" is not an answer yet */
		if (i + 1 == first_end)
			CHECK_INT(g.n, 1);
	}
	check_answers(&g);
	finish(&p, s, &g);
}

/* Freed from the first answer's callback, with two more answers read: no more calls. */
static void
test_sess_free_in_callback(void)
{
	struct peer p;
	struct hapx_sess *s = peer_open(&p);
	struct got g = { 0 };

	g.free_at_first = s;
	send_cmds(s, &g, 3);
	peer_read(&p);
	peer_write(&p, ANSWERS, 0);
	CHECK_INT(g.n, 1);
	CHECK_STR(g.reply[0], "r1\n\n");
	got_free(&g);
	peer_close(&p);
}

/* The peer closes after one answer: the other two get the error, in order. */
static void
test_sess_closed(void)
{
	struct peer p;
	struct hapx_sess *s = peer_open(&p);
	struct got g = { 0 };

	send_cmds(s, &g, 3);
	peer_read(&p);
	peer_write(&p, "\n> r1\n\n> ", 0);
	close(p.fd);
	p.fd = -1;
	spin(&p);
	CHECK_INT(g.n, 3);
	CHECK_STR(g.reply[0], "r1\n\n");
	CHECK(g.reply[1] == NULL && g.reply[2] == NULL);
	CHECK_STR(g.err[1], "connection closed without an answer");
	CHECK_STR(g.err[2], "connection closed without an answer");
	CHECK(!hapx_sess_usable(s));
	/* A later command is told from the loop, never from inside the call. */
	hapx_sess_cmd(s, "c4", rec, &g);
	CHECK_INT(g.n, 3);
	spin(&p);
	CHECK_INT(g.n, 4);
	CHECK_STR(g.err[3], "connection closed without an answer");
	finish(&p, s, &g);
}

/* Not a CLI; an answer nobody asked for. */
static void
test_sess_garbage(void)
{
	struct peer p;
	struct hapx_sess *s = peer_open(&p);
	struct got g = { 0 };

	send_cmds(s, &g, 1);
	peer_read(&p);
	peer_write(&p, "HTTP/1.0 400 Bad request\r\n\r\n", 0);
	CHECK_INT(g.n, 1);
	CHECK_STR(g.err[0], "no prompt: not an HAProxy CLI");
	finish(&p, s, &g);

	memset(&g, 0, sizeof(g));
	s = peer_open(&p);
	send_cmds(s, &g, 2);
	peer_read(&p);
	peer_write(&p, "\n> r1\n\n> r2\n\n> r3\n\n> ", 0);
	CHECK_INT(g.n, 2);
	CHECK_STR(g.reply[1], "r2\n\n");
	CHECK(!hapx_sess_usable(s));
	hapx_sess_cmd(s, "c3", rec, &g);
	spin(&p);
	CHECK_INT(g.n, 3);
	CHECK_STR(g.err[2], "an answer nobody asked for");
	finish(&p, s, &g);
}

int
main(void)
{
	RUN(test_reply_errors);
	RUN(test_version);
	RUN(test_map);
	RUN(test_backend);
	RUN(test_stat);
	RUN(test_backend_up);
	RUN(test_backend_counters);
	RUN(test_addr);
	RUN(test_sess_pipelined);
	RUN(test_sess_bytewise);
	RUN(test_sess_free_in_callback);
	RUN(test_sess_closed);
	RUN(test_sess_garbage);
	return unit_summary();
}
