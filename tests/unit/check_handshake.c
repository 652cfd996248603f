/* check_handshake.c - covers proto/handshake.c: the sync handshake (HELLO,
 * WELCOME, AUTH, REFUSE) and the secretstream channel. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "err.h"
#include "handshake.h"
#include "suites.h"
#include "util.h"

#define NOW 1763899200u

static uint8_t hub_pk[QP_KEY_LEN], hub_sk[QP_SKEY_LEN];
static uint8_t other_pk[QP_KEY_LEN], other_sk[QP_SKEY_LEN];
static uint8_t dev_pk[QP_KEY_LEN], dev_sk[QP_SKEY_LEN];
static uint8_t dev2_pk[QP_KEY_LEN], dev2_sk[QP_SKEY_LEN];
static uint8_t *cert, *other_cert, *expired_cert;
static size_t certlen, other_len, expired_len;

/* The daemon's check, as a test double: the certificate must verify under
 * the hub key at `now`, and the key must not be revoked. */
typedef struct peer_ctx {
	const uint8_t *hub_pk;
	uint64_t now;
	const uint8_t *revoked; /* a key, or NULL */
	int calls;
	int force; /* nonzero: return this instead of checking */
	uint8_t seen_pk[QP_KEY_LEN];
	size_t seen_len;
} peer_ctx;

static int check_peer(void *vctx, const uint8_t peer_pk[QP_KEY_LEN],
                      const uint8_t *c, size_t clen, char *why, size_t whylen)
{
	peer_ctx *ctx = vctx;
	qp_cert d;
	int rc;

	ctx->calls++;
	memcpy(ctx->seen_pk, peer_pk, QP_KEY_LEN);
	ctx->seen_len = clen;
	if (ctx->force != 0)
		return ctx->force;
	rc = qp_cert_verify(c, clen, ctx->hub_pk, ctx->now, &d);
	if (rc == QP_EAUTH) {
		snprintf(why, whylen, "certificate was issued by another hub");
		return rc;
	}
	if (rc != 0) {
		snprintf(why, whylen, "%s", qp_strerror(rc));
		return rc;
	}
	if (ctx->revoked != NULL &&
	    memcmp(ctx->revoked, peer_pk, QP_KEY_LEN) == 0) {
		snprintf(why, whylen, "key revoked by the hub");
		return QP_EREVOKED;
	}
	return 0;
}

static int accept_all(void *vctx, const uint8_t peer_pk[QP_KEY_LEN],
                      const uint8_t *c, size_t clen, char *why, size_t whylen)
{
	(void)vctx;
	(void)peer_pk;
	(void)c;
	(void)clen;
	(void)why;
	(void)whylen;
	return 0;
}

static uint8_t *make_cert(const uint8_t *sk, const uint8_t *device,
                          uint64_t expires, size_t *len)
{
	qp_cert c;
	uint8_t *b;

	memset(&c, 0, sizeof(c));
	c.version = QP_CERT_VERSION;
	c.role = QP_ROLE_TECHNICIAN;
	memcpy(c.device, device, QP_KEY_LEN);
	memcpy(c.issuer, sk + 32, QP_KEY_LEN);
	c.serial = 7;
	c.issued_at = NOW - 1000;
	c.expires_at = expires;
	strcpy(c.name, "tablet");
	c.norgs = 1;
	memset(c.orgs[0], 0x42, QP_UUID_LEN);
	ck_assert_int_eq(qp_cert_build(&c, sk, &b, len), 0);
	return b;
}

static void setup(void)
{
	ck_assert_int_eq(qp_crypto_init(), 0);
	qp_key_generate(hub_pk, hub_sk);
	qp_key_generate(other_pk, other_sk);
	qp_key_generate(dev_pk, dev_sk);
	qp_key_generate(dev2_pk, dev2_sk);
	cert = make_cert(hub_sk, dev_pk, NOW + 86400, &certlen);
	other_cert = make_cert(other_sk, dev_pk, NOW + 86400, &other_len);
	expired_cert = make_cert(hub_sk, dev_pk, NOW - 1, &expired_len);
}

static void teardown(void)
{
	free(cert);
	free(other_cert);
	free(expired_cert);
}

static void ctx_init(peer_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->hub_pk = hub_pk;
	ctx->now = NOW;
}

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

static void assert_wiped(const qp_hs *hs)
{
	ck_assert(all_zero(hs->my_sk, sizeof(hs->my_sk)));
	ck_assert(all_zero(hs->eph_sk, sizeof(hs->eph_sk)));
	ck_assert(all_zero(hs->rx_key, sizeof(hs->rx_key)));
	ck_assert(all_zero(hs->tx_key, sizeof(hs->tx_key)));
	ck_assert(all_zero(hs->t1, sizeof(hs->t1)));
	ck_assert_ptr_null(hs->msg);
}

/* A session in progress: the messages exchanged so far. */
typedef struct session {
	qp_hs cl, sv;
	peer_ctx ctx;
	uint8_t *hello, *welcome, *auth;
	size_t hello_len, welcome_len, auth_len;
} session;

static void session_free(session *s)
{
	qp_hs_clear(&s->cl);
	qp_hs_clear(&s->sv);
	free(s->hello);
	free(s->welcome);
	free(s->auth);
	memset(s, 0, sizeof(*s));
}

/* Run the handshake up to stage: 1 = HELLO made, 2 = WELCOME made,
 * 3 = AUTH made (client established), 4 = both established. */
