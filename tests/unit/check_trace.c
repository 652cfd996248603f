/* check_trace.c - covers proto/trace.c: lot lineage upstream (kg charged
 * back to received lots, producers and plots, shares), downstream (shares,
 * shipments, claims, from a lot or a producer), lots made by several events,
 * splits, cycles, the depth limit and references to records that are not
 * there.  Expected numbers are worked out by hand in the comments. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "suites.h"
#include "trace.h"

#define EPS 1e-6

/* JSON text with ' for " (easier to read in C). */
static json_t *load(const char *text)
{
	char *s = strdup(text), *p;
	json_error_t e;
	json_t *v;

	for (p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	v = json_loads(s, 0, &e);
	if (v == NULL)
		ck_abort_msg("bad test JSON: %s: %s", e.text, s);
	free(s);
	return v;
}

/* A data set {lots, events, plots} indexed. */
typedef struct fix {
	json_t *d;
	qp_trace *t;
} fix;

static void fix_open(fix *f, const char *text)
{
	f->d = load(text);
	ck_assert_int_eq(qp_trace_new(json_object_get(f->d, "lots"),
				      json_object_get(f->d, "events"),
				      json_object_get(f->d, "plots"), &f->t),
			 0);
}

static void fix_close(fix *f)
{
	qp_trace_free(f->t);
	json_decref(f->d);
}

static json_t *up(fix *f, const char *lot)
{
	char err[256] = "";
	json_t *r = NULL;
	int rc = qp_trace_up(f->t, lot, &r, err, sizeof(err));

	ck_assert_msg(rc == 0, "trace up %s: %d %s", lot, rc, err);
	return r;
}

static json_t *down(fix *f, const char *start_json)
{
	json_t *start = load(start_json), *r = NULL;
	char err[256] = "";
	int rc = qp_trace_down(f->t, start, &r, err, sizeof(err));

	json_decref(start);
	ck_assert_msg(rc == 0, "trace down: %d %s", rc, err);
	return r;
}

/* The entry of result array name whose key is val. */
static json_t *entry(const json_t *res, const char *name, const char *key,
		     const char *val)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(res, name), i, e) {
		const char *s = json_string_value(json_object_get(e, key));
		if (s != NULL && strcmp(s, val) == 0)
			return e;
	}
	ck_abort_msg("no %s with %s %s", name, key, val);
	return NULL;
}

static double num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_number(v), "%s is not a number", key);
	return json_number_value(v);
}

