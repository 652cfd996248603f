/* check_bundle.c - covers proto/bundle.c: bundle files (writer over a
 * callback, reader over a buffer), with real signed deltas. */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "delta.h"
#include "err.h"
#include "suites.h"
#include "sync.h"
#include "util.h"

#define NDELTAS 40
#define NOW     1763899200u

static uint8_t a_pk[QP_KEY_LEN], a_sk[QP_SKEY_LEN];
static uint8_t node_pk[QP_KEY_LEN], node_sk[QP_SKEY_LEN];
static uint8_t *dl[NDELTAS];
static size_t dlen[NDELTAS];

static void setup(void)
{
	uint8_t prev[QP_HASH_LEN] = {0};
	qp_feed feed;
	qp_op op;

	ck_assert_int_eq(qp_crypto_init(), 0);
	qp_key_generate(a_pk, a_sk);
	qp_key_generate(node_pk, node_sk);
	memcpy(feed.author, a_pk, QP_KEY_LEN);
	memset(feed.org, 0x42, QP_UUID_LEN);
	for (size_t i = 0; i < NDELTAS; i++) {
		memset(&op, 0, sizeof(op));
		op.type = QP_OP_VOID;
		memset(op.id, (int)i + 1, QP_UUID_LEN);
		strcpy(op.kind, "lot_event");
		op.hlc = ((uint64_t)NOW * 1000 + i) << 16;
		op.base = op.hlc - 1;
		op.reason =
		    qp_xstrdup("weighed twice at the collection centre");
		ck_assert_int_eq(qp_delta_build(&feed, i + 1, prev, &op, 1,
		                                a_sk, &dl[i], &dlen[i]),
		                 0);
		qp_delta_hash(dl[i], dlen[i], prev);
		qp_op_clear(&op);
	}
}

static void teardown(void)
{
	for (size_t i = 0; i < NDELTAS; i++)
		free(dl[i]);
}

/* A growing memory file; fails with -EIO once `fail_at` bytes were
 * taken (when nonzero). */
typedef struct membuf {
	uint8_t *p;
	size_t n, cap;
	size_t fail_at;
	size_t calls;
} membuf;

static int mem_write(void *ctx, const uint8_t *buf, size_t len)
{
	membuf *m = ctx;

	m->calls++;
	if (m->fail_at != 0 && m->n + len >= m->fail_at)
		return -EIO;
	if (m->n + len > m->cap) {
		m->cap = (m->n + len) * 2;
		m->p = qp_xrealloc(m->p, m->cap);
	}
	memcpy(m->p + m->n, buf, len);
	m->n += len;
	return 0;
}

static qp_feed nfeed(unsigned i)
{
	qp_feed f;

	memset(&f, 0, sizeof(f));
	qp_put_be32(f.author, i);
	f.org[15] = (uint8_t)i;
	return f;
}

