/*
 * handshake.h - the sync protocol's handshake and encrypted channel,
 * version QP_SYNC_VERSION, as a pure state machine: messages in, messages
 * out, no sockets.  Each message is the body of one frame (frame.h).
 *
 * The client (a field node, or a hub syncing with a higher hub) knows the
 * server's static ed25519 key in advance: it was pinned by the join token.
 * The server knows nobody in advance: it learns the client's key and
 * certificate from HELLO and asks the daemon (check_peer) whether they are
 * acceptable.  Both sides make an ephemeral X25519 key (crypto_kx), and each
 * signs a hash of the transcript so far with its static key, which binds
 * both identities to both ephemeral keys: a man in the middle who swaps an
 * ephemeral key breaks a signature, and an AUTH replayed from an earlier
 * session signs a transcript holding another server ephemeral key.  Session
 * keys come from crypto_kx; each direction is then one
 * crypto_secretstream_xchacha20poly1305 stream, whose header travels inside
 * the signed handshake messages.
 *
 *   client                                   server
 *   HELLO   ---------------------------->    check_peer(client key, cert)
 *           <----------------------------    WELCOME (signs T1)
 *   AUTH    ---------------------------->    (verifies T2)
 *   established                              established
 *
 * Messages (all integers big-endian; byte 0 is the protocol version and
 * byte 1 the message type):
 *
 * HELLO, client -> server, 68 + n bytes:
 *     0   1  version (QP_SYNC_VERSION)
 *     1   1  type 1
 *     2  32  client ephemeral X25519 public key
 *    34  32  client static ed25519 public key
 *    66   2  certificate length n, 1..QP_CERT_MAX
 *    68   n  the client's certificate (cert.h)
 *
 * WELCOME, server -> client, 154 bytes:
 *     0   1  version
 *     1   1  type 2
 *     2  32  server ephemeral X25519 public key
 *    34  32  server static ed25519 public key
 *    66  24  secretstream header of the server -> client stream
 *    90  64  ed25519 signature by the server static key over T1
 *
 * AUTH, client -> server, 90 bytes:
 *     0   1  version
 *     1   1  type 3
 *     2  24  secretstream header of the client -> server stream
 *    26  64  ed25519 signature by the client static key over T2
 *
 *   T1 = BLAKE2b-256("quipu-hs-v1" || HELLO || WELCOME[0, 90))
 *   T2 = BLAKE2b-256(T1 || AUTH[0, 26))
 *
 * REFUSE, either direction, instead of the next message, 8 + m bytes:
 *     0   1  the sender's version
 *     1   1  type 0
 *     2   4  error code (a negative QP_E* value, two's complement)
 *     6   2  reason length m, 0..QP_HS_WHY_MAX-1
 *     8   m  reason, UTF-8 text ("certificate expired")
 * REFUSE is read whatever its version byte says, so a peer speaking
 * another version can still be told why.  It is not authenticated: it only
 * explains a refusal (anyone on the path can cut a connection anyway), and
 * the receiver reports it and gives up.
 *
 * After the handshake every message is a secretstream message (plaintext +
 * QP_CHANNEL_ABYTES) in its own frame: tag MESSAGE, or FINAL for a graceful
 * close.  Any tampering, reordering, replay or truncation of a message
 * fails to open.
 *
 * Errors: a failed call leaves the handshake failed (every later call
 * returns QP_EINVAL) with a one-line reason in hs->why; its secrets are
 * already wiped.
 */
#ifndef QP_HANDSHAKE_H
#define QP_HANDSHAKE_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "delta.h"

#define QP_SYNC_VERSION 1

#define QP_HS_REFUSE  0
#define QP_HS_HELLO   1
#define QP_HS_WELCOME 2
#define QP_HS_AUTH    3

#define QP_HS_KX_LEN       32 /* crypto_kx public key */
#define QP_HS_HEADER_LEN   24 /* secretstream header */
#define QP_HS_HELLO_FIXED  68
#define QP_HS_HELLO_MAX    (QP_HS_HELLO_FIXED + QP_CERT_MAX)
#define QP_HS_WELCOME_LEN  154
#define QP_HS_AUTH_LEN     90
#define QP_HS_REFUSE_FIXED 8
#define QP_HS_WHY_MAX      256 /* reason buffer, NUL included */
/* The largest handshake message: a framer reading a handshake uses this as
 * its limit. */
#define QP_HS_MSG_MAX QP_HS_HELLO_MAX

