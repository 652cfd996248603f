/*
 * delta.h - ops and signed deltas: the unit of the log.
 *
 * An op is one write to one record: create (all fields), update (changed
 * fields only) or void (withdrawal with a reason).  Ops are grouped into a
 * delta, which belongs to one feed (author key + organisation), is numbered
 * seq 1,2,3... within it, carries the BLAKE2b-256 hash of the feed's previous
 * delta and is signed with the author's ed25519 key.  A delta is kept and
 * forwarded as the exact bytes that were signed; it is never re-encoded.
 *
 * Encoding (all integers big-endian):
 *
 *   off  len  field
 *     0    4  magic "QPD1"
 *     4   32  author ed25519 public key
 *    36   16  org id (UUID bytes)
 *    52    8  seq (>= 1)
 *    60   32  prev: BLAKE2b-256 of the previous delta's full bytes
 *             (all zero for seq 1)
 *    92    8  hlc: largest op HLC in the delta
 *   100    1  flags: bit 0 = body is zstd-compressed
 *   101    4  raw_len: body length after decompression
 *   105    4  body_len: bytes of body that follow
 *   109    n  body: msgpack array of ops (compressed when flag bit 0)
 * 109+n   64  ed25519 signature over bytes [0, 109+n)
 *
 * Op (msgpack array):
 *   [type:uint, id:bin16, kind:str, hlc:uint, base:uint, payload]
 *   create/update: payload is a map of field name -> value (JSON-mapped, see
 *   mpjson.h); void: payload is the reason string.  `base` is the HLC of the
 *   record version the edit was based on (0 for create).
 *
 * Verify before decode: qp_delta_verify checks sizes and the signature using
 * only the fixed header; qp_delta_ops must be called only on verified bytes
 * and still bounds every size (decompressed length, op count, nesting).
 */
#ifndef QP_DELTA_H
#define QP_DELTA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "uuid.h"

#define QP_DELTA_MAGIC "QPD1"
#define QP_DELTA_HDR 109
#define QP_DELTA_SIG 64
#define QP_DELTA_MAX (8u << 20)      /* largest encoded delta */
#define QP_DELTA_MAX_RAW (32u << 20) /* largest decompressed body */
#define QP_DELTA_MAX_OPS 100000
#define QP_KEY_LEN 32   /* ed25519 public key */
#define QP_SKEY_LEN 64  /* ed25519 secret key (libsodium layout) */
#define QP_HASH_LEN 32

#define QP_DELTA_F_ZSTD 0x01

typedef enum qp_op_type {
	QP_OP_CREATE = 1,
	QP_OP_UPDATE = 2,
	QP_OP_VOID = 3,
} qp_op_type;

typedef struct qp_op {
	qp_op_type type;
	uint8_t id[QP_UUID_LEN];
	char kind[24];   /* NUL-terminated kind name */
	uint64_t hlc;
	uint64_t base;
	json_t *fields;  /* create/update: object (owned reference); else NULL */
	char *reason;    /* void: malloc'd reason; else NULL */
} qp_op;

typedef struct qp_feed {
	uint8_t author[QP_KEY_LEN];
	uint8_t org[QP_UUID_LEN];
} qp_feed;

typedef struct qp_delta_hdr {
	qp_feed feed;
	uint64_t seq;
	uint8_t prev[QP_HASH_LEN];
	uint64_t hlc;
	uint8_t flags;
	uint32_t raw_len;
	uint32_t body_len;
} qp_delta_hdr;

/* Release what an op owns (fields, reason); the op struct itself is the
 * caller's.  Accepts NULL. */
void qp_op_clear(qp_op *op);
/* Clear and free an array of n ops from qp_delta_ops.  Accepts NULL. */
void qp_ops_free(qp_op *ops, size_t n);

/* Build and sign a delta holding ops[0..nops) for the given feed.  sk is the
 * author's secret key whose public half must equal feed->author.  The body is
 * zstd-compressed when that makes it smaller.  On success *out is malloc'd
 * (caller frees) and *outlen set.  Errors: QP_EINVAL (no ops, seq 0, key
 * mismatch), QP_ETOOBIG (encoded delta over QP_DELTA_MAX). */
int qp_delta_build(const qp_feed *feed, uint64_t seq,
		   const uint8_t prev[QP_HASH_LEN], const qp_op *ops,
		   size_t nops, const uint8_t sk[QP_SKEY_LEN], uint8_t **out,
		   size_t *outlen);

/* Check the magic, the lengths and the signature of buf[0..len) against the
 * author key in its header, without decoding the body.  On success fills
 * *hdr.  Errors: QP_EPROTO (bad magic or lengths), QP_ETOOBIG, QP_ESIG. */
int qp_delta_verify(const uint8_t *buf, size_t len, qp_delta_hdr *hdr);

/* Decode the ops of a delta that qp_delta_verify accepted.  On success *ops
 * is a malloc'd array of *nops ops (free with qp_ops_free).  Errors:
 * QP_EPROTO, QP_ETOOBIG, QP_ECOMPRESS. */
int qp_delta_ops(const uint8_t *buf, size_t len, qp_op **ops, size_t *nops);

/* The body length after decompression that the header of buf[0..len)
 * claims, not verified: a measure of the work a delta is, for sizing
 * batches.  0 when buf is too short to hold a header. */
size_t qp_delta_raw_size(const uint8_t *buf, size_t len);

/* BLAKE2b-256 of the full delta bytes: the value the next delta's prev holds. */
void qp_delta_hash(const uint8_t *buf, size_t len, uint8_t out[QP_HASH_LEN]);

/* Fresh ed25519 key pair. */
void qp_key_generate(uint8_t pk[QP_KEY_LEN], uint8_t sk[QP_SKEY_LEN]);

/* Initialise libsodium once per process.  Returns 0 or QP_ECRYPTO. */
int qp_crypto_init(void);

#endif
