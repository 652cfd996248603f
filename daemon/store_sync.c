/*
 * store_sync.c - the store's side of sync (see store_sync.h): trust (the
 * root key, certificates, revocations), ingest of other nodes' deltas with
 * the trust check, and the rebuild of the record state when a revocation
 * arrives for deltas already applied.  Heads, delta reads, acks, peer
 * notes, kv and the review listings are in store_sync_peer.c.
 *
 * The five databases of sync (certs, revoked, peers, acks, kv) are opened
 * the first time a qp_store_* function of sync runs, in a write
 * transaction of their own: LMDB requires the transaction that first opens
 * a named database to end before any other may use it, and this way the
 * store's open path needs no change.
 *
 * Values: certs key(32) -> certificate bytes; revoked key(32) -> the
 * QP_REV_LEN signed bytes (the one with the lowest after_seq is kept: a
 * later, stricter revocation replaces a looser one, never the reverse).
 */
#include "store_sync.h"
#include "apply.h"
#include "err.h"
#include "store_internal.h"
#include "store_sync_internal.h"
#include "util.h"

#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hub levels a chain of certificates may span, up or down. */
#define QP__TRUST_DEPTH 8

#define REV_OFF_ISSUER 5
#define REV_OFF_KEY    37
#define REV_OFF_AFTER  69

static const char *const db_names[QP__SDB_N] = {"certs", "revoked", "peers",
                                                "acks", "kv"};

/* ---- transactions ------------------------------------------------- */

/* Run fn in a write transaction and commit it; a full map grows and the
 * whole transaction is redone, so fn must depend only on ctx's inputs. */
int qp__sync_write(qp_store *s, int (*fn)(qp_store *, MDB_txn *, void *),
                   void *ctx)
{
	MDB_txn *txn;
	int rc, tries = 0;

	for (;;) {
		rc = qp__store_txn_begin(s, NULL, 0, &txn);
		if (rc == 0) {
			rc = fn(s, txn, ctx);
			if (rc == 0)
				rc = qp__mdb(mdb_txn_commit(txn));
			else
				mdb_txn_abort(txn);
		}
		if (rc != QP__EMAPFULL || tries++ >= QP__MAP_RETRIES)
			break;
		if ((rc = qp__store_grow(s)) != 0)
			break;
	}
	return rc == QP__EMAPFULL ? QP_ESTORE : rc;
}

/* Begin a read-only transaction. */
int qp__sync_read(qp_store *s, MDB_txn **txn)
{
	int rc = qp__store_txn_begin(s, NULL, MDB_RDONLY, txn);
	return rc == QP__EMAPFULL ? QP_ESTORE : rc;
}

