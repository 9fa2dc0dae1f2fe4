/*
 * notify.c — tells people what happened: every journal entry (switch, back,
 * cold-deploy, lock, reconcile...) goes to the `notify` webhook as
 * Slack-compatible JSON and/or to the notify command with the same facts in
 * its environment.  Both are asynchronous with a timeout; a failure is
 * logged and never blocks, fails or undoes anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "config.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "proc.h"
#include "util.h"

#define NOTIFY_MAX_INFLIGHT	16	/* beyond this, drop (and log) rather than pile up */

static int inflight;

static const char *
fact(json_t *e, const char *key)
{
	const char *s = json_string_value(json_object_get(e, key));

	return s ? s : "";
}

/* One line for people: "root: switch blue -> green (v2) "go live": ok". */
static char *
notify_text(const struct config *conf, json_t *e)
{
	const char *cmd = fact(e, "command"), *msg = fact(e, "message");
	const char *result = fact(e, "result"), *err = fact(e, "error");
	json_t *before = json_object_get(e, "before"), *after = json_object_get(e, "after");
	char what[512];

	if (strcmp(cmd, "switch") == 0 || strcmp(cmd, "back") == 0 ||
	    strcmp(cmd, "reconcile") == 0)
		snprintf(what, sizeof(what), "%s %s: %s -> %s", cmd, conf->live_host,
		    fact(before, "hot"), fact(strcmp(result, "ok") == 0 ? after : before, "hot"));
	else if (strcmp(cmd, "cold-deploy") == 0)
		snprintf(what, sizeof(what), "cold-deploy of %s to the %s pool",
		    *fact(e, "version") ? fact(e, "version") : "(no version)", fact(e, "pool"));
	else
		snprintf(what, sizeof(what), "%s", cmd);
	utf8_tidy(what);	/* a long version may be cut inside a character */
	return xasprintf("switchd: %s: %s%s%s%s: %s%s%s", fact(e, "user"), what,
	    *msg ? " \"" : "", msg, *msg ? "\"" : "", result, *err ? " — " : "", err);
}

static void
webhook_done(const struct http_result *r, void *arg)
{
	char *url = arg;

	inflight--;
	if (r->error != NULL)
		log_warnx("notify: webhook %s: %s", url, r->error);
	else if (r->status < 200 || r->status > 299)
		log_warnx("notify: webhook %s answered %ld", url, r->status);
	free(url);
}

static void
command_line(const char *line, int is_stderr, void *arg)
{
	(void)arg;
	log_info("notify command %s: %s", is_stderr ? "stderr" : "stdout", line);
}

static void
command_done(int status, int timed_out, void *arg)
{
	(void)arg;
	inflight--;
	if (timed_out)
		log_warnx("notify: command killed at its timeout");
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		log_warnx("notify: command failed (wait status %d)", status);
}

void
notify_event(struct daemon *d, json_t *entry)
{
	const struct config *conf = d->conf;
	static const char *keys[] = { "command", "user", "message", "result", "version",
	    "pool", "error", "id", "time", NULL };
	char *text, *body, *shown, *env[16];
	json_t *doc;
	int i, n = 0;

	if (conf == NULL || (conf->notify_webhook == NULL && conf->notify_command == NULL))
		return;
	if (inflight >= NOTIFY_MAX_INFLIGHT) {
		log_warnx("notify: %d notifications still in flight; this one is dropped",
		    inflight);
		return;
	}
	text = utf8_fix(notify_text(conf, entry));
	if (conf->notify_webhook != NULL) {
		struct http_opts o;
		static const char *const hdrs[] = { "Content-Type: application/json", NULL };

		doc = json_pack("{s:s, s:O}", "text", text, "switchd", entry);
		body = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
		json_decref(doc);
		if (body == NULL) {
			log_warnx("notify: the webhook body could not be encoded; not sent");
			goto command;
		}
		memset(&o, 0, sizeof(o));
		o.method = "POST";
		o.url = conf->notify_webhook;
		o.headers = hdrs;
		o.body = body;
		o.body_len = strlen(body);
		o.timeout_ms = conf->notify_timeout * 1000L;
		/* For the log: redacted, the URL carries the hook's secret. */
		shown = url_redact(conf->notify_webhook);
		if (http_start(&o, webhook_done, shown) != NULL)
			inflight++;
		else {
			log_warnx("notify: cannot start the webhook request to %s", shown);
			free(shown);
		}
		free(body);
	}
command:
	if (conf->notify_command != NULL) {
		env[n++] = xasprintf("SWITCHD_TEXT=%s", text);
		env[n++] = xasprintf("SWITCHD_EVENT=%s", fact(entry, "command"));
		for (i = 0; keys[i] != NULL; i++) {
			char name[32], *p;

			snprintf(name, sizeof(name), "SWITCHD_%s", keys[i]);
			for (p = name; *p; p++)
				if (*p >= 'a' && *p <= 'z')
					*p = (char)(*p - 'a' + 'A');
			env[n++] = xasprintf("%s=%s", name, fact(entry, keys[i]));
		}
		env[n++] = xasprintf("SWITCHD_FROM=%s", fact(json_object_get(entry, "before"), "hot"));
		env[n++] = xasprintf("SWITCHD_TO=%s", fact(json_object_get(entry, "after"), "hot"));
		env[n] = NULL;
		if (proc_start(d->base, conf->notify_command, env, conf->notify_timeout,
		    command_line, command_done, NULL) != NULL)
			inflight++;
		else
			log_warn("notify: cannot start %s", conf->notify_command);
		for (i = 0; i < n; i++)
			free(env[i]);
	}
	free(text);
}
