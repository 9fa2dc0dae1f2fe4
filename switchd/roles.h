/*
 * roles.h — EC2 role tags (hot/cold) that follow every switch.
 */
#ifndef SWITCHD_ROLES_H
#define SWITCHD_ROLES_H
#include <jansson.h>

struct ec2_ctx;
typedef void (*roles_done_cb)(const char *code, const char *error, void *arg);
/* drift: [{instance, pool, want, have}] (borrowed), or NULL with code/error. */
typedef void (*roles_check_cb)(json_t *drift, const char *code, const char *error, void *arg);

int		 roles_enabled(void);		/* any instance ids, or discovery */
struct ec2_ctx	*roles_ec2(void);		/* the EC2 client for the current config */
void		 roles_retag(const char *why, roles_done_cb, void *);	/* cb may be NULL */
void		 roles_check(roles_check_cb, void *);	/* what EC2 says, against the roles */
void		 roles_mark_synced(void);	/* roles_check found no drift */
void		 roles_shutdown(void);
struct daemon;
void		 roles_init(struct daemon *);
#endif
