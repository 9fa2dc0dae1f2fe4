/*
 * fuzz-hapx.c — libFuzzer harness for switchd's readers of HAProxy's
 * runtime API replies (hapx.c): show map, show stat (read by its CSV
 * header), show backend, prepare map's version, the error sentences, and
 * the socket address syntax.  A reply comes from a socket switchd does not
 * control (an HAProxy of another version, a proxy, a confused peer): no
 * reply may crash it.  The whole input is the reply; the same bytes also
 * go to the address parser.
 */
#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hapx.h"
#include "lb.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *cmds[] = { "show map /m", "show stat -1 4 -1", "prepare map /m",
	    "add map @1 /m a b", "commit map @1 /m", "show backend", NULL };
	char *reply = malloc(size + 1), *err;
	struct lb_mapping m;
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned long ver;
	json_t *stat, *list, *s;
	const char *key;
	size_t i;
	int k;

	if (reply == NULL)
		return 0;
	memcpy(reply, data, size);
	reply[size] = '\0';

	hapx_parse_map(reply, "app.example.com", "cold.app.example.com", &m);
	hapx_has_backend(reply, "be_green");
	hapx_parse_version(reply, &ver);
	for (k = 0; cmds[k] != NULL; k++) {
		err = hapx_reply_error(cmds[k], reply);
		free(err);
	}
	if ((stat = hapx_parse_stat(reply)) != NULL) {
		/* What status and the min_up check do with it. */
		json_object_foreach(stat, key, list) {
			for (i = 0; i < json_array_size(list); i++) {
				s = json_array_get(list, i);
				hapx_status_up(json_string_value(json_object_get(s, "status")));
			}
		}
		json_decref(stat);
	}
	/* The per-pool traffic counters of /metrics. */
	json_decref(hapx_parse_backend_counters(reply));
	if (size < 512)
		hapx_parse_addr(reply, &ss, &len);
	free(reply);
	return 0;
}
