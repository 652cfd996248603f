/*
 * cmd_report.c - quipu report attendance: fetch the programme's records
 * (orgs, producers, services, sessions, attendance, commitments) over the
 * API, let proto/report.c aggregate them, and print the result as an
 * aligned table, CSV (header, one row per group, a TOTAL row) or one JSON
 * object.  Options are checked before quipud is contacted, so a bad --by
 * is a usage error (exit 2) even with no daemon running.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "csv.h"
#include "err.h"
#include "report.h"
#include "util.h"

typedef enum { FMT_TEXT, FMT_CSV, FMT_JSON } fmt_t;

/* The metrics of a row, in output order. */
static const char *const metric_names[] = {
    "attendances",
    "attended",
    "absent",
    "attendance_rate",
    "persons",
    "women",
    "women_share",
    "sessions_held",
    "sessions_planned",
    "hours",
    "committed_services",
    "attended_services",
};
#define NMETRICS (sizeof(metric_names) / sizeof(metric_names[0]))

/* Text headers of the metrics (same order). */
static const char *const metric_heads[NMETRICS] = {
    "attendances", "attended", "absent",  "rate",  "persons",   "women",
    "women%",      "held",     "planned", "hours", "committed", "attended_svc",
};

/* The key columns of a grouping, in order: org and service bring their
 * name columns along.  Returns the number of columns written to cols. */
static size_t key_columns(const qp_report_by *by, const char **cols)
{
	size_t n = 0;

	for (size_t i = 0; i < by->n; i++) {
		cols[n++] = qp_report_key_name(by->keys[i]);
		if (by->keys[i] == QP_RK_ORG)
			cols[n++] = "org_name";
		else if (by->keys[i] == QP_RK_SERVICE)
			cols[n++] = "service_title";
	}
	return n;
}

/* A number as CSV text: integers as they are, reals with the fewest
 * digits that read back the same (C locale: the CLI never sets one). */
static void num_text(const json_t *v, char *buf, size_t len)
{
	double x;

	if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		x = json_real_value(v);
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(buf, len, "%.*g", prec, x);
			if (strtod(buf, NULL) == x)
				break;
		}
	} else {
		buf[0] = '\0';
	}
}

/* ------------------------------------------------------------------ */
/* CSV */

static void write_csv(const json_t *rep, const qp_report_by *by)
{
	const char *names[2 * QP_REPORT_NKEYS + NMETRICS];
	const char *cells[2 * QP_REPORT_NKEYS + NMETRICS];
	char nums[NMETRICS][32];
	const json_t *rows = json_object_get(rep, "rows"), *r, *v;
	size_t nk = key_columns(by, names), nr = json_array_size(rows), i, j;

	for (j = 0; j < NMETRICS; j++)
		names[nk + j] = metric_names[j];
	qp_csv_write_row(stdout, names, nk + NMETRICS);
	/* The rows, then the totals with "TOTAL" in every key column. */
	for (i = 0; i <= nr; i++) {
		r = i < nr ? json_array_get(rows, i)
		           : json_object_get(rep, "totals");
		for (j = 0; j < nk; j++) {
			v = json_object_get(r, names[j]);
			cells[j] = i == nr             ? "TOTAL"
			           : json_is_string(v) ? json_string_value(v)
			                               : "";
		}
		for (j = 0; j < NMETRICS; j++) {
			num_text(json_object_get(r, metric_names[j]), nums[j],
			         sizeof nums[j]);
			cells[nk + j] = nums[j];
		}
		qp_csv_write_row(stdout, cells, nk + NMETRICS);
	}
}

/* ------------------------------------------------------------------ */
/* Text */

#define NAME_MAX_CHARS 40

/* Display width of UTF-8 text: its code points (good enough for the
 * Latin names of a programme). */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

/* A malloc'd copy of s cut to NAME_MAX_CHARS code points ("..." at the
 * end when cut). */
