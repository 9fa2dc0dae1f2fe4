/* test-hapx.c — HAProxy reply parsing: errors in plain text, maps, CSV by header. */
#include <stdlib.h>

#include "hapx.h"
#include "lb.h"
#include "unit.h"

static void
test_reply_errors(void)
{
	char *e;

	CHECK(hapx_reply_error("add map @1 /m k v", "\n") == NULL);
	CHECK(hapx_reply_error("commit map @1 /m", "") == NULL);
	e = hapx_reply_error("add map @1 /m k v", "Unknown map identifier. Please use #<id> or <file>.\n\n");
	CHECK_STR(e, "Unknown map identifier. Please use #<id> or <file>.");
	free(e);
	e = hapx_reply_error("commit map @7 /m", "Version number out of range.\n");
	CHECK_STR(e, "Version number out of range.");
	free(e);
	e = hapx_reply_error("show map /nope", "Unknown map identifier. Please use #<id> or <file>.\n");
	CHECK(e != NULL);
	free(e);
	CHECK(hapx_reply_error("show map /m", "0x1 a.example.com be_blue\n\n") == NULL);
	e = hapx_reply_error("del map /m k", "entry not found.\n");
	CHECK_STR(e, "entry not found.");
	free(e);
	e = hapx_reply_error("show servers state be_x", "Can't find backend.\n");
	CHECK(e != NULL);
	free(e);
	CHECK(hapx_reply_error("add server be/i-1 127.0.0.1:80", "New server registered.\n\n") == NULL);
	CHECK(hapx_reply_error("del server be/i-1", "Server deleted.\n") == NULL);
	e = hapx_reply_error("del server be/i-1", "Server still has connections attached to it, cannot remove it.\n");
	CHECK(e != NULL);
	free(e);
	e = hapx_reply_error("disable server be/x", "No such server.\n");
	CHECK_STR(e, "No such server.");
	free(e);
}

static void
test_version(void)
{
	unsigned long v = 0;

	CHECK_INT(hapx_parse_version("New version created: 12\n\n", &v), 0);
	CHECK_INT(v, 12);
	CHECK_INT(hapx_parse_version("Unknown map identifier.\n", &v), -1);
	CHECK_INT(hapx_parse_version(NULL, &v), -1);
}

static void
test_map(void)
{
	struct lb_mapping m;

	CHECK_INT(hapx_parse_map("0x55 app.example.com be_green\n0x56 cold.example.com be_blue\n\n",
	    "app.example.com", "cold.example.com", &m), 2);
	CHECK_STR(m.live, "be_green");
	CHECK_STR(m.cold, "be_blue");
	CHECK_INT(hapx_parse_map("0x55 APP.example.com be_green\n", "app.example.com",
	    "cold.example.com", &m), 1);
	CHECK_STR(m.cold, "");
	CHECK_INT(hapx_parse_map("0x1 app.example.com a\n0x2 app.example.com b\n",
	    "app.example.com", "cold.example.com", &m), -1);
	CHECK_INT(hapx_parse_map("", "a", "b", &m), 0);
}

static void
test_backend(void)
{
	const char *r = "# name\nbe_blue\nbe_green\nMASTER\n\n";

	CHECK(hapx_has_backend(r, "be_blue"));
	CHECK(hapx_has_backend(r, "be_green"));
	CHECK(!hapx_has_backend(r, "be_gree"));
	CHECK(!hapx_has_backend(r, "# name"));
}

static void
test_stat(void)
{
	/* Columns in an order no HAProxy uses: found by name, not position. */
	const char *r = "# svname,pxname,addr,foo,status,\n"
	    "b1,be_blue,127.0.0.1:1,x,UP,\n"
	    "b2,be_blue,127.0.0.1:2,x,DOWN 1/2,\n"
	    "BACKEND,be_blue,,x,UP,\n"
	    "g1,be_green,127.0.0.1:3,x,no check,\n"
	    "g2,be_green,127.0.0.1:4,x,MAINT,\n\n";
	json_t *s = hapx_parse_stat(r), *blue, *green;

	CHECK(s != NULL);
	blue = json_object_get(s, "be_blue");
	green = json_object_get(s, "be_green");
	CHECK_INT(json_array_size(blue), 2);
	CHECK_INT(json_array_size(green), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(blue, 1), "status")), "DOWN 1/2");
	CHECK_STR(json_string_value(json_object_get(json_array_get(green, 0), "address")), "127.0.0.1:3");
	json_decref(s);
	CHECK(hapx_parse_stat("Permission denied\n") == NULL);
	CHECK(hapx_status_up("UP"));
	CHECK(hapx_status_up("UP 1/3"));
	CHECK(hapx_status_up("no check"));
	CHECK(!hapx_status_up("DOWN"));
	CHECK(!hapx_status_up("DOWN 1/2"));
	CHECK(!hapx_status_up("MAINT"));
	CHECK(!hapx_status_up("DRAIN"));
}

