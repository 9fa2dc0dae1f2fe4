/*
 * util.h — small helpers every layer may use: memory, time, files, ids,
 * UTF-8 at the edges, the syntax of addresses.
 */
#ifndef SWITCHD_UTIL_H
#define SWITCHD_UTIL_H

#include <stddef.h>
#include <time.h>

int		 file_write_atomic(const char *path, const char *data, size_t len, int mode);
char		*xstrdup(const char *);
void		*xcalloc(size_t, size_t);
void		*xreallocarray(void *, size_t, size_t);
void		 iso_time(time_t, char *, size_t);
double		 now_ms(void);
char		*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 new_id(char *buf, size_t len);
/* UTF-8 at the edges: every string from outside is fixed before JSON. */
char		*url_redact(const char *);	/* "scheme://host/...", malloc'd */
char		*utf8_fix(char *);		/* in place: bad bytes become '?' */
int		 utf8_valid(const char *);
char		*utf8_tidy(char *);		/* utf8_fix, and drop a cut last character */
char		*utf8_trunc(char *, size_t max);	/* in place, never inside a character */
size_t		 utf8_cut(const char *, size_t len, size_t max);
size_t		 utf8_complete(const char *, size_t len);
int		 valid_instance_id(const char *);	/* i-[0-9a-f]{8,17} */
int		 valid_ip(const char *);		/* IPv4 or IPv6, inet_pton */
int		 valid_ip_port(const char *);	/* IP:port or [IPv6]:port */
int		 listen_addr_parse(const char *, char *host, size_t hostlen, int *port);

#endif
