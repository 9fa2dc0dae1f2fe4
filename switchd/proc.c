/*
 * proc.c — child processes run from the event loop (see proc.h).
 *
 * Owns: spawning "/bin/sh -c" in a fresh process group with a clean set of
 * descriptors and signals, reading its stdout and stderr line by line,
 * reaping it and, as subreaper, every orphaned descendant (waitpid(-1),
 * each status handed to its own command) from one SIGCHLD event, and the
 * timeout: SIGTERM to the group, SIGKILL PROC_KILL_GRACE seconds later.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "proc.h"
#include "util.h"

#if !defined(__GLIBC__) || !__GLIBC_PREREQ(2, 34)
#error "proc.c needs posix_spawn_file_actions_addclosefrom_np (glibc >= 2.34)"
#endif

#define PROC_POLL_MS	100	/* after SIGKILL, for group members not ours to reap */
#define PROC_POLLS	50

struct proc;

struct proc_stream {
	struct proc	*p;
	int		 fd;		/* -1 once closed */
	int		 is_stderr;
	struct event	*ev;
	size_t		 len;
	char		 buf[PROC_LINE_MAX + 1];
};

struct proc {
	struct event_base	*base;
	pid_t			 pid;		/* also its process group */
	struct proc_stream	 out;
	struct proc_stream	 err;
	struct event		*timeout_ev;
	struct event		*kill_ev;	/* SIGKILL after the grace, then polls */

	int			 status;
	int			 reaped;
	int			 timed_out;
	int			 killing;	/* SIGTERM sent: wait for the whole group */
	int			 killed;	/* SIGKILL sent */
	int			 polls;
	int			 gave_up;	/* stop waiting for the group */
	int			 finished;

	proc_line_cb		 line_cb;
	proc_exit_cb		 exit_cb;
	void			*arg;
	TAILQ_ENTRY(proc)	 entry;
};

static TAILQ_HEAD(, proc)	 procs = TAILQ_HEAD_INITIALIZER(procs);
static struct event		*proc_sigchld;
static struct event_base	*proc_sigchld_base;
static int			 proc_in_sigchld;
/* Groups that outlived their command ("nohup server &"): reaped as they end. */
static pid_t			*proc_lingering;
static size_t			 proc_nlingering;

static void	 proc_sigchld_cb(evutil_socket_t, short, void *);
static void	 proc_read_cb(evutil_socket_t, short, void *);
static void	 proc_timeout_cb(evutil_socket_t, short, void *);
static void	 proc_kill_cb(evutil_socket_t, short, void *);
static int	 proc_maybe_finish(struct proc *);
static void	 proc_stream_close(struct proc_stream *, int);

static int
proc_group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0 || errno == EPERM;
}

/* Signal the group, unless it is gone and its id could be someone else's. */
static void
proc_signal_group(struct proc *p, int sig)
{
	if (p->reaped && !proc_group_alive(p->pid))
		return;
	if (kill(-p->pid, sig) == -1 && errno != ESRCH)
		log_warn("proc %d: kill", (int)p->pid);
}

/* Reap members of group pgid that are our children; 0 once none is left. */
static int
proc_reap_group(pid_t pgid)
{
	pid_t	 r;

	while ((r = waitpid(-pgid, NULL, WNOHANG)) > 0)
		;
	return r == -1 && errno == ECHILD ? 0 : 1;
}

static void
proc_reap(struct proc *p)
{
	pid_t	 r;
	int	 st;

	if (!p->reaped) {
		r = waitpid(p->pid, &st, WNOHANG);
		if (r == p->pid) {
			p->reaped = 1;
			p->status = st;
		} else if (r == -1 && errno != EINTR) {
			/* SIGCHLD ignored, or a waitpid(-1) elsewhere took it. */
			log_warn("proc %d: waitpid", (int)p->pid);
			p->reaped = 1;
			p->status = 255 << 8;
		}
	}
	/* Only now: waitpid(-pgid) could otherwise take the leader's status. */
	if (p->reaped)
		proc_reap_group(p->pid);
}

