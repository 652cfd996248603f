/* check_report.c - covers proto/report.c: parsing --by, and the attendance
 * report over a small programme computed by hand: deduplication with the
 * best status kept, rates, person-hours (ends_at - starts_at, the
 * service's hours / sessions_planned fallback, left-early half), women's
 * share with a non-registered attendee, committed against attended
 * services, sessions planned and held, every grouping key, a combined
 * grouping, and empty input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "report.h"
#include "suites.h"

/* ------------------------------------------------------------------ */
/* The programme.
 *
 * Orgs o1, o2, o3.  Producers p1 F, p2 M, p5 M (o1), p3 F, p4 X (o2).
 * Services: s1 (ProvA, 3 sessions, 12 h), s2 (ProvA, 2 sessions, 6 h),
 * s3 (ProvB, 4 sessions, no hours).
 * Sessions: e1 s1 Nov 4 h (ends_at); e2 s1 Dec, no ends_at -> 12/3 = 4 h;
 * e3 s2 Nov 1.5 h (ends_at, UTC); e4 s3 Dec, no ends_at, no hours -> 0 h.
 * Accepted commitments: o1-s1 (twice: two devices), o1-s2, o2-s1, o3-s3;
 * o2-s3 not accepted; o1-sX names an unknown service.
 *
 * Attendance (a3 duplicates a1, a7 duplicates a6, a15 duplicates a12; a13
 * names an unknown session):
 *   a1  o1 e1 p1 present       a8  o2 e1 p3 proxy
 *   a2  o1 e1 p2 absent        a9  o2 e2 p4 present
 *   a3  o1 e1 p1 left-early    a10 o2 e2 p3 absent
 *   a4  o1 e1 dni 45678901 present (not registered: sex unknown)
 *   a5  o1 e2 p1 left-early    a11 o1 e3 p5 present
 *   a6  o1 e2 p2 absent        a12 o1 e3 dni 45678901 absent
 *   a7  o1 e2 p2 proxy         a13 o2 e9 p3 present
 *   a14 o2 e4 p4 left-early    a15 o1 e3 dni 45678901 absent
 * Kept: a1 a2 a4 a5 a7 a8 a9 a10 a11 a12 a14 (11), 3 merged.
 * Person-hours: a1 4, a4 4, a5 2, a7 4, a8 4, a9 4, a11 1.5, a14 0 = 23.5.
 */

static const char *orgs_json =
    "[{\"id\":\"o1\",\"kind\":\"org\",\"org\":\"o1\",\"name\":\"Coop A\"},"
    " {\"id\":\"o2\",\"kind\":\"org\",\"org\":\"o2\",\"name\":\"Asoc B\"},"
    " {\"id\":\"o3\",\"kind\":\"org\",\"org\":\"o3\",\"name\":\"Coop C\"}]";

static const char *producers_json =
    "[{\"id\":\"p1\",\"org\":\"o1\",\"dni\":\"40000001\",\"sex\":\"F\"},"
    " {\"id\":\"p2\",\"org\":\"o1\",\"dni\":\"40000002\",\"sex\":\"M\"},"
    " {\"id\":\"p3\",\"org\":\"o2\",\"dni\":\"40000003\",\"sex\":\"F\"},"
    " {\"id\":\"p4\",\"org\":\"o2\",\"dni\":\"40000004\",\"sex\":\"X\"},"
    " {\"id\":\"p5\",\"org\":\"o1\",\"dni\":\"40000005\",\"sex\":\"M\"}]";

static const char *services_json =
    "[{\"id\":\"s1\",\"org\":\"o1\",\"title\":\"Roya\",\"provider\":\"ProvA\","
    "  \"sessions_planned\":3,\"hours\":12},"
    " {\"id\":\"s2\",\"org\":\"o1\",\"title\":\"Poda\",\"provider\":\"ProvA\","
    "  \"sessions_planned\":2,\"hours\":6},"
    " {\"id\":\"s3\",\"org\":\"o2\",\"title\":\"Comercio\","
    "  \"provider\":\"ProvB\",\"sessions_planned\":4}]";

