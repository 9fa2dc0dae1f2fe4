/*
 * switchd.c — main(): options, the config check, going to the background;
 * the daemon itself is daemon.c.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "lb.h"
#include "log.h"
#include "protocol.h"

static int ready_fd = -1;	/* to the waiting parent, until detach_done() */

/*
 * Go to the background, but let the parent wait until the daemon listens
 * on its socket: its exit status then says whether switchd started, and a
 * reason for not starting is on its stderr, not only in syslog.  The
 * working directory is kept, so relative paths mean the same as under -d.
 */
static void
detach(void)
{
	int p[2];
	pid_t pid;
	char c;
	ssize_t n;

	if (pipe(p) == -1)
		fatalx("pipe: %s", strerror(errno));
	if ((pid = fork()) == -1)
		fatalx("fork: %s", strerror(errno));
	if (pid > 0) {
		close(p[1]);
		while ((n = read(p[0], &c, 1)) == -1 && errno == EINTR)
			;
		/* Ready: the daemon carries on.  EOF: it said why on stderr. */
		_exit(n == 1 ? 0 : 1);
	}
	close(p[0]);
	ready_fd = p[1];
	if (setsid() == -1)
		fatalx("setsid: %s", strerror(errno));
}

static void
detach_done(void)
{
	int fd;

	if (ready_fd == -1)
		return;
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	log_detached();
	if (write(ready_fd, "R", 1) != 1)
		log_warnx("could not tell the starting process that switchd is ready");
	close(ready_fd);
	ready_fd = -1;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: switchd [-dnv] [-f config]\n");
	exit(2);
}

static void
print_errors(json_t *errors)
{
	size_t i;

	for (i = 0; i < json_array_size(errors); i++)
		fprintf(stderr, "%s\n", json_string_value(json_array_get(errors, i)));
}

int
main(int argc, char *argv[])
{
	struct daemon d = { 0 };
	struct config *conf;
	const char *path = SWITCHD_DEFAULT_CONFIG;
	int ch, foreground = 0, check_only = 0, verbose = 0;
	json_t *errors = NULL;

	while ((ch = getopt(argc, argv, "df:nv")) != -1) {
		switch (ch) {
		case 'd': foreground = 1; break;
		case 'f': path = optarg; break;
		case 'n': check_only = 1; break;
		case 'v': verbose++; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	if ((conf = config_load(path, lb_drivers, &errors)) == NULL) {
		print_errors(errors);
		json_decref(errors);
		return 1;
	}
	if (check_only) {
		printf("configuration OK\n");
		config_free(conf);
		return 0;
	}

	log_init(foreground, verbose);
	if (!foreground)
		detach();
	daemon_start(&d, conf);
	detach_done();
	daemon_run(&d);
	daemon_stop(&d);
	log_info("exited");
	return 0;
}
