/*
 * cluster.c — several switchd instances through etcd (the `cluster` group).
 *
 * Keys under the prefix P:
 *   P/lock         who runs a mutating command now; bound to its lease, so
 *                  it goes by itself when its holder dies
 *   P/intent       the switch in progress (the intent record, shared)
 *   P/state        state.json, written with compare-and-swap on its revision
 *   P/deploy-lock  the `switchctl lock` record, a mirror of state's "lock"
 *   P/journal/<%020lld>  one journal entry each, in key order everywhere
 *
 * Every write goes through one queue, in order, one at a time: the lock,
 * then what the command writes, then the release; so another instance
 * that takes the lock next reads everything this one wrote.  A watch of
 * the prefix keeps a cache (state, lock, intent, the journal's tail)
 * current on every instance; the lease is kept alive every ttl/3.  When
 * P/lock goes by lease expiry while P/intent remains, the holder died in a
 * switch: the next instance takes the lock and finishes or undoes it.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cluster.h"
#include "config.h"
#include "daemon.h"
#include "etcd.h"
#include "lb.h"
#include "log.h"
#include "protocol.h"
#include "state.h"
#include "switch.h"
#include "util.h"

#define JOURNAL_CACHE	10000	/* entries of the journal kept in memory */
#define RETRY_MS	1000
#define UNCLAIMED_MS	3000	/* an internal lock nobody used is released */

enum op_kind { OP_LOCK, OP_UNLOCK, OP_STATE, OP_JOURNAL, OP_INTENT_PUT, OP_INTENT_DEL };

struct op {
	enum op_kind	 kind;
	json_t		*doc;
	int64_t		 lock_rev;	/* written under this lock; 0: not */
	int64_t		 base_rev;	/* OP_STATE without the lock: CAS base;
					   OP_JOURNAL: the number tried */
	int		 tries;
	int		 waiting;	/* OP_LOCK: for a lease */
	cluster_lock_cb	 cb;
	void		*arg;
	TAILQ_ENTRY(op)	 entry;
};
TAILQ_HEAD(opq, op);

enum internal { IN_IDLE, IN_ACQUIRING, IN_HELD, IN_CLAIMED };

static struct {
	int		 on;
	struct event_base *base;
	struct etcd	*e;
	char		*name, *prefix;
	char		*k_all, *k_lock, *k_intent, *k_state, *k_deploy, *k_journal;
	int		 ttl;

	int64_t		 lease_id;
	int64_t		 revoke_id;	/* a lease a timed-out lock txn may still use */
	int		 revoking;
	double		 grant_sent;	/* now_ms() of the grant in flight */
	int		 renewing;	/* a keep-alive in flight */
	double		 renew_sent;
	int64_t		 renew_id;
	double		 lease_until;	/* now_ms() when it ends, as last renewed */
	int		 granting;
	struct event	*tick;		/* keep-alive, reconnect, takeover check */

	int		 last_ok;	/* the last call to etcd was answered */
	time_t		 last_contact;
	char		 last_error[768];
	struct etcd_watch *watch;
	int		 watch_created;
	int64_t		 rev;		/* the newest revision seen */
	int		 loading;
	int		 loaded;	/* the cache was read at least once */
	int		 watching;	/* in watch_event() */
	struct event	*reload_ev;

	json_t		*remote_lock;	/* P/lock, or NULL */
	json_t		*intent;	/* P/intent, or NULL */
	char		*intent_text;	/* its value, as stored */
	int64_t		 state_rev;	/* mod_revision of P/state as last known */
	int64_t		 doc_rev;	/* the one the local document reflects */
	json_t		*pending_state;	/* a newer P/state to adopt when quiet */
	json_t		*journal;	/* oldest first */
	int64_t		 journal_seq;

	int64_t		 lock_rev;	/* create_revision of our P/lock; 0: not held */
	int64_t		 lost_rev;	/* the one lost with the lease */
	struct opq	 queue;
	int		 in_flight;
	struct event	*retry_ev;

	enum internal	 internal;
	struct event	*unclaimed_ev;
	int		 takeover;	/* running */

	void		(*start_done)(int, void *);
	void		*start_arg;

	/*
	 * The daemon, from cluster_start to cluster_stop, for the etcd side
	 * only: its replies, the watch, the lease and the write queue call
	 * one another (a queued lock waits for a lease, whose reply reloads
	 * the cache, which adopts the shared state or takes over a dead
	 * instance's switch) with no argument of their own to carry it.
	 */
	struct daemon	*d;
} cl = { .queue = TAILQ_HEAD_INITIALIZER(cl.queue) };

static void	 queue_run(void);
struct op;
static void	 op_pop(struct op *);
static void	 cluster_reload(void);
static void	 takeover_check(void);
static void	 cluster_state_put(void *, json_t *);
static json_t	*cluster_history(void *, int);
static int	 cluster_loaded(void *);
static int	 cluster_history_has_id(void *, const char *);

int
cluster_on(void)
{
	return cl.on;
}

const char *
cluster_name(void)
{
	return cl.name;
}

static void
revoked(enum etcd_status st, json_t *reply, const char *error, void *arg)
{
	(void)reply;
	(void)arg;
	cl.revoking = 0;
	if (st == ETCD_OK || (st == ETCD_ERROR && strstr(error, "not found") != NULL))
		cl.revoke_id = 0;
}

static void
contact(int ok, const char *error)
{
	if (ok && cl.revoke_id != 0 && !cl.revoking && cl.e != NULL) {
		/*
		 * A lock txn that timed out without a quorum may be committed
		 * once there is one again: its lease goes, and the lock with it.
		 */
		cl.revoking = 1;
		etcd_lease_revoke(cl.e, cl.revoke_id, revoked, NULL);
	}
	if (ok) {
		if (!cl.last_ok && cl.loaded)
			log_info("cluster: etcd answers again");
		cl.last_ok = 1;
		cl.last_contact = time(NULL);
		return;
	}
	if (cl.last_ok || cl.last_error[0] == '\0')
		log_warnx("cluster: %s", error);
	cl.last_ok = 0;
	snprintf(cl.last_error, sizeof(cl.last_error), "%s", error);
}

static int
lease_alive(void)
{
	return cl.lease_id != 0 && now_ms() < cl.lease_until;
}