static void session_run(session *s, int stage)
{
	memset(s, 0, sizeof(*s));
	ctx_init(&s->ctx);
	ck_assert_int_eq(
	    qp_hs_client_init(&s->cl, dev_pk, dev_sk, hub_pk, cert, certlen),
	    0);
	ck_assert_int_eq(
	    qp_hs_server_init(&s->sv, hub_pk, hub_sk, check_peer, &s->ctx), 0);
	ck_assert_int_eq(qp_hs_client_hello(&s->cl, &s->hello, &s->hello_len),
	                 0);
	if (stage < 2)
		return;
	ck_assert_int_eq(qp_hs_server_on_hello(&s->sv, s->hello, s->hello_len,
	                                       &s->welcome, &s->welcome_len),
	                 0);
	if (stage < 3)
		return;
	ck_assert_int_eq(qp_hs_client_on_welcome(&s->cl, s->welcome,
	                                         s->welcome_len, &s->auth,
	                                         &s->auth_len),
	                 0);
	if (stage < 4)
		return;
	ck_assert_int_eq(qp_hs_server_on_auth(&s->sv, s->auth, s->auth_len), 0);
}

/* Seal on one channel, open on the other, compare. */
static void pass(qp_channel *from, qp_channel *to, const uint8_t *msg,
                 size_t len)
{
	uint8_t *ct, *pt;
	size_t ctlen, ptlen;

	ck_assert_int_eq(qp_channel_seal(from, msg, len, &ct, &ctlen), 0);
	ck_assert_uint_eq(ctlen, len + QP_CHANNEL_ABYTES);
	ck_assert_int_eq(qp_channel_open(to, ct, ctlen, &pt, &ptlen), 0);
	ck_assert_uint_eq(ptlen, len);
	ck_assert_ptr_nonnull(pt);
	if (len > 0)
		ck_assert_mem_eq(pt, msg, len);
	free(ct);
	free(pt);
}

START_TEST(test_happy_path)
{
	session s;
	uint8_t *big, *ct, *pt;
	size_t ctlen, ptlen;

	session_run(&s, 4);
	ck_assert_uint_eq(s.hello_len, QP_HS_HELLO_FIXED + certlen);
	ck_assert_uint_eq(s.welcome_len, QP_HS_WELCOME_LEN);
	ck_assert_uint_eq(s.auth_len, QP_HS_AUTH_LEN);
	ck_assert_uint_eq(s.hello[0], QP_SYNC_VERSION);
	ck_assert_uint_eq(s.hello[1], QP_HS_HELLO);
	ck_assert_uint_eq(s.welcome[1], QP_HS_WELCOME);
	ck_assert_uint_eq(s.auth[1], QP_HS_AUTH);
	ck_assert(qp_hs_established(&s.cl));
	ck_assert(qp_hs_established(&s.sv));
	ck_assert_str_eq(s.cl.why, "");
	ck_assert_str_eq(s.sv.why, "");
	/* The server learned who the client is; check_peer ran once. */
	ck_assert_mem_eq(s.sv.peer_pk, dev_pk, QP_KEY_LEN);
	ck_assert_int_eq(s.ctx.calls, 1);
	ck_assert_mem_eq(s.ctx.seen_pk, dev_pk, QP_KEY_LEN);
	ck_assert_uint_eq(s.ctx.seen_len, certlen);
	/* No secret outlives the handshake outside the stream states. */
	assert_wiped(&s.cl);
	assert_wiped(&s.sv);

	/* Data both ways, interleaved, including empty messages. */
	pass(&s.cl.ch, &s.sv.ch, (const uint8_t *)"vector please", 13);
	pass(&s.sv.ch, &s.cl.ch, (const uint8_t *)"here it is", 10);
	for (int i = 0; i < 50; i++) {
		uint8_t m[64];
		memset(m, i, sizeof(m));
		pass(&s.cl.ch, &s.sv.ch, m, (size_t)i);
		pass(&s.sv.ch, &s.cl.ch, m, 64 - (size_t)i);
	}
	big = qp_xmalloc(1u << 20);
	randombytes_buf(big, 1u << 20);
	pass(&s.sv.ch, &s.cl.ch, big, 1u << 20);
	free(big);

	/* A graceful close of the client's direction. */
	ck_assert_int_eq(qp_channel_seal_final(&s.cl.ch, (const uint8_t *)"bye",
	                                       3, &ct, &ctlen),
	                 0);
	ck_assert_int_eq(qp_channel_open(&s.sv.ch, ct, ctlen, &pt, &ptlen),
	                 QP_CHANNEL_FINAL);
	ck_assert_uint_eq(ptlen, 3);
	ck_assert_mem_eq(pt, "bye", 3);
	free(pt);
	ck_assert_int_eq(qp_channel_open(&s.sv.ch, ct, ctlen, &pt, &ptlen),
	                 QP_ECLOSED);
	free(ct);
	ck_assert_int_eq(
	    qp_channel_seal(&s.cl.ch, (const uint8_t *)"x", 1, &ct, &ctlen),
	    QP_ECLOSED);
	/* The other direction still works (half close), then closes too,
	 * with an empty final message. */
	pass(&s.sv.ch, &s.cl.ch, (const uint8_t *)"last acks", 9);
	ck_assert_int_eq(qp_channel_seal_final(&s.sv.ch, NULL, 0, &ct, &ctlen),
	                 0);
	ck_assert_int_eq(qp_channel_open(&s.cl.ch, ct, ctlen, &pt, &ptlen),
	                 QP_CHANNEL_FINAL);
	ck_assert_uint_eq(ptlen, 0);
	ck_assert_ptr_nonnull(pt);
	free(pt);
	free(ct);
	session_free(&s);
}
END_TEST

START_TEST(test_channel_copy_and_clear)
{
	session s;
	qp_channel a, b;

	session_run(&s, 4);
	/* The channel is plain data: the daemon may move it out of the
	 * handshake and clear the handshake. */
	a = s.cl.ch;
	b = s.sv.ch;
	qp_hs_clear(&s.cl);
	qp_hs_clear(&s.sv);
	ck_assert(all_zero(&s.cl, sizeof(s.cl)));
	ck_assert(all_zero(&s.sv, sizeof(s.sv)));
	pass(&a, &b, (const uint8_t *)"moved", 5);
	pass(&b, &a, (const uint8_t *)"ok", 2);
	qp_channel_clear(&a);
	qp_channel_clear(&b);
	ck_assert(all_zero(&a, sizeof(a)));
	qp_channel_clear(NULL);
	qp_hs_clear(NULL);
	session_free(&s);
}
END_TEST

