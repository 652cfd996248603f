/*
 * schema.c - the kinds of schema v1 as one table, and the validation and
 * CSV-cell conversion that the table drives (see schema.h).
 *
 * Validation order is fixed so the first error reported is stable: the
 * record must be an object; then "id", "kind" and "org"; then unknown
 * members; then the kind's fields in table order (required, then form, then
 * the reference through the caller's lookup); then the org reference; then
 * the kind's cross-field rule.  Messages are "kind.path: reason" and never
 * echo more than a short, control-character-free excerpt of the input.
 *
 * Deep geometry checks (self-intersection with GEOS, geodesic area with
 * PROJ, the 6-decimal rule) are not done here; this file checks GeoJSON
 * structure, ranges and size bounds only.
 */
#include "schema.h"
#include "err.h"
#include "util.h"
#include "uuid.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define TEXT_MAX_DEFAULT 512
#define PATH_LEN 128         /* longest field path in a message */
#define SHOW_LEN 40          /* longest excerpt of input in a message */
#define GEOM_MAX_POSITIONS 100000
#define GEOM_MAX_RINGS 1000
#define REFS_MAX 1000        /* ids in one QP_T_REFS array */
#define LOTQTY_MAX 1000      /* entries in one QP_T_LOTQTY array */
#define OBJECT_MAX_KEYS 64
#define OBJECT_MAX_KEYLEN 64
#define OBJECT_MAX_ARRAY 64
#define KG_MAX 1e8           /* 100,000 t: far above any real lot */

/* ------------------------------------------------------------------ */
/* The table. */

static const char *const org_types[] = {"cooperative", "association", "firm",
					"network", NULL};
static const char *const sexes[] = {"F", "M", "X", NULL};
static const char *const tenures[] = {"owned",	    "leased", "communal",
				      "possession", "other",  NULL};
static const char *const areas[] = {"production", "management",
				    "foreign-trade", NULL};
static const char *const modes[] = {"in-person", "virtual", NULL};
static const char *const statuses[] = {"present", "left-early", "proxy",
				       "absent", NULL};
static const char *const products[] = {
	"coffee-cherry", "coffee-parchment", "coffee-green", "cacao-wet",
	"cacao-dry",	 "banana",	     "quinoa",	     "avocado",
	"other",	 NULL};
static const char *const event_types[] = {"receive",   "merge", "split",
					  "transform", "ship",  "claim",
					  NULL};
static const char *const results[] = {"confirmed", "corrected", "rejected",
				      NULL};

#define REQ QP_F_REQUIRED

static const qp_field org_fields[] = {
	{.name = "ruc", .type = QP_T_RUC, .flags = REQ | QP_F_UNIQUE},
	{.name = "name", .type = QP_T_TEXT, .flags = REQ},
	{.name = "type", .type = QP_T_ENUM, .flags = REQ, .values = org_types},
	{.name = "region", .type = QP_T_TEXT, .max_len = 128},
	{.name = "province", .type = QP_T_TEXT, .max_len = 128},
	{.name = "district", .type = QP_T_TEXT, .max_len = 128},
};

static const qp_field producer_fields[] = {
	{.name = "dni", .type = QP_T_DNI, .flags = REQ | QP_F_UNIQUE},
	{.name = "name", .type = QP_T_TEXT, .flags = REQ},
	{.name = "sex", .type = QP_T_ENUM, .flags = REQ, .values = sexes},
	{.name = "community", .type = QP_T_TEXT},
	{.name = "phone", .type = QP_T_PHONE},
	{.name = "birth_year", .type = QP_T_INT, .min = 1900, .max = 2030},
};

static const qp_field plot_fields[] = {
	{.name = "producer", .type = QP_T_REF, .flags = REQ | QP_F_SAME_ORG,
	 .ref_kind = "producer"},
	{.name = "crop", .type = QP_T_TEXT, .flags = REQ, .max_len = 128},
	{.name = "geometry", .type = QP_T_GEOM, .flags = REQ},
	{.name = "area_ha", .type = QP_T_NUM, .min = 0, .max = 100000,
	 .min_excl = 1},
	{.name = "accuracy_m", .type = QP_T_NUM, .min = 0, .max = 10000},
	{.name = "altitude_m", .type = QP_T_NUM, .min = -500, .max = 7000},
	{.name = "tenure", .type = QP_T_ENUM, .values = tenures},
	{.name = "captured_at", .type = QP_T_TIME},
};

static const qp_field service_fields[] = {
	{.name = "title", .type = QP_T_TEXT, .flags = REQ},
	{.name = "area", .type = QP_T_ENUM, .flags = REQ, .values = areas},
	{.name = "provider", .type = QP_T_TEXT, .flags = REQ},
	{.name = "sessions_planned", .type = QP_T_INT, .min = 1, .max = 100},
	{.name = "hours", .type = QP_T_NUM, .min = 0, .max = 1000,
	 .min_excl = 1},
};

static const qp_field session_fields[] = {
	{.name = "service", .type = QP_T_REF, .flags = REQ,
	 .ref_kind = "service"},
	{.name = "starts_at", .type = QP_T_TIME, .flags = REQ},
	{.name = "ends_at", .type = QP_T_TIME},
	{.name = "place", .type = QP_T_POINT},
	{.name = "mode", .type = QP_T_ENUM, .values = modes},
	{.name = "facilitator", .type = QP_T_TEXT},
};

static const qp_field attendance_fields[] = {
	{.name = "session", .type = QP_T_REF, .flags = REQ,
	 .ref_kind = "session"},
	{.name = "status", .type = QP_T_ENUM, .flags = REQ, .values = statuses},
	{.name = "producer", .type = QP_T_REF,
	 .flags = QP_F_SAME_ORG | QP_F_UNIQUE, .ref_kind = "producer"},
	{.name = "dni", .type = QP_T_DNI, .flags = QP_F_UNIQUE},
	{.name = "name", .type = QP_T_TEXT},
};

static const qp_field commitment_fields[] = {
	{.name = "service", .type = QP_T_REF, .flags = REQ,
	 .ref_kind = "service"},
	{.name = "accepted", .type = QP_T_BOOL, .flags = REQ},
	{.name = "signed_by", .type = QP_T_TEXT},
	{.name = "signed_at", .type = QP_T_DATE},
};

static const qp_field lot_fields[] = {
	{.name = "code", .type = QP_T_TEXT, .flags = REQ | QP_F_UNIQUE,
	 .max_len = 64},
	{.name = "product", .type = QP_T_ENUM, .flags = REQ, .values = products},
	{.name = "kg", .type = QP_T_NUM, .flags = REQ, .min = 0, .max = KG_MAX,
	 .min_excl = 1},
	{.name = "producer", .type = QP_T_REF, .flags = QP_F_SAME_ORG,
	 .ref_kind = "producer"},
	{.name = "plots", .type = QP_T_REFS, .flags = QP_F_SAME_ORG,
	 .ref_kind = "plot"},
	{.name = "quality", .type = QP_T_OBJECT},
};

