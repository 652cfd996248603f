/*
 * fuzz_handshake.c - libFuzzer target for proto/handshake.c.
 *
 * The first input byte picks what the rest is fed to (mod 4):
 *   0  a fresh server's qp_hs_server_on_hello
 *   1  a server that answered a genuine HELLO: qp_hs_server_on_auth
 *   2  a client that sent HELLO: qp_hs_client_on_welcome
 *   3  the server side of an established session: qp_channel_open
 * Keys come from fixed seeds and libsodium's randomness is replaced by a
 * ChaCha20 stream restarted for every input, so each run replays the same
 * ephemeral keys and stream headers: genuine messages stay valid seeds and
 * the fuzzer reaches the code behind the signature checks.
 *
 * Invariants: nothing crashes or leaks; a failure leaves the handshake
 * failed with a reason and its secrets wiped; a WELCOME or AUTH the peer
 * accepts carries exactly the genuine signed bytes, and the session it
 * opens carries data both ways.
 *
 * The seed corpus tests/fuzz/corpus/handshake is made by this file's own
 * generator:
 *   cc -DQP_FUZZ_GEN -std=c11 -D_GNU_SOURCE -Iproto \
 *      tests/fuzz/fuzz_handshake.c proto/handshake.c proto/cert.c \
 *      proto/util.c proto/err.c -lsodium -ljansson \
 *      -o /tmp/gen_hs && /tmp/gen_hs tests/fuzz/corpus/handshake
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "err.h"
#include "handshake.h"
#include "util.h"

#define FUZZ_NOW 1763899200u

static uint8_t hub_pk[QP_KEY_LEN], hub_sk[QP_SKEY_LEN];
static uint8_t other_pk[QP_KEY_LEN], other_sk[QP_SKEY_LEN];
static uint8_t dev_pk[QP_KEY_LEN], dev_sk[QP_SKEY_LEN];
static uint8_t *cert;
static size_t certlen;

/* Deterministic randomness: ChaCha20 under a fixed key, one nonce per
 * request, the counter reset for every input. */
static uint64_t rng_calls;

static const char *rng_name(void)
{
	return "quipu-fuzz";
}

static void rng_buf(void *buf, size_t n)
{
	static const uint8_t key[crypto_stream_chacha20_KEYBYTES] = {'q', 'p'};
	uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];

	qp_put_be64(nonce, rng_calls++);
	crypto_stream_chacha20(buf, n, nonce, key);
}

static uint32_t rng_random(void)
{
	uint32_t v;
	rng_buf(&v, sizeof(v));
	return v;
}

static randombytes_implementation rng_impl = {
    .implementation_name = rng_name,
    .random = rng_random,
    .buf = rng_buf,
};

static int check_peer(void *ctx, const uint8_t peer_pk[QP_KEY_LEN],
                      const uint8_t *c, size_t clen, char *why, size_t whylen)
{
	qp_cert d;
	int rc;

	(void)ctx;
	(void)peer_pk;
	rc = qp_cert_verify(c, clen, hub_pk, FUZZ_NOW, &d);
	if (rc != 0)
		snprintf(why, whylen, "certificate: %s", qp_strerror(rc));
	return rc;
}

static uint8_t *make_cert(const uint8_t *sk, size_t *len)
{
	qp_cert c;
	uint8_t *b;

	memset(&c, 0, sizeof(c));
	c.version = QP_CERT_VERSION;
	c.role = QP_ROLE_TECHNICIAN;
	memcpy(c.device, dev_pk, QP_KEY_LEN);
	memcpy(c.issuer, sk + 32, QP_KEY_LEN);
	c.serial = 3;
	c.issued_at = FUZZ_NOW - 86400;
	strcpy(c.name, "tablet 7");
	c.norgs = 1;
	memset(c.orgs[0], 0x42, QP_UUID_LEN);
	if (qp_cert_build(&c, sk, &b, len) != 0)
		abort();
	return b;
}

static void init_once(void)
{
	static int done;
	uint8_t seed[32];

	if (done)
		return;
	/* Must precede sodium_init. */
	randombytes_set_implementation(&rng_impl);
	if (sodium_init() < 0)
		abort();
	memset(seed, 'H', sizeof(seed));
	crypto_sign_seed_keypair(hub_pk, hub_sk, seed);
	memset(seed, 'O', sizeof(seed));
	crypto_sign_seed_keypair(other_pk, other_sk, seed);
	memset(seed, 'D', sizeof(seed));
	crypto_sign_seed_keypair(dev_pk, dev_sk, seed);
	cert = make_cert(hub_sk, &certlen);
	done = 1;
}

