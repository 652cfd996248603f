/*
 * report.c - the attendance report (see report.h).
 *
 * Linear in the input: every lookup (records by id, duplicate attendance,
 * groups, distinct persons and sessions) goes through a jansson object used
 * as a hash map, so 100,000 attendance records take a fraction of a second.
 * Composite map keys join their parts with U+001F, which validated text and
 * ids never contain; a missing part is U+001E.
 */
#include "report.h"
#include "schema.h"
#include "err.h"
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEP  "\x1f"
#define NONE "\x1e"

static const char *const key_names[QP_REPORT_NKEYS] = {
    "org", "service", "provider", "sex", "month",
};

const char *qp_report_key_name(qp_report_key k)
{
	return (unsigned)k < QP_REPORT_NKEYS ? key_names[k] : "?";
}

int qp_report_parse_by(const char *text, qp_report_by *by, char *err,
                       size_t errlen)
{
	qp_report_by b = {0};
	const char *p = text != NULL ? text : "org", *e;
	size_t len, k, i;

	for (;;) {
		e = strchr(p, ',');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len == 0) {
			qp_fmt(err, errlen, "empty group key");
			return QP_EINVAL;
		}
		for (k = 0; k < QP_REPORT_NKEYS; k++)
			if (strlen(key_names[k]) == len &&
			    memcmp(key_names[k], p, len) == 0)
				break;
		if (k == QP_REPORT_NKEYS) {
			qp_fmt(err, errlen,
			       "unknown group key '%.*s' (org, service, "
			       "provider, sex or month)",
			       len > 40 ? 40 : (int)len, p);
			return QP_EINVAL;
		}
		for (i = 0; i < b.n; i++)
			if (b.keys[i] == (qp_report_key)k) {
				qp_fmt(err, errlen,
				       "group key '%s' given twice",
				       key_names[k]);
				return QP_EINVAL;
			}
		b.keys[b.n++] = (qp_report_key)k;
		if (e == NULL)
			break;
		p = e + 1;
	}
	*by = b;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Small helpers. */

static const char *str(const json_t *rec, const char *field)
{
	return json_string_value(json_object_get(rec, field));
}

/* A growable string for composite keys. */
typedef struct sbuf {
	char *p;
	size_t len, cap;
} sbuf;

