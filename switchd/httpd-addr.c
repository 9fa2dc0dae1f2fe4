/*
 * httpd-addr.c — http.listen's syntax, on its own so that the config
 * parser (and its unit test) can check it without the HTTP server.
 */
#include <stdlib.h>
#include <string.h>

#include "httpd.h"

int
httpd_parse_listen(const char *a, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(a, ':'), *h = a;
	size_t n;
	char *end;
	long p;

	if (colon == NULL)
		return -1;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || p <= 0 || p > 65535)
		return -1;
	n = (size_t)(colon - a);
	if (a[0] == '[') {
		if (n < 3 || a[n - 1] != ']')
			return -1;
		h = a + 1;
		n -= 2;
	} else if (memchr(a, ':', n) != NULL)
		return -1;	/* IPv6 without brackets */
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (int)p;
	return 0;
}
