/*
 * handshake.c - sync handshake and secretstream channel; see handshake.h.
 *
 * Every failure goes through fail(), which records the reason, wipes the
 * secrets and leaves the handshake in QP_HS_FAILED, so a caller that keeps
 * going after an error cannot use half-derived keys.  Secrets are wiped as
 * soon as they stop being needed: the ephemeral secret once the session
 * keys exist, the session keys once the secretstream states hold them, and
 * the static secret key once the last signature is made.
 */
#include "handshake.h"
#include "err.h"
#include "util.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HS_LABEL "quipu-hs-v1"

/* The sizes handshake.h spells out must be libsodium's. */
_Static_assert(QP_CHANNEL_ABYTES ==
                   crypto_secretstream_xchacha20poly1305_ABYTES,
               "secretstream overhead");
_Static_assert(QP_HS_HEADER_LEN ==
                   crypto_secretstream_xchacha20poly1305_HEADERBYTES,
               "secretstream header");
_Static_assert(QP_HS_KX_LEN == crypto_kx_PUBLICKEYBYTES &&
                   QP_HS_KX_LEN == crypto_kx_SECRETKEYBYTES,
               "kx key size");
_Static_assert(QP_HS_WELCOME_LEN == 2 + 2 * 32 + QP_HS_HEADER_LEN + 64 &&
                   QP_HS_AUTH_LEN == 2 + QP_HS_HEADER_LEN + 64,
               "message sizes");

/* Message field offsets (see the tables in handshake.h). */
#define H_EPH     2
#define H_STATIC  34
#define H_CERTLEN 66
#define W_EPH     2
#define W_STATIC  34
#define W_HEADER  66
#define W_SIG     90
#define A_HEADER  2
#define A_SIG     26
#define R_CODE    2
#define R_LEN     6

/* Copy text to dst (cap bytes, NUL-terminated) so that it is safe to show
 * on one line: at most cap-1 bytes, cut at a UTF-8 character boundary,
 * control characters replaced by '?', and every non-ASCII byte replaced
 * when the whole is not valid UTF-8. */
static void clean_text(char *dst, size_t cap, const uint8_t *src, size_t n)
{
	json_t *j;

	if (cap == 0)
		return;
	if (n > cap - 1) {
		n = cap - 1;
		/* src[n] is the first byte left out; when it continues a
		 * character, leave out that character's start too. */
		while (n > 0 && (src[n] & 0xc0) == 0x80)
			n--;
	}
	for (size_t i = 0; i < n; i++)
		dst[i] = (src[i] < 0x20 || src[i] == 0x7f) ? '?' : (char)src[i];
	dst[n] = '\0';
	j = json_stringn(dst, n);
	if (j != NULL) {
		json_decref(j);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)dst[i] >= 0x80)
			dst[i] = '?';
}

/* Wipe every secret and owned buffer, keeping state, why and peer_pk. */
static void wipe(qp_hs *hs)
{
	sodium_memzero(hs->my_sk, sizeof(hs->my_sk));
	sodium_memzero(hs->eph_sk, sizeof(hs->eph_sk));
	sodium_memzero(hs->rx_key, sizeof(hs->rx_key));
	sodium_memzero(hs->tx_key, sizeof(hs->tx_key));
	sodium_memzero(hs->t1, sizeof(hs->t1));
	if (hs->msg != NULL) {
		sodium_memzero(hs->msg, hs->msglen);
		free(hs->msg);
	}
	hs->msg = NULL;
	hs->msglen = 0;
}

