/*
 * notify.h — webhook and command notifications of journal entries.
 */
#ifndef SWITCHD_NOTIFY_H
#define SWITCHD_NOTIFY_H
#include <jansson.h>

struct daemon;
void	notify_event(struct daemon *, json_t *entry);	/* borrowed; asynchronous, never fails the caller */
#endif