/* The string at key of o (NULL when none). */
static const char *sv(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Item i of the array at key of o. */
static json_t *item(const json_t *o, const char *key, size_t i)
{
	return json_array_get(json_object_get(o, key), i);
}

static size_t count(const json_t *o, const char *key)
{
	return json_array_size(json_object_get(o, key));
}

#define ck_near(a, b) ck_assert_double_eq_tol((a), (b), EPS)

/* Receive -> merge -> transform -> ship, with a claim:
 *   R1 1000 kg (P1, plots A1 A2), R2 600 kg (P2, plot B1),
 *   R3 400 kg (P1, plot A1)  --merge-->  M 2000 kg
 *   M 2000 --transform-->  X 400 kg parchment  --ship-->  (claim on X)
 * Upstream of X: need(M) = 2000 x 400 / 400 = 2000; need(R1) = 1000,
 * need(R2) = 600, need(R3) = 400, total 2000: shares .5 .3 .2.  P1 gets
 * 1400 (.7), P2 600 (.3).  Plots: A1 = 1000/2 + 400 = 900 (.45), A2 = 500
 * (.25), B1 = 600 (.3). */
static const char chain[] =
    "{'lots': ["
    " {'id':'r1','code':'R1','product':'coffee-cherry','kg':1000,"
    "  'producer':'p1','plots':['a1','a2']},"
    " {'id':'r2','code':'R2','product':'coffee-cherry','kg':600,"
    "  'producer':'p2','plots':['b1']},"
    " {'id':'r3','code':'R3','product':'coffee-cherry','kg':400,"
    "  'producer':'p1','plots':['a1']},"
    " {'id':'m','code':'M','product':'coffee-cherry','kg':2000},"
    " {'id':'x','code':'X','product':'coffee-parchment','kg':400},"
    " {'id':'r4','code':'R4','product':'coffee-cherry','kg':50,"
    "  'plots':['a2']}],"
    "'plots': ["
    " {'id':'a1','producer':'p1'},{'id':'a2','producer':'p1'},"
    " {'id':'b1','producer':'p2'}],"
    "'events': ["
    " {'id':'e1','type':'receive','lot':'r1'},"
    " {'id':'e2','type':'receive','lot':'r2'},"
    " {'id':'e3','type':'receive','lot':'r3'},"
    " {'id':'e4','type':'merge','lot':'m','inputs':[{'lot':'r1','kg':1000},"
    "  {'lot':'r2','kg':600},{'lot':'r3','kg':400}],"
    "  'outputs':[{'lot':'m','kg':2000}]},"
    " {'id':'e5','type':'transform','lot':'x','inputs':[{'lot':'m','kg':2000}],"
    "  'outputs':[{'lot':'x','kg':400}]},"
    " {'id':'e6','type':'ship','lot':'x','buyer':'o9','destination':'Hamburg',"
    "  'container':'MSKU1234565','document':'BL-77'},"
    " {'id':'e7','type':'claim','lot':'x','reason':'mould'}]}";

START_TEST(test_up_chain)
{
	fix f;
	json_t *r, *l, *e;

	fix_open(&f, chain);
	r = up(&f, "x");
	ck_assert_str_eq(sv(r, "direction"), "up");
	ck_assert_int_eq(count(r, "lots"), 5);

	l = entry(r, "lots", "id", "x");
	ck_near(num(l, "kg_in"), 400);
	ck_near(num(l, "share"), 1);
	ck_assert_int_eq(num(l, "depth"), 0);
	ck_assert(json_is_false(json_object_get(l, "leaf")));
	l = entry(r, "lots", "id", "m");
	ck_near(num(l, "kg_in"), 2000);
	ck_near(num(l, "share"), 1);
	ck_assert_int_eq(num(l, "depth"), 1);
	l = entry(r, "lots", "id", "r1");
	ck_near(num(l, "kg_in"), 1000);
	ck_near(num(l, "share"), 0.5);
	ck_assert_int_eq(num(l, "depth"), 2);
	ck_assert(json_is_true(json_object_get(l, "leaf")));
	ck_assert_str_eq(sv(l, "code"), "R1");
	ck_near(num(entry(r, "lots", "id", "r2"), "share"), 0.3);
	ck_near(num(entry(r, "lots", "id", "r3"), "kg_in"), 400);
	/* Sorted by depth, then code. */
	l = json_object_get(r, "lots");
	ck_assert_str_eq(sv(json_array_get(l, 0), "id"), "x");
	ck_assert_str_eq(sv(json_array_get(l, 2), "code"), "R1");
	ck_assert_str_eq(sv(json_array_get(l, 4), "code"), "R3");

	/* Producers, kg descending. */
	ck_assert_int_eq(count(r, "producers"), 2);
	e = item(r, "producers", 0);
	ck_assert_str_eq(sv(e, "id"), "p1");
	ck_near(num(e, "kg"), 1400);
	ck_near(num(e, "share"), 0.7);
	ck_near(num(entry(r, "producers", "id", "p2"), "kg"), 600);

	/* Plots: A1 gets half of R1 and all of R3. */
	ck_assert_int_eq(count(r, "plots"), 3);
	e = entry(r, "plots", "id", "a1");
	ck_near(num(e, "kg"), 900);
	ck_near(num(e, "share"), 0.45);
	ck_assert_str_eq(sv(e, "producer"), "p1");
	ck_near(num(entry(r, "plots", "id", "a2"), "kg"), 500);
	ck_near(num(entry(r, "plots", "id", "b1"), "share"), 0.3);
	ck_assert_ptr_null(json_object_get(e, "missing"));

	/* Events: the ones that made the lots and the receipts; not the
	 * ship or claim. */
	e = json_object_get(r, "events");
	ck_assert_int_eq(json_array_size(e), 5);
	ck_assert_str_eq(sv(json_array_get(e, 0), "id"), "e1");
	ck_assert_str_eq(sv(json_array_get(e, 4), "id"), "e5");
	ck_assert_str_eq(sv(json_array_get(e, 3), "type"), "merge");
	ck_assert_int_eq(
	    json_array_size(json_object_get(json_array_get(e, 3), "inputs")),
	    3);
	json_decref(r);

	/* Upstream of a received lot is the lot itself. */
	r = up(&f, "r2");
	ck_assert_int_eq(count(r, "lots"), 1);
	ck_near(num(entry(r, "producers", "id", "p2"), "share"), 1);
	ck_assert_int_eq(count(r, "events"), 1);
	json_decref(r);

	/* A lot without producer: its plot's producer. */
	r = up(&f, "r4");
	ck_near(num(entry(r, "producers", "id", "p1"), "kg"), 50);
	json_decref(r);
	fix_close(&f);
}
END_TEST

START_TEST(test_down_chain)
{
	fix f;
	json_t *r, *s, *start = NULL;

	fix_open(&f, chain);
	/* From R1: M holds 1000/2000 of it, X all of M: 0.5; the shipment
	 * is 0.5 x 400 = 200 kg. */
	r = down(&f, "['r1']");
	ck_assert_str_eq(sv(r, "direction"), "down");
	ck_assert_int_eq(count(r, "lots"), 3);
	ck_near(num(entry(r, "lots", "id", "r1"), "share"), 1);
	ck_near(num(entry(r, "lots", "id", "m"), "share"), 0.5);
	ck_near(num(entry(r, "lots", "id", "x"), "share"), 0.5);
	ck_assert_int_eq(num(entry(r, "lots", "id", "x"), "depth"), 2);
	ck_assert_ptr_null(
	    json_object_get(entry(r, "lots", "id", "x"), "kg_in"));
	ck_assert_int_eq(count(r, "shipments"), 1);
	s = entry(r, "shipments", "event", "e6");
	ck_assert_str_eq(sv(s, "lot"), "x");
	ck_assert_str_eq(sv(s, "code"), "X");
	ck_assert_str_eq(sv(s, "buyer"), "o9");
	ck_assert_str_eq(sv(s, "destination"), "Hamburg");
	ck_assert_str_eq(sv(s, "container"), "MSKU1234565");
	ck_assert_str_eq(sv(s, "document"), "BL-77");
	ck_near(num(s, "kg"), 200);
	ck_near(num(s, "share"), 0.5);
	s = entry(r, "claims", "event", "e7");
	ck_assert_str_eq(sv(s, "reason"), "mould");
	ck_assert_str_eq(sv(s, "code"), "X");
	/* merge, transform, ship, claim */
	ck_assert_int_eq(count(r, "events"), 4);
	json_decref(r);

	/* From producer P1: R1 and R3 by their producer, R4 by its plot. */
	ck_assert_int_eq(qp_trace_producer_lots(f.t, "P1", &start), 0);
	ck_assert_int_eq(json_array_size(start), 3);
	ck_assert_str_eq(json_string_value(json_array_get(start, 0)), "r1");
	ck_assert_str_eq(json_string_value(json_array_get(start, 2)), "r4");
	r = NULL;
	{
		char err[128];
		ck_assert_int_eq(
		    qp_trace_down(f.t, start, &r, err, sizeof(err)), 0);
	}
	/* M: (1000 + 400) / 2000 = 0.7; shipment 280 kg. */
	ck_near(num(entry(r, "lots", "id", "m"), "share"), 0.7);
	ck_near(num(entry(r, "shipments", "event", "e6"), "kg"), 280);
	ck_assert_int_eq(count(r, "lots"), 5);
	json_decref(r);
	json_decref(start);

	/* Nothing downstream of an unknown start, and no error. */
	r = down(&f, "['nope', 7]");
	ck_assert_int_eq(count(r, "lots"), 0);
	json_decref(r);
	ck_assert_int_eq(qp_trace_producer_lots(f.t, "p9", &start), 0);
	ck_assert_int_eq(json_array_size(start), 0);
	json_decref(start);
	fix_close(&f);
}
END_TEST

/* S 1000 kg split into S1 600 and S2 400; S1 shipped.  Upstream of S1:
 * need(S) = 1000 x 600 / 1000 = 600.  Downstream of S: both halves hold
 * only S (share 1); the shipment of S1 is 600 kg. */
START_TEST(test_split)
{
	fix f;
	json_t *r;

	fix_open(
	    &f,
	    "{'lots':["
	    " {'id':'s','code':'S','product':'cacao-dry','kg':1000,"
	    "  'producer':'p1','plots':['a1','a2','a3']},"
	    " {'id':'s1','code':'S1','product':'cacao-dry','kg':600},"
	    " {'id':'s2','code':'S2','product':'cacao-dry','kg':400}],"
	    "'plots':[{'id':'a1','producer':'p1'},{'id':'a2','producer':'p1'},"
	    " {'id':'a3','producer':'p1'}],"
	    "'events':["
	    " {'id':'e1','type':'split','lot':'s','inputs':[{'lot':'s','kg':"
	    "1000}],"
	    "  'outputs':[{'lot':'s1','kg':600},{'lot':'s2','kg':400}]},"
	    " {'id':'e2','type':'ship','lot':'s1','destination':'Antwerp'}]}");
	r = up(&f, "s1");
	ck_near(num(entry(r, "lots", "id", "s"), "kg_in"), 600);
	ck_near(num(entry(r, "lots", "id", "s"), "share"), 1);
	ck_near(num(entry(r, "producers", "id", "p1"), "kg"), 600);
	ck_near(num(entry(r, "plots", "id", "a3"), "kg"), 200);
	json_decref(r);

	r = down(&f, "['s']");
	ck_near(num(entry(r, "lots", "id", "s1"), "share"), 1);
	ck_near(num(entry(r, "lots", "id", "s2"), "share"), 1);
	ck_near(num(entry(r, "shipments", "event", "e2"), "kg"), 600);
	ck_assert(json_is_null(
	    json_object_get(entry(r, "shipments", "event", "e2"), "buyer")));
	json_decref(r);
	fix_close(&f);
}
END_TEST

/* L (200 kg) was output by two events: e1 made 100 kg of it from A,
 * e2 300 kg from B.  L's need of 200 is split 1:3 across them: A 50, B
 * 150.  And an event with two inputs and two outputs: A 100 + B 300 ->
 * K1 100 + K2 200 (mass lost); upstream of K1 (100 kg): A pays
 * 100 x 100 / 300 = 33.33, B 100; shares .25 and .75. */
START_TEST(test_two_events)
{
	fix f;
	json_t *r;

	fix_open(&f, "{'lots':["
		     " {'id':'a','code':'A','product':'quinoa','kg':500,'"
		     "producer':'p1'},"
		     " {'id':'b','code':'B','product':'quinoa','kg':500,'"
		     "producer':'p2'},"
		     " {'id':'l','code':'L','product':'quinoa','kg':200},"
		     " {'id':'k1','code':'K1','product':'quinoa','kg':100},"
		     " {'id':'k2','code':'K2','product':'quinoa','kg':200}],"
		     "'events':["
		     " {'id':'e1','type':'merge','lot':'l','inputs':[{'lot':'a'"
		     ",'kg':100}],"
		     "  'outputs':[{'lot':'l','kg':100}]},"
		     " {'id':'e2','type':'merge','lot':'l','inputs':[{'lot':'b'"
		     ",'kg':300}],"
		     "  'outputs':[{'lot':'l','kg':300}]},"
		     " {'id':'e3','type':'split','lot':'k1','inputs':[{'lot':'"
		     "a','kg':100},"
		     "  {'lot':'b','kg':300}],'outputs':[{'lot':'k1','kg':100},"
		     "  {'lot':'k2','kg':200}]}]}");
	r = up(&f, "l");
	ck_near(num(entry(r, "lots", "id", "a"), "kg_in"), 50);
	ck_near(num(entry(r, "lots", "id", "b"), "kg_in"), 150);
	ck_near(num(entry(r, "lots", "id", "a"), "share"), 0.25);
	ck_near(num(entry(r, "producers", "id", "p2"), "share"), 0.75);
	ck_assert_int_eq(count(r, "events"), 2);
	/* No plots named anywhere. */
	ck_assert_int_eq(count(r, "plots"), 0);
	json_decref(r);

	r = up(&f, "K1"); /* ids compare without case */
	ck_near(num(entry(r, "lots", "id", "a"), "kg_in"), 100.0 / 3);
	ck_near(num(entry(r, "lots", "id", "b"), "kg_in"), 100);
	ck_near(num(entry(r, "lots", "id", "b"), "share"), 0.75);
	json_decref(r);

	/* Downstream of A: e1 (A its only input) made 100 of the 400 kg put
	 * into L, so L gets 1 x 100/100 x 100/400 = 0.25, as upstream of L
	 * says of A; K1 and K2 get 100/400 = 0.25 each from e3 (its only
	 * maker). */
	r = down(&f, "['a']");
	ck_near(num(entry(r, "lots", "id", "l"), "share"), 0.25);
	ck_near(num(entry(r, "lots", "id", "k1"), "share"), 0.25);
	ck_near(num(entry(r, "lots", "id", "k2"), "share"), 0.25);
	json_decref(r);
	fix_close(&f);
}
END_TEST

START_TEST(test_find)
{
	fix f;
	const json_t *l;

	fix_open(&f, chain);
	l = qp_trace_find(f.t, "R2");
	ck_assert_ptr_nonnull(l);
	ck_assert_str_eq(sv(l, "id"), "r2");
	ck_assert_ptr_eq(qp_trace_find(f.t, "r2"), l);
	ck_assert_ptr_null(qp_trace_find(f.t, "nothing"));
	ck_assert_ptr_null(qp_trace_find(f.t, NULL));
	ck_assert_int_eq(qp_trace_code_shared(f.t, "R2"), 0);
	fix_close(&f);

	/* Two orgs may use one code: the code finds neither; ids do. */
	fix_open(&f, "{'lots':["
		     " {'id':'x1','org':'o1','code':'X-1','product':'quinoa','kg':10},"
		     " {'id':'x2','org':'o2','code':'X-1','product':'banana','kg':20}],"
		     "'events':[]}");
	ck_assert_ptr_null(qp_trace_find(f.t, "X-1"));
	ck_assert_int_ne(qp_trace_code_shared(f.t, "X-1"), 0);
	ck_assert_str_eq(sv(qp_trace_find(f.t, "x2"), "code"), "X-1");
	fix_close(&f);
}
END_TEST

/* Ids are UUIDs: compared without case; codes exactly. */
START_TEST(test_case)
{
	fix f;
	json_t *r;

	fix_open(&f, "{'lots':["
		     " {'id':'0190a0b0-0000-7000-8000-00000000000a','code':'Ab'"
		     ",'product':'banana','kg':10,'producer':'p'},"
		     " {'id':'0190a0b0-0000-7000-8000-00000000000b','code':'B',"
		     "'product':'banana','kg':10}],"
		     "'events':[{'id':'e','type':'merge','lot':'0190a0b0-0000-"
		     "7000-8000-00000000000b',"
		     " 'inputs':[{'lot':'0190A0B0-0000-7000-8000-00000000000A',"
		     "'kg':10}],"
		     " 'outputs':[{'lot':'0190A0B0-0000-7000-8000-00000000000B'"
		     ",'kg':10}]}]}");
	ck_assert_ptr_nonnull(
	    qp_trace_find(f.t, "0190A0B0-0000-7000-8000-00000000000B"));
	ck_assert_ptr_null(qp_trace_find(f.t, "ab"));
	r = up(&f, "0190a0b0-0000-7000-8000-00000000000b");
	ck_assert_int_eq(count(r, "lots"), 2);
	/* The record's own spelling of the id. */
	ck_near(
	    num(entry(r, "lots", "id", "0190a0b0-0000-7000-8000-00000000000a"),
		"share"),
	    1);
	json_decref(r);
	fix_close(&f);
}
END_TEST

START_TEST(test_cycle)
{
	fix f;
	char err[256];
	json_t *r = NULL, *start;

	fix_open(&f, "{'lots':["
		     " {'id':'x','code':'X','product':'banana','kg':10},"
		     " {'id':'y','code':'Y','product':'banana','kg':10},"
		     " {'id':'z','code':'Z','product':'banana','kg':10}],"
		     "'events':["
		     " {'id':'e1','type':'transform','lot':'x','inputs':[{'lot'"
		     ":'y','kg':10}],"
		     "  'outputs':[{'lot':'x','kg':10}]},"
		     " {'id':'e2','type':'transform','lot':'y','inputs':[{'lot'"
		     ":'x','kg':10}],"
		     "  'outputs':[{'lot':'y','kg':10}]},"
		     " {'id':'e3','type':'split','lot':'z','inputs':[{'lot':'z'"
		     ",'kg':10}],"
		     "  'outputs':[{'lot':'z','kg':10}]}]}");
	ck_assert_int_eq(qp_trace_up(f.t, "x", &r, err, sizeof(err)),
			 QP_EPROTO);
	ck_assert_str_eq(err, "lot X is its own ancestor");
	ck_assert_ptr_null(r);
	start = load("['y']");
	ck_assert_int_eq(qp_trace_down(f.t, start, &r, err, sizeof(err)),
			 QP_EPROTO);
	ck_assert_str_eq(err, "lot Y is its own descendant");
	json_decref(start);
	/* An event that outputs its own input. */
	ck_assert_int_eq(qp_trace_up(f.t, "z", &r, err, sizeof(err)),
			 QP_EPROTO);
	ck_assert_str_eq(err, "lot Z is its own ancestor");
	ck_assert_ptr_null(r);
	fix_close(&f);
}
END_TEST

/* A chain of n transforms: L0 made from L1 made from ... Ln. */
static char *chain_text(int n, int shortcut)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	int i;

	fprintf(f, "{'lots':[");
	if (shortcut)
		fprintf(f, "{'id':'b','code':'B','product':'banana','kg':5},");
	for (i = 0; i <= n; i++)
		fprintf(f,
			"%s{'id':'l%d','code':'L%d','product':'banana','kg':5}",
			i ? "," : "", i, i);
	fprintf(f, "],'events':[");
	for (i = 0; i < n; i++)
		fprintf(f,
			"%s{'id':'e%d','type':'transform','lot':'l%d',"
			"'inputs':[{'lot':'l%d','kg':5}%s],"
			"'outputs':[{'lot':'l%d','kg':5}]}",
			i ? "," : "", i, i, i + 1,
			shortcut && i == 0 ? ",{'lot':'b','kg':5}" : "", i);
	if (shortcut)
		fprintf(f,
			",{'id':'eb','type':'transform','lot':'l%d',"
			"'inputs':[{'lot':'b','kg':5}],"
			"'outputs':[{'lot':'l%d','kg':5}]}",
			n, n);
	fprintf(f, "]}");
	fclose(f);
	return s;
}

