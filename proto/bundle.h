/*
 * bundle.h - bundle files: deltas carried on a USB stick (`quipu bundle
 * export` / `quipu bundle import`).  Pure: the writer hands its bytes to a
 * caller-supplied callback (a FILE*, an fd, memory), the reader reads a
 * buffer (a mapped or slurped file).
 *
 * Each delta is signed end to end, so a bundle needs no signature of its
 * own and any node may carry any author's deltas.  The trailer's hash only
 * tells a truncated or damaged file from a good one, and says which.
 *
 * Encoding (all integers big-endian):
 *
 *   off  len     field
 *     0    4     magic "QPB1"
 *     4    1     format version (QP_BUNDLE_VERSION = 1)
 *     5   32     creator: the ed25519 key of the node that wrote it
 *    37    8     created_at (Unix seconds)
 *    45    4     number of deltas d
 *    49    4     number of "since" entries k, 0..QP_SYNC_VV_MAX
 *    53  56k     since: the version vector the bundle was made against
 *                (what the receiving side was known to hold; k = 0 when
 *                it holds everything since the start): per entry the feed
 *                (author key 32 + org id 16) and seq (8); feeds strictly
 *                ascending (memcmp order)
 *     .    4     (version 2) number of trust items t, 0..QP_BUNDLE_TRUST_MAX
 *     .   ...    (version 2) t trust items, each a type byte
 *                (QP_BUNDLE_CERT, QP_BUNDLE_REVOCATION), a 4-byte length
 *                (1..QP_BUNDLE_ITEM_MAX) and that many bytes: the signed
 *                certificates and revocations the writer held, so a device
 *                that has not synced since a colleague was enrolled can
 *                still trust the colleague's deltas (each item carries its
 *                issuer's signature; the importer checks it as sync does)
 *     .   ...    d deltas, each a 4-byte length (QP_SYNC_DELTA_MIN ..
 *                QP_DELTA_MAX) followed by that many bytes: the exact
 *                signed bytes of the delta (delta.h), unverified here
 *     .   32     BLAKE2b-256 of every byte before it
 *
 * Reading: qp_bundle_reader_open reads the header, qp_bundle_reader_next
 * hands out each delta as a view into the buffer (the caller verifies it
 * with qp_delta_verify before use), qp_bundle_reader_finish checks that
 * all d deltas and the trailer are there and the hash matches.  Deltas
 * read before a failure are still validly signed: an importer may keep
 * them (salvaging a damaged stick) and report the failure.  Every failure
 * leaves a one-line reason in r->why: "bundle truncated after delta 17 of
 * 40", "bundle checksum mismatch", ...
 */
#ifndef QP_BUNDLE_H
#define QP_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "delta.h"
#include "sync.h"

#define QP_BUNDLE_MAGIC     "QPB1"
#define QP_BUNDLE_VERSION   2 /* written; version 1 (no trust items) is read */
#define QP_BUNDLE_TRUST_MAX 4096 /* trust items in one bundle */
#define QP_BUNDLE_ITEM_MAX  8192 /* bytes of one trust item */
#define QP_BUNDLE_CERT       1
#define QP_BUNDLE_REVOCATION 2
#define QP_BUNDLE_HDR       53 /* bytes before the since entries */
#define QP_BUNDLE_SINCE_LEN (QP_SYNC_FEED_LEN + 8)
#define QP_BUNDLE_TRAILER   32
#define QP_BUNDLE_WHY_MAX   128 /* reason buffer, NUL included */

/* Write buf[0..len) in full.  Returns 0 or a negative code (-errno, or any
 * QP_E*), which the writer returns to its caller. */
typedef int (*qp_bundle_write_fn)(void *ctx, const uint8_t *buf, size_t len);

typedef struct qp_bundle_writer qp_bundle_writer;

/* One trust item: a signed certificate or revocation, as stored. */
typedef struct qp_bundle_item {
	uint8_t type; /* QP_BUNDLE_CERT or QP_BUNDLE_REVOCATION */
	const uint8_t *p;
	size_t len;
} qp_bundle_item;

