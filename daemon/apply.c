/*
 * apply.c - record-state codec and op merge for the store (see apply.h).
 *
 * Keys written here (store.h lists the databases):
 *   records    id -> state
 *   idx_kind   kind \0 org \0 id   (kind within one org)
 *              kind \0 \0 id       (kind across orgs, in id order)
 *              \0 org \0 id        (one org, every kind, in id order)
 *   idx_key    natural key -> id   (first holder wins at merge; duplicates
 *                                   arriving from other nodes are flagged
 *                                   later, not refused)
 *              "~" \0 natural key \0 id -> id   (the other holders of a
 *                                   key: the owner voided, one of them
 *                                   takes the key)
 *   conflicts  id \0 field \0 hlc(be64) -> {author, hlc, value} of a value
 *              that lost to a concurrent edit
 *              id \0 "void:" field \0 hlc(be64) -> {author, hlc, value}
 *              of the value a field of a voided record holds, written
 *              without seeing the void by someone the voider had not seen
 *              (the void stands; the edit is kept for review)
 */
#include "apply.h"
#include "err.h"
#include "mpjson.h"
#include "util.h"
#include "uuid.h"

#include <errno.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qp__store_fatal(int rc)
{
	return rc == QP_ESTORE || rc == QP__EMAPFULL || rc == QP_ENOMEM ||
	       rc == QP_ECORRUPT || rc == -ENOSPC;
}

/* Map an LMDB code onto err.h (see apply.h): never returned raw. */
int qp__mdb(int rc)
{
	switch (rc) {
	case MDB_SUCCESS: return 0;
	case MDB_NOTFOUND: return QP_ENOTFOUND;
	case MDB_KEYEXIST: return QP_EEXIST;
	case MDB_MAP_FULL: return QP__EMAPFULL;
	case ENOSPC:
	case EDQUOT: return -ENOSPC; /* the disk is full: say so */
	default: return QP_ESTORE;
	}
}

/* Wrap txn for the apply path; notes whether conflicts may exist, so the
 * common case skips the conflict lookups. */
int qp__tx_init(qp__tx *t, MDB_txn *txn, const qp__dbs *db)
{
	MDB_stat st;
	int rc = mdb_stat(txn, db->conflicts, &st);
	if (rc != 0)
		return qp__mdb(rc);
	t->txn = txn;
	t->db = db;
	t->conflicts_maybe = st.ms_entries > 0;
	return 0;
}

/* ---- canonical encoding ------------------------------------------- */

typedef struct kv {
	const char *k;
	size_t n;
	json_t *v;
} kv;

static int kv_cmp(const void *a, const void *b)
{
	const kv *x = a, *y = b;
	size_t n = x->n < y->n ? x->n : y->n;
	int c = memcmp(x->k, y->k, n);
	if (c != 0)
		return c;
	return (x->n > y->n) - (x->n < y->n);
}

static int pack_sorted(msgpack_packer *pk, const json_t *v, int depth)
{
	json_t *o = (json_t *)v; /* jansson's iterators are not const */
	kv small[16], *e;
	size_t n, i = 0;
	int rc = 0;

	if ((json_is_array(v) || json_is_object(v)) &&
	    depth >= QP_MPJSON_MAX_DEPTH)
		return QP_EINVAL;
	if (json_is_array(v)) {
		n = json_array_size(v);
		if (msgpack_pack_array(pk, n) != 0)
			return QP_ENOMEM;
		for (i = 0; i < n && rc == 0; i++)
			rc = pack_sorted(pk, json_array_get(v, i), depth + 1);
		return rc;
	}
	if (!json_is_object(v))
		return qp_mpjson_pack(pk, v);
	n = json_object_size(o);
	e = n <= 16 ? small : qp_xmalloc(n * sizeof(*e));
	for (void *it = json_object_iter(o); it != NULL && i < n;
	     it = json_object_iter_next(o, it), i++) {
		e[i].k = json_object_iter_key(it);
		e[i].n = json_object_iter_key_len(it);
		e[i].v = json_object_iter_value(it);
	}
	if (n <= 16) {
		/* Insertion sort: a record's handful of keys, often in order
		 * already, without qsort's setup on every state written. */
		for (i = 1; i < n; i++) {
			kv t = e[i];
			size_t j = i;
			for (; j > 0 && kv_cmp(&e[j - 1], &t) > 0; j--)
				e[j] = e[j - 1];
			e[j] = t;
		}
	} else {
		qsort(e, n, sizeof(*e), kv_cmp);
	}
	if (msgpack_pack_map(pk, n) != 0)
		rc = QP_ENOMEM;
	for (i = 0; i < n && rc == 0; i++) {
		if (msgpack_pack_str_with_body(pk, e[i].k, e[i].n) != 0)
			rc = QP_ENOMEM;
		else
			rc = pack_sorted(pk, e[i].v, depth + 1);
	}
	if (e != small)
		free(e);
	return rc;
}

/* Canonical msgpack of v (sorted keys): the bytes the digest covers. */
int qp__state_encode(const json_t *v, char **out, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	rc = pack_sorted(&pk, v, 0);
	if (rc != 0) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	*len = sb.size;
	*out = msgpack_sbuffer_release(&sb);
	return 0;
}

/* Encode v canonically into a buffer kept for the thread and store it:
 * every op applied writes one state, and a fresh 8 KiB buffer per write
 * (msgpack's first allocation) costs more than the encoding itself.  One
 * store is used from one thread (store.h); the buffer lives as long as
 * the thread and is reused. */
