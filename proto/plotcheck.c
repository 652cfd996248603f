/*
 * plotcheck.c - the hub's plot review (see plotcheck.h).
 *
 * Every plot's stored geometry is checked again with today's rules
 * (qp_geo_check_geos), which also builds it as GEOS geometry.  The valid
 * ones go into one GEOS STRtree over their envelopes; each polygon plot
 * asks the tree for the plots whose envelopes meet its own, and only those
 * candidate pairs are intersected (a prepared geometry answers "do they
 * meet at all" first, cheaply).  The intersection's area is geodesic, from
 * PROJ, like the plots' own areas, so percentages compare like with like.
 * Points have no area: two points are the same land when their coordinates
 * agree to 6 decimals, found by sorting rather than through the tree.
 * Layer features are built one at a time and looked up in the same tree,
 * so a large layer never has to be held as GEOS geometry all at once.
 *
 * Findings are collected as plain structs, sorted, and only then turned
 * into JSON, so the output does not depend on the order of the input, the
 * tree's internal order or the order GEOS reports candidates in.
 */
#define GEOS_USE_ONLY_R_API /* reentrant API only: no global GEOS state */
#include "plotcheck.h"
#include "err.h"
#include "util.h"

#include <geos_c.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_PLOT   SIZE_MAX
#define TREE_NODE 10  /* STRtree node capacity (GEOS's usual) */
#define ERR_LEN   256 /* a geometry finding's reason */

/* Alphabetical, so sorting by this enum sorts by the type's name. */
enum { F_DUPLICATE, F_FOREST_LOSS, F_GEOMETRY, F_OVERLAP };
static const char *const type_name[] = {"duplicate", "forest_loss", "geometry",
                                        "overlap"};

typedef struct pplot {
	const char *id;
	const json_t *producer; /* string, or NULL when the record has none */
	GEOSGeometry *geom;     /* NULL when the geometry fails the checks */
	const GEOSPreparedGeometry *prep; /* made when first needed */
	double area_ha;
	int point;
	long long qx, qy; /* a point's coordinates in 1e-6 degrees */
	int wanted;       /* findings about it are reported (`only`) */
} pplot;

typedef struct finding {
	int type;
	size_t a, b; /* plots; b is NO_PLOT for one-plot findings */
	double ha, pct;
	size_t layer, feature;
	char *reason; /* geometry findings */
} finding;

typedef struct run {
	qp_geo *g;
	GEOSContextHandle_t ctx;
	pplot *p;
	size_t n;
	const qp_layer *layers;
	finding *f;
	size_t nf, capf;
	size_t *cand; /* candidates of the current query */
	size_t ncand, capcand;
} run;

/* ------------------------------------------------------------------ */
/* Layers. */

/* Positions in a Polygon (depth 2) or MultiPolygon (depth 3) coordinate
 * array, counted from array sizes alone; whatever is not an array counts
 * zero (the geometry check reports it). */
static size_t positions(const json_t *coords, int depth)
{
	size_t n = 0, i;
	const json_t *v;
	if (depth == 1)
		return json_array_size(coords);
	json_array_foreach(coords, i, v)
	{
		n += positions(v, depth - 1);
		if (n > QP_LAYER_MAX_POSITIONS)
			break; /* the caller refuses; no need to go on */
	}
	return n;
}

/* The geometry type of feature f when it is a Polygon (2) or MultiPolygon
 * (3), the depth of its rings' positions; 0 otherwise. */
static int polygonal(const json_t *f)
{
	const char *t = json_string_value(
	    json_object_get(json_object_get(f, "geometry"), "type"));
	if (t == NULL)
		return 0;
	if (strcmp(t, "Polygon") == 0)
		return 2;
	if (strcmp(t, "MultiPolygon") == 0)
		return 3;
	return 0;
}

/* One feature: a Feature object whose geometry is a valid Polygon or
 * MultiPolygon. */
