/*
 * qp_evil.c - a misbehaving sync peer for the integration tests
 * (tests/integration/t_sync.sh, case sync_hostile).  It speaks the real
 * handshake (proto/handshake.h) and exchange (proto/sync.h) with a hub,
 * using a device key the hub enrolled, and then breaks the rules.
 *
 * Usage: qp_evil MODE HOST:PORT KEYFILE TOKEN ORG [ORG2]
 *   KEYFILE  the device's 64-byte secret key (DIR/key)
 *   TOKEN    the device's join token (its certificate and the hub key)
 *   ORG      an org of the certificate (uuid text)
 * Modes that need an established session:
 *   good      send valid deltas seq 1..2 of feed (key, ORG); saved as
 *             good.1.bin, good.2.bin in the current directory
 *   replay    send good.1.bin and good.2.bin again
 *   fork      send another valid seq 1 (different bytes from good.1.bin)
 *   forged    send seq 3 whose signature was made by another key
 *   flip      send a valid seq 3 with one byte of its body flipped
 *   wrongorg  send a valid seq 1 of feed (key, ORG2): an org not in the
 *             certificate
 *   future    send a valid seq 3 (after good.2.bin) stamped 30 days ahead
 *             of the wall clock: a device whose date is wrong
 *   oversize  announce a 1 GiB frame after the handshake
 * Modes without a session:
 *   oversize_pre  announce a 1 GiB frame instead of HELLO
 *   random        send 64 KiB of random bytes
 *   stall         send half a HELLO, then wait (up to 60 s) for the hub to
 *                 close; prints the seconds it took
 *   fakehub PORT  (HOST:PORT unused but required) listen on 127.0.0.1:PORT
 *                 with a fresh key and answer every HELLO with a WELCOME
 *                 signed by that key: an impostor hub; runs until killed
 *
 * Output: one line "result: ..." saying what the hub answered:
 *   ack received=N   an ACK (N = its received count)
 *   error CODE REASON   an ERROR message
 *   refused CODE REASON a handshake REFUSE
 *   closed          the hub closed the connection
 *   timeout         nothing decisive within 10 s
 * Exit 0 when the exchange ran (whatever the hub answered), 2 on a local
 * failure (bad arguments, no connection).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cert.h"
#include "delta.h"
#include "err.h"
#include "frame.h"
#include "handshake.h"
#include "hlc.h"
#include "sync.h"
#include "uuid.h"

static uint8_t g_pk[QP_KEY_LEN], g_sk[QP_SKEY_LEN], g_hub[QP_KEY_LEN];
static uint8_t *g_cert;
static size_t g_certlen;
static qp_framer g_fr;

static void die(const char *m)
{
	fprintf(stderr, "qp_evil: %s\n", m);
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(const char *addr)
{
	char host[256], port[8];
	uint16_t p;
	struct addrinfo hints, *ai;
	int fd;

	if (qp_token_addr_split(addr, host, sizeof host, &p) != 0)
		die("bad address");
	snprintf(port, sizeof port, "%u", p);
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		die("cannot resolve");
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		die("cannot connect");
	freeaddrinfo(ai);
	return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the hub went away: the read side reports it */
		b += w;
		n -= (size_t)w;
	}
}

static void send_frame(int fd, const uint8_t *body, size_t len)
{
	uint8_t hdr[QP_FRAME_HDR];
	qp_frame_header(hdr, (uint32_t)len);
	send_all(fd, hdr, sizeof hdr);
	send_all(fd, body, len);
}

