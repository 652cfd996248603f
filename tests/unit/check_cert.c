/* check_cert.c - covers proto/cert.c: certificates, join tokens, hub
 * addresses and revocations. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "err.h"
#include "suites.h"
#include "util.h"

#define NOW 1763899200u /* 2025-11-23 */

static uint8_t hub_pk[QP_KEY_LEN], hub_sk[QP_SKEY_LEN];
static uint8_t other_pk[QP_KEY_LEN], other_sk[QP_SKEY_LEN];
static uint8_t dev_pk[QP_KEY_LEN], dev_sk[QP_SKEY_LEN];

static void setup(void)
{
	ck_assert_int_eq(qp_crypto_init(), 0);
	qp_key_generate(hub_pk, hub_sk);
	qp_key_generate(other_pk, other_sk);
	qp_key_generate(dev_pk, dev_sk);
}

static void org_id(uint8_t out[QP_UUID_LEN], unsigned i)
{
	memset(out, 0, QP_UUID_LEN);
	out[0] = 0x01;
	out[6] = 0x70;
	out[14] = (uint8_t)(i >> 8);
	out[15] = (uint8_t)i;
}

/* A certificate template; orgs are filled in descending order, so the
 * builder's sorting is exercised. */
static void make_cert(qp_cert *c, size_t norgs)
{
	memset(c, 0, sizeof(*c));
	c->version = QP_CERT_VERSION;
	c->role = QP_ROLE_TECHNICIAN;
	memcpy(c->device, dev_pk, QP_KEY_LEN);
	memcpy(c->issuer, hub_pk, QP_KEY_LEN);
	c->serial = 42;
	c->issued_at = NOW - 86400;
	c->expires_at = NOW + 365 * 86400u;
	strcpy(c->name, "Juana Ñahui — tablet 7");
	c->norgs = norgs;
	for (size_t i = 0; i < norgs; i++)
		org_id(c->orgs[i], (unsigned)(norgs - i));
}

static void build_ok(const qp_cert *c, uint8_t **out, size_t *len)
{
	ck_assert_int_eq(qp_cert_build(c, hub_sk, out, len), 0);
}

/* Re-sign bytes [0, len-64) after a test edited them. */
static void resign(uint8_t *b, size_t len, const uint8_t *sk)
{
	crypto_sign_detached(b + len - QP_CERT_SIG, NULL, b, len - QP_CERT_SIG,
	                     sk);
}

static void assert_untouched(const qp_cert *c)
{
	ck_assert_uint_eq(c->serial, 0xa5a5a5a5a5a5a5a5ull);
	ck_assert_uint_eq(c->norgs, 0xa5a5a5a5a5a5a5a5ull);
}

static void poison(qp_cert *c)
{
	memset(c, 0xa5, sizeof(*c));
}

START_TEST(test_roundtrip)
{
	qp_cert c, d, p;
	uint8_t *b, *b2, org[QP_UUID_LEN];
	size_t len, len2, nlen;

	make_cert(&c, 3);
	build_ok(&c, &b, &len);
	nlen = strlen(c.name);
	ck_assert_uint_eq(len, QP_CERT_FIXED + nlen + 2 + 3 * 16 + 64);
	ck_assert_mem_eq(b, "QPC1", 4);
	ck_assert_int_eq(qp_cert_verify(b, len, hub_pk, NOW, &d), 0);
	ck_assert_uint_eq(d.version, QP_CERT_VERSION);
	ck_assert_int_eq(d.role, QP_ROLE_TECHNICIAN);
	ck_assert_mem_eq(d.device, dev_pk, QP_KEY_LEN);
	ck_assert_mem_eq(d.issuer, hub_pk, QP_KEY_LEN);
	ck_assert_uint_eq(d.serial, 42);
	ck_assert_uint_eq(d.issued_at, c.issued_at);
	ck_assert_uint_eq(d.expires_at, c.expires_at);
	ck_assert_str_eq(d.name, c.name);
	ck_assert_uint_eq(d.norgs, 3);
	/* Sorted ascending in the encoding. */
	for (unsigned i = 0; i < 3; i++) {
		org_id(org, i + 1);
		ck_assert_mem_eq(d.orgs[i], org, QP_UUID_LEN);
		ck_assert_int_eq(qp_cert_allows_org(&d, org), 1);
		ck_assert_int_eq(qp_cert_allows_org(&c, org), 1);
	}
	org_id(org, 4);
	ck_assert_int_eq(qp_cert_allows_org(&d, org), 0);
	org_id(org, 0);
	ck_assert_int_eq(qp_cert_allows_org(&d, org), 0);
	ck_assert_int_eq(qp_cert_allows_org(NULL, org), 0);

	/* Parse agrees with verify; the decoded cert re-encodes to the same
	 * bytes (canonical encoding, deterministic signature). */
	ck_assert_int_eq(qp_cert_parse(b, len, &p), 0);
	ck_assert_mem_eq(&p.orgs, &d.orgs, sizeof(d.orgs[0]) * 3);
	ck_assert_str_eq(p.name, d.name);
	build_ok(&d, &b2, &len2);
	ck_assert_uint_eq(len2, len);
	ck_assert_mem_eq(b2, b, len);
	free(b);
	free(b2);

	/* Every role; the role names. */
	for (int r = QP_ROLE_TECHNICIAN; r <= QP_ROLE_HUB; r++) {
		c.role = (qp_role)r;
		build_ok(&c, &b, &len);
		ck_assert_int_eq(qp_cert_verify(b, len, hub_pk, NOW, &d), 0);
		ck_assert_int_eq(d.role, r);
		free(b);
	}
	ck_assert_str_eq(qp_cert_role_name(QP_ROLE_TECHNICIAN), "technician");
	ck_assert_str_eq(qp_cert_role_name(QP_ROLE_RELAY), "relay");
	ck_assert_str_eq(qp_cert_role_name(QP_ROLE_HUB), "hub");
	ck_assert_str_eq(qp_cert_role_name(0), "unknown");
	ck_assert_str_eq(qp_cert_role_name(4), "unknown");
}
END_TEST

