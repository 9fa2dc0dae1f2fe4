/*
 * hapx.c — HAProxy's runtime API, spoken directly on its stats socket.
 *
 * One command a connection (HAProxy's non-interactive mode: send a line,
 * read until it closes), or a session of several commands one after the
 * other on one connection (interactive mode: "prompt", then each answer
 * ends with the prompt "\n> "), pipelined: several commands go out at
 * once and their answers come back in order.  Asynchronous on the event loop with a deadline for
 * each exchange, so a hung node never stalls other clients.  No socat: a
 * fork and exec costs milliseconds, the command itself ~100 us.
 *
 * HAProxy answers in plain text and reports most errors as text with no
 * status; hapx_reply_error() knows which replies mean failure.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "hapx.h"
#include "lb.h"
#include "log.h"
#include "util.h"

#define HAPX_MAX_REPLY	(16 * 1024 * 1024)

struct hapx_req {
	struct bufferevent *bev;
	struct event	*timer;
	hapx_cb		 cb;
	void		*arg;
	char		*addr;
	int		 timeout_ms;
	int		 connect_errno;
};

/*
 * "unix@/path", "/path" -> AF_UNIX; "ipv4@1.2.3.4:9999", "1.2.3.4:9999";
 * "ipv6@[::1]:9999" -> AF_INET6.
 */
int
hapx_parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256], *colon, *end;
	const char *a = addr;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(a, "unix@", 5) == 0)
		a += 5;
	if (a[0] == '/' || a[0] == '.') {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;

		if (strlen(a) >= sizeof(sun->sun_path))
			return -1;
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, a);
		*len = sizeof(*sun);
		return 0;
	}
	if (strncmp(a, "ipv4@", 5) == 0 || strncmp(a, "ipv6@", 5) == 0)
		a += 5;
	if (strlen(a) >= sizeof(host))
		return -1;
	strcpy(host, a);
	if ((colon = strrchr(host, ':')) == NULL)
		return -1;
	*colon = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port <= 0 || port > 65535)
		return -1;
	if (host[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		size_t hl = strlen(host);

		if (hl < 2 || host[hl - 1] != ']')
			return -1;
		host[hl - 1] = '\0';
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -1;
		*len = sizeof(*s6);
		return 0;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		*len = sizeof(*s4);
		return 0;
	}
}

static void
hapx_finish(struct hapx_req *r, const char *err)
{
	struct evbuffer *in;
	char *reply = NULL;
	size_t len = 0;

	if (err == NULL) {
		in = bufferevent_get_input(r->bev);
		len = evbuffer_get_length(in);
		reply = malloc(len + 1);
		if (reply == NULL)
			fatalx("out of memory");
		evbuffer_remove(in, reply, len);
		reply[len] = '\0';
		utf8_fix(reply);	/* names and messages from HAProxy end up in JSON */
	}
	bufferevent_free(r->bev);
	event_free(r->timer);
	r->cb(reply, err, r->arg);
	free(reply);
	free(r->addr);
	free(r);
}

static void
hapx_readcb(struct bufferevent *bev, void *arg)
{
	struct hapx_req *r = arg;
	char err[128];

	if (evbuffer_get_length(bufferevent_get_input(bev)) > HAPX_MAX_REPLY) {
		snprintf(err, sizeof(err), "reply longer than %d bytes", HAPX_MAX_REPLY);
		hapx_finish(r, err);
	}
}

static void
hapx_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct hapx_req *r = arg;
	char err[256];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF) {
		hapx_finish(r, NULL);
		return;
	}
	snprintf(err, sizeof(err), "%s", r->connect_errno ? strerror(r->connect_errno) :
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	hapx_finish(r, err);
}

static void
hapx_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct hapx_req *r = arg;
	char err[64];

	(void)fd;
	(void)what;
	if (r->connect_errno != 0)
		snprintf(err, sizeof(err), "%s", strerror(r->connect_errno));
	else
		snprintf(err, sizeof(err), "no answer within %d ms", r->timeout_ms);
	hapx_finish(r, err);
}

