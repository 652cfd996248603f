/* check_lots.c - covers proto/lots.c: yields, one event's balance, and the
 * review of lots consumed beyond what they hold. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "lots.h"
#include "suites.h"

START_TEST(yield_table)
{
	ck_assert(qp_lots_yield(NULL, "coffee-cherry", "coffee-cherry") == 1);
	ck_assert(qp_lots_yield(NULL, "coffee-cherry", "coffee-parchment") == 0.25);
	ck_assert(qp_lots_yield(NULL, "coffee-parchment", "coffee-green") == 0.85);
	ck_assert(qp_lots_yield(NULL, "cacao-wet", "cacao-dry") == 0.45);
	ck_assert(qp_lots_yield(NULL, "other", "quinoa") == 1);
	/* No way back, no way across. */
	ck_assert(qp_lots_yield(NULL, "coffee-parchment", "coffee-cherry") == 0);
	ck_assert(qp_lots_yield(NULL, "coffee-cherry", "cacao-dry") == 0);
	ck_assert(qp_lots_yield(NULL, NULL, "quinoa") == 0);
}
END_TEST

/* Lots for the lookup: id -> [product, kg]. */
static const char *const table[][3] = {
	{"a", "coffee-cherry", "1000"},   {"b", "coffee-cherry", "500"},
	{"m", "coffee-cherry", "1500"},   {"p", "coffee-parchment", "300"},
	{"g", "coffee-green", "200"},     {"w", "cacao-wet", "100"},
};

static int lookup(void *ctx, const char *id, const char **product, double *kg)
{
	(void)ctx;
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		if (strcmp(table[i][0], id) == 0) {
			*product = table[i][1];
			*kg = atof(table[i][2]);
			return 0;
		}
	}
	return QP_ENOTFOUND;
}

static int check(const char *text, double *max, char *err)
{
	json_t *ev = json_loads(text, 0, NULL);
	int rc;

	ck_assert_ptr_nonnull(ev);
	rc = qp_lots_event_check(NULL, ev, lookup, NULL, max, err, 256);
	json_decref(ev);
	return rc;
}

START_TEST(event_balance)
{
	char err[256] = "";
	double max = 0;

	/* A merge keeps mass: 1500 in, up to 1530 out. */
	ck_assert_int_eq(check("{\"type\":\"merge\",\"lot\":\"m\","
			       "\"inputs\":[{\"lot\":\"a\",\"kg\":1000},"
			       "{\"lot\":\"b\",\"kg\":500}],"
			       "\"outputs\":[{\"lot\":\"m\",\"kg\":1530}]}",
			       &max, err), 0);
	ck_assert(fabs(max - 1530) < 1e-9);
	ck_assert_int_eq(check("{\"type\":\"merge\",\"lot\":\"m\","
			       "\"inputs\":[{\"lot\":\"a\",\"kg\":1000},"
			       "{\"lot\":\"b\",\"kg\":500}],"
			       "\"outputs\":[{\"lot\":\"m\",\"kg\":1531}]}",
			       NULL, err), QP_EVALID);
	ck_assert_str_eq(err, "lot_event.outputs: 1531 kg out of 1500 kg in "
			      "exceeds the yield: at most 1530 kg of "
			      "coffee-cherry");
	/* A transform: 1000 kg of cherry, at most 255 kg of parchment. */
	ck_assert_int_eq(check("{\"type\":\"transform\",\"lot\":\"p\","
			       "\"inputs\":[{\"lot\":\"a\",\"kg\":1000}],"
			       "\"outputs\":[{\"lot\":\"p\",\"kg\":255}]}",
			       &max, err), 0);
	ck_assert(fabs(max - 255) < 1e-9);
	ck_assert_int_eq(check("{\"type\":\"transform\",\"lot\":\"p\","
			       "\"inputs\":[{\"lot\":\"a\",\"kg\":1000}],"
			       "\"outputs\":[{\"lot\":\"p\",\"kg\":300}]}",
			       NULL, err), QP_EVALID);
	/* Cacao cannot become coffee. */
	ck_assert_int_eq(check("{\"type\":\"transform\",\"lot\":\"g\","
			       "\"inputs\":[{\"lot\":\"w\",\"kg\":100}],"
			       "\"outputs\":[{\"lot\":\"g\",\"kg\":1}]}",
			       &max, err), QP_EVALID);
	ck_assert(max == 0);
	/* Receive, ship and claim carry no balance; a missing lot is left
	 * to the reference check. */
	ck_assert_int_eq(check("{\"type\":\"ship\",\"lot\":\"g\"}", NULL, err), 0);
	ck_assert_int_eq(check("{\"type\":\"split\",\"lot\":\"a\","
			       "\"inputs\":[{\"lot\":\"zz\",\"kg\":1}],"
			       "\"outputs\":[{\"lot\":\"a\",\"kg\":99}]}",
			       NULL, err), 0);
	ck_assert_int_eq(qp_lots_event_check(NULL, NULL, lookup, NULL, NULL, err, 256),
			 QP_EINVAL);
}
END_TEST