int
cluster_may_commit(void *arg, char *why, size_t len)
{
	(void)arg;
	if (!cl.on || (cl.lock_rev != 0 && lease_alive()))
		return 1;
	if (cl.lock_rev == 0)
		snprintf(why, len, "cluster: %s no longer holds the cluster lock "
		    "(its etcd lease ended); stopped before the commit, no node changed",
		    cl.name);
	else
		snprintf(why, len, "cluster: %s could not renew its etcd lease for "
		    "%d s (%s); stopped before the commit, no node changed", cl.name, cl.ttl,
		    cl.last_error[0] ? cl.last_error : "no answer");
	return 0;
}

int
cluster_locked(void)
{
	return cl.on && cl.lock_rev != 0;
}

/* ------------------------------------------------------------ the cache */

/* Quiet: no command of ours writes the state, so etcd's is the one to show. */
static int
quiet(void)
{
	struct op *op;

	if (cl.lock_rev != 0)
		return 0;
	TAILQ_FOREACH(op, &cl.queue, entry)
		if (op->kind == OP_STATE)
			return 0;
	return 1;
}

static void
state_adopt(json_t *doc, int64_t rev)
{
	if (!json_is_object(doc))
		return;
	state_replace(cl.d->state, doc);
	cl.doc_rev = rev;
	json_decref(cl.pending_state);
	cl.pending_state = NULL;
}

static void
state_seen(json_t *doc, int64_t rev)
{
	if (rev > cl.state_rev)
		cl.state_rev = rev;
	if (rev <= cl.doc_rev || !json_is_object(doc))
		return;
	if (quiet())
		state_adopt(doc, rev);
	else {
		json_decref(cl.pending_state);
		cl.pending_state = json_incref(doc);
	}
}

static void
adopt_pending(void)
{
	if (cl.pending_state != NULL && quiet() && cl.state_rev > cl.doc_rev)
		state_adopt(cl.pending_state, cl.state_rev);
}

/*
 * The journal's tail in key order.  Each cached entry carries its key's
 * number as "_seq" (not shown); an entry of ours not stored yet has none
 * and stays last.  The watch may bring another instance's last entries
 * after this instance took the lock and wrote its own: they go before.
 */
static ssize_t
journal_find(const char *id)
{
	size_t i, n = json_array_size(cl.journal);

	for (i = n; id != NULL && i > 0 && i + 1024 > n; i--)
		if (strcmp(json_string_value(json_object_get(json_array_get(cl.journal,
		    i - 1), "id")) ?: "", id) == 0)
			return (ssize_t)(i - 1);
	return -1;
}

static int
journal_known(const char *id)
{
	return journal_find(id) >= 0;
}

/* seq 0: ours, not stored yet. */
static void
journal_add(json_t *entry, int64_t seq)
{
	ssize_t at;
	size_t i;
	json_t *e;

	if (!json_is_object(entry))
		return;
	at = journal_find(json_string_value(json_object_get(entry, "id")));
	if (at >= 0) {
		if (seq == 0 || json_object_get(json_array_get(cl.journal, (size_t)at),
		    "_seq") != NULL)
			return;
		/* Ours, stored now: in its place. */
		json_array_remove(cl.journal, (size_t)at);
	}
	e = json_deep_copy(entry);
	if (seq == 0) {
		json_array_append_new(cl.journal, e);
	} else {
		json_object_set_new(e, "_seq", json_integer(seq));
		for (i = json_array_size(cl.journal); i > 0; i--) {
			json_t *o = json_object_get(json_array_get(cl.journal, i - 1), "_seq");

			if (o != NULL && json_integer_value(o) < seq)
				break;
		}
		json_array_insert_new(cl.journal, i, e);
	}
	while (json_array_size(cl.journal) > JOURNAL_CACHE)
		json_array_remove(cl.journal, 0);
}

static int64_t
journal_key_seq(const char *key)
{
	return strtoll(key + strlen(cl.k_journal), NULL, 10);
}

static char *
kv_text(json_t *kv)
{
	const char *v = json_string_value(json_object_get(kv, "value"));

	return v != NULL ? etcd_b64_decode(v, NULL) : NULL;
}

/* One key of the prefix, put (value) or deleted (value NULL). */
static void
cache_key(const char *key, json_t *kv, int deleted)
{
	json_t *v = deleted ? NULL : etcd_kv_json(kv);

	if (strcmp(key, cl.k_lock) == 0) {
		json_decref(cl.remote_lock);
		cl.remote_lock = json_is_object(v) ? json_incref(v) : NULL;
		if (cl.remote_lock != NULL)
			json_object_set_new(cl.remote_lock, "_create_revision",
			    json_integer(etcd_int(kv, "create_revision")));
	} else if (strcmp(key, cl.k_intent) == 0) {
		json_decref(cl.intent);
		cl.intent = json_is_object(v) ? json_incref(v) : NULL;
		free(cl.intent_text);
		cl.intent_text = kv_text(kv);
	} else if (strcmp(key, cl.k_state) == 0) {
		if (!deleted)
			state_seen(v, etcd_int(kv, "mod_revision"));
	} else if (strncmp(key, cl.k_journal, strlen(cl.k_journal)) == 0 && !deleted) {
		if (journal_key_seq(key) > cl.journal_seq)
			cl.journal_seq = journal_key_seq(key);
		/*
		 * Another instance's entry, new: into the local journal too, so
		 * that a restart without etcd still lists it.
		 */
		if (cl.watching && !journal_known(json_string_value(json_object_get(v,
		    "id"))) && json_is_object(v))
			history_mirror(cl.d->state, v);
		journal_add(v, journal_key_seq(key));
	}
	json_decref(v);
}

/* ---------------------------------------------------------------- watch */

static void
watch_event(json_t *res, void *arg)
{
	json_t *ev, *kv;
	size_t i;
	char *key;
	int64_t rev;

	(void)arg;
	cl.watching = 1;
	if ((rev = etcd_int(json_object_get(res, "header"), "revision")) > cl.rev)
		cl.rev = rev;
	if (json_is_true(json_object_get(res, "created")))
		cl.watch_created = 1;
	contact(1, NULL);
	json_array_foreach(json_object_get(res, "events"), i, ev) {
		kv = json_object_get(ev, "kv");
		if ((key = etcd_kv_key(kv)) == NULL)
			continue;
		cache_key(key, kv, strcmp(json_string_value(json_object_get(ev,
		    "type")) ?: "PUT", "DELETE") == 0);
		free(key);
	}
	cl.watching = 0;
	takeover_check();
}

