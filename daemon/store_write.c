/*
 * store_write.c - the store's local write path: qp_store_write validates
 * each group of writes against the schema and the records held, applies it
 * (a refused group leaves nothing), and turns the ops of all accepted groups
 * into one signed delta per organisation, all in one durable commit (group
 * commit: one fsync for many requests).
 */
#include "apply.h"
#include "err.h"
#include "hlc.h"
#include "lots.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <sys/statvfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_MAX (QP_DELTA_MAX / 2) /* encoded size of one op's fields */
#define QP__ERETRY (-1901) /* internal: redo the batch group by group */

/* An op made in the current group, with the org whose feed it goes to. */
typedef struct pend {
	uint8_t org[QP_UUID_LEN];
	qp_op op;
	size_t at; /* index of the write that made it in its group */
} pend;

/* The ops of accepted groups for one org. */
typedef struct orgq {
	uint8_t org[QP_UUID_LEN];
	qp_op *ops;
	size_t n, cap;
} orgq;

typedef struct wctx {
	qp_store *s;
	qp__tx t;  /* where writes go: the batch's transaction, or the
	            * group's nested one */
	char *err; /* the group's message buffer */
	size_t errlen;
	qp_wgroup *g; /* the group being written, and the write's index */
	size_t cur;
	const char *self_id;   /* the record being validated (may refer to */
	const char *self_kind; /* itself: an org record's org), its org, */
	const char *self_org;  /* and for an update its changes (references */
	const json_t *changes; /* it leaves as they are are not looked up) */
	pend *gp;              /* this group's ops */
	size_t ngp, capgp;
	orgq *q; /* accepted ops per org */
	size_t nq, capq, lastq;
} wctx;

static int werr(wctx *w, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int werr(wctx *w, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rc = qp_verrf(rc, w->err, w->errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* The top field of a reference path ("plot.producer", "lot.plots[1]")
 * into name; 0 when the path has none that fits. */
static int path_field(const char *path, char *name, size_t cap)
{
	const char *f = strchr(path, '.');
	size_t n;

	if (f == NULL)
		return 0;
	f++;
	n = strcspn(f, ".[");
	if (n == 0 || n >= cap)
		return 0;
	memcpy(name, f, n);
	name[n] = '\0';
	return 1;
}

/* Reference lookup for qp_schema_validate (schema.h), inside the group's
 * transaction so records made earlier in the same request resolve.  A new
 * reference must name a record that is not voided and, for a QP_F_SAME_ORG
 * field, belongs to the record's own org (a plot and its producer: a
 * tablet of that org could neither show nor edit a plot pointing
 * elsewhere).  A reference an update leaves as it is was checked when
 * written and is not looked up again. */
static int ref_cb(void *ctx, const char *path, const char *want,
                  const char *id, char *got)
{
	wctx *w = ctx;
	const qp_field *f = NULL;
	uint8_t b[QP_UUID_LEN];
	char norm[QP_UUID_STRLEN + 1], kind[QP__KIND_LEN],
	    org[QP_UUID_STRLEN + 1], name[64];
	int rc, voided = 0, named = path_field(path, name, sizeof name);
	int self;

	if (named)
		f = qp_schema_field(qp_schema_kind(w->self_kind), name);
	if (named && w->changes != NULL &&
	    json_object_get(w->changes, name) == NULL)
		return 0;
	if (qp_uuid_parse(id, b) != 0)
		return QP_ENOTFOUND;
	qp_uuid_format(b, norm);
	self = w->self_id != NULL && strcmp(norm, w->self_id) == 0;
	if (self) {
		snprintf(kind, sizeof kind, "%s", w->self_kind);
		snprintf(org, sizeof org, "%s", w->self_org ? w->self_org : "");
	} else if ((rc = qp__state_peek(&w->t, norm, kind, org, &voided)) !=
	           0) {
		return rc;
	}
	if (want != NULL && strcmp(kind, want) != 0) {
		snprintf(got, QP__KIND_LEN, "%s", kind);
		return QP_EMISMATCH;
	}
	if (voided)
		return QP_EVOIDED;
	if (f != NULL && (f->flags & QP_F_SAME_ORG) && w->self_org != NULL &&
	    strcmp(org, w->self_org) != 0)
		return QP_ESCOPE;
	return 0;
}

static void push_pend(wctx *w, const uint8_t org[QP_UUID_LEN], qp_op *op)
{
	if (w->ngp == w->capgp) {
		w->capgp = w->capgp ? 2 * w->capgp : 16;
		w->gp = qp_xrealloc(w->gp, w->capgp * sizeof(*w->gp));
	}
	memcpy(w->gp[w->ngp].org, org, QP_UUID_LEN);
	w->gp[w->ngp].at = w->cur;
	w->gp[w->ngp++].op = *op;
}

static void drop_pend(wctx *w)
{
	for (size_t i = 0; i < w->ngp; i++)
		qp_op_clear(&w->gp[i].op);
	w->ngp = 0;
}

/* The group was accepted: its ops join their orgs' queues. */
static void keep_pend(wctx *w)
{
	for (size_t i = 0; i < w->ngp; i++) {
		orgq *q = NULL;
		/* Writes of one batch mostly go to one org or a few. */
		if (w->lastq < w->nq &&
		    memcmp(w->q[w->lastq].org, w->gp[i].org, QP_UUID_LEN) == 0)
			q = &w->q[w->lastq];
		for (size_t j = 0; q == NULL && j < w->nq; j++) {
			if (memcmp(w->q[j].org, w->gp[i].org, QP_UUID_LEN) ==
			    0) {
				q = &w->q[j];
				w->lastq = j;
			}
		}
		if (q == NULL) {
			if (w->nq == w->capq) {
				w->capq = w->capq ? 2 * w->capq : 4;
				w->q =
				    qp_xrealloc(w->q, w->capq * sizeof(*w->q));
			}
			q = &w->q[w->nq++];
			memset(q, 0, sizeof(*q));
			memcpy(q->org, w->gp[i].org, QP_UUID_LEN);
		}
		if (q->n == q->cap) {
			q->cap = q->cap ? 2 * q->cap : 16;
			q->ops = qp_xrealloc(q->ops, q->cap * sizeof(*q->ops));
		}
		q->ops[q->n++] = w->gp[i].op;
	}
	w->ngp = 0;
}

/* An upper bound of v's msgpack size, cut short once past cap. */
static size_t size_bound(const json_t *v, size_t cap)
{
	const char *key;
	json_t *e;
	size_t n = 5, i;

	if (json_is_string(v))
		return 5 + json_string_length(v);
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, e)
		{
			n += 5 + strlen(key) + size_bound(e, cap);
			if (n > cap)
				break;
		}
		return n;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			n += size_bound(e, cap);
			if (n > cap)
				break;
		}
		return n;
	}
	return 9;
}