START_TEST(test_expiry)
{
	qp_cert c, d;
	uint8_t *b;
	size_t len;

	make_cert(&c, 1);
	c.issued_at = 1000;
	c.expires_at = 2000;
	build_ok(&c, &b, &len);
	ck_assert_int_eq(qp_cert_verify(b, len, hub_pk, 1999, &d), 0);
	/* Not yet valid is accepted: tablet clocks drift. */
	ck_assert_int_eq(qp_cert_verify(b, len, hub_pk, 10, &d), 0);
	poison(&d);
	ck_assert_int_eq(qp_cert_verify(b, len, hub_pk, 2000, &d), QP_EEXPIRED);
	ck_assert_int_eq(qp_cert_verify(b, len, hub_pk, NOW, &d), QP_EEXPIRED);
	assert_untouched(&d);
	/* Parse still reads it, to say when it expired. */
	ck_assert_int_eq(qp_cert_parse(b, len, &d), 0);
	ck_assert_uint_eq(d.expires_at, 2000);
	free(b);

	c.expires_at = 0; /* never */
	build_ok(&c, &b, &len);
	ck_assert_int_eq(qp_cert_verify(b, len, hub_pk, UINT64_MAX, &d), 0);
	ck_assert_uint_eq(d.expires_at, 0);
	free(b);

	/* expires_at must follow issued_at. */
	c.expires_at = 1000;
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	c.expires_at = 999;
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	/* A hand-made one with that flaw is refused even when signed. */
	c.expires_at = 2000;
	build_ok(&c, &b, &len);
	qp_put_be64(b + 86, 1000);
	resign(b, len, hub_sk);
	ck_assert_int_eq(qp_cert_verify(b, len, hub_pk, 0, &d), QP_EPROTO);
	free(b);
}
END_TEST

START_TEST(test_wrong_issuer)
{
	qp_cert c, d;
	uint8_t *b;
	size_t len;

	make_cert(&c, 2);
	build_ok(&c, &b, &len);
	poison(&d);
	ck_assert_int_eq(qp_cert_verify(b, len, other_pk, NOW, &d), QP_EAUTH);
	assert_untouched(&d);
	/* Issuer field rewritten to the other hub but signed by this one. */
	memcpy(b + 38, other_pk, QP_KEY_LEN);
	resign(b, len, hub_sk);
	ck_assert_int_eq(qp_cert_verify(b, len, other_pk, NOW, &d), QP_ESIG);
	ck_assert_int_eq(qp_cert_verify(b, len, hub_pk, NOW, &d), QP_EAUTH);
	free(b);
	/* The builder refuses an issuer that is not the signing key. */
	memcpy(c.issuer, other_pk, QP_KEY_LEN);
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
}
END_TEST

