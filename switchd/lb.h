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

#endif
