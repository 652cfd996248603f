/*
 * store_verify.c - the paths that check deltas: qp_store_verify re-checks
 * the whole log and rebuilds the derived state from it (in a transaction
 * that is aborted) to compare digests; ingest verifies, appends and applies
 * deltas from other nodes (see store_internal.h).
 */
#include "apply.h"
#include "err.h"
#include "hlc.h"
#include "store.h"
#include "store_internal.h"
#include "store_sync_internal.h"
#include "util.h"

#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- verify ------------------------------------------------------- */

typedef struct vstate {
	size_t deltas, ops, feeds;
	char err[QP_ERRMSG_LEN];
} vstate;

static int vfail(vstate *v, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int vfail(vstate *v, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->err, sizeof(v->err), fmt, ap);
	va_end(ap);
	return rc;
}

static void feed_name(const uint8_t *feed, char *out)
{
	char org[QP_UUID_STRLEN + 1];
	qp_hex(feed, 8, out);
	qp_uuid_format(feed + QP_KEY_LEN, org);
	out[16] = '/';
	memcpy(out + 17, org, sizeof org);
}

/* The head recorded for a feed must be the last delta of its log. */
static int check_head(qp_store *s, MDB_txn *txn, vstate *v, const uint8_t *feed,
                      uint64_t seq, const uint8_t hash[QP_HASH_LEN])
{
	uint8_t hh[QP_HASH_LEN];
	uint64_t hs;
	char name[64];
	int rc = qp__head_get(s, txn, (const qp_feed *)feed, &hs, hh);
	if (rc != 0)
		return rc;
	feed_name(feed, name);
	if (hs != seq || memcmp(hh, hash, QP_HASH_LEN) != 0)
		return vfail(
		    v, QP_ECHAIN,
		    "feed %s: head says seq %llu but the log ends at %llu",
		    name, (unsigned long long)hs, (unsigned long long)seq);
	v->feeds++;
	return 0;
}

/* Walk the log once: check every delta and its link, and replay its ops
 * into the (emptied) derived state of t. */
static int verify_log(qp_store *s, qp__tx *t, vstate *v)
{
	uint8_t cur[QP__FEED_LEN], hash[QP_HASH_LEN];
	uint64_t seq = 0;
	int have = 0, rc;
	qp_delta_hdr hdr;
	MDB_cursor *c;
	MDB_val k, d;
	char name[64];
	size_t nops;

	if ((rc = mdb_cursor_open(t->txn, s->db.log, &c)) != 0)
		return qp__mdb(rc);
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		const uint8_t *key = k.mv_data;
		uint64_t kseq;
		if (k.mv_size != QP__LOGKEY_LEN) {
			rc = vfail(v, QP_ECORRUPT, "log key of %zu bytes",
			           k.mv_size);
			goto out;
		}
		kseq = qp_get_be64(key + QP__FEED_LEN);
		feed_name(key, name);
		if (!have || memcmp(cur, key, QP__FEED_LEN) != 0) {
			if (have && (rc = check_head(s, t->txn, v, cur, seq,
			                             hash)) != 0)
				goto out;
			memcpy(cur, key, QP__FEED_LEN);
			memset(hash, 0, sizeof hash);
			seq = 0;
			have = 1;
		}
		if ((rc = qp_delta_verify(d.mv_data, d.mv_size, &hdr)) != 0) {
			rc = vfail(v, QP_ESIG, "feed %s seq %llu: %s", name,
			           (unsigned long long)kseq, qp_strerror(rc));
			goto out;
		}
		if (memcmp(&hdr.feed, key, QP__FEED_LEN) != 0 ||
		    hdr.seq != kseq) {
			rc = vfail(
			    v, QP_ECHAIN,
			    "feed %s seq %llu: the stored delta is another "
			    "feed's or seq's",
			    name, (unsigned long long)kseq);
			goto out;
		}
		if (kseq != seq + 1) {
			rc = vfail(v, QP_ESEQ, "feed %s: seq %llu follows %llu",
			           name, (unsigned long long)kseq,
			           (unsigned long long)seq);
			goto out;
		}
		if (memcmp(hdr.prev, hash, QP_HASH_LEN) != 0) {
			rc = vfail(
			    v, QP_ECHAIN,
			    "feed %s seq %llu: prev does not match the hash "
			    "of seq %llu",
			    name, (unsigned long long)kseq,
			    (unsigned long long)seq);
			goto out;
		}
		qp_delta_hash(d.mv_data, d.mv_size, hash);
		seq = kseq;
		v->deltas++;
		nops = 0; /* a revoked key's ops past the cut: quarantined */
		if ((rc = qp__store_revoked(s, t->txn, &hdr)) == 0)
			rc = qp__apply_delta(t, d.mv_data, d.mv_size, &hdr,
			                     &nops);
		if (rc < 0)
			goto out;
		v->ops += nops;
	}
	if (rc != MDB_NOTFOUND) {
		rc = qp__mdb(rc);
		goto out;
	}
	rc = have ? check_head(s, t->txn, v, cur, seq, hash) : 0;
	if (rc == 0 && v->feeds != qp__entries(t->txn, s->db.feeds))
		rc = vfail(v, QP_ESEQ,
		           "%zu feeds have a head but the log holds %zu",
		           qp__entries(t->txn, s->db.feeds), v->feeds);