START_TEST(test_wrong_pinned_key)
{
	session s;
	qp_hs cl;
	uint8_t *hello, *welcome, *auth = NULL;
	size_t hello_len, welcome_len, auth_len;

	session_run(&s, 1);
	/* A client whose token pinned another hub. */
	ck_assert_int_eq(
	    qp_hs_client_init(&cl, dev_pk, dev_sk, other_pk, cert, certlen), 0);
	ck_assert_int_eq(qp_hs_client_hello(&cl, &hello, &hello_len), 0);
	ck_assert_int_eq(qp_hs_server_on_hello(&s.sv, hello, hello_len,
	                                       &welcome, &welcome_len),
	                 0);
	ck_assert_int_eq(qp_hs_client_on_welcome(&cl, welcome, welcome_len,
	                                         &auth, &auth_len),
	                 QP_EAUTH);
	ck_assert_str_eq(cl.why, "hub key does not match the key pinned in "
	                         "the join token");
	ck_assert_int_eq(cl.state, QP_HS_FAILED);
	ck_assert_ptr_null(auth);
	assert_wiped(&cl);
	/* Failed is final. */
	ck_assert_int_eq(qp_hs_client_on_welcome(&cl, welcome, welcome_len,
	                                         &auth, &auth_len),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_hs_client_hello(&cl, &auth, &auth_len), QP_EINVAL);
	free(hello);
	free(welcome);
	qp_hs_clear(&cl);
	session_free(&s);
}
END_TEST

/* The server refuses a client; the client learns why through REFUSE. */
static void refused(const uint8_t *c, size_t clen, const uint8_t *revoked,
                    int want, const char *server_why)
{
	qp_hs cl, sv;
	peer_ctx ctx;
	uint8_t *hello, *welcome = NULL, *refuse, *auth = NULL;
	size_t hello_len, welcome_len, refuse_len, auth_len;
	char client_why[QP_HS_WHY_MAX];

	ctx_init(&ctx);
	ctx.revoked = revoked;
	ck_assert_int_eq(
	    qp_hs_client_init(&cl, dev_pk, dev_sk, hub_pk, c, clen), 0);
	ck_assert_int_eq(
	    qp_hs_server_init(&sv, hub_pk, hub_sk, check_peer, &ctx), 0);
	ck_assert_int_eq(qp_hs_client_hello(&cl, &hello, &hello_len), 0);
	ck_assert_int_eq(qp_hs_server_on_hello(&sv, hello, hello_len, &welcome,
	                                       &welcome_len),
	                 want);
	ck_assert_ptr_null(welcome);
	ck_assert_str_eq(sv.why, server_why);
	ck_assert_int_eq(sv.state, QP_HS_FAILED);
	assert_wiped(&sv);
	/* The daemon answers with the reason before closing. */
	ck_assert_int_eq(qp_hs_refusal(want, sv.why, &refuse, &refuse_len), 0);
	ck_assert_int_eq(
	    qp_hs_client_on_welcome(&cl, refuse, refuse_len, &auth, &auth_len),
	    want);
	snprintf(client_why, sizeof(client_why), "hub refused: %s", server_why);
	ck_assert_str_eq(cl.why, client_why);
	ck_assert_ptr_null(auth);
	assert_wiped(&cl);
	free(hello);
	free(refuse);
	qp_hs_clear(&cl);
	qp_hs_clear(&sv);
}

START_TEST(test_refused_peers)
{
	refused(other_cert, other_len, NULL, QP_EAUTH,
	        "certificate was issued by another hub");
	refused(expired_cert, expired_len, NULL, QP_EEXPIRED,
	        "certificate expired");
	refused(cert, certlen, dev_pk, QP_EREVOKED, "key revoked by the hub");
}
END_TEST

/* A valid certificate shown with another device's key. */
START_TEST(test_stolen_cert)
{
	qp_hs cl, sv;
	peer_ctx ctx;
	uint8_t *hello, *welcome = NULL;
	size_t hello_len, welcome_len;

	ctx_init(&ctx);
	ck_assert_int_eq(
	    qp_hs_client_init(&cl, dev2_pk, dev2_sk, hub_pk, cert, certlen), 0);
	ck_assert_int_eq(
	    qp_hs_server_init(&sv, hub_pk, hub_sk, check_peer, &ctx), 0);
	ck_assert_int_eq(qp_hs_client_hello(&cl, &hello, &hello_len), 0);
	ck_assert_int_eq(qp_hs_server_on_hello(&sv, hello, hello_len, &welcome,
	                                       &welcome_len),
	                 QP_EAUTH);
	ck_assert_int_eq(ctx.calls, 1);
	ck_assert_str_eq(sv.why,
	                 "certificate was issued to another device key");
	ck_assert_ptr_null(welcome);
	free(hello);
	qp_hs_clear(&cl);
	qp_hs_clear(&sv);
}
END_TEST

START_TEST(test_check_peer_codes)
{
	session s;
	uint8_t *welcome = NULL;
	size_t welcome_len;

	/* A positive return is a refusal too; an empty reason gets the
	 * code's message. */
	session_run(&s, 1);
	s.ctx.force = 1;
	ck_assert_int_eq(qp_hs_server_on_hello(&s.sv, s.hello, s.hello_len,
	                                       &welcome, &welcome_len),
	                 QP_EAUTH);
	ck_assert_str_eq(s.sv.why, "peer authentication failed");
	session_free(&s);

	session_run(&s, 1);
	s.ctx.force = QP_EREVOKED;
	ck_assert_int_eq(qp_hs_server_on_hello(&s.sv, s.hello, s.hello_len,
	                                       &welcome, &welcome_len),
	                 QP_EREVOKED);
	ck_assert_str_eq(s.sv.why, "key revoked");
	ck_assert_ptr_null(welcome);
	session_free(&s);
}
END_TEST

