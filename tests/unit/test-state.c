/*
 * test-state.c — state.c as an object in a temp dir: a new state, saved and
 * read back, a damaged state.json (kept aside, the pool failed), the
 * journal's order and n, the intent record (a slot written in place), the deploy lock's expiry, and
 * the cluster's mirror of every write (struct state_mirror) and the busy
 * slot's hook for switchd's own work.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "protocol.h"
#include "state.h"
#include "unit.h"
#include "util.h"

static char	 dir[64];

static void
write_text(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

static char *
read_text(const char *name)
{
	char path[128], *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = xcalloc((size_t)n + 1, 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		buf[0] = '\0';
	fclose(f);
	return buf;
}

/* An empty state_dir for each test. */
static void
fresh_dir(void)
{
	DIR *d;
	struct dirent *e;
	char path[400];

	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/test-state.XXXXXX");
		if (mkdtemp(dir) == NULL) {
			perror("mkdtemp");
			exit(1);
		}
		return;
	}
	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

static const char *
pool_field(struct state *st, int pool, const char *key)
{
	return json_string_value(json_object_get(state_pool(st, pool), key));
}

static void
test_new_save_reopen(void)
{
	struct state *st;

	fresh_dir();
	st = state_open(dir);
	CHECK(st != NULL);
	CHECK_INT(state_is_new(st), 1);
	CHECK_INT(state_roles_trusted(st), 0);
	CHECK_INT(state_hot(st), POOL_B);	/* the default, until HAProxy says */
	CHECK_STR(pool_field(st, POOL_G, "state"), PS_EMPTY);
	CHECK(json_is_null(json_object_get(state_doc(st), "lock")));
	CHECK_INT(json_array_size(state_load_errors(st)), 0);

	state_set_hot(st, POOL_G);
	state_set_pool(st, POOL_B, "v1.2", PS_VERIFIED, "alice");
	CHECK_INT(state_save(st), 0);
	state_close(st);

	st = state_open(dir);
	CHECK_INT(state_is_new(st), 0);
	CHECK_INT(state_roles_trusted(st), 1);
	CHECK_INT(state_hot(st), POOL_G);
	CHECK_STR(json_string_value(json_object_get(state_doc(st), "cold")), "blue");
	CHECK_STR(pool_field(st, POOL_B, "version"), "v1.2");
	CHECK_STR(pool_field(st, POOL_B, "state"), PS_VERIFIED);
	CHECK_STR(pool_field(st, POOL_B, "by"), "alice");
	CHECK(pool_field(st, POOL_B, "since") != NULL);
	CHECK_INT(json_array_size(state_load_errors(st)), 0);
	state_close(st);
}

static void
test_damaged_pool(void)
{
	static const char *damaged = "{\"hot\": \"green\", \"cold\": \"blue\", "
	    "\"pools\": {\"blue\": {\"version\": \"v1\", \"state\": \"verified\"}, "
	    "\"green\": {\"version\": \"v2\", \"state\": \"sideways\"}}}\n";
	struct state *st;
	char *kept;

	fresh_dir();
	write_text("state.json", damaged);
	st = state_open(dir);
	CHECK(st != NULL);
	CHECK_INT(state_is_new(st), 0);
	CHECK_INT(state_roles_trusted(st), 1);
	CHECK_INT(state_hot(st), POOL_G);
	/* The sound pool is kept; the damaged one is failed, with why. */
	CHECK_STR(pool_field(st, POOL_B, "state"), PS_VERIFIED);
	CHECK_STR(pool_field(st, POOL_G, "state"), PS_FAILED);
	CHECK(pool_field(st, POOL_G, "error") != NULL);
	CHECK_INT(json_array_size(state_load_errors(st)), 1);
	kept = read_text("state.json.damaged");
	CHECK_STR(kept, damaged);
	free(kept);
	state_close(st);
}

static void
test_not_json(void)
{
	struct state *st;
	json_t *lock;

	fresh_dir();
	write_text("state.json", "{\"hot\": \"gr");
	st = state_open(dir);
	CHECK_INT(state_is_new(st), 1);
	CHECK_INT(state_roles_trusted(st), 0);
	CHECK(json_array_size(state_load_errors(st)) > 0);
	/* A lock that cannot be read is held, by nobody's uid. */
	lock = state_lock(st);
	CHECK(lock != NULL);
	CHECK(json_is_true(json_object_get(lock, "damaged")));
	CHECK_INT(json_integer_value(json_object_get(lock, "uid")), -1);
	{
		char *kept = read_text("state.json.damaged");

		CHECK_STR(kept, "{\"hot\": \"gr");
		free(kept);
	}
	state_close(st);
}

