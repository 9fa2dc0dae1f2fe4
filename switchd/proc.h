/*
 * proc.h — child processes run from the event loop: deploy.command,
 * smoke.command and friends, which may take many minutes while the daemon
 * keeps answering.
 *
 * Each command runs as "/bin/sh -c COMMAND" in its own process group, with
 * stdin from /dev/null, stdout and stderr on pipes read line by line, and no
 * other descriptor of the daemon.  Children are reaped from a SIGCHLD
 * event with waitpid(-1), each status handed to the command it belongs
 * to: the daemon must fork nothing but through proc_start().  On Linux it
 * becomes a child subreaper (PR_SET_CHILD_SUBREAPER) at the first
 * proc_start(), so a command's orphaned descendants come back to it, even
 * those that left its process group (setsid), and are reaped instead of
 * lingering as zombies under an init that does not reap.
 *
 * The exit callback runs once, from the loop, after both pipes reached EOF
 * and the child was reaped; after a kill (timeout or proc_kill) also only
 * when nothing of its process group is left.  The struct proc is freed when
 * the exit callback returns.
 */
#ifndef SWITCHD_PROC_H
#define SWITCHD_PROC_H
#include <sys/types.h>

struct event_base;
struct proc;

#define PROC_LINE_MAX	4096	/* longer lines arrive in pieces of this size */
#define PROC_KILL_GRACE	5	/* seconds between SIGTERM and SIGKILL */

/* line has no trailing newline; valid during the call only. */
typedef void (*proc_line_cb)(const char *line, int is_stderr, void *arg);
/* status as waitpid's; see WIFEXITED etc. */
typedef void (*proc_exit_cb)(int status, int timed_out, void *arg);

struct proc	*proc_start(struct event_base *, const char *command,
		    char *const env_extra[], int timeout_s,
		    proc_line_cb, proc_exit_cb, void *arg);
void		 proc_kill(struct proc *);
void		 proc_forget(struct proc *);
pid_t		 proc_pid(const struct proc *);

#endif
