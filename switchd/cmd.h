/*
 * cmd.h — a request being executed (struct cmdq_item), the reply helpers
 * every command uses (cmd.c), and the commands' entry points, one
 * cmd-<name>.c each; the table of names and options is cmd-table.h.
 */
#ifndef SWITCHD_CMD_H
#define SWITCHD_CMD_H

#include <sys/types.h>
#include <time.h>

#include <jansson.h>

struct client;
struct lb;
struct daemon;
struct op_who;

/*
 * One request being executed.  It outlives its client: a switchctl that is
 * interrupted does not abort the operation, replies are just dropped.
 */
struct cmdq_item {
	struct daemon	*d;
	struct client	*client;
	const struct cmd_info *info;
	json_t		*args;
	uid_t		 uid;
	char		 user[64];
	int		 admin;
	time_t		 started;
	double		 started_ms;	/* now_ms() */
	int		 cluster_held;	/* cluster: it holds P/lock in etcd */
};

void		 cmd_dispatch(struct daemon *, struct client *, uid_t, int admin,
		    const char *user, json_t *req);
void		 cmd_progress(struct cmdq_item *, const char *, ...) __attribute__((format(printf, 2, 3)));
void		 cmd_event(struct cmdq_item *, json_t *);
void		 cmd_done(struct cmdq_item *, json_t *);	/* steals */
void		 cmd_error(struct cmdq_item *, const char *code, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
int		 cold_pool_gate(struct cmdq_item *, int can_force,
		    const char *unverified_tail);		/* cmd-switch.c */
void		 smoke_gate_failed(struct cmdq_item *, const char *before, const char *outcome,
		    json_t *results, const char *summary);	/* cmd-switch.c */
void		 cmd_error_json(struct cmdq_item *, const char *code, json_t *extra, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
const char	*cmd_arg_str(struct cmdq_item *, const char *);
int		 cmd_arg_bool(struct cmdq_item *, const char *);
long long	 cmd_arg_int(struct cmdq_item *, const char *, long long def);
void		 cmd_who(struct cmdq_item *, struct op_who *);	/* its user, message, progress */
json_t		*cmd_busy_json(const struct daemon *);

void		 cmd_status_exec(struct cmdq_item *);
void		 cmd_hosts_exec(struct cmdq_item *);
void		 cmd_switch_exec(struct cmdq_item *);
void		 cmd_back_exec(struct cmdq_item *);
void		 cmd_history_exec(struct cmdq_item *);
void		 cmd_lock_exec(struct cmdq_item *);
void		 cmd_unlock_exec(struct cmdq_item *);
void		 cmd_reload_exec(struct cmdq_item *);
void		 cmd_cold_deploy_exec(struct cmdq_item *);
void		 cmd_smoke_exec(struct cmdq_item *);
void		 cmd_sync_exec(struct cmdq_item *);
void		 cmd_canary_exec(struct cmdq_item *);
void		 cmd_rollout_exec(struct cmdq_item *);
int		 rollout_running(void);
int		 canary_back(struct cmdq_item *);	/* back during a canary: 1 if handled */
void		 deploy_recover(struct daemon *);
/* The replies of status and history, for the control socket and HTTP alike. */
typedef void (*status_cb)(json_t *reply, void *arg);	/* callee owns reply */
void		 status_json(struct daemon *, status_cb, void *);
#define HISTORY_MAX_N	100000
json_t		*history_json(struct daemon *, long long n);		/* NULL: n out of range */

#endif