static int zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

static void check_failed(const qp_hs *hs)
{
	if (hs->state != QP_HS_FAILED || hs->why[0] == '\0' ||
	    strlen(hs->why) >= sizeof(hs->why))
		abort();
	if (!zero(hs->my_sk, sizeof(hs->my_sk)) ||
	    !zero(hs->eph_sk, sizeof(hs->eph_sk)) ||
	    !zero(hs->rx_key, sizeof(hs->rx_key)) ||
	    !zero(hs->tx_key, sizeof(hs->tx_key)) || hs->msg != NULL)
		abort();
}

/* A genuine session, run up to stage: 1 HELLO made, 2 WELCOME made,
 * 3 AUTH made, 4 both established. */
typedef struct scene {
	qp_hs cl, sv;
	uint8_t *hello, *welcome, *auth;
	size_t hello_len, welcome_len, auth_len;
} scene;

static void scene_run(scene *s, int stage)
{
	memset(s, 0, sizeof(*s));
	if (qp_hs_client_init(&s->cl, dev_pk, dev_sk, hub_pk, cert, certlen) !=
	        0 ||
	    qp_hs_server_init(&s->sv, hub_pk, hub_sk, check_peer, NULL) != 0 ||
	    qp_hs_client_hello(&s->cl, &s->hello, &s->hello_len) != 0)
		abort();
	if (stage >= 2 &&
	    qp_hs_server_on_hello(&s->sv, s->hello, s->hello_len, &s->welcome,
	                          &s->welcome_len) != 0)
		abort();
	if (stage >= 3 &&
	    qp_hs_client_on_welcome(&s->cl, s->welcome, s->welcome_len,
	                            &s->auth, &s->auth_len) != 0)
		abort();
	if (stage >= 4 &&
	    qp_hs_server_on_auth(&s->sv, s->auth, s->auth_len) != 0)
		abort();
}

static void scene_free(scene *s)
{
	qp_hs_clear(&s->cl);
	qp_hs_clear(&s->sv);
	free(s->hello);
	free(s->welcome);
	free(s->auth);
}

/* Data must flow both ways through an established session. */
static void check_channel(qp_channel *a, qp_channel *b)
{
	static const uint8_t msg[] = "vector vector";
	uint8_t *ct, *pt;
	size_t ctlen, ptlen;

	for (int dir = 0; dir < 2; dir++) {
		qp_channel *from = dir ? b : a, *to = dir ? a : b;
		if (qp_channel_seal(from, msg, sizeof(msg), &ct, &ctlen) != 0)
			abort();
		if (qp_channel_open(to, ct, ctlen, &pt, &ptlen) != 0 ||
		    ptlen != sizeof(msg) || memcmp(pt, msg, ptlen) != 0)
			abort();
		free(ct);
		free(pt);
	}
}

static void fuzz_hello(const uint8_t *p, size_t n)
{
	qp_hs sv;
	uint8_t *w = NULL;
	size_t wl;

	if (qp_hs_server_init(&sv, hub_pk, hub_sk, check_peer, NULL) != 0)
		abort();
	if (qp_hs_server_on_hello(&sv, p, n, &w, &wl) == 0) {
		if (wl != QP_HS_WELCOME_LEN ||
		    sv.state != QP_HS_SERVER_WAIT_AUTH)
			abort();
		if (memcmp(sv.peer_pk, p + 34, QP_KEY_LEN) != 0)
			abort();
		free(w);
	} else {
		if (w != NULL)
			abort();
		check_failed(&sv);
	}
	qp_hs_clear(&sv);
}

static void fuzz_auth(const uint8_t *p, size_t n)
{
	scene s;

	scene_run(&s, 3);
	if (qp_hs_server_on_auth(&s.sv, p, n) == 0) {
		/* Only the genuine AUTH (up to its signature) can pass. */
		if (n != s.auth_len || memcmp(p, s.auth, 26) != 0)
			abort();
		check_channel(&s.cl.ch, &s.sv.ch);
	} else {
		check_failed(&s.sv);
	}
	scene_free(&s);
}

