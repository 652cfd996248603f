/*
 * cmd_dds.c - quipu dds: the EU due-diligence GeoJSON (TRACES) of a lot:
 * every plot upstream of it, once, with the properties TRACES asks for and
 * coordinates with at least 6 decimals, split into files below a size
 * limit.  The plots are checked first (proto/plotcheck.c: geometry,
 * overlaps with other producers' plots, forest-loss layers), as are the
 * received lots (each must name its plots); a blocking finding stops the
 * writing unless --force.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "geo.h"
#include "lineage.h"
#include "plotcheck.h"
#include "util.h"

#define DDS_MAX_BYTES 25000000ull /* below TRACES' 25 MB per file */

enum { OPT_COUNTRY = 256, OPT_FORCE, OPT_MAX_BYTES };

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const char *or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static double dval(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* ------------------------------------------------------------------ */
/* Options */

typedef struct dds_opts {
	const char *out;
	char country[3];
	int force;
	unsigned long long max_bytes;
} dds_opts;

static int is_letter(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static int dds_opt(const char *cmd, int opt, dds_opts *o)
{
	char *end;

	switch (opt) {
	case 'o': o->out = optarg; break;
	case OPT_COUNTRY:
		if (strlen(optarg) != 2 || !is_letter(optarg[0]) ||
		    !is_letter(optarg[1]))
			return qp_cli_usage(
			    cmd,
			    "--country wants a two-letter "
			    "ISO 3166-1 code such as PE, not \"%s\"",
			    optarg);
		o->country[0] = (char)(optarg[0] & ~0x20); /* upper case */
		o->country[1] = (char)(optarg[1] & ~0x20);
		break;
	case OPT_FORCE: o->force = 1; break;
	case OPT_MAX_BYTES:
		errno = 0;
		o->max_bytes = strtoull(optarg, &end, 10);
		if (errno != 0 || end == optarg || *end != '\0' ||
		    optarg[0] < '0' || optarg[0] > '9' || o->max_bytes == 0)
			return qp_cli_usage(cmd,
					    "--max-bytes wants a positive "
					    "number of bytes, not \"%s\"",
					    optarg);
		break;
	}
	return QP_EXIT_OK;
}

/* Parse dds's command line.  *done is set when --help was printed (the
 * command then ends with the status returned). */
static int dds_args(qp_cli *c, int argc, char **argv, dds_opts *o, int *done)
{
	static const struct option opts[] = {
	    QP_CLI_COMMON_OPTS,
	    {"output", required_argument, NULL, 'o'},
	    {"country", required_argument, NULL, OPT_COUNTRY},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"max-bytes", required_argument, NULL, OPT_MAX_BYTES},
	    {NULL, 0, NULL, 0},
	};
	int opt, status = 0;

	memset(o, 0, sizeof(*o));
	memcpy(o->country, "PE", 3);
	o->max_bytes = DDS_MAX_BYTES;
	optind = 0;
	*done = 0;
	while ((opt = qp_cli_getopt(c, argc, argv, "o:", opts, &status)) !=
	       -1) {
		if (opt == -2) {
			*done = 1;
			return status;
		}
		if ((status = dds_opt(argv[0], opt, o)) != QP_EXIT_OK)
			return status;
	}
	return qp_cli_operands(argc, argv, 1, "LOT");
}

/* ------------------------------------------------------------------ */
/* Blocking findings */

/* A Point plot with no declared area: TRACES wants the area of a plot
 * given as a point, and only a polygon's can be measured. */
static int point_without_area(const json_t *plot)
{
	const char *type = json_string_value(
	    json_object_get(json_object_get(plot, "geometry"), "type"));

	return type != NULL && strcmp(type, "Point") == 0 &&
	       !json_is_number(json_object_get(plot, "area_ha"));
}

/* Leaf lots that name no plots, plots that have no record, and point
 * plots without a declared area. */
static void lot_findings(const qp_lineage *d, const json_t *res, json_t *lines)
{
	json_t *seen = json_object();
	const json_t *e, *rec, *p;
	const char *pid;
	size_t i, j;

	json_array_foreach(json_object_get(res, "lots"), i, e) {
		if (!json_is_true(json_object_get(e, "leaf")))
			continue;
		if ((rec = qp_trace_find(d->t, str(e, "id"))) == NULL) {
			json_array_append_new(
			    lines,
			    json_sprintf(
				"lot %s has no record (voided or not synced): "
				"its plots are unknown",
				str(e, "id")));
			continue;
		}
		pid = str(rec, "producer");
		if (json_array_size(json_object_get(rec, "plots")) == 0)
			json_array_append_new(
			    lines, json_sprintf(
				       "lot %s (producer %s) names no plots",
				       qp__lot_label(rec),
				       pid ? qp__producer_name(d->prod_by, pid)
					   : "not recorded"));
		json_array_foreach(json_object_get(rec, "plots"), j, p) {
			const json_t *plot =
			    qp__by_id(d->plot_by, json_string_value(p));
			if (plot == NULL)
				json_array_append_new(
				    lines,
				    json_sprintf(
					"lot %s names plot %s, which has no "
					"record (voided or not synced)",
					qp__lot_label(rec),
					json_string_value(p)));
			else if (point_without_area(plot) &&
				 json_object_get(seen, str(plot, "id")) == NULL) {
				json_object_set_new(seen, str(plot, "id"),
						    json_true());
				json_array_append_new(
				    lines,
				    json_sprintf(
					"plot %s (producer %s) is a point "
					"without a declared area_ha (TRACES "
					"needs the Area of a point)",
					str(plot, "id"),
					qp__producer_name(d->prod_by,
							  str(plot, "producer"))));
			}
		}
	}
	json_decref(seen);
}

/* "plot ID (producer NAME)" for plot i of a plotcheck finding. */
static json_t *finding_plot(const qp_lineage *d, const json_t *f, size_t i)
{
	const char *plot =
	    json_string_value(json_array_get(json_object_get(f, "plots"), i));
	const char *prod = json_string_value(
	    json_array_get(json_object_get(f, "producers"), i));

	return json_sprintf("plot %s (producer %s)", or_empty(plot),
			    qp__producer_name(d->prod_by, prod));
}

/* One line per plotcheck finding, worded as `quipu check plots` does;
 * findings about points have no area. */
static json_t *finding_line(const qp_lineage *d, const json_t *f)
{
	const char *type = or_empty(str(f, "type"));
	json_t *a = finding_plot(d, f, 0), *b = finding_plot(d, f, 1), *line;
	const char *sa = json_string_value(a), *sb = json_string_value(b);
	double area = dval(f, "overlap_ha"), pct = dval(f, "overlap_pct");
	char ha[32];

	qp_cli_ha_text(area, ha, sizeof(ha));
	if (strcmp(type, "geometry") == 0)
		line = json_sprintf("geometry: %s: %s", sa,
				    or_empty(str(f, "reason")));
	else if (strcmp(type, "forest_loss") == 0 && !(area > 0))
		line = json_sprintf("forest_loss: %s: layer %s feature %lld: "
				    "the point lies inside",
				    sa, or_empty(str(f, "layer")),
				    (long long)json_integer_value(
					json_object_get(f, "feature")));
	else if (strcmp(type, "forest_loss") == 0)
		line = json_sprintf("forest_loss: %s: layer %s feature %lld: "
				    "%s ha, %.1f%% of the plot",
				    sa, or_empty(str(f, "layer")),
				    (long long)json_integer_value(
					json_object_get(f, "feature")),
				    ha, pct);
	else if (!(area > 0))
		line =
		    json_sprintf("%s: %s and %s: the same point", type, sa, sb);
	else
		line = json_sprintf("%s: %s and %s: %s ha, %.1f%% of the "
				    "smaller",
				    type, sa, sb, ha, pct);
	json_decref(a);
	json_decref(b);
	return line;
}

/* The plotcheck findings that involve the plots of only. */
static int plot_findings(qp_cli *c, const qp_lineage *d, qp_geo *g,
			 const json_t *only, json_t *lines)
{
	qp_plotcheck_opts opts = qp_plotcheck_opts_default();
	struct qp_layer *layers = NULL;
	json_t *owner = NULL, *found = NULL, *f;
	size_t n = 0, i;
	int status, rc;

	if ((status = qp_cli_layers(c, NULL, &layers, &owner, &n)) != 0)
		return status;
	rc = qp_plotcheck_run(g, d->plots, layers, n, only, &opts, &found);
	json_decref(owner);
	free(layers);
	if (rc != 0) {
		qp_cli_err("dds: checking plots: %s", qp_strerror(rc));
		return QP_EXIT_FAIL;
	}
	json_array_foreach(found, i, f)
		json_array_append_new(lines, finding_line(d, f));
	json_decref(found);
	return QP_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* Features and files */

/* Where a plot is: the producer's community, else the organisation's
 * district, province and region, else its name (a new JSON string). */
static json_t *production_place(const qp_lineage *d, const json_t *plot,
				const json_t *prod)
{
	static const char *const parts[] = {"district", "province", "region"};
	const json_t *org = qp__by_id(d->org_by, str(plot, "org"));
	const char *s = str(prod, "community");
	char buf[512] = "";
	size_t i;

	if (s != NULL && s[0] != '\0')
		return json_string(s);
	if (org == NULL)
		org = qp__by_id(d->org_by, str(prod, "org"));
	for (i = 0; i < 3; i++) {
		s = str(org, parts[i]);
		if (s == NULL || s[0] == '\0')
			continue;
		if (buf[0] != '\0')
			strncat(buf, ", ", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, s, sizeof(buf) - strlen(buf) - 1);
	}
	if (buf[0] != '\0')
		return json_string(buf);
	return json_string(or_empty(str(org, "name")));
}

/* Declared area, else the geodesic area of the geometry; 4 decimals; 0
 * when neither is known (a point without area_ha). */
static double plot_area(qp_geo *g, const json_t *plot)
{
	const json_t *a = json_object_get(plot, "area_ha");
	qp_geo_result r;
	double ha = 0;

	if (json_is_number(a) && json_number_value(a) > 0)
		ha = json_number_value(a);
	else if (qp_geo_check_plot(g, json_object_get(plot, "geometry"), NAN,
				   NAN, NULL, &r, NULL, NULL, 0) == 0)
		ha = r.area_ha;
	return round(ha * 1e4) / 1e4;
}

/* One plot's Feature as text (malloc'd); coordinates with at least 6
 * decimals (qp_cli_dumps writes "coordinates" with qp_geo_format_coord). */
static char *feature(const qp_lineage *d, qp_geo *g, const json_t *plot,
		     const char *country)
{
	const json_t *prod = qp__by_id(d->prod_by, str(plot, "producer"));
	double ha = plot_area(g, plot);
	json_t *f;
	char *s;

	f = json_pack("{s:s, s:O, s:{s:s, s:s, s:o}}", "type", "Feature",
		      "geometry", json_object_get(plot, "geometry"),
		      "properties", "ProducerName", or_empty(str(prod, "name")),
		      "ProducerCountry", country, "ProductionPlace",
		      production_place(d, plot, prod));
	/* A point without a declared area (written only with --force) has
	 * no Area: declaring 0 ha would be a false statement. */
	if (ha > 0)
		json_object_set_new(json_object_get(f, "properties"), "Area",
				    json_real(ha));
	s = qp_cli_dumps(f);
	json_decref(f);
	return s;
}

/* The upstream plot records, once each, by id. */
static json_t *upstream_plots(const qp_lineage *d, const json_t *res,
			      json_t *only)
{
	json_t *plots = json_array(), *p;
	const json_t *e;
	size_t i;

	json_array_foreach(json_object_get(res, "plots"), i, e) {
		p = qp__by_id(d->plot_by, str(e, "id"));
		if (p == NULL || json_object_get(only, str(p, "id")) != NULL)
			continue;
		json_object_set_new(only, str(p, "id"), json_true());
		json_array_append(plots, p);
	}
	return plots;
}

typedef struct ddsout {
	char **feat;
	size_t *len, n;
	size_t *first; /* file k holds features first[k] .. first[k+1]-1 */
	size_t nfiles;
} ddsout;

/* Split the features into files below max bytes each, greedily in order.
 * Returns an exit status (a feature too big for any file is an error). */
static int dds_pack(ddsout *o, unsigned long long max)
{
	size_t base = strlen(QP_FC_HEAD) + strlen(QP_FC_TAIL), size = base;
	size_t i, cnt = 0, add;

	o->first = qp_xcalloc(o->n + 2, sizeof(*o->first));
	o->nfiles = 1;
	for (i = 0; i < o->n; i++) {
		if (base + o->len[i] + 1 >= max) {
			qp_cli_err("dds: the feature of one plot alone makes a "
				   "%zu-byte file, not below --max-bytes %llu",
				   base + o->len[i] + 1, max);
			return QP_EXIT_FAIL;
		}
		add = o->len[i] + (cnt > 0 ? 2 : 1); /* ",\n" or "\n" */
		if (cnt > 0 && size + add >= max) {
			o->first[o->nfiles++] = i;
			size = base;
			cnt = 0;
			add = o->len[i] + 1;
		}
		size += add;
		cnt++;
	}
	o->first[o->nfiles] = o->n;
	return QP_EXIT_OK;
}

/* Write features [from, to) as one FeatureCollection to path (through a
 * temporary file renamed into place); *bytes gets the size. */
static int dds_file(const ddsout *o, size_t from, size_t to, const char *path,
		    size_t *bytes)
{
	char *tmp = NULL;
	size_t i, n = 0;
	FILE *f;
	int ok;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		abort();
	if ((f = fopen(tmp, "w")) == NULL) {
		qp_cli_err("dds: cannot write %s: %s", tmp, strerror(errno));
		free(tmp);
		return QP_EXIT_FAIL;
	}
	fputs(QP_FC_HEAD, f);
	n += strlen(QP_FC_HEAD);
	for (i = from; i < to; i++) {
		fputs(i > from ? ",\n" : "\n", f);
		fputs(o->feat[i], f);
		n += (i > from ? 2 : 1) + o->len[i];
	}
	fputs(to > from ? QP_FC_TAIL : QP_FC_TAIL0, f);
	n += strlen(to > from ? QP_FC_TAIL : QP_FC_TAIL0);
	ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = (fclose(f) == 0) && ok && rename(tmp, path) == 0;
	if (!ok) {
		qp_cli_err("dds: writing %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	*bytes = n;
	return ok ? QP_EXIT_OK : QP_EXIT_FAIL;
}

/* FILE when everything fits, else FILE-1.geojson, FILE-2.geojson... with
 * FILE's .geojson suffix taken off first. */
static char *dds_name(const char *out, size_t k, size_t nfiles)
{
	size_t n = strlen(out);
	char *s;

	if (nfiles == 1)
		return qp_xstrdup(out);
	if (n >= 8 && strcmp(out + n - 8, ".geojson") == 0)
		n -= 8;
	if (asprintf(&s, "%.*s-%zu.geojson", (int)n, out, k + 1) < 0)
		abort();
	return s;
}

/* Files of an earlier run under the same name that this one did not
 * write (FILE when this one was split, or parts beyond this one's last)
 * would be taken for part of the statement: say so. */
static void warn_stale(const char *out, size_t nfiles)
{
	char *name;

	if (nfiles > 1 && access(out, F_OK) == 0)
		qp_cli_err("warning: %s is from an earlier run, not part of "
			   "this statement", out);
	name = dds_name(out, nfiles > 1 ? nfiles : 0, 2);
	if (access(name, F_OK) == 0)
		qp_cli_err("warning: %s and any later parts are from an "
			   "earlier run, not part of this statement", name);
	free(name);
}

static int dds_write(const ddsout *o, const char *out)
{
	size_t k, bytes = 0;
	int status = QP_EXIT_OK;
	char *name;

	for (k = 0; k < o->nfiles && status == QP_EXIT_OK; k++) {
		name = dds_name(out, k, o->nfiles);
		status =
		    dds_file(o, o->first[k], o->first[k + 1], name, &bytes);
		if (status == QP_EXIT_OK)
			printf("wrote %s: %zu plots, %zu bytes\n", name,
			       o->first[k + 1] - o->first[k], bytes);
		free(name);
	}
	if (status == QP_EXIT_OK)
		warn_stale(out, o->nfiles);
	return status;
}

/* dds-CODE.geojson, with anything but [A-Za-z0-9._-] in CODE as '_'. */
static char *default_out(const char *code)
{
	char *s, *p;

	if (asprintf(&s, "dds-%s.geojson", code) < 0)
		abort();
	for (p = s + 4; *p; p++)
		if (!is_letter(*p) && !(*p >= '0' && *p <= '9') &&
		    strchr("._-", *p) == NULL)
			*p = '_';
	return s;
}

static int dds_emit(const qp_lineage *d, qp_geo *g, const json_t *plots,
		    const dds_opts *o, const char *code)
{
	ddsout out = {0};
	char *path = o->out ? qp_xstrdup(o->out) : default_out(code);
	int status;
	size_t i;

	out.n = json_array_size(plots);
	out.feat = qp_xcalloc(out.n + 1, sizeof(*out.feat));
	out.len = qp_xcalloc(out.n + 1, sizeof(*out.len));
	for (i = 0; i < out.n; i++) {
		out.feat[i] =
		    feature(d, g, json_array_get(plots, i), o->country);
		out.len[i] = strlen(out.feat[i]);
	}
	if ((status = dds_pack(&out, o->max_bytes)) == QP_EXIT_OK)
		status = dds_write(&out, path);
	for (i = 0; i < out.n; i++)
		free(out.feat[i]);
	free(out.feat);
	free(out.len);
	free(out.first);
	free(path);
	return status;
}

/* ------------------------------------------------------------------ */
/* quipu dds */

static int cmp_plot_id(const void *a, const void *b)
{
	return strcmp(str(*(json_t *const *)a, "id"),
		      str(*(json_t *const *)b, "id"));
}

static void sort_by_id(json_t *arr)
{
	size_t n = json_array_size(arr), i;
	json_t **v = qp_xcalloc(n + 1, sizeof(*v));

	for (i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof(*v), cmp_plot_id);
	json_array_clear(arr);
	for (i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
}

/* Whether a plot's polygon has inner rings: the EU system is reported to
 * refuse them, so the user is warned (the plot itself is valid). */
static int has_holes(const json_t *plot)
{
	const json_t *g = json_object_get(plot, "geometry"), *poly;
	const char *type = str(g, "type");
	const json_t *co = json_object_get(g, "coordinates");
	size_t i;

	if (type != NULL && strcmp(type, "Polygon") == 0)
		return json_array_size(co) > 1;
	if (type != NULL && strcmp(type, "MultiPolygon") == 0)
		json_array_foreach(co, i, poly)
			if (json_array_size(poly) > 1)
				return 1;
	return 0;
}

/* Check, then write (or refuse). */
static int dds_lot(qp_cli *c, const qp_lineage *d, const json_t *lot,
		   const json_t *res, const dds_opts *o)
{
	json_t *only = json_object(), *lines = json_array(), *plots, *l;
	qp_geo *g = NULL;
	int status;
	size_t i;

	plots = upstream_plots(d, res, only);
	sort_by_id(plots);
	lot_findings(d, res, lines);
	if (qp_geo_new(&g) != 0) {
		qp_cli_err("dds: %s", qp_strerror(QP_ENOMEM));
		status = QP_EXIT_FAIL;
		goto out;
	}
	if ((status = plot_findings(c, d, g, only, lines)) != QP_EXIT_OK)
		goto out;
	json_array_foreach(lines, i, l)
		printf("%s\n", json_string_value(l));
	if (json_array_size(lines) > 0 && !o->force) {
		qp_cli_err("dds %s: %zu blocking finding%s (nothing written; "
			   "--force writes anyway)",
			   qp__lot_label(lot), json_array_size(lines),
			   json_array_size(lines) == 1 ? "" : "s");
		status = QP_EXIT_FAIL;
		goto out;
	}
	json_array_foreach(plots, i, l)
		if (has_holes(l))
			qp_cli_err("warning: plot %s has inner rings (holes); "
				   "TRACES may refuse them",
				   str(l, "id"));
	status = dds_emit(d, g, plots, o, qp__lot_label(lot));
out:
	qp_geo_free(g);
	json_decref(only);
	json_decref(lines);
	json_decref(plots);
	return status;
}

int qp_cmd_dds(qp_cli *c, int argc, char **argv)
{
	char err[512] = "";
	const json_t *lot;
	json_t *res = NULL;
	dds_opts o;
	int status, done;
	qp_lineage d;

	if ((status = dds_args(c, argc, argv, &o, &done)) != QP_EXIT_OK || done)
		return status;
	if ((status = qp__lineage_load(c, &d)) != QP_EXIT_OK)
		return status;
	if ((lot = qp_trace_find(d.t, argv[optind])) == NULL) {
		if (qp_trace_code_shared(d.t, argv[optind]))
			qp_cli_err("dds: lot code %s is used by several "
				   "organisations; give the lot's id",
				   argv[optind]);
		else
			qp_cli_err("dds: no lot %s", argv[optind]);
		status = QP_EXIT_FAIL;
	} else if (qp_trace_up(d.t, str(lot, "id"), &res, err, sizeof(err))) {
		qp_cli_err("dds: %s", err);
		status = QP_EXIT_FAIL;
	} else {
		status = dds_lot(c, &d, lot, res, &o);
	}
	json_decref(res);
	qp__lineage_free(&d);
	return status;
}