out:
	mdb_cursor_close(c);
	return rc;
}

/* The record counts status reads (apply.h) against the index they count:
 * 0, or 1 with the first difference in msg, or an error code. */
static int kind_miscount(qp_store *s, MDB_txn *txn, char *msg, size_t len)
{
	size_t nk;
	const qp_kind *kinds = qp_schema_kinds(&nk);
	uint64_t kept, real;
	int rc;

	for (size_t i = 0; i < nk; i++) {
		if ((rc = qp__kind_count_get(txn, &s->db, kinds[i].name,
		                             &kept)) != 0 ||
		    (rc = qp__kind_recount(txn, &s->db, kinds[i].name,
		                           &real)) != 0)
			return rc;
		if (kept != real) {
			snprintf(msg, len,
			         "the store counts %llu %s records but holds "
			         "%llu",
			         (unsigned long long)kept, kinds[i].name,
			         (unsigned long long)real);
			return 1;
		}
	}
	return 0;
}

/* The log bytes status reads against the log. */
static int check_log_bytes(qp_store *s, MDB_txn *txn, vstate *v)
{
	uint64_t kept, real;
	int rc;

	if ((rc = qp__log_bytes_get(txn, &s->db, &kept)) != 0 ||
	    (rc = qp__log_bytes_recount(txn, &s->db, &real)) != 0)
		return rc;
	if (kept != real)
		return vfail(v, QP_EMISMATCH,
		             "the store counts %llu bytes of log but holds %llu",
		             (unsigned long long)kept, (unsigned long long)real);
	return 0;
}

static int verify_once(qp_store *s, vstate *v, char live[65], char rebuilt[65],
                       size_t *nrec)
{
	uint8_t h[QP_HASH_LEN];
	char miscount[sizeof v->err];
	MDB_txn *txn;
	qp__tx t;
	int rc, miscounted;

	v->deltas = v->ops = v->feeds = 0;
	v->err[0] = '\0';
	rebuilt[0] = '\0';
	if ((rc = qp__store_txn_begin(s, NULL, 0, &txn)) != 0)
		return rc;
	if ((rc = qp__digest_db(txn, s->db.records, h, nrec)) != 0)
		goto out;
	qp_hex(h, QP_HASH_LEN, live);
	/* The live counts are read before the rebuild replaces them, but a
	 * miscount is reported only when the log verifies: a damaged log
	 * explains it better. */
	if ((miscounted = kind_miscount(s, txn, miscount, sizeof miscount)) <
	    0) {
		rc = miscounted;
		goto out;
	}
	if ((rc = qp__state_clear(s, txn)) != 0 ||
	    (rc = qp__tx_init(&t, txn, &s->db)) != 0 ||
	    (rc = verify_log(s, &t, v)) != 0 ||
	    (rc = check_log_bytes(s, txn, v)) != 0)
		goto out;
	if (miscounted) {
		rc = vfail(v, QP_EMISMATCH, "%s", miscount);
		goto out;
	}
	if ((rc = qp__digest_db(txn, s->db.records, h, NULL)) != 0)
		goto out;
	qp_hex(h, QP_HASH_LEN, rebuilt);
out:
	mdb_txn_abort(txn); /* the rebuild only had to be computed */
	return rc;
}

