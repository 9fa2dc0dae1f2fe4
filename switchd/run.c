/*
 * run.c — what the drivers that reload need from the system, below any
 * driver: a whole file read and put back, a string quoted for sh, and a
 * command (haproxy -c, nginx -t, a reload) run from the event loop with
 * its output kept for the error message.
 */
#include <sys/wait.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "run.h"
#include "util.h"

#define RUN_FILE_MAX	(4 * 1024 * 1024)
#define RUN_OUTPUT_MAX	4096

char *
file_read(const char *path)
{
	FILE *f;
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, n;
	int err = 0;

	if ((f = fopen(path, "re")) == NULL)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if (cap > RUN_FILE_MAX || (nbuf = realloc(buf, cap + 1)) == NULL) {
				err = EFBIG;
				break;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (err == 0 && ferror(f))
		err = EIO;
	fclose(f);
	if (err != 0) {
		free(buf);
		errno = err;
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

int
file_restore(const char *path, const char *prev)
{
	if (prev == NULL)
		return unlink(path) == -1 && errno != ENOENT ? -1 : 0;
	return file_write_atomic(path, prev, strlen(prev), 0644);
}

char *
shell_quote(const char *s)
{
	size_t n = 2, i;
	char *out, *p;

	for (i = 0; s[i] != '\0'; i++)
		n += s[i] == '\'' ? 4 : 1;
	p = out = xcalloc(1, n + 1);
	*p++ = '\'';
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else
			*p++ = s[i];
	}
	*p++ = '\'';
	return out;
}

struct run_output {
	size_t		 len;
	char		 text[RUN_OUTPUT_MAX];
};

struct run {
	run_cb	 cb;
	void		*arg;
	int		 timeout_ms;
	char		*prefer;
	struct run_output all, preferred;
};

static void
run_output_add(struct run_output *o, const char *line)
{
	int n;

	if (o->len >= sizeof(o->text) - 1)
		return;
	n = snprintf(o->text + o->len, sizeof(o->text) - o->len, "%s%s",
	    o->len ? "; " : "", line);
	if (n > 0)
		o->len += (size_t)n;
	if (o->len >= sizeof(o->text))
		o->len = sizeof(o->text) - 1;
}

static void
run_line(const char *line, int is_stderr, void *arg)
{
	struct run *r = arg;

	char buf[PROC_LINE_MAX + 1], *p = buf;

	(void)is_stderr;
	log_debug("output: %s", line);
	/* Runs of blanks (HAProxy aligns its messages) become one space. */
	for (; *line != '\0'; line++)
		if ((*line != ' ' && *line != '\t') ||
		    (p > buf && p[-1] != ' ' && line[1] != '\0'))
			*p++ = *line == '\t' ? ' ' : *line;
	*p = '\0';
	if (buf[0] == '\0')
		return;
	run_output_add(&r->all, buf);
	if (r->prefer != NULL && strstr(buf, r->prefer) != NULL)
		run_output_add(&r->preferred, buf);
}

static void
run_exit(int status, int timed_out, void *arg)
{
	struct run *r = arg;
	struct run_output *o = r->preferred.len > 0 ? &r->preferred : &r->all;
	int ok = !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	char how[64] = "";

	if (timed_out)
		snprintf(how, sizeof(how), "timed out after %d ms", r->timeout_ms);
	else if (!ok && o->len == 0 && WIFEXITED(status))
		snprintf(how, sizeof(how), "exited %d", WEXITSTATUS(status));
	else if (!ok && o->len == 0 && WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
	if (how[0] != '\0')
		run_output_add(o, how);
	r->cb(ok, o->text, r->arg);
	free(r->prefer);
	free(r);
}

int
run_shell(struct event_base *base, const char *command, int timeout_ms,
    const char *prefer, run_cb cb, void *arg)
{
	struct run *r = xcalloc(1, sizeof(*r));

	r->cb = cb;
	r->arg = arg;
	r->timeout_ms = timeout_ms;
	r->prefer = prefer ? xstrdup(prefer) : NULL;
	log_debug("running: %s", command);
	if (proc_start(base, command, NULL, (timeout_ms + 999) / 1000, run_line,
	    run_exit, r) == NULL) {
		free(r->prefer);
		free(r);
		return -1;
	}
	return 0;
}
