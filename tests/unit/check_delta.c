/* check_delta.c - covers proto/delta.c: ops, signed deltas, hash chain. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "delta.h"
#include "err.h"
#include "mpjson.h"
#include "suites.h"
#include "util.h"

static uint8_t author_pk[QP_KEY_LEN], sk[QP_SKEY_LEN];
static qp_feed feed;

static void setup(void)
{
	ck_assert_int_eq(qp_crypto_init(), 0);
	qp_key_generate(author_pk, sk);
	memcpy(feed.author, author_pk, QP_KEY_LEN);
	memset(feed.org, 0x42, QP_UUID_LEN);
}

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, 0, &e);
	ck_assert_msg(v != NULL, "bad test JSON: %s", e.text);
	return v;
}

static void make_op(qp_op *op, qp_op_type type, int i, const char *kind,
		    const char *json_or_reason)
{
	memset(op, 0, sizeof(*op));
	op->type = type;
	memset(op->id, i, QP_UUID_LEN);
	op->id[0] = 0x01;
	strcpy(op->kind, kind);
	op->hlc = ((uint64_t)1763899200000 + (uint64_t)i) << 16;
	op->base = type == QP_OP_CREATE ? 0 : op->hlc - 1000;
	if (type == QP_OP_VOID)
		op->reason = qp_xstrdup(json_or_reason);
	else
		op->fields = parse(json_or_reason);
}

/* n producer creates with repetitive fields (they compress well). */
static qp_op *make_ops(size_t n)
{
	qp_op *ops = qp_xcalloc(n, sizeof(*ops));
	for (size_t i = 0; i < n; i++)
		make_op(&ops[i], QP_OP_CREATE, (int)i, "producer",
			"{\"dni\": \"40123456\", \"name\": \"Quispe Mamani, "
			"Juana\", \"sex\": \"F\", \"community\": \"Ccollpa\", "
			"\"birth_year\": 1971}");
	return ops;
}

static void assert_ops_equal(const qp_op *a, const qp_op *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(a[i].type, b[i].type);
		ck_assert_mem_eq(a[i].id, b[i].id, QP_UUID_LEN);
		ck_assert_str_eq(a[i].kind, b[i].kind);
		ck_assert_uint_eq(a[i].hlc, b[i].hlc);
		ck_assert_uint_eq(a[i].base, b[i].base);
		if (a[i].type == QP_OP_VOID) {
			ck_assert_ptr_null(b[i].fields);
			ck_assert_str_eq(a[i].reason, b[i].reason);
		} else {
			ck_assert_ptr_null(b[i].reason);
			ck_assert(json_equal(a[i].fields, b[i].fields));
		}
	}
}

static void build(uint64_t seq, const uint8_t *prev, const qp_op *ops,
		  size_t n, uint8_t **out, size_t *len)
{
	ck_assert_int_eq(qp_delta_build(&feed, seq, prev, ops, n, sk, out, len), 0);
}

/* Sign a hand-made delta: the test writes the documented layout itself. */
static uint8_t *craft(uint64_t seq, uint64_t hlc, uint8_t flags,
		      uint32_t raw_len, const void *body, size_t body_len,
		      size_t *outlen)
{
	size_t len = QP_DELTA_HDR + body_len + QP_DELTA_SIG;
	uint8_t *b = qp_xcalloc(1, len);

	memcpy(b, "QPD1", 4);
	memcpy(b + 4, author_pk, 32);
	memset(b + 36, 0x42, 16);
	qp_put_be64(b + 52, seq);
	qp_put_be64(b + 92, hlc);
	b[100] = flags;
	qp_put_be32(b + 101, raw_len);
	qp_put_be32(b + 105, (uint32_t)body_len);
	memcpy(b + 109, body, body_len);
	crypto_sign_detached(b + 109 + body_len, NULL, b, 109 + body_len, sk);
	*outlen = len;
	return b;
}

