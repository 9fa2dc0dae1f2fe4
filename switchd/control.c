/*
 * control.c — the control socket: accept, frame newline-delimited JSON
 * requests (64 KiB cap), learn who the peer is from SO_PEERCRED, hand each
 * request to cmd_dispatch(), write replies.
 *
 * A client runs one request at a time; its next line is read when the reply
 * is out, and at most one of its lines is served per loop turn.  Nothing a
 * client does (garbage, floods, never reading, vanishing half way, holding
 * connections open) blocks another client or the command in flight.
 */
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "cmd.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "log.h"
#include "protocol.h"
#include "util.h"

#define MAX_CLIENTS	1024
/*
 * Descriptors kept free for the work itself, whatever the clients do: one
 * socket a HAProxy node, map, state and journal files, a child's pipes,
 * smoke and webhook connections.
 */
#define FD_RESERVE	32
#define MAX_OUTPUT	(8 * 1024 * 1024)
#define MAX_LOOKUPS	64	/* peer lookups in threads at once; beyond, inline */
#define IDLE_TIMEOUT	600

struct client {
	TAILQ_ENTRY(client) entry;
	struct daemon	*d;		/* the daemon it talks to */
	struct bufferevent *bev;
	uid_t		 uid;
	char		 user[64];
	int		 admin;
	struct cmdq_item *item;		/* request in flight */
	int		 closing;	/* close once the output is written */
	int		 in_read;
	struct event	*more;		/* serves its next pipelined line, next turn */
	struct peer_lookup *lookup;	/* who it is, being found out */
};
TAILQ_HEAD(clients, client);

/*
 * Who a peer is (its name, whether it is an admin) asks NSS, which may be
 * LDAP or sssd and take seconds: a thread finds out, hands the answer back
 * through lookup_pipe, and the client's requests wait for it, nobody else.
 */
struct peer_lookup {
	struct client	*c;		/* NULL once the client is gone (loop only) */
	uid_t		 uid;
	char		*admin_group;
	char		 user[64];
	int		 admin;
	TAILQ_ENTRY(peer_lookup) entry;	/* in flight (loop only) */
};
static TAILQ_HEAD(, peer_lookup) lookups = TAILQ_HEAD_INITIALIZER(lookups);
static int		 nlookups;
static int		 lookup_pipe[2] = { -1, -1 };
static struct event	*lookup_ev;

static struct clients	 clients = TAILQ_HEAD_INITIALIZER(clients);
static int		 nclients;
static int		 max_clients = MAX_CLIENTS;	/* below the fd limit */
static struct evconnlistener *listener;
static struct event	*accept_pause;
static char		*listen_path;
static dev_t		 listen_dev;	/* the socket file this process bound */
static ino_t		 listen_ino;

static void client_readcb(struct bufferevent *, void *);
static int client_shed_idle(void);
static void client_more_cb(evutil_socket_t, short, void *);

static void
client_free(struct client *c)
{
	evutil_socket_t fd;

	if (c->item != NULL)
		c->item->client = NULL;	/* the command goes on without us */
	TAILQ_REMOVE(&clients, c, entry);
	if (c->lookup != NULL)
		c->lookup->c = NULL;	/* its thread finishes; the answer is dropped */
	event_free(c->more);
	/*
	 * Close the socket now: bufferevent_free() closes it only when its
	 * finalizer runs, a loop turn later, and a burst of connections at
	 * the cap would meanwhile eat the descriptors kept for the work.
	 */
	fd = bufferevent_getfd(c->bev);
	bufferevent_setfd(c->bev, -1);
	bufferevent_free(c->bev);
	if (fd != -1)
		close(fd);
	free(c);
	nclients--;
}

static void
client_writecb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		client_free(c);
}

static void
client_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT) {
		if (c->item != NULL) {
			bufferevent_enable(c->bev, EV_READ);
			return;
		}
		log_debug("client uid %lu idle for %ds, closed", (unsigned long)c->uid,
		    IDLE_TIMEOUT);
	}
	client_free(c);
}

