/*
 * cmd.c — request dispatch: look the command up in the table, do the cheap
 * checks (protocol version, arguments, permission, busy, locked) before any
 * work, then run it.  Also the reply helpers every command uses.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "cmd-table.h"
#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "protocol.h"
#include "state.h"
#include "util.h"

struct cmd_entry {
	const char	*name;
	void		(*exec)(struct cmdq_item *);
};

static const struct cmd_entry cmd_table[] = {
	{ "status",	cmd_status_exec },
	{ "hosts",	cmd_hosts_exec },
	{ "cold-deploy", cmd_cold_deploy_exec },
	{ "smoke",	cmd_smoke_exec },
	{ "switch",	cmd_switch_exec },
	{ "back",	cmd_back_exec },
	{ "canary",	cmd_canary_exec },
	{ "rollout",	cmd_rollout_exec },
	{ "history",	cmd_history_exec },
	{ "lock",	cmd_lock_exec },
	{ "unlock",	cmd_unlock_exec },
	{ "sync",	cmd_sync_exec },
	{ "reload",	cmd_reload_exec },
	{ NULL, NULL }
};

json_t *
cmd_busy_json(const struct daemon *d)
{
	char when[32];

	if (d->busy.what == NULL)
		return json_null();
	iso_time(d->busy.since, when, sizeof(when));
	return json_pack("{s:s, s:s, s:I, s:s}", "command", d->busy.what,
	    "user", d->busy.user, "uid", (json_int_t)d->busy.uid, "since", when);
}

static void
reply_error(struct daemon *d, struct client *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
reply_error(struct daemon *d, struct client *c, const char *code, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->clients->send(c, json_pack("{s:b, s:s, s:s}", P_OK, 0, P_CODE, code, P_ERROR,
	    utf8_tidy(msg)));
	d->clients->done(c);
}

/* Check args against the command's options; fills why on failure. */
static int
args_valid(const struct cmd_info *ci, json_t *args, char *why, size_t len)
{
	const char *key;
	json_t *v;
	const struct cmd_opt *o;
	int i;

	json_object_foreach(args, key, v) {
		if (ci->positional != NULL && strcmp(key, ci->positional) == 0) {
			if (!json_is_string(v)) {
				snprintf(why, len, "%s: \"%s\" must be a string", ci->name, key);
				return 0;
			}
			if (ci->choices != NULL) {
				for (i = 0; ci->choices[i] != NULL; i++)
					if (strcmp(ci->choices[i], json_string_value(v)) == 0)
						break;
				if (ci->choices[i] == NULL) {
					snprintf(why, len, "%s: \"%s\" is not one of %s", ci->name,
					    json_string_value(v), ci->usage);
					return 0;
				}
			}
			continue;
		}
		if ((o = cmd_opt_find(ci, key)) == NULL) {
			snprintf(why, len, "%s: unknown argument \"%s\" (usage: %s %s)",
			    ci->name, key, ci->name, ci->usage);
			return 0;
		}
		if ((o->type == OPT_BOOL && !json_is_boolean(v)) ||
		    (o->type == OPT_STR && !json_is_string(v)) ||
		    (o->type == OPT_INT && !json_is_integer(v))) {
			snprintf(why, len, "%s: argument \"%s\" must be %s", ci->name, key,
			    o->type == OPT_BOOL ? "true or false" :
			    o->type == OPT_STR ? "a string" : "an integer");
			return 0;
		}
		if (o->type == OPT_STR && strlen(json_string_value(v)) > 4096) {
			snprintf(why, len, "%s: argument \"%s\" is longer than 4096 bytes",
			    ci->name, key);
			return 0;
		}
	}
	if (ci->positional != NULL && json_object_get(args, ci->positional) == NULL) {
		snprintf(why, len, "%s: missing argument (usage: %s %s)", ci->name,
		    ci->name, ci->usage);
		return 0;
	}
	return 1;
}

static void cmd_cluster_locked(const char *, const char *, void *);
static void item_free(struct cmdq_item *);

/* The refusal of a command while the deploy lock is held. */
static json_t *
locked_reply(json_t *lock)
{
	json_t *r;
	const char *msg = json_string_value(json_object_get(lock, "message"));

	r = json_pack("{s:b, s:s, s:O}", P_OK, 0, P_CODE, E_LOCKED, "lock", lock);
	json_object_set_new(r, P_ERROR, json_sprintf(
	    "locked by %s for %llds%s%s%s; \"switchctl unlock\" by them, or "
	    "\"switchctl unlock --force\", releases it",
	    json_string_value(json_object_get(lock, "user")),
	    (long long)time(NULL) - json_integer_value(json_object_get(lock, "since_epoch")),
	    msg && *msg ? ": \"" : "", msg && *msg ? msg : "", msg && *msg ? "\"" : ""));
	return r;
}

