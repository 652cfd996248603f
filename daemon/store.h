/*
 * store.h - the LMDB store of a quipu node.
 *
 * The delta log is the truth; everything else is derived from it and can be
 * rebuilt from it (qp_store_verify proves that it would be the same).
 * Named databases in one environment:
 *
 *   log        feed(48 bytes: author key + org uuid) + seq(be64) -> delta bytes
 *   feeds      feed(48) -> head: seq(be64) + hash(32) of the newest delta
 *   records    id (36-char text) -> record state (msgpack map, see store.c)
 *   idx_kind   kind '\0' org '\0' id -> ""   (lists by kind, by kind + org)
 *   idx_key    "dni|ruc|code" '\0' [org '\0'] value -> id   (natural keys)
 *   conflicts  id '\0' field '\0' hlc(be64) -> msgpack {value, author, hlc}
 *   quarantine feed(48) + seq(be64) + op index(be32) -> msgpack {reason, op}
 *   meta       "hlc" -> be64 last HLC; "schema" -> be32 layout version;
 *              "n:" kind -> be64 records; "log_bytes" -> be64 (apply.h)
 *
 * Writes are durable when qp_store_write returns 0: the LMDB transaction was
 * committed with its sync.  A full map grows the map (doubling) and the
 * transaction is redone; it does not fail the write.
 *
 * One qp_store is used from one thread.  Several processes may open the same
 * store (LMDB's lock file serialises writers), e.g. `quipud --verify`.
 */
#ifndef QP_STORE_H
#define QP_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "delta.h"
#include "geo.h"
#include "lots.h"
#include "schema.h"
#include "uuid.h"

typedef struct qp_store qp_store;

/* Open (creating when absent) the store in directory path, which must exist.
 * The author key pair signs the deltas this node writes.  On success *out
 * is set; close with qp_store_close.  Errors: -errno, QP_ESTORE,
 * QP_EVERSION (store made by a newer schema). */
int qp_store_open(const char *path, const uint8_t pk[QP_KEY_LEN],
		  const uint8_t sk[QP_SKEY_LEN], qp_store **out);
void qp_store_close(qp_store *s); /* accepts NULL */

/* The layout version of the store in path (*format) and the one this
 * build writes (*current), read without opening the store for writing, so
 * a caller can say that qp_store_open is about to bring an older store up
 * to date.  Errors: QP_ENOTFOUND (no store there yet), QP_ECORRUPT,
 * QP_ESTORE. */
int qp_store_format(const char *path, unsigned *format, unsigned *current);

/* A backup of the store in path, made while quipud may be writing to it:
 * the newest committed state, compacted (free pages left out), written to
 * dest/data.mdb, which must not exist yet (dest must).  The copy is synced
 * before this returns, then opened again to count what it holds: *info
 * (may be NULL) gets its deltas, records and size.  Opened as a store, it
 * knows it is a copy (qp_store_is_copy).  On failure nothing is left in
 * dest.  Errors: QP_ENOTFOUND (no store in path), QP_EEXIST (dest already
 * holds a data file), -errno (dest cannot be written), QP_ESTORE. */
typedef struct qp_store_copy_info {
	uint64_t deltas, records, bytes;
} qp_store_copy_info;
int qp_store_copy(const char *path, const char *dest, qp_store_copy_info *info);

/* The newest clock stamp this store has issued or taken from another
 * node (hlc.h): a wall clock well behind it means the device's date is
 * wrong (a tablet whose clock was reset). */
uint64_t qp_store_last_stamp(const qp_store *s);

/* Did qp_store_open bring a store of an older layout up to date (by
 * rebuilding its state from the log)?  Returns 1 with the formats and the
 * time it took, else 0. */
int qp_store_upgraded(const qp_store *s, unsigned *from, unsigned *to,
                      double *seconds);

/* Is this store a copy: a data file other than the one the store last
 * recorded as its own (its device and inode), as after a restore from a
 * backup or a move to another disk?  A copy that joined a hub may sign a
 * seq it already signed before the backup, so the daemon holds local
 * writes until a sync has brought back what the hub holds of its feeds. */
int qp_store_is_copy(const qp_store *s);
/* Record the current data file as the store's own (the copy is settled).
 * Errors: QP_ESTORE. */
int qp_store_copy_settle(qp_store *s);

/* Use o (geo.h; path ignored) for the plot checks' warnings instead of
 * the defaults.  Thresholds only decide warnings, never whether a record
 * is accepted, so nodes with different settings still agree on state. */
void qp_store_set_geo_opts(qp_store *s, const qp_geo_opts *o);

/* Use cfg (lots.h) for the mass balance of lot events written here
 * instead of the built-in yields and tolerance. */
void qp_store_set_lots_cfg(qp_store *s, const qp_lots_cfg *cfg);

/* Limit local writes to records of orgs[0..n): a node that joined a hub
 * holds a certificate for these orgs only, and a record of another org
 * would never leave it.  Such a write is refused (QP_ESCOPE, naming the
 * org).  Called again, it replaces the scope; never called, any org. */
void qp_store_set_scope(qp_store *s, const uint8_t (*orgs)[QP_UUID_LEN],
                        size_t n);