/* crypto_secretstream_xchacha20poly1305_ABYTES: what sealing adds. */
#define QP_CHANNEL_ABYTES 17
/* Largest plaintext, so that a sealed message fits a 16 MiB frame. */
#define QP_CHANNEL_MAX ((16u << 20) - QP_CHANNEL_ABYTES)
/* What qp_channel_open returns for a message sealed as the final one. */
#define QP_CHANNEL_FINAL 1

typedef enum qp_hs_state {
	QP_HS_NONE = 0,
	QP_HS_CLIENT_START,        /* client: next is qp_hs_client_hello */
	QP_HS_CLIENT_WAIT_WELCOME, /* client: HELLO sent */
	QP_HS_SERVER_WAIT_HELLO,   /* server: next is qp_hs_server_on_hello */
	QP_HS_SERVER_WAIT_AUTH,    /* server: WELCOME sent */
	QP_HS_ESTABLISHED,         /* hs->ch is ready */
	QP_HS_FAILED,              /* hs->why says why */
} qp_hs_state;

/* The server's view of a client, called from qp_hs_server_on_hello before
 * the server reveals anything but its refusal.  The daemon checks cert
 * against its hub key, expiry and the revocation list (qp_cert_verify,
 * qp_revocation_covers).  Returns 0 to accept, or a negative QP_E* code
 * (QP_EAUTH, QP_EEXPIRED, QP_EREVOKED...) with a one-line reason written
 * into why[0..whylen) (NUL-terminated).  It need not check that the cert
 * names peer_pk: the handshake does that after a 0 return. */
typedef int (*qp_hs_check_peer_fn)(void *ctx, const uint8_t peer_pk[QP_KEY_LEN],
                                   const uint8_t *cert, size_t certlen,
                                   char *why, size_t whylen);

/* One direction pair of an established session.  Plain data: may be copied
 * out of a qp_hs once established (then wipe both with qp_channel_clear /
 * qp_hs_clear). */
typedef struct qp_channel {
	int ready; /* set when the handshake establishes it */
	crypto_secretstream_xchacha20poly1305_state tx;
	crypto_secretstream_xchacha20poly1305_state rx;
	int tx_closed; /* final sealed: nothing more may be sent */
	int rx_closed; /* final opened: nothing more may arrive */
	int failed;    /* a message failed to open: the channel is dead */
} qp_channel;

typedef struct qp_hs {
	qp_hs_state state;
	int is_server;
	uint8_t my_pk[QP_KEY_LEN];
	uint8_t my_sk[QP_SKEY_LEN];
	/* Client: the pinned server key.  Server: the client's key, set by a
	 * successful qp_hs_server_on_hello. */
	uint8_t peer_pk[QP_KEY_LEN];
	uint8_t eph_pk[QP_HS_KX_LEN];
	uint8_t eph_sk[QP_HS_KX_LEN];
	uint8_t rx_key[crypto_kx_SESSIONKEYBYTES];
	uint8_t tx_key[crypto_kx_SESSIONKEYBYTES];
	uint8_t t1[crypto_generichash_BYTES];
	uint8_t *msg; /* owned: client's cert, then its HELLO (transcript) */
	size_t msglen;
	qp_hs_check_peer_fn check_peer;
	void *ctx;
	qp_channel ch;           /* valid when state == QP_HS_ESTABLISHED */
	char why[QP_HS_WHY_MAX]; /* reason of the last failure, or "" */
} qp_hs;

/* Start a client handshake.  my_sk must be my_pk's secret half; server_pk
 * is the key pinned by the join token; cert[0..certlen) is this node's
 * certificate, copied.  Call libsodium's sodium_init (qp_crypto_init)
 * first.  Errors: QP_EINVAL (bad key pair, cert length 0 or above
 * QP_CERT_MAX); hs is then unusable but safe to qp_hs_clear. */
int qp_hs_client_init(qp_hs *hs, const uint8_t my_pk[QP_KEY_LEN],
                      const uint8_t my_sk[QP_SKEY_LEN],
                      const uint8_t server_pk[QP_KEY_LEN], const uint8_t *cert,
                      size_t certlen);

/* Make HELLO (a fresh ephemeral key).  On success *out is malloc'd
 * (caller frees).  Errors: QP_EINVAL (wrong state). */
int qp_hs_client_hello(qp_hs *hs, uint8_t **out, size_t *outlen);

