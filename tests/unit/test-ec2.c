/*
 * test-ec2.c — ec2.c and ec2-creds.c against tests/ec2/ec2_endpoint.py, a
 * local EC2 Query API and IMDSv2 that recomputes every SigV4 signature with
 * botocore.  The test starts the endpoint itself (run it from the repository
 * root) and reads its admin API — the call log, the instances, the IMDS
 * log — to see what the client really sent, not what it thinks it sent.
 * A small evhttp server in the same loop plays a proxy that answers 5xx
 * pages that are not EC2's XML.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "ec2.h"
#include "http.h"
#include "unit.h"

#define AKID	"AKIDEXAMPLE"
#define SECRET	"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define WAIT_S	30

extern char **environ;

static struct event_base	*base;
static pid_t			 ep_pid = -1;
static char			 ep_url[64];	/* http://127.0.0.1:PORT */
static char			 tmpdir[64];
static int			 in_call;	/* set around ec2_* calls */

/* ------------------------------------------------------------ endpoint */

static int
endpoint_start(void)
{
	static char	 py[] = "/usr/bin/python3";
	static char	 script[] = "tests/ec2/ec2_endpoint.py";
	static char	 opt[] = "--port", zero[] = "0";
	char		*argv[] = { py, script, opt, zero, NULL };
	posix_spawn_file_actions_t fa;
	struct pollfd	 pfd;
	char		 buf[128];
	size_t		 n = 0;
	ssize_t		 r;
	char		 errlog[128];
	int		 p[2], port = 0;

	snprintf(errlog, sizeof(errlog), "%s/endpoint.err", tmpdir);
	if (pipe(p) == -1)
		return (-1);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	/* Its tracebacks for connections we cancel on purpose are noise. */
	posix_spawn_file_actions_addopen(&fa, 2, errlog, O_WRONLY | O_CREAT |
	    O_TRUNC, 0600);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	posix_spawn_file_actions_addclose(&fa, p[1]);
	if (posix_spawn(&ep_pid, argv[0], &fa, NULL, argv, environ) != 0) {
		perror("posix_spawn");
		return (-1);
	}
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	/* The first line is "PORT=<n>", flushed once it listens. */
	while (n < sizeof(buf) - 1 && memchr(buf, '\n', n) == NULL) {
		if (poll(&pfd, 1, 15000) != 1)
			break;
		if ((r = read(p[0], buf + n, sizeof(buf) - 1 - n)) <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	close(p[0]);
	if (sscanf(buf, "PORT=%d", &port) != 1 || port <= 0) {
		fprintf(stderr, "endpoint did not start: \"%s\" (see %s)\n",
		    buf, errlog);
		return (-1);
	}
	snprintf(ep_url, sizeof(ep_url), "http://127.0.0.1:%d", port);
	return (0);
}

static void
endpoint_stop(void)
{
	if (ep_pid > 0) {
		kill(ep_pid, SIGTERM);
		waitpid(ep_pid, NULL, 0);
		ep_pid = -1;
	}
}

static size_t
collect(char *data, size_t size, size_t n, void *arg)
{
	FILE	*f = arg;

	return (fwrite(data, size, n, f));
}

/* The admin API, blocking: fine in a test, never in the daemon. */
static json_t *
admin(const char *method, const char *path, const char *fmt, ...)
{
	CURL		*e;
	FILE		*f;
	char		*out = NULL, *body = NULL, url[512];
	size_t		 len = 0;
	json_t		*doc;
	va_list		 ap;
	struct curl_slist *h = NULL;

	if (fmt != NULL) {
		va_start(ap, fmt);
		if (vasprintf(&body, fmt, ap) == -1)
			abort();
		va_end(ap);
	}
	snprintf(url, sizeof(url), "%s%s", ep_url, path);
	f = open_memstream(&out, &len);
	e = curl_easy_init();
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
	if (body != NULL) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	}
	if (curl_easy_perform(e) != CURLE_OK)
		fprintf(stderr, "admin %s %s failed\n", method, path);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	fclose(f);
	doc = json_loads(out != NULL ? out : "", 0, NULL);
	free(out);
	free(body);
	return (doc);
}

static void
admin_do(const char *method, const char *path, const char *fmt, ...)
{
	json_t	*doc;
	va_list	 ap;
	char	*body = NULL;

	if (fmt != NULL) {
		va_start(ap, fmt);
		if (vasprintf(&body, fmt, ap) == -1)
			abort();
		va_end(ap);
	}
	doc = body != NULL ? admin(method, path, "%s", body) :
	    admin(method, path, NULL);
	if (doc == NULL || json_object_get(doc, "error") != NULL)
		fprintf(stderr, "admin %s %s: %s\n", method, path,
		    doc != NULL ? json_string_value(json_object_get(doc,
		    "error")) : "no answer");
	json_decref(doc);
	free(body);
}

/* The EC2 calls logged, optionally only those of one action. */
static json_t *
calls(const char *action)
{
	char	 path[128];
	json_t	*doc, *c;

	snprintf(path, sizeof(path), "/_admin/calls%s%s",
	    action != NULL ? "?action=" : "", action != NULL ? action : "");
	doc = admin("GET", path, NULL);
	c = json_incref(json_object_get(doc, "calls"));
	json_decref(doc);
	return (c != NULL ? c : json_array());
}

static size_t
ncalls(const char *action)
{
	json_t	*c = calls(action);
	size_t	 n = json_array_size(c);

	json_decref(c);
	return (n);
}

/* Seeds instances; returns their ids (a new array). */
static json_t *
seed(const char *fmt, ...)
{
	va_list	 ap;
	char	*body;
	json_t	*doc, *ids;

	va_start(ap, fmt);
	if (vasprintf(&body, fmt, ap) == -1)
		abort();
	va_end(ap);
	doc = admin("POST", "/_admin/instances", "%s", body);
	free(body);
	ids = json_incref(json_object_get(doc, "ids"));
	if (ids == NULL)
		fprintf(stderr, "seed failed: %s\n",
		    json_string_value(json_object_get(doc, "error")));
	json_decref(doc);
	return (ids != NULL ? ids : json_array());
}

/* ------------------------------------------------------------ environment */

static const char *const aws_vars[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_REGION",
	"AWS_DEFAULT_REGION", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	"AWS_EC2_METADATA_DISABLED", NULL
};

/* A clean slate: no AWS environment but the default keys, no IMDS. */
static void
fresh(void)
{
	const char *const *v;

	for (v = aws_vars; *v != NULL; v++)
		unsetenv(*v);
	setenv("HOME", tmpdir, 1);	/* no ~/.aws of the machine's */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_ACCESS_KEY_ID", AKID, 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	setenv("SWITCHD_EC2_BACKOFF_SCALE", "0.01", 1);
	admin_do("POST", "/_admin/reset", NULL);
}

static void
no_env_creds(void)
{
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
}

static char *
write_tmp(const char *name, const char *text)
{
	char	*path;
	FILE	*f;

	if (asprintf(&path, "%s/%s", tmpdir, name) == -1)
		abort();
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fputs(text, f);
	fclose(f);
	return (path);
}

/* A port nothing listens on. */
static int
closed_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd, port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	close(fd);
	return (port);
}

