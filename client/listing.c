/* listing.c - paging through `list` and writing records as JSON lines, CSV
 * or GeoJSON (see cli.h); shared by `quipu list` and `quipu export`. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "util.h"
#include "uuid.h"
#include "wire.h"

int qp_cli_outfmt(const char *s, int allow_geojson)
{
	if (strcmp(s, "jsonl") == 0 || strcmp(s, "json") == 0)
		return QP_OUT_JSONL;
	if (strcmp(s, "csv") == 0)
		return QP_OUT_CSV;
	if (allow_geojson && strcmp(s, "geojson") == 0)
		return QP_OUT_GEOJSON;
	return -1;
}

const qp_field *qp_cli_geom_field(const qp_kind *k)
{
	size_t i;

	for (i = 0; i < k->nfields; i++)
		if (k->fields[i].type == QP_T_GEOM ||
		    k->fields[i].type == QP_T_POINT)
			return &k->fields[i];
	return NULL;
}

/* Columns: id, kind, org, the kind's fields, and with voided records a
 * last column "voided" (the reason, empty for live records). */
static void csv_header(FILE *out, const qp_kind *k, int voided)
{
	const char **cols = qp_xcalloc(k->nfields + 4, sizeof(*cols));
	size_t i;

	cols[0] = "id";
	cols[1] = "kind";
	cols[2] = "org";
	for (i = 0; i < k->nfields; i++)
		cols[i + 3] = k->fields[i].name;
	cols[k->nfields + 3] = "voided";
	qp_csv_write_row(out, cols, k->nfields + 3 + (voided != 0));
	free(cols);
}

static char *cell(const json_t *rec, const char *name)
{
	const json_t *v = json_object_get(rec, name);

	if (v == NULL || json_is_null(v))
		return qp_xstrdup("");
	return qp_schema_to_text(v);
}

static void csv_record(FILE *out, const qp_kind *k, const json_t *rec,
		       int voided)
{
	size_t n = k->nfields + 3 + (voided != 0), i;
	char **cells = qp_xcalloc(n, sizeof(*cells));

	cells[0] = cell(rec, "id");
	cells[1] = cell(rec, "kind");
	cells[2] = cell(rec, "org");
	for (i = 0; i < k->nfields; i++)
		cells[i + 3] = cell(rec, k->fields[i].name);
	if (voided)
		cells[n - 1] = cell(rec, "voided");
	qp_csv_write_row(out, (const char *const *)cells, n);
	for (i = 0; i < n; i++)
		free(cells[i]);
	free(cells);
}

/* One GeoJSON Feature: the geometry, and every other field (id, kind and
 * org included) as properties in the record's own order.  Returns 0 when
 * the record has no geometry (skipped). */
static int geojson_feature(FILE *out, const qp_field *gf, const json_t *rec,
			   int first)
{
	json_t *g = json_object_get(rec, gf->name), *props, *feat;
	char *s;

	if (!json_is_object(g))
		return 0;
	props = json_copy((json_t *)rec);
	json_object_del(props, gf->name);
	feat = json_pack("{s:s, s:O, s:o}", "type", "Feature", "geometry", g,
			 "properties", props);
	s = qp_cli_dumps(feat);
	fprintf(out, "%s%s", first ? "" : ",\n", s);
	free(s);
	json_decref(feat);
	return 1;
}

/* Page through `list` for kind (org, voided as in cli.h), handing each
 * page's records array to fn; a reply that is malformed or does not move
 * on is refused.  Returns an exit status (errors printed). */
