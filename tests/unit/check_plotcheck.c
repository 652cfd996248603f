/* check_plotcheck.c - covers proto/plotcheck.c: overlaps between producers
 * with their geodesic areas checked against an independent formula, the
 * threshold, same-producer overlaps left out, duplicates (polygons and
 * points), forest-loss layers (areas, points inside, edges only touching),
 * geometry findings, the `only` filter, deterministic order, and
 * qp_layer_parse on valid and hostile layers with exact messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plotcheck.h"
#include "suites.h"

#define J qp_test_json
#define cell_ha qp_test_cell_ha

static qp_geo *G;

static void setup(void)
{
	ck_assert_int_eq(qp_geo_new(&G), 0);
}

static void teardown(void)
{
	qp_geo_free(G);
	G = NULL;
}

/* A counter-clockwise rectangle [x1, x2] x [y1, y2] as a Polygon. */
static json_t *rect(double x1, double y1, double x2, double y2)
{
	return json_pack("{s:s, s:[[[f,f],[f,f],[f,f],[f,f],[f,f]]]}", "type",
	                 "Polygon", "coordinates", x1, y1, x2, y1, x2, y2, x1,
	                 y2, x1, y1);
}

static json_t *point(double x, double y)
{
	return json_pack("{s:s, s:[f,f]}", "type", "Point", "coordinates", x,
	                 y);
}

/* Append a plot record {id, producer, geometry} (geometry taken). */
static void plot(json_t *plots, const char *id, const char *producer,
                 json_t *geometry)
{
	json_t *r = json_pack("{s:s, s:s, s:s, s:o}", "id", id, "producer",
	                      producer, "crop", "coffee", "geometry", geometry);
	ck_assert_ptr_nonnull(r);
	json_array_append_new(plots, r);
}

static json_t *run(const json_t *plots, const qp_layer *layers, size_t n,
                   const json_t *only, const qp_plotcheck_opts *o)
{
	json_t *f = NULL;
	ck_assert_int_eq(qp_plotcheck_run(G, plots, layers, n, only, o, &f), 0);
	ck_assert_ptr_nonnull(f);
	ck_assert(json_is_array(f));
	return f;
}

static const char *str(const json_t *f, const char *k)
{
	return json_string_value(json_object_get(f, k));
}

static const char *at(const json_t *f, const char *k, size_t i)
{
	return json_string_value(json_array_get(json_object_get(f, k), i));
}

static double num(const json_t *f, const char *k)
{
	const json_t *v = json_object_get(f, k);
	ck_assert_msg(json_is_number(v), "finding lacks %s", k);
	return json_number_value(v);
}

static void close_to(double got, double want, double rel, const char *what)
{
	ck_assert_msg(fabs(got - want) <= rel * fabs(want) + 1e-6,
	              "%s: got %.9f, want %.9f", what, got, want);
}

/* About 220 m squares near Satipo, Junin. */
#define X0 -74.902
#define Y0 -10.902
#define D  0.002

/* ------------------------------------------------------------------ */

START_TEST(test_overlap_known_area)
{
	json_t *plots = json_array(), *f, *one;
	/* B is A moved east by a quarter of its width: they share the cell
	 * [X0 + D/4, X0 + D] x [Y0, Y0 + D], 75% of either. */
	double want = cell_ha(X0 + D / 4, Y0, X0 + D, Y0 + D);
	plot(plots, "b", "P2", rect(X0 + D / 4, Y0, X0 + D + D / 4, Y0 + D));
	plot(plots, "a", "P1", rect(X0, Y0, X0 + D, Y0 + D));
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 1);
	one = json_array_get(f, 0);
	ck_assert_str_eq(str(one, "type"), "overlap");
	/* In id order, producers alongside. */
	ck_assert_str_eq(at(one, "plots", 0), "a");
	ck_assert_str_eq(at(one, "plots", 1), "b");
	ck_assert_str_eq(at(one, "producers", 0), "P1");
	ck_assert_str_eq(at(one, "producers", 1), "P2");
	close_to(num(one, "overlap_ha"), want, 1e-5, "overlap_ha");
	close_to(num(one, "overlap_pct"), 75.0, 1e-5, "overlap_pct");
	ck_assert_ptr_null(json_object_get(one, "layer"));
	ck_assert_int_eq(json_object_size(one), 5);
	json_decref(f);
	json_decref(plots);
}
END_TEST

