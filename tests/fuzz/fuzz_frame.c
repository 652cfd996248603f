/*
 * fuzz_frame.c - libFuzzer target for proto/frame.c.
 *
 * Input: byte 0 seeds the chunk sizes, byte 1 picks the framer's limit,
 * the rest is the stream.  A plain reference parse of the stream says which
 * frames it holds and whether a bad length follows them.  Invariants
 * (abort on violation):
 * - fed in one piece, the framer yields exactly the reference frames, or
 *   fails with the reference's error and yields none;
 * - fed in random pieces and drained after each, it yields a prefix of the
 *   reference frames (all of them when the stream is good) and fails
 *   exactly when the reference does, with the same code;
 * - every frame is non-empty and within the limit; the buffer never grows
 *   past what the stream and the limit justify.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ref {
	size_t n;
	size_t *off;  /* body offsets in the stream */
	uint32_t *len;
	int fail;     /* 0 or the error a framer must report */
};

static void ref_parse(const uint8_t *s, size_t size, uint32_t max,
		      struct ref *r)
{
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	r->off = malloc((size / QP_FRAME_HDR + 1) * sizeof(*r->off));
	r->len = malloc((size / QP_FRAME_HDR + 1) * sizeof(*r->len));
	if (r->off == NULL || r->len == NULL)
		abort();
	while (size - pos >= QP_FRAME_HDR) {
		uint32_t len = qp_get_be32(s + pos);
		if (len == 0 || len > max) {
			r->fail = len == 0 ? QP_EPROTO : QP_ETOOBIG;
			return;
		}
		if (size - pos - QP_FRAME_HDR < len)
			return;
		r->off[r->n] = pos + QP_FRAME_HDR;
		r->len[r->n] = len;
		r->n++;
		pos += QP_FRAME_HDR + len;
	}
}

static void check_frame(const struct ref *r, size_t k, const uint8_t *s,
			const uint8_t *body, uint32_t len, uint32_t max)
{
	if (k >= r->n || len != r->len[k] || len == 0 || len > max ||
	    memcmp(body, s + r->off[k], len) != 0)
		abort();
}

static void check_cap(const qp_framer *f, size_t size)
{
	if (f->cap > size + (size_t)f->max + QP_FRAME_HDR + 256)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t limits[] = {1, 4, 16, 100, 1000, 65536,
					  QP_FRAME_MAX_DEFAULT};
	const uint8_t *s, *body;
	struct ref r;
	qp_framer f;
	uint32_t max, len, seed;
	size_t ssize, k, pos;
	int rc;

	if (size < 2)
		return 0;
	seed = data[0];
	max = limits[data[1] % (sizeof(limits) / sizeof(limits[0]))];
	s = data + 2;
	ssize = size - 2;
	ref_parse(s, ssize, max, &r);

	/* One piece. */
	qp_framer_init(&f, max);
	rc = qp_framer_feed(&f, s, ssize);
	if (rc != r.fail)
		abort();
	for (k = 0; (rc = qp_framer_next(&f, &body, &len)) == 1; k++)
		check_frame(&r, k, s, body, len, max);
	if (r.fail != 0 ? (rc != r.fail || k != 0) : (rc != 0 || k != r.n))
		abort();
	check_cap(&f, ssize);
	qp_framer_free(&f);

	/* Random pieces, drained as they come. */
	qp_framer_init(&f, max);
	k = 0;
	pos = 0;
	rc = 0;
	while (pos < ssize) {
		size_t piece;
		seed = seed * 1103515245u + 12345u;
		piece = 1 + (seed >> 16) % (seed & 1 ? 7 : 300);
		if (piece > ssize - pos)
			piece = ssize - pos;
		rc = qp_framer_feed(&f, s + pos, piece);
		pos += piece;
		if (rc != 0)
			break;
		while ((rc = qp_framer_next(&f, &body, &len)) == 1)
			check_frame(&r, k++, s, body, len, max);
		if (rc != 0)
			abort(); /* next fails only after feed did */
		check_cap(&f, ssize);
	}
	if (rc != r.fail || (r.fail == 0 && k != r.n) || k > r.n)
		abort();
	if (r.fail != 0 && qp_framer_feed(&f, s, 1) != r.fail)
		abort(); /* sticky */
	qp_framer_free(&f);
	free(r.off);
	free(r.len);
	return 0;
}
