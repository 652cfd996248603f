/*
 * bundle.c - bundle files; see bundle.h.
 *
 * The writer hashes every byte it emits as it goes and batches small
 * writes (header, since entries, length prefixes, small deltas) in a
 * buffer, so the callback sees few calls.  Its hash state must be 64-byte
 * aligned (libsodium declares it so), which is why the writer is an opaque
 * object made with aligned_alloc rather than a struct the caller embeds.
 */
#include "bundle.h"
#include "err.h"
#include "util.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WBUF (64u << 10)

_Static_assert(QP_BUNDLE_TRAILER == crypto_generichash_BYTES,
               "trailer is BLAKE2b-256");

struct qp_bundle_writer {
	crypto_generichash_state h; /* first: 64-byte alignment */
	qp_bundle_write_fn fn;
	void *ctx;
	uint32_t ndeltas;
	uint32_t written;
	int rc; /* sticky failure of fn */
	int finished;
	size_t used; /* bytes held in buf */
	uint8_t buf[WBUF];
};

/* Hand the buffered bytes to fn. */
static int w_flush(qp_bundle_writer *w)
{
	int rc;

	if (w->used == 0)
		return 0;
	rc = w->fn(w->ctx, w->buf, w->used);
	w->used = 0;
	if (rc != 0)
		w->rc = rc < 0 ? rc : QP_EINVAL;
	return w->rc;
}

/* Emit p[0..n): hashed, then buffered or (when large) written through. */
static int w_emit(qp_bundle_writer *w, const void *p, size_t n)
{
	int rc;

	crypto_generichash_update(&w->h, p, n);
	if (n > WBUF - w->used) {
		rc = w_flush(w);
		if (rc != 0)
			return rc;
	}
	if (n >= WBUF) {
		rc = w->fn(w->ctx, p, n);
		if (rc != 0)
			w->rc = rc < 0 ? rc : QP_EINVAL;
		return w->rc;
	}
	memcpy(w->buf + w->used, p, n);
	w->used += n;
	return 0;
}