/* A big and a small plot: the percentage is of the smaller one. */
START_TEST(test_overlap_pct_of_smaller)
{
	json_t *plots = json_array(), *f, *one;
	/* The small plot (D/2 square) has its western half inside the big. */
	double x = X0 + D - D / 4;
	double want = cell_ha(x, Y0, X0 + D, Y0 + D / 2);
	double small = cell_ha(x, Y0, x + D / 2, Y0 + D / 2);
	plot(plots, "big", "P1", rect(X0, Y0, X0 + D, Y0 + D));
	plot(plots, "small", "P2", rect(x, Y0, x + D / 2, Y0 + D / 2));
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 1);
	one = json_array_get(f, 0);
	close_to(num(one, "overlap_ha"), want, 1e-5, "overlap_ha");
	close_to(num(one, "overlap_pct"), 100 * want / small, 1e-5,
	         "overlap_pct");
	close_to(num(one, "overlap_pct"), 50.0, 1e-4, "half of the smaller");
	json_decref(f);
	json_decref(plots);
}
END_TEST

START_TEST(test_overlap_threshold)
{
	json_t *plots = json_array(), *f;
	qp_plotcheck_opts o = qp_plotcheck_opts_default();
	ck_assert(o.min_overlap_pct == 5 && o.dup_pct == 90);
	/* 3% of either plot overlaps: under the default 5%. */
	plot(plots, "a", "P1", rect(X0, Y0, X0 + D, Y0 + D));
	plot(plots, "b", "P2", rect(X0 + 0.97 * D, Y0, X0 + 1.97 * D, Y0 + D));
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 0);
	json_decref(f);
	o.min_overlap_pct = 2;
	f = run(plots, NULL, 0, NULL, &o);
	ck_assert_int_eq(json_array_size(f), 1);
	close_to(num(json_array_get(f, 0), "overlap_pct"), 3.0, 1e-4, "pct");
	json_decref(f);
	/* Sharing only an edge is no overlap, whatever the threshold. */
	o.min_overlap_pct = 0;
	json_array_clear(plots);
	plot(plots, "a", "P1", rect(X0, Y0, X0 + D, Y0 + D));
	plot(plots, "b", "P2", rect(X0 + D, Y0, X0 + 2 * D, Y0 + D));
	plot(plots, "c", "P3", rect(X0 + D, Y0 + D, X0 + 2 * D, Y0 + 2 * D));
	f = run(plots, NULL, 0, NULL, &o);
	ck_assert_int_eq(json_array_size(f), 0);
	json_decref(f);
	json_decref(plots);
}
END_TEST

START_TEST(test_same_producer_not_reported)
{
	json_t *plots = json_array(), *f;
	plot(plots, "a", "P1", rect(X0, Y0, X0 + D, Y0 + D));
	plot(plots, "b", "P1", rect(X0 + D / 2, Y0, X0 + 1.5 * D, Y0 + D));
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 0);
	json_decref(f);
	/* A third producer's plot over both is reported against each. */
	plot(plots, "c", "P2",
	     rect(X0 + D / 4, Y0 + D / 2, X0 + D, Y0 + 1.5 * D));
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 2);
	ck_assert_str_eq(at(json_array_get(f, 0), "plots", 0), "a");
	ck_assert_str_eq(at(json_array_get(f, 0), "plots", 1), "c");
	ck_assert_str_eq(at(json_array_get(f, 1), "plots", 0), "b");
	ck_assert_str_eq(at(json_array_get(f, 1), "plots", 1), "c");
	json_decref(f);
	json_decref(plots);
}
END_TEST

