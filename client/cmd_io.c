/*
 * cmd_io.c - quipu import and export: files in and out in bulk.
 *
 * import checks the whole file first (syntax, columns, cell conversion), so
 * a malformed file writes nothing.  It then sends batches of records,
 * one batch at a time: each batch is one durable commit, accepted or
 * refused as a whole by quipud.  Only one batch is in flight so that a
 * refusal leaves a clean cut: every batch before it committed, nothing from
 * it or after it written, and the user can fix the line and resume with
 * --from-line (the records before that line are checked but not sent).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "source.h"
#include "util.h"
#include "wire.h"

#define IMPORT_BATCH 500
#define IMPORT_DEPTH 1 /* batches in flight: see the comment above */

typedef struct batch {
	uint64_t rid;
	const qp_kind *k;
	size_t n;
	size_t *lines; /* input line of each record */
} batch;

typedef struct import {
	qp_cli *c;
	const char *name;
	size_t total;          /* records to send */
	size_t max;            /* --batch */
	size_t from;           /* --from-line: send records from this line */
	size_t skipped;        /* records before it */
	batch fly[IMPORT_DEPTH]; /* ring of batches sent, oldest at head */
	size_t head, nfly;
	size_t committed;      /* before the first refusal */
	size_t last_line;      /* last line committed before it */
	size_t *per_kind;      /* committed records by kind table index */
	/* First refusal, and what was committed after it. */
	int refused;
	size_t ref_first, ref_last;
	size_t later, later_first, later_last;
	char why[QP_ERRMSG_LEN + 256]; /* "FILE:LINE: reason" of the refusal */
	int conn_rc;           /* lost connection (api code) */
	int tty;
} import;

static void progress(import *im, int done)
{
	size_t n = im->committed + im->later;
	int pct = im->total ? (int)(n * 100 / im->total) : 100;
	char bar[31];
	int i;

	if (!im->tty)
		return;
	if (done) {
		fputs("\r\033[K", stderr);
		return;
	}
	for (i = 0; i < 30; i++)
		bar[i] = i < pct * 30 / 100 ? '#' : '.';
	bar[30] = '\0';
	fprintf(stderr, "\rimporting [%s] %zu/%zu records (%d%%)", bar, n,
		im->total, pct);
}

/* Read the reply to the oldest batch in flight and account for it. */
static void collect(import *im)
{
	batch *b = &im->fly[im->head];
	json_t *reply = NULL, *idx;
	char why[QP_ERRMSG_LEN + 32];
	size_t at;
	int rc;

	im->head = (im->head + 1) % IMPORT_DEPTH;
	im->nfly--;
	if (im->conn_rc)
		return;
	rc = qp_api_recv(im->c->api, b->rid, &reply);
	if (rc < 0) {
		im->conn_rc = rc;
		/* Put it back: it is still in flight as far as we know. */
		im->head = (im->head + IMPORT_DEPTH - 1) % IMPORT_DEPTH;
		im->nfly++;
		return;
	}
	if (json_is_true(json_object_get(reply, "ok"))) {
		json_t *wv;
		/* Accepted with warnings (geometry): said, not refused. */
		json_array_foreach(json_object_get(reply, "warnings"), at, wv) {
			idx = json_object_get(wv, "index");
			const char *w =
				json_string_value(json_object_get(wv, "warning"));
			if (w == NULL || !json_is_integer(idx) ||
			    json_integer_value(idx) < 0 ||
			    (size_t)json_integer_value(idx) >= b->n)
				continue;
			progress(im, 1);
			fprintf(stderr, "quipu: warning: line %zu: %s\n",
				b->lines[json_integer_value(idx)], w);
		}
		if (!im->refused) {
			im->committed += b->n;
			im->last_line = b->lines[b->n - 1];
			im->per_kind[b->k - qp_schema_kinds(&at)] += b->n;
		} else {
			if (im->later == 0)
				im->later_first = b->lines[0];
			im->later += b->n;
			im->later_last = b->lines[b->n - 1];
		}
	} else if (!im->refused) {
		im->refused = 1;
		qp_cli_add_refusal(reply, b->lines, b->n, &at, why,
				   sizeof(why));
		qp_fmt(im->why, sizeof(im->why), "%s:%zu: %s", im->name,
		       at > 0 ? at : b->lines[0], why);
		im->ref_first = b->lines[0];
		im->ref_last = b->lines[b->n - 1];
	}
	json_decref(reply);
	if (!im->refused)
		progress(im, 0);
}