START_TEST(test_mitm)
{
	session s;
	uint8_t kx_pk[QP_HS_KX_LEN], kx_sk[QP_HS_KX_LEN];
	uint8_t *welcome, *auth = NULL;
	size_t welcome_len, auth_len;
	qp_hs fake;
	peer_ctx ctx;

	crypto_kx_keypair(kx_pk, kx_sk);

	/* Swaps the client's ephemeral key in HELLO: the server signs a
	 * transcript the client never saw. */
	session_run(&s, 1);
	memcpy(s.hello + 2, kx_pk, QP_HS_KX_LEN);
	ck_assert_int_eq(qp_hs_server_on_hello(&s.sv, s.hello, s.hello_len,
	                                       &welcome, &welcome_len),
	                 0);
	ck_assert_int_eq(qp_hs_client_on_welcome(&s.cl, welcome, welcome_len,
	                                         &auth, &auth_len),
	                 QP_ESIG);
	ck_assert_str_eq(s.cl.why, "hub's handshake signature does not verify");
	ck_assert_ptr_null(auth);
	free(welcome);
	session_free(&s);

	/* Swaps the server's ephemeral key, or its stream header, in
	 * WELCOME. */
	session_run(&s, 2);
	memcpy(s.welcome + 2, kx_pk, QP_HS_KX_LEN);
	ck_assert_int_eq(qp_hs_client_on_welcome(
	                     &s.cl, s.welcome, s.welcome_len, &auth, &auth_len),
	                 QP_ESIG);
	session_free(&s);
	session_run(&s, 2);
	s.welcome[70] ^= 1;
	ck_assert_int_eq(qp_hs_client_on_welcome(
	                     &s.cl, s.welcome, s.welcome_len, &auth, &auth_len),
	                 QP_ESIG);
	session_free(&s);

	/* Terminates the connection itself with its own static key: the
	 * pinned key catches it, even with a valid signature. */
	session_run(&s, 1);
	ctx_init(&ctx);
	ck_assert_int_eq(
	    qp_hs_server_init(&fake, other_pk, other_sk, check_peer, &ctx), 0);
	ctx.hub_pk = hub_pk;
	ck_assert_int_eq(qp_hs_server_on_hello(&fake, s.hello, s.hello_len,
	                                       &welcome, &welcome_len),
	                 0);
	ck_assert_int_eq(qp_hs_client_on_welcome(&s.cl, welcome, welcome_len,
	                                         &auth, &auth_len),
	                 QP_EAUTH);
	free(welcome);
	qp_hs_clear(&fake);
	session_free(&s);

	/* Claims the pinned key but signs with its own. */
	session_run(&s, 2);
	crypto_sign_detached(s.welcome + 90, NULL, s.welcome, 90, other_sk);
	ck_assert_int_eq(qp_hs_client_on_welcome(
	                     &s.cl, s.welcome, s.welcome_len, &auth, &auth_len),
	                 QP_ESIG);
	session_free(&s);

	/* Swaps the client's stream header in AUTH. */
	session_run(&s, 3);
	s.auth[5] ^= 0x20;
	ck_assert_int_eq(qp_hs_server_on_auth(&s.sv, s.auth, s.auth_len),
	                 QP_ESIG);
	ck_assert_str_eq(s.sv.why,
	                 "client's handshake signature does not verify");
	ck_assert(!qp_hs_established(&s.sv));
	assert_wiped(&s.sv);
	session_free(&s);
}
END_TEST

START_TEST(test_replay)
{
	session s1, s2;
	uint8_t *auth = NULL;
	size_t auth_len;

	session_run(&s1, 4);
	/* An AUTH recorded from session 1 does not open session 2: T2
	 * covers the new server ephemeral key. */
	session_run(&s2, 2);
	ck_assert_int_eq(qp_hs_server_on_auth(&s2.sv, s1.auth, s1.auth_len),
	                 QP_ESIG);
	session_free(&s2);
	/* Nor does a recorded WELCOME fool a new client. */
	session_run(&s2, 1);
	ck_assert_int_eq(qp_hs_client_on_welcome(&s2.cl, s1.welcome,
	                                         s1.welcome_len, &auth,
	                                         &auth_len),
	                 QP_ESIG);
	session_free(&s2);
	/* A whole recorded HELLO gets a WELCOME (HELLO is not signed) but
	 * the recorded AUTH still fails against it. */
	session_run(&s2, 1);
	free(s2.hello);
	s2.hello = qp_xmalloc(s1.hello_len);
	memcpy(s2.hello, s1.hello, s1.hello_len);
	s2.hello_len = s1.hello_len;
	ck_assert_int_eq(qp_hs_server_on_hello(&s2.sv, s2.hello, s2.hello_len,
	                                       &s2.welcome, &s2.welcome_len),
	                 0);
	ck_assert_int_eq(qp_hs_server_on_auth(&s2.sv, s1.auth, s1.auth_len),
	                 QP_ESIG);
	session_free(&s2);
	session_free(&s1);
}
END_TEST