static int open_dbs(qp_store *s, MDB_txn *txn, void *ctx)
{
	(void)ctx;
	for (int i = 0; i < QP__SDB_N; i++) {
		int rc = qp__mdb(mdb_dbi_open(txn, db_names[i], MDB_CREATE,
		                              &s->sync_db[i]));
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Open sync's databases once per store (see the top of this file).  No
 * transaction of s may be active on the first call. */
int qp__sync_ready(qp_store *s)
{
	int rc;

	if (s == NULL)
		return QP_EINVAL;
	if (s->sync_open)
		return 0;
	if ((rc = qp__sync_write(s, open_dbs, NULL)) == 0)
		s->sync_open = 1;
	return rc;
}

/* ---- trust -------------------------------------------------------- */

/* The trust root from kv "root".  QP_ENOTFOUND when never set. */
static int root_get(qp_store *s, MDB_txn *txn, uint8_t root[QP_KEY_LEN])
{
	MDB_val k = {4, "root"}, d;
	int rc = qp__mdb(mdb_get(txn, s->sync_db[QP__SDB_KV], &k, &d));
	if (rc != 0)
		return rc;
	if (d.mv_size != QP_KEY_LEN)
		return QP_ECORRUPT;
	memcpy(root, d.mv_data, QP_KEY_LEN);
	return 0;
}

/* The upstream hub of a regional hub, from kv "upstream": a second trust
 * anchor.  0 and *up set, or QP_ENOTFOUND. */
static int upstream_get(qp_store *s, MDB_txn *txn, uint8_t up[QP_KEY_LEN])
{
	MDB_val k = {8, "upstream"}, d;
	int rc = qp__mdb(mdb_get(txn, s->sync_db[QP__SDB_KV], &k, &d));
	if (rc != 0)
		return rc;
	if (d.mv_size != QP_KEY_LEN)
		return QP_ECORRUPT;
	memcpy(up, d.mv_data, QP_KEY_LEN);
	return 0;
}

/* The hub this node joined: a hub's upstream, else a device's root (a
 * hub's root is its own key).  QP_ENOTFOUND when it joined none. */
static int joined_get(qp_store *s, MDB_txn *txn,
		      const uint8_t root[QP_KEY_LEN], uint8_t j[QP_KEY_LEN])
{
	int rc = upstream_get(s, txn, j);
	if (rc != QP_ENOTFOUND)
		return rc;
	if (memcmp(root, s->pk, QP_KEY_LEN) == 0)
		return QP_ENOTFOUND;
	memcpy(j, root, QP_KEY_LEN);
	return 0;
}

/* kv "up:" + key: the role=hub certificate of a hub at or above the hub
 * this node joined, as that hub handed it down (qp_store_set_chain). */
static MDB_val up_kv_key(uint8_t buf[3 + QP_KEY_LEN],
			 const uint8_t key[QP_KEY_LEN])
{
	MDB_val k = {3 + QP_KEY_LEN, buf};
	memcpy(buf, "up:", 3);
	memcpy(buf + 3, key, QP_KEY_LEN);
	return k;
}

static int up_load(qp_store *s, MDB_txn *txn, const uint8_t key[QP_KEY_LEN],
		   qp_cert *c)
{
	uint8_t buf[3 + QP_KEY_LEN];
	MDB_val k = up_kv_key(buf, key), d;
	int rc = qp__mdb(mdb_get(txn, s->sync_db[QP__SDB_KV], &k, &d));
	if (rc != 0)
		return rc;
	return qp_cert_parse(d.mv_data, d.mv_size, c) == 0 ? 0 : QP_ECORRUPT;
}

/* Is key one of the anchors: the root, the upstream hub, or a hub above
 * the hub this node joined (the issuers along the "up:" certificates, at
 * most QP__TRUST_DEPTH levels)? */
static int is_anchor(qp_store *s, MDB_txn *txn, const uint8_t root[QP_KEY_LEN],
		     const uint8_t key[QP_KEY_LEN])
{
	uint8_t cur[QP_KEY_LEN];
	qp_cert c;

	if (memcmp(key, root, QP_KEY_LEN) == 0)
		return 1;
	if (joined_get(s, txn, root, cur) != 0)
		return 0;
	for (int depth = 0; depth <= QP__TRUST_DEPTH; depth++) {
		if (memcmp(key, cur, QP_KEY_LEN) == 0)
			return 1;
		if (up_load(s, txn, cur, &c) != 0)
			return 0;
		memcpy(cur, c.issuer, QP_KEY_LEN);
	}
	return 0;
}

/* The stored certificate of key, decoded (it was verified when stored). */
static int cert_load(qp_store *s, MDB_txn *txn, const uint8_t key[QP_KEY_LEN],
                     qp_cert *c)
{
	MDB_val k = {QP_KEY_LEN, (void *)key}, d;
	int rc = qp__mdb(mdb_get(txn, s->sync_db[QP__SDB_CERTS], &k, &d));
	if (rc != 0)
		return rc;
	return qp_cert_parse(d.mv_data, d.mv_size, c) == 0 ? 0 : QP_ECORRUPT;
}

/* May issuer vouch for keys: is it an anchor, or a hub reached from an
 * anchor through role=hub certificates (national -> regional -> ...), at
 * most QP__TRUST_DEPTH of them?  With org set, every hub on that chain
 * must hold org: the first that does not is copied to lacking and *lacks
 * set (the chain is still valid).  With self set, a chain that passes
 * through self is refused: a hub cannot certify itself or a hub above it.
 * 0, QP_EAUTH, or a storage code. */
static int issuer_ok(qp_store *s, MDB_txn *txn, const uint8_t root[QP_KEY_LEN],
                     const uint8_t issuer[QP_KEY_LEN], const uint8_t *org,
                     const uint8_t *self, uint8_t lacking[QP_KEY_LEN],
                     int *lacks)
{
	uint8_t cur[QP_KEY_LEN];
	qp_cert hub;
	int rc;

	*lacks = 0;
	memcpy(cur, issuer, QP_KEY_LEN);
	for (int depth = 0; depth <= QP__TRUST_DEPTH; depth++) {
		if (self != NULL && memcmp(cur, self, QP_KEY_LEN) == 0)
			return QP_EAUTH;
		if (is_anchor(s, txn, root, cur))
			return 0;
		rc = cert_load(s, txn, cur, &hub);
		if (rc == QP_ENOTFOUND)
			return QP_EAUTH;
		if (rc != 0)
			return rc;
		if (hub.role != QP_ROLE_HUB)
			return QP_EAUTH;
		/* A hub cannot grant an org it does not hold itself. */
		if (org != NULL && !*lacks && !qp_cert_allows_org(&hub, org)) {
			memcpy(lacking, hub.device, QP_KEY_LEN);
			*lacks = 1;
		}
		memcpy(cur, hub.issuer, QP_KEY_LEN);
	}
	return QP_EAUTH; /* deeper than any programme's hubs: refused */
}

/* Trust check inside txn (see qp_store_trusted). */
static int trusted_tx(qp_store *s, MDB_txn *txn,
                      const uint8_t author[QP_KEY_LEN],
                      const uint8_t org[QP_UUID_LEN], char *why,
                      size_t whylen)
{
	uint8_t root[QP_KEY_LEN], lacking[QP_KEY_LEN];
	char a8[9], h8[9], o[QP_UUID_STRLEN + 1];
	qp_cert c;
	int rc, lacks;

	if (memcmp(author, s->pk, QP_KEY_LEN) == 0)
		return 0;
	qp_hex(author, 4, a8);
	rc = root_get(s, txn, root);
	if (rc == QP_ENOTFOUND)
		return qp_errf(QP_EAUTH, why, whylen,
		               "author %s is not trusted: this node has not "
		               "joined a hub",
		               a8);
	if (rc != 0)
		return rc;
	if (is_anchor(s, txn, root, author))
		return 0;
	rc = cert_load(s, txn, author, &c);
	if (rc == QP_ENOTFOUND)
		return qp_errf(QP_EAUTH, why, whylen,
		               "author %s has no certificate from this hub",
		               a8);
	if (rc != 0)
		return rc;
	rc = issuer_ok(s, txn, root, c.issuer, org, NULL, lacking, &lacks);
	if (rc == QP_EAUTH)
		return qp_errf(QP_EAUTH, why, whylen,
		               "the certificate of %s was not issued by this "
		               "hub",
		               a8);
	if (rc != 0)
		return rc;
	qp_uuid_format(org, o);
	if (!qp_cert_allows_org(&c, org))
		return qp_errf(QP_EAUTH, why, whylen,
		               "org %s is not in the certificate of %s", o, a8);
	if (lacks) {
		qp_hex(lacking, 4, h8);
		return qp_errf(QP_EAUTH, why, whylen,
		               "org %s is not in the certificate of %s", o, h8);
	}
	return 0;
}

/* Is key revoked?  1 and *after set when a revocation is held, else 0, or
 * a storage code. */
static int revoked_get(qp_store *s, MDB_txn *txn, MDB_dbi dbi,
                       const uint8_t key[QP_KEY_LEN], uint64_t *after)
{
	MDB_val k = {QP_KEY_LEN, (void *)key}, d;
	int rc = qp__mdb(mdb_get(txn, dbi, &k, &d));

	(void)s;
	if (rc == QP_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (d.mv_size != QP_REV_LEN)
		return QP_ECORRUPT;
	*after = qp_get_be64((const uint8_t *)d.mv_data + REV_OFF_AFTER);
	return 1;
}

/* Covered by a revocation (see store_sync_internal.h). */
int qp__store_revoked(qp_store *s, MDB_txn *txn, const qp_delta_hdr *hdr)
{
	MDB_dbi dbi;
	uint64_t after = 0;
	int rc;

	if (s->sync_open) {
		dbi = s->sync_db[QP__SDB_REVOKED];
	} else {
		/* Sync never ran in this process: look without creating. */
		rc = qp__mdb(mdb_dbi_open(txn, "revoked", 0, &dbi));
		if (rc == QP_ENOTFOUND)
			return 0;
		if (rc != 0)
			return rc;
	}
	rc = revoked_get(s, txn, dbi, hdr->feed.author, &after);
	if (rc <= 0)
		return rc;
	return hdr->seq > after;
}

/* Is author trusted to write in org (see store_sync.h). */
int qp_store_trusted(qp_store *s, const uint8_t author[QP_KEY_LEN],
                     const uint8_t org[QP_UUID_LEN], char *why, size_t whylen)
{
	MDB_txn *txn;
	int rc;

	if (author == NULL || org == NULL)
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0 || (rc = qp__sync_read(s, &txn)) != 0)
		return rc;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	rc = trusted_tx(s, txn, author, org, why, whylen);
	mdb_txn_abort(txn);
	return rc;
}

/* ---- root and certificates ---------------------------------------- */

typedef struct bufctx {
	const uint8_t *buf;
	size_t len;
} bufctx;

static int root_put(qp_store *s, MDB_txn *txn, void *ctx)
{
	MDB_val k = {4, "root"}, d = {QP_KEY_LEN, ctx};
	return qp__mdb(mdb_put(txn, s->sync_db[QP__SDB_KV], &k, &d, 0));
}

/* Set the trust root (see store_sync.h). */
int qp_store_set_root(qp_store *s, const uint8_t root[QP_KEY_LEN])
{
	int rc;
	if (root == NULL)
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0)
		return rc;
	return qp__sync_write(s, root_put, (void *)root);
}

static int upstream_put(qp_store *s, MDB_txn *txn, void *ctx)
{
	MDB_val k = {8, "upstream"}, d = {QP_KEY_LEN, ctx};
	return qp__mdb(mdb_put(txn, s->sync_db[QP__SDB_KV], &k, &d, 0));
}

/* Set the upstream hub of a regional hub (see store_sync.h). */
int qp_store_set_upstream(qp_store *s, const uint8_t up[QP_KEY_LEN])
{
	int rc;
	if (up == NULL)
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0)
		return rc;
	return qp__sync_write(s, upstream_put, (void *)up);
}