static const char *sessions_json =
    "[{\"id\":\"e1\",\"service\":\"s1\","
    "  \"starts_at\":\"2026-11-03T09:00:00-05:00\","
    "  \"ends_at\":\"2026-11-03T13:00:00-05:00\"},"
    " {\"id\":\"e2\",\"service\":\"s1\","
    "  \"starts_at\":\"2026-12-01T09:00:00-05:00\"},"
    " {\"id\":\"e3\",\"service\":\"s2\",\"starts_at\":\"2026-11-10T08:00Z\","
    "  \"ends_at\":\"2026-11-10T09:30:00.000Z\"},"
    " {\"id\":\"e4\",\"service\":\"s3\","
    "  \"starts_at\":\"2026-12-05T10:00:00-05:00\"}]";

static const char *commitments_json =
    "[{\"id\":\"c1\",\"org\":\"o1\",\"service\":\"s1\",\"accepted\":true},"
    " {\"id\":\"c2\",\"org\":\"o1\",\"service\":\"s2\",\"accepted\":true},"
    " {\"id\":\"c3\",\"org\":\"o2\",\"service\":\"s1\",\"accepted\":true},"
    " {\"id\":\"c4\",\"org\":\"o3\",\"service\":\"s3\",\"accepted\":true},"
    " {\"id\":\"c5\",\"org\":\"o2\",\"service\":\"s3\",\"accepted\":false},"
    " {\"id\":\"c6\",\"org\":\"o1\",\"service\":\"s1\",\"accepted\":true},"
    " {\"id\":\"c7\",\"org\":\"o1\",\"service\":\"sX\",\"accepted\":true}]";

#define ATT(id, org, ses, who, st)                                             \
	"{\"id\":\"" id "\",\"org\":\"" org "\",\"session\":\"" ses "\"," who  \
	",\"status\":\"" st "\"}"
#define PROD(p) "\"producer\":\"" p "\""
#define DNI     "\"dni\":\"45678901\",\"name\":\"Juan Ccori\""

/* clang-format off */
static const char *attendance_json = "["
	ATT("a1", "o1", "e1", PROD("p1"), "present") ","
	ATT("a2", "o1", "e1", PROD("p2"), "absent") ","
	ATT("a3", "o1", "e1", PROD("p1"), "left-early") ","
	ATT("a4", "o1", "e1", DNI, "present") ","
	ATT("a5", "o1", "e2", PROD("p1"), "left-early") ","
	ATT("a6", "o1", "e2", PROD("p2"), "absent") ","
	ATT("a7", "o1", "e2", PROD("p2"), "proxy") ","
	ATT("a8", "o2", "e1", PROD("p3"), "proxy") ","
	ATT("a9", "o2", "e2", PROD("p4"), "present") ","
	ATT("a10", "o2", "e2", PROD("p3"), "absent") ","
	ATT("a11", "o1", "e3", PROD("p5"), "present") ","
	ATT("a12", "o1", "e3", DNI, "absent") ","
	ATT("a13", "o2", "e9", PROD("p3"), "present") ","
	ATT("a14", "o2", "e4", PROD("p4"), "left-early") ","
	ATT("a15", "o1", "e3", DNI, "absent") ", 7, \"junk\"]";
/* clang-format on */

typedef struct prog {
	json_t *orgs, *producers, *services, *sessions, *attendance,
	    *commitments;
	qp_report_input in;
} prog;

static json_t *load(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, 0, &e);

	if (v == NULL)
		ck_abort_msg("test JSON: %s (line %d col %d)", e.text, e.line,
		             e.column);
	return v;
}

static void prog_load(prog *p)
{
	p->orgs = load(orgs_json);
	p->producers = load(producers_json);
	p->services = load(services_json);
	p->sessions = load(sessions_json);
	p->attendance = load(attendance_json);
	p->commitments = load(commitments_json);
	p->in = (qp_report_input){p->orgs,     p->producers,  p->services,
	                          p->sessions, p->attendance, p->commitments};
}

static void prog_free(prog *p)
{
	json_decref(p->orgs);
	json_decref(p->producers);
	json_decref(p->services);
	json_decref(p->sessions);
	json_decref(p->attendance);
	json_decref(p->commitments);
}

/* An integer metric, or "-" for null. */
static void put_int(FILE *f, const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	ck_assert_msg(v != NULL, "metric %s missing", k);
	if (json_is_null(v))
		fputc('-', f);
	else {
		ck_assert_msg(json_is_integer(v), "metric %s not an integer",
		              k);
		fprintf(f, "%lld", (long long)json_integer_value(v));
	}
}

static double real(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	ck_assert_msg(json_is_real(v), "metric %s not a real", k);
	return json_real_value(v);
}