START_TEST(test_duplicates)
{
	json_t *plots = json_array(), *f, *one;
	double area = cell_ha(X0, Y0, X0 + D, Y0 + D);
	/* The same land under two producers, recorded twice by one
	 * producer (any producers), and nearly the same (98%). */
	plot(plots, "a1", "P1", rect(X0, Y0, X0 + D, Y0 + D));
	plot(plots, "a2", "P2", rect(X0, Y0, X0 + D, Y0 + D));
	plot(plots, "b1", "P3", rect(X0 + 10 * D, Y0, X0 + 11 * D, Y0 + D));
	plot(plots, "b2", "P3",
	     rect(X0 + 10.02 * D, Y0, X0 + 11.02 * D, Y0 + D));
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 2);
	one = json_array_get(f, 0);
	ck_assert_str_eq(str(one, "type"), "duplicate");
	ck_assert_str_eq(at(one, "plots", 0), "a1");
	ck_assert_str_eq(at(one, "plots", 1), "a2");
	close_to(num(one, "overlap_ha"), area, 1e-5, "duplicate area");
	close_to(num(one, "overlap_pct"), 100, 1e-6, "duplicate pct");
	one = json_array_get(f, 1);
	ck_assert_str_eq(str(one, "type"), "duplicate");
	ck_assert_str_eq(at(one, "plots", 0), "b1");
	ck_assert_str_eq(at(one, "producers", 1), "P3");
	close_to(num(one, "overlap_pct"), 98, 1e-4, "near duplicate pct");
	json_decref(f);
	/* 80% is an overlap, not a duplicate; dup_pct 75 makes it one. */
	json_array_clear(plots);
	plot(plots, "a", "P1", rect(X0, Y0, X0 + D, Y0 + D));
	plot(plots, "b", "P2", rect(X0 + 0.2 * D, Y0, X0 + 1.2 * D, Y0 + D));
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_str_eq(str(json_array_get(f, 0), "type"), "overlap");
	json_decref(f);
	{
		qp_plotcheck_opts o = qp_plotcheck_opts_default();
		o.dup_pct = 75;
		f = run(plots, NULL, 0, NULL, &o);
		ck_assert_int_eq(json_array_size(f), 1);
		ck_assert_str_eq(str(json_array_get(f, 0), "type"),
		                 "duplicate");
		json_decref(f);
	}
	/* A small plot inside a big one: all of the small, not of the big. */
	json_array_clear(plots);
	plot(plots, "a", "P1", rect(X0, Y0, X0 + D, Y0 + D));
	plot(plots, "b", "P2",
	     rect(X0 + D / 4, Y0 + D / 4, X0 + D / 2, Y0 + D / 2));
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 1);
	ck_assert_str_eq(str(json_array_get(f, 0), "type"), "overlap");
	close_to(num(json_array_get(f, 0), "overlap_pct"), 100, 1e-6, "pct");
	json_decref(f);
	json_decref(plots);
}
END_TEST

START_TEST(test_points)
{
	json_t *plots = json_array(), *f, *one;
	plot(plots, "p1", "P1", point(-74.9012341, -10.9012341));
	/* The same to 6 decimals. */
	plot(plots, "p2", "P2", point(-74.90123412, -10.90123409));
	/* 1e-5 degree away (about a metre): another plot. */
	plot(plots, "p3", "P3", point(-74.9012441, -10.9012341));
	/* Inside another producer's polygon: no area, no overlap. */
	plot(plots, "sq", "P4", rect(-74.902, -10.902, -74.900, -10.900));
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 1);
	one = json_array_get(f, 0);
	ck_assert_str_eq(str(one, "type"), "duplicate");
	ck_assert_str_eq(at(one, "plots", 0), "p1");
	ck_assert_str_eq(at(one, "plots", 1), "p2");
	ck_assert(num(one, "overlap_ha") == 0);
	ck_assert(num(one, "overlap_pct") == 100);
	json_decref(f);
	/* Three at one spot: every pair. */
	plot(plots, "p0", "P1", point(-74.9012341, -10.9012341));
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 3);
	ck_assert_str_eq(at(json_array_get(f, 0), "plots", 0), "p0");
	ck_assert_str_eq(at(json_array_get(f, 0), "plots", 1), "p1");
	ck_assert_str_eq(at(json_array_get(f, 1), "plots", 1), "p2");
	ck_assert_str_eq(at(json_array_get(f, 2), "plots", 0), "p1");
	json_decref(f);
	json_decref(plots);
}
END_TEST

/* A forest-loss layer: feature 0 far away, feature 1 the east half of
 * the test square, feature 2 a square with a hole. */
static json_t *loss_features(void)
{
	json_t *fs = json_array();
	json_array_append_new(fs, json_pack("{s:s, s:{}, s:o}", "type",
	                                    "Feature", "properties", "geometry",
	                                    rect(-70, -10, -69.9, -9.9)));
	json_array_append_new(
	    fs, json_pack("{s:s, s:{}, s:o}", "type", "Feature", "properties",
	                  "geometry",
	                  rect(X0 + D / 2, Y0 - D, X0 + 3 * D, Y0 + 2 * D)));
	return fs;
}