START_TEST(test_flips)
{
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	qp_cert c, d;
	uint8_t *b;
	size_t len;

	make_cert(&c, 4);
	build_ok(&c, &b, &len);
	for (size_t i = 0; i < len; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			int rc;
			b[i] ^= masks[m];
			poison(&d);
			rc = qp_cert_verify(b, len, hub_pk, NOW, &d);
			ck_assert_msg(rc < 0, "flip %02x at %zu accepted",
			              masks[m], i);
			assert_untouched(&d);
			if (i >= 38 && i < 70)
				ck_assert_int_eq(rc, QP_EAUTH);
			if (i >= len - 64)
				ck_assert_int_eq(rc, QP_ESIG);
			b[i] ^= masks[m];
		}
	}
	ck_assert_int_eq(qp_cert_verify(b, len, hub_pk, NOW, &d), 0);
	free(b);
}
END_TEST

START_TEST(test_truncated)
{
	qp_cert c, d;
	uint8_t *b, *big;
	size_t len;

	make_cert(&c, 3);
	build_ok(&c, &b, &len);
	for (size_t l = 0; l < len; l++) {
		/* A private copy, so ASan sees any read past l. */
		uint8_t *t = qp_xmalloc(l + 1);
		memcpy(t, b, l);
		poison(&d);
		ck_assert_int_eq(
		    qp_cert_verify(l ? t : NULL, l, hub_pk, NOW, &d),
		    QP_EPROTO);
		ck_assert_int_eq(qp_cert_parse(t, l, &d), QP_EPROTO);
		assert_untouched(&d);
		free(t);
	}
	/* One byte too many. */
	big = qp_xcalloc(QP_CERT_MAX + 2, 1);
	memcpy(big, b, len);
	ck_assert_int_eq(qp_cert_verify(big, len + 1, hub_pk, NOW, &d),
	                 QP_EPROTO);
	ck_assert_int_eq(qp_cert_verify(big, QP_CERT_MAX + 1, hub_pk, NOW, &d),
	                 QP_ETOOBIG);
	free(big);
	free(b);
}
END_TEST

START_TEST(test_limits)
{
	qp_cert c, d;
	uint8_t *b, org[QP_UUID_LEN];
	size_t len;

	/* The largest certificate: 64-byte name, 256 orgs. */
	make_cert(&c, QP_CERT_ORGS_MAX);
	memset(c.name, 'x', QP_CERT_NAME_MAX);
	c.name[QP_CERT_NAME_MAX] = '\0';
	build_ok(&c, &b, &len);
	ck_assert_uint_eq(len, QP_CERT_MAX);
	ck_assert_uint_eq(QP_CERT_MAX, 4321);
	ck_assert_int_eq(qp_cert_verify(b, len, hub_pk, NOW, &d), 0);
	ck_assert_uint_eq(d.norgs, QP_CERT_ORGS_MAX);
	org_id(org, QP_CERT_ORGS_MAX);
	ck_assert_int_eq(qp_cert_allows_org(&d, org), 1);
	free(b);

	/* Too many or no orgs, duplicates. */
	c.norgs = QP_CERT_ORGS_MAX + 1;
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	c.norgs = 0;
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	make_cert(&c, 3);
	memcpy(c.orgs[2], c.orgs[0], QP_UUID_LEN);
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);

	/* Names: empty, too long (not NUL-terminated within 65), control
	 * characters, C1 controls, invalid UTF-8. */
	make_cert(&c, 1);
	c.name[0] = '\0';
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	memset(c.name, 'y', sizeof(c.name));
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	strcpy(c.name, "tab\tlet");
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	strcpy(c.name, "esc\x1b[31m");
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	strcpy(c.name, "del\x7f");
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	strcpy(c.name, "c1\xc2\x85");
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	strcpy(c.name, "bad\xc3");
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	strcpy(c.name, "overlong\xc0\xaf");
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	strcpy(c.name, "ok \xc2\xa0 nbsp");
	build_ok(&c, &b, &len);
	free(b);

	/* Role, version, key pair. */
	make_cert(&c, 1);
	c.role = (qp_role)0;
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	c.role = (qp_role)4;
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	c.role = QP_ROLE_HUB;
	c.version = 2;
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &b, &len), QP_EINVAL);
	c.version = QP_CERT_VERSION;
	ck_assert_int_eq(qp_cert_build(NULL, hub_sk, &b, &len), QP_EINVAL);
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, NULL, &len), QP_EINVAL);
	ck_assert_int_eq(qp_cert_verify(NULL, 0, hub_pk, NOW, NULL), QP_EINVAL);
}
END_TEST