/* Next frame within deadline: 1 with body/len, 0 on close, -1 on timeout. */
static int read_frame(int fd, double deadline, const uint8_t **body,
		      uint32_t *len)
{
	for (;;) {
		uint8_t buf[65536];
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t r;
		int rc = qp_framer_next(&g_fr, body, len);
		double left;
		if (rc == 1)
			return 1;
		if (rc < 0)
			die("hub sent a bad frame");
		left = deadline - now_s();
		if (left <= 0)
			return -1;
		if (poll(&pf, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		r = recv(fd, buf, sizeof buf, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		if (qp_framer_feed(&g_fr, buf, (size_t)r) != 0)
			die("hub sent a frame over the limit");
	}
}

static void refused(const uint8_t *m, size_t n)
{
	int32_t code = 0;
	size_t wl;
	if (n < QP_HS_REFUSE_FIXED) {
		printf("result: refused ? (short REFUSE)\n");
		return;
	}
	code = (int32_t)((uint32_t)m[2] << 24 | (uint32_t)m[3] << 16 |
			 (uint32_t)m[4] << 8 | m[5]);
	wl = (size_t)m[6] << 8 | m[7];
	if (wl > n - QP_HS_REFUSE_FIXED)
		wl = n - QP_HS_REFUSE_FIXED;
	printf("result: refused %d %.*s\n", code, (int)wl, (const char *)m + 8);
}

/* Run the client handshake; returns 0 and fills *ch, or prints the result
 * and returns -1. */
static int handshake(int fd, qp_channel *ch)
{
	qp_hs hs;
	uint8_t *m = NULL, *auth = NULL;
	size_t n, an;
	const uint8_t *body;
	uint32_t blen;
	int rc;

	if (qp_hs_client_init(&hs, g_pk, g_sk, g_hub, g_cert, g_certlen) != 0 ||
	    qp_hs_client_hello(&hs, &m, &n) != 0)
		die("handshake init");
	send_frame(fd, m, n);
	free(m);
	rc = read_frame(fd, now_s() + 10, &body, &blen);
	if (rc <= 0) {
		printf("result: %s\n", rc == 0 ? "closed" : "timeout");
		qp_hs_clear(&hs);
		return -1;
	}
	if (blen >= 2 && body[1] == QP_HS_REFUSE) {
		refused(body, blen);
		qp_hs_clear(&hs);
		return -1;
	}
	if (qp_hs_client_on_welcome(&hs, body, blen, &auth, &an) != 0) {
		printf("result: handshake failed: %s\n", hs.why);
		qp_hs_clear(&hs);
		return -1;
	}
	send_frame(fd, auth, an);
	free(auth);
	*ch = hs.ch;
	qp_hs_clear(&hs);
	return 0;
}

static void send_msg(int fd, qp_channel *ch, const uint8_t *pt, size_t n)
{
	uint8_t *ct;
	size_t cn;
	if (qp_channel_seal(ch, pt, n, &ct, &cn) != 0)
		die("seal");
	send_frame(fd, ct, cn);
	free(ct);
}

/* Send an empty VECTOR, then the deltas, then wait for ACK/ERROR/close. */
static void exchange(int fd, qp_channel *ch, uint8_t **d, size_t *dl, size_t n)
{
	uint8_t *m;
	size_t mn;
	double deadline = now_s() + 10;

	if (qp_sync_encode_vector(NULL, 0, 0, &m, &mn) != 0)
		die("encode vector");
	send_msg(fd, ch, m, mn);
	free(m);
	if (n > 0) {
		if (qp_sync_encode_deltas((const uint8_t *const *)d, dl, n, &m,
					  &mn) != 0)
			die("encode deltas");
		send_msg(fd, ch, m, mn);
		free(m);
	}
	for (;;) {
		const uint8_t *body;
		uint32_t blen;
		uint8_t *pt;
		size_t pn;
		qp_sync_msg sm;
		int rc = read_frame(fd, deadline, &body, &blen);
		if (rc <= 0) {
			printf("result: %s\n", rc == 0 ? "closed" : "timeout");
			return;
		}
		rc = qp_channel_open(ch, body, blen, &pt, &pn);
		if (rc == QP_CHANNEL_FINAL) {
			free(pt);
			printf("result: closed\n");
			return;
		}
		if (rc != 0) {
			printf("result: hub message does not open (%d)\n", rc);
			return;
		}
		memset(&sm, 0, sizeof sm);
		rc = qp_sync_decode(pt, pn, &sm);
		if (rc == QP_SYNC_ACK && n > 0) {
			printf("result: ack received=%llu\n",
			       (unsigned long long)sm.received);
			qp_sync_msg_free(&sm);
			free(pt);
			return;
		}
		if (rc == QP_SYNC_ERROR) {
			printf("result: error %d %s\n", sm.code, sm.reason);
			qp_sync_msg_free(&sm);
			free(pt);
			return;
		}
		if (rc == QP_SYNC_DONE && n == 0) {
			printf("result: done\n");
			qp_sync_msg_free(&sm);
			free(pt);
			return;
		}
		if (rc > 0)
			qp_sync_msg_free(&sm);
		free(pt);
	}
}

/* What the device's clock adds to the wall clock (mode future). */
static uint64_t g_ahead_ms;

/* A valid delta of feed (g_pk, org) numbered seq after prev, holding one
 * producer created with the given name. */
static void make_delta(const uint8_t org[QP_UUID_LEN], uint64_t seq,
		       const uint8_t prev[QP_HASH_LEN], const char *name,
		       unsigned dni, uint8_t **out, size_t *outlen)
{
	static qp_uuid_gen ug;
	static qp_hlc hlc;
	uint64_t wall = qp_hlc_wall_ms() + g_ahead_ms;
	qp_feed f;
	qp_op op;
	char dnis[16];

	memset(&op, 0, sizeof op);
	memcpy(f.author, g_pk, QP_KEY_LEN);
	memcpy(f.org, org, QP_UUID_LEN);
	op.type = QP_OP_CREATE;
	qp_uuid_v7(&ug, wall, op.id);
	snprintf(op.kind, sizeof op.kind, "producer");
	op.hlc = qp_hlc_now(&hlc, wall);
	op.base = 0;
	snprintf(dnis, sizeof dnis, "%08u", dni);
	op.fields = json_pack("{s:s, s:s, s:s}", "dni", dnis, "name", name,
			      "sex", "F");
	if (qp_delta_build(&f, seq, prev, &op, 1, g_sk, out, outlen) != 0)
		die("delta build");
	qp_op_clear(&op);
}

static void save(const char *path, const uint8_t *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(b, 1, n, f) != n || fclose(f) != 0)
		die("cannot save a delta");
}

static uint8_t *load(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = malloc(QP_DELTA_MAX);
	if (f == NULL || b == NULL)
		die("cannot load a delta (run mode good first)");
	*n = fread(b, 1, QP_DELTA_MAX, f);
	fclose(f);
	return b;
}

static int accept_all(void *ctx, const uint8_t peer_pk[QP_KEY_LEN],
		      const uint8_t *cert, size_t certlen, char *why,
		      size_t whylen)
{
	(void)ctx, (void)peer_pk, (void)cert, (void)certlen, (void)why,
		(void)whylen;
	return 0;
}

static void fakehub(const char *port)
{
	uint8_t pk[QP_KEY_LEN], sk[QP_SKEY_LEN];
	struct sockaddr_in sa;
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	qp_key_generate(pk, sk);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(port));
	sa.sin_addr.s_addr = htonl(0x7f000001);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(lfd, 16) != 0)
		die("fakehub: cannot listen");
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		qp_hs hs;
		const uint8_t *body;
		uint32_t blen;
		uint8_t *w;
		size_t wn;
		if (fd < 0)
			continue;
		qp_framer_free(&g_fr);
		qp_framer_init(&g_fr, QP_FRAME_MAX_DEFAULT);
		if (qp_hs_server_init(&hs, pk, sk, accept_all, NULL) == 0 &&
		    read_frame(fd, now_s() + 10, &body, &blen) == 1 &&
		    qp_hs_server_on_hello(&hs, body, blen, &w, &wn) == 0) {
			send_frame(fd, w, wn);
			free(w);
			printf("welcomed a client\n");
			fflush(stdout);
			(void)read_frame(fd, now_s() + 5, &body, &blen);
		}
		qp_hs_clear(&hs);
		close(fd);
	}
}

