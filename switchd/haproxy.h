/*
 * haproxy.h — what the two HAProxy drivers share (haproxy.c).  Only
 * drv-haproxy*.c include it; what the drivers that reload run and read is
 * run.h, their sequence lb-reload.h.
 */
#ifndef SWITCHD_HAPROXY_H
#define SWITCHD_HAPROXY_H

#include "conf.h"
#include "lb.h"

struct hapx_sess;

/* The haproxy section of the config, the map file and its text. */
extern const struct conf_key hap_keys[];
void		 hap_conf_read(struct conf_ctx *, const struct config_setting_t *,
		    struct config *);
void		 hap_conf_free(struct config *);
const char	*hap_map_file(const struct config *);
char		*hap_map_text(const struct config *, const struct lb_mapping *);
/* Counters of the stats sockets; servers at run time (runtime driver only). */
extern const struct lb_stats hap_stats;
extern const struct lb_servers hap_servers;

/*
 * The one fan-out over HAProxy nodes: the same commands (each sent as
 * PREFIX CMD SUFFIX, for the master CLI) to every address at once, on one
 * pipelined connection a node when there is no prefix or suffix; done()
 * runs from the loop when every reply is in: replies[node * ncmds + i] and
 * errors[node * ncmds + i] (the transport's words), bad[node] when the
 * address is not one.
 */
#define FAN_MAXCMD	3
struct fan {
	struct lb	*lb;
	size_t		 nnodes, ncmds, pending;
	char	       **addrs;
	int		*bad;
	struct hapx_sess **sess;	/* per node, without a prefix */
	char		*cmds[FAN_MAXCMD];	/* as HAProxy knows them */
	char	       **replies;
	char	       **errors;
	void		(*done)(struct fan *);
	void		*arg;
};
void		 fan_start(struct lb *, const char *const *addrs, size_t naddrs,
		    const char *prefix, const char *suffix, const char *const *cmds,
		    void (*done)(struct fan *), void *arg);	/* cmds NULL-ended */
void		 fan_free(struct fan *);
/* Node's failure of command c, or NULL: "cannot reach it: ...", "\"CMD\" failed: ...". */
char		*fan_error(struct fan *, size_t node, size_t c);

#endif