/* ------------------------------------------------------------ running */

struct result {
	int		 done;
	int		 inside;	/* a callback ran inside the call */
	char		*code;
	char		*error;
	json_t		*instances;
	struct ec2_ctx	*free_ctx;	/* freed by the callback */
};

static void
result_clear(struct result *r)
{
	free(r->code);
	free(r->error);
	json_decref(r->instances);
	memset(r, 0, sizeof(*r));
}

static void
done_cb(const char *code, const char *error, void *arg)
{
	struct result	*r = arg;

	r->done++;
	r->inside |= in_call;
	free(r->code);
	free(r->error);
	r->code = code != NULL ? strdup(code) : NULL;
	r->error = error != NULL ? strdup(error) : NULL;
	if (r->free_ctx != NULL) {
		ec2_ctx_free(r->free_ctx);
		r->free_ctx = NULL;
	}
}

static void
inst_cb(json_t *instances, const char *code, const char *error, void *arg)
{
	struct result	*r = arg;

	done_cb(code, error, arg);
	json_decref(r->instances);
	r->instances = instances != NULL ? json_deep_copy(instances) : NULL;
}

static int	 timed_out;

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	timed_out = 1;
}

/* Runs the loop until n results are in, or for ms milliseconds if n is 0. */
static void
run_until(struct result *const *rs, size_t n, int ms)
{
	struct event	*guard = evtimer_new(base, guard_cb, NULL);
	struct timeval	 tv;
	size_t		 i, left;

	tv.tv_sec = ms > 0 ? ms / 1000 : WAIT_S;
	tv.tv_usec = ms > 0 ? (ms % 1000) * 1000 : 0;
	timed_out = 0;
	evtimer_add(guard, &tv);
	for (;;) {
		for (i = 0, left = 0; i < n; i++)
			left += rs[i]->done == 0;
		if ((n > 0 && left == 0) || timed_out)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(guard);
	if (n > 0 && timed_out)
		fprintf(stderr, "  (timed out waiting for EC2)\n");
}

static void
wait1(struct result *r)
{
	run_until(&r, 1, 0);
}

static void
describe(struct ec2_ctx *ctx, json_t *filters, struct result *r)
{
	result_clear(r);
	in_call = 1;
	ec2_describe(ctx, filters, inst_cb, r);
	in_call = 0;
	wait1(r);
	CHECK(r->inside == 0);
}

static void
tag(struct ec2_ctx *ctx, json_t *ids, const char *k, const char *v,
    struct result *r)
{
	const char	**a;
	size_t		 i;

	a = calloc(json_array_size(ids) + 1, sizeof(*a));
	for (i = 0; i < json_array_size(ids); i++)
		a[i] = json_string_value(json_array_get(ids, i));
	result_clear(r);
	in_call = 1;
	ec2_create_tags(ctx, a, json_array_size(ids), k, v, done_cb, r);
	in_call = 0;
	free(a);
	wait1(r);
	CHECK(r->inside == 0);
}

static struct ec2_ctx *
ctx_here(void)
{
	return (ec2_ctx_new("us-east-1", ep_url));
}

static const char *
tag_of(json_t *inst, const char *key)
{
	return (json_string_value(json_object_get(json_object_get(inst,
	    "tags"), key)));
}

/* ----------------------------------------------------------- the tests */

static void
test_ini(void)
{
	const char	*text =
	    "# comment\r\n"
	    "[default]\n"
	    "aws_access_key_id = AKDEFAULT\n"
	    "aws_secret_access_key=SKDEFAULT \n"
	    "\n"
	    "[other]\r\n"
	    "  ; indented comment\n"
	    "AWS_Access_Key_Id =  AKOTHER\r\n"
	    "aws_secret_access_key = a=b/c+d\n"
	    "s3 =\n"
	    "  aws_access_key_id = NESTED\n"
	    "[profile   spaced  name ]\n"
	    "region = eu-west-1\n"
	    "[broken\n"
	    "aws_access_key_id = LOST\n";
	json_t	*s;

	s = ec2_ini_section(text, "default");
	CHECK_STR(json_string_value(json_object_get(s, "aws_access_key_id")),
	    "AKDEFAULT");
	CHECK_STR(json_string_value(json_object_get(s,
	    "aws_secret_access_key")), "SKDEFAULT");
	json_decref(s);

	s = ec2_ini_section(text, "other");
	CHECK_STR(json_string_value(json_object_get(s, "aws_access_key_id")),
	    "AKOTHER");
	CHECK_STR(json_string_value(json_object_get(s,
	    "aws_secret_access_key")), "a=b/c+d");
	CHECK_STR(json_string_value(json_object_get(s, "s3")), "");
	json_decref(s);

	s = ec2_ini_section(text, "profile spaced name");
	CHECK_STR(json_string_value(json_object_get(s, "region")),
	    "eu-west-1");
	CHECK(json_object_get(s, "aws_access_key_id") == NULL);
	json_decref(s);

	CHECK(ec2_ini_section(text, "missing") == NULL);
	CHECK(ec2_ini_section("", "default") == NULL);
	s = ec2_ini_section("[empty]\n", "empty");
	CHECK(s != NULL && json_object_size(s) == 0);
	json_decref(s);
}

static void
test_xml(void)
{
	/* A real reply has <item> and <privateIpAddress> at many levels. */
	const char	*di =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/"
	    "2016-11-15/\"><requestId>rid-1</requestId><reservationSet>"
	    "<item><reservationId>r-1</reservationId><groupSet><item>"
	    "<groupId>sg-1</groupId></item></groupSet><instancesSet>"
	    "<item><instanceId>i-0123456789abcdef0</instanceId>"
	    "<instanceState><code>16</code><name>running</name>"
	    "</instanceState><privateIpAddress>10.0.0.5</privateIpAddress>"
	    "<networkInterfaceSet><item><privateIpAddress>10.9.9.9"
	    "</privateIpAddress><privateIpAddressesSet><item>"
	    "<privateIpAddress>10.8.8.8</privateIpAddress></item>"
	    "</privateIpAddressesSet><tagSet><item><key>nic</key><value>x"
	    "</value></item></tagSet></item></networkInterfaceSet>"
	    "<tagSet><item><key>switchd:pool</key><value>blue</value></item>"
	    "<item><key>empty</key><value/></item><item><key>amp</key>"
	    "<value>a &amp; b</value></item></tagSet></item>"
	    "<item><instanceId>i-0123456789abcdef1</instanceId>"
	    "<instanceState><name>terminated</name></instanceState></item>"
	    "</instancesSet></item></reservationSet>"
	    "<nextToken>tok==</nextToken></DescribeInstancesResponse>";
	const char	*err1 =
	    "<?xml version=\"1.0\"?><Response><Errors><Error><Code>"
	    "RequestLimitExceeded</Code><Message>Request limit exceeded."
	    "</Message></Error></Errors><RequestID>rid-2</RequestID>"
	    "</Response>";
	const char	*err2 =
	    "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
	    "<Message>Rate exceeded</Message></Error><RequestId>rid-3"
	    "</RequestId></ErrorResponse>";
	const char	*bomb =
	    "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaa\">]>"
	    "<Response>&a;</Response>";
	json_t		*r, *insts, *i0, *i1;

	r = ec2_xml_reply(di, strlen(di));
	CHECK(r != NULL);
	CHECK_STR(json_string_value(json_object_get(r, "root")),
	    "DescribeInstancesResponse");
	CHECK_STR(json_string_value(json_object_get(r, "request_id")),
	    "rid-1");
	CHECK_STR(json_string_value(json_object_get(r, "next_token")),
	    "tok==");
	insts = json_object_get(r, "instances");
	CHECK_INT(json_array_size(insts), 2);
	i0 = json_array_get(insts, 0);
	i1 = json_array_get(insts, 1);
	CHECK_STR(json_string_value(json_object_get(i0, "id")),
	    "i-0123456789abcdef0");
	CHECK_STR(json_string_value(json_object_get(i0, "private_ip")),
	    "10.0.0.5");
	CHECK_STR(json_string_value(json_object_get(i0, "state")), "running");
	CHECK_INT(json_object_size(json_object_get(i0, "tags")), 3);
	CHECK_STR(tag_of(i0, "switchd:pool"), "blue");
	CHECK_STR(tag_of(i0, "empty"), "");
	CHECK_STR(tag_of(i0, "amp"), "a & b");
	CHECK(tag_of(i0, "nic") == NULL);
	CHECK(json_is_null(json_object_get(i1, "private_ip")));
	CHECK_STR(json_string_value(json_object_get(i1, "state")),
	    "terminated");
	json_decref(r);

	r = ec2_xml_reply(err1, strlen(err1));
	CHECK_STR(json_string_value(json_object_get(r, "code")),
	    "RequestLimitExceeded");
	CHECK_STR(json_string_value(json_object_get(r, "message")),
	    "Request limit exceeded.");
	CHECK_STR(json_string_value(json_object_get(r, "request_id")),
	    "rid-2");
	json_decref(r);

	r = ec2_xml_reply(err2, strlen(err2));
	CHECK_STR(json_string_value(json_object_get(r, "code")), "Throttling");
	CHECK_STR(json_string_value(json_object_get(r, "request_id")),
	    "rid-3");
	json_decref(r);

	CHECK(ec2_xml_reply(bomb, strlen(bomb)) == NULL);
	CHECK(ec2_xml_reply("Service Unavailable", 19) == NULL);
	CHECK(ec2_xml_reply("<a><b></a>", 10) == NULL);
	CHECK(ec2_xml_reply("", 0) == NULL);
}

static void
test_create_tags_two(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	json_t		*ids, *all, *c;

	fresh();
	ids = seed("{\"count\": 2, \"tags\": {\"switchd:pool\": \"blue\"}}");
	ctx = ctx_here();
	tag(ctx, ids, "group", "hot & ready", &r);
	CHECK(r.code == NULL);
	c = calls("CreateTags");
	CHECK_INT(json_array_size(c), 1);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(c, 0),
	    "status")), 200);
	/* If the very first call fails, the endpoint's reason says why. */
	if (json_is_string(json_object_get(json_array_get(c, 0), "detail")))
		fprintf(stderr, "  endpoint: %s\n", json_string_value(
		    json_object_get(json_array_get(c, 0), "detail")));
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0),
	    "access_key")), AKID);
	json_decref(c);
	all = admin("GET", "/_admin/instances", NULL);
	CHECK_STR(tag_of(json_array_get(json_object_get(all, "instances"), 0),
	    "group"), "hot & ready");
	CHECK_STR(tag_of(json_array_get(json_object_get(all, "instances"), 1),
	    "group"), "hot & ready");
	json_decref(all);
	/* No ids: success without a call. */
	tag(ctx, NULL, "group", "hot", &r);
	CHECK(r.code == NULL && r.done == 1);
	CHECK_INT(ncalls("CreateTags"), 1);
	ec2_ctx_free(ctx);
	json_decref(ids);
	result_clear(&r);
}

