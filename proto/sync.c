/*
 * sync.c - sync exchange messages and version vectors; see sync.h.
 *
 * Messages are packed with msgpack-c's packer, which always picks the
 * shortest form.  They are read with a small strict cursor instead of
 * msgpack-c's unpacker, for three reasons: the unpacker allocates each
 * array from its declared count before reading it, it forgets which form
 * a value was written in (so non-canonical input could not be refused),
 * and the caller wants views into the message, not copies.
 */
#include "sync.h"
#include "err.h"
#include "util.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(qp_feed) == QP_SYNC_FEED_LEN, "qp_feed is packed");

/* Smallest encodings, used to bound counts by the bytes that remain:
 * an entry is fixarray(2) + bin8 header + 48 + a fixint; a delta or
 * revocation is at least a bin8 header plus its minimum size. */
#define ENTRY_MIN      (1 + 2 + QP_SYNC_FEED_LEN + 1)
#define DELTA_ITEM_MIN (2 + QP_SYNC_DELTA_MIN)
#define REV_ITEM_MIN   (2 + QP_REV_LEN)
#define CERT_ITEM_MIN  (2 + QP_CERT_MIN)

/* ---- packing ---------------------------------------------------------- */

typedef struct wr {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int err; /* sticky: a failed write */
} wr;

static void wr_init(wr *w, size_t hint)
{
	msgpack_sbuffer_init(&w->sb);
	msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
	w->err = 0;
	if (hint > 0) {
		/* One allocation up front for big batches; the sbuffer grows
		 * by doubling otherwise. */
		w->sb.data = malloc(hint);
		if (w->sb.data != NULL)
			w->sb.alloc = hint;
	}
}

static void wr_check(wr *w, int rc)
{
	if (rc != 0)
		w->err = 1;
}

static void wr_head(wr *w, int type, size_t nfields)
{
	wr_check(w, msgpack_pack_array(&w->pk, 2 + nfields));
	wr_check(w, msgpack_pack_uint8(&w->pk, (uint8_t)type));
	wr_check(w, msgpack_pack_uint8(&w->pk, QP_SYNC_VERSION));
}

static void wr_bin(wr *w, const void *p, size_t n)
{
	wr_check(w, msgpack_pack_bin(&w->pk, n));
	wr_check(w, msgpack_pack_bin_body(&w->pk, p, n));
}

/* Hand the packed bytes to the caller, or free them on a failed write. */
static int wr_finish(wr *w, uint8_t **out, size_t *outlen)
{
	size_t n = w->sb.size;

	if (w->err) {
		msgpack_sbuffer_destroy(&w->sb);
		return QP_ENOMEM;
	}
	*out = (uint8_t *)msgpack_sbuffer_release(&w->sb);
	*outlen = n;
	return 0;
}

/* Feed order; see sync.h. */
int qp_feed_cmp(const qp_feed *a, const qp_feed *b)
{
	return memcmp(a, b, sizeof(qp_feed));
}

/* 0 when e[0..n) has strictly ascending feeds, else QP_EINVAL. */
static int check_order(const qp_vv_entry *e, size_t n)
{
	if (n > 0 && e == NULL)
		return QP_EINVAL;
	for (size_t i = 1; i < n; i++)
		if (qp_feed_cmp(&e[i - 1].feed, &e[i].feed) >= 0)
			return QP_EINVAL;
	return 0;
}

static void wr_entries(wr *w, const qp_vv_entry *e, size_t n)
{
	wr_check(w, msgpack_pack_array(&w->pk, n));
	for (size_t i = 0; i < n; i++) {
		wr_check(w, msgpack_pack_array(&w->pk, 2));
		wr_bin(w, &e[i].feed, QP_SYNC_FEED_LEN);
		wr_check(w, msgpack_pack_uint64(&w->pk, e[i].seq));
	}
}