/* Hand-made encodings, each validly signed, that break one layout rule. */
START_TEST(test_layout_rules)
{
	qp_cert c, d;
	uint8_t *b, *t;
	size_t len, n;

	make_cert(&c, 2);
	strcpy(c.name, "abc");
	build_ok(&c, &b, &len);
	n = 3;
	t = qp_xmalloc(QP_CERT_MAX + 64);

#define EDIT_AND_CHECK(edit, want)                                             \
	do {                                                                   \
		memcpy(t, b, len);                                             \
		edit;                                                          \
		resign(t, len, hub_sk);                                        \
		poison(&d);                                                    \
		ck_assert_int_eq(qp_cert_verify(t, len, hub_pk, NOW, &d),      \
		                 want);                                        \
		assert_untouched(&d);                                          \
	} while (0)

	EDIT_AND_CHECK(t[4] = 2, QP_EVERSION);
	EDIT_AND_CHECK(t[4] = 0, QP_EVERSION);
	EDIT_AND_CHECK(t[5] = 0, QP_EPROTO);
	EDIT_AND_CHECK(t[5] = 4, QP_EPROTO);
	EDIT_AND_CHECK(t[94] = 0, QP_EPROTO);
	EDIT_AND_CHECK(t[94] = 65, QP_ETOOBIG);
	/* Name length 4 reads the org count from 0x02 and the first org
	 * byte: 513 orgs. */
	EDIT_AND_CHECK(t[94] = 4, QP_ETOOBIG);
	EDIT_AND_CHECK(t[94] = 60, QP_EPROTO);
	EDIT_AND_CHECK(t[95] = '\n', QP_EPROTO);
	EDIT_AND_CHECK(t[95] = 0, QP_EPROTO);
	EDIT_AND_CHECK(t[95] = 0xff, QP_EPROTO);
	/* Org count 0, 257 (above the limit), 3 (more than present). */
	EDIT_AND_CHECK((t[95 + n] = 0, t[96 + n] = 0), QP_EPROTO);
	EDIT_AND_CHECK((t[95 + n] = 1, t[96 + n] = 1), QP_ETOOBIG);
	EDIT_AND_CHECK((t[95 + n] = 0xff, t[96 + n] = 0xff), QP_ETOOBIG);
	EDIT_AND_CHECK(t[96 + n] = 3, QP_EPROTO);
	EDIT_AND_CHECK(t[96 + n] = 1, QP_EPROTO);
	/* Orgs out of order, or repeated. */
	EDIT_AND_CHECK(memcpy(t + 97 + n, b + 97 + n + 16, 16), QP_EPROTO);
	EDIT_AND_CHECK((memcpy(t + 97 + n, b + 97 + n + 16, 16),
	                memcpy(t + 97 + n + 16, b + 97 + n, 16)),
	               QP_EPROTO);
	/* Sanity: the unedited bytes, re-signed, still verify. */
	memcpy(t, b, len);
	resign(t, len, hub_sk);
	ck_assert_int_eq(qp_cert_verify(t, len, hub_pk, NOW, &d), 0);
#undef EDIT_AND_CHECK
	free(t);
	free(b);
}
END_TEST

static uint8_t *make_cert_bytes(const uint8_t *sk, size_t *len)
{
	qp_cert c;
	uint8_t *b;

	make_cert(&c, 2);
	memcpy(c.issuer, sk + 32, QP_KEY_LEN);
	ck_assert_int_eq(qp_cert_build(&c, sk, &b, len), 0);
	return b;
}