START_TEST(input_kg)
{
	json_t *ev = json_loads("{\"inputs\":[{\"lot\":\"A\",\"kg\":2.5},"
				"{\"lot\":\"b\",\"kg\":4}]}", 0, NULL);
	ck_assert(qp_lots_input_kg(ev, "a") == 2.5); /* ids: any case */
	ck_assert(qp_lots_input_kg(ev, "b") == 4);
	ck_assert(qp_lots_input_kg(ev, "c") == 0);
	ck_assert(qp_lots_input_kg(NULL, "c") == 0);
	json_decref(ev);
}
END_TEST

/* How many findings are of type. */
static size_t count_type(const json_t *found, const char *type)
{
	const json_t *f;
	size_t i, n = 0;

	json_array_foreach(found, i, f)
		n += strcmp(json_string_value(json_object_get(f, "type")), type) == 0;
	return n;
}

/* A lot its events put less into than it declares: the rest has no
 * origin.  Within the tolerance, or filled enough, nothing. */
START_TEST(review_unsourced)
{
	json_t *lots = json_loads(
	    "[{\"id\":\"rf\",\"code\":\"RF\",\"product\":\"coffee-cherry\",\"kg\":1000},"
	    "{\"id\":\"f1\",\"code\":\"F1\",\"product\":\"coffee-cherry\",\"kg\":1200},"
	    "{\"id\":\"f2\",\"code\":\"F2\",\"product\":\"coffee-cherry\",\"kg\":101}]",
	    0, NULL);
	json_t *events = json_loads(
	    "[{\"id\":\"e1\",\"type\":\"split\",\"lot\":\"rf\","
	    "\"inputs\":[{\"lot\":\"rf\",\"kg\":900}],"
	    "\"outputs\":[{\"lot\":\"f1\",\"kg\":800},{\"lot\":\"f2\",\"kg\":100}]}]",
	    0, NULL);
	json_t *found = NULL, *f;

	ck_assert_int_eq(qp_lots_review(NULL, lots, events, &found), 0);
	ck_assert_uint_eq(json_array_size(found), 1);
	f = json_array_get(found, 0);
	ck_assert_str_eq(json_string_value(json_object_get(f, "type")), "unsourced");
	ck_assert_str_eq(json_string_value(json_object_get(f, "code")), "F1");
	ck_assert(json_number_value(json_object_get(f, "made")) == 800);
	ck_assert(json_number_value(json_object_get(f, "kg")) == 1200);
	json_decref(found);
	json_decref(lots);
	json_decref(events);
}
END_TEST