static void
client_send(struct client *c, json_t *msg)
{
	struct evbuffer *out;
	char *text;

	if (msg == NULL) {
		/* json_pack refused (it should not now): never leave a client waiting */
		log_warnx("control: a reply could not be built; sending a generic error");
		msg = json_pack("{s:b, s:s, s:s}", P_OK, 0, P_CODE, E_INTERNAL, P_ERROR,
		    "internal error: reply could not be encoded");
	}
	text = json_dumps(msg, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(msg);
	if (text == NULL || c->closing) {
		free(text);
		return;
	}
	out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) > MAX_OUTPUT) {
		/* It does not read its replies; do not buffer for it forever. */
		log_warnx("client uid %lu does not read its replies; dropped",
		    (unsigned long)c->uid);
		c->closing = 1;
		evbuffer_drain(out, evbuffer_get_length(out));
		free(text);
		return;
	}
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\n", 1);
	free(text);
}

static void
client_attach(struct client *c, struct cmdq_item *item)
{
	c->item = item;
}

/* The request in flight is answered: read the next one. */
static void
client_command_done(struct client *c)
{
	c->item = NULL;
	if (c->closing) {
		if (!c->in_read)
			client_writecb(c->bev, c);
		return;
	}
	if (c->in_read)
		return;	/* client_readcb() goes on with the next line itself */
	bufferevent_enable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		bufferevent_trigger(c->bev, EV_READ, BEV_OPT_DEFER_CALLBACKS);
}

static void
client_too_long(struct client *c)
{
	client_send(c, json_pack("{s:b, s:s, s:s}", P_OK, 0, P_CODE, E_USAGE, P_ERROR,
	    "bad request: line longer than 65536 bytes"));
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
}

/*
 * One request per call: a client that pipelines many requests gets the
 * next one served at the next loop turn (client_more_cb), after every
 * other client had its turn, never all of them in one go.
 */
static void
client_readcb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	json_error_t jerr;
	json_t *req;
	size_t len;
	char *line;
	int served = 0;

	c->in_read = 1;
	while (c->item == NULL && !c->closing && !served) {
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
		if (line == NULL) {
			if (evbuffer_get_length(in) >= SWITCHD_MAX_LINE)
				client_too_long(c);
			break;
		}
		if (len + 1 > SWITCHD_MAX_LINE) {
			free(line);
			client_too_long(c);
			break;
		}
		if (len == 0 || (len == 1 && line[0] == '\r')) {
			free(line);
			continue;
		}
		served = 1;
		req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
		free(line);
		if (req == NULL) {
			client_send(c, json_pack("{s:b, s:s, s:s}", P_OK, 0, P_CODE, E_USAGE,
			    P_ERROR, "bad request: not JSON"));
			continue;
		}
		/* cmd_dispatch answers at once or attaches a command item. */
		c->item = (struct cmdq_item *)1;
		cmd_dispatch(c->d, c, c->uid, c->admin, c->user, req);
		if (c->item == (struct cmdq_item *)1)
			c->item = NULL;
		json_decref(req);
	}
	c->in_read = 0;
	if (c->closing) {
		client_writecb(bev, c);	/* may free c */
		return;
	}
	/* While a command runs, its client's input waits (and cannot grow). */
	if (c->item != NULL)
		bufferevent_disable(bev, EV_READ);
	else {
		bufferevent_enable(bev, EV_READ);
		/*
		 * A zero timer, not a deferred callback: libevent runs up to 32
		 * of those in the same turn, a timer only after the next poll.
		 */
		if (served && evbuffer_get_length(in) > 0) {
			struct timeval now = { 0, 0 };

			evtimer_add(c->more, &now);
		}
	}
}

static void
client_more_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	(void)fd;
	(void)what;
	client_readcb(c->bev, c);
}

/*
 * At the cap, the oldest client that is only connected (no command in
 * flight) makes room: idle connections must never lock out a switch.
 */
static int
client_shed_idle(void)
{
	struct client *c;
	int pass;

	/* First one with nothing on its way either way, then any idle one. */
	for (pass = 0; pass < 2; pass++) {
		TAILQ_FOREACH(c, &clients, entry) {
			if (c->item != NULL || c->closing)
				continue;
			if (pass == 0 &&
			    (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 ||
			    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0))
				continue;
			log_warnx("control: %d clients, the most the descriptor limit "
			    "allows; closing the oldest idle one (uid %lu)", nclients,
			    (unsigned long)c->uid);
			client_free(c);
			return 1;
		}
	}
	return 0;
}

