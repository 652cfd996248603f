/*
 * csv.c - RFC 4180 reader and writer (see csv.h).
 *
 * The reader copies each row's fields into one growing buffer owned by the
 * reader, so a row costs at most its own size plus one NUL per field.  Input
 * is untrusted (spreadsheets from anywhere): every field and row is bounded
 * before it grows, NUL bytes are refused (fields are C strings), and an
 * error is sticky: once a row fails, every later call reports it again.
 *
 * Choices where RFC 4180 is silent or strict:
 *   - CRLF, LF and a lone CR all end a row; inside quotes they are data.
 *   - Lines with no characters at all are skipped (spreadsheets leave them
 *     at the end).  The writer therefore writes a row made of one empty
 *     field as "" so that it reads back as a row.
 *   - A quote inside an unquoted field is taken literally (ab"c); text
 *     after a closing quote ("ab"c) is an error.
 *   - max_field or max_cols of 0 selects QP_CSV_MAX_FIELD / QP_CSV_MAX_COLS.
 */
#include "csv.h"
#include "err.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_ERR_LEN 256

struct qp_csv_reader {
	const char *buf;
	size_t len, pos;
	size_t line; /* line of buf[pos], 1-based */
	size_t max_field, max_cols;
	char *data;  /* fields of the current row, NUL-separated */
	size_t dlen, dcap;
	size_t *offs; /* start of each field in data */
	char **cols;
	size_t ccap;
	int failed;  /* sticky error code, or 0 */
	char msg[CSV_ERR_LEN];
};

qp_csv_reader *qp_csv_open(const char *buf, size_t len, size_t max_field,
			   size_t max_cols)
{
	qp_csv_reader *r;
	if (buf == NULL && len > 0)
		return NULL;
	r = qp_xcalloc(1, sizeof *r);
	r->buf = buf;
	r->len = len;
	r->line = 1;
	r->max_field = max_field ? max_field : QP_CSV_MAX_FIELD;
	r->max_cols = max_cols ? max_cols : QP_CSV_MAX_COLS;
	/* Excel writes a UTF-8 byte-order mark before "CSV UTF-8" files. */
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		r->pos = 3;
	return r;
}

void qp_csv_close(qp_csv_reader *r)
{
	if (r == NULL)
		return;
	free(r->data);
	free(r->offs);
	free(r->cols);
	free(r);
}

static int csv_fail(qp_csv_reader *r, int code, size_t line, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));

/* Record a sticky error "line N: ..." and return code. */
static int csv_fail(qp_csv_reader *r, int code, size_t line, const char *fmt,
		    ...)
{
	va_list ap;
	int n = snprintf(r->msg, sizeof r->msg, "line %zu: ", line);
	if (n >= 0 && (size_t)n < sizeof r->msg) {
		va_start(ap, fmt);
		vsnprintf(r->msg + n, sizeof r->msg - (size_t)n, fmt, ap);
		va_end(ap);
	}
	r->failed = code;
	return code;
}

/* Room for n more bytes in the row buffer.  The caller has already bounded
 * the field, so growth is limited by the input size. */
static void reserve(qp_csv_reader *r, size_t n)
{
	if (r->dlen + n <= r->dcap)
		return;
	r->dcap = r->dcap ? r->dcap : 256;
	while (r->dlen + n > r->dcap)
		r->dcap *= 2;
	r->data = qp_xrealloc(r->data, r->dcap);
}

/* Consume one row terminator at pos, if any (CRLF, LF or CR). */
static void eat_newline(qp_csv_reader *r)
{
	if (r->pos < r->len && r->buf[r->pos] == '\r') {
		r->pos++;
		if (r->pos < r->len && r->buf[r->pos] == '\n')
			r->pos++;
		r->line++;
	} else if (r->pos < r->len && r->buf[r->pos] == '\n') {
		r->pos++;
		r->line++;
	}
}

/* Read a quoted field starting at the opening quote into data. */
static int read_quoted(qp_csv_reader *r, size_t *flen)
{
	size_t start_line = r->line;
	r->pos++;
	for (;;) {
		char c;
		if (r->pos >= r->len)
			return csv_fail(r, QP_EPROTO, start_line,
					"unterminated quoted field");
		c = r->buf[r->pos];
		if (c == '"') {
			if (r->pos + 1 < r->len && r->buf[r->pos + 1] == '"') {
				r->pos++; /* "" is one quote */
			} else {
				r->pos++;
				break;
			}
		} else if (c == '\0') {
			return csv_fail(r, QP_EPROTO, r->line,
					"NUL byte in input");
		} else if (c == '\n' ||
			   (c == '\r' && (r->pos + 1 >= r->len ||
					  r->buf[r->pos + 1] != '\n'))) {
			r->line++;
		}
		if (*flen >= r->max_field)
			return csv_fail(r, QP_ETOOBIG, start_line,
					"field longer than %zu bytes",
					r->max_field);
		reserve(r, 1);
		r->data[r->dlen++] = r->buf[r->pos++];
		(*flen)++;
	}
	if (r->pos < r->len && r->buf[r->pos] != ',' &&
	    r->buf[r->pos] != '\r' && r->buf[r->pos] != '\n')
		return csv_fail(r, QP_EPROTO, r->line,
				"text after the closing quote of a field");
	return 0;
}

