/*
 * switchctl.c — the command-line client: parse the command by the shared
 * table (cmd-table.c), send one request, print progress and the result for
 * people, or the final reply as one JSON document with --json.
 *
 * Exit status: 0 done; 1 refused or failed; 2 usage error; 3 switchd not
 * reachable.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd-table.h"
#include "protocol.h"

#define EXIT_FAILED	1
#define EXIT_USAGE	2
#define EXIT_UNREACH	3

static int	 opt_json, opt_quiet, shown_progress;
static const char *cmd_running;

static void __attribute__((noreturn))
usage(FILE *out, int status)
{
	const struct cmd_info *ci;

	fprintf(out, "usage: switchctl [-s SOCKET] [-j|--json] [-q] COMMAND [ARGS]\n\ncommands:\n");
	for (ci = cmd_infos; ci->name != NULL; ci++)
		fprintf(out, "  %-8s %-44s %s\n", ci->name, ci->usage, ci->summary);
	fprintf(out, "  %-8s %-44s %s\n", "help", "[COMMAND]", "describe a command");
	fprintf(out, "\nThe socket is %s unless -s or $SWITCHD_SOCKET says otherwise.\n",
	    SWITCHD_DEFAULT_SOCKET);
	exit(status);
}

static void
command_help(const struct cmd_info *ci)
{
	int i;

	printf("usage: switchctl %s %s\n  %s\n", ci->name, ci->usage, ci->summary);
	for (i = 0; i < CMD_MAXOPTS && ci->opts[i].key != NULL; i++) {
		const struct cmd_opt *o = &ci->opts[i];
		char left[64];

		if (o->sopt && o->lopt)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->sopt, o->lopt,
			    o->metavar ? " " : "", o->metavar ? o->metavar : "");
		else if (o->sopt)
			snprintf(left, sizeof(left), "-%c%s%s", o->sopt,
			    o->metavar ? " " : "", o->metavar ? o->metavar : "");
		else
			snprintf(left, sizeof(left), "--%s%s%s", o->lopt,
			    o->metavar ? " " : "", o->metavar ? o->metavar : "");
		printf("  %-24s %s\n", left, o->help);
	}
	if (ci->flags & CMD_ADMIN)
		printf("  (needs root, switchd's user or control.admin_group)\n");
}

static void __attribute__((noreturn, format(printf, 1, 2)))
die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "switchctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(EXIT_USAGE);
}

/* Command options into the request's "args", by the shared table. */
/*
 * A value for the request: JSON strings are UTF-8, and jansson refuses
 * anything else.  Refuse it here with its name: a dropped --expect would
 * let a switch go on without its guard.
 */
static json_t *
arg_string(const struct cmd_info *ci, const char *what, const char *val)
{
	json_t *j = json_string(val);

	if (j == NULL)
		die_usage("%s: %s is not valid UTF-8", ci->name, what);
	return j;
}