/* Whether a local write may go to org (qp_store_set_scope). */
static int in_scope(const qp_store *s, const uint8_t org[QP_UUID_LEN])
{
	if (!s->scoped)
		return 1;
	for (size_t i = 0; i < s->nscope; i++)
		if (memcmp(s->scope[i], org, QP_UUID_LEN) == 0)
			return 1;
	return 0;
}

/* Apply a locally made, fully validated op and keep it for the delta. */
static int emit(wctx *w, const uint8_t org[QP_UUID_LEN], qp_op *op)
{
	qp_feed feed;
	char *buf;
	size_t len;
	int rc;

	/* One op must fit in a delta: refuse it here, not when the batch's
	 * deltas are cut.  The exact size is computed only when the cheap
	 * bound says it might be too large. */
	if (op->fields != NULL &&
	    size_bound(op->fields, RECORD_MAX) > RECORD_MAX) {
		if ((rc = qp__state_encode(op->fields, &buf, &len)) != 0) {
			qp_op_clear(op);
			return werr(w, QP_EVALID,
			            "%s: record cannot be encoded", op->kind);
		}
		free(buf);
		if (len > RECORD_MAX) {
			qp_op_clear(op);
			return werr(w, QP_ETOOBIG,
			            "%s: record too large (%zu bytes)",
			            op->kind, len);
		}
	}
	if (!in_scope(w->s, org)) {
		char o[QP_UUID_STRLEN + 1];
		qp_uuid_format(org, o);
		rc = werr(w, QP_ESCOPE,
		          "%s.org: this node is enrolled for %zu other org%s, "
		          "not %s; the hub would never receive it",
		          op->kind, w->s->nscope, w->s->nscope == 1 ? "" : "s",
		          o);
		qp_op_clear(op);
		return rc;
	}
	memcpy(feed.author, w->s->pk, QP_KEY_LEN);
	memcpy(feed.org, org, QP_UUID_LEN);
	rc = qp__apply_op(&w->t, &feed, op, 1, w->err, w->errlen);
	if (rc != 0) {
		qp_op_clear(op);
		return rc;
	}
	push_pend(w, org, op);
	return 0;
}

static uint64_t now(qp_store *s)
{
	return qp_hlc_now(&s->hlc, qp_hlc_wall_ms());
}

/* The stamp of an edit based on the version base of a record: after
 * every op of the record it saw, even one stamped by a clock far ahead
 * that this node's clock was not dragged to (store_verify.c), so that
 * the edit takes effect.  The clock itself stays where it is. */
static uint64_t stamp_after(qp_store *s, uint64_t base)
{
	uint64_t t = now(s);

	return t > base || base == UINT64_MAX ? t : base + 1;
}

/* The canonical lower-case form of a UUID-looking string v (a new
 * reference), or NULL when v is none or already canonical: keys and
 * references then compare as bytes. */
static json_t *canon(const json_t *v)
{
	uint8_t b[QP_UUID_LEN];
	char s[QP_UUID_STRLEN + 1];
	const char *t = json_string_value(v);

	if (t == NULL || qp_uuid_parse(t, b) != 0)
		return NULL;
	qp_uuid_format(b, s);
	return strcmp(s, t) != 0 ? json_string(s) : NULL;
}

/* Member key of rec in canonical form. */
static void canon_id(json_t *rec, const char *key)
{
	json_t *c = canon(json_object_get(rec, key));
	if (c != NULL)
		json_object_set_new(rec, key, c);
}

/* Whether record id is created by an op of the group being written: 1 +
 * the index of the write that made it, else 0. */
static size_t made_in_group(const wctx *w, const char *id)
{
	uint8_t b[QP_UUID_LEN];

	if (qp_uuid_parse(id, b) != 0)
		return 0;
	for (size_t i = 0; i < w->ngp; i++)
		if (w->gp[i].op.type == QP_OP_CREATE &&
		    memcmp(w->gp[i].op.id, b, QP_UUID_LEN) == 0)
			return w->gp[i].at + 1;
	return 0;
}

/* Every reference of rec in canonical form, so that stored records,
 * indexes and the reviews at the hub compare ids as bytes whatever case a
 * user typed. */
static void canon_refs(const qp_kind *k, json_t *rec)
{
	json_t *v, *e;
	size_t i, j;

	for (i = 0; i < k->nfields; i++) {
		const qp_field *f = &k->fields[i];
		v = json_object_get(rec, f->name);
		if (v == NULL)
			continue;
		if (f->type == QP_T_REF) {
			canon_id(rec, f->name);
		} else if (f->type == QP_T_REFS && json_is_array(v)) {
			json_array_foreach(v, j, e)
				if ((e = canon(e)) != NULL)
					json_array_set_new(v, j, e);
		} else if (f->type == QP_T_LOTQTY && json_is_array(v)) {
			json_array_foreach(v, j, e)
				if (json_is_object(e))
					canon_id(e, "lot");
		}
	}
}

/* After a look-up of a natural key's owner (rc, owner) for record id: 0
 * when the key is free or id's own, KEY_HELD when another record holds
 * it, KEY_TWICE when that record is made earlier in this group (it goes
 * if the group is refused: a message must not name it, but the group's
 * twin names the write that made it), else the error. */