/* Message type names for logs; see sync.h. */
const char *qp_sync_type_name(int type)
{
	switch (type) {
	case QP_SYNC_VECTOR: return "VECTOR";
	case QP_SYNC_DELTAS: return "DELTAS";
	case QP_SYNC_ACK: return "ACK";
	case QP_SYNC_REVOKES: return "REVOCATIONS";
	case QP_SYNC_DONE: return "DONE";
	case QP_SYNC_ERROR: return "ERROR";
	case QP_SYNC_CERTS: return "CERTS";
	case QP_SYNC_CHAIN: return "CHAIN";
	default: return "unknown";
	}
}

/* VECTOR and ACK share their shape: [type, ver, scalar, entries], the
 * scalar being VECTOR's "more" flag or ACK's "received" count. */
static int encode_entries_msg(int type, int more, uint64_t received,
                              const qp_vv_entry *e, size_t n, uint8_t **out,
                              size_t *outlen)
{
	wr w;
	int rc;

	if (out == NULL || outlen == NULL)
		return QP_EINVAL;
	if (n > QP_SYNC_VECTOR_MAX)
		return QP_ETOOBIG;
	rc = check_order(e, n);
	if (rc != 0)
		return rc;
	wr_init(&w, 24 + n * (ENTRY_MIN + 8));
	wr_head(&w, type, 2);
	if (type == QP_SYNC_VECTOR)
		wr_check(&w, more ? msgpack_pack_true(&w.pk)
		                  : msgpack_pack_false(&w.pk));
	else
		wr_check(&w, msgpack_pack_uint64(&w.pk, received));
	wr_entries(&w, e, n);
	return wr_finish(&w, out, outlen);
}

/* Encode a VECTOR; see sync.h. */
int qp_sync_encode_vector(const qp_vv_entry *e, size_t n, int more,
                          uint8_t **out, size_t *outlen)
{
	return encode_entries_msg(QP_SYNC_VECTOR, more, 0, e, n, out, outlen);
}

/* Encode an ACK; see sync.h. */
int qp_sync_encode_ack(const qp_vv_entry *e, size_t n, uint64_t received,
                       uint8_t **out, size_t *outlen)
{
	return encode_entries_msg(QP_SYNC_ACK, 0, received, e, n, out, outlen);
}

/* 1 when a batch of n deltas totalling bytes may take one of len bytes. */
int qp_sync_batch_fits(size_t n, size_t bytes, size_t len)
{
	if (len > QP_DELTA_MAX)
		return 0;
	if (n == 0)
		return 1;
	if (n >= QP_SYNC_BATCH_MAX)
		return 0;
	return bytes <= QP_SYNC_BATCH_BYTES &&
	       len <= QP_SYNC_BATCH_BYTES - bytes;
}

/* The batch limits, shared by the encoder and the decoder.  Returns 0,
 * QP_ETOOBIG or QP_EINVAL (bad_rc) for a delta below the minimum. */
static int check_batch(const size_t *lens, size_t n, int bad_rc)
{
	size_t bytes = 0;

	if (n == 0)
		return bad_rc;
	if (n > QP_SYNC_BATCH_MAX)
		return QP_ETOOBIG;
	for (size_t i = 0; i < n; i++) {
		if (lens[i] < QP_SYNC_DELTA_MIN)
			return bad_rc;
		if (!qp_sync_batch_fits(i, bytes, lens[i]))
			return QP_ETOOBIG;
		bytes += lens[i];
	}
	return 0;
}

/* Encode a DELTAS batch; see sync.h. */
int qp_sync_encode_deltas(const uint8_t *const *deltas, const size_t *lens,
                          size_t n, uint8_t **out, size_t *outlen)
{
	size_t bytes = 0;
	wr w;
	int rc;

	if (out == NULL || outlen == NULL || deltas == NULL || lens == NULL)
		return QP_EINVAL;
	rc = check_batch(lens, n, QP_EINVAL);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (deltas[i] == NULL)
			return QP_EINVAL;
		bytes += lens[i];
	}
	wr_init(&w, 16 + bytes + 5 * n);
	wr_head(&w, QP_SYNC_DELTAS, 1);
	wr_check(&w, msgpack_pack_array(&w.pk, n));
	for (size_t i = 0; i < n; i++)
		wr_bin(&w, deltas[i], lens[i]);
	return wr_finish(&w, out, outlen);
}