static void
reload_later(void)
{
	struct timeval tv = { RETRY_MS / 1000, (RETRY_MS % 1000) * 1000 };

	if (!evtimer_pending(cl.reload_ev, NULL))
		evtimer_add(cl.reload_ev, &tv);
}

static void
watch_end(enum etcd_status st, json_t *reply, const char *error, void *arg)
{
	(void)st;
	(void)reply;
	(void)arg;
	cl.watch = NULL;
	cl.watch_created = 0;
	contact(0, error);
	reload_later();
}

/* ----------------------------------------------------------------- load */

static void start_finish(void);

static void
loaded(enum etcd_status st, json_t *reply, const char *error, void *arg)
{
	json_t *kvs, *kv;
	struct op *op;
	size_t i;
	char *key;

	(void)arg;
	cl.loading = 0;
	if (st != ETCD_OK) {
		contact(0, error);
		reload_later();
		start_finish();
		return;
	}
	contact(1, NULL);
	cl.rev = etcd_int(json_object_get(reply, "header"), "revision");
	cache_key(cl.k_lock, NULL, 1);
	cache_key(cl.k_intent, NULL, 1);
	kv = json_array_get(etcd_txn_kvs(reply, 0), 0);
	if (kv != NULL)
		cache_key(cl.k_lock, kv, 0);
	kv = json_array_get(etcd_txn_kvs(reply, 1), 0);
	if (kv != NULL)
		cache_key(cl.k_intent, kv, 0);
	kv = json_array_get(etcd_txn_kvs(reply, 2), 0);
	if (kv != NULL)
		cache_key(cl.k_state, kv, 0);
	else if (!cl.loaded && quiet()) {
		/* The first instance of this site: its state becomes the shared one. */
		log_info("cluster: no shared state at %s yet; this instance's is stored",
		    cl.k_state);
		cluster_state_put(NULL, state_doc(cl.d->state));
	}
	/* The journal's tail, newest first: rebuilt, with what waits to be written. */
	json_array_clear(cl.journal);
	kvs = etcd_txn_kvs(reply, 3);
	for (i = json_array_size(kvs); i > 0; i--) {
		kv = json_array_get(kvs, i - 1);
		if ((key = etcd_kv_key(kv)) != NULL) {
			cache_key(key, kv, 0);
			free(key);
		}
	}
	TAILQ_FOREACH(op, &cl.queue, entry)
		if (op->kind == OP_JOURNAL)
			journal_add(op->doc, 0);
	cl.loaded = 1;
	if (cl.watch == NULL)
		cl.watch = etcd_watch(cl.e, cl.k_all, cl.rev + 1, watch_event,
		    watch_end, NULL);
	if (cl.watch == NULL)
		reload_later();
	start_finish();
	takeover_check();
}

static void
cluster_reload(void)
{
	json_t *ops;

	if (cl.loading || cl.e == NULL)
		return;
	cl.loading = 1;
	ops = json_pack("[o, o, o, o]", etcd_op_range(cl.k_lock, 0, 0, 0),
	    etcd_op_range(cl.k_intent, 0, 0, 0), etcd_op_range(cl.k_state, 0, 0, 0),
	    etcd_op_range(cl.k_journal, 1, JOURNAL_CACHE, 1));
	etcd_txn(cl.e, NULL, ops, NULL, loaded, NULL);
}

static void
reload_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (cl.watch == NULL)
		cluster_reload();
}

/* ---------------------------------------------------------------- lease */

static void
lease_lost(const char *why)
{
	if (cl.lock_rev != 0) {
		log_warnx("cluster: %s lost the cluster lock: %s", cl.name, why);
		cl.lost_rev = cl.lock_rev;
	}
	cl.lease_id = 0;
	cl.lock_rev = 0;
}

static void
lease_granted(enum etcd_status st, json_t *reply, const char *error, void *arg)
{
	double sent = cl.grant_sent;

	(void)arg;
	cl.granting = 0;
	if (st != ETCD_OK) {
		struct op *op = TAILQ_FIRST(&cl.queue);
		char msg[1024];

		contact(st == ETCD_UNAVAILABLE ? 0 : 1, error);
		if (op != NULL && op->kind == OP_LOCK && op->waiting) {
			snprintf(msg, sizeof(msg), "cluster: %s; nothing was changed", error);
			op->cb(E_CLUSTER, msg, op->arg);
			op_pop(op);
		}
		return;
	}
	contact(1, NULL);
	cl.lease_id = etcd_int(reply, "ID");
	cl.lease_until = sent + 1000.0 * (double)etcd_int(reply, "TTL");
	log_debug("cluster: lease %lld granted for %d s", (long long)cl.lease_id, cl.ttl);
	if (cl.watch == NULL)
		cluster_reload();
	queue_run();
}

static void
lease_grant(void)
{
	if (cl.granting)
		return;
	cl.grant_sent = now_ms();
	cl.granting = 1;
	etcd_lease_grant(cl.e, cl.ttl, lease_granted, NULL);
}

static void
lease_renewed(enum etcd_status st, json_t *reply, const char *error, void *arg)
{
	json_t *res = json_object_get(reply, "result");
	int64_t ttl;

	(void)arg;
	cl.renewing = 0;
	if (st != ETCD_OK) {
		contact(0, error);
		if (cl.lease_id == cl.renew_id && !lease_alive())
			lease_lost("its etcd lease could not be renewed in time");
		return;
	}
	contact(1, NULL);
	ttl = etcd_int(res, "TTL");
	if (cl.lease_id == cl.renew_id) {
		if (ttl <= 0) {
			lease_lost("its etcd lease had expired");
			lease_grant();
		} else
			cl.lease_until = cl.renew_sent + 1000.0 * (double)ttl;
	}
	if (cl.watch == NULL)
		cluster_reload();
	else if (!etcd_watch_current(cl.watch)) {
		/* Calls go to another member now: so does the watch. */
		etcd_watch_cancel(cl.watch);
		cl.watch = NULL;
		cl.watch_created = 0;
		cluster_reload();
	}
}