/* Get the trust root (see store_sync.h). */
int qp_store_get_root(qp_store *s, uint8_t root[QP_KEY_LEN])
{
	uint8_t r[QP_KEY_LEN];
	MDB_txn *txn;
	int rc;

	if (root == NULL)
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0 || (rc = qp__sync_read(s, &txn)) != 0)
		return rc;
	rc = root_get(s, txn, r);
	mdb_txn_abort(txn);
	if (rc == 0)
		memcpy(root, r, QP_KEY_LEN);
	return rc;
}

/* Keep the stored certificate rather than c?  Serials order one issuer's
 * certificates; across issuers the later issue wins. */
static int keep_old(const qp_cert *old, const qp_cert *c)
{
	if (memcmp(old->issuer, c->issuer, QP_KEY_LEN) == 0)
		return old->serial > c->serial;
	return old->issued_at > c->issued_at;
}

/* May a certificate from issuer replace old (issued by another key)?  Only
 * when issuer is an anchor or a hub above old's issuer: a hub cannot take
 * over what a sibling hub, or a hub above it, certified. */
static int may_replace(qp_store *s, MDB_txn *txn, const uint8_t root[QP_KEY_LEN],
		       const qp_cert *old, const uint8_t issuer[QP_KEY_LEN])
{
	uint8_t cur[QP_KEY_LEN];
	qp_cert hub;

	if (memcmp(old->issuer, issuer, QP_KEY_LEN) == 0 ||
	    is_anchor(s, txn, root, issuer))
		return 1;
	memcpy(cur, old->issuer, QP_KEY_LEN);
	for (int depth = 0; depth <= QP__TRUST_DEPTH; depth++) {
		if (is_anchor(s, txn, root, cur) ||
		    cert_load(s, txn, cur, &hub) != 0 || hub.role != QP_ROLE_HUB)
			return 0;
		if (memcmp(hub.issuer, issuer, QP_KEY_LEN) == 0)
			return 1;
		memcpy(cur, hub.issuer, QP_KEY_LEN);
	}
	return 0;
}

