/*
 * switchd.h — the daemon's shared types: configuration, state, the command
 * queue item, and the load balancer driver interface.
 */
#ifndef SWITCHD_H
#define SWITCHD_H

#include <sys/types.h>
#include <stddef.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

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

	char		*driver;	/* "haproxy" | "nginx" */
	char		*hap_mode;	/* "runtime" | "reload" ("none" with nginx) */
	char	       **hap_sockets;
	size_t		 hap_nsockets;
	char		*hap_map;
	char		*hap_canary_map;	/* "<live host> <cold backend>:<percent>", or NULL */
	int		 min_up;
	int		 timeout_ms;
	char		*master_socket;
	char		*reload_command;
	char		*hap_config;	/* reload mode: what haproxy -c checks */
	char		*hap_binary;
	int		 reload_timeout_ms;	/* check + reload + new worker up */

	/* driver "nginx": hap_map then names the include switchd writes. */
	char		*ngx_include;
	char		*ngx_config;
	char		*ngx_binary;
	char		*ngx_prefix;
	char		*ngx_reload_command;
	char		*ngx_pid_file;
	char		*ngx_check_url;
	int		 ngx_timeout_ms;

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

	/* cluster: the instances that share one lock, state and journal in etcd. */
	char	       **cluster_endpoints;	/* NULL: no cluster (one host) */
	size_t		 cluster_nendpoints;
	char		*cluster_prefix;	/* "/switchd/www" */
	char		*cluster_name;		/* this instance */
	int		 cluster_lease_ttl;	/* seconds */
};

/* Returns a new config, or NULL with every error ("FILE:LINE: text") in *errors. */
struct config	*config_load(const char *path, json_t **errors);
void		 config_free(struct config *);
int		 pool_index(const char *name);	/* -1 if not blue/green */
const char	*pool_name(int idx);		/* "blue" | "green" */

/* ----------------------------------------------------------------- state */

/*
 * The persistent state is one JSON document (state.json), kept in memory as
 * is: {"hot", "cold", "pools": {"blue": {version, state, since, by}},
 * "last_switch", "lock", "ec2": {"drift": []}}.
 */
int		 state_open(const char *dir, const struct config *);
json_t		*state_doc(void);
void		 state_close(void);
int		 state_is_new(void);		/* there was no state file */
int		 state_roles_trusted(void);	/* hot/cold read from a sound file */
json_t		*state_load_errors(void);	/* borrowed: ["what was wrong", ...] */
int		 state_save(void);
void		 state_replace(json_t *);	/* the shared state (cluster.c): no write back */
int		 state_hot(void);			/* POOL_B or POOL_G */
void		 state_set_hot(int);
json_t		*state_pool(int);
void		 state_set_pool(int, const char *version, const char *pstate, const char *by);
json_t		*state_lock(void);			/* NULL when free; drops an expired one */
json_t		*history_read(int n);			/* newest first */
int		 history_append(json_t *entry);		/* steals; adds id/time if absent */
int		 history_has_id(const char *id);
void		 history_mirror(json_t *entry);		/* cluster: a copy, nothing else */
void		 history_set_hook(void (*)(json_t *));	/* called with each new entry */
int		 intent_write(json_t *);
json_t		*intent_read(void);
int		 intent_clear(void);

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

/* --------------------------------------------------------------- daemon */

struct switchd {
	struct event_base *base;
	struct config	*conf;
	struct lb	*lb;
	int		 shutting_down;
};
extern struct switchd sd;

int		 switchd_reload_config(json_t **errors);
void		 switchd_maybe_exit(void);

/* ------------------------------------------------------------- commands */

struct client;

/*
 * One request being executed.  It outlives its client: a switchctl that is
 * interrupted does not abort the operation, replies are just dropped.
 */
struct cmdq_item {
	struct client	*client;
	const struct cmd_info *info;
	json_t		*args;
	uid_t		 uid;
	char		 user[64];
	int		 admin;
	time_t		 started;
	double		 started_ms;	/* now_ms() */
	void		*data;
};

void		 cmd_dispatch(struct client *, uid_t, int admin, const char *user, json_t *req);
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
int		 cmd_busy(void);
int		 cmd_acquire_internal(void);	/* take the busy slot for a repair */
void		 cmd_release_internal(void);
json_t		*cmd_busy_json(void);
void		 client_attach(struct client *, struct cmdq_item *);
void		 client_send(struct client *, json_t *);
void		 client_command_done(struct client *);

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
void		 deploy_recover(void);
/* The replies of status and history, for the control socket and HTTP alike. */
typedef void (*status_cb)(json_t *reply, void *arg);	/* callee owns reply */
void		 status_json(status_cb, void *);
#define HISTORY_MAX_N	100000
json_t		*history_json(long long n);		/* NULL: n out of range */