static void
proc_linger(pid_t pgid)
{
	pid_t	*l;

	if (!proc_reap_group(pgid))
		return;
	log_debug("proc %d: processes of its group still run", (int)pgid);
	l = reallocarray(proc_lingering, proc_nlingering + 1, sizeof(*l));
	if (l == NULL) {
		log_warn("proc %d: cannot track its process group", (int)pgid);
		return;
	}
	proc_lingering = l;
	proc_lingering[proc_nlingering++] = pgid;
}

static void
proc_reap_lingering(void)
{
	struct proc	*p;
	size_t		 i = 0;

	while (i < proc_nlingering) {
		/* Its id went back into use by a command of ours: not ours to reap. */
		TAILQ_FOREACH(p, &procs, entry)
			if (p->pid == proc_lingering[i])
				break;
		if (p == NULL && proc_reap_group(proc_lingering[i])) {
			i++;
			continue;
		}
		proc_lingering[i] = proc_lingering[--proc_nlingering];
	}
	if (proc_nlingering == 0) {
		free(proc_lingering);
		proc_lingering = NULL;
	}
}

static int
proc_sigchld_ref(struct event_base *base)
{
	if (proc_sigchld != NULL)
		return proc_sigchld_base == base ? 0 : -1;
	if ((proc_sigchld = evsignal_new(base, SIGCHLD, proc_sigchld_cb,
	    NULL)) == NULL)
		return -1;
	if (evsignal_add(proc_sigchld, NULL) == -1) {
		event_free(proc_sigchld);
		proc_sigchld = NULL;
		return -1;
	}
	proc_sigchld_base = base;
	return 0;
}

static int	 proc_subreaping;

static void
proc_sigchld_unref(void)
{
	/* A subreaper inherits orphans at any time: it watches for good. */
	if (proc_sigchld == NULL || proc_in_sigchld || !TAILQ_EMPTY(&procs) ||
	    proc_nlingering > 0 || proc_subreaping)
		return;
	event_free(proc_sigchld);
	proc_sigchld = NULL;
	proc_sigchld_base = NULL;
}

/*
 * Reap every child that has ended: ours by pid get their status, the rest
 * are descendants a command left behind that left its process group too
 * (setsid: ssh ControlPersist, daemons a deploy started), which came to us
 * as subreaper and which nobody else will ever wait for.
 */
static void
proc_reap_all(void)
{
	struct proc	*p;
	pid_t		 r;
	int		 st;

	while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
		TAILQ_FOREACH(p, &procs, entry)
			if (p->pid == r && !p->reaped)
				break;
		if (p != NULL) {
			p->reaped = 1;
			p->status = st;
		} else
			log_debug("reaped process %d, an orphaned descendant", (int)r);
	}
}

/* SIGCHLD says some child changed: reap them all, then look at each of ours. */
static void
proc_sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	struct proc	*p, *next;

	(void)sig;
	(void)what;
	(void)arg;
	proc_in_sigchld = 1;
	proc_reap_all();
	for (p = TAILQ_FIRST(&procs); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		proc_maybe_finish(p);
	}
	proc_reap_lingering();
	proc_in_sigchld = 0;
	proc_sigchld_unref();
}

/*
 * The daemon's orphaned grandchildren would otherwise go to init, which in
 * a container may never reap them: keep them, and kill and reap by group.
 */
static void
proc_subreaper(void)
{
#ifdef PR_SET_CHILD_SUBREAPER
	static int	 done;

	if (done)
		return;
	done = 1;
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		log_warn("prctl(PR_SET_CHILD_SUBREAPER)");
	else
		proc_subreaping = 1;
#endif
}

static int
proc_env_has(const char *var, char *const list[])
{
	size_t	 len = strcspn(var, "=");
	size_t	 i;

	for (i = 0; list != NULL && list[i] != NULL; i++)
		if (strncmp(list[i], var, len) == 0 && list[i][len] == '=')
			return 1;
	return 0;
}