#define KEY_HELD  1
#define KEY_TWICE 2
static int key_holder(wctx *w, int rc, const char *owner, const char *id)
{
	size_t at;

	if (rc == QP_ENOTFOUND || (rc == 0 && strcmp(owner, id) == 0))
		return 0;
	if (rc != 0)
		return rc;
	if ((at = made_in_group(w, owner)) == 0)
		return KEY_HELD;
	w->g->twin = at;
	return KEY_TWICE;
}

static int check_natkey(wctx *w, const qp_kind *k, const json_t *rec,
                        const char *id)
{
	char key[QP__KEY_MAX], owner[QP_UUID_STRLEN + 1], scope[48];
	const qp_field *f = qp_schema_key_of(k, rec);
	size_t len;
	int rc;

	if (!qp__natkey(k, rec, key, &len))
		return 0;
	rc = key_holder(w, qp__natkey_owner(&w->t, key, len, owner), owner, id);
	if (rc <= 0)
		return rc;
	if (rc == KEY_TWICE)
		return werr(w, QP_EEXIST,
		            "%s.%s: %.64s is given twice",
		            k->name, f->name,
		            json_string_value(json_object_get(rec, f->name)));
	if (k->key_scope != NULL)
		snprintf(scope, sizeof scope, " for this %.24s", k->key_scope);
	else
		snprintf(scope, sizeof scope, "%s",
		         (k->flags & QP_K_UNIQUE_GLOBAL) ? "" : " in this org");
	return werr(w, QP_EEXIST, "%s.%s: %.64s is already registered%s as %s",
	            k->name, f->name,
	            json_string_value(json_object_get(rec, f->name)), scope,
	            owner);
}

/* Which record holds the natural key that kind kname gives a record of
 * the fields a=av, b=bv: 0 and its id in owner, or QP_ENOTFOUND. */
static int key_owner(wctx *w, const char *kname, const char *a,
                     const char *av, const char *b, const char *bv,
                     char owner[QP_UUID_STRLEN + 1])
{
	char key[QP__KEY_MAX];
	json_t *r = json_pack("{s:s, s:s}", a, av, b, bv);
	size_t len;
	int rc;

	if (r == NULL)
		return QP_ENOMEM;
	rc = qp__natkey(qp_schema_kind(kname), r, key, &len)
	         ? qp__natkey_owner(&w->t, key, len, owner)
	         : QP_ENOTFOUND;
	json_decref(r);
	return rc;
}

/* An attendance names a person by producer, or by DNI; a registered
 * producer given by the DNI she is registered with in the attendance's
 * org is that producer (as report attendance and check duplicates count
 * persons).  check_natkey sees only the form the record uses: refuse the
 * person already recorded at the session in the other form too. */
static int check_person(wctx *w, const qp_kind *k, const json_t *rec,
                        const char *id)
{
	const char *ses = json_string_value(json_object_get(rec, "session"));
	const char *org = json_string_value(json_object_get(rec, "org"));
	const char *prod = json_string_value(json_object_get(rec, "producer"));
	const char *dni = json_string_value(json_object_get(rec, "dni"));
	char pid[QP_UUID_STRLEN + 1], owner[QP_UUID_STRLEN + 1],
	    oorg[QP_UUID_STRLEN + 1], kind[QP__KIND_LEN], pdni[16];
	int rc, held;

	if (strcmp(k->name, "attendance") != 0 || ses == NULL || org == NULL)
		return 0;
	if (prod != NULL) {
		/* The producer's DNI, recorded at the session as a DNI of
		 * this org. */
		if ((rc = qp__state_str(&w->t, prod, "dni", pdni,
		                        sizeof pdni)) != 0)
			return rc == QP_ENOTFOUND ? 0 : rc;
		dni = pdni;
		rc = key_holder(w,
		                key_owner(w, "attendance", "session", ses,
		                          "dni", dni, owner),
		                owner, id);
		if ((held = rc) <= 0)
			return rc;
		/* A DNI attendance of another org names another person. */
		if ((rc = qp__state_peek(&w->t, owner, kind, oorg, NULL)) != 0)
			return rc;
		if (strcmp(oorg, org) != 0)
			return 0;
		if (held == KEY_TWICE)
			return werr(w, QP_EEXIST,
			            "attendance.producer: %s (DNI %s) is given "
			            "twice, once by DNI",
			            prod, dni);
		return werr(w, QP_EEXIST,
		            "attendance.producer: %s (DNI %s) is already "
		            "registered for this session by DNI as %s",
		            prod, dni, owner);
	}
	if (dni == NULL)
		return 0;
	/* The producer of this org registered with this DNI, recorded at
	 * the session by id. */
	rc = key_owner(w, "producer", "org", org, "dni", dni, pid);
	if (rc == 0)
		rc = key_owner(w, "attendance", "session", ses, "producer", pid,
		               owner);
	if ((rc = key_holder(w, rc, owner, id)) <= 0)
		return rc;
	if (rc == KEY_TWICE)
		return werr(w, QP_EEXIST,
		            "attendance.dni: %s is producer %s's DNI, given "
		            "twice, once as the producer",
		            dni, pid);
	return werr(w, QP_EEXIST,
	            "attendance.dni: %s is producer %s's DNI, already "
	            "registered for this session as %s",
	            dni, pid, owner);
}

/* The EUDR geometry checks of a record the schema accepted (see geo.h):
 * a broken geometry refuses the write with geo.h's message; a geometry
 * with the wrong winding is replaced in rec by its fixed copy, so the op,
 * the log and the state all hold the geometry as stored.  Warnings do not
 * refuse: qp_store_get derives them (and the measured area) from the
 * stored geometry. */
