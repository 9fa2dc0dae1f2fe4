/*
 * state.c — what switchd remembers across restarts, all under state_dir:
 *
 *   state.json     roles, each pool's version and verification state, the
 *                  lock, the last switch.  Replaced atomically, never edited
 *                  by switchd; checked field by field at load, since people
 *                  do edit it: what is damaged becomes the cautious value
 *                  (roles from HAProxy, pool failed, lock held).
 *   history.jsonl  the audit journal: one JSON object a line, appended with a
 *                  single write(2) and fsync'd, so a crash leaves no torn line
 *                  (a torn tail from a full disk is cut off at open).
 *   intent.json    the intent record: written before the first load
 *                  balancer node is touched and blanked after the state is
 *                  saved: if it holds a record at start, a switch was
 *                  interrupted.  Written in place (see intent_slot_write).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "protocol.h"
#include "state.h"
#include "util.h"

struct state {
	char		*path, *history_path, *intent_path;
	json_t		*doc;
	int		 is_new;	/* no state file at start */
	int		 roles_known;	/* hot/cold came from a sound state file */
	json_t		*errors;	/* what was wrong with state.json at start */
	void		(*hook)(json_t *, void *);
	void		*hook_arg;
	const struct state_mirror *mirror;	/* cluster: NULL on one host */
};

void
history_set_hook(struct state *st, void (*hook)(json_t *, void *), void *arg)
{
	st->hook = hook;
	st->hook_arg = arg;
}

void
state_set_mirror(struct state *st, const struct state_mirror *mirror)
{
	st->mirror = mirror;
}

/* cluster: the shared journal was read (until then, the local copy answers). */
static int
mirror_loaded(const struct state *st)
{
	return st->mirror != NULL && st->mirror->loaded(st->mirror->arg);
}

static json_t *
pool_record(void)
{
	return json_pack("{s:n, s:s, s:n, s:n}", "version", "state", PS_EMPTY,
	    "since", "by");
}

static void
state_defaults(struct state *st)
{
	json_t *pools;

	if (!json_is_object(json_object_get(st->doc, "pools")))
		json_object_set_new(st->doc, "pools", json_object());
	pools = json_object_get(st->doc, "pools");
	if (!json_is_object(json_object_get(pools, POOL_BLUE)))
		json_object_set_new(pools, POOL_BLUE, pool_record());
	if (!json_is_object(json_object_get(pools, POOL_GREEN)))
		json_object_set_new(pools, POOL_GREEN, pool_record());
	if (pool_index(json_string_value(json_object_get(st->doc, "hot"))) < 0)
		state_set_hot(st, POOL_B);
	if (json_object_get(st->doc, "last_switch") == NULL)
		json_object_set_new(st->doc, "last_switch", json_null());
	if (json_object_get(st->doc, "lock") == NULL)
		json_object_set_new(st->doc, "lock", json_null());
	if (!json_is_object(json_object_get(st->doc, "ec2")))
		json_object_set_new(st->doc, "ec2", json_pack("{s:[]}", "drift"));
}

/* Cut a torn last line (no trailing newline) off the journal. */
static void
history_repair(struct state *st)
{
	struct stat sb;
	char c;
	int fd;
	off_t end;

	if ((fd = open(st->history_path, O_RDWR | O_CLOEXEC)) == -1)
		return;
	if (fstat(fd, &sb) == 0 && sb.st_size > 0 &&
	    pread(fd, &c, 1, sb.st_size - 1) == 1 && c != '\n') {
		for (end = sb.st_size - 1; end > 0; end--)
			if (pread(fd, &c, 1, end - 1) == 1 && c == '\n')
				break;
		log_warnx("%s: cutting a torn last line (%lld bytes)", st->history_path,
		    (long long)(sb.st_size - end));
		if (ftruncate(fd, end) == 0)
			fsync(fd);
	}
	close(fd);
}


#define STATE_MAX_STR	1024	/* a version, a message: anything longer is damage */

