/*
 * ec2-creds.c — where switchd's AWS credentials come from, in the order the
 * AWS SDKs look: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then the profile
 * (AWS_PROFILE, else "default") in the shared credentials file and then the
 * config file, then the instance role from IMDSv2.
 *
 * The environment and the files are read when a chain is made (at start and
 * at each config reload), and the files again when they change (a rotation
 * rewrites ~/.aws/credentials under a running daemon): each use stats them.  IMDS is asked on the event loop
 * when credentials are first needed, and again within five minutes of their
 * Expiration, so that a request is never signed with keys about to lapse.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "ec2.h"
#include "http.h"
#include "log.h"
#include "util.h"

#define IMDS_DEFAULT_BASE	"http://169.254.169.254"
#define IMDS_TIMEOUT_MS		1000		/* as the SDKs: IMDS is local */
#define IMDS_TOKEN_TTL		"21600"
#define IMDS_CREDS_PATH		"/latest/meta-data/iam/security-credentials/"
#define REFRESH_BEFORE_S	(5 * 60)
/* After a failed refresh, keys still valid serve this long before a retry. */
#define REFRESH_HOLDOFF_S	30
#define INI_MAX_BYTES		(1024 * 1024)

enum creds_kind {
	CREDS_NONE,		/* nothing found; error says what was tried */
	CREDS_STATIC,		/* environment or files: never refreshed */
	CREDS_IMDS,
};

enum imds_step {
	IMDS_IDLE,
	IMDS_TOKEN,		/* PUT /latest/api/token */
	IMDS_ROLE,		/* GET .../security-credentials/ */
	IMDS_CREDS,		/* GET .../security-credentials/ROLE */
};

/* What a file was when it was read: a change means read it again. */
struct file_id {
	int			 exists;
	dev_t			 dev;
	ino_t			 ino;
	off_t			 size;
	struct timespec		 mtime;
};

struct ec2_creds_chain {
	enum creds_kind		 kind;
	int			 from_files;	/* CREDS_STATIC from paths[] */
	char			*paths[2];	/* credentials, config */
	struct file_id		 ids[2];
	char			*source;
	char			*tried;		/* what env and files said */
	char			*error;		/* CREDS_NONE: why */
	struct ec2_creds	 creds;		/* if access_key != NULL */

	char			*imds_base;
	enum imds_step		 imds_step;
	struct http_req		*imds_req;
	char			*imds_token;
	char			*imds_role;
	time_t			 holdoff_until;
	TAILQ_HEAD(, ec2_creds_waiter) waiters;
};

static void	 creds_clear(struct ec2_creds *);
static void	 creds_recheck(struct ec2_creds_chain *);
static int	 creds_from_env(struct ec2_creds_chain *);
static int	 creds_from_files(struct ec2_creds_chain *, int *);
static void	 file_id_of(const char *, struct file_id *);
static json_t	*profile_from_file(const char *, const char *, const char *,
		    char **);
