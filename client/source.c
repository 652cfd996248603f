/* source.c - records from an import file (see source.h). */
#include "source.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* What a CSV column holds. */
enum { COL_FIELD, COL_ID, COL_KIND, COL_ORG };

int qp_source_is_csv(const char *name, const char *buf, size_t len,
		     const qp_kind *kind)
{
	size_t n = name != NULL ? strlen(name) : 0, i = 0;

	if (n > 4 && strcasecmp(name + n - 4, ".csv") == 0)
		return 1;
	if (kind == NULL)
		return 0;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < len && strchr(" \t\r\n", buf[i]) != NULL)
		i++;
	return i < len && buf[i] != '{';
}

/* Nonzero when some kind has a field called name. */
static int any_kind_has(const char *name)
{
	const qp_kind *all;
	size_t n, i;

	all = qp_schema_kinds(&n);
	for (i = 0; i < n; i++)
		if (qp_schema_field(&all[i], name) != NULL)
			return 1;
	return 0;
}

static int open_csv(qp_source *s, char *err, size_t errlen)
{
	qp_csv_row row;
	char msg[QP_ERRMSG_LEN];
	size_t i, j;
	int rc;

	s->rd = qp_csv_open(s->buf, s->len, QP_CSV_MAX_FIELD, QP_CSV_MAX_COLS);
	rc = qp_csv_next(s->rd, &row, msg, sizeof(msg));
	if (rc < 0) {
		qp_fmt(err, errlen, "%s:%s", s->name,
		       strncmp(msg, "line ", 5) == 0 ? msg + 5 : msg);
		return -1;
	}
	if (rc == 0) {
		qp_fmt(err, errlen, "%s: empty CSV file (the first row must "
		       "name the fields)", s->name);
		return -1;
	}
	s->ncols = row.ncols;
	s->cols = qp_xcalloc(row.ncols, sizeof(*s->cols));
	s->role = qp_xcalloc(row.ncols, sizeof(*s->role));
	for (i = 0; i < row.ncols; i++) {
		const char *c = row.cols[i];

		s->cols[i] = qp_xstrdup(c);
		for (j = 0; j < i; j++)
			if (strcmp(s->cols[j], c) == 0) {
				qp_fmt(err, errlen, "%s:%zu: column \"%s\" "
				       "appears twice", s->name, row.line, c);
				return -1;
			}
		if (strcmp(c, "id") == 0) {
			s->role[i] = COL_ID;
		} else if (strcmp(c, "kind") == 0) {
			s->role[i] = COL_KIND;
			s->kind_col = (int)i;
		} else if (strcmp(c, "org") == 0) {
			s->role[i] = COL_ORG;
		} else if (s->kind != NULL ? !qp_schema_field(s->kind, c)
					   : !any_kind_has(c)) {
			qp_fmt(err, errlen, "%s:%zu: unknown column \"%s\" "
			       "(not a field of %s)", s->name, row.line, c,
			       s->kind != NULL ? s->kind->name : "any kind");
			return -1;
		}
	}
	if (s->kind == NULL && s->kind_col < 0) {
		qp_fmt(err, errlen, "%s: a CSV file needs --kind KIND or a "
		       "kind column", s->name);
		return -1;
	}
	return 0;
}

int qp_source_open(qp_source *s, const char *name, const char *buf,
		   size_t len, const qp_kind *kind, int csv, char *err,
		   size_t errlen)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->buf = buf;
	s->len = len;
	s->kind = kind;
	s->csv = csv;
	s->kind_col = -1;
	if (csv)
		return open_csv(s, err, errlen);
	qp_jsonin_init(&s->jin, buf, len);
	return 0;
}

static int next_json(qp_source *s, json_t **rec, const qp_kind **k,
		     size_t *line, char *err, size_t errlen)
{
	char msg[QP_ERRMSG_LEN];
	const json_t *kv;
	const char *kn;
	json_t *o;
	int rc;

	rc = qp_jsonin_next(&s->jin, &o, line, msg, sizeof(msg));
	if (rc <= 0) {
		if (rc < 0)
			qp_fmt(err, errlen, "%s:%zu: %s", s->name, *line, msg);
		return rc;
	}
	kv = json_object_get(o, "kind");
	kn = json_string_value(kv);
	if (kv != NULL && kn == NULL) {
		qp_fmt(err, errlen, "%s:%zu: kind must be a string", s->name,
		       *line);
		goto fail;
	}
	if (kn == NULL) {
		if (s->kind == NULL) {
			qp_fmt(err, errlen, "%s:%zu: record has no kind (give "
			       "--kind KIND)", s->name, *line);
			goto fail;
		}
		*k = s->kind;
	} else if ((*k = qp_schema_kind(kn)) == NULL) {
		qp_fmt(err, errlen, "%s:%zu: unknown kind \"%.64s\"", s->name,
		       *line, kn);
		goto fail;
	} else if (s->kind != NULL && *k != s->kind) {
		qp_fmt(err, errlen, "%s:%zu: record of kind %s, but --kind %s",
		       s->name, *line, (*k)->name, s->kind->name);
		goto fail;
	}
	*rec = o;
	return 1;
fail:
	json_decref(o);
	return -1;
}

