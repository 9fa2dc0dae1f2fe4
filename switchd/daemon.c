/*
 * daemon.c — the daemon's life: lock and open the state, listen, reconcile
 * the nodes, run the event loop, and tear it all down; config reloads
 * and signals.  switchd.c keeps only main(); the busy slot is busy.c.
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
#include "cmd.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "discover.h"
#include "ec2.h"
#include "guard.h"
#include "http.h"
#include "httpd.h"
#include "lb.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "reconcile.h"
#include "roles.h"
#include "state.h"
#include "util.h"

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

/* ---------------------------------------------------------------- config */

/* The driver for conf; cluster: a node's commit only while the lease lives. */
static struct lb *
daemon_lb_new(struct daemon *d, struct config *conf)
{
	struct lb *lb = lb_new(d->base, conf);

	lb->may_commit = cluster_may_commit;
	return lb;
}

/* Swap in a new config only if it is good; the old one stays otherwise. */
static int
daemon_reload_config(struct daemon *d, json_t **errors)
{
	struct config *conf;
	size_t i;

	if ((conf = config_load(d->conf->path, lb_drivers, errors)) == NULL) {
		for (i = 0; i < json_array_size(*errors); i++)
			log_warnx("reload refused: %s",
			    json_string_value(json_array_get(*errors, i)));
		return -1;
	}
	if (strcmp(conf->ctl_socket, d->conf->ctl_socket) != 0 ||
	    strcmp(conf->state_dir, d->conf->state_dir) != 0)
		log_warnx("reload: control.socket and state_dir changes take effect "
		    "at the next start");
	if (cluster_conf_changed(conf, d->conf))
		log_warnx("reload: cluster changes take effect at the next start");
	discover_apply_state(d, conf);
	lb_unref(d->lb);
	d->lb = daemon_lb_new(d, conf);
	d->conf = conf;
	discover_start(d);
	httpd_configure(d, conf);	/* a failed new bind keeps the old one */
	log_info("configuration %s reloaded", conf->path);
	return 0;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	json_t *errors = NULL;

	(void)what;
	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading %s", d->conf->path);
		if (busy_held(d))
			log_warnx("SIGHUP ignored: a command is in flight; try again");
		else
			daemon_reload_config(d, &errors);
		json_decref(errors);
		return;
	}
	log_info("%s: exiting%s", sig == SIGTERM ? "SIGTERM" : "SIGINT",
	    busy_held(d) ? " after the command in flight" : "");
	d->shutting_down = 1;
	busy_maybe_exit(d);
}

/* Every journal entry: notified, and counted for /metrics. */
static void
journal_hook(json_t *entry, void *arg)
{
	struct daemon *d = arg;

	notify_event(d, entry);
	metrics_journal(entry);
}

/* ------------------------------------------------------------ life cycle */

void
daemon_wire(struct daemon *d)
{
	if (d->clients == NULL)
		d->clients = &control_client_ops;
	if (d->reload == NULL)
		d->reload = daemon_reload_config;
}

void
daemon_start(struct daemon *d, struct config *conf)
{
	d->conf = conf;
	d->lock_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	if ((d->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	daemon_wire(d);
	d->ev_hup = evsignal_new(d->base, SIGHUP, on_signal, d);
	d->ev_term = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->ev_int = evsignal_new(d->base, SIGINT, on_signal, d);
	evsignal_add(d->ev_hup, NULL);
	evsignal_add(d->ev_term, NULL);
	evsignal_add(d->ev_int, NULL);

	if ((d->lock_fd = state_dir_lock(conf->state_dir)) == -1)
		fatalx("cannot use state_dir %s", conf->state_dir);
	if ((d->state = state_open(conf->state_dir)) == NULL)
		fatalx("cannot use state_dir %s", conf->state_dir);
	history_set_hook(d->state, journal_hook, d);
	deploy_recover(d);
	discover_apply_state(d, conf);
	if (http_init(d->base) == -1 || ec2_init(d->base) == -1)
		fatalx("cannot start the HTTP client (libcurl)");
	d->lb = daemon_lb_new(d, conf);
	if (control_listen(d) == -1)
		fatalx("cannot listen on %s", conf->ctl_socket);
	if (httpd_configure(d, conf) == -1)
		fatalx("cannot listen on http.listen %s", conf->http_listen);
}

static void
reconciled(void *arg)
{
	struct daemon *d = arg;

	control_accept(1);
	/* Tags left wrong by an EC2 failure before a restart: try again. */
	if (json_array_size(json_object_get(json_object_get(state_doc(d->state), "ec2"),
	    "drift")) > 0)
		roles_retag(d, "drift recorded before the restart", NULL, NULL);
	discover_start(d);
	guard_resume(d);
	log_info("ready: %s is hot", pool_name(state_hot(d->state)));
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
	struct daemon *d = arg;

	if (locked)
		reconcile_start(d, reconciled_locked, d);
	else
		reconciled(d);
}

void
daemon_run(struct daemon *d)
{
	control_accept(0);
	if (d->conf->cluster_endpoints != NULL)
		cluster_start(d, cluster_started, d);
	else
		reconcile_start(d, reconciled, d);
	event_base_dispatch(d->base);
}

void
daemon_stop(struct daemon *d)
{
	control_close();
	httpd_stop();
	metrics_shutdown();
	repair_stop();
	guard_shutdown();
	discover_stop();
	roles_shutdown();
	ec2_shutdown();
	cluster_stop(d);
	http_shutdown();
	lb_unref(d->lb);
	d->lb = NULL;
	state_close(d->state);
	d->state = NULL;
	event_free(d->ev_hup);
	event_free(d->ev_term);
	event_free(d->ev_int);
	event_base_free(d->base);
	d->base = NULL;
	if (d->lock_fd != -1)
		close(d->lock_fd);
}
