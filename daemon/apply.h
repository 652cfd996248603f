/*
 * apply.h - internal to the store (store.c, store_write.c, store_verify.c,
 * apply.c): the store handle, helpers shared by those files, the
 * record-state codec and the function that merges one op into the derived
 * state (records, indexes, conflicts).
 *
 * The same apply path serves the local write path, the ingest of other
 * authors' deltas and the rebuild done by qp_store_verify, so it never
 * assumes an op was made on this node.  Merge is per-field last-writer-wins
 * by (hlc, author): it is commutative, so any arrival order of the same ops
 * gives the same record state, byte for byte (the digest depends on it).
 *
 * Record state (msgpack map, keys sorted at every level):
 *   "r"  the record: id, kind, org and the fields currently held
 *   "f"  field -> [hlc, author16, base] of the value that won (kept for a
 *        removed field too, so a late older value cannot resurrect it)
 *   "c"  hlc of the create op, "a" its author key (64 hex); absent until a
 *        create was applied (an update may arrive first)
 *   "u"  largest hlc of any op applied
 *   "v"  void reason, "vh" its hlc, "vb" its base, "va" its author16 (of
 *        the void that won: the latest); absent unless voided
 * author16 is the first 8 bytes of the author key in hex (tie-break).
 * Conflict counts are not part of the state: which concurrent edits are
 * flagged can depend on arrival order, and the digest must not.
 *
 * Functions here return 0, a QP_E* code, or QP__EMAPFULL (map full: the
 * caller aborts, grows the map and redoes its transaction).
 */
#ifndef QP_APPLY_H
#define QP_APPLY_H

#include <jansson.h>
#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "delta.h"
#include "geo.h"
#include "hlc.h"
#include "lots.h"
#include "schema.h"
#include "uuid.h"

/* Internal only: never returned by a qp_store_* function. */
#define QP__EMAPFULL (-1900)

#define QP__FEED_LEN   (QP_KEY_LEN + QP_UUID_LEN) /* author key + org */
#define QP__LOGKEY_LEN (QP__FEED_LEN + 8)         /* feed + seq */
#define QP__HEAD_LEN   (8 + QP_HASH_LEN)          /* seq + hash */
#define QP__QKEY_LEN   (QP__LOGKEY_LEN + 4)       /* log key + op index */
#define QP__KEY_MAX    480 /* longest key written (LMDB's default limit: 511) */
#define QP__ALTKEY_MAX 511 /* a natural key's other holders (apply.c) */
#define QP__KIND_LEN   24
#define QP__VOID_MAX   1000 /* bytes of a local void reason */
/* The store writes zeros at least this far ahead of its last page while
 * the disk has room (store.c), so a commit that fails with less free
 * space than this is put down to a full disk (store_write.c). */
#define QP__PREFILL_CHUNK (8u << 20)

/* Every named database of the environment, opened once at qp_store_open. */
typedef struct qp__dbs {
	MDB_dbi log, feeds, records, idx_kind, idx_key, conflicts, quarantine,
	    meta, forks;
} qp__dbs;

struct qp_store {
	MDB_env *env;
	qp__dbs db;
	uint8_t pk[QP_KEY_LEN];
	uint8_t sk[QP_SKEY_LEN];
	qp_hlc hlc; /* in memory; persisted in meta with each write */
	qp_uuid_gen ugen;
	MDB_dbi sync_db[5]; /* store_sync.c's databases, opened on first use */
	int sync_open;      /* sync_db holds them */
	uint32_t upgraded_from; /* opened a store of this older format (0: */
	uint64_t upgrade_ns;    /* none) and brought it up to date in this */
	unsigned psize; /* LMDB page size */
	off_t filled;   /* the data file is known written up to here */
	qp_geo *geo;    /* geometry checker (GEOS context: this thread's) */
	qp_geo_opts geo_opts; /* its thresholds (qp_store_set_geo_opts) */
	qp_lots_cfg lots_cfg; /* yields, tolerance (qp_store_set_lots_cfg) */
	int copy;           /* the data file is not the one last recorded */
	uint64_t trust_gen; /* bumped when certs, revocations or chain change */
	uint64_t commits;   /* durable commits of qp_store_write */
	uint64_t commit_ns; /* time spent in them (qp_store_commit_time) */
	uint8_t (*scope)[QP_UUID_LEN]; /* orgs local writes may go to, when */
	size_t nscope;                 /* scoped (qp_store_set_scope) */
	int scoped;
};

#define QP__MAP_RETRIES 40 /* map doublings before a transaction gives up */

