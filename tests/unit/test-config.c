/* test-config.c — config parsing: defaults, every error with its line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "lb.h"
#include "unit.h"

static char path[] = "/tmp/switchd-test-config.XXXXXX";

static struct config *
load(const char *text, json_t **errors)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
	return config_load(path, lb_drivers, errors);
}

#define BASE \
	"hosts = { live = \"App.Example.com\"; cold = \"cold.example.com\"; };\n" \
	"pools = { blue = { backend = \"be_blue\"; servers = ( { name = \"b1\"; address = \"10.0.0.1:80\"; } ); };\n" \
	"          green = { backend = \"be_green\"; }; };\n" \
	"haproxy = { sockets = ( \"/run/h.sock\" ); };\n"

/* Does any error mention both "line" and text? */
static int
has_error(json_t *errors, int line, const char *text)
{
	char want[64];
	size_t i;

	snprintf(want, sizeof(want), ":%d: ", line);
	for (i = 0; i < json_array_size(errors); i++) {
		const char *e = json_string_value(json_array_get(errors, i));
		if (strstr(e, want) && strstr(e, text))
			return 1;
	}
	return 0;
}

static void
test_defaults(void)
{
	json_t *errors = NULL;
	struct config *c = load(BASE, &errors);

	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK_STR(c->live_host, "app.example.com");	/* lower-cased like HAProxy does */
	CHECK_STR(c->ctl_socket, "/run/switchd/switchd.sock");
	CHECK_INT(c->ctl_mode, 0660);
	CHECK_STR(c->state_dir, "/var/lib/switchd");
	CHECK_STR(c->hap_mode, "runtime");
	CHECK_STR(c->hap_map, "/etc/haproxy/switchd.map");
	CHECK_INT(c->min_up, 1);
	CHECK_INT(c->timeout_ms, 2000);
	CHECK_INT((long long)c->pools[POOL_B].nservers, 1);
	CHECK_INT((long long)c->pools[POOL_G].nservers, 0);
	CHECK_STR(c->ec2_role_tag, "group");
	CHECK_INT(c->smoke_command_timeout, 600);
	config_free(c);
}

static void
test_mode_octal(void)
{
	json_t *errors = NULL;
	struct config *c = load("control = { mode = 0640; };\n" BASE, &errors);

	CHECK(c != NULL);
	if (c)
		CHECK_INT(c->ctl_mode, 0640);
	config_free(c);
	c = load("control = { mode = \"0600\"; };\n" BASE, &errors);
	CHECK(c != NULL);
	if (c)
		CHECK_INT(c->ctl_mode, 0600);
	config_free(c);
	c = load("control = { mode = 0999; };\n" BASE, &errors);
	CHECK(c == NULL);
	CHECK(has_error(errors, 1, "not a file mode"));
	json_decref(errors);
}

static void
test_errors_with_lines(void)
{
	json_t *errors = NULL;
	struct config *c;

	c = load(BASE "frobnicate = 1;\n", &errors);
	CHECK(c == NULL);
	CHECK(has_error(errors, 5, "unknown key frobnicate"));
	json_decref(errors);

	c = load(BASE "smoke = { timeout_ms = \"x\"; };\n", &errors);
	CHECK(c == NULL);
	CHECK(has_error(errors, 5, "smoke.timeout_ms must be an integer"));
	json_decref(errors);

	c = load("pools = { blue = { backend = \"a\"; }; green = { backend = \"b\"; }; };\n"
	    "haproxy = { };\n", &errors);
	CHECK(c == NULL);
	CHECK(has_error(errors, 0, "hosts") || json_array_size(errors) > 0);
	json_decref(errors);

	c = load(BASE "min_up = ;\n", &errors);	/* a syntax error */
	CHECK(c == NULL);
	CHECK(has_error(errors, 5, "syntax error"));
	json_decref(errors);

	c = load("hosts = { live = \"a\"; cold = \"a\"; };\n"
	    "pools = { blue = { backend = \"x\"; servers = ( { name = \"s\"; address = \"nope\"; } ); };\n"
	    "  green = { backend = \"x\"; }; };\n"
	    "haproxy = { min_up = -1; map = \"relative.map\"; };\n", &errors);
	CHECK(c == NULL);
	CHECK(has_error(errors, 1, "same name"));
	CHECK(has_error(errors, 2, "not host:port"));
	CHECK(has_error(errors, 2, "same backend") || has_error(errors, 1, "same backend"));
	CHECK(has_error(errors, 4, "min_up"));
	CHECK(has_error(errors, 4, "absolute path"));
	json_decref(errors);

	c = load(BASE "pools2 = 3;\n", &errors);
	CHECK(c == NULL);
	json_decref(errors);

	/* Strings end up in JSON (status, journal, webhook): UTF-8 only. */
	c = load(BASE "smoke = { url = \"http://127.0.0.1\";\n"
	    "  checks = ( { name = \"caf\351\"; path = \"/\"; status = 200; } ); };\n"
	    "deploy = { command = \"ok \303\251\"; };\n", &errors);
	CHECK(c == NULL);
	CHECK(has_error(errors, 6, "is not valid UTF-8"));
	CHECK(!has_error(errors, 7, "UTF-8"));
	json_decref(errors);
}

static void
test_missing_file(void)
{
	json_t *errors = NULL;
	struct config *c = config_load("/nonexistent/switchd.conf", lb_drivers, &errors);

	CHECK(c == NULL);
	CHECK(strstr(json_string_value(json_array_get(errors, 0)), "cannot read") != NULL);
	json_decref(errors);
}

/* The cluster group: absent means no cluster; each bad key with its line. */
static void
test_cluster(void)
{
	json_t *errors = NULL;
	struct config *c = load(BASE, &errors);

	CHECK(c != NULL);
	if (c != NULL)
		CHECK(c->cluster_endpoints == NULL);
	config_free(c);
	c = load(BASE "cluster = { endpoints = ( \"http://127.0.0.1:2379/\", "
	    "\"http://127.0.0.2:2379\" ); prefix = \"/switchd/www\"; name = \"deploy-a\"; };\n",
	    &errors);
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK_INT((long long)c->cluster_nendpoints, 2);
		CHECK_STR(c->cluster_endpoints[1], "http://127.0.0.2:2379");
		CHECK_STR(c->cluster_prefix, "/switchd/www");
		CHECK_STR(c->cluster_name, "deploy-a");
		CHECK_INT(c->cluster_lease_ttl, 10);
	}
	config_free(c);
	c = load(BASE "cluster = {\n endpoints = ( \"ftp://x\" );\n prefix = \"switchd\";\n"
	    " name = \"a b\";\n lease_ttl = 1;\n};\n", &errors);
	CHECK(c == NULL);
	CHECK(has_error(errors, 6, "cluster.endpoints: \"ftp://x\" must be an http://"));
	CHECK(has_error(errors, 7, "cluster.prefix must start with \"/\""));
	CHECK(has_error(errors, 8, "cluster.name \"a b\" must be ASCII"));
	CHECK(has_error(errors, 9, "cluster.lease_ttl must be 2..300"));
	json_decref(errors);
	c = load(BASE "cluster = { endpoints = ( ); };\n", &errors);
	CHECK(c == NULL);
	CHECK(has_error(errors, 5, "cluster.endpoints must list at least one"));
	json_decref(errors);
}

int
main(void)
{
	int fd = mkstemp(path);

	close(fd);
	RUN(test_defaults);
	RUN(test_mode_octal);
	RUN(test_errors_with_lines);
	RUN(test_missing_file);
	RUN(test_cluster);
	unlink(path);
	return unit_summary();
}
