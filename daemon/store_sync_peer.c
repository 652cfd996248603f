/*
 * store_sync_peer.c - the read side of sync and the per-peer books (see
 * store_sync.h): feed heads and delta reads for version vectors, acks and
 * pending counts, peer notes, the kv area, and the conflict and quarantine
 * listings for review.
 *
 * Values: acks peer(32) + feed(48) -> be64 seq; peers peer(32) -> msgpack
 * map of notes; kv text key -> bytes.
 */
#include "apply.h"
#include "err.h"
#include "mpjson.h"
#include "store_sync.h"
#include "store_sync_internal.h"
#include "util.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACKKEY_LEN (QP_KEY_LEN + QP__FEED_LEN)
#define KV_KEY_MAX 256
#define NOTES_MAX  (64u << 10) /* bytes of one peer's notes */

/* Start a read in a store whose sync databases are open. */
static int rstart(qp_store *s, MDB_txn **txn)
{
	int rc = qp__sync_ready(s);
	return rc != 0 ? rc : qp__sync_read(s, txn);
}

/* ---- heads and deltas --------------------------------------------- */

/* Every feed with its head (see store_sync.h). */
int qp_store_heads(qp_store *s,
                   int (*fn)(void *ctx, const qp_feed *f, uint64_t seq),
                   void *ctx)
{
	MDB_cursor *c = NULL;
	MDB_txn *txn;
	MDB_val k, d;
	qp_feed f;
	int rc;

	if (fn == NULL)
		return QP_EINVAL;
	if ((rc = rstart(s, &txn)) != 0)
		return rc;
	if ((rc = qp__mdb(mdb_cursor_open(txn, s->db.feeds, &c))) != 0)
		goto out;
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		int r;
		if (k.mv_size != QP__FEED_LEN || d.mv_size != QP__HEAD_LEN) {
			rc = QP_ECORRUPT;
			goto out;
		}
		memcpy(&f, k.mv_data, QP__FEED_LEN);
		if ((r = fn(ctx, &f, qp_get_be64(d.mv_data))) != 0) {
			rc = r;
			goto out;
		}
	}
	rc = rc == MDB_NOTFOUND ? 0 : qp__mdb(rc);
out:
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return rc;
}

/* One feed's head seq (see store_sync.h). */
int qp_store_head(qp_store *s, const qp_feed *f, uint64_t *seq)
{
	uint8_t hash[QP_HASH_LEN];
	uint64_t v;
	MDB_txn *txn;
	int rc;

	if (f == NULL || seq == NULL)
		return QP_EINVAL;
	if ((rc = rstart(s, &txn)) != 0)
		return rc;
	rc = qp__head_get(s, txn, f, &v, hash);
	mdb_txn_abort(txn);
	if (rc == 0)
		*seq = v;
	return rc;
}

/* A feed's deltas after a seq, bounded (see store_sync.h).  max_n or
 * max_bytes 0: no bound of that kind. */
int qp_store_read_deltas(qp_store *s, const qp_feed *f, uint64_t after,
                         size_t max_n, size_t max_bytes,
                         int (*fn)(void *ctx, uint64_t seq, const uint8_t *d,
                                   size_t len),
                         void *ctx)
{
	uint8_t key[QP__LOGKEY_LEN];
	MDB_cursor *c = NULL;
	MDB_txn *txn;
	MDB_val k = {sizeof key, key}, d;
	size_t n = 0, bytes = 0;
	int rc;

	if (f == NULL || fn == NULL)
		return QP_EINVAL;
	if (after == UINT64_MAX)
		return 0;
	if ((rc = rstart(s, &txn)) != 0)
		return rc;
	memcpy(key, f, QP__FEED_LEN);
	qp_put_be64(key + QP__FEED_LEN, after + 1);
	if ((rc = qp__mdb(mdb_cursor_open(txn, s->db.log, &c))) != 0)
		goto out;
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
	     rc == 0 && k.mv_size == QP__LOGKEY_LEN &&
	     memcmp(k.mv_data, f, QP__FEED_LEN) == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		int r;
		/* The first delta goes whatever its size: a batch of one
		 * may hold any delta. */
		if ((max_n > 0 && n == max_n) ||
		    (max_bytes > 0 && n > 0 &&
		     (bytes >= max_bytes || d.mv_size > max_bytes - bytes)))
			break;
		n++;
		bytes += d.mv_size;
		r = fn(ctx, qp_get_be64((const uint8_t *)k.mv_data +
		                        QP__FEED_LEN),
		       d.mv_data, d.mv_size);
		if (r != 0) {
			rc = r;
			goto out;
		}
	}
	rc = rc == MDB_NOTFOUND || rc == 0 ? 0 : qp__mdb(rc);