static int check_feature(qp_geo *g, const json_t *f, size_t i, char *err,
                         size_t errlen)
{
	const json_t *t = json_object_get(f, "type"), *geom, *gt;
	qp_geo_opts o = qp_geo_opts_default();
	qp_geo_result res;
	char path[48], b[40];

	if (!json_is_object(f))
		return qp_errf(QP_EGEOM, err, errlen,
		             "feature %zu: must be a GeoJSON Feature object",
		             i);
	if (!json_is_string(t) || strcmp(json_string_value(t), "Feature") != 0)
		return qp_errf(QP_EGEOM, err, errlen,
		             "feature %zu: type: must be \"Feature\"", i);
	geom = json_object_get(f, "geometry");
	if (geom == NULL || json_is_null(geom))
		return qp_errf(QP_EGEOM, err, errlen,
		             "feature %zu: geometry: required", i);
	gt = json_object_get(geom, "type");
	if (json_is_string(gt) && polygonal(f) == 0)
		return qp_errf(QP_EGEOM, err, errlen,
		             "feature %zu: geometry.type: %s is not accepted; "
		             "must be Polygon or MultiPolygon",
		             i, qp_excerpt(json_string_value(gt), json_string_length(gt), b, sizeof b));
	snprintf(path, sizeof path, "feature %zu: geometry", i);
	o.path = path;
	/* No declared area nor accuracy: only the geometry rules apply. */
	return qp_geo_check_plot(g, geom, NAN, NAN, &o, &res, NULL, err,
	                         errlen);
}

qp_plotcheck_opts qp_plotcheck_opts_default(void)
{
	qp_plotcheck_opts o = {.min_overlap_pct = 5, .dup_pct = 90};
	return o;
}

