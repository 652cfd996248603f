/*
 * sync.h - the sync exchange: the messages two nodes trade inside an
 * established channel (handshake.h), and the version-vector logic that
 * decides what each side sends.  Pure: byte buffers in, byte buffers out.
 *
 * One message is the plaintext of one qp_channel message.  The exchange:
 * each side sends its version vector (one or more VECTOR messages, the last
 * with more = false), then the deltas the other side lacks, oldest first
 * within each feed, in DELTAS batches; the receiver verifies and commits
 * each batch durably and answers with an ACK; CERTS carries the
 * certificates of the authors of the deltas that follow (so the receiver
 * can tell they were certified by its hub); REVOCATIONS carries the hub's
 * revocation list; CHAIN, from a hub to a node that dialled it, carries
 * the hub's own role=hub certificate and those of the hubs above it, from
 * the bottom up (so a regional hub's tablets can trust what the national
 * hub certified); DONE says a side has nothing more to send; ERROR
 * explains why a side gives up.  An interrupted sync resumes from the
 * vectors, so nothing acked is ever sent again.
 *
 * Encoding: every message is one msgpack array whose first element is the
 * message type and whose second is QP_SYNC_VERSION.  Binary fields are
 * msgpack bin.  The encoding is canonical: every integer, length and array
 * header takes its shortest msgpack form (as msgpack-c packs them) and
 * vector entries are in strictly ascending feed order, so a message that
 * decodes re-encodes to the same bytes.  Decoding refuses anything else.
 *
 *   VECTOR      [1, ver, more:bool, entries]
 *   DELTAS      [2, ver, [delta:bin, ...]]
 *   ACK         [3, ver, received:uint, entries]
 *   REVOCATIONS [4, ver, [revocation:bin, ...]]
 *   DONE        [5, ver]
 *   ERROR       [6, ver, code:int, reason:str]
 *   CERTS       [7, ver, [certificate:bin, ...]]
 *   CHAIN       [8, ver, [certificate:bin, ...]]
 *
 *   entries     [[feed:bin 48, seq:uint], ...]: feed is the author key
 *               (32 bytes) followed by the org id (16 bytes), the layout of
 *               qp_feed and of the store's feed keys; feeds strictly
 *               ascending (memcmp order); at most QP_SYNC_VECTOR_MAX.
 *               VECTOR: seq is the highest contiguous seq the sender holds
 *               (0 is allowed and means the same as an absent feed).
 *               ACK: seq is the highest seq of that feed the receiver has
 *               now durably committed.
 *   more        VECTOR: true when another VECTOR message follows (a hub
 *               may hold 100k feeds: it splits its vector).
 *   received    ACK: how many deltas the batch being acknowledged held.
 *   delta       the exact signed bytes of one delta (delta.h),
 *               QP_SYNC_DELTA_MIN..QP_DELTA_MAX bytes; 1..QP_SYNC_BATCH_MAX
 *               per message and together at most QP_SYNC_BATCH_BYTES,
 *               except that a batch of one delta may hold any delta up to
 *               QP_DELTA_MAX.  They are not verified here: the receiver
 *               calls qp_delta_verify on each.
 *   revocation  the signed bytes of one revocation (cert.h), exactly
 *               QP_REV_LEN bytes; 0..QP_SYNC_REV_MAX per message; not
 *               verified here.
 *   certificate the signed bytes of one certificate (cert.h),
 *               QP_CERT_MIN..QP_CERT_MAX bytes; 0..QP_SYNC_CERTS_MAX per
 *               message (CHAIN: 0..QP_SYNC_CHAIN_MAX); not verified here.
 *   code        a negative QP_E* value (>= INT32_MIN).  It is the peer's
 *               word: report it, never act on it as a local failure.
 *   reason      0..QP_SYNC_WHY_MAX-1 bytes of UTF-8 without control
 *               characters (C0, DEL, C1), so it can be shown on one line.
 *
 * Errors of every decoder: QP_EPROTO (malformed, unknown type, wrong field
 * type or bin size, non-canonical form, entries out of order, trailing
 * bytes), QP_ETOOBIG (a count or size over its limit), QP_EVERSION (another
 * version).  Decoding allocates only after every count was checked against
 * the bytes that remain, so a tiny message claiming a huge count allocates
 * nothing.
 */
#ifndef QP_SYNC_H
#define QP_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "delta.h"
#include "handshake.h"
#include "uuid.h"

