/*
 * lots.c - mass balance of lots (see lots.h).
 */
#include "lots.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "schema.h"

/* Upper bounds of real conversions (kg out per kg in). */
static const struct {
	const char *from, *to;
	double yield;
} builtin[] = {
	{"coffee-cherry", "coffee-parchment", 0.25},
	{"coffee-cherry", "coffee-green", 0.21},
	{"coffee-parchment", "coffee-green", 0.85},
	{"cacao-wet", "cacao-dry", 0.45},
};

qp_lots_cfg qp_lots_cfg_default(void)
{
	qp_lots_cfg c;
	size_t i;

	memset(&c, 0, sizeof c);
	c.tolerance = QP_LOTS_TOLERANCE;
	for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
		snprintf(c.conv[i].from, sizeof c.conv[i].from, "%s",
			 builtin[i].from);
		snprintf(c.conv[i].to, sizeof c.conv[i].to, "%s", builtin[i].to);
		c.conv[i].yield = builtin[i].yield;
	}
	c.n = i;
	return c;
}

/* Whether p is one of the schema's lot products. */
static int is_product(const char *p, size_t n)
{
	const qp_field *f = qp_schema_field(qp_schema_kind("lot"), "product");

	for (size_t i = 0; f != NULL && f->values[i] != NULL; i++)
		if (strlen(f->values[i]) == n && strncmp(f->values[i], p, n) == 0)
			return 1;
	return 0;
}

/* Set (replace or add) the conversion from>to of c. */
static int set_conv(qp_lots_cfg *c, const char *key, double y, char *err,
		    size_t errlen)
{
	const char *gt = strchr(key, '>');
	size_t i;

	if (gt == NULL || !is_product(key, (size_t)(gt - key)) ||
	    !is_product(gt + 1, strlen(gt + 1))) {
		snprintf(err, errlen, "lots.yields.%.80s: must be "
			 "\"PRODUCT>PRODUCT\" with lot products", key);
		return QP_EINVAL;
	}
	if (!(y > 0 && y <= 10)) {
		snprintf(err, errlen, "lots.yields.%.80s: must be a number in "
			 "(0, 10]", key);
		return QP_EINVAL;
	}
	for (i = 0; i < c->n; i++)
		if (strncmp(c->conv[i].from, key, (size_t)(gt - key)) == 0 &&
		    c->conv[i].from[gt - key] == '\0' &&
		    strcmp(c->conv[i].to, gt + 1) == 0)
			break;
	if (i == QP_LOTS_MAX_YIELDS) {
		snprintf(err, errlen, "lots.yields: more than %d conversions",
			 QP_LOTS_MAX_YIELDS);
		return QP_EINVAL;
	}
	snprintf(c->conv[i].from, sizeof c->conv[i].from, "%.*s",
		 (int)(gt - key), key);
	snprintf(c->conv[i].to, sizeof c->conv[i].to, "%s", gt + 1);
	c->conv[i].yield = y;
	if (i == c->n)
		c->n++;
	return 0;
}

int qp_lots_cfg_parse(const json_t *o, qp_lots_cfg *cfg, char *err,
		      size_t errlen)
{
	qp_lots_cfg c = qp_lots_cfg_default();
	const json_t *t, *ys, *v;
	const char *key;
	int rc;

	if (cfg == NULL || err == NULL || errlen == 0)
		return QP_EINVAL;
	if (o != NULL && !json_is_object(o)) {
		snprintf(err, errlen, "lots: must be an object");
		return QP_EINVAL;
	}
	if ((t = json_object_get(o, "tolerance_pct")) != NULL) {
		if (!json_is_number(t) || !(json_number_value(t) >= 0) ||
		    json_number_value(t) > 50) {
			snprintf(err, errlen, "lots.tolerance_pct: must be a "
				 "number from 0 to 50");
			return QP_EINVAL;
		}
		c.tolerance = json_number_value(t) / 100;
	}
	if ((ys = json_object_get(o, "yields")) != NULL) {
		if (!json_is_object(ys)) {
			snprintf(err, errlen, "lots.yields: must be an object");
			return QP_EINVAL;
		}
		json_object_foreach((json_t *)ys, key, v) {
			if ((rc = set_conv(&c, key,
					   json_is_number(v) ? json_number_value(v)
							     : -1,
					   err, errlen)) != 0)
				return rc;
		}
	}
	*cfg = c;
	return 0;
}

