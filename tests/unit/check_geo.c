/* check_geo.c - covers proto/geo.c: GEOS validity of plot geometry with
 * exact messages, geodesic areas checked against an independent formula,
 * the EUDR point and area rules, winding fixes, overlap areas, bounds and
 * coordinate formatting. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "geo.h"
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

/* Check geometry text with the default options. */
static int check(const char *text, double declared, double acc,
                 qp_geo_result *r, json_t **fixed, char *err, size_t errlen)
{
	json_t *v = J(text);
	int rc =
	    qp_geo_check_plot(G, v, declared, acc, NULL, r, fixed, err, errlen);
	json_decref(v);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The rule table: every case with its exact outcome. */

/* A square of 0.002 degrees near Satipo, Junin, counter-clockwise. */
#define SQ                                                                     \
	"[[-74.902,-10.902],[-74.900,-10.902],[-74.900,-10.900],[-74.902,-10." \
	"900],[-74.902,-10.902]]"
/* The same, clockwise. */
#define SQ_CW                                                                  \
	"[[-74.902,-10.902],[-74.902,-10.900],[-74.900,-10.900],[-74.900,-10." \
	"902],[-74.902,-10.902]]"
/* A clockwise hole inside SQ. */
#define HOLE                                                                   \
	"[[-74.9015,-10.9015],[-74.9015,-10.9005],[-74.9005,-10.9005],[-74."   \
	"9005,-10.9015],[-74.9015,-10.9015]]"

static const struct rule_case {
	const char *name, *geom;
	double declared, acc;
	int rc;
	const char *msg; /* err on failure, warnings on success */
	unsigned flags;
} cases[] = {
    /* Accepted. */
    {"point", "{'type':'Point','coordinates':[-74.901234,-10.912345]}", NAN,
     NAN, 0, "", QP_GEO_F_POINT},
    {"point with altitude",
     "{'type':'Point','coordinates':[-74.901234,-10.912345,640.5]}", 2.5, 4, 0,
     "", QP_GEO_F_POINT},
    {"point at 4 ha", "{'type':'Point','coordinates':[-74.9,-10.9]}", 4, NAN, 0,
     "", QP_GEO_F_POINT},
    {"point at 0.0001 ha", "{'type':'Point','coordinates':[-74.9,-10.9]}",
     0.0001, NAN, 0, "", QP_GEO_F_POINT},
    {"polygon", "{'type':'Polygon','coordinates':[" SQ "]}", 4.8, 3, 0, "", 0},
    {"bbox ignored",
     "{'type':'Polygon','bbox':[-74.902,-10.902,-74.9,-10.9],"
     "'coordinates':[" SQ "]}",
     NAN, NAN, 0, "", 0},
    {"area mismatch", "{'type':'Polygon','coordinates':[" SQ "]}", 3.2, NAN, 0,
     "declared area 3.20 ha differs from measured 4.84 ha by 51%",
     QP_GEO_F_AREA_MISMATCH},
    {"area within 10%", "{'type':'Polygon','coordinates':[" SQ "]}", 4.4, NAN,
     0, "", 0},
    {"low accuracy", "{'type':'Point','coordinates':[-74.9,-10.9]}", 1.5, 25, 0,
     "position accuracy 25 m is worse than 10 m",
     QP_GEO_F_POINT | QP_GEO_F_LOW_ACCURACY},
    {"accuracy at limit", "{'type':'Point','coordinates':[-74.9,-10.9]}", NAN,
     10, 0, "", QP_GEO_F_POINT},
    {"repeated vertex",
     "{'type':'Polygon','coordinates':[[[-74.902,-10.902],[-74.900,-10.902],"
     "[-74.900,-10.902],[-74.900,-10.900],[-74.902,-10.900],[-74.902,-10.902]]]"
     "}",
     NAN, NAN, 0, "1 repeated consecutive position (first: ring 0 vertex 2)",
     QP_GEO_F_REPEATED},
    {"hole", "{'type':'Polygon','coordinates':[" SQ "," HOLE "]}", NAN, NAN, 0,
     "the plot has holes (inner rings), which the EU information system "
     "does not accept",
     QP_GEO_F_HOLES},
    {"multipolygon",
     "{'type':'MultiPolygon','coordinates':[[" SQ "],"
     "[[[-74.89,-10.9],[-74.88,-10.9],[-74.88,-10.89],[-74.89,-10.9]]]]}",
     NAN, NAN, 0, "", 0},
    {"multipolygon parts touching at a point",
     "{'type':'MultiPolygon','coordinates':[[" SQ "],"
     "[[[-74.9,-10.9],[-74.89,-10.9],[-74.89,-10.89],[-74.9,-10.9]]]]}",
     NAN, NAN, 0, "", 0},
    {"wrong winding", "{'type':'Polygon','coordinates':[" SQ_CW "]}", NAN, NAN,
     0,
     "reversed 1 ring to RFC 7946 winding (exterior counter-clockwise, "
     "holes clockwise)",
     0},
    {"several warnings", "{'type':'Polygon','coordinates':[" SQ_CW "]}", 9.9,
     12.5, 0,
     "reversed 1 ring to RFC 7946 winding (exterior counter-clockwise, "
     "holes clockwise); declared area 9.90 ha differs from measured 4.84 "
     "ha by 51%; position accuracy 12.5 m is worse than 10 m",
     QP_GEO_F_AREA_MISMATCH | QP_GEO_F_LOW_ACCURACY},

    /* Refused: type and structure (the TRACES upload rules). */
    {"line string", "{'type':'LineString','coordinates':[[0,0],[1,1]]}", NAN,
     NAN, QP_EGEOM,
     "plot.geometry.type: LineString is not accepted; must be Point, "
     "Polygon or MultiPolygon",
     0},
    {"geometry collection", "{'type':'GeometryCollection','geometries':[]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry.type: GeometryCollection is not accepted; must be "
     "Point, Polygon or MultiPolygon",
     0},
    {"multipoint", "{'type':'MultiPoint','coordinates':[[0,0]]}", NAN, NAN,
     QP_EGEOM,
     "plot.geometry.type: MultiPoint is not accepted; must be Point, "
     "Polygon or MultiPolygon",
     0},
    {"feature", "{'type':'Feature','geometry':null}", NAN, NAN, QP_EGEOM,
     "plot.geometry.type: Feature is not accepted; must be Point, "
     "Polygon or MultiPolygon",
     0},
    {"control characters in type", "{'type':'Po\\u0001nt\\u00e9'}", NAN, NAN,
     QP_EGEOM,
     "plot.geometry.type: Po?nté is not accepted; must be Point, "
     "Polygon or MultiPolygon",
     0},
    {"not an object", "[1,2]", NAN, NAN, QP_EGEOM,
     "plot.geometry: must be a GeoJSON geometry object", 0},
    {"no type", "{'coordinates':[1,2]}", NAN, NAN, QP_EGEOM,
     "plot.geometry.type: required", 0},
    {"type not a string", "{'type':7}", NAN, NAN, QP_EGEOM,
     "plot.geometry.type: must be a string", 0},
    {"no coordinates", "{'type':'Point'}", NAN, NAN, QP_EGEOM,
     "plot.geometry.coordinates: required", 0},
    {"text coordinate", "{'type':'Point','coordinates':['-74.9',-10.9]}", NAN,
     NAN, QP_EGEOM,
     "plot.geometry.coordinates: must be a position [longitude, latitude] "
     "or [longitude, latitude, altitude]",
     0},
    {"four numbers", "{'type':'Point','coordinates':[-74.9,-10.9,1,2]}", NAN,
     NAN, QP_EGEOM,
     "plot.geometry.coordinates: must be a position [longitude, latitude] "
     "or [longitude, latitude, altitude]",
     0},
    {"longitude out of range", "{'type':'Point','coordinates':[-181,-10.9]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry.coordinates: longitude -181 out of range", 0},
    {"latitude out of range",
     "{'type':'Polygon','coordinates':[[[-72.6924,-13.1085],[-72.69,-13.1085],"
     "[-72.69,95.2],[-72.6924,-13.106],[-72.6924,-13.1085]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry.coordinates[0][2]: latitude 95.2 out of range", 0},
    {"empty polygon", "{'type':'Polygon','coordinates':[]}", NAN, NAN, QP_EGEOM,
     "plot.geometry.coordinates: must be a non-empty array of linear rings", 0},
    {"empty multipolygon", "{'type':'MultiPolygon','coordinates':[]}", NAN, NAN,
     QP_EGEOM,
     "plot.geometry.coordinates: must be a non-empty array of polygons", 0},
    {"ring not an array", "{'type':'Polygon','coordinates':[5]}", NAN, NAN,
     QP_EGEOM, "plot.geometry.coordinates[0]: must be an array of positions",
     0},
    {"unclosed ring",
     "{'type':'Polygon','coordinates':[[[-74.902,-10.902],[-74.900,-10.902],"
     "[-74.900,-10.900],[-74.902,-10.900]]]}",
     NAN, NAN, QP_EGEOM, "plot.geometry.coordinates[0]: ring not closed", 0},
    {"three positions",
     "{'type':'Polygon','coordinates':[[[-74.902,-10.902],[-74.900,-10.902],"
     "[-74.902,-10.902]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry.coordinates[0]: ring needs at least 4 positions", 0},
    {"two distinct positions",
     "{'type':'Polygon','coordinates':[[[-74.902,-10.902],[-74.900,-10.902],"
     "[-74.900,-10.902],[-74.902,-10.902]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry.coordinates[0]: ring needs at least 3 distinct "
     "positions",
     0},
    {"edge between the poles",
     "{'type':'Polygon','coordinates':[[[-74.9,-10.9],[-8,9],[-79,-90],"
     "[-74,90],[-74.9,-10.9]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry.coordinates[0][3]: on the opposite side of the Earth "
     "from the position before it: no single line joins the two",
     0},
    {"edge between antipodes",
     "{'type':'Polygon','coordinates':[[[10,20],[-170,-20],[11,21],"
     "[10,20]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry.coordinates[0][1]: on the opposite side of the Earth "
     "from the position before it: no single line joins the two",
     0},

    /* Refused: topology. */
    {"collinear",
     "{'type':'Polygon','coordinates':[[[-74.902,-10.902],[-74.901,-10.901],"
     "[-74.900,-10.900],[-74.902,-10.902]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry: ring 0: all positions are collinear (zero area)", 0},
    {"collinear hole",
     "{'type':'Polygon','coordinates':[" SQ ",[[-74.9015,-10.9015],"
     "[-74.9010,-10.9015],[-74.9005,-10.9015],[-74.9015,-10.9015]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry: ring 1: all positions are collinear (zero area)", 0},
    {"bow tie",
     "{'type':'Polygon','coordinates':[[[-74.90,-10.90],[-74.89,-10.89],"
     "[-74.89,-10.90],[-74.90,-10.893],[-74.90,-10.90]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry: ring 0 self-intersects near vertex 3 (-74.900000, "
     "-10.893000)",
     0},
    {"spike",
     "{'type':'Polygon','coordinates':[[[-74.902,-10.902],[-74.900,-10.902],"
     "[-74.900,-10.900],[-74.900,-10.902],[-74.902,-10.902]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry: ring 0 self-intersects near vertex 1 (-74.900000, "
     "-10.902000)",
     0},
    {"hole outside shell",
     "{'type':'Polygon','coordinates':[" SQ ",[[-74.89,-10.89],"
     "[-74.89,-10.88],[-74.88,-10.88],[-74.89,-10.89]]]}",
     NAN, NAN, QP_EGEOM, "plot.geometry: ring 1 (hole) lies outside its shell",
     0},
    {"hole crossing shell",
     "{'type':'Polygon','coordinates':[" SQ ",[[-74.9015,-10.9015],"
     "[-74.9015,-10.8995],[-74.9005,-10.9005],[-74.9015,-10.9015]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry: ring 1 (hole) crosses ring 0 near vertex 1 "
     "(-74.901500, -10.899500)",
     0},
    {"nested holes",
     "{'type':'Polygon','coordinates':[" SQ "," HOLE ",[[-74.9012,-10.9012],"
     "[-74.9012,-10.9008],[-74.9008,-10.9008],[-74.9012,-10.9012]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry: ring 2 (hole) lies inside another hole", 0},
    {"disconnected interior",
     "{'type':'Polygon','coordinates':[" SQ ",[[-74.902,-10.902],"
     "[-74.901,-10.9015],[-74.900,-10.900],[-74.9015,-10.901],"
     "[-74.902,-10.902]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry: ring 1 (hole) is invalid (interior is disconnected) "
     "near vertex 2 (-74.900000, -10.900000)",
     0},
    {"overlapping parts",
     "{'type':'MultiPolygon','coordinates':[[" SQ "],"
     "[[[-74.901,-10.901],[-74.899,-10.901],[-74.899,-10.899],"
     "[-74.901,-10.899],[-74.901,-10.901]]]]}",
     NAN, NAN, QP_EGEOM, "plot.geometry: polygons 0 and 1 overlap", 0},
    {"part inside another",
     "{'type':'MultiPolygon','coordinates':[[[[-74.89,-10.89],[-74.88,-10.89],"
     "[-74.88,-10.88],[-74.89,-10.89]]],[" SQ "],[" HOLE "]]}",
     NAN, NAN, QP_EGEOM, "plot.geometry: polygons 1 and 2 overlap", 0},
    {"parts sharing an edge",
     "{'type':'MultiPolygon','coordinates':[[" SQ "],"
     "[[[-74.900,-10.902],[-74.898,-10.902],[-74.898,-10.900],"
     "[-74.900,-10.900],[-74.900,-10.902]]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry: polygons 0 and 1 share a boundary segment near "
     "(-74.900000, -10.900000)",
     0},
    {"bow tie in second part",
     "{'type':'MultiPolygon','coordinates':[[" SQ "],"
     "[[[-74.80,-10.90],[-74.79,-10.89],[-74.79,-10.90],[-74.80,-10.893],"
     "[-74.80,-10.90]]]]}",
     NAN, NAN, QP_EGEOM,
     "plot.geometry: polygon 1 ring 0 self-intersects near vertex 3 "
     "(-74.800000, -10.893000)",
     0},

    /* Refused: EUDR point rules. */
    {"point over 4 ha", "{'type':'Point','coordinates':[-74.9,-10.9]}", 4.5,
     NAN, QP_EGEOM,
     "plot.geometry: plots over 4 ha need a polygon (EUDR Art. 2(28))", 0},
    {"point below 0.0001 ha", "{'type':'Point','coordinates':[-74.9,-10.9]}",
     0.00005, NAN, QP_EGEOM,
     "plot.geometry: declared area 0.00005 ha is below 0.0001 ha, too "
     "small for a plot",
     0},
};

START_TEST(test_rules)
{
	const struct rule_case *c = &cases[_i];
	qp_geo_result r;
	json_t *fixed = (json_t *)&r; /* must be overwritten or left alone */
	char err[256] = "";
	int rc;

	memset(&r, 0x5a, sizeof r);
	rc = check(c->geom, c->declared, c->acc, &r, &fixed, err, sizeof err);
	ck_assert_msg(rc == c->rc, "%s: rc %d, want %d (%s)", c->name, rc,
	              c->rc, err);
	if (rc != 0) {
		ck_assert_msg(strcmp(err, c->msg) == 0, "%s: got \"%s\"",
		              c->name, err);
		/* Nothing written on failure. */
		ck_assert_ptr_eq(fixed, (json_t *)&r);
		ck_assert_uint_eq(r.flags, 0x5a5a5a5au);
		return;
	}
	ck_assert_msg(strcmp(r.warnings, c->msg) == 0, "%s: warnings \"%s\"",
	              c->name, r.warnings);
	ck_assert_msg(r.flags == c->flags, "%s: flags %#x, want %#x", c->name,
	              r.flags, c->flags);
	ck_assert_int_eq(r.winding_fixed, fixed != NULL);
	if (c->flags & QP_GEO_F_POINT)
		ck_assert(r.area_ha == 0);
	else
		ck_assert(r.area_ha > 0);
	json_decref(fixed);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Areas against the closed form. */

static double area_of(const char *text)
{
	qp_geo_result r;
	char err[256] = "";
	int rc = check(text, NAN, NAN, &r, NULL, err, sizeof err);
	ck_assert_msg(rc == 0, "%s", err);
	return r.area_ha;
}

static void near_rel(double got, double want, double rel)
{
	ck_assert_msg(fabs(got - want) <= rel * want,
	              "area %.9f ha, want %.9f ha (within %g)", got, want, rel);
}

START_TEST(test_area_equator)
{
	double want = cell_ha(0, 0, 0.001, 0.001);
	double got =
	    area_of("{'type':'Polygon','coordinates':[[[0,0],[0.001,0],"
	            "[0.001,0.001],[0,0.001],[0,0]]]}");
	/* 0.001 degree squared at the equator: about 111.32 m by 110.57 m. */
	near_rel(want, 1.2309, 0.0005);
	near_rel(got, want, 1e-6);
}
END_TEST

START_TEST(test_area_satipo)
{
	double want = cell_ha(-74.902, -10.902, -74.900, -10.900);
	near_rel(area_of("{'type':'Polygon','coordinates':[" SQ "]}"), want,
	         1e-6);
	/* Winding does not change the area. */
	near_rel(area_of("{'type':'Polygon','coordinates':[" SQ_CW "]}"), want,
	         1e-6);
	/* A ring given with an altitude on every position. */
	near_rel(
	    area_of("{'type':'Polygon','coordinates':[[[-74.902,-10.902,700],"
	            "[-74.900,-10.902,701],[-74.900,-10.900,702],"
	            "[-74.902,-10.900,703],[-74.902,-10.902,700]]]}"),
	    want, 1e-6);
}
END_TEST

START_TEST(test_area_hole_and_multi)
{
	double sq = cell_ha(-74.902, -10.902, -74.900, -10.900);
	double hole = cell_ha(-74.9015, -10.9015, -74.9005, -10.9005);
	double far = cell_ha(-74.89, -10.90, -74.88, -10.89);
	near_rel(area_of("{'type':'Polygon','coordinates':[" SQ "," HOLE "]}"),
	         sq - hole, 1e-6);
	near_rel(area_of("{'type':'MultiPolygon','coordinates':[[" SQ "," HOLE
	                 "],[[[-74.89,-10.90],[-74.88,-10.90],[-74.88,-10.89],"
	                 "[-74.89,-10.89],[-74.89,-10.90]]]]}"),
	         sq - hole + far, 1e-6);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Winding fixes and precision. */

START_TEST(test_winding_fixed)
{
	json_t *in = J("{'type':'Polygon','coordinates':[" SQ_CW ","
	               "[[-74.9015,-10.9015],[-74.9005,-10.9015],"
	               "[-74.9005,-10.9005],[-74.9015,-10.9005],"
	               "[-74.9015,-10.9015]]]}");
	json_t *want = J("{'type':'Polygon','coordinates':[" SQ "," HOLE "]}");
	json_t *before = json_deep_copy(in), *fixed = NULL, *again = NULL;
	qp_geo_result r, r2;
	char err[256] = "";

	ck_assert_int_eq(qp_geo_check_plot(G, in, NAN, NAN, NULL, &r, &fixed,
	                                   err, sizeof err),
	                 0);
	ck_assert_int_eq(r.winding_fixed, 1);
	ck_assert_ptr_nonnull(fixed);
	ck_assert(json_equal(fixed, want));
	ck_assert(json_equal(in, before)); /* input untouched */
	ck_assert_str_eq(r.warnings,
	                 "the plot has holes (inner rings), which the EU "
	                 "information system does not accept; reversed 2 rings "
	                 "to RFC 7946 winding (exterior counter-clockwise, "
	                 "holes clockwise)");
	/* The fixed copy passes without a fix and has the same area. */
	ck_assert_int_eq(qp_geo_check_plot(G, fixed, NAN, NAN, NULL, &r2,
	                                   &again, err, sizeof err),
	                 0);
	ck_assert_ptr_null(again);
	ck_assert_int_eq(r2.winding_fixed, 0);
	ck_assert(r2.area_ha == r.area_ha);
	/* Without a place for the copy the result still says so. */
	ck_assert_int_eq(qp_geo_check_plot(G, in, NAN, NAN, NULL, &r2, NULL,
	                                   err, sizeof err),
	                 0);
	ck_assert_int_eq(r2.winding_fixed, 1);

	json_decref(fixed);
	json_decref(in);
	json_decref(want);
	json_decref(before);
}
END_TEST

START_TEST(test_winding_multi)
{
	json_t *in = J("{'type':'MultiPolygon','coordinates':[[" SQ "],"
	               "[[[-74.89,-10.9],[-74.89,-10.89],[-74.88,-10.89],"
	               "[-74.89,-10.9]]]]}");
	json_t *want = J("{'type':'MultiPolygon','coordinates':[[" SQ "],"
	                 "[[[-74.89,-10.9],[-74.88,-10.89],[-74.89,-10.89],"
	                 "[-74.89,-10.9]]]]}");
	json_t *fixed = NULL;
	qp_geo_result r;
	char err[256] = "";
	ck_assert_int_eq(qp_geo_check_plot(G, in, NAN, NAN, NULL, &r, &fixed,
	                                   err, sizeof err),
	                 0);
	ck_assert(json_equal(fixed, want));
	ck_assert_str_eq(r.warnings,
	                 "reversed 1 ring to RFC 7946 winding (exterior "
	                 "counter-clockwise, holes clockwise)");
	json_decref(fixed);
	json_decref(in);
	json_decref(want);
}
END_TEST

/* Every number of the fixed copy is the input's double, bit for bit, and
 * integers stay integers: nothing is rounded. */
START_TEST(test_precision_kept)
{
	json_t *in = J("{'type':'Polygon','coordinates':[[[-74.90212345678901,"
	               "-10.902987654321098],[-74,-10.90000000000001],"
	               "[-74.9001,-10.91],[-74.90212345678901,"
	               "-10.902987654321098]]]}");
	json_t *fixed = NULL, *ring, *ring_in;
	qp_geo_result r;
	char err[256] = "";
	ck_assert_int_eq(qp_geo_check_plot(G, in, NAN, NAN, NULL, &r, &fixed,
	                                   err, sizeof err),
	                 0);
	ck_assert_ptr_nonnull(fixed);
	ring = json_array_get(json_object_get(fixed, "coordinates"), 0);
	ring_in = json_array_get(json_object_get(in, "coordinates"), 0);
	for (size_t i = 0; i < 4; i++)
		for (size_t k = 0; k < 2; k++) {
			json_t *a = json_array_get(json_array_get(ring, i), k);
			json_t *b =
			    json_array_get(json_array_get(ring_in, 3 - i), k);
			ck_assert_int_eq(json_typeof(a), json_typeof(b));
			ck_assert(json_number_value(a) == json_number_value(b));
		}
	ck_assert(json_is_integer(json_array_get(json_array_get(ring, 2), 0)));
	json_decref(fixed);
	json_decref(in);
}
END_TEST

START_TEST(test_format_coord)
{
	static const struct {
		double v;
		const char *s;
	} t[] = {
	    {-74.9, "-74.900000"},
	    {-10.912345, "-10.912345"},
	    {-74.123456789, "-74.123456789"},
	    {0.1 + 0.2, "0.30000000000000004"},
	    {-74.90212345678901, "-74.90212345678901"},
	    {180, "180.000000"},
	    {0, "0.000000"},
	    {1e-20, "9.9999999999999995e-21"},
	    {1e45, "9.9999999999999993e+44"},
	    {-999999.5, "-999999.500000"},
	};
	char buf[QP_GEO_COORD_LEN], small[8] = "keep";
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		ck_assert_int_eq(qp_geo_format_coord(t[i].v, buf, sizeof buf),
		                 0);
		ck_assert_str_eq(buf, t[i].s);
		ck_assert(strtod(buf, NULL) == t[i].v);
	}
	ck_assert_int_eq(qp_geo_format_coord(NAN, buf, sizeof buf), QP_EINVAL);
	ck_assert_int_eq(qp_geo_format_coord(INFINITY, buf, sizeof buf),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_geo_format_coord(-74.9, small, sizeof small),
	                 QP_ETOOBIG);
	ck_assert_str_eq(small, "keep");
	/* The worst case fits QP_GEO_COORD_LEN. */
	ck_assert_int_eq(
	    qp_geo_format_coord(-1.2345678901234567e-300, buf, sizeof buf), 0);
	ck_assert_int_eq(
	    qp_geo_format_coord(-179.12345678901234, buf, sizeof buf), 0);
	ck_assert_int_eq(
	    qp_geo_format_coord(-999999.12345678901, buf, sizeof buf), 0);
	ck_assert_int_eq(
	    qp_geo_format_coord(-1.7976931348623157e308, buf, sizeof buf), 0);
}
END_TEST

/* A process running in a locale with a decimal comma still writes
 * points (when such a locale is installed). */
START_TEST(test_locale)
{
	const char *names[] = {"es_PE.UTF-8", "es_ES.UTF-8", "de_DE.UTF-8",
	                       "fr_FR.UTF-8"};
	char buf[QP_GEO_COORD_LEN], err[256] = "";
	qp_geo_result r;
	int have = 0;
	for (size_t i = 0; i < 4 && !have; i++)
		have = setlocale(LC_NUMERIC, names[i]) != NULL;
	ck_assert_int_eq(qp_geo_format_coord(-74.9, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "-74.900000");
	ck_assert_int_eq(check("{'type':'Point','coordinates':[-74.9,-10.9]}",
	                       1.5, 12.5, &r, NULL, err, sizeof err),
	                 0);
	ck_assert_str_eq(r.warnings,
	                 "position accuracy 12.5 m is worse than 10 m");
	setlocale(LC_NUMERIC, "C");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Overlap. */

static double overlap(const char *a, const char *b, int want_rc)
{
	json_t *ja = J(a), *jb = J(b);
	double ha = -1;
	ck_assert_int_eq(qp_geo_overlap_ha(G, ja, jb, &ha), want_rc);
	json_decref(ja);
	json_decref(jb);
	return ha;
}

START_TEST(test_overlap)
{
	const char *a = "{'type':'Polygon','coordinates':[" SQ "]}";
	/* SQ moved east by half its width. */
	const char *b =
	    "{'type':'Polygon','coordinates':[[[-74.901,-10.902],[-74.899,"
	    "-10.902],[-74.899,-10.900],[-74.901,-10.900],[-74.901,-10.902]]]}";
	double sq = cell_ha(-74.902, -10.902, -74.900, -10.900);
	double half = cell_ha(-74.901, -10.902, -74.900, -10.900);

	near_rel(half, sq / 2, 1e-6);
	near_rel(overlap(a, b, 0), half, 1e-6);
	near_rel(overlap(b, a, 0), half, 1e-6);
	near_rel(overlap(a, a, 0), sq, 1e-9);
	/* A multipolygon with one part over b. */
	near_rel(overlap("{'type':'MultiPolygon','coordinates':[[" SQ "],"
	                 "[[[-74.89,-10.9],[-74.88,-10.9],[-74.88,-10.89],"
	                 "[-74.89,-10.9]]]]}",
	                 b, 0),
	         half, 1e-6);
	/* Overlap with the hole of a removes it. */
	near_rel(
	    overlap("{'type':'Polygon','coordinates':[" SQ "," HOLE "]}", a, 0),
	    sq - cell_ha(-74.9015, -10.9015, -74.9005, -10.9005), 1e-6);
	/* Disjoint, touching along an edge, and points: no area. */
	ck_assert(overlap(a,
	                  "{'type':'Polygon','coordinates':[[[-74.89,-10.9],"
	                  "[-74.88,-10.9],[-74.88,-10.89],[-74.89,-10.9]]]}",
	                  0) == 0);
	ck_assert(overlap(a,
	                  "{'type':'Polygon','coordinates':[[[-74.900,-10.902],"
	                  "[-74.898,-10.902],[-74.898,-10.900],"
	                  "[-74.900,-10.900],[-74.900,-10.902]]]}",
	                  0) == 0);
	ck_assert(overlap(a, "{'type':'Point','coordinates':[-74.901,-10.901]}",
	                  0) == 0);
	/* Invalid input is refused, not measured. */
	overlap(a,
	        "{'type':'Polygon','coordinates':[[[-74.90,-10.90],[-74.89,"
	        "-10.89],[-74.89,-10.90],[-74.90,-10.893],[-74.90,-10.90]]]}",
	        QP_EGEOM);
	overlap("{'type':'LineString','coordinates':[[0,0],[1,1]]}", a,
	        QP_EGEOM);
	ck_assert_int_eq(qp_geo_overlap_ha(G, NULL, NULL, NULL), QP_EINVAL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Bounds, arguments, options. */

/* A closed ring of n positions on a circle of radius rdeg. */
static json_t *circle(size_t n, double rdeg, double cx, double cy)
{
	json_t *ring = json_array(), *poly = json_array();
	for (size_t i = 0; i + 1 < n; i++) {
		double t = 2 * M_PI * (double)i / (double)(n - 1);
		json_array_append_new(
		    ring,
		    json_pack("[f,f]", cx + rdeg * cos(t), cy + rdeg * sin(t)));
	}
	json_array_append(ring, json_array_get(ring, 0));
	json_array_append_new(poly, ring);
	return json_pack("{s:s,s:o}", "type", "Polygon", "coordinates", poly);
}

START_TEST(test_bounds)
{
	json_t *big = circle(QP_GEO_MAX_POSITIONS, 0.01, -74.9, -10.9);
	json_t *over = circle(QP_GEO_MAX_POSITIONS + 1, 0.01, -74.9, -10.9);
	json_t *many = json_array(), *multi;
	qp_geo_result r;
	char err[256] = "";

	ck_assert_int_eq(qp_geo_check_plot(G, big, NAN, NAN, NULL, &r, NULL,
	                                   err, sizeof err),
	                 0);
	/* pi r^2 with r = 0.01 degree, about 1.1 km: some 380 ha. */
	ck_assert(r.area_ha > 370 && r.area_ha < 390);
	ck_assert_int_eq(qp_geo_check_plot(G, over, NAN, NAN, NULL, &r, NULL,
	                                   err, sizeof err),
	                 QP_ETOOBIG);
	ck_assert_str_eq(err,
	                 "plot.geometry: too many positions (limit 100000)");

	for (int i = 0; i <= QP_GEO_MAX_POLYGONS; i++)
		json_array_append_new(many, json_array());
	multi =
	    json_pack("{s:s,s:o}", "type", "MultiPolygon", "coordinates", many);
	ck_assert_int_eq(qp_geo_check_plot(G, multi, NAN, NAN, NULL, &r, NULL,
	                                   err, sizeof err),
	                 QP_ETOOBIG);
	ck_assert_str_eq(err, "plot.geometry: too many polygons (limit 1000)");
	json_decref(big);
	json_decref(over);
	json_decref(multi);
}
END_TEST

/* 1,000 small disjoint squares in a MultiPolygon: accepted, and the area
 * is their sum. */
START_TEST(test_many_parts)
{
	json_t *polys = json_array(), *multi;
	qp_geo_result r;
	char err[256] = "";
	double want = 0;
	for (int i = 0; i < QP_GEO_MAX_POLYGONS; i++) {
		double x = -75 + (i % 40) * 0.001, y = -11 + (i / 40) * 0.001;
		json_array_append_new(
		    polys, json_pack("[[[f,f],[f,f],[f,f],[f,f],[f,f]]]", x, y,
		                     x + 0.0005, y, x + 0.0005, y + 0.0005, x,
		                     y + 0.0005, x, y));
		want += cell_ha(x, y, x + 0.0005, y + 0.0005);
	}
	multi = json_pack("{s:s,s:o}", "type", "MultiPolygon", "coordinates",
	                  polys);
	ck_assert_int_eq(qp_geo_check_plot(G, multi, NAN, NAN, NULL, &r, NULL,
	                                   err, sizeof err),
	                 0);
	near_rel(r.area_ha, want, 1e-6);
	/* Move the last square against its neighbour: named among 1,000. */
	{
		json_t *ring = json_array_get(json_array_get(polys, 999), 0);
		double x = -75 + 998 % 40 * 0.001 + 0.0005,
		       y = -11 + 24 * 0.001;
		json_array_set_new(ring, 0, json_pack("[f,f]", x, y));
		json_array_set_new(ring, 1, json_pack("[f,f]", x + 0.0005, y));
		json_array_set_new(ring, 2,
		                   json_pack("[f,f]", x + 0.0005, y + 0.0005));
		json_array_set_new(ring, 3, json_pack("[f,f]", x, y + 0.0005));
		json_array_set_new(ring, 4, json_pack("[f,f]", x, y));
	}
	ck_assert_int_eq(qp_geo_check_plot(G, multi, NAN, NAN, NULL, &r, NULL,
	                                   err, sizeof err),
	                 QP_EGEOM);
	{
		const char *pre = "plot.geometry: polygons 998 and 999 share "
		                  "a boundary segment near (-74.961500, ";
		ck_assert_msg(strncmp(err, pre, strlen(pre)) == 0, "%s", err);
	}
	json_decref(multi);
}
END_TEST

START_TEST(test_args)
{
	json_t *pt = J("{'type':'Point','coordinates':[-74.9,-10.9]}");
	json_t *line = J("{'type':'LineString','coordinates':[[0,0],[1,1]]}");
	qp_geo_opts o = qp_geo_opts_default();
	qp_geo_result r;
	char err[256] = "", tiny[10];

	ck_assert(o.area_tolerance == 0.10 && o.max_accuracy_m == 10 &&
	          o.point_max_ha == 4 && o.point_min_ha == 0.0001);
	ck_assert_str_eq(o.path, "plot.geometry");
	ck_assert_int_eq(qp_geo_check_plot(NULL, pt, NAN, NAN, NULL, &r, NULL,
	                                   err, sizeof err),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_geo_check_plot(G, NULL, NAN, NAN, NULL, &r, NULL,
	                                   err, sizeof err),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_geo_check_plot(G, pt, NAN, NAN, NULL, NULL, NULL,
	                                   err, sizeof err),
	                 QP_EINVAL);
	ck_assert_int_eq(
	    qp_geo_check_plot(G, pt, -1, NAN, NULL, &r, NULL, err, sizeof err),
	    QP_EINVAL);
	ck_assert_int_eq(qp_geo_check_plot(G, pt, INFINITY, NAN, NULL, &r, NULL,
	                                   err, sizeof err),
	                 QP_EINVAL);
	ck_assert_int_eq(
	    qp_geo_check_plot(G, pt, NAN, -3, NULL, &r, NULL, err, sizeof err),
	    QP_EINVAL);
	/* No error buffer, or a tiny one: cut, never overrun. */
	ck_assert_int_eq(
	    qp_geo_check_plot(G, line, NAN, NAN, NULL, &r, NULL, NULL, 0),
	    QP_EGEOM);
	ck_assert_int_eq(qp_geo_check_plot(G, line, NAN, NAN, NULL, &r, NULL,
	                                   tiny, sizeof tiny),
	                 QP_EGEOM);
	ck_assert_str_eq(tiny, "plot.geom");
	/* Another path and other limits (a session's place). */
	o.path = "session.place";
	o.point_max_ha = 1;
	o.max_accuracy_m = 50;
	ck_assert_int_eq(
	    qp_geo_check_plot(G, line, NAN, NAN, &o, &r, NULL, err, sizeof err),
	    QP_EGEOM);
	ck_assert_str_eq(err, "session.place.type: LineString is not accepted; "
	                      "must be Point, Polygon or MultiPolygon");
	ck_assert_int_eq(
	    qp_geo_check_plot(G, pt, 2, 25, &o, &r, NULL, err, sizeof err),
	    QP_EGEOM);
	ck_assert_str_eq(err, "session.place: plots over 1 ha need a polygon "
	                      "(EUDR Art. 2(28))");
	ck_assert_int_eq(
	    qp_geo_check_plot(G, pt, 0.5, 25, &o, &r, NULL, err, sizeof err),
	    0);
	ck_assert_uint_eq(r.flags, QP_GEO_F_POINT);
	o.area_tolerance = -1;
	ck_assert_int_eq(
	    qp_geo_check_plot(G, pt, NAN, NAN, &o, &r, NULL, err, sizeof err),
	    QP_EINVAL);
	qp_geo_free(NULL);
	ck_assert_int_eq(qp_geo_new(NULL), QP_EINVAL);
	json_decref(pt);
	json_decref(line);
}
END_TEST

/* Every warning at once, in their fixed order; a long path is cut in
 * messages, never overrun. */
START_TEST(test_all_warnings)
{
	qp_geo_opts o = qp_geo_opts_default();
	qp_geo_result r;
	json_t *bad;
	char err[256] = "", path[200];

	ck_assert_int_eq(check("{'type':'Polygon','coordinates':[" SQ_CW ","
	                       "[[-74.9015,-10.9015],[-74.9005,-10.9015],"
	                       "[-74.9005,-10.9015],[-74.9005,-10.9005],"
	                       "[-74.9015,-10.9005],[-74.9015,-10.9015]]]}",
	                       1000, 9999, &r, NULL, err, sizeof err),
	                 0);
	ck_assert_str_eq(
	    r.warnings,
	    "1 repeated consecutive position (first: ring 1 vertex "
	    "2); the plot has holes (inner rings), which the EU "
	    "information system does not accept; reversed 2 rings "
	    "to RFC 7946 winding (exterior counter-clockwise, holes "
	    "clockwise); declared area 1000.00 ha differs from "
	    "measured 3.63 ha by 100%; position accuracy 9999 m is "
	    "worse than 10 m");
	ck_assert_uint_eq(r.flags, QP_GEO_F_REPEATED | QP_GEO_F_HOLES |
	                               QP_GEO_F_AREA_MISMATCH |
	                               QP_GEO_F_LOW_ACCURACY);
	ck_assert_int_eq(r.winding_fixed, 1);

	memset(path, 'p', sizeof path - 1);
	path[sizeof path - 1] = '\0';
	o.path = path;
	bad = J("{'type':'Polygon','coordinates':[[[0,0]]]}");
	ck_assert_int_eq(
	    qp_geo_check_plot(G, bad, NAN, NAN, &o, &r, NULL, err, sizeof err),
	    QP_EGEOM);
	ck_assert_uint_eq(strlen(err), 127 + strlen(": ring needs at least 4 "
	                                            "positions"));
	json_decref(bad);
}
END_TEST

Suite *suite_geo(void)
{
	Suite *s = suite_create("geo");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_rules, 0,
	                    (int)(sizeof cases / sizeof cases[0]));
	tcase_add_test(tc, test_area_equator);
	tcase_add_test(tc, test_area_satipo);
	tcase_add_test(tc, test_area_hole_and_multi);
	tcase_add_test(tc, test_winding_fixed);
	tcase_add_test(tc, test_winding_multi);
	tcase_add_test(tc, test_precision_kept);
	tcase_add_test(tc, test_format_coord);
	tcase_add_test(tc, test_locale);
	tcase_add_test(tc, test_overlap);
	tcase_add_test(tc, test_bounds);
	tcase_add_test(tc, test_many_parts);
	tcase_add_test(tc, test_args);
	tcase_add_test(tc, test_all_warnings);
	suite_add_tcase(s, tc);
	return s;
}
