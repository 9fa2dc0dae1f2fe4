/* test-httpd.c — http.listen parsing, HAProxy's backend counters, /metrics text. */
#include <stdlib.h>

#include <event2/buffer.h>

#include "hapx.h"
#include "httpd.h"
#include "metrics.h"
#include "unit.h"
#include "util.h"

static void
test_parse_listen(void)
{
	char host[64];
	int port = 0;

	CHECK_INT(listen_addr_parse("127.0.0.1:9180", host, sizeof(host), &port), 0);
	CHECK_STR(host, "127.0.0.1");
	CHECK_INT(port, 9180);
	CHECK_INT(listen_addr_parse("[::1]:80", host, sizeof(host), &port), 0);
	CHECK_STR(host, "::1");
	CHECK_INT(port, 80);
	CHECK_INT(listen_addr_parse("localhost:65535", host, sizeof(host), &port), 0);
	CHECK_STR(host, "localhost");
	CHECK_INT(listen_addr_parse("::1:80", host, sizeof(host), &port), -1);
	CHECK_INT(listen_addr_parse("[::1:80", host, sizeof(host), &port), -1);
	CHECK_INT(listen_addr_parse("127.0.0.1", host, sizeof(host), &port), -1);
	CHECK_INT(listen_addr_parse("127.0.0.1:", host, sizeof(host), &port), -1);
	CHECK_INT(listen_addr_parse("127.0.0.1:0", host, sizeof(host), &port), -1);
	CHECK_INT(listen_addr_parse("127.0.0.1:65536", host, sizeof(host), &port), -1);
	CHECK_INT(listen_addr_parse(":80", host, sizeof(host), &port), -1);
	CHECK_INT(listen_addr_parse("[]:80", host, sizeof(host), &port), -1);
}

static void
test_backend_counters(void)
{
	const char *stat =
	    "# pxname,svname,qcur,scur,stot,status,hrsp_5xx,req_tot,\n"
	    "fe_http,FRONTEND,,0,99,OPEN,1,99,\n"
	    "be_blue,b1,0,0,40,UP,3,,\n"
	    "be_blue,BACKEND,0,0,40,UP,3,41,\n"
	    "be_green,BACKEND,0,0,7,UP,0,,\n";
	json_t *c = hapx_parse_backend_counters(stat);

	CHECK(c != NULL);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(c, "be_blue"), "requests")), 41);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(c, "be_blue"), "5xx")), 3);
	/* No req_tot (TCP mode, old HAProxy): sessions instead. */
	CHECK_INT(json_integer_value(json_object_get(json_object_get(c, "be_green"), "requests")), 7);
	CHECK(json_object_get(c, "fe_http") == NULL);
	json_decref(c);
	CHECK(hapx_parse_backend_counters("# pxname,svname,status\nbe_blue,BACKEND,UP\n") == NULL);
	CHECK(hapx_parse_backend_counters("Unknown command.\n") == NULL);
}

static void
test_render_escapes(void)
{
	struct snapshot s = { 0 };
	struct evbuffer *b = evbuffer_new();
	char *text;
	size_t len;

	s.status = json_loads("{\"hot\": \"green\", \"cold\": \"blue\", \"pools\": {"
	    "\"green\": {\"version\": \"v\\\"2\\\\\\nx\", \"state\": \"verified\", \"servers\": ["
	    "{\"status\": \"UP\"}, {\"status\": \"UP 1/3\"}, {\"status\": \"no check\"}]},"
	    "\"blue\": {\"version\": null, \"state\": \"empty\", \"servers\": []}},"
	    "\"nodes\": [{\"socket\": \"/run/h\\\"1.sock\", \"ok\": true}], \"agree\": true,"
	    "\"lock\": null, \"last_switch\": null, \"busy\": null, \"ec2\": {\"drift\": []}}", 0, NULL);
	CHECK(s.status != NULL);
	s.counters = json_pack("{s:{s:I, s:I}}", "green", "requests", (json_int_t)12, "5xx", (json_int_t)2);
	metrics_render(&s, b);
	len = evbuffer_get_length(b);
	text = malloc(len + 1);
	evbuffer_remove(b, text, len);
	text[len] = '\0';
	CHECK(strstr(text, "switchd_hot_pool{pool=\"green\"} 1\n") != NULL);
	CHECK(strstr(text, "switchd_hot_pool{pool=\"blue\"} 0\n") != NULL);
	CHECK(strstr(text, "switchd_pool_info{pool=\"green\",version=\"v\\\"2\\\\\\nx\",state=\"verified\"} 1\n") != NULL);
	CHECK(strstr(text, "switchd_pool_info{pool=\"blue\",version=\"\",state=\"empty\"} 1\n") != NULL);
	CHECK(strstr(text, "switchd_servers{pool=\"green\",status=\"up\"} 2\n") != NULL);
	CHECK(strstr(text, "switchd_servers{pool=\"green\",status=\"no_check\"} 1\n") != NULL);
	CHECK(strstr(text, "switchd_servers{pool=\"blue\",status=\"down\"} 0\n") != NULL);
	CHECK(strstr(text, "switchd_node_up{node=\"/run/h\\\"1.sock\"} 1\n") != NULL);
	CHECK(strstr(text, "switchd_pool_requests_total{pool=\"green\"} 12\n") != NULL);
	CHECK(strstr(text, "switchd_pool_responses_5xx_total{pool=\"green\"} 2\n") != NULL);
	CHECK(strstr(text, "switchd_pool_requests_total{pool=\"blue\"}") == NULL);
	CHECK(strstr(text, "# TYPE switchd_switch_duration_seconds histogram\n") != NULL);
	free(text);
	evbuffer_free(b);
	json_decref(s.status);
	json_decref(s.counters);
}

int
main(void)
{
	RUN(test_parse_listen);
	RUN(test_backend_counters);
	RUN(test_render_escapes);
	return unit_summary();
}