START_TEST(test_channel_tamper)
{
	session s;
	uint8_t *ct, *pt;
	size_t ctlen, ptlen;
	qp_channel saved;

	session_run(&s, 4);
	ck_assert_int_eq(qp_channel_seal(&s.cl.ch, (const uint8_t *)"deltas", 6,
	                                 &ct, &ctlen),
	                 0);
	saved = s.sv.ch;
	for (size_t i = 0; i < ctlen; i++) {
		for (uint8_t m = 1; m != 0; m <<= 1) {
			s.sv.ch = saved;
			ct[i] ^= m;
			ck_assert_int_eq(
			    qp_channel_open(&s.sv.ch, ct, ctlen, &pt, &ptlen),
			    QP_ECRYPTO);
			ct[i] ^= m;
			/* Dead afterwards, even for the genuine message. */
			ck_assert_int_eq(
			    qp_channel_open(&s.sv.ch, ct, ctlen, &pt, &ptlen),
			    QP_ECRYPTO);
			ck_assert_int_eq(
			    qp_channel_seal(&s.sv.ch, ct, 1, &pt, &ptlen),
			    QP_ECRYPTO);
		}
	}
	/* Truncated at every length, or extended. */
	for (size_t l = 0; l < ctlen; l++) {
		s.sv.ch = saved;
		ck_assert_int_eq(
		    qp_channel_open(&s.sv.ch, l ? ct : NULL, l, &pt, &ptlen),
		    QP_ECRYPTO);
	}
	s.sv.ch = saved;
	ct = qp_xrealloc(ct, ctlen + 1);
	ct[ctlen] = 0;
	ck_assert_int_eq(qp_channel_open(&s.sv.ch, ct, ctlen + 1, &pt, &ptlen),
	                 QP_ECRYPTO);
	/* The genuine message on the saved state opens. */
	s.sv.ch = saved;
	ck_assert_int_eq(qp_channel_open(&s.sv.ch, ct, ctlen, &pt, &ptlen), 0);
	ck_assert_mem_eq(pt, "deltas", 6);
	free(pt);
	free(ct);
	session_free(&s);
}
END_TEST

START_TEST(test_channel_order)
{
	session s;
	uint8_t *c1, *c2, *c3, *pt;
	size_t l1, l2, l3, ptlen;
	qp_channel saved;

	session_run(&s, 4);
	ck_assert_int_eq(
	    qp_channel_seal(&s.cl.ch, (const uint8_t *)"one", 3, &c1, &l1), 0);
	ck_assert_int_eq(
	    qp_channel_seal(&s.cl.ch, (const uint8_t *)"two", 3, &c2, &l2), 0);
	saved = s.sv.ch;
	/* Reordered (or the first one dropped). */
	ck_assert_int_eq(qp_channel_open(&s.sv.ch, c2, l2, &pt, &ptlen),
	                 QP_ECRYPTO);
	/* Replayed. */
	s.sv.ch = saved;
	ck_assert_int_eq(qp_channel_open(&s.sv.ch, c1, l1, &pt, &ptlen), 0);
	free(pt);
	ck_assert_int_eq(qp_channel_open(&s.sv.ch, c1, l1, &pt, &ptlen),
	                 QP_ECRYPTO);
	/* Reflected: the client's own message back to the client. */
	ck_assert_int_eq(qp_channel_open(&s.cl.ch, c1, l1, &pt, &ptlen),
	                 QP_ECRYPTO);
	/* In order is fine. */
	s.sv.ch = saved;
	ck_assert_int_eq(qp_channel_open(&s.sv.ch, c1, l1, &pt, &ptlen), 0);
	free(pt);
	ck_assert_int_eq(qp_channel_open(&s.sv.ch, c2, l2, &pt, &ptlen), 0);
	ck_assert_mem_eq(pt, "two", 3);
	free(pt);
	/* A message from another session does not open in this one. */
	session_free(&s);
	session_run(&s, 4);
	ck_assert_int_eq(
	    qp_channel_seal(&s.cl.ch, (const uint8_t *)"one", 3, &c3, &l3), 0);
	ck_assert_int_eq(qp_channel_open(&s.sv.ch, c1, l1, &pt, &ptlen),
	                 QP_ECRYPTO);
	free(c1);
	free(c2);
	free(c3);
	session_free(&s);
}
END_TEST

START_TEST(test_channel_misuse)
{
	session s;
	qp_channel zero;
	uint8_t buf[32] = {0}, *out = NULL;
	size_t outlen;
	uint8_t tagged[64];
	unsigned long long tlen;
	crypto_secretstream_xchacha20poly1305_state st;

	memset(&zero, 0, sizeof(zero));
	ck_assert_int_eq(qp_channel_seal(&zero, buf, 1, &out, &outlen),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_channel_open(&zero, buf, 20, &out, &outlen),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_channel_seal(NULL, buf, 1, &out, &outlen),
	                 QP_EINVAL);

	session_run(&s, 4);
	ck_assert_int_eq(qp_channel_seal(&s.cl.ch, NULL, 1, &out, &outlen),
	                 QP_EINVAL);
	/* Size limits are checked before the buffer is touched. */
	ck_assert_int_eq(qp_channel_seal(&s.cl.ch, buf,
	                                 (size_t)QP_CHANNEL_MAX + 1, &out,
	                                 &outlen),
	                 QP_ETOOBIG);
	ck_assert_int_eq(
	    qp_channel_open(&s.sv.ch, buf,
	                    (size_t)QP_CHANNEL_MAX + QP_CHANNEL_ABYTES + 1,
	                    &out, &outlen),
	    QP_ETOOBIG);
	/* A lost message kills the channel. */
	ck_assert_int_eq(qp_channel_open(&s.sv.ch, buf, 20, &out, &outlen),
	                 QP_ECRYPTO);
	session_free(&s);
	session_run(&s, 4);
	ck_assert_int_eq(qp_channel_open(&s.sv.ch, buf, 20, &out, &outlen),
	                 QP_ECRYPTO);
	ck_assert_ptr_null(out);
	session_free(&s);

	/* An authentic message with a tag quipu never uses (REKEY): the
	 * test seals it with a copy of the client's stream state. */
	session_run(&s, 4);
	st = s.cl.ch.tx;
	crypto_secretstream_xchacha20poly1305_push(
	    &st, tagged, &tlen, buf, 4, NULL, 0,
	    crypto_secretstream_xchacha20poly1305_TAG_REKEY);
	ck_assert_int_eq(
	    qp_channel_open(&s.sv.ch, tagged, (size_t)tlen, &out, &outlen),
	    QP_EPROTO);
	ck_assert_int_eq(
	    qp_channel_open(&s.sv.ch, tagged, (size_t)tlen, &out, &outlen),
	    QP_ECRYPTO);
	session_free(&s);
}
END_TEST

