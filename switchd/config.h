/*
 * config.h — switchd.conf as read by config.c (libconfig): every key the
 * daemon uses, checked and defaulted.  The driver sections are read by the
 * drivers themselves (lb.h, conf.h).
 */
#ifndef SWITCHD_CONFIG_H
#define SWITCHD_CONFIG_H

#include <stddef.h>

#include <jansson.h>

struct lb_driver;

#define NPOOLS		2
#define POOL_B		0	/* blue */
#define POOL_G		1	/* green */

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

	/* cluster: the instances that share one lock, state and journal in etcd. */
	char	       **cluster_endpoints;	/* NULL: no cluster (one host) */
	size_t		 cluster_nendpoints;
	char		*cluster_prefix;	/* "/switchd/www" */
	char		*cluster_name;		/* this instance */
	int		 cluster_lease_ttl;	/* seconds */
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

#endif