int qp_layer_parse(qp_geo *g, const char *text, size_t len, json_t **features,
                   char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = NULL, *fs, *f;
	const json_t *t;
	size_t i, total = 0;
	int rc = 0;

	if (g == NULL || (text == NULL && len > 0) || features == NULL)
		return qp_errf(QP_EINVAL, err, errlen, "invalid arguments");
	if (len > QP_LAYER_MAX_BYTES)
		return qp_errf(QP_ETOOBIG, err, errlen,
		             "layer larger than %zu MiB",
		             QP_LAYER_MAX_BYTES >> 20);
	root = json_loadb(text != NULL ? text : "", len, JSON_REJECT_DUPLICATES,
	                  &je);
	if (root == NULL) {
		/* jansson quotes the input near the fault: keep the message
		 * one printable line. */
		for (char *q = je.text; *q != '\0'; q++)
			if ((unsigned char)*q < 0x20 ||
			    (unsigned char)*q >= 0x7f)
				*q = '?';
		return qp_errf(QP_EPROTO, err, errlen,
		             "not JSON: %s (line %d, column %d)", je.text,
		             je.line, je.column);
	}
	t = json_object_get(root, "type");
	if (!json_is_object(root) || !json_is_string(t) ||
	    strcmp(json_string_value(t), "FeatureCollection") != 0) {
		rc = qp_errf(QP_EPROTO, err, errlen,
		           "not a GeoJSON FeatureCollection");
		goto out;
	}
	fs = json_object_get(root, "features");
	if (!json_is_array(fs)) {
		rc =
		    qp_errf(QP_EPROTO, err, errlen, "features: must be an array");
		goto out;
	}
	if (json_array_size(fs) > QP_LAYER_MAX_FEATURES) {
		rc = qp_errf(QP_ETOOBIG, err, errlen,
		           "too many features (%zu; limit %d)",
		           json_array_size(fs), QP_LAYER_MAX_FEATURES);
		goto out;
	}
	/* Every size is known before any geometry is built. */
	json_array_foreach(fs, i, f)
	{
		int depth = polygonal(f);
		if (depth == 0)
			continue;
		total +=
		    positions(json_object_get(json_object_get(f, "geometry"),
		                              "coordinates"),
		              depth);
		if (total > QP_LAYER_MAX_POSITIONS) {
			rc = qp_errf(QP_ETOOBIG, err, errlen,
			           "feature %zu: too many positions in the "
			           "layer (limit %d)",
			           i, QP_LAYER_MAX_POSITIONS);
			goto out;
		}
	}
	json_array_foreach(fs, i, f)
	{
		if ((rc = check_feature(g, f, i, err, errlen)) != 0)
			goto out;
	}
	*features = json_incref(fs);
out:
	json_decref(root);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Findings. */

static finding *add(run *r, int type, size_t a, size_t b)
{
	finding *f;
	if (r->nf == r->capf) {
		r->capf = r->capf ? r->capf * 2 : 64;
		r->f = qp_xrealloc(r->f, r->capf * sizeof *r->f);
	}
	f = &r->f[r->nf++];
	memset(f, 0, sizeof *f);
	f->type = type;
	/* A pair is written in id order. */
	if (b != NO_PLOT && strcmp(r->p[a].id, r->p[b].id) > 0) {
		size_t t = a;
		a = b;
		b = t;
	}
	f->a = a;
	f->b = b;
	return f;
}

static int cmp_finding(const void *x, const void *y, void *ctx)
{
	const finding *a = x, *b = y;
	const run *r = ctx;
	const pplot *sort_plots = r->p;
	const qp_layer *sort_layers = r->layers;
	int c;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if ((c = strcmp(sort_plots[a->a].id, sort_plots[b->a].id)) != 0)
		return c;
	if (a->b != b->b) {
		if (a->b == NO_PLOT || b->b == NO_PLOT)
			return a->b == NO_PLOT ? -1 : 1;
		if ((c = strcmp(sort_plots[a->b].id, sort_plots[b->b].id)) != 0)
			return c;
	}
	if (a->type == F_FOREST_LOSS) {
		if ((c = strcmp(sort_layers[a->layer].name,
		                sort_layers[b->layer].name)) != 0)
			return c;
		if (a->layer != b->layer)
			return a->layer < b->layer ? -1 : 1;
		if (a->feature != b->feature)
			return a->feature < b->feature ? -1 : 1;
	}
	return 0;
}

/* v rounded to 1/scale: the output carries what is meaningful (1e-6 ha is
 * 1 cm2) rather than the last bits of a double. */
static double rounded(double v, double scale)
{
	return round(v * scale) / scale;
}

static json_t *producer_json(const pplot *p)
{
	return p->producer != NULL ? json_incref((json_t *)p->producer)
	                           : json_null();
}

static json_t *to_json(const run *r, const finding *f)
{
	const pplot *a = &r->p[f->a];
	json_t *o = json_object(), *plots = json_array(), *prod = json_array();
	if (o == NULL || plots == NULL || prod == NULL)
		goto fail;
	json_array_append_new(plots, json_string(a->id));
	json_array_append_new(prod, producer_json(a));
	if (f->b != NO_PLOT) {
		json_array_append_new(plots, json_string(r->p[f->b].id));
		json_array_append_new(prod, producer_json(&r->p[f->b]));
	}
	if (json_object_set_new(o, "type", json_string(type_name[f->type])) ||
	    json_object_set_new(o, "plots", plots) ||
	    json_object_set_new(o, "producers", prod))
		goto fail_o;
	if (f->type == F_GEOMETRY) {
		if (json_object_set_new(o, "reason", json_string(f->reason)))
			goto fail_o;
		return o;
	}
	if (json_object_set_new(o, "overlap_ha",
	                        json_real(rounded(f->ha, 1e6))) ||
	    json_object_set_new(o, "overlap_pct",
	                        json_real(rounded(f->pct, 1e4))))
		goto fail_o;
	if (f->type == F_FOREST_LOSS &&
	    (json_object_set_new(o, "layer",
	                         json_string(r->layers[f->layer].name)) ||
	     json_object_set_new(o, "feature",
	                         json_integer((json_int_t)f->feature))))
		goto fail_o;
	return o;
fail:
	json_decref(plots);
	json_decref(prod);
fail_o:
	json_decref(o);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Geometry. */

/* A record's number, or NAN when absent or not a finite value >= 0 (the
 * schema bounds them; a bad one only loses its rule). */
static double num_or_nan(const json_t *rec, const char *name)
{
	const json_t *v = json_object_get(rec, name);
	double d = json_is_number(v) ? json_number_value(v) : NAN;
	return isfinite(d) && d >= 0 ? d : NAN;
}

/* Read plot i: id, producer, and its geometry checked and built; a failing
 * geometry becomes a finding (when the plot is wanted). */
static void load_plot(run *r, const json_t *rec, const json_t *only)
{
	pplot *p = &r->p[r->n];
	const json_t *geom = json_object_get(rec, "geometry");
	qp_geo_opts o = qp_geo_opts_default();
	qp_geo_result res;
	char err[ERR_LEN];
	int rc;

	p->id = json_string_value(json_object_get(rec, "id"));
	if (p->id == NULL)
		return; /* nothing could name it in a finding */
	p->producer = json_object_get(rec, "producer");
	if (!json_is_string(p->producer))
		p->producer = NULL;
	p->wanted = only == NULL || json_object_get(only, p->id) != NULL;
	r->n++;
	o.path = "plot.geometry";
	if (geom == NULL) {
		rc = QP_EGEOM;
		snprintf(err, sizeof err, "plot.geometry: required");
	} else {
		rc = qp_geo_check_geos(r->g, geom, num_or_nan(rec, "area_ha"),
		                       num_or_nan(rec, "accuracy_m"), &o, &res,
		                       &p->geom, err, sizeof err);
	}
	if (rc != 0) {
		if (p->wanted)
			add(r, F_GEOMETRY, r->n - 1, NO_PLOT)->reason =
			    qp_xstrdup(err);
		p->geom = NULL;
		return;
	}
	p->area_ha = res.area_ha;
	p->point = (res.flags & QP_GEO_F_POINT) != 0;
	if (p->point) {
		double x = 0, y = 0;
		GEOSGeomGetX_r(r->ctx, p->geom, &x);
		GEOSGeomGetY_r(r->ctx, p->geom, &y);
		p->qx = llround(x * 1e6);
		p->qy = llround(y * 1e6);
	}
}

static void on_candidate(void *item, void *ud)
{
	run *r = ud;
	if (r->ncand == r->capcand) {
		r->capcand = r->capcand ? r->capcand * 2 : 32;
		r->cand = qp_xrealloc(r->cand, r->capcand * sizeof *r->cand);
	}
	r->cand[r->ncand++] = (size_t)((pplot *)item - r->p);
}

/* Geodesic area (ha) of a ∩ b into *ha.  OverlayNG is robust, but should
 * it still fail, the overlay is retried snapped to a 1e-9 degree grid
 * (0.1 mm), which changes no plot-sized area measurably. */
static int intersect_ha(run *r, const GEOSGeometry *a, const GEOSGeometry *b,
                        double *ha)
{
	GEOSGeometry *ix = GEOSIntersection_r(r->ctx, a, b);
	int rc;
	if (ix == NULL)
		ix = GEOSIntersectionPrec_r(r->ctx, a, b, 1e-9);
	if (ix == NULL)
		return QP_EGEOM;
	rc = qp_geo_geos_area_ha(r->g, ix, ha);
	GEOSGeom_destroy_r(r->ctx, ix);
	return rc;
}

static const GEOSPreparedGeometry *prepared(run *r, pplot *p)
{
	if (p->prep == NULL)
		p->prep = GEOSPrepare_r(r->ctx, p->geom);
	return p->prep;
}

/* Polygon plots i and j whose envelopes meet: a duplicate (any producers),
 * or an overlap (different producers) above the threshold. */
static int pair(run *r, size_t i, size_t j, const qp_plotcheck_opts *o)
{
	pplot *a = &r->p[i], *b = &r->p[j];
	const GEOSPreparedGeometry *pa = prepared(r, a);
	double ix, small;
	finding *f;
	char hit;
	int rc, same;

	if (pa == NULL)
		return QP_EGEOM;
	hit = GEOSPreparedIntersects_r(r->ctx, pa, b->geom);
	if (hit == 2)
		return QP_EGEOM;
	if (hit == 0)
		return 0;
	if ((rc = intersect_ha(r, a->geom, b->geom, &ix)) != 0)
		return rc;
	small = fmin(a->area_ha, b->area_ha);
	if (!(ix > 0) || !(small > 0))
		return 0;
	same = a->producer != NULL && b->producer != NULL &&
	       json_equal(a->producer, b->producer);
	if (ix * 100 >= o->dup_pct * a->area_ha &&
	    ix * 100 >= o->dup_pct * b->area_ha) {
		f = add(r, F_DUPLICATE, i, j);
	} else if (!same && ix * 100 > o->min_overlap_pct * small) {
		f = add(r, F_OVERLAP, i, j);
	} else {
		return 0;
	}
	f->ha = ix;
	f->pct = fmin(100.0, 100.0 * ix / small);
	return 0;
}

static int overlaps(run *r, GEOSSTRtree *tree, const qp_plotcheck_opts *o)
{
	int rc;
	for (size_t i = 0; i < r->n; i++) {
		pplot *a = &r->p[i];
		if (!a->wanted || a->geom == NULL || a->point)
			continue;
		r->ncand = 0;
		GEOSSTRtree_query_r(r->ctx, tree, a->geom, on_candidate, r);
		for (size_t k = 0; k < r->ncand; k++) {
			size_t j = r->cand[k];
			const pplot *b = &r->p[j];
			/* Each pair once: by the lower index when both are
			 * wanted, else by the wanted one. */
			if (j == i || b->point || (b->wanted && j < i))
				continue;
			if ((rc = pair(r, i, j, o)) != 0)
				return rc;
		}
	}
	return 0;
}

static int cmp_point(const void *x, const void *y, void *ctx)
{
	const pplot *base = ctx;
	const pplot *a = &base[*(const size_t *)x];
	const pplot *b = &base[*(const size_t *)y];
	if (a->qx != b->qx)
		return a->qx < b->qx ? -1 : 1;
	if (a->qy != b->qy)
		return a->qy < b->qy ? -1 : 1;
	return strcmp(a->id, b->id);
}

/* Points at the same coordinates (to 6 decimals) are the same land: a
 * duplicate with no area, the whole of each point. */
static void point_duplicates(run *r)
{
	size_t *idx = qp_xcalloc(r->n ? r->n : 1, sizeof *idx), m = 0;
	for (size_t i = 0; i < r->n; i++)
		if (r->p[i].geom != NULL && r->p[i].point)
			idx[m++] = i;
	if (m > 1)
		qsort_r(idx, m, sizeof *idx, cmp_point, r->p);
	for (size_t s = 0, e; s < m; s = e) {
		for (e = s + 1; e < m && r->p[idx[e]].qx == r->p[idx[s]].qx &&
		                r->p[idx[e]].qy == r->p[idx[s]].qy;
		     e++)
			;
		for (size_t x = s; x < e; x++)
			for (size_t y = x + 1; y < e; y++) {
				finding *f;
				if (!r->p[idx[x]].wanted &&
				    !r->p[idx[y]].wanted)
					continue;
				f = add(r, F_DUPLICATE, idx[x], idx[y]);
				f->ha = 0;
				f->pct = 100;
			}
	}
	free(idx);
}

/* Feature k of layer l against every wanted plot whose envelope meets it:
 * a polygon plot counts when the intersection has area, a point when it
 * lies in the feature (its boundary included). */
static int feature(run *r, GEOSSTRtree *tree, size_t l, size_t k,
                   const json_t *feat)
{
	qp_geo_opts o = qp_geo_opts_default();
	qp_geo_result res;
	GEOSGeometry *fg = NULL;
	const GEOSPreparedGeometry *fp = NULL;
	int rc = 0;

	o.path = "feature";
	/* A feature that fails qp_layer_parse's checks is ignored: the
	 * layer was not parsed with it (see plotcheck.h). */
	if (polygonal(feat) == 0 ||
	    qp_geo_check_geos(r->g, json_object_get(feat, "geometry"), NAN, NAN,
	                      &o, &res, &fg, NULL, 0) != 0)
		return 0;
	r->ncand = 0;
	GEOSSTRtree_query_r(r->ctx, tree, fg, on_candidate, r);
	for (size_t c = 0; c < r->ncand; c++) {
		pplot *p = &r->p[r->cand[c]];
		double ix = 0;
		char hit;
		finding *f;
		if (!p->wanted)
			continue;
		if (fp == NULL && (fp = GEOSPrepare_r(r->ctx, fg)) == NULL) {
			rc = QP_EGEOM;
			goto out;
		}
		if ((hit = GEOSPreparedIntersects_r(r->ctx, fp, p->geom)) ==
		    2) {
			rc = QP_EGEOM;
			goto out;
		}
		if (hit == 0)
			continue;
		if (!p->point) {
			/* Inside altogether: the plot is the intersection. */
			hit =
			    GEOSPreparedContainsProperly_r(r->ctx, fp, p->geom);
			if (hit == 1)
				ix = p->area_ha;
			else if ((rc = intersect_ha(r, p->geom, fg, &ix)) != 0)
				goto out;
			if (!(ix > 0))
				continue;
		}
		f = add(r, F_FOREST_LOSS, r->cand[c], NO_PLOT);
		f->layer = l;
		f->feature = k;
		f->ha = ix;
		f->pct = p->point || !(p->area_ha > 0)
		             ? 100
		             : fmin(100.0, 100.0 * ix / p->area_ha);
	}
out:
	if (fp != NULL)
		GEOSPreparedGeom_destroy_r(r->ctx, fp);
	GEOSGeom_destroy_r(r->ctx, fg);
	return rc;
}

static int opts_ok(const qp_plotcheck_opts *o)
{
	return isfinite(o->min_overlap_pct) && o->min_overlap_pct >= 0 &&
	       o->min_overlap_pct <= 100 && isfinite(o->dup_pct) &&
	       o->dup_pct > 0 && o->dup_pct <= 100;
}

int qp_plotcheck_run(qp_geo *g, const json_t *plots, const qp_layer *layers,
                     size_t nlayers, const json_t *only,
                     const qp_plotcheck_opts *o, json_t **findings)
{
	qp_plotcheck_opts def = qp_plotcheck_opts_default();
	run r = {0};
	GEOSSTRtree *tree = NULL;
	json_t *out = NULL, *v;
	size_t i;
	int rc = 0;

	if (o == NULL)
		o = &def;
	if (g == NULL || !json_is_array(plots) || findings == NULL ||
	    (nlayers > 0 && layers == NULL) ||
	    (only != NULL && !json_is_object(only)) || !opts_ok(o))
		return QP_EINVAL;
	for (i = 0; i < nlayers; i++)
		if (layers[i].name == NULL ||
		    !json_is_array(layers[i].features))
			return QP_EINVAL;
	r.g = g;
	r.ctx = qp_geo_ctx(g);
	r.layers = layers;
	r.p = qp_xcalloc(json_array_size(plots) + 1, sizeof *r.p);
	json_array_foreach(plots, i, v)
	{
		if (json_is_object(v))
			load_plot(&r, v, only);
	}

	if ((tree = GEOSSTRtree_create_r(r.ctx, TREE_NODE)) == NULL) {
		rc = QP_ENOMEM;
		goto out;
	}
	for (i = 0; i < r.n; i++)
		if (r.p[i].geom != NULL)
			GEOSSTRtree_insert_r(r.ctx, tree, r.p[i].geom, &r.p[i]);
	if ((rc = overlaps(&r, tree, o)) != 0)
		goto out;
	point_duplicates(&r);
	for (size_t l = 0; l < nlayers; l++) {
		const json_t *feat;
		json_array_foreach(layers[l].features, i, feat)
		{
			if ((rc = feature(&r, tree, l, i, feat)) != 0)
				goto out;
		}
	}

	if (r.nf > 1)
		qsort_r(r.f, r.nf, sizeof *r.f, cmp_finding, &r);
	if ((out = json_array()) == NULL) {
		rc = QP_ENOMEM;
		goto out;
	}
	for (i = 0; i < r.nf; i++) {
		json_t *f = to_json(&r, &r.f[i]);
		if (f == NULL || json_array_append_new(out, f) != 0) {
			rc = QP_ENOMEM;
			goto out;
		}
	}
	*findings = out;
	out = NULL;
out:
	json_decref(out);
	if (tree != NULL)
		GEOSSTRtree_destroy_r(r.ctx, tree);
	for (i = 0; i < r.n; i++) {
		if (r.p[i].prep != NULL)
			GEOSPreparedGeom_destroy_r(r.ctx, r.p[i].prep);
		if (r.p[i].geom != NULL)
			GEOSGeom_destroy_r(r.ctx, r.p[i].geom);
	}
	for (i = 0; i < r.nf; i++)
		free(r.f[i].reason);
	free(r.f);
	free(r.cand);
	free(r.p);
	return rc;
}
