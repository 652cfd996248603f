/*
 * cert.h - device certificates, join tokens and revocations, all signed by
 * a hub's ed25519 key.
 *
 * A hub enrols a device by signing a certificate that binds the device's
 * ed25519 key to a role, a display name, the organisations whose feeds it
 * may write and read, and a validity period.  The device receives it inside
 * a one-line join token together with the hub's address and key, and shows
 * the certificate to the hub at every handshake (handshake.h).  A hub can
 * later revoke a key after a given seq (a revocation entry), so what the key
 * signed before stays valid evidence.
 *
 * Everything here is pure: byte buffers in, byte buffers out, no clock (the
 * caller passes `now`), no I/O.
 *
 * Certificate encoding (all integers big-endian):
 *
 *   off    len   field
 *     0      4   magic "QPC1"
 *     4      1   version (QP_CERT_VERSION = 1)
 *     5      1   role: 1 technician, 2 relay, 3 hub
 *     6     32   device ed25519 public key
 *    38     32   issuer (hub) ed25519 public key
 *    70      8   serial
 *    78      8   issued_at (Unix seconds)
 *    86      8   expires_at (Unix seconds; 0 = never); when nonzero it is
 *                greater than issued_at
 *    94      1   name length n, 1..64
 *    95      n   name: UTF-8, no control characters
 *  95+n      2   org count k, 1..256
 *  97+n    16k   org ids (UUID bytes), strictly ascending (so one set of
 *                orgs has exactly one encoding)
 *  97+n+16k 64   ed25519 signature by the issuer over bytes [0, 97+n+16k)
 *
 * The encoding is canonical: a certificate that verifies re-encodes to the
 * same bytes (ed25519 signatures are deterministic).
 *
 * Join token: the text "quipu1:" followed by base64url without padding of
 *
 *     1   address length a, 1..255
 *     a   hub address "HOST:PORT" (port 1..65535; an IPv6 host in brackets)
 *    32   hub ed25519 public key
 *   rest  the certificate (which must verify under that hub key)
 *
 * Revocation encoding:
 *
 *     0   4  magic "QPR1"
 *     4   1  version (1)
 *     5  32  issuer (hub) ed25519 public key
 *    37  32  revoked key
 *    69   8  after_seq: deltas of this key with seq > after_seq are no
 *            longer accepted (0 revokes everything)
 *    77   8  at: when the hub revoked it (Unix seconds)
 *    85  64  ed25519 signature by the issuer over bytes [0, 85)
 */
#ifndef QP_CERT_H
#define QP_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "delta.h"
#include "uuid.h"

#define QP_CERT_MAGIC    "QPC1"
#define QP_CERT_VERSION  1
#define QP_CERT_NAME_MAX 64
#define QP_CERT_ORGS_MAX 256
#define QP_CERT_SIG      64
#define QP_CERT_FIXED    95 /* bytes before the name */
#define QP_CERT_MIN      (QP_CERT_FIXED + 1 + 2 + QP_UUID_LEN + QP_CERT_SIG)
#define QP_CERT_MAX                                                            \
	(QP_CERT_FIXED + QP_CERT_NAME_MAX + 2 +                                \
	 QP_CERT_ORGS_MAX * QP_UUID_LEN + QP_CERT_SIG) /* 4321 */

#define QP_TOKEN_PREFIX "quipu1:"
#define QP_TOKEN_MAX    (16u << 10) /* characters, prefix included */
#define QP_ADDR_MAX     255

#define QP_REV_MAGIC   "QPR1"
#define QP_REV_VERSION 1
#define QP_REV_LEN     149

typedef enum qp_role {
	QP_ROLE_TECHNICIAN = 1,
	QP_ROLE_RELAY = 2,
	QP_ROLE_HUB = 3,
} qp_role;

/* A decoded certificate.  A plain struct with room for every org, so
 * decoding needs no allocation; copy it freely. */
typedef struct qp_cert {
	uint8_t version;
	qp_role role;
	uint8_t device[QP_KEY_LEN];
	uint8_t issuer[QP_KEY_LEN];
	uint64_t serial;
	uint64_t issued_at;
	uint64_t expires_at;             /* 0 = never */
	char name[QP_CERT_NAME_MAX + 1]; /* NUL-terminated */
	size_t norgs;
	uint8_t orgs[QP_CERT_ORGS_MAX][QP_UUID_LEN];
} qp_cert;

typedef struct qp_revocation {
	uint8_t version;
	uint8_t issuer[QP_KEY_LEN];
	uint8_t key[QP_KEY_LEN];
	uint64_t after_seq;
	uint64_t at;
} qp_revocation;

