/*
 * run.h — files and commands for the drivers that reload (run.c): below
 * lb.c and every drv-*.c, which all may use it.
 */
#ifndef SWITCHD_RUN_H
#define SWITCHD_RUN_H

#include <event2/event.h>

/* A whole file, or NULL (errno; ENOENT: there is none). */
char		*file_read(const char *path);
/* Put back what file_read() gave: prev NULL removes the file. */
int		 file_restore(const char *path, const char *prev);
/* s quoted for sh -c, malloc'd. */
char		*shell_quote(const char *s);

/*
 * Runs "sh -c command" from the event loop; ok is 1 when it exited 0 in
 * time.  output is what it printed (stdout and stderr, lines joined by
 * "; ", capped) — only the lines containing prefer, if prefer is given and
 * some do — and how it ended when that is not "exited 0".  -1 (errno) if
 * it could not be started: then cb is never called.
 */
typedef void	(*run_cb)(int ok, const char *output, void *arg);
int		 run_shell(struct event_base *, const char *command, int timeout_ms,
		    const char *prefer, run_cb, void *arg);

#endif