static json_t *
parse_args(const struct cmd_info *ci, int argc, char **argv)
{
	json_t *args = json_object();
	const struct cmd_opt *o;
	int i, j;
	char *end;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		size_t namelen;

		o = NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			command_help(ci);
			exit(0);
		}
		if (strncmp(a, "--", 2) == 0 && a[2] != '\0') {
			eq = strchr(a + 2, '=');
			namelen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			for (j = 0; j < CMD_MAXOPTS && ci->opts[j].key; j++)
				if (ci->opts[j].lopt && strlen(ci->opts[j].lopt) == namelen &&
				    strncmp(ci->opts[j].lopt, a + 2, namelen) == 0)
					o = &ci->opts[j];
			if (o == NULL)
				die_usage("%s: unknown option %s\nusage: switchctl %s %s",
				    ci->name, a, ci->name, ci->usage);
			if (eq != NULL)
				val = eq + 1;
		} else if (a[0] == '-' && a[1] != '\0' && a[2] == '\0') {
			for (j = 0; j < CMD_MAXOPTS && ci->opts[j].key; j++)
				if (ci->opts[j].sopt == a[1])
					o = &ci->opts[j];
			if (o == NULL)
				die_usage("%s: unknown option %s\nusage: switchctl %s %s",
				    ci->name, a, ci->name, ci->usage);
		} else if (ci->positional != NULL &&
		    json_object_get(args, ci->positional) == NULL) {
			for (j = 0; ci->choices && ci->choices[j]; j++)
				if (strcmp(ci->choices[j], a) == 0)
					break;
			if (ci->choices && ci->choices[j] == NULL)
				die_usage("%s: \"%s\" is not one of %s", ci->name, a, ci->usage);
			json_object_set_new(args, ci->positional, arg_string(ci, "the argument", a));
			continue;
		} else
			die_usage("%s: unexpected argument \"%s\"\nusage: switchctl %s %s",
			    ci->name, a, ci->name, ci->usage);

		if (o->type == OPT_BOOL) {
			if (val != NULL)
				die_usage("%s: --%s takes no value", ci->name, o->lopt);
			json_object_set_new(args, o->key, json_true());
			continue;
		}
		if (val == NULL) {
			if (i + 1 >= argc)
				die_usage("%s: %s needs a value (%s)", ci->name, a, o->metavar);
			val = argv[++i];
		}
		if (o->type == OPT_INT) {
			long long v;

			errno = 0;
			v = strtoll(val, &end, 10);
			if (errno || *end != '\0' || end == val)
				die_usage("%s: %s wants a number, not \"%s\"", ci->name, a, val);
			json_object_set_new(args, o->key, json_integer(v));
		} else {
			char what[64];

			snprintf(what, sizeof(what), "the value of --%s", o->lopt);
			json_object_set_new(args, o->key, arg_string(ci, what, val));
		}
	}
	if (ci->positional != NULL && json_object_get(args, ci->positional) == NULL)
		die_usage("%s: missing argument\nusage: switchctl %s %s", ci->name,
		    ci->name, ci->usage);
	return args;
}

static int
connect_daemon(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "switchctl: socket path too long: %s\n", path);
		exit(EXIT_USAGE);
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "switchctl: cannot reach switchd at %s: %s "
		    "(is switchd running? see -s)\n", path, strerror(errno));
		exit(EXIT_UNREACH);
	}
	return fd;
}

/* ------------------------------------------------------------ human output */

static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void
print_lock(json_t *lock)
{
	if (!json_is_object(lock)) {
		printf("lock:        none\n");
		return;
	}
	printf("lock:        held by %s since %s", jstr(lock, "user"), jstr(lock, "since"));
	if (*jstr(lock, "message"))
		printf(": \"%s\"", jstr(lock, "message"));
	if (json_integer_value(json_object_get(lock, "expires")) > 0)
		printf(" (for %lld s more)",
		    (long long)(json_integer_value(json_object_get(lock, "expires")) - time(NULL)));
	printf("\n");
}

