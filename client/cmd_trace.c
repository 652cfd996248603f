/*
 * cmd_trace.c - quipu trace: a lot's custody chain up to the producers and
 * plots it came from, or down to the lots and shipments that hold product
 * of a lot or of a producer; and the reading of every record a lineage
 * touches, shared with quipu dds (lineage.h).
 *
 * The records are read over the API (qp_cli_fetch_all; voided ones are left
 * out there) and traced with proto/trace.c.  Then the meta (author key and
 * creation time of the signed op) of just the records in the result is
 * fetched, which makes the answer evidence `quipu verify` can back.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "csv.h"
#include "err.h"
#include "lineage.h"
#include "trace.h"
#include "util.h"

#define META_WINDOW 64 /* get requests in flight */

enum { OPT_DOWN = 256, OPT_FORMAT };
enum { FMT_TEXT, FMT_JSON, FMT_GEOJSON, FMT_CSV };

/* ------------------------------------------------------------------ */
/* Small helpers. */

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const char *or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static json_t *ref_or_null(json_t *v)
{
	return v != NULL ? json_incref(v) : json_null();
}

static double dval(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* A number as short text that reads back (kg, shares). */
static const char *num(double v, char *buf, size_t len)
{
	snprintf(buf, len, "%.15g", v);
	return buf;
}

/* Ids are UUIDs, written in either case: maps are keyed lowercase. */
static char *lower_dup(const char *s)
{
	char *k = qp_xstrdup(s), *p;

	for (p = k; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return k;
}

/* See lineage.h. */
json_t *qp__by_id(const json_t *by, const char *id)
{
	json_t *v;
	char *k;

	if (id == NULL)
		return NULL;
	k = lower_dup(id);
	v = json_object_get(by, k);
	free(k);
	return v;
}

static void set_by_id(json_t *by, const char *id, json_t *v)
{
	char *k = lower_dup(id);

	json_object_set_new(by, k, v);
	free(k);
}

static json_t *index_by_id(const json_t *recs)
{
	json_t *by = json_object(), *r;
	size_t i;

	json_array_foreach(recs, i, r) {
		if (str(r, "id") != NULL && qp__by_id(by, str(r, "id")) == NULL)
			set_by_id(by, str(r, "id"), json_incref(r));
	}
	return by;
}

/* See lineage.h. */
const char *qp__lot_label(const json_t *o)
{
	return str(o, "code") != NULL ? str(o, "code") : or_empty(str(o, "id"));
}

/* See lineage.h. */
const char *qp__producer_name(const json_t *prod_by, const char *id)
{
	const char *name = str(qp__by_id(prod_by, id), "name");

	return name != NULL ? name : id != NULL ? id : "unknown";
}

static void print_json(const json_t *v)
{
	char *s = qp_cli_dumps(v);

	printf("%s\n", s);
	free(s);
}

/* ------------------------------------------------------------------ */
/* Loading. */

/* See lineage.h. */
void qp__lineage_free(qp_lineage *d)
{
	qp_trace_free(d->t);
	json_decref(d->lots);
	json_decref(d->events);
	json_decref(d->plots);
	json_decref(d->producers);
	json_decref(d->orgs);
	json_decref(d->plot_by);
	json_decref(d->prod_by);
	json_decref(d->org_by);
	memset(d, 0, sizeof(*d));
}

/* See lineage.h. */
int qp__lineage_load(qp_cli *c, qp_lineage *d)
{
	int status;

	memset(d, 0, sizeof(*d));
	if ((status = qp_cli_fetch_all(c, "lot", NULL, 0, &d->lots)) != 0 ||
	    (status = qp_cli_fetch_all(c, "lot_event", NULL, 0, &d->events)) ||
	    (status = qp_cli_fetch_all(c, "plot", NULL, 0, &d->plots)) ||
	    (status =
		 qp_cli_fetch_all(c, "producer", NULL, 0, &d->producers)) ||
	    (status = qp_cli_fetch_all(c, "org", NULL, 0, &d->orgs))) {
		qp__lineage_free(d);
		return status;
	}
	d->plot_by = index_by_id(d->plots);
	d->prod_by = index_by_id(d->producers);
	d->org_by = index_by_id(d->orgs);
	if (qp_trace_new(d->lots, d->events, d->plots, &d->t) != 0) {
		qp_cli_err("malformed list reply from quipud");
		qp__lineage_free(d);
		return QP_EXIT_FAIL;
	}
	return QP_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* Meta of the records in a result: gets pipelined over one connection. */

static int meta_recv(qp_cli *c, uint64_t rid, const char *id, json_t *metas)
{
	json_t *reply = NULL;
	int rc = qp_api_recv(c->api, rid, &reply);

	if (rc < 0)
		return qp_cli_api_fail(c, rc);
	/* A record voided since it was listed just has no meta here. */
	if (json_is_true(json_object_get(reply, "ok")) &&
	    json_is_object(json_object_get(reply, "meta")))
		json_object_set(metas, id, json_object_get(reply, "meta"));
	json_decref(reply);
	return QP_EXIT_OK;
}

/* *metas gets id -> meta for every key of ids. */
static int fetch_meta(qp_cli *c, const json_t *ids, json_t **metas)
{
	size_t n = json_object_size(ids), sent = 0, got = 0;
	const char **keys = qp_xcalloc(n + 1, sizeof(*keys));
	uint64_t *rids = qp_xcalloc(n + 1, sizeof(*rids));
	json_t *out = json_object(), *v, *req;
	int status = qp_cli_connect(c), rc;
	const char *key;

	json_object_foreach((json_t *)ids, key, v)
		keys[sent++] = key;
	sent = 0;
	while (status == QP_EXIT_OK && got < n) {
		while (sent < n && sent - got < META_WINDOW) {
			req = json_pack("{s:s, s:s}", "op", "get", "id",
					keys[sent]);
			rc = qp_api_send(c->api, req, &rids[sent]);
			json_decref(req);
			if (rc < 0) {
				status = qp_cli_api_fail(c, rc);
				goto out;
			}
			sent++;
		}
		status = meta_recv(c, rids[got], keys[got], out);
		got++;
	}
out:
	free(keys);
	free(rids);
	if (status != QP_EXIT_OK) {
		json_decref(out);
		return status;
	}
	*metas = out;
	return QP_EXIT_OK;
}

/* The key of every entry of res[name] that has a record. */
static void collect_ids(const json_t *res, const char *name, json_t *ids)
{
	const json_t *e;
	size_t i;

	json_array_foreach(json_object_get(res, name), i, e) {
		if (str(e, "id") != NULL &&
		    !json_is_true(json_object_get(e, "missing")))
			json_object_set_new(ids, str(e, "id"), json_true());
	}
}

/* Set author (when author) and created of each entry of res[name] from
 * the meta of the record named by its key. */
static void stamp(json_t *res, const char *name, const char *key,
		  const json_t *metas, int author)
{
	json_t *e, *m;
	size_t i;

	json_array_foreach(json_object_get(res, name), i, e) {
		m = str(e, key) != NULL ? json_object_get(metas, str(e, key))
					: NULL;
		if (author)
			json_object_set_new(
			    e, "author",
			    ref_or_null(json_object_get(m, "author")));
		json_object_set_new(e, "created",
				    ref_or_null(json_object_get(m, "created")));
	}
}

/* Producers get name and DNI; plots their area: declared, else the
 * measured one of the meta. */
static void name_up(const qp_lineage *d, json_t *res, const json_t *metas)
{
	json_t *e, *p, *a;
	size_t i;

	json_array_foreach(json_object_get(res, "producers"), i, e) {
		p = qp__by_id(d->prod_by, str(e, "id"));
		json_object_set_new(e, "name",
				    ref_or_null(json_object_get(p, "name")));
		json_object_set_new(e, "dni",
				    ref_or_null(json_object_get(p, "dni")));
	}
	json_array_foreach(json_object_get(res, "plots"), i, e) {
		a = json_object_get(qp__by_id(d->plot_by, str(e, "id")),
				    "area_ha");
		if (!json_is_number(a))
			a = json_object_get(
			    json_object_get(metas, str(e, "id")),
			    "area_ha_measured");
		json_object_set_new(e, "area_ha",
				    json_is_number(a) ? json_incref(a)
						      : json_null());
	}
}

/* Meta and names for a result: what makes it evidence. */
static int enrich(qp_cli *c, const qp_lineage *d, json_t *res, int up)
{
	json_t *ids = json_object(), *metas = NULL;
	int status;

	collect_ids(res, "lots", ids);
	collect_ids(res, "events", ids);
	collect_ids(res, "producers", ids);
	collect_ids(res, "plots", ids);
	status = fetch_meta(c, ids, &metas);
	json_decref(ids);
	if (status != QP_EXIT_OK)
		return status;
	stamp(res, "lots", "id", metas, 1);
	stamp(res, "events", "id", metas, 1);
	if (up) {
		name_up(d, res, metas);
		stamp(res, "producers", "id", metas, 1);
		stamp(res, "plots", "id", metas, 1);
	} else {
		stamp(res, "shipments", "event", metas, 0);
		stamp(res, "claims", "event", metas, 0);
	}
	json_decref(metas);
	return QP_EXIT_OK;
}

/* The JSON answer, keys in the documented order. */
static json_t *assemble(const json_t *lot, const json_t *producer,
			const json_t *res)
{
	static const char *const keys[] = {"direction", "lots",  "events",
					   "producers", "plots", "shipments",
					   "claims"};
	json_t *o = json_object(), *v;
	size_t i;

	if (lot != NULL)
		json_object_set_new(
		    o, "lot",
		    json_pack("{s:O?, s:O?, s:O?, s:O?}", "id",
			      json_object_get(lot, "id"), "code",
			      json_object_get(lot, "code"), "product",
			      json_object_get(lot, "product"), "kg",
			      json_object_get(lot, "kg")));
	else
		json_object_set_new(o, "lot", json_null());
	if (producer != NULL)
		json_object_set_new(
		    o, "producer",
		    json_pack("{s:O?, s:O?, s:O?}", "id",
			      json_object_get(producer, "id"), "name",
			      json_object_get(producer, "name"), "dni",
			      json_object_get(producer, "dni")));
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((v = json_object_get(res, keys[i])) != NULL)
			json_object_set(o, keys[i], v);
	return o;
}

/* ------------------------------------------------------------------ */
/* Text: an indented tree, then summary lines. */

typedef struct tree {
	const qp_lineage *d;
	json_t *lots;  /* id -> lots entry */
	json_t *edges; /* id -> [[event type, lot id] ...] */
	json_t *seen;  /* ids already printed with their subtree */
	int up;
} tree;

/* Edges from each lot of an event's outputs (up) or inputs (down) to each
 * lot of the other side, both in the result. */
static void tree_edges(tree *tr, const json_t *ev)
{
	const json_t *from = json_object_get(ev, tr->up ? "outputs" : "inputs");
	const json_t *to = json_object_get(ev, tr->up ? "inputs" : "outputs");
	const char *type = str(ev, "type") != NULL ? str(ev, "type") : "?";
	const json_t *x, *y, *a, *b;
	json_t *list;
	size_t i, j;

	json_array_foreach(from, i, x) {
		if ((a = qp__by_id(tr->lots, str(x, "lot"))) == NULL)
			continue;
		if ((list = qp__by_id(tr->edges, str(a, "id"))) == NULL) {
			list = json_array();
			set_by_id(tr->edges, str(a, "id"), list);
		}
		json_array_foreach(to, j, y) {
			if ((b = qp__by_id(tr->lots, str(y, "lot"))) != NULL)
				json_array_append_new(
				    list,
				    json_pack("[s, s]", type, str(b, "id")));
		}
	}
}

static void tree_init(tree *tr, const qp_lineage *d, const json_t *res, int up)
{
	const json_t *e;
	size_t i;

	tr->d = d;
	tr->up = up;
	tr->lots = json_object();
	tr->edges = json_object();
	tr->seen = json_object();
	json_array_foreach(json_object_get(res, "lots"), i, e)
		set_by_id(tr->lots, str(e, "id"), json_incref((json_t *)e));
	json_array_foreach(json_object_get(res, "events"), i, e)
		tree_edges(tr, e);
}

static void tree_free(tree *tr)
{
	json_decref(tr->lots);
	json_decref(tr->edges);
	json_decref(tr->seen);
}

static void tree_line(const tree *tr, const json_t *e)
{
	const json_t *rec = qp_trace_find(tr->d->t, str(e, "id"));
	char a[40], b[40];

	printf("%s", qp__lot_label(e));
	if (json_is_true(json_object_get(e, "missing")))
		printf(" (no lot record)");
	else
		printf(" %s", or_empty(str(e, "product")));
	if (tr->up)
		printf(": %s of %s kg, %.2f%%",
		       num(dval(e, "kg_in"), a, sizeof(a)),
		       num(dval(e, "kg"), b, sizeof(b)),
		       100 * dval(e, "share"));
	else
		printf(": %s kg, %.2f%%", num(dval(e, "kg"), a, sizeof(a)),
		       100 * dval(e, "share"));
	if (tr->up && json_is_true(json_object_get(e, "leaf")) &&
	    str(rec, "producer") != NULL)
		printf(", producer %s",
		       qp__producer_name(tr->d->prod_by, str(rec, "producer")));
}

/* A lot, then what it came from (up) or went into (down), indented; a lot
 * met again is not expanded twice.  Depth is bounded by the trace. */
static void tree_print(tree *tr, const char *id, const char *via, int indent)
{
	const json_t *e = qp__by_id(tr->lots, id), *list, *x;
	char how[48];
	size_t i;

	if (e == NULL)
		return;
	list = qp__by_id(tr->edges, id);
	printf("%*s%s%s", indent * 2, "", via != NULL ? via : "",
	       via != NULL ? " " : "");
	tree_line(tr, e);
	if (qp__by_id(tr->seen, id) != NULL && json_array_size(list) > 0) {
		printf(" (see above)\n");
		return;
	}
	printf("\n");
	set_by_id(tr->seen, id, json_true());
	json_array_foreach(list, i, x) {
		snprintf(how, sizeof(how), "%s %s",
			 json_string_value(json_array_get(x, 0)),
			 tr->up ? "<-" : "->");
		tree_print(tr, json_string_value(json_array_get(x, 1)), how,
			   indent + 1);
	}
}

static void text_up(const qp_lineage *d, const json_t *lot, const json_t *res)
{
	const json_t *e, *p;
	char a[40];
	size_t i;
	tree tr;

	printf("upstream of lot %s (%s, %s kg)\n", qp__lot_label(lot),
	       or_empty(str(lot, "product")),
	       num(dval(lot, "kg"), a, sizeof(a)));
	tree_init(&tr, d, res, 1);
	tree_print(&tr, str(lot, "id"), NULL, 0);
	tree_free(&tr);
	printf("%zu lots, %zu events, %zu producers, %zu plots\n",
	       json_array_size(json_object_get(res, "lots")),
	       json_array_size(json_object_get(res, "events")),
	       json_array_size(json_object_get(res, "producers")),
	       json_array_size(json_object_get(res, "plots")));
	json_array_foreach(json_object_get(res, "producers"), i, e) {
		p = qp__by_id(d->prod_by, str(e, "id"));
		printf("producer %s (DNI %s): %s kg, %.2f%%\n",
		       qp__producer_name(d->prod_by, str(e, "id")),
		       str(p, "dni") ? str(p, "dni") : "?",
		       num(dval(e, "kg"), a, sizeof(a)),
		       100 * dval(e, "share"));
	}
	json_array_foreach(json_object_get(res, "plots"), i, e) {
		printf("plot %s (%s): %s kg, %.2f%%", str(e, "id"),
		       qp__producer_name(d->prod_by, str(e, "producer")),
		       num(dval(e, "kg"), a, sizeof(a)),
		       100 * dval(e, "share"));
		if (json_is_number(json_object_get(e, "area_ha")))
			printf(", %.4f ha", dval(e, "area_ha"));
		printf("%s\n", json_is_true(json_object_get(e, "missing"))
				   ? " (no plot record)"
				   : "");
	}
}

static void text_shipment(const qp_lineage *d, const json_t *s)
{
	const char *buyer = str(qp__by_id(d->org_by, str(s, "buyer")), "name");
	char a[40];

	printf("shipment %s: lot %s", str(s, "event"), qp__lot_label(s));
	if (str(s, "destination") != NULL)
		printf(" to %s", str(s, "destination"));
	if (str(s, "buyer") != NULL)
		printf(", buyer %s", buyer != NULL ? buyer : str(s, "buyer"));
	if (str(s, "container") != NULL)
		printf(", container %s", str(s, "container"));
	if (str(s, "document") != NULL)
		printf(", document %s", str(s, "document"));
	if (json_is_number(json_object_get(s, "kg")))
		printf(": %s kg", num(dval(s, "kg"), a, sizeof(a)));
	printf(", %.2f%%\n", 100 * dval(s, "share"));
}

static void text_down(const qp_lineage *d, const json_t *lot,
		      const json_t *producer, const json_t *res)
{
	const json_t *e;
	char a[40];
	size_t i;
	tree tr;

	if (lot != NULL)
		printf("downstream of lot %s (%s, %s kg)\n", qp__lot_label(lot),
		       or_empty(str(lot, "product")),
		       num(dval(lot, "kg"), a, sizeof(a)));
	else
		printf("downstream of producer %s (%s)\n",
		       qp__producer_name(d->prod_by, str(producer, "id")),
		       str(producer, "id"));
	tree_init(&tr, d, res, 0);
	json_array_foreach(json_object_get(res, "lots"), i, e) {
		if (json_integer_value(json_object_get(e, "depth")) == 0)
			tree_print(&tr, str(e, "id"), NULL, 0);
	}
	tree_free(&tr);
	printf("%zu lots, %zu events, %zu shipments, %zu claims\n",
	       json_array_size(json_object_get(res, "lots")),
	       json_array_size(json_object_get(res, "events")),
	       json_array_size(json_object_get(res, "shipments")),
	       json_array_size(json_object_get(res, "claims")));
	json_array_foreach(json_object_get(res, "shipments"), i, e)
		text_shipment(d, e);
	json_array_foreach(json_object_get(res, "claims"), i, e)
		printf("claim %s: lot %s: %s\n", str(e, "event"),
		       qp__lot_label(e), or_empty(str(e, "reason")));
}

/* ------------------------------------------------------------------ */
/* CSV and GeoJSON. */

static const char *cell_num(const json_t *o, const char *key, char *buf,
			    size_t len)
{
	const json_t *v = json_object_get(o, key);

	return json_is_number(v) ? num(json_number_value(v), buf, len) : "";
}

/* One row per (leaf lot, plot) pair, the lot's kg split evenly over its
 * plots; a leaf lot without plots gets one row.  plots: lowercased id ->
 * the result's plot entry (area declared or measured). */
static void csv_leaf(const qp_lineage *d, const json_t *e, const json_t *plots)
{
	const json_t *rec = qp_trace_find(d->t, str(e, "id"));
	const json_t *names = json_object_get(rec, "plots"), *pe, *prod;
	size_t n = json_array_size(names), i;
	const char *pid = str(rec, "producer"), *plot;
	char k[5][40];

	for (i = 0; i < (n > 0 ? n : 1); i++) {
		plot = json_string_value(json_array_get(names, i));
		pe = qp__by_id(plots, plot);
		if (pid == NULL)
			pid = str(pe, "producer");
		prod = qp__by_id(d->prod_by, pid);
		const char *row[] = {
		    str(e, "id"),
		    or_empty(str(e, "code")),
		    or_empty(str(e, "product")),
		    cell_num(e, "kg", k[0], 40),
		    cell_num(e, "kg_in", k[1], 40),
		    cell_num(e, "share", k[2], 40),
		    or_empty(pid),
		    or_empty(str(prod, "name")),
		    or_empty(str(prod, "dni")),
		    or_empty(plot),
		    n > 0 ? num(dval(e, "kg_in") / (double)n, k[3], 40) : "",
		    cell_num(pe, "area_ha", k[4], 40),
		};
		qp_csv_write_row(stdout, row, sizeof(row) / sizeof(row[0]));
	}
}

static void csv_up(const qp_lineage *d, const json_t *res)
{
	static const char *const head[] = {
	    "lot",   "code",  "product",  "lot_kg",
	    "kg_in", "share", "producer", "producer_name",
	    "dni",   "plot",  "plot_kg",  "area_ha"};
	json_t *plots = json_object();
	const json_t *e;
	size_t i;

	json_array_foreach(json_object_get(res, "plots"), i, e)
		set_by_id(plots, str(e, "id"), json_incref((json_t *)e));
	qp_csv_write_row(stdout, head, sizeof(head) / sizeof(head[0]));
	json_array_foreach(json_object_get(res, "lots"), i, e) {
		if (json_is_true(json_object_get(e, "leaf")))
			csv_leaf(d, e, plots);
	}
	json_decref(plots);
}

/* Columns of trace --down --format csv. */
enum {
	C_TYPE,
	C_LOT,
	C_CODE,
	C_PRODUCT,
	C_KG,
	C_SHARE,
	C_DEPTH,
	C_EVENT,
	C_BUYER,
	C_BUYER_NAME,
	C_DESTINATION,
	C_CONTAINER,
	C_DOCUMENT,
	C_REASON,
	CSV_DOWN_COLS
};

/* Write a row whose NULL cells are empty. */
static void csv_down_row(const char **row)
{
	size_t i;

	for (i = 0; i < CSV_DOWN_COLS; i++)
		if (row[i] == NULL)
			row[i] = "";
	qp_csv_write_row(stdout, row, CSV_DOWN_COLS);
}

static void csv_down(const qp_lineage *d, const json_t *res)
{
	const char *head[CSV_DOWN_COLS] = {[C_TYPE] = "type",
					   [C_LOT] = "lot",
					   [C_CODE] = "code",
					   [C_PRODUCT] = "product",
					   [C_KG] = "kg",
					   [C_SHARE] = "share",
					   [C_DEPTH] = "depth",
					   [C_EVENT] = "event",
					   [C_BUYER] = "buyer",
					   [C_BUYER_NAME] = "buyer_name",
					   [C_DESTINATION] = "destination",
					   [C_CONTAINER] = "container",
					   [C_DOCUMENT] = "document",
					   [C_REASON] = "reason"};
	const json_t *e;
	char k[3][40];
	size_t i;

	csv_down_row(head);
	json_array_foreach(json_object_get(res, "lots"), i, e) {
		const char *row[CSV_DOWN_COLS] = {
		    [C_TYPE] = "lot",
		    [C_LOT] = str(e, "id"),
		    [C_CODE] = str(e, "code"),
		    [C_PRODUCT] = str(e, "product"),
		    [C_KG] = cell_num(e, "kg", k[0], 40),
		    [C_SHARE] = cell_num(e, "share", k[1], 40),
		    [C_DEPTH] = cell_num(e, "depth", k[2], 40)};
		csv_down_row(row);
	}
	json_array_foreach(json_object_get(res, "shipments"), i, e) {
		const char *row[CSV_DOWN_COLS] = {
		    [C_TYPE] = "shipment",
		    [C_LOT] = str(e, "lot"),
		    [C_CODE] = str(e, "code"),
		    [C_KG] = cell_num(e, "kg", k[0], 40),
		    [C_SHARE] = cell_num(e, "share", k[1], 40),
		    [C_EVENT] = str(e, "event"),
		    [C_BUYER] = str(e, "buyer"),
		    [C_BUYER_NAME] =
			str(qp__by_id(d->org_by, str(e, "buyer")), "name"),
		    [C_DESTINATION] = str(e, "destination"),
		    [C_CONTAINER] = str(e, "container"),
		    [C_DOCUMENT] = str(e, "document")};
		csv_down_row(row);
	}
	json_array_foreach(json_object_get(res, "claims"), i, e) {
		const char *row[CSV_DOWN_COLS] = {[C_TYPE] = "claim",
						  [C_LOT] = str(e, "lot"),
						  [C_CODE] = str(e, "code"),
						  [C_EVENT] = str(e, "event"),
						  [C_REASON] =
						      str(e, "reason")};
		csv_down_row(row);
	}
}

/* The upstream plots as a FeatureCollection (coordinates with at least 6
 * decimals: qp_cli_dumps). */
static void geojson_up(const qp_lineage *d, const json_t *res)
{
	const json_t *e, *p;
	json_t *f;
	size_t i, n = 0;
	char *s;

	fputs(QP_FC_HEAD, stdout);
	json_array_foreach(json_object_get(res, "plots"), i, e) {
		p = qp__by_id(d->plot_by, str(e, "id"));
		if (!json_is_object(json_object_get(p, "geometry")))
			continue;
		f = json_pack(
		    "{s:s, s:O, s:{s:O, s:O, s:O?, s:O, s:O}}", "type",
		    "Feature", "geometry", json_object_get(p, "geometry"),
		    "properties", "id", json_object_get(e, "id"), "producer",
		    json_object_get(e, "producer"), "producer_name",
		    json_object_get(qp__by_id(d->prod_by, str(e, "producer")),
				    "name"),
		    "kg", json_object_get(e, "kg"), "share",
		    json_object_get(e, "share"));
		s = qp_cli_dumps(f);
		printf("%s\n%s", n++ ? "," : "", s);
		free(s);
		json_decref(f);
	}
	fputs(n ? QP_FC_TAIL : QP_FC_TAIL0, stdout);
}

/* ------------------------------------------------------------------ */
/* quipu trace */

static int parse_format(const char *s)
{
	static const char *const names[] = {"text", "json", "geojson", "csv"};
	int i;

	for (i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i; /* FMT_* in the same order */
	return -1;
}

/* Parse trace's command line.  *done is set when --help was printed (the
 * command then ends with the status returned). */
static int trace_args(qp_cli *c, int argc, char **argv, int *down, int *fmt,
		      int *done)
{
	static const struct option opts[] = {
	    QP_CLI_COMMON_OPTS,
	    {"down", no_argument, NULL, OPT_DOWN},
	    {"format", required_argument, NULL, OPT_FORMAT},
	    {NULL, 0, NULL, 0},
	};
	int o, status = 0;

	optind = 0;
	*done = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "", opts, &status)) != -1) {
		if (o == -2) {
			*done = 1;
			return status;
		}
		if (o == OPT_DOWN)
			*down = 1;
		else if (o == OPT_FORMAT && (*fmt = parse_format(optarg)) < 0)
			return qp_cli_usage(
			    argv[0],
			    "unknown format \"%s\" (text, json, "
			    "geojson or csv)",
			    optarg);
	}
	if ((status = qp_cli_operands(argc, argv, 1, "LOT")) != QP_EXIT_OK)
		return status;
	if (*down && *fmt == FMT_GEOJSON)
		return qp_cli_usage(argv[0], "--format geojson lists the plots "
					     "upstream; it does not go with "
					     "--down");
	return QP_EXIT_OK;
}

/* Compute the trace of a lot (up or down) or of a producer (down). */
static int trace_run(const qp_lineage *d, const json_t *lot, int down,
		     const json_t *producer, json_t **res)
{
	json_t *start = NULL;
	char err[512] = "";
	int rc;

	if (!down) {
		rc = qp_trace_up(d->t, str(lot, "id"), res, err, sizeof(err));
	} else {
		if (lot != NULL)
			start = json_pack("[s]", str(lot, "id"));
		else
			qp_trace_producer_lots(d->t, str(producer, "id"),
					       &start);
		rc = qp_trace_down(d->t, start, res, err, sizeof(err));
		json_decref(start);
	}
	if (rc != 0) {
		qp_cli_err("trace: %s", err[0] ? err : qp_strerror(rc));
		return QP_EXIT_FAIL;
	}
	return QP_EXIT_OK;
}

static void trace_print(const qp_lineage *d, int fmt, int down,
			const json_t *lot, const json_t *producer,
			const json_t *res)
{
	json_t *o;

	if (fmt == FMT_JSON) {
		o = assemble(lot, producer, res);
		print_json(o);
		json_decref(o);
	} else if (fmt == FMT_CSV) {
		if (down)
			csv_down(d, res);
		else
			csv_up(d, res);
	} else if (fmt == FMT_GEOJSON) {
		geojson_up(d, res);
	} else if (down) {
		text_down(d, lot, producer, res);
	} else {
		text_up(d, lot, res);
	}
}

int qp_cmd_trace(qp_cli *c, int argc, char **argv)
{
	int down = 0, fmt = FMT_TEXT, status, done;
	const json_t *lot, *producer = NULL;
	json_t *res = NULL;
	const char *key;
	qp_lineage d;

	if ((status = trace_args(c, argc, argv, &down, &fmt, &done)) !=
		QP_EXIT_OK ||
	    done)
		return status;
	key = argv[optind];
	if ((status = qp__lineage_load(c, &d)) != QP_EXIT_OK)
		return status;
	if ((lot = qp_trace_find(d.t, key)) == NULL)
		producer = qp__by_id(d.prod_by, key);
	if (lot == NULL && producer != NULL && !down) {
		qp_cli_err("trace: %s is a producer; trace a producer with "
			   "--down",
			   key);
		status = QP_EXIT_FAIL;
	} else if (lot == NULL && producer == NULL &&
		   qp_trace_code_shared(d.t, key)) {
		qp_cli_err("trace: lot code %s is used by several organisations; "
			   "give the lot's id", key);
		status = QP_EXIT_FAIL;
	} else if (lot == NULL && producer == NULL) {
		qp_cli_err("trace: no lot or producer %s", key);
		status = QP_EXIT_FAIL;
	} else if ((status = trace_run(&d, lot, down, producer, &res)) ==
		       QP_EXIT_OK &&
		   (status = enrich(c, &d, res, !down)) == QP_EXIT_OK) {
		trace_print(&d, fmt, down, lot, producer, res);
	}
	json_decref(res);
	qp__lineage_free(&d);
	return status;
}
