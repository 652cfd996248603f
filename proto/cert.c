/*
 * cert.c - device certificates, join tokens and revocations; see cert.h.
 *
 * Decoding reads a certificate into a caller-provided struct with a fixed
 * org array, so a hostile buffer can make it do no allocation at all.  Every
 * length is checked against the bytes actually present before it is used,
 * and the encoding is made canonical (orgs strictly ascending, exact
 * length), so the bytes a hub signed are the only bytes that verify.
 */
#include "cert.h"
#include "err.h"
#include "util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Certificate field offsets (see the table in cert.h). */
#define OFF_VERSION 4
#define OFF_ROLE    5
#define OFF_DEVICE  6
#define OFF_ISSUER  38
#define OFF_SERIAL  70
#define OFF_ISSUED  78
#define OFF_EXPIRES 86
#define OFF_NAMELEN 94

/* Revocation field offsets. */
#define ROFF_VERSION 4
#define ROFF_ISSUER  5
#define ROFF_KEY     37
#define ROFF_AFTER   69
#define ROFF_AT      77
#define ROFF_SIG     85

/* The binary inside a token: address length, address, hub key, cert. */
#define TOKEN_BIN_MAX (1 + QP_ADDR_MAX + QP_KEY_LEN + QP_CERT_MAX)
#define TOKEN_B64     sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define TOKEN_ALPHABET                                                         \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

const char *qp_cert_role_name(int role)
{
	switch (role) {
	case QP_ROLE_TECHNICIAN: return "technician";
	case QP_ROLE_RELAY: return "relay";
	case QP_ROLE_HUB: return "hub";
	default: return "unknown";
	}
}

static int role_ok(int role)
{
	return role >= QP_ROLE_TECHNICIAN && role <= QP_ROLE_HUB;
}

/* A name is shown in status output and logs, so besides being UTF-8 it
 * must not carry C0/C1 control characters (terminal escapes, newlines). */
static int name_ok(const uint8_t *s, size_t n)
{
	json_t *j;

	if (n == 0 || n > QP_CERT_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return 0;
		/* U+0080..U+009F are encoded C2 80..C2 9F. */
		if (s[i] == 0xc2 && i + 1 < n && s[i + 1] < 0xa0)
			return 0;
	}
	j = json_stringn((const char *)s, n); /* jansson checks the UTF-8 */
	if (j == NULL)
		return 0;
	json_decref(j);
	return 1;
}

static int org_cmp(const void *a, const void *b)
{
	return memcmp(a, b, QP_UUID_LEN);
}

/* Decode the layout into *c (which the caller discards on error) and say
 * how many bytes the signature covers. */
static int parse(const uint8_t *buf, size_t len, qp_cert *c, size_t *signed_len)
{
	size_t n, k, off;

	if (len > QP_CERT_MAX)
		return QP_ETOOBIG;
	if (buf == NULL || len < QP_CERT_MIN)
		return QP_EPROTO;
	if (memcmp(buf, QP_CERT_MAGIC, 4) != 0)
		return QP_EPROTO;
	if (buf[OFF_VERSION] != QP_CERT_VERSION)
		return QP_EVERSION;
	if (!role_ok(buf[OFF_ROLE]))
		return QP_EPROTO;
	n = buf[OFF_NAMELEN];
	if (n == 0)
		return QP_EPROTO;
	if (n > QP_CERT_NAME_MAX)
		return QP_ETOOBIG;
	/* len >= QP_CERT_MIN keeps this subtraction positive. */
	if (QP_CERT_FIXED + n + 2 > len - QP_CERT_SIG)
		return QP_EPROTO;
	off = QP_CERT_FIXED + n;
	k = ((size_t)buf[off] << 8) | buf[off + 1];
	if (k == 0)
		return QP_EPROTO;
	if (k > QP_CERT_ORGS_MAX)
		return QP_ETOOBIG;
	off += 2;
	if (len != off + k * QP_UUID_LEN + QP_CERT_SIG)
		return QP_EPROTO;
	if (!name_ok(buf + QP_CERT_FIXED, n))
		return QP_EPROTO;
	for (size_t i = 1; i < k; i++)
		if (memcmp(buf + off + (i - 1) * QP_UUID_LEN,
		           buf + off + i * QP_UUID_LEN, QP_UUID_LEN) >= 0)
			return QP_EPROTO;

	c->version = buf[OFF_VERSION];
	c->role = (qp_role)buf[OFF_ROLE];
	memcpy(c->device, buf + OFF_DEVICE, QP_KEY_LEN);
	memcpy(c->issuer, buf + OFF_ISSUER, QP_KEY_LEN);
	c->serial = qp_get_be64(buf + OFF_SERIAL);
	c->issued_at = qp_get_be64(buf + OFF_ISSUED);
	c->expires_at = qp_get_be64(buf + OFF_EXPIRES);
	if (c->expires_at != 0 && c->expires_at <= c->issued_at)
		return QP_EPROTO;
	memcpy(c->name, buf + QP_CERT_FIXED, n);
	c->name[n] = '\0';
	c->norgs = k;
	memcpy(c->orgs, buf + off, k * QP_UUID_LEN);
	*signed_len = off + k * QP_UUID_LEN;
	return 0;
}