double qp_lots_yield(const qp_lots_cfg *cfg, const char *from, const char *to)
{
	qp_lots_cfg def;
	size_t i;

	if (from == NULL || to == NULL)
		return 0;
	if (cfg == NULL) {
		def = qp_lots_cfg_default();
		cfg = &def;
	}
	for (i = 0; i < cfg->n; i++)
		if (strcmp(cfg->conv[i].from, from) == 0 &&
		    strcmp(cfg->conv[i].to, to) == 0)
			return cfg->conv[i].yield;
	if (strcmp(from, to) == 0 || strcmp(from, "other") == 0 ||
	    strcmp(to, "other") == 0)
		return 1;
	return 0;
}

static int balanced_type(const char *type)
{
	return type != NULL &&
	       (strcmp(type, "merge") == 0 || strcmp(type, "split") == 0 ||
		strcmp(type, "transform") == 0);
}

static double qty_sum(const json_t *list)
{
	const json_t *e;
	double sum = 0;
	size_t i;

	json_array_foreach(list, i, e)
		sum += json_number_value(json_object_get(e, "kg"));
	return sum;
}

double qp_lots_input_kg(const json_t *event, const char *id)
{
	const json_t *e;
	double kg = 0;
	size_t i;

	if (event == NULL || id == NULL)
		return 0;
	json_array_foreach(json_object_get(event, "inputs"), i, e) {
		const char *lot = json_string_value(json_object_get(e, "lot"));
		if (lot != NULL && strcasecmp(lot, id) == 0)
			kg += json_number_value(json_object_get(e, "kg"));
	}
	return kg;
}

int qp_lots_event_check(const qp_lots_cfg *cfg, const json_t *event,
			qp_lot_lookup lookup, void *ctx, double *max_out,
			char *err, size_t errlen)
{
	qp_lots_cfg def;
	const json_t *ins, *outs, *e, *o;
	const char *type, *pin, *pout, *best = NULL;
	double in_kg, out_kg, bound = 0, kg, y, ybest;
	size_t i, j;

	if (event == NULL || lookup == NULL)
		return QP_EINVAL;
	if (cfg == NULL) {
		def = qp_lots_cfg_default();
		cfg = &def;
	}
	type = json_string_value(json_object_get(event, "type"));
	ins = json_object_get(event, "inputs");
	outs = json_object_get(event, "outputs");
	if (!balanced_type(type) || !json_is_array(ins) || !json_is_array(outs))
		return 0;
	in_kg = qty_sum(ins);
	out_kg = qty_sum(outs);
	/* Each input may become whichever output product it yields most of;
	 * that bounds the outputs from above whatever the real split is. */
	json_array_foreach(ins, i, e) {
		const char *id = json_string_value(json_object_get(e, "lot"));
		if (id == NULL || lookup(ctx, id, &pin, &kg) != 0)
			return 0; /* the reference check names it */
		ybest = 0;
		json_array_foreach(outs, j, o) {
			const char *oid =
			    json_string_value(json_object_get(o, "lot"));
			if (oid == NULL || lookup(ctx, oid, &pout, &kg) != 0)
				return 0;
			y = qp_lots_yield(cfg, pin, pout);
			if (y > ybest || best == NULL) {
				ybest = y;
				best = pout;
			}
		}
		bound += json_number_value(json_object_get(e, "kg")) * ybest;
	}
	bound *= 1 + cfg->tolerance;
	if (max_out != NULL)
		*max_out = bound;
	/* A rounding margin of a gram keeps equal sums from failing. */
	if (out_kg <= bound + 0.001)
		return 0;
	if (err != NULL && errlen > 0)
		snprintf(err, errlen,
			 "lot_event.outputs: %.10g kg out of %.10g kg in exceeds "
			 "the yield: at most %.10g kg of %s",
			 out_kg, in_kg, bound, best != NULL ? best : "output");
	return QP_EVALID;
}