static int fail(qp_hs *hs, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record why, wipe, and mark the handshake failed.  Returns rc. */
static int fail(qp_hs *hs, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(hs->why, sizeof(hs->why), fmt, ap);
	va_end(ap);
	wipe(hs);
	qp_channel_clear(&hs->ch);
	hs->state = QP_HS_FAILED;
	return rc;
}

/* Codes a peer may hand us in REFUSE; anything else becomes QP_EAUTH, so a
 * hostile peer cannot make us believe we ran out of memory. */
static int refusal_code(int32_t code)
{
	switch (code) {
	case QP_EAUTH:
	case QP_EEXPIRED:
	case QP_EREVOKED:
	case QP_EVERSION:
	case QP_EPROTO:
	case QP_ETOOBIG:
	case QP_ESIG:
	case QP_ECRYPTO: return code;
	default: return QP_EAUTH;
	}
}

static int read_refusal(qp_hs *hs, const uint8_t *msg, size_t len,
                        const char *who)
{
	char text[QP_HS_WHY_MAX];
	size_t m;
	int code;

	if (len < QP_HS_REFUSE_FIXED)
		return fail(hs, QP_EPROTO, "%s sent a malformed refusal", who);
	m = ((size_t)msg[R_LEN] << 8) | msg[R_LEN + 1];
	if (m >= QP_HS_WHY_MAX || len != QP_HS_REFUSE_FIXED + m)
		return fail(hs, QP_EPROTO, "%s sent a malformed refusal", who);
	code = refusal_code((int32_t)qp_get_be32(msg + R_CODE));
	/* Leave room for "<who> refused: " in front of the reason. */
	clean_text(text, sizeof(text) - 32, msg + QP_HS_REFUSE_FIXED, m);
	return fail(hs, code, "%s refused: %s", who,
	            text[0] != '\0' ? text : qp_strerror(code));
}

/* The two bytes every message starts with.  REFUSE is recognised whatever
 * its version (when refusal_ok), so a peer on another version can say so. */
static int check_head(qp_hs *hs, const uint8_t *msg, size_t len, int type,
                      const char *what, const char *who, int refusal_ok)
{
	if (msg == NULL || len < 2)
		return fail(hs, QP_EPROTO, "%s message too short", what);
	if (refusal_ok && msg[1] == QP_HS_REFUSE)
		return read_refusal(hs, msg, len, who);
	if (msg[0] != QP_SYNC_VERSION)
		return fail(hs, QP_EVERSION,
		            "%s speaks sync version %u, this node speaks %u",
		            who, msg[0], QP_SYNC_VERSION);
	if (msg[1] != type)
		return fail(hs, QP_EPROTO, "expected %s, got message type %u",
		            what, msg[1]);
	return 0;
}

static int key_pair_ok(const uint8_t pk[QP_KEY_LEN],
                       const uint8_t sk[QP_SKEY_LEN])
{
	uint8_t derived[QP_KEY_LEN];

	crypto_sign_ed25519_sk_to_pk(derived, sk);
	return memcmp(derived, pk, QP_KEY_LEN) == 0;
}

/* T1 = BLAKE2b-256(label || HELLO || WELCOME[0, 90)). */
static void hash_t1(uint8_t t1[crypto_generichash_BYTES], const uint8_t *hello,
                    size_t hello_len, const uint8_t *welcome)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)HS_LABEL,
	                          strlen(HS_LABEL));
	crypto_generichash_update(&st, hello, hello_len);
	crypto_generichash_update(&st, welcome, W_SIG);
	crypto_generichash_final(&st, t1, crypto_generichash_BYTES);
}

/* T2 = BLAKE2b-256(T1 || AUTH[0, 26)). */
static void hash_t2(uint8_t t2[crypto_generichash_BYTES],
                    const uint8_t t1[crypto_generichash_BYTES],
                    const uint8_t *auth)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES);
	crypto_generichash_update(&st, t1, crypto_generichash_BYTES);
	crypto_generichash_update(&st, auth, A_SIG);
	crypto_generichash_final(&st, t2, crypto_generichash_BYTES);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *b = qp_xmalloc(n);
	memcpy(b, p, n);
	return b;
}

