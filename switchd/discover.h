/*
 * discover.h — pool membership from EC2 tags, applied to HAProxy at run time.
 */
#ifndef SWITCHD_DISCOVER_H
#define SWITCHD_DISCOVER_H
#include <jansson.h>

struct config;
/* report: {blue[], green[], added[], removed[], draining[], errors[]} (borrowed) */
typedef void (*discover_done_cb)(json_t *report, const char *code, const char *error, void *arg);

void	discover_apply_state(struct config *);	/* configured + discovered servers */
void	discover_refresh(discover_done_cb, void *);	/* cb may be NULL */
struct daemon;
void	discover_init(struct daemon *);
void	discover_start(void);			/* the periodic refresh, per the config */
void	discover_stop(void);
#endif