/* Descriptors open now (the log, the event base, the listener...). */
static int
fds_in_use(void)
{
	DIR *d;
	struct dirent *e;
	int n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return 16;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* not the one reading the directory */
}

/*
 * Raise the soft RLIMIT_NOFILE to the hard one, and cap the clients below
 * it with FD_RESERVE left over, so that clients alone can never take the
 * descriptors a switch needs.
 */
static void
control_fd_budget(void)
{
	struct rlimit rl;
	long limit, room;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("control: getrlimit(RLIMIT_NOFILE)");
		return;
	}
	if (rl.rlim_cur != rl.rlim_max) {
		struct rlimit want = { rl.rlim_max, rl.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
		else
			log_warn("control: raising the descriptor limit to %llu",
			    (unsigned long long)rl.rlim_max);
	}
	limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1 << 20 ? 1 << 20 :
	    (long)rl.rlim_cur;
	room = limit - fds_in_use() - FD_RESERVE;
	max_clients = room < 1 ? 1 : room > MAX_CLIENTS ? MAX_CLIENTS : (int)room;
	if (max_clients < MAX_CLIENTS)
		log_info("control: at most %d clients (descriptor limit %ld, %d kept "
		    "for the work)", max_clients, limit, FD_RESERVE);
}

/* May this uid run mutating commands?  Thread-safe: runs in a lookup thread. */
static int
peer_is_admin(uid_t uid, const struct passwd *pw, const char *admin_group)
{
	struct group grbuf, *gr = NULL;
	char buf[8192];
	gid_t *groups = NULL, *g, gid;
	int ngroups = 64, i, admin = 0, tries;

	if (uid == 0 || uid == geteuid())
		return 1;
	if (admin_group == NULL || pw == NULL)
		return 0;
	if (getgrnam_r(admin_group, &grbuf, buf, sizeof(buf), &gr) != 0 || gr == NULL)
		return 0;
	gid = gr->gr_gid;
	if (pw->pw_gid == gid)
		return 1;
	/* No fixed cap: a user in more than 256 groups is still an admin. */
	for (tries = 0; tries < 8; tries++) {
		int want = ngroups;

		if ((g = reallocarray(groups, (size_t)want, sizeof(*g))) == NULL)
			break;
		groups = g;
		if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ngroups) != -1) {
			for (i = 0; i < ngroups; i++)
				if (groups[i] == gid)
					admin = 1;
			break;
		}
		if (ngroups <= want)	/* glibc says how many; else grow */
			ngroups = want * 4;
	}
	free(groups);
	return admin;
}

/* Name and admin right of l->uid; thread-safe. */
static void
peer_identify(struct peer_lookup *l)
{
	struct passwd pwbuf, *pw = NULL;
	char buf[8192];

	if (getpwuid_r(l->uid, &pwbuf, buf, sizeof(buf), &pw) == 0 && pw != NULL)
		snprintf(l->user, sizeof(l->user), "%s", pw->pw_name);
	else
		snprintf(l->user, sizeof(l->user), "uid%lu", (unsigned long)l->uid);
	l->admin = peer_is_admin(l->uid, pw, l->admin_group);
}

static void *
lookup_thread(void *arg)
{
	struct peer_lookup *l = arg;
	ssize_t n;

	peer_identify(l);
	/* A pointer is less than PIPE_BUF: one write, never torn. */
	do
		n = write(lookup_pipe[1], &l, sizeof(l));
	while (n == -1 && errno == EINTR);
	return NULL;
}

/* The client may now be served: it is known. */
static void
client_identified(struct client *c, const struct peer_lookup *l)
{
	memcpy(c->user, l->user, sizeof(c->user));
	c->admin = l->admin;
	c->lookup = NULL;
	bufferevent_enable(c->bev, EV_READ);
}

static void
lookup_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer_lookup *l;

	(void)what;
	(void)arg;
	while (read(fd, &l, sizeof(l)) == (ssize_t)sizeof(l)) {
		TAILQ_REMOVE(&lookups, l, entry);
		nlookups--;
		if (l->c != NULL)
			client_identified(l->c, l);
		free(l->admin_group);
		free(l);
	}
}

