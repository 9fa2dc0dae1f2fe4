/*
 * switchd.h — the daemon's shared types: configuration, state, the command
 * queue item (the load balancer driver interface is lb.h).
 */
#ifndef SWITCHD_H
#define SWITCHD_H

#include <sys/types.h>
#include <stddef.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "lb.h"
#include "protocol.h"

#define NPOOLS		2
#define POOL_B		0	/* blue */
#define POOL_G		1	/* green */

/* ---------------------------------------------------------------- config */

struct server {
	char		*name;
	char		*address;	/* host:port */
	char		*instance;	/* EC2 instance id, optional */
};

struct pool {
	const char	*name;		/* "blue" | "green" */
	char		*backend;
	struct server	*servers;
	size_t		 nservers;
};

struct smoke_check {
	char		*name;
	char		*method;
	char		*path;
	int		 status;
	char		*body;
	int		 max_ms;
};

struct config {
	char		*path;

	char		*ctl_socket;
	int		 ctl_mode;
	char		*ctl_group;
	char		*admin_group;

	char		*state_dir;
	char		*live_host;
	char		*cold_host;
	struct pool	 pools[NPOOLS];

	/* The load balancer driver, chosen by its section; what it read of it. */
	const struct lb_driver *drv;
	void		*drv_conf;	/* the driver's own (nginx: struct ngx_conf) */
	int		 min_up;
	int		 timeout_ms;

	/* The haproxy section (drv-haproxy.c reads it, for both HAProxy drivers). */
	char		*hap_mode;	/* "runtime" | "reload" */
	char	       **hap_sockets;
	size_t		 hap_nsockets;
	char		*hap_map;
	char		*hap_canary_map;	/* "<live host> <cold backend>:<percent>", or NULL */
	char		*master_socket;
	char		*reload_command;
	char		*hap_config;	/* reload mode: what haproxy -c checks */
	char		*hap_binary;
	int		 reload_timeout_ms;	/* check + reload + new worker up */

	char		*smoke_url;
	int		 smoke_timeout_ms;
	struct smoke_check *checks;
	size_t		 nchecks;
	int		 per_server;
	char		*smoke_command;
	int		 smoke_command_timeout;
	int		 smoke_verify_tls;	/* https smoke.url: verify as the cold host */
	char		*smoke_ca_file;
	int		 smoke_preview;	/* also check the live host name with the preview cookie */

	/* guard: the bake window after a switch and the watch over a canary. */
	int		 guard_bake;		/* seconds; 0: off */
	double		 guard_max_5xx;		/* percent */
	int		 guard_min_requests;
	int		 guard_interval_ms;

	char		*deploy_command;
	int		 deploy_timeout;

	char		*ec2_region;
	char		*ec2_role_tag;
	char		*ec2_hot;
	char		*ec2_cold;
	int		 ec2_discover;
	char		*ec2_pool_tag;
	int		 ec2_port;
	char		*ec2_endpoint;
	char		*ec2_pool_tag_filter;	/* "tag:" + ec2_pool_tag */
	char		*ec2_port_tag;		/* an instance's own port, over ec2_port */
	int		 ec2_discover_interval;	/* seconds */
	char		*ec2_server_options;	/* for discovered servers */
	json_t		*ec2_filters;		/* ["name=v1,v2", ...] */
	char		*backends_file;		/* generated backends, for reloads */
	char		*backends_defaults;	/* the defaults section they use */
	int		 nstatic[NPOOLS];	/* configured servers; then discovered */

	char		*notify_webhook;
	char		*notify_command;
	int		 notify_timeout;	/* seconds */

	char		*http_listen;		/* "127.0.0.1:9180"; NULL: off */
};

/*
 * Returns a new config, or NULL with every error ("FILE:LINE: text") in
 * *errors.  drivers (lb_drivers) are the load balancers it may choose from:
 * handed down, so that config.c stays below the drivers that use it.
 */
struct config	*config_load(const char *path, const struct lb_driver *const *drivers,
		    json_t **errors);
