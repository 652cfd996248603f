/* check_schema.c - covers proto/schema.c: the kind table of schema v1,
 * record validation with its exact messages, and CSV cell conversion. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "err.h"
#include "schema.h"
#include "suites.h"

#define ORG "0190a5d0-7b3c-7d2e-8f00-000000000001"
#define ORG2 "0190a5d0-7b3c-7d2e-8f00-000000000002"
#define PROD "0190a5d0-7b3c-7d2e-8f00-000000000010"
#define PLOT "0190a5d0-7b3c-7d2e-8f00-000000000020"
#define SERV "0190a5d0-7b3c-7d2e-8f00-000000000030"
#define SESS "0190a5d0-7b3c-7d2e-8f00-000000000040"
#define LOT1 "0190a5d0-7b3c-7d2e-8f00-000000000050"
#define LOT2 "0190a5d0-7b3c-7d2e-8f00-000000000051"
#define LOT3 "0190a5d0-7b3c-7d2e-8f00-000000000052"
#define NEWID "0190a5d0-7b3c-7d2e-8f00-0000000000ff"
#define MISSING "0190a5d0-7b3c-7d2e-8f00-000000000099"
#define BROKEN "0190a5d0-7b3c-7d2e-8f00-000000000098"

/* A fake store: the records a field node would hold. */
static const struct {
	const char *id, *kind;
} held[] = {
	{ORG, "org"},	  {ORG2, "org"},  {PROD, "producer"}, {PLOT, "plot"},
	{SERV, "service"}, {SESS, "session"}, {LOT1, "lot"},	{LOT2, "lot"},
	{LOT3, "lot"},
};

#define VOIDED "0190a5d0-7b3c-7d2e-8f00-000000000097"
#define OTHER "0190a5d0-7b3c-7d2e-8f00-000000000096"
#define PHONE_MSG                                                              \
	"producer.phone: must be a phone number (at least 6 digits, with "     \
	"spaces, '+' first or '-' between; at most 20 characters)"

static int calls;
static char last_path[128]; /* the path of the last lookup */

static int fake_ref(void *ctx, const char *path, const char *want,
		    const char *id, char *got_kind)
{
	(void)ctx;
	calls++;
	snprintf(last_path, sizeof last_path, "%s", path);
	if (strcmp(id, BROKEN) == 0)
		return QP_ESTORE;
	if (strcmp(id, VOIDED) == 0)
		return QP_EVOIDED;
	if (strcmp(id, OTHER) == 0)
		return QP_ESCOPE;
	for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) {
		if (strcmp(held[i].id, id) != 0)
			continue;
		if (want == NULL || strcmp(want, held[i].kind) == 0)
			return 0;
		strcpy(got_kind, held[i].kind);
		return QP_EMISMATCH;
	}
	return QP_ENOTFOUND;
}

static json_t *point(double lon, double lat)
{
	return json_pack("{s:s,s:[f,f]}", "type", "Point", "coordinates", lon,
			 lat);
}

/* A closed ring about 260 m by 280 m (some 7 ha) near Sandia, Puno. */
static json_t *square(void)
{
	return json_pack("{s:s,s:[[[f,f],[f,f],[f,f],[f,f],[f,f]]]}", "type",
			 "Polygon", "coordinates", -72.6924, -13.1085,
			 -72.6900, -13.1085, -72.6900, -13.1060, -72.6924,
			 -13.1060, -72.6924, -13.1085);
}

/* One valid record per kind, as a technician's tablet would make it. */
static json_t *base(const char *kind)
{
	json_t *r = NULL;
	if (strcmp(kind, "org") == 0)
		r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", ORG,
			      "kind", "org", "org", ORG, "ruc", "20100070970",
			      "name",
			      "Cooperativa Agraria Cafetalera Valle del "
			      "Inambari",
			      "type", "cooperative", "region", "Puno",
			      "province", "Sandia", "district", "San Pedro de "
							    "Putina Punco");
	else if (strcmp(kind, "producer") == 0)
		r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "id",
			      NEWID, "kind", "producer", "org", ORG, "dni",
			      "40218765", "name", "Rosa Quispe Mamani", "sex",
			      "F", "community", "Chaupimayo", "phone",
			      "+51 984 123 456", "birth_year", (json_int_t)1978);
	else if (strcmp(kind, "plot") == 0)
		r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:f,s:f,s:I,s:s,s:s}",
			      "id", NEWID, "kind", "plot", "org", ORG,
			      "producer", PROD, "crop", "coffee", "geometry",
			      point(-72.692371, -13.108544), "area_ha", 1.8,
			      "accuracy_m", 4.5, "altitude_m", (json_int_t)1850,
			      "tenure", "owned", "captured_at",
			      "2025-06-12T09:41:07-05:00");
	else if (strcmp(kind, "service") == 0)
		r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:f}", "id", NEWID,
			      "kind", "service", "org", ORG, "title",
			      "Manejo integrado de la broca del caf\xc3\xa9",
			      "area", "production", "provider",
			      "Junta Nacional del Caf\xc3\xa9",
			      "sessions_planned", (json_int_t)3, "hours", 12.5);
	else if (strcmp(kind, "session") == 0)
		r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s}", "id",
			      NEWID, "kind", "session", "org", ORG, "service",
			      SERV, "starts_at", "2026-03-10T09:00:00-05:00",
			      "ends_at", "2026-03-10T13:00:00-05:00", "place",
			      point(-72.7001, -13.1102), "mode", "in-person",
			      "facilitator", "Ing. Julio Huam\xc3\xa1n");
	else if (strcmp(kind, "attendance") == 0)
		r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", NEWID, "kind",
			      "attendance", "org", ORG, "session", SESS,
			      "status", "present", "producer", PROD);
	else if (strcmp(kind, "commitment") == 0)
		r = json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:s}", "id", NEWID,
			      "kind", "commitment", "org", ORG, "service", SERV,
			      "accepted", 1, "signed_by",
			      "Presidente del consejo de administraci\xc3\xb3n",
			      "signed_at", "2026-02-01");
	else if (strcmp(kind, "lot") == 0)
		r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:f,s:s,s:[s],"
			      "s:{s:f,s:I,s:f,s:[s,s]}}",
			      "id", NEWID, "kind", "lot", "org", ORG, "code",
			      "LOT-2026-0001", "product", "coffee-parchment",
			      "kg", 460.5, "producer", PROD, "plots", PLOT,
			      "quality", "moisture_pct", 11.5, "defects",
			      (json_int_t)12, "cup_score", 84.25, "notes",
			      "floral", "citrus");
	else if (strcmp(kind, "lot_event") == 0)
		r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:[{s:s,s:f},{s:s,s:f}],"
			      "s:[{s:s,s:f}]}",
			      "id", NEWID, "kind", "lot_event", "org", ORG,
			      "lot", LOT1, "type", "merge", "inputs", "lot",
			      LOT2, "kg", 300.0, "lot", LOT3, "kg", 160.5,
			      "outputs", "lot", LOT1, "kg", 460.5);
	else if (strcmp(kind, "verification") == 0)
		r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", NEWID,
			      "kind", "verification", "org", ORG, "target",
			      PLOT, "method", "GPS boundary walk", "result",
			      "corrected", "notes",
			      "Boundary re-walked with the producer;\tarea "
			      "corrected.");
	ck_assert_ptr_nonnull(r);
	return r;
}