static int cert_put_tx(qp_store *s, MDB_txn *txn, void *ctx)
{
	const bufctx *b = ctx;
	uint8_t root[QP_KEY_LEN], lacking[QP_KEY_LEN];
	MDB_val k, d;
	qp_cert c, old;
	int rc, lacks;

	if ((rc = qp_cert_parse(b->buf, b->len, &c)) != 0)
		return rc;
	rc = root_get(s, txn, root);
	if (rc != 0)
		return rc == QP_ENOTFOUND ? QP_EAUTH : rc;
	if ((rc = issuer_ok(s, txn, root, c.issuer, NULL, c.device, lacking,
			    &lacks)) != 0)
		return rc;
	/* An anchor is not certified from below; a hub keeps its own
	 * certificate from the hub it joined. */
	if (is_anchor(s, txn, root, c.device) &&
	    !(memcmp(c.device, s->pk, QP_KEY_LEN) == 0 &&
	      is_anchor(s, txn, root, c.issuer)))
		return QP_EAUTH;
	/* Expiry is not checked (now = 0): an expired certificate still
	 * vouches for what its key signed while it was valid. */
	if ((rc = qp_cert_verify(b->buf, b->len, c.issuer, 0, &c)) != 0)
		return rc;
	rc = cert_load(s, txn, c.device, &old);
	if (rc == 0 && (keep_old(&old, &c) ||
			!may_replace(s, txn, root, &old, c.issuer)))
		return 0;
	if (rc != 0 && rc != QP_ENOTFOUND)
		return rc;
	k.mv_size = QP_KEY_LEN;
	k.mv_data = c.device;
	d.mv_size = b->len;
	d.mv_data = (void *)b->buf;
	s->trust_gen++; /* may overcount on a retried transaction: harmless */
	return qp__mdb(mdb_put(txn, s->sync_db[QP__SDB_CERTS], &k, &d, 0));
}

/* Store a certificate (see store_sync.h). */
int qp_store_cert_put(qp_store *s, const uint8_t *cert, size_t len)
{
	bufctx b = {cert, len};
	int rc;

	if (cert == NULL)
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0)
		return rc;
	return qp__sync_write(s, cert_put_tx, &b);
}

typedef struct chainctx {
	const uint8_t *const *certs;
	const size_t *lens;
	size_t n;
} chainctx;

/* Go over the kv "up:" entries: count them into *n, and delete them when
 * del is set. */
static int up_each(qp_store *s, MDB_txn *txn, int del, size_t *n)
{
	MDB_cursor *c;
	MDB_val k = {3, "up:"}, d;
	int rc = qp__mdb(mdb_cursor_open(txn, s->sync_db[QP__SDB_KV], &c));

	*n = 0;
	if (rc != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		if (k.mv_size < 3 || memcmp(k.mv_data, "up:", 3) != 0)
			break;
		(*n)++;
		if (del && (rc = mdb_cursor_del(c, 0)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : qp__mdb(rc);
}

/* Does the kv hold exactly this chain already? */
static int chain_same(qp_store *s, MDB_txn *txn, const chainctx *ch)
{
	uint8_t buf[3 + QP_KEY_LEN];
	MDB_val k, d;
	qp_cert c;
	size_t held;

	if (up_each(s, txn, 0, &held) != 0 || held != ch->n)
		return 0;
	for (size_t i = 0; i < ch->n; i++) {
		if (qp_cert_parse(ch->certs[i], ch->lens[i], &c) != 0)
			return 0;
		k = up_kv_key(buf, c.device);
		if (mdb_get(txn, s->sync_db[QP__SDB_KV], &k, &d) != 0 ||
		    d.mv_size != ch->lens[i] ||
		    memcmp(d.mv_data, ch->certs[i], d.mv_size) != 0)
			return 0;
	}
	return 1;
}

static int chain_set_tx(qp_store *s, MDB_txn *txn, void *ctx)
{
	const chainctx *ch = ctx;
	uint8_t root[QP_KEY_LEN], want[QP_KEY_LEN], buf[3 + QP_KEY_LEN];
	MDB_val k, d;
	qp_cert c;
	size_t i;
	int rc;

	if (ch->n > QP__TRUST_DEPTH)
		return QP_ETOOBIG;
	rc = root_get(s, txn, root);
	if (rc == 0)
		rc = joined_get(s, txn, root, want);
	if (rc != 0)
		return rc == QP_ENOTFOUND ? QP_EAUTH : rc;
	/* Check it all before changing anything: each a hub certificate of
	 * the issuer of the one before, the first of the joined hub. */
	for (i = 0; i < ch->n; i++) {
		if ((rc = qp_cert_parse(ch->certs[i], ch->lens[i], &c)) != 0)
			return rc;
		if (c.role != QP_ROLE_HUB ||
		    memcmp(c.device, want, QP_KEY_LEN) != 0)
			return QP_EAUTH;
		if ((rc = qp_cert_verify(ch->certs[i], ch->lens[i], c.issuer, 0,
					 &c)) != 0)
			return rc;
		memcpy(want, c.issuer, QP_KEY_LEN);
	}
	/* Sent at every session: unchanged, it writes nothing. */
	if (chain_same(s, txn, ch))
		return 0;
	if ((rc = up_each(s, txn, 1, &i)) != 0)
		return rc;
	s->trust_gen++;
	for (i = 0; i < ch->n; i++) {
		qp_cert_parse(ch->certs[i], ch->lens[i], &c);
		k = up_kv_key(buf, c.device);
		d.mv_size = ch->lens[i];
		d.mv_data = (void *)ch->certs[i];
		if ((rc = qp__mdb(mdb_put(txn, s->sync_db[QP__SDB_KV], &k, &d,
					  0))) != 0)
			return rc;
	}
	return 0;
}

/* Replace the chain of hubs above (see store_sync.h). */
int qp_store_set_chain(qp_store *s, const uint8_t *const *certs,
		       const size_t *lens, size_t n)
{
	chainctx ch = {certs, lens, n};
	int rc;

	if (n > 0 && (certs == NULL || lens == NULL))
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0)
		return rc;
	return qp__sync_write(s, chain_set_tx, &ch);
}

/* What this node hands down (see store_sync.h). */
int qp_store_chain(qp_store *s,
		   int (*fn)(void *ctx, const uint8_t *cert, size_t len),
		   void *ctx)
{
	uint8_t root[QP_KEY_LEN], cur[QP_KEY_LEN], buf[3 + QP_KEY_LEN];
	MDB_val k = {QP_KEY_LEN, s->pk}, d;
	MDB_txn *txn;
	qp_cert c;
	int rc;

	if (fn == NULL)
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0 || (rc = qp__sync_read(s, &txn)) != 0)
		return rc;
	/* Its own hub certificate, from the hub it joined... */
	rc = qp__mdb(mdb_get(txn, s->sync_db[QP__SDB_CERTS], &k, &d));
	if (rc != 0 || qp_cert_parse(d.mv_data, d.mv_size, &c) != 0 ||
	    c.role != QP_ROLE_HUB) {
		rc = rc == QP_ENOTFOUND || rc == 0 ? 0 : rc;
		goto out;
	}
	if ((rc = fn(ctx, d.mv_data, d.mv_size)) != 0)
		goto out;
	/* ...then the chain that hub handed down, bottom up. */
	if (root_get(s, txn, root) != 0 || joined_get(s, txn, root, cur) != 0)
		goto out;
	for (int depth = 0; depth < QP__TRUST_DEPTH; depth++) {
		k = up_kv_key(buf, cur);
		if (mdb_get(txn, s->sync_db[QP__SDB_KV], &k, &d) != 0 ||
		    qp_cert_parse(d.mv_data, d.mv_size, &c) != 0)
			break;
		if ((rc = fn(ctx, d.mv_data, d.mv_size)) != 0)
			break;
		memcpy(cur, c.issuer, QP_KEY_LEN);
	}
out:
	mdb_txn_abort(txn);
	return rc;
}

/* Copy of key's certificate (see store_sync.h). */
int qp_store_cert_get(qp_store *s, const uint8_t key[QP_KEY_LEN],
                      uint8_t **cert, size_t *len)
{
	MDB_val k = {QP_KEY_LEN, (void *)key}, d;
	MDB_txn *txn;
	int rc;

	if (key == NULL || cert == NULL || len == NULL)
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0 || (rc = qp__sync_read(s, &txn)) != 0)
		return rc;
	rc = qp__mdb(mdb_get(txn, s->sync_db[QP__SDB_CERTS], &k, &d));
	if (rc == 0) {
		*cert = qp_xmalloc(d.mv_size ? d.mv_size : 1);
		memcpy(*cert, d.mv_data, d.mv_size);
		*len = d.mv_size;
	}
	mdb_txn_abort(txn);
	return rc;
}

