/*
 * cmd-cold-deploy.c — "cold-deploy": put a version on the cold pool and
 * prove it through the real load balancer (smoke.c), and what a restart in
 * the middle of one leaves (deploy_recover).
 *
 * cold-deploy holds the deploy lock for its whole run and walks the cold
 * pool through empty -> deploying -> deployed -> verifying -> verified |
 * failed, saving each step, so status always tells where a deploy stands
 * (and a restart in the middle marks it failed, never verified).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "lb.h"
#include "log.h"
#include "proc.h"
#include "protocol.h"
#include "smoke.h"
#include "state.h"
#include "util.h"

/* The cold pool's hosts, space separated, for SWITCHD_HOSTS. */
static char *
pool_hosts(const struct pool *p)
{
	size_t i, len = 1;
	char *out, *colon;

	for (i = 0; i < p->nservers; i++)
		len += strlen(p->servers[i].address) + 1;
	out = xcalloc(1, len);
	for (i = 0; i < p->nservers; i++) {
		if (i > 0)
			strcat(out, " ");
		strcat(out, p->servers[i].address);
		if ((colon = strrchr(out, ':')) != NULL && colon > strrchr(out, ' ' ))
			*colon = '\0';
	}
	return out;
}

/* Describe a wait status for people. */
static void
exit_text(int status, int timed_out, int timeout, char *buf, size_t len)
{
	if (timed_out)
		snprintf(buf, len, "killed after its %d s timeout", timeout);
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "ended with wait status %d", status);
}

/* ------------------------------------------------------------ cold-deploy */

enum deploy_step { D_DEPLOY, D_SMOKE, D_LIVE };

struct deploy {
	struct cmdq_item *item;
	struct lb	*lb;		/* holds the config we run with */
	int		 pool;
	char		*version;
	const char	*source;	/* "deploy" | "live tests" */
	json_t		*checks;
	char		*summary;
	char		**env;
};

static void
deploy_free(struct deploy *d)
{
	size_t i;

	for (i = 0; d->env != NULL && d->env[i] != NULL; i++)
		free(d->env[i]);
	free(d->env);
	json_decref(d->checks);
	free(d->summary);
	free(d->version);
	lb_unref(d->lb);
	free(d);
}

static void
deploy_env(struct deploy *d)
{
	struct config *conf = d->lb->conf;
	char *hosts = pool_hosts(&conf->pools[d->pool]);

	d->env = xcalloc(6, sizeof(char *));
	d->env[0] = xasprintf("SWITCHD_HOSTS=%s", hosts);
	d->env[1] = xasprintf("SWITCHD_VERSION=%s", d->version ? d->version : "");
	d->env[2] = xasprintf("SWITCHD_POOL=%s", pool_name(d->pool));
	d->env[3] = xasprintf("SWITCHD_COLD_URL=%s", conf->smoke_url ? conf->smoke_url : "");
	d->env[4] = xasprintf("SWITCHD_COLD_HOST=%s", conf->cold_host);
	free(hosts);
}

/* Release the lock cold-deploy took, journal, answer. */
static void
deploy_end(struct deploy *d, const char *pstate, const char *code, const char *error)
{
	struct cmdq_item *item = d->item;
	struct state *st = item->d->state;
	struct op_who who;
	json_t *r;

	state_set_pool(st, d->pool, NULL, pstate, item->user);
	if (error != NULL)
		json_object_set_new(state_pool(st, d->pool), "error", json_string(error));
	else
		json_object_del(state_pool(st, d->pool), "error");
	json_object_set_new(state_doc(st), "lock", json_null());
	state_save(st);
	cmd_who(item, &who);
	r = journal_entry(&who, "cold-deploy", state_hot(st), state_hot(st),
	    code ? "failed" : "ok", error);
	if (d->version != NULL)
		json_object_set_new(r, "version", json_string(d->version));
	json_object_set_new(r, "pool", json_string(pool_name(d->pool)));
	history_append(st, r);
	log_info("cold-deploy by %s: %s at %s is %s%s%s", item->user, pool_name(d->pool),
	    d->version ? d->version : "(no version)", pstate, error ? ": " : "",
	    error ? error : "");
	if (code != NULL)
		cmd_error_json(item, code, json_pack("{s:s, s:s?, s:s, s:O?}", "pool",
		    pool_name(d->pool), "version", d->version, "state", pstate,
		    "checks", d->checks), "%s", error);
	else
		cmd_done(item, json_pack("{s:s, s:s?, s:s, s:O, s:s}", "pool",
		    pool_name(d->pool), "version", d->version, "state", pstate,
		    "checks", d->checks ? d->checks : json_array(), "summary",
		    d->summary ? d->summary : ""));
	deploy_free(d);
}