/* ---- review --------------------------------------------------------- */

typedef struct review {
	const json_t *byid; /* lot id -> lot record */
} review;

static int lot_lookup(void *ctx, const char *id, const char **product,
		      double *kg)
{
	const review *r = ctx;
	const json_t *lot = json_object_get(r->byid, id);

	if (lot == NULL)
		return QP_ENOTFOUND;
	*product = json_string_value(json_object_get(lot, "product"));
	*kg = json_number_value(json_object_get(lot, "kg"));
	return 0;
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s != NULL ? s : "";
}

/* Each lot's use: {"kg": consumed, "events": [ids]} by lot id. */
static json_t *uses(const json_t *events)
{
	json_t *use = json_object(), *u, *e, *in;
	size_t i, j;

	json_array_foreach(events, i, e) {
		json_array_foreach(json_object_get(e, "inputs"), j, in) {
			const char *lot = str(in, "lot");
			double kg = json_number_value(json_object_get(in, "kg"));
			if ((u = json_object_get(use, lot)) == NULL) {
				u = json_pack("{s:f, s:[]}", "kg", 0.0, "events");
				json_object_set_new(use, lot, u);
			}
			json_object_set_new(u, "kg",
			    json_real(json_number_value(json_object_get(u, "kg")) + kg));
			json_array_append(json_object_get(u, "events"),
					  json_object_get(e, "id"));
		}
	}
	return use;
}

static int finding_cmp(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(str(x, "type"), str(y, "type"));

	if (c == 0)
		c = strcmp(str(x, "code"), str(y, "code"));
	if (c == 0)
		c = strcmp(str(x, "event"), str(y, "event"));
	if (c == 0)
		c = strcmp(str(x, "lot"), str(y, "lot"));
	return c;
}

static json_t *sorted(json_t *arr)
{
	size_t n = json_array_size(arr), i;
	json_t **v = calloc(n ? n : 1, sizeof(*v)), *out = json_array();

	if (v == NULL)
		abort();
	for (i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	qsort(v, n, sizeof(*v), finding_cmp);
	for (i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(arr);
	return out;
}

int qp_lots_review(const qp_lots_cfg *cfg, const json_t *lots,
		   const json_t *events, json_t **findings)
{
	qp_lots_cfg def = qp_lots_cfg_default();
	json_t *byid, *use, *found, *lot, *e, *u;
	const char *id;
	char why[256];
	double bound;
	review r;
	size_t i;

	if (!json_is_array(lots) || !json_is_array(events) || findings == NULL)
		return QP_EINVAL;
	byid = json_object();
	json_array_foreach(lots, i, lot)
		json_object_set(byid, str(lot, "id"), lot);
	r.byid = byid;
	found = json_array();

	use = uses(events);
	json_object_foreach(use, id, u) {
		double held, consumed = json_number_value(json_object_get(u, "kg"));
		lot = json_object_get(byid, id);
		if (lot == NULL)
			continue; /* a dangling reference, not a balance */
		held = json_number_value(json_object_get(lot, "kg"));
		if (consumed <= held * (1 + (cfg ? cfg : &def)->tolerance) + 0.001)
			continue;
		json_array_append_new(found, json_pack(
		    "{s:s, s:s, s:s, s:f, s:f, s:O}", "type", "overconsumed",
		    "lot", id, "code", str(lot, "code"), "kg", held,
		    "consumed", consumed, "events", json_object_get(u, "events")));
	}
	json_array_foreach(events, i, e) {
		if (qp_lots_event_check(cfg ? cfg : &def, e, lot_lookup, &r,
					&bound, why, sizeof why) != QP_EVALID)
			continue;
		json_array_append_new(found, json_pack(
		    "{s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:s}", "type", "yield",
		    "event", str(e, "id"), "lot", str(e, "lot"), "code",
		    str(json_object_get(byid, str(e, "lot")), "code"),
		    "inputs_kg", qty_sum(json_object_get(e, "inputs")),
		    "outputs_kg", qty_sum(json_object_get(e, "outputs")),
		    "max_kg", bound, "reason", why));
	}
	json_decref(use);
	json_decref(byid);
	*findings = sorted(found);
	return 0;
}