/* Start a client handshake; see handshake.h. */
int qp_hs_client_init(qp_hs *hs, const uint8_t my_pk[QP_KEY_LEN],
                      const uint8_t my_sk[QP_SKEY_LEN],
                      const uint8_t server_pk[QP_KEY_LEN], const uint8_t *cert,
                      size_t certlen)
{
	if (hs == NULL)
		return QP_EINVAL;
	memset(hs, 0, sizeof(*hs));
	if (my_pk == NULL || my_sk == NULL || server_pk == NULL ||
	    cert == NULL || certlen == 0 || certlen > QP_CERT_MAX ||
	    !key_pair_ok(my_pk, my_sk))
		return QP_EINVAL;
	memcpy(hs->my_pk, my_pk, QP_KEY_LEN);
	memcpy(hs->my_sk, my_sk, QP_SKEY_LEN);
	memcpy(hs->peer_pk, server_pk, QP_KEY_LEN);
	hs->msg = dup_bytes(cert, certlen);
	hs->msglen = certlen;
	hs->state = QP_HS_CLIENT_START;
	return 0;
}

/* Make HELLO; see handshake.h.  The HELLO is kept for the transcript. */
int qp_hs_client_hello(qp_hs *hs, uint8_t **out, size_t *outlen)
{
	size_t len;
	uint8_t *b;

	if (hs == NULL || hs->state != QP_HS_CLIENT_START || out == NULL ||
	    outlen == NULL)
		return QP_EINVAL;
	crypto_kx_keypair(hs->eph_pk, hs->eph_sk);
	len = QP_HS_HELLO_FIXED + hs->msglen;
	b = qp_xmalloc(len);
	b[0] = QP_SYNC_VERSION;
	b[1] = QP_HS_HELLO;
	memcpy(b + H_EPH, hs->eph_pk, QP_HS_KX_LEN);
	memcpy(b + H_STATIC, hs->my_pk, QP_KEY_LEN);
	b[H_CERTLEN] = (uint8_t)(hs->msglen >> 8);
	b[H_CERTLEN + 1] = (uint8_t)hs->msglen;
	memcpy(b + QP_HS_HELLO_FIXED, hs->msg, hs->msglen);
	free(hs->msg);
	hs->msg = b;
	hs->msglen = len;
	*out = dup_bytes(b, len);
	*outlen = len;
	hs->state = QP_HS_CLIENT_WAIT_WELCOME;
	return 0;
}

/* Read WELCOME (or REFUSE) and answer with AUTH; see handshake.h. */
int qp_hs_client_on_welcome(qp_hs *hs, const uint8_t *msg, size_t len,
                            uint8_t **auth_out, size_t *auth_len)
{
	uint8_t auth[QP_HS_AUTH_LEN], t2[crypto_generichash_BYTES];
	int rc;

	if (hs == NULL || hs->state != QP_HS_CLIENT_WAIT_WELCOME ||
	    auth_out == NULL || auth_len == NULL)
		return QP_EINVAL;
	rc = check_head(hs, msg, len, QP_HS_WELCOME, "WELCOME", "hub", 1);
	if (rc != 0)
		return rc;
	if (len != QP_HS_WELCOME_LEN)
		return fail(hs, QP_EPROTO, "WELCOME has %zu bytes, not %d", len,
		            QP_HS_WELCOME_LEN);
	if (sodium_memcmp(msg + W_STATIC, hs->peer_pk, QP_KEY_LEN) != 0)
		return fail(hs, QP_EAUTH,
		            "hub key does not match the key "
		            "pinned in the join token");
	hash_t1(hs->t1, hs->msg, hs->msglen, msg);
	if (crypto_sign_verify_detached(msg + W_SIG, hs->t1, sizeof(hs->t1),
	                                hs->peer_pk) != 0)
		return fail(hs, QP_ESIG,
		            "hub's handshake signature does not verify");
	if (crypto_kx_client_session_keys(hs->rx_key, hs->tx_key, hs->eph_pk,
	                                  hs->eph_sk, msg + W_EPH) != 0)
		return fail(hs, QP_ECRYPTO, "hub's ephemeral key is unusable");
	if (crypto_secretstream_xchacha20poly1305_init_pull(
	        &hs->ch.rx, msg + W_HEADER, hs->rx_key) != 0)
		return fail(hs, QP_ECRYPTO, "hub's stream header is unusable");

	auth[0] = QP_SYNC_VERSION;
	auth[1] = QP_HS_AUTH;
	crypto_secretstream_xchacha20poly1305_init_push(
	    &hs->ch.tx, auth + A_HEADER, hs->tx_key);
	hash_t2(t2, hs->t1, auth);
	crypto_sign_detached(auth + A_SIG, NULL, t2, sizeof(t2), hs->my_sk);
	wipe(hs);
	hs->ch.ready = 1;
	hs->state = QP_HS_ESTABLISHED;
	hs->why[0] = '\0';
	*auth_out = dup_bytes(auth, sizeof(auth));
	*auth_len = sizeof(auth);
	return 0;
}