/* want_zstd: 1 compressed, 0 not, -1 either. */
static void check_roundtrip(const qp_op *ops, size_t n, int want_zstd)
{
	uint8_t *d;
	size_t len, got_n = 0;
	qp_delta_hdr h;
	qp_op *got = NULL;
	uint64_t max = 0;

	build(1, NULL, ops, n, &d, &len);
	ck_assert_int_eq(qp_delta_verify(d, len, &h), 0);
	ck_assert_mem_eq(h.feed.author, author_pk, QP_KEY_LEN);
	ck_assert_mem_eq(h.feed.org, feed.org, QP_UUID_LEN);
	ck_assert_uint_eq(h.seq, 1);
	for (size_t i = 0; i < n; i++)
		if (ops[i].hlc > max)
			max = ops[i].hlc;
	ck_assert_uint_eq(h.hlc, max);
	ck_assert_uint_eq(len, QP_DELTA_HDR + h.body_len + QP_DELTA_SIG);
	if (want_zstd > 0) {
		ck_assert_int_eq(h.flags, QP_DELTA_F_ZSTD);
		ck_assert_uint_lt(h.body_len, h.raw_len);
	} else if (want_zstd == 0) {
		ck_assert_int_eq(h.flags, 0);
		ck_assert_uint_eq(h.body_len, h.raw_len);
	}
	/* The layout is the documented one. */
	ck_assert_mem_eq(d, "QPD1", 4);
	ck_assert_mem_eq(d + 4, author_pk, 32);
	ck_assert_uint_eq(qp_get_be64(d + 52), 1);
	ck_assert_uint_eq(qp_get_be32(d + 105), h.body_len);
	/* The claimed raw size, read without verifying (for sizing work). */
	ck_assert_uint_eq(qp_delta_raw_size(d, len), h.raw_len);
	ck_assert_uint_eq(qp_delta_raw_size(d, QP_DELTA_HDR - 1), 0);
	ck_assert_uint_eq(qp_delta_raw_size(NULL, len), 0);
	ck_assert_int_eq(qp_delta_ops(d, len, &got, &got_n), 0);
	ck_assert_uint_eq(got_n, n);
	assert_ops_equal(ops, got, n);
	qp_ops_free(got, got_n);
	free(d);
}

START_TEST(test_roundtrip_small)
{
	qp_op ops[3];

	make_op(&ops[0], QP_OP_CREATE, 1, "plot",
		"{\"producer\": \"019ab3c4-d5e6-7f01-8abc-def012345678\", "
		"\"crop\": \"coffee\", \"geometry\": {\"type\": \"Point\", "
		"\"coordinates\": [-72.123456, -13.654321]}}");
	check_roundtrip(ops, 1, -1);
	make_op(&ops[1], QP_OP_UPDATE, 2, "plot", "{\"area_ha\": 1.25}");
	make_op(&ops[2], QP_OP_VOID, 3, "attendance",
		"registrada dos veces por error — año 2025");
	check_roundtrip(ops, 3, -1);
	for (int i = 0; i < 3; i++)
		qp_op_clear(&ops[i]);
	qp_op_clear(&ops[0]); /* twice is harmless */
	qp_op_clear(NULL);
}
END_TEST

START_TEST(test_roundtrip_compressed)
{
	qp_op *ops = make_ops(200);
	check_roundtrip(ops, 200, 1);
	qp_ops_free(ops, 200);
	qp_ops_free(NULL, 3);
}
END_TEST

START_TEST(test_tiny_not_compressed)
{
	qp_op op;
	make_op(&op, QP_OP_UPDATE, 1, "lot", "{\"kg\": 12}");
	check_roundtrip(&op, 1, 0);
	qp_op_clear(&op);
}
END_TEST