/* Validate rec (stolen) as kind; msg NULL expects success. */
static void expect_ref(const char *kind, json_t *rec, qp_ref_fn ref,
		       const char *msg)
{
	char err[QP_ERRMSG_LEN] = "";
	const qp_kind *k = qp_schema_kind(kind);
	int rc;
	ck_assert_ptr_nonnull(k);
	rc = qp_schema_validate(k, rec, ref, NULL, err, sizeof err);
	json_decref(rec);
	if (msg == NULL) {
		ck_assert_msg(rc == 0, "%s: unexpected error: %s", kind, err);
	} else {
		ck_assert_int_eq(rc, QP_EVALID);
		ck_assert_str_eq(err, msg);
	}
}

static void expect(const char *kind, json_t *rec, const char *msg)
{
	expect_ref(kind, rec, NULL, msg);
}

/* Base record of kind with field set to v (stolen; NULL deletes it). */
static json_t *with(const char *kind, const char *field, json_t *v)
{
	json_t *r = base(kind);
	if (v == NULL)
		json_object_del(r, field);
	else
		json_object_set_new(r, field, v);
	return r;
}

START_TEST(test_table)
{
	size_t n;
	const qp_kind *k = qp_schema_kinds(&n);
	static const char *names[] = {"org",	    "producer",	  "plot",
				      "service",    "session",	  "attendance",
				      "commitment", "lot",	  "lot_event",
				      "verification"};
	ck_assert_uint_eq(n, 10);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(k[i].name, names[i]);
		ck_assert_ptr_eq(qp_schema_kind(names[i]), &k[i]);
	}
	ck_assert_ptr_null(qp_schema_kind("farmer"));
	ck_assert_ptr_null(qp_schema_kind(NULL));

	/* The natural key a record uses: the kind's unique field it holds
	 * as a string (attendance: producer, or else dni). */
	{
		json_t *r = json_pack("{s:s, s:s, s:s, s:s}", "ruc",
				      "20600000013", "dni", "40000001", "code",
				      "L-1", "producer", "p1");
		json_t *bare = json_pack("{s:s, s:i}", "name", "x", "dni", 4);
		json_t *by_dni = json_pack("{s:s}", "dni", "40000001");
		ck_assert_str_eq(qp_schema_key_of(qp_schema_kind("org"), r)->name,
				 "ruc");
		ck_assert_str_eq(
			qp_schema_key_of(qp_schema_kind("producer"), r)->name,
			"dni");
		ck_assert_str_eq(qp_schema_key_of(qp_schema_kind("lot"), r)->name,
				 "code");
		ck_assert_str_eq(
			qp_schema_key_of(qp_schema_kind("attendance"), r)->name,
			"producer");
		ck_assert_str_eq(qp_schema_key_of(qp_schema_kind("attendance"),
						  by_dni)->name,
				 "dni");
		ck_assert_str_eq(qp_schema_kind("attendance")->key_scope,
				 "session");
		ck_assert_ptr_null(qp_schema_kind("producer")->key_scope);
		/* Not held, or not a string: no key. */
		ck_assert_ptr_null(
			qp_schema_key_of(qp_schema_kind("producer"), bare));
		ck_assert_ptr_null(qp_schema_key_of(qp_schema_kind("plot"), r));
		ck_assert_ptr_null(qp_schema_key_of(NULL, r));
		json_decref(r);
		json_decref(bare);
		json_decref(by_dni);
	}
	ck_assert(qp_schema_kind("org")->flags & QP_K_UNIQUE_GLOBAL);
	ck_assert(!(qp_schema_kind("producer")->flags & QP_K_UNIQUE_GLOBAL));
	ck_assert(qp_schema_kind("attendance")->flags & QP_K_APPEND_ONLY);
	ck_assert(qp_schema_kind("lot_event")->flags & QP_K_APPEND_ONLY);
	ck_assert(qp_schema_kind("verification")->flags & QP_K_APPEND_ONLY);
	ck_assert(!(qp_schema_kind("lot")->flags & QP_K_APPEND_ONLY));

	ck_assert_int_eq(qp_schema_field(qp_schema_kind("lot"), "plots")->type,
			 QP_T_REFS);
	ck_assert_str_eq(
		qp_schema_field(qp_schema_kind("lot_event"), "buyer")->ref_kind,
		"org");
	ck_assert_ptr_null(
		qp_schema_field(qp_schema_kind("verification"), "target")
			->ref_kind);
	ck_assert_ptr_null(qp_schema_field(qp_schema_kind("org"), "id"));
	ck_assert(qp_schema_field(qp_schema_kind("producer"), "dni")->flags &
		  QP_F_REQUIRED);
}
END_TEST

START_TEST(test_valid_each_kind)
{
	size_t n;
	const qp_kind *k = qp_schema_kinds(&n);
	for (size_t i = 0; i < n; i++) {
		calls = 0;
		expect_ref(k[i].name, base(k[i].name), fake_ref, NULL);
		if (strcmp(k[i].name, "org") != 0)
			ck_assert_int_gt(calls, 0); /* the lookup was used */
		expect(k[i].name, base(k[i].name), NULL);
	}
	/* Only the required fields. */
	expect("producer",
	       json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", NEWID, "kind",
			 "producer", "org", ORG, "dni", "01234567", "name",
			 "Juan", "sex", "M"),
	       NULL);
	/* A non-registered attendee. */
	expect("attendance",
	       json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", NEWID, "kind",
			 "attendance", "org", ORG, "session", SESS, "status",
			 "proxy", "dni", "70112233", "name", "Ana Ccori"),
	       NULL);
}
END_TEST

START_TEST(test_meta)
{
	expect("producer", json_string("x"),
	       "producer: record must be a JSON object");
	expect("producer", with("producer", "id", NULL), "producer.id: required");
	expect("producer", with("producer", "id", json_string("42")),
	       "producer.id: must be a UUID");
	expect("producer", with("producer", "kind", json_string("plot")),
	       "producer.kind: must be \"producer\", not \"plot\"");
	expect("producer", with("producer", "kind", NULL),
	       "producer.kind: required");
	expect("producer", with("producer", "org", NULL),
	       "producer.org: required");
	expect("producer", with("producer", "org", json_integer(1)),
	       "producer.org: must be a UUID");
	expect("org", with("org", "org", json_string(ORG2)),
	       "org.org: must equal id (an org record belongs to itself)");
	expect("producer", with("producer", "foo", json_string("bar")),
	       "producer.foo: unknown field");
	/* Unknown fields are named safely. */
	expect("producer", with("producer", "a\nb", json_true()),
	       "producer.a?b: unknown field");
	expect("producer", with("producer", "phone", json_null()),
	       "producer.phone: must not be null (leave the field out "
	       "instead)");
	ck_assert_int_eq(qp_schema_validate(NULL, NULL, NULL, NULL, NULL, 0),
			 QP_EINVAL);
}
END_TEST