static void
tick_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (cl.lease_id == 0 || !lease_alive()) {
		if (cl.lease_id != 0)
			lease_lost("its etcd lease ended");
		lease_grant();
	} else if (!cl.renewing) {
		cl.renewing = 1;
		cl.renew_sent = now_ms();
		cl.renew_id = cl.lease_id;
		etcd_lease_keepalive(cl.e, cl.lease_id, lease_renewed, NULL);
	}
	takeover_check();
}

/* ---------------------------------------------------------------- queue */

static void
op_free(struct op *op)
{
	json_decref(op->doc);
	free(op);
}

static void
op_push(struct op *op)
{
	TAILQ_INSERT_TAIL(&cl.queue, op, entry);
	queue_run();
}

/* The head is done (or dropped): on to the next. */
static void
op_pop(struct op *op)
{
	TAILQ_REMOVE(&cl.queue, op, entry);
	op_free(op);
	cl.in_flight = 0;
	adopt_pending();
	queue_run();
}

static void
op_retry(struct op *op)
{
	struct timeval tv = { RETRY_MS / 1000, (RETRY_MS % 1000) * 1000 };

	(void)op;
	cl.in_flight = 0;
	evtimer_add(cl.retry_ev, &tv);
}

static void
retry_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	queue_run();
}

static char *
doc_text(json_t *doc)
{
	char *t = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);

	if (t == NULL)
		fatalx("out of memory");
	return t;
}

static json_t *
lock_cmp(int64_t lock_rev)
{
	return lock_rev != 0 ? json_pack("[o]", etcd_cmp_create(cl.k_lock, lock_rev)) :
	    json_array();
}

/*
 * A write under a lock this instance lost is dropped (the compare in its
 * txn would refuse it anyway); one under a lock released since is not.
 */
static int
op_stale(struct op *op)
{
	return op->lock_rev != 0 && op->lock_rev == cl.lost_rev;
}

static void op_lock_send(struct op *);
static void internal_locked(const char *, const char *, void *);
static void start_locked(const char *, const char *, void *);

static void
op_lock_done(enum etcd_status st, json_t *reply, const char *error, void *arg)
{
	struct op *op = arg;
	json_t *kv, *rec;
	char msg[1024];
	const char *code = NULL;

	if (st == ETCD_ERROR && strstr(error, "lease not found") != NULL && op->tries++ < 1) {
		lease_lost("its etcd lease had expired");
		cl.in_flight = 0;
		op_lock_send(op);
		return;
	}
	if (st == ETCD_UNAVAILABLE && cl.lease_id != 0) {
		cl.revoke_id = cl.lease_id;
		cl.lease_id = 0;
	}
	contact(st != ETCD_UNAVAILABLE, error);
	if (st != ETCD_OK) {
		code = E_CLUSTER;
		snprintf(msg, sizeof(msg), "cluster: %s; nothing was changed", error);
	} else if (etcd_txn_ok(reply)) {
		cl.lock_rev = etcd_int(json_object_get(reply, "header"), "revision");
		kv = json_array_get(etcd_txn_kvs(reply, 1), 0);
		if (kv != NULL) {
			/* Ours now: the shared state is the one to work on. */
			rec = etcd_kv_json(kv);
			if (json_is_object(rec) && etcd_int(kv, "mod_revision") != cl.doc_rev) {
				if (etcd_int(kv, "mod_revision") > cl.state_rev)
					cl.state_rev = etcd_int(kv, "mod_revision");
				state_adopt(rec, etcd_int(kv, "mod_revision"));
			}
			json_decref(rec);
		}
		kv = json_array_get(etcd_txn_kvs(reply, 2), 0);
		if (kv != NULL)
			cache_key(cl.k_intent, kv, 0);
		else
			cache_key(cl.k_intent, NULL, 1);
		if (cl.intent != NULL && op->cb != internal_locked && op->cb != start_locked) {
			/*
			 * A switch its holder left unfinished: settled first, from
			 * its intent record, before anything else touches the nodes.
			 */
			struct timeval tv = { UNCLAIMED_MS / 1000, 0 };

			snprintf(msg, sizeof(msg), "busy: %s is settling the switch %s "
			    "that %s left unfinished; try again when it is done", cl.name,
			    json_string_value(json_object_get(cl.intent, "id")) ?: "?",
			    json_string_value(json_object_get(cl.intent, "instance")) ?:
			    "another instance");
			cl.internal = IN_HELD;
			evtimer_add(cl.unclaimed_ev, &tv);
			op->cb(E_BUSY, msg, op->arg);
			op_pop(op);
			takeover_check();
			return;
		}
	} else {
		kv = json_array_get(etcd_txn_kvs(reply, 0), 0);
		rec = kv != NULL ? etcd_kv_json(kv) : NULL;
		if (rec == NULL && op->tries++ < 3) {
			/* Released in between: try again. */
			json_decref(rec);
			cl.in_flight = 0;
			op_lock_send(op);
			return;
		}
		code = E_BUSY;
		snprintf(msg, sizeof(msg), "busy: %s is running %s for %s since %s; try "
		    "again when it is done",
		    json_string_value(json_object_get(rec, "instance")) ?: "another instance",
		    json_string_value(json_object_get(rec, "command")) ?: "a command",
		    json_string_value(json_object_get(rec, "user")) ?: "someone",
		    json_string_value(json_object_get(rec, "since")) ?: "?");
		json_decref(rec);
	}
	op->cb(code, code ? msg : NULL, op->arg);
	op_pop(op);
}

static void
op_lock_send(struct op *op)
{
	char *rec;
	json_t *cmp, *ok, *fail;

	/* A lease first: lease_granted() runs the queue again, or fails this. */
	if (!lease_alive()) {
		op->waiting = 1;
		cl.in_flight = 0;
		lease_grant();
		return;
	}
	op->waiting = 0;
	cl.in_flight = 1;
	rec = doc_text(op->doc);
	cmp = json_pack("[o]", etcd_cmp_create(cl.k_lock, 0));
	ok = json_pack("[o, o, o]", etcd_op_put(cl.k_lock, rec, cl.lease_id),
	    etcd_op_range(cl.k_state, 0, 0, 0), etcd_op_range(cl.k_intent, 0, 0, 0));
	fail = json_pack("[o]", etcd_op_range(cl.k_lock, 0, 0, 0));
	free(rec);
	etcd_txn(cl.e, cmp, ok, fail, op_lock_done, op);
}

