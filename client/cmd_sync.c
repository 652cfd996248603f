/*
 * cmd_sync.c - quipu enroll, join, revoke, peers, sync, conflicts,
 * quarantine and bundle: the commands of issue 3 (/work/notes/sync.md).
 *
 * Each one is a single local API request.  What the daemon answers about
 * other nodes (names, last errors, refusal reasons) came from the network,
 * so it is printed with control characters blanked: one line stays one line.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cert.h"
#include "cli.h"
#include "err.h"
#include "util.h"
#include "uuid.h"
#include "wire.h"

#define KEY_HEX (2 * QP_KEY_LEN)
#define SHORT_KEY 16            /* hex digits shown for a key in tables */
#define SYNC_WAIT_DEFAULT_S 60  /* sync --wait without --timeout */
#define SYNC_REPLY_SLACK_S 10   /* client waits this much beyond the daemon */
#define SINCE_MAX ((size_t)64 << 20)

/* A copy of s (NULL: "") with control characters turned into spaces. */
static char *clean(const char *s)
{
	char *t = qp_xstrdup(s != NULL ? s : "");
	unsigned char *p;

	for (p = (unsigned char *)t; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return t;
}

/* Report an ok:false reply of command `what` on one line.  A daemon that
 * predates these ops answers "unknown op 'X'": say so plainly rather than
 * leave the user guessing whether the command was misspelt. */
static void report_refusal(const char *what, const json_t *reply)
{
	char *e = clean(qp_cli_reply_error(reply));
	size_t n = strlen(what);

	if (strncmp(e, "unknown op", 10) == 0)
		qp_cli_err("%s: this quipud does not support %s (%s); is it "
			   "older than this quipu?", what, what, e);
	else if (strncmp(e, what, n) == 0 && e[n] == ':')
		qp_cli_err("%s", e);
	else
		qp_cli_err("%s: %s", what, e);
	free(e);
}

/* qp_cli_call, with refusals reported by report_refusal. */
static int call(qp_cli *c, const char *what, json_t *req, json_t **reply)
{
	json_t *r = NULL;
	int rc;

	if ((rc = qp_cli_connect(c)) != QP_EXIT_OK)
		return rc;
	rc = qp_api_call(c->api, req, &r);
	if (rc < 0)
		return qp_cli_api_fail(c, rc);
	if (!json_is_true(json_object_get(r, "ok"))) {
		report_refusal(what, r);
		json_decref(r);
		return QP_EXIT_FAIL;
	}
	*reply = r;
	return QP_EXIT_OK;
}

/* A 64-hex-digit key, lower-cased into out.  0 or -1. */
static int parse_key(const char *s, char out[KEY_HEX + 1])
{
	uint8_t raw[QP_KEY_LEN];

	if (strlen(s) != KEY_HEX || qp_unhex(s, raw, QP_KEY_LEN) != 0)
		return -1;
	qp_hex(raw, QP_KEY_LEN, out);
	return 0;
}

/* An unsigned decimal (no sign, no blanks) up to max.  0 or -1. */
static int parse_uint(const char *s, unsigned long long max,
		      unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A JSON value as display text: strings as they are, other values as
 * compact JSON, absent or null as dflt.  Returns a malloc'd, clean string. */
static char *text_of(const json_t *v, const char *dflt)
{
	char *s, *t;

	if (v == NULL || json_is_null(v))
		return clean(dflt);
	if (json_is_string(v))
		return clean(json_string_value(v));
	s = qp_cli_dumps(v);
	t = clean(s);
	free(s);
	return t;
}

/* Any JSON value (absent: null) as clean compact JSON text. */
static char *json_text(const json_t *v)
{
	char *s = qp_cli_dumps(v != NULL ? v : json_null()), *t;

	t = clean(s);
	free(s);
	return t;
}

/* The first SHORT_KEY hex digits of a key (or whatever string it is). */
static char *short_key(const json_t *v)
{
	char *s = text_of(v, "?");

	if (strlen(s) > SHORT_KEY)
		s[SHORT_KEY] = '\0';
	return s;
}

static void print_json(const json_t *v)
{
	char *s = qp_cli_dumps(v);

	printf("%s\n", s);
	free(s);
}

/* ---- tables ------------------------------------------------------- */

/* Rows of cells printed in aligned columns, two spaces apart, the last
 * column unpadded.  Cells are owned by the table. */
typedef struct table {
	size_t ncols, nrows, cap;
	char **cells;
} table;

static void tab_init(table *t, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
}

/* Append a row of ncols cells, taking ownership of each. */
static void tab_row(table *t, char **cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->cells = qp_xrealloc(t->cells,
				       t->cap * t->ncols * sizeof(*t->cells));
	}
	memcpy(t->cells + t->nrows * t->ncols, cells,
	       t->ncols * sizeof(*cells));
	t->nrows++;
}

/* Display width: code points, close enough for names in Spanish. */
static size_t width(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static void tab_print(const table *t, const char *const *head)
{
	size_t *w = qp_xcalloc(t->ncols, sizeof(*w)), r, i, n;
	const char *s;

	for (i = 0; i < t->ncols; i++)
		w[i] = width(head[i]);
	for (r = 0; r < t->nrows; r++)
		for (i = 0; i < t->ncols; i++)
			if ((n = width(t->cells[r * t->ncols + i])) > w[i])
				w[i] = n;
	for (r = 0; r <= t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			s = r == 0 ? head[i] : t->cells[(r - 1) * t->ncols + i];
			fputs(s, stdout);
			if (i + 1 == t->ncols)
				break;
			for (n = width(s); n < w[i] + 2; n++)
				putchar(' ');
		}
		putchar('\n');
	}
	free(w);
}

static void tab_free(table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
}

/* ---- enroll ------------------------------------------------------- */

/* n decimal digits at *p, advancing *p.  -1 when not digits. */
static int digits(const char **p, int n)
{
	int v = 0;

	while (n-- > 0) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (*(*p)++ - '0');
	}
	return v;
}