START_TEST(test_addr_split)
{
	static const char *bad[] = {
	    "",
	    "hub",
	    "hub:",
	    ":7400",
	    "hub:0",
	    "hub:65536",
	    "hub:99999",
	    "hub:123456",
	    "hub:07400",
	    "hub:74a0",
	    "hub:-1",
	    "hub:+1",
	    "hub :7400",
	    "hub\n:7400",
	    "h/b:7400",
	    "::1:7400",
	    "[::1:7400",
	    "::1]:7400",
	    "[]:7400",
	    "[x]:7400",
	    "[fe80::1%eth0]:7400",
	    "[::1]x:7400",
	    "hub:7400 ",
	    "hub:7400\n",
	    NULL,
	};
	char host[64], longaddr[300];
	uint16_t port = 0;

	ck_assert_int_eq(qp_token_addr_split("hub.example.pe:7400", host,
	                                     sizeof(host), &port),
	                 0);
	ck_assert_str_eq(host, "hub.example.pe");
	ck_assert_uint_eq(port, 7400);
	ck_assert_int_eq(
	    qp_token_addr_split("10.0.0.5:1", host, sizeof(host), &port), 0);
	ck_assert_str_eq(host, "10.0.0.5");
	ck_assert_uint_eq(port, 1);
	ck_assert_int_eq(qp_token_addr_split("[2001:db8::1]:65535", host,
	                                     sizeof(host), &port),
	                 0);
	ck_assert_str_eq(host, "2001:db8::1");
	ck_assert_uint_eq(port, 65535);
	ck_assert_int_eq(qp_token_addr_split("hub_1-a:80", NULL, 0, NULL), 0);
	/* Host does not fit the caller's buffer. */
	ck_assert_int_eq(
	    qp_token_addr_split("hub.example.pe:7400", host, 14, &port),
	    QP_EPROTO);
	ck_assert_int_eq(
	    qp_token_addr_split("hub.example.pe:7400", host, 15, &port), 0);
	for (size_t i = 0; bad[i] != NULL; i++)
		ck_assert_msg(qp_token_addr_split(bad[i], host, sizeof(host),
		                                  &port) == QP_EPROTO,
		              "accepted \"%s\"", bad[i]);
	ck_assert_int_eq(qp_token_addr_split(NULL, host, sizeof(host), &port),
	                 QP_EPROTO);
	/* 255 bytes is the limit. */
	memset(longaddr, 'a', 250);
	strcpy(longaddr + 250, ":7400");
	ck_assert_int_eq(qp_token_addr_split(longaddr, NULL, 0, NULL), 0);
	memset(longaddr, 'a', 251);
	strcpy(longaddr + 251, ":7400");
	ck_assert_int_eq(qp_token_addr_split(longaddr, NULL, 0, NULL),
	                 QP_EPROTO);
}
END_TEST

static void token_roundtrip(const char *addr)
{
	uint8_t *cert, *cert2, pk[QP_KEY_LEN];
	size_t certlen, certlen2;
	char *tok, *addr2;

	cert = make_cert_bytes(hub_sk, &certlen);
	ck_assert_int_eq(qp_token_encode(addr, hub_pk, cert, certlen, &tok), 0);
	ck_assert_msg(strncmp(tok, "quipu1:", 7) == 0, "%s", tok);
	ck_assert_ptr_null(strpbrk(tok, "=+/\n\r "));
	ck_assert_uint_le(strlen(tok), QP_TOKEN_MAX);
	ck_assert_int_eq(qp_token_decode(tok, &addr2, pk, &cert2, &certlen2),
	                 0);
	ck_assert_str_eq(addr2, addr);
	ck_assert_mem_eq(pk, hub_pk, QP_KEY_LEN);
	ck_assert_uint_eq(certlen2, certlen);
	ck_assert_mem_eq(cert2, cert, certlen);
	free(addr2);
	free(cert2);
	free(tok);
	free(cert);
}

START_TEST(test_token_roundtrip)
{
	qp_cert c;
	uint8_t *cert, *cert2, pk[QP_KEY_LEN];
	size_t certlen, certlen2;
	char addr[300], *tok, *addr2;

	token_roundtrip("hub.example.pe:7400");
	token_roundtrip("[2001:db8::1]:7400");
	token_roundtrip("h:1");
	memset(addr, 'a', 250);
	strcpy(addr + 250, ":7400");
	token_roundtrip(addr);

	/* The largest certificate fits comfortably. */
	make_cert(&c, QP_CERT_ORGS_MAX);
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &cert, &certlen), 0);
	ck_assert_int_eq(qp_token_encode(addr, hub_pk, cert, certlen, &tok), 0);
	ck_assert_uint_lt(strlen(tok), QP_TOKEN_MAX / 2);
	ck_assert_int_eq(qp_token_decode(tok, &addr2, pk, &cert2, &certlen2),
	                 0);
	ck_assert_uint_eq(certlen2, certlen);
	ck_assert_mem_eq(cert2, cert, certlen);
	free(addr2);
	free(cert2);
	free(tok);
	free(cert);

	/* An expired certificate still makes a token: join reports the
	 * expiry with qp_cert_verify. */
	make_cert(&c, 1);
	c.issued_at = 10;
	c.expires_at = 20;
	ck_assert_int_eq(qp_cert_build(&c, hub_sk, &cert, &certlen), 0);
	ck_assert_int_eq(qp_token_encode("hub:1", hub_pk, cert, certlen, &tok),
	                 0);
	ck_assert_int_eq(qp_token_decode(tok, &addr2, pk, &cert2, &certlen2),
	                 0);
	ck_assert_int_eq(qp_cert_verify(cert2, certlen2, pk, NOW, &c),
	                 QP_EEXPIRED);
	free(addr2);
	free(cert2);
	free(tok);
	free(cert);
}
END_TEST