static void
print_status(json_t *r)
{
	json_t *pools = json_object_get(r, "pools"), *nodes = json_object_get(r, "nodes");
	json_t *last = json_object_get(r, "last_switch"), *busy = json_object_get(r, "busy");
	json_t *drift = json_object_get(json_object_get(r, "ec2"), "drift");
	json_t *refused, *errors;
	const char *roles[2] = { jstr(r, "hot"), jstr(r, "cold") };
	size_t i, j;

	for (i = 0; i < 2; i++) {
		json_t *p = json_object_get(pools, roles[i]);
		const char *v = json_string_value(json_object_get(p, "version"));

		printf("%-4s  %-5s  %-8s  version %-12s %s", i == 0 ? "hot" : "cold", roles[i],
		    jstr(p, "backend"), v ? v : "-", jstr(p, "state"));
		if (*jstr(p, "since"))
			printf(" since %s", jstr(p, "since"));
		printf("\n");
	}
	printf("\n%-6s %-16s %-24s %s\n", "POOL", "SERVER", "ADDRESS", "STATUS");
	for (i = 0; i < 2; i++) {
		const char *name = i == 0 ? POOL_BLUE : POOL_GREEN;
		json_t *servers = json_object_get(json_object_get(pools, name), "servers");

		for (j = 0; j < json_array_size(servers); j++) {
			json_t *s = json_array_get(servers, j);
			printf("%-6s %-16s %-24s %s\n", name, jstr(s, "name"), jstr(s, "address"),
			    jstr(s, "status"));
		}
	}
	printf("\n%-32s %-6s %s\n", "NODE", "SERVES", "MAP");
	for (i = 0; i < json_array_size(nodes); i++) {
		json_t *n = json_array_get(nodes, i), *m = json_object_get(n, "map");

		if (!json_is_true(json_object_get(n, "ok")))
			printf("%-32s %-6s %s\n", jstr(n, "socket"), "DOWN", jstr(n, "error"));
		else
			printf("%-32s %-6s %s -> %s, %s -> %s\n", jstr(n, "socket"),
			    json_is_string(json_object_get(n, "serves")) ? jstr(n, "serves") : "?",
			    jstr(json_object_get(r, "hosts"), "live"), *jstr(m, "live") ?
			    jstr(m, "live") : "(none)", jstr(json_object_get(r, "hosts"), "cold"),
			    *jstr(m, "cold") ? jstr(m, "cold") : "(none)");
	}
	if (!json_is_true(json_object_get(r, "agree")))
		printf("WARNING: not every node serves %s hot (switchctl sync, or restart "
		    "switchd, makes them agree)\n", roles[0]);
	printf("\n");
	print_lock(json_object_get(r, "lock"));
	if (json_is_object(last)) {
		printf("last switch: %s %s %s %s -> %s", jstr(last, "time"), jstr(last, "user"),
		    jstr(last, "command"), jstr(last, "from"), jstr(last, "to"));
		if (*jstr(last, "message"))
			printf(" \"%s\"", jstr(last, "message"));
		printf("\n");
	} else
		printf("last switch: none\n");
	if (json_is_object(json_object_get(r, "canary"))) {
		json_t *c = json_object_get(r, "canary");

		printf("canary:      %lld %% of %s on %s since %s\n",
		    (long long)json_integer_value(json_object_get(c, "percent")),
		    jstr(json_object_get(r, "hosts"), "live"), jstr(c, "pool"), jstr(c, "since"));
	} else
		printf("canary:      none\n");
	if (json_is_object(json_object_get(r, "guard"))) {
		json_t *g = json_object_get(r, "guard");

		printf("guard:       watching %s (%s) %s%s: %lld responses, %lld 5xx\n",
		    jstr(g, "pool"), jstr(g, "kind"), *jstr(g, "until") ? "until " :
		    "while the canary runs", jstr(g, "until"),
		    (long long)json_integer_value(json_object_get(g, "responses")),
		    (long long)json_integer_value(json_object_get(g, "errors")));
	}
	if (json_is_object(busy))
		printf("busy:        %s is running %s since %s\n", jstr(busy, "user"),
		    jstr(busy, "command"), jstr(busy, "since"));
	if (json_is_object(json_object_get(r, "cluster"))) {
		json_t *cl = json_object_get(r, "cluster");

		/* The wording is the contract of switchctl(1): scripts grep it. */
		if (json_is_true(json_object_get(cl, "connected")))
			printf("cluster: %s at %s: connected\n", jstr(cl, "name"),
			    jstr(cl, "prefix"));
		else
			printf("cluster: %s at %s: etcd unreachable, state as of %lld s ago "
			    "(stale)\n", jstr(cl, "name"), jstr(cl, "prefix"),
			    (long long)json_integer_value(json_object_get(cl, "stale_seconds")));
	}
	refused = json_object_get(json_object_get(r, "ec2"), "discover_refused");
	for (i = 0; i < json_array_size(refused); i++)
		printf("discovery:   REFUSED for %s: %s\n", jstr(json_array_get(refused, i), "pool"),
		    jstr(json_array_get(refused, i), "reason"));
	errors = json_object_get(r, "state_errors");
	for (i = 0; i < json_array_size(errors); i++)
		printf("state file:  %s\n", json_string_value(json_array_get(errors, i)));
	if (json_array_size(drift) > 0) {
		printf("ec2 drift:   %zu instance%s not tagged as their role:", json_array_size(drift),
		    json_array_size(drift) == 1 ? "" : "s");
		for (i = 0; i < json_array_size(drift); i++) {
			json_t *d = json_array_get(drift, i);
			printf(" %s", json_is_string(d) ? json_string_value(d) : jstr(d, "instance"));
		}
		printf("\n");
	}
}