/* A payload may nest as deep as mpjson allows, not one level more. */
START_TEST(test_payload_depth)
{
	qp_op op;
	json_t *inner;
	uint8_t *d = NULL;
	size_t len;

	make_op(&op, QP_OP_CREATE, 1, "lot", "{}");
	inner = op.fields;
	for (int i = 1; i < QP_MPJSON_MAX_DEPTH; i++) {
		json_t *o = json_object();
		json_object_set_new(inner, "q", o);
		inner = o;
	}
	check_roundtrip(&op, 1, -1);
	json_object_set_new(inner, "q", json_array());
	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, &op, 1, sk, &d, &len),
			 QP_EINVAL);
	ck_assert_ptr_null(d);
	qp_op_clear(&op);
}
END_TEST

START_TEST(test_build_refuses)
{
	qp_op op, bad;
	uint8_t *d = NULL, prev[QP_HASH_LEN], opk[QP_KEY_LEN], osk[QP_SKEY_LEN];
	size_t len = 0;
	char long_reason[QP_DELTA_HDR * 40];

	make_op(&op, QP_OP_CREATE, 1, "org", "{\"name\": \"x\"}");
	ck_assert_int_eq(qp_delta_build(&feed, 0, NULL, &op, 1, sk, &d, &len), QP_EINVAL);
	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, &op, 0, sk, &d, &len), QP_EINVAL);
	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, NULL, 1, sk, &d, &len), QP_EINVAL);
	qp_key_generate(opk, osk);
	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, &op, 1, osk, &d, &len), QP_EINVAL);
	memset(prev, 1, sizeof(prev));
	ck_assert_int_eq(qp_delta_build(&feed, 1, prev, &op, 1, sk, &d, &len), QP_EINVAL);

	bad = op;
	bad.type = (qp_op_type)4;
	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, &bad, 1, sk, &d, &len), QP_EINVAL);
	bad = op;
	bad.kind[0] = '\0';
	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, &bad, 1, sk, &d, &len), QP_EINVAL);
	bad = op;
	memset(bad.kind, 'k', sizeof(bad.kind)); /* not terminated */
	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, &bad, 1, sk, &d, &len), QP_EINVAL);
	bad = op;
	bad.fields = NULL;
	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, &bad, 1, sk, &d, &len), QP_EINVAL);
	bad = op;
	bad.type = QP_OP_VOID; /* no reason */
	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, &bad, 1, sk, &d, &len), QP_EINVAL);
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	bad.reason = long_reason;
	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, &bad, 1, sk, &d, &len), QP_EINVAL);
	bad.reason = "\xff invalid utf-8";
	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, &bad, 1, sk, &d, &len), QP_EINVAL);
	ck_assert_ptr_null(d);
	ck_assert_uint_eq(len, 0);
	qp_op_clear(&op);
}
END_TEST

START_TEST(test_build_too_big)
{
	qp_op *many = qp_xcalloc(QP_DELTA_MAX_OPS + 1, sizeof(*many));
	qp_op op;
	uint8_t *d = NULL, *rnd;
	char *hex;
	size_t len, n = 5u << 20;

	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, many,
					QP_DELTA_MAX_OPS + 1, sk, &d, &len),
			 QP_ETOOBIG);
	free(many);

	/* Two 10 MiB hex strings of random bytes: 20 MiB raw, about 10 MiB
	 * compressed, over QP_DELTA_MAX either way. */
	rnd = qp_xmalloc(n);
	hex = qp_xmalloc(2 * n + 1);
	randombytes_buf(rnd, n);
	qp_hex(rnd, n, hex);
	make_op(&op, QP_OP_CREATE, 1, "verification", "{}");
	json_object_set_new(op.fields, "notes", json_string(hex));
	json_object_set_new(op.fields, "more", json_string(hex));
	ck_assert_int_eq(qp_delta_build(&feed, 1, NULL, &op, 1, sk, &d, &len),
			 QP_ETOOBIG);
	ck_assert_ptr_null(d);
	qp_op_clear(&op);
	free(rnd);
	free(hex);
}
END_TEST