static int put_json(qp__tx *t, MDB_dbi dbi, const void *key, size_t klen,
                    const json_t *v)
{
	static __thread msgpack_sbuffer sb;
	MDB_val k = {klen, (void *)key}, d;
	msgpack_packer pk;
	int rc;

	msgpack_sbuffer_clear(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if ((rc = pack_sorted(&pk, v, 0)) != 0)
		return rc;
	d.mv_size = sb.size;
	d.mv_data = sb.data;
	rc = qp__mdb(mdb_put(t->txn, dbi, &k, &d, 0));
	/* A rare big state must not pin its buffer for the thread's life. */
	if (sb.alloc > ((size_t)1 << 20))
		msgpack_sbuffer_destroy(&sb), memset(&sb, 0, sizeof sb);
	return rc;
}

/* Load and decode record id's state; QP_ECORRUPT when it is not a state. */
int qp__state_get(qp__tx *t, const char *id, json_t **state)
{
	MDB_val k = {strlen(id), (void *)id}, d;
	json_t *s = NULL;
	int rc = qp__mdb(mdb_get(t->txn, t->db->records, &k, &d));
	if (rc != 0)
		return rc;
	if (qp_mpjson_decode(d.mv_data, d.mv_size, QP_DELTA_MAX_RAW, &s) != 0)
		return QP_ECORRUPT;
	if (!json_is_object(json_object_get(s, "r")) ||
	    !json_is_object(json_object_get(s, "f")) ||
	    !json_is_string(json_object_get(json_object_get(s, "r"), "kind")) ||
	    !json_is_string(json_object_get(json_object_get(s, "r"), "org"))) {
		json_decref(s);
		return QP_ECORRUPT;
	}
	*state = s;
	return 0;
}

/* A minimal msgpack reader for qp__state_kind: reference checks need
 * only a record's kind, and walking the bytes costs far less than decoding
 * the whole state.  Every read is bounds-checked; -1 means malformed. */
static int mp_len(const uint8_t *p, size_t n, size_t *off, size_t w,
                  uint64_t *v)
{
	if (n - *off < w)
		return -1;
	*v = 0;
	for (size_t i = 0; i < w; i++)
		*v = (*v << 8) | p[*off + i];
	*off += w;
	return 0;
}

/* Read one header at p[*off]: *kind is 's' (string, *len bytes follow),
 * 'm' (map of *len pairs), 'a' (array of *len), or 'x' (a scalar whose
 * *len bytes of payload follow). */
static int mp_head(const uint8_t *p, size_t n, size_t *off, char *kind,
                   uint64_t *len)
{
	/* c0..df: payload bytes of each scalar type; 0xff: not a scalar
	 * (handled in the switch below) or never used (c1). */
	/* clang-format off */
	static const uint8_t fixed[32] = {
		0,    0xff, 0,    0,    0xff, 0xff, 0xff, 0xff, /* c0..c7 */
		0xff, 0xff, 4,    8,    1,    2,    4,    8,    /* c8..cf */
		1,    2,    4,    8,    2,    3,    5,    9,    /* d0..d7 */
		17,   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* d8..df */
	};
	/* clang-format on */
	uint8_t b;

	if (*off >= n)
		return -1;
	b = p[(*off)++];
	*len = 0;
	if (b <= 0x7f || b >= 0xe0) {
		*kind = 'x';
		return 0;
	}
	if (b <= 0x8f || (b >= 0x90 && b <= 0x9f)) {
		*kind = b <= 0x8f ? 'm' : 'a';
		*len = b & 0x0f;
		return 0;
	}
	if (b <= 0xbf) {
		*kind = 's';
		*len = b & 0x1f;
		return 0;
	}
	switch (b) {
	case 0xc4:
	case 0xc5:
	case 0xc6: /* bin */
		*kind = 'x';
		return mp_len(p, n, off, (size_t)1 << (b - 0xc4), len);
	case 0xc7:
	case 0xc8:
	case 0xc9: /* ext: length, then a type byte */
		*kind = 'x';
		if (mp_len(p, n, off, (size_t)1 << (b - 0xc7), len) != 0)
			return -1;
		(*len)++;
		return 0;
	case 0xd9:
	case 0xda:
	case 0xdb:
		*kind = 's';
		return mp_len(p, n, off, (size_t)1 << (b - 0xd9), len);
	case 0xdc:
	case 0xdd:
		*kind = 'a';
		return mp_len(p, n, off, (size_t)2 << (b - 0xdc), len);
	case 0xde:
	case 0xdf:
		*kind = 'm';
		return mp_len(p, n, off, (size_t)2 << (b - 0xde), len);
	}
	if (fixed[b - 0xc0] == 0xff)
		return -1;
	*kind = 'x';
	*len = fixed[b - 0xc0];
	return 0;
}

/* Skip one whole value. */
static int mp_skip(const uint8_t *p, size_t n, size_t *off)
{
	uint64_t pending = 1, len;
	char kind;

	while (pending > 0) {
		if (mp_head(p, n, off, &kind, &len) != 0)
			return -1;
		pending--;
		if (kind == 's' || kind == 'x') {
			if (len > n - *off)
				return -1;
			*off += (size_t)len;
		} else {
			pending += kind == 'm' ? 2 * len : len;
			if (pending > n - *off) /* each value takes a byte */
				return -1;
		}
	}
	return 0;
}

/* In the map starting at p[*off], find string key and leave *off at its
 * value.  Returns 0, or -1 when absent or malformed. */
static int mp_find(const uint8_t *p, size_t n, size_t *off, const char *key)
{
	size_t kl = strlen(key);
	uint64_t count, len;
	char kind;

	if (mp_head(p, n, off, &kind, &count) != 0 || kind != 'm')
		return -1;
	for (uint64_t i = 0; i < count; i++) {
		if (mp_head(p, n, off, &kind, &len) != 0 || kind != 's' ||
		    len > n - *off)
			return -1;
		*off += (size_t)len;
		if (len == kl && memcmp(p + *off - len, key, kl) == 0)
			return 0;
		if (mp_skip(p, n, off) != 0)
			return -1;
	}
	return -1;
}

/* The string value of key in the map at p[off] into out (cap bytes with
 * its NUL); -1 when absent, not a string, empty or too long. */
static int mp_str(const uint8_t *p, size_t n, size_t off, const char *key,
                  char *out, size_t cap)
{
	uint64_t len;
	char type;

	if (mp_find(p, n, &off, key) != 0 ||
	    mp_head(p, n, &off, &type, &len) != 0 || type != 's' || len == 0 ||
	    len >= cap || len > n - off)
		return -1;
	memcpy(out, p + off, (size_t)len);
	out[len] = '\0';
	return 0;
}

/* Record id's kind, org and void mark, read straight from the msgpack
 * (see apply.h). */
int qp__state_peek(qp__tx *t, const char *id, char kind[QP__KIND_LEN],
                   char org[QP_UUID_STRLEN + 1], int *voided)
{
	MDB_val k = {strlen(id), (void *)id}, d;
	const uint8_t *p;
	size_t r = 0, top = 0;
	int rc = qp__mdb(mdb_get(t->txn, t->db->records, &k, &d));

	if (rc != 0)
		return rc;
	p = d.mv_data;
	if (mp_find(p, d.mv_size, &r, "r") != 0 ||
	    mp_str(p, d.mv_size, r, "kind", kind, QP__KIND_LEN) != 0 ||
	    (org != NULL &&
	     mp_str(p, d.mv_size, r, "org", org, QP_UUID_STRLEN + 1) != 0))
		return QP_ECORRUPT;
	if (voided != NULL)
		*voided = mp_find(p, d.mv_size, &top, "v") == 0;
	return 0;
}

/* One string field of record id, read straight from the msgpack (see
 * apply.h). */
int qp__state_str(qp__tx *t, const char *id, const char *name, char *out,
                  size_t cap)
{
	MDB_val k = {strlen(id), (void *)id}, d;
	size_t r = 0;
	int rc = qp__mdb(mdb_get(t->txn, t->db->records, &k, &d));

	if (rc != 0)
		return rc;
	if (mp_find(d.mv_data, d.mv_size, &r, "r") != 0)
		return QP_ECORRUPT;
	return mp_str(d.mv_data, d.mv_size, r, name, out, cap) == 0
	           ? 0
	           : QP_ENOTFOUND;
}

int qp__state_kind(qp__tx *t, const char *id, char kind[QP__KIND_LEN])
{
	return qp__state_peek(t, id, kind, NULL, NULL);
}

/* ---- natural keys ------------------------------------------------- */

/* Build rec's natural-key index key (see apply.h); 0 when it has none. */
int qp__natkey(const qp_kind *k, const json_t *rec, char *out, size_t *len)
{
	const qp_field *f = qp_schema_key_of(k, rec);
	const char *org = json_string_value(json_object_get(
	    rec, k->key_scope != NULL ? k->key_scope : "org"));
	const json_t *v;
	size_t fl, ol = 0, vl, n;

	if (f == NULL || org == NULL)
		return 0;
	v = json_object_get(rec, f->name);
	fl = strlen(f->name);
	vl = json_string_length(v);
	if (!(k->flags & QP_K_UNIQUE_GLOBAL))
		ol = strlen(org) + 1;
	n = fl + 1 + ol + vl;
	if (n > QP__KEY_MAX)
		return 0;
	memcpy(out, f->name, fl);
	out[fl] = '\0';
	if (ol > 0)
		memcpy(out + fl + 1, org, ol); /* with its NUL separator */
	memcpy(out + fl + 1 + ol, json_string_value(v), vl);
	*len = n;
	return 1;
}

/* Which record holds a natural key (see apply.h). */
int qp__natkey_owner(qp__tx *t, const char *key, size_t len, char *id)
{
	MDB_val k = {len, (void *)key}, d;
	int rc = qp__mdb(mdb_get(t->txn, t->db->idx_key, &k, &d));
	if (rc != 0)
		return rc;
	if (d.mv_size != QP_UUID_STRLEN)
		return QP_ECORRUPT;
	memcpy(id, d.mv_data, QP_UUID_STRLEN);
	id[QP_UUID_STRLEN] = '\0';
	return 0;
}

/* ---- conflicts ---------------------------------------------------- */

static size_t conflict_prefix(char *out, const char *id, const char *field)
{
	size_t il = strlen(id), fl = strlen(field);
	memcpy(out, id, il);
	out[il] = '\0';
	memcpy(out + il + 1, field, fl);
	out[il + 1 + fl] = '\0';
	return il + fl + 2;
}

static int conflict_put(qp__tx *t, const char *id, const char *field,
                        uint64_t hlc, const char *author16, json_t *value)
{
	char key[QP__KEY_MAX + 16];
	size_t n;
	json_t *v;
	int rc;

	if (strlen(field) > QP__KEY_MAX - QP_UUID_STRLEN - 10)
		return 0;
	n = conflict_prefix(key, id, field);
	qp_put_be64((uint8_t *)key + n, hlc);
	v = json_pack("{s:s, s:I, s:O}", "author", author16, "hlc",
	              (json_int_t)hlc, "value", value ? value : json_null());
	if (v == NULL)
		return QP_ENOMEM;
	rc = put_json(t, t->db->conflicts, key, n + 8, v);
	json_decref(v);
	if (rc == 0)
		t->conflicts_maybe = 1;
	return rc;
}

/* A new value of field was written by an op based on version base: the
 * conflicting values it had seen (hlc <= base) count as resolved. */
static int conflicts_resolve(qp__tx *t, const char *id, const char *field,
                             uint64_t base)
{
	char key[QP__KEY_MAX + 16];
	MDB_cursor *c;
	MDB_val k, d;
	size_t n;
	int rc;

	if (!t->conflicts_maybe || strlen(field) > QP__KEY_MAX - 50)
		return 0;
	n = conflict_prefix(key, id, field);
	memset(key + n, 0, 8);
	if ((rc = mdb_cursor_open(t->txn, t->db->conflicts, &c)) != 0)
		return qp__mdb(rc);
	k.mv_size = n + 8;
	k.mv_data = key;
	rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == n + 8 &&
	       memcmp(k.mv_data, key, n) == 0 &&
	       qp_get_be64((const uint8_t *)k.mv_data + n) <= base) {
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		rc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : qp__mdb(rc);
}

/* Whether the conflicts database holds a key starting with key[0..n):
 * 1, 0, or a storage code. */
static int conflict_prefixed(qp__tx *t, const char *key, size_t n)
{
	MDB_cursor *c;
	MDB_val k = {n, (void *)key}, d;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->db->conflicts, &c)) != 0)
		return qp__mdb(rc);
	rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return qp__mdb(rc);
	return k.mv_size >= n && memcmp(k.mv_data, key, n) == 0;
}

