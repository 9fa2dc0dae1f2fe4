/*
 * lb-reload.c — the one "write, test, reload, confirm, else restore" of
 * the drivers that reload one load balancer: the map file (or include) is
 * written atomically, keeping its old text; the driver tests it (haproxy
 * -c, nginx -t), reloads and confirms (lb-reload.h: the hooks).  Any
 * failure puts the old text back and, once a reload was tried, has the
 * driver reload again with it; the error says what failed, then what the
 * rollback could not do.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb-reload.h"
#include "log.h"
#include "run.h"
#include "util.h"

void
lb_reload_finish(struct lb_reload *job, const char *rollback_error)
{
	const char *code = job->lb->drv->error_code;

	if (job->error == NULL)
		job->cb(NULL, NULL, job->arg);
	else if (rollback_error != NULL) {
		char *msg = xasprintf("%s; then %s", job->error, rollback_error);

		job->cb(code, msg, job->arg);
		free(msg);
	} else
		job->cb(code, job->error, job->arg);
	job->ops->free(job->drv);
	free(job->prev);
	free(job->error);
	lb_unref(job->lb);
	free(job);
}

void
lb_reload_fail(struct lb_reload *job, const char *fmt, ...)
{
	const struct lb_reload_ops *ops = job->ops;
	char *msg, *err;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		fatalx("out of memory");
	va_end(ap);
	if (job->rolling_back) {
		/* The reload back failed: nothing more to try. */
		err = xasprintf("the old %s is back, but reloading %s with it failed: %s",
		    ops->file, ops->product, msg);
		log_warnx("%s: rollback: %s", ops->log, msg);
		lb_reload_finish(job, err);
		free(err);
		free(msg);
		return;
	}
	log_warnx("%s: switch failed: %s", ops->log, msg);
	job->error = msg;
	job->rolling_back = 1;
	if (ops->keep_new && job->prev == NULL && job->tested) {
		/* Nothing to go back to, and the test accepts it: keep it. */
		log_info("%s: %s kept: there was none before", ops->log, job->path);
	} else if (file_restore(job->path, job->prev) == -1) {
		err = xasprintf("putting %s%s back failed: %s", ops->old_file, job->path,
		    strerror(errno));
		lb_reload_finish(job, err);
		free(err);
		return;
	} else
		log_info("%s: %s restored", ops->log, job->path);
	if (!job->reloaded) {
		lb_reload_finish(job, NULL);
		return;
	}
	/* The load balancer may run the new file, or be in a failed reload. */
	ops->reload(job);
}

void
lb_reload_tested(struct lb_reload *job)
{
	job->tested = 1;
	job->ops->reload(job);
}

void
lb_reload_start(struct lb *lb, const struct lb_reload_ops *ops, void *drv,
    const struct lb_mapping *to, lb_done_cb cb, void *arg)
{
	struct lb_reload *job = xcalloc(1, sizeof(*job));
	char *text;

	job->lb = lb_ref(lb);
	job->ops = ops;
	job->drv = drv;
	job->cb = cb;
	job->arg = arg;
	job->to = *to;
	job->path = lb->drv->map_file(lb->conf);
	job->prev = file_read(job->path);
	if (job->prev == NULL && errno != ENOENT) {
		job->error = xasprintf("cannot read %s%s: %s", ops->the_file, job->path,
		    strerror(errno));
		lb_reload_finish(job, NULL);
		return;
	}
	text = lb->drv->map_text(lb->conf, to);
	if (file_write_atomic(job->path, text, strlen(text), 0644) == -1) {
		job->error = xasprintf("cannot write %s%s: %s", ops->the_file, job->path,
		    strerror(errno));
		free(text);
		lb_reload_finish(job, NULL);
		return;
	}
	free(text);
	ops->test(job);
}
