/*
 * guard.h — what guard.c, cmd-canary.c and cmd-rollout.c share: setting
 * the canary split on every node, and the guard's start, stop and verdict
 * hook; and the few calls the rest of switchd makes (status, the switch,
 * start and stop).
 */
#ifndef SWITCHD_GUARD_H
#define SWITCHD_GUARD_H

#include <jansson.h>

#include "switch.h"

struct cmdq_item;
struct config;
struct daemon;
struct op_who;

json_t		*canary_json(struct daemon *);	/* status: null | {pool, percent, since} */
json_t		*guard_json(struct daemon *);	/* status: null | {until, pool, responses, errors} */
void		 guard_after_switch(struct daemon *, const char *command, int to,
		    long long bake);
void		 guard_resume(struct daemon *);
void		 guard_shutdown(void);
const char	*guard_unsupported(const struct config *);	/* why no canary, or NULL */

enum guard_kind { GUARD_BAKE, GUARD_CANARY };

/*
 * Make every node send percent of the live host's traffic to the cold pool
 * (0 ends the canary), all or nothing; then state, journal (entry "command"
 * is command: "canary" or "back"), and the guard (watching the cold pool
 * while percent > 0, off at 0).
 */
void		 canary_set(struct daemon *, const struct op_who *, int percent,
		    const char *command, switch_cb, void *arg);

/* "back" during a rollout stops it (rollout.c); 1 if one runs. */
int		 rollout_abort(struct cmdq_item *back);

/* The refusals "switch" makes before traffic moves; 0: refused, replied. */
int		 canary_refusals(struct cmdq_item *);

/* With a hook set (a rollout), a verdict calls it instead of going back. */
typedef void	(*guard_verdict_cb)(const char *why, void *arg);
void		 guard_set_hook(guard_verdict_cb, void *arg);
/* The guard can sample this config's load balancer (HAProxy, a socket). */
int		 guard_can_watch(const struct config *);
/* Mark pool failed for why (the guard's verdict); the caller saves. */
void		 guard_mark_failed(struct daemon *, int pool, const char *why);

#endif