/* Write a bundle of the first n test deltas. */
static void write_bundle(membuf *m, size_t n, const qp_vv *since)
{
	qp_bundle_writer *w;

	memset(m, 0, sizeof(*m));
	ck_assert_int_eq(qp_bundle_writer_open(mem_write, m, node_pk, NOW,
	                                       (uint32_t)n, since, NULL, 0, &w),
	                 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(qp_bundle_writer_add(w, dl[i], dlen[i]), 0);
	ck_assert_int_eq(qp_bundle_writer_finish(w), 0);
	qp_bundle_writer_free(w);
}

/* Read a whole bundle; returns the first error (or 0) and how many deltas
 * were handed out, with the reason in why. */
static int read_all(const uint8_t *b, size_t n, size_t *got, char *why)
{
	qp_bundle_reader r;
	const uint8_t *d;
	size_t len;
	int rc;

	*got = 0;
	rc = qp_bundle_reader_open(&r, b, n);
	while (rc == 0 && (rc = qp_bundle_reader_next(&r, &d, &len)) == 1) {
		(*got)++;
		rc = 0;
	}
	if (rc == 0)
		rc = qp_bundle_reader_finish(&r);
	strcpy(why, r.why);
	if (rc == 0)
		ck_assert_str_eq(why, "");
	else
		ck_assert_str_ne(why, "");
	qp_bundle_reader_free(&r);
	return rc;
}

START_TEST(test_roundtrip)
{
	qp_bundle_reader r;
	qp_vv since;
	membuf m;
	const uint8_t *d;
	size_t len, i;
	int rc;

	qp_vv_init(&since);
	for (unsigned k = 0; k < 3; k++) {
		qp_feed f = nfeed(k + 1);
		ck_assert_int_eq(qp_vv_set(&since, &f, 10 * k + 1), 0);
	}
	write_bundle(&m, NDELTAS, &since);
	ck_assert_mem_eq(m.p, "QPB1\x02", 5);
	ck_assert_uint_lt(m.calls, 10); /* small writes were batched */

	ck_assert_int_eq(qp_bundle_reader_open(&r, m.p, m.n), 0);
	ck_assert_uint_eq(r.version, QP_BUNDLE_VERSION);
	ck_assert_mem_eq(r.creator, node_pk, QP_KEY_LEN);
	ck_assert_uint_eq(r.created_at, NOW);
	ck_assert_uint_eq(r.ndeltas, NDELTAS);
	ck_assert_uint_eq(r.since.n, 3);
	ck_assert_mem_eq(r.since.e, since.e, 3 * sizeof(qp_vv_entry));
	for (i = 0; (rc = qp_bundle_reader_next(&r, &d, &len)) == 1; i++) {
		ck_assert_uint_lt(i, NDELTAS);
		ck_assert(d > m.p && d + len < m.p + m.n); /* a view */
		ck_assert_uint_eq(len, dlen[i]);
		ck_assert_mem_eq(d, dl[i], len);
		ck_assert_int_eq(qp_delta_verify(d, len, NULL), 0);
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(i, NDELTAS);
	ck_assert_int_eq(qp_bundle_reader_next(&r, &d, &len), 0);
	ck_assert_int_eq(qp_bundle_reader_finish(&r), 0);
	qp_bundle_reader_free(&r);
	qp_bundle_reader_free(NULL);

	/* finish alone skips (and checks) every delta. */
	ck_assert_int_eq(qp_bundle_reader_open(&r, m.p, m.n), 0);
	ck_assert_int_eq(qp_bundle_reader_finish(&r), 0);
	ck_assert_uint_eq(r.read, NDELTAS);
	qp_bundle_reader_free(&r);
	free(m.p);
	qp_vv_free(&since);
}
END_TEST

START_TEST(test_empty)
{
	qp_bundle_reader r;
	const uint8_t *d;
	membuf m;
	size_t len;
	qp_vv none;

	qp_vv_init(&none);
	for (int v = 0; v < 2; v++) {
		write_bundle(&m, 0, v ? &none : NULL);
		ck_assert_uint_eq(m.n, QP_BUNDLE_HDR + 4 + QP_BUNDLE_TRAILER);
		ck_assert_int_eq(qp_bundle_reader_open(&r, m.p, m.n), 0);
		ck_assert_uint_eq(r.ndeltas, 0);
		ck_assert_uint_eq(r.since.n, 0);
		ck_assert_int_eq(qp_bundle_reader_next(&r, &d, &len), 0);
		ck_assert_int_eq(qp_bundle_reader_finish(&r), 0);
		qp_bundle_reader_free(&r);
		free(m.p);
	}
}
END_TEST

START_TEST(test_truncations)
{
	char why[QP_BUNDLE_WHY_MAX], want[QP_BUNDLE_WHY_MAX];
	size_t got, off, k;
	membuf m;
	uint8_t *x;

	write_bundle(&m, NDELTAS, NULL);
	for (size_t cut = 0; cut < m.n; cut++) {
		x = qp_xmalloc(cut + 1);
		memcpy(x, m.p, cut);
		ck_assert_int_eq(read_all(x, cut, &got, why), QP_EPROTO);
		free(x);
		if (cut < 4) {
			ck_assert_str_eq(why, "not a quipu bundle");
			continue;
		}
		if (cut < QP_BUNDLE_HDR + 4) { /* + the trust item count */
			ck_assert_str_eq(why, "bundle truncated in its header");
			continue;
		}
		/* How many whole deltas fit in cut bytes? */
		for (k = 0, off = QP_BUNDLE_HDR + 4;
		     k < NDELTAS && off + 4 + dlen[k] <= cut; k++)
			off += 4 + dlen[k];
		ck_assert_uint_eq(got, k);
		if (k < NDELTAS)
			snprintf(want, sizeof(want),
			         "bundle truncated after delta %zu of %d", k,
			         NDELTAS);
		else
			strcpy(want, "bundle truncated in its checksum");
		ck_assert_str_eq(why, want);
	}
	/* A byte after the trailer. */
	x = qp_xmalloc(m.n + 3);
	memcpy(x, m.p, m.n);
	memset(x + m.n, 0, 3);
	ck_assert_int_eq(read_all(x, m.n + 3, &got, why), QP_EPROTO);
	ck_assert_str_eq(why, "bundle has 3 unexpected bytes after delta 40 of "
	                      "40");
	free(x);
	free(m.p);
}
END_TEST

/* Every single-bit flip anywhere is caught by the end of the read; a
 * delta handed out before the flipped byte still verifies, one holding it
 * does not. */
START_TEST(test_flips)
{
	char why[QP_BUNDLE_WHY_MAX];
	size_t mismatch = 0;
	qp_vv since;
	membuf m;

	qp_vv_init(&since);
	{
		qp_feed f = nfeed(9);
		ck_assert_int_eq(qp_vv_set(&since, &f, 3), 0);
	}
	write_bundle(&m, 4, &since);
	for (size_t i = 0; i < m.n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			qp_bundle_reader r;
			const uint8_t *d;
			size_t len;
			int rc;

			m.p[i] ^= (uint8_t)(1u << bit);
			rc = qp_bundle_reader_open(&r, m.p, m.n);
			while (rc == 0 && (rc = qp_bundle_reader_next(
			                       &r, &d, &len)) == 1) {
				size_t at = (size_t)(d - m.p);
				int ok = qp_delta_verify(d, len, NULL) == 0;

				/* Intact before the flip; a flip in a delta
				 * or its length prefix spoils that delta. */
				if (i >= at + len)
					ck_assert(ok);
				else if (i + 4 >= at)
					ck_assert(!ok);
				rc = 0;
			}
			if (rc == 0)
				rc = qp_bundle_reader_finish(&r);
			ck_assert(rc == QP_EPROTO || rc == QP_EVERSION ||
			          rc == QP_ETOOBIG);
			if (strcmp(r.why, "bundle checksum mismatch") == 0)
				mismatch++;
			qp_bundle_reader_free(&r);
			m.p[i] ^= (uint8_t)(1u << bit);
		}
	}
	ck_assert_uint_gt(mismatch, 4 * 8 * 200);
	ck_assert_int_eq(read_all(m.p, m.n, &mismatch, why), 0);
	free(m.p);
	qp_vv_free(&since);
}
END_TEST

/* Rewrite the trailer after a test edited the bytes before it. */
static void rehash(uint8_t *b, size_t n)
{
	crypto_generichash(b + n - QP_BUNDLE_TRAILER, QP_BUNDLE_TRAILER, b,
	                   n - QP_BUNDLE_TRAILER, NULL, 0);
}

START_TEST(test_header_errors)
{
	char why[QP_BUNDLE_WHY_MAX];
	size_t got;
	qp_vv since;
	membuf m;
	uint8_t *x;

	ck_assert_int_eq(read_all((const uint8_t *)"QPD1\x01", 5, &got, why),
	                 QP_EPROTO);
	ck_assert_str_eq(why, "not a quipu bundle");
	ck_assert_int_eq(qp_bundle_reader_open(NULL, NULL, 0), QP_EINVAL);

	write_bundle(&m, 2, NULL);
	m.p[4] = 3;
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), QP_EVERSION);
	ck_assert_str_eq(why, "bundle format version 3 is not supported");
	m.p[4] = QP_BUNDLE_VERSION;

	/* A since count over the limit, or claiming more than the file. */
	qp_put_be32(m.p + 49, 0xffffffffu);
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), QP_ETOOBIG);
	ck_assert_str_eq(why, "bundle since-vector has 4294967295 feeds, above "
	                      "the limit");
	qp_put_be32(m.p + 49, QP_SYNC_VV_MAX);
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), QP_EPROTO);
	ck_assert_str_eq(why, "bundle truncated in its header");
	qp_put_be32(m.p + 49, 0);

	/* A trust item count over the limit, or more than the file holds. */
	qp_put_be32(m.p + QP_BUNDLE_HDR, QP_BUNDLE_TRUST_MAX + 1);
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), QP_ETOOBIG);
	ck_assert_str_eq(why, "bundle carries 4097 trust items, above the "
	                      "limit");
	qp_put_be32(m.p + QP_BUNDLE_HDR, QP_BUNDLE_TRUST_MAX);
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), QP_EPROTO);
	ck_assert_str_eq(why, "bundle truncated in its trust items");
	qp_put_be32(m.p + QP_BUNDLE_HDR, 0);

	/* A delta length above the limit, and one below the minimum. */
	qp_put_be32(m.p + QP_BUNDLE_HDR + 4, QP_DELTA_MAX + 1);
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), QP_ETOOBIG);
	ck_assert_str_eq(why, "bundle delta 1 of 2 is 8388609 bytes, above "
	                      "the limit");
	qp_put_be32(m.p + QP_BUNDLE_HDR + 4, 5);
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), QP_EPROTO);
	ck_assert_str_eq(why, "bundle delta 1 of 2 has a bad length 5");
	qp_put_be32(m.p + QP_BUNDLE_HDR + 4, (uint32_t)dlen[0]);

	/* A count lower than the deltas present: caught even when the
	 * trailer was recomputed. */
	qp_put_be32(m.p + 45, 1);
	rehash(m.p, m.n);
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), QP_EPROTO);
	ck_assert_uint_eq(got, 1);
	ck_assert_uint_eq(strncmp(why, "bundle has ", 11), 0);
	qp_put_be32(m.p + 45, 2);
	rehash(m.p, m.n);
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), 0);
	ck_assert_uint_eq(got, 2);
	free(m.p);

	/* Since entries must be in feed order. */
	qp_vv_init(&since);
	for (unsigned k = 0; k < 2; k++) {
		qp_feed f = nfeed(k + 1);
		ck_assert_int_eq(qp_vv_set(&since, &f, 1), 0);
	}
	write_bundle(&m, 1, &since);
	x = qp_xmalloc(QP_BUNDLE_SINCE_LEN);
	memcpy(x, m.p + QP_BUNDLE_HDR, QP_BUNDLE_SINCE_LEN);
	memcpy(m.p + QP_BUNDLE_HDR, m.p + QP_BUNDLE_HDR + QP_BUNDLE_SINCE_LEN,
	       QP_BUNDLE_SINCE_LEN);
	memcpy(m.p + QP_BUNDLE_HDR + QP_BUNDLE_SINCE_LEN, x,
	       QP_BUNDLE_SINCE_LEN);
	rehash(m.p, m.n);
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), QP_EPROTO);
	ck_assert_str_eq(why, "bundle since-vector is not in feed order");
	free(x);
	free(m.p);
	qp_vv_free(&since);
}
END_TEST

