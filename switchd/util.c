/*
 * util.c — small helpers: crash-safe file replacement, allocation that
 * cannot return NULL, time formatting, a pool's name.
 */
#include <sys/stat.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/*
 * Replace path with data so that a crash at any instant leaves either the
 * old or the new file: temp file in the same directory, fsync, rename over,
 * fsync the directory.  On error the temp file is removed and errno set.
 * The temp file gets a fresh random name, made with O_EXCL (mkostemp): a
 * symlink or file planted in the directory is never followed or reused.
 */
int
file_write_atomic(const char *path, const char *data, size_t len, int mode)
{
	char *tmp, *dcopy;
	int fd, dfd, saved;
	size_t off = 0;
	ssize_t n;

	tmp = xasprintf("%s.tmp.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd == -1) {
		saved = errno;
		free(tmp);
		errno = saved;
		return -1;
	}
	while (off < len) {
		n = write(fd, data + off, len - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) == -1 || fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	free(tmp);

	dcopy = xstrdup(path);
	dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dcopy);
	if (dfd == -1)
		return -1;
	if (fsync(dfd) == -1) {
		saved = errno;
		close(dfd);
		errno = saved;
		return -1;
	}
	close(dfd);
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	free(tmp);
	errno = saved;
	return -1;
}

/*
 * A URL fit for the log: "scheme://host/..." only.  A webhook URL carries
 * its secret in the path (Slack's /services/T/B/XXXX) or in user:password@.
 */
char *
url_redact(const char *url)
{
	const char *p, *host, *end, *at;

	if (url == NULL)
		return xstrdup("(none)");
	if ((p = strstr(url, "://")) == NULL)
		return xstrdup("(a URL)");
	host = p + 3;
	end = host + strcspn(host, "/?#");
	/* userinfo@host: keep the host only */
	for (at = end; at > host && at[-1] != '@'; at--)
		;
	if (at > host)
		host = at;
	return xasprintf("%.*s://%.*s%s", (int)(p - url), url, (int)(end - host), host,
	    *end != '\0' ? "/..." : "");
}

char *
xstrdup(const char *s)
{
	char *p;

	if (s == NULL)
		return NULL;
	if ((p = strdup(s)) == NULL)
		fatalx("out of memory");
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n ? n : 1, size ? size : 1)) == NULL)
		fatalx("out of memory");
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	if ((p = reallocarray(p, n ? n : 1, size ? size : 1)) == NULL)
		fatalx("out of memory");
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r == -1)
		fatalx("out of memory");
	return s;
}

void
iso_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* A short unique id for history entries and intent records. */
void
new_id(char *buf, size_t len)
{
	static unsigned seq;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(buf, len, "%lx-%lx-%x", (unsigned long)tv.tv_sec,
	    (unsigned long)tv.tv_usec, (unsigned)getpid() ^ (++seq << 16));
}

/*
 * Length of the well-formed UTF-8 sequence at p (1-4), or 0 if p does not
 * start one.  As strict as jansson (no overlong forms, no surrogates,
 * nothing above U+10FFFF), so that json_string() accepts what passes.
 */
static int
utf8_seq(const unsigned char *p)
{
	int n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
		return 0;
	return n;
}

/* Is s valid UTF-8 (as jansson wants it)? */
int
utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int n;

	while (*p != '\0') {
		if ((n = utf8_seq(p)) == 0)
			return 0;
		p += n;
	}
	return 1;
}

/*
 * Make s valid UTF-8 in place: a byte that does not start a well-formed
 * sequence becomes '?'.  JSON strings must be UTF-8, and child output,
 * HAProxy replies and the like are whatever bytes they are: every string
 * from outside goes through here before it reaches JSON.
 */
char *
utf8_fix(char *s)
{
	unsigned char *p = (unsigned char *)s;
	int n;

	while (p != NULL && *p != '\0') {
		if ((n = utf8_seq(p)) == 0)
			*p++ = '?';
		else
			p += n;
	}
	return s;
}

/*
 * What EC2 (or a hand-edited state file) says goes into HAProxy admin
 * commands ("add server BE/ID ADDR": a ';' would start another command) and
 * into the generated backends file (a newline would add configuration), so
 * only values of the documented shape get through.
 */
int
valid_instance_id(const char *s)
{
	size_t n;

	if (s == NULL || strncmp(s, "i-", 2) != 0)
		return 0;
	for (n = 0; s[2 + n] != '\0'; n++)
		if (!((s[2 + n] >= '0' && s[2 + n] <= '9') || (s[2 + n] >= 'a' && s[2 + n] <= 'f')))
			return 0;
	return n >= 8 && n <= 17;
}

int
valid_ip(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return s != NULL && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

/* "IPv4:port" or "[IPv6]:port", as discovery writes them. */
int
valid_ip_port(const char *s)
{
	const char *colon;
	char host[INET6_ADDRSTRLEN + 2], *end;
	size_t len;
	long port;

	if (s == NULL || (colon = strrchr(s, ':')) == NULL)
		return 0;
	len = (size_t)(colon - s);
	if (s[0] == '[') {
		if (len < 3 || s[len - 1] != ']' || len - 2 >= sizeof(host))
			return 0;
		memcpy(host, s + 1, len - 2);
		host[len - 2] = '\0';
	} else {
		if (len == 0 || len >= sizeof(host))
			return 0;
		memcpy(host, s, len);
		host[len] = '\0';
		if (strchr(host, ':') != NULL)
			return 0;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	return valid_ip(host) && colon[1] != '\0' && *end == '\0' && errno == 0 &&
	    port > 0 && port <= 65535;
}

/*
 * Where to cut s (of len bytes) to keep at most max bytes without
 * splitting a character: max, or less if a character spans the cut.
 */
size_t
utf8_cut(const char *s, size_t len, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, back;

	if (len <= max)
		return len;
	/* Back over continuation bytes (at most 3) to the character's start. */
	for (n = max, back = 0; n > 0 && back < 3 && (p[n] & 0xc0) == 0x80; back++)
		n--;
	return (p[n] & 0xc0) == 0x80 ? max : n;
}

/* Truncate s in place to at most max bytes, never inside a character. */
char *
utf8_trunc(char *s, size_t max)
{
	s[utf8_cut(s, strlen(s), max)] = '\0';
	return s;
}

/*
 * len, less a character left incomplete at the end of s[0..len) (by a cut
 * at a byte count): where to end s so that the cut splits nothing.
 */
size_t
utf8_complete(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i, need;

	for (i = len; i > 0 && len - i < 3 && (p[i - 1] & 0xc0) == 0x80; i--)
		;
	if (i == 0 || p[i - 1] < 0xc2 || p[i - 1] > 0xf4)
		return len;
	need = p[i - 1] >= 0xf0 ? 4 : p[i - 1] >= 0xe0 ? 3 : 2;
	return len - (i - 1) < need ? i - 1 : len;
}

/*
 * For a buffer snprintf() may have cut: drop a character left incomplete
 * at its end, then make the rest valid.
 */
char *
utf8_tidy(char *s)
{
	s[utf8_complete(s, strlen(s))] = '\0';
	return utf8_fix(s);
}

/* "host:port" or "[v6]:port" (http.listen): host copied out, 0; -1 if malformed. */
int
listen_addr_parse(const char *a, char *host, size_t hostlen, int *port)
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