struct hapx_req *
hapx_cmd(struct event_base *base, const char *addr, const char *cmd,
    int timeout_ms, hapx_cb cb, void *arg)
{
	struct sockaddr_storage ss;
	struct hapx_req *r;
	struct timeval tv;
	socklen_t sslen;

	if (hapx_parse_addr(addr, &ss, &sslen) == -1) {
		errno = EINVAL;
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->cb = cb;
	r->arg = arg;
	r->addr = xstrdup(addr);
	r->timeout_ms = timeout_ms;
	r->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	r->timer = evtimer_new(base, hapx_timeout, r);
	if (r->bev == NULL || r->timer == NULL)
		fatalx("out of memory");
	bufferevent_setcb(r->bev, hapx_readcb, NULL, hapx_eventcb, r);
	bufferevent_enable(r->bev, EV_READ);
	evbuffer_add_printf(bufferevent_get_output(r->bev), "%s\n", cmd);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(r->timer, &tv);
	log_debug("haproxy %s: %s", addr, cmd);
	/*
	 * Callbacks are deferred (BEV_OPT_DEFER_CALLBACKS), so a connect that
	 * fails at once is still reported from the loop, never from inside
	 * this call; errno is kept for that report.
	 */
	if (bufferevent_socket_connect(r->bev, (struct sockaddr *)&ss, (int)sslen) == -1) {
		/*
		 * libevent 2.1 may not call back for a connect that failed at
		 * once (ENOENT on a unix socket): report it from the loop now
		 * rather than after the whole timeout.
		 */
		r->connect_errno = errno ? errno : ECONNREFUSED;
		evtimer_del(r->timer);
		tv.tv_sec = tv.tv_usec = 0;
		evtimer_add(r->timer, &tv);
	}
	return r;
}

void
hapx_cancel(struct hapx_req *r)
{
	bufferevent_free(r->bev);
	event_free(r->timer);
	free(r->addr);
	free(r);
}

/* ---------------------------------------------------------------- session */

/*
 * Commands are pipelined: each is written as soon as it is given, and
 * HAProxy answers them in order, so a caller may send several at once and
 * pay one round trip.  The callbacks wait in a queue, oldest first.
 */
struct sess_wait {
	hapx_cb		 cb;
	void		*arg;
};

struct hapx_sess {
	struct bufferevent *bev;
	struct event	*timer;
	char		*addr;
	int		 timeout_ms;
	int		 connect_errno;
	int		 greeted;	/* the answer to "prompt" is in */
	char		*broken;	/* why no more command can be sent */
	struct sess_wait *q;		/* commands waiting for their answers */
	size_t		 qhead, qlen, qsize;
	int		 in_cb;		/* inside a callback: free later */
	int		 freed;
};

static void
sess_destroy(struct hapx_sess *s)
{
	bufferevent_free(s->bev);
	event_free(s->timer);
	free(s->broken);
	free(s->addr);
	free(s->q);
	free(s);
}

static void
sess_arm(struct hapx_sess *s, int now)
{
	struct timeval tv = { 0, 0 };

	if (!now) {
		tv.tv_sec = s->timeout_ms / 1000;
		tv.tv_usec = (s->timeout_ms % 1000) * 1000;
	}
	evtimer_add(s->timer, &tv);
}

/*
 * The oldest command's answer.  Returns 1 if its callback freed the
 * session: then the caller must not touch it again.
 */
static int
sess_deliver(struct hapx_sess *s, const char *reply, const char *err)
{
	struct sess_wait w = s->q[s->qhead];

	s->qhead++;
	s->qlen--;
	/* Each command has its own deadline, from its predecessor's answer. */
	if (s->qlen > 0 && err == NULL)
		sess_arm(s, 0);
	else
		evtimer_del(s->timer);
	s->in_cb++;
	w.cb(reply, err, w.arg);
	if (--s->in_cb == 0 && s->freed) {
		sess_destroy(s);
		return 1;
	}
	return 0;
}

/* The session is dead: every command waiting gets err, oldest first. */
static void
sess_break(struct hapx_sess *s, const char *err)
{
	char *why;

	if (s->broken == NULL)
		s->broken = xstrdup(err);
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	why = xstrdup(s->broken);
	while (s->qlen > 0 && !s->freed)
		if (sess_deliver(s, NULL, why))
			break;
	free(why);
}

/*
 * The length of the first complete answer in the input, with its prompt,
 * or 0: "\n> " alone (nothing to say), or a reply that ends with a
 * newline followed by "\n> ".
 */
static size_t
sess_answer_len(struct evbuffer *in)
{
	struct evbuffer_ptr p;
	char head[3];

	if (evbuffer_copyout(in, head, 3) == 3 && memcmp(head, "\n> ", 3) == 0)
		return 3;
	p = evbuffer_search(in, "\n\n> ", 4, NULL);
	return p.pos == -1 ? 0 : (size_t)p.pos + 4;
}

static void
sess_readcb(struct bufferevent *bev, void *arg)
{
	struct hapx_sess *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char head[3], *reply, err[128];
	size_t len;

	if (evbuffer_get_length(in) > HAPX_MAX_REPLY) {
		snprintf(err, sizeof(err), "reply longer than %d bytes", HAPX_MAX_REPLY);
		sess_break(s, err);
		return;
	}
	if (!s->greeted) {
		if (evbuffer_get_length(in) < 3)
			return;
		evbuffer_copyout(in, head, 3);
		if (memcmp(head, "\n> ", 3) != 0) {
			sess_break(s, "no prompt: not an HAProxy CLI");
			return;
		}
		evbuffer_drain(in, 3);
		s->greeted = 1;
	}
	while ((len = sess_answer_len(in)) > 0) {
		if (s->qlen == 0) {
			sess_break(s, "an answer nobody asked for");
			return;
		}
		reply = xcalloc(1, len - 1);
		evbuffer_remove(in, reply, len - 2);	/* without the "> " */
		evbuffer_drain(in, 2);
		utf8_fix(reply);
		if (sess_deliver(s, reply, NULL)) {
			free(reply);
			return;
		}
		free(reply);
		if (s->freed || s->broken != NULL)
			return;
	}
}

static void
sess_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct hapx_sess *s = arg;
	char err[256];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF)
		snprintf(err, sizeof(err), "connection closed without an answer");
	else
		snprintf(err, sizeof(err), "%s", s->connect_errno ?
		    strerror(s->connect_errno) :
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	sess_break(s, err);
}