START_TEST(test_init_and_states)
{
	qp_hs hs;
	peer_ctx ctx;
	uint8_t *out = NULL;
	size_t outlen;

	ctx_init(&ctx);
	/* Key halves that do not belong together. */
	ck_assert_int_eq(
	    qp_hs_client_init(&hs, dev_pk, dev2_sk, hub_pk, cert, certlen),
	    QP_EINVAL);
	qp_hs_clear(&hs);
	ck_assert_int_eq(
	    qp_hs_server_init(&hs, hub_pk, dev_sk, check_peer, &ctx),
	    QP_EINVAL);
	ck_assert_int_eq(qp_hs_server_init(&hs, hub_pk, hub_sk, NULL, &ctx),
	                 QP_EINVAL);
	ck_assert_int_eq(
	    qp_hs_client_init(&hs, dev_pk, dev_sk, hub_pk, cert, 0), QP_EINVAL);
	ck_assert_int_eq(qp_hs_client_init(&hs, dev_pk, dev_sk, hub_pk, cert,
	                                   QP_CERT_MAX + 1),
	                 QP_EINVAL);
	ck_assert_int_eq(
	    qp_hs_client_init(NULL, dev_pk, dev_sk, hub_pk, cert, certlen),
	    QP_EINVAL);

	/* Calls out of order. */
	ck_assert_int_eq(
	    qp_hs_client_init(&hs, dev_pk, dev_sk, hub_pk, cert, certlen), 0);
	ck_assert_int_eq(qp_hs_client_on_welcome(&hs, cert, 10, &out, &outlen),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_hs_server_on_hello(&hs, cert, 10, &out, &outlen),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_hs_server_on_auth(&hs, cert, 10), QP_EINVAL);
	ck_assert_int_eq(qp_hs_client_hello(&hs, &out, &outlen), 0);
	free(out);
	ck_assert_int_eq(qp_hs_client_hello(&hs, &out, &outlen), QP_EINVAL);
	ck_assert_int_eq(hs.state, QP_HS_CLIENT_WAIT_WELCOME);
	qp_hs_clear(&hs);
	ck_assert(all_zero(&hs, sizeof(hs)));

	ck_assert_int_eq(
	    qp_hs_server_init(&hs, hub_pk, hub_sk, check_peer, &ctx), 0);
	ck_assert_int_eq(qp_hs_server_on_auth(&hs, cert, 10), QP_EINVAL);
	ck_assert_int_eq(qp_hs_client_hello(&hs, &out, &outlen), QP_EINVAL);
	ck_assert_int_eq(hs.state, QP_HS_SERVER_WAIT_HELLO);
	qp_hs_clear(&hs);
	ck_assert(!qp_hs_established(NULL));
}
END_TEST

START_TEST(test_version_and_type)
{
	session s;
	uint8_t *welcome = NULL, *refuse, *auth = NULL, *big;
	size_t welcome_len, refuse_len, auth_len;

	/* A client from the future. */
	session_run(&s, 1);
	s.hello[0] = 2;
	ck_assert_int_eq(qp_hs_server_on_hello(&s.sv, s.hello, s.hello_len,
	                                       &welcome, &welcome_len),
	                 QP_EVERSION);
	ck_assert_str_eq(s.sv.why,
	                 "client speaks sync version 2, this node speaks 1");
	ck_assert_int_eq(s.ctx.calls, 0);
	ck_assert_int_eq(
	    qp_hs_refusal(QP_EVERSION, s.sv.why, &refuse, &refuse_len), 0);
	/* REFUSE is read whatever version the refusing hub speaks. */
	refuse[0] = 9;
	ck_assert_int_eq(qp_hs_client_on_welcome(&s.cl, refuse, refuse_len,
	                                         &auth, &auth_len),
	                 QP_EVERSION);
	ck_assert_str_eq(s.cl.why, "hub refused: client speaks sync version "
	                           "2, this node speaks 1");
	free(refuse);
	session_free(&s);

	/* A hub from the future. */
	session_run(&s, 2);
	s.welcome[0] = 3;
	ck_assert_int_eq(qp_hs_client_on_welcome(
	                     &s.cl, s.welcome, s.welcome_len, &auth, &auth_len),
	                 QP_EVERSION);
	ck_assert_str_eq(s.cl.why,
	                 "hub speaks sync version 3, this node speaks 1");
	session_free(&s);

	/* Messages of the wrong type. */
	session_run(&s, 3);
	ck_assert_int_eq(qp_hs_server_on_hello(&s.sv, s.auth, s.auth_len,
	                                       &welcome, &welcome_len),
	                 QP_EINVAL); /* server already past HELLO */
	ck_assert_int_eq(qp_hs_server_on_auth(&s.sv, s.hello, s.hello_len),
	                 QP_EPROTO);
	ck_assert_str_eq(s.sv.why, "expected AUTH, got message type 1");
	session_free(&s);
	session_run(&s, 2);
	ck_assert_int_eq(qp_hs_client_on_welcome(&s.cl, s.hello, s.hello_len,
	                                         &auth, &auth_len),
	                 QP_EPROTO);
	ck_assert_str_eq(s.cl.why, "expected WELCOME, got message type 1");
	session_free(&s);

	/* A HELLO above the limit is refused on its length. */
	session_run(&s, 1);
	big = qp_xcalloc(QP_HS_HELLO_MAX + 1, 1);
	memcpy(big, s.hello, s.hello_len);
	ck_assert_int_eq(qp_hs_server_on_hello(&s.sv, big, QP_HS_HELLO_MAX + 1,
	                                       &welcome, &welcome_len),
	                 QP_ETOOBIG);
	free(big);
	session_free(&s);

	/* A HELLO whose certificate does not parse: the daemon's check
	 * refuses it; a careless check that accepts anything is still
	 * caught. */
	session_run(&s, 1);
	s.hello[QP_HS_HELLO_FIXED] = 'X';
	ck_assert_int_eq(qp_hs_server_on_hello(&s.sv, s.hello, s.hello_len,
	                                       &welcome, &welcome_len),
	                 QP_EPROTO);
	ck_assert_str_eq(s.sv.why, "malformed input");
	session_free(&s);
	session_run(&s, 1);
	s.sv.check_peer = accept_all;
	s.hello[QP_HS_HELLO_FIXED] = 'X';
	ck_assert_int_eq(qp_hs_server_on_hello(&s.sv, s.hello, s.hello_len,
	                                       &welcome, &welcome_len),
	                 QP_EPROTO);
	ck_assert_str_eq(s.sv.why, "client certificate is malformed");
	ck_assert_ptr_null(welcome);
	session_free(&s);
}
END_TEST