static int check_geometry(wctx *w, const qp_kind *k, json_t *rec)
{
	qp_geo_result res;
	const char *path = NULL;
	json_t *fixed = NULL;
	char msg[QP_ERRMSG_LEN];
	int rc;

	rc = qp__geo_check(w->s, k->name, rec, &res, &path, &fixed, msg,
	                   sizeof msg);
	if (rc == 1)
		return 0;
	if (rc != 0)
		return werr(w, QP_EVALID, "%s", msg);
	if (fixed != NULL) {
		if (w->g->notes == NULL)
			w->g->notes = json_array();
		json_array_append_new(
		    w->g->notes,
		    json_pack("{s:I, s:s+}", "index", (json_int_t)w->cur,
		              "note", path,
		              ": ring winding turned to RFC 7946 (outer rings "
		              "counter-clockwise, holes clockwise)"));
	}
	if (fixed != NULL)
		json_object_set_new(rec,
		                    strcmp(k->name, "plot") == 0 ? "geometry"
		                                                 : "place",
		                    fixed);
	return 0;
}

/* Lots read for one mass-balance check, kept until it ends so the product
 * names handed to qp_lots_event_check stay valid. */
typedef struct lotctx {
	wctx *w;
	json_t *seen; /* id -> record state */
} lotctx;

static int lot_state(lotctx *lc, const char *id, json_t **st)
{
	uint8_t b[QP_UUID_LEN];
	char norm[QP_UUID_STRLEN + 1];
	int rc;

	if (qp_uuid_parse(id, b) != 0)
		return QP_ENOTFOUND;
	qp_uuid_format(b, norm);
	if ((*st = json_object_get(lc->seen, norm)) != NULL)
		return 0;
	if ((rc = qp__state_get(&lc->w->t, norm, st)) != 0)
		return rc;
	json_object_set_new(lc->seen, norm, *st);
	return 0;
}

static int lot_lookup(void *ctx, const char *id, const char **product,
                      double *kg)
{
	json_t *st, *r;
	int rc;

	if ((rc = lot_state(ctx, id, &st)) != 0)
		return rc;
	r = json_object_get(st, "r");
	if (strcmp(json_string_value(json_object_get(r, "kind")), "lot") != 0)
		return QP_ENOTFOUND;
	*product = json_string_value(json_object_get(r, "product"));
	*kg = json_number_value(json_object_get(r, "kg"));
	return 0;
}

/* The kg of lot already taken as input by events that are not void,
 * through the lot-use index; first (when not NULL) gets the id of one
 * such event, or "" when there is none. */
static int lot_used(wctx *w, const char *lot, double *used,
                    char first[QP_UUID_STRLEN + 1])
{
	char key[QP__USEKEY_LEN], ev[QP_UUID_STRLEN + 1];
	size_t pl = qp__use_key(lot, NULL, key);
	MDB_cursor *c = NULL;
	MDB_val k = {pl, key}, d;
	json_t *st;
	double sum = 0;
	int rc;

	if (first != NULL)
		first[0] = '\0';
	if ((rc = mdb_cursor_open(w->t.txn, w->t.db->idx_key, &c)) != 0)
		return qp__mdb(rc);
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		if (k.mv_size < pl || memcmp(k.mv_data, key, pl) != 0)
			break;
		if (d.mv_size != QP_UUID_STRLEN) {
			rc = QP_ECORRUPT;
			goto out;
		}
		memcpy(ev, d.mv_data, QP_UUID_STRLEN);
		ev[QP_UUID_STRLEN] = '\0';
		if ((rc = qp__state_get(&w->t, ev, &st)) != 0)
			goto out;
		if (json_object_get(st, "v") == NULL) {
			sum += qp_lots_input_kg(json_object_get(st, "r"), lot);
			if (first != NULL && first[0] == '\0')
				memcpy(first, ev, QP_UUID_STRLEN + 1);
		}
		json_decref(st);
	}
	rc = rc == MDB_NOTFOUND ? 0 : qp__mdb(rc);
	*used = sum;
out:
	mdb_cursor_close(c);
	return rc;
}

/* Mass balance of a new lot_event (lots.h): its outputs within the
 * products' yield, and no input lot giving more than it holds over all the
 * events that took from it. */
static int check_mass(wctx *w, const qp_kind *k, const json_t *rec)
{
	lotctx lc = {w, NULL};
	const json_t *in;
	json_t *st;
	double used = 0, held, kg;
	size_t i;
	int rc = 0;

	if (strcmp(k->name, "lot_event") != 0)
		return 0;
	lc.seen = json_object();
	json_array_foreach(json_object_get(rec, "inputs"), i, in) {
		const char *lot = json_string_value(json_object_get(in, "lot"));
		const json_t *r;
		if ((rc = lot_state(&lc, lot, &st)) != 0)
			goto out;
		r = json_object_get(st, "r");
		if ((rc = lot_used(w, lot, &used, NULL)) != 0)
			goto out;
		held = json_number_value(json_object_get(r, "kg"));
		kg = json_number_value(json_object_get(in, "kg"));
		if (used + kg > held * (1 + w->s->lots_cfg.tolerance) + 0.001) {
			rc = werr(w, QP_EVALID,
			          "lot_event.inputs[%zu].kg: lot %.64s holds %.10g "
			          "kg and %.10g kg of it is already used; %.10g kg "
			          "more is too much",
			          i, json_string_value(json_object_get(r, "code")),
			          held, used, kg);
			goto out;
		}
	}
	rc = qp_lots_event_check(&w->s->lots_cfg, rec, lot_lookup, &lc, NULL,
	                         w->err, w->errlen);
out:
	json_decref(lc.seen);
	return rc;
}

/* A lot that names its producer and plots: the plots are that
 * producer's, or trace and DDS would credit one farmer's coffee to
 * another's land. */