static const qp_field lot_event_fields[] = {
	{.name = "lot", .type = QP_T_REF, .flags = REQ, .ref_kind = "lot"},
	{.name = "type", .type = QP_T_ENUM, .flags = REQ, .values = event_types},
	{.name = "inputs", .type = QP_T_LOTQTY, .ref_kind = "lot"},
	{.name = "outputs", .type = QP_T_LOTQTY, .ref_kind = "lot"},
	{.name = "buyer", .type = QP_T_REF, .ref_kind = "org"},
	{.name = "destination", .type = QP_T_TEXT},
	{.name = "container", .type = QP_T_TEXT, .max_len = 64},
	{.name = "document", .type = QP_T_TEXT, .max_len = 256},
	{.name = "reason", .type = QP_T_TEXT, .max_len = 2048},
};

static const qp_field verification_fields[] = {
	{.name = "target", .type = QP_T_REF, .flags = REQ, .ref_kind = NULL},
	{.name = "method", .type = QP_T_TEXT, .flags = REQ},
	{.name = "result", .type = QP_T_ENUM, .flags = REQ, .values = results},
	{.name = "notes", .type = QP_T_TEXT, .max_len = 4096},
};

/* The quantity inside a QP_T_LOTQTY entry follows the rule for lot.kg. */
static const qp_field qty_kg = {.name = "kg", .type = QP_T_NUM, .min = 0,
				.max = KG_MAX, .min_excl = 1};

static int plot_check(const json_t *rec, char *err, size_t errlen);
static int session_check(const json_t *rec, char *err, size_t errlen);
static int attendance_check(const json_t *rec, char *err, size_t errlen);
static int lot_event_check(const json_t *rec, char *err, size_t errlen);

#define KIND(n, f, fl, chk) {n, f, N(f), fl, chk, NULL}
static const qp_kind kinds[] = {
	KIND("org", org_fields, QP_K_UNIQUE_GLOBAL, NULL),
	KIND("producer", producer_fields, 0, NULL),
	KIND("plot", plot_fields, 0, plot_check),
	KIND("service", service_fields, 0, NULL),
	KIND("session", session_fields, 0, session_check),
	{"attendance", attendance_fields, N(attendance_fields),
	 QP_K_APPEND_ONLY, attendance_check, "session"},
	KIND("commitment", commitment_fields, 0, NULL),
	KIND("lot", lot_fields, 0, NULL),
	KIND("lot_event", lot_event_fields, QP_K_APPEND_ONLY, lot_event_check),
	KIND("verification", verification_fields, QP_K_APPEND_ONLY, NULL),
};

const qp_kind *qp_schema_kinds(size_t *n)
{
	if (n != NULL)
		*n = N(kinds);
	return kinds;
}

const qp_kind *qp_schema_kind(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < N(kinds); i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	return NULL;
}

const qp_field *qp_schema_field(const qp_kind *k, const char *name)
{
	if (k == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < k->nfields; i++)
		if (strcmp(k->fields[i].name, name) == 0)
			return &k->fields[i];
	return NULL;
}

const qp_field *qp_schema_key_of(const qp_kind *k, const json_t *rec)
{
	if (k == NULL)
		return NULL;
	for (size_t i = 0; i < k->nfields; i++)
		if ((k->fields[i].flags & QP_F_UNIQUE) &&
		    json_is_string(json_object_get(rec, k->fields[i].name)))
			return &k->fields[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Messages. */

static int fail(char *err, size_t errlen, const char *path, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));

/* Write "path: reason" into err and return QP_EVALID. */
static int fail(char *err, size_t errlen, const char *path, const char *fmt,
		...)
{
	va_list ap;
	int n;
	if (err == NULL || errlen == 0)
		return QP_EVALID;
	n = snprintf(err, errlen, "%s: ", path);
	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return QP_EVALID;
}

/* Format a field path into a PATH_LEN buffer; long paths are cut (only
 * hostile input makes them long). */
static void pathf(char *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void pathf(char *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, PATH_LEN, fmt, ap);
	va_end(ap);
}

/* out = a "." b, cut to PATH_LEN like pathf: field paths are built for
 * every field checked, and this runs far more often than any message is
 * written, so it avoids the formatting machinery. */
static void pjoin(char *out, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > PATH_LEN - 1)
		la = PATH_LEN - 1;
	memcpy(out, a, la);
	if (la + 1 < PATH_LEN) {
		out[la++] = '.';
		if (lb > PATH_LEN - 1 - la)
			lb = PATH_LEN - 1 - la;
		memcpy(out + la, b, lb);
		la += lb;
	}
	out[la] = '\0';
}

/* "%.15g" is exact for every bound in the table and short for messages. */
static const char *num_str(double x, char *buf, size_t len)
{
	qp_cloc cn;
	qp_cloc_enter(&cn);
	snprintf(buf, len, "%.15g", x);
	qp_cloc_leave(&cn);
	return buf;
}

static const char *article(const char *kind)
{
	return kind[0] != '\0' && strchr("aeiou", kind[0]) != NULL ? "an"
								    : "a";
}

/* ------------------------------------------------------------------ */
/* Shared validators. */

static int is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

int qp_schema_dni_ok(const char *s)
{
	return s != NULL && strlen(s) == 8 && is_digits(s, 8);
}

/* 0: valid; 1: not 11 digits; 2: bad prefix; 3: bad check digit (the
 * expected digit in *expected).  SUNAT's modulus 11 over the first ten
 * digits with weights 5,4,3,2,7,6,5,4,3,2. */
static int ruc_check(const char *s, int *expected)
{
	static const int w[10] = {5, 4, 3, 2, 7, 6, 5, 4, 3, 2};
	int sum = 0, r;
	if (strlen(s) != 11 || !is_digits(s, 11))
		return 1;
	if (strncmp(s, "10", 2) != 0 && strncmp(s, "15", 2) != 0 &&
	    strncmp(s, "16", 2) != 0 && strncmp(s, "17", 2) != 0 &&
	    strncmp(s, "20", 2) != 0)
		return 2;
	for (int i = 0; i < 10; i++)
		sum += (s[i] - '0') * w[i];
	r = 11 - sum % 11;
	if (r == 10)
		r = 0;
	else if (r == 11)
		r = 1;
	*expected = r;
	return r == s[10] - '0' ? 0 : 3;
}

int qp_schema_ruc_ok(const char *s)
{
	int expected;
	return s != NULL && ruc_check(s, &expected) == 0;
}