out:
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return rc;
}

/* ---- acks --------------------------------------------------------- */

static void ack_key(uint8_t *key, const uint8_t peer[QP_KEY_LEN],
                    const qp_feed *f)
{
	memcpy(key, peer, QP_KEY_LEN);
	memcpy(key + QP_KEY_LEN, f, QP__FEED_LEN);
}

/* The acked seq of key (0 when none). */
static int ack_read(qp_store *s, MDB_txn *txn, const uint8_t *key,
                    uint64_t *seq)
{
	MDB_val k = {ACKKEY_LEN, (void *)key}, d;
	int rc = qp__mdb(mdb_get(txn, s->sync_db[QP__SDB_ACKS], &k, &d));
	if (rc == QP_ENOTFOUND) {
		*seq = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (d.mv_size != 8)
		return QP_ECORRUPT;
	*seq = qp_get_be64(d.mv_data);
	return 0;
}

typedef struct ackctx {
	uint8_t key[ACKKEY_LEN];
	uint64_t seq;
} ackctx;

static int ack_put_tx(qp_store *s, MDB_txn *txn, void *ctx)
{
	ackctx *a = ctx;
	uint8_t v[8];
	MDB_val k = {ACKKEY_LEN, a->key}, d = {8, v};
	uint64_t old;
	int rc = ack_read(s, txn, a->key, &old);

	if (rc != 0 || old >= a->seq)
		return rc; /* acks only move forward */
	qp_put_be64(v, a->seq);
	return qp__mdb(mdb_put(txn, s->sync_db[QP__SDB_ACKS], &k, &d, 0));
}

/* Record peer's ack of feed f up to seq, keeping the maximum. */
int qp_store_ack_set(qp_store *s, const uint8_t peer[QP_KEY_LEN],
                     const qp_feed *f, uint64_t seq)
{
	ackctx a;
	int rc;

	if (peer == NULL || f == NULL)
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0)
		return rc;
	ack_key(a.key, peer, f);
	a.seq = seq;
	return qp__sync_write(s, ack_put_tx, &a);
}

typedef struct ackmany {
	const uint8_t *peer;
	const qp_vv_entry *e;
	size_t n;
} ackmany;

static int ack_many_tx(qp_store *s, MDB_txn *txn, void *ctx)
{
	ackmany *m = ctx;
	ackctx a;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < m->n; i++) {
		ack_key(a.key, m->peer, &m->e[i].feed);
		a.seq = m->e[i].seq;
		rc = ack_put_tx(s, txn, &a);
	}
	return rc;
}

/* Record n acks of one peer in one transaction. */
int qp_store_ack_set_many(qp_store *s, const uint8_t peer[QP_KEY_LEN],
			  const qp_vv_entry *e, size_t n)
{
	ackmany m = {peer, e, n};
	int rc;

	if (peer == NULL || (e == NULL && n > 0))
		return QP_EINVAL;
	if (n == 0)
		return 0;
	if ((rc = qp__sync_ready(s)) != 0)
		return rc;
	return qp__sync_write(s, ack_many_tx, &m);
}