static size_t
resource_ids(json_t *call)
{
	const char	*k;
	json_t		*v;
	size_t		 n = 0;

	json_object_foreach(json_object_get(call, "params"), k, v)
		n += strncmp(k, "ResourceId.", 11) == 0;
	return (n);
}

static void
test_create_tags_batches(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	json_t		*ids, *all, *c, *inst;
	size_t		 i, tagged = 0;

	fresh();
	ids = seed("{\"count\": 2500}");
	CHECK_INT(json_array_size(ids), 2500);
	ctx = ctx_here();
	tag(ctx, ids, "group", "cold", &r);
	CHECK(r.code == NULL);
	c = calls("CreateTags");
	CHECK_INT(json_array_size(c), 3);
	CHECK_INT(resource_ids(json_array_get(c, 0)), 1000);
	CHECK_INT(resource_ids(json_array_get(c, 1)), 1000);
	CHECK_INT(resource_ids(json_array_get(c, 2)), 500);
	json_decref(c);
	all = admin("GET", "/_admin/instances", NULL);
	json_array_foreach(json_object_get(all, "instances"), i, inst)
		tagged += tag_of(inst, "group") != NULL &&
		    strcmp(tag_of(inst, "group"), "cold") == 0;
	CHECK_INT(tagged, 2500);
	json_decref(all);

	/* The second batch fails: the message says what was and was not. */
	admin_do("POST", "/_admin/faults", "{\"action\": \"CreateTags\", "
	    "\"kind\": \"error\", \"status\": 400, \"code\": "
	    "\"InvalidParameterValue\", \"skip\": 1, \"count\": 1}");
	tag(ctx, ids, "group", "hot", &r);
	CHECK_STR(r.code, "InvalidParameterValue");
	CHECK(r.error != NULL && strstr(r.error, "1-1000 of 2500 tagged") !=
	    NULL);
	CHECK_INT(ncalls("CreateTags"), 5);
	ec2_ctx_free(ctx);
	json_decref(ids);
	result_clear(&r);
}