/* A transaction and what the apply path needs alongside it. */
typedef struct qp__tx {
	MDB_txn *txn;
	const qp__dbs *db;
	int conflicts_maybe; /* the conflicts database may hold entries */
} qp__tx;

typedef struct qp_store qp_store;

/* Store helpers (store.c).  qp__store_txn_begin adopts a map grown by
 * another process; qp__store_grow doubles the map (no transaction of this
 * process may be active); qp__store_hlc_load/save read (observe) and write
 * the persisted clock; qp__head_get/put read and write a feed's head (seq
 * 0 and a zero hash when the feed is new); qp__read_begin starts a
 * read-only transaction and fills t; qp__entries counts a database's
 * entries (0 on error); qp__digest_db hashes every key and value of dbi in
 * key order, each framed by its length, and counts them (count may be
 * NULL). */
int qp__store_txn_begin(qp_store *s, MDB_txn *parent, unsigned flags,
                        MDB_txn **txn);
int qp__store_grow(qp_store *s);
int qp__store_hlc_load(qp_store *s, MDB_txn *txn);
int qp__store_hlc_save(qp_store *s, MDB_txn *txn);
int qp__head_get(qp_store *s, MDB_txn *txn, const qp_feed *feed, uint64_t *seq,
                 uint8_t hash[QP_HASH_LEN]);
int qp__head_put(qp_store *s, MDB_txn *txn, const qp_feed *feed, uint64_t seq,
                 const uint8_t hash[QP_HASH_LEN]);
int qp__read_begin(qp_store *s, qp__tx *t, MDB_txn **txn);
size_t qp__entries(MDB_txn *txn, MDB_dbi dbi);
int qp__digest_db(MDB_txn *txn, MDB_dbi dbi, uint8_t out[QP_HASH_LEN],
                  size_t *count);

/* Counters kept in meta so that status is O(1) (store.c): "n:" kind ->
 * be64 records of that kind (those in idx_kind), "log_bytes" -> be64 bytes
 * of the log's deltas.  They change in the transaction that changes what
 * they count, so they hold exactly when it commits.  qp__kind_count_add
 * counts n more records of kind, qp__kind_count_get reads the count;
 * qp__log_put appends delta d at key k of the log (QP_EEXIST when held)
 * and counts its bytes, which qp__log_bytes_get reads and
 * qp__log_bytes_set sets (the upgrade of a store made before the
 * counters).  qp__state_clear empties records, idx_kind, idx_key and
 * conflicts and zeroes the record counts, for a rebuild from the log. */
int qp__kind_count_add(MDB_txn *txn, const qp__dbs *db, const char *kind,
                       uint64_t n);
int qp__kind_count_get(MDB_txn *txn, const qp__dbs *db, const char *kind,
                       uint64_t *n);
int qp__state_clear(qp_store *s, MDB_txn *txn);
int qp__log_put(MDB_txn *txn, const qp__dbs *db, MDB_val *k, MDB_val *d);
int qp__log_bytes_get(MDB_txn *txn, const qp__dbs *db, uint64_t *n);
int qp__log_bytes_set(MDB_txn *txn, const qp__dbs *db, uint64_t n);
/* Records of kind counted from idx_kind itself (O(records of kind)). */
int qp__kind_recount(MDB_txn *txn, const qp__dbs *db, const char *kind,
                     uint64_t *n);
/* Bytes of the log's deltas counted from the log itself (O(deltas)). */
int qp__log_bytes_recount(MDB_txn *txn, const qp__dbs *db, uint64_t *n);

/* The EUDR geometry checks (geo.h) of a record rec of kind (a name): a
 * plot's "geometry" with its "area_ha" and "accuracy_m" when present, a
 * session's "place" (which must be a Point).  Returns 1 when the record
 * has nothing to check (other kinds, a session without place); 0 with *res
 * filled, *path set to the message prefix ("plot.geometry",
 * "session.place") and, when fixed is non-NULL, *fixed a new reference to
 * the geometry with its winding fixed (NULL when it needed none); or
 * QP_EGEOM / QP_ETOOBIG / QP_EINVAL with one line in err.  Used by the
 * write path (refuse, store the fixed geometry) and by qp_store_get
 * (measured area and warnings, derived from the stored geometry, so every
 * node and a rebuild agree without keeping them in the state). */
int qp__geo_check(qp_store *s, const char *kind, const json_t *rec,
                  qp_geo_result *res, const char **path, json_t **fixed,
                  char *err, size_t errlen);

/* Map an LMDB return code: 0, QP_ENOTFOUND, QP_EEXIST, QP__EMAPFULL,
 * -ENOSPC (the disk is full), else QP_ESTORE. */
int qp__mdb(int rc);

