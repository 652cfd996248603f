/* trace.c - lot lineage upstream and downstream (see trace.h).
 *
 * The records are indexed once: every lot id (those of lot records and
 * those events name) gets a small integer, every event its inputs and
 * outputs as (lot, kg) pairs, and every lot the events that output it,
 * consume it or name it.  A trace is then a depth-first walk over these
 * integers (cycle and depth checks, and a topological order), one pass in
 * that order to carry kg or shares, and the building of the result: linear
 * in the size of the part of the graph it reaches, with hash lookups only
 * while indexing. */
#include "trace.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "util.h"

#define NONE ((size_t)-1)

enum { WHITE, GRAY, BLACK };

/* One lot's share in one event: kg of the lot in that event's inputs or
 * outputs (entries naming the same lot twice are summed). */
typedef struct tedge {
	size_t ev;
	double kg;
} tedge;

typedef struct tedges {
	tedge *v;
	size_t n, cap;
} tedges;

typedef struct tq {
	size_t lot;
	double kg;
} tq;

typedef struct tev {
	const json_t *rec;
	const char *id, *type;
	size_t lot; /* the event's "lot", or NONE */
	tq *in, *out;
	size_t nin, nout;
	double sum_in, sum_out;
} tev;

typedef struct tlot {
	const char *id;    /* the record's id, else the first reference */
	const json_t *rec; /* NULL: only named by events */
	double out_total;  /* kg of this lot over all events outputting it */
	tedges made_by, used_by, own;
} tlot;

struct qp_trace {
	json_t *hold;  /* references to the caller's arrays */
	json_t *ids;   /* lowercased lot id -> index */
	json_t *codes; /* lot code -> index */
	json_t *shared; /* codes that several lots carry (other orgs) */
	json_t *plots; /* lowercased plot id -> plot record */
	tlot *lot;
	size_t nlot, caplot;
	tev *ev;
	size_t nev;
};

/* Per-walk state of one lot. */
typedef struct tnode {
	unsigned char color;
	int dmin, dmax; /* fewest and most events from the start */
	double v;       /* need (kg) upstream, share downstream */
	double rho;     /* upstream: leaf kg per kg of need */
} tnode;

typedef struct walk {
	const qp_trace *t;
	tnode *st;
	size_t *order; /* post-order of the walk */
	size_t norder;
	int up;
	size_t root;
	char *err;
	size_t errlen;
} walk;

/* ------------------------------------------------------------------ */
/* Keys and small helpers. */

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static double round_to(double x, double scale)
{
	return round(x * scale) / scale;
}

static void edge_add(tedges *a, size_t ev, double kg)
{
	if (a->n > 0 && a->v[a->n - 1].ev == ev) {
		a->v[a->n - 1].kg += kg;
		return;
	}
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 4;
		a->v = qp_xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	a->v[a->n].ev = ev;
	a->v[a->n++].kg = kg;
}

/* A lot's name in messages: its code, else its id. */
static const char *lot_name(const qp_trace *t, size_t l)
{
	const char *code = str(t->lot[l].rec, "code");

	return code != NULL ? code : t->lot[l].id;
}

/* ------------------------------------------------------------------ */
/* Indexing. */

/* The index of lot id, made when create is set and it is new. */
static size_t lot_index(qp_trace *t, const char *id, int create)
{
	json_t *v = qp_id_get(t->ids, id);

	if (v != NULL)
		return (size_t)json_integer_value(v);
	if (!create)
		return NONE;
	if (t->nlot == t->caplot) {
		t->caplot = t->caplot ? 2 * t->caplot : 64;
		t->lot = qp_xrealloc(t->lot, t->caplot * sizeof(*t->lot));
	}
	memset(&t->lot[t->nlot], 0, sizeof(*t->lot));
	t->lot[t->nlot].id = id;
	qp_id_set(t->ids, id, json_integer((json_int_t)t->nlot));
	return t->nlot++;
}

static int cmp_tq(const void *a, const void *b)
{
	const tq *x = a, *y = b;

	return x->lot < y->lot ? -1 : x->lot > y->lot;
}