/* Read an unquoted field: everything up to a comma or row end. */
static int read_plain(qp_csv_reader *r, size_t *flen)
{
	size_t end = r->pos, n;
	while (end < r->len && r->buf[end] != ',' && r->buf[end] != '\r' &&
	       r->buf[end] != '\n' && r->buf[end] != '\0')
		end++;
	n = end - r->pos;
	if (n > r->max_field)
		return csv_fail(r, QP_ETOOBIG, r->line,
				"field longer than %zu bytes", r->max_field);
	if (end < r->len && r->buf[end] == '\0')
		return csv_fail(r, QP_EPROTO, r->line, "NUL byte in input");
	if (n > 0) {
		reserve(r, n);
		memcpy(r->data + r->dlen, r->buf + r->pos, n);
		r->dlen += n;
	}
	r->pos = end;
	*flen = n;
	return 0;
}

int qp_csv_next(qp_csv_reader *r, qp_csv_row *row, char *err, size_t errlen)
{
	size_t ncols = 0, row_line;
	int rc;

	if (r == NULL || row == NULL)
		return QP_EINVAL;
	if (r->failed)
		goto fail;
	/* Skip lines that hold nothing at all. */
	while (r->pos < r->len &&
	       (r->buf[r->pos] == '\n' || r->buf[r->pos] == '\r'))
		eat_newline(r);
	if (r->pos >= r->len)
		return 0;

	row_line = r->line;
	r->dlen = 0;
	for (;;) {
		size_t flen = 0;
		if (ncols == r->max_cols) {
			csv_fail(r, QP_ETOOBIG, row_line,
				 "more than %zu columns", r->max_cols);
			goto fail;
		}
		if (ncols == r->ccap) {
			r->ccap = r->ccap ? r->ccap * 2 : 16;
			if (r->ccap > r->max_cols)
				r->ccap = r->max_cols;
			r->offs = qp_xrealloc(r->offs, r->ccap * sizeof *r->offs);
			r->cols = qp_xrealloc(r->cols, r->ccap * sizeof *r->cols);
		}
		r->offs[ncols++] = r->dlen;
		if (r->pos < r->len && r->buf[r->pos] == '"')
			rc = read_quoted(r, &flen);
		else
			rc = read_plain(r, &flen);
		if (rc != 0)
			goto fail;
		reserve(r, 1);
		r->data[r->dlen++] = '\0';
		if (r->pos < r->len && r->buf[r->pos] == ',') {
			r->pos++;
			continue;
		}
		eat_newline(r);
		break;
	}
	for (size_t i = 0; i < ncols; i++)
		r->cols[i] = r->data + r->offs[i];
	row->cols = r->cols;
	row->ncols = ncols;
	row->line = row_line;
	return 1;
fail:
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", r->msg);
	return r->failed;
}

/* A spreadsheet runs a cell starting with =, +, @ or - as a formula (CSV
 * injection); "-12.5" is a number and stays as it is. */
static int formula_like(const char *s)
{
	return s[0] == '=' || s[0] == '+' || s[0] == '@' ||
	       (s[0] == '-' && !(s[1] >= '0' && s[1] <= '9'));
}

/* Nonzero when the cell gets the guard quote: a formula, or a value that
 * already looks guarded (quotes, then =, +, - or @: "'=x", "''-1").  The
 * reader (qp_schema_from_text) drops one leading quote from exactly such
 * cells, so every string reads back as it was written. */
static int needs_guard(const char *s)
{
	size_t q = strspn(s, "'");

	return formula_like(s) ||
	       (q > 0 && s[q] != '\0' && strchr("=+-@", s[q]) != NULL);
}

void qp_csv_write_field(FILE *out, const char *s)
{
	int guard;
	if (s == NULL)
		s = "";
	guard = needs_guard(s);
	/* A leading byte-order mark would be eaten by the reader at the
	 * start of a file, so it is quoted too. */
	if (!guard && strpbrk(s, ",\"\r\n") == NULL &&
	    strncmp(s, "\xef\xbb\xbf", 3) != 0) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	if (guard)
		fputc('\'', out);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

void qp_csv_write_row(FILE *out, const char *const *fields, size_t n)
{
	/* One empty field alone would be an empty line, which the reader
	 * skips. */
	if (n == 1 && (fields[0] == NULL || fields[0][0] == '\0')) {
		fputs("\"\"\r\n", out);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			fputc(',', out);
		qp_csv_write_field(out, fields[i]);
	}
	fputs("\r\n", out);
}
