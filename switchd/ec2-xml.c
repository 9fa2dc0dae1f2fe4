/*
 * ec2-xml.c — an EC2 Query API reply, read with expat into the JSON the
 * client works with: the fields that matter (instances, their tags and
 * addresses, the next page's token, the request id, an error's code and
 * message) at their exact paths; no DTD, no entities.
 */
#include <stdlib.h>
#include <string.h>

#include <expat.h>
#include <jansson.h>

#include "ec2.h"
#include "util.h"

#define EC2_MAX_TEXT		(64 * 1024)	/* one element's text */
#define EC2_MAX_PATH		512

/*
 * The reply's elements that matter, as paths below its root element.  The
 * paths must be exact: <item> is at every level of DescribeInstances (the
 * reservation, the instance, its tags, its groups, its network interfaces
 * and their addresses), and so is <privateIpAddress>.
 */
#define X_INST		"/reservationSet/item/instancesSet/item"
#define X_TAG		X_INST "/tagSet/item"

struct xml_field {
	const char	*path;
	const char	*key;		/* in the reply or the instance */
};

static const struct xml_field xml_fields[] = {
	{ X_INST "/instanceId",		"id" },
	{ X_INST "/privateIpAddress",	"private_ip" },
	{ X_INST "/instanceState/name",	"state" },
	{ X_TAG "/key",			"tag_key" },
	{ X_TAG "/value",		"tag_value" },
	{ "/nextToken",			"next_token" },
	{ "/requestId",			"request_id" },	/* <Action>Response */
	{ "/RequestID",			"request_id" },	/* Response */
	{ "/RequestId",			"request_id" },	/* ErrorResponse */
	{ "/return",			"return" },
	{ "/Errors/Error/Code",		"code" },
	{ "/Errors/Error/Message",	"message" },
	{ "/Error/Code",		"code" },
	{ "/Error/Message",		"message" },
	{ NULL,				NULL }
};

struct xml_state {
	XML_Parser		 parser;
	json_t			*reply;
	char			 path[EC2_MAX_PATH];
	size_t			 pathlen;
	size_t			 rootlen;	/* "/Root" */
	int			 untracked;	/* levels beyond path[] */
	const struct xml_field	*field;		/* collecting its text */
	char			*text;
	size_t			 textlen;
	int			 failed;
	json_t			*inst;		/* the instance being read */
	char			*tag_key;
	char			*tag_value;
};

static void
xml_abort(struct xml_state *x)
{
	x->failed = 1;
	XML_StopParser(x->parser, XML_FALSE);
}

static void
xml_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct xml_state	*x = arg;
	const struct xml_field	*f;
	const char		*local, *rel;
	size_t			 n;

	(void)attrs;
	/* Namespaced names come as "URI|local". */
	if ((local = strrchr(name, '|')) != NULL)
		local++;
	else
		local = name;
	n = strlen(local);
	if (x->untracked > 0 || x->pathlen + 1 + n >= sizeof(x->path)) {
		x->untracked++;
		return;
	}
	x->path[x->pathlen++] = '/';
	memcpy(x->path + x->pathlen, local, n + 1);
	x->pathlen += n;
	if (x->rootlen == 0) {
		x->rootlen = x->pathlen;
		json_object_set_new(x->reply, "root", json_string(local));
	}
	rel = x->path + x->rootlen;
	x->field = NULL;
	x->textlen = 0;
	if (strcmp(rel, X_INST) == 0) {
		json_decref(x->inst);
		x->inst = json_pack("{s:n, s:n, s:n, s:{}}", "id",
		    "private_ip", "state", "tags");
	} else if (strcmp(rel, X_TAG) == 0) {
		free(x->tag_key);
		free(x->tag_value);
		x->tag_key = x->tag_value = NULL;
	}
	for (f = xml_fields; f->path != NULL; f++)
		if (strcmp(rel, f->path) == 0)
			x->field = f;
}

static void
xml_text(void *arg, const XML_Char *s, int len)
{
	struct xml_state	*x = arg;
	char			*p;

	if (x->field == NULL || x->untracked > 0)
		return;
	if (x->textlen + (size_t)len > EC2_MAX_TEXT) {
		xml_abort(x);
		return;
	}
	if ((p = realloc(x->text, x->textlen + (size_t)len + 1)) == NULL) {
		xml_abort(x);
		return;
	}
	x->text = p;
	memcpy(x->text + x->textlen, s, (size_t)len);
	x->textlen += (size_t)len;
	x->text[x->textlen] = '\0';
}

static void
xml_end(void *arg, const XML_Char *name)
{
	struct xml_state	*x = arg;
	const struct xml_field	*f = x->field;
	const char		*rel, *text;
	json_t			*arr;
	char			*slash;

	(void)name;
	if (x->untracked > 0) {
		x->untracked--;
		return;
	}
	rel = x->path + x->rootlen;
	text = x->textlen > 0 ? x->text : "";
	if (f != NULL && strcmp(rel, f->path) == 0) {
		if (strcmp(f->key, "tag_key") == 0) {
			free(x->tag_key);
			x->tag_key = xstrdup(text);
		} else if (strcmp(f->key, "tag_value") == 0) {
			free(x->tag_value);
			x->tag_value = xstrdup(text);
		} else if (strncmp(f->path, X_INST, strlen(X_INST)) == 0) {
			if (x->inst != NULL)
				json_object_set_new(x->inst, f->key,
				    json_string(text));
		} else
			json_object_set_new(x->reply, f->key,
			    json_string(text));
	} else if (strcmp(rel, X_TAG) == 0 && x->inst != NULL &&
	    x->tag_key != NULL) {
		json_object_set_new(json_object_get(x->inst, "tags"),
		    x->tag_key, json_string(x->tag_value != NULL ?
		    x->tag_value : ""));
	} else if (strcmp(rel, X_INST) == 0 && x->inst != NULL) {
		if ((arr = json_object_get(x->reply, "instances")) == NULL) {
			arr = json_array();
			json_object_set_new(x->reply, "instances", arr);
		}
		if (json_is_string(json_object_get(x->inst, "id")))
			json_array_append(arr, x->inst);
		json_decref(x->inst);
		x->inst = NULL;
	}
	x->field = NULL;
	x->textlen = 0;
	if ((slash = strrchr(x->path, '/')) != NULL) {
		*slash = '\0';
		x->pathlen = (size_t)(slash - x->path);
	}
}

/* EC2 sends no DTD; one here could only be an entity expansion attack. */
static void
xml_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	xml_abort(arg);
}

json_t *
ec2_xml_reply(const char *xml, size_t len)
{
	struct xml_state	 x;
	enum XML_Status		 st;

	if (xml == NULL || len == 0 || len > EC2_MAX_REPLY)
		return NULL;
	memset(&x, 0, sizeof(x));
	if ((x.parser = XML_ParserCreateNS(NULL, '|')) == NULL)
		return NULL;
	x.reply = json_object();
	XML_SetUserData(x.parser, &x);
	XML_SetElementHandler(x.parser, xml_start, xml_end);
	XML_SetCharacterDataHandler(x.parser, xml_text);
	XML_SetStartDoctypeDeclHandler(x.parser, xml_doctype);
	st = XML_Parse(x.parser, xml, (int)len, XML_TRUE);
	if (st != XML_STATUS_OK || x.failed || x.rootlen == 0) {
		json_decref(x.reply);
		x.reply = NULL;
	}
	XML_ParserFree(x.parser);
	json_decref(x.inst);
	free(x.tag_key);
	free(x.tag_value);
	free(x.text);
	return x.reply;
}