START_TEST(test_depth)
{
	char err[256], *text;
	json_t *r = NULL, *start;
	fix f;

	/* 64 events deep is allowed. */
	text = chain_text(64, 0);
	fix_open(&f, text);
	free(text);
	r = up(&f, "l0");
	ck_assert_int_eq(num(entry(r, "lots", "id", "l64"), "depth"), 64);
	ck_near(num(entry(r, "lots", "id", "l64"), "kg_in"), 5);
	json_decref(r);
	r = down(&f, "['l64']");
	ck_assert_int_eq(num(entry(r, "lots", "id", "l0"), "depth"), 64);
	json_decref(r);
	fix_close(&f);

	/* 65 is not. */
	text = chain_text(65, 0);
	fix_open(&f, text);
	free(text);
	r = NULL;
	ck_assert_int_eq(qp_trace_up(f.t, "l0", &r, err, sizeof(err)),
			 QP_ETOOBIG);
	ck_assert_str_eq(err,
			 "lot L65 lies more than 64 events upstream of L0");
	ck_assert_ptr_null(r);
	start = load("['l65']");
	ck_assert_int_eq(qp_trace_down(f.t, start, &r, err, sizeof(err)),
			 QP_ETOOBIG);
	ck_assert_str_eq(err,
			 "lot L0 lies more than 64 events downstream of L65");
	json_decref(start);
	fix_close(&f);

	/* B is one event above L0 (found first) and also 65 events above
	 * it through the chain: the longest path counts. */
	text = chain_text(64, 1);
	fix_open(&f, text);
	free(text);
	ck_assert_int_eq(qp_trace_up(f.t, "l0", &r, err, sizeof(err)),
			 QP_ETOOBIG);
	ck_assert_str_eq(err, "lot B lies more than 64 events upstream of L0");
	fix_close(&f);
}
END_TEST

