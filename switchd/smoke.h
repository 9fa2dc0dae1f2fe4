/*
 * smoke.h — run the smoke checks against a pool, all at once.
 */
#ifndef SWITCHD_SMOKE_H
#define SWITCHD_SMOKE_H
#include <jansson.h>

#define SMOKE_MAX_CONNECTIONS	256

struct daemon;
struct op_who;
/* results: [{check, target, url, method, status, ms, passed, why}], borrowed. */
typedef void (*smoke_done_cb)(int passed, json_t *results, const char *summary, void *arg);

/* Progress goes to who (if not NULL); cb may run before this returns. */
void	smoke_start(struct daemon *, const struct op_who *who, int pool, smoke_done_cb cb,
	    void *arg);
#endif