static void
deploy_line(const char *line, int is_stderr, void *arg)
{
	struct deploy *d = arg;

	cmd_event(d->item, json_pack("{s:s, s:s, s:s, s:s}", P_EVENT, EV_OUTPUT,
	    "source", d->source, "stream", is_stderr ? "stderr" : "stdout", "text", line));
}

static void deploy_live_tests(struct deploy *);

static void
deploy_smoked(int passed, json_t *results, const char *summary, void *arg)
{
	struct deploy *d = arg;
	char *err;

	d->checks = json_incref(results);
	d->summary = xstrdup(summary);
	cmd_progress(d->item, "smoke: %s", summary);
	if (!passed) {
		err = xasprintf("smoke checks failed on %s: %s", pool_name(d->pool), summary);
		deploy_end(d, PS_FAILED, E_SMOKE, err);
		free(err);
		return;
	}
	deploy_live_tests(d);
}

static void
deploy_live_done(int status, int timed_out, void *arg)
{
	struct deploy *d = arg;
	char how[128], *err;

	if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		exit_text(status, timed_out, d->lb->conf->smoke_command_timeout, how, sizeof(how));
		err = xasprintf("live tests (smoke.command) %s", how);
		deploy_end(d, PS_FAILED, E_SMOKE, err);
		free(err);
		return;
	}
	cmd_progress(d->item, "live tests passed");
	deploy_end(d, PS_VERIFIED, NULL, NULL);
}

static void
deploy_live_tests(struct deploy *d)
{
	struct config *conf = d->lb->conf;

	if (conf->smoke_command == NULL) {
		deploy_end(d, PS_VERIFIED, NULL, NULL);
		return;
	}
	cmd_progress(d->item, "live tests: %s", conf->smoke_command);
	d->source = "live tests";
	if (proc_start(d->item->d->base, conf->smoke_command, d->env, conf->smoke_command_timeout,
	    deploy_line, deploy_live_done, d) == NULL) {
		char *err = xasprintf("cannot start the live tests: %s", strerror(errno));
		deploy_end(d, PS_FAILED, E_SMOKE, err);
		free(err);
	}
}

static void
deploy_verify(struct deploy *d)
{
	struct state *st = d->item->d->state;
	struct op_who who;

	state_set_pool(st, d->pool, NULL, PS_VERIFYING, d->item->user);
	state_save(st);
	cmd_who(d->item, &who);
	smoke_start(d->item->d, &who, d->pool, deploy_smoked, d);
}

static void
deploy_done(int status, int timed_out, void *arg)
{
	struct deploy *d = arg;
	struct state *st = d->item->d->state;
	char how[128], *err;

	if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		exit_text(status, timed_out, d->lb->conf->deploy_timeout, how, sizeof(how));
		err = xasprintf("deploy.command %s", how);
		deploy_end(d, PS_FAILED, E_DEPLOY, err);
		free(err);
		return;
	}
	cmd_progress(d->item, "deployed %s to %s", d->version ? d->version : "",
	    pool_name(d->pool));
	state_set_pool(st, d->pool, NULL, PS_DEPLOYED, d->item->user);
	state_save(st);
	deploy_verify(d);
}

