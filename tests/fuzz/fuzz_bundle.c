/*
 * fuzz_bundle.c - libFuzzer target for proto/bundle.c: the bundle reader
 * (open, next until the end, finish) on arbitrary bytes.
 *
 * Invariants: nothing crashes or leaks; every failure is QP_EPROTO,
 * QP_ETOOBIG or QP_EVERSION with a one-line reason in r.why, and stays
 * failed; the deltas handed out lie inside the input with lengths in
 * bounds; a bundle that reads whole is written again, by qp_bundle_writer
 * from what was read (creator, time, since vector, deltas), to exactly the
 * input bytes.
 *
 * The seed corpus tests/fuzz/corpus/bundle is made by this file's own
 * generator (keys from fixed seeds, so the seeds are the same each run):
 *   cc -DQP_FUZZ_GEN -std=c11 -D_GNU_SOURCE -Iproto \
 *      tests/fuzz/fuzz_bundle.c proto/bundle.c proto/sync.c proto/delta.c \
 *      proto/mpjson.c proto/util.c proto/err.c $(pkg-config --cflags \
 *      --libs libsodium jansson libzstd msgpack) -o /tmp/gen_bundle && \
 *      /tmp/gen_bundle tests/fuzz/corpus/bundle
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "delta.h"
#include "err.h"
#include "sync.h"
#include "util.h"

typedef struct membuf {
	uint8_t *p;
	size_t n, cap;
} membuf;

static int mem_write(void *ctx, const uint8_t *buf, size_t len)
{
	membuf *m = ctx;

	if (m->n + len > m->cap) {
		m->cap = (m->n + len) * 2;
		m->p = qp_xrealloc(m->p, m->cap);
	}
	memcpy(m->p + m->n, buf, len);
	m->n += len;
	return 0;
}

static void check_failed(const qp_bundle_reader *r, int rc)
{
	if (rc != QP_EPROTO && rc != QP_ETOOBIG && rc != QP_EVERSION)
		abort();
	if (r->rc != rc || r->why[0] == '\0' ||
	    strlen(r->why) >= sizeof(r->why) || strchr(r->why, '\n') != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t **d = NULL;
	size_t *len = NULL, n = 0, cap = 0;
	qp_bundle_reader r;
	qp_bundle_writer *w;
	membuf m = {0};
	const uint8_t *p;
	size_t pl;
	int rc;

	rc = qp_bundle_reader_open(&r, data, size);
	while (rc == 0 && (rc = qp_bundle_reader_next(&r, &p, &pl)) == 1) {
		if (p < data || pl > size || (size_t)(p - data) > size - pl ||
		    pl < QP_SYNC_DELTA_MIN || pl > QP_DELTA_MAX ||
		    n >= r.ndeltas)
			abort();
		/* Deltas are at least QP_SYNC_DELTA_MIN bytes, so n is
		 * bounded by the input size. */
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			d = qp_xrealloc(d, cap * sizeof(*d));
			len = qp_xrealloc(len, cap * sizeof(*len));
		}
		d[n] = p;
		len[n++] = pl;
		rc = 0;
	}
	if (rc == 0)
		rc = qp_bundle_reader_finish(&r);
	if (rc != 0) {
		check_failed(&r, rc);
		if (qp_bundle_reader_next(&r, &p, &pl) != rc ||
		    qp_bundle_reader_finish(&r) != rc)
			abort(); /* sticky */
		goto out;
	}
	if (n != r.ndeltas || r.why[0] != '\0')
		abort();
	if (qp_bundle_writer_open(mem_write, &m, r.creator, r.created_at,
	                          r.ndeltas, &r.since, r.trust, r.ntrust, &w) != 0)
		abort();
	for (size_t i = 0; i < n; i++)
		if (qp_bundle_writer_add(w, d[i], len[i]) != 0)
			abort();
	/* A version 2 bundle is written back byte for byte; a version 1
	 * one (no trust items) comes back as version 2, 4 bytes longer. */
	if (qp_bundle_writer_finish(w) != 0 ||
	    (r.version == QP_BUNDLE_VERSION &&
	     (m.n != size || memcmp(m.p, data, size) != 0)) ||
	    (r.version == 1 && m.n != size + 4))
		abort();
	qp_bundle_writer_free(w);
out:
	qp_bundle_reader_free(&r);
	free(m.p);
	free(d);
	free(len);
	return 0;
}

#ifdef QP_FUZZ_GEN
#include <sodium.h>

static void put(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	const char *dir = argv[1];
	uint8_t pk[QP_KEY_LEN], sk[QP_SKEY_LEN], seed[32];
	uint8_t prev[QP_HASH_LEN] = {0}, *d[3];
	size_t dlen[3];
	qp_bundle_writer *w;
	qp_vv since;
	qp_feed feed;
	membuf m;
	qp_op op;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	if (qp_crypto_init() != 0)
		abort();
	memset(seed, 'B', sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	memcpy(feed.author, pk, QP_KEY_LEN);
	memset(feed.org, 0x42, QP_UUID_LEN);
	for (int i = 0; i < 3; i++) {
		memset(&op, 0, sizeof(op));
		op.type = QP_OP_VOID;
		memset(op.id, i + 1, QP_UUID_LEN);
		strcpy(op.kind, "lot_event");
		op.hlc = (uint64_t)(1763899200000 + i) << 16;
		op.reason = qp_xstrdup("weighed twice");
		if (qp_delta_build(&feed, (uint64_t)i + 1, prev, &op, 1, sk,
		                   &d[i], &dlen[i]) != 0)
			abort();
		qp_delta_hash(d[i], dlen[i], prev);
		qp_op_clear(&op);
	}
	qp_vv_init(&since);
	feed.org[0] = 0x41;
	if (qp_vv_set(&since, &feed, 7) != 0)
		abort();

	for (int v = 0; v < 2; v++) {
		size_t nd = v ? 3 : 0;
		/* Trust items are not verified by the reader: any bytes do. */
		static const uint8_t cert[40] = {1, 2, 3}, rev[20] = {4, 5};
		const qp_bundle_item trust[2] = {
			{QP_BUNDLE_CERT, cert, sizeof cert},
			{QP_BUNDLE_REVOCATION, rev, sizeof rev}};

		memset(&m, 0, sizeof(m));
		if (qp_bundle_writer_open(mem_write, &m, pk, 1763899200,
		                          (uint32_t)nd, v ? &since : NULL,
		                          v ? trust : NULL, v ? 2 : 0, &w) != 0)
			abort();
		for (size_t i = 0; i < nd; i++)
			if (qp_bundle_writer_add(w, d[i], dlen[i]) != 0)
				abort();
		if (qp_bundle_writer_finish(w) != 0)
			abort();
		qp_bundle_writer_free(w);
		if (v == 0) {
			put(dir, "empty", m.p, m.n);
		} else {
			put(dir, "three", m.p, m.n);
			put(dir, "truncated", m.p, m.n - 100);
			put(dir, "no_trailer", m.p, m.n - QP_BUNDLE_TRAILER);
			m.p[m.n - 1] ^= 1;
			put(dir, "bad_checksum", m.p, m.n);
		}
		free(m.p);
	}
	put(dir, "bad_magic", (const uint8_t *)"QPD1\x01", 5);
	put(dir, "bad_version", (const uint8_t *)"QPB1\x03", 5);
	qp_vv_free(&since);
	for (int i = 0; i < 3; i++)
		free(d[i]);
	return 0;
}
#endif
