/*
 * drv.h — what the load balancer drivers share beyond struct lb_driver
 * (lb.h): the driver objects lb.c picks from.  Only lb.c and drv-*.c
 * include it; what the drivers that reload run and read is run.h.
 */
#ifndef SWITCHD_DRV_H
#define SWITCHD_DRV_H

#include "conf.h"
#include "switchd.h"

extern const struct lb_driver drv_haproxy_runtime;	/* drv-haproxy.c */
extern const struct lb_driver drv_haproxy_reload;	/* drv-haproxy-reload.c */
extern const struct lb_driver drv_nginx;		/* drv-nginx.c */

/*
 * What both HAProxy drivers share (drv-haproxy.c): the haproxy section of
 * the config, the map file and its text, and the counters of the stats
 * sockets.
 */
extern const struct conf_key hap_keys[];
void		 hap_conf_read(struct conf_ctx *, const struct config_setting_t *,
		    struct config *);
void		 hap_conf_free(struct config *);
const char	*hap_map_file(const struct config *);
char		*hap_map_text(const struct config *, const struct lb_mapping *);
extern const struct lb_stats hap_stats;

/* The drivers that reload one local load balancer change one node. */
size_t		 lb_one_node(const struct config *);

#endif