/* Events naming lots that have no record (voided, not synced), lots naming
 * plots that have no record, malformed entries: counted, flagged, never a
 * crash. */
START_TEST(test_missing)
{
	fix f;
	json_t *r, *l;

	fix_open(
	    &f,
	    "{'lots':["
	    " {'id':'a','code':'A','product':'banana','kg':300,'producer':'p1',"
	    "  'plots':['gone','k1']},"
	    " {'id':'m','code':'M','product':'banana','kg':400},"
	    " 'not an object', {'code':'no id'},"
	    " {'id':'a','code':'A2','product':'banana','kg':1}],"
	    "'plots':[{'id':'k1','producer':'p1'}, 5],"
	    "'events':["
	    " {'id':'e1','type':'merge','lot':'m','inputs':[{'lot':'a','kg':"
	    "300},"
	    "  "
	    "{'lot':'ghost','kg':100},{'lot':'a'},{'kg':5},{'lot':'b','kg':-1},"
	    "  'x'],'outputs':[{'lot':'m','kg':400}]},"
	    " {'id':'e2','type':'split','lot':'m','inputs':[{'lot':'m','kg':"
	    "400}],"
	    "  'outputs':[{'lot':'phantom','kg':400}]},"
	    " {'id':'e3','type':'ship','lot':'phantom','destination':'"
	    "Rotterdam'},"
	    " {'type':'ship','lot':'m'}, 42]}");
	r = up(&f, "m");
	ck_assert_int_eq(count(r, "lots"), 3);
	l = entry(r, "lots", "id", "ghost");
	ck_assert(json_is_true(json_object_get(l, "missing")));
	ck_assert(json_is_null(json_object_get(l, "code")));
	ck_assert(json_is_null(json_object_get(l, "kg")));
	ck_near(num(l, "kg_in"), 100);
	ck_near(num(l, "share"), 0.25);
	ck_near(num(entry(r, "lots", "id", "a"), "share"), 0.75);
	/* The first record of a duplicated id counts. */
	ck_assert_str_eq(sv(entry(r, "lots", "id", "a"), "code"), "A");
	/* The missing lot has no producer: p1 holds 0.75. */
	ck_near(num(entry(r, "producers", "id", "p1"), "share"), 0.75);
	l = entry(r, "plots", "id", "gone");
	ck_assert(json_is_true(json_object_get(l, "missing")));
	ck_assert_str_eq(sv(l, "producer"), "p1");
	ck_near(num(l, "kg"), 150);
	ck_assert_ptr_null(
	    json_object_get(entry(r, "plots", "id", "k1"), "missing"));
	json_decref(r);

	/* Down through a lot with no record to its shipment (kg unknown). */
	r = down(&f, "['a']");
	l = entry(r, "lots", "id", "phantom");
	ck_assert(json_is_true(json_object_get(l, "missing")));
	ck_near(num(l, "share"), 0.75);
	l = entry(r, "shipments", "event", "e3");
	ck_assert(json_is_null(json_object_get(l, "kg")));
	ck_assert(json_is_null(json_object_get(l, "code")));
	ck_near(num(l, "share"), 0.75);
	json_decref(r);
	fix_close(&f);
}
END_TEST