START_TEST(test_refusal_messages)
{
	session s;
	uint8_t *refuse, *auth = NULL;
	size_t refuse_len, auth_len;
	char longwhy[1000];

	ck_assert_int_eq(qp_hs_refusal(0, "x", &refuse, &refuse_len),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_hs_refusal(QP_EAUTH, "x", NULL, &refuse_len),
	                 QP_EINVAL);

	/* Layout. */
	ck_assert_int_eq(qp_hs_refusal(QP_EEXPIRED, "certificate expired",
	                               &refuse, &refuse_len),
	                 0);
	ck_assert_uint_eq(refuse_len, 8 + 19);
	ck_assert_uint_eq(refuse[0], QP_SYNC_VERSION);
	ck_assert_uint_eq(refuse[1], QP_HS_REFUSE);
	ck_assert_int_eq((int32_t)qp_get_be32(refuse + 2), QP_EEXPIRED);
	ck_assert_mem_eq(refuse + 8, "certificate expired", 19);
	/* Malformed: length field disagrees with the message. */
	session_run(&s, 1);
	refuse[7]++;
	ck_assert_int_eq(qp_hs_client_on_welcome(&s.cl, refuse, refuse_len,
	                                         &auth, &auth_len),
	                 QP_EPROTO);
	ck_assert_str_eq(s.cl.why, "hub sent a malformed refusal");
	session_free(&s);
	session_run(&s, 1);
	ck_assert_int_eq(
	    qp_hs_client_on_welcome(&s.cl, refuse, 7, &auth, &auth_len),
	    QP_EPROTO);
	session_free(&s);
	free(refuse);

	/* Codes outside the handshake's set become QP_EAUTH; an empty
	 * reason is the code's message; control characters are defused. */
	ck_assert_int_eq(qp_hs_refusal(QP_ENOMEM, "", &refuse, &refuse_len), 0);
	session_run(&s, 1);
	ck_assert_int_eq(qp_hs_client_on_welcome(&s.cl, refuse, refuse_len,
	                                         &auth, &auth_len),
	                 QP_EAUTH);
	ck_assert_str_eq(s.cl.why, "hub refused: peer authentication failed");
	session_free(&s);
	free(refuse);
	ck_assert_int_eq(qp_hs_refusal(-12, NULL, &refuse, &refuse_len), 0);
	ck_assert_uint_eq(refuse_len, 8);
	free(refuse);

	ck_assert_int_eq(
	    qp_hs_refusal(QP_EREVOKED, "bad\n\x1b[2Jkey", &refuse, &refuse_len),
	    0);
	session_run(&s, 1);
	ck_assert_int_eq(qp_hs_client_on_welcome(&s.cl, refuse, refuse_len,
	                                         &auth, &auth_len),
	                 QP_EREVOKED);
	ck_assert_str_eq(s.cl.why, "hub refused: bad??[2Jkey");
	session_free(&s);
	/* Raw control bytes and invalid UTF-8 from a hostile hub. */
	refuse[8] = 0x07;
	refuse[9] = 0xff;
	session_run(&s, 1);
	ck_assert_int_eq(qp_hs_client_on_welcome(&s.cl, refuse, refuse_len,
	                                         &auth, &auth_len),
	                 QP_EREVOKED);
	ck_assert_str_eq(s.cl.why, "hub refused: ??d??[2Jkey");
	session_free(&s);
	free(refuse);

	/* A long reason is cut at a character boundary. */
	for (size_t i = 0; i + 2 < sizeof(longwhy); i += 2)
		memcpy(longwhy + i, "\xc3\xb1", 2); /* ñ */
	longwhy[sizeof(longwhy) - 2] = '\0';
	ck_assert_int_eq(qp_hs_refusal(QP_EAUTH, longwhy, &refuse, &refuse_len),
	                 0);
	ck_assert_uint_eq(refuse_len, 8 + 254);
	session_run(&s, 1);
	ck_assert_int_eq(qp_hs_client_on_welcome(&s.cl, refuse, refuse_len,
	                                         &auth, &auth_len),
	                 QP_EAUTH);
	ck_assert(strlen(s.cl.why) < QP_HS_WHY_MAX);
	ck_assert_mem_eq(s.cl.why, "hub refused: \xc3\xb1", 15);
	ck_assert_int_eq(strlen(s.cl.why) % 2, 1); /* 13 + whole ñs */
	session_free(&s);

	/* The client may refuse the server too. */
	session_run(&s, 2);
	ck_assert_int_eq(qp_hs_server_on_auth(&s.sv, refuse, refuse_len),
	                 QP_EAUTH);
	ck_assert_mem_eq(s.sv.why, "client refused: \xc3\xb1", 18);
	free(refuse);
	session_free(&s);
}
END_TEST

/* Every truncation and every single-byte change of each handshake message
 * fails cleanly and never establishes. */