START_TEST(test_hash_chain)
{
	qp_op *ops = make_ops(3);
	uint8_t *d1, *d2, *d3, h1[QP_HASH_LEN], h2[QP_HASH_LEN], e[QP_HASH_LEN];
	size_t l1, l2, l3;
	qp_delta_hdr h;
	static const char empty_hex[] =
		"0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8";
	char hex[2 * QP_HASH_LEN + 1];

	/* qp_delta_hash is unkeyed BLAKE2b-256. */
	qp_delta_hash((const uint8_t *)"", 0, e);
	qp_hex(e, QP_HASH_LEN, hex);
	ck_assert_str_eq(hex, empty_hex);

	build(1, NULL, ops, 1, &d1, &l1);
	qp_delta_hash(d1, l1, h1);
	build(2, h1, ops + 1, 1, &d2, &l2);
	qp_delta_hash(d2, l2, h2);
	build(3, h2, ops + 2, 1, &d3, &l3);
	ck_assert_int_eq(qp_delta_verify(d2, l2, &h), 0);
	ck_assert_uint_eq(h.seq, 2);
	ck_assert_mem_eq(h.prev, h1, QP_HASH_LEN);
	ck_assert_mem_eq(d2 + 60, h1, QP_HASH_LEN);
	ck_assert_int_eq(qp_delta_verify(d3, l3, NULL), 0);
	ck_assert_mem_eq(d3 + 60, h2, QP_HASH_LEN);
	ck_assert_int_ne(memcmp(h1, h2, QP_HASH_LEN), 0);
	ck_assert_int_eq(qp_delta_verify(d1, l1, &h), 0);
	ck_assert_mem_eq(h.prev, (uint8_t[QP_HASH_LEN]){0}, QP_HASH_LEN);
	free(d1);
	free(d2);
	free(d3);
	qp_ops_free(ops, 3);
}
END_TEST

/* Every byte is covered by the signature (or is the signature). */
static void flip_all(const uint8_t *d, size_t len)
{
	uint8_t *c = qp_xmalloc(len);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			memcpy(c, d, len);
			c[i] ^= (uint8_t)(1u << bit);
			ck_assert_msg(qp_delta_verify(c, len, NULL) != 0,
				      "flip of byte %zu bit %d verifies", i, bit);
		}
	}
	free(c);
}

START_TEST(test_flips)
{
	qp_op op, *ops = make_ops(60);
	uint8_t *d;
	size_t len;

	make_op(&op, QP_OP_VOID, 9, "session", "cancelada");
	build(1, NULL, &op, 1, &d, &len);
	flip_all(d, len);
	free(d);
	build(7, (uint8_t[QP_HASH_LEN]){1}, ops, 60, &d, &len);
	ck_assert_int_eq(d[100], QP_DELTA_F_ZSTD);
	flip_all(d, len);
	free(d);
	qp_op_clear(&op);
	qp_ops_free(ops, 60);
}
END_TEST

START_TEST(test_truncated)
{
	qp_op *ops = make_ops(40);
	uint8_t *d, *c;
	size_t len;
	qp_op *got;
	size_t n;

	for (int z = 0; z < 2; z++) {
		build(1, NULL, ops, z ? 40 : 1, &d, &len);
		ck_assert_int_eq(d[100], z ? QP_DELTA_F_ZSTD : 0);
		for (size_t i = 0; i < len; i++) {
			c = qp_xmalloc(i ? i : 1);
			memcpy(c, d, i);
			ck_assert_int_eq(qp_delta_verify(c, i, NULL), QP_EPROTO);
			got = NULL;
			ck_assert_int_eq(qp_delta_ops(c, i, &got, &n), QP_EPROTO);
			ck_assert_ptr_null(got);
			free(c);
		}
		free(d);
	}
	ck_assert_int_eq(qp_delta_verify(NULL, 0, NULL), QP_EPROTO);
	qp_ops_free(ops, 40);
}
END_TEST