static char *cut(const char *s)
{
	size_t w = 0, i;

	if (width(s) <= NAME_MAX_CHARS)
		return qp_xstrdup(s);
	for (i = 0; s[i] != '\0'; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80 &&
		    w++ == NAME_MAX_CHARS - 3)
			break;
	}
	char *out = qp_xmalloc(i + 4);
	memcpy(out, s, i);
	memcpy(out + i, "...", 4);
	return out;
}

/* x to one decimal, halves away from zero (8.25 h shows as 8.3, as a
 * reader rounds it; printf alone gives 8.2). */
static double one_decimal(double x)
{
	return round(x * 10) / 10;
}

/* The text of one cell: key cells show names (org_name, service_title)
 * rather than ids, falling back to the id; metrics are formatted per kind. */
static char *cell(const json_t *r, const char *col)
{
	const json_t *v;
	char buf[64];

	if (strcmp(col, "attendance_rate") == 0 ||
	    strcmp(col, "women_share") == 0) {
		snprintf(buf, sizeof buf, "%.1f%%",
		         one_decimal(100 * json_number_value(
		                               json_object_get(r, col))));
		return qp_xstrdup(buf);
	}
	if (strcmp(col, "hours") == 0) {
		snprintf(buf, sizeof buf, "%.1f",
		         one_decimal(json_number_value(json_object_get(r, col))));
		return qp_xstrdup(buf);
	}
	v = json_object_get(r, col);
	if (json_is_integer(v)) {
		snprintf(buf, sizeof buf, "%lld",
		         (long long)json_integer_value(v));
		return qp_xstrdup(buf);
	}
	if (strcmp(col, "org") == 0 || strcmp(col, "service") == 0) {
		const json_t *name = json_object_get(
		    r, col[0] == 'o' ? "org_name" : "service_title");
		if (json_is_string(name))
			v = name;
	}
	return cut(json_is_string(v) ? json_string_value(v) : "-");
}

static void write_text(const json_t *rep, const qp_report_by *by)
{
	const json_t *rows = json_object_get(rep, "rows"), *r;
	const char *cols[QP_REPORT_NKEYS + NMETRICS],
	    *heads[QP_REPORT_NKEYS + NMETRICS];
	int with_plan = 1, org_only = by->n == 1 && by->keys[0] == QP_RK_ORG;
	size_t nk = by->n, nc, nr = json_array_size(rows) + 1, i, j, w;
	size_t widths[QP_REPORT_NKEYS + NMETRICS];
	char **cells;

	for (i = 0; i < nk; i++) {
		cols[i] = heads[i] = qp_report_key_name(by->keys[i]);
		if (by->keys[i] == QP_RK_SEX || by->keys[i] == QP_RK_MONTH)
			with_plan = 0;
	}
	/* Columns that are null for this grouping are left out. */
	nc = nk;
	for (j = 0; j < NMETRICS; j++) {
		if ((!with_plan &&
		     strcmp(metric_names[j], "sessions_planned") == 0) ||
		    (!org_only && strstr(metric_names[j], "_services") != NULL))
			continue;
		cols[nc] = metric_names[j];
		heads[nc++] = metric_heads[j];
	}
	cells = qp_xcalloc(nr * nc, sizeof(*cells));
	for (j = 0; j < nc; j++)
		widths[j] = width(heads[j]);
	for (i = 0; i < nr; i++) {
		r = i + 1 < nr ? json_array_get(rows, i)
		               : json_object_get(rep, "totals");
		for (j = 0; j < nc; j++) {
			cells[i * nc + j] = i + 1 < nr ? cell(r, cols[j])
			                    : j == 0   ? qp_xstrdup("TOTAL")
			                    : j < nk   ? qp_xstrdup("")
			                               : cell(r, cols[j]);
			if ((w = width(cells[i * nc + j])) > widths[j])
				widths[j] = w;
		}
	}
	/* Keys left-aligned, numbers right-aligned; two blanks between; no
	 * trailing blanks. */
	for (j = 0; j < nc; j++) {
		int pad = (int)(widths[j] - width(heads[j]));
		if (j < nk)
			printf("%s%s%*s", j ? "  " : "", heads[j],
			       j + 1 < nc ? pad : 0, "");
		else
			printf("  %*s%s", pad, "", heads[j]);
	}
	printf("\n");
	for (i = 0; i < nr; i++) {
		for (j = 0; j < nc; j++) {
			const char *s = cells[i * nc + j];
			int pad = (int)(widths[j] - width(s));
			if (j < nk)
				printf("%s%s%*s", j ? "  " : "", s,
				       j + 1 < nc ? pad : 0, "");
			else
				printf("  %*s%s", pad, "", s);
			free(cells[i * nc + j]);
		}
		printf("\n");
	}
	free(cells);
	printf("duplicates merged: %lld\n",
	       (long long)json_integer_value(
	           json_object_get(rep, "duplicates_merged")));
}

