/*
 * drv.h — what the load balancer drivers share beyond struct lb_driver
 * (switchd.h): the driver objects lb.c picks from, and the helpers of the
 * drivers that reload (the file they own, the commands they run).  Only
 * lb.c and drv-*.c include it.
 */
#ifndef SWITCHD_DRV_H
#define SWITCHD_DRV_H

#include "switchd.h"

extern const struct lb_driver drv_haproxy_reload;	/* drv-haproxy-reload.c */
extern const struct lb_driver drv_nginx;		/* drv-nginx.c */

/* The include file the nginx driver owns, for `to`. */
char		*nginx_include_text(const struct config *, const struct lb_mapping *);

/* The drivers that reload one local load balancer change one node. */
size_t		 lb_one_node(const struct config *);

/* A whole file, or NULL (errno; ENOENT: there is none). */
char		*lb_file_read(const char *path);
/* Put back what lb_file_read() gave: prev NULL removes the file. */
int		 lb_file_restore(const char *path, const char *prev);
/* s quoted for sh -c, malloc'd. */
char		*lb_shell_quote(const char *s);

/*
 * Runs "sh -c command" from the event loop; ok is 1 when it exited 0 in
 * time.  output is what it printed (stdout and stderr, lines joined by
 * "; ", capped) — only the lines containing prefer, if prefer is given and
 * some do — and how it ended when that is not "exited 0".  -1 (errno) if
 * it could not be started: then cb is never called.
 */
typedef void	(*lb_run_cb)(int ok, const char *output, void *arg);
int		 lb_run(struct event_base *, const char *command, int timeout_ms,
		    const char *prefer, lb_run_cb, void *arg);

#endif