typedef struct instant {
	int64_t sec; /* seconds since 1970-01-01T00:00:00Z */
	long nsec;
} instant;

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;
	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int month_days(int y, int m)
{
	static const int md[12] = {31, 28, 31, 30, 31, 30,
				   31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : md[m - 1];
}

/* n decimal digits at s into *v, or -1. */
static int digits(const char *s, int n, int *v)
{
	int x = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return 0;
}

/* Parse "YYYY-MM-DD" (when date_ok) or
 * "YYYY-MM-DDTHH:MM[:SS[.f{1,9}]](Z|+HH:MM|-HH:MM)" with calendar checks.
 * A bare date is midnight UTC.  Returns 0 or -1. */
static int parse_time(const char *s, int date_ok, instant *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 1;
	long ns = 0;
	const char *p;
	if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo))
		return -1;
	if (s[10] == '\0') {
		if (!date_ok)
			return -1;
		goto done;
	}
	if (s[10] != 'T' || digits(s + 11, 2, &h) || s[13] != ':' ||
	    digits(s + 14, 2, &mi) || h > 23 || mi > 59)
		return -1;
	p = s + 16;
	if (*p == ':') {
		if (digits(p + 1, 2, &sec) || sec > 59)
			return -1;
		p += 3;
		if (*p == '.') {
			int nd = 0;
			for (p++; *p >= '0' && *p <= '9'; p++, nd++) {
				if (nd == 9)
					return -1;
				ns = ns * 10 + (*p - '0');
			}
			if (nd == 0)
				return -1;
			for (; nd < 9; nd++)
				ns *= 10;
		}
	}
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (digits(p + 1, 2, &oh) || p[3] != ':' ||
		    digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
done:
	if (out != NULL) {
		out->sec = days_from_civil(y, mo, d) * 86400 + h * 3600 +
			   mi * 60 + sec - sign * (oh * 3600 + om * 60);
		out->nsec = ns;
	}
	return 0;
}

int qp_schema_time_seconds(const char *s, int date_only_allowed, double *out)
{
	instant t;

	if (s == NULL || out == NULL || parse_time(s, date_only_allowed, &t) != 0)
		return -1;
	*out = (double)t.sec + (double)t.nsec / 1e9;
	return 0;
}

int qp_schema_time_ok(const char *s, int date_only_allowed)
{
	return s != NULL && parse_time(s, date_only_allowed, NULL) == 0;
}

/* ------------------------------------------------------------------ */
/* Field checks.  Each takes the full path of the value for messages. */

typedef struct vctx {
	const qp_kind *k;
	qp_ref_fn ref;
	void *ref_ctx;
	char *err;
	size_t errlen;
} vctx;

/* The string of v when it is a JSON string without NUL bytes, else NULL.
 * Strings decoded from msgpack may carry NULs that C string checks would
 * silently cut. */
static const char *cstr(const json_t *v)
{
	const char *s;
	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	return strlen(s) == json_string_length(v) ? s : NULL;
}

static int check_text(vctx *c, const char *path, const json_t *v,
		      size_t max)
{
	const unsigned char *s;
	size_t n, blank = 0;
	if (!json_is_string(v))
		return fail(c->err, c->errlen, path, "must be a string");
	s = (const unsigned char *)json_string_value(v);
	n = json_string_length(v);
	if (n > (max ? max : TEXT_MAX_DEFAULT))
		return fail(c->err, c->errlen, path, "longer than %zu bytes",
			    max ? max : TEXT_MAX_DEFAULT);
	for (size_t i = 0; i < n; i++) {
		/* C0 controls except tab, DEL, and C1 controls (U+0080..
		 * U+009F, encoded C2 80..C2 9F). */
		if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f ||
		    (s[i] == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 &&
		     s[i + 1] <= 0x9f))
			return fail(c->err, c->errlen, path,
				    "contains a control character");
		if (s[i] == ' ' || s[i] == '\t')
			blank++;
	}
	if (blank == n)
		return fail(c->err, c->errlen, path, "must not be empty");
	return 0;
}

static int check_enum(vctx *c, const char *path, const json_t *v,
		      const char *const *values)
{
	const char *s = cstr(v);
	char list[256];
	size_t o = 0;
	for (size_t i = 0; s != NULL && values[i] != NULL; i++)
		if (strcmp(s, values[i]) == 0)
			return 0;
	list[0] = '\0';
	for (size_t i = 0; values[i] != NULL && o < sizeof list; i++) {
		int w = snprintf(list + o, sizeof list - o, "%s%s",
				 i ? ", " : "", values[i]);
		if (w < 0)
			break;
		o += (size_t)w;
	}
	return fail(c->err, c->errlen, path, "must be one of %s", list);
}

/* Check one reference: form, then existence and kind through the lookup.
 * A lookup failure other than not-found/mismatch (a storage error) is
 * returned as it is: it says nothing about the record. */
static int check_ref(vctx *c, const char *path, const json_t *v,
		     const char *want)
{
	const char *id = cstr(v);
	char got[24], buf[64];
	int rc;
	if (id == NULL || !qp_uuid_valid(id))
		return fail(c->err, c->errlen, path,
			    "must be a record id (UUID)");
	if (c->ref == NULL)
		return 0;
	memset(got, 0, sizeof got);
	rc = c->ref(c->ref_ctx, path, want, id, got);
	if (rc == 0)
		return 0;
	got[sizeof got - 1] = '\0';
	if (rc == QP_ENOTFOUND)
		return fail(c->err, c->errlen, path,
			    "no %s with id %s on this node",
			    want ? want : "record", id);
	if (rc == QP_EVOIDED)
		return fail(c->err, c->errlen, path, "%s %s is voided",
			    want ? want : "record", id);
	if (rc == QP_ESCOPE)
		return fail(c->err, c->errlen, path,
			    "%s %s belongs to another organisation",
			    want ? want : "record", id);
	if (rc == QP_EMISMATCH && want != NULL) {
		qp_excerpt(got, strlen(got), buf, sizeof buf);
		return fail(c->err, c->errlen, path, "%s is %s %s, not %s %s",
			    id, article(buf), buf, article(want), want);
	}
	fail(c->err, c->errlen, path, "cannot look up %s: %s", id,
	     qp_strerror(rc));
	return rc == QP_EMISMATCH ? QP_EVALID : rc;
}

static int check_refs(vctx *c, const char *path, const json_t *v,
		      const char *want)
{
	char sub[PATH_LEN];
	size_t n = json_array_size(v);
	int rc;
	if (!json_is_array(v))
		return fail(c->err, c->errlen, path,
			    "must be an array of record ids");
	if (n == 0)
		return fail(c->err, c->errlen, path, "must not be empty");
	if (n > REFS_MAX)
		return fail(c->err, c->errlen, path,
			    "too many ids (limit %d)", REFS_MAX);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(v, i);
		pathf(sub, "%s[%zu]", path, i);
		if ((rc = check_ref(c, sub, e, want)) != 0)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(json_string_value(e),
				       json_string_value(json_array_get(v, j))) == 0)
				return fail(c->err, c->errlen, sub,
					    "duplicate id %s",
					    json_string_value(e));
	}
	return 0;
}