/*
 * The daemon's environment with env_extra replacing what it names, less
 * AWS_*: switchd's own EC2 credentials are not the deploy's, the live
 * tests' or the notify command's.  A command that needs AWS names its own
 * (AWS_PROFILE=deploy cap ...), or gets them in env_extra.
 */
static char **
proc_env(char *const extra[])
{
	char	**env;
	size_t	  n = 0, m = 0, i, k = 0;

	while (environ != NULL && environ[n] != NULL)
		n++;
	while (extra != NULL && extra[m] != NULL)
		m++;
	if ((env = calloc(n + m + 1, sizeof(*env))) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "AWS_", 4) != 0 &&
		    !proc_env_has(environ[i], extra))
			env[k++] = environ[i];
	for (i = 0; i < m; i++)
		if (!proc_env_has(extra[i], extra + i + 1))	/* last wins */
			env[k++] = extra[i];
	env[k] = NULL;
	return env;
}

/* A close-on-exec pipe clear of fds 0-2, where the child's dup2s go. */
static int
proc_pipe(int fds[2])
{
	int	 i, fd;

	if (pipe2(fds, O_CLOEXEC) == -1)
		return -1;
	for (i = 0; i < 2; i++) {
		if (fds[i] > 2)
			continue;
		if ((fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) == -1)
			return -1;
		close(fds[i]);
		fds[i] = fd;
	}
	/* Only our end: the child's stdout must stay blocking. */
	return fcntl(fds[0], F_SETFL, O_NONBLOCK);
}

static void
proc_close_pair(int fds[2])
{
	if (fds[0] != -1)
		close(fds[0]);
	if (fds[1] != -1)
		close(fds[1]);
	fds[0] = fds[1] = -1;
}

static int
proc_spawn(struct proc *p, const char *command, char *const env_extra[],
    int out_w, int err_w)
{
	static char			 sh[] = "sh", dash_c[] = "-c";
	char				*argv[] = { sh, dash_c, NULL, NULL };
	posix_spawn_file_actions_t	 fa;
	posix_spawnattr_t		 attr;
	sigset_t			 all, none;
	char				**envp;
	int				 rc;

	argv[2] = (char *)command;
	if ((envp = proc_env(env_extra)) == NULL)
		return errno;
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/*
	 * fd 0 from /dev/null, 1 and 2 to our pipes, nothing else: the
	 * daemon's listening and control sockets must not outlive it in a
	 * deploy script.  Signals start at their defaults (the daemon ignores
	 * SIGPIPE) and unblocked; the group is the command's own, so a
	 * timeout can kill all of it.
	 */
	rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, out_w, 1);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, err_w, 2);
	if (rc == 0)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (rc == 0)
		rc = posix_spawnattr_setsigdefault(&attr, &all);
	if (rc == 0)
		rc = posix_spawnattr_setsigmask(&attr, &none);
	if (rc == 0)
		rc = posix_spawnattr_setpgroup(&attr, 0);
	if (rc == 0)
		rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
		    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	if (rc == 0)
		rc = posix_spawn(&p->pid, "/bin/sh", &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	return rc;
}

static int
proc_stream_init(struct proc *p, struct proc_stream *s, int is_stderr)
{
	s->p = p;
	s->is_stderr = is_stderr;
	s->ev = event_new(p->base, s->fd, EV_READ | EV_PERSIST, proc_read_cb,
	    s);
	if (s->ev == NULL || event_add(s->ev, NULL) == -1)
		return -1;
	return 0;
}

