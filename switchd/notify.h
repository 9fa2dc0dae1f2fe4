/*
 * notify.h — webhook and command notifications of journal entries.
 */
#ifndef SWITCHD_NOTIFY_H
#define SWITCHD_NOTIFY_H
#include <jansson.h>

void	notify_event(json_t *entry);	/* borrowed; asynchronous, never fails the caller */
struct daemon;
void	notify_init(struct daemon *);
#endif