static int check_range(vctx *c, const char *path, double x,
		       const qp_field *f)
{
	char b[32];
	if (f->min == 0 && f->max == 0 && !f->min_excl)
		return 0;
	if (f->min_excl && !(x > f->min))
		return fail(c->err, c->errlen, path, "must be greater than %s",
			    num_str(f->min, b, sizeof b));
	if (!f->min_excl && !(x >= f->min))
		return fail(c->err, c->errlen, path, "must be at least %s",
			    num_str(f->min, b, sizeof b));
	if ((f->min != 0 || f->max != 0) && x > f->max)
		return fail(c->err, c->errlen, path, "must be at most %s",
			    num_str(f->max, b, sizeof b));
	return 0;
}

static int check_phone(vctx *c, const char *path, const json_t *v)
{
	const char *s = cstr(v);
	size_t n, nd = 0;
	if (s == NULL)
		goto bad;
	n = strlen(s);
	if (n < 6 || n > 20)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			nd++;
		else if (!(s[i] == ' ' || s[i] == '-' ||
			   (s[i] == '+' && i == 0)))
			goto bad;
	}
	/* Starts with '+' or a digit and ends with a digit, so a cell
	 * trimmed on import reads back the same. */
	if (nd >= 6 && (s[0] == '+' || (s[0] >= '0' && s[0] <= '9')) &&
	    s[n - 1] >= '0' && s[n - 1] <= '9')
		return 0;
bad:
	return fail(c->err, c->errlen, path,
		    "must be a phone number (at least 6 digits, with spaces, "
		    "'+' first or '-' between; at most 20 characters)");
}