static void
test_backend_up(void)
{
	/* The BACKEND row's act + bck, found by column name. */
	const char *r = "# pxname,svname,bck,x,act,status,\n"
	    "be_blue,BACKEND,1,x,3,UP,\n"
	    "be_green,g1,0,x,1,UP,\n"
	    "be_green,BACKEND,0,x,0,DOWN,\n\n";

	CHECK_INT(hapx_backend_up(r, "be_blue"), 4);
	CHECK_INT(hapx_backend_up(r, "be_green"), 0);
	CHECK_INT(hapx_backend_up(r, "be_other"), -1);
	CHECK_INT(hapx_backend_up("# pxname,svname,status,\nbe_blue,BACKEND,UP,\n", "be_blue"), -1);
	CHECK_INT(hapx_backend_up("Unknown command.\n", "be_blue"), -1);
	CHECK_INT(hapx_backend_up(NULL, "be_blue"), -1);
}

static void
test_backend_counters(void)
{
	/* The guard's figures: every hrsp_* column of the BACKEND row, by name. */
	const char *r = "# pxname,svname,hrsp_1xx,hrsp_2xx,x,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,\n"
	    "be_green,g1,0,50,x,0,0,9,0,\n"
	    "be_green,BACKEND,1,90,x,2,3,4,5,\n"
	    "be_blue,BACKEND,0,7,x,0,0,0,0,\n";
	long long resp = -1, err = -1;

	CHECK_INT(hapx_backend_counters(r, "be_green", &resp, &err), 0);
	CHECK_INT(resp, 105);
	CHECK_INT(err, 4);
	CHECK_INT(hapx_backend_counters(r, "be_blue", &resp, &err), 0);
	CHECK_INT(resp, 7);
	CHECK_INT(err, 0);
	CHECK_INT(hapx_backend_counters(r, "be_other", &resp, &err), -1);
	/* A column missing: no figure rather than a wrong one. */
	CHECK_INT(hapx_backend_counters("# pxname,svname,hrsp_2xx,hrsp_5xx,\n"
	    "be_blue,BACKEND,5,1,\n", "be_blue", &resp, &err), -1);
	CHECK_INT(hapx_backend_counters("Unknown command.\n", "be_blue", &resp, &err), -1);
	CHECK_INT(hapx_backend_counters(NULL, "be_blue", &resp, &err), -1);
}

static void
test_addr(void)
{
	struct sockaddr_storage ss;
	socklen_t len;

	CHECK_INT(hapx_parse_addr("/run/haproxy/admin.sock", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_UNIX);
	CHECK_INT(hapx_parse_addr("unix@/run/x.sock", &ss, &len), 0);
	CHECK_INT(hapx_parse_addr("ipv4@127.0.0.1:9999", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET);
	CHECK_INT(hapx_parse_addr("ipv6@[::1]:9999", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET6);
	CHECK_INT(hapx_parse_addr("ipv4@127.0.0.1", &ss, &len), -1);
	CHECK_INT(hapx_parse_addr("ipv4@nothost:80", &ss, &len), -1);
	CHECK_INT(hapx_parse_addr("127.0.0.1:0", &ss, &len), -1);
}

int
main(void)
{
	RUN(test_reply_errors);
	RUN(test_version);
	RUN(test_map);
	RUN(test_backend);
	RUN(test_stat);
	RUN(test_backend_up);
	RUN(test_backend_counters);
	RUN(test_addr);
	return unit_summary();
}