/* Is rc a failure of the store itself (storage, a full disk or map,
 * memory, corruption), as opposed to a refusal of what was written? */
int qp__store_fatal(int rc);

/* Set t->conflicts_maybe from the conflicts database's entry count. */
int qp__tx_init(qp__tx *t, MDB_txn *txn, const qp__dbs *db);

/* Canonical msgpack of v: object keys sorted (bytewise) at every level.
 * *out is malloc'd (caller frees).  Errors: QP_EINVAL. */
int qp__state_encode(const json_t *v, char **out, size_t *len);

/* Load and decode the state of record id (36-char text).  *state is a new
 * reference.  Errors: QP_ENOTFOUND, QP_ECORRUPT, storage codes. */
int qp__state_get(qp__tx *t, const char *id, json_t **state);

/* The kind of record id, into kind (QP__KIND_LEN bytes), without decoding
 * the whole state.  Errors: QP_ENOTFOUND, QP_ECORRUPT, storage codes. */
int qp__state_kind(qp__tx *t, const char *id, char kind[QP__KIND_LEN]);
/* Field name of record id (a non-empty string of fewer than cap bytes)
 * into out, the same way.  Errors: QP_ENOTFOUND (no such record, or no
 * such string field), QP_ECORRUPT, storage codes. */
int qp__state_str(qp__tx *t, const char *id, const char *name, char *out,
                  size_t cap);
/* Its kind, its org (when org is not NULL) and whether it is voided (when
 * voided is not NULL), the same way.  Errors as qp__state_kind. */
int qp__state_peek(qp__tx *t, const char *id, char kind[QP__KIND_LEN],
                   char org[QP_UUID_STRLEN + 1], int *voided);

/* The natural key of rec ("dni\0<org>\0<dni>", "ruc\0<ruc>", and for
 * attendance, scoped by session (schema.h), "producer\0<session>\0<id>")
 * in out[0..*len), when k has one and rec holds it as a string that fits.
 * Returns 1 when a key was written, else 0.  out holds QP__KEY_MAX bytes. */
int qp__natkey(const qp_kind *k, const json_t *rec, char *out, size_t *len);

/* Id (37 bytes) holding natural key key[0..len).  Errors: QP_ENOTFOUND,
 * storage codes. */
int qp__natkey_owner(qp__tx *t, const char *key, size_t len, char *id);

/* Key of the lot-use index entry (in idx_key): "in" \0 lot \0 event, or
 * with event NULL the prefix of every entry of lot.  Returns its length, or
 * 0 when lot is not a UUID. */
#define QP__USEKEY_LEN (3 + 2 * (QP_UUID_STRLEN + 1))
size_t qp__use_key(const char *lot, const char *event,
                   char key[QP__USEKEY_LEN]);

/* Merge op, written by feed's author into feed's org, into the derived
 * state.  When checked is zero the op is first checked on its own (kind
 * known, fields known, append-only rule, a create's record valid in form);
 * the local write path passes 1 for ops it validated fully.  Returns 0,
 * QP_EVALID with the reason in why (nothing was written: the caller
 * quarantines the op), or a storage code. */
int qp__apply_op(qp__tx *t, const qp_feed *feed, const qp_op *op, int checked,
                 char *why, size_t whylen);

/* Keep op (NULL: the whole delta body) of delta feed/seq in quarantine
 * with reason, at op index idx. */
int qp__quarantine(qp__tx *t, const qp_feed *feed, uint64_t seq, uint32_t idx,
                   const qp_op *op, const char *reason);

/* Apply every op of a verified delta (hdr from qp_delta_verify); ops that
 * cannot be applied, or an undecodable body, go to quarantine.  *nops (may
 * be NULL) gets the number of ops decoded.  Errors: storage codes,
 * QP_ENOMEM. */
int qp__apply_delta(qp__tx *t, const uint8_t *buf, size_t len,
                    const qp_delta_hdr *hdr, size_t *nops);

/* Number of conflict entries held for record id. */
int qp__conflict_count(qp__tx *t, const char *id, size_t *n);
/* 1 when field of record id has conflicting values kept, 0 when not, or a
 * storage code. */
int qp__conflict_field(qp__tx *t, const char *id, const char *field);

/* Whether record id (voided) has field values kept for review against its
 * void: written by someone who had not seen the void, unseen by the
 * voider.  1, 0, or a negative code. */
int qp__void_conflicted(qp__tx *t, const char *id);

/* The edited field of a conflicts key's field part when it is a void
 * conflict ("void:" field, see apply.c), else NULL. */
const char *qp__void_conflict_of(const char *key_field);

#endif