/* Read the server's answer to HELLO.  WELCOME: checks version
 * (QP_EVERSION), layout (QP_EPROTO), the server's static key against the
 * pinned one (QP_EAUTH), its signature over T1 (QP_ESIG) and its ephemeral
 * key (QP_ECRYPTO); then the client is established and *auth_out
 * (malloc'd, caller frees) is the AUTH to send.  REFUSE: returns the
 * server's code (QP_EAUTH when it is not a handshake refusal code) with
 * why "hub refused: REASON".  Errors also: QP_EINVAL (wrong state). */
int qp_hs_client_on_welcome(qp_hs *hs, const uint8_t *msg, size_t len,
                            uint8_t **auth_out, size_t *auth_len);

/* Start a server handshake with the server's static key pair and the
 * daemon's client check (ctx is passed to it).  Errors: QP_EINVAL. */
int qp_hs_server_init(qp_hs *hs, const uint8_t my_pk[QP_KEY_LEN],
                      const uint8_t my_sk[QP_SKEY_LEN],
                      qp_hs_check_peer_fn check_peer, void *ctx);

/* Read HELLO: version (QP_EVERSION), layout (QP_EPROTO, QP_ETOOBIG), then
 * check_peer (its refusal code and reason), then the certificate must name
 * the key in HELLO (QP_EAUTH).  On success hs->peer_pk is the client's key
 * and *welcome_out (malloc'd, caller frees) the WELCOME to send.  On a
 * refusal the daemon may send qp_hs_refusal(code, hs->why) before closing.
 * Errors also: QP_ECRYPTO (unusable ephemeral key), QP_EINVAL. */
int qp_hs_server_on_hello(qp_hs *hs, const uint8_t *msg, size_t len,
                          uint8_t **welcome_out, size_t *welcome_len);

/* Read AUTH: version, layout, and the client's signature over T2
 * (QP_ESIG).  On success the server is established.  A REFUSE from the
 * client returns its code with why "client refused: REASON".  Errors also:
 * QP_EINVAL (wrong state). */
int qp_hs_server_on_auth(qp_hs *hs, const uint8_t *msg, size_t len);

/* 1 when the handshake is established. */
int qp_hs_established(const qp_hs *hs);

/* Wipe every secret hs holds (sodium_memzero), free what it owns and reset
 * it to QP_HS_NONE.  Accepts NULL. */
void qp_hs_clear(qp_hs *hs);

/* Make a REFUSE message carrying code (negative QP_E*) and a reason (NULL
 * or text; cut to QP_HS_WHY_MAX-1 bytes at a UTF-8 boundary, control
 * characters replaced by '?').  On success *out is malloc'd (caller
 * frees).  Errors: QP_EINVAL. */
int qp_hs_refusal(int code, const char *why, uint8_t **out, size_t *outlen);

/* Encrypt plaintext[0..len) as the next message (tag MESSAGE).  len may be
 * 0.  On success *out is malloc'd (len + QP_CHANNEL_ABYTES bytes, caller
 * frees).  Errors: QP_ETOOBIG (len > QP_CHANNEL_MAX), QP_ECLOSED (the
 * final message was already sealed), QP_ECRYPTO (the channel is dead),
 * QP_EINVAL (a channel that was never established). */
int qp_channel_seal(qp_channel *ch, const uint8_t *plaintext, size_t len,
                    uint8_t **out, size_t *outlen);

/* As qp_channel_seal, tagged FINAL: the graceful end of this direction. */
int qp_channel_seal_final(qp_channel *ch, const uint8_t *plaintext, size_t len,
                          uint8_t **out, size_t *outlen);

/* Decrypt the next message.  Returns 0 for a message, QP_CHANNEL_FINAL (1)
 * for the final one, with *out malloc'd (caller frees; never NULL, even for
 * an empty message) and *outlen set.  Errors: QP_ECRYPTO (forged,
 * tampered, reordered, replayed or truncated; the channel is then dead and
 * every later call fails with QP_ECRYPTO), QP_EPROTO (a tag other than
 * MESSAGE or FINAL), QP_ETOOBIG (longer than QP_CHANNEL_MAX +
 * QP_CHANNEL_ABYTES), QP_ECLOSED (after the final message), QP_EINVAL.
 * After QP_ECRYPTO, QP_EPROTO or QP_ETOOBIG the channel is dead: a message
 * was lost, so the stream cannot go on, and the connection must close. */
int qp_channel_open(qp_channel *ch, const uint8_t *ciphertext, size_t len,
                    uint8_t **out, size_t *outlen);

/* Wipe the stream states.  Accepts NULL. */
void qp_channel_clear(qp_channel *ch);

#endif