/* The seq of f that peer acknowledged (0 when none). */
int qp_store_ack_get(qp_store *s, const uint8_t peer[QP_KEY_LEN],
                     const qp_feed *f, uint64_t *seq)
{
	uint8_t key[ACKKEY_LEN];
	uint64_t v;
	MDB_txn *txn;
	int rc;

	if (peer == NULL || f == NULL || seq == NULL)
		return QP_EINVAL;
	if ((rc = rstart(s, &txn)) != 0)
		return rc;
	ack_key(key, peer, f);
	rc = ack_read(s, txn, key, &v);
	mdb_txn_abort(txn);
	if (rc == 0)
		*seq = v;
	return rc;
}

static int org_in(const uint8_t *org, const uint8_t (*orgs)[QP_UUID_LEN],
                  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (memcmp(org, orgs[i], QP_UUID_LEN) == 0)
			return 1;
	}
	return 0;
}

/* Deltas in orgs that peer has not acknowledged (see store_sync.h). */
int qp_store_pending(qp_store *s, const uint8_t peer[QP_KEY_LEN],
                     const uint8_t (*orgs)[QP_UUID_LEN], size_t norgs,
                     uint64_t *pending)
{
	uint8_t key[ACKKEY_LEN];
	uint64_t sum = 0, head, acked;
	MDB_cursor *c = NULL;
	MDB_txn *txn;
	MDB_val k, d;
	int rc;

	if (peer == NULL || pending == NULL || (norgs > 0 && orgs == NULL))
		return QP_EINVAL;
	if ((rc = rstart(s, &txn)) != 0)
		return rc;
	memcpy(key, peer, QP_KEY_LEN);
	if ((rc = qp__mdb(mdb_cursor_open(txn, s->db.feeds, &c))) != 0)
		goto out;
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		const uint8_t *feed = k.mv_data;
		if (k.mv_size != QP__FEED_LEN || d.mv_size != QP__HEAD_LEN) {
			rc = QP_ECORRUPT;
			goto out;
		}
		if (norgs > 0 && !org_in(feed + QP_KEY_LEN, orgs, norgs))
			continue;
		head = qp_get_be64(d.mv_data);
		memcpy(key + QP_KEY_LEN, feed, QP__FEED_LEN);
		if ((rc = ack_read(s, txn, key, &acked)) != 0)
			goto out;
		if (head > acked)
			sum += head - acked;
	}
	rc = rc == MDB_NOTFOUND ? 0 : qp__mdb(rc);
out:
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc == 0)
		*pending = sum;
	return rc;
}

/* ---- peer notes --------------------------------------------------- */

/* Decode a peer's stored notes (a map). */
static int notes_decode(const MDB_val *d, json_t **out)
{
	json_t *o;
	if (qp_mpjson_decode(d->mv_data, d->mv_size, NOTES_MAX, &o) != 0)
		return QP_ECORRUPT;
	if (!json_is_object(o)) {
		json_decref(o);
		return QP_ECORRUPT;
	}
	*out = o;
	return 0;
}

typedef struct notectx {
	const uint8_t *peer;
	const json_t *obj;
} notectx;

static int note_tx(qp_store *s, MDB_txn *txn, void *ctx)
{
	notectx *nc = ctx;
	MDB_dbi dbi = s->sync_db[QP__SDB_PEERS];
	MDB_val k = {QP_KEY_LEN, (void *)nc->peer}, d;
	json_t *cur = NULL, *v;
	const char *name;
	char *buf = NULL;
	size_t len;
	int rc = qp__mdb(mdb_get(txn, dbi, &k, &d));

	if (rc == QP_ENOTFOUND)
		cur = json_object();
	else if (rc != 0 || (rc = notes_decode(&d, &cur)) != 0)
		return rc;
	json_object_foreach((json_t *)nc->obj, name, v)
	{
		if (json_is_null(v))
			json_object_del(cur, name);
		else
			json_object_set(cur, name, v);
	}
	if (json_object_size(cur) == 0) {
		rc = qp__mdb(mdb_del(txn, dbi, &k, NULL));
		rc = rc == QP_ENOTFOUND ? 0 : rc;
		goto out;
	}
	if ((rc = qp_mpjson_encode(cur, &buf, &len)) != 0)
		goto out;
	if (len > NOTES_MAX) {
		rc = QP_ETOOBIG;
		goto out;
	}
	d.mv_size = len;
	d.mv_data = buf;
	rc = qp__mdb(mdb_put(txn, dbi, &k, &d, 0));
out:
	free(buf);
	json_decref(cur);
	return rc;
}