/* One line per row, then "TOTAL", then "merged N":
 *   keys: atts/attended/absent rate persons women share held planned hours
 *   committed/attended_services
 * key values joined by '|', null as '-'. */
static char *render(const json_t *rep)
{
	const json_t *rows = json_object_get(rep, "rows"), *by, *r;
	char *out = NULL;
	size_t len = 0, i, j;
	FILE *f = open_memstream(&out, &len);

	by = json_object_get(rep, "by");
	ck_assert(json_is_array(rows));
	for (i = 0; i <= json_array_size(rows); i++) {
		r = i < json_array_size(rows) ? json_array_get(rows, i)
		                              : json_object_get(rep, "totals");
		if (i == json_array_size(rows)) {
			fputs("TOTAL", f);
		} else {
			for (j = 0; j < json_array_size(by); j++) {
				const char *k =
				    json_string_value(json_array_get(by, j));
				const json_t *v = json_object_get(r, k);
				ck_assert_msg(v != NULL,
				              "key column %s missing", k);
				fprintf(f, "%s%s", j ? "|" : "",
				        json_is_null(v) ? "-"
				                        : json_string_value(v));
				if (strcmp(k, "org") == 0 ||
				    strcmp(k, "service") == 0) {
					v = json_object_get(
					    r, strcmp(k, "org") == 0
					           ? "org_name"
					           : "service_title");
					ck_assert_msg(v != NULL,
					              "name of %s missing", k);
					fprintf(f, "(%s)",
					        json_is_null(v)
					            ? "-"
					            : json_string_value(v));
				}
			}
		}
		fputs(": ", f);
		put_int(f, r, "attendances");
		fputc('/', f);
		put_int(f, r, "attended");
		fputc('/', f);
		put_int(f, r, "absent");
		fprintf(f, " %.4f ", real(r, "attendance_rate"));
		put_int(f, r, "persons");
		fputc(' ', f);
		put_int(f, r, "women");
		fprintf(f, " %.4f ", real(r, "women_share"));
		put_int(f, r, "sessions_held");
		fputc(' ', f);
		put_int(f, r, "sessions_planned");
		fprintf(f, " %gh ", real(r, "hours"));
		put_int(f, r, "committed_services");
		fputc('/', f);
		put_int(f, r, "attended_services");
		fputc('\n', f);
	}
	fprintf(f, "merged %lld\n",
	        (long long)json_integer_value(
	            json_object_get(rep, "duplicates_merged")));
	fclose(f);
	return out;
}

/* Run the report grouped by `by` over the programme and compare. */
static json_t *run(prog *p, const char *by)
{
	qp_report_by b;
	char err[128];
	json_t *rep = NULL;

	ck_assert_int_eq(qp_report_parse_by(by, &b, err, sizeof err), 0);
	ck_assert_int_eq(qp_report_attendance(&p->in, &b, &rep), 0);
	ck_assert_ptr_nonnull(rep);
	return rep;
}

static void report_is(const char *by, const char *want)
{
	prog p;
	json_t *rep;
	char *got;

	prog_load(&p);
	rep = run(&p, by);
	got = render(rep);
	ck_assert_msg(strcmp(got, want) == 0, "by %s:\ngot:\n%swant:\n%s", by,
	              got, want);
	free(got);
	json_decref(rep);
	prog_free(&p);
}

/* ------------------------------------------------------------------ */