static void
sess_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct hapx_sess *s = arg;
	char err[64];

	(void)fd;
	(void)what;
	if (s->broken != NULL)
		snprintf(err, sizeof(err), "%s", s->broken);
	else if (s->connect_errno != 0)
		snprintf(err, sizeof(err), "%s", strerror(s->connect_errno));
	else
		snprintf(err, sizeof(err), "no answer within %d ms", s->timeout_ms);
	/* A late answer must not be taken for the next command's. */
	sess_break(s, err);
}

struct hapx_sess *
hapx_sess_new(struct event_base *base, const char *addr, int timeout_ms)
{
	struct sockaddr_storage ss;
	struct hapx_sess *s;
	socklen_t sslen;

	if (hapx_parse_addr(addr, &ss, &sslen) == -1) {
		errno = EINVAL;
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->addr = xstrdup(addr);
	s->timeout_ms = timeout_ms;
	s->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	s->timer = evtimer_new(base, sess_timeout, s);
	if (s->bev == NULL || s->timer == NULL)
		fatalx("out of memory");
	bufferevent_setcb(s->bev, sess_readcb, NULL, sess_eventcb, s);
	bufferevent_enable(s->bev, EV_READ);
	evbuffer_add_printf(bufferevent_get_output(s->bev), "prompt\n");
	/* As in hapx_cmd: a connect that fails at once is told by the next command. */
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&ss, (int)sslen) == -1) {
		s->connect_errno = errno ? errno : ECONNREFUSED;
		s->broken = xstrdup(strerror(s->connect_errno));
	}
	return s;
}

