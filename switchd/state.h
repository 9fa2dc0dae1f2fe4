/*
 * state.h — what switchd keeps on disk (state.c): state.json, the
 * journal (history.jsonl), the intent record of a switch in flight, and the
 * constructors of the records written there.
 */
#ifndef SWITCHD_STATE_H
#define SWITCHD_STATE_H

#include <time.h>

#include <jansson.h>

/*
 * The persistent state is one JSON document (state.json), kept in memory as
 * is: {"hot", "cold", "pools": {"blue": {version, state, since, by}},
 * "last_switch", "lock", "ec2": {"drift": []}}.
 */
struct state;
struct state	*state_open(const char *dir);	/* NULL if dir cannot be made */
void		 state_close(struct state *);
json_t		*state_doc(struct state *);
int		 state_is_new(struct state *);		/* there was no state file */
int		 state_roles_trusted(struct state *);	/* hot/cold read from a sound file */
json_t		*state_load_errors(struct state *);	/* borrowed: ["what was wrong", ...] */
int		 state_save(struct state *);
int		 state_hot(struct state *);		/* POOL_B or POOL_G */
/* The canary split {pool, percent, since} if it is on the cold pool, else NULL (borrowed). */
json_t		*state_canary(struct state *);
int		 state_canary_percent(struct state *, int cold);	/* 0 without one */
void		 state_set_hot(struct state *, int);
json_t		*state_pool(struct state *, int);
/* "last_switch": id, now, who, from -> to, message (NULL: none), command. */
void		 state_set_last_switch(struct state *, const char *id, const char *user,
		    json_int_t uid, int from, int to, const char *message, const char *command);
void		 state_set_pool(struct state *, int, const char *version, const char *pstate,
		    const char *by);
json_t		*state_lock(struct state *);		/* NULL when free; drops an expired one */
json_t		*history_read(struct state *, int n);	/* newest first */
int		 history_append(struct state *, json_t *entry);	/* steals; adds id/time */
int		 history_has_id(struct state *, const char *id);
void		 history_set_hook(struct state *, void (*)(json_t *, void *), void *);	/* each new entry */
/* A journal entry: who ran command, the roles before and after, the result. */
struct op_who;
json_t		*journal_entry(const struct op_who *, const char *command, int before,
		    int after, const char *result, const char *error);
/* The deploy lock's record (expires 0 without a ttl). */
json_t		*lock_record(const char *user, json_int_t uid, const char *message,
		    time_t since, long long ttl);
int		 intent_write(struct state *, json_t *);
json_t		*intent_read(struct state *);
int		 intent_clear(struct state *);

/*
 * cluster: several instances share the state, journal and intent in etcd.
 * The mirror (cluster.c's, installed by cluster_start) gets every write;
 * once it has read the shared journal (loaded), history answers from it,
 * and intent_read() finds nothing (an interrupted switch is taken over
 * from the shared intent).  NULL, as on one host: state.c alone.
 */
struct state_mirror {
	const char	*(*name)(void *arg);			/* this instance */
	void		 (*save)(void *arg, json_t *doc);	/* copies */
	void		 (*append)(void *arg, json_t *entry);	/* copies; has "instance" */
	void		 (*intent_write)(void *arg, json_t *intent);	/* copies */
	void		 (*intent_clear)(void *arg);
	int		 (*loaded)(void *arg);
	json_t		*(*history)(void *arg, int n);		/* newest first; new ref */
	int		 (*has_id)(void *arg, const char *id);
	void		*arg;
};
void		 state_set_mirror(struct state *, const struct state_mirror *);
/* Another instance wrote the shared state: it replaces ours (no write back). */
void		 state_replace(struct state *, json_t *doc);
/* Another instance's journal entry, copied here (no hook, no mirror). */
void		 history_mirror(struct state *, json_t *entry);

#endif
