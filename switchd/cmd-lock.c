/*
 * cmd-lock.c — "lock" and "unlock": the deploy lock an operator holds by
 * hand.  It lives in state.json, so it survives a restart; a TTL ends it by
 * itself (checked whenever the lock is looked at: no timer needed).
 */
#include <string.h>

#include "cmd.h"
#include "daemon.h"
#include "log.h"
#include "protocol.h"
#include "state.h"

#define LOCK_MAX_TTL	(366 * 24 * 3600)	/* a year: beyond, use no TTL */

static void
lock_journal(struct cmdq_item *item, const char *command, const char *message)
{
	struct state *st = item->d->state;
	struct op_who who;

	cmd_who(item, &who);
	who.message = message;
	history_append(st, journal_entry(&who, command, state_hot(st), state_hot(st), "ok",
	    NULL));
}

void
cmd_lock_exec(struct cmdq_item *item)
{
	struct state *st = item->d->state;
	const char *msg = cmd_arg_str(item, A_MESSAGE);
	long long ttl = cmd_arg_int(item, A_TTL, 0);
	json_t *lock;

	if (ttl < 0 || ttl > LOCK_MAX_TTL) {
		cmd_error(item, E_USAGE, "lock: --ttl must be 0 (no expiry) to %d seconds",
		    LOCK_MAX_TTL);
		return;
	}
	lock = lock_record(item->user, (json_int_t)item->uid, msg ? msg : "", time(NULL), ttl);
	json_object_set(state_doc(st), "lock", lock);
	if (state_save(st) == -1) {
		json_object_set_new(state_doc(st), "lock", json_null());
		json_decref(lock);
		cmd_error(item, E_INTERNAL, "cannot write the state file; not locked");
		return;
	}
	log_info("deploy lock taken by %s%s%s", item->user, msg ? ": " : "", msg ? msg : "");
	lock_journal(item, "lock", msg);
	cmd_done(item, json_pack("{s:o}", "lock", lock));
}

void
cmd_unlock_exec(struct cmdq_item *item)
{
	struct state *st = item->d->state;
	json_t *lock = state_lock(st), *old;

	if (lock == NULL) {
		cmd_error(item, E_NOT_LOCKED, "the deploy lock is not held");
		return;
	}
	if ((uid_t)json_integer_value(json_object_get(lock, "uid")) != item->uid &&
	    !cmd_arg_bool(item, A_FORCE)) {
		cmd_error(item, E_REFUSED, "the deploy lock is held by %s, not by you; "
		    "\"switchctl unlock --force\" releases another user's lock",
		    json_string_value(json_object_get(lock, "user")));
		return;
	}
	old = json_incref(lock);
	json_object_set_new(state_doc(st), "lock", json_null());
	if (state_save(st) == -1) {
		json_object_set_new(state_doc(st), "lock", old);
		cmd_error(item, E_INTERNAL, "cannot write the state file; still locked");
		return;
	}
	log_info("deploy lock of %s released by %s%s",
	    json_string_value(json_object_get(old, "user")), item->user,
	    cmd_arg_bool(item, A_FORCE) ? " (--force)" : "");
	lock_journal(item, cmd_arg_bool(item, A_FORCE) ? "unlock --force" : "unlock", NULL);
	cmd_done(item, json_pack("{s:o}", "released", old));
}