/* ------------------------------------------------------------------ */

static const char *const kinds[] = {
    "org", "producer", "service", "session", "attendance", "commitment",
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static int attendance(qp_cli *c, const qp_report_by *by, fmt_t fmt)
{
	json_t *recs[NKINDS] = {0}, *rep = NULL;
	qp_report_input in;
	int status = QP_EXIT_OK, rc;
	size_t i;
	char *s;

	for (i = 0; i < NKINDS; i++)
		if ((status = qp_cli_fetch_all(c, kinds[i], NULL, 0,
		                               &recs[i])) != QP_EXIT_OK)
			goto out;
	in = (qp_report_input){recs[0], recs[1], recs[2],
	                       recs[3], recs[4], recs[5]};
	if ((rc = qp_report_attendance(&in, by, &rep)) != 0) {
		qp_cli_err("report: %s", qp_strerror(rc));
		status = QP_EXIT_FAIL;
		goto out;
	}
	if (fmt == FMT_JSON) {
		s = qp_cli_dumps(rep);
		printf("%s\n", s);
		free(s);
	} else if (fmt == FMT_CSV) {
		write_csv(rep, by);
	} else {
		write_text(rep, by);
	}
out:
	for (i = 0; i < NKINDS; i++)
		json_decref(recs[i]);
	json_decref(rep);
	return status;
}

int qp_cmd_report(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    QP_CLI_COMMON_OPTS,
	    {"by", required_argument, NULL, 'b'},
	    {"format", required_argument, NULL, 'F'},
	    {NULL, 0, NULL, 0},
	};
	const char *by_text = NULL, *fmt_text = "text";
	qp_report_by by;
	char err[160];
	fmt_t fmt;
	int status = 0, o;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "", opts, &status)) != -1) {
		if (o == -2)
			return status;
		if (o == 'b')
			by_text = optarg;
		else if (o == 'F')
			fmt_text = optarg;
	}
	if (optind >= argc)
		return qp_cli_usage("report", "which report: attendance");
	if (strcmp(argv[optind], "attendance") != 0)
		return qp_cli_usage("report",
		                    "unknown report '%.40s' (attendance)",
		                    argv[optind]);
	if (optind + 1 < argc)
		return qp_cli_usage("report", "unexpected argument \"%.40s\"",
		                    argv[optind + 1]);
	if (qp_report_parse_by(by_text, &by, err, sizeof err) != 0)
		return qp_cli_usage("report", "--by: %s", err);
	if (strcmp(fmt_text, "text") == 0)
		fmt = FMT_TEXT;
	else if (strcmp(fmt_text, "csv") == 0)
		fmt = FMT_CSV;
	else if (strcmp(fmt_text, "json") == 0)
		fmt = FMT_JSON;
	else
		return qp_cli_usage(
		    "report", "unknown format '%.40s' (text, csv or json)",
		    fmt_text);
	return attendance(c, &by, fmt);
}