/* One write in a request. */
typedef struct qp_write {
	qp_op_type type;
	/* QP_OP_CREATE: the record as given by the user: must hold "kind" (or
	 * kind is set below) and "org" (except org records); "id" optional
	 * (made here when absent).  Borrowed. */
	json_t *rec;
	const char *kind;   /* create: kind name */
	const char *id;     /* update/void: target record id */
	json_t *changes;    /* update: object of changed fields; a null value
			     * removes an optional field.  Borrowed. */
	const char *reason; /* void: non-empty reason */
} qp_write;

/* The writes of one client request: accepted or refused as a whole. */
typedef struct qp_wgroup {
	qp_write *writes;
	size_t n;
	/* Results, set by qp_store_write. */
	int rc;                      /* 0 accepted, else QP_EVALID etc. */
	size_t failed;               /* index of the write that failed */
	size_t twin;                 /* when it gave a natural key an earlier
				      * write of the group gave too: 1 + that
				      * write's index, else 0 */
	char err[QP_ERRMSG_LEN];     /* one line: "producer.dni: ..." */
	char (*ids)[QP_UUID_STRLEN + 1]; /* n ids on success; malloc'd here,
					  * caller frees */
	/* What the store changed in an accepted write before storing it (a
	 * polygon's ring winding turned to RFC 7946's): NULL, or an array of
	 * {"index": i, "note": text}.  Freed by qp_wgroup_clear. */
	json_t *notes;
} qp_wgroup;

/* Apply groups[0..n) in one durable transaction.  Each group is validated
 * against the schema and the records already held (references, natural
 * keys) and applied in a nested transaction: a refused group changes
 * nothing.  The ops of all accepted groups become one signed delta per
 * organisation, appended to this node's feeds; one commit, one fsync.
 * Returns 0 when the commit succeeded (each group's rc tells whether it was
 * accepted), or a negative code when the transaction could not be
 * committed, in which case no group was applied and every group's rc is set
 * to that code. */
int qp_store_write(qp_store *s, qp_wgroup *groups, size_t n);

/* Free what qp_store_write allocated in a group (ids). */
void qp_wgroup_clear(qp_wgroup *g);

/* The durable commits that qp_store_write has made since the store was
 * opened, and the wall time spent in them (LMDB's page writes and syncs,
 * without the checks and signing before), for `quipu status`. */
void qp_store_commit_time(const qp_store *s, uint64_t *commits,
                          uint64_t *ns);

/* Read one record.  *rec gets the record object (id, kind, org, fields) and,
 * when meta is non-NULL, *meta gets {"created": iso, "updated": iso,
 * "version": hlc, "author": hex, "voided": reason or absent, "conflicts": n}.
 * Voided records are returned (with meta.voided).  New references; caller
 * decrefs.  Errors: QP_ENOTFOUND, QP_ECORRUPT. */
int qp_store_get(qp_store *s, const char *id, json_t **rec, json_t **meta);

/* The kind of record id (at most QP_STORE_KIND_LEN bytes with its NUL)
 * and whether it is voided, without decoding the record.  Errors:
 * QP_ENOTFOUND (also for a malformed id), QP_ECORRUPT, storage codes. */
#define QP_STORE_KIND_LEN 24
int qp_store_kind(qp_store *s, const char *id, char kind[QP_STORE_KIND_LEN],
                  int *voided);

/* How many ops are in quarantine and how many deltas are kept as forks
 * (cheap: counts of two databases).  Errors: storage codes. */
int qp_store_held_apart(qp_store *s, uint64_t *quarantine, uint64_t *forks);

/* List records of kind (NULL: every kind), restricted to org when non-NULL,
 * in id order, starting after id `after` (NULL: from the start), at most
 * limit records (0: no limit).  Voided records are skipped unless
 * with_voided; then each carries its void reason as member "voided".
 * *out gets a new JSON array; *next (37 bytes) gets the last
 * id returned when more may follow, else "". */
int qp_store_list(qp_store *s, const char *kind, const char *org,
		  const char *after, size_t limit, int with_voided,
		  json_t **out, char next[QP_UUID_STRLEN + 1]);

/* Statistics: {"records": {kind: n...}, "deltas": n, "log_bytes": bytes of
 * all deltas, "feeds": n, "conflicts": n, "quarantine": n, "forks": n,
 * "map_size": bytes, "map_used": bytes, "key": hex of this node's key,
 * "feeds_detail": [{"author","org","seq"}...]}.  New reference.  The cost
 * grows with the number of feeds only, not with records or deltas (the
 * counts are kept as the store changes); the digest, which must read
 * every record, is qp_store_digest. */
int qp_store_stats(qp_store *s, json_t **out);

/* Re-check every delta (signature, hash link to its predecessor, seq
 * continuity) and rebuild the derived state from the log inside a
 * transaction that is then aborted, comparing its digest with the live
 * state.  *report gets {"deltas": n, "ops": n, "records": n, "digest": hex,
 * "rebuilt_digest": hex, "ok": bool, "error": text}.  Returns 0 when all
 * holds; QP_ESIG/QP_ECHAIN/QP_ESEQ/QP_EMISMATCH otherwise (report says
 * where). */
int qp_store_verify(qp_store *s, json_t **report);

/* BLAKE2b-256 digest of the record state (every record's canonical msgpack
 * in id order), as 64 hex characters plus NUL. */
int qp_store_digest(qp_store *s, char out[65]);

#endif