static void fuzz_welcome(const uint8_t *p, size_t n)
{
	scene s;
	uint8_t *auth = NULL;
	size_t auth_len;

	scene_run(&s, 2);
	if (qp_hs_client_on_welcome(&s.cl, p, n, &auth, &auth_len) == 0) {
		if (n != s.welcome_len || memcmp(p, s.welcome, 90) != 0)
			abort();
		if (qp_hs_server_on_auth(&s.sv, auth, auth_len) != 0)
			abort();
		check_channel(&s.cl.ch, &s.sv.ch);
		free(auth);
	} else {
		if (auth != NULL)
			abort();
		check_failed(&s.cl);
	}
	scene_free(&s);
}

static void fuzz_channel(const uint8_t *p, size_t n)
{
	scene s;
	uint8_t *pt = NULL;
	size_t ptlen;
	int rc;

	scene_run(&s, 4);
	rc = qp_channel_open(&s.sv.ch, p, n, &pt, &ptlen);
	if (rc == 0 || rc == QP_CHANNEL_FINAL) {
		if (pt == NULL || ptlen + QP_CHANNEL_ABYTES != n)
			abort();
		free(pt);
	} else if (rc != QP_ECRYPTO && rc != QP_EPROTO && rc != QP_ETOOBIG) {
		abort();
	} else if (qp_channel_open(&s.sv.ch, p, n, &pt, &ptlen) != QP_ECRYPTO) {
		abort(); /* a dead channel stays dead */
	}
	scene_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	rng_calls = 0;
	if (size == 0)
		return 0;
	switch (data[0] % 4) {
	case 0: fuzz_hello(data + 1, size - 1); break;
	case 1: fuzz_auth(data + 1, size - 1); break;
	case 2: fuzz_welcome(data + 1, size - 1); break;
	default: fuzz_channel(data + 1, size - 1); break;
	}
	return 0;
}

#ifdef QP_FUZZ_GEN
static void put(const char *dir, const char *name, uint8_t mode,
                const uint8_t *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fputc(mode, f) == EOF ||
	    (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	const char *dir = argv[1];
	uint8_t *b, *other_cert, junk[200];
	size_t bl, other_len;
	scene s;
	qp_hs cl;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	init_once();

	/* Each seed is made after the same randomness reset as its replay. */
	rng_calls = 0;
	scene_run(&s, 1);
	put(dir, "hello_valid", 0, s.hello, s.hello_len);
	put(dir, "hello_truncated", 0, s.hello, s.hello_len - 10);
	scene_free(&s);

	rng_calls = 0;
	other_cert = make_cert(other_sk, &other_len);
	if (qp_hs_client_init(&cl, dev_pk, dev_sk, hub_pk, other_cert,
	                      other_len) != 0 ||
	    qp_hs_client_hello(&cl, &b, &bl) != 0)
		abort();
	put(dir, "hello_other_hub", 0, b, bl);
	free(b);
	free(other_cert);
	qp_hs_clear(&cl);

	rng_calls = 0;
	scene_run(&s, 3);
	put(dir, "auth_valid", 1, s.auth, s.auth_len);
	scene_free(&s);

	rng_calls = 0;
	scene_run(&s, 2);
	put(dir, "welcome_valid", 2, s.welcome, s.welcome_len);
	scene_free(&s);

	if (qp_hs_refusal(QP_EEXPIRED, "certificate expired", &b, &bl) != 0)
		abort();
	put(dir, "welcome_refusal", 2, b, bl);
	put(dir, "auth_refusal", 1, b, bl);
	free(b);

	rng_calls = 0;
	scene_run(&s, 4);
	if (qp_channel_seal(&s.cl.ch, (const uint8_t *)"vector", 6, &b, &bl) !=
	    0)
		abort();
	put(dir, "channel_message", 3, b, bl);
	free(b);
	scene_free(&s);

	rng_calls = 0;
	scene_run(&s, 4);
	if (qp_channel_seal_final(&s.cl.ch, NULL, 0, &b, &bl) != 0)
		abort();
	put(dir, "channel_final", 3, b, bl);
	free(b);
	scene_free(&s);

	randombytes_buf_deterministic(
	    junk, sizeof(junk),
	    (const uint8_t *)"quipu-fuzz-handshake-junk-seed-0");
	put(dir, "junk_hello", 0, junk, sizeof(junk));
	put(dir, "junk_welcome", 2, junk, 154);
	put(dir, "junk_auth", 1, junk, 90);
	put(dir, "junk_channel", 3, junk, 40);
	put(dir, "empty_hello", 0, junk, 0);
	return 0;
}
#endif