START_TEST(test_parse_by)
{
	qp_report_by b;
	char err[128];

	ck_assert_int_eq(qp_report_parse_by(NULL, &b, err, sizeof err), 0);
	ck_assert_uint_eq(b.n, 1);
	ck_assert_int_eq(b.keys[0], QP_RK_ORG);
	ck_assert_int_eq(qp_report_parse_by("month,org,sex,provider,service",
	                                    &b, err, sizeof err),
	                 0);
	ck_assert_uint_eq(b.n, 5);
	ck_assert_int_eq(b.keys[0], QP_RK_MONTH);
	ck_assert_int_eq(b.keys[1], QP_RK_ORG);
	ck_assert_int_eq(b.keys[2], QP_RK_SEX);
	ck_assert_int_eq(b.keys[3], QP_RK_PROVIDER);
	ck_assert_int_eq(b.keys[4], QP_RK_SERVICE);
	ck_assert_str_eq(qp_report_key_name(QP_RK_PROVIDER), "provider");

	b.n = 99;
	ck_assert_int_eq(qp_report_parse_by("org,region", &b, err, sizeof err),
	                 QP_EINVAL);
	ck_assert_str_eq(err, "unknown group key 'region' (org, service, "
	                      "provider, sex or month)");
	ck_assert_uint_eq(b.n, 99); /* untouched on failure */
	ck_assert_int_eq(qp_report_parse_by("Org", &b, err, sizeof err),
	                 QP_EINVAL);
	ck_assert_str_eq(err, "unknown group key 'Org' (org, service, "
	                      "provider, sex or month)");
	ck_assert_int_eq(qp_report_parse_by("sex,org,sex", &b, err, sizeof err),
	                 QP_EINVAL);
	ck_assert_str_eq(err, "group key 'sex' given twice");
	ck_assert_int_eq(qp_report_parse_by("", &b, err, sizeof err),
	                 QP_EINVAL);
	ck_assert_str_eq(err, "empty group key");
	ck_assert_int_eq(qp_report_parse_by("org,", &b, err, sizeof err),
	                 QP_EINVAL);
	ck_assert_str_eq(err, "empty group key");
	ck_assert_int_eq(qp_report_parse_by("org,,sex", &b, err, sizeof err),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_report_parse_by(" org", &b, err, sizeof err),
	                 QP_EINVAL);
}
END_TEST

/* Totals, the merge count and the exact values behind the rounding. */
START_TEST(test_totals)
{
	prog p;
	json_t *rep, *t;

	prog_load(&p);
	rep = run(&p, "org");
	t = json_object_get(rep, "totals");
	ck_assert_int_eq(
	    json_integer_value(json_object_get(rep, "duplicates_merged")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "attendances")),
	                 11);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "attended")), 8);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "absent")), 3);
	ck_assert(real(t, "attendance_rate") == 8.0 / 11.0);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "persons")), 6);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "women")), 2);
	/* p1 and p3 of the five registered persons; the DNI-only attendee
	 * has no known sex and is left out of the divisor. */
	ck_assert(real(t, "women_share") == 2.0 / 5.0);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(t, "sessions_held")), 4);
	ck_assert(real(t, "hours") == 23.5);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(t, "sessions_planned")), 12);
	ck_assert_str_eq(
	    json_string_value(json_array_get(json_object_get(rep, "by"), 0)),
	    "org");
	ck_assert_uint_eq(json_object_size(rep), 4);
	/* 2 key columns + 12 metrics. */
	ck_assert_uint_eq(
	    json_object_size(json_array_get(json_object_get(rep, "rows"), 0)),
	    14);
	ck_assert_uint_eq(json_object_size(t), 12);
	json_decref(rep);
	prog_free(&p);
}
END_TEST

START_TEST(test_by_org)
{
	/* o1: a1 a2 a4 a5 a7 a11 a12; persons p1 p2 p5 + DNI (3 known, 1
	 * woman); hours 4+4+2+4+1.5; committed s1 s2, both attended.
	 * o2: a8 a9 a10 a14; s1 committed and attended, s3 attended but
	 * not committed (accepted false).  o3 committed s3, nobody came. */
	report_is("org", "o1(Coop A): 7/5/2 0.7143 4 1 0.3333 3 5 15.5h 2/2\n"
	                 "o2(Asoc B): 4/3/1 0.7500 2 1 0.5000 3 3 8h 1/1\n"
	                 "o3(Coop C): 0/0/0 0.0000 0 0 0.0000 0 4 0h 1/0\n"
	                 "TOTAL: 11/8/3 0.7273 6 2 0.4000 4 12 23.5h 4/3\n"
	                 "merged 3\n");
}
END_TEST

START_TEST(test_by_service)
{
	report_is("service",
	          "s1(Roya): 8/6/2 0.7500 5 2 0.5000 2 3 22h -/-\n"
	          "s2(Poda): 2/1/1 0.5000 1 0 0.0000 1 2 1.5h -/-\n"
	          "s3(Comercio): 1/1/0 1.0000 1 0 0.0000 1 4 0h -/-\n"
	          "TOTAL: 11/8/3 0.7273 6 2 0.4000 4 9 23.5h -/-\n"
	          "merged 3\n");
}
END_TEST

START_TEST(test_by_provider)
{
	report_is("provider", "ProvA: 10/7/3 0.7000 6 2 0.4000 3 5 23.5h -/-\n"
	                      "ProvB: 1/1/0 1.0000 1 0 0.0000 1 4 0h -/-\n"
	                      "TOTAL: 11/8/3 0.7273 6 2 0.4000 4 9 23.5h -/-\n"
	                      "merged 3\n");
}
END_TEST

