/*
 * lots.c - mass balance of lots (see lots.h).
 */
#include "lots.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "schema.h"
#include "util.h"

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
	const json_t *lot = qp_id_get(r->byid, id);

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

/* What events take from each lot (side "inputs") or put into it
 * ("outputs"): {"kg": total, "events": [ids]} by lot id. */
static json_t *flows(const json_t *events, const char *side)
{
	json_t *use = json_object(), *u, *e, *in;
	size_t i, j;

	json_array_foreach(events, i, e) {
		json_array_foreach(json_object_get(e, side), j, in) {
			const char *lot = str(in, "lot");
			double kg = json_number_value(json_object_get(in, "kg"));
			if ((u = qp_id_get(use, lot)) == NULL) {
				u = json_pack("{s:f, s:[]}", "kg", 0.0, "events");
				qp_id_set(use, lot, u);
			}
			json_object_set_new(u, "kg",
			    json_real(json_number_value(json_object_get(u, "kg")) + kg));
			json_array_append(json_object_get(u, "events"),
					  json_object_get(e, "id"));
		}
	}
	return use;
}

/* The custody graph: an edge from each input lot of an event to each of
 * its output lots, labelled with the event. */
typedef struct cgraph {
	json_t *ix;        /* lot id -> node number */
	const char **id;   /* node -> lot id */
	size_t n, m;
	size_t *head, *next, *to; /* edge lists, SIZE_MAX ends */
	const json_t **ev;         /* edge -> event */
} cgraph;

static size_t cg_node(cgraph *g, const char *id, size_t cap)
{
	json_t *v = qp_id_get(g->ix, id);

	if (v != NULL)
		return (size_t)json_integer_value(v);
	if (g->n == cap)
		return SIZE_MAX;
	qp_id_set(g->ix, id, json_integer((json_int_t)g->n));
	g->id[g->n] = id; /* lives in the events */
	g->head[g->n] = SIZE_MAX;
	return g->n++;
}

static void cg_build(cgraph *g, const json_t *events)
{
	const json_t *e, *in, *out;
	size_t i, j, k, cap = 0, ecap = 0, a, b;

	json_array_foreach(events, i, e) {
		size_t ni = json_array_size(json_object_get(e, "inputs"));
		size_t no = json_array_size(json_object_get(e, "outputs"));
		cap += ni + no;
		ecap += ni * no;
	}
	memset(g, 0, sizeof(*g));
	g->ix = json_object();
	g->id = calloc(cap + 1, sizeof(*g->id));
	g->head = calloc(cap + 1, sizeof(size_t));
	g->next = calloc(ecap + 1, sizeof(size_t));
	g->to = calloc(ecap + 1, sizeof(size_t));
	g->ev = calloc(ecap + 1, sizeof(*g->ev));
	if (!g->id || !g->head || !g->next || !g->to || !g->ev)
		abort();
	json_array_foreach(events, i, e) {
		json_array_foreach(json_object_get(e, "inputs"), j, in) {
			if (str(in, "lot")[0] == '\0')
				continue;
			a = cg_node(g, str(in, "lot"), cap);
			json_array_foreach(json_object_get(e, "outputs"), k, out) {
				if (str(out, "lot")[0] == '\0')
					continue;
				b = cg_node(g, str(out, "lot"), cap);
				g->to[g->m] = b;
				g->ev[g->m] = e;
				g->next[g->m] = g->head[a];
				g->head[a] = g->m++;
			}
		}
	}
}

static void cg_free(cgraph *g)
{
	json_decref(g->ix);
	free(g->id);
	free(g->head);
	free(g->next);
	free(g->to);
	free(g->ev);
}

/* A finding for the strongly connected component comp[0..n) of g when it
 * is a cycle (more than one lot, or a lot that is its own output). */
static void cycle_finding(const cgraph *g, const size_t *comp, size_t n,
			  const size_t *scc, const json_t *byid, json_t *found)
{
	json_t *lots = json_array(), *evs = json_array(), *seen = json_object();
	size_t first = comp[0], i, ed;
	int loop = 0;

	for (i = 0; i < n; i++) {
		const char *code = str(qp_id_get(byid, g->id[comp[i]]),
				       "code");
		json_array_append_new(lots, json_string(g->id[comp[i]]));
		if (strcmp(code, str(qp_id_get(byid, g->id[first]),
				     "code")) < 0)
			first = comp[i];
		for (ed = g->head[comp[i]]; ed != SIZE_MAX; ed = g->next[ed]) {
			if (scc[g->to[ed]] != scc[comp[i]])
				continue;
			loop = 1;
			if (json_object_get(seen, str(g->ev[ed], "id")) == NULL) {
				json_object_set_new(seen, str(g->ev[ed], "id"),
						    json_null());
				json_array_append_new(
				    evs, json_string(str(g->ev[ed], "id")));
			}
		}
	}
	if (n > 1 || loop)
		json_array_append_new(
		    found, json_pack("{s:s, s:s, s:s, s:o, s:o}", "type",
				     "cycle", "lot", g->id[first], "code",
				     str(qp_id_get(byid, g->id[first]),
					 "code"),
				     "lots", lots, "events", evs));
	else {
		json_decref(lots);
		json_decref(evs);
	}
	json_decref(seen);
}

