/*
 * delta.c - ops, signed deltas, hashes and keys; see delta.h.
 *
 * Building packs the ops straight after a reserved header in one
 * msgpack_sbuffer, so an uncompressed delta is finished in place (header
 * filled in, signature appended) and handed over without a copy; a
 * compressed one is compressed straight into its final buffer.
 *
 * Decoding trusts nothing, not even bytes that verified: a signature proves
 * who wrote a delta, not that the writer was honest.  The body's structure
 * is checked by qp__mpjson_check before msgpack-c sees it (msgpack-c
 * allocates from declared counts), the decompressed size is bounded and
 * must match the header exactly, and each op field is type-checked.
 */
#include "delta.h"
#include "err.h"
#include "mpjson.h"
#include "util.h"

#include <msgpack.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* Header field offsets (see the table in delta.h). */
#define OFF_AUTHOR 4
#define OFF_ORG 36
#define OFF_SEQ 52
#define OFF_PREV 60
#define OFF_HLC 92
#define OFF_FLAGS 100
#define OFF_RAW 101
#define OFF_BODY 105

#define QP__OP_FIELDS 6
#define QP__REASON_MAX 4096 /* bytes of a void op's reason */
#define QP__ZSTD_LEVEL 3
/* zstd's frame overhead means bodies this short never shrink; skip the
 * attempt on the hot path of small writes. */
#define QP__ZSTD_MIN 64
/* Body array, op array, then a payload nested up to the mpjson limit. */
#define QP__BODY_DEPTH (2 + QP_MPJSON_MAX_DEPTH)
#define QP__ZONE_CHUNK 4096

static const uint8_t zero_hash[QP_HASH_LEN];

/* Release what op owns.  Accepts NULL. */
void qp_op_clear(qp_op *op)
{
	if (op == NULL)
		return;
	json_decref(op->fields);
	free(op->reason);
	op->fields = NULL;
	op->reason = NULL;
}