/* --expires: "never" (0), YYYY-MM-DD (the end of that day, UTC), or an ISO
 * date-time YYYY-MM-DD[T ]HH:MM[:SS[.frac]][Z|+HH:MM|-HH:MM] (UTC when no
 * zone is given).  0 or -1. */
static int parse_expires(const char *s, long long *out)
{
	const char *p = s;
	struct tm tm, chk;
	int hh = 23, mi = 59, ss = 59, off = 0, sign, oh, om;
	time_t t;

	if (strcmp(s, "never") == 0) {
		*out = 0;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	if ((tm.tm_year = digits(&p, 4)) < 0 || *p++ != '-' ||
	    (tm.tm_mon = digits(&p, 2)) < 0 || *p++ != '-' ||
	    (tm.tm_mday = digits(&p, 2)) < 0)
		return -1;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if ((hh = digits(&p, 2)) < 0 || *p++ != ':' ||
		    (mi = digits(&p, 2)) < 0)
			return -1;
		ss = 0;
		if (*p == ':') {
			p++;
			if ((ss = digits(&p, 2)) < 0)
				return -1;
			if (*p == '.' || *p == ',') {
				p++;
				if (*p < '0' || *p > '9')
					return -1;
				while (*p >= '0' && *p <= '9')
					p++;
			}
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p++ == '-' ? -1 : 1;
			if ((oh = digits(&p, 2)) < 0)
				return -1;
			if (*p == ':')
				p++;
			if ((om = digits(&p, 2)) < 0 || oh > 23 || om > 59)
				return -1;
			off = sign * (oh * 3600 + om * 60);
		}
	}
	if (*p != '\0' || hh > 23 || mi > 59 || ss > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	tm.tm_hour = hh;
	tm.tm_min = mi;
	tm.tm_sec = ss == 60 ? 59 : ss;
	chk = tm;
	t = timegm(&tm);
	/* timegm normalises 2025-02-30 into March: refuse such dates. */
	if (t == (time_t)-1 || tm.tm_mday != chk.tm_mday ||
	    tm.tm_mon != chk.tm_mon || tm.tm_year != chk.tm_year)
		return -1;
	*out = (long long)t - off;
	return 0;
}

static int name_ok(const char *s)
{
	const unsigned char *p;

	if (*s == '\0' || strlen(s) > QP_CERT_NAME_MAX)
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

int qp_cmd_enroll(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "pubkey", required_argument, NULL, 'k' },
		{ "org", required_argument, NULL, 'O' },
		{ "name", required_argument, NULL, 'n' },
		{ "role", required_argument, NULL, 'r' },
		{ "expires", required_argument, NULL, 'e' },
		{ "address", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const char *pubkey = NULL, *name = NULL, *role = "technician";
	const char *expires = NULL, *address = NULL, *token;
	char key[KEY_HEX + 1], org[QP_UUID_STRLEN + 1];
	uint8_t raw[QP_UUID_LEN];
	json_t *orgs, *req = NULL, *reply = NULL, *v;
	long long exp;
	size_t i;
	int o, status = QP_EXIT_OK, dup;

	orgs = json_array();
	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "k:O:n:r:e:a:", opts,
				  &status)) != -1) {
		switch (o) {
		case -2:
			goto out;
		case 'k':
			pubkey = optarg;
			break;
		case 'O':
			if (qp_uuid_parse(optarg, raw) != 0) {
				status = qp_cli_usage(argv[0], "--org wants an "
						      "organisation id (UUID), "
						      "not \"%s\"", optarg);
				goto out;
			}
			/* Canonical text, once each: a certificate holds a
			 * set of orgs. */
			qp_uuid_format(raw, org);
			dup = 0;
			json_array_foreach(orgs, i, v)
				dup |= strcmp(json_string_value(v), org) == 0;
			if (!dup)
				json_array_append_new(orgs, json_string(org));
			break;
		case 'n':
			name = optarg;
			break;
		case 'r':
			role = optarg;
			break;
		case 'e':
			expires = optarg;
			break;
		case 'a':
			address = optarg;
			break;
		}
	}
	if ((status = qp_cli_operands(argc, argv, 0, "")) != QP_EXIT_OK)
		goto out;
	status = QP_EXIT_USAGE;
	if (pubkey == NULL) {
		qp_cli_usage(argv[0], "--pubkey KEY is required (the device's "
			     "`quipu id`)");
		goto out;
	}
	if (parse_key(pubkey, key) != 0) {
		qp_cli_usage(argv[0], "--pubkey wants 64 hex digits, not "
			     "\"%s\"", pubkey);
		goto out;
	}
	if (json_array_size(orgs) == 0) {
		qp_cli_usage(argv[0], "at least one --org ORG is required");
		goto out;
	}
	if (json_array_size(orgs) > QP_CERT_ORGS_MAX) {
		qp_cli_usage(argv[0], "at most %d organisations per device",
			     QP_CERT_ORGS_MAX);
		goto out;
	}
	if (name == NULL) {
		qp_cli_usage(argv[0], "--name NAME is required");
		goto out;
	}
	if (!name_ok(name)) {
		qp_cli_usage(argv[0], "--name wants 1 to %d bytes without "
			     "control characters", QP_CERT_NAME_MAX);
		goto out;
	}
	if (strcmp(role, "technician") != 0 && strcmp(role, "relay") != 0 &&
	    strcmp(role, "hub") != 0) {
		qp_cli_usage(argv[0], "role must be technician, relay or hub, "
			     "not \"%s\"", role);
		goto out;
	}
	if (expires == NULL) {
		exp = (long long)time(NULL) + 365LL * 86400;
	} else if (parse_expires(expires, &exp) != 0) {
		qp_cli_usage(argv[0], "--expires wants YYYY-MM-DD, an ISO "
			     "date-time or \"never\", not \"%s\"", expires);
		goto out;
	} else if (exp != 0 && exp <= (long long)time(NULL)) {
		qp_cli_usage(argv[0], "--expires %s is in the past", expires);
		goto out;
	}
	if (address != NULL &&
	    qp_token_addr_split(address, NULL, 0, NULL) != 0) {
		qp_cli_usage(argv[0], "--address wants HOST:PORT, not \"%s\"",
			     address);
		goto out;
	}
	req = json_pack("{s:s, s:s, s:O, s:s, s:s, s:I}", "op", "enroll",
			"pubkey", key, "orgs", orgs, "name", name, "role",
			role, "expires", (json_int_t)exp);
	if (address != NULL)
		json_object_set_new(req, "address", json_string(address));
	if ((status = call(c, "enroll", req, &reply)) != QP_EXIT_OK)
		goto out;
	token = jstr(reply, "token");
	if (token == NULL) {
		qp_cli_err("enroll: quipud's reply holds no token");
		status = QP_EXIT_FAIL;
		goto out;
	}
	printf("%s\n", token);