START_TEST(review_after_merge)
{
	/* Two devices each took 700 kg of lot a (1000 kg): each was fine
	 * alone.  Lot b is used within its kg.  Event e3 breaks the yield. */
	json_t *lots = json_loads(
	    "[{\"id\":\"a\",\"code\":\"A\",\"product\":\"coffee-cherry\",\"kg\":1000},"
	    "{\"id\":\"b\",\"code\":\"B\",\"product\":\"coffee-cherry\",\"kg\":500},"
	    "{\"id\":\"p\",\"code\":\"P\",\"product\":\"coffee-parchment\",\"kg\":300}]",
	    0, NULL);
	json_t *events = json_loads(
	    "[{\"id\":\"e2\",\"type\":\"split\",\"lot\":\"a\","
	    "\"inputs\":[{\"lot\":\"a\",\"kg\":700}],\"outputs\":[{\"lot\":\"b\",\"kg\":700}]},"
	    "{\"id\":\"e1\",\"type\":\"split\",\"lot\":\"a\","
	    "\"inputs\":[{\"lot\":\"a\",\"kg\":700}],\"outputs\":[{\"lot\":\"b\",\"kg\":700}]},"
	    "{\"id\":\"e3\",\"type\":\"transform\",\"lot\":\"p\","
	    "\"inputs\":[{\"lot\":\"b\",\"kg\":500}],\"outputs\":[{\"lot\":\"p\",\"kg\":300}]},"
	    "{\"id\":\"e4\",\"type\":\"ship\",\"lot\":\"p\",\"destination\":\"Hamburg\"}]",
	    0, NULL);
	json_t *found = NULL, *f;

	ck_assert_int_eq(qp_lots_review(NULL, lots, events, &found), 0);
	ck_assert_uint_eq(json_array_size(found), 2);
	f = json_array_get(found, 0);
	ck_assert_str_eq(json_string_value(json_object_get(f, "type")), "overconsumed");
	ck_assert_str_eq(json_string_value(json_object_get(f, "lot")), "a");
	ck_assert_str_eq(json_string_value(json_object_get(f, "code")), "A");
	ck_assert(json_number_value(json_object_get(f, "consumed")) == 1400);
	ck_assert(json_number_value(json_object_get(f, "kg")) == 1000);
	ck_assert_uint_eq(json_array_size(json_object_get(f, "events")), 2);
	f = json_array_get(found, 1);
	ck_assert_str_eq(json_string_value(json_object_get(f, "type")), "yield");
	ck_assert_str_eq(json_string_value(json_object_get(f, "event")), "e3");
	ck_assert(fabs(json_number_value(json_object_get(f, "max_kg")) - 127.5) < 1e-9);
	ck_assert(json_number_value(json_object_get(f, "outputs_kg")) == 300);
	json_decref(found);

	/* Nothing to find in an empty programme; bad arguments refused. */
	json_array_clear(events);
	ck_assert_int_eq(qp_lots_review(NULL, lots, events, &found), 0);
	ck_assert_uint_eq(json_array_size(found), 0);
	json_decref(found);
	ck_assert_int_eq(qp_lots_review(NULL, NULL, events, &found), QP_EINVAL);
	json_decref(lots);
	json_decref(events);
}
END_TEST

/* Lots that come out of their own descendants are found, one finding per
 * cycle with the events that close it; a lot merely downstream is not. */