static char	*read_small_file(const char *, char **);
static void	 tried_add(struct ec2_creds_chain *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	 imds_start(struct ec2_creds_chain *);
static int	 imds_request(struct ec2_creds_chain *, const char *,
		    const char *);
static void	 imds_cb(const struct http_result *, void *);
static int	 imds_parse_creds(struct ec2_creds_chain *, const char *,
		    char **);
static void	 imds_finish(struct ec2_creds_chain *, const char *);

static const char *
env(const char *name)
{
	const char	*v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

struct ec2_creds_chain *
ec2_creds_chain_new(void)
{
	struct ec2_creds_chain	*c;
	const char		*v;
	int			 explicit_profile_missing = 0;
	size_t			 n;

	c = xcalloc(1, sizeof(*c));
	TAILQ_INIT(&c->waiters);
	c->tried = xstrdup("");

	if (creds_from_env(c) == 0 || creds_from_files(c,
	    &explicit_profile_missing) == 0) {
		c->kind = CREDS_STATIC;
		return c;
	}
	/*
	 * An AWS_PROFILE that names nothing is a typo: the SDKs stop there
	 * rather than carry on as the instance role, and so do we.
	 */
	if (explicit_profile_missing) {
		c->kind = CREDS_NONE;
		c->error = xasprintf("no AWS credentials: %s", c->tried);
		return c;
	}
	v = env("AWS_EC2_METADATA_DISABLED");
	if (v != NULL && strcasecmp(v, "true") == 0) {
		tried_add(c, "IMDS disabled by AWS_EC2_METADATA_DISABLED");
		c->kind = CREDS_NONE;
		c->error = xasprintf("no AWS credentials: %s", c->tried);
		return c;
	}
	v = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	c->imds_base = xstrdup(v != NULL ? v : IMDS_DEFAULT_BASE);
	n = strlen(c->imds_base);
	while (n > 0 && c->imds_base[n - 1] == '/')
		c->imds_base[--n] = '\0';
	c->kind = CREDS_IMDS;
	c->source = xasprintf("IMDS at %s", c->imds_base);
	return c;
}

void
ec2_creds_chain_free(struct ec2_creds_chain *c)
{
	struct ec2_creds_waiter	*w;

	if (c == NULL)
		return;
	ec2_creds_abort(c);
	while ((w = TAILQ_FIRST(&c->waiters)) != NULL)
		ec2_creds_cancel(c, w);
	creds_clear(&c->creds);
	free(c->paths[0]);
	free(c->paths[1]);
	free(c->source);
	free(c->tried);
	free(c->error);
	free(c->imds_base);
	free(c->imds_token);
	free(c->imds_role);
	free(c);
}

void
ec2_creds_abort(struct ec2_creds_chain *c)
{
	if (c->imds_req != NULL) {
		http_cancel(c->imds_req);
		c->imds_req = NULL;
	}
	c->imds_step = IMDS_IDLE;
}

const char *
ec2_creds_source(const struct ec2_creds_chain *c)
{
	return c->source != NULL ? c->source : "none";
}

const struct ec2_creds *
ec2_creds_get(struct ec2_creds_chain *c, int refresh,
    struct ec2_creds_waiter *w, const char **error)
{
	time_t	 now = time(NULL);

	*error = NULL;
	/*
	 * Woken by the end of a fetch: take what it gave, even keys that
	 * expire within five minutes, or every waiter would fetch again.
	 */
	if (w->woken) {
		w->woken = 0;
		if (w->error != NULL) {
			*error = w->error;
			return NULL;
		}
		if (c->creds.access_key != NULL)
			return &c->creds;
	}
	switch (c->kind) {
	case CREDS_NONE:
		*error = c->error;
		return NULL;
	case CREDS_STATIC:
		if (c->from_files)
			creds_recheck(c);
		return &c->creds;
	case CREDS_IMDS:
		break;
	}
	if (!refresh && c->creds.access_key != NULL &&
	    (now + REFRESH_BEFORE_S < c->creds.expiration ||
	    (now < c->creds.expiration && now < c->holdoff_until)))
		return &c->creds;

	free(w->error);
	w->error = NULL;
	if (!w->queued) {
		TAILQ_INSERT_TAIL(&c->waiters, w, entry);
		w->queued = 1;
	}
	if (c->imds_step == IMDS_IDLE)
		imds_start(c);
	return NULL;
}

void
ec2_creds_cancel(struct ec2_creds_chain *c, struct ec2_creds_waiter *w)
{
	if (w->queued) {
		TAILQ_REMOVE(&c->waiters, w, entry);
		w->queued = 0;
	}
	w->woken = 0;
	free(w->error);
	w->error = NULL;
}

static void
creds_clear(struct ec2_creds *cr)
{
	if (cr->secret_key != NULL)
		explicit_bzero(cr->secret_key, strlen(cr->secret_key));
	free(cr->access_key);
	free(cr->secret_key);
	free(cr->token);
	memset(cr, 0, sizeof(*cr));
}

static void
tried_add(struct ec2_creds_chain *c, const char *fmt, ...)
{
	va_list	 ap;
	char	*s, *t;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		fatalx("out of memory");
	va_end(ap);
	t = xasprintf("%s%s%s", c->tried, *c->tried != '\0' ? "; " : "", s);
	free(s);
	free(c->tried);
	c->tried = t;
}

static int
creds_from_env(struct ec2_creds_chain *c)
{
	const char	*ak = env("AWS_ACCESS_KEY_ID");
	const char	*sk = env("AWS_SECRET_ACCESS_KEY");
	const char	*tok = env("AWS_SESSION_TOKEN");

	if (ak == NULL || sk == NULL) {
		if (ak != NULL || sk != NULL)
			tried_add(c, "environment: %s is not set", ak == NULL ?
			    "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY");
		else
			tried_add(c, "environment: AWS_ACCESS_KEY_ID is not "
			    "set");
		return -1;
	}
	c->creds.access_key = xstrdup(ak);
	c->creds.secret_key = xstrdup(sk);
	c->creds.token = xstrdup(tok);
	c->source = xstrdup("environment");
	return 0;
}

static char *
home_file(const char *rel)
{
	const char	*home = env("HOME");
	struct passwd	*pw;

	if (home == NULL && (pw = getpwuid(getuid())) != NULL)
		home = pw->pw_dir;
	return xasprintf("%s/%s", home != NULL ? home : "", rel);
}

/*
 * The SDKs' precedence: the credentials file, then the config file, for the
 * one profile.  *explicit_missing is set when AWS_PROFILE names a profile
 * that neither file has.
 */
static int
creds_from_files(struct ec2_creds_chain *c, int *explicit_missing)
{
	const char	*profile = env("AWS_PROFILE");
	const char	*ak, *sk, *tok;
	char		*paths[2], *sections[2], *why;
	json_t		*keys;
	int		 explicit = profile != NULL, found = 0, rc = -1, i;

	if (profile == NULL)
		profile = "default";
	paths[0] = env("AWS_SHARED_CREDENTIALS_FILE") != NULL ?
	    xstrdup(env("AWS_SHARED_CREDENTIALS_FILE")) :
	    home_file(".aws/credentials");
	paths[1] = env("AWS_CONFIG_FILE") != NULL ?
	    xstrdup(env("AWS_CONFIG_FILE")) : home_file(".aws/config");
	sections[0] = xstrdup(profile);
	sections[1] = strcmp(profile, "default") == 0 ? xstrdup("default") :
	    xasprintf("profile %s", profile);

	for (i = 0; i < 2 && rc == -1; i++) {
		keys = profile_from_file(paths[i], sections[i],
		    i == 1 && strcmp(profile, "default") == 0 ?
		    "profile default" : NULL, &why);
		if (keys == NULL) {
			tried_add(c, "%s: %s", paths[i], why);
			free(why);
			continue;
		}
		found = 1;
		ak = json_string_value(json_object_get(keys,
		    "aws_access_key_id"));
		sk = json_string_value(json_object_get(keys,
		    "aws_secret_access_key"));
		tok = json_string_value(json_object_get(keys,
		    "aws_session_token"));
		if (ak == NULL || *ak == '\0' || sk == NULL || *sk == '\0') {
			/* role_arn, sso_*, credential_process: not ours. */
			tried_add(c, "%s: [%s] has no aws_access_key_id and "
			    "aws_secret_access_key", paths[i], sections[i]);
		} else {
			c->creds.access_key = xstrdup(ak);
			c->creds.secret_key = xstrdup(sk);
			c->creds.token = tok != NULL && *tok != '\0' ?
			    xstrdup(tok) : NULL;
			c->source = xasprintf("%s [%s]", paths[i], sections[i]);
			rc = 0;
		}
		json_decref(keys);
	}
	if (rc == -1 && explicit && !found) {
		tried_add(c, "AWS_PROFILE=%s is in neither file", profile);
		*explicit_missing = 1;
	}
	for (i = 0; i < 2; i++) {
		if (rc == 0) {
			free(c->paths[i]);
			c->paths[i] = paths[i];
			file_id_of(c->paths[i], &c->ids[i]);
		} else
			free(paths[i]);
		free(sections[i]);
	}
	c->from_files = rc == 0;
	return rc;
}

static void
file_id_of(const char *path, struct file_id *id)
{
	struct stat	 st;

	memset(id, 0, sizeof(*id));
	if (stat(path, &st) == -1)
		return;
	id->exists = 1;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->mtime = st.st_mtim;
}

static int
file_id_same(const struct file_id *a, const struct file_id *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	    a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/*
 * Keys from the files: if a file changed since it was read (rotated keys),
 * read the profile again.  Until the new read gives keys (a file half
 * rewritten, removed), the old ones serve.
 */
static void
creds_recheck(struct ec2_creds_chain *c)
{
	struct ec2_creds_chain	 n;
	struct file_id		 now[2];
	int			 i, changed = 0, missing = 0;

	for (i = 0; i < 2; i++) {
		file_id_of(c->paths[i], &now[i]);
		if (!file_id_same(&now[i], &c->ids[i]))
			changed = 1;
	}
	if (!changed)
		return;
	memcpy(c->ids, now, sizeof(now));
	memset(&n, 0, sizeof(n));
	n.tried = xstrdup("");
	if (creds_from_files(&n, &missing) == 0) {
		log_info("ec2: %s changed; using the credentials it has now",
		    n.source);
		creds_clear(&c->creds);
		c->creds = n.creds;
		memset(&n.creds, 0, sizeof(n.creds));
		free(c->source);
		c->source = n.source;
		n.source = NULL;
		memcpy(c->ids, n.ids, sizeof(n.ids));
	} else
		log_warnx("ec2: the AWS credentials files changed but give no "
		    "keys now (%s); keeping the ones read before", n.tried);
	creds_clear(&n.creds);
	free(n.paths[0]);
	free(n.paths[1]);
	free(n.source);
	free(n.tried);
}

/* [section] (or [alt]) of file, or NULL with *why. */
static json_t *
profile_from_file(const char *path, const char *section, const char *alt,
    char **why)
{
	json_t	*keys;
	char	*text;

	*why = NULL;
	if ((text = read_small_file(path, why)) == NULL)
		return NULL;
	keys = ec2_ini_section(text, section);
	if (keys == NULL && alt != NULL)
		keys = ec2_ini_section(text, alt);
	explicit_bzero(text, strlen(text));
	free(text);
	if (keys == NULL)
		*why = xasprintf("no [%s]", section);
	return keys;
}

static char *
read_small_file(const char *path, char **why)
{
	FILE		*f;
	struct stat	 st;
	char		*text;
	size_t		 n;

	if ((f = fopen(path, "re")) == NULL) {
		*why = xstrdup(strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > INI_MAX_BYTES) {
		*why = xstrdup("not a regular file of at most 1 MiB");
		fclose(f);
		return NULL;
	}
	text = xcalloc(1, (size_t)st.st_size + 1);
	n = fread(text, 1, (size_t)st.st_size, f);
	text[n] = '\0';
	if (ferror(f)) {
		*why = xstrdup(strerror(errno));
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	return text;
}

static char *
trim(char *s)
{
	char	*e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * The INI dialect of the AWS files, as botocore's ConfigParser reads it:
 * "key = value" with no inline comments, '#' and ';' comment lines, and
 * indented lines continuing a nested setting ("s3 =\n  addressing_style =
 * path"), which never hold the keys we want and are skipped.
 */
json_t *
ec2_ini_section(const char *text, const char *section)
{
	json_t		*keys = NULL;
	char		*copy, *line, *next, *name, *p, *q, *eq, *k;
	int		 in = 0;

	copy = xstrdup(text);
	for (line = copy; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (*line == ' ' || *line == '\t')
			continue;
		line = trim(line);
		if (*line == '\0' || *line == '#' || *line == ';')
			continue;
		if (*line == '[') {
			if ((p = strchr(line, ']')) == NULL) {
				in = 0;
				continue;
			}
			*p = '\0';
			/* "[profile  x ]" is "profile x". */
			name = trim(line + 1);
			for (p = q = name; *p != '\0'; p++) {
				if (isspace((unsigned char)*p) &&
				    isspace((unsigned char)p[1]))
					continue;
				*q++ = isspace((unsigned char)*p) ? ' ' : *p;
			}
			*q = '\0';
			in = strcmp(name, section) == 0;
			if (in && keys == NULL)
				keys = json_object();
			continue;
		}
		if (!in || (eq = strchr(line, '=')) == NULL)
			continue;
		*eq = '\0';
		k = trim(line);
		for (p = k; *p != '\0'; p++)
			*p = tolower((unsigned char)*p);
		if (*k != '\0')
			json_object_set_new(keys, k, json_string(trim(eq + 1)));
	}
	explicit_bzero(copy, strlen(text));
	free(copy);
	return keys;
}

/* ------------------------------------------------------------------ IMDS */

/*
 * A fresh session token for each fetch: credentials are fetched about every
 * six hours, so keeping a 6-hour token buys nothing and adds a state (the
 * token expired before the credentials did) to get wrong.
 */
static void
imds_start(struct ec2_creds_chain *c)
{
	c->imds_step = IMDS_TOKEN;
	imds_request(c, "PUT", "/latest/api/token");
}

static int
imds_request(struct ec2_creds_chain *c, const char *method, const char *path)
{
	struct http_opts	 o;
	const char		*hdrs[2] = { NULL, NULL };
	char			*url, *hdr, *err;

	url = xasprintf("%s%s", c->imds_base, path);
	if (c->imds_step == IMDS_TOKEN)
		hdr = xstrdup("X-aws-ec2-metadata-token-ttl-seconds: "
		    IMDS_TOKEN_TTL);
	else
		hdr = xasprintf("X-aws-ec2-metadata-token: %s", c->imds_token);
	hdrs[0] = hdr;
	memset(&o, 0, sizeof(o));
	o.method = method;
	o.url = url;
	o.headers = hdrs;
	o.timeout_ms = IMDS_TIMEOUT_MS;
	o.max_body = 64 * 1024;
	c->imds_req = http_start(&o, imds_cb, c);
	free(hdr);
	if (c->imds_req == NULL) {
		err = xasprintf("%s %s: %s", method, url, strerror(errno));
		free(url);
		imds_finish(c, err);
		free(err);
		return -1;
	}
	free(url);
	return 0;
}

static char *
first_line(const char *body)
{
	char	*s = xstrdup(body), *t;

	s[strcspn(s, "\r\n")] = '\0';
	t = xstrdup(trim(s));
	free(s);
	return t;
}

static void
imds_cb(const struct http_result *res, void *arg)
{
	struct ec2_creds_chain	*c = arg;
	const char		*what;
	char			*err = NULL, *path;

	c->imds_req = NULL;
	what = c->imds_step == IMDS_TOKEN ? "PUT /latest/api/token" :
	    c->imds_step == IMDS_ROLE ? "GET " IMDS_CREDS_PATH :
	    "GET " IMDS_CREDS_PATH "ROLE";
	if (res->error != NULL) {
		err = xasprintf("%s: %s", what, res->error);
		goto fail;
	}
	if (c->imds_step == IMDS_ROLE && res->status == 404) {
		err = xstrdup("no IAM role is attached to this instance");
		goto fail;
	}
	if (res->status != 200) {
		err = xasprintf("%s: HTTP %ld", what, res->status);
		goto fail;
	}
	switch (c->imds_step) {
	case IMDS_TOKEN:
		free(c->imds_token);
		c->imds_token = first_line(res->body);
		c->imds_step = IMDS_ROLE;
		imds_request(c, "GET", IMDS_CREDS_PATH);
		return;
	case IMDS_ROLE:
		free(c->imds_role);
		c->imds_role = first_line(res->body);
		if (*c->imds_role == '\0') {
			err = xstrdup("no IAM role is attached to this "
			    "instance");
			goto fail;
		}
		c->imds_step = IMDS_CREDS;
		path = xasprintf("%s%s", IMDS_CREDS_PATH, c->imds_role);
		imds_request(c, "GET", path);
		free(path);
		return;
	case IMDS_CREDS:
		if (imds_parse_creds(c, res->body, &err) == -1)
			goto fail;
		imds_finish(c, NULL);
		return;
	case IMDS_IDLE:
		break;
	}
	return;
fail:
	imds_finish(c, err);
	free(err);
}

static int
imds_parse_creds(struct ec2_creds_chain *c, const char *body, char **err)
{
	json_t		*doc;
	json_error_t	 jerr;
	const char	*code, *ak, *sk, *tok, *exp;
	struct tm	 tm;
	char		*end;
	int		 rc = -1;

	if ((doc = json_loads(body, 0, &jerr)) == NULL) {
		*err = xasprintf("role %s: credentials are not JSON: %s",
		    c->imds_role, jerr.text);
		return -1;
	}
	code = json_string_value(json_object_get(doc, "Code"));
	ak = json_string_value(json_object_get(doc, "AccessKeyId"));
	sk = json_string_value(json_object_get(doc, "SecretAccessKey"));
	tok = json_string_value(json_object_get(doc, "Token"));
	exp = json_string_value(json_object_get(doc, "Expiration"));
	memset(&tm, 0, sizeof(tm));
	if (code != NULL && strcmp(code, "Success") != 0)
		*err = xasprintf("role %s: Code %s", c->imds_role, code);
	else if (ak == NULL || sk == NULL || exp == NULL)
		*err = xasprintf("role %s: AccessKeyId, SecretAccessKey or "
		    "Expiration missing", c->imds_role);
	else if ((end = strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL ||
	    (*end != 'Z' && *end != '.'))
		*err = xasprintf("role %s: bad Expiration \"%s\"",
		    c->imds_role, exp);
	else {
		creds_clear(&c->creds);
		c->creds.access_key = xstrdup(ak);
		c->creds.secret_key = xstrdup(sk);
		c->creds.token = tok != NULL && *tok != '\0' ? xstrdup(tok) :
		    NULL;
		c->creds.expiration = timegm(&tm);
		rc = 0;
	}
	json_decref(doc);
	return rc;
}

/* Wake every waiter; they ask again from their own event callbacks. */
static void
imds_finish(struct ec2_creds_chain *c, const char *error)
{
	struct ec2_creds_waiter	*w;
	char			*msg = NULL, when[32];
	time_t			 now = time(NULL);

	c->imds_step = IMDS_IDLE;
	if (error != NULL) {
		if (c->creds.access_key != NULL && now < c->creds.expiration) {
			/* As the SDKs: a failed refresh is no outage yet. */
			iso_time(c->creds.expiration, when, sizeof(when));
			log_warnx("ec2: refreshing credentials from IMDS at "
			    "%s: %s; using the current ones until %s",
			    c->imds_base, error, when);
			c->holdoff_until = now + REFRESH_HOLDOFF_S;
		} else
			msg = xasprintf("no AWS credentials: %s; IMDS at %s: "
			    "%s", c->tried, c->imds_base, error);
	}
	while ((w = TAILQ_FIRST(&c->waiters)) != NULL) {
		TAILQ_REMOVE(&c->waiters, w, entry);
		w->queued = 0;
		w->woken = 1;
		free(w->error);
		w->error = xstrdup(msg);
		event_active(w->ev, EV_TIMEOUT, 1);
	}
	free(msg);
}
