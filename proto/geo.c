/*
 * geo.c - deep checks of plot geometry (see geo.h).
 *
 * A check runs in fixed order so the first error reported is stable:
 * structure and bounds (no allocation before the sizes are known to be
 * within limits), then per ring (closed, distinct positions, collinear),
 * then GEOS validity polygon by polygon (so a message can name the ring),
 * then the polygons of a MultiPolygon together, then winding, then area and
 * the EUDR rules on points.  Coordinates are copied out of the JSON once
 * into plain arrays, which feed both GEOS and geod_polygonarea; the JSON
 * itself is only read, and the fixed copy reorders the original numbers
 * without ever converting them.
 */
#define GEOS_USE_ONLY_R_API /* reentrant API only: no global GEOS state */
#include "geo.h"
#include "err.h"
#include "util.h"

#include <geodesic.h>
#include <geos_c.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_LEN     128
#define DEFAULT_PATH "plot.geometry"
#define MAX_RINGS    (QP_GEO_MAX_POSITIONS / 4) /* each ring has >= 4 */
/* Degrees.  Positions closer than this to a line count as on it (about
 * 0.1 mm on the ground), and GEOS's fault location is matched to the rings
 * passing within it. */
#define LINE_EPS 1e-9
#define WGS84_A  6378137.0
#define WGS84_F  (1 / 298.257223563)

struct qp_geo {
	GEOSContextHandle_t ctx;
	struct geod_geodesic geod;
	char gerr[160]; /* GEOS's last error, for a QP_EGEOM message */
};

enum { G_POINT, G_POLYGON, G_MULTI };

/* One ring: positions [off, off + n) of the coordinate arrays, closing
 * position included. */
typedef struct ring {
	size_t off, n;
	size_t poly, idx; /* polygon it belongs to, index within it */
} ring;

typedef struct poly {
	size_t ring0, nrings;
	double minx, miny, maxx, maxy; /* of the shell */
} poly;

/* A geometry read out of JSON. */
typedef struct pgeom {
	int type;
	const char *path;
	double *lon, *lat;
	size_t npos, cap;
	ring *rings;
	size_t nrings;
	poly *polys;
	size_t npolys;
	size_t nrepeat, rep_ring, rep_vertex; /* repeated positions */
} pgeom;

static void pgeom_free(pgeom *pg)
{
	free(pg->lon);
	free(pg->lat);
	free(pg->rings);
	free(pg->polys);
}

/* ------------------------------------------------------------------ */
/* Text: numbers in the C locale (util.h). */

static void vcfmt(char *buf, size_t len, const char *fmt, va_list ap)
{
	qp_cloc l;
	qp_cloc_enter(&l);
	vsnprintf(buf, len, fmt, ap);
	qp_cloc_leave(&l);
}