START_TEST(test_forest_loss)
{
	json_t *plots = json_array(), *fs = loss_features(), *f, *one;
	qp_layer layer = {"gfw-2021", fs};
	double half = cell_ha(X0 + D / 2, Y0, X0 + D, Y0 + D);
	double whole = cell_ha(X0 + D, Y0, X0 + 2 * D, Y0 + D);

	plot(plots, "half", "P1", rect(X0, Y0, X0 + D, Y0 + D));
	plot(plots, "inside", "P2", rect(X0 + D, Y0, X0 + 2 * D, Y0 + D));
	plot(plots, "pt-in", "P3", point(X0 + 2.5 * D, Y0 + D / 2));
	plot(plots, "pt-out", "P4", point(X0 + 4 * D, Y0 + D / 2));
	/* Touches the feature along its western edge only. */
	plot(plots, "edge", "P5",
	     rect(X0 - D / 2, Y0 + 1.5 * D, X0 + D / 2, Y0 + 1.9 * D));
	f = run(plots, &layer, 1, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 3);

	one = json_array_get(f, 0);
	ck_assert_str_eq(str(one, "type"), "forest_loss");
	ck_assert_str_eq(at(one, "plots", 0), "half");
	ck_assert_str_eq(at(one, "producers", 0), "P1");
	ck_assert_int_eq(json_array_size(json_object_get(one, "plots")), 1);
	ck_assert_str_eq(str(one, "layer"), "gfw-2021");
	ck_assert_int_eq(json_integer_value(json_object_get(one, "feature")),
	                 1);
	close_to(num(one, "overlap_ha"), half, 1e-5, "half area");
	close_to(num(one, "overlap_pct"), 50, 1e-4, "half pct");

	one = json_array_get(f, 1);
	ck_assert_str_eq(at(one, "plots", 0), "inside");
	close_to(num(one, "overlap_ha"), whole, 1e-5, "inside area");
	close_to(num(one, "overlap_pct"), 100, 1e-6, "inside pct");

	one = json_array_get(f, 2);
	ck_assert_str_eq(at(one, "plots", 0), "pt-in");
	ck_assert(num(one, "overlap_ha") == 0);
	ck_assert_int_eq(json_integer_value(json_object_get(one, "feature")),
	                 1);
	json_decref(f);

	/* The plot overlaps nothing of a second layer; the finding names its
	 * layer and the feature's index there. */
	{
		json_t *fs2 = json_array();
		qp_layer two[2] = {{"gfw-2021", fs}, {"aaa-local", fs2}};
		json_array_append_new(
		    fs2, json_pack("{s:s, s:o}", "type", "Feature", "geometry",
		                   rect(X0, Y0, X0 + D / 4, Y0 + D / 4)));
		f = run(plots, two, 2, NULL, NULL);
		ck_assert_int_eq(json_array_size(f), 4);
		one = json_array_get(f, 0);
		ck_assert_str_eq(at(one, "plots", 0), "half");
		ck_assert_str_eq(str(one, "layer"), "aaa-local");
		ck_assert_int_eq(
		    json_integer_value(json_object_get(one, "feature")), 0);
		close_to(num(one, "overlap_pct"), 6.25, 1e-4, "corner pct");
		ck_assert_str_eq(str(json_array_get(f, 1), "layer"),
		                 "gfw-2021");
		json_decref(f);
		json_decref(fs2);
	}
	json_decref(fs);
	json_decref(plots);
}
END_TEST

START_TEST(test_geometry_findings)
{
	json_t *plots = json_array(), *f, *one, *r;
	plot(plots, "bow", "P1",
	     J("{'type':'Polygon','coordinates':[[[-74.9,-10.9],[-74.898,"
	       "-10.898],[-74.898,-10.9],[-74.9,-10.898],[-74.9,-10.9]]]}"));
	/* A point for more than 4 ha (declared area): today's rules refuse
	 * it. */
	plot(plots, "big-pt", "P2", point(-74.9, -10.9));
	json_object_set_new(json_array_get(plots, 1), "area_ha", json_real(5));
	r = json_pack("{s:s, s:s}", "id", "nogeom", "producer", "P3");
	json_array_append_new(plots, r);
	/* Entries that cannot be named are skipped. */
	json_array_append_new(plots, json_string("junk"));
	json_array_append_new(plots, J("{'producer':'P9'}"));
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 3);
	one = json_array_get(f, 0);
	ck_assert_str_eq(str(one, "type"), "geometry");
	ck_assert_str_eq(at(one, "plots", 0), "big-pt");
	ck_assert_str_eq(at(one, "producers", 0), "P2");
	ck_assert_str_eq(str(one, "reason"),
	                 "plot.geometry: plots over 4 ha need a polygon "
	                 "(EUDR Art. 2(28))");
	ck_assert_ptr_null(json_object_get(one, "overlap_ha"));
	one = json_array_get(f, 1);
	ck_assert_str_eq(at(one, "plots", 0), "bow");
	ck_assert_msg(strncmp(str(one, "reason"),
	                      "plot.geometry: ring 0 self-intersects near "
	                      "vertex ",
	                      50) == 0,
	              "%s", str(one, "reason"));
	ck_assert_str_eq(str(json_array_get(f, 2), "reason"),
	                 "plot.geometry: required");
	json_decref(f);
	json_decref(plots);
}
END_TEST