out:
	json_decref(orgs);
	json_decref(req);
	json_decref(reply);
	return status;
}

/* ---- join --------------------------------------------------------- */

int qp_cmd_join(qp_cli *c, int argc, char **argv)
{
	json_t *req = NULL, *reply = NULL, *hub, *orgs, *v;
	char *token = NULL, *buf = NULL, *key = NULL, *addr = NULL, *s;
	const char *src;
	size_t len, i, n = 0;
	int status = QP_EXIT_OK;

	if ((src = qp_cli_one_arg(c, argc, argv, "TOKEN", &status)) == NULL)
		return status;
	if (strcmp(src, "-") == 0) {
		status = qp_cli_read_all(NULL, QP_TOKEN_MAX * 4, &buf, &len);
		if (status != QP_EXIT_OK)
			return status;
		src = buf;
	}
	/* A pasted token may carry blanks or line breaks (mail clients wrap
	 * long lines); base64url holds none, so drop them all. */
	token = qp_xmalloc(strlen(src) + 1);
	for (; *src != '\0'; src++)
		if (strchr(" \t\r\n\v\f", *src) == NULL)
			token[n++] = *src;
	token[n] = '\0';
	status = QP_EXIT_USAGE;
	if (n == 0) {
		qp_cli_usage(argv[0], "empty join token");
		goto out;
	}
	if (strncmp(token, QP_TOKEN_PREFIX, strlen(QP_TOKEN_PREFIX)) != 0) {
		qp_cli_usage(argv[0], "not a join token (it starts with "
			     "\"%s\"; get one from the hub's `quipu enroll`)",
			     QP_TOKEN_PREFIX);
		goto out;
	}
	if (n > QP_TOKEN_MAX) {
		qp_cli_usage(argv[0], "join token longer than %u characters",
			     QP_TOKEN_MAX);
		goto out;
	}
	req = json_pack("{s:s, s:s}", "op", "join", "token", token);
	if ((status = call(c, "join", req, &reply)) != QP_EXIT_OK)
		goto out;
	hub = json_object_get(reply, "hub");
	key = short_key(json_object_get(hub, "key"));
	addr = text_of(json_object_get(hub, "address"), "?");
	printf("joined hub %s\u2026 at %s; orgs: ", key, addr);
	orgs = json_object_get(reply, "orgs");
	if (!json_is_array(orgs))
		orgs = json_object_get(json_object_get(reply, "cert"), "orgs");
	json_array_foreach(orgs, i, v) {
		s = text_of(v, "?");
		printf("%s%s", i ? ", " : "", s);
		free(s);
	}
	printf("%s\n", json_array_size(orgs) ? "" : "none");
out:
	free(token);
	free(buf);
	free(key);
	free(addr);
	json_decref(req);
	json_decref(reply);
	return status;
}