static void
op_write_done(enum etcd_status st, json_t *reply, const char *error, void *arg)
{
	struct op *op = arg;
	json_t *kv, *e;
	int64_t rev;
	char *key;
	int mine = 0;

	if (st == ETCD_UNAVAILABLE) {
		contact(0, error);
		if ((op_stale(op) && op->kind != OP_INTENT_DEL) ||
		    (op->kind == OP_UNLOCK && !lease_alive())) {
			log_warnx("cluster: a write under a lost lock dropped: %s", error);
			op_pop(op);
		} else
			op_retry(op);
		return;
	}
	contact(1, NULL);
	if (st == ETCD_ERROR) {
		log_warnx("cluster: etcd refused a write (%s); dropped", error);
		op_pop(op);
		return;
	}
	rev = etcd_int(json_object_get(reply, "header"), "revision");
	switch (op->kind) {
	case OP_STATE:
		if (etcd_txn_ok(reply)) {
			cl.state_rev = cl.doc_rev = rev;
			break;
		}
		kv = json_array_get(etcd_txn_kvs(reply, 0), 0);
		rev = kv != NULL ? etcd_int(kv, "mod_revision") : 0;
		if (op->lock_rev != 0) {
			json_t *lk = json_array_get(etcd_txn_kvs(reply, 1), 0);

			if (lk == NULL || etcd_int(lk, "create_revision") != op->lock_rev) {
				log_warnx("cluster: the cluster lock was lost; the state was "
				    "not written to etcd");
				cl.lost_rev = op->lock_rev;
				if (cl.lock_rev == op->lock_rev)
					cl.lock_rev = 0;
				break;
			}
			/* Ours to write: on top of whatever is there. */
			cl.state_rev = rev;
			if (op->tries++ < 5) {
				cl.in_flight = 0;
				queue_run();
				return;
			}
			break;
		}
		/* Written elsewhere meanwhile: that one wins. */
		log_info("cluster: the shared state changed meanwhile; taking it");
		if (kv != NULL) {
			json_t *doc = etcd_kv_json(kv);

			cl.state_rev = rev > cl.state_rev ? rev : cl.state_rev;
			if (json_is_object(doc))
				state_adopt(doc, rev);
			json_decref(doc);
		}
		break;
	case OP_JOURNAL:
		if (etcd_txn_ok(reply)) {
			if (op->base_rev > cl.journal_seq)
				cl.journal_seq = op->base_rev;
			break;
		}
		kv = json_array_get(etcd_txn_kvs(reply, 0), 0);
		if (kv != NULL && (e = etcd_kv_json(kv)) != NULL) {
			/* An earlier try that timed out may have been stored after all. */
			mine = strcmp(json_string_value(json_object_get(e, "id")) ?: "",
			    json_string_value(json_object_get(op->doc, "id")) ?: "-") == 0;
			json_decref(e);
		}
		if (kv != NULL && (key = etcd_kv_key(kv)) != NULL) {
			if (journal_key_seq(key) > cl.journal_seq)
				cl.journal_seq = journal_key_seq(key);
			free(key);
		}
		if (mine)
			break;
		cl.in_flight = 0;
		queue_run();
		return;
	case OP_INTENT_PUT:
		if (!etcd_txn_ok(reply))
			log_warnx("cluster: the cluster lock was lost; the intent record "
			    "was not written to etcd");
		break;
	case OP_INTENT_DEL:
		if (!etcd_txn_ok(reply))
			log_debug("cluster: the intent record was gone or replaced already");
		break;
	case OP_UNLOCK:
	case OP_LOCK:
		break;
	}
	op_pop(op);
}

static void
op_send(struct op *op)
{
	json_t *cmp, *ok = NULL, *fail = NULL, *lock;
	char *text, key[1024];

	if (op->kind == OP_LOCK) {
		op_lock_send(op);
		return;
	}
	if (op_stale(op) && op->kind != OP_JOURNAL && op->kind != OP_INTENT_DEL) {
		log_warnx("cluster: a write under a lost lock dropped");
		op_pop(op);
		return;
	}
	cl.in_flight = 1;
	cmp = lock_cmp(op->lock_rev);
	switch (op->kind) {
	case OP_STATE:
		json_array_append_new(cmp, etcd_cmp_mod(cl.k_state, op->lock_rev != 0 ?
		    cl.state_rev : op->base_rev));
		text = doc_text(op->doc);
		ok = json_pack("[o]", etcd_op_put(cl.k_state, text, 0));
		free(text);
		lock = json_object_get(op->doc, "lock");
		if (json_is_object(lock)) {
			text = doc_text(lock);
			json_array_append_new(ok, etcd_op_put(cl.k_deploy, text, 0));
			free(text);
		} else
			json_array_append_new(ok, etcd_op_delete(cl.k_deploy));
		fail = json_pack("[o, o]", etcd_op_range(cl.k_state, 0, 0, 0),
		    etcd_op_range(cl.k_lock, 0, 0, 0));
		break;
	case OP_JOURNAL:
		json_decref(cmp);
		op->base_rev = cl.journal_seq + 1;	/* its number */
		snprintf(key, sizeof(key), "%s%020lld", cl.k_journal,
		    (long long)op->base_rev);
		cmp = json_pack("[o]", etcd_cmp_create(key, 0));
		text = doc_text(op->doc);
		ok = json_pack("[o]", etcd_op_put(key, text, 0));
		free(text);
		fail = json_pack("[o]", etcd_op_range(cl.k_journal, 1, 1, 1));
		break;
	case OP_INTENT_PUT:
		text = doc_text(op->doc);
		ok = json_pack("[o]", etcd_op_put(cl.k_intent, text, 0));
		free(text);
		break;
	case OP_INTENT_DEL:
		/*
		 * Only the record this instance wrote, if it is still there: even
		 * after the lock was lost (the switch failed and every node was
		 * put back), never the record of whoever switches now.
		 */
		json_decref(cmp);
		cmp = json_pack("[o]", etcd_cmp_value(cl.k_intent,
		    json_string_value(op->doc) ?: ""));
		ok = json_pack("[o]", etcd_op_delete(cl.k_intent));
		break;
	case OP_UNLOCK:
		ok = json_pack("[o]", etcd_op_delete(cl.k_lock));
		break;
	case OP_LOCK:
		break;
	}
	etcd_txn(cl.e, cmp, ok, fail, op_write_done, op);
}