START_TEST(test_token_encode_refuses)
{
	uint8_t *cert, *other_cert;
	size_t certlen, other_len;
	char *tok = NULL;

	cert = make_cert_bytes(hub_sk, &certlen);
	other_cert = make_cert_bytes(other_sk, &other_len);
	ck_assert_int_eq(qp_token_encode("hub", hub_pk, cert, certlen, &tok),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_token_encode("hub:0", hub_pk, cert, certlen, &tok),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_token_encode(NULL, hub_pk, cert, certlen, &tok),
	                 QP_EINVAL);
	/* A certificate from another hub, or garbage, or nothing. */
	ck_assert_int_eq(
	    qp_token_encode("hub:1", hub_pk, other_cert, other_len, &tok),
	    QP_EINVAL);
	ck_assert_int_eq(
	    qp_token_encode("hub:1", hub_pk, cert, certlen - 1, &tok),
	    QP_EINVAL);
	ck_assert_int_eq(qp_token_encode("hub:1", hub_pk, NULL, 0, &tok),
	                 QP_EINVAL);
	ck_assert_int_eq(qp_token_encode("hub:1", NULL, cert, certlen, &tok),
	                 QP_EINVAL);
	ck_assert_ptr_null(tok);
	free(cert);
	free(other_cert);
}
END_TEST