static void
test_create_tags_eventual_consistency(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	json_t		*ids, *c;

	fresh();
	ids = seed("{\"count\": 1, \"visible_after_calls\": 1}");
	ctx = ctx_here();
	tag(ctx, ids, "group", "hot", &r);
	CHECK(r.code == NULL);
	c = calls("CreateTags");
	CHECK_INT(json_array_size(c), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0),
	    "code")), "InvalidInstanceID.NotFound");
	json_decref(c);
	json_decref(ids);

	/* A malformed id is not worth a retry. */
	ids = json_pack("[s]", "i-nothex");
	tag(ctx, ids, "group", "hot", &r);
	CHECK_STR(r.code, "InvalidInstanceID.Malformed");
	CHECK_INT(ncalls("CreateTags"), 3);
	json_decref(ids);
	ec2_ctx_free(ctx);
	result_clear(&r);
}

static void
test_describe_pages(void)
{
	static const int	 counts[] = { 0, 1, 999, 1000, 1001, 5000 };
	static const int	 pages[] = { 1, 1, 1, 1, 2, 5 };
	struct ec2_ctx		*ctx;
	struct result		 r = { 0 };
	json_t			*ids, *c, *seen;
	size_t			 i, k;

	fresh();
	ctx = ctx_here();
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		admin_do("DELETE", "/_admin/instances", NULL);
		if (counts[i] > 0) {
			ids = seed("{\"count\": %d, \"tags\": "
			    "{\"switchd:pool\": \"green\"}}", counts[i]);
			json_decref(ids);
		}
		admin_do("POST", "/_admin/reset_calls", NULL);
		describe(ctx, NULL, &r);
		CHECK(r.code == NULL);
		CHECK_INT(json_array_size(r.instances), counts[i]);
		c = calls("DescribeInstances");
		CHECK_INT(json_array_size(c), pages[i]);
		CHECK_STR(json_string_value(json_object_get(json_object_get(
		    json_array_get(c, 0), "params"), "MaxResults")), "1000");
		json_decref(c);
		/* Every instance once. */
		seen = json_object();
		for (k = 0; k < json_array_size(r.instances); k++)
			json_object_set(seen, json_string_value(
			    json_object_get(json_array_get(r.instances, k),
			    "id")), json_true());
		CHECK_INT(json_object_size(seen), counts[i]);
		json_decref(seen);
		if (counts[i] == 1) {
			CHECK_STR(tag_of(json_array_get(r.instances, 0),
			    "switchd:pool"), "green");
			CHECK_STR(json_string_value(json_object_get(
			    json_array_get(r.instances, 0), "state")),
			    "running");
			CHECK(json_is_string(json_object_get(
			    json_array_get(r.instances, 0), "private_ip")));
		}
	}
	ec2_ctx_free(ctx);
	result_clear(&r);
}

static void
test_describe_filters(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	json_t		*ids, *f, *inst;
	char		*s;
	size_t		 i;

	fresh();
	json_decref(seed("{\"count\": 3, \"tags\": {\"switchd:pool\": "
	    "\"blue\", \"Name\": \"web & co/1+1=2 ü\"}}"));
	json_decref(seed("{\"count\": 2, \"tags\": {\"switchd:pool\": "
	    "\"green\"}}"));
	ids = seed("{\"count\": 1, \"tags\": {\"switchd:pool\": \"blue\"}}");
	s = json_dumps(ids, 0);
	admin_do("POST", "/_admin/terminate", "{\"ids\": %s}", s);
	free(s);
	json_decref(ids);
	json_decref(seed("{\"count\": 1}"));
	ctx = ctx_here();

	f = json_pack("{s:[s], s:[s]}", "tag:switchd:pool", "blue",
	    "instance-state-name", "running");
	describe(ctx, f, &r);
	json_decref(f);
	CHECK(r.code == NULL);
	CHECK_INT(json_array_size(r.instances), 3);
	json_array_foreach(r.instances, i, inst) {
		CHECK_STR(tag_of(inst, "Name"), "web & co/1+1=2 ü");
		CHECK_STR(json_string_value(json_object_get(inst, "state")),
		    "running");
	}

	f = json_pack("{s:[s,s], s:s}", "tag:switchd:pool", "blue", "green",
	    "instance-state-name", "running");
	describe(ctx, f, &r);
	json_decref(f);
	CHECK_INT(json_array_size(r.instances), 5);

	/* Values are sent encoded, and EC2's wildcards still work. */
	f = json_pack("{s:[s]}", "tag:Name", "web & co/1+1=2*");
	describe(ctx, f, &r);
	json_decref(f);
	CHECK_INT(json_array_size(r.instances), 3);

	/* The terminated one is there without a state filter. */
	f = json_pack("{s:[s]}", "tag:switchd:pool", "blue");
	describe(ctx, f, &r);
	json_decref(f);
	CHECK_INT(json_array_size(r.instances), 4);

	/* A bad filter is refused before any call, from the loop. */
	admin_do("POST", "/_admin/reset_calls", NULL);
	f = json_pack("{s:[i]}", "tag:switchd:pool", 1);
	describe(ctx, f, &r);
	json_decref(f);
	CHECK_STR(r.code, "InvalidParameterValue");
	CHECK(r.instances == NULL);
	CHECK_INT(ncalls(NULL), 0);

	/* No context (ec2_ctx_new failed): still one callback. */
	describe(NULL, NULL, &r);
	CHECK_STR(r.code, "InvalidParameterValue");
	CHECK_INT(r.done, 1);
	tag(NULL, NULL, "k", "v", &r);
	CHECK_STR(r.code, "InvalidParameterValue");

	/* EC2's own refusal of a filter comes back as it is. */
	f = json_pack("{s:[s]}", "no-such-filter", "x");
	describe(ctx, f, &r);
	json_decref(f);
	CHECK_STR(r.code, "InvalidParameterValue");
	CHECK_INT(ncalls(NULL), 1);
	ec2_ctx_free(ctx);
	result_clear(&r);
}