/* Merge obj into peer's notes (see store_sync.h). */
int qp_store_peer_note(qp_store *s, const uint8_t peer[QP_KEY_LEN],
                       const json_t *obj)
{
	notectx nc = {peer, obj};
	int rc;

	if (peer == NULL || !json_is_object(obj))
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0)
		return rc;
	return qp__sync_write(s, note_tx, &nc);
}

/* A peer's notes, {} when none (see store_sync.h). */
int qp_store_peer_get(qp_store *s, const uint8_t peer[QP_KEY_LEN],
                      json_t **out)
{
	MDB_val k = {QP_KEY_LEN, (void *)peer}, d;
	json_t *o = NULL;
	MDB_txn *txn;
	int rc;

	if (peer == NULL || out == NULL)
		return QP_EINVAL;
	if ((rc = rstart(s, &txn)) != 0)
		return rc;
	rc = qp__mdb(mdb_get(txn, s->sync_db[QP__SDB_PEERS], &k, &d));
	if (rc == QP_ENOTFOUND) {
		o = json_object();
		rc = 0;
	} else if (rc == 0) {
		rc = notes_decode(&d, &o);
	}
	mdb_txn_abort(txn);
	if (rc == 0)
		*out = o;
	return rc;
}

/* Every peer with notes (see store_sync.h). */
int qp_store_peers(qp_store *s, json_t **out)
{
	char hex[2 * QP_KEY_LEN + 1];
	MDB_cursor *c = NULL;
	json_t *arr, *o;
	MDB_txn *txn;
	MDB_val k, d;
	int rc;

	if (out == NULL)
		return QP_EINVAL;
	if ((rc = rstart(s, &txn)) != 0)
		return rc;
	arr = json_array();
	if ((rc = qp__mdb(mdb_cursor_open(
	         txn, s->sync_db[QP__SDB_PEERS], &c))) != 0)
		goto out;
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		if (k.mv_size != QP_KEY_LEN) {
			rc = QP_ECORRUPT;
			goto out;
		}
		if ((rc = notes_decode(&d, &o)) != 0)
			goto out;
		qp_hex(k.mv_data, QP_KEY_LEN, hex);
		json_object_set_new(o, "key", json_string(hex));
		json_array_append_new(arr, o);
	}
	rc = rc == MDB_NOTFOUND ? 0 : qp__mdb(rc);
out:
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc != 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

/* ---- kv ----------------------------------------------------------- */

typedef struct kvctx {
	const char *key;
	const void *v;
	size_t len;
} kvctx;

static int kv_tx(qp_store *s, MDB_txn *txn, void *ctx)
{
	kvctx *x = ctx;
	MDB_val k = {strlen(x->key), (void *)x->key},
	        d = {x->len, (void *)(x->v != NULL ? x->v : "")};
	return qp__mdb(mdb_put(txn, s->sync_db[QP__SDB_KV], &k, &d, 0));
}

static int kv_key_ok(const char *key)
{
	return key != NULL && key[0] != '\0' && strlen(key) <= KV_KEY_MAX;
}

/* Store a node setting (see store_sync.h).  key: 1..256 bytes. */
int qp_store_kv_put(qp_store *s, const char *key, const void *v, size_t len)
{
	kvctx x = {key, v, len};
	int rc;

	if (!kv_key_ok(key) || (v == NULL && len > 0))
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0)
		return rc;
	return qp__sync_write(s, kv_tx, &x);
}

/* Copy of a node setting (malloc'd, one NUL byte past *len so text can be
 * used as a string).  QP_ENOTFOUND when absent. */