/* Start a bundle of exactly ndeltas deltas made by creator at created_at,
 * against since (NULL or empty: none), carrying trust[0..ntrust).  The
 * header and the trust items go to fn (with ctx) before this returns.  On
 * success *out is the writer; free it with qp_bundle_writer_free.  Errors:
 * QP_EINVAL (an unknown item type, an empty item), QP_ETOOBIG (since holds
 * more than QP_SYNC_VV_MAX feeds, more than QP_BUNDLE_TRUST_MAX items, an
 * item over QP_BUNDLE_ITEM_MAX), QP_ENOMEM, fn's error (nothing is
 * returned in *out). */
int qp_bundle_writer_open(qp_bundle_write_fn fn, void *ctx,
                          const uint8_t creator[QP_KEY_LEN],
                          uint64_t created_at, uint32_t ndeltas,
                          const qp_vv *since, const qp_bundle_item *trust,
                          size_t ntrust, qp_bundle_writer **out);

/* Append one delta's bytes (copied to fn as they are; not verified).
 * Errors: QP_EINVAL (len below QP_SYNC_DELTA_MIN, or more deltas than
 * announced), QP_ETOOBIG (len above QP_DELTA_MAX), fn's error.  After
 * fn's error the writer is failed: every later call returns that error. */
int qp_bundle_writer_add(qp_bundle_writer *w, const uint8_t *delta, size_t len);

/* Write the trailer.  Errors: QP_EINVAL (fewer deltas than announced,
 * or already finished), fn's error. */
int qp_bundle_writer_finish(qp_bundle_writer *w);

/* Free the writer (it never closes what ctx names).  Accepts NULL. */
void qp_bundle_writer_free(qp_bundle_writer *w);

/* A bundle being read.  Plain struct: the caller owns it; the header
 * fields are valid after a successful qp_bundle_reader_open. */
typedef struct qp_bundle_reader {
	const uint8_t *buf; /* borrowed: must outlive the reader's views */
	size_t len;
	size_t off; /* next byte to read */
	uint8_t version;
	uint8_t creator[QP_KEY_LEN];
	uint64_t created_at;
	uint32_t ndeltas;
	qp_vv since;                 /* owned */
	qp_bundle_item *trust;       /* owned array; items view the buffer */
	size_t ntrust;
	uint32_t read;               /* deltas handed out so far */
	int rc;                      /* sticky failure, or 0 */
	char why[QP_BUNDLE_WHY_MAX]; /* reason of the failure, or "" */
} qp_bundle_reader;

/* Read the header of buf[0..len), and of version 2 its trust items
 * (r->trust, unverified: the caller checks their signatures).  The reader
 * must be freed with qp_bundle_reader_free whatever this returns.  Errors:
 * QP_EPROTO ("not a quipu bundle", "bundle truncated in its header", since
 * entries out of order, an unknown or empty trust item), QP_EVERSION,
 * QP_ETOOBIG (since over QP_SYNC_VV_MAX, trust items over their limits),
 * QP_EINVAL; r->why says which. */
int qp_bundle_reader_open(qp_bundle_reader *r, const uint8_t *buf, size_t len);

/* The next delta: returns 1 with *delta pointing into the buffer and *len
 * set, or 0 after the last of the announced deltas.  Errors: QP_EPROTO
 * (truncated, a length below the minimum), QP_ETOOBIG (a length above
 * QP_DELTA_MAX), QP_EINVAL (reader not open); sticky, with r->why. */
int qp_bundle_reader_next(qp_bundle_reader *r, const uint8_t **delta,
                          size_t *len);

/* Check the rest of the bundle: the deltas not yet read (skipped, their
 * lengths checked), then the trailer: present, last, and the BLAKE2b-256
 * of everything before it.  Returns 0 when the bundle is whole.  Errors
 * as qp_bundle_reader_next, and QP_EPROTO for a short trailer ("bundle
 * truncated in its checksum"), bytes after it or a mismatch ("bundle
 * checksum mismatch"). */
int qp_bundle_reader_finish(qp_bundle_reader *r);

/* Free what the reader owns.  Accepts NULL. */
void qp_bundle_reader_free(qp_bundle_reader *r);

#endif