/* Encode and sign a certificate; see cert.h.  Returns 0 or QP_EINVAL. */
int qp_cert_build(const qp_cert *c, const uint8_t hub_sk[QP_SKEY_LEN],
                  uint8_t **out, size_t *outlen)
{
	uint8_t orgs[QP_CERT_ORGS_MAX][QP_UUID_LEN];
	size_t n, len, off;
	uint8_t *b;

	if (c == NULL || hub_sk == NULL || out == NULL || outlen == NULL)
		return QP_EINVAL;
	if (c->version != QP_CERT_VERSION || !role_ok(c->role))
		return QP_EINVAL;
	if (memcmp(c->issuer, hub_sk + 32, QP_KEY_LEN) != 0)
		return QP_EINVAL;
	n = strnlen(c->name, sizeof(c->name));
	if (!name_ok((const uint8_t *)c->name, n))
		return QP_EINVAL;
	if (c->norgs == 0 || c->norgs > QP_CERT_ORGS_MAX)
		return QP_EINVAL;
	if (c->expires_at != 0 && c->expires_at <= c->issued_at)
		return QP_EINVAL;
	memcpy(orgs, c->orgs, c->norgs * QP_UUID_LEN);
	qsort(orgs, c->norgs, QP_UUID_LEN, org_cmp);
	for (size_t i = 1; i < c->norgs; i++)
		if (memcmp(orgs[i - 1], orgs[i], QP_UUID_LEN) == 0)
			return QP_EINVAL;

	len = QP_CERT_FIXED + n + 2 + c->norgs * QP_UUID_LEN + QP_CERT_SIG;
	b = qp_xmalloc(len);
	memcpy(b, QP_CERT_MAGIC, 4);
	b[OFF_VERSION] = QP_CERT_VERSION;
	b[OFF_ROLE] = (uint8_t)c->role;
	memcpy(b + OFF_DEVICE, c->device, QP_KEY_LEN);
	memcpy(b + OFF_ISSUER, c->issuer, QP_KEY_LEN);
	qp_put_be64(b + OFF_SERIAL, c->serial);
	qp_put_be64(b + OFF_ISSUED, c->issued_at);
	qp_put_be64(b + OFF_EXPIRES, c->expires_at);
	b[OFF_NAMELEN] = (uint8_t)n;
	memcpy(b + QP_CERT_FIXED, c->name, n);
	off = QP_CERT_FIXED + n;
	b[off] = (uint8_t)(c->norgs >> 8);
	b[off + 1] = (uint8_t)c->norgs;
	off += 2;
	memcpy(b + off, orgs, c->norgs * QP_UUID_LEN);
	off += c->norgs * QP_UUID_LEN;
	crypto_sign_detached(b + off, NULL, b, off, hub_sk);
	*out = b;
	*outlen = len;
	return 0;
}

/* Decode the layout only; see cert.h. */
int qp_cert_parse(const uint8_t *buf, size_t len, qp_cert *out)
{
	qp_cert c;
	size_t signed_len;
	int rc;

	if (out == NULL)
		return QP_EINVAL;
	rc = parse(buf, len, &c, &signed_len);
	if (rc != 0)
		return rc;
	*out = c;
	return 0;
}

/* Full check: layout, issuer, signature, expiry; see cert.h. */
int qp_cert_verify(const uint8_t *buf, size_t len,
                   const uint8_t hub_pk[QP_KEY_LEN], uint64_t now, qp_cert *out)
{
	qp_cert c;
	size_t signed_len;
	int rc;

	if (hub_pk == NULL || out == NULL)
		return QP_EINVAL;
	rc = parse(buf, len, &c, &signed_len);
	if (rc != 0)
		return rc;
	if (sodium_memcmp(c.issuer, hub_pk, QP_KEY_LEN) != 0)
		return QP_EAUTH;
	if (crypto_sign_verify_detached(buf + signed_len, buf, signed_len,
	                                hub_pk) != 0)
		return QP_ESIG;
	if (c.expires_at != 0 && now >= c.expires_at)
		return QP_EEXPIRED;
	*out = c;
	return 0;
}