START_TEST(test_by_sex)
{
	/* Planned sessions have no meaning per sex: null. */
	report_is("sex", "F: 4/3/1 0.7500 2 2 1.0000 2 - 10h -/-\n"
	                 "M: 3/2/1 0.6667 2 0 0.0000 2 - 5.5h -/-\n"
	                 "X: 2/2/0 1.0000 1 0 0.0000 2 - 4h -/-\n"
	                 "unknown: 2/1/1 0.5000 1 0 0.0000 1 - 4h -/-\n"
	                 "TOTAL: 11/8/3 0.7273 6 2 0.4000 4 - 23.5h -/-\n"
	                 "merged 3\n");
}
END_TEST

START_TEST(test_by_month)
{
	report_is("month", "2026-11: 6/4/2 0.6667 4 2 0.6667 2 - 13.5h -/-\n"
	                   "2026-12: 5/4/1 0.8000 3 1 0.3333 2 - 10h -/-\n"
	                   "TOTAL: 11/8/3 0.7273 6 2 0.4000 4 - 23.5h -/-\n"
	                   "merged 3\n");
}
END_TEST

START_TEST(test_by_org_month)
{
	/* Hours per organisation per month; o3 has no attendance and no
	 * month, so no row. */
	report_is("org,month",
	          "o1(Coop A)|2026-11: 5/3/2 0.6000 3 1 0.5000 2 - 9.5h -/-\n"
	          "o1(Coop A)|2026-12: 2/2/0 1.0000 2 1 0.5000 1 - 6h -/-\n"
	          "o2(Asoc B)|2026-11: 1/1/0 1.0000 1 1 1.0000 1 - 4h -/-\n"
	          "o2(Asoc B)|2026-12: 3/2/1 0.6667 1 0 0.0000 2 - 4h -/-\n"
	          "TOTAL: 11/8/3 0.7273 6 2 0.4000 4 - 23.5h -/-\n"
	          "merged 3\n");
}
END_TEST

START_TEST(test_by_org_service)
{
	/* Planned per (org, service): the service's sessions when the org
	 * accepted it; o2/s3 was attended without an accepted commitment. */
	report_is(
	    "org,service",
	    "o1(Coop A)|s1(Roya): 5/4/1 0.8000 3 1 0.5000 2 3 14h -/-\n"
	    "o1(Coop A)|s2(Poda): 2/1/1 0.5000 1 0 0.0000 1 2 1.5h -/-\n"
	    "o2(Asoc B)|s1(Roya): 3/2/1 0.6667 2 1 0.5000 2 3 8h -/-\n"
	    "o2(Asoc B)|s3(Comercio): 1/1/0 1.0000 1 0 0.0000 1 0 0h -/-\n"
	    "o3(Coop C)|s3(Comercio): 0/0/0 0.0000 0 0 0.0000 0 4 0h -/-\n"
	    "TOTAL: 11/8/3 0.7273 6 2 0.4000 4 12 23.5h -/-\n"
	    "merged 3\n");
}
END_TEST

START_TEST(test_by_sex_org)
{
	/* Key order is the order given, and rows sort by it. */
	report_is("sex,org",
	          "F|o1(Coop A): 2/2/0 1.0000 1 1 1.0000 2 - 6h -/-\n"
	          "F|o2(Asoc B): 2/1/1 0.5000 1 1 1.0000 1 - 4h -/-\n"
	          "M|o1(Coop A): 3/2/1 0.6667 2 0 0.0000 2 - 5.5h -/-\n"
	          "X|o2(Asoc B): 2/2/0 1.0000 1 0 0.0000 2 - 4h -/-\n"
	          "unknown|o1(Coop A): 2/1/1 0.5000 1 0 0.0000 1 - 4h -/-\n"
	          "TOTAL: 11/8/3 0.7273 6 2 0.4000 4 - 23.5h -/-\n"
	          "merged 3\n");
}
END_TEST

/* The best status wins whatever the order the duplicates arrive in, and
 * the org of the kept record is the one counted. */
