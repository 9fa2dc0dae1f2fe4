/*
 * daemon-stubs.h — what switchd.c (the daemon's main, not in libswitchd.a)
 * provides to the library: the daemon's global and two calls back into it.
 * A unit test or fuzzer that links the library but runs no daemon includes
 * this once.  (The global goes when the daemon's pieces are passed, not
 * reached for: issue 12.)
 */
#ifndef SWITCHD_DAEMON_STUBS_H
#define SWITCHD_DAEMON_STUBS_H
#include "switchd.h"

struct switchd sd;

int
switchd_reload_config(json_t **errors)
{
	(void)errors;
	return -1;
}

void
switchd_maybe_exit(void)
{
}
#endif