#define QP_SYNC_VECTOR  1
#define QP_SYNC_DELTAS  2
#define QP_SYNC_ACK     3
#define QP_SYNC_REVOKES 4
#define QP_SYNC_DONE    5
#define QP_SYNC_ERROR   6
#define QP_SYNC_CERTS   7
#define QP_SYNC_CHAIN   8

#define QP_SYNC_FEED_LEN    (QP_KEY_LEN + QP_UUID_LEN) /* 48 */
#define QP_SYNC_VECTOR_MAX  4096       /* entries per VECTOR or ACK */
#define QP_SYNC_VV_MAX      (1u << 20) /* feeds in one qp_vv */
#define QP_SYNC_BATCH_MAX   512        /* deltas per DELTAS message */
#define QP_SYNC_BATCH_BYTES (1u << 20) /* delta bytes per DELTAS message */
#define QP_SYNC_DELTA_MIN   (QP_DELTA_HDR + QP_DELTA_SIG)
#define QP_SYNC_REV_MAX     4096 /* revocations per message */
#define QP_SYNC_CERTS_MAX   512  /* certificates per message */
#define QP_SYNC_CHAIN_MAX   8    /* hub certificates in a CHAIN */
#define QP_SYNC_WHY_MAX     256  /* reason buffer, NUL included */

/* One feed's seq: a vector entry or an ack. */
typedef struct qp_vv_entry {
	qp_feed feed;
	uint64_t seq;
} qp_vv_entry;

/* A version vector: entries sorted by feed (memcmp of qp_feed, i.e.
 * author then org), each feed at most once.  Zero it or qp_vv_init it
 * before use; free with qp_vv_free.  Read e[0..n) freely; change it only
 * through qp_vv_* so it stays sorted. */
typedef struct qp_vv {
	qp_vv_entry *e; /* owned */
	size_t n;
	size_t cap;
} qp_vv;

/* What one side lacks of one feed: the deltas with from < seq <= to. */
typedef struct qp_vv_range {
	qp_feed feed;
	uint64_t from;
	uint64_t to;
} qp_vv_range;

/* A decoded message.  Views point into the buffer given to
 * qp_sync_decode, which must outlive them; entries, items and lens are
 * owned (qp_sync_msg_free). */
typedef struct qp_sync_msg {
	int type;             /* QP_SYNC_* */
	int more;             /* VECTOR */
	uint64_t received;    /* ACK */
	qp_vv_entry *entries; /* VECTOR, ACK: malloc'd; NULL when none */
	size_t nentries;
	const uint8_t **items; /* DELTAS, REVOCATIONS, CERTS: into buf */
	size_t *lens;          /* item lengths; both malloc'd, NULL if none */
	size_t nitems;
	int code;                     /* ERROR: negative */
	char reason[QP_SYNC_WHY_MAX]; /* ERROR: NUL-terminated */
} qp_sync_msg;

/* "VECTOR", "DELTAS", ... or "unknown".  Static storage. */
const char *qp_sync_type_name(int type);

/* Encode a VECTOR of e[0..n) (n <= QP_SYNC_VECTOR_MAX, feeds strictly
 * ascending; n may be 0) with the flag more.  On success *out is malloc'd
 * (caller frees) and *outlen set.  Errors: QP_EINVAL (NULL e with n > 0,
 * feeds out of order), QP_ETOOBIG, QP_ENOMEM. */
int qp_sync_encode_vector(const qp_vv_entry *e, size_t n, int more,
                          uint8_t **out, size_t *outlen);

/* Encode a DELTAS batch of deltas[i][0..lens[i]), i < n, as the limits
 * above allow (qp_sync_batch_fits).  The bytes are copied, not checked
 * beyond their lengths.  Errors: QP_EINVAL (n == 0, a delta shorter than
 * QP_SYNC_DELTA_MIN), QP_ETOOBIG, QP_ENOMEM. */
int qp_sync_encode_deltas(const uint8_t *const *deltas, const size_t *lens,
                          size_t n, uint8_t **out, size_t *outlen);

/* 1 when a batch already holding n deltas of bytes bytes in all may take
 * one more delta of len bytes, else 0.  A batch always takes its first
 * delta (up to QP_DELTA_MAX). */
int qp_sync_batch_fits(size_t n, size_t bytes, size_t len);

/* Encode an ACK of e[0..n) (as for VECTOR) and the received count.
 * Errors as qp_sync_encode_vector. */
int qp_sync_encode_ack(const qp_vv_entry *e, size_t n, uint64_t received,
                       uint8_t **out, size_t *outlen);

