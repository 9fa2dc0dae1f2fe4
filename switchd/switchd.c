/*
 * switchd.c — the daemon: options, config, log, event base, signals, state,
 * reconcile, listen, loop.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cluster.h"
#include "discover.h"
#include "ec2.h"
#include "http.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "roles.h"
#include "switchd.h"

struct switchd sd;

static struct event *ev_hup, *ev_term, *ev_int;
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

/*
 * One switchd a state_dir: two would each believe their state.json and
 * journal.  An flock on state_dir/switchd.lock, held (open, close-on-exec)
 * until exit; the kernel drops it however the process ends.
 */
static int
state_dir_lock(const char *dir)
{
	char *path, pid[32];
	int fd;
	ssize_t n;

	if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
		log_warn("state_dir %s", dir);
		return -1;
	}
	path = xasprintf("%s/switchd.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd == -1) {
		log_warn("%s", path);
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK) {
			n = pread(fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			log_warnx("another switchd%s%s%s uses state_dir %s (%s is locked)",
			    *pid ? " (pid " : "", pid, *pid ? ")" : "", dir, path);
		} else
			log_warn("flock %s", path);
		close(fd);
		free(path);
		return -1;
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, pid, strlen(pid), 0) == -1)
		log_warn("%s", path);
	free(path);
	return fd;
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

/* Swap in a new config only if it is good; the old one stays otherwise. */
int
switchd_reload_config(json_t **errors)
{
	struct config *conf;
	size_t i;

	if ((conf = config_load(sd.conf->path, errors)) == NULL) {
		for (i = 0; i < json_array_size(*errors); i++)
			log_warnx("reload refused: %s",
			    json_string_value(json_array_get(*errors, i)));
		return -1;
	}
	if (strcmp(conf->ctl_socket, sd.conf->ctl_socket) != 0 ||
	    strcmp(conf->state_dir, sd.conf->state_dir) != 0)
		log_warnx("reload: control.socket and state_dir changes take effect "
		    "at the next start");
	if (cluster_conf_changed(conf, sd.conf))
		log_warnx("reload: cluster changes take effect at the next start");
	discover_apply_state(conf);
	lb_unref(sd.lb);
	sd.lb = lb_new(sd.base, conf);
	sd.conf = conf;
	discover_start();
	httpd_configure(sd.base, conf);	/* a failed new bind keeps the old one */
	log_info("configuration %s reloaded", conf->path);
	return 0;
}

/* After SIGTERM: exit once the command in flight is done. */
void
switchd_maybe_exit(void)
{
	if (sd.shutting_down && !cmd_busy())
		event_base_loopexit(sd.base, NULL);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	json_t *errors = NULL;

	(void)what;
	(void)arg;
	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading %s", sd.conf->path);
		if (cmd_busy())
			log_warnx("SIGHUP ignored: a command is in flight; try again");
		else
			switchd_reload_config(&errors);
		json_decref(errors);
		return;
	}
	log_info("%s: exiting%s", sig == SIGTERM ? "SIGTERM" : "SIGINT",
	    cmd_busy() ? " after the command in flight" : "");
	sd.shutting_down = 1;
	switchd_maybe_exit();
}

/* Every journal entry: notified, and counted for /metrics. */
static void
journal_hook(json_t *entry)
{
	notify_event(entry);
	metrics_journal(entry);
}

static void
reconciled(void *arg)
{
	(void)arg;
	control_accept(1);
	/* Tags left wrong by an EC2 failure before a restart: try again. */
	if (json_array_size(json_object_get(json_object_get(state_doc(), "ec2"), "drift")) > 0)
		roles_retag("drift recorded before the restart", NULL, NULL);
	discover_start();
	guard_resume();
	log_info("ready: %s is hot", state_hot() == POOL_B ? POOL_BLUE : POOL_GREEN);
}

/* cluster: the start-up reconcile ran under P/lock; let it go. */
static void
reconciled_locked(void *arg)
{
	cluster_unlock();
	reconciled(arg);
}

/*
 * cluster: the shared state is read first.  The nodes are reconciled only
 * under P/lock: another instance may be switching them right now.
 */
static void
cluster_started(int locked, void *arg)
{
	if (locked)
		switchd_reconcile(reconciled_locked, arg);
	else
		reconciled(arg);
}

int
main(int argc, char *argv[])
{
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

	if ((sd.conf = config_load(path, &errors)) == NULL) {
		print_errors(errors);
		json_decref(errors);
		return 1;
	}
	if (check_only) {
		printf("configuration OK\n");
		config_free(sd.conf);
		return 0;
	}

	log_init(foreground, verbose);
	if (!foreground)
		detach();
	signal(SIGPIPE, SIG_IGN);
	if ((sd.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	ev_hup = evsignal_new(sd.base, SIGHUP, on_signal, NULL);
	ev_term = evsignal_new(sd.base, SIGTERM, on_signal, NULL);
	ev_int = evsignal_new(sd.base, SIGINT, on_signal, NULL);
	evsignal_add(ev_hup, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);

	if (state_dir_lock(sd.conf->state_dir) == -1)
		fatalx("cannot use state_dir %s", sd.conf->state_dir);
	if (state_open(sd.conf->state_dir, sd.conf) == -1)
		fatalx("cannot use state_dir %s", sd.conf->state_dir);
	history_set_hook(journal_hook);
	deploy_recover();
	discover_apply_state(sd.conf);
	if (http_init(sd.base) == -1 || ec2_init(sd.base) == -1)
		fatalx("cannot start the HTTP client (libcurl)");
	sd.lb = lb_new(sd.base, sd.conf);
	if (control_listen(sd.conf) == -1)
		fatalx("cannot listen on %s", sd.conf->ctl_socket);
	if (httpd_configure(sd.base, sd.conf) == -1)
		fatalx("cannot listen on http.listen %s", sd.conf->http_listen);
	detach_done();
	control_accept(0);
	if (sd.conf->cluster_endpoints != NULL)
		cluster_start(sd.base, sd.conf, cluster_started, NULL);
	else
		switchd_reconcile(reconciled, NULL);

	event_base_dispatch(sd.base);

	control_close();
	httpd_stop();
	metrics_shutdown();
	repair_stop();
	guard_shutdown();
	discover_stop();
	roles_shutdown();
	ec2_shutdown();
	cluster_stop();
	http_shutdown();
	lb_unref(sd.lb);
	state_close();
	event_free(ev_hup);
	event_free(ev_term);
	event_free(ev_int);
	event_base_free(sd.base);
	log_info("exited");
	return 0;
}