void
hapx_sess_cmd(struct hapx_sess *s, const char *cmd, hapx_cb cb, void *arg)
{
	if (s->qhead + s->qlen == s->qsize) {
		if (s->qhead > 0) {
			memmove(s->q, s->q + s->qhead, s->qlen * sizeof(*s->q));
			s->qhead = 0;
		} else {
			s->qsize = s->qsize ? s->qsize * 2 : 8;
			s->q = xreallocarray(s->q, s->qsize, sizeof(*s->q));
		}
	}
	s->q[s->qhead + s->qlen].cb = cb;
	s->q[s->qhead + s->qlen].arg = arg;
	if (s->qlen++ == 0 || s->broken != NULL)
		/* Told from the loop, never from inside this call. */
		sess_arm(s, s->broken != NULL);
	if (s->broken != NULL)
		return;
	log_debug("haproxy %s: %s", s->addr, cmd);
	evbuffer_add_printf(bufferevent_get_output(s->bev), "%s\n", cmd);
}

/* Answered everything so far, and no error since: a command may follow. */
int
hapx_sess_usable(const struct hapx_sess *s)
{
	return s != NULL && s->broken == NULL && !s->freed && s->greeted;
}

void
hapx_sess_free(struct hapx_sess *s)
{
	if (s == NULL)
		return;
	/* Freed from one of its callbacks: once that returns. */
	if (s->in_cb > 0) {
		s->freed = 1;
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		evtimer_del(s->timer);
		return;
	}
	sess_destroy(s);
}

/* ----------------------------------------------------------- reply parsing */

/* Trailing blanks and newlines removed, in place. */
static void
rtrim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/*
 * For commands that answer nothing on success (add/commit/set/del map,
 * enable/disable server...), any text is HAProxy's error message.  For
 * "show" commands, known error sentences are errors.  Returns a malloc'd
 * message, or NULL if the reply is a success.
 */
char *
hapx_reply_error(const char *cmd, const char *reply)
{
	static const char *errs[] = {
		"Unknown", "No such", "entry not found", "Missing", "Version number",
		"Permission denied", "Can't", "Cannot", "Require", "Invalid",
		"Unable", "failed", "not found", "Out of memory", NULL
	};
	static const char *ok_replies[] = {
		"Done.", "New server registered.", "Server deleted.", NULL
	};
	char *text = xstrdup(reply ? reply : "");
	int i;

	rtrim(text);
	if (strncmp(cmd, "show ", 5) == 0 || strncmp(cmd, "prepare ", 8) == 0) {
		for (i = 0; errs[i] != NULL; i++)
			if (strncasecmp(text, errs[i], strlen(errs[i])) == 0)
				return text;
		free(text);
		return NULL;
	}
	if (text[0] == '\0') {
		free(text);
		return NULL;
	}
	/* Some commands say they succeeded. */
	for (i = 0; ok_replies[i] != NULL; i++)
		if (strcmp(text, ok_replies[i]) == 0) {
			free(text);
			return NULL;
		}
	return text;
}

/* "New version created: 12" -> 12. */
int
hapx_parse_version(const char *reply, unsigned long *ver)
{
	const char *p = strstr(reply ? reply : "", "New version created:");
	char *end;

	if (p == NULL)
		return -1;
	p += strlen("New version created:");
	*ver = strtoul(p, &end, 10);
	return end == p ? -1 : 0;
}

/*
 * "show map" lines: "0x55d0c1d0 app.example.com be_green".  Fills live and
 * cold with the values of those keys; returns how many keys were found, or
 * -1 if a key appears twice (which HAProxy allows and we never write).
 */
int
hapx_parse_map(const char *reply, const char *live_key, const char *cold_key,
    struct lb_mapping *m)
{
	/* "<pointer> <key> <value>" a line. */
	return lb_map_parse(reply, 1, live_key, cold_key, m);
}

/* "show backend": "# name" then one backend a line. */
int
hapx_has_backend(const char *reply, const char *backend)
{
	char *copy = xstrdup(reply ? reply : ""), *line, *save = NULL;
	int found = 0;

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		rtrim(line);
		if (line[0] != '#' && strcmp(line, backend) == 0)
			found = 1;
	}
	free(copy);
	return found;
}

/* Split one CSV line in place (HAProxy's stats CSV has no quoting). */
static int
csv_split(char *line, char **fields, int max)
{
	int n = 0;
	char *p = line;

	while (n < max) {
		fields[n++] = p;
		if ((p = strchr(p, ',')) == NULL)
			break;
		*p++ = '\0';
	}
	return n;
}