/* Re-check the log and rebuild the state to compare (see store.h). */
int qp_store_verify(qp_store *s, json_t **report)
{
	char live[65] = "", rebuilt[65] = "";
	vstate v = {0};
	size_t nrec = 0;
	int rc, tries = 0;

	if (s == NULL || report == NULL)
		return QP_EINVAL;
	while ((rc = verify_once(s, &v, live, rebuilt, &nrec)) ==
	           QP__EMAPFULL &&
	       tries++ < QP__MAP_RETRIES) {
		if ((rc = qp__store_grow(s)) != 0)
			break;
	}
	if (rc == QP__EMAPFULL)
		rc = QP_ESTORE;
	if (rc == 0 && strcmp(live, rebuilt) != 0)
		rc =
		    vfail(&v, QP_EMISMATCH,
		          "record state digest %.16s... differs from the state "
		          "rebuilt from the log (%.16s...)",
		          live, rebuilt);
	if (rc != 0 && v.err[0] == '\0')
		vfail(&v, rc, "%s", qp_strerror(rc));
	*report =
	    json_pack("{s:I, s:I, s:I, s:s, s:s, s:b, s:s}", "deltas",
	              (json_int_t)v.deltas, "ops", (json_int_t)v.ops, "records",
	              (json_int_t)nrec, "digest", live, "rebuilt_digest",
	              rebuilt, "ok", rc == 0, "error", v.err);
	return rc;
}

/* ---- ingest ------------------------------------------------------- */

/* Does the forks database hold anything of this feed (48 bytes)?  1, 0,
 * or a storage code.  Shared with store_sync.c. */
int qp__store_has_fork(qp_store *s, MDB_txn *txn, const uint8_t *feed)
{
	MDB_cursor *c;
	MDB_val k = {QP__FEED_LEN, (void *)feed}, d;
	int rc;

	if (qp__entries(txn, s->db.forks) == 0)
		return 0;
	if ((rc = mdb_cursor_open(txn, s->db.forks, &c)) != 0)
		return qp__mdb(rc);
	rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
	if (rc == 0)
		rc = k.mv_size >= QP__FEED_LEN &&
		     memcmp(k.mv_data, feed, QP__FEED_LEN) == 0;
	else if (rc == MDB_NOTFOUND)
		rc = 0;
	else
		rc = qp__mdb(rc);
	mdb_cursor_close(c);
	return rc;
}

/* Keep a delta in forks and return code (see store_sync_internal.h). */
int qp__store_keep_fork(qp_store *s, MDB_txn *txn, const uint8_t *buf,
                        size_t len, const qp_delta_hdr *hdr, int code)
{
	uint8_t key[QP__LOGKEY_LEN + QP_HASH_LEN];
	MDB_val k = {sizeof key, key}, d = {len, (void *)buf};
	int rc;

	memcpy(key, &hdr->feed, QP__FEED_LEN);
	qp_put_be64(key + QP__FEED_LEN, hdr->seq);
	qp_delta_hash(buf, len, key + QP__LOGKEY_LEN);
	rc = qp__mdb(mdb_put(txn, s->db.forks, &k, &d, 0));
	return rc != 0 ? rc : code;
}

