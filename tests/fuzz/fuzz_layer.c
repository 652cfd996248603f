/*
 * fuzz_layer.c - libFuzzer target for qp_layer_parse and qp_plotcheck_run
 * (proto/plotcheck.c).
 *
 * Reads arbitrary bytes as a reference layer.  Invariants: nothing crashes
 * or leaks; the result is 0, QP_EPROTO, QP_ETOOBIG or QP_EGEOM; a refusal
 * writes one non-empty line of printable ASCII, leaves the output alone,
 * and gives the same code with no error buffer or a tiny one (cut, never
 * overrun); an accepted layer is an array of Features whose geometry is a
 * Polygon or a MultiPolygon.  An accepted layer is then reviewed against
 * plots made of its own features (producers alternating, so overlaps
 * between them count) and a point: the review succeeds, every finding is
 * well formed (known type, one or two plots with a producer each, areas
 * finite and >= 0, percentages within 0-100, a forest-loss finding naming
 * the layer and an existing feature), and reviewing the plots in reverse
 * order gives the same findings.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "plotcheck.h"

#define MAX_INPUT 65536

static void check_finding(const json_t *f, size_t nplots, size_t nfeatures)
{
	const char *type = json_string_value(json_object_get(f, "type"));
	const json_t *plots = json_object_get(f, "plots");
	const json_t *prods = json_object_get(f, "producers");
	size_t n = json_array_size(plots);
	double ha, pct;

	if (type == NULL || n < 1 || n > 2 || json_array_size(prods) != n)
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *id = json_string_value(json_array_get(plots, i));
		if (id == NULL || (size_t)atol(id + 1) >= nplots)
			abort();
	}
	if (strcmp(type, "geometry") == 0) {
		/* The plots are the layer's own features, checked valid. */
		abort();
	}
	ha = json_number_value(json_object_get(f, "overlap_ha"));
	pct = json_number_value(json_object_get(f, "overlap_pct"));
	if (!json_is_number(json_object_get(f, "overlap_ha")) ||
	    !isfinite(ha) || ha < 0 || !(pct >= 0 && pct <= 100))
		abort();
	if (strcmp(type, "forest_loss") == 0) {
		json_int_t k =
		    json_integer_value(json_object_get(f, "feature"));
		const char *l = json_string_value(json_object_get(f, "layer"));
		if (n != 1 || l == NULL || strcmp(l, "fuzz") != 0 || k < 0 ||
		    (size_t)k >= nfeatures)
			abort();
	} else if (strcmp(type, "overlap") == 0 ||
	           strcmp(type, "duplicate") == 0) {
		if (n != 2 ||
		    strcmp(json_string_value(json_array_get(plots, 0)),
		           json_string_value(json_array_get(plots, 1))) >= 0)
			abort();
	} else {
		abort();
	}
}

/* Review the plots made of the layer's features, and a point. */
static void review(qp_geo *g, json_t *features)
{
	json_t *plots = json_array(), *rev = json_array(), *f1 = NULL,
	       *f2 = NULL, *feat;
	qp_layer layer = {"fuzz", features};
	size_t i;
	char id[32];

	json_array_foreach(features, i, feat)
	{
		snprintf(id, sizeof id, "p%06zu", i);
		json_array_append_new(
		    plots, json_pack("{s:s, s:s, s:O}", "id", id, "producer",
		                     i % 2 ? "odd" : "even", "geometry",
		                     json_object_get(feat, "geometry")));
	}
	snprintf(id, sizeof id, "p%06zu", i);
	json_array_append_new(plots, json_pack("{s:s, s:s, s:{s:s, s:[f,f]}}",
	                                       "id", id, "producer", "point",
	                                       "geometry", "type", "Point",
	                                       "coordinates", -74.9, -10.9));
	for (i = json_array_size(plots); i-- > 0;)
		json_array_append(rev, json_array_get(plots, i));
	if (qp_plotcheck_run(g, plots, &layer, 1, NULL, NULL, &f1) != 0 ||
	    qp_plotcheck_run(g, rev, &layer, 1, NULL, NULL, &f2) != 0 ||
	    !json_equal(f1, f2))
		abort();
	json_array_foreach(f1, i, feat)
	{
		check_finding(feat, json_array_size(plots),
		              json_array_size(features));
	}
	json_decref(f1);
	json_decref(f2);
	json_decref(rev);
	json_decref(plots);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	qp_geo *g = NULL;
	json_t *fs, *feat;
	char err[256], tiny[12];
	size_t i;
	int rc;

	if (size > MAX_INPUT)
		return 0;
	if (qp_geo_new(&g) != 0)
		abort();
	err[0] = '\0';
	fs = (json_t *)&err; /* sentinel: must be replaced or left alone */
	rc = qp_layer_parse(g, (const char *)data, size, &fs, err, sizeof err);
	if (rc != 0 && rc != QP_EPROTO && rc != QP_ETOOBIG && rc != QP_EGEOM)
		abort();
	if (qp_layer_parse(g, (const char *)data, size, NULL, NULL, 0) !=
	    QP_EINVAL)
		abort();
	if (rc != 0) {
		json_t *other = (json_t *)&err;
		if (fs != (json_t *)&err || err[0] == '\0')
			abort();
		/* One printable line: no control bytes (text from the
		 * input may be UTF-8, as names are). */
		for (const char *q = err; *q != '\0'; q++)
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				abort();
		if (qp_layer_parse(g, (const char *)data, size, &other, tiny,
		                   sizeof tiny) != rc ||
		    strlen(tiny) >= sizeof tiny || other != (json_t *)&err ||
		    qp_layer_parse(g, (const char *)data, size, &other, NULL,
		                   0) != rc)
			abort();
		goto out;
	}
	if (!json_is_array(fs))
		abort();
	json_array_foreach(fs, i, feat)
	{
		const char *t = json_string_value(
		    json_object_get(json_object_get(feat, "geometry"), "type"));
		if (t == NULL || (strcmp(t, "Polygon") != 0 &&
		                  strcmp(t, "MultiPolygon") != 0))
			abort();
	}
	review(g, fs);
	json_decref(fs);
out:
	qp_geo_free(g);
	return 0;
}
