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
#define QP_LAYER_MAX_BYTES ((size_t)1 << 30) /* layer file (1 GiB) */
#define QP_LAYER_MAX_POSITIONS 10000000     /* positions in one layer */

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
 * "producers": [pa], "reason": text}.  Errors: QP_EINVAL, QP_ENOMEM.
 *
 * Details: a pair is written in plot id order, producers alongside (null
 * for a record without one); records without a string id are skipped.
 * overlap_ha is geodesic, rounded to 1e-6 ha, overlap_pct to 1e-4.  Two
 * Points at the same coordinates (to 6 decimals) are a duplicate with
 * overlap_ha 0 and overlap_pct 100; a Point has no area, so it never
 * overlaps a polygon.  For forest_loss, overlap_pct is of the plot's own
 * area, "feature" the index in that layer's features, and a Point inside a
 * feature (its boundary included) counts with overlap_ha 0, overlap_pct
 * 100; a polygon plot only touching a feature does not count.  Layer
 * features that fail qp_layer_parse's checks are ignored.  o NULL means
 * the defaults; options out of range (NaN, below 0, above 100, dup_pct 0)
 * are QP_EINVAL.  Should GEOS fail on an intersection of two valid
 * geometries (even after a retry on a 1e-9 degree grid) the review stops
 * with QP_EGEOM. */
int qp_plotcheck_run(qp_geo *g, const json_t *plots, const qp_layer *layers,
		     size_t nlayers, const json_t *only,
		     const qp_plotcheck_opts *o, json_t **findings);

#endif