/* Encode REVOCATIONS; see sync.h. */
int qp_sync_encode_revocations(const uint8_t *const *revs, size_t n,
                               uint8_t **out, size_t *outlen)
{
	wr w;

	if (out == NULL || outlen == NULL || (n > 0 && revs == NULL))
		return QP_EINVAL;
	if (n > QP_SYNC_REV_MAX)
		return QP_ETOOBIG;
	for (size_t i = 0; i < n; i++)
		if (revs[i] == NULL)
			return QP_EINVAL;
	wr_init(&w, 16 + n * REV_ITEM_MIN);
	wr_head(&w, QP_SYNC_REVOKES, 1);
	wr_check(&w, msgpack_pack_array(&w.pk, n));
	for (size_t i = 0; i < n; i++)
		wr_bin(&w, revs[i], QP_REV_LEN);
	return wr_finish(&w, out, outlen);
}

/* CERTS or CHAIN: a list of certificate bytes, each in range. */
static int encode_cert_list(int type, size_t max, const uint8_t *const *certs,
                            const size_t *lens, size_t n, uint8_t **out,
                            size_t *outlen)
{
	size_t bytes = 0;
	wr w;

	if (out == NULL || outlen == NULL ||
	    (n > 0 && (certs == NULL || lens == NULL)))
		return QP_EINVAL;
	if (n > max)
		return QP_ETOOBIG;
	for (size_t i = 0; i < n; i++) {
		if (certs[i] == NULL || lens[i] < QP_CERT_MIN ||
		    lens[i] > QP_CERT_MAX)
			return QP_EINVAL;
		bytes += lens[i] + 3;
	}
	wr_init(&w, 16 + bytes);
	wr_head(&w, type, 1);
	wr_check(&w, msgpack_pack_array(&w.pk, n));
	for (size_t i = 0; i < n; i++)
		wr_bin(&w, certs[i], lens[i]);
	return wr_finish(&w, out, outlen);
}

/* Encode CERTS; see sync.h. */
int qp_sync_encode_certs(const uint8_t *const *certs, const size_t *lens,
                         size_t n, uint8_t **out, size_t *outlen)
{
	return encode_cert_list(QP_SYNC_CERTS, QP_SYNC_CERTS_MAX, certs, lens,
	                        n, out, outlen);
}

/* Encode CHAIN; see sync.h. */
int qp_sync_encode_chain(const uint8_t *const *certs, const size_t *lens,
                         size_t n, uint8_t **out, size_t *outlen)
{
	return encode_cert_list(QP_SYNC_CHAIN, QP_SYNC_CHAIN_MAX, certs, lens,
	                        n, out, outlen);
}

/* Encode DONE; see sync.h. */
int qp_sync_encode_done(uint8_t **out, size_t *outlen)
{
	wr w;

	if (out == NULL || outlen == NULL)
		return QP_EINVAL;
	wr_init(&w, 0);
	wr_head(&w, QP_SYNC_DONE, 0);
	return wr_finish(&w, out, outlen);
}

/* 1 when s[0..n) is valid UTF-8 (jansson's check; it also admits NUL,
 * which the callers refuse as a control character). */
static int utf8_valid(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);

	if (j == NULL)
		return 0;
	json_decref(j);
	return 1;
}

/* Length of the control character (C0, DEL, or C1 as UTF-8) at s[i..n),
 * or 0 when s[i] starts none. */
static size_t control_at(const uint8_t *s, size_t i, size_t n)
{
	if (s[i] < 0x20 || s[i] == 0x7f)
		return 1;
	if (s[i] == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)
		return 2;
	return 0;
}

/* Copy src[0..n) into dst (QP_SYNC_WHY_MAX bytes, NUL-terminated) so that
 * it is valid UTF-8 without control characters; returns its length. */
