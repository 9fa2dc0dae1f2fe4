/*
 * test-smoke.c — smoke.c when no request can even start (libcurl refuses
 * every handle, here because the HTTP client was never started): the run
 * must finish once, with every check failed, and not be read after it is
 * freed (ASan says so in the asan build).
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "lb.h"
#include "smoke.h"
#include "unit.h"

static int	 calls, passed_seen;
static size_t	 nresults;

static void
done_cb(int passed, json_t *results, const char *summary, void *arg)
{
	(void)summary;
	(void)arg;
	calls++;
	passed_seen = passed;
	nresults = json_array_size(results);
}

static void
test_all_starts_fail(void)
{
	struct config conf;
	struct daemon d = { 0 };
	struct smoke_check checks[2];
	struct server servers[1];
	struct lb lb;

	memset(&conf, 0, sizeof(conf));
	memset(checks, 0, sizeof(checks));
	memset(&lb, 0, sizeof(lb));
	checks[0].name = (char *)"home";
	checks[0].method = (char *)"GET";
	checks[0].path = (char *)"/";
	checks[0].status = 200;
	checks[1] = checks[0];
	checks[1].name = (char *)"health";
	servers[0].name = (char *)"g1";
	servers[0].address = (char *)"127.0.0.1:1";
	servers[0].instance = NULL;
	conf.checks = checks;
	conf.nchecks = 2;
	conf.smoke_url = (char *)"http://127.0.0.1:1";
	conf.cold_host = (char *)"cold.example.com";
	conf.smoke_timeout_ms = 1000;
	conf.per_server = 1;
	conf.pools[POOL_G].name = "green";
	conf.pools[POOL_G].servers = servers;
	conf.pools[POOL_G].nservers = 1;
	lb.conf = &conf;
	lb.refs = 1;	/* the test's: smoke_finish's unref never frees it */
	d.conf = &conf;
	d.lb = &lb;

	smoke_start(&d, NULL, POOL_G, done_cb, NULL);
	CHECK_INT(calls, 1);
	CHECK_INT(passed_seen, 0);
	CHECK_INT(nresults, 4);
	CHECK_INT(lb.refs, 1);
}

int
main(void)
{
	RUN(test_all_starts_fail);
	return unit_summary();
}