/*
 * The request's command and arguments, checked against the table; NULL
 * after replying what is wrong with it.
 */
static const struct cmd_info *
request_parse(struct daemon *d, struct client *c, json_t *req,
    const struct cmd_entry **cep, json_t **argsp)
{
	const struct cmd_info *ci;
	const struct cmd_entry *ce;
	json_t *v, *args;
	const char *name, *hint;
	char why[512];

	if (!json_is_object(req)) {
		reply_error(d, c, E_USAGE, "bad request: not a JSON object");
		return NULL;
	}
	v = json_object_get(req, P_V);
	if (!json_is_integer(v) || json_integer_value(v) != SWITCHD_PROTO_VERSION) {
		reply_error(d, c, E_USAGE, "bad request: protocol version \"v\" must be %d",
		    SWITCHD_PROTO_VERSION);
		return NULL;
	}
	name = json_string_value(json_object_get(req, P_CMD));
	if (name == NULL) {
		reply_error(d, c, E_USAGE, "bad request: \"cmd\" must be a string");
		return NULL;
	}
	if ((ci = cmd_info_find(name)) == NULL) {
		hint = cmd_info_suggest(name);
		if (hint != NULL)
			reply_error(d, c, E_USAGE, "unknown command \"%.64s\" (did you mean \"%s\"?)",
			    name, hint);
		else
			reply_error(d, c, E_USAGE, "unknown command \"%.64s\"", name);
		return NULL;
	}
	for (ce = cmd_table; ce->name != NULL; ce++)
		if (strcmp(ce->name, ci->name) == 0)
			break;
	if (ce->name == NULL) {
		reply_error(d, c, E_USAGE, "command \"%s\" is not available in this switchd",
		    ci->name);
		return NULL;
	}
	args = json_object_get(req, P_ARGS);
	if (args == NULL)
		args = json_object();
	else if (!json_is_object(args)) {
		reply_error(d, c, E_USAGE, "bad request: \"args\" must be an object");
		return NULL;
	} else
		json_incref(args);
	if (!args_valid(ci, args, why, sizeof(why))) {
		json_decref(args);
		reply_error(d, c, E_USAGE, "%s", why);
		return NULL;
	}
	*cep = ce;
	*argsp = args;
	return ci;
}

/*
 * What refuses a well-formed request before any work: permission, shutting
 * down, busy, the deploy lock.  1 after replying the refusal.
 */
static int
request_refused(struct daemon *d, struct client *c, const struct cmd_info *ci, uid_t uid,
    int admin, const char *user)
{
	json_t *lock;
	char since[32];

	if ((ci->flags & CMD_ADMIN) && !admin) {
		reply_error(d, c, E_PERM, "permission denied: %s (uid %lu) may not run \"%s\"; "
		    "it needs root, switchd's own user%s%s", user, (unsigned long)uid,
		    ci->name, d->conf->admin_group ? " or a member of group " : "",
		    d->conf->admin_group ? d->conf->admin_group : "");
		return 1;
	}
	if ((ci->flags & CMD_EXCLUSIVE) && d->shutting_down) {
		reply_error(d, c, E_SHUTDOWN, "switchd is shutting down");
		return 1;
	}
	/* An admin's "back" aborts a rollout, which holds the slot for minutes. */
	if ((ci->flags & CMD_EXCLUSIVE) && busy_held(d) &&
	    !(strcmp(ci->name, "back") == 0 && rollout_running())) {
		iso_time(d->busy.since, since, sizeof(since));
		/* cluster: the same words as when another instance holds P/lock. */
		if (cluster_on())
			reply_error(d, c, E_BUSY, "busy: %s is running %s for %s since %s; "
			    "try again when it is done", cluster_name(), d->busy.what,
			    d->busy.user, since);
		else
			reply_error(d, c, E_BUSY, "busy: %s (uid %lu) is running \"%s\" since "
			    "%s (%lds ago); try again when it is done", d->busy.user,
			    (unsigned long)d->busy.uid, d->busy.what, since,
			    (long)(time(NULL) - d->busy.since));
		return 1;
	}
	if ((ci->flags & CMD_LOCKABLE) && !cluster_on() &&
	    (lock = state_lock(d->state)) != NULL) {
		d->clients->send(c, locked_reply(lock));
		d->clients->done(c);
		return 1;
	}
	return 0;
}

