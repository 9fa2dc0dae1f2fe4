/*
 * cluster.h — several switchd instances sharing one lock, one state and one
 * journal in etcd (the `cluster` group of switchd.conf).  Without it every
 * function here is a no-op that says "not clustered", and switchd behaves
 * exactly as on one host.
 */
#ifndef SWITCHD_CLUSTER_H
#define SWITCHD_CLUSTER_H

#include <jansson.h>

struct event_base;
struct config;

int		 cluster_on(void);
/*
 * Connect, read the shared keys, grant the lease, start the watch.  done is
 * called once: locked 1 if this instance then holds P/lock for its start-up
 * reconcile (cluster_unlock() after it), 0 if another instance holds it, an
 * interrupted switch was taken over, or etcd did not answer (switchd then
 * serves from its last known state and connects in the background).
 */
void		 cluster_start(struct event_base *, const struct config *,
		    void (*done)(int locked, void *), void *);
int		 cluster_conf_changed(const struct config *, const struct config *);
void		 cluster_stop(void);		/* at exit; a lock held ends with the lease */

/*
 * P/lock for a mutating command: cb(NULL, NULL) once held (the shared state
 * read with it is adopted first), else cb(E_BUSY or E_CLUSTER, message).
 */
typedef void (*cluster_lock_cb)(const char *code, const char *error, void *arg);
void		 cluster_lock(const char *command, const char *user, cluster_lock_cb, void *);
void		 cluster_unlock(void);		/* after the writes queued before it */
int		 cluster_locked(void);		/* this instance holds P/lock */
/* The busy slot of an internal repair: 1 if P/lock is held for it now. */
int		 cluster_internal_acquire(void);
void		 cluster_internal_release(void);
/* Before a node's commit: 1 if not clustered, or lease alive and lock held. */
int		 cluster_lease_ok(void);
const char	*cluster_lease_error(void);

/* Writes, queued in order and retried until etcd takes them. */
void		 cluster_state_put(json_t *doc);	/* copied */
void		 cluster_journal_append(json_t *entry);	/* copied; "instance" added before */
void		 cluster_intent_put(json_t *intent);	/* copied */
void		 cluster_intent_clear(void);
const char	*cluster_name(void);

/* Reads, from the watched cache, once etcd was read (cluster_loaded). */
int		 cluster_loaded(void);
json_t		*cluster_history(int n);		/* newest first; new reference */
int		 cluster_history_has_id(const char *);
json_t		*cluster_status_json(void);		/* null | {name, prefix, connected, stale_seconds} */

#endif
