/* check_sync.c - covers proto/sync.c: the sync exchange messages (VECTOR,
 * DELTAS, ACK, REVOCATIONS, DONE, ERROR) and version vectors (qp_vv_*),
 * with real signed deltas. */
#include <msgpack.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "delta.h"
#include "err.h"
#include "suites.h"
#include "sync.h"
#include "util.h"

#define CHAIN 12

static uint8_t a_pk[QP_KEY_LEN], a_sk[QP_SKEY_LEN];
static uint8_t b_pk[QP_KEY_LEN], b_sk[QP_SKEY_LEN];
static uint8_t hub_pk[QP_KEY_LEN], hub_sk[QP_SKEY_LEN];

static void setup(void)
{
	ck_assert_int_eq(qp_crypto_init(), 0);
	qp_key_generate(a_pk, a_sk);
	qp_key_generate(b_pk, b_sk);
	qp_key_generate(hub_pk, hub_sk);
}

static void org_id(uint8_t out[QP_UUID_LEN], unsigned i)
{
	memset(out, 0, QP_UUID_LEN);
	out[0] = 0x01;
	out[6] = 0x70;
	out[14] = (uint8_t)(i >> 8);
	out[15] = (uint8_t)i;
}

static qp_feed mkfeed(const uint8_t *author, unsigned org)
{
	qp_feed f;

	memcpy(f.author, author, QP_KEY_LEN);
	org_id(f.org, org);
	return f;
}

/* A feed numbered i (distinct authors, ascending with i). */
static qp_feed nfeed(unsigned i)
{
	qp_feed f;

	memset(&f, 0, sizeof(f));
	qp_put_be32(f.author, i);
	org_id(f.org, i % 7);
	return f;
}

/* A chain of n real deltas of one feed (one void op each). */
static void make_chain(const qp_feed *feed, const uint8_t *sk, size_t n,
                       uint8_t **d, size_t *len)
{
	uint8_t prev[QP_HASH_LEN] = {0};
	qp_op op;

	for (size_t i = 0; i < n; i++) {
		memset(&op, 0, sizeof(op));
		op.type = QP_OP_VOID;
		memset(op.id, (int)i + 1, QP_UUID_LEN);
		strcpy(op.kind, "attendance");
		op.hlc = ((uint64_t)1763899200000 + i) << 16;
		op.base = op.hlc - 1;
		op.reason = qp_xstrdup("entered twice");
		ck_assert_int_eq(qp_delta_build(feed, i + 1, prev, &op, 1, sk,
		                                &d[i], &len[i]),
		                 0);
		qp_delta_hash(d[i], len[i], prev);
		qp_op_clear(&op);
	}
}

static void free_all(uint8_t **d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(d[i]);
}

/* Decode, check the type, re-encode and compare with the input. */
static void decode_ok(const uint8_t *b, size_t n, int type, qp_sync_msg *m)
{
	uint8_t *again;
	size_t alen;

	ck_assert_int_eq(qp_sync_decode(b, n, m), type);
	ck_assert_int_eq(m->type, type);
	ck_assert_int_eq(qp_sync_encode(m, &again, &alen), 0);
	ck_assert_uint_eq(alen, n);
	ck_assert_mem_eq(again, b, n);
	free(again);
}

/* Pack raw msgpack with msgpack-c for hand-made (often wrong) messages. */
typedef struct pk {
	msgpack_sbuffer sb;
	msgpack_packer p;
} pk;

static void pk_init(pk *k)
{
	msgpack_sbuffer_init(&k->sb);
	msgpack_packer_init(&k->p, &k->sb, msgpack_sbuffer_write);
}

static int pk_decode(pk *k)
{
	qp_sync_msg m;
	int rc = qp_sync_decode((const uint8_t *)k->sb.data, k->sb.size, &m);

	if (rc > 0)
		qp_sync_msg_free(&m);
	msgpack_sbuffer_destroy(&k->sb);
	return rc;
}

static int raw_decode(const char *b, size_t n)
{
	qp_sync_msg m;
	int rc = qp_sync_decode((const uint8_t *)b, n, &m);

	if (rc > 0)
		qp_sync_msg_free(&m);
	return rc;
}

START_TEST(test_vector_roundtrip)
{
	static const size_t counts[] = {
	    0, 1, 3, 15, 16, 300, QP_SYNC_VECTOR_MAX};
	qp_vv_entry *e = qp_xcalloc(QP_SYNC_VECTOR_MAX + 1, sizeof(*e));
	qp_sync_msg m;
	uint8_t *b;
	size_t n;

	for (size_t i = 0; i <= QP_SYNC_VECTOR_MAX; i++) {
		e[i].feed = nfeed((unsigned)i);
		/* seqs across every integer width */
		e[i].seq = i % 5 == 0 ? i : (uint64_t)1 << (i % 64);
	}
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		for (int more = 0; more < 2; more++) {
			ck_assert_int_eq(
			    qp_sync_encode_vector(e, counts[c], more, &b, &n),
			    0);
			decode_ok(b, n, QP_SYNC_VECTOR, &m);
			ck_assert_int_eq(m.more, more);
			ck_assert_uint_eq(m.nentries, counts[c]);
			if (counts[c] == 0)
				ck_assert_ptr_null(m.entries);
			else
				ck_assert_mem_eq(m.entries, e,
				                 counts[c] * sizeof(*e));
			qp_sync_msg_free(&m);
			ck_assert_ptr_null(m.entries);
			free(b);
		}
	}
	b = NULL;
	ck_assert_int_eq(
	    qp_sync_encode_vector(e, QP_SYNC_VECTOR_MAX + 1, 0, &b, &n),
	    QP_ETOOBIG);
	ck_assert_ptr_null(b);
	/* Out of order and duplicate feeds are the caller's bug. */
	e[1].feed = e[0].feed;
	ck_assert_int_eq(qp_sync_encode_vector(e, 3, 0, &b, &n), QP_EINVAL);
	e[1].feed = nfeed(5);
	ck_assert_int_eq(qp_sync_encode_vector(e, 3, 0, &b, &n), QP_EINVAL);
	ck_assert_int_eq(qp_sync_encode_vector(NULL, 1, 0, &b, &n), QP_EINVAL);
	ck_assert_int_eq(qp_sync_encode_vector(NULL, 0, 0, &b, &n), 0);
	free(b);
	free(e);
}
END_TEST

