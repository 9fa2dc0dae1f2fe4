/*
 * discover.h — pool membership from EC2 tags, applied to HAProxy at run time.
 */
#ifndef SWITCHD_DISCOVER_H
#define SWITCHD_DISCOVER_H
#include <jansson.h>

struct config;
struct daemon;
/* report: {blue[], green[], added[], removed[], draining[], errors[]} (borrowed) */
typedef void (*discover_done_cb)(json_t *report, const char *code, const char *error, void *arg);

/* conf's servers: the configured ones and those discovered (in d's state) */
void	discover_apply_state(struct daemon *, struct config *);
void	discover_refresh(struct daemon *, discover_done_cb, void *);	/* cb may be NULL */
void	discover_start(struct daemon *);	/* the periodic refresh, per the config */
void	discover_stop(void);
#endif