START_TEST(test_only)
{
	json_t *plots = json_array(), *f, *only;
	/* a-b overlap, c-d overlap, e's geometry fails. */
	plot(plots, "a", "P1", rect(X0, Y0, X0 + D, Y0 + D));
	plot(plots, "b", "P2", rect(X0 + D / 2, Y0, X0 + 1.5 * D, Y0 + D));
	plot(plots, "c", "P1", rect(X0, Y0 + 5 * D, X0 + D, Y0 + 6 * D));
	plot(plots, "d", "P2",
	     rect(X0 + D / 2, Y0 + 5 * D, X0 + 1.5 * D, Y0 + 6 * D));
	plot(plots, "e", "P3", J("{'type':'Polygon','coordinates':[]}"));
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 3);
	json_decref(f);
	/* A finding involving one plot of `only` is reported, whichever
	 * side it is on. */
	only = J("{'b':true}");
	f = run(plots, NULL, 0, only, NULL);
	ck_assert_int_eq(json_array_size(f), 1);
	ck_assert_str_eq(at(json_array_get(f, 0), "plots", 0), "a");
	ck_assert_str_eq(at(json_array_get(f, 0), "plots", 1), "b");
	json_decref(f);
	json_decref(only);
	/* Both sides in `only`: reported once. */
	only = J("{'c':1,'d':1,'e':1,'zz':1}");
	f = run(plots, NULL, 0, only, NULL);
	ck_assert_int_eq(json_array_size(f), 2);
	ck_assert_str_eq(str(json_array_get(f, 0), "type"), "geometry");
	ck_assert_str_eq(str(json_array_get(f, 1), "type"), "overlap");
	ck_assert_str_eq(at(json_array_get(f, 1), "plots", 0), "c");
	json_decref(f);
	json_decref(only);
	only = J("{}");
	f = run(plots, NULL, 0, only, NULL);
	ck_assert_int_eq(json_array_size(f), 0);
	json_decref(f);
	json_decref(only);
	/* Forest loss too. */
	{
		json_t *fs = loss_features();
		qp_layer layer = {"loss", fs};
		only = J("{'b':1}");
		f = run(plots, &layer, 1, only, NULL);
		ck_assert_int_eq(json_array_size(f), 2);
		ck_assert_str_eq(str(json_array_get(f, 0), "type"),
		                 "forest_loss");
		ck_assert_str_eq(at(json_array_get(f, 0), "plots", 0), "b");
		json_decref(f);
		json_decref(only);
		json_decref(fs);
	}
	json_decref(plots);
}
END_TEST

/* The same plots in any order give the same findings. */
START_TEST(test_deterministic)
{
	json_t *plots = json_array(), *rev = json_array(), *f1, *f2;
	json_t *fs = loss_features();
	qp_layer layer = {"loss", fs};
	char id[16];
	for (int i = 0; i < 40; i++) {
		double x = X0 + (i % 8) * 0.7 * D, y = Y0 + (i / 8) * 0.7 * D;
		snprintf(id, sizeof id, "plot-%02d", (i * 7) % 40);
		plot(plots, id, i % 3 ? "P1" : "P2",
		     i % 5 == 4 ? point(x, y) : rect(x, y, x + D, y + D));
	}
	for (size_t i = json_array_size(plots); i-- > 0;)
		json_array_append(rev, json_array_get(plots, i));
	f1 = run(plots, &layer, 1, NULL, NULL);
	f2 = run(rev, &layer, 1, NULL, NULL);
	ck_assert_int_gt(json_array_size(f1), 10);
	ck_assert(json_equal(f1, f2));
	/* Sorted by type, then plot ids. */
	for (size_t i = 1; i < json_array_size(f1); i++) {
		const json_t *a = json_array_get(f1, i - 1),
		             *b = json_array_get(f1, i);
		int c = strcmp(str(a, "type"), str(b, "type"));
		ck_assert_int_le(c, 0);
		if (c == 0)
			ck_assert_int_le(
			    strcmp(at(a, "plots", 0), at(b, "plots", 0)), 0);
	}
	json_decref(f1);
	json_decref(f2);
	json_decref(fs);
	json_decref(rev);
	json_decref(plots);
}
END_TEST

