/*
 * schema.h - the record kinds of schema v1, declared once as data.
 *
 * The table in schema.c drives validation, JSON/CSV conversion and the
 * store's indexes.  A record is a JSON object: "id" (UUID text), "kind",
 * "org" (id of its organisation; an org record's org is its own id) and the
 * kind's fields.  Unknown fields are refused.  Validation errors are one line
 * naming the field path and the reason, e.g.
 *     "producer.dni: must be exactly 8 digits"
 *     "plot.geometry.coordinates[0]: ring not closed"
 */
#ifndef QP_SCHEMA_H
#define QP_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

#define QP_ERRMSG_LEN 256 /* recommended size of error buffers */

typedef enum qp_ftype {
	QP_T_TEXT,   /* non-empty string, at most max_len bytes (default 512) */
	QP_T_ENUM,   /* one of values[] */
	QP_T_DNI,    /* 8 digits (Peruvian national id) */
	QP_T_RUC,    /* 11 digits, SUNAT prefix 10/15/16/17/20, check digit */
	QP_T_REF,    /* id of a record of kind ref_kind (NULL: any kind) */
	QP_T_REFS,   /* non-empty array of distinct ids of kind ref_kind */
	QP_T_TIME,   /* ISO 8601 date-time with zone: 2026-11-23T09:30:00-05:00 */
	QP_T_DATE,   /* ISO 8601 date, or a date-time as QP_T_TIME */
	QP_T_INT,    /* integer within [min, max] */
	QP_T_NUM,    /* number within [min, max]; min_excl makes min exclusive */
	QP_T_BOOL,   /* true or false */
	QP_T_GEOM,   /* GeoJSON Point, Polygon or MultiPolygon in WGS84 */
	QP_T_POINT,  /* GeoJSON Point */
	QP_T_OBJECT, /* any JSON object (e.g. lot quality), at most 64 keys */
	QP_T_LOTQTY, /* array of {"lot": id, "kg": number > 0} */
	QP_T_PHONE,  /* digits, spaces, '+', '-' ; 6..20 characters */
} qp_ftype;

#define QP_F_REQUIRED 0x01u
#define QP_F_UNIQUE 0x02u  /* natural key: unique per org (or globally, or
                            * per key_scope, see qp_kind); a kind with two
                            * such fields uses the one a record holds */
#define QP_F_SAME_ORG 0x04u /* QP_T_REF/QP_T_REFS: the record referred to
                             * belongs to the same org (a plot and its
                             * producer); other references may cross orgs
                             * (a network's services, custody, checks) */

typedef struct qp_field {
	const char *name;
	qp_ftype type;
	unsigned flags;
	const char *const *values; /* QP_T_ENUM: NULL-terminated */
	const char *ref_kind;      /* QP_T_REF/QP_T_REFS/QP_T_LOTQTY */
	double min, max;           /* QP_T_INT/QP_T_NUM; both 0 = unbounded */
	int min_excl;
	size_t max_len;            /* QP_T_TEXT; 0 = 512 */
} qp_field;

#define QP_K_APPEND_ONLY 0x01u /* never updated, only voided */
#define QP_K_UNIQUE_GLOBAL 0x02u /* natural key unique across orgs (RUC) */


typedef struct qp_kind {
	const char *name;
	const qp_field *fields;
	size_t nfields;
	unsigned flags;
	/* Cross-field rule run after every field passed; writes the message
	 * (without the kind prefix, e.g. "producer: ...") and returns
	 * QP_EVALID, or returns 0.  May be NULL. */
	int (*check)(const json_t *rec, char *err, size_t errlen);
	/* The field whose value scopes the natural key instead of the org
	 * (attendance: a person once per session), or NULL. */
	const char *key_scope;
} qp_kind;

/* Reference lookup supplied by the caller (the store), for the reference
 * at path ("plot.producer", "lot.plots[2]", "lot_event.inputs[0].lot").
 * Returns 0 when a record with this id may be referred to there: it exists
 * and has kind want_kind (any kind when want_kind is NULL).  Else
 * QP_ENOTFOUND when no such record is held, QP_EMISMATCH when it exists
 * with another kind (its kind written into got_kind, 24 bytes),
 * QP_EVOIDED when it is voided, QP_ESCOPE when it belongs to another org
 * and the field is QP_F_SAME_ORG; validation then fails naming the field.  Any other code is a storage error, returned as is. */
typedef int (*qp_ref_fn)(void *ctx, const char *path, const char *want_kind,
			 const char *id, char *got_kind);

/* All kinds, in table order. */
const qp_kind *qp_schema_kinds(size_t *n);
/* Kind by name, or NULL. */
const qp_kind *qp_schema_kind(const char *name);
/* Field of a kind by name, or NULL. */
const qp_field *qp_schema_field(const qp_kind *k, const char *name);
/* The natural-key field rec uses: the first unique field of k that rec
 * holds as a string (attendance: producer, or dni), or NULL. */
const qp_field *qp_schema_key_of(const qp_kind *k, const json_t *rec);

/* Validate a complete record (after an update is merged into the stored
 * state, the merged record is validated the same way).  rec must hold "id",
 * "kind" (equal to k->name) and "org".  When ref is non-NULL every
 * reference, including org, must resolve through it; when NULL references
 * are checked for form only (merge at the hub flags dangling references
 * instead of refusing them).  Returns 0 or QP_EVALID with a one-line message
 * in err ("kind.path: reason"). */
int qp_schema_validate(const qp_kind *k, const json_t *rec, qp_ref_fn ref,
		       void *ref_ctx, char *err, size_t errlen);

/* Convert one CSV cell (text) for field f to its typed JSON value: numbers
 * and integers parsed, "true"/"false" for booleans, JSON text for geometry,
 * objects and arrays, ids lists as JSON arrays or ';'-separated.  An empty
 * cell yields *out = NULL (field absent).  Returns 0 or QP_EVALID with the
 * reason in err. */
int qp_schema_from_text(const qp_kind *k, const qp_field *f, const char *text,
			json_t **out, char *err, size_t errlen);

/* Format a field value as one CSV cell: strings as they are, numbers in
 * shortest round-trip form, objects/arrays as compact JSON.  Returns a
 * malloc'd string. */
char *qp_schema_to_text(const json_t *v);

/* Seconds since the epoch (with fractions) of a time as the schema accepts
 * it (above; a bare date when date_only_allowed is midnight UTC).  Returns 0
 * with *out set, or -1 when s is not such a time. */
int qp_schema_time_seconds(const char *s, int date_only_allowed, double *out);

/* Validators shared with other modules.  Each returns 1 when valid. */
int qp_schema_dni_ok(const char *s);
int qp_schema_ruc_ok(const char *s);
int qp_schema_time_ok(const char *s, int date_only_allowed);

#endif