static void
test_history(void)
{
	struct state *st;
	struct op_who who = { .user = "alice", .uid = 1000, .message = "m" };
	json_t *all, *two, *e;
	const char *id0;
	int i;

	fresh_dir();
	st = state_open(dir);
	all = history_read(st, 0);
	CHECK_INT(json_array_size(all), 0);
	json_decref(all);
	for (i = 0; i < 3; i++) {
		e = journal_entry(&who, "lock", POOL_B, i == 2 ? POOL_G : POOL_B, "ok",
		    i == 1 ? "why" : NULL);
		json_object_set_new(e, "n", json_integer(i));
		CHECK_INT(history_append(st, e), 0);
	}
	all = history_read(st, 0);
	CHECK_INT(json_array_size(all), 3);
	/* Newest first. */
	CHECK_INT(json_integer_value(json_object_get(json_array_get(all, 0), "n")), 2);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(all, 2), "n")), 0);
	e = json_array_get(all, 0);
	CHECK_STR(json_string_value(json_object_get(e, "user")), "alice");
	CHECK_INT(json_integer_value(json_object_get(e, "uid")), 1000);
	CHECK_STR(json_string_value(json_object_get(e, "command")), "lock");
	CHECK_STR(json_string_value(json_object_get(e, "message")), "m");
	CHECK_STR(json_string_value(json_object_get(json_object_get(e, "before"), "hot")), "blue");
	CHECK_STR(json_string_value(json_object_get(json_object_get(e, "after"), "hot")), "green");
	CHECK_STR(json_string_value(json_object_get(json_object_get(e, "after"), "cold")), "blue");
	CHECK(json_object_get(e, "error") == NULL);
	CHECK_STR(json_string_value(json_object_get(json_array_get(all, 1), "error")), "why");
	/* history_append adds the id and the time. */
	id0 = json_string_value(json_object_get(json_array_get(all, 2), "id"));
	CHECK(id0 != NULL);
	CHECK(json_is_string(json_object_get(e, "time")));
	CHECK_INT(history_has_id(st, id0), 1);
	CHECK_INT(history_has_id(st, "no-such-id"), 0);

	two = history_read(st, 2);
	CHECK_INT(json_array_size(two), 2);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(two, 0), "n")), 2);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(two, 1), "n")), 1);
	json_decref(two);
	json_decref(all);

	/* The journal outlives the object. */
	state_close(st);
	st = state_open(dir);
	all = history_read(st, 0);
	CHECK_INT(json_array_size(all), 3);
	json_decref(all);
	state_close(st);
}

static void
test_intent(void)
{
	struct state *st;
	json_t *in, *back;

	fresh_dir();
	st = state_open(dir);
	CHECK(intent_read(st) == NULL);
	in = json_pack("{s:s, s:s, s:s}", "id", "x1", "from", "blue", "to", "green");
	CHECK_INT(intent_write(st, in), 0);
	state_close(st);

	/* A restart finds it. */
	st = state_open(dir);
	back = intent_read(st);
	CHECK(back != NULL);
	CHECK(json_equal(back, in));
	json_decref(back);
	CHECK_INT(intent_clear(st), 0);
	CHECK(intent_read(st) == NULL);
	json_decref(in);
	state_close(st);
}

static ino_t
intent_ino(off_t *size)
{
	char path[128];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/intent.json", dir);
	if (lstat(path, &sb) == -1)
		return 0;
	*size = sb.st_size;
	return sb.st_ino;
}

/*
 * The record is a slot overwritten in place: one inode and one size from
 * the first write on (no directory change to sync); blank when cleared; a
 * record too long for it gets a bigger file; a torn record is ignored and
 * a symlink is replaced, never written through.
 */
static void
test_intent_slot(void)
{
	struct state *st;
	json_t *in, *back;
	ino_t ino;
	off_t size, size2;
	char big[6000], *text, path[128], victim[128];

	fresh_dir();
	st = state_open(dir);
	CHECK_INT(intent_clear(st), 0);		/* none yet: nothing to do */
	CHECK_INT(intent_ino(&size), 0);
	in = json_pack("{s:s, s:s, s:s}", "id", "x1", "from", "blue", "to", "green");
	CHECK_INT(intent_write(st, in), 0);
	ino = intent_ino(&size);
	CHECK(ino != 0);
	CHECK_INT(size, 4096);
	CHECK_INT(intent_clear(st), 0);
	CHECK(intent_ino(&size2) == ino && size2 == 4096);
	text = read_text("intent.json");
	CHECK(text != NULL && strspn(text, " \n") == 4096);
	free(text);
	CHECK(intent_read(st) == NULL);
	json_object_set_new(in, "id", json_string("x2"));
	CHECK_INT(intent_write(st, in), 0);
	CHECK(intent_ino(&size2) == ino && size2 == 4096);
	back = intent_read(st);
	CHECK(back != NULL && json_equal(back, in));
	json_decref(back);

	/* Longer than the slot: a new file, and the record is whole. */
	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_object_set_new(in, "message", json_string(big));
	CHECK_INT(intent_write(st, in), 0);
	CHECK(intent_ino(&size2) != 0 && size2 == 8192);
	back = intent_read(st);
	CHECK(back != NULL && json_equal(back, in));
	json_decref(back);

	/* Torn by a power cut: the object is cut short; ignored and removed. */
	write_text("intent.json", "{\"id\": \"x3\", \"from\": \"bl");
	CHECK(intent_read(st) == NULL);
	CHECK_INT(intent_ino(&size), 0);

	/* A symlink where the record goes: replaced, its target untouched. */
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	snprintf(path, sizeof(path), "%s/intent.json", dir);
	write_text("victim", "precious\n");
	CHECK_INT(symlink(victim, path), 0);
	json_object_del(in, "message");
	CHECK_INT(intent_write(st, in), 0);
	text = read_text("victim");
	CHECK_STR(text, "precious\n");
	free(text);
	back = intent_read(st);
	CHECK(back != NULL && json_equal(back, in));
	json_decref(back);
	json_decref(in);
	state_close(st);
}