void
cmd_dispatch(struct daemon *d, struct client *c, uid_t uid, int admin, const char *user,
    json_t *req)
{
	const struct cmd_info *ci;
	const struct cmd_entry *ce;
	struct cmdq_item *item;
	json_t *args;

	if ((ci = request_parse(d, c, req, &ce, &args)) == NULL)
		return;
	if (request_refused(d, c, ci, uid, admin, user)) {
		json_decref(args);
		return;
	}

	item = xcalloc(1, sizeof(*item));
	item->d = d;
	item->client = c;
	item->info = ci;
	item->args = args;
	item->uid = uid;
	item->admin = admin;
	snprintf(item->user, sizeof(item->user), "%s", user);
	item->started = time(NULL);
	item->started_ms = now_ms();
	if (ci->flags & CMD_EXCLUSIVE)
		busy_take(d, ci->name, item->user, item->uid, item);
	d->clients->attach(c, item);
	log_debug("%s (uid %lu): %s", user, (unsigned long)uid, ci->name);
	/* cluster: P/lock first ("back" during our own rollout already has it). */
	if ((ci->flags & CMD_EXCLUSIVE) && cluster_on() && d->busy.item == item) {
		cluster_lock(ci->name, item->user, cmd_cluster_locked, item);
		return;
	}
	ce->exec(item);
}

/* cluster: P/lock is ours (or not); the shared state is fresh. */
static void
cmd_cluster_locked(const char *code, const char *error, void *arg)
{
	struct cmdq_item *item = arg;
	const struct cmd_entry *ce;
	json_t *lock;

	if (code != NULL) {
		cmd_error(item, code, "%s", error);
		return;
	}
	item->cluster_held = 1;
	if ((item->info->flags & CMD_LOCKABLE) &&
	    (lock = state_lock(item->d->state)) != NULL) {
		json_t *r = locked_reply(lock);

		cmd_event(item, r);
		item_free(item);
		return;
	}
	for (ce = cmd_table; ce->name != NULL; ce++)
		if (strcmp(ce->name, item->info->name) == 0)
			break;
	ce->exec(item);
}

static void
item_free(struct cmdq_item *item)
{
	struct daemon *d = item->d;

	/* Free before the client reads its next request: it may be a command. */
	if (d->busy.item == item)
		memset(&d->busy, 0, sizeof(d->busy));
	if (item->cluster_held) {
		item->cluster_held = 0;
		cluster_unlock();
	}
	if (item->client != NULL)
		d->clients->done(item->client);
	json_decref(item->args);
	free(item);
	busy_maybe_exit(d);
}

void
cmd_event(struct cmdq_item *item, json_t *ev)
{
	if (item->client != NULL)
		item->d->clients->send(item->client, ev);
	else
		json_decref(ev);
}

void
cmd_progress(struct cmdq_item *item, const char *fmt, ...)
{
	va_list ap;
	char msg[2048];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cmd_event(item, json_pack("{s:s, s:s}", P_EVENT, EV_STEP, "text", utf8_tidy(msg)));
}

static void
who_progress_cb(void *arg, const char *text)
{
	cmd_progress(arg, "%s", text);
}

static void
who_event_cb(void *arg, json_t *ev)
{
	cmd_event(arg, ev);
}

/* The command's identity and progress, for code that knows no commands. */
void
cmd_who(struct cmdq_item *item, struct op_who *who)
{
	memset(who, 0, sizeof(*who));
	who->user = item->user;
	who->uid = item->uid;
	who->message = cmd_arg_str(item, A_MESSAGE);
	who->progress = who_progress_cb;
	who->event = who_event_cb;
	who->arg = item;
}

void
cmd_done(struct cmdq_item *item, json_t *payload)
{
	if (payload == NULL)
		payload = json_object();
	json_object_set_new(payload, P_OK, json_true());
	cmd_event(item, payload);
	item_free(item);
}

static void
cmd_verror(struct cmdq_item *item, const char *code, json_t *extra, const char *fmt,
    va_list ap)
{
	char msg[4096];
	json_t *r = extra ? extra : json_object();

	vsnprintf(msg, sizeof(msg), fmt, ap);
	json_object_set_new(r, P_OK, json_false());
	json_object_set_new(r, P_CODE, json_string(code));
	json_object_set_new(r, P_ERROR, json_string(utf8_tidy(msg)));
	cmd_event(item, r);
	item_free(item);
}

void
cmd_error(struct cmdq_item *item, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cmd_verror(item, code, NULL, fmt, ap);
	va_end(ap);
}

void
cmd_error_json(struct cmdq_item *item, const char *code, json_t *extra, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cmd_verror(item, code, extra, fmt, ap);
	va_end(ap);
}

const char *
cmd_arg_str(struct cmdq_item *item, const char *key)
{
	return json_string_value(json_object_get(item->args, key));
}

int
cmd_arg_bool(struct cmdq_item *item, const char *key)
{
	return json_is_true(json_object_get(item->args, key));
}

long long
cmd_arg_int(struct cmdq_item *item, const char *key, long long def)
{
	json_t *v = json_object_get(item->args, key);

	return json_is_integer(v) ? json_integer_value(v) : def;
}
