/*
 * setmap.c — the physical limit of a flip: one "set map" on HAProxy's
 * admin socket, in process (connect, write, read the answer until HAProxy
 * closes), timed with the wall clock.
 *
 *   setmap SOCKET MAP KEY VALUE1 VALUE2 N GAP_MS OUT
 *
 * N times, alternating VALUE1 and VALUE2, GAP_MS apart.  OUT gets one line
 * per command: "START_US DURATION_US VALUE" (START_US: CLOCK_REALTIME, to
 * line up with tests/bench/poller.c's records).  Exit 1 if HAProxy answered
 * anything but an empty line (an error) to any of them.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long
now_us(int clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
main(int argc, char *argv[])
{
	struct sockaddr_un sun;
	char cmd[1024], reply[4096];
	long long t0, m0, dur;
	size_t have;
	ssize_t n;
	int i, count, gap, fd, bad = 0;
	FILE *out;

	if (argc != 9) {
		fprintf(stderr, "usage: setmap SOCKET MAP KEY VALUE1 VALUE2 N GAP_MS OUT\n");
		return 2;
	}
	count = atoi(argv[6]);
	gap = atoi(argv[7]);
	if ((out = fopen(argv[8], "w")) == NULL) {
		perror(argv[8]);
		return 1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", argv[1]);
	for (i = 0; i < count; i++) {
		const char *value = argv[4 + i % 2];
		int len = snprintf(cmd, sizeof(cmd), "set map %s %s %s\n", argv[2], argv[3], value);

		t0 = now_us(CLOCK_REALTIME);
		m0 = now_us(CLOCK_MONOTONIC);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
		    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
			perror(argv[1]);
			return 1;
		}
		if (write(fd, cmd, (size_t)len) != len) {
			perror("write");
			return 1;
		}
		have = 0;
		while ((n = read(fd, reply + have, sizeof(reply) - 1 - have)) > 0)
			have += (size_t)n;
		close(fd);
		dur = now_us(CLOCK_MONOTONIC) - m0;
		reply[have] = '\0';
		if (strspn(reply, "\r\n") != have) {
			fprintf(stderr, "setmap: HAProxy said: %s", reply);
			bad = 1;
		}
		fprintf(out, "%lld %lld %s\n", t0, dur, value);
		if (gap > 0)
			usleep((useconds_t)gap * 1000);
	}
	fclose(out);
	return bad;
}
