/*
 * fuzz_geo.c - libFuzzer target for proto/geo.c.
 *
 * Parses arbitrary bytes as JSON (jansson, bounded) and checks the value as
 * a plot geometry, with the declared area and accuracy steered by the
 * input's first byte.  Invariants: nothing crashes or leaks; the result
 * code is 0, QP_EGEOM or QP_ETOOBIG; a refusal writes a "plot.geometry..."
 * message and leaves the outputs alone; the same code comes back with no
 * error buffer or a tiny one (cut, never overrun); an accepted geometry
 * has a finite area, a Point has none; a fixed copy passes again without a
 * fix and with the same area; the overlap of a geometry with itself is its
 * own area (to 0.01 ha, for plot-sized geometry: see plot_sized); a number
 * formats to text that reads back as the same double.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "geo.h"

#define MAX_INPUT 65536

static const double declared_v[4] = {NAN, 0.00005, 3.5, 12};
static const double accuracy_v[2] = {NAN, 25};

static int close_to(double a, double b)
{
	return fabs(a - b) <= 1e-6 * fmax(fabs(a), fabs(b)) + 1e-9;
}

typedef struct box {
	double minx, miny, maxx, maxy;
} box;

/* Bounding box of every position ([number, number, ...]) in v. */
static void walk(const json_t *v, box *b)
{
	size_t n = json_array_size(v);
	if (!json_is_array(v))
		return;
	if (n >= 2 && json_is_number(json_array_get(v, 0)) &&
	    json_is_number(json_array_get(v, 1))) {
		double x = json_number_value(json_array_get(v, 0));
		double y = json_number_value(json_array_get(v, 1));
		b->minx = fmin(b->minx, x);
		b->maxx = fmax(b->maxx, x);
		b->miny = fmin(b->miny, y);
		b->maxy = fmax(b->maxy, y);
		return;
	}
	for (size_t i = 0; i < n; i++)
		walk(json_array_get(v, i), b);
}

/* GEOS works in the lon/lat plane and may add nodes on an edge (where a
 * hole touches it); the geodesic through a new node differs from the
 * original edge by a sliver that grows with the edge's length squared.
 * For plot-sized geometry (within 0.01 degree, away from the poles) that
 * sliver stays below a few m2, so the self-overlap must match the area to
 * 0.01 ha there. */
static int plot_sized(const json_t *geom)
{
	box b = {INFINITY, INFINITY, -INFINITY, -INFINITY};
	walk(json_object_get(geom, "coordinates"), &b);
	return b.maxx - b.minx <= 0.01 && b.maxy - b.miny <= 0.01 &&
	       fabs(b.miny) < 60 && fabs(b.maxy) < 60;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *root, *fixed, *again = NULL;
	qp_geo *g = NULL;
	qp_geo_result r, r2;
	char err[256], tiny[12];
	double declared, acc, ov;
	int rc, rc2;

	if (size > MAX_INPUT)
		return 0;
	declared = declared_v[size > 0 ? data[0] % 4 : 0];
	acc = accuracy_v[size > 0 ? (data[0] >> 2) % 2 : 0];
	root = json_loadb(
	    (const char *)data, size,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (root == NULL)
		return 0;
	if (qp_geo_new(&g) != 0)
		abort();

	if (json_is_number(root)) {
		char buf[QP_GEO_COORD_LEN];
		double v = json_number_value(root);
		if (qp_geo_format_coord(v, buf, sizeof buf) != 0 ||
		    strtod(buf, NULL) != v)
			abort();
	}

	err[0] = '\0';
	fixed = (json_t *)&r; /* sentinel: must be replaced or left alone */
	rc = qp_geo_check_plot(g, root, declared, acc, NULL, &r, &fixed, err,
	                       sizeof err);
	if (rc != 0 && rc != QP_EGEOM && rc != QP_ETOOBIG)
		abort();
	rc2 = qp_geo_check_plot(g, root, declared, acc, NULL, &r2, NULL, tiny,
	                        sizeof tiny);
	if (rc2 != rc || (rc != 0 && strlen(tiny) >= sizeof tiny))
		abort();
	if (qp_geo_check_plot(g, root, declared, acc, NULL, &r2, NULL, NULL,
	                      0) != rc)
		abort();

	if (rc != 0) {
		if (strncmp(err, "plot.geometry", 13) != 0 ||
		    fixed != (json_t *)&r)
			abort();
		goto out;
	}
	if (!isfinite(r.area_ha) || r.area_ha < 0 ||
	    strlen(r.warnings) >= sizeof r.warnings ||
	    (fixed != NULL) != (r.winding_fixed != 0))
		abort();
	if ((r.flags & QP_GEO_F_POINT) && r.area_ha != 0)
		abort();
	if (fixed != NULL) {
		if (qp_geo_check_plot(g, fixed, declared, acc, NULL, &r2,
		                      &again, err, sizeof err) != 0 ||
		    again != NULL || r2.winding_fixed ||
		    !close_to(r2.area_ha, r.area_ha))
			abort();
	}
	if (qp_geo_overlap_ha(g, root, root, &ov) != 0 || !isfinite(ov) ||
	    ov < 0)
		abort();
	if (plot_sized(root) && fabs(ov - r.area_ha) > 0.01 + 1e-6 * r.area_ha)
		abort();
	json_decref(fixed);
out:
	qp_geo_free(g);
	json_decref(root);
	return 0;
}