struct proc *
proc_start(struct event_base *base, const char *command,
    char *const env_extra[], int timeout_s, proc_line_cb line_cb,
    proc_exit_cb exit_cb, void *arg)
{
	struct proc	*p;
	struct timeval	 tv;
	int		 out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int		 rc, save;

	if (base == NULL || command == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->base = base;
	p->line_cb = line_cb;
	p->exit_cb = exit_cb;
	p->arg = arg;
	p->out.fd = p->err.fd = -1;

	/* Before the fork: a child that exits at once must not be missed. */
	if (proc_sigchld_ref(base) == -1) {
		log_warnx("%s: cannot watch SIGCHLD on this event base",
		    __func__);
		free(p);
		errno = EINVAL;
		return NULL;
	}
	proc_subreaper();
	if (proc_pipe(out) == -1 || proc_pipe(err) == -1)
		goto fail;
	if ((p->kill_ev = evtimer_new(base, proc_kill_cb, p)) == NULL)
		goto fail;
	if (timeout_s > 0 &&
	    (p->timeout_ev = evtimer_new(base, proc_timeout_cb, p)) == NULL)
		goto fail;
	if ((rc = proc_spawn(p, command, env_extra, out[1], err[1])) != 0) {
		errno = rc;
		goto fail;
	}
	close(out[1]);
	close(err[1]);
	TAILQ_INSERT_TAIL(&procs, p, entry);
	log_debug("proc %d: started: %s", (int)p->pid, command);

	/* The child runs: from here on, failures go through its exit cb. */
	p->out.fd = out[0];
	p->err.fd = err[0];
	if (proc_stream_init(p, &p->out, 0) == -1 ||
	    proc_stream_init(p, &p->err, 1) == -1) {
		log_warnx("proc %d: cannot watch its output", (int)p->pid);
		proc_stream_close(&p->out, 0);
		proc_stream_close(&p->err, 0);
		proc_kill(p);
		return p;
	}
	if (p->timeout_ev != NULL) {
		tv.tv_sec = timeout_s;
		tv.tv_usec = 0;
		evtimer_add(p->timeout_ev, &tv);
	}
	return p;

fail:
	save = errno;
	proc_close_pair(out);
	proc_close_pair(err);
	if (p->kill_ev != NULL)
		event_free(p->kill_ev);
	if (p->timeout_ev != NULL)
		event_free(p->timeout_ev);
	free(p);
	proc_sigchld_unref();
	errno = save;
	return NULL;
}

pid_t
proc_pid(const struct proc *p)
{
	return p->pid;
}

void
proc_kill(struct proc *p)
{
	struct timeval	 tv = { PROC_KILL_GRACE, 0 };

	if (p == NULL || p->finished || p->killing)
		return;
	p->killing = 1;
	if (p->timeout_ev != NULL)
		evtimer_del(p->timeout_ev);
	proc_signal_group(p, SIGTERM);
	evtimer_add(p->kill_ev, &tv);
}

void
proc_forget(struct proc *p)
{
	if (p == NULL || p->finished)
		return;
	p->line_cb = NULL;
	p->exit_cb = NULL;
	p->arg = NULL;
	proc_kill(p);
}

static void
proc_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proc	*p = arg;

	(void)fd;
	(void)what;
	log_warnx("proc %d: timed out, terminating its process group",
	    (int)p->pid);
	p->timed_out = 1;
	proc_kill(p);
}

static void
proc_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proc	*p = arg;
	struct timeval	 tv = { 0, PROC_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	if (!p->killed) {
		p->killed = 1;
		if (!p->reaped || proc_group_alive(p->pid))
			log_warnx("proc %d: still there %d s after SIGTERM, "
			    "sending SIGKILL", (int)p->pid, PROC_KILL_GRACE);
		proc_signal_group(p, SIGKILL);
	} else if (++p->polls >= PROC_POLLS) {
		log_warnx("proc %d: its process group outlived SIGKILL; "
		    "not waiting for it any longer", (int)p->pid);
		p->gave_up = 1;
	}
	if (!proc_maybe_finish(p))
		evtimer_add(p->kill_ev, &tv);
}

/*
 * Hand the line over as valid UTF-8 (it goes into JSON).  A piece cut at
 * PROC_LINE_MAX ends before a character the cut would split; that
 * character starts the next piece.
 */