static void
queue_run(void)
{
	struct op *op;

	if (cl.in_flight || cl.e == NULL || evtimer_pending(cl.retry_ev, NULL))
		return;
	if ((op = TAILQ_FIRST(&cl.queue)) == NULL || (op->waiting && cl.granting))
		return;
	op_send(op);
}

static struct op *
op_new(enum op_kind kind, json_t *doc)
{
	struct op *op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->doc = doc;
	op->lock_rev = cl.lock_rev;
	return op;
}

/* --------------------------------------------------------------- writes */

/* The writes are state.c's mirror (struct state_mirror): arg is unused. */
static void
cluster_state_put(void *arg, json_t *doc)
{
	struct op *op = TAILQ_LAST(&cl.queue, opq);

	(void)arg;
	if (!cl.on)
		return;
	/* A newer document replaces one still waiting. */
	if (op != NULL && op->kind == OP_STATE && op->lock_rev == cl.lock_rev &&
	    !(cl.in_flight && op == TAILQ_FIRST(&cl.queue))) {
		json_decref(op->doc);
		op->doc = json_deep_copy(doc);
		return;
	}
	op = op_new(OP_STATE, json_deep_copy(doc));
	op->base_rev = cl.doc_rev;
	op_push(op);
}

static void
cluster_journal_append(void *arg, json_t *entry)
{
	json_t *e;

	(void)arg;
	if (!cl.on)
		return;
	e = json_deep_copy(entry);
	journal_add(e, 0);
	op_push(op_new(OP_JOURNAL, e));
}

static void
cluster_intent_put(void *arg, json_t *intent)
{
	json_t *i;

	(void)arg;
	if (!cl.on)
		return;
	i = json_deep_copy(intent);
	json_object_set_new(i, "instance", json_string(cl.name));
	json_decref(cl.intent);
	cl.intent = json_incref(i);
	free(cl.intent_text);
	cl.intent_text = doc_text(i);
	op_push(op_new(OP_INTENT_PUT, i));
}

static void
cluster_intent_clear(void *arg)
{
	(void)arg;
	if (!cl.on)
		return;
	if (cl.intent == NULL && cl.intent_text == NULL)
		return;
	json_decref(cl.intent);
	cl.intent = NULL;
	/* The record as it is now: ours, or the one taken over. */
	op_push(op_new(OP_INTENT_DEL, json_string(cl.intent_text ?: "")));
	free(cl.intent_text);
	cl.intent_text = NULL;
}

/* ----------------------------------------------------------------- lock */

void
cluster_lock(const char *command, const char *user, cluster_lock_cb cb, void *arg)
{
	struct op *op;
	char when[32], msg[1024];

	if (cl.internal == IN_HELD) {
		/* Taken for a repair nobody started yet: the command has it. */
		evtimer_del(cl.unclaimed_ev);
		cl.internal = IN_IDLE;
		cb(NULL, NULL, arg);
		return;
	}
	if (cl.lock_rev != 0) {
		snprintf(msg, sizeof(msg), "busy: %s is running %s; try again when it is "
		    "done", cl.name, cl.internal != IN_IDLE ? "a repair" : "another command");
		cb(E_BUSY, msg, arg);
		return;
	}
	if (evtimer_pending(cl.retry_ev, NULL)) {
		snprintf(msg, sizeof(msg), "cluster: %s; earlier writes wait to be stored, "
		    "nothing was changed", cl.last_error[0] ? cl.last_error :
		    "etcd does not answer");
		cb(E_CLUSTER, msg, arg);
		return;
	}
	iso_time(time(NULL), when, sizeof(when));
	op = op_new(OP_LOCK, json_pack("{s:s, s:s, s:s, s:s, s:I}", "instance", cl.name,
	    "command", command, "user", user, "since", when, "pid", (json_int_t)getpid()));
	op->lock_rev = 0;
	op->cb = cb;
	op->arg = arg;
	op_push(op);
}

void
cluster_unlock(void)
{
	struct op *op;

	if (!cl.on || cl.lock_rev == 0)
		return;
	op = op_new(OP_UNLOCK, NULL);
	cl.lock_rev = 0;
	op_push(op);
	adopt_pending();
}

/* ------------------------------------------------- internal busy slot */

static void
unclaimed_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (cl.internal == IN_HELD) {
		cl.internal = IN_IDLE;
		cluster_unlock();
	}
}

static void
internal_locked(const char *code, const char *error, void *arg)
{
	struct timeval tv = { UNCLAIMED_MS / 1000, (UNCLAIMED_MS % 1000) * 1000 };

	(void)arg;
	if (code != NULL) {
		log_debug("cluster: no lock for a repair: %s", error);
		cl.internal = IN_IDLE;
		return;
	}
	cl.internal = IN_HELD;
	evtimer_add(cl.unclaimed_ev, &tv);
	/* Whoever asked may go now. */
	takeover_check();
	if (cl.internal == IN_HELD)
		repair_kick();
}

/* The daemon's internal_take and internal_release (busy.c asks). */
static int
cluster_internal_acquire(struct daemon *d)
{
	(void)d;
	if (!cl.on)
		return 1;
	if (cl.internal == IN_HELD) {
		evtimer_del(cl.unclaimed_ev);
		cl.internal = IN_CLAIMED;
		return 1;
	}
	if (cl.internal == IN_IDLE && cl.lock_rev == 0 && cl.loaded) {
		cl.internal = IN_ACQUIRING;
		cluster_lock("repair", "switchd", internal_locked, NULL);
	}
	return 0;
}

static void
cluster_internal_release(struct daemon *d)
{
	(void)d;
	if (!cl.on || cl.internal != IN_CLAIMED)
		return;
	cl.internal = IN_IDLE;
	cluster_unlock();
}

/* ------------------------------------------------------------- takeover */

struct takeover {
	struct daemon	*d;
	struct lb	*lb;
	json_t		*intent;
	int		 from, to, target;
	char		*dead;
};

static void
takeover_free(struct takeover *tk)
{
	struct daemon *d = tk->d;

	lb_unref(tk->lb);
	json_decref(tk->intent);
	free(tk->dead);
	free(tk);
	cl.takeover = 0;
	busy_release(d);
}

