/*
 * fuzz_cert.c - libFuzzer target for proto/cert.c.
 *
 * Reads arbitrary bytes as a certificate and as a revocation (both checked
 * against a fixed hub key), and, up to the first NUL, as a join token and
 * a hub address.  Invariants: nothing crashes; qp_cert_parse and
 * qp_cert_verify agree on layout errors; whatever verifies re-encodes to
 * exactly the same bytes (the encodings are canonical and ed25519
 * signatures deterministic), and a token that decodes re-encodes to the
 * same text.
 *
 * The seed corpus tests/fuzz/corpus/cert is made by this file's own
 * generator (the hub key is derived from a fixed seed, so seeds stay
 * valid):
 *   cc -DQP_FUZZ_GEN -std=c11 -D_GNU_SOURCE -Iproto tests/fuzz/fuzz_cert.c \
 *      proto/cert.c proto/util.c proto/err.c -lsodium -ljansson \
 *      -o /tmp/gen_cert && /tmp/gen_cert tests/fuzz/corpus/cert
 * (token_highbit_char is a fuzzer find, kept as a regression seed.)
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "err.h"
#include "util.h"

#define FUZZ_NOW 1763899200u

static uint8_t hub_pk[QP_KEY_LEN], hub_sk[QP_SKEY_LEN];
static uint8_t other_pk[QP_KEY_LEN], other_sk[QP_SKEY_LEN];
static uint8_t dev_pk[QP_KEY_LEN], dev_sk[QP_SKEY_LEN];

static void init_once(void)
{
	static int done;
	uint8_t seed[32];

	if (done)
		return;
	if (sodium_init() < 0)
		abort();
	memset(seed, 'H', sizeof(seed));
	crypto_sign_seed_keypair(hub_pk, hub_sk, seed);
	memset(seed, 'O', sizeof(seed));
	crypto_sign_seed_keypair(other_pk, other_sk, seed);
	memset(seed, 'D', sizeof(seed));
	crypto_sign_seed_keypair(dev_pk, dev_sk, seed);
	done = 1;
}

static void check_cert(const uint8_t *data, size_t size)
{
	qp_cert c, p;
	uint8_t *b;
	size_t len;
	int rc, prc;

	rc = qp_cert_verify(data, size, hub_pk, FUZZ_NOW, &c);
	prc = qp_cert_parse(data, size, &p);
	if (prc != 0 && rc != prc)
		abort();
	if (rc != 0)
		return;
	if (c.norgs < 1 || c.norgs > QP_CERT_ORGS_MAX)
		abort();
	if (strlen(c.name) < 1 || strlen(c.name) > QP_CERT_NAME_MAX)
		abort();
	if (c.expires_at != 0 && FUZZ_NOW >= c.expires_at)
		abort();
	for (size_t i = 0; i < c.norgs; i++)
		if (!qp_cert_allows_org(&c, c.orgs[i]))
			abort();
	/* Parse reads the same fields verify does. */
	if (p.role != c.role || p.serial != c.serial ||
	    p.issued_at != c.issued_at || p.expires_at != c.expires_at ||
	    p.norgs != c.norgs || strcmp(p.name, c.name) != 0 ||
	    memcmp(p.device, c.device, QP_KEY_LEN) != 0 ||
	    memcmp(p.orgs, c.orgs, c.norgs * QP_UUID_LEN) != 0)
		abort();
	if (qp_cert_build(&c, hub_sk, &b, &len) != 0)
		abort();
	if (len != size || memcmp(b, data, size) != 0)
		abort();
	free(b);
}

static void check_revocation(const uint8_t *data, size_t size)
{
	qp_revocation r;
	uint8_t *b;
	size_t len;

	if (qp_revocation_verify(data, size, hub_pk, &r) != 0)
		return;
	if (qp_revocation_build(&r, hub_sk, &b, &len) != 0)
		abort();
	if (len != size || memcmp(b, data, size) != 0)
		abort();
	free(b);
}