START_TEST(test_required)
{
	expect("producer", with("producer", "name", NULL),
	       "producer.name: required");
	expect("org", with("org", "ruc", NULL), "org.ruc: required");
	expect("plot", with("plot", "geometry", NULL), "plot.geometry: required");
	expect("lot", with("lot", "kg", NULL), "lot.kg: required");
	expect("verification", with("verification", "target", NULL),
	       "verification.target: required");
	expect("commitment", with("commitment", "accepted", NULL),
	       "commitment.accepted: required");
}
END_TEST

START_TEST(test_dni_ruc)
{
	expect("producer", with("producer", "dni", json_string("4021876")),
	       "producer.dni: must be exactly 8 digits");
	expect("producer", with("producer", "dni", json_string("4021876A")),
	       "producer.dni: must be exactly 8 digits");
	expect("producer", with("producer", "dni", json_string("402187650")),
	       "producer.dni: must be exactly 8 digits");
	expect("producer", with("producer", "dni", json_integer(40218765)),
	       "producer.dni: must be exactly 8 digits");
	ck_assert(qp_schema_dni_ok("01234567"));
	ck_assert(!qp_schema_dni_ok(" 1234567"));
	ck_assert(!qp_schema_dni_ok(NULL));

	/* Check digits computed by SUNAT's modulus 11. */
	ck_assert(qp_schema_ruc_ok("20100070970"));
	ck_assert(qp_schema_ruc_ok("20131370491"));
	ck_assert(qp_schema_ruc_ok("10462175839"));
	ck_assert(qp_schema_ruc_ok("15000000008"));
	ck_assert(qp_schema_ruc_ok("16000000004"));
	ck_assert(qp_schema_ruc_ok("17000000001"));
	ck_assert(qp_schema_ruc_ok("20600000005"));
	ck_assert(!qp_schema_ruc_ok("20100070971"));
	ck_assert(!qp_schema_ruc_ok("30100070970"));
	ck_assert(!qp_schema_ruc_ok("2010007097"));
	ck_assert(!qp_schema_ruc_ok(NULL));
	expect("org", with("org", "ruc", json_string("20100070973")),
	       "org.ruc: check digit does not match (expected 0)");
	expect("org", with("org", "ruc", json_string("20480000003")),
	       "org.ruc: check digit does not match (expected 6)");
	expect("org", with("org", "ruc", json_string("30100070970")),
	       "org.ruc: must start with 10, 15, 16, 17 or 20");
	expect("org", with("org", "ruc", json_string("2010007097")),
	       "org.ruc: must be exactly 11 digits");
	expect("org", with("org", "ruc", json_string("2010007097x")),
	       "org.ruc: must be exactly 11 digits");
	expect("org", with("org", "ruc", json_string("20600000005")), NULL);
}
END_TEST

START_TEST(test_enums)
{
	expect("org", with("org", "type", json_string("company")),
	       "org.type: must be one of cooperative, association, firm, "
	       "network");
	expect("producer", with("producer", "sex", json_string("f")),
	       "producer.sex: must be one of F, M, X");
	expect("service", with("service", "area", json_string("marketing")),
	       "service.area: must be one of production, management, "
	       "foreign-trade");
	expect("session", with("session", "mode", json_string("hybrid")),
	       "session.mode: must be one of in-person, virtual");
	expect("attendance", with("attendance", "status", json_string("late")),
	       "attendance.status: must be one of present, left-early, proxy, "
	       "absent");
	expect("lot", with("lot", "product", json_string("cocoa")),
	       "lot.product: must be one of coffee-cherry, coffee-parchment, "
	       "coffee-green, cacao-wet, cacao-dry, banana, quinoa, avocado, "
	       "other");
	expect("lot_event", with("lot_event", "type", json_integer(1)),
	       "lot_event.type: must be one of receive, merge, split, "
	       "transform, ship, claim");
	expect("verification", with("verification", "result", json_string("ok")),
	       "verification.result: must be one of confirmed, corrected, "
	       "rejected");
	expect("plot", with("plot", "tenure", json_string("rented")),
	       "plot.tenure: must be one of owned, leased, communal, "
	       "possession, other");
	expect("plot", with("plot", "tenure", json_string("communal")), NULL);
}
END_TEST