/* Find out who c is: in a thread, or here when too many are under way. */
static void
client_identify(struct client *c)
{
	struct peer_lookup *l = xcalloc(1, sizeof(*l));
	pthread_attr_t attr;
	pthread_t t;
	int rc = -1;

	l->c = c;
	l->uid = c->uid;
	l->admin_group = xstrdup(c->d->conf->admin_group);
	if (lookup_ev != NULL && nlookups < MAX_LOOKUPS &&
	    pthread_attr_init(&attr) == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		TAILQ_INSERT_TAIL(&lookups, l, entry);
		nlookups++;
		c->lookup = l;
		if ((rc = pthread_create(&t, &attr, lookup_thread, l)) != 0) {
			TAILQ_REMOVE(&lookups, l, entry);
			nlookups--;
			c->lookup = NULL;
		}
		pthread_attr_destroy(&attr);
	}
	if (rc == 0)
		return;
	peer_identify(l);
	client_identified(c, l);
	free(l->admin_group);
	free(l);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct daemon *d = arg;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct client *c;
	struct timeval tv = { IDLE_TIMEOUT, 0 };

	(void)l;
	(void)sa;
	(void)salen;
	if (nclients >= max_clients && !client_shed_idle()) {
		log_warnx("control: %d clients already, all busy; connection refused",
		    nclients);
		close(fd);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_warn("control: SO_PEERCRED");
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->uid = cred.uid;
	snprintf(c->user, sizeof(c->user), "uid%lu", (unsigned long)cred.uid);
	c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->more = evtimer_new(d->base, client_more_cb, c);
	if (c->bev == NULL || c->more == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			close(fd);
		if (c->more != NULL)
			event_free(c->more);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, client_readcb, client_writecb, client_eventcb, c);
	bufferevent_set_timeouts(c->bev, &tv, NULL);
	TAILQ_INSERT_TAIL(&clients, c, entry);
	nclients++;
	client_identify(c);	/* reads its requests once it is known */
}

static void
accept_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	evconnlistener_enable(listener);
}

/* Out of file descriptors: stop accepting for a second instead of spinning. */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct timeval tv = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	(void)arg;
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		log_warnx("control: accept: %s; pausing for 1s", strerror(err));
		evconnlistener_disable(l);
		evtimer_add(accept_pause, &tv);
	}
}

/*
 * The socket's directory (e.g. /run/switchd without systemd's
 * RuntimeDirectory): made if missing, one level only, enterable by all
 * (the socket's own mode and group decide who may connect).
 */
static int
socket_dir(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int rc = 0;

	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == 0)
			log_info("control: created %s", dir);
		else if (errno != EEXIST) {
			log_warn("control: socket directory %s", dir);
			rc = -1;
		}
	}
	free(dir);
	return rc;
}

/*
 * control.group: the socket's group, and a directory its members can pass.
 * A team that cannot reach the socket is a failed start, not a line in the
 * log: a switch must not wait for someone to read it.
 */
static int
socket_group(const struct config *conf)
{
	struct group *gr;
	struct stat st;
	char *dir, *slash;
	int rc = 0;

	if ((gr = getgrnam(conf->ctl_group)) == NULL) {
		log_warnx("control: group %s (control.group) does not exist", conf->ctl_group);
		return -1;
	}
	if (chown(conf->ctl_socket, (uid_t)-1, gr->gr_gid) == -1) {
		log_warnx("control: cannot give %s to group %s: %s; switchd must be a "
		    "member of %s (usermod -aG %s, or SupplementaryGroups= in its unit)",
		    conf->ctl_socket, conf->ctl_group, strerror(errno), conf->ctl_group,
		    conf->ctl_group);
		return -1;
	}
	dir = xstrdup(conf->ctl_socket);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		if (stat(*dir ? dir : "/", &st) == 0 && !(st.st_mode & S_IXOTH) &&
		    !(st.st_gid == gr->gr_gid && (st.st_mode & S_IXGRP))) {
			log_warnx("control: members of group %s cannot reach %s: its "
			    "directory %s is mode %04o, group %lu; make it 0755 "
			    "(RuntimeDirectoryMode=0755)", conf->ctl_group, conf->ctl_socket,
			    dir, (unsigned)(st.st_mode & 07777), (unsigned long)st.st_gid);
			rc = -1;
		}
	}
	free(dir);
	return rc;
}

const struct client_ops control_client_ops = {
	client_send, client_attach, client_command_done
};