/* ---- revoke ------------------------------------------------------- */

int qp_cmd_revoke(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "after-seq", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *after = NULL;
	char key[KEY_HEX + 1], *k;
	unsigned long long seq = 0;
	json_t *req = NULL, *reply = NULL, *rev, *v;
	int o, status = QP_EXIT_OK;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "s:", opts, &status)) != -1) {
		if (o == -2)
			return status;
		if (o == 's')
			after = optarg;
	}
	if ((status = qp_cli_operands(argc, argv, 1, "KEY")) != QP_EXIT_OK)
		return status;
	if (parse_key(argv[optind], key) != 0)
		return qp_cli_usage(argv[0], "KEY wants 64 hex digits, not "
				    "\"%s\"", argv[optind]);
	if (after != NULL && parse_uint(after, (unsigned long long)INT64_MAX,
					&seq) != 0)
		return qp_cli_usage(argv[0], "--after-seq wants a seq number "
				    "(0 or more), not \"%s\"", after);
	req = json_pack("{s:s, s:s}", "op", "revoke", "key", key);
	if (after != NULL)
		json_object_set_new(req, "after_seq",
				    json_integer((json_int_t)seq));
	status = call(c, "revoke", req, &reply);
	json_decref(req);
	if (status != QP_EXIT_OK)
		return status;
	rev = json_object_get(reply, "revocation");
	k = text_of(json_object_get(rev, "key"), key);
	v = json_object_get(rev, "after_seq");
	if (!json_is_integer(v))
		printf("revoked %s\n", k);
	else if (json_integer_value(v) == 0)
		printf("revoked %s: none of its deltas are accepted any more\n",
		       k);
	else
		printf("revoked %s after seq %lld: its deltas up to seq %lld "
		       "stay valid, later ones are quarantined\n",
		       k, (long long)json_integer_value(v),
		       (long long)json_integer_value(v));
	free(k);
	json_decref(reply);
	return QP_EXIT_OK;
}

/* ---- listings: peers, conflicts, quarantine ----------------------- */

/* Ask for op, then print its array member `member` as JSON (as_json) or
 * hand it to `show`.  An absent member counts as empty. */
static int listing(qp_cli *c, int argc, char **argv, const char *op,
		   const char *member, void (*show)(const json_t *arr))
{
	json_t *req, *reply = NULL, *arr, *empty;
	int status, as_json;

	if ((status = qp_cli_json_opts(c, argc, argv, 0, &as_json)) >= 0)
		return status;
	req = json_pack("{s:s}", "op", op);
	status = call(c, argv[0], req, &reply);
	json_decref(req);
	if (status != QP_EXIT_OK)
		return status;
	empty = json_array();
	arr = json_object_get(reply, member);
	if (!json_is_array(arr))
		arr = empty;
	if (as_json)
		print_json(arr);
	else
		show(arr);
	json_decref(empty);
	json_decref(reply);
	return QP_EXIT_OK;
}

static char *int_text(const json_t *v)
{
	char buf[32];

	if (!json_is_integer(v))
		return text_of(v, "-");
	return qp_xstrdup(qp_fmt(buf, sizeof(buf), "%lld",
				 (long long)json_integer_value(v)));
}