int qp_store_kv_get(qp_store *s, const char *key, void **v, size_t *len)
{
	MDB_val k, d;
	MDB_txn *txn;
	char *buf;
	int rc;

	if (!kv_key_ok(key) || v == NULL || len == NULL)
		return QP_EINVAL;
	if ((rc = rstart(s, &txn)) != 0)
		return rc;
	k.mv_size = strlen(key);
	k.mv_data = (void *)key;
	rc = qp__mdb(mdb_get(txn, s->sync_db[QP__SDB_KV], &k, &d));
	if (rc == 0) {
		buf = qp_xmalloc(d.mv_size + 1);
		memcpy(buf, d.mv_data, d.mv_size);
		buf[d.mv_size] = '\0';
		*v = buf;
		*len = d.mv_size;
	}
	mdb_txn_abort(txn);
	return rc;
}

/* ---- review listings ---------------------------------------------- */

/* The current (winning) value of field in record id, as a conflict
 * listing's first value: {value, author, hlc} (author and hlc when the
 * state records them). */
static json_t *winner(qp__tx *t, const char *id, const char *field,
                      json_t **kind)
{
	json_t *st = NULL, *r, *f, *w;
	w = json_object();
	if (qp__state_get(t, id, &st) != 0) {
		json_object_set_new(w, "value", json_null());
		return w;
	}
	r = json_object_get(st, "r");
	f = json_object_get(json_object_get(st, "f"), field);
	*kind = json_incref(json_object_get(r, "kind"));
	if (qp__void_conflict_of(field) != NULL) {
		/* The void, which stands over the edits kept for review. */
		json_object_set(w, "void", json_object_get(st, "v")
		                               ? json_object_get(st, "v")
		                               : json_null());
		if (json_object_get(st, "va") != NULL)
			json_object_set(w, "author", json_object_get(st, "va"));
		if (json_object_get(st, "vh") != NULL)
			json_object_set(w, "hlc", json_object_get(st, "vh"));
		json_decref(st);
		return w;
	}
	json_object_set(w, "value", json_object_get(r, field)
	                                ? json_object_get(r, field)
	                                : json_null());
	if (json_is_array(f) && json_array_size(f) >= 2) {
		json_object_set(w, "author", json_array_get(f, 1));
		json_object_set(w, "hlc", json_array_get(f, 0));
	}
	json_decref(st);
	return w;
}

/* Split a conflicts key "id \0 field \0 hlc(8)"; 0 or QP_ECORRUPT. */
static int conflict_key(const MDB_val *k, char *id, char *field, size_t flen)
{
	const char *p = k->mv_data, *z;
	size_t n = k->mv_size, il;

	if (n < 8 + 2 || (z = memchr(p, '\0', n - 8)) == NULL)
		return QP_ECORRUPT;
	il = (size_t)(z - p);
	if (il != QP_UUID_STRLEN || n - 8 - il - 1 == 0 ||
	    n - 8 - il - 1 > flen || p[n - 9] != '\0')
		return QP_ECORRUPT;
	memcpy(id, p, il);
	id[il] = '\0';
	memcpy(field, p + il + 1, n - 8 - il - 1); /* with its NUL */
	return 0;
}

/* Conflicts for review (see store_sync.h): one entry per record field,
 * the current value first, then each value kept for review; for a void
 * against edits it had not seen ("void": true), the void first
 * ({"void": reason, author, hlc}), then the edit. */
