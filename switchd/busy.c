/*
 * busy.c — the busy slot (at most one thing changes the load balancer at a
 * time: a mutating command or switchd's own repair) and the identity an
 * operation runs under (struct op_who).  Below the commands and the
 * operations, which both use it; it knows nothing of either.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon.h"
#include "util.h"

int
busy_take(struct daemon *d, const char *what, const char *user, uid_t uid,
    struct cmdq_item *item)
{
	if (d->busy.what != NULL)
		return 0;
	/* cluster: a repair runs only with the cluster lock. */
	if (item == NULL && d->internal_take != NULL && !d->internal_take(d))
		return 0;
	d->busy.what = what;
	snprintf(d->busy.user, sizeof(d->busy.user), "%s", user);
	d->busy.uid = uid;
	d->busy.since = time(NULL);
	d->busy.item = item;
	return 1;
}

void
busy_release(struct daemon *d)
{
	int internal = d->busy.what != NULL && d->busy.item == NULL;

	memset(&d->busy, 0, sizeof(d->busy));
	if (internal && d->internal_release != NULL)
		d->internal_release(d);
	busy_maybe_exit(d);
}

int
busy_held(const struct daemon *d)
{
	return d->busy.what != NULL;
}

/* ---------------------------------------------------------------- op_who */

void
who_switchd(struct op_who *who, const char *message)
{
	memset(who, 0, sizeof(*who));
	who->user = "switchd";
	who->uid = geteuid();
	who->message = message;
}

/*
 * A copy of src that outlives it: the user into user[len], the message into
 * *message (malloc'd, NULL without one: the caller frees it).
 */
void
who_keep(struct op_who *dst, char *user, size_t len, char **message,
    const struct op_who *src)
{
	*dst = *src;
	snprintf(user, len, "%s", src->user);
	dst->user = user;
	*message = src->message != NULL ? xstrdup(src->message) : NULL;
	dst->message = *message;
}

void
who_progress(const struct op_who *who, const char *fmt, ...)
{
	va_list ap;
	char msg[2048];

	if (who->progress == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	who->progress(who->arg, msg);
}

void
who_event(const struct op_who *who, json_t *ev)
{
	if (who->event != NULL)
		who->event(who->arg, ev);
	else
		json_decref(ev);
}

/* After SIGTERM: exit once the command in flight is done. */
void
busy_maybe_exit(struct daemon *d)
{
	if (d->shutting_down && !busy_held(d))
		event_base_loopexit(d->base, NULL);
}