static void
fault(const char *kind, int count)
{
	admin_do("POST", "/_admin/faults", "{\"action\": \"*\", \"kind\": "
	    "\"%s\", \"count\": %d}", kind, count);
}

static void
test_throttle(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	json_t		*c;

	fresh();
	json_decref(seed("{\"count\": 3}"));
	ctx = ctx_here();
	CHECK_INT(ec2_ctx_retry_quota(ctx), 500);

	fault("throttle", 2);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	CHECK_INT(json_array_size(r.instances), 3);
	c = calls("DescribeInstances");
	CHECK_INT(json_array_size(c), 3);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(c, 0),
	    "status")), 503);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(c, 2),
	    "status")), 200);
	json_decref(c);
	/* Two retries cost 5 each; the success refunds the last one. */
	CHECK_INT(ec2_ctx_retry_quota(ctx), 495);

	admin_do("POST", "/_admin/reset_calls", NULL);
	fault("throttle", 5);
	describe(ctx, NULL, &r);
	CHECK_STR(r.code, "RequestLimitExceeded");
	CHECK(r.instances == NULL);
	CHECK(r.error != NULL && strstr(r.error, "request ID ") != NULL &&
	    strstr(r.error, "3 attempts") != NULL);
	CHECK_INT(ncalls(NULL), 3);
	CHECK_INT(ec2_ctx_retry_quota(ctx), 485);
	admin_do("DELETE", "/_admin/faults", NULL);

	/* A success without retries puts one token back. */
	describe(ctx, NULL, &r);
	CHECK_INT(ec2_ctx_retry_quota(ctx), 486);
	ec2_ctx_free(ctx);
	result_clear(&r);
}

static void
test_server_errors(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	json_t		*c;

	fresh();
	json_decref(seed("{\"count\": 1}"));
	ctx = ctx_here();

	fault("internal", 1);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	CHECK_INT(ncalls(NULL), 2);

	admin_do("POST", "/_admin/reset_calls", NULL);
	fault("unavailable", 2);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	CHECK_INT(ncalls(NULL), 3);

	/* 500 -5 +5 (internal), -5 -5 +5 (unavailable). */
	CHECK_INT(ec2_ctx_retry_quota(ctx), 495);

	/*
	 * A dropped connection is a connection error, retried.  Two drops:
	 * curl itself retries once, quietly, when a reused connection dies
	 * before answering, so one drop may never reach us.
	 */
	admin_do("POST", "/_admin/reset_calls", NULL);
	fault("drop", 2);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	c = calls(NULL);
	CHECK_INT(json_array_size(c), 3);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(c, 0),
	    "status")), 0);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(c, 2),
	    "status")), 200);
	json_decref(c);

	/* Injected AuthFailure: never retried. */
	admin_do("POST", "/_admin/reset_calls", NULL);
	fault("auth", 1);
	describe(ctx, NULL, &r);
	CHECK_STR(r.code, "AuthFailure");
	CHECK_INT(ncalls(NULL), 1);
	ec2_ctx_free(ctx);
	result_clear(&r);
}

static void
test_wrong_secret(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	json_t		*c;

	fresh();
	setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret", 1);
	ctx = ctx_here();
	describe(ctx, NULL, &r);
	CHECK_STR(r.code, "AuthFailure");
	CHECK(r.error != NULL && strstr(r.error,
	    "not able to validate") != NULL);
	c = calls(NULL);
	CHECK_INT(json_array_size(c), 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0),
	    "detail")), "signature mismatch (wrong secret key or canonical "
	    "request)");
	json_decref(c);
	ec2_ctx_free(ctx);
	result_clear(&r);
}

static void
test_dead_endpoint(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	char		 url[64];

	fresh();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed_port());
	ctx = ec2_ctx_new("us-east-1", url);
	describe(ctx, NULL, &r);
	CHECK_STR(r.code, "ConnectionError");
	CHECK(r.error != NULL && strstr(r.error, "3 attempts") != NULL);
	/* Connection errors cost 10 a retry. */
	CHECK_INT(ec2_ctx_retry_quota(ctx), 480);
	ec2_ctx_free(ctx);
	result_clear(&r);
}

static void
test_retry_quota(void)
{
	struct ec2_ctx	*ctx;
	struct result	 rs[51], *p[51];
	size_t		 i;

	fresh();
	ctx = ctx_here();
	fault("throttle", -1);
	/*
	 * 50 operations with two retries each empty the bucket of 500.  One
	 * after another: 50 connections at once would overflow the Python
	 * server's listen backlog and turn throttles into connection errors.
	 */
	memset(rs, 0, sizeof(rs));
	for (i = 0; i < 50; i++) {
		p[i] = &rs[i];
		ec2_describe(ctx, NULL, inst_cb, &rs[i]);
		run_until(&p[i], 1, 0);
	}
	CHECK_INT(ec2_ctx_retry_quota(ctx), 0);
	CHECK_INT(ncalls(NULL), 150);
	for (i = 0; i < 50; i++) {
		CHECK_STR(rs[i].code, "RequestLimitExceeded");
		result_clear(&rs[i]);
	}
	/* Now one attempt only. */
	p[50] = &rs[50];
	ec2_describe(ctx, NULL, inst_cb, &rs[50]);
	run_until(&p[50], 1, 0);
	CHECK_STR(rs[50].code, "RequestLimitExceeded");
	CHECK(rs[50].error != NULL && strstr(rs[50].error,
	    "retry quota exhausted") != NULL);
	CHECK_INT(ncalls(NULL), 151);
	result_clear(&rs[50]);
	admin_do("DELETE", "/_admin/faults", NULL);
	ec2_ctx_free(ctx);
}

