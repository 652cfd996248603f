/*
 * fuzz_csv.c - libFuzzer target for proto/csv.c.
 *
 * Reads arbitrary bytes as CSV.  Invariants: the reader never crashes and
 * an error always comes with a "line N: ..." message; every row it yields,
 * written back with the writer and read again, gives exactly one row with
 * the same cells, except that a cell the writer guarded as a formula reads
 * back with its leading single quote.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_memstream; the Makefile also sets it */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "err.h"

/* The cells the writer guards (csv.c needs_guard): formulas, and values
 * that already start with quotes and a formula character. */
static int formula_like(const char *s)
{
	size_t q = strspn(s, "'");

	return s[0] == '=' || s[0] == '+' || s[0] == '@' ||
	       (s[0] == '-' && !(s[1] >= '0' && s[1] <= '9')) ||
	       (q > 0 && s[q] != '\0' && strchr("=+-@", s[q]) != NULL);
}

static void check_row(const qp_csv_row *row, size_t max_field,
		      size_t max_cols)
{
	char *buf = NULL, err[256];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	qp_csv_reader *r;
	qp_csv_row back;

	if (f == NULL)
		abort();
	qp_csv_write_row(f, (const char *const *)row->cols, row->ncols);
	fclose(f);
	/* The guard adds one byte to a cell. */
	r = qp_csv_open(buf, len, max_field + 1, max_cols);
	if (qp_csv_next(r, &back, err, sizeof err) != 1)
		abort();
	if (back.ncols != row->ncols || back.line != 1)
		abort();
	for (size_t i = 0; i < row->ncols; i++) {
		const char *want = row->cols[i], *got = back.cols[i];
		if (formula_like(want)) {
			if (got[0] != '\'')
				abort();
			got++;
		}
		if (strcmp(want, got) != 0)
			abort();
	}
	if (qp_csv_next(r, &back, err, sizeof err) != 0)
		abort();
	qp_csv_close(r);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The first byte picks tight or default bounds; it is still part of
	 * the input. */
	size_t max_field = size > 0 && (data[0] & 1) ? 16 : 4096;
	size_t max_cols = size > 0 && (data[0] & 2) ? 4 : 64;
	qp_csv_reader *r = qp_csv_open((const char *)data, size, max_field,
				       max_cols);
	qp_csv_row row;
	char err[256];
	int rc;

	if (r == NULL)
		abort();
	while ((rc = qp_csv_next(r, &row, err, sizeof err)) == 1) {
		if (row.ncols == 0 || row.ncols > max_cols || row.line == 0)
			abort();
		for (size_t i = 0; i < row.ncols; i++)
			if (strlen(row.cols[i]) > max_field)
				abort();
		check_row(&row, max_field, max_cols);
	}
	if (rc < 0) {
		if (strncmp(err, "line ", 5) != 0)
			abort();
		if (rc != QP_EPROTO && rc != QP_ETOOBIG)
			abort();
		/* Sticky. */
		if (qp_csv_next(r, &row, err, sizeof err) != rc)
			abort();
	}
	qp_csv_close(r);
	return 0;
}
