/*
 * fuzz_delta.c - libFuzzer target for proto/delta.c.
 *
 * Each input is used twice:
 * 1. as a whole delta: qp_delta_verify and qp_delta_ops must return a
 *    clean result (qp_delta_ops is run even when verify refuses, since it
 *    must bound everything on its own);
 * 2. as a body signed with a fixed key pair, so the decoder is reached past
 *    the signature.  Byte 0 picks how (0: plain body, 1: compress the body
 *    with zstd, 2: the body is a zstd frame whose raw_len is the next four
 *    bytes), the next eight bytes are the header's hlc, the rest the body.
 * Whenever ops decode, they are rebuilt with qp_delta_build; the rebuilt
 * delta must verify and decode to equal ops, and rebuilding those must
 * give the very same bytes (encoding and ed25519 are deterministic).
 * Corpus seeds made with the fixed key also verify in step 1.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "delta.h"
#include "err.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seed of the fixed key pair (also used to make the corpus). */
static const uint8_t key_seed[32] = "quipu fuzz_delta fixed key seed";

static uint8_t fpk[QP_KEY_LEN], fsk[QP_SKEY_LEN];

static void init_once(void)
{
	static int done;
	if (done)
		return;
	if (qp_crypto_init() != 0)
		abort();
	crypto_sign_seed_keypair(fpk, fsk, key_seed);
	done = 1;
}

static int ops_equal(const qp_op *a, const qp_op *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i].type != b[i].type || a[i].hlc != b[i].hlc ||
		    a[i].base != b[i].base ||
		    memcmp(a[i].id, b[i].id, QP_UUID_LEN) != 0 ||
		    strcmp(a[i].kind, b[i].kind) != 0)
			return 0;
		if (a[i].type == QP_OP_VOID) {
			if (a[i].reason == NULL || b[i].reason == NULL ||
			    a[i].fields != NULL || b[i].fields != NULL ||
			    strcmp(a[i].reason, b[i].reason) != 0)
				return 0;
		} else if (a[i].reason != NULL || b[i].reason != NULL ||
			   !json_equal(a[i].fields, b[i].fields)) {
			return 0;
		}
	}
	return 1;
}

/* ops decoded from a delta with header h: rebuild and compare. */
static void rebuild(const qp_delta_hdr *h, const qp_op *ops, size_t n)
{
	uint8_t *d1 = NULL, *d2 = NULL;
	size_t l1 = 0, l2 = 0, n1 = 0, n2 = 0;
	qp_op *o1 = NULL, *o2 = NULL;
	qp_delta_hdr h1;
	int rc;

	if (n == 0 || n > QP_DELTA_MAX_OPS)
		abort();
	if (memcmp(h->feed.author, fpk, QP_KEY_LEN) != 0)
		return; /* someone else's delta: no key to rebuild it with */
	rc = qp_delta_build(&h->feed, h->seq, h->prev, ops, n, fsk, &d1, &l1);
	if (rc == QP_ETOOBIG)
		return;
	if (rc != 0)
		abort();
	if (qp_delta_verify(d1, l1, &h1) != 0 || h1.seq != h->seq ||
	    h1.hlc != h->hlc || memcmp(h1.prev, h->prev, QP_HASH_LEN) != 0)
		abort();
	if (qp_delta_ops(d1, l1, &o1, &n1) != 0 || n1 != n ||
	    !ops_equal(ops, o1, n))
		abort();
	if (qp_delta_build(&h->feed, h->seq, h->prev, o1, n1, fsk, &d2,
			   &l2) != 0 ||
	    l2 != l1 || memcmp(d1, d2, l1) != 0)
		abort();
	if (qp_delta_ops(d2, l2, &o2, &n2) != 0 || !ops_equal(o1, o2, n))
		abort();
	qp_ops_free(o1, n1);
	qp_ops_free(o2, n2);
	free(d1);
	free(d2);
}

/* Run verify and ops on buf; signed says the signature must hold. */
static void check_delta(const uint8_t *buf, size_t len, int must_verify)
{
	qp_delta_hdr h;
	qp_op *ops = NULL;
	size_t n = 0;
	int vrc, orc;

	vrc = qp_delta_verify(buf, len, &h);
	if (vrc != 0 && vrc != QP_EPROTO && vrc != QP_ETOOBIG && vrc != QP_ESIG)
		abort();
	if (must_verify && vrc == QP_ESIG)
		abort();
	orc = qp_delta_ops(buf, len, &ops, &n);
	if (orc != 0) {
		if ((orc != QP_EPROTO && orc != QP_ETOOBIG &&
		     orc != QP_ECOMPRESS) || ops != NULL)
			abort();
		return;
	}
	if (ops == NULL || n == 0)
		abort();
	/* ops checks the same header rules as verify. */
	if (vrc == QP_EPROTO || vrc == QP_ETOOBIG)
		abort();
	if (vrc == 0)
		rebuild(&h, ops, n);
	qp_ops_free(ops, n);
}

static void sign_body(uint8_t mode, uint64_t hlc, uint32_t raw_len,
		      const uint8_t *body, size_t body_len)
{
	size_t len = QP_DELTA_HDR + body_len + QP_DELTA_SIG;
	uint8_t *b;

	if (len > QP_DELTA_MAX)
		return;
	b = calloc(1, len);
	if (b == NULL)
		abort();
	memcpy(b, QP_DELTA_MAGIC, 4);
	memcpy(b + 4, fpk, QP_KEY_LEN);
	memset(b + 36, 0x07, QP_UUID_LEN);
	qp_put_be64(b + 52, 2);
	memset(b + 60, 0xab, QP_HASH_LEN);
	qp_put_be64(b + 92, hlc);
	b[100] = mode ? QP_DELTA_F_ZSTD : 0;
	qp_put_be32(b + 101, raw_len);
	qp_put_be32(b + 105, (uint32_t)body_len);
	if (body_len > 0)
		memcpy(b + QP_DELTA_HDR, body, body_len);
	crypto_sign_detached(b + QP_DELTA_HDR + body_len, NULL, b,
			     QP_DELTA_HDR + body_len, fsk);
	check_delta(b, len, 1);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mode;
	uint64_t hlc;
	const uint8_t *body;
	size_t n;

	init_once();
	check_delta(data, size, 0);

	if (size < 9)
		return 0;
	mode = data[0] % 3;
	hlc = qp_get_be64(data + 1);
	body = data + 9;
	n = size - 9;
	if (mode == 0) {
		sign_body(0, hlc, (uint32_t)n, body, n);
	} else if (mode == 1) {
		size_t cap = ZSTD_compressBound(n), zn;
		uint8_t *z = malloc(cap);
		if (z == NULL)
			abort();
		zn = ZSTD_compress(z, cap, body, n, 3);
		if (ZSTD_isError(zn))
			abort();
		sign_body(1, hlc, (uint32_t)n, z, zn);
		free(z);
	} else if (n >= 4) {
		sign_body(2, hlc, qp_get_be32(body), body + 4, n - 4);
	}
	return 0;
}
