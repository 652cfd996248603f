/*
 * fuzz_record.c - libFuzzer target for proto/schema.c.
 *
 * Parses arbitrary bytes as JSON (jansson, bounded), then validates the
 * value as every kind, with and without a fake reference lookup and with
 * small error buffers.  Invariants: nothing crashes; a failure always
 * writes a "kind..." message; the compact JSON of qp_schema_to_text reads
 * back equal; and for a record that validates, every field turned into a
 * CSV cell and back (qp_schema_from_text) gives the same value and the
 * rebuilt record validates again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_memstream; the Makefile also sets it */
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "schema.h"

#define MAX_INPUT 65536

/* Resolves by the last character of the id, so inputs can steer it. */
static int fake_ref(void *ctx, const char *path, const char *want,
		    const char *id, char *got_kind)
{
	size_t n = strlen(id);
	(void)ctx;
	(void)path;
	switch (n ? id[n - 1] : '0') {
	case '0':
		return QP_ENOTFOUND;
	case '1':
		strcpy(got_kind, "producer");
		return QP_EMISMATCH;
	case '2':
		return QP_ESTORE;
	case '3':
		memset(got_kind, 'x', 24); /* no NUL: the caller must cope */
		return QP_EMISMATCH;
	case '4':
		return QP_EVOIDED;
	case '5':
		return QP_ESCOPE;
	default:
		(void)want;
		return 0;
	}
}

static int same(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	return json_equal(a, b);
}

/* Cell round trip of a valid record. */
static void cells(const qp_kind *k, const json_t *rec)
{
	json_t *copy = json_object();
	char err[QP_ERRMSG_LEN];
	json_object_set(copy, "id", json_object_get(rec, "id"));
	json_object_set(copy, "kind", json_object_get(rec, "kind"));
	json_object_set(copy, "org", json_object_get(rec, "org"));
	for (size_t i = 0; i < k->nfields; i++) {
		const qp_field *f = &k->fields[i];
		json_t *v = json_object_get(rec, f->name), *back = NULL;
		char *s;
		if (v == NULL)
			continue;
		s = qp_schema_to_text(v);
		if (qp_schema_from_text(k, f, s, &back, err, sizeof err) != 0 ||
		    back == NULL)
			abort();
		/* The reader undoes the CSV formula guard: text that itself
		 * starts with a quote and a formula character changes. */
		if (!(json_is_string(v) && s[0] == '\'') && !same(v, back))
			abort();
		json_object_set_new(copy, f->name, back);
		free(s);
	}
	if (qp_schema_validate(k, copy, NULL, NULL, err, sizeof err) != 0) {
		/* Only the formula-guard case above may change a value. */
		const char *key;
		json_t *v;
		int guarded = 0;
		json_object_foreach((json_t *)rec, key, v)
		{
			if (json_is_string(v) &&
			    json_string_value(v)[0] == '\'')
				guarded = 1;
		}
		if (!guarded)
			abort();
	}
	json_decref(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *root;
	size_t n;
	const qp_kind *kinds = qp_schema_kinds(&n);
	char err[QP_ERRMSG_LEN], tiny[12];

	if (size > MAX_INPUT)
		return 0;
	root = json_loadb((const char *)data, size,
			  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY |
				  JSON_ALLOW_NUL,
			  &jerr);
	if (root == NULL)
		return 0;

	if (json_is_object(root) || json_is_array(root)) {
		char *s = qp_schema_to_text(root);
		json_t *back = json_loads(s, JSON_ALLOW_NUL, &jerr);
		if (back == NULL || !json_equal(back, root))
			abort();
		json_decref(back);
		free(s);
	}

	for (size_t i = 0; i < n; i++) {
		int a, b, c;
		err[0] = tiny[0] = '\0';
		a = qp_schema_validate(&kinds[i], root, NULL, NULL, err,
				       sizeof err);
		if (a != 0 && (a != QP_EVALID ||
			       strncmp(err, kinds[i].name,
				       strlen(kinds[i].name)) != 0))
			abort();
		b = qp_schema_validate(&kinds[i], root, fake_ref, NULL, tiny,
				       sizeof tiny);
		if (b != 0 && b != QP_EVALID && b != QP_ESTORE)
			abort();
		if (b != 0 && strlen(tiny) >= sizeof tiny)
			abort();
		c = qp_schema_validate(&kinds[i], root, fake_ref, NULL, NULL, 0);
		if (c != b || (a != 0 && b == 0))
			abort();
		if (a == 0)
			cells(&kinds[i], root);
	}
	json_decref(root);
	return 0;
}