/* A proxy in front of EC2 that answers pages that are not EC2's XML. */
static int	proxy_hits;

static void
proxy_serve(struct evhttp_request *req, void *arg)
{
	struct evbuffer	*b = evbuffer_new();
	const char	*uri = evhttp_request_get_uri(req);

	(void)arg;
	proxy_hits++;
	if (strcmp(uri, "/503") == 0) {
		evbuffer_add_printf(b, "<html><body>503 Service Unavailable"
		    "</body></html>");
		evhttp_send_reply(req, 503, "Service Unavailable", b);
	} else if (strcmp(uri, "/502") == 0) {
		evbuffer_add_printf(b, "Bad gateway & stuff <");
		evhttp_send_reply(req, 502, "Bad Gateway", b);
	} else if (strcmp(uri, "/500") == 0)
		evhttp_send_reply(req, 500, "Internal Server Error", b);
	else if (strcmp(uri, "/endless") == 0) {
		/* A page with no instance and a new NextToken, every time. */
		evbuffer_add_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		    "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/"
		    "2016-11-15/\"><requestId>r%d</requestId><reservationSet/>"
		    "<nextToken>token-%d</nextToken></DescribeInstancesResponse>",
		    proxy_hits, proxy_hits);
		evhttp_send_reply(req, 200, "OK", b);
	}
	else {
		evbuffer_add_printf(b, "not here");
		evhttp_send_reply(req, 404, "Not Found", b);
	}
	evbuffer_free(b);
}

static void
proxy_case(int port, const char *path, const char *code, int hits)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	char		 url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	ctx = ec2_ctx_new("us-east-1", url);
	proxy_hits = 0;
	describe(ctx, NULL, &r);
	CHECK_STR(r.code, code);
	CHECK_INT(proxy_hits, hits);
	ec2_ctx_free(ctx);
	result_clear(&r);
}

static void
test_not_ec2_replies(void)
{
	struct evhttp		*srv;
	struct evhttp_bound_socket *bound;
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);

	fresh();
	srv = evhttp_new(base);
	evhttp_set_gencb(srv, proxy_serve, NULL);
	bound = evhttp_bind_socket_with_handle(srv, "127.0.0.1", 0);
	CHECK(bound != NULL);
	if (bound == NULL)
		return;
	getsockname(evhttp_bound_socket_get_fd(bound),
	    (struct sockaddr *)&sin, &len);
	proxy_case(ntohs(sin.sin_port), "/503", "ServiceUnavailable", 3);
	proxy_case(ntohs(sin.sin_port), "/500", "InternalError", 3);
	proxy_case(ntohs(sin.sin_port), "/502", "InternalError", 3);
	proxy_case(ntohs(sin.sin_port), "/404", "UnexpectedResponse", 1);
	/* NextTokens that never end: bounded, not a loop for ever. */
	proxy_case(ntohs(sin.sin_port), "/endless", "UnexpectedResponse", 200);
	evhttp_free(srv);
}

static void
test_creds_env_token(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	json_t		*c;

	fresh();
	admin_do("POST", "/_admin/credentials", "{\"access_key\": "
	    "\"ASIASESSIONTEST\", \"secret_key\": \"sess/secret+key\", "
	    "\"token\": \"FwoGZXIvYXdzE+token/with==\"}");
	setenv("AWS_ACCESS_KEY_ID", "ASIASESSIONTEST", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "sess/secret+key", 1);
	setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzE+token/with==", 1);
	ctx = ctx_here();
	CHECK_STR(ec2_ctx_creds_source(ctx), "environment");
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	c = calls(NULL);
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0),
	    "access_key")), "ASIASESSIONTEST");
	json_decref(c);
	ec2_ctx_free(ctx);

	/* Without the token header the same keys are refused. */
	unsetenv("AWS_SESSION_TOKEN");
	ctx = ctx_here();
	describe(ctx, NULL, &r);
	CHECK_STR(r.code, "AuthFailure");
	ec2_ctx_free(ctx);
	result_clear(&r);
}

static void
test_creds_files(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	char		*cred, *conf;
	json_t		*c;

	fresh();
	no_env_creds();
	admin_do("POST", "/_admin/credentials", "{\"access_key\": "
	    "\"AKIDOTHER\", \"secret_key\": \"other/secret\"}");
	admin_do("POST", "/_admin/credentials", "{\"access_key\": "
	    "\"AKIDCONFIG\", \"secret_key\": \"config+secret\"}");
	cred = write_tmp("credentials",
	    "[default]\naws_access_key_id = " AKID "\n"
	    "aws_secret_access_key = " SECRET "\n\n"
	    "[other]\naws_access_key_id = AKIDOTHER\n"
	    "aws_secret_access_key = other/secret\n");
	conf = write_tmp("config",
	    "[default]\nregion = us-east-1\n"
	    "[profile cfg]\naws_access_key_id = AKIDCONFIG\n"
	    "aws_secret_access_key = config+secret\n"
	    "[profile other]\naws_access_key_id = AKIDWRONG\n"
	    "aws_secret_access_key = wrong\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	setenv("AWS_CONFIG_FILE", conf, 1);

	/* The credentials file wins over the config file for a profile. */
	setenv("AWS_PROFILE", "other", 1);
	ctx = ctx_here();
	CHECK(strstr(ec2_ctx_creds_source(ctx), "[other]") != NULL);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	ec2_ctx_free(ctx);

	setenv("AWS_PROFILE", "cfg", 1);
	ctx = ctx_here();
	CHECK(strstr(ec2_ctx_creds_source(ctx), "[profile cfg]") != NULL);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	ec2_ctx_free(ctx);

	unsetenv("AWS_PROFILE");
	ctx = ctx_here();
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	ec2_ctx_free(ctx);

	c = calls(NULL);
	CHECK_INT(json_array_size(c), 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0),
	    "access_key")), "AKIDOTHER");
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 1),
	    "access_key")), "AKIDCONFIG");
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 2),
	    "access_key")), AKID);
	json_decref(c);

	/* The environment wins over the files. */
	setenv("AWS_ACCESS_KEY_ID", "AKIDCONFIG", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "config+secret", 1);
	ctx = ctx_here();
	CHECK_STR(ec2_ctx_creds_source(ctx), "environment");
	ec2_ctx_free(ctx);
	no_env_creds();

	/* A named profile that does not exist is an error, not IMDS. */
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep_url, 1);
	setenv("AWS_PROFILE", "nope", 1);
	admin_do("POST", "/_admin/reset_calls", NULL);
	ctx = ctx_here();
	describe(ctx, NULL, &r);
	CHECK_STR(r.code, "NoCredentials");
	CHECK(r.error != NULL && strstr(r.error, "AWS_PROFILE=nope") != NULL);
	CHECK_INT(ncalls(NULL), 0);
	ec2_ctx_free(ctx);

	/* The files are read by ec2_ctx_new, not by every call. */
	unsetenv("AWS_PROFILE");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	ctx = ctx_here();
	unlink(cred);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	ec2_ctx_free(ctx);
	unlink(conf);
	free(cred);
	free(conf);
	result_clear(&r);
}