START_TEST(test_times)
{
	static const char *good[] = {
		"2025-06-12T09:41:07-05:00", "2025-06-12T09:41Z",
		"2024-02-29T10:00:00Z",	     "2000-02-29T00:00:00+00:00",
		"2025-12-31T23:59:59.999Z",  "2025-01-01T00:00:00.123456789+14:00",
	};
	static const char *bad[] = {
		"2025-02-29T10:00:00Z",	  "2100-02-29T10:00:00Z",
		"2025-04-31T10:00:00Z",	  "2025-13-01T10:00:00Z",
		"2025-00-10T10:00:00Z",	  "2025-06-12T24:00:00Z",
		"2025-06-12T23:60:00Z",	  "2025-06-12T23:59:60Z",
		"2025-06-12T09:41:07",	  "2025-06-12 09:41:07Z",
		"2025-06-12T09:41:07+0500", "2025-06-12T09:41:07.Z",
		"2025-06-12T09:41:07Z ",  "2025-6-12T09:41:07Z",
		"2025-06-12T09:41:07.1234567890Z", "2025-06-12T9:41Z",
		"",			  "2025-06-12T09:41:07+24:00",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		ck_assert_msg(qp_schema_time_ok(good[i], 0), "%s", good[i]);
		ck_assert_msg(qp_schema_time_ok(good[i], 1), "%s", good[i]);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(!qp_schema_time_ok(bad[i], 1), "%s", bad[i]);
	ck_assert(qp_schema_time_ok("2026-02-01", 1));
	ck_assert(!qp_schema_time_ok("2026-02-01", 0));
	ck_assert(!qp_schema_time_ok("2026-02-30", 1));
	ck_assert(!qp_schema_time_ok(NULL, 1));
	{
		/* The same instant in two zones; fractions; a bare date. */
		double a = 0, b = 0, c = 0;
		ck_assert_int_eq(qp_schema_time_seconds(
				     "2026-11-23T09:30:00-05:00", 0, &a), 0);
		ck_assert_int_eq(qp_schema_time_seconds(
				     "2026-11-23T14:30:00.25Z", 0, &b), 0);
		ck_assert(a == 1795444200.0);
		ck_assert(b - a == 0.25);
		ck_assert_int_eq(qp_schema_time_seconds("1970-01-02", 1, &c), 0);
		ck_assert(c == 86400.0);
		ck_assert_int_eq(qp_schema_time_seconds("1970-01-02", 0, &c), -1);
		ck_assert_int_eq(qp_schema_time_seconds("2026-02-30T00:00Z", 0,
							&c), -1);
		ck_assert_int_eq(qp_schema_time_seconds(NULL, 0, &c), -1);
	}

	expect("plot",
	       with("plot", "captured_at", json_string("2025-02-29T10:00:00Z")),
	       "plot.captured_at: must be an ISO 8601 date-time with zone, "
	       "e.g. 2026-11-23T09:30:00-05:00");
	expect("plot", with("plot", "captured_at", json_string("2025-02-28")),
	       "plot.captured_at: must be an ISO 8601 date-time with zone, "
	       "e.g. 2026-11-23T09:30:00-05:00");
	expect("commitment",
	       with("commitment", "signed_at", json_string("01/02/2026")),
	       "commitment.signed_at: must be an ISO 8601 date (YYYY-MM-DD) "
	       "or date-time with zone");
	expect("commitment",
	       with("commitment", "signed_at",
		    json_string("2026-02-01T18:00:00-05:00")),
	       NULL);
}
END_TEST

START_TEST(test_session_order)
{
	/* 14:30Z is 09:30 in Lima: before a 10:00-05:00 start. */
	json_t *r = base("session");
	json_object_set_new(r, "starts_at",
			    json_string("2026-03-10T10:00:00-05:00"));
	json_object_set_new(r, "ends_at", json_string("2026-03-10T14:30:00Z"));
	expect("session", r, "session.ends_at: must not be before starts_at");

	r = base("session");
	json_object_set_new(r, "starts_at",
			    json_string("2026-03-10T10:00:00-05:00"));
	json_object_set_new(r, "ends_at", json_string("2026-03-10T15:30:00Z"));
	expect("session", r, NULL);

	/* Across midnight and a day boundary in UTC. */
	r = base("session");
	json_object_set_new(r, "starts_at",
			    json_string("2026-03-10T23:30:00-05:00"));
	json_object_set_new(r, "ends_at",
			    json_string("2026-03-11T05:00:00.5Z"));
	expect("session", r, NULL);

	/* Fractions count. */
	r = base("session");
	json_object_set_new(r, "starts_at",
			    json_string("2026-03-10T10:00:00.250Z"));
	json_object_set_new(r, "ends_at", json_string("2026-03-10T10:00:00.2Z"));
	expect("session", r, "session.ends_at: must not be before starts_at");

	/* Equal instants are allowed. */
	r = base("session");
	json_object_set_new(r, "starts_at",
			    json_string("2026-03-10T10:00:00+01:00"));
	json_object_set_new(r, "ends_at", json_string("2026-03-10T09:00Z"));
	expect("session", r, NULL);
}
END_TEST

START_TEST(test_numbers)
{
	expect("producer", with("producer", "birth_year", json_integer(1899)),
	       "producer.birth_year: must be at least 1900");
	expect("producer", with("producer", "birth_year", json_integer(2031)),
	       "producer.birth_year: must be at most 2030");
	expect("producer", with("producer", "birth_year", json_string("1978")),
	       "producer.birth_year: must be an integer");
	expect("producer", with("producer", "birth_year", json_real(1978.0)),
	       "producer.birth_year: must be an integer");
	expect("service", with("service", "sessions_planned", json_integer(0)),
	       "service.sessions_planned: must be at least 1");
	expect("service", with("service", "sessions_planned", json_integer(101)),
	       "service.sessions_planned: must be at most 100");
	expect("service", with("service", "hours", json_integer(0)),
	       "service.hours: must be greater than 0");
	expect("service", with("service", "hours", json_real(1000.5)),
	       "service.hours: must be at most 1000");
	expect("service", with("service", "hours", json_integer(1000)), NULL);
	expect("lot", with("lot", "kg", json_integer(0)),
	       "lot.kg: must be greater than 0");
	expect("lot", with("lot", "kg", json_real(-3.5)),
	       "lot.kg: must be greater than 0");
	expect("lot", with("lot", "kg", json_string("460.5")),
	       "lot.kg: must be a number");
	expect("lot", with("lot", "kg", json_real(0.001)), NULL);
	expect("plot", with("plot", "area_ha", json_real(0.0)),
	       "plot.area_ha: must be greater than 0");
	expect("plot", with("plot", "area_ha", json_real(100000.01)),
	       "plot.area_ha: must be at most 100000");
	expect("plot", with("plot", "accuracy_m", json_integer(0)), NULL);
	expect("plot", with("plot", "accuracy_m", json_real(-0.5)),
	       "plot.accuracy_m: must be at least 0");
	expect("plot", with("plot", "accuracy_m", json_integer(10001)),
	       "plot.accuracy_m: must be at most 10000");
	expect("plot", with("plot", "altitude_m", json_integer(-501)),
	       "plot.altitude_m: must be at least -500");
	expect("plot", with("plot", "altitude_m", json_real(7000.5)),
	       "plot.altitude_m: must be at most 7000");
	expect("commitment", with("commitment", "accepted", json_string("yes")),
	       "commitment.accepted: must be true or false");
}
END_TEST

START_TEST(test_text_phone_object)
{
	char big[600];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	expect("producer", with("producer", "name", json_string("")),
	       "producer.name: must not be empty");
	expect("producer", with("producer", "name", json_string(" \t ")),
	       "producer.name: must not be empty");
	expect("producer", with("producer", "name", json_string("Rosa\nQ")),
	       "producer.name: contains a control character");
	expect("producer",
	       with("producer", "name", json_string("Rosa \xc2\x85Q")),
	       "producer.name: contains a control character");
	expect("producer", with("producer", "name", json_stringn("Ro\0sa", 5)),
	       "producer.name: contains a control character");
	expect("producer", with("producer", "name", json_string(big)),
	       "producer.name: longer than 512 bytes");
	expect("producer", with("producer", "name", json_integer(7)),
	       "producer.name: must be a string");
	expect("lot", with("lot", "code", json_string(big + 534)),
	       "lot.code: longer than 64 bytes");
	expect("producer",
	       with("producer", "name", json_string("\xc3\x91" "a\tE")), NULL);

	expect("producer", with("producer", "phone", json_string("984123456")),
	       NULL);
	/* 7 characters but 5 digits: the message says digits count. */
	expect("producer", with("producer", "phone", json_string("+51 964")),
	       PHONE_MSG);
	expect("producer", with("producer", "phone", json_string("984-123-456")),
	       NULL);
	expect("producer", with("producer", "phone", json_string("98412")),
	       PHONE_MSG);
	expect("producer", with("producer", "phone", json_string("984 12x 456")),
	       PHONE_MSG);
	expect("producer", with("producer", "phone", json_string("51+984123456")),
	       PHONE_MSG);
	expect("producer",
	       with("producer", "phone", json_string("+51 984 123 456 789 01")),
	       PHONE_MSG);

	expect("producer", with("producer", "phone", json_string(" 984123456")),
	       PHONE_MSG);
	expect("producer", with("producer", "phone", json_string("984123456-")),
	       PHONE_MSG);

	expect("lot", with("lot", "quality", json_pack("{s:[s,s]}", "notes",
							 "ok", "bad\x01")),
	       "lot.quality.notes: contains a control character");
	expect("lot", with("lot", "quality", json_pack("{s:s}", "grade", "")),
	       NULL);
	expect("lot", with("lot", "quality", json_pack("{s:{s:i}}", "a", "b", 1)),
	       "lot.quality.a: must be text, a number, true/false, or an array "
	       "of at most 64 of those");
	expect("lot", with("lot", "quality", json_pack("[i]", 1)),
	       "lot.quality: must be an object");
	{
		json_t *q = json_object();
		char key[16];
		for (int i = 0; i < 65; i++) {
			snprintf(key, sizeof key, "k%d", i);
			json_object_set_new(q, key, json_integer(i));
		}
		expect("lot", with("lot", "quality", q),
		       "lot.quality: too many keys (limit 64)");
	}
}
END_TEST

START_TEST(test_refs)
{
	json_t *r;
	expect_ref("attendance", with("attendance", "session", json_string(MISSING)),
		   fake_ref,
		   "attendance.session: no session with id " MISSING
		   " on this node");
	expect_ref("attendance", with("attendance", "session", json_string(PROD)),
		   fake_ref,
		   "attendance.session: " PROD " is a producer, not a session");
	expect_ref("plot", with("plot", "producer", json_string(ORG)), fake_ref,
		   "plot.producer: " ORG " is an org, not a producer");
	expect_ref("lot_event", with("lot_event", "buyer", json_string(PROD)),
		   fake_ref,
		   "lot_event.buyer: " PROD " is a producer, not an org");
	expect_ref("lot_event", with("lot_event", "buyer", json_string(ORG2)),
		   fake_ref, NULL);
	/* Any kind may be verified; a missing target is still refused. */
	expect_ref("verification",
		   with("verification", "target", json_string(SESS)), fake_ref,
		   NULL);
	expect_ref("verification",
		   with("verification", "target", json_string(MISSING)),
		   fake_ref,
		   "verification.target: no record with id " MISSING
		   " on this node");
	/* Without a lookup only the form is checked (merge at the hub). */
	expect("attendance", with("attendance", "session", json_string(MISSING)),
	       NULL);
	expect("attendance", with("attendance", "session", json_string("s1")),
	       "attendance.session: must be a record id (UUID)");
	/* The org reference goes through the lookup too. */
	expect_ref("producer", with("producer", "org", json_string(MISSING)),
		   fake_ref,
		   "producer.org: no org with id " MISSING " on this node");
	expect_ref("producer", with("producer", "org", json_string(PLOT)),
		   fake_ref, "producer.org: " PLOT " is a plot, not an org");

	/* The lookup may refuse a voided record or one of another org; the
	 * message names the field, and the lookup is told the path. */
	expect_ref("plot", with("plot", "producer", json_string(VOIDED)),
		   fake_ref, "plot.producer: producer " VOIDED " is voided");
	ck_assert_str_eq(last_path, "plot.producer");
	expect_ref("attendance", with("attendance", "session", json_string(OTHER)),
		   fake_ref,
		   "attendance.session: session " OTHER
		   " belongs to another organisation");
	expect_ref("lot", with("lot", "plots", json_pack("[s,s]", PLOT, OTHER)),
		   fake_ref,
		   "lot.plots[1]: plot " OTHER " belongs to another organisation");
	ck_assert_str_eq(last_path, "lot.plots[1]");
	expect_ref("lot_event",
		   with("lot_event", "inputs",
			json_pack("[{s:s,s:f}]", "lot", LOT2, "kg", 10.0)),
		   fake_ref, NULL);
	ck_assert_str_eq(last_path, "lot_event.org");

	/* A storage failure is not a validation failure. */
	{
		char err[QP_ERRMSG_LEN];
		r = with("attendance", "session", json_string(BROKEN));
		ck_assert_int_eq(qp_schema_validate(qp_schema_kind("attendance"),
						    r, fake_ref, NULL, err,
						    sizeof err),
				 QP_ESTORE);
		ck_assert_str_eq(err, "attendance.session: cannot look up " BROKEN
				      ": storage error");
		json_decref(r);
	}

	/* Lists of ids. */
	expect_ref("lot", with("lot", "plots", json_pack("[s,s]", PLOT, MISSING)),
		   fake_ref,
		   "lot.plots[1]: no plot with id " MISSING " on this node");
	expect("lot", with("lot", "plots", json_pack("[s,s]", PLOT, PLOT)),
	       "lot.plots[1]: duplicate id " PLOT);
	expect("lot", with("lot", "plots", json_array()),
	       "lot.plots: must not be empty");
	expect("lot", with("lot", "plots", json_string(PLOT)),
	       "lot.plots: must be an array of record ids");
	expect("lot", with("lot", "plots", json_pack("[s,i]", PLOT, 3)),
	       "lot.plots[1]: must be a record id (UUID)");

	/* Lot quantities. */
	expect_ref("lot_event",
		   with("lot_event", "inputs",
			json_pack("[{s:s,s:f}]", "lot", PLOT, "kg", 1.0)),
		   fake_ref,
		   "lot_event.inputs[0].lot: " PLOT " is a plot, not a lot");
	expect("lot_event",
	       with("lot_event", "inputs",
		    json_pack("[{s:s,s:f},{s:s,s:i}]", "lot", LOT2, "kg", 1.0,
			      "lot", LOT3, "kg", 0)),
	       "lot_event.inputs[1].kg: must be greater than 0");
	expect("lot_event",
	       with("lot_event", "inputs",
		    json_pack("[{s:s,s:f,s:s}]", "lot", LOT2, "kg", 1.0, "q",
			      "x")),
	       "lot_event.inputs[0].q: unknown field");
	expect("lot_event",
	       with("lot_event", "outputs", json_pack("[{s:f}]", "kg", 1.0)),
	       "lot_event.outputs[0].lot: required");
	expect("lot_event",
	       with("lot_event", "outputs",
		    json_pack("[{s:s,s:f},{s:s,s:f}]", "lot", LOT2, "kg", 1.0,
			      "lot", LOT2, "kg", 2.0)),
	       "lot_event.outputs[1].lot: duplicate lot " LOT2);
	expect("lot_event",
	       with("lot_event", "outputs", json_pack("[{s:s}]", "lot", LOT2)),
	       "lot_event.outputs[0].kg: required");
	expect("lot_event", with("lot_event", "outputs", json_array()),
	       "lot_event.outputs: must not be empty");
}
END_TEST

START_TEST(test_cross_rules)
{
	static const char *att =
		"attendance: needs producer, or dni and name of a "
		"non-registered person";
	json_t *r = base("attendance");
	json_object_set_new(r, "dni", json_string("70112233"));
	expect("attendance", r, att);
	r = base("attendance");
	json_object_del(r, "producer");
	expect("attendance", r, att);
	r = base("attendance");
	json_object_del(r, "producer");
	json_object_set_new(r, "dni", json_string("70112233"));
	expect("attendance", r, att);
	r = base("attendance");
	json_object_del(r, "producer");
	json_object_set_new(r, "name", json_string("Ana Ccori"));
	expect("attendance", r, att);

	expect("lot_event", with("lot_event", "outputs", NULL),
	       "lot_event: merge needs inputs and outputs");
	/* A lot that goes in cannot come out of the same event. */
	expect("lot_event",
	       with("lot_event", "outputs",
		    json_pack("[{s:s,s:f},{s:s,s:f}]", "lot", LOT1, "kg", 100.0,
			      "lot", LOT3, "kg", 60.0)),
	       "lot_event.outputs[1].lot: lot " LOT3
	       " is also an input of this event");
	r = with("lot_event", "type", json_string("split"));
	json_object_del(r, "inputs");
	expect("lot_event", r, "lot_event: split needs inputs and outputs");
	r = with("lot_event", "type", json_string("ship"));
	expect("lot_event", r, "lot_event: ship needs buyer or destination");
	r = with("lot_event", "type", json_string("ship"));
	json_object_set_new(r, "destination",
			    json_string("Puerto del Callao, contenedor MSKU "
					"1234567"));
	expect("lot_event", r, NULL);
	r = with("lot_event", "type", json_string("claim"));
	expect("lot_event", r, "lot_event: claim needs reason");
	r = with("lot_event", "type", json_string("claim"));
	json_object_set_new(r, "reason", json_string("Humedad 14% al recibir"));
	expect("lot_event", r, NULL);
	r = with("lot_event", "type", json_string("receive"));
	json_object_del(r, "inputs");
	json_object_del(r, "outputs");
	expect("lot_event", r, NULL);
}
END_TEST

START_TEST(test_geometry)
{
	json_t *g, *r;

	/* Over 4 ha needs a polygon (EUDR). */
	expect("plot", with("plot", "area_ha", json_real(4.5)),
	       "plot.geometry: plots over 4 ha need a polygon (EUDR)");
	expect("plot", with("plot", "area_ha", json_real(4.0)), NULL);
	r = with("plot", "area_ha", json_real(4.5));
	json_object_set_new(r, "geometry", square());
	expect("plot", r, NULL);

	g = square();
	json_array_set_new(json_array_get(json_object_get(g, "coordinates"), 0),
			   4, json_pack("[f,f]", -72.6924, -13.1084));
	expect("plot", with("plot", "geometry", g),
	       "plot.geometry.coordinates[0]: ring not closed");

	g = square();
	json_array_set_new(json_array_get(json_object_get(g, "coordinates"), 0),
			   3, json_pack("[f,f]", -72.6924, 95.2));
	expect("plot", with("plot", "geometry", g),
	       "plot.geometry.coordinates[0][3]: latitude 95.2 out of range");

	expect("plot", with("plot", "geometry", point(-181, -13.1)),
	       "plot.geometry.coordinates: longitude -181 out of range");
	expect("plot", with("plot", "geometry", point(180, 90)), NULL);
	/* A whole Feature where its geometry belongs. */
	expect("plot",
	       with("plot", "geometry",
		    json_pack("{s:s,s:o,s:{}}", "type", "Feature", "geometry",
			      point(-72.5, -13.1), "properties")),
	       "plot.geometry: must be a GeoJSON geometry, not a Feature (give "
	       "the Feature's \"geometry\" member)");

	g = json_pack("{s:s,s:[[[f,f],[f,f],[f,f]]]}", "type", "Polygon",
		      "coordinates", 0.0, 0.0, 1.0, 0.0, 0.0, 0.0);
	expect("plot", with("plot", "geometry", g),
	       "plot.geometry.coordinates[0]: ring needs at least 4 positions");

	g = json_pack("{s:s,s:[]}", "type", "Polygon", "coordinates");
	expect("plot", with("plot", "geometry", g),
	       "plot.geometry.coordinates: must be a non-empty array of linear "
	       "rings");

	g = json_pack("{s:s,s:[f,f,f,f]}", "type", "Point", "coordinates", 1.0,
		      2.0, 3.0, 4.0);
	expect("plot", with("plot", "geometry", g),
	       "plot.geometry.coordinates: must be a position [longitude, "
	       "latitude] or [longitude, latitude, altitude]");
	g = json_pack("{s:s,s:[f,f,f]}", "type", "Point", "coordinates", -72.1,
		      -13.2, 2450.0);
	expect("plot", with("plot", "geometry", g), NULL);
	g = json_pack("{s:s,s:[s,f]}", "type", "Point", "coordinates", "-72",
		      -13.2);
	expect("plot", with("plot", "geometry", g),
	       "plot.geometry.coordinates: must be a position [longitude, "
	       "latitude] or [longitude, latitude, altitude]");

	g = json_pack("{s:s,s:[[f,f],[f,f]]}", "type", "LineString",
		      "coordinates", 0.0, 0.0, 1.0, 1.0);
	expect("plot", with("plot", "geometry", g),
	       "plot.geometry.type: must be Point, Polygon or MultiPolygon");

	g = point(-72.1, -13.2);
	json_object_set_new(g, "properties", json_object());
	expect("plot", with("plot", "geometry", g),
	       "plot.geometry.properties: unknown member");

	g = point(-72.1, -13.2);
	json_object_set_new(g, "bbox", json_pack("[f,f,f,f]", -72.1, -13.2,
						 -72.1, -13.2));
	expect("plot", with("plot", "geometry", g), NULL);
	g = point(-72.1, -13.2);
	json_object_set_new(g, "bbox", json_pack("[f,f]", -72.1, -13.2));
	expect("plot", with("plot", "geometry", g),
	       "plot.geometry.bbox: must be an array of 4 or 6 numbers");

	g = json_pack("{s:s}", "type", "Point");
	expect("plot", with("plot", "geometry", g),
	       "plot.geometry.coordinates: required");

	/* MultiPolygon: two squares; the second with its ring broken. */
	{
		json_t *sq = square(), *c = json_object_get(sq, "coordinates");
		g = json_pack("{s:s,s:[O,O]}", "type", "MultiPolygon",
			      "coordinates", c, c);
		json_decref(sq);
		r = with("plot", "geometry", g);
		json_object_set_new(r, "area_ha", json_real(12.0));
		expect("plot", r, NULL);

		sq = square();
		c = json_object_get(sq, "coordinates");
		g = json_pack("{s:s,s:[O,[[[f,f],[f,f],[f,f],[f,f]]]]}", "type",
			      "MultiPolygon", "coordinates", c, 1.0, 1.0, 2.0,
			      1.0, 2.0, 2.0, 1.0, 2.0);
		json_decref(sq);
		expect("plot", with("plot", "geometry", g),
		       "plot.geometry.coordinates[1][0]: ring not closed");
	}

	/* A session place is a point only. */
	expect("session", with("session", "place", square()),
	       "session.place.type: must be Point");
	expect("session", with("session", "place", point(-72.1, -91)),
	       "session.place.coordinates: latitude -91 out of range");

	/* Size bound: 100001 positions in one ring. */
	{
		json_t *ring = json_array();
		for (int i = 0; i < 100001; i++)
			json_array_append_new(ring,
					      json_pack("[f,f]", 0.0, 0.0));
		g = json_pack("{s:s,s:[o]}", "type", "Polygon", "coordinates",
			      ring);
		expect("plot", with("plot", "geometry", g),
		       "plot.geometry: too many positions (limit 100000)");
	}
}
END_TEST

static json_t *conv(const char *kind, const char *field, const char *text,
		    char *err)
{
	const qp_kind *k = qp_schema_kind(kind);
	json_t *v = (json_t *)1;
	int rc = qp_schema_from_text(k, qp_schema_field(k, field), text, &v,
				     err, QP_ERRMSG_LEN);
	if (rc != 0) {
		ck_assert_int_eq(rc, QP_EVALID);
		ck_assert_ptr_eq(v, (json_t *)1); /* untouched on failure */
		return (json_t *)2;
	}
	return v;
}

static void conv_err(const char *kind, const char *field, const char *text,
		     const char *msg)
{
	char err[QP_ERRMSG_LEN] = "";
	ck_assert_ptr_eq(conv(kind, field, text, err), (json_t *)2);
	ck_assert_str_eq(err, msg);
}

START_TEST(test_from_text)
{
	char err[QP_ERRMSG_LEN];
	json_t *v;

	ck_assert_ptr_null(conv("producer", "birth_year", "", err));
	ck_assert_ptr_null(conv("producer", "name", "  ", err));
	v = conv("producer", "birth_year", " 1978 ", err);
	ck_assert(json_is_integer(v) && json_integer_value(v) == 1978);
	json_decref(v);
	conv_err("producer", "birth_year", "19x0",
		 "producer.birth_year: not an integer: \"19x0\"");
	conv_err("producer", "birth_year", "1978.0",
		 "producer.birth_year: not an integer: \"1978.0\"");
	conv_err("producer", "birth_year", "99999999999999999999",
		 "producer.birth_year: not an integer: "
		 "\"99999999999999999999\"");

	v = conv("lot", "kg", "460.5", err);
	ck_assert(json_is_real(v) && json_real_value(v) == 460.5);
	json_decref(v);
	v = conv("lot", "kg", "1e3", err);
	ck_assert(json_is_real(v) && json_real_value(v) == 1000);
	json_decref(v);
	/* A whole number stays an integer, as in JSON. */
	v = conv("plot", "area_ha", "2", err);
	ck_assert(json_is_integer(v) && json_integer_value(v) == 2);
	json_decref(v);
	conv_err("lot", "kg", "460,5",
		 "lot.kg: not a number: \"460,5\" (use a dot for decimals)");
	conv_err("lot", "kg", "nan", "lot.kg: not a number: \"nan\"");
	conv_err("lot", "kg", "0x10", "lot.kg: not a number: \"0x10\"");
	conv_err("lot", "kg", "1e999", "lot.kg: not a number: \"1e999\"");

	v = conv("commitment", "accepted", "S\xc3\x8d", err);
	ck_assert(json_is_true(v));
	v = conv("commitment", "accepted", "Yes", err);
	ck_assert(json_is_true(v));
	v = conv("commitment", "accepted", "0", err);
	ck_assert(json_is_false(v));
	v = conv("commitment", "accepted", "FALSE", err);
	ck_assert(json_is_false(v));
	conv_err("commitment", "accepted", "quiz\xc3\xa1s",
		 "commitment.accepted: not true or false: \"quiz\xc3\xa1s\"");

	/* Text stays as typed; other cells are trimmed. */
	v = conv("producer", "name", " Rosa  ", err);
	ck_assert_str_eq(json_string_value(v), " Rosa  ");
	json_decref(v);
	v = conv("producer", "dni", " 01234567 ", err);
	ck_assert_str_eq(json_string_value(v), "01234567");
	json_decref(v);
	/* The CSV writer's formula guard is undone. */
	v = conv("producer", "phone", "'+51 984 123 456", err);
	ck_assert_str_eq(json_string_value(v), "+51 984 123 456");
	json_decref(v);
	v = conv("verification", "notes", "'=cmd", err);
	ck_assert_str_eq(json_string_value(v), "=cmd");
	json_decref(v);
	v = conv("verification", "notes", "''=cmd", err);
	ck_assert_str_eq(json_string_value(v), "'=cmd");
	json_decref(v);
	v = conv("verification", "notes", "'quoted'", err);
	ck_assert_str_eq(json_string_value(v), "'quoted'");
	json_decref(v);
	conv_err("producer", "name", "\xff\xfe",
		 "producer.name: not valid UTF-8 text");

	v = conv("lot", "plots", PLOT "; " LOT1 " ;", err);
	ck_assert_uint_eq(json_array_size(v), 2);
	ck_assert_str_eq(json_string_value(json_array_get(v, 0)), PLOT);
	ck_assert_str_eq(json_string_value(json_array_get(v, 1)), LOT1);
	json_decref(v);
	v = conv("lot", "plots", "[\"" PLOT "\"]", err);
	ck_assert_uint_eq(json_array_size(v), 1);
	json_decref(v);

	v = conv("plot", "geometry",
		 "{\"type\":\"Point\",\"coordinates\":[-72.692371,-13.108544]}",
		 err);
	ck_assert(json_is_object(v));
	ck_assert(json_real_value(json_array_get(
			  json_object_get(v, "coordinates"), 0)) == -72.692371);
	json_decref(v);
	conv_err("plot", "geometry", "{\"type\":\"Point\",",
		 "plot.geometry: not valid JSON: string or '}' expected near "
		 "end of file (column 16)");
	conv_err("lot", "quality", "{\"a\":1,\"a\":2}",
		 "lot.quality: not valid JSON: duplicate object key near "
		 "'\"a\"' (column 10)");

	ck_assert_int_eq(qp_schema_from_text(NULL, NULL, "", &v, err, sizeof err),
			 QP_EINVAL);
}
END_TEST

static void to_text_is(json_t *v, const char *want)
{
	char *s = qp_schema_to_text(v);
	ck_assert_str_eq(s, want);
	free(s);
	json_decref(v);
}

START_TEST(test_to_text)
{
	to_text_is(json_string("Rosa, \"la\" tejedora"), "Rosa, \"la\" tejedora");
	to_text_is(json_integer(-42), "-42");
	to_text_is(json_real(0.1), "0.1");
	to_text_is(json_real(460.5), "460.5");
	to_text_is(json_real(250000.0), "250000");
	to_text_is(json_real(-77.042793), "-77.042793");
	to_text_is(json_real(1e-7), "1e-07");
	to_text_is(json_real(0.0001), "0.0001");
	to_text_is(json_real(1e20), "1e+20");
	to_text_is(json_real(123456789012345678.0), "1.2345678901234568e+17");
	to_text_is(json_real(1.0 / 3), "0.3333333333333333");
	to_text_is(json_true(), "true");
	to_text_is(json_false(), "false");
	to_text_is(json_null(), "");
	to_text_is(point(-77.042793, -12.046374),
		   "{\"type\":\"Point\",\"coordinates\":[-77.042793,-12.046374]}");
	to_text_is(json_pack("[f,i,s]", 2.0, 2, "a\"b"), "[2.0,2,\"a\\\"b\"]");
	to_text_is(json_pack("{s:s,s:[]}", "z", "\xc3\xb1", "a"),
		   "{\"z\":\"\xc3\xb1\",\"a\":[]}");
	{
		char *s = qp_schema_to_text(NULL);
		ck_assert_str_eq(s, "");
		free(s);
	}
}
END_TEST

/* to_text then from_text gives back the same value, for every kind of
 * field and many doubles. */
START_TEST(test_round_trip)
{
	const qp_kind *k = qp_schema_kind("lot");
	const qp_field *kg = qp_schema_field(k, "kg");
	char err[QP_ERRMSG_LEN];
	unsigned seed = 12345;
	size_t n;
	const qp_kind *all = qp_schema_kinds(&n);

	for (int i = 0; i < 20000; i++) {
		double x;
		char *s;
		json_t *v;
		uint64_t bits = 0;
		for (int j = 0; j < 4; j++)
			bits = bits << 16 | (uint64_t)(rand_r(&seed) & 0xffff);
		memcpy(&x, &bits, sizeof x);
		if (!isfinite(x))
			continue;
		if (i % 2)
			x = (double)(rand_r(&seed) % 2000000) / 1000.0;
		s = qp_schema_to_text(v = json_real(x));
		json_decref(v);
		ck_assert_int_eq(qp_schema_from_text(k, kg, s, &v, err, sizeof err),
				 0);
		ck_assert_msg(json_number_value(v) == x, "%s", s);
		json_decref(v);
		free(s);
	}

	/* Whole records: each field to a cell and back validates again. */
	for (size_t i = 0; i < n; i++) {
		json_t *r = base(all[i].name), *copy = json_object();
		json_object_set(copy, "id", json_object_get(r, "id"));
		json_object_set(copy, "kind", json_object_get(r, "kind"));
		json_object_set(copy, "org", json_object_get(r, "org"));
		for (size_t j = 0; j < all[i].nfields; j++) {
			const qp_field *f = &all[i].fields[j];
			json_t *v = json_object_get(r, f->name), *back;
			char *s;
			if (v == NULL)
				continue;
			s = qp_schema_to_text(v);
			ck_assert_int_eq(qp_schema_from_text(&all[i], f, s, &back,
							     err, sizeof err),
					 0);
			ck_assert_ptr_nonnull(back);
			if (json_is_number(v))
				ck_assert(json_number_value(back) ==
					  json_number_value(v));
			else
				ck_assert_msg(json_equal(back, v), "%s.%s: %s",
					      all[i].name, f->name, s);
			json_object_set_new(copy, f->name, back);
			free(s);
		}
		expect(all[i].name, copy, NULL);
		json_decref(r);
	}
}
END_TEST

/* A text cell written by the CSV writer (with its formula guard) and read
 * back by the CSV reader and from_text (which undoes the guard) is the
 * string it was, whatever quotes and formula characters it starts with. */
START_TEST(test_csv_cell_identity)
{
	static const char *tricky[] = {
		"=x",	"'=x",	    "''=x",	    "-1",  "-x",	  "+",
		"@a",	"'",	    "'-1",	    "'+",  "'@",	  "'-",
		"'-x",	"=",	    "-",	    "'''=", "a'=b",	  "'quoted'",
		"''",	"'=SUM(A1)", "'=\"x\",y",
	};
	const qp_kind *k = qp_schema_kind("producer");
	const qp_field *f = qp_schema_field(k, "community");
	char *buf = NULL, err[QP_ERRMSG_LEN];
	size_t len = 0, i;
	qp_csv_reader *r;
	qp_csv_row row;
	json_t *v;
	FILE *out;

	for (i = 0; i < sizeof tricky / sizeof tricky[0]; i++) {
		out = open_memstream(&buf, &len);
		qp_csv_write_row(out, &tricky[i], 1);
		fclose(out);
		r = qp_csv_open(buf, len, 0, 0);
		ck_assert_int_eq(qp_csv_next(r, &row, err, sizeof err), 1);
		ck_assert_uint_eq(row.ncols, 1);
		v = NULL;
		ck_assert_int_eq(qp_schema_from_text(k, f, row.cols[0], &v, err,
						     sizeof err), 0);
		ck_assert_msg(json_is_string(v), "%s: no value", tricky[i]);
		ck_assert_msg(strcmp(json_string_value(v), tricky[i]) == 0,
			      "wrote %s as %s, read back %s", tricky[i], buf,
			      json_string_value(v));
		json_decref(v);
		qp_csv_close(r);
		free(buf);
		buf = NULL;
	}
}
END_TEST

Suite *suite_schema(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_table);
	tcase_add_test(tc, test_valid_each_kind);
	tcase_add_test(tc, test_meta);
	tcase_add_test(tc, test_required);
	tcase_add_test(tc, test_dni_ruc);
	tcase_add_test(tc, test_enums);
	tcase_add_test(tc, test_times);
	tcase_add_test(tc, test_session_order);
	tcase_add_test(tc, test_numbers);
	tcase_add_test(tc, test_text_phone_object);
	tcase_add_test(tc, test_refs);
	tcase_add_test(tc, test_cross_rules);
	tcase_add_test(tc, test_geometry);
	tcase_add_test(tc, test_from_text);
	tcase_add_test(tc, test_to_text);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_csv_cell_identity);
	suite_add_tcase(s, tc);
	return s;
}