static int is_scalar(const json_t *v)
{
	return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

/* Strings inside a free-form object: bounded, no control characters but
 * tab, may be empty.  Other scalars pass. */
static int check_loose_text(vctx *c, const char *path, const json_t *v)
{
	const unsigned char *s;
	size_t n;
	if (!json_is_string(v))
		return 0;
	s = (const unsigned char *)json_string_value(v);
	n = json_string_length(v);
	if (n > TEXT_MAX_DEFAULT)
		return fail(c->err, c->errlen, path, "longer than %d bytes",
			    TEXT_MAX_DEFAULT);
	for (size_t i = 0; i < n; i++)
		if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return fail(c->err, c->errlen, path,
				    "contains a control character");
	return 0;
}

static int check_object(vctx *c, const char *path, const json_t *v)
{
	const char *key;
	size_t klen;
	json_t *val;
	char sub[PATH_LEN], b[64];
	int rc;
	if (!json_is_object(v))
		return fail(c->err, c->errlen, path, "must be an object");
	if (json_object_size(v) > OBJECT_MAX_KEYS)
		return fail(c->err, c->errlen, path, "too many keys (limit %d)",
			    OBJECT_MAX_KEYS);
	json_object_keylen_foreach((json_t *)v, key, klen, val)
	{
		int ok = klen > 0 && klen <= OBJECT_MAX_KEYLEN;
		for (size_t i = 0; ok && i < klen; i++)
			ok = (unsigned char)key[i] >= 0x20 && key[i] != 0x7f;
		if (!ok)
			return fail(c->err, c->errlen, path,
				    "key \"%s\" must be 1 to %d printable bytes",
				    qp_excerpt(key, klen, b, sizeof b),
				    OBJECT_MAX_KEYLEN);
		pjoin(sub, path, key);
		if (is_scalar(val)) {
			if ((rc = check_loose_text(c, sub, val)) != 0)
				return rc;
			continue;
		}
		if (json_is_array(val) &&
		    json_array_size(val) <= OBJECT_MAX_ARRAY) {
			size_t i;
			json_t *e;
			json_array_foreach(val, i, e)
			{
				if (!is_scalar(e))
					goto bad;
				if ((rc = check_loose_text(c, sub, e)) != 0)
					return rc;
			}
			continue;
		}
	bad:
		return fail(c->err, c->errlen, sub,
			    "must be text, a number, true/false, or an array "
			    "of at most %d of those",
			    OBJECT_MAX_ARRAY);
	}
	return 0;
}

/* GeoJSON geometry walk state: positions and rings seen so far. */
typedef struct geo {
	vctx *c;
	const char *path; /* the geometry itself, for size errors */
	size_t npos, nrings;
} geo;

static int check_position(geo *g, const char *path, const json_t *v)
{
	double lon, lat;
	char b[32];
	size_t n = json_array_size(v);
	if (!json_is_array(v) || n < 2 || n > 3)
		goto bad;
	for (size_t i = 0; i < n; i++)
		if (!json_is_number(json_array_get(v, i)))
			goto bad;
	lon = json_number_value(json_array_get(v, 0));
	lat = json_number_value(json_array_get(v, 1));
	if (lon < -180 || lon > 180)
		return fail(g->c->err, g->c->errlen, path,
			    "longitude %s out of range",
			    num_str(lon, b, sizeof b));
	if (lat < -90 || lat > 90)
		return fail(g->c->err, g->c->errlen, path,
			    "latitude %s out of range",
			    num_str(lat, b, sizeof b));
	return 0;
bad:
	return fail(g->c->err, g->c->errlen, path,
		    "must be a position [longitude, latitude] or [longitude, "
		    "latitude, altitude]");
}

static int same_position(const json_t *a, const json_t *b)
{
	size_t n = json_array_size(a);
	if (n != json_array_size(b))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (json_number_value(json_array_get(a, i)) !=
		    json_number_value(json_array_get(b, i)))
			return 0;
	return 1;
}

static int check_polygon(geo *g, const char *path, const json_t *v)
{
	char rp[PATH_LEN], pp[PATH_LEN];
	size_t nr = json_array_size(v);
	int rc;
	if (!json_is_array(v) || nr == 0)
		return fail(g->c->err, g->c->errlen, path,
			    "must be a non-empty array of linear rings");
	for (size_t r = 0; r < nr; r++) {
		const json_t *ring = json_array_get(v, r);
		size_t np = json_array_size(ring);
		pathf(rp, "%s[%zu]", path, r);
		if (++g->nrings > GEOM_MAX_RINGS)
			return fail(g->c->err, g->c->errlen, g->path,
				    "too many rings (limit %d)",
				    GEOM_MAX_RINGS);
		if (!json_is_array(ring))
			return fail(g->c->err, g->c->errlen, rp,
				    "must be an array of positions");
		if (np < 4)
			return fail(g->c->err, g->c->errlen, rp,
				    "ring needs at least 4 positions");
		g->npos += np;
		if (g->npos > GEOM_MAX_POSITIONS)
			return fail(g->c->err, g->c->errlen, g->path,
				    "too many positions (limit %d)",
				    GEOM_MAX_POSITIONS);
		for (size_t i = 0; i < np; i++) {
			pathf(pp, "%s[%zu]", rp, i);
			rc = check_position(g, pp, json_array_get(ring, i));
			if (rc != 0)
				return rc;
		}
		if (!same_position(json_array_get(ring, 0),
				   json_array_get(ring, np - 1)))
			return fail(g->c->err, g->c->errlen, rp,
				    "ring not closed");
	}
	return 0;
}

static int check_geom(vctx *c, const char *path, const json_t *v,
		      int point_only)
{
	const char *key, *type;
	json_t *val;
	const json_t *coords, *bbox;
	char sub[PATH_LEN], b[64];
	geo g = {c, path, 0, 0};
	int rc;
	if (!json_is_object(v))
		return fail(c->err, c->errlen, path,
			    "must be a GeoJSON geometry object");
	/* A Feature pasted whole from a GIS tool: say what to give. */
	if (json_object_get(v, "geometry") != NULL &&
	    json_object_get(v, "coordinates") == NULL)
		return fail(c->err, c->errlen, path,
			    "must be a GeoJSON geometry, not a Feature (give "
			    "the Feature's \"geometry\" member)");
	json_object_foreach((json_t *)v, key, val)
	{
		if (strcmp(key, "type") != 0 && strcmp(key, "coordinates") != 0 &&
		    strcmp(key, "bbox") != 0) {
			pathf(sub, "%s.%s", path,
				 qp_excerpt(key, strlen(key), b, sizeof b));
			return fail(c->err, c->errlen, sub, "unknown member");
		}
	}
	pjoin(sub, path, "type");
	type = cstr(json_object_get(v, "type"));
	if (type == NULL)
		return fail(c->err, c->errlen, sub, "required");
	if (point_only && strcmp(type, "Point") != 0)
		return fail(c->err, c->errlen, sub, "must be Point");
	if (strcmp(type, "Point") != 0 && strcmp(type, "Polygon") != 0 &&
	    strcmp(type, "MultiPolygon") != 0)
		return fail(c->err, c->errlen, sub,
			    "must be Point, Polygon or MultiPolygon");
	bbox = json_object_get(v, "bbox");
	if (bbox != NULL) {
		size_t n = json_array_size(bbox);
		int ok = json_is_array(bbox) && (n == 4 || n == 6);
		for (size_t i = 0; ok && i < n; i++)
			ok = json_is_number(json_array_get(bbox, i));
		if (!ok) {
			pjoin(sub, path, "bbox");
			return fail(c->err, c->errlen, sub,
				    "must be an array of 4 or 6 numbers");
		}
	}
	pjoin(sub, path, "coordinates");
	coords = json_object_get(v, "coordinates");
	if (coords == NULL)
		return fail(c->err, c->errlen, sub, "required");
	if (strcmp(type, "Point") == 0)
		return check_position(&g, sub, coords);
	if (strcmp(type, "Polygon") == 0)
		return check_polygon(&g, sub, coords);
	if (!json_is_array(coords) || json_array_size(coords) == 0)
		return fail(c->err, c->errlen, sub,
			    "must be a non-empty array of polygons");
	for (size_t i = 0; i < json_array_size(coords); i++) {
		char pp[PATH_LEN];
		pathf(pp, "%s[%zu]", sub, i);
		if ((rc = check_polygon(&g, pp, json_array_get(coords, i))))
			return rc;
	}
	return 0;
}

static int check_lotqty(vctx *c, const char *path, const json_t *v,
			const char *want)
{
	char ep[PATH_LEN], sub[PATH_LEN], b[64];
	size_t n = json_array_size(v);
	int rc;
	if (!json_is_array(v))
		return fail(c->err, c->errlen, path,
			    "must be an array of {\"lot\": id, \"kg\": number}");
	if (n == 0)
		return fail(c->err, c->errlen, path, "must not be empty");
	if (n > LOTQTY_MAX)
		return fail(c->err, c->errlen, path,
			    "too many entries (limit %d)", LOTQTY_MAX);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(v, i), *lot, *kg;
		const char *key;
		json_t *val;
		pathf(ep, "%s[%zu]", path, i);
		if (!json_is_object(e))
			return fail(c->err, c->errlen, ep,
				    "must be {\"lot\": id, \"kg\": number}");
		json_object_foreach((json_t *)e, key, val)
		{
			if (strcmp(key, "lot") != 0 && strcmp(key, "kg") != 0) {
				pathf(sub, "%s.%s", ep,
					 qp_excerpt(key, strlen(key), b, sizeof b));
				return fail(c->err, c->errlen, sub,
					    "unknown field");
			}
		}
		lot = json_object_get(e, "lot");
		kg = json_object_get(e, "kg");
		pjoin(sub, ep, "lot");
		if (lot == NULL)
			return fail(c->err, c->errlen, sub, "required");
		if ((rc = check_ref(c, sub, lot, want)) != 0)
			return rc;
		for (size_t j = 0; j < i; j++) {
			const json_t *o = json_array_get(v, j);
			if (strcasecmp(json_string_value(lot),
				       json_string_value(json_object_get(
					       o, "lot"))) == 0)
				return fail(c->err, c->errlen, sub,
					    "duplicate lot %s",
					    json_string_value(lot));
		}
		pjoin(sub, ep, "kg");
		if (kg == NULL)
			return fail(c->err, c->errlen, sub, "required");
		if (!json_is_number(kg))
			return fail(c->err, c->errlen, sub, "must be a number");
		if ((rc = check_range(c, sub, json_number_value(kg), &qty_kg)))
			return rc;
	}
	return 0;
}

