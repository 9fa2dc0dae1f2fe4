/*
 * conf.h — what config.c lends to the drivers that read their own section
 * of switchd.conf (struct lb_driver's keys and conf_read): the schema's
 * key types, and the error and value helpers config.c itself uses.
 */
#ifndef SWITCHD_CONF_H
#define SWITCHD_CONF_H

#include <libconfig.h>

enum ktype { K_STR, K_INT, K_NUM, K_BOOL, K_GROUP, K_LIST_STR, K_LIST_GROUP, K_MODE, K_ANYGROUP };

/* One key of a section: unknown keys and wrong types are errors with their line. */
struct conf_key {
	const char	*name;
	enum ktype	 type;
	const struct conf_key *sub;	/* K_GROUP, K_LIST_GROUP */
};

struct conf_ctx;

/* An error about s ("FILE:LINE: text"); the config is refused. */
void		 conf_error(struct conf_ctx *, const config_setting_t *s, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
/* g.name, or def (malloc'd; NULL if def is). */
char		*conf_str(const config_setting_t *g, const char *name, const char *def);
int		 conf_int(const config_setting_t *g, const char *name, int def);

#endif