START_TEST(review_finds_cycles)
{
#define LOT(x, c) "{\"id\":\"" x "\",\"code\":\"" c "\",\"product\":" \
		  "\"coffee-cherry\",\"kg\":1000}"
#define EV(id, from, to)                                                  \
	"{\"id\":\"" id "\",\"type\":\"split\",\"lot\":\"" from "\","       \
	"\"inputs\":[{\"lot\":\"" from "\",\"kg\":100}],"                  \
	"\"outputs\":[{\"lot\":\"" to "\",\"kg\":100}]}"
	json_t *lots = json_loads("[" LOT("a", "A") "," LOT("b", "B") ","
				  LOT("c", "C") "," LOT("d", "D") "]",
				  0, NULL);
	json_t *events = json_loads("[" EV("x1", "a", "b") "," EV("x2", "b", "c")
				    "," EV("x3", "c", "a") "," EV("x4", "c", "d")
				    "," EV("x5", "d", "d") "]",
				    0, NULL);
	json_t *found = NULL, *f;
	char *s;
#undef LOT
#undef EV

	ck_assert_ptr_nonnull(lots);
	ck_assert_ptr_nonnull(events);
	ck_assert_int_eq(qp_lots_review(NULL, lots, events, &found), 0);
	/* (The 1000 kg lots each filled with 100 kg are also unsourced.) */
	ck_assert_uint_eq(count_type(found, "cycle"), 2);
	f = json_array_get(found, 0);
	ck_assert_str_eq(json_string_value(json_object_get(f, "type")), "cycle");
	ck_assert_str_eq(json_string_value(json_object_get(f, "lot")), "a");
	ck_assert_str_eq(json_string_value(json_object_get(f, "code")), "A");
	ck_assert_uint_eq(json_array_size(json_object_get(f, "lots")), 3);
	s = json_dumps(json_object_get(f, "events"), JSON_COMPACT);
	ck_assert_msg(strstr(s, "x1") && strstr(s, "x2") && strstr(s, "x3") &&
			  !strstr(s, "x4"),
		      "events %s", s);
	free(s);
	f = json_array_get(found, 1);
	ck_assert_str_eq(json_string_value(json_object_get(f, "type")), "cycle");
	ck_assert_str_eq(json_string_value(json_object_get(f, "code")), "D");
	s = json_dumps(json_object_get(f, "events"), JSON_COMPACT);
	ck_assert_str_eq(s, "[\"x5\"]");
	free(s);
	json_decref(found);

	/* Without the closing events there is no cycle. */
	json_array_remove(events, 4);
	json_array_remove(events, 2);
	ck_assert_int_eq(qp_lots_review(NULL, lots, events, &found), 0);
	ck_assert_uint_eq(count_type(found, "cycle"), 0);
	json_decref(found);
	json_decref(lots);
	json_decref(events);
}
END_TEST

/* Ids typed in another case by a tablet still name the same lot. */
START_TEST(review_ids_any_case)
{
	json_t *lots = json_loads(
	    "[{\"id\":\"0190a5d0-7b3c-7d2e-8f00-00000000000a\",\"code\":\"RD\","
	    "\"product\":\"coffee-cherry\",\"kg\":1000},"
	    "{\"id\":\"0190a5d0-7b3c-7d2e-8f00-00000000000b\",\"code\":\"P\","
	    "\"product\":\"coffee-cherry\",\"kg\":1100}]",
	    0, NULL);
	json_t *events = json_loads(
	    "[{\"id\":\"e1\",\"type\":\"split\",\"lot\":\"x\","
	    "\"inputs\":[{\"lot\":\"0190A5D0-7B3C-7D2E-8F00-00000000000A\",\"kg\":600}],"
	    "\"outputs\":[{\"lot\":\"0190a5d0-7b3c-7d2e-8f00-00000000000b\",\"kg\":600}]},"
	    "{\"id\":\"e2\",\"type\":\"split\",\"lot\":\"x\","
	    "\"inputs\":[{\"lot\":\"0190a5d0-7b3c-7d2e-8f00-00000000000a\",\"kg\":500}],"
	    "\"outputs\":[{\"lot\":\"0190A5D0-7B3C-7D2E-8F00-00000000000B\",\"kg\":500}]}]",
	    0, NULL);
	json_t *found = NULL, *f;

	ck_assert_ptr_nonnull(lots);
	ck_assert_ptr_nonnull(events);
	ck_assert_int_eq(qp_lots_review(NULL, lots, events, &found), 0);
	ck_assert_uint_eq(json_array_size(found), 1);
	f = json_array_get(found, 0);
	ck_assert_str_eq(json_string_value(json_object_get(f, "type")),
			 "overconsumed");
	ck_assert_str_eq(json_string_value(json_object_get(f, "code")), "RD");
	ck_assert(json_number_value(json_object_get(f, "consumed")) == 1100);
	json_decref(found);
	json_decref(lots);
	json_decref(events);
}
END_TEST