/* Whether field of record id has conflicting values kept (see apply.h). */
int qp__conflict_field(qp__tx *t, const char *id, const char *field)
{
	char key[QP__KEY_MAX + 16];

	if (!t->conflicts_maybe || strlen(id) + strlen(field) > QP__KEY_MAX)
		return 0;
	return conflict_prefixed(t, key, conflict_prefix(key, id, field));
}

/* Count the conflict entries of record id (prefix "id\0"). */
int qp__conflict_count(qp__tx *t, const char *id, size_t *out)
{
	size_t il = strlen(id), n = 0;
	MDB_cursor *c;
	MDB_val k = {il + 1, (void *)id}, d; /* id and its NUL */
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->db->conflicts, &c)) != 0)
		return qp__mdb(rc);
	rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size > il &&
	       memcmp(k.mv_data, id, il + 1) == 0) {
		n++;
		rc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return qp__mdb(rc);
	*out = n;
	return 0;
}

/* ---- merge -------------------------------------------------------- */


static int is_meta_name(const char *name)
{
	return strcmp(name, "id") == 0 || strcmp(name, "kind") == 0 ||
	       strcmp(name, "org") == 0;
}

/* {"id", "kind", "org"}: the start of every record. */
static json_t *meta_object(const char *id, const char *kind, const char *org)
{
	json_t *o = json_object();
	json_object_set_new_nocheck(o, "id", json_string_nocheck(id));
	json_object_set_new_nocheck(o, "kind", json_string_nocheck(kind));
	json_object_set_new_nocheck(o, "org", json_string_nocheck(org));
	return o;
}

