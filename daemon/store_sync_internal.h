/*
 * store_sync_internal.h - shared by store_sync.c and store_sync_peer.c
 * (the store's side of sync, see store_sync.h), plus the one hook the
 * store's verify needs from sync.
 */
#ifndef QP_STORE_SYNC_INTERNAL_H
#define QP_STORE_SYNC_INTERNAL_H

#include <lmdb.h>

#include "delta.h"
#include "store.h"

/* Indexes of struct qp_store's sync_db (apply.h). */
enum {
	QP__SDB_CERTS,
	QP__SDB_REVOKED,
	QP__SDB_PEERS,
	QP__SDB_ACKS,
	QP__SDB_KV,
	QP__SDB_N
};

/* Open sync's databases once per store; call first in every public sync
 * function (no transaction of s may be active on the first call).
 * Errors: QP_EINVAL (s NULL), storage codes. */
int qp__sync_ready(qp_store *s);

/* Bring a store of an older layout (store.c's STORE_FORMAT) up to
 * format: rebuild records, indexes, conflicts and counters from the log as
 * a revocation does, count the log's bytes, and record the format, in one
 * transaction.  Takes as long as a rebuild: once per store.  Errors:
 * QP_ESTORE and the replay's codes. */
int qp__store_upgrade(qp_store *s, uint32_t format);

/* Run fn in a write transaction and commit it; on a full map the
 * transaction is aborted, the map grown and fn run again.  Returns fn's
 * error (transaction aborted) or the commit's. */
int qp__sync_write(qp_store *s, int (*fn)(qp_store *, MDB_txn *, void *),
                   void *ctx);

/* Begin a read-only transaction (QP_ESTORE when it cannot be begun). */
int qp__sync_read(qp_store *s, MDB_txn **txn);

/* For qp_store_verify's replay: 1 when the held delta hdr is covered by a
 * revocation (its ops are in quarantine, not in the record state), 0 when
 * not, or a storage code.  txn is any transaction of s. */
int qp__store_revoked(qp_store *s, MDB_txn *txn, const qp_delta_hdr *hdr);

/* Does the forks database hold a delta of this feed (author + org, 48
 * bytes)?  1, 0, or a storage code (store_verify.c). */
int qp__store_has_fork(qp_store *s, MDB_txn *txn, const uint8_t *feed);

/* Keep delta buf (header hdr) in forks under feed + seq + its hash, and
 * return code (QP_EFORK or QP_ECHAIN), or a storage code when it cannot
 * be kept (store_verify.c). */
int qp__store_keep_fork(qp_store *s, MDB_txn *txn, const uint8_t *buf,
                        size_t len, const qp_delta_hdr *hdr, int code);

#endif
