/*
 * switch.h — the switch (switch.c): make every node serve the other pool,
 * all or nothing, then state and journal; the background repair that makes
 * nodes that disagree with the state agree again.
 */
#ifndef SWITCHD_SWITCH_H
#define SWITCHD_SWITCH_H

struct daemon;
struct lb;
struct lb_view;
struct config;
struct op_who;
struct state;

typedef void (*switch_cb)(int ok, const char *code, const char *error, void *arg);
/* Switch to target_hot; bake < 0 is the config's guard.bake. */
void		 pool_switch(struct daemon *, const struct op_who *, int target_hot,
		    const char *command, long long bake, switch_cb, void *);
void		 repair_schedule(struct daemon *, const char *why);
void		 repair_stop(void);
void		 repair_kick(void);	/* a pending repair runs now (cluster.c) */
/* The pool most answering nodes serve (blue on a tie), -1 if none does. */
int		 lb_view_majority(const struct config *, struct state *, struct lb_view *);
/* The map file on disk must say that hot is hot. */
void		 map_file_sync(struct lb *, struct state *, int hot);

#endif
