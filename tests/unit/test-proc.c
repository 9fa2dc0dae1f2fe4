/*
 * test-proc.c — proc.c with real /bin/sh children: output line by line,
 * exit status, environment, descriptors, timeouts that kill the whole
 * process group, and no zombie left behind.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "proc.h"
#include "unit.h"

#define MAXLINES	64

static struct event_base	*base;

struct run {
	struct proc	*p;
	pid_t		 pid;
	char		*out[MAXLINES];
	char		*err[MAXLINES];
	int		 nout, nerr;
	int		 exited;
	int		 status;
	int		 timed_out;
	int		 late_lines;	/* lines after the exit callback */
	const char	*kill_on;	/* proc_kill() when this line arrives */
	double		 secs;		/* start to exit callback */
	struct timespec	 t0;
};

static double
since(const struct timespec *t0)
{
	struct timespec	 t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return ((t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9);
}

static void
line_cb(const char *line, int is_stderr, void *arg)
{
	struct run	*r = arg;

	if (r->exited)
		r->late_lines++;
	if (is_stderr && r->nerr < MAXLINES)
		r->err[r->nerr++] = strdup(line);
	else if (!is_stderr && r->nout < MAXLINES)
		r->out[r->nout++] = strdup(line);
	if (r->kill_on != NULL && strcmp(line, r->kill_on) == 0)
		proc_kill(r->p);
}

static void
exit_cb(int status, int timed_out, void *arg)
{
	struct run	*r = arg;

	r->exited++;
	r->status = status;
	r->timed_out = timed_out;
	r->secs = since(&r->t0);
}

static void
run_free(struct run *r)
{
	int	 i;

	for (i = 0; i < r->nout; i++)
		free(r->out[i]);
	for (i = 0; i < r->nerr; i++)
		free(r->err[i]);
	memset(r, 0, sizeof(*r));
}

static int	 guard_fired;

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	guard_fired = 1;
}