int main(int argc, char **argv)
{
	const char *mode;
	uint8_t org[QP_UUID_LEN], zero[QP_HASH_LEN] = {0};
	uint8_t *d[4];
	size_t dl[4], n = 0, i;
	qp_channel ch;
	char *addr = NULL;
	int fd;

	if (argc < 2)
		die("usage: qp_evil MODE HOST:PORT KEYFILE TOKEN ORG [ORG2]");
	mode = argv[1];
	if (qp_crypto_init() != 0)
		die("sodium");
	qp_framer_init(&g_fr, QP_FRAME_MAX_DEFAULT);
	if (strcmp(mode, "fakehub") == 0) {
		if (argc < 3)
			die("fakehub PORT");
		fakehub(argv[2]);
	}
	if (argc < 6)
		die("usage: qp_evil MODE HOST:PORT KEYFILE TOKEN ORG [ORG2]");
	{
		FILE *f = fopen(argv[3], "rb");
		if (f == NULL || fread(g_sk, 1, QP_SKEY_LEN, f) != QP_SKEY_LEN)
			die("cannot read the key file");
		fclose(f);
		memcpy(g_pk, g_sk + 32, QP_KEY_LEN);
	}
	if (qp_token_decode(argv[4], &addr, g_hub, &g_cert, &g_certlen) != 0)
		die("bad token");
	free(addr);
	if (qp_uuid_parse(argv[5], org) != 0)
		die("bad org");
	fd = dial(argv[2]);

	if (strcmp(mode, "random") == 0) {
		uint8_t junk[65536];
		const uint8_t *body;
		uint32_t blen;
		int rc;
		randombytes_buf(junk, sizeof junk);
		send_all(fd, junk, sizeof junk);
		qp_framer_free(&g_fr);
		qp_framer_init(&g_fr, QP_FRAME_MAX_DEFAULT);
		rc = read_frame(fd, now_s() + 15, &body, &blen);
		printf("result: %s\n", rc == 0 ? "closed" :
			rc < 0 ? "timeout" : "answered");
		return 0;
	}
	if (strcmp(mode, "oversize_pre") == 0) {
		const uint8_t *body;
		uint32_t blen;
		int rc;
		uint8_t hdr[QP_FRAME_HDR] = {0x40, 0, 0, 0};
		send_all(fd, hdr, sizeof hdr);
		send_all(fd, zero, sizeof zero);
		rc = read_frame(fd, now_s() + 15, &body, &blen);
		if (rc == 1 && blen >= 2 && body[1] == QP_HS_REFUSE)
			refused(body, blen);
		else
			printf("result: %s\n", rc == 0 ? "closed" :
				rc < 0 ? "timeout" : "answered");
		return 0;
	}
	if (strcmp(mode, "stall") == 0) {
		qp_hs hs;
		uint8_t *m, hdr[QP_FRAME_HDR];
		size_t mn;
		double t0 = now_s();
		const uint8_t *body;
		uint32_t blen;
		int rc;
		if (qp_hs_client_init(&hs, g_pk, g_sk, g_hub, g_cert,
				      g_certlen) != 0 ||
		    qp_hs_client_hello(&hs, &m, &mn) != 0)
			die("hello");
		qp_frame_header(hdr, (uint32_t)mn);
		send_all(fd, hdr, sizeof hdr);
		send_all(fd, m, mn / 2);
		free(m);
		qp_hs_clear(&hs);
		rc = read_frame(fd, t0 + 60, &body, &blen);
		if (rc == 1 && blen >= 2 && body[1] == QP_HS_REFUSE) {
			rc = read_frame(fd, t0 + 60, &body, &blen);
		}
		printf("result: %s after %.1f s\n",
		       rc == 0 ? "closed" : rc < 0 ? "timeout" : "answered",
		       now_s() - t0);
		return 0;
	}

	if (handshake(fd, &ch) != 0)
		return 0;

	if (strcmp(mode, "oversize") == 0) {
		const uint8_t *body;
		uint32_t blen;
		int rc;
		uint8_t hdr[QP_FRAME_HDR] = {0x40, 0, 0, 0};
		send_all(fd, hdr, sizeof hdr);
		send_all(fd, zero, sizeof zero);
		/* The hub may still send what it had queued (its VECTOR...):
		 * read until it closes. */
		do
			rc = read_frame(fd, now_s() + 15, &body, &blen);
		while (rc == 1);
		printf("result: %s\n", rc == 0 ? "closed" : "timeout");
		return 0;
	}
	if (strcmp(mode, "good") == 0) {
		uint8_t h[QP_HASH_LEN];
		make_delta(org, 1, zero, "Malvada Uno", 61000001, &d[0], &dl[0]);
		qp_delta_hash(d[0], dl[0], h);
		make_delta(org, 2, h, "Malvada Dos", 61000002, &d[1], &dl[1]);
		save("good.1.bin", d[0], dl[0]);
		save("good.2.bin", d[1], dl[1]);
		n = 2;
	} else if (strcmp(mode, "replay") == 0) {
		d[0] = load("good.1.bin", &dl[0]);
		d[1] = load("good.2.bin", &dl[1]);
		n = 2;
	} else if (strcmp(mode, "fork") == 0) {
		make_delta(org, 1, zero, "Malvada Bifurcada", 61000009, &d[0],
			   &dl[0]);
		n = 1;
	} else if (strcmp(mode, "forged") == 0 || strcmp(mode, "flip") == 0) {
		uint8_t h[QP_HASH_LEN], *g2;
		size_t g2n;
		g2 = load("good.2.bin", &g2n);
		qp_delta_hash(g2, g2n, h);
		free(g2);
		make_delta(org, 3, h, "Malvada Tres", 61000003, &d[0], &dl[0]);
		if (strcmp(mode, "forged") == 0) {
			uint8_t opk[QP_KEY_LEN], osk[QP_SKEY_LEN];
			qp_key_generate(opk, osk);
			crypto_sign_detached(d[0] + dl[0] - QP_DELTA_SIG, NULL,
					     d[0], dl[0] - QP_DELTA_SIG, osk);
		} else {
			d[0][QP_DELTA_HDR] ^= 0x20;
		}
		n = 1;
	} else if (strcmp(mode, "future") == 0) {
		uint8_t h[QP_HASH_LEN], *g2;
		size_t g2n;
		g2 = load("good.2.bin", &g2n);
		qp_delta_hash(g2, g2n, h);
		free(g2);
		g_ahead_ms = 30ull * 24 * 3600 * 1000;
		make_delta(org, 3, h, "Reloj Adelantado", 61000005, &d[0],
			   &dl[0]);
		n = 1;
	} else if (strcmp(mode, "wrongorg") == 0) {
		uint8_t org2[QP_UUID_LEN];
		if (argc < 7 || qp_uuid_parse(argv[6], org2) != 0)
			die("wrongorg needs ORG2");
		make_delta(org2, 1, zero, "Malvada Ajena", 61000004, &d[0],
			   &dl[0]);
		n = 1;
	} else {
		die("unknown mode");
	}
	exchange(fd, &ch, d, dl, n);
	for (i = 0; i < n; i++)
		free(d[i]);
	qp_channel_clear(&ch);
	close(fd);
	free(g_cert);
	qp_framer_free(&g_fr);
	return 0;
}