/* "quipu1:" + base64url of bin. */
static char *raw_token(const uint8_t *bin, size_t n)
{
	size_t b64 = sodium_base64_ENCODED_LEN(
	    n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *s = qp_xmalloc(7 + b64);
	memcpy(s, "quipu1:", 7);
	sodium_bin2base64(s + 7, b64, bin, n,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return s;
}

static int decode_rc(const char *tok)
{
	uint8_t pk[QP_KEY_LEN], *cert = (uint8_t *)"x";
	char *addr = (char *)"x";
	size_t certlen = 7;
	int rc = qp_token_decode(tok, &addr, pk, &cert, &certlen);
	if (rc == 0) {
		free(addr);
		free(cert);
	} else {
		/* Outputs untouched on error. */
		ck_assert_str_eq(addr, "x");
		ck_assert_uint_eq(certlen, 7);
	}
	return rc;
}

START_TEST(test_token_garbage)
{
	static const char *bad[] = {
	    "",
	    "quipu1:",
	    "quipu1",
	    "quipu2:AAAA",
	    "QUIPU1:AAAA",
	    " quipu1:AAAA",
	    "quipu1:A",
	    "quipu1:AA",
	    "quipu1:AAAA",
	    "quipu1:!!!!",
	    "quipu1:AAAA====",
	    NULL,
	};
	static const char b64chars[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t *cert, bin[1 + 20 + 32 + QP_CERT_MAX + 8];
	size_t certlen, n, toklen;
	char *tok, *t, *big;

	for (size_t i = 0; bad[i] != NULL; i++)
		ck_assert_msg(decode_rc(bad[i]) == QP_EPROTO, "accepted %s",
		              bad[i]);
	ck_assert_int_eq(decode_rc(NULL), QP_EINVAL);

	cert = make_cert_bytes(hub_sk, &certlen);
	ck_assert_int_eq(
	    qp_token_encode("hub.example.pe:7400", hub_pk, cert, certlen, &tok),
	    0);
	toklen = strlen(tok);
	ck_assert_int_eq(decode_rc(tok), 0);

	/* Trailing newline, padding, standard-alphabet characters. */
	t = qp_xmalloc(toklen + 4);
	snprintf(t, toklen + 4, "%s\n", tok);
	ck_assert_int_eq(decode_rc(t), QP_EPROTO);
	snprintf(t, toklen + 4, "%s==", tok);
	ck_assert_int_eq(decode_rc(t), QP_EPROTO);
	memcpy(t, tok, toklen + 1);
	t[20] = '+';
	ck_assert_int_eq(decode_rc(t), QP_EPROTO);
	t[20] = '/';
	ck_assert_int_eq(decode_rc(t), QP_EPROTO);

	/* Truncated at every length. */
	for (size_t l = 0; l < toklen; l++) {
		memcpy(t, tok, l);
		t[l] = '\0';
		ck_assert_msg(decode_rc(t) < 0, "prefix of %zu accepted", l);
	}
	/* A character with its high bit set (libsodium 1.0.18 alone would
	 * read 0xdf as '_'). */
	for (size_t i = 7; i < toklen; i++) {
		memcpy(t, tok, toklen + 1);
		t[i] = (char)(tok[i] | 0x80);
		ck_assert_msg(decode_rc(t) == QP_EPROTO, "high bit at %zu", i);
	}
	/* Any character replaced by another valid one.  The address is not
	 * signed (the token is a trust anchor carried out of band), so a
	 * change there may still decode, to another address; a change
	 * anywhere from the hub key on is refused. */
	for (size_t i = 7; i < toklen; i++) {
		size_t first_byte = (i - 7) * 6 / 8;
		uint8_t pk[QP_KEY_LEN], *c2;
		char *a2;
		size_t c2len;
		int rc;

		memcpy(t, tok, toklen + 1);
		t[i] = b64chars[(strchr(b64chars, tok[i]) - b64chars + 1) % 64];
		rc = qp_token_decode(t, &a2, pk, &c2, &c2len);
		if (first_byte >= 1 + strlen("hub.example.pe:7400")) {
			ck_assert_msg(rc < 0, "change at %zu accepted", i);
		} else if (rc == 0) {
			ck_assert_str_ne(a2, "hub.example.pe:7400");
			ck_assert_mem_eq(pk, hub_pk, QP_KEY_LEN);
			free(a2);
			free(c2);
		}
	}
	free(t);
	free(tok);

	/* Binaries that decode as base64 but break the token layout. */
	n = 0;
	bin[n++] = 5;
	memcpy(bin + n, "hub:1", 5);
	n += 5;
	memcpy(bin + n, hub_pk, QP_KEY_LEN);
	n += QP_KEY_LEN;
	memcpy(bin + n, cert, certlen);
	n += certlen;
	tok = raw_token(bin, n);
	ck_assert_int_eq(decode_rc(tok), 0);
	free(tok);
	/* Cert one byte short or one byte long. */
	tok = raw_token(bin, n - 1);
	ck_assert_int_eq(decode_rc(tok), QP_EPROTO);
	free(tok);
	bin[n] = 0;
	tok = raw_token(bin, n + 1);
	ck_assert_int_eq(decode_rc(tok), QP_EPROTO);
	free(tok);
	/* No cert at all; an address length past the end; length 0. */
	tok = raw_token(bin, 1 + 5 + QP_KEY_LEN);
	ck_assert_int_eq(decode_rc(tok), QP_EPROTO);
	free(tok);
	bin[0] = 0xff;
	tok = raw_token(bin, 40);
	ck_assert_int_eq(decode_rc(tok), QP_EPROTO);
	free(tok);
	bin[0] = 0;
	tok = raw_token(bin, n);
	ck_assert_int_eq(decode_rc(tok), QP_EPROTO);
	free(tok);
	/* NUL inside the address; an address without a port. */
	bin[0] = 5;
	bin[2] = '\0';
	tok = raw_token(bin, n);
	ck_assert_int_eq(decode_rc(tok), QP_EPROTO);
	free(tok);
	memcpy(bin + 1, "hub:0", 5);
	tok = raw_token(bin, n);
	ck_assert_int_eq(decode_rc(tok), QP_EPROTO);
	free(tok);
	/* A certificate that another hub signed, under this hub's key. */
	memcpy(bin + 1, "hub:1", 5);
	memcpy(bin + 6, other_pk, QP_KEY_LEN);
	tok = raw_token(bin, n);
	ck_assert_int_eq(decode_rc(tok), QP_EAUTH);
	free(tok);

	/* Longer than the limit: refused before decoding. */
	big = qp_xmalloc(QP_TOKEN_MAX + 2);
	memcpy(big, "quipu1:", 7);
	memset(big + 7, 'A', QP_TOKEN_MAX + 1 - 7);
	big[QP_TOKEN_MAX + 1] = '\0';
	ck_assert_int_eq(decode_rc(big), QP_ETOOBIG);
	big[QP_TOKEN_MAX] = '\0'; /* at the limit: decodes, too long a bin */
	ck_assert_int_eq(decode_rc(big), QP_EPROTO);
	free(big);
	free(cert);
}
END_TEST

/* A final character whose unused low bits are set must be refused, so a
 * token has exactly one spelling.  The address length varies the binary's
 * length mod 3, so the layout stays valid and only base64 can refuse. */
START_TEST(test_token_canonical)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	static const char *addrs[] = {"hub:1", "hub:12", "hub:123"};
	uint8_t *cert;
	size_t certlen, tl, binlen, idx;
	int tested = 0;
	char *tok;

	cert = make_cert_bytes(hub_sk, &certlen);
	for (size_t a = 0; a < 3; a++) {
		ck_assert_int_eq(
		    qp_token_encode(addrs[a], hub_pk, cert, certlen, &tok), 0);
		ck_assert_int_eq(decode_rc(tok), 0);
		binlen = 1 + strlen(addrs[a]) + QP_KEY_LEN + certlen;
		tl = strlen(tok);
		idx = (size_t)(strchr(alpha, tok[tl - 1]) - alpha);
		if (binlen % 3 != 0) {
			/* 4 unused bits after 1 byte, 2 after 2 bytes. */
			size_t unused = binlen % 3 == 1 ? 15 : 3;
			ck_assert_uint_eq(idx & unused, 0);
			tok[tl - 1] = alpha[idx | 1];
			ck_assert_int_eq(decode_rc(tok), QP_EPROTO);
			tested++;
		}
		free(tok);
	}
	ck_assert_int_eq(tested, 2);
	free(cert);
}
END_TEST

START_TEST(test_revocation)
{
	qp_revocation r, d;
	uint8_t *b, *t;
	size_t len;

	memset(&r, 0, sizeof(r));
	r.version = QP_REV_VERSION;
	memcpy(r.issuer, hub_pk, QP_KEY_LEN);
	memcpy(r.key, dev_pk, QP_KEY_LEN);
	r.after_seq = 117;
	r.at = NOW;
	ck_assert_int_eq(qp_revocation_build(&r, hub_sk, &b, &len), 0);
	ck_assert_uint_eq(len, QP_REV_LEN);
	ck_assert_mem_eq(b, "QPR1", 4);
	ck_assert_int_eq(qp_revocation_verify(b, len, hub_pk, &d), 0);
	ck_assert_uint_eq(d.version, QP_REV_VERSION);
	ck_assert_mem_eq(d.issuer, hub_pk, QP_KEY_LEN);
	ck_assert_mem_eq(d.key, dev_pk, QP_KEY_LEN);
	ck_assert_uint_eq(d.after_seq, 117);
	ck_assert_uint_eq(d.at, NOW);
	/* What the key signed up to after_seq stays valid. */
	ck_assert_int_eq(qp_revocation_covers(&d, dev_pk, 117), 0);
	ck_assert_int_eq(qp_revocation_covers(&d, dev_pk, 118), 1);
	ck_assert_int_eq(qp_revocation_covers(&d, hub_pk, 118), 0);
	ck_assert_int_eq(qp_revocation_covers(NULL, dev_pk, 118), 0);

	ck_assert_int_eq(qp_revocation_verify(b, len, other_pk, &d), QP_EAUTH);
	for (size_t i = 0; i < len; i++) {
		int rc;
		b[i] ^= 0x04;
		memset(&d, 0xa5, sizeof(d));
		rc = qp_revocation_verify(b, len, hub_pk, &d);
		ck_assert_msg(rc < 0, "flip at %zu accepted", i);
		ck_assert_uint_eq(d.after_seq, 0xa5a5a5a5a5a5a5a5ull);
		b[i] ^= 0x04;
	}
	b[4] = 2;
	ck_assert_int_eq(qp_revocation_verify(b, len, hub_pk, &d), QP_EVERSION);
	b[4] = QP_REV_VERSION;
	for (size_t l = 0; l < len; l++) {
		t = qp_xmalloc(l + 1);
		memcpy(t, b, l);
		ck_assert_int_eq(qp_revocation_verify(t, l, hub_pk, &d),
		                 QP_EPROTO);
		free(t);
	}
	t = qp_xcalloc(len + 1, 1);
	memcpy(t, b, len);
	ck_assert_int_eq(qp_revocation_verify(t, len + 1, hub_pk, &d),
	                 QP_ETOOBIG);
	free(t);
	free(b);

	/* The builder's checks. */
	memcpy(r.issuer, other_pk, QP_KEY_LEN);
	ck_assert_int_eq(qp_revocation_build(&r, hub_sk, &b, &len), QP_EINVAL);
	memcpy(r.issuer, hub_pk, QP_KEY_LEN);
	r.version = 0;
	ck_assert_int_eq(qp_revocation_build(&r, hub_sk, &b, &len), QP_EINVAL);
	ck_assert_int_eq(qp_revocation_verify(NULL, 0, hub_pk, &d), QP_EPROTO);
}
END_TEST

Suite *suite_cert(void)
{
	Suite *s = suite_create("cert");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_expiry);
	tcase_add_test(tc, test_wrong_issuer);
	tcase_add_test(tc, test_flips);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_layout_rules);
	tcase_add_test(tc, test_addr_split);
	tcase_add_test(tc, test_token_roundtrip);
	tcase_add_test(tc, test_token_encode_refuses);
	tcase_add_test(tc, test_token_garbage);
	tcase_add_test(tc, test_token_canonical);
	tcase_add_test(tc, test_revocation);
	suite_add_tcase(s, tc);
	return s;
}