static void
test_lock_expiry(void)
{
	struct state *st;
	json_t *lock;
	time_t now = time(NULL);

	fresh_dir();
	st = state_open(dir);
	CHECK(state_lock(st) == NULL);

	/* No ttl: held until unlocked. */
	lock = lock_record("bob", 1001, "deploying", now - 1000, 0);
	CHECK_INT(json_integer_value(json_object_get(lock, "expires")), 0);
	CHECK_INT(json_integer_value(json_object_get(lock, "since_epoch")), now - 1000);
	json_object_set_new(state_doc(st), "lock", lock);
	CHECK(state_lock(st) == lock);

	/* A ttl still running. */
	lock = lock_record("bob", 1001, "", now, 60);
	CHECK_INT(json_integer_value(json_object_get(lock, "expires")), now + 60);
	json_object_set_new(state_doc(st), "lock", lock);
	CHECK(state_lock(st) != NULL);

	/* A ttl over: dropped, and the file says so too. */
	json_object_set_new(state_doc(st), "lock", lock_record("bob", 1001, "", now - 100, 10));
	CHECK(state_lock(st) == NULL);
	CHECK(json_is_null(json_object_get(state_doc(st), "lock")));
	state_close(st);
	st = state_open(dir);
	CHECK(state_lock(st) == NULL);
	state_close(st);
}

/* A mirror that records what state.c hands it (cluster.c's in the daemon). */
static struct {
	int		 saves, appends, intent_writes, intent_clears, loaded;
	json_t		*last_doc, *last_entry, *last_intent, *journal;
} mir;

static const char *
mir_name(void *arg)
{
	CHECK(arg == &mir);
	return "deploy-a";
}

static void
mir_save(void *arg, json_t *doc)
{
	(void)arg;
	mir.saves++;
	json_decref(mir.last_doc);
	mir.last_doc = json_deep_copy(doc);
}

static void
mir_append(void *arg, json_t *entry)
{
	(void)arg;
	mir.appends++;
	json_decref(mir.last_entry);
	mir.last_entry = json_deep_copy(entry);
}

static void
mir_intent_write(void *arg, json_t *intent)
{
	(void)arg;
	mir.intent_writes++;
	json_decref(mir.last_intent);
	mir.last_intent = json_deep_copy(intent);
}

static void
mir_intent_clear(void *arg)
{
	(void)arg;
	mir.intent_clears++;
}

static int
mir_loaded(void *arg)
{
	(void)arg;
	return mir.loaded;
}

static json_t *
mir_history(void *arg, int n)
{
	(void)arg;
	(void)n;
	return json_incref(mir.journal);
}

static int
mir_has_id(void *arg, const char *id)
{
	(void)arg;
	return strcmp(id, "shared-1") == 0;
}

static const struct state_mirror test_mirror = {
	mir_name, mir_save, mir_append, mir_intent_write, mir_intent_clear, mir_loaded,
	mir_history, mir_has_id, &mir
};

