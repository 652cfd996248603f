/*
 * csv.h - RFC 4180 CSV: a bounded streaming reader and a writer.
 *
 * The reader takes input from a caller-supplied buffer and yields one row at
 * a time.  Quoted fields may hold commas, quotes ("") and newlines.  Both
 * CRLF and LF end rows.  Bounds: a field longer than max_field bytes, a row
 * of more than max_cols fields, or an unterminated quote at end of input are
 * errors naming the line.  A UTF-8 byte-order mark at the start is skipped.
 */
#ifndef QP_CSV_H
#define QP_CSV_H

#include <stddef.h>
#include <stdio.h>

#define QP_CSV_MAX_FIELD (1u << 20)
#define QP_CSV_MAX_COLS 256

typedef struct qp_csv_row {
	char **cols;   /* NUL-terminated fields, owned by the reader */
	size_t ncols;
	size_t line;   /* 1-based line where the row starts */
} qp_csv_row;

typedef struct qp_csv_reader qp_csv_reader;

/* Reader over buf[0..len) (not copied: must outlive the reader). */
qp_csv_reader *qp_csv_open(const char *buf, size_t len, size_t max_field,
			   size_t max_cols);
void qp_csv_close(qp_csv_reader *r);

/* Next row: returns 1 and fills *row (valid until the next call), 0 at end
 * of input, or QP_EPROTO/QP_ETOOBIG with a message in err (e.g. "line 7:
 * unterminated quoted field"). */
int qp_csv_next(qp_csv_reader *r, qp_csv_row *row, char *err, size_t errlen);

/* Write one field, quoted when it holds a comma, quote, CR or LF, or starts
 * with a character a spreadsheet would take as a formula (=, +, @, or -
 * not followed by a digit): such cells are prefixed with a single quote
 * inside the quotes.  So is a cell that already starts with single quotes
 * followed by =, +, - or @ ("'=x", "''-1"), since qp_schema_from_text drops
 * one leading quote from such cells: a written cell read back through it
 * gives every string unchanged. */
void qp_csv_write_field(FILE *out, const char *s);
/* Write a row of n fields terminated by CRLF. */
void qp_csv_write_row(FILE *out, const char *const *fields, size_t n);

#endif