START_TEST(test_invalid)
{
	json_t *arr = json_array(), *obj = json_object(), *r = NULL;
	qp_trace *t = NULL;
	char err[64];

	ck_assert_int_eq(qp_trace_new(obj, arr, NULL, &t), QP_EINVAL);
	ck_assert_int_eq(qp_trace_new(arr, NULL, NULL, &t), QP_EINVAL);
	ck_assert_int_eq(qp_trace_new(arr, arr, obj, &t), QP_EINVAL);
	ck_assert_int_eq(qp_trace_new(arr, arr, NULL, NULL), QP_EINVAL);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(qp_trace_new(arr, arr, NULL, &t), 0);
	ck_assert_int_eq(qp_trace_up(t, "x", &r, err, sizeof(err)),
			 QP_ENOTFOUND);
	ck_assert_str_eq(err, "no lot x");
	ck_assert_int_eq(qp_trace_up(t, NULL, &r, err, sizeof(err)), QP_EINVAL);
	ck_assert_int_eq(qp_trace_down(t, obj, &r, err, sizeof(err)),
			 QP_EINVAL);
	ck_assert_int_eq(qp_trace_producer_lots(t, NULL, &r), QP_EINVAL);
	ck_assert_ptr_null(r);
	qp_trace_free(t);
	qp_trace_free(NULL);
	json_decref(arr);
	json_decref(obj);
}
END_TEST