/* "technician", "relay", "hub", or "unknown".  Static storage. */
const char *qp_cert_role_name(int role);

/* Encode and sign c with the hub's secret key.  c->version must be
 * QP_CERT_VERSION, c->issuer must be hub_sk's public half, the name 1..64
 * bytes of UTF-8 without control characters, 1..256 distinct orgs (any
 * order: they are sorted in the encoding), expires_at 0 or > issued_at.
 * On success *out is malloc'd (caller frees) and *outlen set.  Errors:
 * QP_EINVAL. */
int qp_cert_build(const qp_cert *c, const uint8_t hub_sk[QP_SKEY_LEN],
                  uint8_t **out, size_t *outlen);

/* Check buf[0..len) completely: layout and bounds (QP_EPROTO; QP_ETOOBIG
 * for a buffer, name or org count above its limit; QP_EVERSION for an
 * unknown version), the issuer equals hub_pk (QP_EAUTH), the signature
 * (QP_ESIG), and expiry: a certificate with expires_at != 0 is expired
 * when now >= expires_at (QP_EEXPIRED).  issued_at in the future is not
 * refused, because tablet clocks drift.  On success fills *out. */
int qp_cert_verify(const uint8_t *buf, size_t len,
                   const uint8_t hub_pk[QP_KEY_LEN], uint64_t now,
                   qp_cert *out);

/* Decode the layout of buf[0..len) WITHOUT checking the issuer, the
 * signature or expiry: for reading the fields of a certificate already
 * verified (the handshake, after the daemon's check) or for explaining why
 * verification failed ("expired on ...").  Never trust what it returns.
 * Errors as qp_cert_verify's layout errors. */
int qp_cert_parse(const uint8_t *buf, size_t len, qp_cert *out);

/* 1 when org is among c's orgs, else 0. */
int qp_cert_allows_org(const qp_cert *c, const uint8_t org[QP_UUID_LEN]);

/* Split a hub address "HOST:PORT" into host (NUL-terminated, brackets of an
 * IPv6 literal removed) and port.  HOST is a name or IPv4 address of
 * letters, digits, '.', '-' and '_', or an IPv6 literal in brackets; PORT is
 * decimal 1..65535 without leading zeros.  host may be NULL to only check.
 * Errors: QP_EPROTO (also when host does not fit in hostcap). */
int qp_token_addr_split(const char *addr, char *host, size_t hostcap,
                        uint16_t *port);

/* Make a join token.  hub_addr as qp_token_addr_split accepts (at most 255
 * bytes); cert[0..certlen) must verify under hub_pk (expiry not checked).
 * On success *out is a malloc'd NUL-terminated line without newline
 * (caller frees).  Errors: QP_EINVAL. */
int qp_token_encode(const char *hub_addr, const uint8_t hub_pk[QP_KEY_LEN],
                    const uint8_t *cert, size_t certlen, char **out);

/* Decode a join token exactly as qp_token_encode writes it (no surrounding
 * whitespace: callers trim pasted text).  The certificate must verify under
 * the token's hub key; expiry is not checked here (call qp_cert_verify with
 * the time to report it).  On success *hub_addr (malloc'd string) and
 * *cert (malloc'd, *certlen bytes) are the caller's to free and hub_pk is
 * filled.  Errors: QP_ETOOBIG (longer than QP_TOKEN_MAX), QP_EPROTO
 * (garbage), or the certificate's error from qp_cert_verify. */
int qp_token_decode(const char *s, char **hub_addr, uint8_t hub_pk[QP_KEY_LEN],
                    uint8_t **cert, size_t *certlen);

/* Encode and sign a revocation.  r->version must be QP_REV_VERSION and
 * r->issuer hub_sk's public half.  On success *out is malloc'd
 * (QP_REV_LEN bytes, caller frees).  Errors: QP_EINVAL. */
int qp_revocation_build(const qp_revocation *r,
                        const uint8_t hub_sk[QP_SKEY_LEN], uint8_t **out,
                        size_t *outlen);

/* Check a revocation: length (QP_EPROTO, QP_ETOOBIG when longer), magic
 * (QP_EPROTO), version (QP_EVERSION), issuer equals hub_pk (QP_EAUTH),
 * signature (QP_ESIG).  On success fills *out. */
int qp_revocation_verify(const uint8_t *buf, size_t len,
                         const uint8_t hub_pk[QP_KEY_LEN], qp_revocation *out);

/* 1 when r revokes key for a delta numbered seq (seq > r->after_seq). */
int qp_revocation_covers(const qp_revocation *r, const uint8_t key[QP_KEY_LEN],
                         uint64_t seq);

#endif