/* The well-formed entries of an inputs/outputs array as (lot, kg) pairs,
 * one per lot (kg summed); returns the count, *sum gets the total. */
static size_t parse_qty(qp_trace *t, const json_t *arr, tq **out, double *sum)
{
	size_t n = json_array_size(arr), i, m = 0, k = 0;
	tq *q = qp_xcalloc(n ? n : 1, sizeof(*q));
	const json_t *e;
	const char *lot;
	double kg;

	json_array_foreach(arr, i, e) {
		lot = str(e, "lot");
		kg = json_number_value(json_object_get(e, "kg"));
		if (lot == NULL || !json_is_number(json_object_get(e, "kg")) ||
		    !isfinite(kg) || kg <= 0)
			continue;
		q[m].lot = lot_index(t, lot, 1);
		q[m++].kg = kg;
	}
	qsort(q, m, sizeof(*q), cmp_tq);
	*sum = 0;
	for (i = 0; i < m; i++) {
		*sum += q[i].kg;
		if (k > 0 && q[k - 1].lot == q[i].lot)
			q[k - 1].kg += q[i].kg;
		else
			q[k++] = q[i];
	}
	*out = q;
	return k;
}

static void index_event(qp_trace *t, const json_t *rec)
{
	tev *e = &t->ev[t->nev];
	const char *lot = str(rec, "lot");
	size_t i, x = t->nev++;

	e->rec = rec;
	e->id = str(rec, "id");
	e->type = str(rec, "type") ? str(rec, "type") : "";
	e->lot = lot ? lot_index(t, lot, 1) : NONE;
	e->nin =
	    parse_qty(t, json_object_get(rec, "inputs"), &e->in, &e->sum_in);
	e->nout =
	    parse_qty(t, json_object_get(rec, "outputs"), &e->out, &e->sum_out);
	for (i = 0; i < e->nin; i++)
		edge_add(&t->lot[e->in[i].lot].used_by, x, e->in[i].kg);
	for (i = 0; i < e->nout; i++) {
		edge_add(&t->lot[e->out[i].lot].made_by, x, e->out[i].kg);
		t->lot[e->out[i].lot].out_total += e->out[i].kg;
	}
	if (e->lot != NONE)
		edge_add(&t->lot[e->lot].own, x, 0);
}

int qp_trace_new(const json_t *lots, const json_t *events, const json_t *plots,
		 qp_trace **out)
{
	qp_trace *t;
	const json_t *r;
	const char *id, *code;
	size_t i, l;

	if (!json_is_array(lots) || !json_is_array(events) || out == NULL ||
	    (plots != NULL && !json_is_array(plots)))
		return QP_EINVAL;
	t = qp_xcalloc(1, sizeof(*t));
	t->hold = json_pack("[OOO?]", lots, events, plots);
	t->ids = json_object();
	t->codes = json_object();
	t->shared = json_object();
	t->plots = json_object();
	json_array_foreach(lots, i, r) {
		if ((id = str(r, "id")) == NULL)
			continue;
		l = lot_index(t, id, 1);
		if (t->lot[l].rec != NULL)
			continue; /* the same id twice: the first one counts */
		t->lot[l].rec = r;
		t->lot[l].id = id;
		code = str(r, "code");
		if (code != NULL && json_object_get(t->codes, code) == NULL)
			json_object_set_new(t->codes, code,
					    json_integer((json_int_t)l));
		else if (code != NULL)
			/* Codes are unique within an org only. */
			json_object_set_new(t->shared, code, json_true());
	}
	json_array_foreach(plots, i, r) {
		if ((id = str(r, "id")) != NULL && qp_id_get(t->plots, id) == NULL)
			qp_id_set(t->plots, id, json_incref((json_t *)r));
	}
	t->ev = qp_xcalloc(json_array_size(events) + 1, sizeof(*t->ev));
	json_array_foreach(events, i, r) {
		if (str(r, "id") != NULL)
			index_event(t, r);
	}
	*out = t;
	return 0;
}