int qp_store_conflicts(qp_store *s, size_t limit, json_t **out)
{
	char id[QP_UUID_STRLEN + 1], field[QP__KEY_MAX + 1];
	char cid[QP_UUID_STRLEN + 1] = "", cfield[QP__KEY_MAX + 1] = "";
	json_t *arr, *cur = NULL, *vals = NULL, *v;
	MDB_cursor *c = NULL;
	MDB_txn *txn;
	MDB_val k, d;
	qp__tx t;
	int rc;

	if (out == NULL)
		return QP_EINVAL;
	if ((rc = rstart(s, &txn)) != 0)
		return rc;
	t.txn = txn;
	t.db = &s->db;
	t.conflicts_maybe = 1;
	arr = json_array();
	if ((rc = qp__mdb(mdb_cursor_open(txn, s->db.conflicts, &c))) != 0)
		goto out;
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		if ((rc = conflict_key(&k, id, field, sizeof field)) != 0)
			goto out;
		if (cur == NULL || strcmp(id, cid) != 0 ||
		    strcmp(field, cfield) != 0) {
			json_t *kind = NULL, *w;
			const char *edited = qp__void_conflict_of(field);
			if (limit > 0 && json_array_size(arr) == limit)
				break;
			memcpy(cid, id, sizeof cid);
			snprintf(cfield, sizeof cfield, "%s", field);
			w = winner(&t, id, field, &kind);
			vals = json_array();
			json_array_append_new(vals, w);
			cur = json_pack("{s:s, s:o, s:s, s:b, s:o}", "id", id,
			                "kind", kind ? kind : json_null(),
			                "field", edited ? edited : field, "void",
			                edited != NULL, "values", vals);
			json_array_append_new(arr, cur);
		}
		if (qp_mpjson_decode(d.mv_data, d.mv_size, QP_DELTA_MAX_RAW,
		                     &v) != 0 ||
		    !json_is_object(v)) {
			rc = QP_ECORRUPT;
			goto out;
		}
		json_array_append_new(
		    vals, json_pack("{s:O, s:O, s:O}", "value",
		                    json_object_get(v, "value")
		                        ? json_object_get(v, "value")
		                        : json_null(),
		                    "author",
		                    json_object_get(v, "author")
		                        ? json_object_get(v, "author")
		                        : json_null(),
		                    "hlc",
		                    json_object_get(v, "hlc")
		                        ? json_object_get(v, "hlc")
		                        : json_null()));
		json_decref(v);
	}
	rc = rc == MDB_NOTFOUND || rc == 0 ? 0 : qp__mdb(rc);
out:
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc != 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

/* Call row for each entry of dbi in key order, collecting what it returns
 * into *out, at most limit (0: all).  row returns NULL and sets *rc to stop
 * with an error. */
typedef json_t *(*row_fn)(qp_store *s, MDB_txn *txn, const MDB_val *k,
                          const MDB_val *d, int *rc);

static int list_rows(qp_store *s, MDB_dbi dbi, size_t limit, row_fn row,
                     json_t **out)
{
	MDB_cursor *c = NULL;
	json_t *arr, *e;
	MDB_txn *txn;
	MDB_val k, d;
	int rc;

	if (out == NULL)
		return QP_EINVAL;
	if ((rc = rstart(s, &txn)) != 0)
		return rc;
	arr = json_array();
	if ((rc = qp__mdb(mdb_cursor_open(txn, dbi, &c))) != 0)
		goto out;
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		if (limit > 0 && json_array_size(arr) == limit)
			break;
		if ((e = row(s, txn, &k, &d, &rc)) == NULL)
			goto out;
		json_array_append_new(arr, e);
	}
	rc = rc == MDB_NOTFOUND || rc == 0 ? 0 : qp__mdb(rc);
out:
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc != 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

static json_t *quarantine_row(qp_store *s, MDB_txn *txn, const MDB_val *k,
                              const MDB_val *d, int *rc)
{
	char hex[2 * QP_KEY_LEN + 1], org[QP_UUID_STRLEN + 1];
	const uint8_t *key = k->mv_data;
	json_t *v, *e;
	uint32_t idx;

	(void)s;
	(void)txn;
	if (k->mv_size != QP__QKEY_LEN ||
	    qp_mpjson_decode(d->mv_data, d->mv_size, QP_DELTA_MAX_RAW, &v) !=
	        0) {
		*rc = QP_ECORRUPT;
		return NULL;
	}
	qp_hex(key, QP_KEY_LEN, hex);
	qp_uuid_format(key + QP_KEY_LEN, org);
	idx = qp_get_be32(key + QP__LOGKEY_LEN);
	e = json_pack(
	    "{s:s, s:s, s:I, s:o, s:O, s:O}", "author", hex, "org", org, "seq",
	    (json_int_t)qp_get_be64(key + QP__FEED_LEN), "op_index",
	    idx == UINT32_MAX ? json_null() : json_integer((json_int_t)idx),
	    "reason",
	    json_object_get(v, "reason") ? json_object_get(v, "reason")
	                                 : json_null(),
	    "op",
	    json_object_get(v, "op") ? json_object_get(v, "op") : json_null());
	json_decref(v);
	return e;
}