START_TEST(test_writer_errors)
{
	qp_bundle_writer *w = NULL;
	uint8_t *big;
	membuf m;
	qp_vv bad;

	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(
	    qp_bundle_writer_open(NULL, &m, node_pk, NOW, 1, NULL, NULL, 0, &w),
	    QP_EINVAL);
	ck_assert_ptr_null(w);
	/* An unsorted since vector is the caller's bug. */
	bad.e = qp_xcalloc(2, sizeof(qp_vv_entry));
	bad.n = bad.cap = 2;
	ck_assert_int_eq(
	    qp_bundle_writer_open(mem_write, &m, node_pk, NOW, 1, &bad, NULL, 0, &w),
	    QP_EINVAL);
	qp_vv_free(&bad);

	ck_assert_int_eq(
	    qp_bundle_writer_open(mem_write, &m, node_pk, NOW, 2, NULL, NULL, 0, &w), 0);
	ck_assert_int_eq(qp_bundle_writer_add(w, dl[0], QP_SYNC_DELTA_MIN - 1),
	                 QP_EINVAL);
	big = qp_xcalloc(QP_DELTA_MAX + 1, 1);
	ck_assert_int_eq(qp_bundle_writer_add(w, big, QP_DELTA_MAX + 1),
	                 QP_ETOOBIG);
	ck_assert_int_eq(qp_bundle_writer_add(w, dl[0], dlen[0]), 0);
	ck_assert_int_eq(qp_bundle_writer_finish(w), QP_EINVAL); /* 1 of 2 */
	ck_assert_int_eq(qp_bundle_writer_add(w, dl[1], dlen[1]), 0);
	ck_assert_int_eq(qp_bundle_writer_add(w, dl[2], dlen[2]), QP_EINVAL);
	ck_assert_int_eq(qp_bundle_writer_finish(w), 0);
	ck_assert_int_eq(qp_bundle_writer_finish(w), QP_EINVAL);
	ck_assert_int_eq(qp_bundle_writer_add(w, dl[2], dlen[2]), QP_EINVAL);
	qp_bundle_writer_free(w);
	qp_bundle_writer_free(NULL);
	free(m.p);

	/* The callback fails in the header: nothing is returned. */
	memset(&m, 0, sizeof(m));
	m.fail_at = 10;
	w = NULL;
	ck_assert_int_eq(
	    qp_bundle_writer_open(mem_write, &m, node_pk, NOW, 1, NULL, NULL, 0, &w),
	    -EIO);
	ck_assert_ptr_null(w);

	/* The callback fails later: the error sticks. */
	memset(&m, 0, sizeof(m));
	m.fail_at = 200 << 10;
	ck_assert_int_eq(
	    qp_bundle_writer_open(mem_write, &m, node_pk, NOW, 3, NULL, NULL, 0, &w), 0);
	ck_assert_int_eq(qp_bundle_writer_add(w, big, 150 << 10), 0);
	ck_assert_int_eq(qp_bundle_writer_add(w, big, 150 << 10), -EIO);
	ck_assert_int_eq(qp_bundle_writer_add(w, dl[0], dlen[0]), -EIO);
	ck_assert_int_eq(qp_bundle_writer_finish(w), -EIO);
	qp_bundle_writer_free(w);
	free(m.p);
	free(big);
}
END_TEST

