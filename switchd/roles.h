/*
 * roles.h — EC2 role tags (hot/cold) that follow every switch.
 */
#ifndef SWITCHD_ROLES_H
#define SWITCHD_ROLES_H
#include <jansson.h>

struct daemon;
struct ec2_ctx;
typedef void (*roles_done_cb)(const char *code, const char *error, void *arg);
/* drift: [{instance, pool, want, have}] (borrowed), or NULL with code/error. */
typedef void (*roles_check_cb)(json_t *drift, const char *code, const char *error, void *arg);

int		 roles_enabled(struct daemon *);	/* any instance ids, or discovery */
struct ec2_ctx	*roles_ec2(struct daemon *);	/* the EC2 client for the current config */
/* cb may be NULL */
void		 roles_retag(struct daemon *, const char *why, roles_done_cb, void *);
/* What EC2 says, against the roles. */
void		 roles_check(struct daemon *, roles_check_cb, void *);
void		 roles_mark_synced(struct daemon *);	/* roles_check found no drift */
void		 roles_shutdown(void);
#endif
