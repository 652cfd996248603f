/*
 * plotcheck.h - the hub's plot review: plots of different producers that
 * overlap, the same land recorded twice, and plots that intersect a
 * reference layer (post-2020-12-31 forest loss).  GEOS finds candidate
 * pairs through an STRtree over envelopes and computes intersections; PROJ
 * measures their geodesic area.  No I/O: the caller supplies the records
 * and layers.
 */
#ifndef QP_PLOTCHECK_H
#define QP_PLOTCHECK_H

#include <jansson.h>
#include <stddef.h>

#include "geo.h"

#define QP_LAYER_MAX_FEATURES 1000000

typedef struct qp_plotcheck_opts {
	/* Overlap finding: intersection above this percent of the smaller
	 * plot's area (default 5). */
	double min_overlap_pct;
	/* Duplicate finding: intersection at least this percent of each
	 * plot's area (default 90). */
	double dup_pct;
} qp_plotcheck_opts;

qp_plotcheck_opts qp_plotcheck_opts_default(void);

/* A reference layer: its name and its features (a JSON array of GeoJSON
 * Feature objects whose geometry is a Polygon or MultiPolygon; borrowed). */
typedef struct qp_layer {
	const char *name;
	const json_t *features;
} qp_layer;

/* Check a layer's GeoJSON text (a FeatureCollection of Polygon and
 * MultiPolygon features, at most QP_LAYER_MAX_FEATURES, each a valid
 * geometry).  On success returns 0 and *features gets a new reference to
 * the features array.  On failure returns QP_EPROTO (not JSON / not a
 * FeatureCollection), QP_ETOOBIG or QP_EGEOM, with one line in err naming
 * the feature index and the reason ("feature 12: geometry: ring not
 * closed"). */
int qp_layer_parse(qp_geo *g, const char *text, size_t len, json_t **features,
		   char *err, size_t errlen);

/* Review plots (a JSON array of plot records: id, producer, geometry;
 * borrowed) against each other and against layers[0..nlayers).  When only
 * is non-NULL (a JSON object whose keys are plot ids), only findings that
 * involve at least one of those plots are reported.  On success returns 0
 * and *findings gets a new array of
 *   {"type": "overlap"|"duplicate"|"forest_loss", "plots": [a, b?],
 *    "producers": [pa, pb?], "overlap_ha": x, "overlap_pct": y,
 *    "layer": name?, "feature": index?}
 * sorted by type, then plot ids.  A plot whose stored geometry no longer
 * passes the checks gives {"type": "geometry", "plots": [a],
 * "producers": [pa], "reason": text}.  Errors: QP_EINVAL, QP_ENOMEM. */
int qp_plotcheck_run(qp_geo *g, const json_t *plots, const qp_layer *layers,
		     size_t nlayers, const json_t *only,
		     const qp_plotcheck_opts *o, json_t **findings);

#endif