/* Deltas larger than the writer's buffer are written through, and mixed
 * with small ones the file is the same as if written in one piece. */
START_TEST(test_large)
{
	static const size_t sizes[] = {QP_SYNC_DELTA_MIN, 70000,     200,
	                               (1u << 20) + 3,    65536 - 4, 300};
	qp_bundle_reader r;
	qp_bundle_writer *w;
	const uint8_t *d;
	size_t len, n = sizeof(sizes) / sizeof(sizes[0]);
	uint8_t *big = qp_xmalloc(1u << 21);
	membuf m;

	randombytes_buf(big, 1u << 21);
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(qp_bundle_writer_open(mem_write, &m, node_pk, NOW,
	                                       (uint32_t)n, NULL, NULL, 0, &w),
	                 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(qp_bundle_writer_add(w, big + i, sizes[i]), 0);
	ck_assert_int_eq(qp_bundle_writer_finish(w), 0);
	qp_bundle_writer_free(w);
	ck_assert_int_eq(qp_bundle_reader_open(&r, m.p, m.n), 0);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(qp_bundle_reader_next(&r, &d, &len), 1);
		ck_assert_uint_eq(len, sizes[i]);
		ck_assert_mem_eq(d, big + i, len);
	}
	ck_assert_int_eq(qp_bundle_reader_next(&r, &d, &len), 0);
	ck_assert_int_eq(qp_bundle_reader_finish(&r), 0);
	qp_bundle_reader_free(&r);
	free(m.p);
	free(big);
}
END_TEST