START_TEST(test_handshake_garbage)
{
	static const uint8_t masks[] = {0x01, 0x80};
	session s, ref;
	uint8_t *out = NULL;
	size_t outlen;

	session_run(&ref, 4);

	/* HELLO truncated at every length. */
	for (size_t l = 0; l < ref.hello_len; l++) {
		uint8_t *t = qp_xmalloc(l + 1);
		memcpy(t, ref.hello, l);
		session_run(&s, 1);
		ck_assert_int_lt(qp_hs_server_on_hello(&s.sv, l ? t : NULL, l,
		                                       &out, &outlen),
		                 0);
		ck_assert_int_eq(s.sv.state, QP_HS_FAILED);
		ck_assert_ptr_null(out);
		ck_assert_str_ne(s.sv.why, "");
		session_free(&s);
		free(t);
	}
	/* HELLO with any byte changed: the server may answer (HELLO is not
	 * signed), but the handshake can then never complete. */
	for (size_t i = 0; i < ref.hello_len; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			uint8_t *w = NULL;
			size_t wl;
			session_run(&s, 1);
			s.hello[i] ^= masks[m];
			if (qp_hs_server_on_hello(&s.sv, s.hello, s.hello_len,
			                          &w, &wl) == 0) {
				ck_assert_int_lt(
				    qp_hs_client_on_welcome(&s.cl, w, wl, &out,
				                            &outlen),
				    0);
				free(w);
			}
			ck_assert_ptr_null(out);
			session_free(&s);
		}
	}
	/* WELCOME truncated, extended, or changed anywhere. */
	for (size_t l = 0; l <= ref.welcome_len + 1; l++) {
		uint8_t *t;
		if (l == ref.welcome_len)
			continue;
		t = qp_xcalloc(l + 1, 1);
		session_run(&s, 2);
		memcpy(t, s.welcome, l < s.welcome_len ? l : s.welcome_len);
		ck_assert_int_lt(qp_hs_client_on_welcome(&s.cl, l ? t : NULL, l,
		                                         &out, &outlen),
		                 0);
		ck_assert_int_eq(s.cl.state, QP_HS_FAILED);
		assert_wiped(&s.cl);
		session_free(&s);
		free(t);
	}
	for (size_t i = 0; i < ref.welcome_len; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			session_run(&s, 2);
			s.welcome[i] ^= masks[m];
			ck_assert_int_lt(
			    qp_hs_client_on_welcome(
			        &s.cl, s.welcome, s.welcome_len, &out, &outlen),
			    0);
			ck_assert_ptr_null(out);
			session_free(&s);
		}
	}
	/* AUTH truncated, extended, or changed anywhere. */
	for (size_t l = 0; l <= ref.auth_len + 1; l++) {
		uint8_t *t;
		if (l == ref.auth_len)
			continue;
		t = qp_xcalloc(l + 1, 1);
		session_run(&s, 3);
		memcpy(t, s.auth, l < s.auth_len ? l : s.auth_len);
		ck_assert_int_lt(qp_hs_server_on_auth(&s.sv, l ? t : NULL, l),
		                 0);
		ck_assert_int_eq(s.sv.state, QP_HS_FAILED);
		assert_wiped(&s.sv);
		session_free(&s);
		free(t);
	}
	for (size_t i = 0; i < ref.auth_len; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			session_run(&s, 3);
			s.auth[i] ^= masks[m];
			ck_assert_int_lt(
			    qp_hs_server_on_auth(&s.sv, s.auth, s.auth_len), 0);
			ck_assert(!qp_hs_established(&s.sv));
			session_free(&s);
		}
	}
	session_free(&ref);
}
END_TEST

/* Random bytes of every length up to 400, each as HELLO, WELCOME and
 * AUTH (with the version and type bytes fixed half of the time, so the
 * inner checks are reached). */
START_TEST(test_handshake_random)
{
	uint8_t seed[randombytes_SEEDBYTES] = {1};
	uint8_t buf[400], *out = NULL;
	size_t outlen;
	session s;

	for (size_t l = 0; l < sizeof(buf); l++) {
		seed[1] = (uint8_t)l;
		seed[2] = (uint8_t)(l >> 8);
		randombytes_buf_deterministic(buf, l, seed);
		for (int fix = 0; fix < 2; fix++) {
			if (fix && l >= 2)
				buf[0] = QP_SYNC_VERSION;
			if (fix && l >= 2)
				buf[1] = QP_HS_HELLO;
			if (fix && l >= 68) {
				buf[66] = (uint8_t)((l - 68) >> 8);
				buf[67] = (uint8_t)(l - 68);
			}
			session_run(&s, 1);
			ck_assert_int_lt(
			    qp_hs_server_on_hello(&s.sv, buf, l, &out, &outlen),
			    0);
			session_free(&s);
			if (fix && l >= 2)
				buf[1] = QP_HS_WELCOME;
			session_run(&s, 2);
			ck_assert_int_lt(qp_hs_client_on_welcome(&s.cl, buf, l,
			                                         &out, &outlen),
			                 0);
			session_free(&s);
			if (fix && l >= 2)
				buf[1] = QP_HS_AUTH;
			session_run(&s, 3);
			ck_assert_int_lt(qp_hs_server_on_auth(&s.sv, buf, l),
			                 0);
			session_free(&s);
		}
	}
	ck_assert_ptr_null(out);
}
END_TEST

Suite *suite_handshake(void)
{
	Suite *s = suite_create("handshake");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_happy_path);
	tcase_add_test(tc, test_channel_copy_and_clear);
	tcase_add_test(tc, test_wrong_pinned_key);
	tcase_add_test(tc, test_refused_peers);
	tcase_add_test(tc, test_stolen_cert);
	tcase_add_test(tc, test_check_peer_codes);
	tcase_add_test(tc, test_mitm);
	tcase_add_test(tc, test_replay);
	tcase_add_test(tc, test_channel_tamper);
	tcase_add_test(tc, test_channel_order);
	tcase_add_test(tc, test_channel_misuse);
	tcase_add_test(tc, test_init_and_states);
	tcase_add_test(tc, test_version_and_type);
	tcase_add_test(tc, test_refusal_messages);
	tcase_add_test(tc, test_handshake_garbage);
	tcase_add_test(tc, test_handshake_random);
	suite_add_tcase(s, tc);
	return s;
}