void qp_trace_free(qp_trace *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nlot; i++) {
		free(t->lot[i].made_by.v);
		free(t->lot[i].used_by.v);
		free(t->lot[i].own.v);
	}
	for (i = 0; i < t->nev; i++) {
		free(t->ev[i].in);
		free(t->ev[i].out);
	}
	free(t->lot);
	free(t->ev);
	json_decref(t->ids);
	json_decref(t->codes);
	json_decref(t->shared);
	json_decref(t->plots);
	json_decref(t->hold);
	free(t);
}

const json_t *qp_trace_find(const qp_trace *t, const char *key)
{
	json_t *v;

	if (t == NULL || key == NULL)
		return NULL;
	v = qp_id_get(t->ids, key);
	if (v != NULL && t->lot[json_integer_value(v)].rec != NULL)
		return t->lot[json_integer_value(v)].rec;
	if (json_object_get(t->shared, key) != NULL)
		return NULL;
	v = json_object_get(t->codes, key);
	return v != NULL ? t->lot[json_integer_value(v)].rec : NULL;
}

int qp_trace_code_shared(const qp_trace *t, const char *code)
{
	return t != NULL && code != NULL &&
	       json_object_get(t->shared, code) != NULL;
}

/* ------------------------------------------------------------------ */
/* The walk: cycle and depth checks and a topological order. */

static int too_deep(walk *w, size_t l)
{
	if (w->err != NULL && w->errlen > 0)
		snprintf(w->err, w->errlen,
			 "lot %s lies more than %d events %s of %s",
			 lot_name(w->t, l), QP_TRACE_MAX_DEPTH,
			 w->up ? "upstream" : "downstream",
			 lot_name(w->t, w->root));
	return QP_ETOOBIG;
}

/* Visit l at path depth d: its parents (up) or children (down) first, then
 * l goes onto the post-order. */
static int dfs(walk *w, size_t l, int d)
{
	const tlot *L = &w->t->lot[l];
	const tedges *edges = w->up ? &L->made_by : &L->used_by;
	size_t i, j, n, k;
	const tev *e;
	const tq *q;
	int rc;

	if (d > QP_TRACE_MAX_DEPTH)
		return too_deep(w, l);
	w->st[l].color = GRAY;
	for (i = 0; i < edges->n; i++) {
		e = &w->t->ev[edges->v[i].ev];
		q = w->up ? e->in : e->out;
		n = w->up ? e->nin : e->nout;
		for (j = 0; j < n; j++) {
			k = q[j].lot;
			if (w->st[k].color == GRAY) {
				if (w->err != NULL && w->errlen > 0)
					snprintf(w->err, w->errlen,
						 "lot %s is its own %s",
						 lot_name(w->t, k),
						 w->up ? "ancestor"
						       : "descendant");
				return QP_EPROTO;
			}
			if (w->st[k].color == WHITE &&
			    (rc = dfs(w, k, d + 1)) != 0)
				return rc;
		}
	}
	w->st[l].color = BLACK;
	w->order[w->norder++] = l;
	return 0;
}

/* k is reached from l over one event: fewest and most events so far. */
static int relax(walk *w, size_t l, size_t k)
{
	tnode *a = &w->st[l], *b = &w->st[k];

	if (a->dmin != INT_MAX && a->dmin + 1 < b->dmin)
		b->dmin = a->dmin + 1;
	if (a->dmax + 1 > b->dmax)
		b->dmax = a->dmax + 1;
	return b->dmax > QP_TRACE_MAX_DEPTH ? too_deep(w, k) : 0;
}

static void walk_init(walk *w, const qp_trace *t, int up, char *err,
		      size_t errlen)
{
	memset(w, 0, sizeof(*w));
	w->t = t;
	w->up = up;
	w->err = err;
	w->errlen = errlen;
	w->st = qp_xcalloc(t->nlot + 1, sizeof(*w->st));
	w->order = qp_xcalloc(t->nlot + 1, sizeof(*w->order));
}

static void walk_free(walk *w)
{
	free(w->st);
	free(w->order);
}

