/*
 * daemon.h — the daemon's context: the pieces every subsystem is handed
 * (event base, config, driver, state, the busy slot), never reaches for.
 */
#ifndef SWITCHD_DAEMON_H
#define SWITCHD_DAEMON_H
#include <sys/types.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

struct config;
struct event;
struct event_base;
struct lb;
struct state;

struct client;
struct cmdq_item;

/*
 * The busy slot: at most one thing changes the load balancer at a time, a
 * mutating command or switchd's own repair.  what is NULL when it is free.
 */
struct busy {
	const char	*what;		/* "switch", "cold-deploy", "repair", ... */
	char		 user[64];
	uid_t		 uid;
	time_t		 since;
	struct cmdq_item *item;		/* the command holding it; NULL: a repair */
};

/* How a command's replies reach its client: control.c's, or a test's. */
struct client_ops {
	void	(*send)(struct client *, json_t *);	/* steals */
	void	(*attach)(struct client *, struct cmdq_item *);
	void	(*done)(struct client *);		/* the command is over */
};

struct daemon {
	struct event_base *base;
	struct config	*conf;
	struct lb	*lb;
	struct state	*state;
	struct busy	 busy;
	int		 shutting_down;
	const struct client_ops *clients;
	/* Re-read the config file; a bad one is refused (daemon.c's). */
	int		(*reload)(struct daemon *, json_t **errors);
	/*
	 * cluster: switchd's own work (busy_take with no item) also needs the
	 * cluster lock in etcd: internal_take returns 1 if it is held now,
	 * else 0 and asks for it in the background; internal_release lets
	 * it go.  Installed by cluster_start (cluster.c); NULL on one host.
	 */
	int		(*internal_take)(struct daemon *);
	void		(*internal_release)(struct daemon *);

	struct event	*ev_hup, *ev_term, *ev_int;
	int		 lock_fd;	/* flock on state_dir/switchd.lock */
};

/*
 * Who runs an operation, for the journal and the log, and where its
 * progress goes: a command's client (cmd_who), or nowhere for switchd's
 * own work (who_switchd).  The switch, canary, smoke and repair code know
 * only this, never the command that asked.
 */
struct op_who {
	const char	*user;
	uid_t		 uid;
	const char	*message;	/* the user's -m, or NULL */
	void		(*progress)(void *arg, const char *text);	/* NULL: quiet */
	void		(*event)(void *arg, json_t *);	/* steals; NULL: dropped */
	void		*arg;
};
void		 who_switchd(struct op_who *, const char *message);
void		 who_keep(struct op_who *, char *user, size_t len, char **message,
		    const struct op_who *);
void		 who_progress(const struct op_who *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 who_event(const struct op_who *, json_t *);	/* steals */

/* The context's defaults (the unit tests and the fuzzer call this too). */
void		 daemon_wire(struct daemon *);
/* Lock and open the state, listen; fatal on failure.  Owns conf. */
void		 daemon_start(struct daemon *, struct config *);
/* Reconcile the nodes, accept commands, run until asked to exit. */
void		 daemon_run(struct daemon *);
void		 daemon_stop(struct daemon *);

/* 1 if the slot was free and is now held by what/user. */
int		 busy_take(struct daemon *, const char *what, const char *user, uid_t,
		    struct cmdq_item *);
void		 busy_release(struct daemon *);
/* After SIGTERM: exit once the command in flight is done. */
void		 busy_maybe_exit(struct daemon *);
int		 busy_held(const struct daemon *);

#endif
