/*
 * metrics.h — what the HTTP server shows: a snapshot of status and of
 * HAProxy's traffic counters, refreshed at most once a second, and the
 * journal's counters, rendered in Prometheus's text format.
 */
#ifndef SWITCHD_METRICS_H
#define SWITCHD_METRICS_H
#include <event2/buffer.h>
#include <jansson.h>

struct snapshot {
	json_t		*status;	/* the reply of "status" */
	json_t		*counters;	/* {"blue": {"requests", "5xx"}, ...}; {} without HAProxy counters */
	double		 taken_ms;	/* now_ms() when the counters were read */
};

/* cb runs once, from the loop, with a snapshot at most a second old. */
struct daemon;
typedef void (*snapshot_cb)(const struct snapshot *, void *arg);
void		 metrics_snapshot(struct daemon *, snapshot_cb, void *arg);
void		 metrics_drop_waiters(void);	/* their requests are gone */
void		 metrics_render(const struct snapshot *, struct evbuffer *);
json_t		*metrics_counters_json(const struct snapshot *);
void		 metrics_journal(json_t *entry);	/* the journal hook */
void		 metrics_shutdown(void);
#endif