START_TEST(test_dedup_order)
{
	/* clang-format off */
	static const char *const orders[] = {
		"[" ATT("x1", "o1", "e1", PROD("p1"), "absent") ","
		ATT("x2", "o1", "e1", PROD("p1"), "proxy") ","
		ATT("x3", "o1", "e1", PROD("p1"), "left-early") "]",
		"[" ATT("x3", "o1", "e1", PROD("p1"), "left-early") ","
		ATT("x2", "o1", "e1", PROD("p1"), "proxy") ","
		ATT("x1", "o1", "e1", PROD("p1"), "absent") "]",
		"[" ATT("x2", "o1", "e1", PROD("p1"), "proxy") ","
		ATT("x3", "o1", "e1", PROD("p1"), "left-early") ","
		ATT("x1", "o1", "e1", PROD("p1"), "absent") "]",
	};
	/* clang-format on */
	prog p;
	json_t *rep;
	char *got;

	for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++) {
		prog_load(&p);
		json_decref(p.attendance);
		p.attendance = load(orders[i]);
		p.in.attendance = p.attendance;
		rep = run(&p, "org");
		got = render(rep);
		/* left-early: half of e1's 4 hours. */
		ck_assert_str_eq(
		    got, "o1(Coop A): 1/1/0 1.0000 1 1 1.0000 1 5 2h 2/1\n"
		         "o2(Asoc B): 0/0/0 0.0000 0 0 0.0000 0 3 0h 1/0\n"
		         "o3(Coop C): 0/0/0 0.0000 0 0 0.0000 0 4 0h 1/0\n"
		         "TOTAL: 1/1/0 1.0000 1 1 1.0000 1 12 2h 4/1\n"
		         "merged 2\n");
		free(got);
		json_decref(rep);
		prog_free(&p);
	}
}
END_TEST

/* A producer and a DNI-only attendee are different persons even at one
 * session; a voided (absent from input) producer counts as unknown sex;
 * an attendance of an org no longer listed has a null org_name. */
START_TEST(test_persons)
{
	prog p;
	json_t *rep;
	char *got;

	prog_load(&p);
	json_decref(p.attendance);
	/* clang-format off */
	p.attendance = load("["
		ATT("y1", "o1", "e1", PROD("p1"), "present") ","
		ATT("y2", "o1", "e1", "\"dni\":\"40000001\",\"name\":\"P One\"",
		    "present") ","
		ATT("y3", "o9", "e1", PROD("p77"), "proxy") ","
		ATT("y4", "o9", "e1", "\"name\":\"Nadie\"", "present") "]");
	/* clang-format on */
	p.in.attendance = p.attendance;
	rep = run(&p, "sex,org");
	got = render(rep);
	/* y2 gives the DNI of p1, registered in o1: the same person as y1 at
	 * the same session, merged.  y4 has neither producer nor dni:
	 * skipped. */
	ck_assert_str_eq(
	    got, "F|o1(Coop A): 1/1/0 1.0000 1 1 1.0000 1 - 4h -/-\n"
	         "unknown|o9(-): 1/1/0 1.0000 1 0 0.0000 1 - 4h -/-\n"
	         "TOTAL: 2/2/0 1.0000 2 1 1.0000 1 - 8h -/-\n"
	         "merged 1\n");
	free(got);
	json_decref(rep);
	/* The same DNI at another org is another person; by DNI alone at
	 * another session, p1 still counts once, as a woman. */
	json_decref(p.attendance);
	/* clang-format off */
	p.attendance = load("["
		ATT("y5", "o2", "e1", "\"dni\":\"40000001\",\"name\":\"P One\"",
		    "present") ","
		ATT("y6", "o1", "e2", "\"dni\":\"40000001\",\"name\":\"P One\"",
		    "present") ","
		ATT("y7", "o1", "e1", PROD("p1"), "present") "]");
	/* clang-format on */
	p.in.attendance = p.attendance;
	rep = run(&p, "sex,org");
	got = render(rep);
	ck_assert_str_eq(
	    got, "F|o1(Coop A): 2/2/0 1.0000 1 1 1.0000 2 - 8h -/-\n"
	         "unknown|o2(Asoc B): 1/1/0 1.0000 1 0 0.0000 1 - 4h -/-\n"
	         "TOTAL: 3/3/0 1.0000 2 1 1.0000 2 - 12h -/-\n"
	         "merged 0\n");
	free(got);
	json_decref(rep);
	prog_free(&p);
}
END_TEST

/* Hours summed from fractions are rounded to 6 decimals: three people at
 * a 6-minute session make 0.3 h, not 0.30000000000000004. */