/* Start the walk at root (after the DFS: depth 0). */
static int walk_from(walk *w, size_t root)
{
	size_t before = w->norder, i;
	int rc;

	w->root = root;
	if (w->st[root].color != WHITE)
		return 0;
	if ((rc = dfs(w, root, 0)) != 0)
		return rc;
	for (i = before; i < w->norder; i++)
		if (w->order[i] != root)
			w->st[w->order[i]].dmin = INT_MAX;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Carrying kg and shares. */

/* Upstream: needs from X back to the leaves (reverse post-order is
 * topological from X), then leaf kg per kg of need from the leaves to X
 * (post-order). */
static int carry_up(walk *w)
{
	const qp_trace *t = w->t;
	size_t i, j, l, x;
	const tlot *L;
	const tev *e;
	double f, r;
	int rc;

	for (i = w->norder; i-- > 0;) {
		L = &t->lot[l = w->order[i]];
		for (x = 0; x < L->made_by.n; x++) {
			e = &t->ev[L->made_by.v[x].ev];
			if (L->out_total <= 0 || e->sum_out <= 0)
				continue;
			f = w->st[l].v * (L->made_by.v[x].kg / L->out_total) /
			    e->sum_out;
			for (j = 0; j < e->nin; j++) {
				w->st[e->in[j].lot].v += e->in[j].kg * f;
				if ((rc = relax(w, l, e->in[j].lot)) != 0)
					return rc;
			}
		}
	}
	for (i = 0; i < w->norder; i++) {
		L = &t->lot[l = w->order[i]];
		if (L->made_by.n == 0) {
			w->st[l].rho = 1;
			continue;
		}
		for (r = 0, x = 0; x < L->made_by.n; x++) {
			e = &t->ev[L->made_by.v[x].ev];
			if (L->out_total <= 0 || e->sum_out <= 0)
				continue;
			f = (L->made_by.v[x].kg / L->out_total) / e->sum_out;
			for (j = 0; j < e->nin; j++)
				r += f * e->in[j].kg * w->st[e->in[j].lot].rho;
		}
		w->st[l].rho = r;
	}
	return 0;
}

/* Downstream: shares from the start lots on, in topological order. */
static int carry_down(walk *w)
{
	const qp_trace *t = w->t;
	size_t i, j, l, x;
	const tlot *L;
	const tev *e;
	double f;
	int rc;

	for (i = w->norder; i-- > 0;) {
		L = &t->lot[l = w->order[i]];
		if (w->st[l].v > 1)
			w->st[l].v = 1;
		for (x = 0; x < L->used_by.n; x++) {
			e = &t->ev[L->used_by.v[x].ev];
			if (e->sum_in <= 0)
				continue;
			f = w->st[l].v * L->used_by.v[x].kg / e->sum_in;
			for (j = 0; j < e->nout; j++) {
				/* The output lot's share from this event is
				 * what the event put into it over all that
				 * events put into it. */
				const tlot *O = &t->lot[e->out[j].lot];
				if (O->out_total <= 0)
					continue;
				w->st[e->out[j].lot].v +=
					f * e->out[j].kg / O->out_total;
				if ((rc = relax(w, l, e->out[j].lot)) != 0)
					return rc;
			}
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Results. */

static json_t *or_null(const json_t *v)
{
	return v != NULL ? json_incref((json_t *)v) : json_null();
}

static json_t *lot_entry(const walk *w, size_t l, double share)
{
	const tlot *L = &w->t->lot[l];
	const tnode *s = &w->st[l];
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(L->id));
	json_object_set_new(o, "code",
			    or_null(json_object_get(L->rec, "code")));
	json_object_set_new(o, "product",
			    or_null(json_object_get(L->rec, "product")));
	json_object_set_new(o, "kg", or_null(json_object_get(L->rec, "kg")));
	json_object_set_new(o, "share", json_real(round_to(share, 1e9)));
	if (w->up)
		json_object_set_new(o, "kg_in", json_real(round_to(s->v, 1e6)));
	json_object_set_new(o, "depth", json_integer(s->dmin));
	if (w->up)
		json_object_set_new(o, "leaf", json_boolean(L->made_by.n == 0));
	if (L->rec == NULL)
		json_object_set_new(o, "missing", json_true());
	return o;
}

static json_t *event_entry(const tev *e)
{
	static const char *const keys[] = {"id", "type", "lot", "inputs",
					   "outputs"};
	json_t *o = json_object(), *v;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((v = json_object_get(e->rec, keys[i])) != NULL)
			json_object_set(o, keys[i], v);
	return o;
}

/* Sorting arrays of result objects. */

static int cmp_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a == NULL) - (b == NULL); /* null last */
	return strcmp(a, b);
}

static int cmp_lots(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t dx = json_integer_value(json_object_get(x, "depth"));
	json_int_t dy = json_integer_value(json_object_get(y, "depth"));
	int c;

	if (dx != dy)
		return dx < dy ? -1 : 1;
	if ((c = cmp_str(str(x, "code"), str(y, "code"))) != 0)
		return c;
	return cmp_str(str(x, "id"), str(y, "id"));
}

static int cmp_kg(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	double kx = json_number_value(json_object_get(x, "kg"));
	double ky = json_number_value(json_object_get(y, "kg"));

	if (kx != ky)
		return kx > ky ? -1 : 1;
	return cmp_str(str(x, "id"), str(y, "id"));
}

static int cmp_id(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	const char *ix = str(x, "id") ? str(x, "id") : str(x, "event");
	const char *iy = str(y, "id") ? str(y, "id") : str(y, "event");

	return cmp_str(ix, iy);
}

static void sort_array(json_t *arr, int (*cmp)(const void *, const void *))
{
	size_t n = json_array_size(arr), i;
	json_t **v = qp_xcalloc(n ? n : 1, sizeof(*v));

	for (i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof(*v), cmp);
	json_array_clear(arr);
	for (i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
}

/* The events marked in mark, as entries sorted by id. */
static json_t *events_of(const qp_trace *t, const unsigned char *mark)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < t->nev; i++)
		if (mark[i])
			json_array_append_new(arr, event_entry(&t->ev[i]));
	sort_array(arr, cmp_id);
	return arr;
}