static void
print_history(json_t *r)
{
	json_t *entries = json_object_get(r, "entries");
	size_t i;

	if (json_array_size(entries) == 0) {
		printf("no history yet\n");
		return;
	}
	printf("%-20s  %-10s  %-14s  %-16s  %-7s  %s\n", "TIME", "USER", "COMMAND",
	    "WHAT", "RESULT", "MESSAGE");
	for (i = 0; i < json_array_size(entries); i++) {
		json_t *e = json_array_get(entries, i);
		char hot[64];

		if (*jstr(e, "canary"))
			snprintf(hot, sizeof(hot), "%s %lld %%", jstr(e, "canary"),
			    (long long)json_integer_value(json_object_get(e, "percent")));
		else if (*jstr(e, "pool"))
			snprintf(hot, sizeof(hot), "%s at %s", jstr(e, "pool"),
			    *jstr(e, "version") ? jstr(e, "version") : "-");
		else if (strcmp(jstr(json_object_get(e, "before"), "hot"),
		    jstr(json_object_get(e, "after"), "hot")) != 0 ||
		    strcmp(jstr(e, "command"), "switch") == 0 || strcmp(jstr(e, "command"), "back") == 0)
			snprintf(hot, sizeof(hot), "%s -> %s", jstr(json_object_get(e, "before"), "hot"),
			    jstr(json_object_get(e, "after"), "hot"));
		else
			snprintf(hot, sizeof(hot), "-");
		printf("%-20s  %-10s  %-14s  %-16s  %-7s  %s", jstr(e, "time"), jstr(e, "user"),
		    jstr(e, "command"), hot, jstr(e, "result"), jstr(e, "message"));
		if (*jstr(e, "error"))
			printf("%s(%s)", *jstr(e, "message") ? " " : "", jstr(e, "error"));
		printf("\n");
	}
}

static void
print_check(FILE *out, json_t *c)
{
	int ok = json_is_true(json_object_get(c, "passed"));

	fprintf(out, "  %s %-16s %-14s %3lld %5lld ms  %s%s%s\n", ok ? "PASS" : "FAIL",
	    jstr(c, "check"), jstr(c, "target"),
	    (long long)json_integer_value(json_object_get(c, "status")),
	    (long long)json_integer_value(json_object_get(c, "ms")), jstr(c, "url"),
	    ok ? "" : ": ", ok ? "" : jstr(c, "why"));
}

/* All checks when they passed (people like to see them), else the failures. */
static void
print_checks(FILE *out, json_t *checks)
{
	size_t i, failed = 0;

	for (i = 0; i < json_array_size(checks); i++)
		failed += !json_is_true(json_object_get(json_array_get(checks, i), "passed"));
	for (i = 0; i < json_array_size(checks); i++)
		if (failed == 0 || !json_is_true(json_object_get(json_array_get(checks, i), "passed")))
			print_check(out, json_array_get(checks, i));
}

static void
print_event(json_t *ev)
{
	const char *kind = jstr(ev, P_EVENT);

	if (strcmp(kind, EV_CHECK) == 0)
		print_check(stdout, ev);
	else if (strcmp(kind, EV_OUTPUT) == 0)
		printf("  %s| %s\n", jstr(ev, "source"), jstr(ev, "text"));
	else
		printf("... %s\n", jstr(ev, "text"));
	fflush(stdout);
}