/* A shipment drawing on 2,000 received lots (one plot each) through 40
 * merges, in a store of 20,000 lots: fast (linear), exact. */
START_TEST(test_scale)
{
	json_t *lots = json_array(), *evs = json_array(), *plots = json_array();
	json_t *in = NULL, *r = NULL;
	char id[32], err[128];
	qp_trace *t = NULL;
	int i;

	for (i = 0; i < 20000; i++) {
		snprintf(id, sizeof(id), "r%d", i);
		json_array_append_new(
		    lots,
		    json_pack("{s:s, s:s, s:s, s:i, s:s, s:[s]}", "id", id,
			      "code", id, "product", "coffee-cherry", "kg", 10,
			      "producer", i % 2 ? "p1" : "p2", "plots", id));
		json_array_append_new(plots, json_pack("{s:s, s:s}", "id", id,
						       "producer",
						       i % 2 ? "p1" : "p2"));
	}
	for (i = 0; i < 2000; i++) {
		if (i % 50 == 0)
			in = json_array();
		snprintf(id, sizeof(id), "r%d", i);
		json_array_append_new(
		    in, json_pack("{s:s, s:i}", "lot", id, "kg", 10));
		if (i % 50 == 49) {
			snprintf(id, sizeof(id), "m%d", i / 50);
			json_array_append_new(
			    lots, json_pack("{s:s, s:s, s:s, s:i}", "id", id,
					    "code", id, "product",
					    "coffee-cherry", "kg", 500));
			json_array_append_new(
			    evs,
			    json_pack("{s:s, s:s, s:s, s:o, s:[{s:s, s:i}]}",
				      "id", id, "type", "merge", "lot", id,
				      "inputs", in, "outputs", "lot", id, "kg",
				      500));
		}
	}
	in = json_array();
	for (i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "m%d", i);
		json_array_append_new(
		    in, json_pack("{s:s, s:i}", "lot", id, "kg", 500));
	}
	json_array_append_new(lots, json_pack("{s:s, s:s, s:s, s:i}", "id", "x",
					      "code", "X", "product",
					      "coffee-green", "kg", 4000));
	json_array_append_new(
	    evs, json_pack("{s:s, s:s, s:s, s:o, s:[{s:s, s:i}]}", "id", "ex",
			   "type", "transform", "lot", "x", "inputs", in,
			   "outputs", "lot", "x", "kg", 4000));

	ck_assert_int_eq(qp_trace_new(lots, evs, plots, &t), 0);
	ck_assert_int_eq(qp_trace_up(t, "x", &r, err, sizeof(err)), 0);
	ck_assert_int_eq(count(r, "plots"), 2000);
	ck_assert_int_eq(count(r, "lots"), 2041);
	ck_assert_int_eq(count(r, "producers"), 2);
	ck_near(json_number_value(
		    json_object_get(item(r, "producers", 0), "share")),
		0.5);
	ck_near(json_number_value(json_object_get(item(r, "plots", 0), "kg")),
		10);
	json_decref(r);
	qp_trace_free(t);
	json_decref(lots);
	json_decref(evs);
	json_decref(plots);
}
END_TEST

Suite *suite_trace(void)
{
	Suite *s = suite_create("trace");
	TCase *tc = tcase_create("trace");

	tcase_add_test(tc, test_up_chain);
	tcase_add_test(tc, test_down_chain);
	tcase_add_test(tc, test_split);
	tcase_add_test(tc, test_two_events);
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_case);
	tcase_add_test(tc, test_cycle);
	tcase_add_test(tc, test_depth);
	tcase_add_test(tc, test_missing);
	tcase_add_test(tc, test_invalid);
	tcase_add_test(tc, test_scale);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}