/* Check an op on its own, as it arrived in someone's delta: nothing here
 * depends on the state, so quarantine decisions do not depend on the order
 * deltas arrive in. */
static int check_op(const qp_kind *k, const char *id, const char *org,
                    const qp_feed *feed, const qp_op *op, char *why,
                    size_t whylen)
{
	const char *name;
	json_t *v, *rec;
	int rc;

	if (strcmp(k->name, "org") == 0 &&
	    memcmp(op->id, feed->org, QP_UUID_LEN) != 0)
		return qp_errf(QP_EVALID, why, whylen,
		              "org: an org record must be written in its own "
		              "org's feed");
	if (op->type == QP_OP_VOID)
		return op->reason != NULL && op->reason[0] != '\0'
		           ? 0
		           : qp_errf(QP_EVALID, why, whylen, "%s: void without a reason",
		                    k->name);
	if (op->type != QP_OP_CREATE && op->type != QP_OP_UPDATE)
		return qp_errf(QP_EVALID, why, whylen, "%s: unknown op type %d", k->name,
		              (int)op->type);
	if (!json_is_object(op->fields))
		return qp_errf(QP_EVALID, why, whylen, "%s: op without fields", k->name);
	if (op->type == QP_OP_UPDATE && (k->flags & QP_K_APPEND_ONLY))
		return qp_errf(QP_EVALID, why, whylen,
		              "%s: append-only; void it and add a new one",
		              k->name);
	json_object_foreach(op->fields, name, v)
	{
		const qp_field *f = qp_schema_field(k, name);
		if (is_meta_name(name))
			return qp_errf(QP_EVALID, why, whylen, "%s.%s: cannot be changed",
			              k->name, name);
		if (f == NULL)
			return qp_errf(QP_EVALID, why, whylen, "%s.%.64s: unknown field",
			              k->name, name);
		if (json_is_null(v) && (f->flags & QP_F_REQUIRED))
			return qp_errf(QP_EVALID, why, whylen, "%s.%s: required", k->name,
			              name);
	}
	if (op->type == QP_OP_UPDATE)
		return 0;
	/* A create must be a valid record in form (references are checked at
	 * merge only for being well-formed: dangling ones are flagged, not
	 * refused). */
	rec = meta_object(id, k->name, org);
	json_object_foreach(op->fields, name, v)
	{
		if (!json_is_null(v))
			json_object_set(rec, name, v);
	}
	rc = qp_schema_validate(k, rec, NULL, NULL, why, whylen);
	json_decref(rec);
	return rc == 0 ? 0 : QP_EVALID;
}