static size_t clean_reason(char *dst, const uint8_t *src, size_t n)
{
	int valid = utf8_valid((const char *)src, n);
	size_t i = 0, o = 0;

	while (i < n && o < QP_SYNC_WHY_MAX - 1) {
		size_t c = control_at(src, i, n), len = 1;

		if (c > 0) {
			dst[o++] = '?';
			i += c;
			continue;
		}
		if (!valid && src[i] >= 0x80) {
			dst[o++] = '?';
			i++;
			continue;
		}
		/* Copy a whole character or stop: never cut one. */
		if (src[i] >= 0xf0)
			len = 4;
		else if (src[i] >= 0xe0)
			len = 3;
		else if (src[i] >= 0xc0)
			len = 2;
		if (o + len > QP_SYNC_WHY_MAX - 1)
			break;
		memcpy(dst + o, src + i, len);
		o += len;
		i += len;
	}
	dst[o] = '\0';
	return o;
}

/* Encode ERROR; see sync.h. */
int qp_sync_encode_error(int code, const char *reason, uint8_t **out,
                         size_t *outlen)
{
	char clean[QP_SYNC_WHY_MAX];
	size_t n;
	wr w;

	if (out == NULL || outlen == NULL || code >= 0)
		return QP_EINVAL;
	if (reason == NULL)
		reason = "";
	n = clean_reason(clean, (const uint8_t *)reason, strlen(reason));
	wr_init(&w, 0);
	wr_head(&w, QP_SYNC_ERROR, 2);
	wr_check(&w, msgpack_pack_int64(&w.pk, code));
	wr_check(&w, msgpack_pack_str(&w.pk, n));
	wr_check(&w, msgpack_pack_str_body(&w.pk, clean, n));
	return wr_finish(&w, out, outlen);
}

/* Encode any decoded message; see sync.h. */
int qp_sync_encode(const qp_sync_msg *m, uint8_t **out, size_t *outlen)
{
	if (m == NULL)
		return QP_EINVAL;
	switch (m->type) {
	case QP_SYNC_VECTOR:
		return qp_sync_encode_vector(m->entries, m->nentries, m->more,
		                             out, outlen);
	case QP_SYNC_DELTAS:
		return qp_sync_encode_deltas(m->items, m->lens, m->nitems, out,
		                             outlen);
	case QP_SYNC_ACK:
		return qp_sync_encode_ack(m->entries, m->nentries, m->received,
		                          out, outlen);
	case QP_SYNC_REVOKES:
		if (m->lens != NULL)
			for (size_t i = 0; i < m->nitems; i++)
				if (m->lens[i] != QP_REV_LEN)
					return QP_EINVAL;
		return qp_sync_encode_revocations(m->items, m->nitems, out,
		                                  outlen);
	case QP_SYNC_DONE: return qp_sync_encode_done(out, outlen);
	case QP_SYNC_ERROR:
		return qp_sync_encode_error(m->code, m->reason, out, outlen);
	case QP_SYNC_CERTS:
		return qp_sync_encode_certs(m->items, m->lens, m->nitems, out,
		                            outlen);
	case QP_SYNC_CHAIN:
		return qp_sync_encode_chain(m->items, m->lens, m->nitems, out,
		                            outlen);
	default: return QP_EINVAL;
	}
}

/* ---- strict reading --------------------------------------------------- */

typedef struct rd {
	const uint8_t *p, *end;
} rd;

static size_t rd_left(const rd *r)
{
	return (size_t)(r->end - r->p);
}

/* Read an n-byte big-endian number after the type byte. */
static int rd_be(rd *r, size_t n, uint64_t *v)
{
	uint64_t x = 0;

	if (rd_left(r) < n)
		return QP_EPROTO;
	for (size_t i = 0; i < n; i++)
		x = x << 8 | r->p[i];
	r->p += n;
	*v = x;
	return 0;
}

/* An array header in its shortest form. */
static int rd_array(rd *r, uint64_t *n)
{
	uint8_t b;
	int rc;

	if (rd_left(r) < 1)
		return QP_EPROTO;
	b = *r->p++;
	if (b >= 0x90 && b <= 0x9f) {
		*n = b & 0x0f;
		return 0;
	}
	if (b == 0xdc) {
		rc = rd_be(r, 2, n);
		return rc != 0 ? rc : (*n < 16 ? QP_EPROTO : 0);
	}
	if (b == 0xdd) {
		rc = rd_be(r, 4, n);
		return rc != 0 ? rc : (*n < 0x10000 ? QP_EPROTO : 0);
	}
	return QP_EPROTO;
}

