/*
 * frame.c - length-prefixed frame reader; see frame.h.
 *
 * Every header in newly fed bytes is checked before those bytes are stored,
 * so a bad length costs no allocation.  The buffer holds the unconsumed tail
 * only: consumed bytes are dropped (by resetting when everything was taken,
 * or by one memmove at the next feed) and the buffer grows at most to the end
 * of the last frame whose header has been checked.
 */
#include "frame.h"
#include "err.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Initialise f to accept bodies up to max bytes (QP_FRAME_MAX_DEFAULT when
 * max is 0).  Allocates nothing. */
void qp_framer_init(qp_framer *f, uint32_t max)
{
	memset(f, 0, sizeof(*f));
	f->max = max != 0 ? max : QP_FRAME_MAX_DEFAULT;
}

/* Release the buffer; f may be initialised again.  Accepts NULL. */
void qp_framer_free(qp_framer *f)
{
	if (f == NULL)
		return;
	free(f->buf);
	f->buf = NULL;
	f->len = f->cap = f->off = 0;
}

static int check_len(const qp_framer *f, uint32_t len, int first)
{
	uint32_t max = first || f->ahead < f->max ? f->max : f->ahead;

	if (len == 0)
		return QP_EPROTO;
	if (len > max)
		return QP_ETOOBIG;
	return 0;
}

/* Byte i of the held bytes followed by the new ones. */
static uint8_t byte_at(const qp_framer *f, const uint8_t *data, uint64_t i)
{
	return i < f->len ? f->buf[i] : data[i - f->len];
}

/* Append n bytes after checking every frame header they complete.  On a bad
 * length the framer fails for good and nothing is stored.  Returns 0,
 * QP_ETOOBIG or QP_EPROTO (also on every call after a failure). */
int qp_framer_feed(qp_framer *f, const void *data, size_t n)
{
	const uint8_t *d = data;
	uint64_t pos, total, bound;
	size_t keep, need;
	int rc;

	if (f->failed)
		return f->failed;
	if (n == 0)
		return 0;

	/* Walk the frame headers from the first unconsumed byte across the
	 * held and the new bytes. */
	total = (uint64_t)f->len + n;
	pos = f->off;
	while (total - pos >= QP_FRAME_HDR) {
		uint8_t h[QP_FRAME_HDR];
		uint32_t len;
		for (int i = 0; i < QP_FRAME_HDR; i++)
			h[i] = byte_at(f, d, pos + (uint64_t)i);
		len = qp_get_be32(h);
		rc = check_len(f, len, pos == f->off);
		if (rc != 0) {
			f->failed = rc;
			return rc;
		}
		pos += QP_FRAME_HDR + (uint64_t)len;
		if (pos >= total)
			break;
	}
	/* pos is now where the last checked frame ends (or the start of a
	 * partial header): never hold room for more than that. */
	bound = pos > total ? pos - f->off : total - f->off;

	if (f->off > 0) {
		keep = f->len - f->off;
		if (keep > 0)
			memmove(f->buf, f->buf + f->off, keep);
		f->len = keep;
		f->off = 0;
	}
	need = f->len + n;
	if (need > f->cap) {
		uint64_t cap = (uint64_t)f->cap * 2;
		if (cap < 256)
			cap = 256;
		if (cap > bound)
			cap = bound;
		if (cap < need)
			cap = need;
		f->buf = qp_xrealloc(f->buf, (size_t)cap);
		f->cap = (size_t)cap;
	}
	memcpy(f->buf + f->len, d, n);
	f->len = need;
	return 0;
}

/* Take the next complete frame: 1 with *body and *len set (pointing into f's
 * buffer until the next feed, next or free), 0 when none is complete, or the
 * failure code. */
int qp_framer_next(qp_framer *f, const uint8_t **body, uint32_t *len)
{
	size_t avail = f->len - f->off;
	uint32_t n;
	int rc;

	if (f->failed)
		return f->failed;
	if (avail < QP_FRAME_HDR)
		return 0;
	n = qp_get_be32(f->buf + f->off);
	rc = check_len(f, n, 1); /* the limit may have changed since feed */
	if (rc != 0) {
		f->failed = rc;
		return rc;
	}
	if (avail - QP_FRAME_HDR < n)
		return 0;
	*body = f->buf + f->off + QP_FRAME_HDR;
	*len = n;
	f->off += QP_FRAME_HDR + (size_t)n;
	if (f->off == f->len)
		f->off = f->len = 0; /* all consumed: no memmove next time */
	return 1;
}

/* Write the big-endian length header for a body of len bytes. */
void qp_frame_header(uint8_t hdr[QP_FRAME_HDR], uint32_t len)
{
	qp_put_be32(hdr, len);
}
