/*
 * hapx.h — HAProxy runtime API client: one command or a session of them,
 * asynchronously, and
 * parsers for its plain-text replies.
 */
#ifndef SWITCHD_HAPX_H
#define SWITCHD_HAPX_H
#include <sys/socket.h>
#include <event2/event.h>
#include <jansson.h>

struct lb_mapping;
struct hapx_req;
/* reply is NULL when err (transport error: connect, timeout) is set. */
typedef void (*hapx_cb)(const char *reply, const char *err, void *arg);

struct hapx_req	*hapx_cmd(struct event_base *, const char *addr, const char *cmd,
		    int timeout_ms, hapx_cb, void *arg);	/* NULL: bad address */
void		 hapx_cancel(struct hapx_req *);
/*
 * A session: commands on one connection, each answered through its
 * callback, in the order sent.  Commands are pipelined: several may be in
 * flight, so a batch costs one round trip.  After a transport error every
 * command waiting, and every later one, gets an error too.  A callback may
 * free the session.
 */
struct hapx_sess;
struct hapx_sess *hapx_sess_new(struct event_base *, const char *addr,
		    int timeout_ms);			/* NULL: bad address */
void		 hapx_sess_cmd(struct hapx_sess *, const char *cmd, hapx_cb, void *arg);
int		 hapx_sess_usable(const struct hapx_sess *);
void		 hapx_sess_free(struct hapx_sess *);
int		 hapx_parse_addr(const char *, struct sockaddr_storage *, socklen_t *);
char		*hapx_reply_error(const char *cmd, const char *reply);
int		 hapx_parse_version(const char *reply, unsigned long *ver);
int		 hapx_parse_map(const char *reply, const char *live_key,
		    const char *cold_key, struct lb_mapping *);
int		 hapx_has_backend(const char *reply, const char *backend);
json_t		*hapx_parse_stat(const char *reply);
json_t		*hapx_parse_backend_counters(const char *reply);
int		 hapx_status_up(const char *status);
int		 hapx_backend_up(const char *reply, const char *backend);
int		 hapx_backend_counters(const char *reply, const char *backend,
		    long long *responses, long long *errors);
int		 hapx_min_up_error(json_t *stat, const char *backend, int min_up,
		    const char *who, char *msg, size_t size);
#endif