void
cmd_cold_deploy_exec(struct cmdq_item *item)
{
	struct state *st = item->d->state;
	struct deploy *d = xcalloc(1, sizeof(*d));
	struct config *conf = item->d->conf;
	const char *version = cmd_arg_str(item, A_VERSION), *msg = cmd_arg_str(item, A_MESSAGE);
	const char *cur;
	json_t *lock;

	/* A canary sends live users to the cold pool: no deploy under them. */
	if (state_canary_percent(st, !state_hot(st)) > 0) {
		free(d);
		cmd_error(item, E_REFUSED, "a canary sends %d %% of %s to the cold pool %s; "
		    "end it first (switchctl canary 0, or switch to complete it); nothing "
		    "was changed", state_canary_percent(st, !state_hot(st)), conf->live_host,
		    pool_name(!state_hot(st)));
		return;
	}
	d->item = item;
	d->lb = lb_ref(item->d->lb);
	d->pool = !state_hot(st);
	cur = json_string_value(json_object_get(state_pool(st, d->pool), "version"));
	/*
	 * Without -v, a run of deploy.command puts something new there whose
	 * version nobody told us: keeping the old one would let a
	 * "switch --expect OLD" pass.  Only a verify-only run keeps it.
	 */
	if (version == NULL && conf->deploy_command != NULL && !cmd_arg_bool(item, A_NO_DEPLOY)) {
		cur = NULL;
		json_object_set_new(state_pool(st, d->pool), "version", json_null());
	}
	d->version = xstrdup(version ? version : cur);

	/* The deploy lock, for the whole run: nobody switches under us. */
	lock = lock_record(item->user, (json_int_t)item->uid, msg ? msg : "cold-deploy",
	    time(NULL), 0);
	json_object_set_new(lock, "auto", json_true());
	json_object_set_new(state_doc(st), "lock", lock);
	if (version != NULL)
		json_object_set_new(state_pool(st, d->pool), "version", json_string(version));
	deploy_env(d);

	if (conf->deploy_command == NULL || cmd_arg_bool(item, A_NO_DEPLOY)) {
		cmd_progress(item, "%s: no deploy command run; verifying %s at %s",
		    cmd_arg_bool(item, A_NO_DEPLOY) ? "--no-deploy" : "deploy.command unset",
		    pool_name(d->pool), d->version ? d->version : "(no version)");
		state_set_pool(st, d->pool, NULL, PS_DEPLOYED, item->user);
		state_save(st);
		deploy_verify(d);
		return;
	}
	state_set_pool(st, d->pool, NULL, PS_DEPLOYING, item->user);
	state_save(st);
	cmd_progress(item, "deploying %s to %s: %s", d->version ? d->version : "(no version)",
	    pool_name(d->pool), conf->deploy_command);
	d->source = "deploy";
	if (proc_start(d->item->d->base, conf->deploy_command, d->env, conf->deploy_timeout,
	    deploy_line, deploy_done, d) == NULL) {
		char *err = xasprintf("cannot start deploy.command: %s", strerror(errno));
		deploy_end(d, PS_FAILED, E_DEPLOY, err);
		free(err);
	}
}

/* ------------------------------------------------------ a restart mid-way */

/*
 * A cold-deploy cannot survive a restart (its child is gone): a pool left
 * deploying or verifying is failed, and the lock it took is released.
 */
void
deploy_recover(struct daemon *dm)
{
	json_t *lock = json_object_get(state_doc(dm->state), "lock");
	const char *st;
	int i, changed = 0;

	for (i = 0; i < NPOOLS; i++) {
		st = json_string_value(json_object_get(state_pool(dm->state, i), "state"));
		if (st != NULL && (strcmp(st, PS_DEPLOYING) == 0 ||
		    strcmp(st, PS_VERIFYING) == 0 || strcmp(st, PS_DEPLOYED) == 0)) {
			log_warnx("%s pool was %s when switchd stopped: marked failed",
			    pool_name(i), st);
			state_set_pool(dm->state, i, NULL, PS_FAILED, "switchd");
			json_object_set_new(state_pool(dm->state, i), "error", json_sprintf(
			    "interrupted while %s (switchd restarted)", st));
			changed = 1;
		}
	}
	if (json_is_object(lock) && json_is_true(json_object_get(lock, "auto"))) {
		log_warnx("releasing the deploy lock of an interrupted cold-deploy by %s",
		    json_string_value(json_object_get(lock, "user")));
		json_object_set_new(state_doc(dm->state), "lock", json_null());
		changed = 1;
	}
	if (changed)
		state_save(dm->state);
}