/* Membership test; see cert.h.  A linear scan: at most 256 entries, and it
 * stays correct for a struct filled by hand in any order. */
int qp_cert_allows_org(const qp_cert *c, const uint8_t org[QP_UUID_LEN])
{
	if (c == NULL || org == NULL || c->norgs > QP_CERT_ORGS_MAX)
		return 0;
	for (size_t i = 0; i < c->norgs; i++)
		if (memcmp(c->orgs[i], org, QP_UUID_LEN) == 0)
			return 1;
	return 0;
}

static int host_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
}

/* Split "HOST:PORT"; see cert.h.  Returns 0 or QP_EPROTO. */
int qp_token_addr_split(const char *addr, char *host, size_t hostcap,
                        uint16_t *port)
{
	const char *colon, *h, *p;
	char v6[QP_ADDR_MAX + 1];
	struct in6_addr a6;
	size_t n, hl;
	unsigned long v = 0;

	if (addr == NULL)
		return QP_EPROTO;
	n = strnlen(addr, QP_ADDR_MAX + 1);
	if (n == 0 || n > QP_ADDR_MAX)
		return QP_EPROTO;
	colon = strrchr(addr, ':');
	if (colon == NULL)
		return QP_EPROTO;

	p = colon + 1;
	if (*p < '1' || *p > '9' || strlen(p) > 5)
		return QP_EPROTO;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return QP_EPROTO;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return QP_EPROTO;

	h = addr;
	hl = (size_t)(colon - addr);
	if (hl > 0 && h[0] == '[') {
		/* An IPv6 literal: brackets, then what inet_pton accepts. */
		if (hl < 3 || h[hl - 1] != ']')
			return QP_EPROTO;
		h++;
		hl -= 2;
		memcpy(v6, h, hl);
		v6[hl] = '\0';
		if (inet_pton(AF_INET6, v6, &a6) != 1)
			return QP_EPROTO;
	} else {
		if (hl == 0)
			return QP_EPROTO;
		for (size_t i = 0; i < hl; i++)
			if (!host_char(h[i]))
				return QP_EPROTO;
	}
	if (host != NULL) {
		if (hl + 1 > hostcap)
			return QP_EPROTO;
		memcpy(host, h, hl);
		host[hl] = '\0';
	}
	if (port != NULL)
		*port = (uint16_t)v;
	return 0;
}

/* Make a join token; see cert.h.  Returns 0 or QP_EINVAL. */
int qp_token_encode(const char *hub_addr, const uint8_t hub_pk[QP_KEY_LEN],
                    const uint8_t *cert, size_t certlen, char **out)
{
	uint8_t bin[TOKEN_BIN_MAX];
	size_t alen, binlen, b64len, plen = strlen(QP_TOKEN_PREFIX);
	qp_cert c;
	char *s;

	if (hub_pk == NULL || out == NULL)
		return QP_EINVAL;
	if (qp_token_addr_split(hub_addr, NULL, 0, NULL) != 0)
		return QP_EINVAL;
	if (qp_cert_verify(cert, certlen, hub_pk, 0, &c) != 0)
		return QP_EINVAL;
	alen = strlen(hub_addr);
	bin[0] = (uint8_t)alen;
	memcpy(bin + 1, hub_addr, alen);
	memcpy(bin + 1 + alen, hub_pk, QP_KEY_LEN);
	memcpy(bin + 1 + alen + QP_KEY_LEN, cert, certlen);
	binlen = 1 + alen + QP_KEY_LEN + certlen;

	b64len = sodium_base64_ENCODED_LEN(binlen, TOKEN_B64);
	s = qp_xmalloc(plen + b64len);
	memcpy(s, QP_TOKEN_PREFIX, plen);
	sodium_bin2base64(s + plen, b64len, bin, binlen, TOKEN_B64);
	*out = s;
	return 0;
}