static int list_pages(qp_cli *c, const char *kind, const char *org,
		      int voided, void (*fn)(void *ctx, json_t *recs),
		      void *ctx)
{
	char after[QP_UUID_STRLEN + 1] = "";
	json_t *req, *reply = NULL, *recs;
	const char *next;
	int status;

	for (;;) {
		req = json_pack("{s:s, s:s, s:i}", "op", "list", "kind", kind,
				"limit", (int)QP_API_LIST_MAX);
		if (org != NULL)
			json_object_set_new(req, "org", json_string(org));
		if (after[0] != '\0')
			json_object_set_new(req, "after", json_string(after));
		if (voided)
			json_object_set_new(req, "voided", json_true());
		status = qp_cli_call(c, req, &reply);
		json_decref(req);
		if (status != QP_EXIT_OK)
			return status;
		recs = json_object_get(reply, "records");
		next = json_string_value(json_object_get(reply, "next"));
		if (!json_is_array(recs) || next == NULL ||
		    strlen(next) > QP_UUID_STRLEN ||
		    (next[0] != '\0' && strcmp(next, after) == 0)) {
			json_decref(reply);
			qp_cli_err("malformed list reply from quipud");
			return QP_EXIT_FAIL;
		}
		fn(ctx, recs);
		memcpy(after, next, strlen(next) + 1);
		json_decref(reply);
		if (after[0] == '\0')
			return QP_EXIT_OK;
	}
}

/* Writing records as they arrive, page by page. */
typedef struct lwriter {
	const qp_kind *k;
	const qp_field *gf;
	qp_outfmt fmt;
	FILE *out;
	size_t n;
	size_t nogeom; /* GeoJSON: records left out, without a geometry */
	int begun;
	int voided; /* voided records listed too */
} lwriter;

/* The CSV header or the GeoJSON opening, written once quipud has answered
 * the first page, so a refused listing prints nothing on stdout. */
static void write_begin(lwriter *w)
{
	if (w->begun)
		return;
	w->begun = 1;
	if (w->fmt == QP_OUT_GEOJSON)
		fputs("{\"type\":\"FeatureCollection\",\"features\":[\n",
		      w->out);
	else if (w->fmt == QP_OUT_CSV)
		csv_header(w->out, w->k, w->voided);
}

static void write_page(void *ctx, json_t *recs)
{
	lwriter *w = ctx;
	json_t *rec;
	size_t i;
	char *s;

	write_begin(w);
	json_array_foreach(recs, i, rec) {
		if (!json_is_object(rec))
			continue;
		if (w->fmt == QP_OUT_JSONL) {
			s = qp_cli_dumps(rec);
			fprintf(w->out, "%s\n", s);
			free(s);
			w->n++;
		} else if (w->fmt == QP_OUT_CSV) {
			csv_record(w->out, w->k, rec, w->voided);
			w->n++;
		} else if (geojson_feature(w->out, w->gf, rec, w->n == 0)) {
			w->n++;
		} else {
			w->nogeom++;
		}
	}
}

int qp_cli_list_write(qp_cli *c, const qp_kind *k, const char *org,
		      int voided, qp_outfmt fmt, FILE *out, size_t *count,
		      size_t *nogeom)
{
	lwriter w = {.k = k, .fmt = fmt, .out = out, .voided = voided};
	int status;

	if (fmt == QP_OUT_GEOJSON) {
		w.gf = qp_cli_geom_field(k);
		if (w.gf == NULL) {
			qp_cli_err("kind %s has no geometry; GeoJSON export "
				   "is for plot and session records",
				   k->name);
			return QP_EXIT_FAIL;
		}
	}
	if ((status = list_pages(c, k->name, org, voided, write_page, &w)) !=
	    QP_EXIT_OK)
		return status;
	if (fmt == QP_OUT_GEOJSON)
		fputs(w.n ? "\n]}\n" : "]}\n", out);
	*count = w.n;
	if (nogeom != NULL)
		*nogeom = w.nogeom;
	return QP_EXIT_OK;
}

static void keep_page(void *ctx, json_t *recs)
{
	json_array_extend(ctx, recs);
}

/* Every record of a kind, paged over the API (see cli.h). */
int qp_cli_fetch_all(qp_cli *c, const char *kind, const char *org,
		     int voided, json_t **out)
{
	json_t *all = json_array();
	int status = list_pages(c, kind, org, voided, keep_page, all);

	if (status != QP_EXIT_OK) {
		json_decref(all);
		return status;
	}
	*out = all;
	return QP_EXIT_OK;
}