/* Send the records of cur as one add request; cur's lines move into the
 * ring.  Returns 0, or -1 when the batch could not be sent (reported). */
static int send_batch(import *im, json_t *recs, batch *cur)
{
	batch *slot;
	json_t *req;
	size_t *tmp;
	int rc;

	while (im->nfly == IMPORT_DEPTH && !im->conn_rc)
		collect(im);
	if (im->refused || im->conn_rc)
		return -1;
	req = json_pack("{s:s, s:s, s:O}", "op", "add", "kind", cur->k->name,
			"records", recs);
	rc = qp_api_send(im->c->api, req, &cur->rid);
	json_decref(req);
	if (rc == QP_ETOOBIG) {
		qp_fmt(im->why, sizeof(im->why),
		       "%s:%zu: the batch of lines %zu-%zu is larger than "
		       "%u MiB; use a smaller --batch", im->name,
		       cur->lines[0], cur->lines[0], cur->lines[cur->n - 1],
		       QP_API_MAX_FRAME >> 20);
		im->refused = 1;
		im->ref_first = cur->lines[0];
		im->ref_last = cur->lines[cur->n - 1];
		return -1;
	}
	if (rc < 0) {
		im->conn_rc = rc;
		return -1;
	}
	slot = &im->fly[(im->head + im->nfly) % IMPORT_DEPTH];
	tmp = slot->lines;
	*slot = *cur;
	cur->lines = tmp;
	cur->n = 0;
	im->nfly++;
	return 0;
}

/* "line 7" or "lines 7-12" into buf. */
static const char *lines_of(char *buf, size_t len, size_t a, size_t b)
{
	if (a == b)
		return qp_fmt(buf, len, "line %zu", a);
	return qp_fmt(buf, len, "lines %zu-%zu", a, b);
}

/* The one line of a failed import: the reason, and what was committed so
 * the user knows where to resume. */
static void report_partial(import *im)
{
	char up[64] = "", ref[64];

	progress(im, 1);
	if (im->committed > 0)
		qp_fmt(up, sizeof(up), ", up to line %zu", im->last_line);
	if (im->conn_rc) {
		qp_cli_err("import stopped: %s: %zu records were "
			   "committed%s; %s", qp_strerror(im->conn_rc),
			   im->committed, up,
			   im->nfly ? "the batch in flight may or may not have "
				      "been"
				    : "nothing after that was sent");
		return;
	}
	lines_of(ref, sizeof(ref), im->ref_first, im->ref_last);
	fprintf(stderr, "quipu: %s (%zu records of earlier batches were "
		"committed%s; nothing from this batch, %s, or after it was "
		"written: fix it and resume with --from-line %zu)\n", im->why,
		im->committed, up, ref, im->ref_first);
}

/* Check the whole file; *total gets the number of records from line
 * from on. */
static int check_all(const char *name, const char *buf, size_t len,
		     const qp_kind *kind, int csv, size_t from, size_t *total)
{
	char err[QP_ERRMSG_LEN + 128];
	const qp_kind *k;
	qp_source s;
	json_t *rec;
	size_t line, n = 0;
	int rc;

	rc = qp_source_open(&s, name, buf, len, kind, csv, err, sizeof(err));
	while (rc == 0 &&
	       (rc = qp_source_next(&s, &rec, &k, &line, err, sizeof(err))) ==
		       1) {
		json_decref(rec);
		n += line >= from;
		rc = 0;
	}
	qp_source_close(&s);
	if (rc < 0) {
		qp_cli_err("%s", err);
		return QP_EXIT_FAIL;
	}
	*total = n;
	return QP_EXIT_OK;
}