static int ingest_one(qp_store *s, qp__tx *t, const uint8_t *buf, size_t len)
{
	uint8_t key[QP__LOGKEY_LEN], head[QP_HASH_LEN];
	MDB_val k = {sizeof key, key}, d;
	qp_delta_hdr hdr;
	uint64_t hseq, wall;
	int rc;

	if (buf == NULL)
		return QP_EINVAL;
	if ((rc = qp_delta_verify(buf, len, &hdr)) != 0)
		return rc;
	memcpy(key, &hdr.feed, QP__FEED_LEN);
	qp_put_be64(key + QP__FEED_LEN, hdr.seq);
	if ((rc = qp__head_get(s, t->txn, &hdr.feed, &hseq, head)) != 0)
		return rc;
	if (hdr.seq <= hseq) {
		rc = mdb_get(t->txn, s->db.log, &k, &d);
		if (rc != 0)
			return rc == MDB_NOTFOUND ? QP_ECORRUPT : qp__mdb(rc);
		if (d.mv_size == len && memcmp(d.mv_data, buf, len) == 0)
			return 0; /* held already: idempotent */
		return qp__store_keep_fork(s, t->txn, buf, len, &hdr, QP_EFORK);
	}
	if ((rc = qp__store_has_fork(s, t->txn, key)) != 0)
		return rc > 0 ? QP_EFORK : rc;
	if (hdr.seq > hseq + 1)
		return QP_ESEQ;
	if (memcmp(hdr.prev, head, QP_HASH_LEN) != 0) {
		return qp__store_keep_fork(s, t->txn, buf, len, &hdr,
		                           QP_ECHAIN);
	}
	d.mv_size = len;
	d.mv_data = (void *)buf;
	if ((rc = qp__log_put(t->txn, &s->db, &k, &d)) != 0)
		return rc == QP_EEXIST ? QP_ECORRUPT : rc;
	qp_delta_hash(buf, len, head);
	if ((rc = qp__head_put(s, t->txn, &hdr.feed, hdr.seq, head)) != 0)
		return rc;
	/* Later local edits must order after what we have seen, but a clock
	 * far in the future must not drag ours along. */
	wall = qp_hlc_wall_ms();
	if (QP_HLC_MS(hdr.hlc) <= wall + QP_HLC_AHEAD_MAX_MS)
		qp_hlc_observe(&s->hlc, hdr.hlc);
	return qp__apply_delta(t, buf, len, &hdr, NULL);
}

static int ingest_once(qp_store *s, const uint8_t *const *deltas,
                       const size_t *lens, size_t n, int *rcs)
{
	MDB_txn *txn;
	qp__tx t;
	int rc;

	if ((rc = qp__store_txn_begin(s, NULL, 0, &txn)) != 0)
		return rc;
	if ((rc = qp__store_hlc_load(s, txn)) != 0 ||
	    (rc = qp__tx_init(&t, txn, &s->db)) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		rcs[i] = ingest_one(s, &t, deltas[i], lens[i]);
		if (qp__store_fatal(rcs[i])) {
			rc = rcs[i];
			goto fail;
		}
	}
	if ((rc = qp__store_hlc_save(s, txn)) != 0)
		goto fail;
	return qp__mdb(mdb_txn_commit(txn));
fail:
	mdb_txn_abort(txn);
	return rc;
}

/* Ingest n deltas in one transaction (see store_internal.h); a full map
 * grows and the whole call is redone. */
int qp__store_ingest_many(qp_store *s, const uint8_t *const *deltas,
                          const size_t *lens, size_t n, int *rcs)
{
	int rc, tries = 0;

	if (s == NULL ||
	    (n > 0 && (deltas == NULL || lens == NULL || rcs == NULL)))
		return QP_EINVAL;
	while ((rc = ingest_once(s, deltas, lens, n, rcs)) == QP__EMAPFULL &&
	       tries++ < QP__MAP_RETRIES) {
		if ((rc = qp__store_grow(s)) != 0)
			break;
	}
	if (rc == QP__EMAPFULL)
		rc = QP_ESTORE;
	if (rc != 0) {
		for (size_t i = 0; i < n; i++)
			rcs[i] = rc;
	}
	return rc;
}

/* Ingest one delta (see store_internal.h). */
int qp__store_ingest(qp_store *s, const uint8_t *delta, size_t len)
{
	int r = 0, rc = qp__store_ingest_many(s, &delta, &len, 1, &r);
	return rc != 0 ? rc : r;
}

/* Copy one delta out of the log (see store_internal.h). */
int qp__store_log_get(qp_store *s, const qp_feed *feed, uint64_t seq,
                      uint8_t **out, size_t *len)
{
	uint8_t key[QP__LOGKEY_LEN];
	MDB_val k = {sizeof key, key}, d;
	MDB_txn *txn;
	qp__tx t;
	int rc;

	if (s == NULL || feed == NULL || out == NULL || len == NULL)
		return QP_EINVAL;
	memcpy(key, feed, QP__FEED_LEN);
	qp_put_be64(key + QP__FEED_LEN, seq);
	if ((rc = qp__read_begin(s, &t, &txn)) != 0)
		return rc;
	rc = qp__mdb(mdb_get(txn, s->db.log, &k, &d));
	if (rc == 0) {
		*out = qp_xmalloc(d.mv_size);
		memcpy(*out, d.mv_data, d.mv_size);
		*len = d.mv_size;
	}
	mdb_txn_abort(txn);
	return rc;
}