static void check_token(const uint8_t *data, size_t size)
{
	size_t n = strnlen((const char *)data, size), certlen;
	char *s = malloc(n + 1), *addr, *again, host[QP_ADDR_MAX + 1];
	uint8_t pk[QP_KEY_LEN], *cert;
	uint16_t port;
	qp_cert c;

	if (s == NULL)
		abort();
	memcpy(s, data, n);
	s[n] = '\0';
	if (qp_token_addr_split(s, host, sizeof(host), &port) == 0) {
		if (port == 0 || host[0] == '\0')
			abort();
	}
	if (qp_token_decode(s, &addr, pk, &cert, &certlen) == 0) {
		if (qp_cert_verify(cert, certlen, pk, 0, &c) != 0)
			abort();
		if (qp_token_addr_split(addr, NULL, 0, NULL) != 0)
			abort();
		if (qp_token_encode(addr, pk, cert, certlen, &again) != 0)
			abort();
		if (strcmp(again, s) != 0)
			abort();
		free(again);
		free(addr);
		free(cert);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	check_cert(data, size);
	check_revocation(data, size);
	check_token(data, size);
	return 0;
}

#ifdef QP_FUZZ_GEN
static void put(const char *dir, const char *name, const void *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static uint8_t *gen_cert(const uint8_t *sk, size_t norgs, size_t namelen,
                         uint64_t expires, size_t *len)
{
	qp_cert c;
	uint8_t *b;

	memset(&c, 0, sizeof(c));
	c.version = QP_CERT_VERSION;
	c.role = QP_ROLE_TECHNICIAN;
	memcpy(c.device, dev_pk, QP_KEY_LEN);
	memcpy(c.issuer, sk + 32, QP_KEY_LEN);
	c.serial = 9;
	c.issued_at = FUZZ_NOW - 86400;
	c.expires_at = expires;
	if (namelen == 0)
		strcpy(c.name, "Técnica Ñahui");
	else
		memset(c.name, 'n', namelen);
	c.norgs = norgs;
	for (size_t i = 0; i < norgs; i++) {
		c.orgs[i][0] = 0x01;
		c.orgs[i][6] = 0x70;
		c.orgs[i][14] = (uint8_t)(i >> 8);
		c.orgs[i][15] = (uint8_t)i;
	}
	if (qp_cert_build(&c, sk, &b, len) != 0)
		abort();
	return b;
}

int main(int argc, char **argv)
{
	uint8_t *cert, *big, *old, *other, *rev;
	size_t certlen, biglen, oldlen, otherlen, revlen;
	qp_revocation r;
	char *tok;
	uint8_t junk[300];

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	init_once();
	cert = gen_cert(hub_sk, 3, 0, FUZZ_NOW + 365 * 86400u, &certlen);
	big = gen_cert(hub_sk, QP_CERT_ORGS_MAX, QP_CERT_NAME_MAX, 0, &biglen);
	old = gen_cert(hub_sk, 1, 0, FUZZ_NOW - 10, &oldlen);
	other = gen_cert(other_sk, 2, 0, 0, &otherlen);
	put(argv[1], "cert_valid", cert, certlen);
	put(argv[1], "cert_largest", big, biglen);
	put(argv[1], "cert_expired", old, oldlen);
	put(argv[1], "cert_other_hub", other, otherlen);
	put(argv[1], "cert_truncated", cert, certlen / 2);

	if (qp_token_encode("hub.example.pe:7400", hub_pk, cert, certlen,
	                    &tok) != 0)
		abort();
	put(argv[1], "token_valid", tok, strlen(tok));
	free(tok);
	if (qp_token_encode("[2001:db8::1]:65535", hub_pk, big, biglen, &tok) !=
	    0)
		abort();
	put(argv[1], "token_ipv6_largest", tok, strlen(tok));
	tok[strlen(tok) / 2] = '\0';
	put(argv[1], "token_truncated", tok, strlen(tok));
	free(tok);
	put(argv[1], "token_prefix_only", "quipu1:", 7);
	put(argv[1], "addr", "hub.example.pe:7400", 19);

	memset(&r, 0, sizeof(r));
	r.version = QP_REV_VERSION;
	memcpy(r.issuer, hub_pk, QP_KEY_LEN);
	memcpy(r.key, dev_pk, QP_KEY_LEN);
	r.after_seq = 117;
	r.at = FUZZ_NOW;
	if (qp_revocation_build(&r, hub_sk, &rev, &revlen) != 0)
		abort();
	put(argv[1], "revocation", rev, revlen);

	randombytes_buf_deterministic(
	    junk, sizeof(junk),
	    (const uint8_t *)"quipu-fuzz-cert-junk-seed-000000");
	memcpy(junk, "QPC1\x01\x01", 6);
	put(argv[1], "junk_magic", junk, sizeof(junk));
	put(argv[1], "empty", "", 0);
	free(cert);
	free(big);
	free(old);
	free(other);
	free(rev);
	return 0;
}
#endif