static json_t *
roles(int hot)
{
	return json_pack("{s:s, s:s}", "hot", pool_name(hot), "cold", pool_name(!hot));
}

static void
takeover_applied(const char *code, const char *error, void *arg)
{
	struct takeover *tk = arg;
	const char *id = json_string_value(json_object_get(tk->intent, "id")) ?: "?";
	const char *user = json_string_value(json_object_get(tk->intent, "user")) ?: "?";
	const char *cmd = json_string_value(json_object_get(tk->intent, "command")) ?: "switch";
	char *msg;

	if (code != NULL) {
		log_warnx("cluster: taking over the switch %s of %s failed: %s; trying "
		    "again later", id, tk->dead, error);
		takeover_free(tk);
		return;
	}
	if (tk->target == tk->to) {
		msg = xasprintf("takeover: %s died during %s %s by %s (%s -> %s); %s "
		    "finished it: %s is hot", tk->dead, cmd, id, user, pool_name(tk->from),
		    pool_name(tk->to), cl.name, pool_name(tk->to));
		state_set_hot(tk->d->state, tk->to);
		state_set_pool(tk->d->state, tk->from, NULL, PS_VERIFIED, "switchd");
		state_set_last_switch(tk->d->state, id, user,
		    json_integer_value(json_object_get(tk->intent, "uid")), tk->from, tk->to,
		    json_string_value(json_object_get(tk->intent, "message")), cmd);
	} else {
		msg = xasprintf("takeover: %s died during %s %s by %s (%s -> %s); %s "
		    "undid it: %s stays hot", tk->dead, cmd, id, user, pool_name(tk->from),
		    pool_name(tk->to), cl.name, pool_name(tk->from));
		state_set_hot(tk->d->state, tk->from);
	}
	log_warnx("cluster: %s", msg);
	state_save(tk->d->state);
	history_append(tk->d->state,
	    json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:s, s:s}",
	    "uid", (json_int_t)0, "user", "switchd", "command", "takeover", "message", msg,
	    "before", roles(tk->from), "after", roles(tk->target), "result", "ok",
	    "takeover_of", id));
	free(msg);
	intent_clear(tk->d->state);
	takeover_free(tk);
}

/*
 * Some node already serves "to": the switch got that far, finish it; none
 * does: it never reached a commit, so every node goes back to "from".
 */
static void
takeover_view(struct lb_view *v, void *arg)
{
	struct takeover *tk = arg;
	struct lb_mapping m;
	size_t i;
	int nto = 0;

	for (i = 0; i < v->nnodes; i++)
		if (v->nodes[i].ok && lb_node_serves(tk->lb->conf, tk->d->state,
		    &v->nodes[i]) == tk->to)
			nto++;
	lb_view_free(v);
	tk->target = nto > 0 ? tk->to : tk->from;
	log_warnx("cluster: %s died during a switch (%s -> %s); %zu node%s serve%s %s: "
	    "making every node serve %s", tk->dead, pool_name(tk->from), pool_name(tk->to),
	    (size_t)nto, nto == 1 ? "" : "s", nto == 1 ? "s" : "", pool_name(tk->to),
	    pool_name(tk->target));
	lb_mapping_for(tk->lb->conf, tk->d->state, tk->target, &m);
	tk->lb->drv->apply(tk->lb, &m, takeover_applied, tk);
}

static void
takeover_check(void)
{
	struct takeover *tk;
	int from, to;

	if (!cl.on || cl.takeover || cl.intent == NULL || !cl.watch_created ||
	    cl.d->shutting_down || cl.d->lb == NULL || cl.start_done != NULL)
		return;
	/* Its holder is alive, or it is ours and still running. */
	if ((cl.lock_rev == 0 && cl.remote_lock != NULL) ||
	    (cl.lock_rev != 0 && cl.internal != IN_HELD))
		return;
	if (!busy_take(cl.d, "repair", "switchd", geteuid(), NULL))
		return;
	from = pool_index(json_string_value(json_object_get(cl.intent, "from")));
	to = pool_index(json_string_value(json_object_get(cl.intent, "to")));
	if (from < 0 || to < 0 || from == to) {
		log_warnx("cluster: the intent record at %s is malformed; removed",
		    cl.k_intent);
		intent_clear(cl.d->state);
		busy_release(cl.d);
		return;
	}
	tk = xcalloc(1, sizeof(*tk));
	cl.takeover = 1;
	tk->d = cl.d;
	tk->lb = lb_ref(cl.d->lb);
	tk->intent = json_incref(cl.intent);
	tk->from = from;
	tk->to = to;
	tk->dead = xstrdup(json_string_value(json_object_get(cl.intent, "instance")) ?:
	    "an instance");
	tk->lb->drv->observe(tk->lb, takeover_view, tk);
}

/* ------------------------------------------------------- start and stop */

static void
start_finish(void)
{
	void (*done)(int, void *) = cl.start_done;

	if (done == NULL)
		return;
	cl.start_done = NULL;
	done(0, cl.start_arg);
}

static void
start_locked(const char *code, const char *error, void *arg)
{
	void (*done)(int, void *) = cl.start_done;

	(void)arg;
	cl.start_done = NULL;
	if (code != NULL)
		log_info("cluster: no start-up reconcile: %s", error);
	if (done != NULL)
		done(code == NULL, cl.start_arg);
	takeover_check();
}

static void
start_loaded(enum etcd_status st, json_t *reply, const char *error, void *arg)
{
	void (*done)(int, void *) = cl.start_done;

	/* loaded() calls start_finish(): keep the callback for the lock. */
	cl.start_done = NULL;
	loaded(st, reply, error, arg);
	cl.start_done = done;
	if (st != ETCD_OK || cl.intent != NULL || cl.remote_lock != NULL) {
		start_finish();
		takeover_check();
		return;
	}
	cluster_lock("start-up reconcile", "switchd", start_locked, NULL);
}

static char *
key_of(const char *suffix)
{
	return xasprintf("%s%s", cl.prefix, suffix);
}

static const char *
mirror_name(void *arg)
{
	(void)arg;
	return cl.name;
}

/* What state.c hands over and asks for while clustered. */
static const struct state_mirror cluster_mirror = {
	.name = mirror_name,
	.save = cluster_state_put,
	.append = cluster_journal_append,
	.intent_write = cluster_intent_put,
	.intent_clear = cluster_intent_clear,
	.loaded = cluster_loaded,
	.history = cluster_history,
	.has_id = cluster_history_has_id,
	.arg = NULL
};