/* Quarantined ops for review (see store_sync.h): op_index is null when
 * the whole delta body is kept. */
int qp_store_quarantine(qp_store *s, size_t limit, json_t **out)
{
	return list_rows(s, s->db.quarantine, limit, quarantine_row, out);
}

/* Up to FORK_OPS_SHOWN of a kept delta's ops as {type, kind, id}, and
 * their number in *n (0 when it does not decode: it verified when kept). */
#define FORK_OPS_SHOWN 20

static json_t *fork_ops(const uint8_t *buf, size_t len, size_t *n)
{
	static const char *const types[] = {"?", "create", "update", "void"};
	char id[QP_UUID_STRLEN + 1];
	json_t *arr = json_array();
	qp_op *ops = NULL;
	size_t nops = 0;

	*n = 0;
	if (qp_delta_verify(buf, len, NULL) != 0 ||
	    qp_delta_ops(buf, len, &ops, &nops) != 0)
		return arr;
	for (size_t i = 0; i < nops && i < FORK_OPS_SHOWN; i++) {
		qp_uuid_format(ops[i].id, id);
		json_array_append_new(
		    arr, json_pack("{s:s, s:s, s:s}", "type",
		                   (unsigned)ops[i].type < 4 ? types[ops[i].type]
		                                             : "?",
		                   "kind", ops[i].kind, "id", id));
	}
	*n = nops;
	qp_ops_free(ops, nops);
	return arr;
}

static json_t *fork_row(qp_store *s, MDB_txn *txn, const MDB_val *k,
                        const MDB_val *d, int *rc)
{
	char hex[2 * QP_KEY_LEN + 1], org[QP_UUID_STRLEN + 1],
	    hash[2 * QP_HASH_LEN + 1], held_hex[2 * QP_HASH_LEN + 1];
	const uint8_t *key = k->mv_data;
	uint8_t held[QP_HASH_LEN];
	MDB_val lk = {QP__LOGKEY_LEN, (void *)key}, ld;
	json_t *ops;
	size_t nops;
	int have;

	if (k->mv_size != QP__LOGKEY_LEN + QP_HASH_LEN) {
		*rc = QP_ECORRUPT;
		return NULL;
	}
	/* What the log holds at the same feed and seq, if anything. */
	have = mdb_get(txn, s->db.log, &lk, &ld) == 0;
	if (have) {
		qp_delta_hash(ld.mv_data, ld.mv_size, held);
		qp_hex(held, QP_HASH_LEN, held_hex);
	}
	qp_hex(key, QP_KEY_LEN, hex);
	qp_uuid_format(key + QP_KEY_LEN, org);
	qp_hex(key + QP__LOGKEY_LEN, QP_HASH_LEN, hash);
	ops = fork_ops(d->mv_data, d->mv_size, &nops);
	/* fork: the log holds other bytes at this seq; unlinked: it holds
	 * none (past a fork, or not chained to the head). */
	return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:I, s:I, s:o}",
	                 "author", hex, "org", org, "seq",
	                 (json_int_t)qp_get_be64(key + QP__FEED_LEN), "what",
	                 have ? "fork" : "unlinked", "hash", hash, "held_hash",
	                 have ? json_string(held_hex) : json_null(), "bytes",
	                 (json_int_t)d->mv_size, "nops", (json_int_t)nops,
	                 "ops", ops);
}

/* Kept forks for review (see store_sync.h). */
int qp_store_forks(qp_store *s, size_t limit, json_t **out)
{
	return list_rows(s, s->db.forks, limit, fork_row, out);
}