START_TEST(test_hours_rounding)
{
	prog p;
	json_t *rep;

	prog_load(&p);
	json_decref(p.sessions);
	json_decref(p.attendance);
	p.sessions = load("[{\"id\":\"e1\",\"service\":\"s1\","
	                  "\"starts_at\":\"2026-11-03T09:00:00-05:00\","
	                  "\"ends_at\":\"2026-11-03T09:06:00-05:00\"}]");
	/* clang-format off */
	p.attendance = load("["
		ATT("z1", "o1", "e1", PROD("p1"), "present") ","
		ATT("z2", "o1", "e1", PROD("p2"), "present") ","
		ATT("z3", "o1", "e1", PROD("p5"), "proxy") "]");
	/* clang-format on */
	p.in.sessions = p.sessions;
	p.in.attendance = p.attendance;
	ck_assert(0.1 + 0.1 + 0.1 != 0.3);
	rep = run(&p, "org");
	ck_assert(real(json_object_get(rep, "totals"), "hours") == 0.3);
	ck_assert(real(json_array_get(json_object_get(rep, "rows"), 0),
	               "hours") == 0.3);
	json_decref(rep);
	prog_free(&p);
}
END_TEST

START_TEST(test_empty)
{
	qp_report_input in = {0};
	qp_report_by b;
	json_t *rep = NULL;
	char err[64], *got;

	ck_assert_int_eq(qp_report_parse_by("org", &b, err, sizeof err), 0);
	ck_assert_int_eq(qp_report_attendance(&in, &b, &rep), 0);
	got = render(rep);
	ck_assert_str_eq(
	    got, "TOTAL: 0/0/0 0.0000 0 0 0.0000 0 0 0h 0/0\nmerged 0\n");
	ck_assert_uint_eq(json_array_size(json_object_get(rep, "rows")), 0);
	free(got);
	json_decref(rep);

	ck_assert_int_eq(
	    qp_report_parse_by("month,service", &b, err, sizeof err), 0);
	in.attendance = json_array();
	ck_assert_int_eq(qp_report_attendance(&in, &b, &rep), 0);
	got = render(rep);
	ck_assert_str_eq(
	    got, "TOTAL: 0/0/0 0.0000 0 0 0.0000 0 - 0h -/-\nmerged 0\n");
	free(got);
	json_decref(rep);
	json_decref((json_t *)in.attendance);
}
END_TEST

START_TEST(test_invalid)
{
	qp_report_input in = {0};
	qp_report_by b = {0};
	json_t *rep = (json_t *)&in, *obj = json_object();

	ck_assert_int_eq(qp_report_attendance(&in, &b, &rep), QP_EINVAL);
	b.n = 1;
	b.keys[0] = (qp_report_key)7;
	ck_assert_int_eq(qp_report_attendance(&in, &b, &rep), QP_EINVAL);
	b.keys[0] = QP_RK_ORG;
	ck_assert_int_eq(qp_report_attendance(NULL, &b, &rep), QP_EINVAL);
	ck_assert_int_eq(qp_report_attendance(&in, NULL, &rep), QP_EINVAL);
	ck_assert_int_eq(qp_report_attendance(&in, &b, NULL), QP_EINVAL);
	in.sessions = obj;
	ck_assert_int_eq(qp_report_attendance(&in, &b, &rep), QP_EINVAL);
	in.sessions = NULL;
	in.attendance = obj;
	ck_assert_int_eq(qp_report_attendance(&in, &b, &rep), QP_EINVAL);
	ck_assert_ptr_eq(rep, (json_t *)&in); /* untouched on failure */
	json_decref(obj);
}
END_TEST

Suite *suite_report(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("report");

	tcase_add_test(tc, test_parse_by);
	tcase_add_test(tc, test_totals);
	tcase_add_test(tc, test_by_org);
	tcase_add_test(tc, test_by_service);
	tcase_add_test(tc, test_by_provider);
	tcase_add_test(tc, test_by_sex);
	tcase_add_test(tc, test_by_month);
	tcase_add_test(tc, test_by_org_month);
	tcase_add_test(tc, test_by_org_service);
	tcase_add_test(tc, test_by_sex_org);
	tcase_add_test(tc, test_dedup_order);
	tcase_add_test(tc, test_persons);
	tcase_add_test(tc, test_hours_rounding);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_invalid);
	suite_add_tcase(s, tc);
	return s;
}