/* Decode a join token; see cert.h. */
int qp_token_decode(const char *s, char **hub_addr, uint8_t hub_pk[QP_KEY_LEN],
                    uint8_t **cert, size_t *certlen)
{
	uint8_t bin[TOKEN_BIN_MAX], pk[QP_KEY_LEN];
	char addr[QP_ADDR_MAX + 1];
	size_t n, binlen, alen, clen, plen = strlen(QP_TOKEN_PREFIX);
	const uint8_t *cp;
	qp_cert c;
	int rc;

	if (s == NULL || hub_addr == NULL || hub_pk == NULL || cert == NULL ||
	    certlen == NULL)
		return QP_EINVAL;
	n = strnlen(s, QP_TOKEN_MAX + 1);
	if (n > QP_TOKEN_MAX)
		return QP_ETOOBIG;
	if (n <= plen || memcmp(s, QP_TOKEN_PREFIX, plen) != 0)
		return QP_EPROTO;
	/* libsodium 1.0.18 reads a byte with the high bit set as the ASCII
	 * character below it (0xdf as '_'), so check the alphabet first. */
	if (strspn(s + plen, TOKEN_ALPHABET) != n - plen)
		return QP_EPROTO;
	/* With b64_end NULL, libsodium fails unless every character was
	 * consumed; it also refuses nonzero padding bits, so one binary has
	 * one token.  A binary over the buffer fails too. */
	if (sodium_base642bin(bin, sizeof(bin), s + plen, n - plen, NULL,
	                      &binlen, NULL, TOKEN_B64) != 0)
		return QP_EPROTO;
	if (binlen < 1)
		return QP_EPROTO;
	alen = bin[0];
	if (alen == 0 || binlen < 1 + alen + QP_KEY_LEN + 1)
		return QP_EPROTO;
	if (memchr(bin + 1, '\0', alen) != NULL)
		return QP_EPROTO;
	memcpy(addr, bin + 1, alen);
	addr[alen] = '\0';
	if (qp_token_addr_split(addr, NULL, 0, NULL) != 0)
		return QP_EPROTO;
	memcpy(pk, bin + 1 + alen, QP_KEY_LEN);
	cp = bin + 1 + alen + QP_KEY_LEN;
	clen = binlen - (1 + alen + QP_KEY_LEN);
	rc = qp_cert_verify(cp, clen, pk, 0, &c);
	if (rc != 0)
		return rc;

	*hub_addr = qp_xstrdup(addr);
	*cert = qp_xmalloc(clen);
	memcpy(*cert, cp, clen);
	*certlen = clen;
	memcpy(hub_pk, pk, QP_KEY_LEN);
	return 0;
}

/* Encode and sign a revocation; see cert.h.  Returns 0 or QP_EINVAL. */
int qp_revocation_build(const qp_revocation *r,
                        const uint8_t hub_sk[QP_SKEY_LEN], uint8_t **out,
                        size_t *outlen)
{
	uint8_t *b;

	if (r == NULL || hub_sk == NULL || out == NULL || outlen == NULL)
		return QP_EINVAL;
	if (r->version != QP_REV_VERSION ||
	    memcmp(r->issuer, hub_sk + 32, QP_KEY_LEN) != 0)
		return QP_EINVAL;
	b = qp_xmalloc(QP_REV_LEN);
	memcpy(b, QP_REV_MAGIC, 4);
	b[ROFF_VERSION] = QP_REV_VERSION;
	memcpy(b + ROFF_ISSUER, r->issuer, QP_KEY_LEN);
	memcpy(b + ROFF_KEY, r->key, QP_KEY_LEN);
	qp_put_be64(b + ROFF_AFTER, r->after_seq);
	qp_put_be64(b + ROFF_AT, r->at);
	crypto_sign_detached(b + ROFF_SIG, NULL, b, ROFF_SIG, hub_sk);
	*out = b;
	*outlen = QP_REV_LEN;
	return 0;
}

/* Check a revocation; see cert.h. */
int qp_revocation_verify(const uint8_t *buf, size_t len,
                         const uint8_t hub_pk[QP_KEY_LEN], qp_revocation *out)
{
	if (hub_pk == NULL || out == NULL)
		return QP_EINVAL;
	if (len > QP_REV_LEN)
		return QP_ETOOBIG;
	if (buf == NULL || len < QP_REV_LEN ||
	    memcmp(buf, QP_REV_MAGIC, 4) != 0)
		return QP_EPROTO;
	if (buf[ROFF_VERSION] != QP_REV_VERSION)
		return QP_EVERSION;
	if (sodium_memcmp(buf + ROFF_ISSUER, hub_pk, QP_KEY_LEN) != 0)
		return QP_EAUTH;
	if (crypto_sign_verify_detached(buf + ROFF_SIG, buf, ROFF_SIG,
	                                hub_pk) != 0)
		return QP_ESIG;
	out->version = buf[ROFF_VERSION];
	memcpy(out->issuer, buf + ROFF_ISSUER, QP_KEY_LEN);
	memcpy(out->key, buf + ROFF_KEY, QP_KEY_LEN);
	out->after_seq = qp_get_be64(buf + ROFF_AFTER);
	out->at = qp_get_be64(buf + ROFF_AT);
	return 0;
}

/* Does r revoke key at seq?  See cert.h. */
int qp_revocation_covers(const qp_revocation *r, const uint8_t key[QP_KEY_LEN],
                         uint64_t seq)
{
	if (r == NULL || key == NULL)
		return 0;
	return memcmp(r->key, key, QP_KEY_LEN) == 0 && seq > r->after_seq;
}