static void show_peers(const json_t *arr)
{
	static const char *const head[] = { "KEY", "NAME", "ROLE",
					    "LAST CONTACT", "LAG", "PENDING",
					    "LAST ERROR" };
	char *row[7], *role;
	const json_t *p;
	size_t i, n;
	table t;

	if (json_array_size(arr) == 0) {
		printf("no peers\n");
		return;
	}
	tab_init(&t, 7);
	json_array_foreach(arr, i, p) {
		/* "key" per the spec; a certificate's own name for it is
		 * "device". */
		row[0] = short_key(json_object_get(p, "key")
					   ? json_object_get(p, "key")
					   : json_object_get(p, "device"));
		row[1] = text_of(json_object_get(p, "name"), "-");
		role = text_of(json_object_get(p, "role"), "-");
		if (json_is_true(json_object_get(p, "revoked"))) {
			n = strlen(role) + sizeof(" (revoked)");
			row[2] = qp_xmalloc(n);
			qp_fmt(row[2], n, "%s (revoked)", role);
			free(role);
		} else {
			row[2] = role;
		}
		row[3] = text_of(json_object_get(p, "last_contact"), "never");
		row[4] = int_text(json_object_get(p, "lag"));
		row[5] = int_text(json_object_get(p, "pending"));
		row[6] = text_of(json_object_get(p, "last_error"), "-");
		if (json_integer_value(json_object_get(p, "clock_ahead_s")) > 0) {
			/* A wrong date comes first: it is the fix to make. */
			char *e = row[6];
			json_int_t d = json_integer_value(
				json_object_get(p, "clock_ahead_s"));
			d = (d + 43200) / 86400; /* nearest day */
			n = strlen(e) + 96;
			row[6] = qp_xmalloc(n);
			int none = e[0] == '\0' || strcmp(e, "-") == 0;
			qp_fmt(row[6], n, "clock %lld days ahead: set its date%s%s",
			       (long long)d, none ? "" : "; ", none ? "" : e);
			free(e);
		}
		if (row[6][0] == '\0') {
			free(row[6]);
			row[6] = qp_xstrdup("-");
		}
		tab_row(&t, row);
	}
	tab_print(&t, head);
	tab_free(&t);
}

int qp_cmd_peers(qp_cli *c, int argc, char **argv)
{
	return listing(c, argc, argv, "peers", "peers", show_peers);
}

/* "voided: REASON" (malloc'd). */
static char *void_text(const json_t *reason)
{
	char *s = json_text(reason), *out;
	size_t n = strlen(s) + 9;

	out = qp_xmalloc(n);
	snprintf(out, n, "voided: %s", s);
	free(s);
	return out;
}

/* One row per competing value; the conflict's id, kind and field only on
 * its first row. */
static void show_conflicts(const json_t *arr)
{
	static const char *const head[] = { "ID", "KIND", "FIELD", "AUTHOR",
					    "HLC", "VALUE" };
	const json_t *cf, *vals, *v;
	char *row[6];
	size_t i, j;
	table t;

	if (json_array_size(arr) == 0) {
		printf("no conflicts\n");
		return;
	}
	tab_init(&t, 6);
	json_array_foreach(arr, i, cf) {
		vals = json_object_get(cf, "values");
		for (j = 0; j == 0 || j < json_array_size(vals); j++) {
			v = json_array_get(vals, j);
			row[0] = j ? qp_xstrdup("") :
				     text_of(json_object_get(cf, "id"), "?");
			row[1] = j ? qp_xstrdup("") :
				     text_of(json_object_get(cf, "kind"), "?");
			row[2] = j ? qp_xstrdup("") :
				     text_of(json_object_get(cf, "field"), "?");
			row[3] = v ? short_key(json_object_get(v, "author"))
				   : qp_xstrdup("-");
			row[4] = text_of(json_object_get(v, "hlc"), "-");
			/* Values as JSON, so "12" and 12 are told apart; a
			 * void as the word and its reason. */
			if (v != NULL && json_object_get(v, "void") != NULL)
				row[5] = void_text(json_object_get(v, "void"));
			else
				row[5] = v ? json_text(json_object_get(v, "value"))
					   : qp_xstrdup("-");
			tab_row(&t, row);
		}
	}
	tab_print(&t, head);
	tab_free(&t);
}

int qp_cmd_settle(qp_cli *c, int argc, char **argv)
{
	json_t *reply = NULL;
	int status = qp_cli_call_op(c, argc, argv, "settle", &reply);

	if (status != QP_EXIT_OK)
		return status;
	printf("%s\n", json_is_true(json_object_get(reply, "was_copy"))
			       ? "settled: local writes open again"
			       : "nothing to settle: this data directory is not "
				 "a restored copy");
	json_decref(reply);
	return QP_EXIT_OK;
}

int qp_cmd_conflicts(qp_cli *c, int argc, char **argv)
{
	return listing(c, argc, argv, "conflicts", "conflicts",
		       show_conflicts);
}