/* Lots that come out of their own descendants: Tarjan's strongly
 * connected components of the custody graph, without recursion. */
static void cycles(const json_t *events, const json_t *byid, json_t *found)
{
	cgraph g;
	size_t *num, *low, *scc, *stack, *cstack, *edge, sp = 0, cp = 0;
	size_t counter = 0, nscc = 0, v, w, root;
	unsigned char *on;

	cg_build(&g, events);
	num = calloc(g.n + 1, sizeof(size_t));
	low = calloc(g.n + 1, sizeof(size_t));
	scc = calloc(g.n + 1, sizeof(size_t));
	stack = calloc(g.n + 1, sizeof(size_t));
	cstack = calloc(g.n + 1, sizeof(size_t));
	edge = calloc(g.n + 1, sizeof(size_t));
	on = calloc(g.n + 1, 1);
	if (!num || !low || !scc || !stack || !cstack || !edge || !on)
		abort();
	for (root = 0; root < g.n; root++) {
		if (num[root] != 0)
			continue;
		/* cstack: the DFS path; edge[v]: v's next edge to follow. */
		cstack[cp++] = root;
		num[root] = low[root] = ++counter;
		edge[root] = g.head[root];
		stack[sp++] = root;
		on[root] = 1;
		while (cp > 0) {
			v = cstack[cp - 1];
			if (edge[v] != SIZE_MAX) {
				w = g.to[edge[v]];
				edge[v] = g.next[edge[v]];
				if (num[w] == 0) {
					num[w] = low[w] = ++counter;
					edge[w] = g.head[w];
					stack[sp++] = w;
					on[w] = 1;
					cstack[cp++] = w;
				} else if (on[w] && num[w] < low[v]) {
					low[v] = num[w];
				}
				continue;
			}
			cp--;
			if (cp > 0 && low[v] < low[cstack[cp - 1]])
				low[cstack[cp - 1]] = low[v];
			if (low[v] != num[v])
				continue;
			/* v roots a component: pop it. */
			nscc++;
			size_t start = sp;
			do {
				w = stack[--start];
				on[w] = 0;
				scc[w] = nscc;
			} while (w != v);
			cycle_finding(&g, stack + start, sp - start, scc, byid,
				      found);
			sp = start;
		}
	}
	free(num);
	free(low);
	free(scc);
	free(stack);
	free(cstack);
	free(edge);
	free(on);
	cg_free(&g);
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
		qp_id_set(byid, str(lot, "id"), json_incref(lot));
	r.byid = byid;
	found = json_array();

	use = flows(events, "inputs");
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
	/* A lot its events filled declares no more than they put in: the
	 * rest would have no origin, yet trace and DDS would cover it. */
	json_decref(use);
	use = flows(events, "outputs");
	json_object_foreach(use, id, u) {
		double held, made = json_number_value(json_object_get(u, "kg"));
		lot = json_object_get(byid, id);
		if (lot == NULL)
			continue;
		held = json_number_value(json_object_get(lot, "kg"));
		if (held <= made * (1 + (cfg ? cfg : &def)->tolerance) + 0.001)
			continue;
		json_array_append_new(found, json_pack(
		    "{s:s, s:s, s:s, s:f, s:f, s:O}", "type", "unsourced",
		    "lot", id, "code", str(lot, "code"), "kg", held,
		    "made", made, "events", json_object_get(u, "events")));
	}
	json_array_foreach(events, i, e) {
		if (qp_lots_event_check(cfg ? cfg : &def, e, lot_lookup, &r,
					&bound, why, sizeof why) != QP_EVALID)
			continue;
		json_array_append_new(found, json_pack(
		    "{s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:s}", "type", "yield",
		    "event", str(e, "id"), "lot", str(e, "lot"), "code",
		    str(qp_id_get(byid, str(e, "lot")), "code"),
		    "inputs_kg", qty_sum(json_object_get(e, "inputs")),
		    "outputs_kg", qty_sum(json_object_get(e, "outputs")),
		    "max_kg", bound, "reason", why));
	}
	cycles(events, byid, found);
	json_decref(use);
	json_decref(byid);
	*findings = sorted(found);
	return 0;
}