/* The producer a leaf lot came from: its "producer", else the producer of
 * its first known plot. */
static const char *leaf_producer(const qp_trace *t, const json_t *rec)
{
	const json_t *p;
	const char *id;
	size_t i;

	if ((id = str(rec, "producer")) != NULL)
		return id;
	json_array_foreach(json_object_get(rec, "plots"), i, p) {
		if (json_is_string(p) &&
		    (id =
			 str(qp_id_get(t->plots, json_string_value(p)), "producer")))
			return id;
	}
	return NULL;
}

/* Add kg to the entry of key in acc (mk when new, else mk is dropped). */
static void acc_add(json_t *acc, const char *key, double kg, json_t *mk)
{
	json_t *o = qp_id_get(acc, key);

	if (o == NULL) {
		qp_id_set(acc, key, mk);
		o = mk;
		json_object_set_new(o, "kg", json_real(0));
	} else {
		json_decref(mk);
	}
	json_real_set(json_object_get(o, "kg"),
		      json_real_value(json_object_get(o, "kg")) + kg);
}

/* An accumulator's entries as a sorted array, kg rounded, shares set. */
static json_t *acc_list(json_t *acc, double total)
{
	json_t *arr = json_array(), *o, *kg;
	const char *key;
	double v;

	json_object_foreach(acc, key, o) {
		kg = json_object_get(o, "kg");
		v = json_real_value(kg);
		json_object_set_new(o, "kg", json_real(round_to(v, 1e6)));
		json_object_set_new(
		    o, "share",
		    json_real(total > 0 ? round_to(v / total, 1e9) : 0));
		json_array_append(arr, o);
	}
	sort_array(arr, cmp_kg);
	return arr;
}

