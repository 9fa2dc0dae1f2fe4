/*
 * lb-reload.h — the one "write the file, test it, reload, confirm, else
 * put the old file back (and reload again)" of the drivers that reload
 * one load balancer (drv-haproxy-reload.c, drv-nginx.c).  The driver gives
 * the steps that differ as hooks; the order, the file kept and restored,
 * and the wording of a failure are here.
 */
#ifndef SWITCHD_LB_RELOAD_H
#define SWITCHD_LB_RELOAD_H

#include "lb.h"

struct lb_reload;

struct lb_reload_ops {
	const char	*log;		/* log prefix: "reload mode", "nginx" */
	const char	*product;	/* "HAProxy", "nginx" */
	const char	*file;		/* "map file", "include": the old FILE is back */
	const char	*the_file;	/* "the map file ", "": cannot read THE_FILE<path> */
	const char	*old_file;	/* "the old map file ", "the old ": OLD_FILE<path> */
	int		 keep_new;	/* a file that was not there stays once tested */
	/* Test the written file: then lb_reload_tested() or lb_reload_fail(). */
	void		(*test)(struct lb_reload *);
	/*
	 * Reload and confirm that job->to is served: then lb_reload_finish(job,
	 * NULL) or lb_reload_fail().  Called again, with job->rolling_back
	 * set, to reload the old file (job->prev) back.
	 */
	void		(*reload)(struct lb_reload *);
	void		(*free)(void *);	/* the driver's own part */
};

struct lb_reload {
	struct lb	*lb;
	const struct lb_reload_ops *ops;
	lb_done_cb	 cb;
	void		*arg;
	struct lb_mapping to;
	const char	*path;		/* the file */
	char		*prev;		/* its text before; NULL: there was none */
	int		 tested;	/* the new file passed the test */
	int		 reloaded;	/* a reload was tried: rolling back reloads */
	int		 rolling_back;
	char		*error;		/* why the switch failed */
	void		*drv;		/* the driver's own part */
};

/* Writes the driver's map text for `to` to its map file, then ops->test. */
void		 lb_reload_start(struct lb *, const struct lb_reload_ops *, void *drv,
		    const struct lb_mapping *to, lb_done_cb, void *);
void		 lb_reload_tested(struct lb_reload *);
/* A step failed: the old file back, reloaded again if it had been. */
void		 lb_reload_fail(struct lb_reload *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
/* The end: success, or job->error (and then what the rollback could not do). */
void		 lb_reload_finish(struct lb_reload *, const char *rollback_error);

#endif