static int check_value(vctx *c, const qp_field *f, const json_t *v)
{
	char path[PATH_LEN];
	const char *s;
	int expected = 0;
	pjoin(path, c->k->name, f->name);
	if (json_is_null(v))
		return fail(c->err, c->errlen, path,
			    "must not be null (leave the field out instead)");
	switch (f->type) {
	case QP_T_TEXT:
		return check_text(c, path, v, f->max_len);
	case QP_T_ENUM:
		return check_enum(c, path, v, f->values);
	case QP_T_DNI:
		if (!qp_schema_dni_ok(cstr(v)))
			return fail(c->err, c->errlen, path,
				    "must be exactly 8 digits");
		return 0;
	case QP_T_RUC:
		if ((s = cstr(v)) == NULL)
			return fail(c->err, c->errlen, path,
				    "must be exactly 11 digits");
		switch (ruc_check(s, &expected)) {
		case 1:
			return fail(c->err, c->errlen, path,
				    "must be exactly 11 digits");
		case 2:
			return fail(c->err, c->errlen, path,
				    "must start with 10, 15, 16, 17 or 20");
		case 3:
			return fail(c->err, c->errlen, path,
				    "check digit does not match (expected %d)",
				    expected);
		}
		return 0;
	case QP_T_REF:
		return check_ref(c, path, v, f->ref_kind);
	case QP_T_REFS:
		return check_refs(c, path, v, f->ref_kind);
	case QP_T_TIME:
		if (!qp_schema_time_ok(cstr(v), 0))
			return fail(c->err, c->errlen, path,
				    "must be an ISO 8601 date-time with zone, "
				    "e.g. 2026-11-23T09:30:00-05:00");
		return 0;
	case QP_T_DATE:
		if (!qp_schema_time_ok(cstr(v), 1))
			return fail(c->err, c->errlen, path,
				    "must be an ISO 8601 date (YYYY-MM-DD) or "
				    "date-time with zone");
		return 0;
	case QP_T_INT:
		if (!json_is_integer(v))
			return fail(c->err, c->errlen, path,
				    "must be an integer");
		return check_range(c, path, (double)json_integer_value(v), f);
	case QP_T_NUM:
		if (!json_is_number(v))
			return fail(c->err, c->errlen, path, "must be a number");
		return check_range(c, path, json_number_value(v), f);
	case QP_T_BOOL:
		if (!json_is_boolean(v))
			return fail(c->err, c->errlen, path,
				    "must be true or false");
		return 0;
	case QP_T_GEOM:
		return check_geom(c, path, v, 0);
	case QP_T_POINT:
		return check_geom(c, path, v, 1);
	case QP_T_OBJECT:
		return check_object(c, path, v);
	case QP_T_LOTQTY:
		return check_lotqty(c, path, v, f->ref_kind);
	case QP_T_PHONE:
		return check_phone(c, path, v);
	}
	return fail(c->err, c->errlen, path, "field type unknown");
}

/* ------------------------------------------------------------------ */
/* Cross-field rules.  Each writes its message without the kind: either
 * "field: reason" (validate turns it into "kind.field: reason") or a bare
 * reason about the whole record ("kind: reason"). */

static int plot_check(const json_t *rec, char *err, size_t errlen)
{
	const json_t *area = json_object_get(rec, "area_ha");
	const char *type = json_string_value(
		json_object_get(json_object_get(rec, "geometry"), "type"));
	/* EUDR art. 2(28): plots of more than four hectares are described
	 * by a polygon, smaller ones may be a single point. */
	if (json_is_number(area) && json_number_value(area) > 4 &&
	    (type == NULL || strcmp(type, "Point") == 0))
		return fail(err, errlen, "geometry",
			    "plots over 4 ha need a polygon (EUDR)");
	return 0;
}

static int session_check(const json_t *rec, char *err, size_t errlen)
{
	const char *s = json_string_value(json_object_get(rec, "starts_at"));
	const char *e = json_string_value(json_object_get(rec, "ends_at"));
	instant a, b;
	if (s == NULL || e == NULL || parse_time(s, 0, &a) != 0 ||
	    parse_time(e, 0, &b) != 0)
		return 0;
	if (b.sec < a.sec || (b.sec == a.sec && b.nsec < a.nsec))
		return fail(err, errlen, "ends_at",
			    "must not be before starts_at");
	return 0;
}

static int attendance_check(const json_t *rec, char *err, size_t errlen)
{
	int producer = json_object_get(rec, "producer") != NULL;
	int dni = json_object_get(rec, "dni") != NULL;
	int name = json_object_get(rec, "name") != NULL;
	if (producer ? dni : !(dni && name)) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen,
				 "needs producer, or dni and name of a "
				 "non-registered person");
		return QP_EVALID;
	}
	return 0;
}

/* A lot cannot come out of the event it goes into: that is a cycle in
 * the custody chain, which no trace can follow. */
static int lot_cycle_check(const json_t *rec, char *err, size_t errlen)
{
	const json_t *ins = json_object_get(rec, "inputs"), *o, *in;
	size_t i, j;

	json_array_foreach(json_object_get(rec, "outputs"), i, o) {
		const char *lot = json_string_value(json_object_get(o, "lot"));
		json_array_foreach(ins, j, in) {
			const char *il =
				json_string_value(json_object_get(in, "lot"));
			if (lot == NULL || il == NULL || strcasecmp(lot, il) != 0)
				continue;
			if (err != NULL && errlen > 0)
				snprintf(err, errlen,
					 "outputs[%zu].lot: lot %.40s is also "
					 "an input of this event", i, lot);
			return QP_EVALID;
		}
	}
	return 0;
}

static int lot_event_check(const json_t *rec, char *err, size_t errlen)
{
	const char *type = json_string_value(json_object_get(rec, "type"));
	const char *need = NULL;
	if (lot_cycle_check(rec, err, errlen) != 0)
		return QP_EVALID;
	if (type == NULL)
		return 0;
	if (strcmp(type, "merge") == 0 || strcmp(type, "split") == 0 ||
	    strcmp(type, "transform") == 0) {
		if (json_object_get(rec, "inputs") == NULL ||
		    json_object_get(rec, "outputs") == NULL)
			need = "inputs and outputs";
	} else if (strcmp(type, "ship") == 0) {
		if (json_object_get(rec, "buyer") == NULL &&
		    json_object_get(rec, "destination") == NULL)
			need = "buyer or destination";
	} else if (strcmp(type, "claim") == 0) {
		if (json_object_get(rec, "reason") == NULL)
			need = "reason";
	}
	if (need == NULL)
		return 0;
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s needs %s", type, need);
	return QP_EVALID;
}

/* Prefix a cross-rule message with the kind: "kind.field: ..." when it
 * starts with one of the kind's field names, else "kind: ...". */
static void prefix_kind(const qp_kind *k, const char *msg, char *err,
			size_t errlen)
{
	for (size_t i = 0; i < k->nfields; i++) {
		size_t n = strlen(k->fields[i].name);
		if (strncmp(msg, k->fields[i].name, n) == 0 &&
		    strchr(":.[", msg[n]) != NULL && msg[n] != '\0') {
			snprintf(err, errlen, "%s.%s", k->name, msg);
			return;
		}
	}
	snprintf(err, errlen, "%s: %s", k->name, msg);
}

/* ------------------------------------------------------------------ */
/* Records. */

static int check_meta(vctx *c, const json_t *rec)
{
	const qp_kind *k = c->k;
	char path[PATH_LEN], b[64];
	const json_t *v;
	const char *id, *s;

	pjoin(path, k->name, "id");
	if ((v = json_object_get(rec, "id")) == NULL)
		return fail(c->err, c->errlen, path, "required");
	if ((id = cstr(v)) == NULL || !qp_uuid_valid(id))
		return fail(c->err, c->errlen, path, "must be a UUID");

	pjoin(path, k->name, "kind");
	if ((v = json_object_get(rec, "kind")) == NULL)
		return fail(c->err, c->errlen, path, "required");
	if (!json_is_string(v))
		return fail(c->err, c->errlen, path, "must be \"%s\"",
			    k->name);
	if ((s = cstr(v)) == NULL || strcmp(s, k->name) != 0)
		return fail(c->err, c->errlen, path, "must be \"%s\", not \"%s\"",
			    k->name,
			    qp_excerpt(json_string_value(v), json_string_length(v),
				 b, sizeof b));

	pjoin(path, k->name, "org");
	if ((v = json_object_get(rec, "org")) == NULL)
		return fail(c->err, c->errlen, path, "required");
	if ((s = cstr(v)) == NULL || !qp_uuid_valid(s))
		return fail(c->err, c->errlen, path, "must be a UUID");
	if (strcmp(k->name, "org") == 0 && strcasecmp(s, id) != 0)
		return fail(c->err, c->errlen, path,
			    "must equal id (an org record belongs to itself)");
	return 0;
}

