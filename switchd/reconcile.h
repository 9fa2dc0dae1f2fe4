/*
 * reconcile.h — at start, before any command: make the nodes, the state
 * file and the journal agree (reconcile.c).
 */
#ifndef SWITCHD_RECONCILE_H
#define SWITCHD_RECONCILE_H

struct daemon;

void		 reconcile_start(struct daemon *, void (*done)(void *), void *);

#endif