static void
state_problem(struct state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
state_problem(struct state *st, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s: %s", st->path, msg);
	json_array_append_new(st->errors, json_string(utf8_fix(msg)));
}

static int
sane_string(json_t *j)
{
	const char *s = json_string_value(j);
	size_t i;

	if (s == NULL || json_string_length(j) > STATE_MAX_STR || strlen(s) != json_string_length(j))
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
			return 0;
	return 1;
}

static int
null_or_string(json_t *j)
{
	return j == NULL || json_is_null(j) || sane_string(j);
}

/*
 * A lock that cannot be read is held: dropping it would let a deploy run
 * that someone meant to stop.  Only an admin's "unlock --force" (uid -1 is
 * nobody's) clears it.
 */
static void
state_lock_damaged(struct state *st, const char *why)
{
	time_t now = time(NULL);
	json_t *lock;
	char *msg;

	msg = xasprintf("the deploy lock in %s could not be read (%s); it is held until "
	    "an admin runs \"switchctl unlock --force\"", st->path, why);
	lock = lock_record("(unreadable state file)", -1, msg, now, 0);
	json_object_set_new(lock, "damaged", json_true());
	json_object_set_new(st->doc, "lock", lock);
	free(msg);
}

static const char *const pool_states[] = { PS_EMPTY, PS_DEPLOYING, PS_DEPLOYED,
	PS_VERIFYING, PS_VERIFIED, PS_FAILED, NULL };

/*
 * A pool whose record is damaged is not known to run anything in
 * particular: "failed", so that neither switch nor back goes to it unless
 * an admin forces it.
 */
static void
state_pool_damaged(json_t *pools, const char *name, const char *why)
{
	json_t *p = pool_record();

	json_object_set_new(p, "state", json_string(PS_FAILED));
	json_object_set_new(p, "error", json_sprintf("its record in state.json was "
	    "damaged (%s); run cold-deploy again", why));
	json_object_set_new(pools, name, p);
}

static void
state_validate_pool(struct state *st, json_t *pools, const char *name)
{
	json_t *p = json_object_get(pools, name), *v;
	const char *pst;
	int i, good = 0;

	if (p == NULL) {
		state_problem(st, "pools.%s is missing; %s is taken as failed", name, name);
		state_pool_damaged(pools, name, "missing");
		return;
	}
	if (!json_is_object(p)) {
		state_problem(st, "pools.%s is not an object; %s is taken as failed", name, name);
		state_pool_damaged(pools, name, "not an object");
		return;
	}
	pst = json_string_value(v = json_object_get(p, "state"));
	for (i = 0; pst != NULL && pool_states[i] != NULL; i++)
		if (strcmp(pst, pool_states[i]) == 0)
			good = 1;
	if (!good) {
		state_problem(st, "pools.%s.state is not one of empty, deploying, deployed, "
		    "verifying, verified, failed; %s is taken as failed", name, name);
		state_pool_damaged(pools, name, "state");
		return;
	}
	if (!null_or_string(json_object_get(p, "version"))) {
		state_problem(st, "pools.%s.version is not a string (or is longer than %d "
		    "bytes); %s is taken as failed", name, STATE_MAX_STR, name);
		state_pool_damaged(pools, name, "version");
		return;
	}
	if (!null_or_string(json_object_get(p, "since"))) {
		state_problem(st, "pools.%s.since is not a string; dropped", name);
		json_object_set_new(p, "since", json_null());
	}
	if (!null_or_string(json_object_get(p, "by"))) {
		state_problem(st, "pools.%s.by is not a string; dropped", name);
		json_object_set_new(p, "by", json_null());
	}
	if (!null_or_string(json_object_get(p, "error"))) {
		state_problem(st, "pools.%s.error is not a string; dropped", name);
		json_object_del(p, "error");
	}
}

static void
state_validate_discovered(struct state *st)
{
	json_t *disc = json_object_get(st->doc, "discovered"), *list, *s;
	size_t i;
	int k;

	if (disc == NULL || json_is_null(disc))
		return;
	if (!json_is_object(disc)) {
		state_problem(st, "discovered is not an object; dropped (the next discovery "
		    "fills it)");
		json_object_del(st->doc, "discovered");
		return;
	}
	for (k = 0; k < NPOOLS; k++) {
		list = json_object_get(disc, pool_name(k));
		if (list == NULL)
			continue;
		if (!json_is_array(list)) {
			state_problem(st, "discovered.%s is not an array; dropped", pool_name(k));
			json_object_set_new(disc, pool_name(k), json_array());
			continue;
		}
		for (i = 0; i < json_array_size(list); ) {
			s = json_array_get(list, i);
			if (!json_is_object(s) ||
			    !valid_instance_id(json_string_value(json_object_get(s, "id"))) ||
			    !valid_ip_port(json_string_value(json_object_get(s, "address")))) {
				state_problem(st, "discovered.%s[%zu] has no valid id (i-...) and "
				    "address (IP:port); dropped", pool_name(k), i);
				json_array_remove(list, i);
				continue;
			}
			i++;
		}
	}
}

static void
state_validate_lock(struct state *st)
{
	json_t *lock = json_object_get(st->doc, "lock");

	if (lock == NULL || json_is_null(lock))
		return;
	if (!json_is_object(lock)) {
		state_problem(st, "lock is not an object or null; the lock is taken as held");
		state_lock_damaged(st, "not an object");
	} else if (!sane_string(json_object_get(lock, "user")) ||
	    !json_is_integer(json_object_get(lock, "uid")) ||
	    !json_is_integer(json_object_get(lock, "since_epoch")) ||
	    !null_or_string(json_object_get(lock, "message")) ||
	    (json_object_get(lock, "expires") != NULL &&
	    !json_is_integer(json_object_get(lock, "expires")))) {
		state_problem(st, "lock lacks a user, uid or since_epoch of the right type; "
		    "the lock is taken as held");
		state_lock_damaged(st, "missing or mistyped fields");
	}
}

/*
 * Check every field switchd relies on, with one message each; what is wrong
 * becomes the cautious default (a pool not verified, a lock held, roles
 * unknown so that reconcile learns them from HAProxy).
 */
static void
state_validate(struct state *st)
{
	json_t *pools, *last, *ec2;
	const char *hot = json_string_value(json_object_get(st->doc, "hot"));
	const char *cold = json_string_value(json_object_get(st->doc, "cold"));

	st->roles_known = 1;
	if (pool_index(hot) < 0) {
		state_problem(st, "hot is not \"blue\" or \"green\"; the roles are learnt from "
		    "HAProxy");
		st->roles_known = 0;
	} else if (pool_index(cold) != !pool_index(hot)) {
		state_problem(st, "cold is not the other pool than hot; the roles are learnt "
		    "from HAProxy");
		st->roles_known = 0;
	}
	if (!st->roles_known)
		json_object_del(st->doc, "hot");
	pools = json_object_get(st->doc, "pools");
	if (!json_is_object(pools)) {
		state_problem(st, "pools is missing or not an object; both pools are taken as "
		    "failed");
		json_object_set_new(st->doc, "pools", json_object());
		pools = json_object_get(st->doc, "pools");
		state_pool_damaged(pools, POOL_BLUE, "pools missing");
		state_pool_damaged(pools, POOL_GREEN, "pools missing");
	} else {
		state_validate_pool(st, pools, POOL_BLUE);
		state_validate_pool(st, pools, POOL_GREEN);
	}
	last = json_object_get(st->doc, "last_switch");
	if (last != NULL && !json_is_null(last) && (!json_is_object(last) ||
	    pool_index(json_string_value(json_object_get(last, "from"))) < 0 ||
	    pool_index(json_string_value(json_object_get(last, "to"))) < 0)) {
		state_problem(st, "last_switch is not a switch record; dropped");
		json_object_set_new(st->doc, "last_switch", json_null());
	}
	ec2 = json_object_get(st->doc, "ec2");
	if (ec2 != NULL && (!json_is_object(ec2) ||
	    !json_is_array(json_object_get(ec2, "drift")))) {
		state_problem(st, "ec2 is not {\"drift\": [...]}; reset (the next retag "
		    "fills it)");
		json_object_del(st->doc, "ec2");
	}
	state_validate_lock(st);
	state_validate_discovered(st);
}

/* The whole file, or NULL with errno (ENOENT: there is none). */
static char *
state_file_read(const char *path)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	for (;;) {
		if (len + 1 >= cap) {
			cap = cap ? cap * 2 : 8192;
			if ((buf = realloc(buf, cap)) == NULL)
				fatalx("out of memory");
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	saved = errno;
	close(fd);
	if (n == -1) {
		free(buf);
		errno = saved == ENOENT ? EIO : saved;
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/* Keep the damaged file for the admin before anything overwrites it. */
static void
state_keep_damaged(struct state *st, const char *raw)
{
	char *copy;

	if (raw == NULL)
		return;
	copy = xasprintf("%s.damaged", st->path);
	if (file_write_atomic(copy, raw, strlen(raw), 0640) == -1)
		log_warn("write %s", copy);
	else
		log_warnx("%s: the damaged file is kept as %s", st->path, copy);
	free(copy);
}

struct state *
state_open(const char *dir)
{
	struct state *st;
	json_error_t jerr;
	char *raw;

	if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
		log_warn("state_dir %s", dir);
		return NULL;
	}
	st = xcalloc(1, sizeof(*st));
	st->path = xasprintf("%s/state.json", dir);
	st->history_path = xasprintf("%s/history.jsonl", dir);
	st->intent_path = xasprintf("%s/intent.json", dir);
	st->errors = json_array();
	raw = state_file_read(st->path);
	st->is_new = raw == NULL;
	if (raw == NULL && errno != ENOENT) {
		const char *why = strerror(errno);

		/* There is a file but it cannot be read: its lock may be held. */
		st->doc = json_object();
		state_problem(st, "cannot be read (%s); the roles are learnt from HAProxy", why);
		state_lock_damaged(st, why);
	} else if (raw == NULL) {
		st->doc = json_object();
	} else if ((st->doc = json_loads(raw, 0, &jerr)) == NULL ||
	    !json_is_object(st->doc)) {
		st->is_new = 1;
		if (st->doc == NULL)
			state_problem(st, "not JSON (line %d: %s); starting from HAProxy's view",
			    jerr.line, jerr.text);
		else
			state_problem(st, "not a JSON object; starting from HAProxy's view");
		json_decref(st->doc);
		st->doc = json_object();
		state_lock_damaged(st, "the file is not a JSON object");
	} else
		state_validate(st);
	if (json_array_size(st->errors) > 0)
		state_keep_damaged(st, raw);
	free(raw);
	state_defaults(st);
	history_repair(st);
	return st;
}

void
state_close(struct state *st)
{
	if (st == NULL)
		return;
	json_decref(st->doc);
	json_decref(st->errors);
	free(st->path);
	free(st->history_path);
	free(st->intent_path);
	free(st);
}

int
state_is_new(struct state *st)
{
	return st->is_new;
}

int
state_roles_trusted(struct state *st)
{
	return st->roles_known;
}

json_t *
state_load_errors(struct state *st)
{
	return st->errors;
}

json_t *
state_doc(struct state *st)
{
	return st->doc;
}

static int state_write(struct state *);

/* With a cluster, etcd gets it too (cluster.c: queued, compare-and-swap). */
int
state_save(struct state *st)
{
	int r = state_write(st);

	if (st->mirror != NULL)
		st->mirror->save(st->mirror->arg, st->doc);
	return r;
}

/* Another instance wrote the shared state: it replaces ours, here and on disk. */
void
state_replace(struct state *st, json_t *doc)
{
	json_object_clear(st->doc);
	json_object_update(st->doc, doc);
	state_defaults(st);
	state_write(st);
}

static int
state_write(struct state *st)
{
	char *text;
	int r;

	text = json_dumps(st->doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (text == NULL)
		return -1;
	r = file_write_atomic(st->path, text, strlen(text), 0640);
	if (r == -1)
		log_warn("write %s", st->path);
	else {
		st->is_new = 0;
		st->roles_known = 1;
	}
	free(text);
	return r;
}

int
state_hot(struct state *st)
{
	int i = pool_index(json_string_value(json_object_get(st->doc, "hot")));
	return i < 0 ? POOL_B : i;
}

/* The canary split, if it is on the cold pool (a switch makes it moot). */
json_t *
state_canary(struct state *st)
{
	json_t *c = json_object_get(st->doc, "canary");

	if (!json_is_object(c) ||
	    pool_index(json_string_value(json_object_get(c, "pool"))) != !state_hot(st))
		return NULL;
	return c;
}

int
state_canary_percent(struct state *st, int cold)
{
	json_t *c = state_canary(st);

	if (c == NULL || pool_index(json_string_value(json_object_get(c, "pool"))) != cold)
		return 0;
	return (int)json_integer_value(json_object_get(c, "percent"));
}

void
state_set_hot(struct state *st, int hot)
{
	json_object_set_new(st->doc, "hot", json_string(pool_name(hot)));
	json_object_set_new(st->doc, "cold", json_string(pool_name(!hot)));
}

json_t *
state_pool(struct state *st, int idx)
{
	return json_object_get(json_object_get(st->doc, "pools"), pool_name(idx));
}

/* The record of the switch that made to hot: "last_switch" in status. */
void
state_set_last_switch(struct state *st, const char *id, const char *user, json_int_t uid,
    int from, int to, const char *message, const char *command)
{
	char when[32];

	iso_time(time(NULL), when, sizeof(when));
	json_object_set_new(st->doc, "last_switch", json_pack(
	    "{s:s, s:s, s:s, s:I, s:s, s:s, s:s?, s:s}", "id", id, "time", when,
	    "user", user, "uid", uid, "from", pool_name(from), "to", pool_name(to),
	    "message", message, "command", command));
}

void
state_set_pool(struct state *st, int idx, const char *version, const char *pstate,
    const char *by)
{
	json_t *p = state_pool(st, idx);
	char when[32];

	iso_time(time(NULL), when, sizeof(when));
	if (version != NULL)
		json_object_set_new(p, "version", json_string(version));
	json_object_set_new(p, "state", json_string(pstate));
	json_object_set_new(p, "since", json_string(when));
	json_object_set_new(p, "by", by ? json_string(by) : json_null());
}

json_t *
lock_record(const char *user, json_int_t uid, const char *message, time_t since,
    long long ttl)
{
	char when[32];

	iso_time(since, when, sizeof(when));
	return json_pack("{s:s, s:I, s:s, s:s, s:I, s:I, s:I}", "user", user, "uid", uid,
	    "message", message, "since", when, "since_epoch", (json_int_t)since,
	    "ttl", (json_int_t)ttl, "expires", (json_int_t)(ttl > 0 ? since + ttl : 0));
}

json_t *
state_lock(struct state *st)
{
	json_t *lock = json_object_get(st->doc, "lock");
	json_int_t expires;

	if (!json_is_object(lock))
		return NULL;
	expires = json_integer_value(json_object_get(lock, "expires"));
	if (expires > 0 && (json_int_t)time(NULL) >= expires) {
		log_info("deploy lock of %s expired (ttl)",
		    json_string_value(json_object_get(lock, "user")));
		json_object_set_new(st->doc, "lock", json_null());
		state_save(st);
		return NULL;
	}
	return lock;
}

/* ---------------------------------------------------------------- history */

json_t *
journal_entry(const struct op_who *who, const char *command, int before, int after,
    const char *result, const char *error)
{
	json_t *e;

	e = json_pack("{s:I, s:s, s:s, s:s?, s:{s:s, s:s}, s:{s:s, s:s}, s:s}",
	    "uid", (json_int_t)who->uid, "user", who->user, "command", command,
	    "message", who->message,
	    "before", "hot", pool_name(before), "cold", pool_name(!before),
	    "after", "hot", pool_name(after), "cold", pool_name(!after), "result", result);
	if (error != NULL)
		json_object_set_new(e, "error", json_string(error));
	return e;
}

int
history_append(struct state *st, json_t *entry)
{
	char id[64], when[32], *line;
	size_t len;
	ssize_t n;
	int fd, r = 0;

	if (json_object_get(entry, "id") == NULL) {
		new_id(id, sizeof(id));
		json_object_set_new(entry, "id", json_string(id));
	}
	if (json_object_get(entry, "time") == NULL) {
		iso_time(time(NULL), when, sizeof(when));
		json_object_set_new(entry, "time", json_string(when));
	}
	if (st->mirror != NULL) {
		json_object_set_new(entry, "instance",
		    json_string(st->mirror->name(st->mirror->arg)));
		st->mirror->append(st->mirror->arg, entry);
	}
	line = json_dumps(entry, JSON_COMPACT | JSON_SORT_KEYS);
	if (st->hook != NULL)
		st->hook(entry, st->hook_arg);
	json_decref(entry);
	if (line == NULL)
		return -1;
	len = strlen(line);
	line = realloc(line, len + 2);
	if (line == NULL)
		fatalx("out of memory");
	line[len++] = '\n';
	line[len] = '\0';
	fd = open(st->history_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1) {
		log_warn("open %s", st->history_path);
		free(line);
		return -1;
	}
	/* One write: a reader or a crash sees the whole line or none of it. */
	n = write(fd, line, len);
	if (n != (ssize_t)len || fsync(fd) == -1) {
		log_warn("append %s", st->history_path);
		r = -1;
		if (n > 0 && n != (ssize_t)len)
			history_repair(st);
	}
	close(fd);
	free(line);
	return r;
}

/* cluster: another instance's entry, kept here too (no hook, no etcd). */
void
history_mirror(struct state *st, json_t *entry)
{
	char *line = json_dumps(entry, JSON_COMPACT | JSON_SORT_KEYS), *nl;
	int fd;

	if (line == NULL)
		return;
	nl = xasprintf("%s\n", line);
	fd = open(st->history_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1 || write(fd, nl, strlen(nl)) != (ssize_t)strlen(nl))
		log_warn("append %s", st->history_path);
	if (fd != -1)
		close(fd);
	free(nl);
	free(line);
}

#define HISTORY_CHUNK	(8 * 1024)	/* the first read; then doubled */
#define HISTORY_CHUNK_MAX (1024 * 1024)

/* One journal line (without its newline) onto out, if it is an object. */
static void
history_take(json_t *out, const char *line, size_t len)
{
	json_t *e;

	if (len == 0)
		return;
	e = json_loadb(line, len, 0, NULL);
	if (json_is_object(e))
		json_array_append_new(out, e);
	else
		json_decref(e);
}

/*
 * The newest n entries (all if n <= 0), newest first.  The journal is read
 * backwards from its end in chunks, so the work is the last n lines, not
 * the whole file: a big journal must not stall the loop for everyone.  A
 * torn last line (being written) is skipped.
 */
json_t *
history_read(struct state *st, int n)
{
	json_t *out = json_array();
	char *buf = NULL, *carry = NULL, *nl;
	size_t carrylen = 0, total, len, end, k, chunk = HISTORY_CHUNK;
	struct stat sb;
	off_t pos;
	int fd, torn;

	/*
	 * The shared journal, in the same order on every instance; until etcd
	 * was first read, this instance's own copy.
	 */
	if (mirror_loaded(st)) {
		json_decref(out);
		return st->mirror->history(st->mirror->arg, n);
	}
	if ((fd = open(st->history_path, O_RDONLY | O_CLOEXEC)) == -1)
		return out;
	if (fstat(fd, &sb) == -1 || sb.st_size == 0) {
		close(fd);
		return out;
	}
	pos = sb.st_size;
	torn = 1;	/* until the last byte is known to be a newline */
	while (pos > 0 && (n <= 0 || json_array_size(out) < (size_t)n)) {
		len = pos > (off_t)chunk ? chunk : (size_t)pos;
		pos -= (off_t)len;
		if (chunk < HISTORY_CHUNK_MAX)
			chunk *= 2;
		buf = xcalloc(len + carrylen + 1, 1);
		if (pread(fd, buf, len, pos) != (ssize_t)len) {
			log_warn("read %s", st->history_path);
			free(buf);
			buf = NULL;
			break;
		}
		if (carrylen > 0)
			memcpy(buf + len, carry, carrylen);
		free(carry);
		carry = NULL;
		total = len + carrylen;
		carrylen = 0;
		end = total;
		if (torn) {
			/* Only the first chunk's bytes count here: carry is empty. */
			if ((nl = memrchr(buf, '\n', total)) == NULL) {
				free(buf);
				buf = NULL;
				continue;
			}
			end = (size_t)(nl - buf) + 1;
			torn = 0;
		}
		/* buf[0..end) ends with a newline; its first line may start earlier. */
		for (k = end - 1; k > 0 && (n <= 0 || json_array_size(out) < (size_t)n); k--) {
			if (buf[k - 1] != '\n')
				continue;
			history_take(out, buf + k, end - 1 - k);
			end = k;
		}
		if (pos == 0 && (n <= 0 || json_array_size(out) < (size_t)n))
			history_take(out, buf, end - 1);
		else {
			carry = buf;
			carrylen = end;
			buf = NULL;
			continue;
		}
		free(buf);
		buf = NULL;
	}
	free(carry);
	close(fd);
	return out;
}

int
history_has_id(struct state *st, const char *id)
{
	json_t *last;
	size_t i;
	int found = 0;

	if (mirror_loaded(st))
		return st->mirror->has_id(st->mirror->arg, id);
	last = history_read(st, 8);
	for (i = 0; i < json_array_size(last); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(last, i),
		    "id")) ?: "", id) == 0)
			found = 1;
	json_decref(last);
	return found;
}

/* ----------------------------------------------------------------- intent */

/*
 * The intent record must be on disk before a node changes, and it is on
 * every switch's way to its effect.  A new file renamed into place costs
 * two syncs and a directory entry (~0.5 ms); so intent.json is a slot,
 * created once and then overwritten in place, padded with blanks to its
 * size, and fdatasync'd: no new inode, no size change, one data flush
 * (~0.1 ms).  Clearing it blanks it the same way.  Anything else there
 * (no file yet, a record longer than the slot, a symlink, a second link)
 * gets a new file through file_write_atomic.  A write torn by a power cut
 * leaves an object cut short, which does not parse: it is ignored as any
 * unreadable record is.
 */
#define INTENT_SLOT	4096

static int
intent_slot_write(struct state *st, const char *text)
{
	size_t len = text != NULL ? strlen(text) : 0, size;
	struct stat sb;
	char *buf;
	int fd, r = -1;

	fd = open(st->intent_path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd != -1 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_nlink == 1 &&
	    sb.st_size > (off_t)len && sb.st_size <= 16 * INTENT_SLOT) {
		size = (size_t)sb.st_size;
		buf = xcalloc(1, size);
		memset(buf, ' ', size);
		memcpy(buf, text != NULL ? text : "", len);
		buf[size - 1] = '\n';
		if (pwrite(fd, buf, size, 0) == (ssize_t)size && fdatasync(fd) == 0)
			r = 0;
		free(buf);
	}
	if (fd != -1)
		close(fd);
	if (r == 0)
		return 0;
	size = (len / INTENT_SLOT + 1) * INTENT_SLOT;
	buf = xcalloc(1, size);
	memset(buf, ' ', size);
	memcpy(buf, text != NULL ? text : "", len);
	buf[size - 1] = '\n';
	r = file_write_atomic(st->intent_path, buf, size, 0640);
	free(buf);
	return r;
}

int
intent_write(struct state *st, json_t *intent)
{
	char *text = json_dumps(intent, JSON_COMPACT | JSON_SORT_KEYS);
	int r;

	if (text == NULL)
		return -1;
	if (st->mirror != NULL)
		st->mirror->intent_write(st->mirror->arg, intent);
	r = intent_slot_write(st, text);
	if (r == -1)
		log_warn("write %s", st->intent_path);
	free(text);
	return r;
}

json_t *
intent_read(struct state *st)
{
	json_error_t jerr;
	json_t *j;
	char *text;
	size_t i;

	/* Shared: an interrupted switch is taken over from etcd (cluster.c). */
	if (st->mirror != NULL)
		return NULL;
	if ((text = state_file_read(st->intent_path)) == NULL)
		return NULL;
	for (i = 0; text[i] != '\0' && strchr(" \t\r\n", text[i]) != NULL; i++)
		;
	if (text[i] == '\0') {
		free(text);		/* blank: no switch under way */
		return NULL;
	}
	j = json_loads(text, 0, &jerr);
	free(text);
	if (!json_is_object(j)) {
		log_warnx("%s: unreadable intent record (%s), ignored", st->intent_path, jerr.text);
		json_decref(j);
		unlink(st->intent_path);
		return NULL;
	}
	return j;
}

int
intent_clear(struct state *st)
{
	if (st->mirror != NULL)
		st->mirror->intent_clear(st->mirror->arg);
	if (access(st->intent_path, F_OK) == -1 && errno == ENOENT)
		return 0;
	if (intent_slot_write(st, NULL) == -1) {
		log_warn("clear %s", st->intent_path);
		return -1;
	}
	return 0;
}