START_TEST(test_deltas_roundtrip)
{
	qp_feed fa = mkfeed(a_pk, 1), fb = mkfeed(b_pk, 2);
	uint8_t *d[2 * CHAIN];
	size_t len[2 * CHAIN];
	qp_sync_msg m;
	qp_delta_hdr h;
	uint8_t *b;
	size_t n;

	make_chain(&fa, a_sk, CHAIN, d, len);
	make_chain(&fb, b_sk, CHAIN, d + CHAIN, len + CHAIN);
	for (size_t cnt = 1; cnt <= 2 * CHAIN; cnt += 7) {
		ck_assert_int_eq(
		    qp_sync_encode_deltas((const uint8_t *const *)d, len, cnt,
		                          &b, &n),
		    0);
		decode_ok(b, n, QP_SYNC_DELTAS, &m);
		ck_assert_uint_eq(m.nitems, cnt);
		for (size_t i = 0; i < cnt; i++) {
			/* Views into the message, not copies. */
			ck_assert(m.items[i] > b && m.items[i] < b + n);
			ck_assert_uint_eq(m.lens[i], len[i]);
			ck_assert_mem_eq(m.items[i], d[i], len[i]);
			ck_assert_int_eq(
			    qp_delta_verify(m.items[i], m.lens[i], &h), 0);
			ck_assert_uint_eq(h.seq, i % CHAIN + 1);
		}
		qp_sync_msg_free(&m);
		free(b);
	}
	ck_assert_int_eq(
	    qp_sync_encode_deltas((const uint8_t *const *)d, len, 0, &b, &n),
	    QP_EINVAL);
	free_all(d, 2 * CHAIN);
}
END_TEST

START_TEST(test_ack_revocations_done)
{
	qp_vv_entry e[3];
	qp_revocation rv;
	uint8_t *rev[2];
	const uint8_t *revs[2];
	size_t rlen;
	qp_sync_msg m;
	uint8_t *b;
	size_t n;

	for (unsigned i = 0; i < 3; i++) {
		e[i].feed = nfeed(i * 1000);
		e[i].seq = 1000000007ull * i;
	}
	ck_assert_int_eq(qp_sync_encode_ack(e, 3, 17, &b, &n), 0);
	decode_ok(b, n, QP_SYNC_ACK, &m);
	ck_assert_uint_eq(m.received, 17);
	ck_assert_uint_eq(m.nentries, 3);
	ck_assert_mem_eq(m.entries, e, sizeof(e));
	qp_sync_msg_free(&m);
	free(b);
	ck_assert_int_eq(qp_sync_encode_ack(NULL, 0, UINT64_MAX, &b, &n), 0);
	decode_ok(b, n, QP_SYNC_ACK, &m);
	ck_assert_uint_eq(m.received, UINT64_MAX);
	ck_assert_uint_eq(m.nentries, 0);
	qp_sync_msg_free(&m);
	free(b);

	for (int i = 0; i < 2; i++) {
		memset(&rv, 0, sizeof(rv));
		rv.version = QP_REV_VERSION;
		memcpy(rv.issuer, hub_pk, QP_KEY_LEN);
		memcpy(rv.key, i ? a_pk : b_pk, QP_KEY_LEN);
		rv.after_seq = 40 + (uint64_t)i;
		rv.at = 1763899200;
		ck_assert_int_eq(
		    qp_revocation_build(&rv, hub_sk, &rev[i], &rlen), 0);
		ck_assert_uint_eq(rlen, QP_REV_LEN);
		revs[i] = rev[i];
	}
	for (size_t cnt = 0; cnt <= 2; cnt++) {
		ck_assert_int_eq(qp_sync_encode_revocations(revs, cnt, &b, &n),
		                 0);
		decode_ok(b, n, QP_SYNC_REVOKES, &m);
		ck_assert_uint_eq(m.nitems, cnt);
		for (size_t i = 0; i < cnt; i++) {
			ck_assert_uint_eq(m.lens[i], QP_REV_LEN);
			ck_assert(m.items[i] > b && m.items[i] < b + n);
			ck_assert_int_eq(qp_revocation_verify(m.items[i],
			                                      m.lens[i], hub_pk,
			                                      &rv),
			                 0);
		}
		qp_sync_msg_free(&m);
		free(b);
	}
	free(rev[0]);
	free(rev[1]);

	ck_assert_int_eq(qp_sync_encode_done(&b, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(b, "\x92\x05\x01", 3);
	decode_ok(b, n, QP_SYNC_DONE, &m);
	qp_sync_msg_free(&m);
	free(b);
	ck_assert_str_eq(qp_sync_type_name(QP_SYNC_REVOKES), "REVOCATIONS");
	ck_assert_str_eq(qp_sync_type_name(99), "unknown");
}
END_TEST

/* A certificate for device b_pk in orgs 1 and 2, signed by the hub. */
static void make_cert(uint8_t **out, size_t *len)
{
	qp_cert c;

	memset(&c, 0, sizeof(c));
	c.version = QP_CERT_VERSION;
	c.role = QP_ROLE_TECHNICIAN;
	memcpy(c.device, b_pk, QP_KEY_LEN);
	memcpy(c.issuer, hub_pk, QP_KEY_LEN);
	c.serial = 7;
	c.issued_at = 1763899200;
	strcpy(c.name, "tablet 7");
	c.norgs = 2;
	org_id(c.orgs[0], 1);
	org_id(c.orgs[1], 2);
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, out, len), 0);
}

START_TEST(test_certs)
{
	static uint8_t junk[QP_CERT_MAX + 1];
	const uint8_t *certs[QP_SYNC_CERTS_MAX + 1];
	size_t lens[QP_SYNC_CERTS_MAX + 1];
	uint8_t *cert, *b = NULL;
	qp_sync_msg m;
	qp_cert c;
	size_t n;
	pk k;

	make_cert(&cert, &lens[0]);
	certs[0] = cert;
	certs[1] = junk;
	lens[1] = QP_CERT_MAX;
	for (size_t cnt = 0; cnt <= 2; cnt++) {
		ck_assert_int_eq(qp_sync_encode_certs(certs, lens, cnt, &b, &n),
		                 0);
		decode_ok(b, n, QP_SYNC_CERTS, &m);
		ck_assert_uint_eq(m.nitems, cnt);
		for (size_t i = 0; i < cnt; i++) {
			ck_assert(m.items[i] > b && m.items[i] < b + n);
			ck_assert_uint_eq(m.lens[i], lens[i]);
		}
		if (cnt > 0)
			ck_assert_int_eq(qp_cert_verify(m.items[0], m.lens[0],
			                                hub_pk, 1763899200, &c),
			                 0);
		qp_sync_msg_free(&m);
		free(b);
		b = NULL;
	}
	ck_assert_str_eq(qp_sync_type_name(QP_SYNC_CERTS), "CERTS");
	/* Sizes outside a certificate's range, and too many. */
	lens[1] = QP_CERT_MAX + 1;
	ck_assert_int_eq(qp_sync_encode_certs(certs, lens, 2, &b, &n),
	                 QP_EINVAL);
	lens[1] = QP_CERT_MIN - 1;
	ck_assert_int_eq(qp_sync_encode_certs(certs, lens, 2, &b, &n),
	                 QP_EINVAL);
	for (size_t i = 0; i <= QP_SYNC_CERTS_MAX; i++) {
		certs[i] = junk;
		lens[i] = QP_CERT_MIN;
	}
	ck_assert_int_eq(
	    qp_sync_encode_certs(certs, lens, QP_SYNC_CERTS_MAX, &b, &n), 0);
	decode_ok(b, n, QP_SYNC_CERTS, &m);
	qp_sync_msg_free(&m);
	free(b);
	b = NULL;
	ck_assert_int_eq(
	    qp_sync_encode_certs(certs, lens, QP_SYNC_CERTS_MAX + 1, &b, &n),
	    QP_ETOOBIG);
	ck_assert_ptr_null(b);
	for (size_t cl = QP_CERT_MIN - 1; cl <= QP_CERT_MAX + 1;
	     cl += QP_CERT_MAX - QP_CERT_MIN + 2) {
		pk_init(&k);
		msgpack_pack_array(&k.p, 3);
		msgpack_pack_uint8(&k.p, QP_SYNC_CERTS);
		msgpack_pack_uint8(&k.p, QP_SYNC_VERSION);
		msgpack_pack_array(&k.p, 1);
		msgpack_pack_bin_with_body(&k.p, junk, cl);
		ck_assert_int_eq(pk_decode(&k), QP_EPROTO);
	}
	free(cert);
}
END_TEST