START_TEST(test_header_checks)
{
	static const uint8_t body[] = {0x90};
	uint8_t *d;
	size_t len;
	qp_delta_hdr h;

	d = craft(0, 0, 0, 1, body, 1, &len); /* seq 0 */
	ck_assert_int_eq(qp_delta_verify(d, len, &h), QP_EPROTO);
	free(d);
	d = craft(1, 0, 0x02, 1, body, 1, &len); /* unknown flag */
	ck_assert_int_eq(qp_delta_verify(d, len, &h), QP_EPROTO);
	free(d);
	d = craft(1, 0, 0, 2, body, 1, &len); /* raw_len != body_len */
	ck_assert_int_eq(qp_delta_verify(d, len, &h), QP_EPROTO);
	free(d);
	d = craft(1, 0, 0, 0, body, 0, &len); /* empty body */
	ck_assert_int_eq(qp_delta_verify(d, len, &h), QP_EPROTO);
	free(d);
	d = craft(2, 0, 0, 1, body, 1, &len); /* fine as far as verify goes */
	ck_assert_int_eq(qp_delta_verify(d, len, &h), 0);
	d[60] = 1; /* seq 1 must have a zero prev: re-sign to prove it */
	qp_put_be64(d + 52, 1);
	crypto_sign_detached(d + len - 64, NULL, d, len - 64, sk);
	ck_assert_int_eq(qp_delta_verify(d, len, &h), QP_EPROTO);
	free(d);
	/* Over QP_DELTA_MAX is refused on the length alone. */
	ck_assert_int_eq(qp_delta_verify(body, (size_t)QP_DELTA_MAX + 1, &h),
			 QP_ETOOBIG);
}
END_TEST

/* A validly signed delta whose declared raw length is over the limit is
 * refused before anything is allocated; a frame whose content size does
 * not match the signed raw_len never decompresses. */
START_TEST(test_decompression_bomb)
{
	size_t zcap = ZSTD_compressBound(1u << 20), zn, len, n;
	uint8_t *zeros = qp_xcalloc(1, 1u << 20), *z = qp_xmalloc(zcap), *d;
	qp_op *ops = NULL;

	zn = ZSTD_compress(z, zcap, zeros, 1u << 20, 3);
	ck_assert(!ZSTD_isError(zn));
	ck_assert_uint_lt(zn, 1024);

	d = craft(1, 0, QP_DELTA_F_ZSTD, QP_DELTA_MAX_RAW + 1, z, zn, &len);
	ck_assert_int_eq(qp_delta_verify(d, len, NULL), QP_ETOOBIG);
	ck_assert_int_eq(qp_delta_ops(d, len, &ops, &n), QP_ETOOBIG);
	free(d);

	d = craft(1, 0, QP_DELTA_F_ZSTD, 100, z, zn, &len); /* claims 100 */
	ck_assert_int_eq(qp_delta_verify(d, len, NULL), 0);
	ck_assert_int_eq(qp_delta_ops(d, len, &ops, &n), QP_ECOMPRESS);
	free(d);

	/* Right size, but the bytes are not a zstd frame. */
	memset(z, 0x5a, 64);
	d = craft(1, 0, QP_DELTA_F_ZSTD, 64, z, 64, &len);
	ck_assert_int_eq(qp_delta_verify(d, len, NULL), 0);
	ck_assert_int_eq(qp_delta_ops(d, len, &ops, &n), QP_ECOMPRESS);
	free(d);

	/* Decompresses fine but to zeros: not a body. */
	zn = ZSTD_compress(z, zcap, zeros, 1000, 3);
	d = craft(1, 0, QP_DELTA_F_ZSTD, 1000, z, zn, &len);
	ck_assert_int_eq(qp_delta_verify(d, len, NULL), 0);
	ck_assert_int_eq(qp_delta_ops(d, len, &ops, &n), QP_EPROTO);
	free(d);
	ck_assert_ptr_null(ops);
	free(zeros);
	free(z);
}
END_TEST