int
control_listen(struct daemon *d)
{
	const struct config *conf = d->conf;
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int fd, probe;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(conf->ctl_socket) >= sizeof(sun.sun_path)) {
		log_warnx("control socket path too long: %s", conf->ctl_socket);
		return -1;
	}
	strcpy(sun.sun_path, conf->ctl_socket);

	/* Refuse to steal the socket of a live switchd; remove a stale one. */
	if ((probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(probe);
		log_warnx("another switchd is already running on %s", conf->ctl_socket);
		return -1;
	}
	close(probe);
	if (socket_dir(conf->ctl_socket) == -1)
		return -1;
	if (unlink(conf->ctl_socket) == -1 && errno != ENOENT) {
		log_warn("unlink %s", conf->ctl_socket);
		return -1;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("control: socket");
		return -1;
	}
	/* No window in which the socket exists with looser permissions. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		log_warn("control: bind %s", conf->ctl_socket);
		close(fd);
		return -1;
	}
	umask(old);
	if (stat(conf->ctl_socket, &st) == 0) {
		listen_dev = st.st_dev;
		listen_ino = st.st_ino;
	}
	if (conf->ctl_group != NULL && socket_group(conf) == -1) {
		close(fd);
		unlink(conf->ctl_socket);
		return -1;
	}
	if (chmod(conf->ctl_socket, (mode_t)conf->ctl_mode) == -1)
		log_warn("control: chmod %s", conf->ctl_socket);
	listener = evconnlistener_new(d->base, accept_cb, d,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, fd);
	if (listener == NULL) {
		log_warn("control: listen %s", conf->ctl_socket);
		close(fd);
		return -1;
	}
	evconnlistener_set_error_cb(listener, accept_error_cb);
	if (pipe2(lookup_pipe, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    (lookup_ev = event_new(d->base, lookup_pipe[0], EV_READ | EV_PERSIST,
	    lookup_done_cb, NULL)) == NULL || event_add(lookup_ev, NULL) == -1) {
		log_warn("control: peer lookups run in the event loop");
		if (lookup_ev != NULL)
			event_free(lookup_ev);
		lookup_ev = NULL;
	}
	control_fd_budget();
	accept_pause = evtimer_new(d->base, accept_resume, NULL);
	listen_path = xstrdup(conf->ctl_socket);
	log_info("listening on %s", conf->ctl_socket);
	return 0;
}

/* Hold new connections in the backlog while start-up reconciles. */
void
control_accept(int on)
{
	if (listener == NULL)
		return;
	if (on)
		evconnlistener_enable(listener);
	else
		evconnlistener_disable(listener);
}

void
control_close(void)
{
	struct client *c;

	if (listener != NULL) {
		struct stat st;

		evconnlistener_free(listener);
		listener = NULL;
		/* Only our own: another switchd may have bound this path since. */
		if (lstat(listen_path, &st) == -1)
			;	/* already gone */
		else if (st.st_dev == listen_dev && st.st_ino == listen_ino)
			unlink(listen_path);
		else
			log_warnx("control: %s is not the socket this switchd made; "
			    "left in place", listen_path);
	}
	if (accept_pause != NULL) {
		event_free(accept_pause);
		accept_pause = NULL;
	}
	/*
	 * Answers already back are freed; lookups still in their threads stay
	 * listed (and the pipe open) until the process ends.
	 */
	if (lookup_ev != NULL) {
		lookup_done_cb(lookup_pipe[0], EV_READ, NULL);
		event_free(lookup_ev);
		lookup_ev = NULL;
	}
	/*
	 * Last replies (the answer to the command SIGTERM waited for) go out.
	 * The bufferevent froze its output for anyone but itself; it is being
	 * freed, so take it over: blocking, bounded to a second a client.
	 */
	while ((c = TAILQ_FIRST(&clients)) != NULL) {
		struct evbuffer *out = bufferevent_get_output(c->bev);
		evutil_socket_t fd = bufferevent_getfd(c->bev);
		struct timeval tv = { 1, 0 };

		if (evbuffer_get_length(out) > 0 && fd != -1) {
			evbuffer_unfreeze(out, 1);
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			while (evbuffer_get_length(out) > 0)
				if (evbuffer_write(out, fd) <= 0)
					break;
		}
		client_free(c);
	}
	free(listen_path);
	listen_path = NULL;
}