/* Encode REVOCATIONS of revs[0..n), each QP_REV_LEN bytes (n may be 0).
 * Errors: QP_EINVAL, QP_ETOOBIG (n > QP_SYNC_REV_MAX), QP_ENOMEM. */
int qp_sync_encode_revocations(const uint8_t *const *revs, size_t n,
                               uint8_t **out, size_t *outlen);

/* Encode CERTS of certs[i][0..lens[i]), i < n (n may be 0), each
 * QP_CERT_MIN..QP_CERT_MAX bytes, copied, not verified.  Errors: QP_EINVAL
 * (a length out of range), QP_ETOOBIG (n > QP_SYNC_CERTS_MAX),
 * QP_ENOMEM. */
int qp_sync_encode_certs(const uint8_t *const *certs, const size_t *lens,
                         size_t n, uint8_t **out, size_t *outlen);

/* Encode CHAIN the same way (n <= QP_SYNC_CHAIN_MAX, else QP_ETOOBIG). */
int qp_sync_encode_chain(const uint8_t *const *certs, const size_t *lens,
                         size_t n, uint8_t **out, size_t *outlen);

/* Encode DONE.  Errors: QP_EINVAL, QP_ENOMEM. */
int qp_sync_encode_done(uint8_t **out, size_t *outlen);

/* Encode ERROR with code (negative) and reason (NULL means
 * ""), sanitised: invalid UTF-8 turns every non-ASCII byte into '?',
 * control characters become '?', and the text is cut to
 * QP_SYNC_WHY_MAX-1 bytes at a character boundary.  Errors: QP_EINVAL,
 * QP_ENOMEM. */
int qp_sync_encode_error(int code, const char *reason, uint8_t **out,
                         size_t *outlen);

/* Encode a message as decoded (m->type picks the fields used).  A message
 * qp_sync_decode returned encodes to the bytes it was decoded from.
 * Errors: those of the encoder for m->type; QP_EINVAL for another type. */
int qp_sync_encode(const qp_sync_msg *m, uint8_t **out, size_t *outlen);

/* Decode buf[0..len) (at most QP_CHANNEL_MAX bytes).  Returns the message
 * type (> 0) and fills *out, whose views point into buf; or a negative
 * code (see above) leaving *out untouched. */
int qp_sync_decode(const uint8_t *buf, size_t len, qp_sync_msg *out);

/* Free what a decoded message owns and zero it.  Accepts NULL. */
void qp_sync_msg_free(qp_sync_msg *m);

/* Compare two feeds in vector order (memcmp of author, then org). */
int qp_feed_cmp(const qp_feed *a, const qp_feed *b);

/* Make vv empty (no allocation). */
void qp_vv_init(qp_vv *vv);

/* Free the entries and make vv empty again.  Accepts NULL. */
void qp_vv_free(qp_vv *vv);

/* The seq vv holds for feed, 0 when absent. */
uint64_t qp_vv_get(const qp_vv *vv, const qp_feed *feed);

/* Set feed's seq to exactly seq (adding the feed when absent; appending
 * in feed order is O(1)).  Errors: QP_EINVAL, QP_ETOOBIG (a new feed when
 * vv already holds QP_SYNC_VV_MAX). */
int qp_vv_set(qp_vv *vv, const qp_feed *feed, uint64_t seq);

/* Raise vv to the maximum of itself and e[0..n) per feed (feeds strictly
 * ascending, as decoded VECTOR and ACK messages and qp_vv entries are):
 * absorbs a peer's vector message by message, or an ACK.  Linear in
 * vv->n + n.  On error vv is unchanged.  Errors: QP_EINVAL (order),
 * QP_ETOOBIG (more than QP_SYNC_VV_MAX feeds). */
int qp_vv_merge(qp_vv *vv, const qp_vv_entry *e, size_t n);

/* What theirs lacks of mine: one range per feed of mine whose seq exceeds
 * theirs (absent counts as 0), in feed order, restricted to the feeds
 * whose org is in orgs[0..norgs) when orgs is not NULL (the orgs of the
 * peer's certificate, in any order; norgs 0 then means none).  Equal
 * vectors, or theirs ahead, give nothing.  On success *out is malloc'd
 * (NULL when *nout is 0; caller frees).  Errors: QP_EINVAL. */
int qp_vv_missing(const qp_vv *mine, const qp_vv *theirs,
                  const uint8_t (*orgs)[QP_UUID_LEN], size_t norgs,
                  qp_vv_range **out, size_t *nout);

#endif