/* An unsigned integer in its shortest form. */
static int rd_uint(rd *r, uint64_t *v)
{
	static const uint64_t min[4] = {0x80, 0x100, 0x10000, 0x100000000ull};
	uint8_t b;
	int rc;

	if (rd_left(r) < 1)
		return QP_EPROTO;
	b = *r->p++;
	if (b <= 0x7f) {
		*v = b;
		return 0;
	}
	if (b < 0xcc || b > 0xcf)
		return QP_EPROTO;
	rc = rd_be(r, (size_t)1 << (b - 0xcc), v);
	if (rc != 0)
		return rc;
	return *v < min[b - 0xcc] ? QP_EPROTO : 0;
}

/* A negative integer >= INT32_MIN in its shortest form. */
static int rd_negint(rd *r, int64_t *v)
{
	uint64_t u;
	int64_t x;
	uint8_t b;
	size_t n;
	int rc;

	if (rd_left(r) < 1)
		return QP_EPROTO;
	b = *r->p++;
	if (b >= 0xe0) {
		*v = (int64_t)b - 256;
		return 0;
	}
	if (b < 0xd0 || b > 0xd2)
		return QP_EPROTO; /* positive, int64 (too small) or no int */
	n = (size_t)1 << (b - 0xd0);
	rc = rd_be(r, n, &u);
	if (rc != 0)
		return rc;
	/* Sign-extend from n bytes. */
	x = (int64_t)(u ^ (1ull << (8 * n - 1))) -
	    (int64_t)(1ull << (8 * n - 1));
	/* Shortest form: below the range of the next smaller one. */
	if (x >= 0 || (b == 0xd0 && x >= -32) || (b == 0xd1 && x >= -128) ||
	    (b == 0xd2 && x >= -32768))
		return QP_EPROTO;
	*v = x;
	return 0;
}

static int rd_bool(rd *r, int *v)
{
	if (rd_left(r) < 1)
		return QP_EPROTO;
	if (*r->p != 0xc2 && *r->p != 0xc3)
		return QP_EPROTO;
	*v = *r->p++ == 0xc3;
	return 0;
}

/* A bin (str when is_str) in its shortest form, whose bytes must be there:
 * *p points at them. */
static int rd_bytes(rd *r, int is_str, const uint8_t **p, size_t *n)
{
	uint64_t len;
	uint8_t b;
	int rc;

	if (rd_left(r) < 1)
		return QP_EPROTO;
	b = *r->p++;
	if (is_str && b >= 0xa0 && b <= 0xbf) {
		len = b & 0x1f;
	} else {
		uint8_t base = is_str ? 0xd9 : 0xc4;
		static const uint64_t bin_min[3] = {0, 0x100, 0x10000};
		static const uint64_t str_min[3] = {32, 0x100, 0x10000};

		if (b < base || b > base + 2)
			return QP_EPROTO;
		rc = rd_be(r, (size_t)1 << (b - base), &len);
		if (rc != 0)
			return rc;
		if (len < (is_str ? str_min : bin_min)[b - base])
			return QP_EPROTO;
	}
	if (len > rd_left(r))
		return QP_EPROTO;
	*p = r->p;
	*n = (size_t)len;
	r->p += len;
	return 0;
}