/* One CSV row as a record: id, kind and org first, then the fields in
 * column order; empty cells are absent fields. */
static int row_record(qp_source *s, const qp_csv_row *row, json_t **rec,
		      const qp_kind **k, char *err, size_t errlen)
{
	char msg[QP_ERRMSG_LEN];
	const char *kc;
	const qp_field *f;
	json_t *o, *v;
	size_t i;

	*k = s->kind;
	if (s->kind_col >= 0) {
		kc = row->cols[s->kind_col];
		if (kc[0] != '\0') {
			*k = qp_schema_kind(kc);
			if (*k == NULL) {
				qp_fmt(err, errlen, "%s:%zu: unknown kind "
				       "\"%.64s\"", s->name, row->line, kc);
				return -1;
			}
			if (s->kind != NULL && *k != s->kind) {
				qp_fmt(err, errlen, "%s:%zu: record of kind "
				       "%s, but --kind %s", s->name,
				       row->line, (*k)->name, s->kind->name);
				return -1;
			}
		} else if (s->kind == NULL) {
			qp_fmt(err, errlen, "%s:%zu: empty kind cell",
			       s->name, row->line);
			return -1;
		}
	}
	o = json_object();
	for (i = 0; i < s->ncols; i++)
		if (s->role[i] == COL_ID && row->cols[i][0] != '\0')
			json_object_set_new(o, "id", json_string(row->cols[i]));
	json_object_set_new(o, "kind", json_string((*k)->name));
	for (i = 0; i < s->ncols; i++)
		if (s->role[i] == COL_ORG && row->cols[i][0] != '\0')
			json_object_set_new(o, "org",
					    json_string(row->cols[i]));
	for (i = 0; i < s->ncols; i++) {
		if (s->role[i] != COL_FIELD)
			continue;
		f = qp_schema_field(*k, s->cols[i]);
		if (f == NULL) {
			if (row->cols[i][strspn(row->cols[i], " \t")] == '\0')
				continue;
			qp_fmt(err, errlen, "%s:%zu: column \"%s\" is not a "
			       "field of %s", s->name, row->line, s->cols[i],
			       (*k)->name);
			goto fail;
		}
		v = NULL;
		if (qp_schema_from_text(*k, f, row->cols[i], &v, msg,
					sizeof(msg)) < 0) {
			qp_fmt(err, errlen, "%s:%zu: %s", s->name, row->line,
			       msg);
			goto fail;
		}
		if (v != NULL)
			json_object_set_new(o, f->name, v);
	}
	*rec = o;
	return 1;
fail:
	json_decref(o);
	return -1;
}

/* Nonzero when every cell of the row is empty (a spreadsheet's ",,,"). */
static int empty_row(const qp_csv_row *row)
{
	size_t i;

	for (i = 0; i < row->ncols; i++)
		if (row->cols[i][0] != '\0')
			return 0;
	return 1;
}

int qp_source_next(qp_source *s, json_t **rec, const qp_kind **k,
		   size_t *line, char *err, size_t errlen)
{
	char msg[QP_ERRMSG_LEN];
	qp_csv_row row;
	int rc;

	if (!s->csv)
		return next_json(s, rec, k, line, err, errlen);
	do {
		rc = qp_csv_next(s->rd, &row, msg, sizeof(msg));
		if (rc < 0) {
			qp_fmt(err, errlen, "%s:%s", s->name,
			       strncmp(msg, "line ", 5) == 0 ? msg + 5 : msg);
			return -1;
		}
		if (rc == 0)
			return 0;
	} while (empty_row(&row));
	*line = row.line;
	if (row.ncols != s->ncols) {
		qp_fmt(err, errlen, "%s:%zu: row has %zu fields, the header "
		       "has %zu", s->name, row.line, row.ncols, s->ncols);
		return -1;
	}
	return row_record(s, &row, rec, k, err, errlen);
}

void qp_source_close(qp_source *s)
{
	size_t i;

	qp_csv_close(s->rd);
	if (s->cols != NULL)
		for (i = 0; i < s->ncols; i++)
			free(s->cols[i]);
	free(s->cols);
	free(s->role);
	s->rd = NULL;
	s->cols = NULL;
	s->role = NULL;
}