/* Start a server handshake; see handshake.h. */
int qp_hs_server_init(qp_hs *hs, const uint8_t my_pk[QP_KEY_LEN],
                      const uint8_t my_sk[QP_SKEY_LEN],
                      qp_hs_check_peer_fn check_peer, void *ctx)
{
	if (hs == NULL)
		return QP_EINVAL;
	memset(hs, 0, sizeof(*hs));
	if (my_pk == NULL || my_sk == NULL || check_peer == NULL ||
	    !key_pair_ok(my_pk, my_sk))
		return QP_EINVAL;
	memcpy(hs->my_pk, my_pk, QP_KEY_LEN);
	memcpy(hs->my_sk, my_sk, QP_SKEY_LEN);
	hs->check_peer = check_peer;
	hs->ctx = ctx;
	hs->is_server = 1;
	hs->state = QP_HS_SERVER_WAIT_HELLO;
	return 0;
}

/* Read HELLO, ask check_peer, answer with WELCOME; see handshake.h. */
int qp_hs_server_on_hello(qp_hs *hs, const uint8_t *msg, size_t len,
                          uint8_t **welcome_out, size_t *welcome_len)
{
	uint8_t w[QP_HS_WELCOME_LEN];
	char why[QP_HS_WHY_MAX];
	const uint8_t *cert;
	size_t n;
	qp_cert c;
	int rc;

	if (hs == NULL || hs->state != QP_HS_SERVER_WAIT_HELLO ||
	    welcome_out == NULL || welcome_len == NULL)
		return QP_EINVAL;
	rc = check_head(hs, msg, len, QP_HS_HELLO, "HELLO", "client", 0);
	if (rc != 0)
		return rc;
	if (len > QP_HS_HELLO_MAX)
		return fail(hs, QP_ETOOBIG, "HELLO too long (%zu bytes)", len);
	if (len < QP_HS_HELLO_FIXED)
		return fail(hs, QP_EPROTO, "HELLO too short (%zu bytes)", len);
	n = ((size_t)msg[H_CERTLEN] << 8) | msg[H_CERTLEN + 1];
	if (n == 0 || len != QP_HS_HELLO_FIXED + n)
		return fail(hs, QP_EPROTO,
		            "HELLO certificate length %zu does "
		            "not match the message",
		            n);
	cert = msg + QP_HS_HELLO_FIXED;

	why[0] = '\0';
	rc = hs->check_peer(hs->ctx, msg + H_STATIC, cert, n, why, sizeof(why));
	if (rc != 0) {
		char text[QP_HS_WHY_MAX];
		why[sizeof(why) - 1] = '\0';
		rc = rc < 0 ? rc : QP_EAUTH;
		clean_text(text, sizeof(text), (const uint8_t *)why,
		           strlen(why));
		return fail(hs, rc, "%s",
		            text[0] != '\0' ? text : qp_strerror(rc));
	}
	/* check_peer vouched for the certificate; it must also be this
	 * client's, or a stolen certificate would open the door. */
	if (qp_cert_parse(cert, n, &c) != 0)
		return fail(hs, QP_EPROTO, "client certificate is malformed");
	if (sodium_memcmp(c.device, msg + H_STATIC, QP_KEY_LEN) != 0)
		return fail(hs, QP_EAUTH,
		            "certificate was issued to another "
		            "device key");

	crypto_kx_keypair(hs->eph_pk, hs->eph_sk);
	if (crypto_kx_server_session_keys(hs->rx_key, hs->tx_key, hs->eph_pk,
	                                  hs->eph_sk, msg + H_EPH) != 0)
		return fail(hs, QP_ECRYPTO,
		            "client's ephemeral key is unusable");
	sodium_memzero(hs->eph_sk, sizeof(hs->eph_sk));
	w[0] = QP_SYNC_VERSION;
	w[1] = QP_HS_WELCOME;
	memcpy(w + W_EPH, hs->eph_pk, QP_HS_KX_LEN);
	memcpy(w + W_STATIC, hs->my_pk, QP_KEY_LEN);
	crypto_secretstream_xchacha20poly1305_init_push(
	    &hs->ch.tx, w + W_HEADER, hs->tx_key);
	sodium_memzero(hs->tx_key, sizeof(hs->tx_key));
	hash_t1(hs->t1, msg, len, w);
	crypto_sign_detached(w + W_SIG, NULL, hs->t1, sizeof(hs->t1),
	                     hs->my_sk);
	sodium_memzero(hs->my_sk, sizeof(hs->my_sk));
	memcpy(hs->peer_pk, msg + H_STATIC, QP_KEY_LEN);
	hs->state = QP_HS_SERVER_WAIT_AUTH;
	*welcome_out = dup_bytes(w, sizeof(w));
	*welcome_len = sizeof(w);
	return 0;
}