/* CHAIN: the CERTS body under its own type, at most QP_SYNC_CHAIN_MAX. */
START_TEST(test_chain)
{
	const uint8_t *certs[QP_SYNC_CHAIN_MAX + 1];
	size_t lens[QP_SYNC_CHAIN_MAX + 1];
	uint8_t *cert, *b = NULL;
	size_t n, clen;
	qp_sync_msg m;
	pk k;

	make_cert(&cert, &clen);
	for (size_t i = 0; i <= QP_SYNC_CHAIN_MAX; i++) {
		certs[i] = cert;
		lens[i] = clen;
	}
	for (size_t cnt = 0; cnt <= QP_SYNC_CHAIN_MAX; cnt += 4) {
		ck_assert_int_eq(qp_sync_encode_chain(certs, lens, cnt, &b, &n),
		                 0);
		decode_ok(b, n, QP_SYNC_CHAIN, &m);
		ck_assert_uint_eq(m.nitems, cnt);
		for (size_t i = 0; i < cnt; i++)
			ck_assert_mem_eq(m.items[i], cert, clen);
		qp_sync_msg_free(&m);
		free(b);
		b = NULL;
	}
	ck_assert_str_eq(qp_sync_type_name(QP_SYNC_CHAIN), "CHAIN");
	ck_assert_int_eq(qp_sync_encode_chain(certs, lens,
	                                      QP_SYNC_CHAIN_MAX + 1, &b, &n),
	                 QP_ETOOBIG);
	ck_assert_ptr_null(b);
	/* One certificate too many on the wire. */
	pk_init(&k);
	msgpack_pack_array(&k.p, 3);
	msgpack_pack_uint8(&k.p, QP_SYNC_CHAIN);
	msgpack_pack_uint8(&k.p, QP_SYNC_VERSION);
	msgpack_pack_array(&k.p, QP_SYNC_CHAIN_MAX + 1);
	for (size_t i = 0; i <= QP_SYNC_CHAIN_MAX; i++)
		msgpack_pack_bin_with_body(&k.p, cert, clen);
	ck_assert_int_eq(pk_decode(&k), QP_ETOOBIG);
	/* A type beyond CHAIN is unknown. */
	pk_init(&k);
	msgpack_pack_array(&k.p, 2);
	msgpack_pack_uint8(&k.p, QP_SYNC_CHAIN + 1);
	msgpack_pack_uint8(&k.p, QP_SYNC_VERSION);
	ck_assert_int_eq(pk_decode(&k), QP_EPROTO);
	free(cert);
}
END_TEST

static void error_rt(int code, const char *reason, const char *expect)
{
	qp_sync_msg m;
	uint8_t *b;
	size_t n;

	ck_assert_int_eq(qp_sync_encode_error(code, reason, &b, &n), 0);
	decode_ok(b, n, QP_SYNC_ERROR, &m);
	ck_assert_int_eq(m.code, code);
	ck_assert_str_eq(m.reason, expect);
	qp_sync_msg_free(&m);
	free(b);
}

