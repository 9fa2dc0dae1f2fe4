/*
 * lb-map.c — the one parser of a host map, whatever holds it: HAProxy's
 * "show map" reply, HAProxy's map file, the map block of nginx's include.
 * It depends on nothing but libc, so the HAProxy client (hapx.c) and its
 * tests use it without the rest of the daemon.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lb.h"
#include "util.h"

int
lb_map_parse(const char *text, int skip, const char *live_key, const char *cold_key,
    struct lb_mapping *m)
{
	char *copy = xstrdup(text ? text : ""), *line, *save = NULL;
	char key[256], val[128];
	int nlive = 0, ncold = 0, i;

	m->live[0] = m->cold[0] = '\0';
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line += strspn(line, " \t");
		if (line[0] == '#')
			continue;
		for (i = 0; i < skip; i++) {
			line += strcspn(line, " \t");
			line += strspn(line, " \t");
		}
		if (sscanf(line, "%255s %127[^; \t\r\n\v\f]", key, val) != 2)
			continue;
		if (strcasecmp(key, live_key) == 0) {
			snprintf(m->live, sizeof(m->live), "%s", val);
			nlive++;
		} else if (strcasecmp(key, cold_key) == 0) {
			snprintf(m->cold, sizeof(m->cold), "%s", val);
			ncold++;
		}
	}
	free(copy);
	return nlive > 1 || ncold > 1 ? -1 : (nlive > 0) + (ncold > 0);
}

void
lb_node_set_map(struct lb_node *node, int found, const char *where)
{
	node->has_map = found == 2;
	if (found == -1)
		snprintf(node->error, sizeof(node->error), "a host name appears twice in %s",
		    where);
}
