/*
 * source.h - records read from an import file: JSON lines, or CSV whose
 * header row names the fields.  Each record comes with its kind and the
 * input line it starts on, so that errors (here and from quipud) can name
 * FILE:LINE.
 */
#ifndef QP_SOURCE_H
#define QP_SOURCE_H

#include <jansson.h>
#include <stddef.h>

#include "cli.h"
#include "csv.h"

typedef struct qp_source {
	const char *name;   /* file name used in messages */
	const char *buf;    /* whole input (borrowed) */
	size_t len;
	const qp_kind *kind; /* --kind, or NULL */
	int csv;
	qp_jsonin jin;
	qp_csv_reader *rd;
	size_t ncols;
	char **cols;         /* header names (owned) */
	int *role;           /* per column: see source.c */
	int kind_col;        /* column of "kind", or -1 */
} qp_source;

/* Nonzero when the input is CSV: a .csv name, or (with --kind) content
 * that does not start with '{'. */
int qp_source_is_csv(const char *name, const char *buf, size_t len,
		     const qp_kind *kind);

/* Start reading buf[0..len) (which must outlive the source).  For CSV the
 * header row is read and checked here.  Returns 0, or -1 with the message
 * ("FILE:1: unknown column ...") in err. */
int qp_source_open(qp_source *s, const char *name, const char *buf,
		   size_t len, const qp_kind *kind, int csv, char *err,
		   size_t errlen);

/* Next record: returns 1 with *rec (new reference), *k and *line; 0 at the
 * end; -1 with "FILE:LINE: reason" in err. */
int qp_source_next(qp_source *s, json_t **rec, const qp_kind **k,
		   size_t *line, char *err, size_t errlen);

/* Release the source.  Accepts a source that failed to open. */
void qp_source_close(qp_source *s);

#endif