/* Signed bodies that are not a well-formed op list. */
static void expect_body(const void *body, size_t n, uint64_t hlc, int code)
{
	size_t len, nops = 0;
	uint8_t *d = craft(1, hlc, 0, (uint32_t)n, body, n, &len);
	qp_op *ops = NULL;

	ck_assert_int_eq(qp_delta_verify(d, len, NULL), 0);
	ck_assert_int_eq(qp_delta_ops(d, len, &ops, &nops), code);
	if (code == 0) {
		ck_assert_uint_ge(nops, 1);
		qp_ops_free(ops, nops);
	} else {
		ck_assert_ptr_null(ops);
	}
	free(d);
}

/* Pack [type, id(bin idlen), kind, hlc, base, payload] with the payload
 * given as raw msgpack bytes. */
static void pack_op(msgpack_packer *pk, int fields, uint64_t type,
		    size_t idlen, const char *kind, size_t kindlen,
		    uint64_t hlc, const void *payload, size_t plen)
{
	static const uint8_t id[32];
	msgpack_pack_array(pk, (size_t)fields);
	msgpack_pack_uint64(pk, type);
	msgpack_pack_bin_with_body(pk, id, idlen);
	msgpack_pack_str_with_body(pk, kind, kindlen);
	msgpack_pack_uint64(pk, hlc);
	msgpack_pack_uint64(pk, 0);
	if (fields >= 6)
		pk->callback(pk->data, payload, plen);
}

static void one_op_body(int fields, uint64_t type, size_t idlen,
			const char *kind, size_t kindlen, const void *payload,
			size_t plen, int code)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 1);
	pack_op(&pk, fields, type, idlen, kind, kindlen, 5, payload, plen);
	expect_body(sb.data, sb.size, 5, code);
	msgpack_sbuffer_destroy(&sb);
}

START_TEST(test_garbage_body)
{
	static const uint8_t garbage[] = {0xc1, 0x00, 0x13, 0x37};
	static const uint8_t map[] = {0x80};
	static const uint8_t empty[] = {0x90};
	static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x90};
	static const uint8_t m1[] = {0x81, 0xa1, 'a', 0x01};
	static const uint8_t dupkey[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02};
	static const uint8_t reason[] = {0xa2, 'n', 'o'};
	static const uint8_t nulreason[] = {0xa2, 'n', 0x00};
	static const uint8_t arr[] = {0x90};

	expect_body(garbage, sizeof(garbage), 0, QP_EPROTO);
	expect_body(map, sizeof(map), 0, QP_EPROTO);
	expect_body(empty, sizeof(empty), 0, QP_EPROTO);
	expect_body(huge, sizeof(huge), 0, QP_EPROTO);

	one_op_body(6, 1, 16, "lot", 3, m1, sizeof(m1), 0);      /* control */
	one_op_body(5, 1, 16, "lot", 3, NULL, 0, QP_EPROTO);      /* 5 fields */
	one_op_body(6, 0, 16, "lot", 3, m1, sizeof(m1), QP_EPROTO);
	one_op_body(6, 4, 16, "lot", 3, m1, sizeof(m1), QP_EPROTO);
	one_op_body(6, 1, 15, "lot", 3, m1, sizeof(m1), QP_EPROTO);
	one_op_body(6, 1, 17, "lot", 3, m1, sizeof(m1), QP_EPROTO);
	one_op_body(6, 1, 16, "", 0, m1, sizeof(m1), QP_EPROTO);
	one_op_body(6, 1, 16, "abcdefghijklmnopqrstuvwx", 24, m1, sizeof(m1),
		    QP_EPROTO);
	one_op_body(6, 1, 16, "abcdefghijklmnopqrstuvw", 23, m1, sizeof(m1), 0);
	one_op_body(6, 1, 16, "l\0t", 3, m1, sizeof(m1), QP_EPROTO);
	one_op_body(6, 1, 16, "l\xfft", 3, m1, sizeof(m1), QP_EPROTO);
	one_op_body(6, 1, 16, "lot", 3, dupkey, sizeof(dupkey), QP_EPROTO);
	one_op_body(6, 1, 16, "lot", 3, reason, sizeof(reason), QP_EPROTO);
	one_op_body(6, 2, 16, "lot", 3, arr, sizeof(arr), QP_EPROTO);
	one_op_body(6, 3, 16, "lot", 3, reason, sizeof(reason), 0);
	one_op_body(6, 3, 16, "lot", 3, m1, sizeof(m1), QP_EPROTO);
	one_op_body(6, 3, 16, "lot", 3, nulreason, sizeof(nulreason), QP_EPROTO);
}
END_TEST