int qp_schema_validate(const qp_kind *k, const json_t *rec, qp_ref_fn ref,
		       void *ref_ctx, char *err, size_t errlen)
{
	vctx c = {k, ref, ref_ctx, err, errlen};
	char path[PATH_LEN], b[64], msg[QP_ERRMSG_LEN];
	const char *key;
	size_t klen;
	json_t *v;
	int rc;

	if (k == NULL || rec == NULL)
		return QP_EINVAL;
	if (!json_is_object(rec))
		return fail(err, errlen, k->name, "record must be a JSON object");
	if ((rc = check_meta(&c, rec)) != 0)
		return rc;
	json_object_keylen_foreach((json_t *)rec, key, klen, v)
	{
		if (strlen(key) == klen &&
		    (strcmp(key, "id") == 0 || strcmp(key, "kind") == 0 ||
		     strcmp(key, "org") == 0 || qp_schema_field(k, key) != NULL))
			continue;
		pathf(path, "%s.%s", k->name,
			 qp_excerpt(key, klen, b, sizeof b));
		return fail(err, errlen, path, "unknown field");
	}
	for (size_t i = 0; i < k->nfields; i++) {
		const qp_field *f = &k->fields[i];
		v = json_object_get(rec, f->name);
		if (v == NULL) {
			if (!(f->flags & QP_F_REQUIRED))
				continue;
			pjoin(path, k->name, f->name);
			return fail(err, errlen, path, "required");
		}
		if ((rc = check_value(&c, f, v)) != 0)
			return rc;
	}
	if (ref != NULL && strcmp(k->name, "org") != 0) {
		pjoin(path, k->name, "org");
		rc = check_ref(&c, path, json_object_get(rec, "org"), "org");
		if (rc != 0)
			return rc;
	}
	if (k->check != NULL) {
		msg[0] = '\0';
		if ((rc = k->check(rec, msg, sizeof msg)) != 0) {
			if (err != NULL && errlen > 0)
				prefix_kind(k, msg, err, errlen);
			return rc;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* CSV cells. */

/* Shortest text that reads back as exactly x, in plain notation for
 * exponents -4..15 (as Python's repr): spreadsheets and people read
 * "250000" and "0.0001", not "2.5e+05".  out holds 40 bytes. */
static void fmt_real(double x, char out[40])
{
	char tmp[40], dig[20];
	int p, e, nd = 0, o = 0;
	const char *q;
	qp_cloc cn;
	qp_cloc_enter(&cn);
	for (p = 0; p < 17; p++) {
		snprintf(tmp, sizeof tmp, "%.*e", p, x);
		if (strtod(tmp, NULL) == x)
			break;
	}
	snprintf(tmp, sizeof tmp, "%.*e", p, x);
	qp_cloc_leave(&cn);
	q = tmp;
	if (*q == '-')
		out[o++] = *q++;
	for (; *q != '\0' && *q != 'e'; q++)
		if (*q >= '0' && *q <= '9' && nd < (int)sizeof dig)
			dig[nd++] = *q;
	if (*q == '\0' || nd == 0) { /* inf or nan: not in JSON values */
		snprintf(out, 40, "%s", x != x ? "nan" : x < 0 ? "-inf" : "inf");
		return;
	}
	e = atoi(q + 1);
	while (nd > 1 && dig[nd - 1] == '0')
		nd--;
	if (e >= 0 && e < 16) {
		for (int i = 0; i < nd || i <= e; i++) {
			if (i == e + 1)
				out[o++] = '.';
			out[o++] = i < nd ? dig[i] : '0';
		}
	} else if (e < 0 && e >= -4) {
		out[o++] = '0';
		out[o++] = '.';
		for (int i = 0; i < -e - 1; i++)
			out[o++] = '0';
		for (int i = 0; i < nd; i++)
			out[o++] = dig[i];
	} else {
		out[o++] = dig[0];
		if (nd > 1)
			out[o++] = '.';
		for (int i = 1; i < nd; i++)
			out[o++] = dig[i];
		o += snprintf(out + o, 40 - (size_t)o, "e%c%02d",
			      e < 0 ? '-' : '+', e < 0 ? -e : e);
	}
	out[o] = '\0';
}

typedef struct sbuf {
	char *p;
	size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = qp_xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_json_string(sbuf *b, const char *s, size_t n)
{
	/* jansson does the escaping; only the number format is ours. */
	json_t *t = json_stringn_nocheck(s, n);
	char *d = t ? json_dumps(t, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	if (d != NULL)
		sb_add(b, d, strlen(d));
	else
		sb_add(b, "\"\"", 2);
	free(d);
	json_decref(t);
}

/* Compact JSON like json_dumps(JSON_COMPACT), members in insertion order,
 * but reals in shortest round-trip form ("-77.042793", not
 * "-77.042793000000003"). */
static void sb_json(sbuf *b, const json_t *v, int depth)
{
	char num[40];
	const char *key;
	size_t klen, i;
	json_t *e;
	int first = 1;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (depth > 64)
			goto fallback;
		sb_add(b, "{", 1);
		json_object_keylen_foreach((json_t *)v, key, klen, e)
		{
			if (!first)
				sb_add(b, ",", 1);
			first = 0;
			sb_json_string(b, key, klen);
			sb_add(b, ":", 1);
			sb_json(b, e, depth + 1);
		}
		sb_add(b, "}", 1);
		return;
	case JSON_ARRAY:
		if (depth > 64)
			goto fallback;
		sb_add(b, "[", 1);
		json_array_foreach(v, i, e)
		{
			if (i > 0)
				sb_add(b, ",", 1);
			sb_json(b, e, depth + 1);
		}
		sb_add(b, "]", 1);
		return;
	case JSON_STRING:
		sb_json_string(b, json_string_value(v), json_string_length(v));
		return;
	case JSON_REAL:
		fmt_real(json_real_value(v), num);
		/* Keep it a JSON real when read back: "2" would be an
		 * integer. */
		if (strpbrk(num, ".e") == NULL)
			strcat(num, ".0");
		sb_add(b, num, strlen(num));
		return;
	default:
		break;
	}
fallback:
	/* Integers, true, false, null, and very deep nesting (jansson
	 * also guards against cycles there). */
	{
		char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		sb_add(b, d ? d : "null", d ? strlen(d) : 4);
		free(d);
	}
}

char *qp_schema_to_text(const json_t *v)
{
	char num[40];
	sbuf b = {NULL, 0, 0};
	if (v == NULL)
		return qp_xstrdup("");
	switch (json_typeof(v)) {
	case JSON_STRING:
		return qp_xstrdup(json_string_value(v));
	case JSON_INTEGER:
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return qp_xstrdup(num);
	case JSON_REAL:
		fmt_real(json_real_value(v), num);
		return qp_xstrdup(num);
	case JSON_TRUE:
		return qp_xstrdup("true");
	case JSON_FALSE:
		return qp_xstrdup("false");
	case JSON_NULL:
		return qp_xstrdup("");
	default:
		sb_json(&b, v, 0);
		return b.p;
	}
}

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Nonzero when [s, e) starts with the CSV writer's formula guard (csv.h):
 * a single quote, then any more quotes, then =, +, - or @.  The writer
 * guards both "=x" and "'=x", so one quote comes off either way. */
static int guarded(const char *s, const char *e)
{
	if (s == e || *s != '\'')
		return 0;
	while (s < e && *s == '\'')
		s++;
	return s < e && strchr("=+-@", *s) != NULL;
}

/* Case-insensitive match of [s, s+n) against any word in list. */
static int word_in(const char *s, size_t n, const char *const *list)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (strlen(list[i]) == n && strncasecmp(s, list[i], n) == 0)
			return 1;
	return 0;
}

int qp_schema_from_text(const qp_kind *k, const qp_field *f, const char *text,
			json_t **out, char *err, size_t errlen)
{
	static const char *const yes[] = {"true", "yes", "1", "si", "s\xc3\xad",
					  "s\xc3\x8d", NULL};
	static const char *const no[] = {"false", "no", "0", NULL};
	char path[PATH_LEN], b[64], *buf = NULL, *end;
	const char *s, *e, *raw;
	json_t *v = NULL;
	json_error_t jerr;
	int rc = 0;

	if (k == NULL || f == NULL || text == NULL || out == NULL)
		return QP_EINVAL;
	pjoin(path, k->name, f->name);
	for (s = text; is_blank(*s); s++)
		;
	for (e = s + strlen(s); e > s && is_blank(e[-1]); e--)
		;
	if (s == e) {
		*out = NULL;
		return 0;
	}
	/* Undo the writer's formula guard (csv.h): a cell we exported as
	 * "'=...", "'+51 ..." or "''=..." reads back as it was stored. */
	raw = text;
	if (guarded(raw, raw + strlen(raw)))
		raw++;
	if (guarded(s, e))
		s++;

	switch (f->type) {
	case QP_T_TEXT:
		v = json_string(raw);
		break;
	case QP_T_ENUM:
	case QP_T_DNI:
	case QP_T_RUC:
	case QP_T_REF:
	case QP_T_TIME:
	case QP_T_DATE:
	case QP_T_PHONE:
		v = json_stringn(s, (size_t)(e - s));
		break;
	case QP_T_INT: {
		long long x;
		buf = strndup(s, (size_t)(e - s));
		errno = 0;
		x = buf ? strtoll(buf, &end, 10) : 0;
		if (buf == NULL || end == buf || *end != '\0' || errno != 0 ||
		    !(*buf == '-' || *buf == '+' || (*buf >= '0' && *buf <= '9'))) {
			rc = fail(err, errlen, path, "not an integer: \"%s\"",
				  qp_excerpt(s, (size_t)(e - s), b, sizeof b));
			goto out;
		}
		v = json_integer(x);
		break;
	}
	case QP_T_NUM: {
		double x = 0;
		buf = strndup(s, (size_t)(e - s));
		/* Plain decimal notation only: strtod would also take "nan",
		 * "inf" and hexadecimal. */
		if (buf == NULL || strspn(buf, "0123456789+-.eE") != strlen(buf)) {
			end = buf;
		} else {
			qp_cloc cn;
			qp_cloc_enter(&cn);
			x = strtod(buf, &end);
			qp_cloc_leave(&cn);
		}
		if (buf == NULL || end == buf || *end != '\0' || !isfinite(x)) {
			rc = fail(err, errlen, path, "not a number: \"%s\"%s",
				  qp_excerpt(s, (size_t)(e - s), b, sizeof b),
				  memchr(s, ',', (size_t)(e - s))
					  ? " (use a dot for decimals)"
					  : "");
			goto out;
		}
		/* "2" reads as 2, as the same value in JSON would: a CSV
		 * round trip keeps integers integers. */
		if (strpbrk(buf, ".eE") == NULL && fabs(x) <= 9007199254740992.0)
			v = json_integer((json_int_t)x);
		else
			v = json_real(x);
		break;
	}
	case QP_T_BOOL:
		if (word_in(s, (size_t)(e - s), yes)) {
			v = json_true();
		} else if (word_in(s, (size_t)(e - s), no)) {
			v = json_false();
		} else {
			rc = fail(err, errlen, path,
				  "not true or false: \"%s\"",
				  qp_excerpt(s, (size_t)(e - s), b, sizeof b));
			goto out;
		}
		break;
	case QP_T_REFS:
		if (*s == '[') {
			v = json_loadb(s, (size_t)(e - s), JSON_REJECT_DUPLICATES,
				       &jerr);
			if (v == NULL)
				goto badjson;
			break;
		}
		/* "id; id; id" as typed into a spreadsheet cell. */
		v = json_array();
		while (s < e) {
			const char *t = memchr(s, ';', (size_t)(e - s)), *te;
			if (t == NULL)
				t = e;
			for (te = t; te > s && is_blank(te[-1]); te--)
				;
			if (te > s) {
				json_t *id = json_stringn(s, (size_t)(te - s));
				if (id == NULL) {
					json_decref(v);
					v = NULL;
					break;
				}
				json_array_append_new(v, id);
			}
			for (s = t + (t < e); s < e && is_blank(*s); s++)
				;
		}
		break;
	case QP_T_GEOM:
	case QP_T_POINT:
	case QP_T_OBJECT:
	case QP_T_LOTQTY:
		v = json_loadb(s, (size_t)(e - s), JSON_REJECT_DUPLICATES, &jerr);
		if (v == NULL)
			goto badjson;
		break;
	}
	if (v == NULL) {
		rc = fail(err, errlen, path, "not valid UTF-8 text");
		goto out;
	}
	*out = v;
	goto out;
badjson:
	/* jansson quotes the offending token: keep the message one line. */
	for (char *q = jerr.text; *q != '\0'; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			*q = '?';
	rc = fail(err, errlen, path, "not valid JSON: %s (column %d)",
		  jerr.text, jerr.column);
out:
	free(buf);
	return rc;
}