static void
print_sync(json_t *r)
{
	json_t *ec2 = json_object_get(r, "ec2"), *disc = json_object_get(r, "discover");
	size_t n = json_array_size(json_object_get(ec2, "drift"));

	printf("sync: %s is hot, %s cold\n", jstr(r, "hot"), jstr(r, "cold"));
	if (disc != NULL)
		printf("  ec2 pools:  %zu blue, %zu green instance(s); %zu added, "
		    "%zu draining, %zu removed\n",
		    json_array_size(json_object_get(disc, "blue")),
		    json_array_size(json_object_get(disc, "green")),
		    json_array_size(json_object_get(disc, "added")),
		    json_array_size(json_object_get(disc, "draining")),
		    json_array_size(json_object_get(disc, "removed")));
	printf("  nodes:      %s\n", jstr(r, "nodes"));
	if (n > 0)
		printf("  role tags:  %s (%zu instance%s had the wrong tag)\n",
		    jstr(ec2, "result"), n, n == 1 ? "" : "s");
	else
		printf("  role tags:  %s\n", jstr(ec2, "result"));
}

static void
print_result(const char *cmd, json_t *r)
{
	size_t i;

	if (strcmp(cmd, "cold-deploy") == 0 || strcmp(cmd, "smoke") == 0) {
		if (!opt_quiet && !shown_progress)
			print_checks(stdout, json_object_get(r, "checks"));
		if (strcmp(cmd, "smoke") == 0)
			printf("smoke: %s pool: %s\n", jstr(r, "pool"), jstr(r, "summary"));
		else
			printf("cold-deploy: %s pool at %s is %s (%s)\n", jstr(r, "pool"),
			    json_is_string(json_object_get(r, "version")) ? jstr(r, "version") :
			    "(no version)", jstr(r, "state"), jstr(r, "summary"));
		return;
	}

	if (strcmp(cmd, "status") == 0)
		print_status(r);
	else if (strcmp(cmd, "history") == 0)
		print_history(r);
	else if (strcmp(cmd, "hosts") == 0) {
		for (i = 0; i < json_array_size(json_object_get(r, "hosts")); i++)
			printf("%s\n", json_string_value(json_array_get(json_object_get(r, "hosts"), i)));
	} else if (strcmp(cmd, "canary") == 0) {
		if (!opt_quiet && json_integer_value(json_object_get(r, "percent")) > 0)
			printf("canary: %lld %% of the live host on %s; %s serves the rest\n",
			    (long long)json_integer_value(json_object_get(r, "percent")),
			    jstr(r, "pool"), jstr(r, "hot"));
		else if (!opt_quiet)
			printf("canary: none; %s serves all of the live host\n", jstr(r, "hot"));
	} else if (strcmp(cmd, "rollout") == 0) {
		if (!opt_quiet)
			printf("rollout: %s; %s is hot now\n", jstr(r, "result"), jstr(r, "hot"));
	} else if (strcmp(cmd, "back") == 0 && json_is_string(json_object_get(r, "rollout"))) {
		if (!opt_quiet)
			printf("rollout aborted; %s serves all of the live host\n", jstr(r, "hot"));
	} else if (strcmp(cmd, "back") == 0 && json_is_integer(json_object_get(r, "canary"))) {
		if (!opt_quiet)
			printf("canary ended; %s serves all of the live host\n", jstr(r, "hot"));
	} else if (strcmp(cmd, "switch") == 0 || strcmp(cmd, "back") == 0) {
		if (!opt_quiet)
			printf("%s is hot now (was %s); %s answers on the cold host name\n",
			    jstr(r, "hot"), jstr(r, "from"), jstr(r, "cold"));
	} else if (strcmp(cmd, "lock") == 0) {
		if (!opt_quiet)
			print_lock(json_object_get(r, "lock"));
	} else if (strcmp(cmd, "unlock") == 0) {
		if (!opt_quiet)
			printf("unlocked (was held by %s)\n",
			    jstr(json_object_get(r, "released"), "user"));
	} else if (strcmp(cmd, "reload") == 0) {
		if (!opt_quiet)
			printf("configuration %s reloaded\n", jstr(r, "config"));
	} else if (strcmp(cmd, "sync") == 0 && !opt_quiet)
		print_sync(r);
}

/* --------------------------------------------------------------- the call */

static void
on_interrupt(int sig)
{
	static const char msg[] = "\nswitchctl: interrupted; switchd finishes what it "
	    "started on its own: see \"switchctl status\"\n";

	(void)sig;
	if (cmd_running != NULL)
		(void)write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(130);
}

