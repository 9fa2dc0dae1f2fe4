/*
 * test-util.c — util.c's UTF-8 helpers: every string from outside goes
 * through them before it reaches JSON, so what they return must be
 * accepted by json_string(), and a cut must never split a character.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "unit.h"
#include "util.h"

static int
json_ok(const char *s)
{
	json_t *j = json_string(s);
	int ok = j != NULL;

	json_decref(j);
	return ok;
}

static void
test_fix(void)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "plain", "plain" },
		{ "caf\303\251 \342\202\254 \360\237\230\200", "caf\303\251 \342\202\254 \360\237\230\200" },
		{ "a\377b", "a?b" },
		{ "cut \303", "cut ?" },
		{ "overlong \300\257 \340\200\257", "overlong ?? ???" },
		{ "surrogate \355\240\200", "surrogate ???" },
		{ "too big \364\220\200\200", "too big ????" },
		{ "lone \200 cont", "lone ? cont" },
	};
	size_t i;
	char buf[64];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		CHECK_STR(utf8_fix(buf), cases[i].out);
		CHECK(json_ok(buf));
	}
}

static void
test_trunc(void)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "ab\303\251");	/* "abé": 4 bytes */
	CHECK_STR(utf8_trunc(buf, 3), "ab");
	snprintf(buf, sizeof(buf), "ab\303\251");
	CHECK_STR(utf8_trunc(buf, 4), "ab\303\251");
	snprintf(buf, sizeof(buf), "a\360\237\230\200b");
	CHECK_STR(utf8_trunc(buf, 4), "a");
	snprintf(buf, sizeof(buf), "a\360\237\230\200b");
	CHECK_STR(utf8_trunc(buf, 5), "a\360\237\230\200");
	CHECK_INT(utf8_cut("abc", 3, 10), 3);
	CHECK_INT(utf8_cut("abc", 3, 2), 2);
}

/* What notify.c's what[512] did: snprintf cuts inside "é"; tidy drops it. */
static void
test_tidy(void)
{
	char what[8];

	memcpy(what, "aaaaaa\303", 8);	/* snprintf(what, 8, "aaaaaa\303\251") */
	CHECK(!json_ok(what));
	CHECK_STR(utf8_tidy(what), "aaaaaa");
	CHECK(json_ok(what));
	CHECK_INT(utf8_complete("x\342\202", 3), 1);
	CHECK_INT(utf8_complete("x\342\202\254", 4), 4);
	CHECK_INT(utf8_complete("x\377", 2), 2);
}

static char *
slurp(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/*
 * A symlink planted where the temp file used to go (PATH.tmp.PID) is not
 * followed, and nothing is left beside the target.
 */
static void
test_write_atomic_symlink(void)
{
	char dir[] = "/tmp/test-util.XXXXXX", path[256], victim[256], plant[300];
	DIR *d;
	struct dirent *e;
	int n = 0;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/switchd.map", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	snprintf(plant, sizeof(plant), "%s.tmp.%ld", path, (long)getpid());
	CHECK(file_write_atomic(victim, "precious\n", 9, 0600) == 0);
	CHECK(symlink(victim, plant) == 0);
	CHECK(file_write_atomic(path, "new map\n", 8, 0644) == 0);
	CHECK_STR(slurp(victim), "precious\n");
	CHECK_STR(slurp(path), "new map\n");
	if ((d = opendir(dir)) != NULL) {
		while ((e = readdir(d)) != NULL)
			n += e->d_name[0] != '.';
		closedir(d);
	}
	CHECK_INT(n, 3);	/* victim, the planted link, the map: no temp left */
	unlink(plant);
	unlink(path);
	unlink(victim);
	rmdir(dir);
}

int
main(void)
{
	RUN(test_fix);
	RUN(test_trunc);
	RUN(test_tidy);
	RUN(test_write_atomic_symlink);
	return unit_summary();
}