/* Entries [[feed, seq]...] into a new array (NULL when empty). */
static int rd_entries(rd *r, qp_vv_entry **out, size_t *nout)
{
	qp_vv_entry *e = NULL;
	uint64_t n, two;
	int rc;

	rc = rd_array(r, &n);
	if (rc != 0)
		return rc;
	if (n > QP_SYNC_VECTOR_MAX)
		return QP_ETOOBIG;
	if (n > rd_left(r) / ENTRY_MIN)
		return QP_EPROTO;
	if (n > 0)
		e = qp_xmalloc(n * sizeof(*e));
	for (size_t i = 0; i < n; i++) {
		const uint8_t *feed;
		size_t flen;

		rc = rd_array(r, &two);
		if (rc == 0 && two != 2)
			rc = QP_EPROTO;
		if (rc == 0)
			rc = rd_bytes(r, 0, &feed, &flen);
		if (rc == 0 && flen != QP_SYNC_FEED_LEN)
			rc = QP_EPROTO;
		if (rc == 0)
			rc = rd_uint(r, &e[i].seq);
		if (rc != 0)
			goto fail;
		memcpy(&e[i].feed, feed, QP_SYNC_FEED_LEN);
		if (i > 0 && qp_feed_cmp(&e[i - 1].feed, &e[i].feed) >= 0) {
			rc = QP_EPROTO;
			goto fail;
		}
	}
	*out = e;
	*nout = n;
	return 0;
fail:
	free(e);
	return rc;
}