static void show_quarantine(const json_t *arr)
{
	static const char *const head[] = { "AUTHOR", "ORG", "SEQ", "OP",
					    "REASON" };
	const json_t *q;
	char *row[5];
	size_t i;
	table t;

	if (json_array_size(arr) == 0) {
		printf("quarantine is empty\n");
		return;
	}
	tab_init(&t, 5);
	json_array_foreach(arr, i, q) {
		row[0] = short_key(json_object_get(q, "author"));
		row[1] = text_of(json_object_get(q, "org"), "-");
		row[2] = int_text(json_object_get(q, "seq"));
		row[3] = int_text(json_object_get(q, "op_index"));
		row[4] = text_of(json_object_get(q, "reason"), "-");
		tab_row(&t, row);
	}
	tab_print(&t, head);
	tab_free(&t);
}

int qp_cmd_quarantine(qp_cli *c, int argc, char **argv)
{
	return listing(c, argc, argv, "quarantine", "quarantine",
		       show_quarantine);
}

/* "create producer 0190…, update lot 0190… (+3 more)": what a kept
 * delta would have done. */
static char *ops_text(const json_t *f)
{
	const json_t *ops = json_object_get(f, "ops"), *op;
	json_int_t n = json_integer_value(json_object_get(f, "nops"));
	size_t shown = json_array_size(ops) < 3 ? json_array_size(ops) : 3;
	char *out = qp_xmalloc(3 * 96 + 32);
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < shown; i++) {
		const char *t, *k, *id;
		op = json_array_get(ops, i);
		t = json_string_value(json_object_get(op, "type"));
		k = json_string_value(json_object_get(op, "kind"));
		id = json_string_value(json_object_get(op, "id"));
		len += (size_t)snprintf(out + len, 96, "%s%.8s %.24s %.8s",
					i ? ", " : "", t ? t : "?", k ? k : "?",
					id ? id : "?");
	}
	if (n > (json_int_t)shown)
		snprintf(out + len, 32, " (+%lld more)",
			 (long long)(n - (json_int_t)shown));
	if (out[0] == '\0')
		strcpy(out, "-");
	return out;
}

static void show_forks(const json_t *arr)
{
	static const char *const head[] = { "AUTHOR", "ORG", "SEQ", "WHAT",
					    "OPS" };
	const json_t *f;
	char *row[5];
	size_t i;
	table t;

	if (json_array_size(arr) == 0) {
		printf("no forks\n");
		return;
	}
	tab_init(&t, 5);
	json_array_foreach(arr, i, f) {
		row[0] = short_key(json_object_get(f, "author"));
		row[1] = text_of(json_object_get(f, "org"), "-");
		row[2] = int_text(json_object_get(f, "seq"));
		row[3] = text_of(json_object_get(f, "what"), "-");
		row[4] = ops_text(f);
		tab_row(&t, row);
	}
	tab_print(&t, head);
	tab_free(&t);
}

int qp_cmd_forks(qp_cli *c, int argc, char **argv)
{
	return listing(c, argc, argv, "forks", "forks", show_forks);
}

/* ---- sync --------------------------------------------------------- */

int qp_cmd_sync(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long secs = SYNC_WAIT_DEFAULT_S;
	json_t *req, *reply = NULL;
	long long need;
	int o, status = QP_EXIT_OK, wait = 0, timeout = 0;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "wt:", opts, &status)) != -1) {
		if (o == -2)
			return status;
		if (o == 'w')
			wait = 1;
		else if (o == 't' && (parse_uint(optarg, 86400, &secs) != 0 ||
				      secs == 0))
			return qp_cli_usage(argv[0], "--timeout wants seconds "
					    "(1 to 86400), not \"%s\"",
					    optarg);
		else if (o == 't')
			timeout = 1;
	}
	if ((status = qp_cli_operands(argc, argv, 0, "")) != QP_EXIT_OK)
		return status;
	/* Without --wait quipud starts the sync and answers at once: there
	 * is nothing to time out, so a --timeout would be silently lost. */
	if (timeout && !wait)
		return qp_cli_usage(argv[0], "--timeout applies only with "
				    "--wait (without it, sync returns at "
				    "once)");
	/* The daemon answers when the hub acked or when its own timeout
	 * ran out; the client waits longer so that it hears which.  Set
	 * before connecting: the connection takes its timeout then. */
	need = ((long long)secs + SYNC_REPLY_SLACK_S) * 1000;
	if (c->timeout_ms != 0 && c->timeout_ms < need)
		c->timeout_ms = (int)need;
	req = json_pack("{s:s, s:b, s:I}", "op", "sync", "wait", wait,
			"timeout_ms", (json_int_t)(secs * 1000));
	status = call(c, "sync", req, &reply);
	json_decref(req);
	if (status != QP_EXIT_OK)
		return status;
	if (!wait)
		printf("sync started\n");
	else
		printf("in sync: the hub acked every local delta\n");
	json_decref(reply);
	return QP_EXIT_OK;
}

/* ---- bundle ------------------------------------------------------- */

/* The absolute path of file for the daemon, whose working directory is not
 * ours: realpath of the directory (which must exist) plus the base name.
 * Returns a malloc'd path or NULL with the error printed. */
