/*
 * cluster.h — several switchd instances sharing one lock, one state and one
 * journal in etcd (the `cluster` group of switchd.conf).  Without it every
 * function here is a no-op that says "not clustered", and switchd behaves
 * exactly as on one host.
 */
#ifndef SWITCHD_CLUSTER_H
#define SWITCHD_CLUSTER_H

#include <stddef.h>

#include <jansson.h>

struct config;
struct daemon;

int		 cluster_on(void);
/*
 * Connect, read the shared keys, grant the lease, start the watch.  done is
 * called once: locked 1 if this instance then holds P/lock for its start-up
 * reconcile (cluster_unlock() after it), 0 if another instance holds it, an
 * interrupted switch was taken over, or etcd did not answer (switchd then
 * serves from its last known state and connects in the background).
 */
void		 cluster_start(struct daemon *, void (*done)(int locked, void *), void *);
int		 cluster_conf_changed(const struct config *, const struct config *);
void		 cluster_stop(struct daemon *);		/* at exit; a lock held ends with the lease */

/*
 * P/lock for a mutating command: cb(NULL, NULL) once held (the shared state
 * read with it is adopted first), else cb(E_BUSY or E_CLUSTER, message).
 */
typedef void (*cluster_lock_cb)(const char *code, const char *error, void *arg);
void		 cluster_lock(const char *command, const char *user, cluster_lock_cb, void *);
void		 cluster_unlock(void);		/* after the writes queued before it */
int		 cluster_locked(void);		/* this instance holds P/lock */
/*
 * Before a node's commit (struct lb's may_commit, which the daemon sets):
 * 1 if not clustered, or lease alive and lock held; else 0 and why.
 */
int		 cluster_may_commit(void *arg, char *why, size_t len);
const char	*cluster_name(void);
json_t		*cluster_status_json(void);		/* null | {name, prefix, connected, stale_seconds} */

#endif