START_TEST(test_body_consistency)
{
	static const uint8_t m1[] = {0x81, 0xa1, 'a', 0x01};
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 1);
	pack_op(&pk, 6, 1, 16, "lot", 3, 5, m1, sizeof(m1));
	expect_body(sb.data, sb.size, 5, 0);
	/* The signed header hlc must be the largest op hlc. */
	expect_body(sb.data, sb.size, 6, QP_EPROTO);
	/* Trailing bytes after the op array. */
	msgpack_pack_nil(&pk);
	expect_body(sb.data, sb.size, 5, QP_EPROTO);
	/* Array claims two ops, holds one. */
	sb.size--;
	sb.data[0] = (char)0x92;
	expect_body(sb.data, sb.size, 5, QP_EPROTO);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_too_many_ops)
{
	static const uint8_t m1[] = {0x80};
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, QP_DELTA_MAX_OPS + 1);
	for (int i = 0; i < QP_DELTA_MAX_OPS + 1; i++)
		pack_op(&pk, 6, 1, 16, "lot", 3, 5, m1, sizeof(m1));
	expect_body(sb.data, sb.size, 5, QP_ETOOBIG);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_keys)
{
	uint8_t p2[QP_KEY_LEN], s2[QP_SKEY_LEN], derived[QP_KEY_LEN];

	qp_key_generate(p2, s2);
	crypto_sign_ed25519_sk_to_pk(derived, s2);
	ck_assert_mem_eq(p2, derived, QP_KEY_LEN);
	ck_assert_int_ne(memcmp(p2, author_pk, QP_KEY_LEN), 0);
	ck_assert_int_eq(qp_crypto_init(), 0); /* again: still fine */
}
END_TEST

/* A delta signed by one key but claiming another author fails. */
START_TEST(test_wrong_author)
{
	qp_op op;
	uint8_t *d, p2[QP_KEY_LEN], s2[QP_SKEY_LEN];
	size_t len;

	make_op(&op, QP_OP_UPDATE, 1, "lot", "{\"kg\": 3}");
	build(1, NULL, &op, 1, &d, &len);
	qp_key_generate(p2, s2);
	memcpy(d + 4, p2, QP_KEY_LEN);
	ck_assert_int_eq(qp_delta_verify(d, len, NULL), QP_ESIG);
	free(d);
	qp_op_clear(&op);
}
END_TEST

Suite *suite_delta(void)
{
	Suite *s = suite_create("delta");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_roundtrip_small);
	tcase_add_test(tc, test_roundtrip_compressed);
	tcase_add_test(tc, test_tiny_not_compressed);
	tcase_add_test(tc, test_payload_depth);
	tcase_add_test(tc, test_build_refuses);
	tcase_add_test(tc, test_build_too_big);
	tcase_add_test(tc, test_hash_chain);
	tcase_add_test(tc, test_flips);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_header_checks);
	tcase_add_test(tc, test_decompression_bomb);
	tcase_add_test(tc, test_garbage_body);
	tcase_add_test(tc, test_body_consistency);
	tcase_add_test(tc, test_too_many_ops);
	tcase_add_test(tc, test_keys);
	tcase_add_test(tc, test_wrong_author);
	suite_add_tcase(s, tc);
	return s;
}