START_TEST(test_error)
{
	char lng[600], want[QP_SYNC_WHY_MAX];
	uint8_t *b = NULL;
	size_t n;

	error_rt(QP_EEXPIRED, "hub refused: certificate expired",
	         "hub refused: certificate expired");
	error_rt(-1, NULL, "");
	error_rt(-32, "x", "x");
	error_rt(-33, "x", "x");
	error_rt(-128, "x", "x");
	error_rt(-129, "x", "x");
	error_rt(-32768, "x", "x");
	error_rt(-32769, "x", "x");
	error_rt(INT32_MIN, "x", "x");
	/* Control characters, C1 controls and DEL become '?'. */
	error_rt(QP_EPROTO, "bad\n\x1b[31mred\x7f\xc2\x9b!",
	         "bad?"
	         "?[31mred?"
	         "?!");
	error_rt(QP_EPROTO, "año Ñahui", "año Ñahui");
	/* Not UTF-8: every non-ASCII byte becomes '?'. */
	error_rt(QP_EPROTO, "a\xff\xc3z", "a??z");
	/* Cut at 255 bytes, never inside a character. */
	memset(lng, 'a', 254);
	strcpy(lng + 254, "ñññ");
	memcpy(want, lng, 254);
	want[254] = '\0';
	error_rt(QP_EAUTH, lng, want);
	memset(lng, 'b', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	memcpy(want, lng, 255);
	want[255] = '\0';
	error_rt(QP_EAUTH, lng, want);

	ck_assert_int_eq(qp_sync_encode_error(0, "x", &b, &n), QP_EINVAL);
	ck_assert_int_eq(qp_sync_encode_error(5, "x", &b, &n), QP_EINVAL);
	ck_assert_ptr_null(b);
}
END_TEST

/* Hand-made messages that the strict decoder must refuse. */
START_TEST(test_strict)
{
	pk k;
	uint8_t feed[QP_SYNC_FEED_LEN + 1] = {0}, rev[QP_REV_LEN + 1] = {0};
	char big[QP_SYNC_WHY_MAX + 1];

	ck_assert_int_eq(raw_decode("\x92\x05\x01", 3), QP_SYNC_DONE);
	ck_assert_int_eq(raw_decode("", 0), QP_EPROTO);
	ck_assert_int_eq(qp_sync_decode(NULL, 0, NULL), QP_EINVAL);
	ck_assert_int_eq(raw_decode("\x05", 1), QP_EPROTO);     /* no array */
	ck_assert_int_eq(raw_decode("\x91\x05", 2), QP_EPROTO); /* 1 field */
	ck_assert_int_eq(raw_decode("\x92\x08\x01", 3), QP_EPROTO); /* type 8 */
	ck_assert_int_eq(raw_decode("\x92\x00\x01", 3), QP_EPROTO); /* type 0 */
	ck_assert_int_eq(raw_decode("\x92\x05\x02", 3), QP_EVERSION);
	ck_assert_int_eq(raw_decode("\x92\x05\x01\x00", 4),
	                 QP_EPROTO); /* trail */
	ck_assert_int_eq(raw_decode("\x93\x05\x01\x00", 4),
	                 QP_EPROTO); /* extra */
	/* Non-canonical forms of the same DONE. */
	ck_assert_int_eq(raw_decode("\xdc\x00\x02\x05\x01", 5), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x92\xcc\x05\x01", 4), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x92\xd0\x05\x01", 4), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x92\x05\xcd\x00\x01", 5), QP_EPROTO);
	/* VECTOR: more must be a bool, entries pairs of bin48 + uint. */
	ck_assert_int_eq(raw_decode("\x94\x01\x01\xc2\x90", 5), QP_SYNC_VECTOR);
	ck_assert_int_eq(raw_decode("\x94\x01\x01\x00\x90", 5), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x94\x01\x01\xc0\x90", 5), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x93\x01\x01\xc2", 4), QP_EPROTO);

	for (int variant = 0; variant < 7; variant++) {
		int want = variant == 0 ? QP_SYNC_VECTOR : QP_EPROTO;

		pk_init(&k);
		msgpack_pack_array(&k.p, 4);
		msgpack_pack_uint8(&k.p, QP_SYNC_VECTOR);
		msgpack_pack_uint8(&k.p, QP_SYNC_VERSION);
		msgpack_pack_true(&k.p);
		msgpack_pack_array(&k.p, 2);
		for (int i = 0; i < 2; i++) {
			size_t flen = QP_SYNC_FEED_LEN;

			feed[0] = (uint8_t)i;
			if (variant == 1 && i == 1)
				feed[0] = 0; /* duplicate */
			if (variant == 2 && i == 1)
				flen = 47;
			if (variant == 6 && i == 1)
				flen = 49;
			msgpack_pack_array(&k.p, variant == 3 ? 3 : 2);
			if (variant == 4)
				msgpack_pack_str_with_body(&k.p, feed, flen);
			else
				msgpack_pack_bin_with_body(&k.p, feed, flen);
			if (variant == 5)
				msgpack_pack_int64(&k.p, -1);
			else
				msgpack_pack_uint64(&k.p, 7);
			if (variant == 3)
				msgpack_pack_uint64(&k.p, 7);
		}
		ck_assert_int_eq(pk_decode(&k), want);
	}
	/* Entries in descending order. */
	pk_init(&k);
	msgpack_pack_array(&k.p, 4);
	msgpack_pack_uint8(&k.p, QP_SYNC_ACK);
	msgpack_pack_uint8(&k.p, QP_SYNC_VERSION);
	msgpack_pack_uint8(&k.p, 1);
	msgpack_pack_array(&k.p, 2);
	for (int i = 0; i < 2; i++) {
		feed[0] = (uint8_t)(9 - i);
		msgpack_pack_array(&k.p, 2);
		msgpack_pack_bin_with_body(&k.p, feed, QP_SYNC_FEED_LEN);
		msgpack_pack_uint8(&k.p, 1);
	}
	ck_assert_int_eq(pk_decode(&k), QP_EPROTO);

	/* REVOCATIONS: each exactly QP_REV_LEN. */
	for (size_t rl = QP_REV_LEN - 1; rl <= QP_REV_LEN + 1; rl++) {
		pk_init(&k);
		msgpack_pack_array(&k.p, 3);
		msgpack_pack_uint8(&k.p, QP_SYNC_REVOKES);
		msgpack_pack_uint8(&k.p, QP_SYNC_VERSION);
		msgpack_pack_array(&k.p, 1);
		msgpack_pack_bin_with_body(&k.p, rev, rl);
		ck_assert_int_eq(pk_decode(&k), rl == QP_REV_LEN
		                                    ? QP_SYNC_REVOKES
		                                    : QP_EPROTO);
	}
	/* DELTAS: none, or one below the minimum size. */
	ck_assert_int_eq(raw_decode("\x93\x02\x01\x90", 4), QP_EPROTO);
	pk_init(&k);
	msgpack_pack_array(&k.p, 3);
	msgpack_pack_uint8(&k.p, QP_SYNC_DELTAS);
	msgpack_pack_uint8(&k.p, QP_SYNC_VERSION);
	msgpack_pack_array(&k.p, 2);
	{
		static uint8_t junk[QP_SYNC_DELTA_MIN];
		msgpack_pack_bin_with_body(&k.p, junk, QP_SYNC_DELTA_MIN);
		msgpack_pack_bin_with_body(&k.p, junk, QP_SYNC_DELTA_MIN - 1);
	}
	ck_assert_int_eq(pk_decode(&k), QP_EPROTO);

	/* ERROR: negative code in shortest form, clean bounded reason. */
	ck_assert_int_eq(raw_decode("\x94\x06\x01\xff\xa0", 5), QP_SYNC_ERROR);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\x00\xa0", 5), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\x05\xa0", 5), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\xd0\xff\xa0", 6), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\xd0\xdf\xa0", 6),
	                 QP_SYNC_ERROR);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\xd1\xff\xff\xa0", 7),
	                 QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\xd3\xff\xff\xff\xff\xff\xff"
	                            "\xff\xff\xa0",
	                            13),
	                 QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\xff\xc4\x00", 6), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\xff\xd9\x01x", 7), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\xff\xa2\x0a!", 7), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\xff\xa2\xc2\x85", 7),
	                 QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\xff\xa2\xc3\xb1", 7),
	                 QP_SYNC_ERROR);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\xff\xa2\xc3\x28", 7),
	                 QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x94\x06\x01\xff\xa1\x00", 6), QP_EPROTO);
	memset(big, 'r', sizeof(big));
	for (size_t rl = QP_SYNC_WHY_MAX - 1; rl <= QP_SYNC_WHY_MAX; rl++) {
		pk_init(&k);
		msgpack_pack_array(&k.p, 4);
		msgpack_pack_uint8(&k.p, QP_SYNC_ERROR);
		msgpack_pack_uint8(&k.p, QP_SYNC_VERSION);
		msgpack_pack_int(&k.p, QP_EAUTH);
		msgpack_pack_str_with_body(&k.p, big, rl);
		ck_assert_int_eq(pk_decode(&k), rl < QP_SYNC_WHY_MAX
		                                    ? QP_SYNC_ERROR
		                                    : QP_ETOOBIG);
	}
}
END_TEST