static char *abs_path(const char *what, const char *file)
{
	char *dup = qp_xstrdup(file), *slash, *dir, *base, *res = NULL;
	char real[PATH_MAX];
	size_t n;

	slash = strrchr(dup, '/');
	if (slash == NULL) {
		dir = ".";
		base = dup;
	} else {
		*slash = '\0';
		dir = slash == dup ? "/" : dup;
		base = slash + 1;
	}
	if (*base == '\0' || strcmp(base, ".") == 0 ||
	    strcmp(base, "..") == 0) {
		qp_cli_err("%s: %s: not a file name", what, file);
		goto out;
	}
	if (realpath(dir, real) == NULL) {
		qp_cli_err("%s: %s: %s", what, dir, strerror(errno));
		goto out;
	}
	n = strlen(real) + strlen(base) + 2;
	res = qp_xmalloc(n);
	qp_fmt(res, n, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base);
out:
	free(dup);
	return res;
}

/* --since FILE: a version vector [{author, org, seq}, ...] (or an object
 * holding one under "since" or "vector"), checked and normalised.  Returns
 * an exit status; *out a new array. */
static int read_since(const char *what, const char *file, json_t **out)
{
	char *buf = NULL, key[KEY_HEX + 1], org[QP_UUID_STRLEN + 1];
	uint8_t raw[QP_UUID_LEN];
	json_t *doc, *vec, *e, *res = NULL, *seq;
	json_error_t err;
	const char *a, *o;
	size_t len, i;
	int status;

	if ((status = qp_cli_read_all(file, SINCE_MAX, &buf, &len)) !=
	    QP_EXIT_OK)
		return status;
	status = QP_EXIT_FAIL;
	doc = json_loadb(buf, len, 0, &err);
	if (doc == NULL) {
		qp_cli_err("%s: %s:%d: JSON: %s", what, file, err.line,
			   err.text);
		goto out;
	}
	vec = doc;
	if (json_is_object(doc)) {
		vec = json_object_get(doc, "since");
		if (vec == NULL)
			vec = json_object_get(doc, "vector");
	}
	if (!json_is_array(vec)) {
		qp_cli_err("%s: %s: expected a JSON array of {\"author\", "
			   "\"org\", \"seq\"}", what, file);
		goto out;
	}
	res = json_array();
	json_array_foreach(vec, i, e) {
		a = jstr(e, "author");
		o = jstr(e, "org");
		seq = json_object_get(e, "seq");
		if (a == NULL || parse_key(a, key) != 0 || o == NULL ||
		    qp_uuid_parse(o, raw) != 0 || !json_is_integer(seq) ||
		    json_integer_value(seq) < 0) {
			qp_cli_err("%s: %s: entry %zu: expected {\"author\": "
				   "64 hex digits, \"org\": UUID, \"seq\": "
				   "integer >= 0}", what, file, i + 1);
			json_decref(res);
			res = NULL;
			goto out;
		}
		qp_uuid_format(raw, org);
		json_array_append_new(res, json_pack("{s:s, s:s, s:I}",
						     "author", key, "org", org,
						     "seq",
						     json_integer_value(seq)));
	}
	*out = res;
	status = QP_EXIT_OK;
out:
	json_decref(doc);
	free(buf);
	return status;
}

static int bundle_export(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "for", required_argument, NULL, 'f' },
		{ "since", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *what = "bundle export", *forkey = NULL, *since = NULL;
	char key[KEY_HEX + 1], *path = NULL;
	json_t *req = NULL, *reply = NULL, *vec = NULL;
	int o, status = QP_EXIT_OK;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "f:s:", opts, &status)) !=
	       -1) {
		if (o == -2)
			return status;
		if (o == 'f')
			forkey = optarg;
		else if (o == 's')
			since = optarg;
	}
	if ((status = qp_cli_operands(argc, argv, 1, "FILE")) != QP_EXIT_OK)
		return status;
	if (forkey != NULL && since != NULL)
		return qp_cli_usage(argv[0], "export takes --for or --since, "
				    "not both");
	if (forkey != NULL && parse_key(forkey, key) != 0)
		return qp_cli_usage(argv[0], "--for wants a device key (64 hex "
				    "digits), not \"%s\"", forkey);
	if (strcmp(argv[optind], "-") == 0)
		return qp_cli_usage(argv[0], "export writes a file (quipud "
				    "writes it), not stdout");
	if (since != NULL &&
	    (status = read_since(what, since, &vec)) != QP_EXIT_OK)
		return status;
	status = QP_EXIT_FAIL;
	if ((path = abs_path(what, argv[optind])) == NULL)
		goto out;
	req = json_pack("{s:s, s:s}", "op", "bundle_export", "path", path);
	if (forkey != NULL)
		json_object_set_new(req, "for", json_string(key));
	if (vec != NULL)
		json_object_set(req, "since", vec);
	if ((status = call(c, what, req, &reply)) != QP_EXIT_OK)
		goto out;
	printf("wrote %lld deltas (%lld bytes) to %s\n",
	       (long long)json_integer_value(json_object_get(reply, "deltas")),
	       (long long)json_integer_value(json_object_get(reply, "bytes")),
	       argv[optind]);