/* Every value of one sync database, in key order; with prefix set, only
 * those under keys that start with it. */
static int each_value(qp_store *s, int which, const char *prefix,
                      int (*fn)(void *ctx, const uint8_t *v, size_t len),
                      void *ctx)
{
	size_t pl = prefix != NULL ? strlen(prefix) : 0;
	MDB_cursor *c = NULL;
	MDB_txn *txn;
	MDB_val k, d;
	int rc;

	if (fn == NULL)
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0 || (rc = qp__sync_read(s, &txn)) != 0)
		return rc;
	if ((rc = qp__mdb(mdb_cursor_open(txn, s->sync_db[which], &c))) != 0)
		goto out;
	k.mv_size = pl;
	k.mv_data = (void *)prefix;
	for (rc = mdb_cursor_get(c, &k, &d, pl ? MDB_SET_RANGE : MDB_FIRST);
	     rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		int r;
		if (pl && (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0))
			break;
		if ((r = fn(ctx, d.mv_data, d.mv_size)) != 0) {
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

/* Every stored certificate (see store_sync.h). */
int qp_store_certs(qp_store *s,
                   int (*fn)(void *ctx, const uint8_t *cert, size_t len),
                   void *ctx)
{
	return each_value(s, QP__SDB_CERTS, NULL, fn, ctx);
}

/* Every stored revocation (see store_sync.h). */
int qp_store_revocations(qp_store *s,
                         int (*fn)(void *ctx, const uint8_t *rev, size_t len),
                         void *ctx)
{
	return each_value(s, QP__SDB_REVOKED, NULL, fn, ctx);
}

/* ---- quarantine of whole deltas and the rebuild ------------------- */

/* Keep every op of a held delta in quarantine with reason (an undecodable
 * body goes in whole, as qp__apply_delta does). */
static int quarantine_delta(qp__tx *t, const uint8_t *buf, size_t len,
                            const qp_feed *feed, uint64_t seq,
                            const char *reason)
{
	qp_op *ops = NULL;
	size_t n = 0;
	int rc = qp_delta_ops(buf, len, &ops, &n);

	if (rc == QP_ENOMEM)
		return rc;
	if (rc != 0)
		return qp__quarantine(t, feed, seq, UINT32_MAX, NULL, reason);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = qp__quarantine(t, feed, seq, (uint32_t)i, &ops[i],
		                    reason);
	qp_ops_free(ops, n);
	return rc;
}

static void revoked_reason(char *buf, size_t len, uint64_t after)
{
	qp_fmt(buf, len, "key revoked after seq %llu",
	       (unsigned long long)after);
}

/* The header of a delta held in the log (verified when it was stored:
 * read back without checking the signature again, which would cost a
 * signature check per delta of the whole log). */
static int stored_hdr(const uint8_t *b, size_t len, qp_delta_hdr *h)
{
	if (len < QP_DELTA_HDR + QP_DELTA_SIG)
		return QP_ECORRUPT;
	memcpy(h->feed.author, b + 4, QP_KEY_LEN);
	memcpy(h->feed.org, b + 36, QP_UUID_LEN);
	h->seq = qp_get_be64(b + 52);
	memcpy(h->prev, b + 60, QP_HASH_LEN);
	h->hlc = qp_get_be64(b + 92);
	h->flags = b[100];
	h->raw_len = qp_get_be32(b + 101);
	h->body_len = qp_get_be32(b + 105);
	return 0;
}

/* Rebuild records, indexes and conflicts from the log, leaving out the
 * deltas covered by a revocation (their ops are in quarantine).  The same
 * replay qp_store_verify does, so verify agrees with the result. */
static int rebuild(qp_store *s, MDB_txn *txn)
{
	uint8_t last[QP_KEY_LEN];
	uint64_t after = 0;
	int have = 0, revoked = 0, rc;
	qp_delta_hdr hdr;
	MDB_cursor *c;
	MDB_val k, d;
	qp__tx t;

	if ((rc = qp__state_clear(s, txn)) != 0 ||
	    (rc = qp__tx_init(&t, txn, &s->db)) != 0)
		return rc;
	if ((rc = qp__mdb(mdb_cursor_open(txn, s->db.log, &c))) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		if ((rc = stored_hdr(d.mv_data, d.mv_size, &hdr)) != 0)
			goto out;
		/* The log is in author order: one lookup per author. */
		if (!have || memcmp(last, hdr.feed.author, QP_KEY_LEN) != 0) {
			memcpy(last, hdr.feed.author, QP_KEY_LEN);
			have = 1;
			revoked = revoked_get(s, txn,
			                      s->sync_db[QP__SDB_REVOKED], last,
			                      &after);
			if (revoked < 0) {
				rc = revoked;
				goto out;
			}
		}
		if (revoked && hdr.seq > after)
			continue;
		if ((rc = qp__apply_delta(&t, d.mv_data, d.mv_size, &hdr,
		                          NULL)) != 0)
			goto out;
	}
	rc = rc == MDB_NOTFOUND ? 0 : qp__mdb(rc);
out:
	mdb_cursor_close(c);
	return rc;
}

static int upgrade_tx(qp_store *s, MDB_txn *txn, void *ctx)
{
	uint8_t ver[4];
	MDB_val k = {6, "schema"}, d = {4, ver};
	uint64_t n;
	int rc;

	if ((rc = rebuild(s, txn)) != 0 ||
	    (rc = qp__log_bytes_recount(txn, &s->db, &n)) != 0 ||
	    (rc = qp__log_bytes_set(txn, &s->db, n)) != 0)
		return rc;
	qp_put_be32(ver, *(const uint32_t *)ctx);
	return qp__mdb(mdb_put(txn, s->db.meta, &k, &d, 0));
}

/* Upgrade an older store (see store_sync_internal.h). */
int qp__store_upgrade(qp_store *s, uint32_t format)
{
	int rc = qp__sync_ready(s);

	return rc != 0 ? rc : qp__sync_write(s, upgrade_tx, &format);
}

/* Quarantine the ops of key's held deltas with seq > after; *any tells
 * whether there were some. */
static int quarantine_key(qp_store *s, MDB_txn *txn,
                          const uint8_t key[QP_KEY_LEN], uint64_t after,
                          int *any)
{
	char why[64];
	MDB_cursor *c;
	MDB_val k = {QP_KEY_LEN, (void *)key}, d;
	qp_feed feed;
	uint64_t seq;
	qp__tx t;
	int rc;

	*any = 0;
	revoked_reason(why, sizeof why, after);
	if ((rc = qp__tx_init(&t, txn, &s->db)) != 0)
		return rc;
	if ((rc = qp__mdb(mdb_cursor_open(txn, s->db.log, &c))) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
	     rc == 0 && k.mv_size == QP__LOGKEY_LEN &&
	     memcmp(k.mv_data, key, QP_KEY_LEN) == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		seq = qp_get_be64((const uint8_t *)k.mv_data + QP__FEED_LEN);
		if (seq <= after)
			continue;
		memcpy(&feed, k.mv_data, QP__FEED_LEN);
		if ((rc = quarantine_delta(&t, d.mv_data, d.mv_size, &feed, seq,
		                           why)) != 0)
			goto out;
		*any = 1;
	}
	rc = rc == MDB_NOTFOUND || rc == 0 ? 0 : qp__mdb(rc);
out:
	mdb_cursor_close(c);
	return rc;
}

static int rev_put_tx(qp_store *s, MDB_txn *txn, void *ctx)
{
	const bufctx *b = ctx;
	uint8_t root[QP_KEY_LEN], issuer[QP_KEY_LEN], lacking[QP_KEY_LEN];
	uint64_t after = 0;
	qp_revocation r;
	MDB_val k, d;
	int rc, lacks, any;

	rc = root_get(s, txn, root);
	if (rc != 0)
		return rc == QP_ENOTFOUND ? QP_EAUTH : rc;
	/* Verify under the issuer the bytes name when it may revoke, else
	 * under the root (which then refuses it as another issuer's). */
	memcpy(issuer, root, QP_KEY_LEN);
	if (b->len == QP_REV_LEN) {
		rc = issuer_ok(s, txn, root, b->buf + REV_OFF_ISSUER, NULL,
		               NULL, lacking, &lacks);
		if (rc == 0)
			memcpy(issuer, b->buf + REV_OFF_ISSUER, QP_KEY_LEN);
		else if (rc != QP_EAUTH)
			return rc;
	}
	if ((rc = qp_revocation_verify(b->buf, b->len, issuer, &r)) != 0)
		return rc;
	rc = revoked_get(s, txn, s->sync_db[QP__SDB_REVOKED], r.key, &after);
	if (rc < 0)
		return rc;
	if (rc == 1 && after <= r.after_seq)
		return 0; /* as strict already */
	k.mv_size = QP_KEY_LEN;
	k.mv_data = r.key;
	d.mv_size = b->len;
	d.mv_data = (void *)b->buf;
	s->trust_gen++;
	if ((rc = qp__mdb(mdb_put(txn, s->sync_db[QP__SDB_REVOKED], &k, &d,
	                          0))) != 0)
		return rc;
	if ((rc = quarantine_key(s, txn, r.key, r.after_seq, &any)) != 0)
		return rc;
	return any ? rebuild(s, txn) : 0;
}

/* Store a revocation, quarantine and rebuild (see store_sync.h). */
int qp_store_revocation_put(qp_store *s, const uint8_t *rev, size_t len)
{
	bufctx b = {rev, len};
	int rc;

	if (rev == NULL)
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0)
		return rc;
	return qp__sync_write(s, rev_put_tx, &b);
}

/* ---- ingest ------------------------------------------------------- */

enum { C_DONE, C_APPLY, C_REVOKED, C_HELD, C_SAME };

typedef struct item {
	qp_delta_hdr hdr;
	int cls;      /* C_* */
	int ok;       /* verified */
	size_t same;  /* C_SAME: index of the identical earlier delta */
	uint64_t after; /* C_REVOKED: the revocation's after_seq */
} item;

typedef struct ingctx {
	const uint8_t *const *deltas;
	const size_t *lens;
	item *it;
	size_t n;
	int *rcs;
} ingctx;

/* Append a verified delta of a revoked key (seq beyond the cut) to its
 * feed with the same chain rules as qp__store_ingest_many, but put its
 * ops in quarantine instead of applying them. */
static int keep_revoked(qp_store *s, qp__tx *t, const uint8_t *buf, size_t len,
                        const qp_delta_hdr *hdr, uint64_t after)
{
	uint8_t key[QP__LOGKEY_LEN], head[QP_HASH_LEN];
	MDB_val k = {sizeof key, key}, d;
	char why[64];
	uint64_t hseq;
	int rc;

	memcpy(key, &hdr->feed, QP__FEED_LEN);
	qp_put_be64(key + QP__FEED_LEN, hdr->seq);
	if ((rc = qp__head_get(s, t->txn, &hdr->feed, &hseq, head)) != 0)
		return rc;
	if (hdr->seq <= hseq) {
		rc = mdb_get(t->txn, s->db.log, &k, &d);
		if (rc != 0)
			return rc == MDB_NOTFOUND ? QP_ECORRUPT : qp__mdb(rc);
		if (d.mv_size == len && memcmp(d.mv_data, buf, len) == 0)
			return 0;
		return qp__store_keep_fork(s, t->txn, buf, len, hdr, QP_EFORK);
	}
	if ((rc = qp__store_has_fork(s, t->txn, (const uint8_t *)&hdr->feed)) != 0)
		return rc > 0 ? QP_EFORK : rc;
	if (hdr->seq > hseq + 1)
		return QP_ESEQ;
	if (memcmp(hdr->prev, head, QP_HASH_LEN) != 0)
		return qp__store_keep_fork(s, t->txn, buf, len, hdr, QP_ECHAIN);
	d.mv_size = len;
	d.mv_data = (void *)buf;
	rc = qp__log_put(t->txn, &s->db, &k, &d);
	if (rc != 0)
		return rc == QP_EEXIST ? QP_ECORRUPT : rc;
	qp_delta_hash(buf, len, head);
	if ((rc = qp__head_put(s, t->txn, &hdr->feed, hdr->seq, head)) != 0)
		return rc;
	revoked_reason(why, sizeof why, after);
	return quarantine_delta(t, buf, len, &hdr->feed, hdr->seq, why);
}

static int revoked_tx(qp_store *s, MDB_txn *txn, void *ctx)
{
	ingctx *g = ctx;
	qp__tx t;
	int rc;

	if ((rc = qp__tx_init(&t, txn, &s->db)) != 0)
		return rc;
	for (size_t i = 0; i < g->n; i++) {
		if (g->it[i].cls != C_REVOKED)
			continue;
		g->rcs[i] = keep_revoked(s, &t, g->deltas[i], g->lens[i],
		                         &g->it[i].hdr, g->it[i].after);
		if (qp__store_fatal(g->rcs[i]))
			return g->rcs[i];
	}
	return 0;
}

static int same_delta(const ingctx *g, size_t i, size_t j)
{
	return g->it[j].ok && g->it[j].hdr.seq == g->it[i].hdr.seq &&
	       g->lens[j] == g->lens[i] &&
	       memcmp(g->deltas[j], g->deltas[i], g->lens[i]) == 0;
}

/* Sort the verified deltas: refused (untrusted), already held, repeated
 * within the call, revoked beyond the cut, or to apply. */
static int classify(qp_store *s, ingctx *g, char (*whys)[QP_ERRMSG_LEN])
{
	uint8_t key[QP__LOGKEY_LEN];
	char last_why[QP_ERRMSG_LEN];
	const item *last = NULL;
	MDB_val k = {sizeof key, key}, d;
	MDB_txn *txn;
	int rc = qp__sync_read(s, &txn), last_rc = 0;

	if (rc != 0)
		return rc;
	for (size_t i = 0; i < g->n; i++) {
		item *it = &g->it[i];
		char *why = whys != NULL ? whys[i] : NULL;
		size_t wl = whys != NULL ? QP_ERRMSG_LEN : 0;
		if (!it->ok)
			continue;
		for (size_t j = 0; j < i && it->cls != C_SAME; j++) {
			if (same_delta(g, i, j)) {
				it->cls = C_SAME;
				it->same = j;
			}
		}
		if (it->cls == C_SAME)
			continue;
		/* A batch is mostly one feed: check each feed once. */
		if (last != NULL && memcmp(&last->hdr.feed, &it->hdr.feed,
		                           sizeof(qp_feed)) == 0) {
			rc = last_rc;
			if (rc != 0 && why != NULL)
				memcpy(why, last_why, QP_ERRMSG_LEN);
		} else {
			last_why[0] = '\0';
			rc = trusted_tx(s, txn, it->hdr.feed.author,
			                it->hdr.feed.org, last_why,
			                sizeof last_why);
			if (why != NULL)
				memcpy(why, last_why, QP_ERRMSG_LEN);
			last = it;
			last_rc = rc;
		}
		if (rc == QP_EAUTH) {
			g->rcs[i] = rc;
			it->cls = C_DONE;
			continue;
		}
		if (rc != 0)
			goto out;
		memcpy(key, &it->hdr.feed, QP__FEED_LEN);
		qp_put_be64(key + QP__FEED_LEN, it->hdr.seq);
		rc = mdb_get(txn, s->db.log, &k, &d);
		if (rc == 0 && d.mv_size == g->lens[i] &&
		    memcmp(d.mv_data, g->deltas[i], g->lens[i]) == 0) {
			it->cls = C_HELD;
			continue;
		}
		if (rc != 0 && rc != MDB_NOTFOUND) {
			rc = qp__mdb(rc);
			goto out;
		}
		rc = revoked_get(s, txn, s->sync_db[QP__SDB_REVOKED],
		                 it->hdr.feed.author, &it->after);
		if (rc < 0)
			goto out;
		it->cls = rc == 1 && it->hdr.seq > it->after ? C_REVOKED
		                                             : C_APPLY;
		if (it->cls == C_REVOKED && why != NULL)
			revoked_reason(why, wl, it->after);
	}
	rc = 0;
out:
	mdb_txn_abort(txn);
	return rc;
}

/* Store and apply the deltas to apply through the store's own ingest, in
 * one commit; then append the revoked ones (if any) in a second. */
static int store_all(qp_store *s, ingctx *g)
{
	const uint8_t **ds = qp_xcalloc(g->n, sizeof(*ds));
	size_t *ls = qp_xcalloc(g->n, sizeof(*ls)), *at;
	int *rs = qp_xcalloc(g->n, sizeof(*rs)), rc = 0, revoked = 0;
	size_t m = 0;

	at = qp_xcalloc(g->n, sizeof(*at));
	for (size_t i = 0; i < g->n; i++) {
		if (g->it[i].cls == C_REVOKED)
			revoked = 1;
		if (g->it[i].cls != C_APPLY)
			continue;
		ds[m] = g->deltas[i];
		ls[m] = g->lens[i];
		at[m++] = i;
	}
	if (m > 0) {
		rc = qp__store_ingest_many(s, ds, ls, m, rs);
		for (size_t j = 0; j < m; j++)
			g->rcs[at[j]] = rs[j];
	}
	if (rc == 0 && revoked)
		rc = qp__sync_write(s, revoked_tx, g);
	free(ds);
	free(ls);
	free(rs);
	free(at);
	return rc;
}

/* Ingest deltas with the trust check (see store_sync.h). */
int qp_store_ingest(qp_store *s, const uint8_t *const *deltas,
                    const size_t *lens, size_t n, int *rcs,
                    char (*whys)[QP_ERRMSG_LEN], size_t *dups)
{
	ingctx g = {deltas, lens, NULL, n, rcs};
	size_t nd = 0;
	int rc;

	if (n > 0 && (deltas == NULL || lens == NULL || rcs == NULL))
		return QP_EINVAL;
	if ((rc = qp__sync_ready(s)) != 0)
		return rc;
	if (dups != NULL)
		*dups = 0;
	if (n == 0)
		return 0;
	g.it = qp_xcalloc(n, sizeof(*g.it));
	for (size_t i = 0; i < n; i++) {
		if (whys != NULL)
			whys[i][0] = '\0';
		rcs[i] = deltas[i] == NULL
		             ? QP_EINVAL
		             : qp_delta_verify(deltas[i], lens[i], &g.it[i].hdr);
		g.it[i].ok = rcs[i] == 0;
		g.it[i].cls = C_DONE;
	}
	if ((rc = classify(s, &g, whys)) == 0)
		rc = store_all(s, &g);
	if (rc != 0) {
		for (size_t i = 0; i < n; i++)
			rcs[i] = rc;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		item *it = &g.it[i];
		if (it->cls == C_SAME) {
			rcs[i] = rcs[it->same];
			if (whys != NULL)
				memcpy(whys[i], whys[it->same], QP_ERRMSG_LEN);
		}
		if (rcs[i] == 0 && (it->cls == C_HELD || it->cls == C_SAME))
			nd++;
		if (rcs[i] != 0 && whys != NULL && whys[i][0] == '\0') {
			if (it->ok)
				qp_fmt(whys[i], QP_ERRMSG_LEN, "seq %llu: %s",
				       (unsigned long long)it->hdr.seq,
				       qp_strerror(rcs[i]));
			else
				qp_fmt(whys[i], QP_ERRMSG_LEN, "delta: %s",
				       qp_strerror(rcs[i]));
		}
	}
	if (dups != NULL)
		*dups = nd;
out:
	free(g.it);
	return rc;
}

/* Trust generation (see store_sync.h). */
uint64_t qp_store_trust_gen(const qp_store *s)
{
	return s->trust_gen;
}
