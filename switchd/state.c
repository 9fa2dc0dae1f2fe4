/*
 * state.c — what switchd remembers across restarts, all under state_dir:
 *
 *   state.json     roles, each pool's version and verification state, the
 *                  lock, the last switch.  Replaced atomically, never edited.
 *   history.jsonl  the audit journal: one JSON object a line, appended with a
 *                  single write(2) and fsync'd, so a crash leaves no torn line
 *                  (a torn tail from a full disk is cut off at open).
 *   intent.json    written before the first load balancer node is touched
 *                  and removed after the state is saved: if it exists at
 *                  start, a switch was interrupted.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "switchd.h"

static char	*state_path, *history_path, *intent_path;
static json_t	*state;
static int	 state_new;	/* no state file at start */
static void	(*history_hook)(json_t *);

void
history_set_hook(void (*hook)(json_t *))
{
	history_hook = hook;
}

static json_t *
pool_record(void)
{
	return json_pack("{s:n, s:s, s:n, s:n}", "version", "state", PS_EMPTY,
	    "since", "by");
}

static void
state_defaults(void)
{
	json_t *pools;

	if (!json_is_object(json_object_get(state, "pools")))
		json_object_set_new(state, "pools", json_object());
	pools = json_object_get(state, "pools");
	if (!json_is_object(json_object_get(pools, POOL_BLUE)))
		json_object_set_new(pools, POOL_BLUE, pool_record());
	if (!json_is_object(json_object_get(pools, POOL_GREEN)))
		json_object_set_new(pools, POOL_GREEN, pool_record());
	if (pool_index(json_string_value(json_object_get(state, "hot"))) < 0)
		state_set_hot(POOL_B);
	if (json_object_get(state, "last_switch") == NULL)
		json_object_set_new(state, "last_switch", json_null());
	if (json_object_get(state, "lock") == NULL)
		json_object_set_new(state, "lock", json_null());
	if (!json_is_object(json_object_get(state, "ec2")))
		json_object_set_new(state, "ec2", json_pack("{s:[]}", "drift"));
}

/* Cut a torn last line (no trailing newline) off the journal. */
static void
history_repair(void)
{
	struct stat st;
	char c;
	int fd;
	off_t end;

	if ((fd = open(history_path, O_RDWR | O_CLOEXEC)) == -1)
		return;
	if (fstat(fd, &st) == 0 && st.st_size > 0 &&
	    pread(fd, &c, 1, st.st_size - 1) == 1 && c != '\n') {
		for (end = st.st_size - 1; end > 0; end--)
			if (pread(fd, &c, 1, end - 1) == 1 && c == '\n')
				break;
		log_warnx("%s: cutting a torn last line (%lld bytes)", history_path,
		    (long long)(st.st_size - end));
		if (ftruncate(fd, end) == 0)
			fsync(fd);
	}
	close(fd);
}

int
state_open(const char *dir, const struct config *conf)
{
	json_error_t jerr;

	(void)conf;
	if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
		log_warn("state_dir %s", dir);
		return -1;
	}
	free(state_path);
	free(history_path);
	free(intent_path);
	state_path = xasprintf("%s/state.json", dir);
	history_path = xasprintf("%s/history.jsonl", dir);
	intent_path = xasprintf("%s/intent.json", dir);
	json_decref(state);
	state = json_load_file(state_path, 0, &jerr);
	state_new = state == NULL;
	if (state == NULL) {
		if (access(state_path, F_OK) == 0) {
			log_warnx("%s: unreadable (%s); starting from HAProxy's view",
			    state_path, jerr.text);
		}
		state = json_object();
	} else if (!json_is_object(state)) {
		state_new = 1;
		log_warnx("%s: not a JSON object; starting from HAProxy's view", state_path);
		json_decref(state);
		state = json_object();
	}
	state_defaults();
	history_repair();
	return 0;
}

void
state_close(void)
{
	json_decref(state);
	state = NULL;
	free(state_path);
	free(history_path);
	free(intent_path);
	state_path = history_path = intent_path = NULL;
}

int
state_is_new(void)
{
	return state_new;
}

json_t *
state_doc(void)
{
	return state;
}