static int check_lot_plots(wctx *w, const qp_kind *k, const json_t *rec)
{
	const char *prod = json_string_value(json_object_get(rec, "producer"));
	const json_t *plots = json_object_get(rec, "plots"), *p;
	char owner[QP_UUID_STRLEN + 1];
	size_t i;
	int rc;

	if (strcmp(k->name, "lot") != 0 || prod == NULL || plots == NULL)
		return 0;
	json_array_foreach(plots, i, p) {
		/* Ids are canonical (canon_refs); a plot without a producer,
		 * or none held, was reported by the schema's checks. */
		rc = qp__state_str(&w->t, json_string_value(p), "producer",
		                   owner, sizeof owner);
		if (rc == QP_ENOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		if (strcmp(owner, prod) != 0)
			return werr(w, QP_EVALID,
			            "lot.plots[%zu]: plot %s is producer %s's, "
			            "not the lot's producer %s",
			            i, json_string_value(p), owner, prod);
	}
	return 0;
}

/* An update of a lot that custody events already take from keeps what
 * they took: its product stays, and its kg still covers their inputs
 * (within the tolerance, as for a new event). */
static int check_lot_update(wctx *w, const qp_kind *k, const json_t *old,
                            const json_t *merged, const json_t *changes,
                            const char *id)
{
	const char *code = json_string_value(json_object_get(old, "code"));
	char ev[QP_UUID_STRLEN + 1];
	double used, kg;
	int rc;

	if (strcmp(k->name, "lot") != 0 ||
	    (json_object_get(changes, "kg") == NULL &&
	     json_object_get(changes, "product") == NULL))
		return 0;
	if ((rc = lot_used(w, id, &used, ev)) != 0 || ev[0] == '\0')
		return rc;
	if (!json_equal(json_object_get(old, "product"),
	                json_object_get(merged, "product")))
		return werr(w, QP_EVALID,
		            "lot.product: lot %.64s is already an input of "
		            "event %s; its product cannot change",
		            code, ev);
	kg = json_number_value(json_object_get(merged, "kg"));
	if (used > kg * (1 + w->s->lots_cfg.tolerance) + 0.001)
		return werr(w, QP_EVALID,
		            "lot.kg: lot %.64s already gives %.10g kg to custody "
		            "events; it cannot hold only %.10g kg",
		            code, used, kg);
	return 0;
}

static int do_create(wctx *w, const qp_write *wr, char *id_out)
{
	const char *kname = wr->kind, *rk = NULL, *name;
	const qp_kind *k;
	json_t *rec = NULL, *v;
	uint8_t idb[QP_UUID_LEN], orgb[QP_UUID_LEN];
	char id[QP_UUID_STRLEN + 1], kbuf[QP__KIND_LEN];
	qp_op op = {0};
	int rc;

	v = json_object_get(wr->rec, "kind");
	if (v != NULL) {
		if (!json_is_string(v))
			return werr(w, QP_EVALID, "%s.kind: must be a string",
			            kname ? kname : "record");
		rk = json_string_value(v);
	}
	if (kname != NULL && rk != NULL && strcmp(kname, rk) != 0)
		return werr(w, QP_EVALID,
		            "%.24s.kind: does not match the command's kind",
		            kname);
	if (kname == NULL)
		kname = rk;
	if (kname == NULL)
		return werr(w, QP_EVALID, "record.kind: required");
	if ((k = qp_schema_kind(kname)) == NULL)
		return werr(w, QP_EVALID, "kind: unknown kind \"%.24s\"",
		            kname);
	if (!json_is_object(wr->rec))
		return werr(w, QP_EVALID, "%s: record must be a JSON object",
		            k->name);

	rec = json_deep_copy(wr->rec);
	json_object_set_new(rec, "kind", json_string(k->name));
	v = json_object_get(rec, "id");
	if (v != NULL) {
		static const uint8_t nil[QP_UUID_LEN];
		if (!json_is_string(v) ||
		    qp_uuid_parse(json_string_value(v), idb)) {
			rc = werr(w, QP_EVALID, "%s.id: must be a UUID",
			          k->name);
			goto out;
		}
		if (memcmp(idb, nil, QP_UUID_LEN) == 0) {
			rc = werr(w, QP_EVALID,
			          "%s.id: the nil UUID is not an id (leave id "
			          "out to get a new one)",
			          k->name);
			goto out;
		}
	} else {
		qp_uuid_v7(&w->s->ugen, qp_hlc_wall_ms(), idb);
	}
	qp_uuid_format(idb, id);
	json_object_set_new(rec, "id", json_string(id));
	rc = qp__state_kind(&w->t, id, kbuf);
	if (rc == 0 || rc == QP_ECORRUPT) {
		rc = werr(w, QP_EEXIST, "%s.id: a record with this id exists",
		          k->name);
		goto out;
	}
	if (rc != QP_ENOTFOUND)
		goto out;
	if (strcmp(k->name, "org") == 0 && json_object_get(rec, "org") == NULL)
		json_object_set_new(rec, "org", json_string(id));
	canon_id(rec, "org");
	canon_refs(k, rec);

	w->self_id = id;
	w->self_kind = k->name;
	w->self_org = json_string_value(json_object_get(rec, "org"));
	rc = qp_schema_validate(k, rec, ref_cb, w, w->err, w->errlen);
	w->self_id = w->self_kind = w->self_org = NULL;
	if (rc != 0 || (rc = check_geometry(w, k, rec)) != 0)
		goto out;
	if (qp_uuid_parse(json_string_value(json_object_get(rec, "org")),
	                  orgb) != 0) {
		rc = werr(w, QP_EVALID, "%s.org: must be a UUID", k->name);
		goto out;
	}
	if ((rc = check_natkey(w, k, rec, id)) != 0 ||
	    (rc = check_person(w, k, rec, id)) != 0 ||
	    (rc = check_mass(w, k, rec)) != 0 ||
	    (rc = check_lot_plots(w, k, rec)) != 0)
		goto out;

	op.type = QP_OP_CREATE;
	memcpy(op.id, idb, QP_UUID_LEN);
	snprintf(op.kind, sizeof(op.kind), "%s", k->name);
	op.hlc = now(w->s);
	op.base = 0;
	op.fields = json_object();
	json_object_foreach(rec, name, v)
	{
		if (strcmp(name, "id") != 0 && strcmp(name, "kind") != 0 &&
		    strcmp(name, "org") != 0 && !json_is_null(v))
			json_object_set(op.fields, name, v);
	}
	if ((rc = emit(w, orgb, &op)) == 0)
		memcpy(id_out, id, QP_UUID_STRLEN + 1);
out:
	json_decref(rec);
	return rc;
}

/* Load the target of an update or void. */
static int load_target(wctx *w, const char *what, const char *rid, json_t **st,
                       char *id, const qp_kind **k)
{
	uint8_t b[QP_UUID_LEN];
	const char *kname;
	int rc;

	if (rid == NULL || qp_uuid_parse(rid, b) != 0)
		return werr(w, QP_ENOTFOUND, "%s: no record with id %.40s",
		            what, rid ? rid : "(none)");
	qp_uuid_format(b, id);
	rc = qp__state_get(&w->t, id, st);
	if (rc == QP_ENOTFOUND)
		return werr(w, rc, "%s: no record with id %s", what, id);
	if (rc != 0)
		return rc;
	kname = json_string_value(
	    json_object_get(json_object_get(*st, "r"), "kind"));
	if ((*k = qp_schema_kind(kname)) == NULL) {
		json_decref(*st);
		return werr(w, QP_ECORRUPT,
		            "%s: record %s has unknown kind %.24s", what, id,
		            kname);
	}
	return 0;
}

/* Whether an update changes what the geometry checks look at.  A plot
 * received from a node with older rules may fail today's checks; its
 * other fields (crop, tenure) can still be corrected without redrawing
 * it, and `quipu check plots` keeps flagging the geometry. */
static int touches_geometry(const json_t *changes)
{
	static const char *const fields[] = {"geometry", "place", "area_ha",
	                                     "accuracy_m"};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (json_object_get(changes, fields[i]) != NULL)
			return 1;
	return 0;
}

static int do_update(wctx *w, const qp_write *wr, char *id_out)
{
	const qp_kind *k;
	json_t *st = NULL, *r, *merged = NULL, *v, *cur;
	char id[QP_UUID_STRLEN + 1];
	const char *name;
	uint8_t orgb[QP_UUID_LEN];
	qp_op op = {0};
	int rc;

	if ((rc = load_target(w, "update", wr->id, &st, id, &k)) != 0)
		return rc;
	r = json_object_get(st, "r");
	rc = QP_EVALID;
	if (json_object_get(st, "v") != NULL) {
		werr(w, rc, "%s: record %s is voided", k->name, id);
		goto out;
	}
	if (k->flags & QP_K_APPEND_ONLY) {
		werr(w, rc, "%s: append-only; void it and add a new one",
		     k->name);
		goto out;
	}
	if (!json_is_object(wr->changes)) {
		werr(w, rc, "update: changes must be a JSON object");
		goto out;
	}
	merged = json_deep_copy(r);
	json_object_foreach(wr->changes, name, v)
	{
		if (strcmp(name, "id") == 0 || strcmp(name, "kind") == 0 ||
		    strcmp(name, "org") == 0) {
			werr(w, rc, "%s.%s: cannot be changed", k->name, name);
			goto out;
		}
		if (json_is_null(v))
			json_object_del(merged, name);
		else
			json_object_set_new(merged, name, json_deep_copy(v));
	}
	canon_refs(k, merged);
	w->self_id = id;
	w->self_kind = k->name;
	w->self_org = json_string_value(json_object_get(r, "org"));
	w->changes = wr->changes;
	rc = qp_schema_validate(k, merged, ref_cb, w, w->err, w->errlen);
	w->self_id = w->self_kind = w->self_org = NULL;
	w->changes = NULL;
	if (rc != 0 ||
	    (touches_geometry(wr->changes) &&
	     (rc = check_geometry(w, k, merged)) != 0) ||
	    (rc = check_natkey(w, k, merged, id)) != 0 ||
	    (rc = check_lot_update(w, k, r, merged, wr->changes, id)) != 0 ||
	    ((json_object_get(wr->changes, "plots") != NULL ||
	      json_object_get(wr->changes, "producer") != NULL) &&
	     (rc = check_lot_plots(w, k, merged)) != 0))
		goto out;

	op.fields = json_object();
	json_object_foreach(wr->changes, name, v)
	{
		cur = json_object_get(r, name);
		/* A value given again for a field in conflict is a choice:
		 * it is written, and resolves the conflict. */
		if ((rc = qp__conflict_field(&w->t, id, name)) < 0) {
			qp_op_clear(&op);
			goto out;
		}
		if (json_is_null(v)) {
			if (cur != NULL || rc == 1)
				json_object_set(op.fields, name, v);
		} else if (cur == NULL ||
		           !json_equal(cur, json_object_get(merged, name)) ||
		           rc == 1) {
			json_object_set(op.fields, name,
			                json_object_get(merged, name));
		}
	}
	rc = 0;
	memcpy(id_out, id, QP_UUID_STRLEN + 1);
	if (json_object_size(op.fields) == 0) {
		qp_op_clear(&op); /* nothing changes: no op */
		goto out;
	}
	op.type = QP_OP_UPDATE;
	qp_uuid_parse(id, op.id);
	qp_uuid_parse(json_string_value(json_object_get(r, "org")), orgb);
	snprintf(op.kind, sizeof(op.kind), "%s", k->name);
	op.base = (uint64_t)json_integer_value(json_object_get(st, "u"));
	op.hlc = stamp_after(w->s, op.base);
	rc = emit(w, orgb, &op);
out:
	json_decref(merged);
	json_decref(st);
	return rc;
}

/* A lot that custody events take from cannot be voided while they stand:
 * the chain would lose a link.  Their void comes first. */
static int check_lot_void(wctx *w, const qp_kind *k, const json_t *r,
                          const char *id)
{
	char ev[QP_UUID_STRLEN + 1];
	double used;
	int rc;

	if (strcmp(k->name, "lot") != 0)
		return 0;
	if ((rc = lot_used(w, id, &used, ev)) != 0 || ev[0] == '\0')
		return rc;
	return werr(w, QP_EVALID,
	            "void: lot %.64s is an input of event %s; void that event "
	            "first",
	            json_string_value(json_object_get(r, "code")), ev);
}

static int do_void(wctx *w, const qp_write *wr, char *id_out)
{
	const qp_kind *k;
	json_t *st = NULL, *r, *check;
	char id[QP_UUID_STRLEN + 1];
	uint8_t orgb[QP_UUID_LEN];
	qp_op op = {0};
	int rc;

	if ((rc = load_target(w, "void", wr->id, &st, id, &k)) != 0)
		return rc;
	r = json_object_get(st, "r");
	rc = QP_EVALID;
	if (wr->reason == NULL || wr->reason[0] == '\0') {
		werr(w, rc, "void: reason required");
		goto out;
	}
	if (strlen(wr->reason) > QP__VOID_MAX) {
		werr(w, rc, "void: reason longer than %d bytes", QP__VOID_MAX);
		goto out;
	}
	if ((check = json_string(wr->reason)) == NULL) {
		werr(w, rc, "void: reason is not valid UTF-8");
		goto out;
	}
	json_decref(check);
	/* Voiding a voided record again is how a reviewer confirms the void
	 * over edits it had not seen (quipu conflicts); otherwise refused. */
	if (json_object_get(st, "v") != NULL &&
	    (rc = qp__void_conflicted(&w->t, id)) <= 0) {
		if (rc == 0)
			werr(w, rc = QP_EVALID, "%s: record %s is already voided",
			     k->name, id);
		goto out;
	}
	if ((rc = check_lot_void(w, k, r, id)) != 0)
		goto out;
	op.type = QP_OP_VOID;
	qp_uuid_parse(id, op.id);
	qp_uuid_parse(json_string_value(json_object_get(r, "org")), orgb);
	snprintf(op.kind, sizeof(op.kind), "%s", k->name);
	op.base = (uint64_t)json_integer_value(json_object_get(st, "u"));
	op.hlc = stamp_after(w->s, op.base);
	op.reason = qp_xstrdup(wr->reason);
	if ((rc = emit(w, orgb, &op)) == 0)
		memcpy(id_out, id, QP_UUID_STRLEN + 1);
out:
	json_decref(st);
	return rc;
}

static int do_write(wctx *w, const qp_write *wr, char *id_out)
{
	switch (wr->type) {
	case QP_OP_CREATE: return do_create(w, wr, id_out);
	case QP_OP_UPDATE: return do_update(w, wr, id_out);
	case QP_OP_VOID: return do_void(w, wr, id_out);
	}
	return werr(w, QP_EINVAL, "write: unknown type %d", (int)wr->type);
}

/* Sign ops[0..n) into deltas of feed, starting after *seq / prev, and
 * append them to the log; a batch too big for one delta is split. */
static int append_ops(qp_store *s, MDB_txn *txn, const qp_feed *feed,
                      const qp_op *ops, size_t n, uint64_t *seq,
                      uint8_t prev[QP_HASH_LEN])
{
	uint8_t key[QP__LOGKEY_LEN], *buf = NULL;
	MDB_val k = {sizeof key, key}, d;
	size_t len, half;
	int rc;

	if (n > QP_DELTA_MAX_OPS) {
		half = QP_DELTA_MAX_OPS;
		goto split;
	}
	rc = qp_delta_build(feed, *seq + 1, prev, ops, n, s->sk, &buf, &len);
	if (rc == QP_ETOOBIG && n > 1) {
		half = n / 2;
		goto split;
	}
	if (rc != 0)
		return rc;
	memcpy(key, feed, QP__FEED_LEN);
	qp_put_be64(key + QP__FEED_LEN, *seq + 1);
	d.mv_size = len;
	d.mv_data = buf;
	rc = qp__log_put(txn, &s->db, &k, &d);
	if (rc == 0) {
		qp_delta_hash(buf, len, prev);
		(*seq)++;
	}
	free(buf);
	return rc == QP_EEXIST ? QP_ECORRUPT : rc;
split:
	rc = append_ops(s, txn, feed, ops, half, seq, prev);
	if (rc == 0)
		rc = append_ops(s, txn, feed, ops + half, n - half, seq, prev);
	return rc;
}

static int orgq_cmp(const void *a, const void *b)
{
	return memcmp(((const orgq *)a)->org, ((const orgq *)b)->org,
	              QP_UUID_LEN);
}

static int flush_deltas(wctx *w, MDB_txn *txn)
{
	uint8_t prev[QP_HASH_LEN];
	uint64_t seq;
	qp_feed feed;
	int rc;

	if (w->nq > 1)
		qsort(w->q, w->nq, sizeof(*w->q), orgq_cmp);
	memcpy(feed.author, w->s->pk, QP_KEY_LEN);
	for (size_t i = 0; i < w->nq; i++) {
		memcpy(feed.org, w->q[i].org, QP_UUID_LEN);
		if ((rc = qp__head_get(w->s, txn, &feed, &seq, prev)) != 0 ||
		    (rc = append_ops(w->s, txn, &feed, w->q[i].ops, w->q[i].n,
		                     &seq, prev)) != 0 ||
		    (rc = qp__head_put(w->s, txn, &feed, seq, prev)) != 0)
			return rc;
	}
	return 0;
}

static void wctx_free(wctx *w)
{
	drop_pend(w);
	free(w->gp);
	for (size_t i = 0; i < w->nq; i++)
		qp_ops_free(w->q[i].ops, w->q[i].n);
	free(w->q);
}

static void group_reset(qp_wgroup *g)
{
	qp_wgroup_clear(g);
	g->rc = 0;
	g->failed = 0;
	g->twin = 0;
	g->err[0] = '\0';
}

/* One attempt at the whole batch.  With nested set, each group runs in a
 * nested transaction, so a refused group is undone alone.  Nested
 * transactions are costly (a page the parent already changed is copied
 * again by each child), so the first attempt runs every group straight in
 * the batch's transaction and returns QP__ERETRY at the first refusal; the
 * batch is then redone with nested set.  QP__EMAPFULL asks for a bigger
 * map. */
static int write_once(qp_store *s, qp_wgroup *groups, size_t n, int nested)
{
	wctx w = {.s = s};
	MDB_txn *txn = NULL, *ntx = NULL;
	uint64_t t0;
	size_t i, j;
	int rc;

	for (i = 0; i < n; i++)
		group_reset(&groups[i]);
	if ((rc = qp__store_txn_begin(s, NULL, 0, &txn)) != 0)
		return rc;
	if ((rc = qp__store_hlc_load(s, txn)) != 0 ||
	    (!nested && (rc = qp__tx_init(&w.t, txn, &s->db)) != 0))
		goto fail;
	for (i = 0; i < n; i++) {
		qp_wgroup *g = &groups[i];
		g->ids = qp_xcalloc(g->n ? g->n : 1, sizeof(*g->ids));
		if (nested) {
			if ((rc = qp__store_txn_begin(s, txn, 0, &ntx)) != 0)
				goto fail;
			if ((rc = qp__tx_init(&w.t, ntx, &s->db)) != 0)
				goto fail;
		}
		w.err = g->err;
		w.errlen = sizeof(g->err);
		w.g = g;
		for (j = 0; j < g->n && rc == 0; j++) {
			g->err[0] = '\0';
			w.cur = j;
			rc = do_write(&w, &g->writes[j], g->ids[j]);
		}
		if (rc == 0) {
			if (ntx != NULL) {
				rc = qp__mdb(mdb_txn_commit(ntx));
				ntx = NULL;
				if (rc != 0)
					goto fail;
			}
			keep_pend(&w);
			continue;
		}
		if (!nested || rc == QP__EMAPFULL) {
			rc = rc == QP__EMAPFULL ? rc : QP__ERETRY;
			goto fail;
		}
		mdb_txn_abort(ntx);
		ntx = NULL;
		drop_pend(&w);
		/* Refused: nothing of this group remains; go on. */
		g->rc = rc;
		g->failed = j - 1;
		if (g->err[0] == '\0')
			qp_fmt(g->err, sizeof(g->err), "store: %s",
			       qp_strerror(rc));
		free(g->ids);
		g->ids = NULL;
		json_decref(g->notes);
		g->notes = NULL;
		rc = 0;
	}
	if (w.nq == 0) {
		/* Every group was refused: nothing to sign, nothing to make
		 * durable, so no fsync either. */
		mdb_txn_abort(txn);
		wctx_free(&w);
		return 0;
	}
	if ((rc = flush_deltas(&w, txn)) != 0 ||
	    (rc = qp__store_hlc_save(s, txn)) != 0)
		goto fail;
	t0 = qp_mono_ns();
	rc = qp__mdb(mdb_txn_commit(txn));
	txn = NULL;
	if (rc != 0)
		goto fail;
	s->commit_ns += qp_mono_ns() - t0;
	s->commits++;
	wctx_free(&w);
	return 0;
fail:
	if (ntx != NULL)
		mdb_txn_abort(ntx);
	if (txn != NULL)
		mdb_txn_abort(txn);
	wctx_free(&w);
	return rc;
}

/* Below QP__PREFILL_CHUNK of free space a failed commit is put down to a
 * full disk: a disk that fills up shows as a short write, which LMDB
 * reports as EIO (QP_ESTORE), as often as ENOSPC. */
#define LOW_SPACE ((double)QP__PREFILL_CHUNK)

/* The code and message of a batch that could not be committed (rc): a
 * full disk is named, with the store's directory and what is left on
 * it. */
static int commit_failed(qp_store *s, int rc, char *err, size_t len)
{
	const char *path = NULL;
	struct statvfs fs;
	double avail;

	if ((rc == -ENOSPC || rc == QP_ESTORE) &&
	    mdb_env_get_path(s->env, &path) == 0 && statvfs(path, &fs) == 0 &&
	    (avail = (double)fs.f_bavail * (double)fs.f_frsize,
	     rc == -ENOSPC || avail < LOW_SPACE)) {
		qp_fmt(err, len,
		       "store: the disk is full (%.1f MiB free for %s): "
		       "nothing was written; free some space and retry",
		       avail / 1048576.0, path);
		return -ENOSPC;
	}
	qp_fmt(err, len, "store: commit failed: %s", qp_strerror(rc));
	return rc;
}

/* Apply the groups in one durable transaction (see store.h). */
int qp_store_write(qp_store *s, qp_wgroup *groups, size_t n)
{
	int rc, tries = 0, nested = 0;

	if (s == NULL || (groups == NULL && n > 0))
		return QP_EINVAL;
	for (;;) {
		rc = write_once(s, groups, n, nested);
		if (rc == QP__ERETRY && !nested) {
			nested = 1;
			continue;
		}
		if (rc != QP__EMAPFULL || tries++ >= QP__MAP_RETRIES ||
		    (rc = qp__store_grow(s)) != 0)
			break;
	}
	if (rc == QP__EMAPFULL || rc == QP__ERETRY)
		rc = QP_ESTORE;
	if (rc != 0) {
		for (size_t i = 0; i < n; i++) {
			group_reset(&groups[i]);
			groups[i].rc = commit_failed(s, rc, groups[i].err,
			                             sizeof(groups[i].err));
		}
		if (n > 0)
			rc = groups[0].rc;
	}
	return rc;
}

/* Commits and their time (see store.h). */
void qp_store_commit_time(const qp_store *s, uint64_t *commits, uint64_t *ns)
{
	*commits = s->commits;
	*ns = s->commit_ns;
}

/* Free a group's ids (see store.h).  Accepts NULL. */
void qp_wgroup_clear(qp_wgroup *g)
{
	if (g == NULL)
		return;
	free(g->ids);
	g->ids = NULL;
	json_decref(g->notes);
	g->notes = NULL;
}