static int
run(const char *path, const struct cmd_info *ci, json_t *args)
{
	json_t *req, *r;
	char *text, *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int fd, status, progress = isatty(STDOUT_FILENO) && !opt_json && !opt_quiet;
	const char *code;

	req = json_pack("{s:i, s:s, s:o}", P_V, SWITCHD_PROTO_VERSION, P_CMD, ci->name,
	    P_ARGS, args);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (strlen(text) + 1 > SWITCHD_MAX_LINE)
		die_usage("request too long (over %d bytes)", SWITCHD_MAX_LINE);
	fd = connect_daemon(path);
	cmd_running = ci->name;
	if (write(fd, text, strlen(text)) == -1 || write(fd, "\n", 1) == -1) {
		fprintf(stderr, "switchctl: write to %s: %s\n", path, strerror(errno));
		exit(EXIT_UNREACH);
	}
	free(text);
	if ((f = fdopen(fd, "r")) == NULL) {
		perror("switchctl: fdopen");
		exit(EXIT_FAILED);
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		r = json_loadb(line, (size_t)len, 0, NULL);
		if (!json_is_object(r)) {
			json_decref(r);
			continue;
		}
		if (json_object_get(r, P_EVENT) != NULL) {
			if (progress) {
				print_event(r);
				shown_progress = 1;
			}
			json_decref(r);
			continue;
		}
		free(line);
		fclose(f);
		if (opt_json) {
			json_dumpf(r, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
			printf("\n");
		}
		if (json_is_true(json_object_get(r, P_OK))) {
			if (!opt_json)
				print_result(ci->name, r);
			json_decref(r);
			return 0;
		}
		code = jstr(r, P_CODE);
		status = strcmp(code, E_USAGE) == 0 ? EXIT_USAGE : EXIT_FAILED;
		if (!opt_json && !shown_progress && json_array_size(json_object_get(r, "checks")) > 0)
			print_checks(stderr, json_object_get(r, "checks"));
		fprintf(stderr, "switchctl: %s: %s\n", ci->name, jstr(r, P_ERROR));
		if (strcmp(code, E_CONFIG) == 0 && !opt_json) {
			size_t i;
			json_t *errs = json_object_get(r, "errors");
			for (i = 1; i < json_array_size(errs); i++)
				fprintf(stderr, "  %s\n", json_string_value(json_array_get(errs, i)));
		}
		json_decref(r);
		return status;
	}
	free(line);
	fclose(f);
	fprintf(stderr, "switchctl: %s: switchd closed the connection without an answer "
	    "(did it exit? see its log)\n", ci->name);
	return EXIT_UNREACH;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' }, { "quiet", no_argument, NULL, 'q' },
		{ "socket", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = getenv("SWITCHD_SOCKET");
	const struct cmd_info *ci;
	const char *hint;
	int ch;

	if (path == NULL || *path == '\0')
		path = SWITCHD_DEFAULT_SOCKET;
	/* "+": stop at the command; its options are its own. */
	while ((ch = getopt_long(argc, argv, "+hjqs:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j': opt_json = 1; break;
		case 'q': opt_quiet = 1; break;
		case 's': path = optarg; break;
		case 'h': usage(stdout, 0);
		default: usage(stderr, EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		usage(stderr, EXIT_USAGE);
	if (strcmp(argv[0], "help") == 0) {
		if (argc < 2)
			usage(stdout, 0);
		if ((ci = cmd_info_find(argv[1])) == NULL)
			die_usage("help: unknown command \"%s\"", argv[1]);
		command_help(ci);
		return 0;
	}
	if ((ci = cmd_info_find(argv[0])) == NULL) {
		if ((hint = cmd_info_suggest(argv[0])) != NULL)
			die_usage("unknown command \"%s\"; did you mean \"%s\"?", argv[0], hint);
		die_usage("unknown command \"%s\" (switchctl --help lists them)", argv[0]);
	}
	signal(SIGINT, on_interrupt);
	signal(SIGPIPE, SIG_IGN);
	return run(path, ci, parse_args(ci, argc - 1, argv + 1));
}