/*
 * The index of each column in names (NULL-ended) by a "# pxname,svname,..."
 * header line, -1 for one it lacks: columns are read by name, never by
 * position (every HAProxy release adds some).
 */
static void
csv_columns(char *header, const char *const *names, int *cols)
{
	char *hdr[512];
	int nh = csv_split(header, hdr, 512), i, k;

	for (k = 0; names[k] != NULL; k++)
		cols[k] = -1;
	for (i = 0; i < nh; i++)
		for (k = 0; names[k] != NULL; k++)
			if (strcmp(hdr[i], names[k]) == 0)
				cols[k] = i;
}

/*
 * "show stat": servers of each backend.
 * Returns {"backend": [{"name", "address", "status", "scur"}]} or NULL.
 */
json_t *
hapx_parse_stat(const char *reply)
{
	static const char *const names[] = { "pxname", "svname", "status", "addr", "scur", NULL };
	enum { PX, SV, ST, ADDR, SCUR };
	char *copy = xstrdup(reply ? reply : ""), *line, *save = NULL, *f[512];
	int c[5] = { -1, -1, -1, -1, -1 }, n;
	json_t *out = json_object(), *list;

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		rtrim(line);
		if (strncmp(line, "# ", 2) == 0) {
			csv_columns(line + 2, names, c);
			continue;
		}
		if (c[PX] < 0 || c[SV] < 0 || c[ST] < 0)
			continue;
		n = csv_split(line, f, 512);
		if (n <= c[ST] || n <= c[SV] || n <= c[PX])
			continue;
		if (strcmp(f[c[SV]], "FRONTEND") == 0 || strcmp(f[c[SV]], "BACKEND") == 0)
			continue;
		if ((list = json_object_get(out, f[c[PX]])) == NULL) {
			list = json_array();
			if (json_object_set_new(out, f[c[PX]], list) == -1)
				continue;	/* not UTF-8: no backend of ours */
		}
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:I}", "name", utf8_fix(f[c[SV]]),
		    "address", c[ADDR] >= 0 && c[ADDR] < n ? utf8_fix(f[c[ADDR]]) : "",
		    "status", utf8_fix(f[c[ST]]), "scur", (json_int_t)(c[SCUR] >= 0 && c[SCUR] < n ?
		    strtoll(f[c[SCUR]], NULL, 10) : 0)));
	}
	free(copy);
	if (c[ST] < 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/*
 * "show stat BACKEND 2 -1": the servers HAProxy counts as usable in that
 * backend's own row (act + bck); -1 if there is no such row.  One line to
 * read instead of one per server: the pre-check of a switch stays as fast
 * with 1000 servers as with 2.
 */
int
hapx_backend_up(const char *reply, const char *backend)
{
	static const char *const names[] = { "pxname", "svname", "act", "bck", NULL };
	enum { PX, SV, ACT, BCK };
	char *copy = xstrdup(reply ? reply : ""), *line, *save = NULL, *f[512];
	int c[4] = { -1, -1, -1, -1 }, n, up = -1;

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		rtrim(line);
		if (strncmp(line, "# ", 2) == 0) {
			csv_columns(line + 2, names, c);
			continue;
		}
		if (c[PX] < 0 || c[SV] < 0 || c[ACT] < 0 || c[BCK] < 0)
			continue;
		n = csv_split(line, f, 512);
		if (n <= c[PX] || n <= c[SV] || n <= c[ACT] || n <= c[BCK])
			continue;
		if (strcmp(f[c[SV]], "BACKEND") == 0 && strcmp(f[c[PX]], backend) == 0) {
			up = atoi(f[c[ACT]]) + atoi(f[c[BCK]]);
			break;
		}
	}
	free(copy);
	return up;
}

/*
 * "show stat -1 2 -1": each backend's own row, for its traffic counters.
 * Returns {"backend": {"requests": req_tot (stot where HAProxy has no
 * req_tot), "5xx": hrsp_5xx}}, or NULL without the columns.
 */