START_TEST(test_run_invalid)
{
	json_t *plots = json_array(), *obj = json_object(), *f = NULL;
	qp_plotcheck_opts o = qp_plotcheck_opts_default();
	qp_layer bad = {NULL, NULL};
	ck_assert_int_eq(qp_plotcheck_run(NULL, plots, NULL, 0, NULL, NULL, &f),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_plotcheck_run(G, obj, NULL, 0, NULL, NULL, &f),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_plotcheck_run(G, plots, NULL, 0, NULL, NULL, NULL),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_plotcheck_run(G, plots, NULL, 1, NULL, NULL, &f),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_plotcheck_run(G, plots, &bad, 1, NULL, NULL, &f),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_plotcheck_run(G, plots, NULL, 0, plots, NULL, &f),
	                 QP_EINVAL);
	o.min_overlap_pct = NAN;
	ck_assert_int_eq(qp_plotcheck_run(G, plots, NULL, 0, NULL, &o, &f),
	                 QP_EINVAL);
	o = qp_plotcheck_opts_default();
	o.dup_pct = 0;
	ck_assert_int_eq(qp_plotcheck_run(G, plots, NULL, 0, NULL, &o, &f),
	                 QP_EINVAL);
	ck_assert_ptr_null(f);
	f = run(plots, NULL, 0, NULL, NULL);
	ck_assert_int_eq(json_array_size(f), 0);
	json_decref(f);
	json_decref(obj);
	json_decref(plots);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qp_layer_parse */

#define FEAT(g) "{'type':'Feature','properties':{'year':2021},'geometry':" g "}"
#define SQUARE                                                                 \
	"{'type':'Polygon','coordinates':[[[-74.9,-10.9],[-74.89,-10.9],"      \
	"[-74.89,-10.89],[-74.9,-10.89],[-74.9,-10.9]]]}"

static const struct layer_case {
	const char *name, *text;
	int rc;
	const char *msg; /* exact, or a prefix when it ends with '*' */
} layer_cases[] = {
    {"empty collection", "{'type':'FeatureCollection','features':[]}", 0, ""},
    {"polygon and multipolygon",
     "{'type':'FeatureCollection','features':[" FEAT(SQUARE) "," FEAT(
         "{'type':'MultiPolygon','coordinates':[[[[-74.8,-10.9],[-74.79,"
         "-10.9],[-74.79,-10.89],[-74.8,-10.9]]]]}") "]}",
     0, ""},
    {"clockwise ring accepted",
     "{'type':'FeatureCollection','features':[" FEAT(
         "{'type':'Polygon','coordinates':[[[-74.9,-10.9],[-74.9,-10.89],"
         "[-74.89,-10.89],[-74.9,-10.9]]]}") "]}",
     0, ""},
    {"empty input", "", QP_EPROTO, "not JSON: *"},
    {"truncated", "{'type':'FeatureCollection','features':[" FEAT(SQUARE),
     QP_EPROTO, "not JSON: *"},
    {"garbage", "\x01\x02 PK zip", QP_EPROTO, "not JSON: *"},
    {"duplicate keys", "{'type':'FeatureCollection','type':'x'}", QP_EPROTO,
     "not JSON: *"},
    {"array", "[1,2,3]", QP_EPROTO, "not a GeoJSON FeatureCollection"},
    {"a feature", FEAT(SQUARE), QP_EPROTO, "not a GeoJSON FeatureCollection"},
    {"a geometry", SQUARE, QP_EPROTO, "not a GeoJSON FeatureCollection"},
    {"no features", "{'type':'FeatureCollection'}", QP_EPROTO,
     "features: must be an array"},
    {"features not an array", "{'type':'FeatureCollection','features':{}}",
     QP_EPROTO, "features: must be an array"},
    {"feature not an object",
     "{'type':'FeatureCollection','features':[" FEAT(SQUARE) ",3]}", QP_EGEOM,
     "feature 1: must be a GeoJSON Feature object"},
    {"feature wrong type",
     "{'type':'FeatureCollection','features':[{'type':'Polygon',"
     "'geometry':" SQUARE "}]}",
     QP_EGEOM, "feature 0: type: must be \"Feature\""},
    {"null geometry",
     "{'type':'FeatureCollection','features':[" FEAT(SQUARE) "," FEAT(
         "null") "]}",
     QP_EGEOM, "feature 1: geometry: required"},
    {"point",
     "{'type':'FeatureCollection','features':[" FEAT(SQUARE) "," FEAT(
         SQUARE) "," FEAT("{'type':'Point','coordinates':[-74.9,-10.9]}") "]}",
     QP_EGEOM,
     "feature 2: geometry.type: Point is not accepted; must be Polygon or "
     "MultiPolygon"},
    {"line string",
     "{'type':'FeatureCollection','features':[" FEAT(
         "{'type':'LineString','coordinates':[[0,0],[1,1]]}") "]}",
     QP_EGEOM,
     "feature 0: geometry.type: LineString is not accepted; must be "
     "Polygon or MultiPolygon"},
    {"type not a string",
     "{'type':'FeatureCollection','features':[" FEAT("{'type':5}") "]}",
     QP_EGEOM, "feature 0: geometry.type: must be a string"},
    {"ring not closed",
     "{'type':'FeatureCollection','features':[" FEAT(SQUARE) "," FEAT(
         "{'type':'Polygon','coordinates':[[[-74.9,-10.9],[-74.89,-10.9],"
         "[-74.89,-10.89],[-74.9,-10.89],[-74.9,-10.8]]]}") "]}",
     QP_EGEOM, "feature 1: geometry.coordinates[0]: ring not closed"},
    {"too few positions",
     "{'type':'FeatureCollection','features':[" FEAT(
         "{'type':'Polygon','coordinates':[[[0,0],[1,0],[0,0]]]}") "]}",
     QP_EGEOM,
     "feature 0: geometry.coordinates[0]: ring needs at least 4 positions"},
    {"self-intersecting ring",
     "{'type':'FeatureCollection','features':[" FEAT(
         "{'type':'Polygon','coordinates':[[[-74.9,-10.9],[-74.89,-10.89],"
         "[-74.89,-10.9],[-74.9,-10.89],[-74.9,-10.9]]]}") "]}",
     QP_EGEOM,
     "feature 0: geometry: ring 0 self-intersects near vertex 0 "
     "(-74.900000, -10.900000)"},
    {"latitude out of range",
     "{'type':'FeatureCollection','features':[" FEAT(
         "{'type':'Polygon','coordinates':[[[0,0],[1,0],[1,91],[0,0]]]}") "]}",
     QP_EGEOM,
     "feature 0: geometry.coordinates[0][2]: latitude 91 out of range"},
    {"overlapping multipolygon",
     "{'type':'FeatureCollection','features':[" FEAT(
         "{'type':'MultiPolygon','coordinates':[[[[0,0],[2,0],[2,2],[0,2],"
         "[0,0]]],[[[1,1],[3,1],[3,3],[1,3],[1,1]]]]}") "]}",
     QP_EGEOM, "feature 0: geometry: polygons 0 and 1 overlap"},
};

START_TEST(test_layer_cases)
{
	const struct layer_case *c = &layer_cases[_i];
	char *text = strdup(c->text), err[256] = "";
	json_t *fs = (json_t *)&err; /* sentinel: untouched on failure */
	size_t n;
	int rc;
	for (char *p = text; *p; p++)
		if (*p == '\'')
			*p = '"';
	rc = qp_layer_parse(G, text, strlen(text), &fs, err, sizeof err);
	ck_assert_msg(rc == c->rc, "%s: rc %d, want %d (%s)", c->name, rc,
	              c->rc, err);
	if (rc == 0) {
		ck_assert(json_is_array(fs));
		json_decref(fs);
	} else {
		ck_assert_ptr_eq(fs, (json_t *)&err);
		ck_assert_ptr_null(strchr(err, '\n'));
		n = strlen(c->msg);
		if (n > 0 && c->msg[n - 1] == '*')
			ck_assert_msg(strncmp(err, c->msg, n - 1) == 0,
			              "%s: got '%s'", c->name, err);
		else
			ck_assert_msg(strcmp(err, c->msg) == 0,
			              "%s: got '%s', want '%s'", c->name, err,
			              c->msg);
	}
	free(text);
}
END_TEST

START_TEST(test_layer_parse_result)
{
	const char *t = "{\"type\":\"FeatureCollection\",\"name\":\"loss\","
	                "\"features\":[{\"type\":\"Feature\",\"geometry\":"
	                "{\"type\":\"Polygon\",\"coordinates\":[[[-74.9,-10.9],"
	                "[-74.89,-10.9],[-74.89,-10.89],[-74.9,-10.9]]]},"
	                "\"properties\":{\"id\":7}}]}";
	json_t *fs = NULL;
	char err[8];
	ck_assert_int_eq(qp_layer_parse(G, t, strlen(t), &fs, NULL, 0), 0);
	ck_assert_int_eq(json_array_size(fs), 1);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(
	        json_object_get(json_array_get(fs, 0), "properties"), "id")),
	    7);
	json_decref(fs);
	/* Only len bytes are read: the rest is not part of the layer. */
	ck_assert_int_eq(
	    qp_layer_parse(G, t, strlen(t) - 1, &fs, err, sizeof err),
	    QP_EPROTO);
	/* A tiny error buffer is cut, never overrun. */
	ck_assert_uint_eq(strlen(err), sizeof err - 1);
	ck_assert_int_eq(qp_layer_parse(G, t, strlen(t), NULL, NULL, 0),
	                 QP_EINVAL);
}
END_TEST

