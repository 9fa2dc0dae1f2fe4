/*
 * lb.h — the load balancer driver interface: what a node serves (struct
 * lb_mapping, lb_node, lb_view), what a driver does (struct lb_driver), and
 * a driver bound to one config (struct lb).
 */
#ifndef SWITCHD_LB_H
#define SWITCHD_LB_H

#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>

struct config;
struct lb;
struct state;

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

struct conf_ctx;
struct config_setting_t;
struct lb_req;

/* Traffic counters: {"backend": {"requests", "responses", "5xx"}}, or err. */
typedef void (*lb_counters_cb)(json_t *counters, const char *err, void *arg);
/* servers: {"backend": [{name, address, status, scur}]} (callee owns), or err. */
typedef void (*lb_servers_cb)(json_t *servers, const char *err, void *arg);
/* errors: ["\"what\": the node's words", ...], [] when all went well. */
typedef void (*lb_changes_cb)(json_t *errors, void *arg);

/*
 * What the guard and the metrics read: each node's traffic counters.  The
 * stats nodes are the ones that answer for counters (a reload driver's
 * stats socket), not always the nodes a switch changes.
 */
struct lb_stats {
	size_t		(*nnodes)(const struct config *);
	const char	*(*node)(const struct config *, size_t);	/* its name */
	/*
	 * One node's counters: of one backend, its responses (1xx to other)
	 * and 5xx; backend NULL: every backend's requests and 5xx.  Returns
	 * NULL if it could not be sent (cb is not called).
	 */
	struct lb_req	*(*counters)(struct lb *, size_t node, const char *backend,
			    lb_counters_cb, void *);
	void		(*cancel)(struct lb_req *);	/* cb is not called */
};

/*
 * What discovery needs: servers added to and removed from a node's
 * backends at run time.  changes is a list of {"op": "add" | "drain" |
 * "remove", "backend", "name", "address"}, done in order on one node; a
 * change that fails does not stop the others.
 */
struct lb_servers {
	size_t		(*nnodes)(const struct config *);
	const char	*(*node)(const struct config *, size_t);	/* its name */
	void		(*read)(struct lb *, size_t node, lb_servers_cb, void *);
	int		(*up)(const char *status);	/* a server's status: takes traffic */
	void		(*change)(struct lb *, size_t node, json_t *changes,
			    lb_changes_cb, void *);
};

/*
 * A load balancer driver: everything that differs from one load balancer
 * to another is here, and nothing outside drv-*.c asks which driver it
 * has.  Adding a driver is one new drv-*.c that fills one of these and one
 * line in lb_drivers[] (lb.c); config.c finds its section there.
 */
struct lb_driver {
	const char	*name;		/* "haproxy-runtime", "haproxy-reload", "nginx" */
	const char	*product;	/* "HAProxy", "nginx": what a node runs */
	/* The wire code of a node's failure (protocol.h). */
	const char	*error_code;

	/*
	 * Its config: the section it reads ("haproxy"), and which value of
	 * that section's "mode" picks it (NULL: the section alone does; the
	 * first driver of a section is its default).  keys is the section's
	 * schema (conf.h).  conf_read reads and checks the section into conf
	 * (section NULL when there is none: defaults); conf_free frees what
	 * it kept.
	 */
	const char	*section;
	const char	*mode;
	const struct conf_key *keys;
	/* pools.*.backend when unset: this, then the pool's name; NULL: required. */
	const char	*backend_prefix;
	void		(*conf_read)(struct conf_ctx *, const struct config_setting_t *section,
			    struct config *);
	void		(*conf_free)(struct config *);

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

	/* The file that keeps the mapping across restarts, and its text for `to`. */
	const char	*(*map_file)(const struct config *);
	char		*(*map_text)(const struct config *, const struct lb_mapping *);

	/*
	 * What it can do beyond a switch.  why_no_canary says why a canary
	 * cannot run (NULL: it can).  stats and servers are NULL for a
	 * driver without them: then no guard, no metrics counters, no
	 * discovery.
	 */
	const char	*(*why_no_canary)(const struct config *);
	const struct lb_stats *stats;
	const struct lb_servers *servers;
};

/* Every driver, NULL-ended (lb.c). */
extern const struct lb_driver *const lb_drivers[];

/*
 * A driver bound to one config.  It owns the config; operations in flight
 * hold a reference, so a reload never frees what they use.
 */
struct lb {
	const struct lb_driver *drv;
	struct config	*conf;
	struct event_base *base;
	int		 refs;
	/*
	 * Asked by a driver just before it commits to the nodes: 0 (why
	 * filled in) stops the switch with code "cluster", nothing changed.
	 * Installed by the daemon (cluster.c's lease check); NULL: always.
	 */
	int		(*may_commit)(void *arg, char *why, size_t len);
	void		*may_commit_arg;
	/*
	 * The driver's own: what its precheck lends to an apply started from
	 * the precheck's callback (drv-haproxy.c: its connection to each
	 * node), NULL at any other time.
	 */
	void		*lent;
};

struct lb	*lb_new(struct event_base *, struct config *);
struct lb	*lb_ref(struct lb *);
void		 lb_unref(struct lb *);
/* The mapping that makes hot hot, with the state's canary split. */
void		 lb_mapping_for(const struct config *, struct state *, int hot, struct lb_mapping *);
int		 lb_mapping_hot(const struct config *, const struct lb_mapping *);	/* -1 if not a valid pair */
int		 lb_node_serves(const struct config *, struct state *, const struct lb_node *);
/* The canary map file (haproxy.canary_map) for a mapping; 0 without one. */
int		 lb_canary_file_write(const struct config *, const struct lb_mapping *);
/* A driver's nnodes when it reloads one local load balancer: one node. */
size_t		 lb_one_node(const struct config *);
/* "1 HAProxy node", "3 HAProxy nodes", "1 nginx node", malloc'd. */
char		*lb_nodes_text(const struct lb *);

/*
 * The one map parser: lines of "KEY VALUE" (after skip fields: 1 for the
 * pointer in HAProxy's "show map"), '#' lines and a ';' after the value
 * ignored.  2 when both keys are there, 1 or 0 if not, -1 if one is there
 * twice (which HAProxy allows and switchd never writes).
 */
int		 lb_map_parse(const char *text, int skip, const char *live_key,
		    const char *cold_key, struct lb_mapping *);
/* A node's map from lb_map_parse(): has_map, or "a host name appears twice in WHERE". */
void		 lb_node_set_map(struct lb_node *, int found, const char *where);

#endif