/* One leaf's kg to its producer and plots. */
static void leaf_to(const qp_trace *t, const json_t *rec, double need,
		    json_t *producers, json_t *plots)
{
	const json_t *plist = json_object_get(rec, "plots"), *p, *prec;
	const char *pid = leaf_producer(t, rec), *id, *owner;
	size_t i, n = 0;
	json_t *o;

	if (pid != NULL)
		acc_add(producers, pid, need, json_pack("{s:s}", "id", pid));
	json_array_foreach(plist, i, p)
		n += json_is_string(p);
	json_array_foreach(plist, i, p) {
		if (!json_is_string(p))
			continue;
		prec = qp_id_get(t->plots, json_string_value(p));
		id = prec ? str(prec, "id") : json_string_value(p);
		owner =
		    prec && str(prec, "producer") ? str(prec, "producer") : pid;
		o = json_pack("{s:s, s:s?}", "id", id, "producer", owner);
		if (prec == NULL)
			json_object_set_new(o, "missing", json_true());
		acc_add(plots, id, need / (double)n, o);
	}
}

static json_t *result_up(const walk *w)
{
	const qp_trace *t = w->t;
	unsigned char *mark = qp_xcalloc(t->nev + 1, 1);
	json_t *lots = json_array(), *prod = json_object(),
	       *plots = json_object(), *res;
	double total = 0;
	size_t i, x, l;
	const tlot *L;
	const tev *e;

	for (i = 0; i < w->norder; i++)
		if (t->lot[w->order[i]].made_by.n == 0)
			total += w->st[w->order[i]].v;
	for (i = 0; i < w->norder; i++) {
		L = &t->lot[l = w->order[i]];
		json_array_append_new(
		    lots,
		    lot_entry(w, l,
			      total > 0 ? w->st[l].v * w->st[l].rho / total
					: 0));
		for (x = 0; x < L->made_by.n; x++)
			mark[L->made_by.v[x].ev] = 1;
		for (x = 0; x < L->own.n; x++) {
			e = &t->ev[L->own.v[x].ev];
			if (L->made_by.n == 0 &&
			    strcmp(e->type, "receive") == 0)
				mark[L->own.v[x].ev] = 1;
		}
		if (L->made_by.n == 0 && L->rec != NULL)
			leaf_to(t, L->rec, w->st[l].v, prod, plots);
	}
	sort_array(lots, cmp_lots);
	res = json_pack("{s:s, s:o, s:o, s:o, s:o}", "direction", "up", "lots",
			lots, "events", events_of(t, mark), "producers",
			acc_list(prod, total), "plots", acc_list(plots, total));
	json_decref(prod);
	json_decref(plots);
	free(mark);
	return res;
}

int qp_trace_up(const qp_trace *t, const char *lot_id, json_t **out, char *err,
		size_t errlen)
{
	json_t *v;
	size_t x;
	walk w;
	int rc;

	if (t == NULL || lot_id == NULL || out == NULL)
		return QP_EINVAL;
	v = qp_id_get(t->ids, lot_id);
	if (v == NULL || t->lot[json_integer_value(v)].rec == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "no lot %s", lot_id);
		return QP_ENOTFOUND;
	}
	x = (size_t)json_integer_value(v);
	walk_init(&w, t, 1, err, errlen);
	if ((rc = walk_from(&w, x)) == 0) {
		w.st[x].v =
		    json_number_value(json_object_get(t->lot[x].rec, "kg"));
		if ((rc = carry_up(&w)) == 0)
			*out = result_up(&w);
	}
	walk_free(&w);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Downstream. */

static json_t *shipment(const qp_trace *t, const tev *e, size_t l, double share)
{
	const json_t *kg = json_object_get(t->lot[l].rec, "kg");
	json_t *o =
	    json_pack("{s:s, s:s, s:o}", "event", e->id, "lot", t->lot[l].id,
		      "code", or_null(json_object_get(t->lot[l].rec, "code")));
	static const char *const keys[] = {"buyer", "destination", "container",
					   "document"};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		json_object_set_new(o, keys[i],
				    or_null(json_object_get(e->rec, keys[i])));
	json_object_set_new(
	    o, "kg",
	    json_is_number(kg)
		? json_real(round_to(share * json_number_value(kg), 1e6))
		: json_null());
	json_object_set_new(o, "share", json_real(round_to(share, 1e9)));
	return o;
}