json_t *
hapx_parse_backend_counters(const char *reply)
{
	static const char *const names[] = { "pxname", "svname", "stot", "req_tot", "hrsp_5xx", NULL };
	enum { PX, SV, STOT, REQ, H5 };
	char *copy = xstrdup(reply ? reply : ""), *line, *save = NULL, *f[512];
	int c[5] = { -1, -1, -1, -1, -1 }, n;
	json_t *out = json_object();

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *req;

		rtrim(line);
		if (strncmp(line, "# ", 2) == 0) {
			csv_columns(line + 2, names, c);
			continue;
		}
		if (c[PX] < 0 || c[SV] < 0 || c[STOT] < 0 || c[H5] < 0)
			continue;
		n = csv_split(line, f, 512);
		if (n <= c[PX] || n <= c[SV] || n <= c[STOT] || n <= c[H5] ||
		    strcmp(f[c[SV]], "BACKEND") != 0)
			continue;
		req = c[REQ] >= 0 && c[REQ] < n && f[c[REQ]][0] != '\0' ? f[c[REQ]] : f[c[STOT]];
		json_object_set_new(out, utf8_fix(f[c[PX]]), json_pack("{s:I, s:I}",
		    "requests", (json_int_t)strtoll(req, NULL, 10),
		    "5xx", (json_int_t)strtoll(f[c[H5]], NULL, 10)));
	}
	free(copy);
	if (c[STOT] < 0 || c[H5] < 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* Does HAProxy send traffic to a server with this status? */
int
hapx_status_up(const char *status)
{
	return strncmp(status, "UP", 2) == 0 || strcmp(status, "no check") == 0;
}

/*
 * Fewer than min_up servers of backend UP in a parsed "show stat"?  Then
 * msg says so, prefixed with who, naming each server's status; returns 1.
 */
int
hapx_min_up_error(json_t *stat, const char *backend, int min_up, const char *who,
    char *msg, size_t size)
{
	json_t *servers = json_object_get(stat, backend), *s;
	size_t i, len;
	int up = 0;

	json_array_foreach(servers, i, s)
		up += hapx_status_up(json_string_value(json_object_get(s, "status")));
	if (up >= min_up)
		return 0;
	len = (size_t)snprintf(msg, size, "%s: backend %s has %d server%s UP, min_up is %d",
	    who, backend, up, up == 1 ? "" : "s", min_up);
	for (i = 0; i < json_array_size(servers) && len < size; i++) {
		s = json_array_get(servers, i);
		len += (size_t)snprintf(msg + len, size - len, "%s%s %s", i ? ", " : " (",
		    json_string_value(json_object_get(s, "name")),
		    json_string_value(json_object_get(s, "status")));
	}
	if (i > 0 && len < size - 1)
		strcat(msg, ")");
	return 1;
}

/*
 * "show stat BACKEND 2 -1": the backend row's responses (hrsp_1xx..5xx and
 * hrsp_other) and its 5xx, for the guard.  -1 if the row or a column is
 * missing.
 */
int
hapx_backend_counters(const char *reply, const char *backend, long long *responses,
    long long *errors)
{
	static const char *const names[] = { "pxname", "svname", "hrsp_1xx", "hrsp_2xx",
	    "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", NULL };
	enum { PX, SV, R1, R2, R3, R4, R5, RO, NCOL };
	char *copy = xstrdup(reply ? reply : ""), *line, *save = NULL, *f[512];
	int c[NCOL], n, k, found = -1;

	for (k = 0; k < NCOL; k++)
		c[k] = -1;
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		rtrim(line);
		if (strncmp(line, "# ", 2) == 0) {
			csv_columns(line + 2, names, c);
			continue;
		}
		for (k = 0; k < NCOL; k++)
			if (c[k] < 0)
				break;
		if (k < NCOL)
			continue;
		n = csv_split(line, f, 512);
		if (n <= c[RO] || n <= c[R5] || strcmp(f[c[PX]], backend) != 0 ||
		    strcmp(f[c[SV]], "BACKEND") != 0)
			continue;
		*responses = 0;
		for (k = R1; k <= RO; k++)
			*responses += strtoll(f[c[k]], NULL, 10);
		*errors = strtoll(f[c[R5]], NULL, 10);
		found = 0;
		break;
	}
	free(copy);
	return found;
}