START_TEST(test_layer_limits)
{
	json_t *fs = (json_t *)&fs;
	char err[256];
	size_t n = (size_t)QP_LAYER_MAX_FEATURES + 1, len;
	char *text, *p;
	static const char head[] = "{\"type\":\"FeatureCollection\","
	                           "\"features\":[";

	/* The size is refused before a byte is read. */
	ck_assert_int_eq(qp_layer_parse(G, "{", QP_LAYER_MAX_BYTES + 1, &fs,
	                                err, sizeof err),
	                 QP_ETOOBIG);
	ck_assert_str_eq(err, "layer larger than 1024 MiB");

	/* One feature past the limit, refused before any is checked (the
	 * features are not even Features). */
	len = sizeof head + n * 3 + 4;
	text = malloc(len);
	p = text + sprintf(text, "%s", head);
	for (size_t i = 0; i < n; i++) {
		memcpy(p, i ? ",{}" : "{}", i ? 3 : 2);
		p += i ? 3 : 2;
	}
	p += sprintf(p, "]}");
	ck_assert_int_eq(
	    qp_layer_parse(G, text, (size_t)(p - text), &fs, err, sizeof err),
	    QP_ETOOBIG);
	ck_assert_str_eq(err, "too many features (1000001; limit 1000000)");
	free(text);

	/* One feature past the positions of one geometry. */
	n = 100001;
	text = malloc(sizeof head + 200 + n * 8);
	p = text + sprintf(text,
	                   "%s{\"type\":\"Feature\",\"geometry\":"
	                   "{\"type\":\"Polygon\",\"coordinates\":[[",
	                   head);
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s[0,0]", i ? "," : "");
	p += sprintf(p, "]]}}]}");
	ck_assert_int_eq(
	    qp_layer_parse(G, text, (size_t)(p - text), &fs, err, sizeof err),
	    QP_ETOOBIG);
	ck_assert_str_eq(err, "feature 0: geometry: too many positions (limit "
	                      "100000)");
	free(text);
	ck_assert_ptr_eq(fs, (json_t *)&fs);
}
END_TEST

Suite *suite_plotcheck(void)
{
	Suite *s = suite_create("plotcheck");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_overlap_known_area);
	tcase_add_test(tc, test_overlap_pct_of_smaller);
	tcase_add_test(tc, test_overlap_threshold);
	tcase_add_test(tc, test_same_producer_not_reported);
	tcase_add_test(tc, test_duplicates);
	tcase_add_test(tc, test_points);
	tcase_add_test(tc, test_forest_loss);
	tcase_add_test(tc, test_geometry_findings);
	tcase_add_test(tc, test_only);
	tcase_add_test(tc, test_deterministic);
	tcase_add_test(tc, test_run_invalid);
	tcase_add_loop_test(tc, test_layer_cases, 0,
	                    (int)(sizeof layer_cases / sizeof layer_cases[0]));
	tcase_add_test(tc, test_layer_parse_result);
	tcase_add_test(tc, test_layer_limits);
	suite_add_tcase(s, tc);
	return s;
}
