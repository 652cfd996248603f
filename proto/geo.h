/*
 * geo.h - EUDR-grade checks of plot geometry: validity with GEOS, geodesic
 * area with PROJ (geodesic.h, WGS84), and the EU rules on points and area.
 *
 * schema.c checks the GeoJSON structure of a record's geometry; this module
 * does the deep checks that need real geometry, and is called by the schema
 * and the store.  It repeats the structural checks it depends on (with the
 * same messages as schema.c), so it is safe on any JSON value by itself.
 *
 * Rules implemented (those the EU information system, TRACES, applies to
 * GeoJSON geolocation, plus RFC 7946 and EUDR Art. 2(28)):
 *   - the geometry is a GeoJSON object whose "type" is Point, Polygon or
 *     MultiPolygon; LineString, MultiPoint, GeometryCollection, Feature and
 *     everything else are refused by name;
 *   - positions are [longitude, latitude] or [longitude, latitude,
 *     altitude], all numbers; longitude in [-180, 180], latitude in
 *     [-90, 90] (WGS84, EPSG:4326);
 *   - every ring is an array of at least 4 positions, closed (last equals
 *     first), with at least 3 distinct positions, and not all collinear;
 *   - no polygon self-intersects (GEOS validity, OGC rules), holes lie
 *     inside their shell and not inside each other, the polygons of a
 *     MultiPolygon neither overlap nor share a boundary segment;
 *   - a Point stands for a plot of at most 4 ha: a Point whose declared area
 *     is over 4 ha is refused (a polygon is required, EUDR Art. 2(28)), and
 *     one whose declared area is below 0.0001 ha (1 m2) is refused too;
 *   - winding follows RFC 7946 (exterior rings counter-clockwise, holes
 *     clockwise); a wrong winding is not refused but fixed in a copy.
 * Warnings (accepted, reported in qp_geo_result): repeated consecutive
 * positions (TRACES accepts them), holes (TRACES is reported not to accept
 * inner rings; the exporter must split such a plot), declared area off the
 * measured one by more than the tolerance, and GPS accuracy worse than the
 * limit.
 *
 * Not checked, by necessity: "at least 6 decimals".  A JSON number becomes
 * a double, and a double does not remember how many decimals were written
 * ("-74.900000" and "-74.9" are the same value).  Instead this module never
 * rounds: every coordinate keeps its double value end to end, the fixed
 * copy holds the very same JSON numbers, and qp_geo_format_coord prints at
 * least 6 decimals and as many more as the value needs to read back
 * exactly.  Geometries crossing the antimeridian are not supported (plots
 * are small and the programmes are in Peru).  GEOS works in the lon/lat
 * plane while areas are geodesic: an edge is a straight line to GEOS and a
 * geodesic to PROJ.  For plot-sized geometry (edges up to a kilometre or
 * so) the two differ by a few square metres at most; for regions of
 * continental size they do not describe the same shape.
 *
 * Messages are one line, "path: reason", where path is opts->path
 * ("plot.geometry" by default).  Structural errors name the JSON path as
 * schema.c does; topological ones name the ring ("ring 0" in a Polygon,
 * "polygon 1 ring 0" in a MultiPolygon; ring 0 of a polygon is its shell,
 * rings 1.. its holes) and the vertex nearest to where GEOS found the
 * fault, with that vertex's coordinates:
 *   plot.geometry.type: LineString is not accepted; must be Point, Polygon
 *     or MultiPolygon
 *   plot.geometry.coordinates[0]: ring not closed
 *   plot.geometry.coordinates[0][2]: latitude 95.2 out of range
 *   plot.geometry: ring 0: all positions are collinear (zero area)
 *   plot.geometry: ring 0 self-intersects near vertex 3 (-74.900000,
 *     -10.893000)
 *   plot.geometry: ring 1 (hole) lies outside its shell
 *   plot.geometry: polygons 0 and 1 overlap
 *   plot.geometry: plots over 4 ha need a polygon (EUDR Art. 2(28))
 *
 * A qp_geo holds the GEOS context (reentrant *_r API) and the WGS84
 * geodesic; there is no global state.  One qp_geo must be used by one
 * thread at a time; give each thread its own.
 */
#ifndef QP_GEO_H
#define QP_GEO_H

#include <jansson.h>
#include <stddef.h>

#define QP_GEO_MAX_POSITIONS 100000 /* positions in one geometry */
#define QP_GEO_MAX_POLYGONS  1000   /* polygons in one MultiPolygon */
#define QP_GEO_COORD_LEN     32     /* enough for any qp_geo_format_coord */

typedef struct qp_geo qp_geo;

/* Result flags. */
#define QP_GEO_F_POINT         0x01u /* the geometry is a Point (area_ha 0) */
#define QP_GEO_F_LOW_ACCURACY  0x02u /* accuracy_m > max_accuracy_m */
#define QP_GEO_F_AREA_MISMATCH 0x04u /* declared vs measured > tolerance */
#define QP_GEO_F_REPEATED      0x08u /* repeated consecutive positions */
#define QP_GEO_F_HOLES         0x10u /* a polygon has inner rings */