out:
	free(path);
	json_decref(vec);
	json_decref(req);
	json_decref(reply);
	return status;
}

/* Each distinct refusal reason once, with the number of deltas it refused
 * ("quipu: refused 15 deltas: author 90f98912 is not trusted: ..."), and
 * the refusals whose reason quipud did not list. */
static void report_refused(const json_t *reply, long long nref)
{
	const json_t *why = json_object_get(reply, "refused_reasons"), *g;
	long long n, told = 0;
	size_t i;
	char *t;

	json_array_foreach(why, i, g) {
		n = (long long)json_integer_value(json_object_get(g, "count"));
		if (n <= 0)
			continue;
		t = text_of(json_object_get(g, "reason"), "no reason given");
		qp_cli_err("refused %lld delta%s: %s", n, n == 1 ? "" : "s", t);
		free(t);
		told += n;
	}
	if (nref > told)
		qp_cli_err("refused %lld more delta%s (reasons not listed)",
			   nref - told, nref - told == 1 ? "" : "s");
}

/* The bundle was read to the end (ok reply): the summary goes to stdout,
 * each distinct refusal reason to stderr, and the exit status is 1 when any
 * delta was refused (so a script notices records that did not arrive). */
static int bundle_import(qp_cli *c, int argc, char **argv)
{
	const char *what = "bundle import", *file;
	char real[PATH_MAX];
	json_t *req, *reply = NULL, *refused;
	long long applied, dups, nref, total, quar, forks;
	int status = QP_EXIT_OK;

	if ((file = qp_cli_one_arg(c, argc, argv, "FILE", &status)) == NULL)
		return status;
	if (realpath(file, real) == NULL) {
		qp_cli_err("%s: %s: %s", what, file, strerror(errno));
		return QP_EXIT_FAIL;
	}
	req = json_pack("{s:s, s:s}", "op", "bundle_import", "path", real);
	status = call(c, what, req, &reply);
	json_decref(req);
	if (status != QP_EXIT_OK)
		return status;
	refused = json_object_get(reply, "refused");
	applied = (long long)json_integer_value(json_object_get(reply,
								 "applied"));
	dups = (long long)json_integer_value(json_object_get(reply,
							      "duplicates"));
	nref = (long long)json_array_size(refused);
	if (json_is_integer(json_object_get(reply, "refused_count")))
		nref = (long long)json_integer_value(
			json_object_get(reply, "refused_count"));
	total = json_is_integer(json_object_get(reply, "deltas"))
			? (long long)json_integer_value(
				  json_object_get(reply, "deltas"))
			: applied + dups + nref;
	quar = (long long)json_integer_value(json_object_get(reply,
							      "quarantined_ops"));
	forks = (long long)json_integer_value(json_object_get(reply, "forks"));
	printf("imported %lld deltas: %lld applied, %lld already held, %lld "
	       "refused\n", total, applied, dups, nref);
	fflush(stdout);
	if (nref > 0)
		report_refused(reply, nref);
	/* Kept, but not applied: someone has to look. */
	if (quar > 0)
		qp_cli_err("%lld op%s of these deltas went to quarantine (see "
			   "quipu quarantine)", quar, quar == 1 ? "" : "s");
	if (forks > 0)
		qp_cli_err("%lld delta%s kept as forks, not applied (see quipu "
			   "forks)", forks, forks == 1 ? " was" : "s were");
	json_decref(reply);
	return nref > 0 || quar > 0 || forks > 0 ? QP_EXIT_FAIL : QP_EXIT_OK;
}

int qp_cmd_bundle(qp_cli *c, int argc, char **argv)
{
	const qp_cmd *self = qp_cli_cmd(argv[0]);
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (sub == NULL)
		return qp_cli_usage(argv[0], "missing export or import");
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		fputs(self != NULL ? self->usage : "", stdout);
		return QP_EXIT_OK;
	}
	if (strcmp(sub, "export") != 0 && strcmp(sub, "import") != 0)
		return qp_cli_usage(argv[0], "unknown bundle command \"%s\" "
				    "(export or import)", sub);
	/* The sub-command runs with argv[0] still naming `bundle`, so that
	 * --help and usage errors point at bundle's help. */
	argv[1] = argv[0];
	if (strcmp(sub, "export") == 0)
		return bundle_export(c, argc - 1, argv + 1);
	return bundle_import(c, argc - 1, argv + 1);
}
