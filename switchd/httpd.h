/*
 * httpd.h — the read-only HTTP server: /metrics, /api/status,
 * /api/history, /api/counters and the status page (libevent's evhttp).
 * Not to be confused with http.h, the libcurl client.
 */
#ifndef SWITCHD_HTTPD_H
#define SWITCHD_HTTPD_H
#include <event2/event.h>

struct config;

/* Listen as conf->http_listen says, or stop; -1 if a new bind failed (the old one is kept). */
struct daemon;
int		 httpd_configure(struct daemon *, const struct config *);
void		 httpd_stop(void);
/* Split "127.0.0.1:9180" or "[::1]:9180"; -1 if it is neither. */

extern const char page_html[];	/* page.c: switchd/page.html, embedded */
#endif
