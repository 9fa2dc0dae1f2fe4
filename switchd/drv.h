/*
 * drv.h — what the load balancer drivers share beyond struct lb_driver
 * (lb.h): the driver objects lb.c picks from.  Only lb.c and drv-*.c
 * include it; what the drivers that reload run and read is run.h.
 */
#ifndef SWITCHD_DRV_H
#define SWITCHD_DRV_H

#include "switchd.h"

extern const struct lb_driver drv_haproxy_reload;	/* drv-haproxy-reload.c */
extern const struct lb_driver drv_nginx;		/* drv-nginx.c */

/* The include file the nginx driver owns, for `to`. */
char		*nginx_include_text(const struct config *, const struct lb_mapping *);

/* The drivers that reload one local load balancer change one node. */
size_t		 lb_one_node(const struct config *);

#endif