/* Clear ops[0..n) and free the array.  Accepts NULL. */
void qp_ops_free(qp_op *ops, size_t n)
{
	if (ops == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		qp_op_clear(&ops[i]);
	free(ops);
}

/* Kinds and reasons are C strings on the decoding side: refuse NUL inside
 * and invalid UTF-8.  ASCII, the usual case, needs no allocation. */
static int text_ok(const char *s, size_t n)
{
	size_t i;
	json_t *j;

	for (i = 0; i < n; i++) {
		if (s[i] == '\0')
			return 0;
		if ((unsigned char)s[i] >= 0x80)
			break;
	}
	if (i == n)
		return 1;
	if (memchr(s + i, '\0', n - i) != NULL)
		return 0;
	j = json_stringn(s, n);
	if (j == NULL)
		return 0;
	json_decref(j);
	return 1;
}

static int pack_op(msgpack_packer *pk, const qp_op *op)
{
	size_t klen = strnlen(op->kind, sizeof(op->kind)), rlen = 0;

	if (op->type < QP_OP_CREATE || op->type > QP_OP_VOID)
		return QP_EINVAL;
	if (klen == 0 || klen >= sizeof(op->kind) || !text_ok(op->kind, klen))
		return QP_EINVAL;
	if (op->type == QP_OP_VOID) {
		if (op->reason == NULL)
			return QP_EINVAL;
		rlen = strlen(op->reason);
		if (rlen > QP__REASON_MAX || !text_ok(op->reason, rlen))
			return QP_EINVAL;
	} else if (!json_is_object(op->fields)) {
		return QP_EINVAL;
	}
	if (msgpack_pack_array(pk, QP__OP_FIELDS) != 0 ||
	    msgpack_pack_uint8(pk, (uint8_t)op->type) != 0 ||
	    msgpack_pack_bin_with_body(pk, op->id, QP_UUID_LEN) != 0 ||
	    msgpack_pack_str_with_body(pk, op->kind, klen) != 0 ||
	    msgpack_pack_uint64(pk, op->hlc) != 0 ||
	    msgpack_pack_uint64(pk, op->base) != 0)
		return QP_ENOMEM;
	if (op->type == QP_OP_VOID) {
		if (msgpack_pack_str_with_body(pk, op->reason, rlen) != 0)
			return QP_ENOMEM;
		return 0;
	}
	return qp_mpjson_pack(pk, op->fields);
}

static void write_hdr(uint8_t *b, const qp_feed *feed, uint64_t seq,
		      const uint8_t *prev, uint64_t hlc, uint8_t flags,
		      uint32_t raw_len, uint32_t body_len)
{
	memcpy(b, QP_DELTA_MAGIC, 4);
	memcpy(b + OFF_AUTHOR, feed->author, QP_KEY_LEN);
	memcpy(b + OFF_ORG, feed->org, QP_UUID_LEN);
	qp_put_be64(b + OFF_SEQ, seq);
	memcpy(b + OFF_PREV, prev, QP_HASH_LEN);
	qp_put_be64(b + OFF_HLC, hlc);
	b[OFF_FLAGS] = flags;
	qp_put_be32(b + OFF_RAW, raw_len);
	qp_put_be32(b + OFF_BODY, body_len);
}

/* One compression context per thread, made on first use and kept:
 * ZSTD_compress would allocate and set up a new one for every delta, which
 * costs more than compressing a small one.  Owned by the thread for the
 * life of the process.  Aborts when out of memory, like qp_xmalloc. */
static ZSTD_CCtx *cctx(void)
{
	static _Thread_local ZSTD_CCtx *c;
	if (c == NULL && (c = ZSTD_createCCtx()) == NULL)
		abort();
	return c;
}

/* Build and sign a delta; see delta.h.  prev may be NULL, meaning all
 * zero, which seq 1 requires.  Errors: QP_EINVAL (no ops, seq 0, nonzero
 * prev at seq 1, key mismatch, an op with a bad type, an empty or over-long
 * kind, a create/update without an object, a void without a reason or with
 * one over 4 KiB or not UTF-8, a payload nested too deep), QP_ETOOBIG (more
 * than QP_DELTA_MAX_OPS ops, body over QP_DELTA_MAX_RAW, delta over
 * QP_DELTA_MAX), QP_ECOMPRESS, QP_ENOMEM.  *out and *outlen are written
 * only on success. */
int qp_delta_build(const qp_feed *feed, uint64_t seq,
		   const uint8_t prev[QP_HASH_LEN], const qp_op *ops,
		   size_t nops, const uint8_t sk[QP_SKEY_LEN], uint8_t **out,
		   size_t *outlen)
{
	static const char reserve[QP_DELTA_HDR + QP_DELTA_SIG];
	uint8_t pub[QP_KEY_LEN];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint8_t *buf = NULL, flags = 0;
	size_t raw_len, body_len, total;
	uint64_t hlc = 0;
	int rc;

	if (feed == NULL || ops == NULL || sk == NULL || out == NULL ||
	    outlen == NULL || nops == 0 || seq == 0)
		return QP_EINVAL;
	if (prev == NULL)
		prev = zero_hash;
	if (seq == 1 && memcmp(prev, zero_hash, QP_HASH_LEN) != 0)
		return QP_EINVAL;
	if (nops > QP_DELTA_MAX_OPS)
		return QP_ETOOBIG;
	crypto_sign_ed25519_sk_to_pk(pub, sk);
	if (memcmp(pub, feed->author, QP_KEY_LEN) != 0)
		return QP_EINVAL;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_sbuffer_write(&sb, reserve, QP_DELTA_HDR) != 0 ||
	    msgpack_pack_array(&pk, nops) != 0) {
		rc = QP_ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < nops; i++) {
		rc = pack_op(&pk, &ops[i]);
		if (rc != 0)
			goto fail;
		if (ops[i].hlc > hlc)
			hlc = ops[i].hlc;
		if (sb.size - QP_DELTA_HDR > QP_DELTA_MAX_RAW) {
			rc = QP_ETOOBIG;
			goto fail;
		}
	}
	raw_len = body_len = sb.size - QP_DELTA_HDR;

	if (raw_len >= QP__ZSTD_MIN) {
		size_t bound = ZSTD_compressBound(raw_len), zn;
		uint8_t *z = qp_xmalloc(QP_DELTA_HDR + bound + QP_DELTA_SIG);

		zn = ZSTD_compressCCtx(cctx(), z + QP_DELTA_HDR, bound,
				       sb.data + QP_DELTA_HDR, raw_len,
				       QP__ZSTD_LEVEL);
		if (ZSTD_isError(zn)) {
			free(z);
			rc = QP_ECOMPRESS;
			goto fail;
		}
		if (zn < raw_len) {
			msgpack_sbuffer_destroy(&sb);
			msgpack_sbuffer_init(&sb);
			buf = qp_xrealloc(z, QP_DELTA_HDR + zn + QP_DELTA_SIG);
			body_len = zn;
			flags = QP_DELTA_F_ZSTD;
		} else {
			free(z);
		}
	}
	total = QP_DELTA_HDR + body_len + QP_DELTA_SIG;
	if (total > QP_DELTA_MAX) {
		free(buf);
		rc = QP_ETOOBIG;
		goto fail;
	}
	if (buf == NULL) {
		/* Uncompressed: finish the delta inside the sbuffer. */
		if (msgpack_sbuffer_write(&sb, reserve, QP_DELTA_SIG) != 0) {
			rc = QP_ENOMEM;
			goto fail;
		}
		buf = (uint8_t *)msgpack_sbuffer_release(&sb);
	}
	write_hdr(buf, feed, seq, prev, hlc, flags, (uint32_t)raw_len,
		  (uint32_t)body_len);
	crypto_sign_detached(buf + QP_DELTA_HDR + body_len, NULL, buf,
			     QP_DELTA_HDR + body_len, sk);
	*out = buf;
	*outlen = total;
	return 0;
fail:
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* Parse and check the fixed header of buf[0..len) into *h. */
static int parse_hdr(const uint8_t *buf, size_t len, qp_delta_hdr *h)
{
	if (buf == NULL)
		return QP_EPROTO;
	if (len > QP_DELTA_MAX)
		return QP_ETOOBIG;
	if (len < QP_DELTA_HDR + QP_DELTA_SIG ||
	    memcmp(buf, QP_DELTA_MAGIC, 4) != 0)
		return QP_EPROTO;
	memcpy(h->feed.author, buf + OFF_AUTHOR, QP_KEY_LEN);
	memcpy(h->feed.org, buf + OFF_ORG, QP_UUID_LEN);
	h->seq = qp_get_be64(buf + OFF_SEQ);
	memcpy(h->prev, buf + OFF_PREV, QP_HASH_LEN);
	h->hlc = qp_get_be64(buf + OFF_HLC);
	h->flags = buf[OFF_FLAGS];
	h->raw_len = qp_get_be32(buf + OFF_RAW);
	h->body_len = qp_get_be32(buf + OFF_BODY);
	if (h->body_len != len - QP_DELTA_HDR - QP_DELTA_SIG)
		return QP_EPROTO;
	if ((h->flags & ~QP_DELTA_F_ZSTD) != 0)
		return QP_EPROTO;
	if (h->seq == 0)
		return QP_EPROTO;
	if (h->seq == 1 && memcmp(h->prev, zero_hash, QP_HASH_LEN) != 0)
		return QP_EPROTO;
	if (h->raw_len > QP_DELTA_MAX_RAW)
		return QP_ETOOBIG;
	/* At least one op: an empty body is malformed. */
	if (h->raw_len == 0 || h->body_len == 0)
		return QP_EPROTO;
	if (!(h->flags & QP_DELTA_F_ZSTD) && h->raw_len != h->body_len)
		return QP_EPROTO;
	return 0;
}

/* Check header and signature; see delta.h.  hdr may be NULL.  Errors:
 * QP_EPROTO (bad magic, lengths, flags, seq 0, nonzero prev at seq 1),
 * QP_ETOOBIG (delta or declared raw length over its limit), QP_ESIG. */
int qp_delta_verify(const uint8_t *buf, size_t len, qp_delta_hdr *hdr)
{
	qp_delta_hdr h;
	size_t signed_len;
	int rc;

	rc = parse_hdr(buf, len, &h);
	if (rc != 0)
		return rc;
	signed_len = len - QP_DELTA_SIG;
	if (crypto_sign_verify_detached(buf + signed_len, buf, signed_len,
					h.feed.author) != 0)
		return QP_ESIG;
	if (hdr != NULL)
		*hdr = h;
	return 0;
}

/* Read an array header at raw[*off]; the only msgpack parsing done by hand,
 * because the body and op arrays are walked element by element. */
static int array_header(const uint8_t *raw, size_t n, size_t *off,
			uint32_t *count)
{
	const uint8_t *p = raw + *off;
	size_t left = n - *off;

	if (left >= 1 && (p[0] & 0xf0) == 0x90) {
		*count = p[0] & 0x0fu;
		*off += 1;
	} else if (left >= 3 && p[0] == 0xdc) {
		*count = (uint32_t)p[1] << 8 | p[2];
		*off += 3;
	} else if (left >= 5 && p[0] == 0xdd) {
		*count = qp_get_be32(p + 1);
		*off += 5;
	} else {
		return QP_EPROTO;
	}
	return 0;
}

static int next_obj(const uint8_t *raw, size_t n, size_t *off,
		    msgpack_zone *zone, msgpack_object *o)
{
	switch (msgpack_unpack((const char *)raw, n, off, zone, o)) {
	case MSGPACK_UNPACK_SUCCESS:
	case MSGPACK_UNPACK_EXTRA_BYTES:
		return 0;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		return QP_ENOMEM;
	default:
		return QP_EPROTO;
	}
}

static int get_uint(const uint8_t *raw, size_t n, size_t *off,
		    msgpack_zone *zone, uint64_t *v)
{
	msgpack_object o;
	int rc = next_obj(raw, n, off, zone, &o);

	if (rc != 0)
		return rc;
	if (o.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return QP_EPROTO;
	*v = o.via.u64;
	return 0;
}

/* Decode one op at raw[*off] into *op (left untouched on failure). */
static int decode_op(const uint8_t *raw, size_t n, size_t *off,
		     msgpack_zone *zone, qp_op *op)
{
	qp_op o = {0};
	msgpack_object m;
	uint32_t count;
	uint64_t type;
	int rc;

	if ((rc = array_header(raw, n, off, &count)) != 0)
		return rc;
	if (count != QP__OP_FIELDS)
		return QP_EPROTO;
	if ((rc = get_uint(raw, n, off, zone, &type)) != 0)
		return rc;
	if (type < QP_OP_CREATE || type > QP_OP_VOID)
		return QP_EPROTO;
	o.type = (qp_op_type)type;

	if ((rc = next_obj(raw, n, off, zone, &m)) != 0)
		return rc;
	if (m.type != MSGPACK_OBJECT_BIN || m.via.bin.size != QP_UUID_LEN)
		return QP_EPROTO;
	memcpy(o.id, m.via.bin.ptr, QP_UUID_LEN);

	if ((rc = next_obj(raw, n, off, zone, &m)) != 0)
		return rc;
	if (m.type != MSGPACK_OBJECT_STR || m.via.str.size == 0 ||
	    m.via.str.size >= sizeof(o.kind) ||
	    !text_ok(m.via.str.ptr, m.via.str.size))
		return QP_EPROTO;
	memcpy(o.kind, m.via.str.ptr, m.via.str.size);

	if ((rc = get_uint(raw, n, off, zone, &o.hlc)) != 0 ||
	    (rc = get_uint(raw, n, off, zone, &o.base)) != 0)
		return rc;

	if ((rc = next_obj(raw, n, off, zone, &m)) != 0)
		return rc;
	if (o.type == QP_OP_VOID) {
		size_t rlen;
		if (m.type != MSGPACK_OBJECT_STR)
			return QP_EPROTO;
		rlen = m.via.str.size;
		if (rlen > QP__REASON_MAX || !text_ok(m.via.str.ptr, rlen))
			return QP_EPROTO;
		o.reason = qp_xmalloc(rlen + 1);
		if (rlen > 0)
			memcpy(o.reason, m.via.str.ptr, rlen);
		o.reason[rlen] = '\0';
	} else {
		if (m.type != MSGPACK_OBJECT_MAP)
			return QP_EPROTO;
		if ((rc = qp_mpjson_from_object(&m, &o.fields)) != 0)
			return rc;
	}
	*op = o;
	return 0;
}

/* Decode raw[0..n), the uncompressed body of a delta whose header claims
 * hlc as its largest op HLC. */
static int decode_body(const uint8_t *raw, size_t n, uint64_t hlc,
		       qp_op **out, size_t *nout)
{
	msgpack_zone zone;
	qp_op *ops = NULL;
	size_t used = 0, off = 0, done = 0;
	uint64_t max_hlc = 0;
	uint32_t count;
	int rc;

	rc = qp__mpjson_check((const char *)raw, n, QP__BODY_DEPTH, &used);
	if (rc != 0)
		return rc;
	if (used != n)
		return QP_EPROTO;
	if ((rc = array_header(raw, n, &off, &count)) != 0)
		return rc;
	if (count == 0)
		return QP_EPROTO;
	if (count > QP_DELTA_MAX_OPS)
		return QP_ETOOBIG;
	if (!msgpack_zone_init(&zone, QP__ZONE_CHUNK))
		return QP_ENOMEM;
	ops = qp_xcalloc(count, sizeof(*ops));
	for (; done < count; done++) {
		rc = decode_op(raw, n, &off, &zone, &ops[done]);
		if (rc != 0)
			goto fail;
		if (ops[done].hlc > max_hlc)
			max_hlc = ops[done].hlc;
		msgpack_zone_clear(&zone);
	}
	/* The header's hlc is signed: it must say what the ops say. */
	rc = QP_EPROTO;
	if (off != n || max_hlc != hlc)
		goto fail;
	msgpack_zone_destroy(&zone);
	*out = ops;
	*nout = count;
	return 0;
fail:
	msgpack_zone_destroy(&zone);
	qp_ops_free(ops, done);
	return rc;
}

/* Decode the ops of a verified delta; see delta.h.  Errors: QP_EPROTO,
 * QP_ETOOBIG, QP_ECOMPRESS (zstd body that does not decompress to exactly
 * raw_len bytes in one frame), QP_ENOMEM. */
int qp_delta_ops(const uint8_t *buf, size_t len, qp_op **ops, size_t *nops)
{
	const uint8_t *body = buf + QP_DELTA_HDR;
	uint8_t *raw = NULL;
	qp_delta_hdr h;
	int rc;

	if (ops == NULL || nops == NULL)
		return QP_EINVAL;
	rc = parse_hdr(buf, len, &h);
	if (rc != 0)
		return rc;
	if (!(h.flags & QP_DELTA_F_ZSTD))
		return decode_body(body, h.body_len, h.hlc, ops, nops);

	/* The frame must be one frame that states its size, and that size
	 * must be the signed raw_len, before anything is allocated. */
	if (ZSTD_findFrameCompressedSize(body, h.body_len) != h.body_len ||
	    ZSTD_getFrameContentSize(body, h.body_len) != h.raw_len)
		return QP_ECOMPRESS;
	raw = qp_xmalloc(h.raw_len);
	{
		size_t got = ZSTD_decompress(raw, h.raw_len, body, h.body_len);
		rc = QP_ECOMPRESS;
		if (!ZSTD_isError(got) && got == h.raw_len)
			rc = decode_body(raw, h.raw_len, h.hlc, ops, nops);
	}
	free(raw);
	return rc;
}

/* BLAKE2b-256 of buf[0..len). */
size_t qp_delta_raw_size(const uint8_t *buf, size_t len)
{
	if (buf == NULL || len < QP_DELTA_HDR)
		return 0;
	return qp_get_be32(buf + OFF_RAW);
}

void qp_delta_hash(const uint8_t *buf, size_t len, uint8_t out[QP_HASH_LEN])
{
	crypto_generichash(out, QP_HASH_LEN, buf, len, NULL, 0);
}

/* Fresh ed25519 key pair (libsodium layout). */
void qp_key_generate(uint8_t pk[QP_KEY_LEN], uint8_t sk[QP_SKEY_LEN])
{
	crypto_sign_keypair(pk, sk);
}

/* Initialise libsodium; safe to call more than once.  Returns 0 or
 * QP_ECRYPTO. */
int qp_crypto_init(void)
{
	return sodium_init() < 0 ? QP_ECRYPTO : 0;
}