/* Bins [b...] into views; each item at least min_item encoded bytes. */
static int rd_items(rd *r, size_t max, size_t min_item, qp_sync_msg *m)
{
	uint64_t n;
	int rc;

	rc = rd_array(r, &n);
	if (rc != 0)
		return rc;
	if (n > max)
		return QP_ETOOBIG;
	if (n > rd_left(r) / min_item)
		return QP_EPROTO;
	if (n == 0)
		return 0;
	m->items = qp_xmalloc(n * sizeof(*m->items));
	m->lens = qp_xmalloc(n * sizeof(*m->lens));
	m->nitems = n;
	for (size_t i = 0; i < n; i++) {
		rc = rd_bytes(r, 0, &m->items[i], &m->lens[i]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The reason of an ERROR: bounded, valid UTF-8, no control characters. */
static int rd_reason(rd *r, char reason[QP_SYNC_WHY_MAX])
{
	const uint8_t *s;
	size_t n;
	int rc;

	rc = rd_bytes(r, 1, &s, &n);
	if (rc != 0)
		return rc;
	if (n > QP_SYNC_WHY_MAX - 1)
		return QP_ETOOBIG;
	for (size_t i = 0; i < n; i++)
		if (control_at(s, i, n) > 0)
			return QP_EPROTO;
	if (!utf8_valid((const char *)s, n))
		return QP_EPROTO;
	memcpy(reason, s, n);
	reason[n] = '\0';
	return 0;
}

/* The fields after type and version, as m->type says. */
static int rd_body(rd *r, uint64_t nfields, qp_sync_msg *m)
{
	int64_t code;
	int rc;

	switch (m->type) {
	case QP_SYNC_VECTOR:
		if (nfields != 4)
			return QP_EPROTO;
		rc = rd_bool(r, &m->more);
		return rc != 0 ? rc : rd_entries(r, &m->entries, &m->nentries);
	case QP_SYNC_ACK:
		if (nfields != 4)
			return QP_EPROTO;
		rc = rd_uint(r, &m->received);
		return rc != 0 ? rc : rd_entries(r, &m->entries, &m->nentries);
	case QP_SYNC_DELTAS:
		if (nfields != 3)
			return QP_EPROTO;
		rc = rd_items(r, QP_SYNC_BATCH_MAX, DELTA_ITEM_MIN, m);
		if (rc != 0)
			return rc;
		return check_batch(m->lens, m->nitems, QP_EPROTO);
	case QP_SYNC_REVOKES:
		if (nfields != 3)
			return QP_EPROTO;
		rc = rd_items(r, QP_SYNC_REV_MAX, REV_ITEM_MIN, m);
		if (rc != 0)
			return rc;
		for (size_t i = 0; i < m->nitems; i++)
			if (m->lens[i] != QP_REV_LEN)
				return QP_EPROTO;
		return 0;
	case QP_SYNC_CERTS:
	case QP_SYNC_CHAIN:
		if (nfields != 3)
			return QP_EPROTO;
		rc = rd_items(r, m->type == QP_SYNC_CHAIN ? QP_SYNC_CHAIN_MAX
		                                          : QP_SYNC_CERTS_MAX,
		              CERT_ITEM_MIN, m);
		if (rc != 0)
			return rc;
		for (size_t i = 0; i < m->nitems; i++)
			if (m->lens[i] < QP_CERT_MIN ||
			    m->lens[i] > QP_CERT_MAX)
				return QP_EPROTO;
		return 0;
	case QP_SYNC_DONE: return nfields == 2 ? 0 : QP_EPROTO;
	case QP_SYNC_ERROR:
		if (nfields != 4)
			return QP_EPROTO;
		rc = rd_negint(r, &code);
		if (rc != 0)
			return rc;
		m->code = (int)code;
		return rd_reason(r, m->reason);
	default: return QP_EPROTO;
	}
}

/* Decode one message; see sync.h. */
int qp_sync_decode(const uint8_t *buf, size_t len, qp_sync_msg *out)
{
	qp_sync_msg m;
	uint64_t nfields, type, version;
	rd r;
	int rc;

	if (out == NULL || (buf == NULL && len > 0))
		return QP_EINVAL;
	if (len > QP_CHANNEL_MAX)
		return QP_ETOOBIG;
	memset(&m, 0, sizeof(m));
	r.p = buf;
	r.end = buf + len;
	rc = rd_array(&r, &nfields);
	if (rc == 0 && nfields < 2)
		rc = QP_EPROTO;
	if (rc == 0)
		rc = rd_uint(&r, &type);
	if (rc == 0 && (type < QP_SYNC_VECTOR || type > QP_SYNC_CHAIN))
		rc = QP_EPROTO;
	if (rc == 0)
		rc = rd_uint(&r, &version);
	if (rc == 0 && version != QP_SYNC_VERSION)
		rc = QP_EVERSION;
	if (rc != 0)
		return rc;
	m.type = (int)type;
	rc = rd_body(&r, nfields, &m);
	if (rc == 0 && r.p != r.end)
		rc = QP_EPROTO; /* trailing bytes */
	if (rc != 0) {
		qp_sync_msg_free(&m);
		return rc;
	}
	*out = m;
	return m.type;
}

/* Free a decoded message; see sync.h. */
void qp_sync_msg_free(qp_sync_msg *m)
{
	if (m == NULL)
		return;
	free(m->entries);
	free(m->items);
	free(m->lens);
	memset(m, 0, sizeof(*m));
}

/* ---- version vectors -------------------------------------------------- */

/* An empty vector; see sync.h. */
void qp_vv_init(qp_vv *vv)
{
	vv->e = NULL;
	vv->n = vv->cap = 0;
}

/* Free and empty a vector; see sync.h. */
void qp_vv_free(qp_vv *vv)
{
	if (vv == NULL)
		return;
	free(vv->e);
	qp_vv_init(vv);
}

/* Index of feed in vv, or of where it would go (*found 0). */
static size_t vv_find(const qp_vv *vv, const qp_feed *feed, int *found)
{
	size_t lo = 0, hi = vv->n;

	/* Appending in order is the common case (building from the store). */
	if (vv->n > 0 && qp_feed_cmp(&vv->e[vv->n - 1].feed, feed) < 0) {
		*found = 0;
		return vv->n;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = qp_feed_cmp(&vv->e[mid].feed, feed);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

/* One feed's seq, 0 when absent; see sync.h. */
uint64_t qp_vv_get(const qp_vv *vv, const qp_feed *feed)
{
	size_t i;
	int found;

	if (vv == NULL || feed == NULL)
		return 0;
	i = vv_find(vv, feed, &found);
	return found ? vv->e[i].seq : 0;
}

/* Set one feed's seq; see sync.h. */
int qp_vv_set(qp_vv *vv, const qp_feed *feed, uint64_t seq)
{
	size_t i;
	int found;

	if (vv == NULL || feed == NULL)
		return QP_EINVAL;
	i = vv_find(vv, feed, &found);
	if (found) {
		vv->e[i].seq = seq;
		return 0;
	}
	if (vv->n >= QP_SYNC_VV_MAX)
		return QP_ETOOBIG;
	if (vv->n == vv->cap) {
		vv->cap = vv->cap ? vv->cap * 2 : 64;
		vv->e = qp_xrealloc(vv->e, vv->cap * sizeof(*vv->e));
	}
	memmove(&vv->e[i + 1], &vv->e[i], (vv->n - i) * sizeof(*vv->e));
	vv->e[i].feed = *feed;
	vv->e[i].seq = seq;
	vv->n++;
	return 0;
}

/* Merge-max e[0..n) into vv; see sync.h. */
int qp_vv_merge(qp_vv *vv, const qp_vv_entry *e, size_t n)
{
	qp_vv_entry *m;
	size_t i = 0, j = 0, k = 0, total = vv != NULL ? vv->n : 0;
	int rc;

	if (vv == NULL)
		return QP_EINVAL;
	rc = check_order(e, n);
	if (rc != 0)
		return rc;
	if (n == 0)
		return 0;
	/* Count the union first, so a refusal leaves vv unchanged. */
	while (j < n) {
		int c = i < vv->n ? qp_feed_cmp(&vv->e[i].feed, &e[j].feed) : 1;
		if (c < 0) {
			i++;
		} else {
			if (c > 0)
				total++;
			else
				i++;
			j++;
		}
	}
	if (total > QP_SYNC_VV_MAX)
		return QP_ETOOBIG;
	m = qp_xmalloc(total * sizeof(*m));
	i = j = 0;
	while (i < vv->n || j < n) {
		int c = i == vv->n ? 1
		        : j == n   ? -1
		                   : qp_feed_cmp(&vv->e[i].feed, &e[j].feed);
		if (c < 0) {
			m[k++] = vv->e[i++];
		} else if (c > 0) {
			m[k++] = e[j++];
		} else {
			m[k] = vv->e[i++];
			if (e[j].seq > m[k].seq)
				m[k].seq = e[j].seq;
			k++;
			j++;
		}
	}
	free(vv->e);
	vv->e = m;
	vv->n = vv->cap = total;
	return 0;
}

static int org_cmp(const void *a, const void *b)
{
	return memcmp(a, b, QP_UUID_LEN);
}

/* What theirs lacks of mine; see sync.h. */
int qp_vv_missing(const qp_vv *mine, const qp_vv *theirs,
                  const uint8_t (*orgs)[QP_UUID_LEN], size_t norgs,
                  qp_vv_range **out, size_t *nout)
{
	uint8_t(*scope)[QP_UUID_LEN] = NULL;
	qp_vv_range *r = NULL;
	size_t n = 0, cap = 0, j = 0;

	if (mine == NULL || theirs == NULL || out == NULL || nout == NULL ||
	    (orgs == NULL && norgs > 0))
		return QP_EINVAL;
	if (orgs != NULL && norgs > 0) {
		/* Sorted copy, for a binary search per feed. */
		scope = qp_xmalloc(norgs * QP_UUID_LEN);
		memcpy(scope, orgs, norgs * QP_UUID_LEN);
		qsort(scope, norgs, QP_UUID_LEN, org_cmp);
	}
	for (size_t i = 0; i < mine->n; i++) {
		const qp_vv_entry *m = &mine->e[i];
		uint64_t have = 0;

		/* Both are sorted: walk theirs alongside. */
		while (j < theirs->n &&
		       qp_feed_cmp(&theirs->e[j].feed, &m->feed) < 0)
			j++;
		if (j < theirs->n &&
		    qp_feed_cmp(&theirs->e[j].feed, &m->feed) == 0)
			have = theirs->e[j].seq;
		if (m->seq <= have)
			continue;
		if (orgs != NULL &&
		    (norgs == 0 || bsearch(m->feed.org, scope, norgs,
		                           QP_UUID_LEN, org_cmp) == NULL))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			r = qp_xrealloc(r, cap * sizeof(*r));
		}
		r[n].feed = m->feed;
		r[n].from = have;
		r[n].to = m->seq;
		n++;
	}
	free(scope);
	*out = r;
	*nout = n;
	return 0;
}