/* Run the loop until *n reaches target; the guard keeps a bug from hanging. */
static void
run_until(const int *n, int target, int secs)
{
	struct timeval	 tv = { secs, 0 };
	struct event	*guard = evtimer_new(base, guard_cb, NULL);

	guard_fired = 0;
	evtimer_add(guard, &tv);
	while (*n < target && !guard_fired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	CHECK(!guard_fired);
}

static void
run_for_ms(long ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event	*ev = evtimer_new(base, guard_cb, NULL);

	guard_fired = 0;
	evtimer_add(ev, &tv);
	while (!guard_fired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
}

static struct proc *
start(struct run *r, const char *cmd, char *const env[], int timeout)
{
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	r->p = proc_start(base, cmd, env, timeout, line_cb, exit_cb, r);
	if (r->p != NULL)
		r->pid = proc_pid(r->p);
	return (r->p);
}

/* Reaped, and by proc.c: nothing is left for anyone to wait for. */
static int
no_zombie(pid_t pid)
{
	return (waitpid(pid, NULL, WNOHANG) == -1 && errno == ECHILD);
}

static int
gone(pid_t pid)
{
	return (kill(pid, 0) == -1 && errno == ESRCH);
}

static void
test_lines(void)
{
	struct run	 r;

	memset(&r, 0, sizeof(r));
	CHECK(start(&r, "echo a; echo b >&2; echo c; echo d >&2; "
	    "printf partial", NULL, 0) != NULL);
	CHECK(r.pid > 0);
	run_until(&r.exited, 1, 10);
	CHECK_INT(r.nout, 3);
	CHECK_INT(r.nerr, 2);
	if (r.nout == 3 && r.nerr == 2) {
		CHECK_STR(r.out[0], "a");
		CHECK_STR(r.out[1], "c");
		CHECK_STR(r.out[2], "partial");
		CHECK_STR(r.err[0], "b");
		CHECK_STR(r.err[1], "d");
	}
	CHECK(WIFEXITED(r.status));
	CHECK_INT(WEXITSTATUS(r.status), 0);
	CHECK_INT(r.timed_out, 0);
	CHECK(no_zombie(r.pid));
	run_free(&r);
}

static void
test_long_lines(void)
{
	struct run	 r;

	memset(&r, 0, sizeof(r));
	CHECK(start(&r, "head -c 10000 /dev/zero | tr '\\0' x; echo; "
	    "printf '%04096d\\n' 0; printf '\\n'", NULL, 0) != NULL);
	run_until(&r.exited, 1, 10);
	/* 4096 + 4096 + 1808, a line of exactly 4096, an empty line. */
	CHECK_INT(r.nout, 5);
	if (r.nout == 5) {
		CHECK_INT(strlen(r.out[0]), PROC_LINE_MAX);
		CHECK_INT(strlen(r.out[1]), PROC_LINE_MAX);
		CHECK_INT(strlen(r.out[2]), 1808);
		CHECK(r.out[2][0] == 'x');
		CHECK_INT(strlen(r.out[3]), PROC_LINE_MAX);
		CHECK(r.out[3][0] == '0');
		CHECK_STR(r.out[4], "");
	}
	run_free(&r);
}

/* Lines reach JSON: valid UTF-8, and a piece cut never splits a character. */
static void
test_utf8_lines(void)
{
	struct run	 r;
	size_t		 n0;

	memset(&r, 0, sizeof(r));
	/* 4095 x then "é": the 4096-byte cut falls inside the é. */
	CHECK(start(&r, "head -c 4095 /dev/zero | tr '\\0' x; printf '\\303\\251z\\n'; "
	    "printf 'bad \\377\\376 bytes \\303\\n'", NULL, 0) != NULL);
	run_until(&r.exited, 1, 10);
	CHECK_INT(r.nout, 3);
	if (r.nout == 3) {
		n0 = strlen(r.out[0]);
		CHECK_INT(n0, 4095);
		CHECK(r.out[0][n0 - 1] == 'x');
		CHECK_STR(r.out[1], "\303\251z");
		CHECK_STR(r.out[2], "bad ?? bytes ?");
	}
	run_free(&r);
}

static void
test_exit_status(void)
{
	struct run	 r;

	memset(&r, 0, sizeof(r));
	CHECK(start(&r, "exit 3", NULL, 0) != NULL);
	CHECK_INT(r.exited, 0);
	run_until(&r.exited, 1, 10);
	CHECK(WIFEXITED(r.status));
	CHECK_INT(WEXITSTATUS(r.status), 3);
	CHECK_INT(r.timed_out, 0);
	CHECK(no_zombie(r.pid));
	run_free(&r);

	memset(&r, 0, sizeof(r));
	CHECK(start(&r, "kill -9 $$", NULL, 0) != NULL);
	run_until(&r.exited, 1, 10);
	CHECK(WIFSIGNALED(r.status));
	CHECK_INT(WTERMSIG(r.status), SIGKILL);
	CHECK_INT(r.timed_out, 0);
	run_free(&r);
}

static void
test_env(void)
{
	static char	 e1[] = "SWITCHD_TEST_VAR=first", e2[] = "HOME=/override";
	static char	 e3[] = "SWITCHD_TEST_VAR=hello world";
	char *const	 env[] = { e1, e2, e3, NULL };
	struct run	 r;

	setenv("SWITCHD_PARENT", "inherited", 1);
	setenv("HOME", "/parent", 1);
	memset(&r, 0, sizeof(r));
	CHECK(start(&r, "echo \"$SWITCHD_TEST_VAR|$HOME|$SWITCHD_PARENT\"; "
	    "env | grep -c '^HOME='", env, 0) != NULL);
	run_until(&r.exited, 1, 10);
	CHECK_INT(r.nout, 2);
	if (r.nout == 2) {
		CHECK_STR(r.out[0], "hello world|/override|inherited");
		CHECK_STR(r.out[1], "1");
	}
	run_free(&r);
}

/* switchd's AWS credentials stay with switchd; what the caller passes goes. */
static void
test_env_no_aws(void)
{
	static char	 e1[] = "AWS_PROFILE=given";
	char *const	 env[] = { e1, NULL };
	struct run	 r;

	setenv("AWS_SECRET_ACCESS_KEY", "daemon-secret", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIADAEMON", 1);
	memset(&r, 0, sizeof(r));
	CHECK(start(&r, "env | grep '^AWS_' | sort", env, 0) != NULL);
	run_until(&r.exited, 1, 10);
	CHECK_INT(r.nout, 1);
	if (r.nout == 1)
		CHECK_STR(r.out[0], "AWS_PROFILE=given");
	run_free(&r);
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_ACCESS_KEY_ID");
}

/* The test's own descriptor, opened without O_CLOEXEC, must not leak. */
static void
test_fds(void)
{
	struct run	 r;
	int		 fd, i, leaked = 0, std = 0;

	fd = open("/dev/null", O_RDONLY);
	CHECK(fd != -1);
	CHECK(dup2(fd, 57) == 57);
	CHECK_INT(fcntl(57, F_GETFD) & FD_CLOEXEC, 0);
	memset(&r, 0, sizeof(r));
	CHECK(start(&r, "ls /proc/self/fd", NULL, 0) != NULL);
	run_until(&r.exited, 1, 10);
	for (i = 0; i < r.nout; i++) {
		/* 0-2 are the child's stdio, 3 is ls's own directory. */
		if (atoi(r.out[i]) <= 2)
			std++;
		else if (atoi(r.out[i]) != 3) {
			printf("# leaked fd %s\n", r.out[i]);
			leaked++;
		}
	}
	CHECK_INT(std, 3);
	CHECK_INT(leaked, 0);
	close(57);
	close(fd);
	run_free(&r);

	/* stdin is /dev/null: a read sees EOF at once. */
	memset(&r, 0, sizeof(r));
	CHECK(start(&r, "cat; readlink /proc/self/fd/0", NULL, 0) != NULL);
	run_until(&r.exited, 1, 10);
	CHECK_INT(r.nout, 1);
	if (r.nout == 1)
		CHECK_STR(r.out[0], "/dev/null");
	run_free(&r);
}

/* The exit callback waits for output still written after the leader exits. */
static void
test_output_after_exit(void)
{
	struct run	 r;

	memset(&r, 0, sizeof(r));
	CHECK(start(&r, "(sleep 0.3; echo late) & echo early", NULL, 0) !=
	    NULL);
	run_until(&r.exited, 1, 10);
	CHECK_INT(r.nout, 2);
	if (r.nout == 2) {
		CHECK_STR(r.out[0], "early");
		CHECK_STR(r.out[1], "late");
	}
	CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
	CHECK_INT(r.late_lines, 0);
	run_free(&r);
}

/*
 * A background job with its output elsewhere outlives the command (a
 * "nohup server &" in a deploy script) and is reaped when it ends.
 */
static void
test_background(void)
{
	struct run	 r;
	pid_t		 bg = 0;
	int		 i;

	memset(&r, 0, sizeof(r));
	CHECK(start(&r, "sleep 2 >/dev/null 2>&1 & echo $!", NULL, 0) !=
	    NULL);
	run_until(&r.exited, 1, 10);
	CHECK_INT(r.nout, 1);
	if (r.nout == 1)
		bg = atoi(r.out[0]);
	CHECK(bg > 0);
	CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
	/* The callback did not wait for it... */
	CHECK(bg > 0 && !gone(bg));
	/* ...and it is reaped, not left a zombie, when it ends. */
	for (i = 0; i < 100 && bg > 0 && !gone(bg); i++)
		run_for_ms(50);
	CHECK(bg > 0 && gone(bg));
	run_free(&r);
}

static void
test_timeouts(void)
{
	struct run	 term, ignore, gc, gcign;
	pid_t		 gcpid = 0, gcignpid = 0;

	/*
	 * Together, so the two 5 s SIGKILL graces overlap: a plain sleep, a
	 * shell ignoring SIGTERM, a grandchild, and a grandchild that ignores
	 * SIGTERM with its output elsewhere (its leader dies at the TERM).
	 */
	memset(&term, 0, sizeof(term));
	memset(&ignore, 0, sizeof(ignore));
	memset(&gc, 0, sizeof(gc));
	memset(&gcign, 0, sizeof(gcign));
	CHECK(start(&term, "sleep 30", NULL, 1) != NULL);
	CHECK(start(&ignore, "trap '' TERM; sleep 30", NULL, 1) != NULL);
	CHECK(start(&gc, "sleep 30 & echo $!; wait", NULL, 1) != NULL);
	CHECK(start(&gcign, "(trap '' TERM; exec sleep 30) >/dev/null 2>&1 & "
	    "echo $!; wait", NULL, 1) != NULL);
	run_until(&term.exited, 1, 15);
	run_until(&ignore.exited, 1, 15);
	run_until(&gc.exited, 1, 15);
	run_until(&gcign.exited, 1, 15);

	CHECK_INT(term.timed_out, 1);
	CHECK(WIFSIGNALED(term.status) && WTERMSIG(term.status) == SIGTERM);
	CHECK(term.secs < 4);
	CHECK(no_zombie(term.pid) && gone(term.pid));

	CHECK_INT(ignore.timed_out, 1);
	CHECK(WIFSIGNALED(ignore.status) && WTERMSIG(ignore.status) == SIGKILL);
	CHECK(ignore.secs >= PROC_KILL_GRACE && ignore.secs < 10);
	CHECK(no_zombie(ignore.pid) && gone(ignore.pid));

	CHECK_INT(gc.timed_out, 1);
	CHECK_INT(gc.nout, 1);
	if (gc.nout == 1)
		gcpid = atoi(gc.out[0]);
	CHECK(gcpid > 0 && gone(gcpid));
	CHECK(no_zombie(gc.pid) && gone(gc.pid));

	CHECK_INT(gcign.timed_out, 1);
	CHECK_INT(gcign.nout, 1);
	if (gcign.nout == 1)
		gcignpid = atoi(gcign.out[0]);
	CHECK(gcignpid > 0 && gone(gcignpid));
	CHECK(gcign.secs >= PROC_KILL_GRACE && gcign.secs < 10);
	CHECK(no_zombie(gcign.pid) && gone(gcign.pid));
	printf("# killed after %.1f s (TERM), %.1f s (ignores TERM), "
	    "%.1f s (grandchild), %.1f s (grandchild ignores TERM)\n",
	    term.secs, ignore.secs, gc.secs, gcign.secs);
	run_free(&term);
	run_free(&ignore);
	run_free(&gc);
	run_free(&gcign);
}

/* proc_kill from inside a line callback; the exit callback still comes. */
static void
test_kill(void)
{
	struct run	 r;

	memset(&r, 0, sizeof(r));
	r.kill_on = "ready";
	CHECK(start(&r, "echo ready; sleep 30", NULL, 0) != NULL);
	run_until(&r.exited, 1, 10);
	CHECK_INT(r.exited, 1);
	CHECK_INT(r.timed_out, 0);
	CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGTERM);
	CHECK(no_zombie(r.pid));
	run_free(&r);
}

static void
test_forget(void)
{
	struct run	 r;
	int		 i;

	memset(&r, 0, sizeof(r));
	CHECK(start(&r, "echo one; sleep 30; echo never", NULL, 0) != NULL);
	run_until(&r.nout, 1, 10);
	proc_forget(r.p);
	for (i = 0; i < 100 && !gone(r.pid); i++)
		run_for_ms(50);
	CHECK(gone(r.pid));
	run_for_ms(100);
	CHECK_INT(r.exited, 0);
	CHECK_INT(r.nout, 1);
	CHECK(no_zombie(r.pid));
	run_free(&r);
}

static void
test_bad_args(void)
{
	errno = 0;
	CHECK(proc_start(base, NULL, NULL, 0, line_cb, exit_cb, NULL) == NULL);
	CHECK_INT(errno, EINVAL);
}

int
main(void)
{
	/* Like the daemon: a writer to a closed pipe gets EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	RUN(test_lines);
	RUN(test_long_lines);
	RUN(test_utf8_lines);
	RUN(test_exit_status);
	RUN(test_env);
	RUN(test_env_no_aws);
	RUN(test_fds);
	RUN(test_output_after_exit);
	RUN(test_background);
	RUN(test_timeouts);
	RUN(test_kill);
	RUN(test_forget);
	RUN(test_bad_args);
	event_base_free(base);
	return (unit_summary());
}