static json_t *claim(const qp_trace *t, const tev *e, size_t l)
{
	return json_pack("{s:s, s:s, s:o, s:o}", "event", e->id, "lot",
			 t->lot[l].id, "code",
			 or_null(json_object_get(t->lot[l].rec, "code")),
			 "reason", or_null(json_object_get(e->rec, "reason")));
}

static json_t *result_down(const walk *w)
{
	const qp_trace *t = w->t;
	unsigned char *mark = qp_xcalloc(t->nev + 1, 1);
	json_t *lots = json_array(), *ships = json_array(),
	       *claims = json_array(), *res;
	size_t i, x, l;
	const tlot *L;
	const tev *e;

	for (i = 0; i < w->norder; i++) {
		L = &t->lot[l = w->order[i]];
		json_array_append_new(lots, lot_entry(w, l, w->st[l].v));
		for (x = 0; x < L->used_by.n; x++)
			mark[L->used_by.v[x].ev] = 1;
		if (w->st[l].v <= 0)
			continue;
		for (x = 0; x < L->own.n; x++) {
			e = &t->ev[L->own.v[x].ev];
			if (strcmp(e->type, "ship") == 0)
				json_array_append_new(
				    ships, shipment(t, e, l, w->st[l].v));
			else if (strcmp(e->type, "claim") == 0)
				json_array_append_new(claims, claim(t, e, l));
			else
				continue;
			mark[L->own.v[x].ev] = 1;
		}
	}
	sort_array(lots, cmp_lots);
	sort_array(ships, cmp_id);
	sort_array(claims, cmp_id);
	res = json_pack("{s:s, s:o, s:o, s:o, s:o}", "direction", "down",
			"lots", lots, "events", events_of(t, mark), "shipments",
			ships, "claims", claims);
	free(mark);
	return res;
}

int qp_trace_down(const qp_trace *t, const json_t *start, json_t **out,
		  char *err, size_t errlen)
{
	const json_t *s;
	json_t *v;
	size_t i, x;
	walk w;
	int rc = 0;

	if (t == NULL || !json_is_array(start) || out == NULL)
		return QP_EINVAL;
	walk_init(&w, t, 0, err, errlen);
	json_array_foreach(start, i, s) {
		if (!json_is_string(s) ||
		    (v = qp_id_get(t->ids, json_string_value(s))) == NULL ||
		    t->lot[json_integer_value(v)].rec == NULL)
			continue;
		x = (size_t)json_integer_value(v);
		if ((rc = walk_from(&w, x)) != 0)
			break;
		w.st[x].v = 1;
		w.st[x].dmin = 0;
	}
	if (rc == 0 && (rc = carry_down(&w)) == 0)
		*out = result_down(&w);
	walk_free(&w);
	return rc;
}

int qp_trace_producer_lots(const qp_trace *t, const char *producer_id,
			   json_t **out)
{
	const json_t *p;
	const char *owner;
	json_t *arr;
	size_t l, i;
	int hit;

	if (t == NULL || producer_id == NULL || out == NULL)
		return QP_EINVAL;
	arr = json_array();
	for (l = 0; l < t->nlot; l++) {
		if (t->lot[l].rec == NULL)
			continue;
		owner = str(t->lot[l].rec, "producer");
		hit = owner != NULL && strcasecmp(owner, producer_id) == 0;
		json_array_foreach(json_object_get(t->lot[l].rec, "plots"), i,
				   p) {
			if (hit)
				break;
			owner = json_is_string(p)
				    ? str(qp_id_get(t->plots, json_string_value(p)),
					  "producer")
				    : NULL;
			hit = owner != NULL &&
			      strcasecmp(owner, producer_id) == 0;
		}
		if (hit)
			json_array_append_new(arr, json_string(t->lot[l].id));
	}
	*out = arr;
	return 0;
}