/* Start a bundle; see bundle.h. */
int qp_bundle_writer_open(qp_bundle_write_fn fn, void *ctx,
                          const uint8_t creator[QP_KEY_LEN],
                          uint64_t created_at, uint32_t ndeltas,
                          const qp_vv *since, const qp_bundle_item *trust,
                          size_t ntrust, qp_bundle_writer **out)
{
	qp_bundle_writer *w;
	uint8_t hdr[QP_BUNDLE_HDR], ent[QP_BUNDLE_SINCE_LEN], ih[5];
	size_t nsince = since != NULL ? since->n : 0;
	int rc;

	if (fn == NULL || creator == NULL || out == NULL ||
	    (nsince > 0 && since->e == NULL) || (ntrust > 0 && trust == NULL))
		return QP_EINVAL;
	if (nsince > QP_SYNC_VV_MAX || ntrust > QP_BUNDLE_TRUST_MAX)
		return QP_ETOOBIG;
	for (size_t i = 0; i < ntrust; i++) {
		if ((trust[i].type != QP_BUNDLE_CERT &&
		     trust[i].type != QP_BUNDLE_REVOCATION) ||
		    trust[i].len == 0 || trust[i].p == NULL)
			return QP_EINVAL;
		if (trust[i].len > QP_BUNDLE_ITEM_MAX)
			return QP_ETOOBIG;
	}
	for (size_t i = 1; i < nsince; i++)
		if (qp_feed_cmp(&since->e[i - 1].feed, &since->e[i].feed) >= 0)
			return QP_EINVAL;
	w = aligned_alloc(64, sizeof(*w));
	if (w == NULL)
		return QP_ENOMEM;
	memset(w, 0, offsetof(qp_bundle_writer, buf));
	w->fn = fn;
	w->ctx = ctx;
	w->ndeltas = ndeltas;
	crypto_generichash_init(&w->h, NULL, 0, QP_BUNDLE_TRAILER);

	memcpy(hdr, QP_BUNDLE_MAGIC, 4);
	hdr[4] = QP_BUNDLE_VERSION;
	memcpy(hdr + 5, creator, QP_KEY_LEN);
	qp_put_be64(hdr + 37, created_at);
	qp_put_be32(hdr + 45, ndeltas);
	qp_put_be32(hdr + 49, (uint32_t)nsince);
	rc = w_emit(w, hdr, sizeof(hdr));
	for (size_t i = 0; rc == 0 && i < nsince; i++) {
		memcpy(ent, &since->e[i].feed, QP_SYNC_FEED_LEN);
		qp_put_be64(ent + QP_SYNC_FEED_LEN, since->e[i].seq);
		rc = w_emit(w, ent, sizeof(ent));
	}
	qp_put_be32(ih, (uint32_t)ntrust);
	if (rc == 0)
		rc = w_emit(w, ih, 4);
	for (size_t i = 0; rc == 0 && i < ntrust; i++) {
		ih[0] = trust[i].type;
		qp_put_be32(ih + 1, (uint32_t)trust[i].len);
		rc = w_emit(w, ih, 5);
		if (rc == 0)
			rc = w_emit(w, trust[i].p, trust[i].len);
	}
	if (rc == 0)
		rc = w_flush(w);
	if (rc != 0) {
		qp_bundle_writer_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

/* Append a delta; see bundle.h. */
int qp_bundle_writer_add(qp_bundle_writer *w, const uint8_t *delta, size_t len)
{
	uint8_t pfx[4];
	int rc;

	if (w == NULL || delta == NULL)
		return QP_EINVAL;
	if (w->rc != 0)
		return w->rc;
	if (w->finished || w->written >= w->ndeltas || len < QP_SYNC_DELTA_MIN)
		return QP_EINVAL;
	if (len > QP_DELTA_MAX)
		return QP_ETOOBIG;
	qp_put_be32(pfx, (uint32_t)len);
	rc = w_emit(w, pfx, sizeof(pfx));
	if (rc == 0)
		rc = w_emit(w, delta, len);
	if (rc != 0)
		return rc;
	w->written++;
	return 0;
}

/* Write the trailer; see bundle.h. */
int qp_bundle_writer_finish(qp_bundle_writer *w)
{
	uint8_t hash[QP_BUNDLE_TRAILER];
	int rc;

	if (w == NULL)
		return QP_EINVAL;
	if (w->rc != 0)
		return w->rc;
	if (w->finished || w->written != w->ndeltas)
		return QP_EINVAL;
	crypto_generichash_final(&w->h, hash, sizeof(hash));
	w->finished = 1;
	/* The trailer is not part of what it hashes: copy it in directly. */
	if (sizeof(hash) > WBUF - w->used) {
		rc = w_flush(w);
		if (rc != 0)
			return rc;
	}
	memcpy(w->buf + w->used, hash, sizeof(hash));
	w->used += sizeof(hash);
	return w_flush(w);
}

/* Free a writer; see bundle.h. */
void qp_bundle_writer_free(qp_bundle_writer *w)
{
	if (w == NULL)
		return;
	sodium_memzero(&w->h, sizeof(w->h));
	free(w);
}

/* ---- reading ---------------------------------------------------------- */

static int r_fail(qp_bundle_reader *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record a sticky failure with its reason.  Returns rc. */
static int r_fail(qp_bundle_reader *r, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	r->rc = rc;
	return rc;
}

/* The trust items of a version 2 bundle, at r->off: each bound checked
 * before anything is allocated for it. */
static int read_trust(qp_bundle_reader *r)
{
	uint32_t n, len;
	size_t left = r->len - r->off;
	const uint8_t *p;

	if (left < 4)
		return r_fail(r, QP_EPROTO, "bundle truncated in its header");
	n = qp_get_be32(r->buf + r->off);
	r->off += 4;
	left -= 4;
	if (n > QP_BUNDLE_TRUST_MAX)
		return r_fail(r, QP_ETOOBIG,
		              "bundle carries %u trust items, above the limit",
		              (unsigned)n);
	/* Every item takes at least 6 bytes: the count must fit. */
	if (left / 6 < n)
		return r_fail(r, QP_EPROTO, "bundle truncated in its trust items");
	if (n > 0)
		r->trust = qp_xcalloc(n, sizeof(*r->trust));
	for (uint32_t i = 0; i < n; i++) {
		p = r->buf + r->off;
		if (left < 5)
			goto truncated;
		len = qp_get_be32(p + 1);
		if (p[0] != QP_BUNDLE_CERT && p[0] != QP_BUNDLE_REVOCATION)
			return r_fail(r, QP_EPROTO,
			              "bundle trust item %u has unknown type %u",
			              (unsigned)i + 1, (unsigned)p[0]);
		if (len == 0 || len > QP_BUNDLE_ITEM_MAX)
			return r_fail(r, len ? QP_ETOOBIG : QP_EPROTO,
			              "bundle trust item %u has a bad length %u",
			              (unsigned)i + 1, (unsigned)len);
		if (left - 5 < len)
			goto truncated;
		r->trust[i].type = p[0];
		r->trust[i].p = p + 5;
		r->trust[i].len = len;
		r->ntrust = i + 1;
		r->off += 5 + (size_t)len;
		left -= 5 + (size_t)len;
	}
	return 0;
truncated:
	return r_fail(r, QP_EPROTO, "bundle truncated in its trust items");
}

/* Read the header; see bundle.h. */
int qp_bundle_reader_open(qp_bundle_reader *r, const uint8_t *buf, size_t len)
{
	uint32_t nsince;
	const uint8_t *p;

	if (r == NULL)
		return QP_EINVAL;
	memset(r, 0, sizeof(*r));
	qp_vv_init(&r->since);
	if (buf == NULL && len > 0)
		return r_fail(r, QP_EINVAL, "no bundle");
	r->buf = buf;
	r->len = len;
	if (len < 4 || memcmp(buf, QP_BUNDLE_MAGIC, 4) != 0)
		return r_fail(r, QP_EPROTO, "not a quipu bundle");
	if (len < 5)
		return r_fail(r, QP_EPROTO, "bundle truncated in its header");
	r->version = buf[4];
	if (r->version != 1 && r->version != QP_BUNDLE_VERSION)
		return r_fail(r, QP_EVERSION,
		              "bundle format version %u is not supported",
		              (unsigned)r->version);
	if (len < QP_BUNDLE_HDR)
		return r_fail(r, QP_EPROTO, "bundle truncated in its header");
	memcpy(r->creator, buf + 5, QP_KEY_LEN);
	r->created_at = qp_get_be64(buf + 37);
	r->ndeltas = qp_get_be32(buf + 45);
	nsince = qp_get_be32(buf + 49);
	if (nsince > QP_SYNC_VV_MAX)
		return r_fail(r, QP_ETOOBIG,
		              "bundle since-vector has %u feeds, above the "
		              "limit",
		              (unsigned)nsince);
	/* Check the bytes are there before allocating for them. */
	if ((len - QP_BUNDLE_HDR) / QP_BUNDLE_SINCE_LEN < nsince)
		return r_fail(r, QP_EPROTO, "bundle truncated in its header");
	if (nsince > 0) {
		r->since.e = qp_xmalloc(nsince * sizeof(qp_vv_entry));
		r->since.cap = nsince;
	}
	p = buf + QP_BUNDLE_HDR;
	for (uint32_t i = 0; i < nsince; i++, p += QP_BUNDLE_SINCE_LEN) {
		qp_vv_entry *e = &r->since.e[i];

		memcpy(&e->feed, p, QP_SYNC_FEED_LEN);
		e->seq = qp_get_be64(p + QP_SYNC_FEED_LEN);
		if (i > 0 && qp_feed_cmp(&e[-1].feed, &e->feed) >= 0)
			return r_fail(r, QP_EPROTO,
			              "bundle since-vector is not in feed "
			              "order");
		r->since.n = i + 1;
	}
	r->off = (size_t)(p - buf);
	return r->version >= 2 ? read_trust(r) : 0;
}

/* Take the next delta; see bundle.h. */
int qp_bundle_reader_next(qp_bundle_reader *r, const uint8_t **delta,
                          size_t *len)
{
	size_t left;
	uint32_t n;

	if (r == NULL || delta == NULL || len == NULL)
		return QP_EINVAL;
	if (r->rc != 0)
		return r->rc;
	if (r->off == 0)
		return r_fail(r, QP_EINVAL, "bundle not open");
	if (r->read == r->ndeltas)
		return 0;
	left = r->len - r->off;
	if (left < 4)
		goto truncated;
	n = qp_get_be32(r->buf + r->off);
	if (n > QP_DELTA_MAX)
		return r_fail(r, QP_ETOOBIG,
		              "bundle delta %u of %u is %u bytes, above the "
		              "limit",
		              (unsigned)r->read + 1, (unsigned)r->ndeltas,
		              (unsigned)n);
	if (n < QP_SYNC_DELTA_MIN)
		return r_fail(
		    r, QP_EPROTO, "bundle delta %u of %u has a bad length %u",
		    (unsigned)r->read + 1, (unsigned)r->ndeltas, (unsigned)n);
	if (left - 4 < n)
		goto truncated;
	*delta = r->buf + r->off + 4;
	*len = n;
	r->off += 4 + (size_t)n;
	r->read++;
	return 1;
truncated:
	return r_fail(r, QP_EPROTO, "bundle truncated after delta %u of %u",
	              (unsigned)r->read, (unsigned)r->ndeltas);
}

/* Check the rest and the trailer; see bundle.h. */
int qp_bundle_reader_finish(qp_bundle_reader *r)
{
	uint8_t hash[QP_BUNDLE_TRAILER];
	const uint8_t *d;
	size_t n, left;
	int rc;

	if (r == NULL)
		return QP_EINVAL;
	while ((rc = qp_bundle_reader_next(r, &d, &n)) == 1)
		;
	if (rc != 0)
		return rc;
	left = r->len - r->off;
	if (left < QP_BUNDLE_TRAILER)
		return r_fail(r, QP_EPROTO, "bundle truncated in its checksum");
	if (left > QP_BUNDLE_TRAILER)
		return r_fail(r, QP_EPROTO,
		              "bundle has %zu unexpected bytes after delta %u "
		              "of %u",
		              left - QP_BUNDLE_TRAILER, (unsigned)r->read,
		              (unsigned)r->ndeltas);
	crypto_generichash(hash, sizeof(hash), r->buf, r->off, NULL, 0);
	if (sodium_memcmp(hash, r->buf + r->off, sizeof(hash)) != 0)
		return r_fail(r, QP_EPROTO, "bundle checksum mismatch");
	return 0;
}

/* Free what a reader owns; see bundle.h. */
void qp_bundle_reader_free(qp_bundle_reader *r)
{
	if (r == NULL)
		return;
	qp_vv_free(&r->since);
	free(r->trust);
	r->trust = NULL;
	r->ntrust = 0;
	r->buf = NULL;
	r->len = r->off = 0;
}