void		 config_free(struct config *);
int		 pool_index(const char *name);	/* -1 if not blue/green */
const char	*pool_name(int idx);		/* "blue" | "green" */

/* ----------------------------------------------------------------- state */

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
void		 state_set_pool(struct state *, int, const char *version, const char *pstate,
		    const char *by);
json_t		*state_lock(struct state *);		/* NULL when free; drops an expired one */
json_t		*history_read(struct state *, int n);	/* newest first */
int		 history_append(struct state *, json_t *entry);	/* steals; adds id/time */
int		 history_has_id(struct state *, const char *id);
void		 history_set_hook(struct state *, void (*)(json_t *));	/* each new entry */
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

/* ------------------------------------------------------------------ util */

int		 file_write_atomic(const char *path, const char *data, size_t len, int mode);
char		*xstrdup(const char *);
void		*xcalloc(size_t, size_t);
void		 iso_time(time_t, char *, size_t);
double		 now_ms(void);
char		*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 new_id(char *buf, size_t len);
/* UTF-8 at the edges: every string from outside is fixed before JSON. */
char		*url_redact(const char *);	/* "scheme://host/...", malloc'd */
char		*utf8_fix(char *);		/* in place: bad bytes become '?' */
int		 utf8_valid(const char *);
char		*utf8_tidy(char *);		/* utf8_fix, and drop a cut last character */
char		*utf8_trunc(char *, size_t max);	/* in place, never inside a character */
size_t		 utf8_cut(const char *, size_t len, size_t max);
size_t		 utf8_complete(const char *, size_t len);
int		 valid_instance_id(const char *);	/* i-[0-9a-f]{8,17} */
int		 valid_ip(const char *);		/* IPv4 or IPv6, inet_pton */
int		 valid_ip_port(const char *);	/* IP:port or [IPv6]:port */
int		 listen_addr_parse(const char *, char *host, size_t hostlen, int *port);

/* ------------------------------------------------------------- commands */

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
void		 deploy_recover(struct daemon *);
/* The replies of status and history, for the control socket and HTTP alike. */
typedef void (*status_cb)(json_t *reply, void *arg);	/* callee owns reply */
void		 status_json(struct daemon *, status_cb, void *);
#define HISTORY_MAX_N	100000
json_t		*history_json(struct daemon *, long long n);		/* NULL: n out of range */

/* control.c */
int		 control_listen(struct daemon *);
void		 control_accept(int on);
void		 control_close(void);

/* guard.c: the canary split and the guard that watches a new pool. */
json_t		*canary_json(void);		/* status: null | {pool, percent, since} */
json_t		*guard_json(void);		/* status: null | {until, pool, responses, errors} */
void		 guard_init(struct daemon *);
void		 guard_after_switch(const char *command, int to, long long bake);
void		 guard_resume(void);
void		 guard_shutdown(void);
const char	*guard_unsupported(const struct config *);	/* why no canary, or NULL */
void		 cmd_canary_exec(struct cmdq_item *);
void		 cmd_rollout_exec(struct cmdq_item *);
int		 rollout_running(void);
int		 canary_back(struct cmdq_item *);	/* back during a canary: 1 if handled */

/* switch.c: bake < 0 is the config's guard.bake. */
typedef void (*flip_cb)(int ok, const char *code, const char *error, void *arg);
void		 pool_switch(struct daemon *, const struct op_who *, int target_hot,
		    const char *command, long long bake, flip_cb, void *);
void		 repair_init(struct daemon *);
void		 repair_schedule(const char *why);
void		 repair_cancel(void);		/* every node took a switch */
void		 repair_stop(void);
/* The pool most answering nodes serve (blue on a tie), -1 if none does. */
int		 lb_view_majority(const struct config *, struct state *, struct lb_view *);
/* The map file on disk must say that hot is hot. */
void		 map_file_sync(struct lb *, struct state *, int hot);

/* reconcile.c: make the nodes, the state file and the journal agree at start. */
void		 daemon_reconcile(struct daemon *, void (*done)(void *), void *);

#endif