/* Order two field versions: >0 when (h1, a1, v1) wins over (h2, a2, v2). */
static int version_cmp(uint64_t h1, const char *a1, const json_t *v1,
                       uint64_t h2, const char *a2, const json_t *v2)
{
	char *s1, *s2;
	int c;
	if (h1 != h2)
		return h1 > h2 ? 1 : -1;
	if ((c = strcmp(a1, a2)) != 0)
		return c;
	if (json_equal((json_t *)v1, (json_t *)v2))
		return 0;
	/* Same clock, same author prefix, different values: only a broken or
	 * hostile author can do this; still, every node must pick the same. */
	s1 = json_dumps(v1, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	s2 = json_dumps(v2, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	c = strcmp(s1 ? s1 : "", s2 ? s2 : "");
	free(s1);
	free(s2);
	return c;
}

static int merge_fields(qp__tx *t, json_t *state, const char *id,
                        const qp_op *op, const char *a16)
{
	json_t *r = json_object_get(state, "r"),
	       *f = json_object_get(state, "f");
	json_t *v, *cur, *curval, *null = json_null();
	const char *name;
	int rc;

	json_object_foreach(op->fields, name, v)
	{
		cur = json_object_get(f, name);
		curval = json_object_get(r, name);
		if (curval == NULL)
			curval = null;
		if (json_is_array(cur) && json_array_size(cur) == 3 &&
		    json_is_integer(json_array_get(cur, 0)) &&
		    json_is_string(json_array_get(cur, 1)) &&
		    json_is_integer(json_array_get(cur, 2))) {
			uint64_t ch = (uint64_t)json_integer_value(
			             json_array_get(cur, 0)),
			         cb = (uint64_t)json_integer_value(
			             json_array_get(cur, 2));
			const char *ca =
			    json_string_value(json_array_get(cur, 1));
			int other = strcmp(ca, a16) != 0;
			int c = version_cmp(op->hlc, a16, v, ch, ca, curval);
			if (c == 0)
				continue; /* this very value again */
			if (c < 0) {
				/* The held value wins; if its writer had not
				 * seen this one, keep the loser for review. */
				if (other && cb < op->hlc &&
				    (rc = conflict_put(t, id, name, op->hlc,
				                       a16, v)) != 0)
					return rc;
				continue;
			}
			if ((rc = conflicts_resolve(t, id, name, op->base)) !=
			    0)
				return rc;
			if (other && op->base < ch &&
			    (rc = conflict_put(t, id, name, ch, ca, curval)) !=
			        0)
				return rc;
		}
		if (json_is_null(v))
			json_object_del(r, name);
		else
			json_object_set(r, name, v);
		cur = json_array();
		json_array_append_new(cur, json_integer((json_int_t)op->hlc));
		json_array_append_new(cur, json_string_nocheck(a16));
		json_array_append_new(cur, json_integer((json_int_t)op->base));
		json_object_set_new_nocheck(f, name, cur);
	}
	return 0;
}

static uint64_t get_u64(const json_t *o, const char *key, int *present)
{
	const json_t *v = json_object_get(o, key);
	*present = json_is_integer(v);
	return *present ? (uint64_t)json_integer_value(v) : 0;
}

static const char *str_or(const json_t *v)
{
	const char *s = json_string_value(v);
	return s != NULL ? s : "";
}

/* ---- a void against edits it did not see -------------------------- */

#define VOID_PREFIX "void:"

/* The void-conflict entry of field name (see the top of this file) for
 * state, after the field's version or the record's winning void changed:
 * the old entry goes, and a new one is kept when the void and the field's
 * value did not see each other (the voider's base is older than the
 * value, and the value's base older than the void).  This depends only on
 * the field's winning version and the winning void, so every arrival
 * order of the same ops leaves the same entries. */
static int void_conflict_field(qp__tx *t, const char *id, json_t *state,
                               const char *name)
{
	char key[QP__KEY_MAX];
	const json_t *ver = json_object_get(json_object_get(state, "f"), name);
	json_t *val;
	uint64_t vh, vb, h, b;
	int has_vh, has_vb, rc;

	if (strlen(name) + sizeof VOID_PREFIX > sizeof key)
		return 0;
	snprintf(key, sizeof key, "%s%s", VOID_PREFIX, name);
	if ((rc = conflicts_resolve(t, id, key, UINT64_MAX)) != 0)
		return rc;
	vh = get_u64(state, "vh", &has_vh);
	vb = get_u64(state, "vb", &has_vb);
	if (json_object_get(state, "v") == NULL || !has_vh || !has_vb ||
	    !json_is_array(ver) || json_array_size(ver) != 3 ||
	    !json_is_integer(json_array_get(ver, 0)) ||
	    !json_is_string(json_array_get(ver, 1)) ||
	    !json_is_integer(json_array_get(ver, 2)))
		return 0;
	h = (uint64_t)json_integer_value(json_array_get(ver, 0));
	b = (uint64_t)json_integer_value(json_array_get(ver, 2));
	if (!(vb < h && b < vh))
		return 0;
	val = json_object_get(json_object_get(state, "r"), name);
	return conflict_put(t, id, key, h,
	                    json_string_value(json_array_get(ver, 1)),
	                    val != NULL ? val : json_null());
}

/* Every field's void-conflict entry, after the winning void changed. */
static int void_conflicts_all(qp__tx *t, const char *id, json_t *state)
{
	const char *name;
	json_t *ver;
	int rc;

	json_object_foreach(json_object_get(state, "f"), name, ver)
	{
		if ((rc = void_conflict_field(t, id, state, name)) != 0)
			return rc;
	}
	return 0;
}

const char *qp__void_conflict_of(const char *key_field)
{
	size_t n = sizeof VOID_PREFIX - 1;

	return strncmp(key_field, VOID_PREFIX, n) == 0 ? key_field + n : NULL;
}

/* Whether record id has edits kept against its void (see apply.h). */
int qp__void_conflicted(qp__tx *t, const char *id)
{
	char key[QP_UUID_STRLEN + sizeof VOID_PREFIX + 1];
	size_t n = (size_t)snprintf(key, sizeof key, "%s%c%s", id, '\0',
	                            VOID_PREFIX);

	if (!t->conflicts_maybe || n >= sizeof key)
		return 0;
	return conflict_prefixed(t, key, n);
}

static int idx_kind_put(qp__tx *t, const char *kind, const char *org,
                        const char *id)
{
	char key[QP__KIND_LEN + 2 * QP_UUID_STRLEN + 4];
	size_t kl = strlen(kind), ol = strlen(org), il = strlen(id);
	MDB_val k = {0, key}, d = {0, ""};
	int rc;

	/* kind \0 org \0 id */
	memcpy(key, kind, kl + 1);
	memcpy(key + kl + 1, org, ol + 1);
	memcpy(key + kl + ol + 2, id, il);
	k.mv_size = kl + ol + 2 + il;
	if ((rc = mdb_put(t->txn, t->db->idx_kind, &k, &d, 0)) != 0)
		return qp__mdb(rc);
	/* kind \0 \0 id */
	key[kl + 1] = '\0';
	memcpy(key + kl + 2, id, il);
	k.mv_size = kl + 2 + il;
	if ((rc = mdb_put(t->txn, t->db->idx_kind, &k, &d, 0)) != 0)
		return qp__mdb(rc);
	/* \0 org \0 id */
	key[0] = '\0';
	memcpy(key + 1, org, ol + 1);
	memcpy(key + ol + 2, id, il);
	k.mv_size = ol + 2 + il;
	if ((rc = mdb_put(t->txn, t->db->idx_kind, &k, &d, 0)) != 0)
		return qp__mdb(rc);
	return qp__kind_count_add(t->txn, t->db, kind, 1);
}

/* The other holders of a natural key: "~" \0 key \0 id -> id for each
 * record not voided that holds key while another owns it (duplicates that
 * arrived from other nodes), so that voiding the owner hands the key to
 * one of them instead of freeing it.  0 when the entry would not fit. */
static size_t alt_key(const char *nk, size_t nl, const char *id, char *out)
{
	if (2 + nl + 1 + QP_UUID_STRLEN > QP__ALTKEY_MAX)
		return 0;
	out[0] = '~';
	out[1] = '\0';
	memcpy(out + 2, nk, nl);
	out[2 + nl] = '\0';
	if (id != NULL)
		memcpy(out + 3 + nl, id, QP_UUID_STRLEN);
	return 3 + nl + (id != NULL ? QP_UUID_STRLEN : 0);
}

/* Drop key nk (nl bytes) of record id: the key itself when id owns it,
 * which goes to the first other holder if there is one, else id's entry
 * among the other holders. */
static int natkey_drop(qp__tx *t, const char *id, const char *nk, size_t nl)
{
	char owner[QP_UUID_STRLEN + 1], ak[QP__ALTKEY_MAX];
	MDB_cursor *c;
	MDB_val k = {nl, (void *)nk}, d, ck;
	size_t pl;
	int rc = qp__natkey_owner(t, nk, nl, owner);

	if (rc == QP_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (strcmp(owner, id) != 0) {
		if ((k.mv_size = alt_key(nk, nl, id, ak)) == 0)
			return 0;
		k.mv_data = ak;
		rc = mdb_del(t->txn, t->db->idx_key, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : qp__mdb(rc);
	}
	if ((rc = mdb_del(t->txn, t->db->idx_key, &k, NULL)) != 0)
		return qp__mdb(rc);
	if ((pl = alt_key(nk, nl, NULL, ak)) == 0)
		return 0;
	if ((rc = mdb_cursor_open(t->txn, t->db->idx_key, &c)) != 0)
		return qp__mdb(rc);
	ck.mv_size = pl;
	ck.mv_data = ak;
	/* Entries of longer keys that start alike are longer: the first
	 * entry of exactly this length is one of key's holders. */
	rc = mdb_cursor_get(c, &ck, &d, MDB_SET_RANGE);
	if (rc == 0 && ck.mv_size == pl + QP_UUID_STRLEN &&
	    memcmp(ck.mv_data, ak, pl) == 0 && d.mv_size == QP_UUID_STRLEN) {
		memcpy(owner, d.mv_data, QP_UUID_STRLEN);
		d.mv_data = owner;
		if ((rc = mdb_cursor_del(c, 0)) == 0)
			rc = mdb_put(t->txn, t->db->idx_key, &k, &d, 0);
	} else if (rc == MDB_NOTFOUND) {
		rc = 0;
	}
	mdb_cursor_close(c);
	return qp__mdb(rc);
}

/* Natural-key index upkeep: the key is held while the record is not
 * voided; a key already held by another record is left to it, and id is
 * kept among its other holders (alt_key). */
static int natkey_update(qp__tx *t, const char *id, int had, const char *ok,
                         size_t ol, int has, const char *nk, size_t nl)
{
	MDB_val k, d;
	char ak[QP__ALTKEY_MAX];
	int rc;

	if (had == has && (!had || (ol == nl && memcmp(ok, nk, ol) == 0)))
		return 0;
	if (had && (rc = natkey_drop(t, id, ok, ol)) != 0)
		return rc;
	if (!has)
		return 0;
	k.mv_size = nl;
	k.mv_data = (void *)nk;
	d.mv_size = QP_UUID_STRLEN;
	d.mv_data = (void *)id;
	rc = mdb_put(t->txn, t->db->idx_key, &k, &d, MDB_NOOVERWRITE);
	if (rc != MDB_KEYEXIST)
		return qp__mdb(rc);
	if ((k.mv_size = alt_key(nk, nl, id, ak)) == 0)
		return 0;
	k.mv_data = ak;
	d.mv_size = QP_UUID_STRLEN; /* MDB_KEYEXIST pointed d at the owner */
	d.mv_data = (void *)id;
	return qp__mdb(mdb_put(t->txn, t->db->idx_key, &k, &d, 0));
}

/* Lot-use index: for each input lot of a lot_event create, the key
 * "in" \0 lot \0 event -> event id, so the write path can total what a
 * lot has already given without scanning every event.  Events are
 * append-only: their inputs never change after create (a void is seen when
 * the event is read). */
static int lot_use_put(qp__tx *t, const char *event, const json_t *fields)
{
	char key[QP__USEKEY_LEN];
	MDB_val k = {0, key}, d = {QP_UUID_STRLEN, (void *)event};
	const json_t *in;
	size_t i;
	int rc;

	json_array_foreach(json_object_get(fields, "inputs"), i, in) {
		const char *lot = json_string_value(json_object_get(in, "lot"));
		if (lot == NULL || (k.mv_size = qp__use_key(lot, event, key)) == 0)
			continue;
		if ((rc = mdb_put(t->txn, t->db->idx_key, &k, &d, 0)) != 0)
			return qp__mdb(rc);
	}
	return 0;
}

size_t qp__use_key(const char *lot, const char *event,
                   char key[QP__USEKEY_LEN])
{
	uint8_t b[QP_UUID_LEN];
	size_t n = 3;

	if (qp_uuid_parse(lot, b) != 0)
		return 0;
	memcpy(key, "in", 3);
	qp_uuid_format(b, key + n);
	n += QP_UUID_STRLEN;
	key[n++] = '\0';
	if (event != NULL) {
		memcpy(key + n, event, QP_UUID_STRLEN);
		n += QP_UUID_STRLEN;
	}
	return n;
}

/* Merge one op into the derived state (see apply.h).  All checks come
 * before the first write, so a refused op leaves nothing behind. */
int qp__apply_op(qp__tx *t, const qp_feed *feed, const qp_op *op, int checked,
                 char *why, size_t whylen)
{
	const qp_kind *k = qp_schema_kind(op->kind);
	char id[QP_UUID_STRLEN + 1], org[QP_UUID_STRLEN + 1];
	char a16[17], afull[2 * QP_KEY_LEN + 1];
	char oldk[QP__KEY_MAX], newk[QP__KEY_MAX];
	size_t ol = 0, nl = 0;
	json_t *state = NULL, *r;
	uint64_t v;
	int rc, isnew = 0, had = 0, has, present;

	if (k == NULL)
		return qp_errf(QP_EVALID, why, whylen, "%.24s: unknown kind", op->kind);
	qp_uuid_format(op->id, id);
	qp_uuid_format(feed->org, org);
	if (!checked && (rc = check_op(k, id, org, feed, op, why, whylen)) != 0)
		return rc;
	rc = qp__state_get(t, id, &state);
	if (rc == QP_ENOTFOUND) {
		/* An update or void may arrive before its create: start a
		 * partial state so the order of arrival does not matter. */
		state = json_object();
		json_object_set_new_nocheck(state, "f", json_object());
		json_object_set_new_nocheck(state, "r",
		                            meta_object(id, k->name, org));
		json_object_set_new_nocheck(state, "u", json_integer(0));
		isnew = 1;
	} else if (rc != 0) {
		return rc;
	}
	r = json_object_get(state, "r");
	if (!isnew) {
		const char *sk = json_string_value(json_object_get(r, "kind"));
		const char *so = json_string_value(json_object_get(r, "org"));
		if (strcmp(sk, k->name) != 0) {
			rc = qp_errf(QP_EVALID, why, whylen,
			            "%s: record %s is %.24s, not %s", k->name,
			            id, sk, k->name);
			goto out;
		}
		if (strcmp(so, org) != 0) {
			rc = qp_errf(QP_EVALID, why, whylen,
			            "%s: record %s belongs to org %.36s",
			            k->name, id, so);
			goto out;
		}
		if (json_object_get(state, "v") == NULL)
			had = qp__natkey(k, r, oldk, &ol);
	}
	qp_hex(feed->author, 8, a16);

	switch (op->type) {
	case QP_OP_CREATE:
		qp_hex(feed->author, QP_KEY_LEN, afull);
		v = get_u64(state, "c", &present);
		if (!present || op->hlc < v ||
		    (op->hlc == v &&
		     strcmp(afull, str_or(json_object_get(state, "a"))) < 0)) {
			json_object_set_new(state, "c",
			                    json_integer((json_int_t)op->hlc));
			json_object_set_new(state, "a", json_string(afull));
		}
		/* fall through */
	case QP_OP_UPDATE:
		if ((rc = merge_fields(t, state, id, op, a16)) != 0)
			goto out;
		if (json_object_get(state, "v") != NULL) {
			const char *name;
			json_t *fv;
			json_object_foreach(op->fields, name, fv)
			{
				if ((rc = void_conflict_field(t, id, state,
				                              name)) != 0)
					goto out;
			}
		}
		break;
	case QP_OP_VOID:
		v = get_u64(state, "vh", &present);
		if (!present || op->hlc > v ||
		    (op->hlc == v &&
		     strcmp(op->reason, str_or(json_object_get(state, "v"))) >
		         0)) {
			json_object_set_new(state, "v",
			                    json_string(op->reason));
			json_object_set_new(state, "vh",
			                    json_integer((json_int_t)op->hlc));
			json_object_set_new(state, "vb",
			                    json_integer((json_int_t)op->base));
			json_object_set_new(state, "va", json_string(a16));
			if ((rc = void_conflicts_all(t, id, state)) != 0)
				goto out;
		}
		break;
	default:
		rc = qp_errf(QP_EVALID, why, whylen, "%s: unknown op type", k->name);
		goto out;
	}
	if (op->hlc > get_u64(state, "u", &present))
		json_object_set_new(state, "u",
		                    json_integer((json_int_t)op->hlc));

	has =
	    json_object_get(state, "v") == NULL && qp__natkey(k, r, newk, &nl);
	if ((rc = put_json(t, t->db->records, id, QP_UUID_STRLEN, state)) != 0)
		goto out;
	if (isnew && (rc = idx_kind_put(t, k->name, org, id)) != 0)
		goto out;
	if (op->type == QP_OP_CREATE && strcmp(k->name, "lot_event") == 0 &&
	    (rc = lot_use_put(t, id, op->fields)) != 0)
		goto out;
	rc = natkey_update(t, id, had, oldk, ol, has, newk, nl);
out:
	json_decref(state);
	return rc;
}

/* ---- quarantine and whole deltas ---------------------------------- */

static json_t *op_json(const qp_op *op)
{
	static const char *const types[] = {"?", "create", "update", "void"};
	char id[QP_UUID_STRLEN + 1];
	json_t *o;

	qp_uuid_format(op->id, id);
	o = json_pack("{s:s, s:s, s:s, s:I, s:I}", "type",
	              types[op->type >= 1 && op->type <= 3 ? op->type : 0],
	              "id", id, "kind", op->kind, "hlc", (json_int_t)op->hlc,
	              "base", (json_int_t)op->base);
	if (o == NULL)
		return NULL;
	if (op->fields != NULL)
		json_object_set(o, "fields", op->fields);
	if (op->reason != NULL)
		json_object_set_new(o, "reason", json_string(op->reason));
	return o;
}

/* Keep an op that cannot be applied, with the reason (see apply.h). */
int qp__quarantine(qp__tx *t, const qp_feed *feed, uint64_t seq, uint32_t idx,
                   const qp_op *op, const char *reason)
{
	uint8_t key[QP__QKEY_LEN];
	json_t *v;
	int rc;

	memcpy(key, feed->author, QP_KEY_LEN);
	memcpy(key + QP_KEY_LEN, feed->org, QP_UUID_LEN);
	qp_put_be64(key + QP__FEED_LEN, seq);
	qp_put_be32(key + QP__LOGKEY_LEN, idx);
	v = json_pack("{s:s, s:o}", "reason", reason, "op",
	              op != NULL ? op_json(op) : json_null());
	if (v == NULL)
		return QP_ENOMEM;
	rc = put_json(t, t->db->quarantine, key, sizeof key, v);
	json_decref(v);
	return rc;
}

/* Apply a verified delta's ops; what cannot be applied is quarantined,
 * never dropped (see apply.h). */
int qp__apply_delta(qp__tx *t, const uint8_t *buf, size_t len,
                    const qp_delta_hdr *hdr, size_t *nops)
{
	char why[QP_ERRMSG_LEN];
	qp_op *ops = NULL;
	size_t n = 0;
	int rc = qp_delta_ops(buf, len, &ops, &n);

	if (rc == QP_ENOMEM)
		return rc;
	if (rc != 0) {
		/* Signed, so kept; but nothing in it can be applied. */
		qp_fmt(why, sizeof why, "delta body: %s", qp_strerror(rc));
		rc = qp__quarantine(t, &hdr->feed, hdr->seq, UINT32_MAX, NULL,
		                    why);
		if (rc == 0 && nops != NULL)
			*nops = 0;
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		why[0] = '\0';
		rc = qp__apply_op(t, &hdr->feed, &ops[i], 0, why, sizeof why);
		if (rc == QP_EVALID)
			rc = qp__quarantine(t, &hdr->feed, hdr->seq,
			                    (uint32_t)i, &ops[i],
			                    why[0] ? why : "invalid op");
		if (rc != 0)
			goto out;
	}
	if (nops != NULL)
		*nops = n;
out:
	qp_ops_free(ops, n);
	return rc;
}
