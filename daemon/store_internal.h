/*
 * store_internal.h - parts of the store used by sync, bundles and tests but
 * not by the local API: ingest of other nodes' deltas, raw log access and
 * map sizing.
 *
 * Besides the databases listed in store.h the environment holds
 *   forks   feed(48) + seq(be64) + hash(32) -> delta bytes
 * the second (and any further) validly signed delta claiming a feed and seq
 * already held with other bytes, or one that does not link to the feed's
 * head.  Such a feed is not applied past the fork until it is reviewed.
 */
#ifndef QP_STORE_INTERNAL_H
#define QP_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "delta.h"
#include "store.h"

/* Verify delta[0..len), append it to its feed's log and apply its ops (ops
 * that cannot be applied go to quarantine), in one durable transaction.
 * Idempotent: a delta already held (same feed, seq and bytes) returns 0 and
 * changes nothing.  Errors: QP_EPROTO/QP_ETOOBIG/QP_ESIG (does not verify;
 * nothing kept), QP_ESEQ (seq beyond the feed's head + 1: send the missing
 * deltas first; nothing kept), QP_EFORK (other bytes for a feed and seq
 * already held, kept in forks; or the feed already forked), QP_ECHAIN (prev
 * does not match the feed's head; kept in forks), QP_ESTORE. */
int qp__store_ingest(qp_store *s, const uint8_t *delta, size_t len);

/* The same for n deltas in one transaction and one commit, processed in
 * order (so a feed's deltas may follow one another in one call).  rcs[i]
 * gets each delta's result as above.  Returns 0 when the commit succeeded,
 * else a storage error (nothing was kept and every rcs[i] is that code). */
int qp__store_ingest_many(qp_store *s, const uint8_t *const *deltas,
                          const size_t *lens, size_t n, int *rcs);

/* Copy of the delta at feed/seq of the log into *out (malloc'd, caller
 * frees) and *len.  Errors: QP_ENOTFOUND, QP_ESTORE. */
int qp__store_log_get(qp_store *s, const qp_feed *feed, uint64_t seq,
                      uint8_t **out, size_t *len);

/* Set the LMDB map size now (no transaction may be active).  LMDB never
 * sets it below the space already used.  For tests of map growth.
 * Errors: QP_ESTORE. */
int qp__store_set_mapsize(qp_store *s, size_t bytes);

#endif