/* Keys rotated in the credentials file under a running daemon are used. */
static void
test_creds_rotation(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	char		*cred;
	json_t		*c;

	fresh();
	no_env_creds();
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_CONFIG_FILE");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	admin_do("POST", "/_admin/credentials", "{\"access_key\": "
	    "\"AKIDROTATED1\", \"secret_key\": \"rotated/one\"}");
	admin_do("POST", "/_admin/credentials", "{\"access_key\": "
	    "\"AKIDROTATED22\", \"secret_key\": \"rotated/two2\"}");
	cred = write_tmp("rotating", "[default]\naws_access_key_id = AKIDROTATED1\n"
	    "aws_secret_access_key = rotated/one\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	ctx = ctx_here();
	admin_do("POST", "/_admin/reset_calls", NULL);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	/* Rewritten in place (another size, so even a coarse mtime shows it). */
	free(write_tmp("rotating", "[default]\naws_access_key_id = AKIDROTATED22\n"
	    "aws_secret_access_key = rotated/two2\n"));
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	CHECK(strstr(ec2_ctx_creds_source(ctx), "rotating") != NULL);
	c = calls(NULL);
	CHECK_INT(json_array_size(c), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0),
	    "access_key")), "AKIDROTATED1");
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 1),
	    "access_key")), "AKIDROTATED22");
	json_decref(c);
	ec2_ctx_free(ctx);
	unlink(cred);
	free(cred);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	result_clear(&r);
}

static void
test_creds_none(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	char		 url[64];

	fresh();
	no_env_creds();
	ctx = ctx_here();
	result_clear(&r);
	in_call = 1;
	ec2_describe(ctx, NULL, inst_cb, &r);
	in_call = 0;
	CHECK(r.done == 0);
	wait1(&r);
	CHECK_STR(r.code, "NoCredentials");
	CHECK(r.error != NULL && strstr(r.error, "AWS_ACCESS_KEY_ID") != NULL &&
	    strstr(r.error, "AWS_EC2_METADATA_DISABLED") != NULL);
	ec2_ctx_free(ctx);

	/* IMDS unreachable. */
	unsetenv("AWS_EC2_METADATA_DISABLED");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port());
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	ctx = ctx_here();
	describe(ctx, NULL, &r);
	CHECK_STR(r.code, "NoCredentials");
	CHECK(r.error != NULL && strstr(r.error, "IMDS") != NULL);
	CHECK_INT(ncalls(NULL), 0);
	ec2_ctx_free(ctx);
	result_clear(&r);
}

static size_t
imds_calls(void)
{
	json_t	*doc = admin("GET", "/_admin/imds", NULL);
	size_t	 n = json_array_size(json_object_get(doc, "calls"));

	json_decref(doc);
	return (n);
}

static void
test_creds_imds(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	json_t		*c, *doc;
	const char	*k1, *k2;
	char		 url[128];

	fresh();
	no_env_creds();
	unsetenv("AWS_EC2_METADATA_DISABLED");
	snprintf(url, sizeof(url), "%s/", ep_url);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);

	/* Keys that expire within five minutes are fetched again each time. */
	admin_do("POST", "/_admin/imds", "{\"expire_in_s\": 120}");
	ctx = ctx_here();
	CHECK(strstr(ec2_ctx_creds_source(ctx), "IMDS") != NULL);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	doc = admin("GET", "/_admin/imds", NULL);
	c = json_object_get(doc, "calls");
	CHECK_INT(json_array_size(c), 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0),
	    "method")), "PUT");
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0),
	    "path")), "/latest/api/token");
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 2),
	    "path")), "/latest/meta-data/iam/security-credentials/"
	    "switchd-test-role");
	CHECK_INT(json_integer_value(json_object_get(json_array_get(c, 2),
	    "status")), 200);
	json_decref(doc);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	CHECK_INT(imds_calls(), 6);
	c = calls(NULL);
	CHECK_INT(json_array_size(c), 2);
	k1 = json_string_value(json_object_get(json_array_get(c, 0),
	    "access_key"));
	k2 = json_string_value(json_object_get(json_array_get(c, 1),
	    "access_key"));
	CHECK(k1 != NULL && k2 != NULL && strncmp(k1, "ASIA", 4) == 0 &&
	    strcmp(k1, k2) != 0);
	json_decref(c);
	ec2_ctx_free(ctx);

	/* Long-lived keys are cached ... */
	admin_do("POST", "/_admin/imds", "{\"expire_in_s\": 21600}");
	admin_do("POST", "/_admin/reset_calls", NULL);
	ctx = ctx_here();
	describe(ctx, NULL, &r);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	CHECK_INT(imds_calls(), 3);
	CHECK_INT(ncalls(NULL), 2);

	/* ... until EC2 refuses them: then fetched again, once. */
	admin_do("POST", "/_admin/imds", "{\"expire_issued\": true}");
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	CHECK_INT(imds_calls(), 6);
	c = calls(NULL);
	CHECK_INT(json_array_size(c), 4);
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 2),
	    "code")), "RequestExpired");
	CHECK_INT(json_integer_value(json_object_get(json_array_get(c, 3),
	    "status")), 200);
	json_decref(c);

	ec2_ctx_free(ctx);

	/* Two operations at once share one fetch. */
	admin_do("POST", "/_admin/reset_calls", NULL);
	ctx = ctx_here();
	{
		struct result	 r2 = { 0 }, *both[2] = { &r, &r2 };

		result_clear(&r);
		ec2_describe(ctx, NULL, inst_cb, &r);
		ec2_describe(ctx, NULL, inst_cb, &r2);
		run_until(both, 2, 0);
		CHECK(r.code == NULL && r2.code == NULL);
		CHECK_INT(imds_calls(), 3);
		CHECK_INT(ncalls(NULL), 2);
		result_clear(&r2);
	}
	ec2_ctx_free(ctx);
	result_clear(&r);
}

