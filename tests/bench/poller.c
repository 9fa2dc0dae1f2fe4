/*
 * poller.c — a keep-alive HTTP/1.1 client that asks HAProxy for "/" as fast
 * as it answers and records which pool answered each request, to measure a
 * switch's time to effect and to draw the flips.
 *
 *   poller PORT HOST SECONDS OUT
 *
 * GET / with "Host: HOST" on 127.0.0.1:PORT, one request at a time on one
 * connection (a new one if HAProxy closes it), for SECONDS or until SIGTERM
 * / SIGINT.  Then writes OUT: one line per response, "T_US POOL", T_US the
 * wall clock (CLOCK_REALTIME, microseconds) when the response was complete,
 * POOL the body's first word ("blue", "green") or "error:WHY".  Bodies are
 * the backend's name (tests/bench/run.sh's backends answer so).
 */
#define _GNU_SOURCE
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

struct sample {
	long long	 t_us;
	char		 pool[24];
};

static struct sample *samples;
static size_t nsamples, cap;

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
record(const char *pool, size_t len)
{
	if (nsamples == cap) {
		cap = cap ? cap * 2 : 65536;
		samples = realloc(samples, cap * sizeof(*samples));
		if (samples == NULL) {
			perror("poller: realloc");
			exit(1);
		}
	}
	samples[nsamples].t_us = now_us();
	if (len >= sizeof(samples[0].pool))
		len = sizeof(samples[0].pool) - 1;
	memcpy(samples[nsamples].pool, pool, len);
	samples[nsamples].pool[len] = '\0';
	nsamples++;
}

static int
connect_to(int port)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/*
 * One request/response on fd.  Returns 0 and the body's first word in
 * pool, 1 if the server closed the connection before answering (reconnect
 * and retry: keep-alive ends), -1 on an error (why in pool).
 */
static int
exchange(int fd, const char *req, size_t reqlen, char *pool, size_t poolsz)
{
	static char buf[65536];
	size_t have = 0, need = 0, hdrlen = 0, i;
	ssize_t n;
	char *eoh, *cl;
	int status;

	if (send(fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen)
		return 1;
	for (;;) {
		n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (n == 0)
			return have == 0 ? 1 : (snprintf(pool, poolsz, "error:eof"), -1);
		if (n < 0) {
			if (errno == EINTR && !stop)
				continue;
			if (have == 0 && (errno == ECONNRESET || errno == EINTR))
				return 1;
			snprintf(pool, poolsz, "error:%s", strerror(errno));
			return -1;
		}
		have += (size_t)n;
		buf[have] = '\0';
		if (hdrlen == 0 && (eoh = strstr(buf, "\r\n\r\n")) != NULL) {
			hdrlen = (size_t)(eoh - buf) + 4;
			cl = strcasestr(buf, "\r\ncontent-length:");
			need = hdrlen + (cl != NULL && cl < eoh ? strtoul(cl + 17, NULL, 10) : 0);
		}
		if (hdrlen > 0 && have >= need)
			break;
		if (have >= sizeof(buf) - 1) {
			snprintf(pool, poolsz, "error:too-long");
			return -1;
		}
	}
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
		snprintf(pool, poolsz, "error:garbage");
		return -1;
	}
	if (status != 200) {
		snprintf(pool, poolsz, "error:%d", status);
		return -1;
	}
	for (i = 0; hdrlen + i < need && i < poolsz - 1 &&
	    buf[hdrlen + i] > ' '; i++)
		pool[i] = buf[hdrlen + i];
	pool[i] = '\0';
	return 0;
}

int
main(int argc, char *argv[])
{
	char req[512], pool[64];
	struct sigaction sa;
	long long end;
	int port, fd = -1, r;
	size_t reqlen, i;
	FILE *out;

	if (argc != 5) {
		fprintf(stderr, "usage: poller PORT HOST SECONDS OUT\n");
		return 2;
	}
	port = atoi(argv[1]);
	end = now_us() + atoll(argv[3]) * 1000000LL;
	reqlen = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: switchd-bench-poller\r\n\r\n", argv[2]);
	/* No SA_RESTART: a signal ends a blocked recv() at once. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	while (!stop && now_us() < end) {
		if (fd == -1 && (fd = connect_to(port)) == -1) {
			record("error:connect", 13);
			usleep(1000);
			continue;
		}
		r = exchange(fd, req, reqlen, pool, sizeof(pool));
		if (r == 0)
			record(pool, strlen(pool));
		else {
			if (r == -1 && !stop)
				record(pool, strlen(pool));
			close(fd);
			fd = -1;
		}
	}
	if (fd != -1)
		close(fd);
	if ((out = fopen(argv[4], "w")) == NULL) {
		perror(argv[4]);
		return 1;
	}
	for (i = 0; i < nsamples; i++)
		fprintf(out, "%lld %s\n", samples[i].t_us, samples[i].pool);
	fclose(out);
	fprintf(stderr, "poller: %zu responses\n", nsamples);
	return 0;
}