START_TEST(configured_yields)
{
	qp_lots_cfg cfg;
	char err[256] = "";
	double max = 0;
	json_t *o;

	/* A cooperative whose dryers give more: its own bound and tolerance. */
	o = json_loads("{\"tolerance_pct\": 5, \"yields\": "
		       "{\"coffee-cherry>coffee-parchment\": 0.3, "
		       "\"banana>other\": 0.5}}", 0, NULL);
	ck_assert_int_eq(qp_lots_cfg_parse(o, &cfg, err, sizeof err), 0);
	json_decref(o);
	ck_assert(cfg.tolerance == 0.05);
	ck_assert(qp_lots_yield(&cfg, "coffee-cherry", "coffee-parchment") == 0.3);
	ck_assert(qp_lots_yield(&cfg, "banana", "other") == 0.5);
	ck_assert(qp_lots_yield(&cfg, "cacao-wet", "cacao-dry") == 0.45);
	ck_assert(qp_lots_yield(&cfg, "quinoa", "quinoa") == 1);
	{
		json_t *ev = json_loads(
		    "{\"type\":\"transform\",\"lot\":\"p\","
		    "\"inputs\":[{\"lot\":\"a\",\"kg\":1000}],"
		    "\"outputs\":[{\"lot\":\"p\",\"kg\":300}]}", 0, NULL);
		/* Refused with the defaults, accepted here (1000 * 0.3 * 1.05). */
		ck_assert_int_eq(qp_lots_event_check(NULL, ev, lookup, NULL,
						     NULL, err, sizeof err),
				 QP_EVALID);
		ck_assert_int_eq(qp_lots_event_check(&cfg, ev, lookup, NULL,
						     &max, err, sizeof err), 0);
		ck_assert(fabs(max - 315) < 1e-9);
		json_decref(ev);
	}
	/* No object: the defaults. */
	ck_assert_int_eq(qp_lots_cfg_parse(NULL, &cfg, err, sizeof err), 0);
	ck_assert(cfg.tolerance == QP_LOTS_TOLERANCE);

	/* Each mistake names the key. */
	static const char *const bad[][2] = {
		{"{\"tolerance_pct\": 60}",
		 "lots.tolerance_pct: must be a number from 0 to 50"},
		{"{\"tolerance_pct\": \"2\"}",
		 "lots.tolerance_pct: must be a number from 0 to 50"},
		{"{\"yields\": []}", "lots.yields: must be an object"},
		{"{\"yields\": {\"coffee>tea\": 0.2}}",
		 "lots.yields.coffee>tea: must be \"PRODUCT>PRODUCT\" with lot "
		 "products"},
		{"{\"yields\": {\"coffee-cherry\": 0.2}}",
		 "lots.yields.coffee-cherry: must be \"PRODUCT>PRODUCT\" with "
		 "lot products"},
		{"{\"yields\": {\"cacao-wet>cacao-dry\": 0}}",
		 "lots.yields.cacao-wet>cacao-dry: must be a number in (0, 10]"},
		{"{\"yields\": {\"cacao-wet>cacao-dry\": \"x\"}}",
		 "lots.yields.cacao-wet>cacao-dry: must be a number in (0, 10]"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		o = json_loads(bad[i][0], 0, NULL);
		ck_assert_ptr_nonnull(o);
		ck_assert_int_eq(qp_lots_cfg_parse(o, &cfg, err, sizeof err),
				 QP_EINVAL);
		ck_assert_str_eq(err, bad[i][1]);
		json_decref(o);
	}
	o = json_integer(3);
	ck_assert_int_eq(qp_lots_cfg_parse(o, &cfg, err, sizeof err), QP_EINVAL);
	ck_assert_str_eq(err, "lots: must be an object");
	json_decref(o);
}
END_TEST

Suite *suite_lots(void)
{
	Suite *s = suite_create("lots");
	TCase *tc = tcase_create("lots");

	tcase_add_test(tc, yield_table);
	tcase_add_test(tc, event_balance);
	tcase_add_test(tc, input_kg);
	tcase_add_test(tc, review_after_merge);
	tcase_add_test(tc, configured_yields);
	tcase_add_test(tc, review_finds_cycles);
	tcase_add_test(tc, review_ids_any_case);
	tcase_add_test(tc, review_unsourced);
	suite_add_tcase(s, tc);
	return s;
}