static void
proc_stream_line(struct proc_stream *s, int cut)
{
	struct proc	*p = s->p;
	char		 rest[4];
	size_t		 len = s->len, nrest = 0;

	if (cut) {
		len = utf8_complete(s->buf, s->len);
		nrest = s->len - len;
		memcpy(rest, s->buf + len, nrest);
	}
	s->buf[len] = '\0';
	utf8_fix(s->buf);
	if (p->line_cb != NULL)
		p->line_cb(s->buf, s->is_stderr, p->arg);
	memcpy(s->buf, rest, nrest);
	s->len = nrest;
}

static void
proc_stream_feed(struct proc_stream *s, const char *data, size_t n)
{
	const char	*nl;
	size_t		 take, room;

	while (n > 0) {
		if (s->len == PROC_LINE_MAX) {
			/* A full piece; a newline right after it ends it. */
			if (*data == '\n') {
				data++;
				n--;
				proc_stream_line(s, 0);
			} else
				proc_stream_line(s, 1);
			continue;
		}
		nl = memchr(data, '\n', n);
		take = nl != NULL ? (size_t)(nl - data) : n;
		room = PROC_LINE_MAX - s->len;
		if (take > room) {
			take = room;
			nl = NULL;
		}
		memcpy(s->buf + s->len, data, take);
		s->len += take;
		data += take;
		n -= take;
		if (nl != NULL) {
			data++;
			n--;
			proc_stream_line(s, 0);
		}
	}
}

/* Deliver what is left (a last line without newline) and stop reading. */
static void
proc_stream_close(struct proc_stream *s, int drain)
{
	char	 buf[8192];
	ssize_t	 n;
	int	 i;

	if (s->fd == -1)
		return;
	/* Bounded: whatever holds the pipe now may write forever. */
	for (i = 0; drain && i < 64; i++) {
		if ((n = read(s->fd, buf, sizeof(buf))) <= 0)
			break;
		proc_stream_feed(s, buf, n);
	}
	if (s->len > 0)
		proc_stream_line(s, 0);
	if (s->ev != NULL)
		event_free(s->ev);
	s->ev = NULL;
	close(s->fd);
	s->fd = -1;
}

static void
proc_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proc_stream	*s = arg;
	char			 buf[8192];
	ssize_t			 n;

	(void)what;
	n = read(fd, buf, sizeof(buf));
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		log_warn("proc %d: read", (int)s->p->pid);
		n = 0;
	}
	if (n > 0) {
		proc_stream_feed(s, buf, n);
		return;
	}
	proc_stream_close(s, 0);
	proc_maybe_finish(s->p);
}

static void
proc_finish(struct proc *p)
{
	p->finished = 1;
	TAILQ_REMOVE(&procs, p, entry);
	if (p->timeout_ev != NULL)
		event_free(p->timeout_ev);
	event_free(p->kill_ev);
	if (proc_group_alive(p->pid))
		proc_linger(p->pid);
	if (WIFEXITED(p->status))
		log_debug("proc %d: exited %d%s", (int)p->pid,
		    WEXITSTATUS(p->status), p->timed_out ? " (timed out)" : "");
	else if (WIFSIGNALED(p->status))
		log_debug("proc %d: killed by signal %d%s", (int)p->pid,
		    WTERMSIG(p->status), p->timed_out ? " (timed out)" : "");
	if (p->exit_cb != NULL)
		p->exit_cb(p->status, p->timed_out, p->arg);
	free(p);
	proc_sigchld_unref();
}

/*
 * Done when the leader is reaped and both pipes are at EOF, so no output is
 * lost; after a kill, also when no process of its group is left (the pipes
 * may then be held by something that left the group: drain and close them).
 * Returns 1 if p is gone.
 */
static int
proc_maybe_finish(struct proc *p)
{
	if (p->finished)
		return 1;
	proc_reap(p);
	if (!p->reaped)
		return 0;
	if (p->killing && !p->gave_up && proc_group_alive(p->pid))
		return 0;
	if (p->out.fd != -1 || p->err.fd != -1) {
		if (!p->killing)
			return 0;
		proc_stream_close(&p->out, 1);
		proc_stream_close(&p->err, 1);
	}
	proc_finish(p);
	return 1;
}