typedef struct qp_geo_opts {
	/* Relative tolerance between declared and measured area, as a
	 * fraction of the declared area (0.10 = 10%). */
	double area_tolerance;
	/* GPS accuracy (metres) above which a plot is flagged. */
	double max_accuracy_m;
	/* Declared area bounds for a plot given as a Point (ha). */
	double point_max_ha, point_min_ha;
	/* Prefix of every message; NULL means "plot.geometry". */
	const char *path;
} qp_geo_opts;

typedef struct qp_geo_result {
	double area_ha;    /* geodesic area; 0 for a Point */
	unsigned flags;    /* QP_GEO_F_* */
	int winding_fixed; /* 1 when the winding was wrong (and fixed) */
	/* Warnings joined by "; ", NUL-terminated, cut if longer. */
	char warnings[512];
} qp_geo_result;

/* Defaults: 10% area tolerance, 10 m accuracy, points 0.0001-4 ha,
 * path "plot.geometry". */
qp_geo_opts qp_geo_opts_default(void);

/* Make a checker (GEOS context and WGS84 geodesic) into *out.  Returns 0 or
 * QP_ENOMEM.  Free it with qp_geo_free. */
int qp_geo_new(qp_geo **out);
/* Free a checker; NULL is accepted. */
void qp_geo_free(qp_geo *g);

/* Check a plot's geometry (a JSON value, borrowed; never modified) against
 * every rule above.  declared_ha is the plot's declared area, accuracy_m
 * its GPS accuracy; either may be NAN when the record has none (otherwise
 * they must be finite and >= 0).  o may be NULL for the defaults.
 *
 * On success returns 0 and fills *res; when the winding had to be fixed,
 * res->winding_fixed is 1 and *fixed (if fixed is non-NULL) receives a new
 * reference to a corrected deep copy of geometry (the caller owns it and
 * json_decref's it); otherwise *fixed is set to NULL.  Warnings do not
 * fail the check.
 *
 * On failure nothing is written to res or fixed, and err (when non-NULL
 * and errlen > 0) receives one line "path: reason", cut to errlen:
 *   QP_EGEOM  the geometry breaks a rule;
 *   QP_ETOOBIG more than QP_GEO_MAX_POSITIONS positions or
 *             QP_GEO_MAX_POLYGONS polygons (checked before any geometry is
 *             built);
 *   QP_EINVAL g, geometry or res is NULL, or declared_ha / accuracy_m is
 *             negative or infinite (a caller bug: the schema bounds them).
 * An internal GEOS failure is reported as QP_EGEOM with GEOS's reason. */
int qp_geo_check_plot(qp_geo *g, const json_t *geometry, double declared_ha,
                      double accuracy_m, const qp_geo_opts *o,
                      qp_geo_result *res, json_t **fixed, char *err,
                      size_t errlen);

/* Geodesic area (ha) of the intersection of two plot geometries (borrowed),
 * for the hub's duplicate and overlap checks: GEOS computes the
 * intersection, PROJ its geodesic area.  A Point has no area, so any
 * intersection with one is 0.  Both geometries must pass the structural
 * and validity rules above (not the area or accuracy rules).  Returns 0
 * and writes *ha, QP_EGEOM when either geometry is invalid or GEOS fails,
 * QP_ETOOBIG past the bounds, or QP_EINVAL for NULL arguments. */
int qp_geo_overlap_ha(qp_geo *g, const json_t *a, const json_t *b, double *ha);

/* For the hub's plot review (plotcheck.c), which works on GEOS geometry
 * directly (spatial index, prepared predicates): the GEOS types, declared
 * here without geos_c.h (they are GEOS's own opaque structs). */
struct GEOSContextHandle_HS;
struct GEOSGeom_t;

/* The GEOS context of g (reentrant API); valid until qp_geo_free. */
struct GEOSContextHandle_HS *qp_geo_ctx(qp_geo *g);

/* qp_geo_check_plot (same arguments, results and errors, no fixed copy),
 * that also hands back the geometry it checked as GEOS geometry in the
 * lon/lat plane: a Point, a Polygon or a MultiPolygon whose N-th member is
 * the N-th polygon.  On success *out is new; the caller destroys it with
 * GEOSGeom_destroy_r(qp_geo_ctx(g), *out).  On failure *out is untouched. */
int qp_geo_check_geos(qp_geo *g, const json_t *geometry, double declared_ha,
                      double accuracy_m, const qp_geo_opts *o,
                      qp_geo_result *res, struct GEOSGeom_t **out, char *err,
                      size_t errlen);

/* Geodesic area (ha) of the polygons in a GEOS geometry (a GEOS result
 * such as an intersection; lines and points count zero, collections are
 * summed).  Returns 0 and writes *ha, QP_EGEOM when GEOS fails or the
 * geometry nests collections deeper than 8, QP_EINVAL for NULL. */
int qp_geo_geos_area_ha(qp_geo *g, const struct GEOSGeom_t *x, double *ha);

/* Print a coordinate in plain decimal notation, in the C locale, with at
 * least 6 decimals and as many more as needed for strtod to read back the
 * same double ("-74.900000", "-74.123456789").  A value that would need
 * more than 17 decimals (below about 1e-11), or of magnitude 1e6 or more,
 * is printed as "%.17g", still exact.  buf must hold QP_GEO_COORD_LEN
 * bytes to fit any value.  Returns
 * 0, QP_EINVAL for a non-finite value, or QP_ETOOBIG when buf is too small
 * (buf untouched on failure). */
int qp_geo_format_coord(double v, char *buf, size_t len);

#endif