/* Read AUTH and finish the server side; see handshake.h. */
int qp_hs_server_on_auth(qp_hs *hs, const uint8_t *msg, size_t len)
{
	uint8_t t2[crypto_generichash_BYTES];
	int rc;

	if (hs == NULL || hs->state != QP_HS_SERVER_WAIT_AUTH)
		return QP_EINVAL;
	rc = check_head(hs, msg, len, QP_HS_AUTH, "AUTH", "client", 1);
	if (rc != 0)
		return rc;
	if (len != QP_HS_AUTH_LEN)
		return fail(hs, QP_EPROTO, "AUTH has %zu bytes, not %d", len,
		            QP_HS_AUTH_LEN);
	hash_t2(t2, hs->t1, msg);
	if (crypto_sign_verify_detached(msg + A_SIG, t2, sizeof(t2),
	                                hs->peer_pk) != 0)
		return fail(hs, QP_ESIG,
		            "client's handshake signature does not verify");
	if (crypto_secretstream_xchacha20poly1305_init_pull(
	        &hs->ch.rx, msg + A_HEADER, hs->rx_key) != 0)
		return fail(hs, QP_ECRYPTO,
		            "client's stream header is unusable");
	wipe(hs);
	hs->ch.ready = 1;
	hs->state = QP_HS_ESTABLISHED;
	hs->why[0] = '\0';
	return 0;
}

/* 1 when established. */
int qp_hs_established(const qp_hs *hs)
{
	return hs != NULL && hs->state == QP_HS_ESTABLISHED;
}

/* Wipe and reset; see handshake.h.  Accepts NULL. */
void qp_hs_clear(qp_hs *hs)
{
	if (hs == NULL)
		return;
	wipe(hs);
	sodium_memzero(hs, sizeof(*hs));
}