static void
test_endpoint_precedence(void)
{
	struct ec2_ctx	*ctx;
	struct result	 r = { 0 };
	char		 dead[64];

	fresh();
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", closed_port());

	ctx = ec2_ctx_new("eu-west-1", NULL);
	CHECK_STR(ec2_ctx_endpoint(ctx), "https://ec2.eu-west-1.amazonaws.com");
	ec2_ctx_free(ctx);

	setenv("AWS_ENDPOINT_URL", ep_url, 1);
	ctx = ec2_ctx_new("us-east-1", NULL);
	CHECK_STR(ec2_ctx_endpoint(ctx), ep_url);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	ec2_ctx_free(ctx);

	setenv("AWS_ENDPOINT_URL", dead, 1);
	setenv("AWS_ENDPOINT_URL_EC2", ep_url, 1);
	ctx = ec2_ctx_new("us-east-1", NULL);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	ec2_ctx_free(ctx);

	setenv("AWS_ENDPOINT_URL_EC2", dead, 1);
	ctx = ec2_ctx_new("us-east-1", ep_url);
	describe(ctx, NULL, &r);
	CHECK(r.code == NULL);
	ec2_ctx_free(ctx);
	CHECK_INT(ncalls(NULL), 3);

	/* The region signs the request: a wrong one is refused. */
	ctx = ec2_ctx_new("eu-west-1", ep_url);
	describe(ctx, NULL, &r);
	CHECK_STR(r.code, "AuthFailure");
	ec2_ctx_free(ctx);
	CHECK(ec2_ctx_new("us-east-1:x", ep_url) == NULL);
	result_clear(&r);
}

static void
test_cancel(void)
{
	struct ec2_ctx	*ctx, *ctx2;
	struct result	 r = { 0 }, r2 = { 0 };
	int		 i;

	fresh();
	/* Freed with a request in flight: no callback, no leak. */
	admin_do("POST", "/_admin/faults", "{\"kind\": \"slow\", "
	    "\"delay_ms\": 300, \"count\": 1}");
	ctx = ctx_here();
	ec2_describe(ctx, NULL, inst_cb, &r);
	run_until(NULL, 0, 50);
	ec2_ctx_free(ctx);
	run_until(NULL, 0, 500);
	CHECK(r.done == 0);

	/* Freed while waiting to retry (up to 1000 s at this scale). */
	admin_do("POST", "/_admin/reset_calls", NULL);
	setenv("SWITCHD_EC2_BACKOFF_SCALE", "1000", 1);
	fault("throttle", -1);
	ctx = ctx_here();
	ec2_describe(ctx, NULL, inst_cb, &r);
	run_until(NULL, 0, 100);
	CHECK(ncalls(NULL) >= 1);
	ec2_ctx_free(ctx);
	run_until(NULL, 0, 200);
	CHECK(r.done == 0);
	setenv("SWITCHD_EC2_BACKOFF_SCALE", "0.01", 1);
	admin_do("DELETE", "/_admin/faults", NULL);
	result_clear(&r);

	/*
	 * A callback that frees its context cancels the other operation:
	 * whichever answer comes first, the other is never called back.
	 */
	admin_do("POST", "/_admin/faults", "{\"kind\": \"slow\", "
	    "\"delay_ms\": 300, \"count\": 1, \"skip\": 1}");
	ctx = ctx_here();
	r.free_ctx = r2.free_ctx = ctx;
	ec2_describe(ctx, NULL, inst_cb, &r);
	ec2_describe(ctx, NULL, inst_cb, &r2);
	for (i = 0; i < WAIT_S * 20 && r.done + r2.done == 0; i++)
		run_until(NULL, 0, 50);
	run_until(NULL, 0, 500);
	CHECK_INT(r.done + r2.done, 1);
	admin_do("DELETE", "/_admin/faults", NULL);
	result_clear(&r2);

	/* ec2_shutdown: nothing more is called back; then it starts again. */
	ctx = ctx_here();
	ctx2 = ctx_here();
	result_clear(&r);
	ec2_describe(ctx, NULL, inst_cb, &r);
	ec2_describe(ctx2, NULL, inst_cb, &r2);
	ec2_shutdown();
	run_until(NULL, 0, 200);
	CHECK(r.done == 0 && r2.done == 0);
	ec2_describe(ctx, NULL, inst_cb, &r);	/* dropped */
	CHECK(ec2_init(base) == 0);
	ec2_describe(ctx, NULL, inst_cb, &r);
	wait1(&r);
	CHECK(r.done == 1 && r.code == NULL);
	ec2_ctx_free(ctx);
	ec2_ctx_free(ctx2);
	result_clear(&r);
	result_clear(&r2);
}

int
main(void)
{
	char	 errlog[128];
	int	 rc;

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-ec2.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return (1);
	}
	if ((base = event_base_new()) == NULL || ec2_init(base) == -1) {
		fprintf(stderr, "ec2_init failed\n");
		return (1);
	}
	RUN(test_ini);
	RUN(test_xml);
	if (endpoint_start() == -1) {
		endpoint_stop();
		return (1);
	}
	RUN(test_create_tags_two);
	RUN(test_create_tags_batches);
	RUN(test_create_tags_eventual_consistency);
	RUN(test_describe_pages);
	RUN(test_describe_filters);
	RUN(test_throttle);
	RUN(test_server_errors);
	RUN(test_wrong_secret);
	RUN(test_dead_endpoint);
	RUN(test_retry_quota);
	RUN(test_not_ec2_replies);
	RUN(test_creds_env_token);
	RUN(test_creds_files);
	RUN(test_creds_rotation);
	RUN(test_creds_none);
	RUN(test_creds_imds);
	RUN(test_endpoint_precedence);
	RUN(test_cancel);
	endpoint_stop();

	ec2_shutdown();
	http_shutdown();
	event_base_free(base);
	libevent_global_shutdown();
	snprintf(errlog, sizeof(errlog), "%s/endpoint.err", tmpdir);
	unlink(errlog);
	rmdir(tmpdir);
	rc = unit_summary();
	return (rc);
}