static int run_import(import *im, const char *buf, size_t len,
		      const qp_kind *kind, int csv)
{
	char err[QP_ERRMSG_LEN + 128];
	const qp_kind *k, *all;
	batch cur = { 0 };
	json_t *recs = json_array(), *rec;
	size_t line, nk, i;
	qp_source s;
	int rc, status;

	cur.lines = qp_xmalloc(im->max * sizeof(size_t));
	for (i = 0; i < IMPORT_DEPTH; i++)
		im->fly[i].lines = qp_xmalloc(im->max * sizeof(size_t));
	rc = qp_source_open(&s, im->name, buf, len, kind, csv, err,
			    sizeof(err));
	while (rc == 0 && (rc = qp_source_next(&s, &rec, &k, &line, err,
					       sizeof(err))) == 1) {
		rc = 0;
		if (line < im->from) {
			json_decref(rec);
			im->skipped++;
			continue;
		}
		if (cur.n > 0 && (cur.k != k || cur.n == im->max)) {
			if (send_batch(im, recs, &cur) < 0) {
				json_decref(rec);
				break;
			}
			json_array_clear(recs);
		}
		cur.k = k;
		cur.lines[cur.n++] = line;
		json_array_append_new(recs, rec);
	}
	if (rc < 0) /* the file changed since it was checked */
		qp_cli_err("%s", err);
	else if (cur.n > 0 && !im->refused && !im->conn_rc)
		send_batch(im, recs, &cur);
	while (im->nfly > 0 && !im->conn_rc)
		collect(im);
	progress(im, 1);
	qp_source_close(&s);
	json_decref(recs);

	if (im->conn_rc) {
		status = im->conn_rc <= -1000 && im->conn_rc != QP_ECLOSED &&
				 im->conn_rc != QP_ETIMEDOUT
			 ? QP_EXIT_FAIL
			 : QP_EXIT_CONN;
		report_partial(im);
	} else if (im->refused || rc < 0) {
		status = QP_EXIT_FAIL;
		if (im->refused)
			report_partial(im);
	} else {
		status = QP_EXIT_OK;
		printf("imported %zu records", im->committed);
		all = qp_schema_kinds(&nk);
		for (i = 0, rc = 0; i < nk; i++) {
			if (im->per_kind[i] == 0)
				continue;
			printf("%s%s: %zu", rc++ ? ", " : " (", all[i].name,
			       im->per_kind[i]);
		}
		printf("%s", rc ? ")" : "");
		if (im->skipped > 0)
			printf("; %zu records before line %zu left out",
			       im->skipped, im->from);
		printf("\n");
	}
	free(cur.lines);
	for (i = 0; i < IMPORT_DEPTH; i++)
		free(im->fly[i].lines);
	return status;
}

int qp_cmd_import(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "kind", required_argument, NULL, 'k' },
		{ "batch", required_argument, NULL, 'b' },
		{ "from-line", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const qp_kind *kind = NULL;
	const char *file;
	import im;
	char *buf = NULL, *end;
	size_t len = 0, nk;
	long batch_n = IMPORT_BATCH, from = 1;
	int o, csv, status = QP_EXIT_OK;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "k:b:f:", opts, &status)) !=
	       -1) {
		if (o == -2)
			return status;
		if (o == 'k' && (kind = qp_cli_kind(optarg)) == NULL)
			return QP_EXIT_USAGE;
		if (o == 'b') {
			errno = 0;
			batch_n = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || batch_n < 1 ||
			    batch_n > QP_API_MAX_RECORDS)
				return qp_cli_usage(argv[0], "--batch wants a "
						    "number from 1 to %d",
						    QP_API_MAX_RECORDS);
		}
		if (o == 'f') {
			errno = 0;
			from = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || from < 1)
				return qp_cli_usage(argv[0], "--from-line wants "
						    "a line number (1 or "
						    "more)");
		}
	}
	if ((status = qp_cli_operands(argc, argv, 1, "FILE")) != QP_EXIT_OK)
		return status;
	file = argv[optind];
	status = qp_cli_read_all(file, QP_CLI_MAX_IMPORT, &buf, &len);
	if (status != QP_EXIT_OK)
		return status;
	memset(&im, 0, sizeof(im));
	im.c = c;
	im.name = strcmp(file, "-") == 0 ? "stdin" : file;
	im.max = (size_t)batch_n;
	im.from = (size_t)from;
	im.tty = isatty(2);
	csv = qp_source_is_csv(file, buf, len, kind);
	status = check_all(im.name, buf, len, kind, csv, im.from, &im.total);
	if (status == QP_EXIT_OK)
		status = qp_cli_connect(c);
	if (status == QP_EXIT_OK) {
		qp_schema_kinds(&nk);
		im.per_kind = qp_xcalloc(nk, sizeof(size_t));
		status = run_import(&im, buf, len, kind, csv);
		free(im.per_kind);
	}
	free(buf);
	return status;
}