/* Make a REFUSE message; see handshake.h. */
int qp_hs_refusal(int code, const char *why, uint8_t **out, size_t *outlen)
{
	char text[QP_HS_WHY_MAX];
	size_t m;
	uint8_t *b;

	if (code >= 0 || out == NULL || outlen == NULL)
		return QP_EINVAL;
	text[0] = '\0';
	if (why != NULL)
		clean_text(text, sizeof(text), (const uint8_t *)why,
		           strlen(why));
	m = strlen(text);
	b = qp_xmalloc(QP_HS_REFUSE_FIXED + m);
	b[0] = QP_SYNC_VERSION;
	b[1] = QP_HS_REFUSE;
	qp_put_be32(b + R_CODE, (uint32_t)(int32_t)code);
	b[R_LEN] = (uint8_t)(m >> 8);
	b[R_LEN + 1] = (uint8_t)m;
	memcpy(b + QP_HS_REFUSE_FIXED, text, m);
	*out = b;
	*outlen = QP_HS_REFUSE_FIXED + m;
	return 0;
}

static int seal(qp_channel *ch, const uint8_t *pt, size_t len, uint8_t tag,
                uint8_t **out, size_t *outlen)
{
	unsigned long long clen;
	uint8_t *b;

	if (ch == NULL || !ch->ready || out == NULL || outlen == NULL ||
	    (pt == NULL && len > 0))
		return QP_EINVAL;
	if (ch->failed)
		return QP_ECRYPTO;
	if (ch->tx_closed)
		return QP_ECLOSED;
	if (len > QP_CHANNEL_MAX)
		return QP_ETOOBIG;
	b = qp_xmalloc(len + QP_CHANNEL_ABYTES);
	crypto_secretstream_xchacha20poly1305_push(&ch->tx, b, &clen, pt, len,
	                                           NULL, 0, tag);
	if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
		ch->tx_closed = 1;
	*out = b;
	*outlen = (size_t)clen;
	return 0;
}

/* Seal the next message; see handshake.h. */
int qp_channel_seal(qp_channel *ch, const uint8_t *plaintext, size_t len,
                    uint8_t **out, size_t *outlen)
{
	return seal(ch, plaintext, len,
	            crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, out,
	            outlen);
}

/* Seal the final message; see handshake.h. */
int qp_channel_seal_final(qp_channel *ch, const uint8_t *plaintext, size_t len,
                          uint8_t **out, size_t *outlen)
{
	return seal(ch, plaintext, len,
	            crypto_secretstream_xchacha20poly1305_TAG_FINAL, out,
	            outlen);
}

/* Open the next message; see handshake.h. */
int qp_channel_open(qp_channel *ch, const uint8_t *ciphertext, size_t len,
                    uint8_t **out, size_t *outlen)
{
	unsigned long long mlen;
	unsigned char tag;
	uint8_t *b;

	if (ch == NULL || !ch->ready || out == NULL || outlen == NULL ||
	    (ciphertext == NULL && len > 0))
		return QP_EINVAL;
	if (ch->failed)
		return QP_ECRYPTO;
	if (ch->rx_closed)
		return QP_ECLOSED;
	if (len > (size_t)QP_CHANNEL_MAX + QP_CHANNEL_ABYTES) {
		ch->failed = 1;
		return QP_ETOOBIG;
	}
	if (len < QP_CHANNEL_ABYTES) {
		ch->failed = 1;
		return QP_ECRYPTO;
	}
	/* One spare byte so an empty message still gets a buffer. */
	b = qp_xmalloc(len - QP_CHANNEL_ABYTES + 1);
	if (crypto_secretstream_xchacha20poly1305_pull(
	        &ch->rx, b, &mlen, &tag, ciphertext, len, NULL, 0) != 0) {
		free(b);
		ch->failed = 1;
		return QP_ECRYPTO;
	}
	if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE &&
	    tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
		/* Authentic, but quipu never sends PUSH or REKEY. */
		sodium_memzero(b, (size_t)mlen);
		free(b);
		ch->failed = 1;
		return QP_EPROTO;
	}
	*out = b;
	*outlen = (size_t)mlen;
	if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
		ch->rx_closed = 1;
		return QP_CHANNEL_FINAL;
	}
	return 0;
}

/* Wipe both stream states; see handshake.h.  Accepts NULL. */
void qp_channel_clear(qp_channel *ch)
{
	if (ch != NULL)
		sodium_memzero(ch, sizeof(*ch));
}
