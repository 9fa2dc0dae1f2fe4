/*
 * cmd-table.c — the table of switchd's commands: name, usage, options, and the
 * checks that apply before any work (admin, exclusive, lockable).
 */
#include <stddef.h>
#include <string.h>

#include "cmd-table.h"
#include "protocol.h"

static const char *const hosts_choices[] = { "hot", "cold", "blue", "green", NULL };

#define OPT_MESSAGE { 'm', "message", A_MESSAGE, OPT_STR, "MSG", "why, for the history and notifications" }

const struct cmd_info cmd_infos[] = {
	{ "status", "", "show pools, versions, server health, nodes, lock and last switch",
	  0, NULL, NULL, { { 0 } } },
	{ "hosts", "hot|cold|blue|green", "print the addresses of a pool's servers, one a line",
	  0, A_POOL, hosts_choices, { { 0 } } },
	{ "cold-deploy", "[-v VERSION] [-m MSG] [--no-deploy]",
	  "deploy VERSION to the cold pool, smoke-test it, record verified or failed",
	  CMD_ADMIN | CMD_EXCLUSIVE | CMD_LOCKABLE, NULL, NULL, {
		{ 'v', "version", A_VERSION, OPT_STR, "VERSION", "the version deployed (e.g. a git sha)" },
		OPT_MESSAGE,
		{ 0, "no-deploy", A_NO_DEPLOY, OPT_BOOL, NULL, "skip deploy.command; only verify" },
	  } },
	{ "smoke", "", "run the smoke checks against the cold pool now",
	  CMD_ADMIN | CMD_EXCLUSIVE, NULL, NULL, { { 0 } } },
	{ "switch", "[-m MSG] [--expect VERSION] [--force] [--no-smoke] [--bake SECONDS]",
	  "move the live host name to the cold pool",
	  CMD_ADMIN | CMD_EXCLUSIVE | CMD_LOCKABLE, NULL, NULL, {
		OPT_MESSAGE,
		{ 0, "expect", A_EXPECT, OPT_STR, "VERSION", "refuse unless the cold pool is at VERSION" },
		{ 0, "force", A_FORCE, OPT_BOOL, NULL, "switch even if the cold pool is not verified" },
		{ 0, "no-smoke", A_NO_SMOKE, OPT_BOOL, NULL, "do not re-run the smoke checks" },
		{ 0, "bake", A_BAKE, OPT_INT, "SECONDS",
		  "the guard watches the new pool this long (default guard.bake; 0: off)" },
	  } },
	{ "canary", "PERCENT [-m MSG] [--expect VERSION] [--no-smoke]",
	  "send PERCENT (1-99) of the live host's traffic to the cold pool; 0 ends it",
	  CMD_ADMIN | CMD_EXCLUSIVE | CMD_LOCKABLE, A_PERCENT, NULL, {
		OPT_MESSAGE,
		{ 0, "expect", A_EXPECT, OPT_STR, "VERSION", "refuse unless the cold pool is at VERSION" },
		{ 0, "no-smoke", A_NO_SMOKE, OPT_BOOL, NULL, "do not re-run the smoke checks" },
	  } },
	{ "rollout", "[--steps 10,25,50] [--interval SECONDS] [-m MSG] [--expect VERSION]",
	  "canary at each step, watched by the guard, then switch with the bake window",
	  CMD_ADMIN | CMD_EXCLUSIVE | CMD_LOCKABLE, NULL, NULL, {
		{ 0, "steps", A_STEPS, OPT_STR, "P,P,...", "canary percentages, rising (default 10,25,50)" },
		{ 0, "interval", A_INTERVAL, OPT_INT, "SECONDS", "how long each step is watched (default 60)" },
		OPT_MESSAGE,
		{ 0, "expect", A_EXPECT, OPT_STR, "VERSION", "refuse unless the cold pool is at VERSION" },
	  } },
	{ "back", "[-m MSG]", "flip back to the previous hot pool at once",
	  CMD_ADMIN | CMD_EXCLUSIVE | CMD_LOCKABLE, NULL, NULL, { OPT_MESSAGE } },
	{ "history", "[-n N]", "show the audit journal, newest first",
	  0, NULL, NULL, {
		{ 'n', NULL, A_N, OPT_INT, "N", "how many entries (default 20)" },
	  } },
	{ "lock", "[-m MSG] [--ttl SECONDS]", "hold the deploy lock: mutating commands fail until unlock",
	  CMD_ADMIN | CMD_EXCLUSIVE | CMD_LOCKABLE, NULL, NULL, {
		OPT_MESSAGE,
		{ 0, "ttl", A_TTL, OPT_INT, "SECONDS", "release the lock by itself after SECONDS" },
	  } },
	{ "unlock", "[--force]", "release the deploy lock (--force: anyone's)",
	  CMD_ADMIN | CMD_EXCLUSIVE, NULL, NULL, {
		{ 0, "force", A_FORCE, OPT_BOOL, NULL, "release a lock held by another user" },
	  } },
	{ "sync", "", "make HAProxy and the EC2 role tags agree with switchd's roles",
	  CMD_ADMIN | CMD_EXCLUSIVE | CMD_LOCKABLE, NULL, NULL, { { 0 } } },
	{ "reload", "", "re-read the configuration file; a bad file is refused",
	  CMD_ADMIN | CMD_EXCLUSIVE | CMD_LOCKABLE, NULL, NULL, { { 0 } } },
	{ NULL, NULL, NULL, 0, NULL, NULL, { { 0 } } }
};

const struct cmd_info *
cmd_info_find(const char *name)
{
	const struct cmd_info *ci;

	for (ci = cmd_infos; ci->name != NULL; ci++)
		if (strcmp(ci->name, name) == 0)
			return ci;
	return NULL;
}

const struct cmd_opt *
cmd_opt_find(const struct cmd_info *ci, const char *key)
{
	int i;

	for (i = 0; i < CMD_MAXOPTS && ci->opts[i].key != NULL; i++)
		if (strcmp(ci->opts[i].key, key) == 0)
			return &ci->opts[i];
	return NULL;
}

/* Levenshtein distance, small strings only. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[64], prev, tmp;

	if (la >= 63 || lb >= 63)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			row[j] = prev + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (tmp + 1 < row[j])
				row[j] = tmp + 1;
			prev = tmp;
		}
	}
	return row[lb];
}

const char *
cmd_info_suggest(const char *name)
{
	const struct cmd_info *ci, *best = NULL;
	size_t d, bestd = 3;

	for (ci = cmd_infos; ci->name != NULL; ci++) {
		if (strncmp(ci->name, name, strlen(name)) == 0 && strlen(name) >= 2)
			return ci->name;
		d = edit_distance(name, ci->name);
		if (d < bestd) {
			bestd = d;
			best = ci;
		}
	}
	return best ? best->name : NULL;
}