static void warn(qp_geo_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append one warning to r->warnings, "; "-separated, cut when full. */
static void warn(qp_geo_result *r, const char *fmt, ...)
{
	size_t n = strlen(r->warnings);
	va_list ap;
	if (n + 3 >= sizeof r->warnings)
		return;
	if (n > 0) {
		memcpy(r->warnings + n, "; ", 3);
		n += 2;
	}
	va_start(ap, fmt);
	vcfmt(r->warnings + n, sizeof r->warnings - n, fmt, ap);
	va_end(ap);
}

int qp_geo_format_coord(double v, char *buf, size_t len)
{
	char tmp[64];
	int n = 0;
	qp_cloc l;
	if (!isfinite(v))
		return QP_EINVAL;
	qp_cloc_enter(&l);
	/* Fewest decimals (at least 6) that read back as the same double;
	 * 17 decimals settle every value from about 1e-11 up to 1e6, and
	 * below 1e6 the text stays within 25 characters. */
	for (int prec = 6; fabs(v) < 1e6 && prec <= 17; prec++) {
		n = snprintf(tmp, sizeof tmp, "%.*f", prec, v);
		if (n < 0 || (size_t)n >= sizeof tmp)
			break;
		if (strtod(tmp, NULL) == v)
			goto done;
	}
	n = snprintf(tmp, sizeof tmp, "%.17g", v); /* always exact */
done:
	qp_cloc_leave(&l);
	if (n < 0 || (size_t)n >= len)
		return QP_ETOOBIG;
	memcpy(buf, tmp, (size_t)n + 1);
	return 0;
}

/* A number for a message: up to 10 decimals, trailing zeros dropped. */
static const char *num(double v, char *buf, size_t len)
{
	char *p;
	qp_cloc l;
	qp_cloc_enter(&l);
	snprintf(buf, len, "%.10f", v);
	qp_cloc_leave(&l);
	if (strchr(buf, '.') != NULL) {
		p = buf + strlen(buf) - 1;
		while (*p == '0')
			*p-- = '\0';
		if (*p == '.')
			*p = '\0';
	}
	return buf;
}

/* An area in ha for a message: at least 2 decimals and 3 significant
 * digits ("3.20", "0.500", "0.00500"). */
static const char *ha_str(double v, char *buf, size_t len)
{
	int dec = 2;
	qp_cloc l;
	if (v > 0 && v < 1) {
		dec = 2 - (int)floor(log10(v));
		if (dec > 10)
			dec = 10;
	}
	qp_cloc_enter(&l);
	snprintf(buf, len, "%.*f", dec, v);
	qp_cloc_leave(&l);
	return buf;
}

/* "ring 2" in a Polygon, "polygon 1 ring 2" in a MultiPolygon, with
 * " (hole)" for inner rings when hole_tag is set. */
static const char *ring_label(const pgeom *pg, size_t r, int hole_tag,
                              char *buf, size_t len)
{
	const ring *rg = &pg->rings[r];
	const char *tag = hole_tag && rg->idx > 0 ? " (hole)" : "";
	if (pg->type == G_MULTI)
		snprintf(buf, len, "polygon %zu ring %zu%s", rg->poly, rg->idx,
		         tag);
	else
		snprintf(buf, len, "ring %zu%s", rg->idx, tag);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Structure: JSON to coordinate arrays. */

/* Count polygons, rings and positions from array sizes alone and refuse
 * what is over the limits before anything is allocated. */
static int count(pgeom *pg, const json_t *coords, char *err, size_t errlen)
{
	size_t np = 0, nr = 0, npoly = 0;
	const json_t *polys[1];
	const json_t *list = coords;
	size_t nlist;

	if (pg->type == G_POINT) {
		np = 1;
		goto out;
	}
	if (!json_is_array(coords))
		goto out; /* the structure walk reports it */
	if (pg->type == G_POLYGON) {
		polys[0] = coords;
		nlist = 1;
	} else {
		nlist = json_array_size(coords);
		if (nlist > QP_GEO_MAX_POLYGONS)
			return qp_errf(QP_ETOOBIG, err, errlen,
			            "%s: too many polygons (limit %d)",
			            pg->path, QP_GEO_MAX_POLYGONS);
	}
	for (size_t p = 0; p < nlist; p++) {
		const json_t *pv =
		    pg->type == G_POLYGON ? polys[0] : json_array_get(list, p);
		if (!json_is_array(pv))
			continue;
		npoly++;
		nr += json_array_size(pv);
		if (nr > MAX_RINGS)
			return qp_errf(QP_ETOOBIG, err, errlen,
			            "%s: too many rings (limit %d)", pg->path,
			            MAX_RINGS);
		for (size_t r = 0; r < json_array_size(pv); r++) {
			np += json_array_size(json_array_get(pv, r));
			if (np > QP_GEO_MAX_POSITIONS)
				return qp_errf(QP_ETOOBIG, err, errlen,
				            "%s: too many positions (limit %d)",
				            pg->path, QP_GEO_MAX_POSITIONS);
		}
	}
out:
	pg->cap = np;
	pg->lon = qp_xcalloc(np ? np : 1, sizeof *pg->lon);
	pg->lat = qp_xcalloc(np ? np : 1, sizeof *pg->lat);
	pg->rings = qp_xcalloc(nr ? nr : 1, sizeof *pg->rings);
	pg->polys = qp_xcalloc(npoly ? npoly : 1, sizeof *pg->polys);
	return 0;
}

static void pathf(char *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Format a path into a PATH_LEN buffer; long paths are cut (only a long
 * opts->path makes them long). */
static void pathf(char *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, PATH_LEN, fmt, ap);
	va_end(ap);
}

/* One position: [lon, lat] or [lon, lat, alt], numbers, in range.  Same
 * messages as schema.c.  Its path is base, or base[i] when i is not
 * NO_INDEX; it is only formatted for a message. */
#define NO_INDEX ((size_t)-1)
static int position(pgeom *pg, const char *base, size_t i, const json_t *v,
                    char *err, size_t errlen)
{
	size_t n = json_array_size(v);
	double lon, lat;
	char path[PATH_LEN];
	const char *why = NULL;
	if (!json_is_array(v) || n < 2 || n > 3)
		goto bad;
	for (size_t k = 0; k < n; k++)
		if (!json_is_number(json_array_get(v, k)))
			goto bad;
	lon = json_number_value(json_array_get(v, 0));
	lat = json_number_value(json_array_get(v, 1));
	if (!(lon >= -180 && lon <= 180))
		why = "longitude";
	else if (!(lat >= -90 && lat <= 90))
		why = "latitude";
	else if (pg->npos >= pg->cap) /* count() sized the arrays */
		why = "count";
	if (why == NULL) {
		pg->lon[pg->npos] = lon;
		pg->lat[pg->npos] = lat;
		pg->npos++;
		return 0;
	}
bad:
	if (i == NO_INDEX)
		pathf(path, "%s", base);
	else
		pathf(path, "%s[%zu]", base, i);
	if (why == NULL)
		return qp_errf(QP_EGEOM, err, errlen,
		            "%s: must be a position [longitude, latitude] or "
		            "[longitude, latitude, altitude]",
		            path);
	if (strcmp(why, "count") == 0)
		return qp_errf(QP_EGEOM, err, errlen, "%s: too many positions",
		            path);
	return qp_errf(QP_EGEOM, err, errlen, "%s: %s %.15g out of range", path,
	            why, strcmp(why, "longitude") == 0 ? lon : lat);
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

/* All positions of ring rg (closing one excluded) within LINE_EPS of one
 * straight line in the lon/lat plane: the ring encloses no area. */
static int collinear(const pgeom *pg, const ring *rg)
{
	const double *x = pg->lon + rg->off, *y = pg->lat + rg->off;
	size_t n = rg->n - 1, far = 0;
	double best = 0, dx, dy, len;
	for (size_t i = 1; i < n; i++) {
		double d = (x[i] - x[0]) * (x[i] - x[0]) +
		           (y[i] - y[0]) * (y[i] - y[0]);
		if (d > best) {
			best = d;
			far = i;
		}
	}
	if (far == 0)
		return 1;
	dx = x[far] - x[0];
	dy = y[far] - y[0];
	len = sqrt(best);
	for (size_t i = 1; i < n; i++) {
		double cross = dx * (y[i] - y[0]) - dy * (x[i] - x[0]);
		if (fabs(cross) / len > LINE_EPS)
			return 0;
	}
	return 1;
}

/* Are positions a and b antipodal (the two poles, or latitudes of
 * opposite sign 180 degrees of longitude apart)?  Many geodesics join such
 * a pair, so an edge between them has no shape and its ring no area. */
static int antipodal(const pgeom *pg, size_t a, size_t b)
{
	if (pg->lat[a] != -pg->lat[b])
		return 0;
	return fabs(pg->lat[a]) == 90 || fabs(pg->lon[a] - pg->lon[b]) == 180;
}

static int polygon(pgeom *pg, const char *path, const json_t *v, char *err,
                   size_t errlen)
{
	char rp[PATH_LEN], lb[48];
	size_t nr = json_array_size(v);
	poly *p = &pg->polys[pg->npolys];
	int rc;
	if (!json_is_array(v) || nr == 0)
		return qp_errf(QP_EGEOM, err, errlen,
		            "%s: must be a non-empty array of linear rings",
		            path);
	p->ring0 = pg->nrings;
	p->nrings = nr;
	for (size_t r = 0; r < nr; r++) {
		const json_t *rv = json_array_get(v, r);
		size_t np = json_array_size(rv), distinct = 1;
		ring *rg = &pg->rings[pg->nrings];
		pathf(rp, "%s[%zu]", path, r);
		if (!json_is_array(rv))
			return qp_errf(QP_EGEOM, err, errlen,
			            "%s: must be an array of positions", rp);
		if (np < 4)
			return qp_errf(QP_EGEOM, err, errlen,
			            "%s: ring needs at least 4 positions", rp);
		rg->off = pg->npos;
		rg->n = np;
		rg->poly = pg->npolys;
		rg->idx = r;
		pg->nrings++;
		for (size_t i = 0; i < np; i++) {
			rc = position(pg, rp, i, json_array_get(rv, i), err,
			              errlen);
			if (rc != 0)
				return rc;
		}
		if (!same_position(json_array_get(rv, 0),
		                   json_array_get(rv, np - 1)))
			return qp_errf(QP_EGEOM, err, errlen,
			            "%s: ring not closed", rp);
		for (size_t i = 1; i < np; i++) {
			size_t a = rg->off + i - 1, b = rg->off + i;
			if (pg->lon[a] != pg->lon[b] ||
			    pg->lat[a] != pg->lat[b]) {
				distinct++;
				continue;
			}
			if (pg->nrepeat++ == 0) {
				pg->rep_ring = pg->nrings - 1;
				pg->rep_vertex = i;
			}
		}
		for (size_t i = 1; i < np; i++)
			if (antipodal(pg, rg->off + i - 1, rg->off + i))
				return qp_errf(QP_EGEOM, err, errlen,
				            "%s[%zu]: on the opposite side of the "
				            "Earth from the position before it: no "
				            "single line joins the two",
				            rp, i);
		/* Collapsed, the ring must still be closed with 3 distinct
		 * corners: first, two others, first again. */
		if (distinct < 4)
			return qp_errf(QP_EGEOM, err, errlen,
			            "%s: ring needs at least 3 distinct "
			            "positions",
			            rp);
		if (collinear(pg, rg))
			return qp_errf(
			    QP_EGEOM, err, errlen,
			    "%s: %s: all positions are collinear "
			    "(zero area)",
			    pg->path,
			    ring_label(pg, pg->nrings - 1, 0, lb, sizeof lb));
		if (r == 0) {
			p->minx = p->maxx = pg->lon[rg->off];
			p->miny = p->maxy = pg->lat[rg->off];
			for (size_t i = 1; i < np; i++) {
				double x = pg->lon[rg->off + i],
				       y = pg->lat[rg->off + i];
				p->minx = fmin(p->minx, x);
				p->maxx = fmax(p->maxx, x);
				p->miny = fmin(p->miny, y);
				p->maxy = fmax(p->maxy, y);
			}
		}
	}
	pg->npolys++;
	return 0;
}

/* Read geometry v into pg (zeroed by the caller; pgeom_free after, also
 * on failure). */
static int parse(const json_t *v, const char *path, pgeom *pg, char *err,
                 size_t errlen)
{
	const json_t *t, *coords;
	const char *type;
	char sub[PATH_LEN], b[40];
	int rc;

	pg->path = path;
	if (!json_is_object(v))
		return qp_errf(QP_EGEOM, err, errlen,
		            "%s: must be a GeoJSON geometry object", path);
	t = json_object_get(v, "type");
	if (t == NULL)
		return qp_errf(QP_EGEOM, err, errlen, "%s.type: required", path);
	if (!json_is_string(t))
		return qp_errf(QP_EGEOM, err, errlen, "%s.type: must be a string",
		            path);
	type = json_string_value(t);
	if (strlen(type) != json_string_length(t)) /* embedded NUL */
		type = "";
	if (strcmp(type, "Point") == 0)
		pg->type = G_POINT;
	else if (strcmp(type, "Polygon") == 0)
		pg->type = G_POLYGON;
	else if (strcmp(type, "MultiPolygon") == 0)
		pg->type = G_MULTI;
	else
		return qp_errf(QP_EGEOM, err, errlen,
		            "%s.type: %s is not accepted; must be Point, "
		            "Polygon or MultiPolygon",
		            path,
		            qp_excerpt(json_string_value(t), json_string_length(t), b,
		                 sizeof b));
	coords = json_object_get(v, "coordinates");
	pathf(sub, "%s.coordinates", path);
	if (coords == NULL)
		return qp_errf(QP_EGEOM, err, errlen, "%s: required", sub);
	if ((rc = count(pg, coords, err, errlen)) != 0)
		return rc;
	if (pg->type == G_POINT)
		return position(pg, sub, NO_INDEX, coords, err, errlen);
	if (pg->type == G_POLYGON)
		return polygon(pg, sub, coords, err, errlen);
	if (!json_is_array(coords) || json_array_size(coords) == 0)
		return qp_errf(QP_EGEOM, err, errlen,
		            "%s: must be a non-empty array of polygons", sub);
	for (size_t i = 0; i < json_array_size(coords); i++) {
		char pp[PATH_LEN];
		pathf(pp, "%s[%zu]", sub, i);
		rc = polygon(pg, pp, json_array_get(coords, i), err, errlen);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* GEOS. */

static void on_geos_error(const char *msg, void *ud)
{
	qp_geo *g = ud;
	snprintf(g->gerr, sizeof g->gerr, "%s", msg != NULL ? msg : "");
}

static void on_geos_notice(const char *msg, void *ud)
{
	(void)msg; /* notices are not errors; GEOS may print them otherwise */
	(void)ud;
}

static int geos_fail(qp_geo *g, const pgeom *pg, char *err, size_t errlen)
{
	return qp_errf(QP_EGEOM, err, errlen,
	            "%s: geometry could not be processed (%s)", pg->path,
	            g->gerr[0] != '\0' ? g->gerr : "GEOS error");
}

static GEOSGeometry *mk_ring(qp_geo *g, const pgeom *pg, const ring *rg)
{
	GEOSCoordSequence *s =
	    GEOSCoordSeq_create_r(g->ctx, (unsigned)rg->n, 2);
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < rg->n; i++)
		if (!GEOSCoordSeq_setXY_r(g->ctx, s, (unsigned)i,
		                          pg->lon[rg->off + i],
		                          pg->lat[rg->off + i])) {
			GEOSCoordSeq_destroy_r(g->ctx, s);
			return NULL;
		}
	return GEOSGeom_createLinearRing_r(g->ctx, s); /* takes s */
}

static GEOSGeometry *mk_polygon(qp_geo *g, const pgeom *pg, const poly *p)
{
	GEOSGeometry *shell, **holes = NULL, *out = NULL;
	size_t nh = p->nrings - 1, made = 0;
	shell = mk_ring(g, pg, &pg->rings[p->ring0]);
	if (shell == NULL)
		return NULL;
	if (nh > 0)
		holes = qp_xcalloc(nh, sizeof *holes);
	for (; made < nh; made++) {
		holes[made] = mk_ring(g, pg, &pg->rings[p->ring0 + 1 + made]);
		if (holes[made] == NULL)
			goto out;
	}
	/* Takes shell and holes (not the array). */
	out = GEOSGeom_createPolygon_r(g->ctx, shell, holes, (unsigned)nh);
	shell = NULL;
	made = 0;
out:
	for (size_t i = 0; i < made; i++)
		GEOSGeom_destroy_r(g->ctx, holes[i]);
	if (shell != NULL)
		GEOSGeom_destroy_r(g->ctx, shell);
	free(holes);
	return out;
}

/* Squared distance from (x, y) to segment a-b. */
static double seg_dist2(double x, double y, double ax, double ay, double bx,
                        double by)
{
	double dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy, t = 0;
	if (l2 > 0) {
		t = ((x - ax) * dx + (y - ay) * dy) / l2;
		t = t < 0 ? 0 : t > 1 ? 1 : t;
	}
	dx = ax + t * dx - x;
	dy = ay + t * dy - y;
	return dx * dx + dy * dy;
}

/* The vertex of ring r nearest to (x, y); its squared distance in *d2. */
static size_t near_vertex(const pgeom *pg, size_t r, double x, double y,
                          double *d2)
{
	const ring *rg = &pg->rings[r];
	size_t best = 0;
	*d2 = INFINITY;
	for (size_t i = 0; i + 1 < rg->n; i++) {
		double dx = pg->lon[rg->off + i] - x,
		       dy = pg->lat[rg->off + i] - y, d = dx * dx + dy * dy;
		if (d < *d2) {
			*d2 = d;
			best = i;
		}
	}
	return best;
}

/* Ring r passes within LINE_EPS of (x, y). */
static int ring_near(const pgeom *pg, size_t r, double x, double y)
{
	const ring *rg = &pg->rings[r];
	const double *lx = pg->lon + rg->off, *ly = pg->lat + rg->off;
	for (size_t i = 0; i + 1 < rg->n; i++)
		if (seg_dist2(x, y, lx[i], ly[i], lx[i + 1], ly[i + 1]) <=
		    LINE_EPS * LINE_EPS)
			return 1;
	return 0;
}

/* Turn GEOS's reason and location for invalid polygon p into a message
 * naming the ring(s) and the nearest vertex. */
static int describe(const pgeom *pg, const poly *p, const char *reason,
                    double x, double y, char *err, size_t errlen)
{
	size_t first = p->ring0, end = p->ring0 + p->nrings;
	size_t hit[2], nhit = 0, r = first, v = 0;
	double best = INFINITY, d2;
	char la[48], lb[48], cx[QP_GEO_COORD_LEN], cy[QP_GEO_COORD_LEN];
	int holes_only =
	    strstr(reason, "Hole") != NULL || strstr(reason, "hole") != NULL;

	if (holes_only && p->nrings > 1)
		first++;
	for (size_t i = first; i < end; i++) {
		if (nhit < 2 && ring_near(pg, i, x, y))
			hit[nhit++] = i;
	}
	/* The vertex nearest the fault, on the rings the fault lies on (the
	 * highest one when two cross: a hole is the likelier culprit). */
	for (size_t i = first; i < end; i++) {
		size_t vi;
		if (nhit > 0 && i != hit[nhit - 1])
			continue;
		vi = near_vertex(pg, i, x, y, &d2);
		if (d2 < best) {
			best = d2;
			r = i;
			v = vi;
		}
	}
	if (isfinite(x) && isfinite(y) && best < INFINITY) {
		qp_geo_format_coord(pg->lon[pg->rings[r].off + v], cx,
		                    sizeof cx);
		qp_geo_format_coord(pg->lat[pg->rings[r].off + v], cy,
		                    sizeof cy);
	} else {
		return qp_errf(QP_EGEOM, err, errlen, "%s: invalid polygon (%s)",
		            pg->path, reason);
	}
	ring_label(pg, r, 1, la, sizeof la);
	if (strstr(reason, "Self-intersection") != NULL) {
		if (nhit == 2)
			return qp_errf(
			    QP_EGEOM, err, errlen,
			    "%s: %s crosses %s near vertex %zu (%s, %s)",
			    pg->path, la,
			    ring_label(pg, hit[0], 1, lb, sizeof lb), v, cx,
			    cy);
		return qp_errf(QP_EGEOM, err, errlen,
		            "%s: %s self-intersects near vertex %zu (%s, %s)",
		            pg->path, la, v, cx, cy);
	}
	if (strcmp(reason, "Hole lies outside shell") == 0)
		return qp_errf(QP_EGEOM, err, errlen,
		            "%s: %s lies outside its shell", pg->path, la);
	if (strcmp(reason, "Holes are nested") == 0 ||
	    strcmp(reason, "Nested holes") == 0)
		return qp_errf(QP_EGEOM, err, errlen,
		            "%s: %s lies inside another hole", pg->path, la);
	return qp_errf(
	    QP_EGEOM, err, errlen,
	    "%s: %s is invalid (%c%s) near vertex %zu (%s, %s)", pg->path, la,
	    reason[0] >= 'A' && reason[0] <= 'Z' ? reason[0] + 32 : reason[0],
	    reason[0] != '\0' ? reason + 1 : "", v, cx, cy);
}

/* GEOS validity of one built geometry: 1 valid, 0 invalid (reason and
 * location handed to the caller, who frees them), -1 GEOS failed. */
static int validity(qp_geo *g, const GEOSGeometry *x, char **reason, double *lx,
                    double *ly)
{
	GEOSGeometry *loc = NULL;
	char v;
	*reason = NULL;
	*lx = *ly = NAN;
	v = GEOSisValidDetail_r(g->ctx, x, 0, reason, &loc);
	if (v == 2)
		return -1;
	if (loc != NULL) {
		if (!GEOSGeomGetX_r(g->ctx, loc, lx) ||
		    !GEOSGeomGetY_r(g->ctx, loc, ly))
			*lx = *ly = NAN;
		GEOSGeom_destroy_r(g->ctx, loc);
	}
	if (v == 1 || *reason == NULL) {
		if (*reason != NULL)
			GEOSFree_r(g->ctx, *reason);
		*reason = NULL;
		return v == 1 ? 1 : -1;
	}
	return 0;
}

static int in_box(const poly *p, double x, double y)
{
	return x >= p->minx - LINE_EPS && x <= p->maxx + LINE_EPS &&
	       y >= p->miny - LINE_EPS && y <= p->maxy + LINE_EPS;
}

static int boxes_meet(const poly *a, const poly *b)
{
	return a->minx <= b->maxx && b->minx <= a->maxx && a->miny <= b->maxy &&
	       b->miny <= a->maxy;
}

/* The MultiPolygon m (polygons each valid) is invalid at (x, y): find the
 * two polygons at fault.  Pairs around the location are tried first, for
 * overlapping interiors, then for a shared boundary segment; only when
 * neither is found (GEOS gave no usable location) is every pair whose
 * boxes meet tried. */
static int describe_multi(qp_geo *g, const pgeom *pg, const GEOSGeometry *m,
                          const char *reason, double x, double y, char *err,
                          size_t errlen)
{
	char cx[QP_GEO_COORD_LEN] = "?", cy[QP_GEO_COORD_LEN] = "?";
	static const struct {
		int near; /* only pairs whose boxes hold the location */
		const char
		    *pat; /* DE-9IM: interiors meet / boundaries share a line */
	} passes[3] = {{1, "2********"}, {1, "****1****"}, {0, "2********"}};
	if (isfinite(x) && isfinite(y)) {
		qp_geo_format_coord(x, cx, sizeof cx);
		qp_geo_format_coord(y, cy, sizeof cy);
	}
	for (int pass = 0; pass < 3; pass++) {
		int near = passes[pass].near;
		for (size_t i = 0; i < pg->npolys; i++) {
			const poly *pi = &pg->polys[i];
			if (near && !in_box(pi, x, y))
				continue;
			for (size_t j = i + 1; j < pg->npolys; j++) {
				const poly *pj = &pg->polys[j];
				char r;
				if (near ? !in_box(pj, x, y)
				         : !boxes_meet(pi, pj))
					continue;
				r = GEOSRelatePattern_r(
				    g->ctx,
				    GEOSGetGeometryN_r(g->ctx, m, (int)i),
				    GEOSGetGeometryN_r(g->ctx, m, (int)j),
				    passes[pass].pat);
				if (r == 2)
					return geos_fail(g, pg, err, errlen);
				if (r == 0)
					continue;
				if (pass != 1)
					return qp_errf(QP_EGEOM, err, errlen,
					            "%s: polygons %zu and %zu "
					            "overlap",
					            pg->path, i, j);
				return qp_errf(QP_EGEOM, err, errlen,
				            "%s: polygons %zu and %zu share a "
				            "boundary segment near (%s, %s)",
				            pg->path, i, j, cx, cy);
			}
		}
	}
	return qp_errf(QP_EGEOM, err, errlen,
	            "%s: the polygons are invalid together (%s) near (%s, %s)",
	            pg->path, reason, cx, cy);
}

/* Build pg (Polygon or MultiPolygon) as a GEOS geometry and check its
 * validity.  On success *out is a Polygon or a MultiPolygon whose N-th
 * member is pg's N-th polygon; the caller destroys it. */
static int build(qp_geo *g, const pgeom *pg, GEOSGeometry **out, char *err,
                 size_t errlen)
{
	GEOSGeometry **parts = qp_xcalloc(pg->npolys, sizeof *parts);
	GEOSGeometry *m = NULL;
	size_t made = 0;
	char *reason = NULL;
	double x, y;
	int rc = 0, v;

	g->gerr[0] = '\0';
	for (; made < pg->npolys; made++) {
		parts[made] = mk_polygon(g, pg, &pg->polys[made]);
		if (parts[made] == NULL) {
			rc = geos_fail(g, pg, err, errlen);
			goto out;
		}
		v = validity(g, parts[made], &reason, &x, &y);
		if (v < 0) {
			made++;
			rc = geos_fail(g, pg, err, errlen);
			goto out;
		}
		if (v == 0) {
			made++;
			rc = describe(pg, &pg->polys[made - 1], reason, x, y,
			              err, errlen);
			goto out;
		}
	}
	if (pg->type == G_POLYGON) {
		*out = parts[0];
		made = 0;
		goto out;
	}
	/* Takes the parts (not the array). */
	m = GEOSGeom_createCollection_r(g->ctx, GEOS_MULTIPOLYGON, parts,
	                                (unsigned)pg->npolys);
	made = 0;
	if (m == NULL) {
		rc = geos_fail(g, pg, err, errlen);
		goto out;
	}
	v = validity(g, m, &reason, &x, &y);
	if (v < 0)
		rc = geos_fail(g, pg, err, errlen);
	else if (v == 0)
		rc = describe_multi(g, pg, m, reason, x, y, err, errlen);
	if (rc != 0) {
		GEOSGeom_destroy_r(g->ctx, m);
		goto out;
	}
	*out = m;
out:
	if (reason != NULL)
		GEOSFree_r(g->ctx, reason);
	for (size_t i = 0; i < made; i++)
		GEOSGeom_destroy_r(g->ctx, parts[i]);
	free(parts);
	return rc;
}

/* Mark in wrong[] every ring whose winding breaks RFC 7946; returns how
 * many, or -1 when GEOS fails. */
static long winding(qp_geo *g, const pgeom *pg, const GEOSGeometry *x,
                    unsigned char *wrong)
{
	long n = 0;
	for (size_t p = 0; p < pg->npolys; p++) {
		const GEOSGeometry *pp =
		    pg->type == G_MULTI ? GEOSGetGeometryN_r(g->ctx, x, (int)p)
		                        : x;
		const poly *pl = &pg->polys[p];
		for (size_t r = 0; r < pl->nrings; r++) {
			const GEOSGeometry *rg =
			    r == 0 ? GEOSGetExteriorRing_r(g->ctx, pp)
			           : GEOSGetInteriorRingN_r(g->ctx, pp,
			                                    (int)r - 1);
			const GEOSCoordSequence *s;
			char ccw;
			if (rg == NULL)
				return -1;
			s = GEOSGeom_getCoordSeq_r(g->ctx, rg);
			if (s == NULL || !GEOSCoordSeq_isCCW_r(g->ctx, s, &ccw))
				return -1;
			if ((r == 0) != (ccw != 0)) {
				wrong[pl->ring0 + r] = 1;
				n++;
			}
		}
	}
	return n;
}

/* A deep copy of geometry with the marked rings reversed.  The positions
 * are the very JSON values of the copy, only reordered. */
static json_t *rewound(const json_t *geometry, const pgeom *pg,
                       const unsigned char *wrong)
{
	json_t *copy = json_deep_copy(geometry);
	json_t *coords = json_object_get(copy, "coordinates");
	if (copy == NULL)
		return NULL;
	for (size_t r = 0; r < pg->nrings; r++) {
		const ring *rg = &pg->rings[r];
		json_t *pv = pg->type == G_MULTI
		                 ? json_array_get(coords, rg->poly)
		                 : coords;
		json_t *rv = json_array_get(pv, rg->idx);
		size_t n = json_array_size(rv);
		if (!wrong[r])
			continue;
		for (size_t i = 0; i < n / 2; i++) {
			json_t *a = json_incref(json_array_get(rv, i));
			json_t *b = json_incref(json_array_get(rv, n - 1 - i));
			json_array_set_new(rv, i, b);
			json_array_set_new(rv, n - 1 - i, a);
		}
	}
	return copy;
}

/* Geodesic area (m2, unsigned) of the ring given by n positions, the
 * closing one included. */
static double ring_m2(const qp_geo *g, double *lat, double *lon, size_t n)
{
	double a = 0, perim = 0;
	if (n < 4)
		return 0;
	geod_polygonarea(&g->geod, lat, lon, (int)(n - 1), &a, &perim);
	return fabs(a);
}

static double pgeom_m2(const qp_geo *g, const pgeom *pg)
{
	double total = 0;
	for (size_t p = 0; p < pg->npolys; p++) {
		const poly *pl = &pg->polys[p];
		double a = 0;
		for (size_t r = 0; r < pl->nrings; r++) {
			const ring *rg = &pg->rings[pl->ring0 + r];
			double s = ring_m2(g, pg->lat + rg->off,
			                   pg->lon + rg->off, rg->n);
			a += r == 0 ? s : -s;
		}
		/* GEOS checked the holes inside the shell with straight
		 * lon/lat edges (RFC 7946); the area follows geodesics, which
		 * over long edges bow away from those lines, so holes that
		 * nearly fill a vast shell can measure more than it.  What
		 * is left then is nothing, as geos_m2 has it. */
		total += a > 0 ? a : 0;
	}
	return total;
}

/* Geodesic area (m2) of the polygons in a GEOS result; lines and points
 * count zero.  Returns -1 when GEOS fails. */
static double geos_m2(const qp_geo *g, const GEOSGeometry *x, int depth)
{
	int t = GEOSGeomTypeId_r(g->ctx, x), n;
	double total = 0;
	if (t == GEOS_MULTIPOLYGON || t == GEOS_GEOMETRYCOLLECTION) {
		if (depth > 8 || (n = GEOSGetNumGeometries_r(g->ctx, x)) < 0)
			return -1;
		for (int i = 0; i < n; i++) {
			double a = geos_m2(g, GEOSGetGeometryN_r(g->ctx, x, i),
			                   depth + 1);
			if (a < 0)
				return -1;
			total += a;
		}
		return total;
	}
	if (t != GEOS_POLYGON)
		return t < 0 ? -1 : 0;
	n = GEOSGetNumInteriorRings_r(g->ctx, x);
	if (n < 0)
		return -1;
	for (int r = -1; r < n; r++) {
		const GEOSGeometry *rg =
		    r < 0 ? GEOSGetExteriorRing_r(g->ctx, x)
		          : GEOSGetInteriorRingN_r(g->ctx, x, r);
		const GEOSCoordSequence *s =
		    rg != NULL ? GEOSGeom_getCoordSeq_r(g->ctx, rg) : NULL;
		unsigned size = 0;
		double *lat, *lon, a;
		if (s == NULL || !GEOSCoordSeq_getSize_r(g->ctx, s, &size))
			return -1;
		lat = qp_xcalloc(size ? size : 1, sizeof *lat);
		lon = qp_xcalloc(size ? size : 1, sizeof *lon);
		for (unsigned i = 0; i < size; i++)
			if (!GEOSCoordSeq_getXY_r(g->ctx, s, i, &lon[i],
			                          &lat[i])) {
				free(lat);
				free(lon);
				return -1;
			}
		a = ring_m2(g, lat, lon, size);
		free(lat);
		free(lon);
		total += r < 0 ? a : -a;
	}
	return total > 0 ? total : 0;
}

/* ------------------------------------------------------------------ */

qp_geo_opts qp_geo_opts_default(void)
{
	qp_geo_opts o = {
	    .area_tolerance = 0.10,
	    .max_accuracy_m = 10.0,
	    .point_max_ha = 4.0,
	    .point_min_ha = 0.0001,
	    .path = DEFAULT_PATH,
	};
	return o;
}

int qp_geo_new(qp_geo **out)
{
	qp_geo *g;
	if (out == NULL)
		return QP_EINVAL;
	g = calloc(1, sizeof *g);
	if (g == NULL)
		return QP_ENOMEM;
	g->ctx = GEOS_init_r();
	if (g->ctx == NULL) {
		free(g);
		return QP_ENOMEM;
	}
	GEOSContext_setErrorMessageHandler_r(g->ctx, on_geos_error, g);
	GEOSContext_setNoticeMessageHandler_r(g->ctx, on_geos_notice, g);
	geod_init(&g->geod, WGS84_A, WGS84_F);
	*out = g;
	return 0;
}

void qp_geo_free(qp_geo *g)
{
	if (g == NULL)
		return;
	GEOS_finish_r(g->ctx);
	free(g);
}

static int opts_ok(const qp_geo_opts *o)
{
	return isfinite(o->area_tolerance) && o->area_tolerance >= 0 &&
	       !isnan(o->max_accuracy_m) && o->max_accuracy_m >= 0 &&
	       isfinite(o->point_min_ha) && isfinite(o->point_max_ha) &&
	       o->point_min_ha >= 0 && o->point_min_ha <= o->point_max_ha;
}

/* NAN (absent) or a finite value >= 0. */
static int opt_num_ok(double v)
{
	return isnan(v) || (isfinite(v) && v >= 0);
}

/* qp_geo_check_plot, and, when out is non-NULL, the GEOS geometry checked
 * (a Point built here for a Point). */
static int check(qp_geo *g, const json_t *geometry, double declared_ha,
                 double accuracy_m, const qp_geo_opts *o, qp_geo_result *res,
                 json_t **fixed, GEOSGeometry **out, char *err, size_t errlen)
{
	qp_geo_opts def = qp_geo_opts_default();
	pgeom pg = {0};
	GEOSGeometry *x = NULL;
	unsigned char *wrong = NULL;
	qp_geo_result r = {0};
	json_t *copy = NULL;
	const char *path;
	char b1[40], b2[40];
	long nwrong = 0;
	int rc;

	if (o == NULL)
		o = &def;
	path = o->path != NULL ? o->path : DEFAULT_PATH;
	if (g == NULL || geometry == NULL || res == NULL || !opts_ok(o) ||
	    !opt_num_ok(declared_ha) || !opt_num_ok(accuracy_m))
		return qp_errf(QP_EINVAL, err, errlen, "%s: invalid arguments",
		            path);
	if ((rc = parse(geometry, path, &pg, err, errlen)) != 0)
		goto out;

	if (pg.type == G_POINT) {
		r.flags |= QP_GEO_F_POINT;
		/* EUDR Art. 2(28): a point only for plots up to 4 ha. */
		if (declared_ha > o->point_max_ha) {
			rc = qp_errf(QP_EGEOM, err, errlen,
			          "%s: plots over %s ha need a polygon (EUDR "
			          "Art. 2(28))",
			          path, num(o->point_max_ha, b1, sizeof b1));
			goto out;
		}
		if (declared_ha < o->point_min_ha) {
			rc = qp_errf(QP_EGEOM, err, errlen,
			          "%s: declared area %s ha is below %s ha, "
			          "too small for a plot",
			          path, num(declared_ha, b1, sizeof b1),
			          num(o->point_min_ha, b2, sizeof b2));
			goto out;
		}
	} else {
		if ((rc = build(g, &pg, &x, err, errlen)) != 0)
			goto out;
		wrong = qp_xcalloc(pg.nrings, 1);
		if ((nwrong = winding(g, &pg, x, wrong)) < 0) {
			rc = geos_fail(g, &pg, err, errlen);
			goto out;
		}
		if (nwrong > 0 && fixed != NULL &&
		    (copy = rewound(geometry, &pg, wrong)) == NULL) {
			rc = qp_errf(QP_ENOMEM, err, errlen, "%s: out of memory",
			          path);
			goto out;
		}
		r.area_ha = pgeom_m2(g, &pg) / 10000.0;
	}

	if (pg.nrepeat > 0) {
		r.flags |= QP_GEO_F_REPEATED;
		warn(&r,
		     "%zu repeated consecutive position%s (first: %s vertex "
		     "%zu)",
		     pg.nrepeat, pg.nrepeat == 1 ? "" : "s",
		     ring_label(&pg, pg.rep_ring, 0, b1, sizeof b1),
		     pg.rep_vertex);
	}
	if (pg.nrings > pg.npolys) {
		r.flags |= QP_GEO_F_HOLES;
		warn(&r, "the plot has holes (inner rings), which the EU "
		         "information system does not accept");
	}
	if (nwrong > 0) {
		r.winding_fixed = 1;
		warn(&r,
		     "reversed %ld ring%s to RFC 7946 winding (exterior "
		     "counter-clockwise, holes clockwise)",
		     nwrong, nwrong == 1 ? "" : "s");
	}
	if (pg.type != G_POINT && !isnan(declared_ha)) {
		double diff = fabs(r.area_ha - declared_ha);
		if (declared_ha <= 0) {
			r.flags |= QP_GEO_F_AREA_MISMATCH;
			warn(&r,
			     "declared area %s ha differs from measured %s ha",
			     ha_str(declared_ha, b1, sizeof b1),
			     ha_str(r.area_ha, b2, sizeof b2));
		} else if (diff / declared_ha > o->area_tolerance) {
			r.flags |= QP_GEO_F_AREA_MISMATCH;
			warn(&r,
			     "declared area %s ha differs from measured %s ha "
			     "by "
			     "%.0f%%",
			     ha_str(declared_ha, b1, sizeof b1),
			     ha_str(r.area_ha, b2, sizeof b2),
			     100.0 * diff / declared_ha);
		}
	}
	if (accuracy_m > o->max_accuracy_m) {
		char b3[40];
		r.flags |= QP_GEO_F_LOW_ACCURACY;
		warn(&r, "position accuracy %s m is worse than %s m",
		     num(accuracy_m, b3, sizeof b3),
		     num(o->max_accuracy_m, b2, sizeof b2));
	}

	if (out != NULL && pg.type == G_POINT) {
		g->gerr[0] = '\0';
		x = GEOSGeom_createPointFromXY_r(g->ctx, pg.lon[0], pg.lat[0]);
		if (x == NULL) {
			rc = geos_fail(g, &pg, err, errlen);
			goto out;
		}
	}
	*res = r;
	if (fixed != NULL) {
		*fixed = copy;
		copy = NULL;
	}
	if (out != NULL) {
		*out = x;
		x = NULL;
	}
out:
	json_decref(copy);
	free(wrong);
	if (x != NULL)
		GEOSGeom_destroy_r(g->ctx, x);
	pgeom_free(&pg);
	return rc;
}

int qp_geo_check_plot(qp_geo *g, const json_t *geometry, double declared_ha,
                      double accuracy_m, const qp_geo_opts *o,
                      qp_geo_result *res, json_t **fixed, char *err,
                      size_t errlen)
{
	return check(g, geometry, declared_ha, accuracy_m, o, res, fixed, NULL,
	             err, errlen);
}

int qp_geo_check_geos(qp_geo *g, const json_t *geometry, double declared_ha,
                      double accuracy_m, const qp_geo_opts *o,
                      qp_geo_result *res, GEOSGeometry **out, char *err,
                      size_t errlen)
{
	if (out == NULL)
		return qp_errf(QP_EINVAL, err, errlen, "%s: invalid arguments",
		            o != NULL && o->path != NULL ? o->path
		                                         : DEFAULT_PATH);
	return check(g, geometry, declared_ha, accuracy_m, o, res, NULL, out,
	             err, errlen);
}

GEOSContextHandle_t qp_geo_ctx(qp_geo *g)
{
	return g != NULL ? g->ctx : NULL;
}

int qp_geo_geos_area_ha(qp_geo *g, const GEOSGeometry *x, double *ha)
{
	double m2;
	if (g == NULL || x == NULL || ha == NULL)
		return QP_EINVAL;
	if ((m2 = geos_m2(g, x, 0)) < 0)
		return QP_EGEOM;
	*ha = m2 / 10000.0;
	return 0;
}

int qp_geo_overlap_ha(qp_geo *g, const json_t *a, const json_t *b, double *ha)
{
	pgeom pa = {0}, pb = {0};
	GEOSGeometry *ga = NULL, *gb = NULL, *ix = NULL;
	char err[QP_GEO_COORD_LEN * 4];
	double m2 = 0;
	int rc;

	if (g == NULL || a == NULL || b == NULL || ha == NULL)
		return QP_EINVAL;
	if ((rc = parse(a, "a", &pa, err, sizeof err)) != 0 ||
	    (rc = parse(b, "b", &pb, err, sizeof err)) != 0)
		goto out;
	if (pa.type != G_POINT &&
	    (rc = build(g, &pa, &ga, err, sizeof err)) != 0)
		goto out;
	if (pb.type != G_POINT &&
	    (rc = build(g, &pb, &gb, err, sizeof err)) != 0)
		goto out;
	if (ga == NULL || gb == NULL)
		goto done; /* a point has no area */
	g->gerr[0] = '\0';
	ix = GEOSIntersection_r(g->ctx, ga, gb);
	if (ix == NULL || (m2 = geos_m2(g, ix, 0)) < 0) {
		rc = QP_EGEOM;
		goto out;
	}
done:
	*ha = m2 / 10000.0;
out:
	if (ix != NULL)
		GEOSGeom_destroy_r(g->ctx, ix);
	if (ga != NULL)
		GEOSGeom_destroy_r(g->ctx, ga);
	if (gb != NULL)
		GEOSGeom_destroy_r(g->ctx, gb);
	pgeom_free(&pa);
	pgeom_free(&pb);
	return rc;
}