static void
test_mirror_hooks(void)
{
	struct state *st;
	struct op_who who = { .user = "alice", .uid = 1000 };
	json_t *in, *all, *e;
	char *text;

	fresh_dir();
	st = state_open(dir);
	mir.journal = json_pack("[{s:s, s:s}]", "id", "shared-1", "instance", "deploy-b");
	/* An intent on disk from before: in a cluster, the shared one counts. */
	in = json_pack("{s:s, s:s, s:s}", "id", "x1", "from", "blue", "to", "green");
	CHECK_INT(intent_write(st, in), 0);
	CHECK_INT(mir.intent_writes, 0);
	state_set_mirror(st, &test_mirror);
	CHECK(intent_read(st) == NULL);

	state_set_hot(st, POOL_G);
	CHECK_INT(state_save(st), 0);
	CHECK_INT(mir.saves, 1);
	CHECK_STR(json_string_value(json_object_get(mir.last_doc, "hot")), "green");
	text = read_text("state.json");
	CHECK(text != NULL && strstr(text, "\"green\"") != NULL);
	free(text);

	/* Each entry names the instance, here and in etcd. */
	CHECK_INT(history_append(st, journal_entry(&who, "switch", POOL_B, POOL_G, "ok",
	    NULL)), 0);
	CHECK_INT(mir.appends, 1);
	CHECK_STR(json_string_value(json_object_get(mir.last_entry, "instance")), "deploy-a");
	CHECK(json_object_get(mir.last_entry, "id") != NULL);

	/* Until the shared journal was read, the local one answers. */
	all = history_read(st, 0);
	CHECK_INT(json_array_size(all), 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(all, 0), "instance")),
	    "deploy-a");
	json_decref(all);
	CHECK_INT(history_has_id(st, "shared-1"), 0);
	mir.loaded = 1;
	all = history_read(st, 0);
	CHECK(all == mir.journal);
	json_decref(all);
	CHECK_INT(history_has_id(st, "shared-1"), 1);

	CHECK_INT(intent_write(st, in), 0);
	CHECK_INT(mir.intent_writes, 1);
	CHECK(json_equal(mir.last_intent, in));
	CHECK_INT(intent_clear(st), 0);
	CHECK_INT(mir.intent_clears, 1);

	/* Another instance's state and entries: kept here, not sent back. */
	e = json_pack("{s:s, s:s}", "hot", "blue", "cold", "green");
	state_replace(st, e);
	json_decref(e);
	CHECK_INT(state_hot(st), POOL_B);
	CHECK_STR(pool_field(st, POOL_G, "state"), PS_EMPTY);	/* defaults filled in */
	e = json_pack("{s:s, s:s}", "id", "shared-1", "instance", "deploy-b");
	history_mirror(st, e);
	json_decref(e);
	CHECK_INT(mir.saves, 1);
	CHECK_INT(mir.appends, 1);

	/* Without the mirror: one host again. */
	state_set_mirror(st, NULL);
	CHECK_INT(state_save(st), 0);
	CHECK_INT(mir.saves, 1);
	all = history_read(st, 0);
	CHECK_INT(json_array_size(all), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(all, 0), "id")), "shared-1");
	json_decref(all);
	state_close(st);
	st = state_open(dir);
	CHECK_INT(state_hot(st), POOL_B);
	state_close(st);
	json_decref(in);
	json_decref(mir.last_doc);
	json_decref(mir.last_entry);
	json_decref(mir.last_intent);
	json_decref(mir.journal);
}

/* busy.c: switchd's own work asks the daemon's internal_take; a command does not. */
static int	 takes, take_ok, releases;

static int
internal_take(struct daemon *d)
{
	(void)d;
	takes++;
	return take_ok;
}

static void
internal_release(struct daemon *d)
{
	(void)d;
	releases++;
}

static void
test_busy_hooks(void)
{
	struct daemon d;
	struct cmdq_item *item = (struct cmdq_item *)&d;	/* only compared */

	memset(&d, 0, sizeof(d));
	CHECK_INT(busy_take(&d, "repair", "switchd", 0, NULL), 1);	/* no hook */
	busy_release(&d);
	d.internal_take = internal_take;
	d.internal_release = internal_release;
	CHECK_INT(busy_take(&d, "repair", "switchd", 0, NULL), 0);
	CHECK_INT(takes, 1);
	CHECK_INT(busy_held(&d), 0);
	take_ok = 1;
	CHECK_INT(busy_take(&d, "repair", "switchd", 0, NULL), 1);
	CHECK_INT(takes, 2);
	CHECK_INT(busy_take(&d, "switch", "alice", 1000, item), 0);	/* held */
	CHECK_INT(takes, 2);
	busy_release(&d);
	CHECK_INT(releases, 1);
	CHECK_INT(busy_held(&d), 0);
	/* A command's slot: its P/lock is cmd.c's business, not busy.c's. */
	CHECK_INT(busy_take(&d, "switch", "alice", 1000, item), 1);
	CHECK_INT(takes, 2);
	busy_release(&d);
	CHECK_INT(releases, 1);
}

int
main(void)
{
	RUN(test_new_save_reopen);
	RUN(test_damaged_pool);
	RUN(test_not_json);
	RUN(test_intent_slot);
	RUN(test_history);
	RUN(test_intent);
	RUN(test_lock_expiry);
	RUN(test_mirror_hooks);
	RUN(test_busy_hooks);
	fresh_dir();
	rmdir(dir);
	return unit_summary();
}