static void sb_reset(sbuf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

static void sb_add(sbuf *b, const char *s)
{
	size_t n;

	if (s == NULL)
		s = NONE;
	n = strlen(s);
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = qp_xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

/* Index an array of records by id into a new object (id -> record). */
static int index_by_id(const json_t *arr, json_t **out)
{
	json_t *map, *r;
	const char *id;
	size_t i;

	if (arr != NULL && !json_is_array(arr))
		return QP_EINVAL;
	map = json_object();
	json_array_foreach(arr, i, r) {
		if (json_is_object(r) && (id = str(r, "id")) != NULL)
			json_object_set(map, id, r);
	}
	*out = map;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Aggregation. */

/* One group of the report (or the totals). */
typedef struct grp {
	/* Key values in the grouping's order (NULL: unknown). */
	char *vals[QP_REPORT_NKEYS];
	size_t atts, attended, absent;
	json_t *persons;  /* attended person -> true (F), false (known), null */
	json_t *sessions; /* sessions with someone attended */
	double hours;
	long long planned;
	size_t committed, attended_svc;
} grp;

typedef struct ctx {
	const qp_report_by *by;
	json_t *orgs, *producers, *services, *sessions;
	json_t *by_dni; /* org SEP dni -> producer id (string) */
	json_t *gmap;   /* group key -> index in g */
	grp *g;
	size_t ng, cap;
	grp tot;
	sbuf kb;
} ctx;

static void grp_init(grp *g)
{
	memset(g, 0, sizeof(*g));
	g->persons = json_object();
	g->sessions = json_object();
}

static void grp_free(grp *g)
{
	for (size_t i = 0; i < QP_REPORT_NKEYS; i++)
		free(g->vals[i]);
	json_decref(g->persons);
	json_decref(g->sessions);
}

/* The group whose key values (one per key of the grouping, indexed by
 * qp_report_key) are v; created when new. */
static grp *group(ctx *c, const char *const v[QP_REPORT_NKEYS])
{
	json_t *ix;
	grp *g;
	size_t i;

	sb_reset(&c->kb);
	for (i = 0; i < c->by->n; i++) {
		sb_add(&c->kb, v[c->by->keys[i]]);
		sb_add(&c->kb, SEP);
	}
	ix = json_object_get(c->gmap, c->kb.p);
	if (ix != NULL)
		return &c->g[json_integer_value(ix)];
	if (c->ng == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->g = qp_xrealloc(c->g, c->cap * sizeof(*c->g));
	}
	g = &c->g[c->ng];
	grp_init(g);
	for (i = 0; i < c->by->n; i++) {
		const char *s = v[c->by->keys[i]];
		g->vals[i] = s != NULL ? qp_xstrdup(s) : NULL;
	}
	json_object_set_new(c->gmap, c->kb.p, json_integer((json_int_t)c->ng));
	c->ng++;
	return g;
}

static int rank(const char *status)
{
	if (status == NULL)
		return -1;
	if (strcmp(status, "present") == 0)
		return 3;
	if (strcmp(status, "left-early") == 0)
		return 2;
	if (strcmp(status, "proxy") == 0)
		return 1;
	if (strcmp(status, "absent") == 0)
		return 0;
	return -1;
}

/* The hours of a session (see report.h). */
static double session_hours(const json_t *ses, const json_t *svc)
{
	double a, b;
	const json_t *h, *n;

	if (qp_schema_time_seconds(str(ses, "starts_at"), 0, &a) == 0 &&
	    qp_schema_time_seconds(str(ses, "ends_at"), 0, &b) == 0 && b >= a)
		return (b - a) / 3600.0;
	h = json_object_get(svc, "hours");
	n = json_object_get(svc, "sessions_planned");
	if (json_is_number(h) && json_is_integer(n) &&
	    json_integer_value(n) > 0)
		return json_number_value(h) / (double)json_integer_value(n);
	return 0;
}

/* The month of a session: the first seven characters ("YYYY-MM") of a
 * valid starts_at, into out[8]. */
static const char *session_month(const json_t *ses, char *out)
{
	const char *s = str(ses, "starts_at");

	/* The month of the session's own (local) date. */
	if (!qp_schema_time_ok(s, 1))
		return NULL;
	memcpy(out, s, 7);
	out[7] = '\0';
	return out;
}

/* Registered producers by org and DNI (see report.h). */
json_t *qp_report_dni_index(const json_t *producers)
{
	json_t *map = json_object(), *r;
	const char *org, *dni, *id;
	sbuf k = {0};
	size_t i;

	json_array_foreach(producers, i, r) {
		if (!json_is_object(r) || (org = str(r, "org")) == NULL ||
		    (dni = str(r, "dni")) == NULL || (id = str(r, "id")) == NULL)
			continue;
		sb_reset(&k);
		sb_add(&k, org);
		sb_add(&k, SEP);
		sb_add(&k, dni);
		json_object_set_new(map, k.p, json_string(id));
	}
	free(k.p);
	return map;
}

/* The person an attendance names (see report.h). */
char *qp_report_person(const json_t *by_dni, const json_t *a)
{
	const char *p = str(a, "producer"), *dni, *org = str(a, "org");
	const char *reg;
	sbuf b = {0};

	if (p != NULL)
		return qp_xstrdup(p);
	if ((dni = str(a, "dni")) == NULL)
		return NULL;
	if (org != NULL) {
		sb_add(&b, org);
		sb_add(&b, SEP);
		sb_add(&b, dni);
		reg = json_string_value(json_object_get(by_dni, b.p));
		if (reg != NULL) {
			free(b.p);
			return qp_xstrdup(reg);
		}
	}
	sb_reset(&b);
	sb_add(&b, "dni:");
	sb_add(&b, dni);
	return b.p;
}

/* Count one kept attendance into group g. */
static void count_in(grp *g, int r, const char *person, json_t *sexv,
                     const char *session, double hours)
{
	g->atts++;
	if (r == 0) {
		g->absent++;
		return;
	}
	g->attended++;
	json_object_set(g->persons, person, sexv);
	json_object_set_new(g->sessions, session, json_null());
	g->hours += r == 2 ? hours / 2 : hours;
}

/* Deduplicate the attendance: *kept gets an array of the records kept (in
 * first-seen order), *merged the number of records dropped. */
static void dedup(ctx *c, const json_t *att, json_t **kept, size_t *merged)
{
	json_t *seen = json_object(), *out = json_array(), *a, *ix;
	sbuf k = {0};
	const char *ses;
	char *person;
	size_t i, n = 0;
	int r;

	json_array_foreach(att, i, a) {
		if (!json_is_object(a) || (ses = str(a, "session")) == NULL ||
		    (r = rank(str(a, "status"))) < 0 ||
		    json_object_get(c->sessions, ses) == NULL ||
		    (person = qp_report_person(c->by_dni, a)) == NULL)
			continue;
		sb_reset(&k);
		sb_add(&k, ses);
		sb_add(&k, SEP);
		sb_add(&k, person);
		free(person);
		ix = json_object_get(seen, k.p);
		if (ix == NULL) {
			json_object_set_new(
			    seen, k.p,
			    json_integer((json_int_t)json_array_size(out)));
			json_array_append(out, a);
			continue;
		}
		n++;
		if (r > rank(str(
		            json_array_get(out, (size_t)json_integer_value(ix)),
		            "status")))
			json_array_set(out, (size_t)json_integer_value(ix), a);
	}
	free(k.p);
	json_decref(seen);
	*kept = out;
	*merged = n;
}

/* Whether the grouping holds key k. */
static int has(const qp_report_by *by, qp_report_key k)
{
	for (size_t i = 0; i < by->n; i++)
		if (by->keys[i] == k)
			return 1;
	return 0;
}

static long long planned_of(const json_t *svc)
{
	const json_t *n = json_object_get(svc, "sessions_planned");

	return json_is_integer(n) && json_integer_value(n) > 0
	           ? (long long)json_integer_value(n)
	           : 0;
}

/* Planned sessions and committed services, for groupings without sex or
 * month: each accepted (org, service) commitment when the grouping holds
 * org, else each service. */
static void plan(ctx *c, const json_t *commitments, const json_t *attended)
{
	const char *v[QP_REPORT_NKEYS] = {0};
	json_t *pairs, *cm, *svc;
	const char *org, *sid, *key;
	sbuf k = {0};
	size_t i;
	grp *g;

	if (!has(c->by, QP_RK_ORG)) {
		json_object_foreach(c->services, sid, svc) {
			v[QP_RK_SERVICE] = sid;
			v[QP_RK_PROVIDER] = str(svc, "provider");
			g = group(c, v);
			g->planned += planned_of(svc);
			c->tot.planned += planned_of(svc);
		}
		return;
	}
	pairs = json_object();
	json_array_foreach(commitments, i, cm) {
		if (!json_is_object(cm) ||
		    !json_is_true(json_object_get(cm, "accepted")) ||
		    (org = str(cm, "org")) == NULL ||
		    (sid = str(cm, "service")) == NULL ||
		    (svc = json_object_get(c->services, sid)) == NULL)
			continue;
		sb_reset(&k);
		sb_add(&k, org);
		sb_add(&k, SEP);
		sb_add(&k, sid);
		if (json_object_get(pairs, k.p) != NULL)
			continue;
		json_object_set_new(pairs, k.p, json_null());
		key = k.p;
		v[QP_RK_ORG] = org;
		v[QP_RK_SERVICE] = sid;
		v[QP_RK_PROVIDER] = str(svc, "provider");
		g = group(c, v);
		g->planned += planned_of(svc);
		g->committed++;
		c->tot.planned += planned_of(svc);
		c->tot.committed++;
		if (json_object_get(attended, key) != NULL) {
			g->attended_svc++;
			c->tot.attended_svc++;
		}
	}
	free(k.p);
	json_decref(pairs);
}

/* ------------------------------------------------------------------ */
/* Output. */

static int cmp_grp(const void *pa, const void *pb, void *arg)
{
	const grp *a = pa, *b = pb;
	const qp_report_by *by = arg;
	int r;

	for (size_t i = 0; i < by->n; i++) {
		if (a->vals[i] == NULL || b->vals[i] == NULL) {
			r = (a->vals[i] != NULL) - (b->vals[i] != NULL);
			if (r != 0)
				return r;
			continue;
		}
		if ((r = strcmp(a->vals[i], b->vals[i])) != 0)
			return r;
	}
	return 0;
}

static json_t *str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *ratio(size_t a, size_t b)
{
	return json_real(b ? (double)a / (double)b : 0.0);
}

/* Append the metrics of g to o. */
static void metrics(const ctx *c, const grp *g, json_t *o)
{
	int with_plan = !has(c->by, QP_RK_SEX) && !has(c->by, QP_RK_MONTH);
	int org_only = c->by->n == 1 && c->by->keys[0] == QP_RK_ORG;
	size_t persons = json_object_size(g->persons), women = 0, known = 0;
	const char *k;
	json_t *v;

	json_object_foreach(g->persons, k, v) {
		women += json_is_true(v);
		known += !json_is_null(v);
	}
	json_object_set_new(o, "attendances",
	                    json_integer((json_int_t)g->atts));
	json_object_set_new(o, "attended",
	                    json_integer((json_int_t)g->attended));
	json_object_set_new(o, "absent", json_integer((json_int_t)g->absent));
	json_object_set_new(o, "attendance_rate", ratio(g->attended, g->atts));
	json_object_set_new(o, "persons", json_integer((json_int_t)persons));
	json_object_set_new(o, "women", json_integer((json_int_t)women));
	json_object_set_new(o, "women_share", ratio(women, known));
	json_object_set_new(
	    o, "sessions_held",
	    json_integer((json_int_t)json_object_size(g->sessions)));
	json_object_set_new(o, "sessions_planned",
	                    with_plan ? json_integer(g->planned) : json_null());
	/* Hours are summed from fractions such as 8/3: rounding to a
	 * millionth of an hour drops the binary noise (253770.49999996944)
	 * without hiding anything a programme measures. */
	json_object_set_new(o, "hours", json_real(round(g->hours * 1e6) / 1e6));
	json_object_set_new(o, "committed_services",
	                    org_only ? json_integer((json_int_t)g->committed)
	                             : json_null());
	json_object_set_new(o, "attended_services",
	                    org_only ? json_integer((json_int_t)g->attended_svc)
	                             : json_null());
}

static json_t *row(const ctx *c, const grp *g)
{
	json_t *o = json_object();
	const char *v;

	for (size_t i = 0; i < c->by->n; i++) {
		v = g->vals[i];
		switch (c->by->keys[i]) {
		case QP_RK_ORG:
			json_object_set_new(o, "org", str_or_null(v));
			json_object_set_new(
			    o, "org_name",
			    str_or_null(
			        v ? str(json_object_get(c->orgs, v), "name")
			          : NULL));
			break;
		case QP_RK_SERVICE:
			json_object_set_new(o, "service", str_or_null(v));
			json_object_set_new(
			    o, "service_title",
			    str_or_null(v ? str(json_object_get(c->services, v),
			                        "title")
			                  : NULL));
			break;
		default:
			json_object_set_new(o, key_names[c->by->keys[i]],
			                    str_or_null(v));
			break;
		}
	}
	metrics(c, g, o);
	return o;
}

/* ------------------------------------------------------------------ */

int qp_report_attendance(const qp_report_input *in, const qp_report_by *by,
                         json_t **report)
{
	ctx c;
	json_t *kept = NULL, *attended = NULL, *a, *ses, *svc, *prod, *sexv;
	json_t *out = NULL, *rows, *names, *tot;
	const char *v[QP_REPORT_NKEYS], *sid, *sex;
	char month[8], *person = NULL;
	sbuf pair = {0};
	size_t i, merged = 0;
	double h;
	int rc, r;

	if (in == NULL || by == NULL || report == NULL || by->n == 0 ||
	    by->n > QP_REPORT_NKEYS)
		return QP_EINVAL;
	for (i = 0; i < by->n; i++)
		if ((unsigned)by->keys[i] >= QP_REPORT_NKEYS)
			return QP_EINVAL;
	if ((in->attendance != NULL && !json_is_array(in->attendance)) ||
	    (in->commitments != NULL && !json_is_array(in->commitments)))
		return QP_EINVAL;
	memset(&c, 0, sizeof(c));
	c.by = by;
	c.gmap = json_object();
	grp_init(&c.tot);
	if ((rc = index_by_id(in->orgs, &c.orgs)) != 0 ||
	    (rc = index_by_id(in->producers, &c.producers)) != 0 ||
	    (rc = index_by_id(in->services, &c.services)) != 0 ||
	    (rc = index_by_id(in->sessions, &c.sessions)) != 0)
		goto out;
	c.by_dni = qp_report_dni_index(in->producers);
	dedup(&c, in->attendance, &kept, &merged);

	/* (org, service) pairs with someone attended, for attended_services. */
	attended = json_object();
	json_array_foreach(kept, i, a) {
		r = rank(str(a, "status"));
		ses = json_object_get(c.sessions, str(a, "session"));
		sid = str(ses, "service");
		svc = sid != NULL ? json_object_get(c.services, sid) : NULL;
		free(person);
		person = qp_report_person(c.by_dni, a);
		prod = json_object_get(c.producers, person ? person : "");
		sex = str(prod, "sex");
		sexv = sex == NULL             ? json_null()
		       : strcmp(sex, "F") == 0 ? json_true()
		                               : json_false();
		h = session_hours(ses, svc);
		v[QP_RK_ORG] = str(a, "org");
		v[QP_RK_SERVICE] = sid;
		v[QP_RK_PROVIDER] = str(svc, "provider");
		v[QP_RK_SEX] = sex != NULL ? sex : "unknown";
		v[QP_RK_MONTH] = session_month(ses, month);
		count_in(group(&c, v), r, person, sexv, str(a, "session"), h);
		count_in(&c.tot, r, person, sexv, str(a, "session"), h);
		if (r > 0 && v[QP_RK_ORG] != NULL && sid != NULL) {
			sb_reset(&pair);
			sb_add(&pair, v[QP_RK_ORG]);
			sb_add(&pair, SEP);
			sb_add(&pair, sid);
			json_object_set_new(attended, pair.p, json_null());
		}
	}
	if (!has(by, QP_RK_SEX) && !has(by, QP_RK_MONTH))
		plan(&c, in->commitments, attended);

	if (c.ng > 1)
		qsort_r(c.g, c.ng, sizeof(*c.g), cmp_grp, (void *)by);
	names = json_array();
	for (i = 0; i < by->n; i++)
		json_array_append_new(names,
		                      json_string(key_names[by->keys[i]]));
	rows = json_array();
	for (i = 0; i < c.ng; i++)
		json_array_append_new(rows, row(&c, &c.g[i]));
	tot = json_object();
	metrics(&c, &c.tot, tot);
	out = json_pack("{s:o, s:o, s:o, s:I}", "by", names, "rows", rows,
	                "totals", tot, "duplicates_merged", (json_int_t)merged);
	rc = 0;
out:
	for (i = 0; i < c.ng; i++)
		grp_free(&c.g[i]);
	free(c.g);
	grp_free(&c.tot);
	free(c.kb.p);
	free(person);
	free(pair.p);
	json_decref(kept);
	json_decref(attended);
	json_decref(c.gmap);
	json_decref(c.orgs);
	json_decref(c.producers);
	json_decref(c.by_dni);
	json_decref(c.services);
	json_decref(c.sessions);
	if (rc == 0)
		*report = out;
	return rc;
}
