/*
 * control.h — the control socket (control.c): listen, accept, the peer's
 * uid, one request line at a time per client.
 */
#ifndef SWITCHD_CONTROL_H
#define SWITCHD_CONTROL_H

struct daemon;
struct client_ops;

int		 control_listen(struct daemon *);
void		 control_accept(int on);
void		 control_close(void);
extern const struct client_ops control_client_ops;

#endif