/* Trust items go through as written; each bad one is named; a version 1
 * bundle (no trust section) still reads. */
START_TEST(test_trust_items)
{
	static const uint8_t cert[300] = {7}, rev[149] = {9};
	const qp_bundle_item items[2] = {{QP_BUNDLE_CERT, cert, sizeof cert},
	                                 {QP_BUNDLE_REVOCATION, rev, sizeof rev}};
	qp_bundle_item bad = {9, cert, 10};
	char why[QP_BUNDLE_WHY_MAX];
	qp_bundle_reader r;
	qp_bundle_writer *w;
	membuf m = {0};
	size_t got, item0 = QP_BUNDLE_HDR + 4;
	uint8_t *v1;

	ck_assert_int_eq(qp_bundle_writer_open(mem_write, &m, node_pk, NOW, 2,
	                                       NULL, items, 2, &w),
	                 0);
	ck_assert_int_eq(qp_bundle_writer_add(w, dl[0], dlen[0]), 0);
	ck_assert_int_eq(qp_bundle_writer_add(w, dl[1], dlen[1]), 0);
	ck_assert_int_eq(qp_bundle_writer_finish(w), 0);
	qp_bundle_writer_free(w);
	ck_assert_int_eq(qp_bundle_reader_open(&r, m.p, m.n), 0);
	ck_assert_uint_eq(r.ntrust, 2);
	ck_assert_uint_eq(r.trust[0].type, QP_BUNDLE_CERT);
	ck_assert_uint_eq(r.trust[0].len, sizeof cert);
	ck_assert_mem_eq(r.trust[0].p, cert, sizeof cert);
	ck_assert_uint_eq(r.trust[1].type, QP_BUNDLE_REVOCATION);
	ck_assert_mem_eq(r.trust[1].p, rev, sizeof rev);
	ck_assert_int_eq(qp_bundle_reader_finish(&r), 0);
	ck_assert_uint_eq(r.read, 2);
	qp_bundle_reader_free(&r);

	/* Cut anywhere inside the trust items: named as such. */
	for (size_t cut = item0 + 1; cut < item0 + 10 + sizeof cert + sizeof rev;
	     cut += 37) {
		ck_assert_int_eq(read_all(m.p, cut, &got, why), QP_EPROTO);
		ck_assert_str_eq(why, "bundle truncated in its trust items");
	}
	/* An unknown type, an empty item, one over the limit. */
	m.p[item0] = 7;
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), QP_EPROTO);
	ck_assert_str_eq(why, "bundle trust item 1 has unknown type 7");
	m.p[item0] = QP_BUNDLE_CERT;
	qp_put_be32(m.p + item0 + 1, 0);
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), QP_EPROTO);
	ck_assert_str_eq(why, "bundle trust item 1 has a bad length 0");
	qp_put_be32(m.p + item0 + 1, QP_BUNDLE_ITEM_MAX + 1);
	ck_assert_int_eq(read_all(m.p, m.n, &got, why), QP_ETOOBIG);
	ck_assert_str_eq(why, "bundle trust item 1 has a bad length 8193");
	free(m.p);

	/* The writer refuses what the reader would. */
	memset(&m, 0, sizeof m);
	ck_assert_int_eq(qp_bundle_writer_open(mem_write, &m, node_pk, NOW, 0,
	                                       NULL, &bad, 1, &w),
	                 QP_EINVAL);
	bad.type = QP_BUNDLE_CERT;
	bad.len = QP_BUNDLE_ITEM_MAX + 1;
	ck_assert_int_eq(qp_bundle_writer_open(mem_write, &m, node_pk, NOW, 0,
	                                       NULL, &bad, 1, &w),
	                 QP_ETOOBIG);
	ck_assert_int_eq(qp_bundle_writer_open(mem_write, &m, node_pk, NOW, 0,
	                                       NULL, items,
	                                       QP_BUNDLE_TRUST_MAX + 1, &w),
	                 QP_ETOOBIG);
	free(m.p);

	/* Version 1: the same bundle without the trust count. */
	write_bundle(&m, 3, NULL);
	v1 = qp_xmalloc(m.n - 4);
	memcpy(v1, m.p, QP_BUNDLE_HDR);
	memcpy(v1 + QP_BUNDLE_HDR, m.p + QP_BUNDLE_HDR + 4,
	       m.n - QP_BUNDLE_HDR - 4);
	v1[4] = 1;
	rehash(v1, m.n - 4);
	ck_assert_int_eq(read_all(v1, m.n - 4, &got, why), 0);
	ck_assert_uint_eq(got, 3);
	free(v1);
	free(m.p);
}
END_TEST

Suite *suite_bundle(void)
{
	Suite *s = suite_create("bundle");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_truncations);
	tcase_add_test(tc, test_flips);
	tcase_add_test(tc, test_header_errors);
	tcase_add_test(tc, test_writer_errors);
	tcase_add_test(tc, test_large);
	tcase_add_test(tc, test_trust_items);
	suite_add_tcase(s, tc);
	return s;
}