/* Tiny buffers claiming huge counts: refused before any allocation. */
START_TEST(test_oversize_counts)
{
	/* VECTOR with 2^32-1 entries, and with 4096 (within the limit). */
	ck_assert_int_eq(raw_decode("\x94\x01\x01\xc2\xdd\xff\xff\xff\xff", 9),
	                 QP_ETOOBIG);
	ck_assert_int_eq(raw_decode("\x94\x01\x01\xc2\xdc\x10\x00", 7),
	                 QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x94\x01\x01\xc2\xdc\x10\x01", 7),
	                 QP_ETOOBIG);
	ck_assert_int_eq(raw_decode("\x94\x03\x01\x00\xdd\x7f\xff\xff\xff", 9),
	                 QP_ETOOBIG);
	/* DELTAS with 512 and 513 deltas, CERTS with 512 and 513. */
	ck_assert_int_eq(raw_decode("\x93\x02\x01\xdc\x02\x00", 6), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x93\x02\x01\xdc\x02\x01", 6), QP_ETOOBIG);
	ck_assert_int_eq(raw_decode("\x93\x07\x01\xdc\x02\x00", 6), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x93\x07\x01\xdc\x02\x01", 6), QP_ETOOBIG);
	/* A bin claiming 4 GiB in a few bytes. */
	ck_assert_int_eq(raw_decode("\x93\x02\x01\x91\xc6\xff\xff\xff\xff", 9),
	                 QP_EPROTO);
	/* REVOCATIONS with 4096 and 4097. */
	ck_assert_int_eq(raw_decode("\x93\x04\x01\xdc\x10\x00", 6), QP_EPROTO);
	ck_assert_int_eq(raw_decode("\x93\x04\x01\xdc\x10\x01", 6), QP_ETOOBIG);
	/* Top-level array of 2^32-1 fields. */
	ck_assert_int_eq(raw_decode("\xdd\xff\xff\xff\xff\x05\x01", 7),
	                 QP_EPROTO);
}
END_TEST

START_TEST(test_limits)
{
	static const uint8_t *d[QP_SYNC_BATCH_MAX + 1];
	static size_t len[QP_SYNC_BATCH_MAX + 1];
	uint8_t *big = qp_xcalloc(QP_DELTA_MAX + 1, 1);
	qp_sync_msg m;
	uint8_t *b = NULL;
	size_t n;
	pk k;

	for (size_t i = 0; i <= QP_SYNC_BATCH_MAX; i++) {
		d[i] = big;
		len[i] = QP_SYNC_DELTA_MIN;
	}
	ck_assert_int_eq(
	    qp_sync_encode_deltas(d, len, QP_SYNC_BATCH_MAX, &b, &n), 0);
	decode_ok(b, n, QP_SYNC_DELTAS, &m);
	ck_assert_uint_eq(m.nitems, QP_SYNC_BATCH_MAX);
	qp_sync_msg_free(&m);
	free(b);
	b = NULL;
	ck_assert_int_eq(
	    qp_sync_encode_deltas(d, len, QP_SYNC_BATCH_MAX + 1, &b, &n),
	    QP_ETOOBIG);
	len[0] = QP_SYNC_DELTA_MIN - 1;
	ck_assert_int_eq(qp_sync_encode_deltas(d, len, 1, &b, &n), QP_EINVAL);

	/* One delta may be as large as any delta. */
	len[0] = QP_DELTA_MAX;
	ck_assert_int_eq(qp_sync_encode_deltas(d, len, 1, &b, &n), 0);
	ck_assert_uint_le(n, QP_CHANNEL_MAX);
	decode_ok(b, n, QP_SYNC_DELTAS, &m);
	ck_assert_uint_eq(m.lens[0], QP_DELTA_MAX);
	qp_sync_msg_free(&m);
	free(b);
	b = NULL;
	len[0] = QP_DELTA_MAX + 1;
	ck_assert_int_eq(qp_sync_encode_deltas(d, len, 1, &b, &n), QP_ETOOBIG);
	/* Several share QP_SYNC_BATCH_BYTES. */
	len[0] = QP_SYNC_BATCH_BYTES / 2;
	len[1] = QP_SYNC_BATCH_BYTES / 2;
	ck_assert_int_eq(qp_sync_encode_deltas(d, len, 2, &b, &n), 0);
	free(b);
	b = NULL;
	len[1]++;
	ck_assert_int_eq(qp_sync_encode_deltas(d, len, 2, &b, &n), QP_ETOOBIG);
	len[0] = QP_DELTA_MAX;
	len[1] = QP_SYNC_DELTA_MIN;
	ck_assert_int_eq(qp_sync_encode_deltas(d, len, 2, &b, &n), QP_ETOOBIG);
	ck_assert_ptr_null(b);

	/* The decoder applies the same budget and size limit. */
	for (int variant = 0; variant < 2; variant++) {
		pk_init(&k);
		msgpack_pack_array(&k.p, 3);
		msgpack_pack_uint8(&k.p, QP_SYNC_DELTAS);
		msgpack_pack_uint8(&k.p, QP_SYNC_VERSION);
		if (variant == 0) {
			msgpack_pack_array(&k.p, 2);
			msgpack_pack_bin_with_body(&k.p, big,
			                           QP_SYNC_BATCH_BYTES / 2 + 1);
			msgpack_pack_bin_with_body(&k.p, big,
			                           QP_SYNC_BATCH_BYTES / 2);
		} else {
			msgpack_pack_array(&k.p, 1);
			msgpack_pack_bin_with_body(&k.p, big, QP_DELTA_MAX + 1);
		}
		ck_assert_int_eq(pk_decode(&k), QP_ETOOBIG);
	}

	/* qp_sync_batch_fits, the rule the daemon batches by. */
	ck_assert_int_eq(qp_sync_batch_fits(0, 0, QP_DELTA_MAX), 1);
	ck_assert_int_eq(qp_sync_batch_fits(0, 0, QP_DELTA_MAX + 1), 0);
	ck_assert_int_eq(qp_sync_batch_fits(1, 100, QP_SYNC_BATCH_BYTES - 100),
	                 1);
	ck_assert_int_eq(qp_sync_batch_fits(1, 100, QP_SYNC_BATCH_BYTES - 99),
	                 0);
	ck_assert_int_eq(qp_sync_batch_fits(1, QP_DELTA_MAX, 200), 0);
	ck_assert_int_eq(qp_sync_batch_fits(QP_SYNC_BATCH_MAX - 1, 0, 200), 1);
	ck_assert_int_eq(qp_sync_batch_fits(QP_SYNC_BATCH_MAX, 0, 200), 0);

	/* Revocation count limit. */
	{
		const uint8_t **r = qp_xcalloc(QP_SYNC_REV_MAX + 1, sizeof(*r));
		for (size_t i = 0; i <= QP_SYNC_REV_MAX; i++)
			r[i] = big;
		ck_assert_int_eq(
		    qp_sync_encode_revocations(r, QP_SYNC_REV_MAX, &b, &n), 0);
		decode_ok(b, n, QP_SYNC_REVOKES, &m);
		qp_sync_msg_free(&m);
		free(b);
		b = NULL;
		ck_assert_int_eq(
		    qp_sync_encode_revocations(r, QP_SYNC_REV_MAX + 1, &b, &n),
		    QP_ETOOBIG);
		free(r);
	}
	free(big);
	/* A message above the channel's plaintext limit. */
	big = qp_xcalloc((size_t)QP_CHANNEL_MAX + 1, 1);
	ck_assert_int_eq(qp_sync_decode(big, (size_t)QP_CHANNEL_MAX + 1, &m),
	                 QP_ETOOBIG);
	free(big);
}
END_TEST

/* One message of each kind, for the truncation and flip tests. */
static size_t samples(uint8_t **b, size_t *n, uint8_t **d, size_t *dlen)
{
	uint8_t *cert;
	size_t certlen;
	qp_feed fa = mkfeed(a_pk, 3);
	qp_vv_entry e[3];
	uint8_t rev[QP_REV_LEN];
	const uint8_t *revs[1] = {rev};
	size_t k = 0;

	memset(rev, 0x5a, sizeof(rev));
	for (unsigned i = 0; i < 3; i++) {
		e[i].feed = nfeed(i);
		e[i].seq = 300 + i;
	}
	make_chain(&fa, a_sk, 3, d, dlen);
	ck_assert_int_eq(qp_sync_encode_vector(e, 3, 1, &b[k], &n[k]), 0);
	k++;
	ck_assert_int_eq(qp_sync_encode_deltas((const uint8_t *const *)d, dlen,
	                                       3, &b[k], &n[k]),
	                 0);
	k++;
	ck_assert_int_eq(qp_sync_encode_ack(e, 2, 3, &b[k], &n[k]), 0);
	k++;
	ck_assert_int_eq(qp_sync_encode_revocations(revs, 1, &b[k], &n[k]), 0);
	k++;
	ck_assert_int_eq(qp_sync_encode_done(&b[k], &n[k]), 0);
	k++;
	ck_assert_int_eq(
	    qp_sync_encode_error(QP_EEXPIRED, "cert expired", &b[k], &n[k]), 0);
	k++;
	make_cert(&cert, &certlen);
	ck_assert_int_eq(qp_sync_encode_certs((const uint8_t *const *)&cert,
	                                      &certlen, 1, &b[k], &n[k]),
	                 0);
	free(cert);
	k++;
	return k;
}

START_TEST(test_truncations)
{
	uint8_t *b[7], *d[3], *x;
	size_t n[7], dlen[3], k = samples(b, n, d, dlen);
	qp_sync_msg m;

	for (size_t s = 0; s < k; s++) {
		for (size_t cut = 0; cut < n[s]; cut++) {
			/* A copy of exactly cut bytes, so ASan sees overreads.
			 */
			x = qp_xmalloc(cut + 1);
			memcpy(x, b[s], cut);
			ck_assert_int_eq(qp_sync_decode(x, cut, &m), QP_EPROTO);
			free(x);
		}
		x = qp_xmalloc(n[s] + 1);
		memcpy(x, b[s], n[s]);
		x[n[s]] = 0xc0;
		ck_assert_int_eq(qp_sync_decode(x, n[s] + 1, &m), QP_EPROTO);
		free(x);
		free(b[s]);
	}
	free_all(d, 3);
}
END_TEST

/* Every single-bit flip: refused, or decoded into a message that
 * re-encodes to exactly the flipped bytes; flipped deltas never verify. */
START_TEST(test_flips)
{
	uint8_t *b[7], *d[3];
	size_t n[7], dlen[3], k = samples(b, n, d, dlen);
	size_t decoded = 0, refused = 0;
	qp_sync_msg m;

	for (size_t s = 0; s < k; s++) {
		for (size_t i = 0; i < n[s]; i++) {
			for (int bit = 0; bit < 8; bit++) {
				uint8_t *again;
				size_t alen;
				int rc;

				b[s][i] ^= (uint8_t)(1u << bit);
				rc = qp_sync_decode(b[s], n[s], &m);
				if (rc < 0) {
					ck_assert(rc == QP_EPROTO ||
					          rc == QP_ETOOBIG ||
					          rc == QP_EVERSION);
					refused++;
				} else {
					decoded++;
					ck_assert_int_eq(
					    qp_sync_encode(&m, &again, &alen),
					    0);
					ck_assert_uint_eq(alen, n[s]);
					ck_assert_mem_eq(again, b[s], alen);
					free(again);
					if (rc == QP_SYNC_DELTAS) {
						int bad = 0;
						for (size_t j = 0; j < m.nitems;
						     j++)
							bad |= qp_delta_verify(
							           m.items[j],
							           m.lens[j],
							           NULL) != 0;
						ck_assert(bad);
					}
					qp_sync_msg_free(&m);
				}
				b[s][i] ^= (uint8_t)(1u << bit);
			}
		}
		free(b[s]);
	}
	ck_assert_uint_gt(decoded, 0);
	ck_assert_uint_gt(refused, 0);
	free_all(d, 3);
}
END_TEST

START_TEST(test_vv_basic)
{
	qp_vv vv, big;
	qp_feed f[6];
	qp_vv_entry in[4];

	for (unsigned i = 0; i < 6; i++)
		f[i] = nfeed(i * 10);
	qp_vv_init(&vv);
	ck_assert_uint_eq(qp_vv_get(&vv, &f[0]), 0);
	/* Out of order inserts stay sorted; set overwrites, even lower. */
	ck_assert_int_eq(qp_vv_set(&vv, &f[3], 30), 0);
	ck_assert_int_eq(qp_vv_set(&vv, &f[1], 10), 0);
	ck_assert_int_eq(qp_vv_set(&vv, &f[5], 50), 0);
	ck_assert_int_eq(qp_vv_set(&vv, &f[0], 1), 0);
	ck_assert_int_eq(qp_vv_set(&vv, &f[3], 3), 0);
	ck_assert_uint_eq(vv.n, 4);
	for (size_t i = 1; i < vv.n; i++)
		ck_assert_int_lt(qp_feed_cmp(&vv.e[i - 1].feed, &vv.e[i].feed),
		                 0);
	ck_assert_uint_eq(qp_vv_get(&vv, &f[3]), 3);
	ck_assert_uint_eq(qp_vv_get(&vv, &f[5]), 50);
	ck_assert_uint_eq(qp_vv_get(&vv, &f[2]), 0);
	ck_assert_uint_eq(qp_vv_get(NULL, &f[2]), 0);
	ck_assert_int_eq(qp_vv_set(NULL, &f[2], 1), QP_EINVAL);

	/* Merge takes the maximum per feed and adds new feeds. */
	in[0] = (qp_vv_entry){f[0], 0};
	in[1] = (qp_vv_entry){f[2], 20};
	in[2] = (qp_vv_entry){f[3], 33};
	in[3] = (qp_vv_entry){f[4], 40};
	ck_assert_int_eq(qp_vv_merge(&vv, in, 4), 0);
	ck_assert_uint_eq(vv.n, 6);
	ck_assert_uint_eq(qp_vv_get(&vv, &f[0]), 1);
	ck_assert_uint_eq(qp_vv_get(&vv, &f[1]), 10);
	ck_assert_uint_eq(qp_vv_get(&vv, &f[2]), 20);
	ck_assert_uint_eq(qp_vv_get(&vv, &f[3]), 33);
	ck_assert_uint_eq(qp_vv_get(&vv, &f[4]), 40);
	ck_assert_uint_eq(qp_vv_get(&vv, &f[5]), 50);
	/* Merging itself changes nothing; unsorted input is refused. */
	{
		qp_vv copy;
		qp_vv_init(&copy);
		ck_assert_int_eq(qp_vv_merge(&copy, vv.e, vv.n), 0);
		ck_assert_int_eq(qp_vv_merge(&copy, vv.e, vv.n), 0);
		ck_assert_uint_eq(copy.n, vv.n);
		ck_assert_mem_eq(copy.e, vv.e, vv.n * sizeof(*vv.e));
		qp_vv_free(&copy);
	}
	in[0] = (qp_vv_entry){f[5], 99};
	in[1] = (qp_vv_entry){f[1], 99};
	ck_assert_int_eq(qp_vv_merge(&vv, in, 2), QP_EINVAL);
	ck_assert_uint_eq(qp_vv_get(&vv, &f[5]), 50);
	ck_assert_int_eq(qp_vv_merge(&vv, NULL, 0), 0);
	qp_vv_free(&vv);
	ck_assert_ptr_null(vv.e);
	ck_assert_uint_eq(vv.n, 0);
	qp_vv_free(NULL);

	/* The total limit, for set and merge. */
	qp_vv_init(&big);
	for (unsigned i = 0; i < QP_SYNC_VV_MAX; i++) {
		qp_feed g = nfeed(i);
		ck_assert_int_eq(qp_vv_set(&big, &g, 1), 0);
	}
	{
		qp_feed g = nfeed(QP_SYNC_VV_MAX), h = nfeed(7);
		qp_vv_entry e1 = {g, 5}, e2 = {h, 9};
		ck_assert_int_eq(qp_vv_set(&big, &g, 1), QP_ETOOBIG);
		ck_assert_int_eq(qp_vv_merge(&big, &e1, 1), QP_ETOOBIG);
		ck_assert_uint_eq(big.n, QP_SYNC_VV_MAX);
		/* Existing feeds can still move. */
		ck_assert_int_eq(qp_vv_merge(&big, &e2, 1), 0);
		ck_assert_uint_eq(qp_vv_get(&big, &h), 9);
	}
	qp_vv_free(&big);
}
END_TEST

static void range_eq(const qp_vv_range *r, const qp_feed *f, uint64_t from,
                     uint64_t to)
{
	ck_assert_mem_eq(&r->feed, f, sizeof(*f));
	ck_assert_uint_eq(r->from, from);
	ck_assert_uint_eq(r->to, to);
}

START_TEST(test_vv_missing)
{
	qp_vv mine, theirs;
	qp_feed f[5];
	qp_vv_range *r;
	size_t n;
	uint8_t orgs[3][QP_UUID_LEN];

	for (unsigned i = 0; i < 5; i++)
		f[i] = mkfeed(i < 3 ? a_pk : b_pk, 100 + i);
	qp_vv_init(&mine);
	qp_vv_init(&theirs);
	ck_assert_int_eq(qp_vv_missing(&mine, &theirs, NULL, 0, &r, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(r);

	qp_vv_set(&mine, &f[0], 5);
	qp_vv_set(&mine, &f[1], 3);
	qp_vv_set(&mine, &f[2], 7);
	qp_vv_set(&mine, &f[4], 0);
	qp_vv_set(&theirs, &f[0], 5);
	qp_vv_set(&theirs, &f[1], 1);
	qp_vv_set(&theirs, &f[3], 9);
	ck_assert_int_eq(qp_vv_missing(&mine, &theirs, NULL, 0, &r, &n), 0);
	ck_assert_uint_eq(n, 2);
	range_eq(&r[0], &f[1], 1, 3); /* same author, org 101 < 102 */
	range_eq(&r[1], &f[2], 0, 7);
	free(r);
	/* The other way round: they have f[3] we lack. */
	ck_assert_int_eq(qp_vv_missing(&theirs, &mine, NULL, 0, &r, &n), 0);
	ck_assert_uint_eq(n, 1);
	range_eq(&r[0], &f[3], 0, 9);
	free(r);
	/* Equal vectors, or a peer ahead: nothing to send. */
	ck_assert_int_eq(qp_vv_missing(&mine, &mine, NULL, 0, &r, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(qp_vv_merge(&theirs, mine.e, mine.n), 0);
	qp_vv_set(&theirs, &f[2], 8);
	ck_assert_int_eq(qp_vv_missing(&mine, &theirs, NULL, 0, &r, &n), 0);
	ck_assert_uint_eq(n, 0);
	qp_vv_free(&theirs);

	/* Scope: only the orgs listed (any order); an empty list: none. */
	qp_vv_init(&theirs);
	memcpy(orgs[0], f[4].org, QP_UUID_LEN);
	memcpy(orgs[1], f[2].org, QP_UUID_LEN);
	memcpy(orgs[2], f[0].org, QP_UUID_LEN);
	ck_assert_int_eq(qp_vv_missing(&mine, &theirs,
	                               (const uint8_t(*)[QP_UUID_LEN])orgs, 3,
	                               &r, &n),
	                 0);
	ck_assert_uint_eq(n, 2); /* f[0] and f[2]; f[4] holds nothing */
	for (size_t i = 0; i < n; i++)
		ck_assert(memcmp(&r[i].feed, &f[0], sizeof(qp_feed)) == 0 ||
		          memcmp(&r[i].feed, &f[2], sizeof(qp_feed)) == 0);
	free(r);
	ck_assert_int_eq(qp_vv_missing(&mine, &theirs,
	                               (const uint8_t(*)[QP_UUID_LEN])orgs, 0,
	                               &r, &n),
	                 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(qp_vv_missing(&mine, &theirs, NULL, 2, &r, &n),
	                 QP_EINVAL);
	qp_vv_free(&mine);
	qp_vv_free(&theirs);
}
END_TEST

/* Two nodes' logs in memory; the exchange driven only by this module. */
typedef struct node {
	uint8_t *d[2][CHAIN];
	size_t len[2][CHAIN];
	size_t held[2]; /* contiguous prefix held of each feed */
	qp_feed feed[2];
} node;

static void node_vv(const node *x, qp_vv *vv)
{
	qp_vv_init(vv);
	for (int f = 0; f < 2; f++)
		if (x->held[f] > 0)
			ck_assert_int_eq(qp_vv_set(vv, &x->feed[f], x->held[f]),
			                 0);
}

static int node_feed(const node *x, const qp_feed *f)
{
	for (int i = 0; i < 2; i++)
		if (qp_feed_cmp(&x->feed[i], f) == 0)
			return i;
	ck_abort_msg("unknown feed");
	return -1;
}

/* Receiver side of one DELTAS message: verify, "commit", ACK. */
static void receive(node *to, const uint8_t *msg, size_t len, uint8_t **ack,
                    size_t *acklen)
{
	qp_sync_msg m;
	qp_delta_hdr h;
	qp_vv acked;

	ck_assert_int_eq(qp_sync_decode(msg, len, &m), QP_SYNC_DELTAS);
	qp_vv_init(&acked);
	for (size_t i = 0; i < m.nitems; i++) {
		int f;
		ck_assert_int_eq(qp_delta_verify(m.items[i], m.lens[i], &h), 0);
		f = node_feed(to, &h.feed);
		ck_assert_uint_eq(h.seq, to->held[f] + 1); /* oldest first */
		to->d[f][to->held[f]] = qp_xmalloc(m.lens[i]);
		memcpy(to->d[f][to->held[f]], m.items[i], m.lens[i]);
		to->len[f][to->held[f]] = m.lens[i];
		to->held[f]++;
		ck_assert_int_eq(qp_vv_set(&acked, &h.feed, h.seq), 0);
	}
	ck_assert_int_eq(
	    qp_sync_encode_ack(acked.e, acked.n, m.nitems, ack, acklen), 0);
	qp_vv_free(&acked);
	qp_sync_msg_free(&m);
}

/* Sender: everything the receiver's vector lacks, in small batches. */
static size_t push(node *from, node *to, const uint8_t (*orgs)[QP_UUID_LEN],
                   size_t norgs)
{
	qp_vv mine, theirs, tv;
	qp_vv_range *r;
	qp_sync_msg m;
	uint8_t *msg, *ack;
	size_t n, len, acklen, batches = 0;

	node_vv(from, &mine);
	node_vv(to, &tv);
	ck_assert_int_eq(qp_sync_encode_vector(tv.e, tv.n, 0, &msg, &len), 0);
	qp_vv_free(&tv);
	ck_assert_int_eq(qp_sync_decode(msg, len, &m), QP_SYNC_VECTOR);
	qp_vv_init(&theirs);
	ck_assert_int_eq(qp_vv_merge(&theirs, m.entries, m.nentries), 0);
	qp_sync_msg_free(&m);
	free(msg);
	ck_assert_int_eq(qp_vv_missing(&mine, &theirs, orgs, norgs, &r, &n), 0);
	for (size_t i = 0; i < n; i++) {
		int f = node_feed(from, &r[i].feed);
		uint64_t seq = r[i].from + 1;

		while (seq <= r[i].to) {
			const uint8_t *batch[5];
			size_t lens[5], k = 0, bytes = 0;

			/* Batches of at most 5, to exercise the resume. */
			while (seq <= r[i].to && k < 5 &&
			       qp_sync_batch_fits(k, bytes,
			                          from->len[f][seq - 1])) {
				batch[k] = from->d[f][seq - 1];
				lens[k] = from->len[f][seq - 1];
				bytes += lens[k++];
				seq++;
			}
			ck_assert_int_eq(
			    qp_sync_encode_deltas(batch, lens, k, &msg, &len),
			    0);
			receive(to, msg, len, &ack, &acklen);
			free(msg);
			ck_assert_int_eq(qp_sync_decode(ack, acklen, &m),
			                 QP_SYNC_ACK);
			ck_assert_uint_eq(m.received, k);
			ck_assert_int_eq(
			    qp_vv_merge(&theirs, m.entries, m.nentries), 0);
			ck_assert_uint_eq(qp_vv_get(&theirs, &r[i].feed),
			                  seq - 1);
			qp_sync_msg_free(&m);
			free(ack);
			batches++;
		}
	}
	free(r);
	/* After the acks nothing in scope is left to send. */
	ck_assert_int_eq(qp_vv_missing(&mine, &theirs, orgs, norgs, &r, &n), 0);
	ck_assert_uint_eq(n, 0);
	qp_vv_free(&mine);
	qp_vv_free(&theirs);
	return batches;
}

static void node_free(node *x)
{
	for (int f = 0; f < 2; f++)
		free_all(x->d[f], x->held[f]);
}

START_TEST(test_exchange)
{
	node hub, dev;
	uint8_t scope[1][QP_UUID_LEN];

	memset(&hub, 0, sizeof(hub));
	memset(&dev, 0, sizeof(dev));
	hub.feed[0] = dev.feed[0] = mkfeed(a_pk, 1);
	hub.feed[1] = dev.feed[1] = mkfeed(b_pk, 2);
	make_chain(&hub.feed[0], a_sk, CHAIN, hub.d[0], hub.len[0]);
	make_chain(&hub.feed[1], b_sk, CHAIN, hub.d[1], hub.len[1]);
	hub.held[0] = hub.held[1] = CHAIN;
	/* The device already holds the first 4 deltas of feed 0. */
	for (int i = 0; i < 4; i++) {
		dev.d[0][i] = qp_xmalloc(hub.len[0][i]);
		memcpy(dev.d[0][i], hub.d[0][i], hub.len[0][i]);
		dev.len[0][i] = hub.len[0][i];
	}
	dev.held[0] = 4;

	/* Scoped to org 1: feed 1 (org 2) stays at the hub. */
	memcpy(scope[0], hub.feed[0].org, QP_UUID_LEN);
	ck_assert_uint_eq(
	    push(&hub, &dev, (const uint8_t(*)[QP_UUID_LEN])scope, 1),
	    2); /* 8 deltas in batches of 5 */
	ck_assert_uint_eq(dev.held[0], CHAIN);
	ck_assert_uint_eq(dev.held[1], 0);
	/* Unscoped: the rest; then a second sync sends nothing. */
	ck_assert_uint_eq(push(&hub, &dev, NULL, 0), 3);
	ck_assert_uint_eq(dev.held[1], CHAIN);
	ck_assert_uint_eq(push(&hub, &dev, NULL, 0), 0);
	ck_assert_uint_eq(push(&dev, &hub, NULL, 0), 0);
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < CHAIN; i++)
			ck_assert_mem_eq(dev.d[f][i], hub.d[f][i],
			                 hub.len[f][i]);
	node_free(&hub);
	node_free(&dev);
}
END_TEST

/* A vector larger than one message, split with "more" and reassembled. */
START_TEST(test_split_vector)
{
	qp_vv big, got;
	qp_sync_msg m;
	uint8_t *b;
	size_t n, msgs = 0, off = 0;
	int more = 1;

	qp_vv_init(&big);
	qp_vv_init(&got);
	for (unsigned i = 0; i < 3 * QP_SYNC_VECTOR_MAX + 17; i++) {
		qp_feed f = nfeed(i * 3);
		ck_assert_int_eq(qp_vv_set(&big, &f, i + 1), 0);
	}
	while (more) {
		size_t k = big.n - off < QP_SYNC_VECTOR_MAX
		               ? big.n - off
		               : QP_SYNC_VECTOR_MAX;
		ck_assert_int_eq(qp_sync_encode_vector(big.e + off, k,
		                                       off + k < big.n, &b, &n),
		                 0);
		off += k;
		ck_assert_int_eq(qp_sync_decode(b, n, &m), QP_SYNC_VECTOR);
		more = m.more;
		ck_assert_int_eq(qp_vv_merge(&got, m.entries, m.nentries), 0);
		qp_sync_msg_free(&m);
		free(b);
		msgs++;
	}
	ck_assert_uint_eq(msgs, 4);
	ck_assert_uint_eq(got.n, big.n);
	ck_assert_mem_eq(got.e, big.e, big.n * sizeof(*big.e));
	qp_vv_free(&big);
	qp_vv_free(&got);
}
END_TEST

Suite *suite_sync(void)
{
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_vector_roundtrip);
	tcase_add_test(tc, test_deltas_roundtrip);
	tcase_add_test(tc, test_ack_revocations_done);
	tcase_add_test(tc, test_certs);
	tcase_add_test(tc, test_chain);
	tcase_add_test(tc, test_error);
	tcase_add_test(tc, test_strict);
	tcase_add_test(tc, test_oversize_counts);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_truncations);
	tcase_add_test(tc, test_flips);
	tcase_add_test(tc, test_vv_basic);
	tcase_add_test(tc, test_vv_missing);
	tcase_add_test(tc, test_exchange);
	tcase_add_test(tc, test_split_vector);
	suite_add_tcase(s, tc);
	return s;
}