void
cluster_start(struct daemon *d, void (*done)(int, void *), void *arg)
{
	const struct config *conf = d->conf;
	struct event_base *base = d->base;
	struct timeval tv;
	long timeout;
	json_t *ops;

	if (conf->cluster_endpoints == NULL || conf->cluster_nendpoints == 0) {
		done(0, arg);
		return;
	}
	cl.on = 1;
	cl.base = base;
	cl.d = d;
	/* The hooks below the operations: state.c's writes, busy.c's repairs. */
	state_set_mirror(d->state, &cluster_mirror);
	d->internal_take = cluster_internal_acquire;
	d->internal_release = cluster_internal_release;
	cl.name = xstrdup(conf->cluster_name);
	cl.prefix = xstrdup(conf->cluster_prefix);
	cl.ttl = conf->cluster_lease_ttl;
	cl.k_all = key_of("/");
	cl.k_lock = key_of("/lock");
	cl.k_intent = key_of("/intent");
	cl.k_state = key_of("/state");
	cl.k_deploy = key_of("/deploy-lock");
	cl.k_journal = key_of("/journal/");
	cl.journal = json_array();
	/*
	 * A call to a member that hangs must give up soon enough for the
	 * next one to renew the lease in time, yet not fail a busy etcd.
	 */
	timeout = cl.ttl * 1000L / 2;
	if (timeout > 5000)
		timeout = 5000;
	if (timeout < 1000)
		timeout = 1000;
	cl.e = etcd_new(conf->cluster_endpoints, conf->cluster_nendpoints, timeout);
	cl.tick = event_new(base, -1, EV_PERSIST, tick_fire, NULL);
	cl.reload_ev = evtimer_new(base, reload_fire, NULL);
	cl.retry_ev = evtimer_new(base, retry_fire, NULL);
	cl.unclaimed_ev = evtimer_new(base, unclaimed_fire, NULL);
	tv.tv_sec = cl.ttl / 3;
	tv.tv_usec = (cl.ttl * 1000000L / 3) % 1000000;
	event_add(cl.tick, &tv);
	cl.start_done = done;
	cl.start_arg = arg;
	cl.last_contact = time(NULL);	/* the local state is as of now */
	log_info("cluster: %s at %s, etcd %s%s", cl.name, cl.prefix,
	    conf->cluster_endpoints[0], conf->cluster_nendpoints > 1 ? " ..." : "");
	lease_grant();
	cl.loading = 1;
	ops = json_pack("[o, o, o, o]", etcd_op_range(cl.k_lock, 0, 0, 0),
	    etcd_op_range(cl.k_intent, 0, 0, 0), etcd_op_range(cl.k_state, 0, 0, 0),
	    etcd_op_range(cl.k_journal, 1, JOURNAL_CACHE, 1));
	etcd_txn(cl.e, NULL, ops, NULL, start_loaded, NULL);
}

void
cluster_stop(struct daemon *d)
{
	struct op *op;

	if (!cl.on)
		return;
	if (d->state != NULL)
		state_set_mirror(d->state, NULL);
	d->internal_take = NULL;
	d->internal_release = NULL;
	/*
	 * Whatever still waits is lost, without callbacks: no command waits
	 * for the lock at exit (it holds the busy slot, which the exit waits
	 * for); a held lock ends with the lease.
	 */
	while ((op = TAILQ_FIRST(&cl.queue)) != NULL) {
		TAILQ_REMOVE(&cl.queue, op, entry);
		op_free(op);
	}
	etcd_free(cl.e);
	cl.e = NULL;
	event_free(cl.tick);
	event_free(cl.reload_ev);
	event_free(cl.retry_ev);
	event_free(cl.unclaimed_ev);
	json_decref(cl.remote_lock);
	json_decref(cl.intent);
	free(cl.intent_text);
	json_decref(cl.pending_state);
	json_decref(cl.journal);
	free(cl.name);
	free(cl.prefix);
	free(cl.k_all);
	free(cl.k_lock);
	free(cl.k_intent);
	free(cl.k_state);
	free(cl.k_deploy);
	free(cl.k_journal);
	memset(&cl, 0, sizeof(cl));
	TAILQ_INIT(&cl.queue);
}

/* The cluster group is read at start only: say so when a reload changes it. */
int
cluster_conf_changed(const struct config *a, const struct config *b)
{
	size_t i;

	if ((a->cluster_endpoints == NULL) != (b->cluster_endpoints == NULL))
		return 1;
	if (a->cluster_endpoints == NULL)
		return 0;
	if (strcmp(a->cluster_prefix, b->cluster_prefix) != 0 ||
	    strcmp(a->cluster_name, b->cluster_name) != 0 ||
	    a->cluster_lease_ttl != b->cluster_lease_ttl ||
	    a->cluster_nendpoints != b->cluster_nendpoints)
		return 1;
	for (i = 0; i < a->cluster_nendpoints; i++)
		if (strcmp(a->cluster_endpoints[i], b->cluster_endpoints[i]) != 0)
			return 1;
	return 0;
}

/* ---------------------------------------------------------------- reads */

static json_t *
cluster_history(void *arg, int n)
{
	json_t *out = json_array(), *e;
	size_t i, len = json_array_size(cl.journal);

	(void)arg;
	for (i = len; i > 0 && (n <= 0 || json_array_size(out) < (size_t)n); i--) {
		e = json_copy(json_array_get(cl.journal, i - 1));
		json_object_del(e, "_seq");
		json_array_append_new(out, e);
	}
	return out;
}

static int
cluster_loaded(void *arg)
{
	(void)arg;
	return cl.loaded;
}

static int
cluster_history_has_id(void *arg, const char *id)
{
	(void)arg;
	return journal_known(id);
}

json_t *
cluster_status_json(void)
{
	int connected;

	if (!cl.on)
		return json_null();
	connected = cl.last_ok && cl.watch_created;
	return json_pack("{s:s, s:s, s:b, s:I}", "name", cl.name, "prefix", cl.prefix,
	    "connected", connected, "stale_seconds", (json_int_t)(connected ||
	    cl.last_contact == 0 ? 0 : time(NULL) - cl.last_contact));
}