/* control.c */
int		 control_listen(const struct config *);
void		 control_accept(int on);
void		 control_close(void);

/* ------------------------------------------------------------- drivers */

/* Which backend serves each host name. */
struct lb_mapping {
	char		 live[128];
	char		 cold[128];
	char		 canary[160];	/* "<cold backend>:<percent>"; "" without canary_map */
};

/* What one load balancer node says. */
struct lb_node {
	char		*name;		/* socket address, for messages */
	int		 ok;
	char		 error[512];
	int		 has_map;
	struct lb_mapping map;
	json_t		*servers;	/* {"be_blue": [{name,address,status}], ...} */
};

struct lb_view {
	struct lb_node	*nodes;
	size_t		 nnodes;
};
void		 lb_view_free(struct lb_view *);

/* code is NULL on success, else one of E_*, with error the human text. */
typedef void (*lb_done_cb)(const char *code, const char *error, void *arg);
typedef void (*lb_view_cb)(struct lb_view *, void *arg);	/* callee owns view */

/*
 * A load balancer driver.  The switch logic only ever calls these; adding a
 * driver is one new drv-*.c and one line in drivers[].
 */
struct lb_driver {
	const char	*name;
	const char	*product;	/* "HAProxy", "nginx": what a node runs */
	/* How many nodes a switch changes. */
	size_t		(*nnodes)(const struct config *);
	/* Read every node: its map and its servers' health. */
	void		(*observe)(struct lb *, lb_view_cb, void *);
	/* Can `to` be applied?  Every node answers, backends exist, min_up. */
	void		(*precheck)(struct lb *, const struct lb_mapping *to,
			    const char *target_backend, int min_up, lb_done_cb, void *);
	/* Make every node serve `to`, all or nothing, and persist it. */
	void		(*apply)(struct lb *, const struct lb_mapping *to,
			    lb_done_cb, void *);
};

/*
 * A driver bound to one config.  It owns the config; operations in flight
 * hold a reference, so a reload never frees what they use.
 */
struct lb {
	const struct lb_driver *drv;
	struct config	*conf;
	struct event_base *base;
	int		 refs;
};

struct lb	*lb_new(struct event_base *, struct config *);
struct lb	*lb_ref(struct lb *);
void		 lb_unref(struct lb *);
void		 lb_mapping_for(const struct config *, int hot, struct lb_mapping *);
int		 lb_mapping_hot(const struct config *, const struct lb_mapping *);	/* -1 if not a valid pair */
char		*lb_map_text(const struct config *, const struct lb_mapping *);
int		 lb_node_serves(const struct config *, const struct lb_node *);
/* "1 HAProxy node", "3 HAProxy nodes", "1 nginx node", malloc'd. */
char		*lb_nodes_text(const struct lb *);

extern const struct lb_driver drv_haproxy_runtime;

/* guard.c: the canary split and the guard that watches a new pool. */
int		 canary_percent(int cold);	/* of the live host's traffic on pool cold */
json_t		*canary_json(void);		/* status: null | {pool, percent, since} */
json_t		*guard_json(void);		/* status: null | {until, pool, responses, errors} */
int		 canary_file_write(const struct config *, const struct lb_mapping *);
void		 guard_after_switch(struct cmdq_item *, const char *command, int from, int to);
void		 guard_resume(void);
void		 guard_shutdown(void);
const char	*guard_unsupported(const struct config *);	/* why no canary, or NULL */
void		 cmd_canary_exec(struct cmdq_item *);
void		 cmd_rollout_exec(struct cmdq_item *);
int		 rollout_running(void);
int		 canary_back(struct cmdq_item *);	/* back during a canary: 1 if handled */

/* switch.c */
typedef void (*flip_cb)(int ok, const char *code, const char *error, void *arg);
void		 pool_switch(struct cmdq_item *, int target_hot, const char *command, flip_cb, void *);
void		 switchd_reconcile(void (*done)(void *), void *);
void		 repair_schedule(const char *why);
void		 repair_cancel(void);		/* every node took a switch */
void		 repair_stop(void);
void		 repair_kick(void);		/* a pending repair runs now */

#endif