/* What a GeoJSON Feature needs that some records lack: "place". */
static const char *geom_name(const qp_kind *k)
{
	const qp_field *gf = qp_cli_geom_field(k);

	return gf != NULL ? gf->name : "geometry";
}

/* Finish an export written to tmp (beside path): flush and sync it and
 * rename it over path; on failure tmp is removed.  Errors name path, the
 * file the user asked for.  Returns an exit status. */
static int export_finish(FILE *out, const char *tmp, const char *path,
			 int status)
{
	if (status == QP_EXIT_OK &&
	    (fflush(out) != 0 || ferror(out) || fsync(fileno(out)) != 0)) {
		qp_cli_err("%s: %s", path, strerror(errno));
		status = QP_EXIT_FAIL;
	}
	if (fclose(out) != 0 && status == QP_EXIT_OK) {
		qp_cli_err("%s: %s", path, strerror(errno));
		status = QP_EXIT_FAIL;
	}
	if (status == QP_EXIT_OK && rename(tmp, path) != 0) {
		qp_cli_err("%s: %s", path, strerror(errno));
		status = QP_EXIT_FAIL;
	}
	if (status != QP_EXIT_OK)
		unlink(tmp);
	return status;
}

int qp_cmd_export(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "format", required_argument, NULL, 'F' },
		{ "org", required_argument, NULL, 'O' },
		{ "voided", no_argument, NULL, 'v' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *org = NULL, *path = NULL;
	const qp_kind *k;
	char tmp[QP_PATH_MAX + 8];
	FILE *out = stdout;
	int o, fmt = QP_OUT_JSONL, voided = 0, status = QP_EXIT_OK;
	size_t n = 0, nogeom = 0;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "F:O:o:", opts, &status)) !=
	       -1) {
		if (o == -2)
			return status;
		if (o == 'F' && (fmt = qp_cli_outfmt(optarg, 1)) < 0)
			return qp_cli_usage(argv[0], "--format is jsonl, csv "
					    "or geojson, not \"%s\"", optarg);
		if (o == 'O')
			org = optarg;
		if (o == 'v')
			voided = 1;
		if (o == 'o')
			path = optarg;
	}
	if ((status = qp_cli_operands(argc, argv, 1, "KIND")) != QP_EXIT_OK)
		return status;
	if ((k = qp_cli_kind(argv[optind])) == NULL)
		return QP_EXIT_USAGE;
	if (path != NULL && strcmp(path, "-") != 0) {
		/* Write beside the target and rename over it, so a reader
		 * never sees half an export and a failure leaves the old
		 * file in place.  Errors name the target, not the temporary
		 * file the user never asked for. */
		if (strlen(path) >= QP_PATH_MAX)
			return qp_cli_usage(argv[0], "output path too long");
		qp_fmt(tmp, sizeof(tmp), "%s.tmp", path);
		out = fopen(tmp, "w");
		if (out == NULL) {
			qp_cli_err("%s: %s", path, strerror(errno));
			return QP_EXIT_FAIL;
		}
	} else {
		path = NULL;
	}
	status = qp_cli_list_write(c, k, org, voided, (qp_outfmt)fmt, out, &n,
				   &nogeom);
	if (path != NULL)
		status = export_finish(out, tmp, path, status);
	if (status != QP_EXIT_OK)
		return status;
	/* GeoJSON leaves out the records without a geometry: say how many,
	 * on stderr when the Features went to stdout. */
	if (path == NULL) {
		if (fmt == QP_OUT_GEOJSON && nogeom > 0)
			fprintf(stderr, "quipu: note: %zu %s records without "
				"%s were left out of the GeoJSON\n", nogeom,
				k->name, geom_name(k));
		return QP_EXIT_OK;
	}
	printf("exported %zu %s records to %s", n, k->name, path);
	if (fmt == QP_OUT_GEOJSON)
		printf(" (%zu without %s left out)", nogeom, geom_name(k));
	printf("\n");
	return QP_EXIT_OK;
}