int
state_save(void)
{
	char *text;
	int r;

	text = json_dumps(state, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (text == NULL)
		return -1;
	r = file_write_atomic(state_path, text, strlen(text), 0640);
	if (r == -1)
		log_warn("write %s", state_path);
	else
		state_new = 0;
	free(text);
	return r;
}

int
state_hot(void)
{
	int i = pool_index(json_string_value(json_object_get(state, "hot")));
	return i < 0 ? POOL_B : i;
}

void
state_set_hot(int hot)
{
	json_object_set_new(state, "hot", json_string(hot == POOL_B ? POOL_BLUE : POOL_GREEN));
	json_object_set_new(state, "cold", json_string(hot == POOL_B ? POOL_GREEN : POOL_BLUE));
}

json_t *
state_pool(int idx)
{
	return json_object_get(json_object_get(state, "pools"),
	    idx == POOL_B ? POOL_BLUE : POOL_GREEN);
}

void
state_set_pool(int idx, const char *version, const char *pstate, const char *by)
{
	json_t *p = state_pool(idx);
	char when[32];

	iso_time(time(NULL), when, sizeof(when));
	if (version != NULL)
		json_object_set_new(p, "version", json_string(version));
	json_object_set_new(p, "state", json_string(pstate));
	json_object_set_new(p, "since", json_string(when));
	json_object_set_new(p, "by", by ? json_string(by) : json_null());
}

json_t *
state_lock(void)
{
	json_t *lock = json_object_get(state, "lock");
	json_int_t expires;

	if (!json_is_object(lock))
		return NULL;
	expires = json_integer_value(json_object_get(lock, "expires"));
	if (expires > 0 && (json_int_t)time(NULL) >= expires) {
		log_info("deploy lock of %s expired (ttl)",
		    json_string_value(json_object_get(lock, "user")));
		json_object_set_new(state, "lock", json_null());
		state_save();
		return NULL;
	}
	return lock;
}

/* ---------------------------------------------------------------- history */

int
history_append(json_t *entry)
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
	line = json_dumps(entry, JSON_COMPACT | JSON_SORT_KEYS);
	if (history_hook != NULL)
		history_hook(entry);
	json_decref(entry);
	if (line == NULL)
		return -1;
	len = strlen(line);
	line = realloc(line, len + 2);
	if (line == NULL)
		fatalx("out of memory");
	line[len++] = '\n';
	line[len] = '\0';
	fd = open(history_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1) {
		log_warn("open %s", history_path);
		free(line);
		return -1;
	}
	/* One write: a reader or a crash sees the whole line or none of it. */
	n = write(fd, line, len);
	if (n != (ssize_t)len || fsync(fd) == -1) {
		log_warn("append %s", history_path);
		r = -1;
		if (n > 0 && n != (ssize_t)len)
			history_repair();
	}
	close(fd);
	free(line);
	return r;
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
history_read(int n)
{
	json_t *out = json_array();
	char *buf = NULL, *carry = NULL, *nl;
	size_t carrylen = 0, total, len, end, k, chunk = HISTORY_CHUNK;
	struct stat st;
	off_t pos;
	int fd, torn;

	if ((fd = open(history_path, O_RDONLY | O_CLOEXEC)) == -1)
		return out;
	if (fstat(fd, &st) == -1 || st.st_size == 0) {
		close(fd);
		return out;
	}
	pos = st.st_size;
	torn = 1;	/* until the last byte is known to be a newline */
	while (pos > 0 && (n <= 0 || json_array_size(out) < (size_t)n)) {
		len = pos > (off_t)chunk ? chunk : (size_t)pos;
		pos -= (off_t)len;
		if (chunk < HISTORY_CHUNK_MAX)
			chunk *= 2;
		buf = xcalloc(len + carrylen + 1, 1);
		if (pread(fd, buf, len, pos) != (ssize_t)len) {
			log_warn("read %s", history_path);
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
history_has_id(const char *id)
{
	json_t *last = history_read(8);
	size_t i;
	int found = 0;

	for (i = 0; i < json_array_size(last); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(last, i),
		    "id")) ?: "", id) == 0)
			found = 1;
	json_decref(last);
	return found;
}

/* ----------------------------------------------------------------- intent */

int
intent_write(json_t *intent)
{
	char *text = json_dumps(intent, JSON_COMPACT | JSON_SORT_KEYS);
	int r;

	if (text == NULL)
		return -1;
	r = file_write_atomic(intent_path, text, strlen(text), 0640);
	if (r == -1)
		log_warn("write %s", intent_path);
	free(text);
	return r;
}

json_t *
intent_read(void)
{
	json_error_t jerr;
	json_t *j;

	if (access(intent_path, F_OK) == -1)
		return NULL;
	j = json_load_file(intent_path, 0, &jerr);
	if (!json_is_object(j)) {
		log_warnx("%s: unreadable intent record (%s), ignored", intent_path, jerr.text);
		json_decref(j);
		unlink(intent_path);
		return NULL;
	}
	return j;
}

int
intent_clear(void)
{
	char *dir, *slash;
	int fd;

	if (unlink(intent_path) == -1 && errno != ENOENT) {
		log_warn("unlink %s", intent_path);
		return -1;
	}
	dir = xstrdup(intent_path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		fsync(fd);
		close(fd);
	}
	free(dir);
	return 0;
}
