/*
 * util.c — small helpers: crash-safe file replacement, allocation that
 * cannot return NULL, time formatting.
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
#include "switchd.h"

/*
 * Replace path with data so that a crash at any instant leaves either the
 * old or the new file: temp file in the same directory, fsync, rename over,
 * fsync the directory.  On error the temp file is removed and errno set.
 */
int
file_write_atomic(const char *path, const char *data, size_t len, int mode)
{
	char *tmp, *dcopy;
	int fd, dfd, saved;
	size_t off = 0;
	ssize_t n;

	tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
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
 * Make s valid UTF-8 in place: a byte that does not start or continue a
 * well-formed sequence becomes '?'.  JSON strings must be UTF-8, and a
 * message cut at a byte count can split a character.
 */
char *
utf8_fix(char *s)
{
	unsigned char *p = (unsigned char *)s;
	int n, i;

	while (p != NULL && *p != '\0') {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf)
			n = 1;
		else if (*p >= 0xe0 && *p <= 0xef)
			n = 2;
		else if (*p >= 0xf0 && *p <= 0xf4)
			n = 3;
		else {
			*p++ = '?';
			continue;
		}
		for (i = 1; i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				break;
		if (i <= n) {
			*p++ = '?';
			continue;
		}
		p += n + 1;
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
