/*
 * fuzz_sync.c - libFuzzer target for proto/sync.c: qp_sync_decode on
 * arbitrary bytes.
 *
 * Invariants: nothing crashes or leaks; a refusal is QP_EPROTO, QP_ETOOBIG
 * or QP_EVERSION; a message that decodes re-encodes to exactly the input
 * bytes (the encoding is canonical); its views lie inside the input and
 * its counts within the limits; the entries of a VECTOR or ACK are strictly
 * ascending and, merged into a version vector, are all missing from an
 * empty one (those with seq > 0) and nothing is missing from itself.
 *
 * The seed corpus tests/fuzz/corpus/sync is made by this file's own
 * generator (keys from fixed seeds, so the deltas are the same each run):
 *   cc -DQP_FUZZ_GEN -std=c11 -D_GNU_SOURCE -Iproto tests/fuzz/fuzz_sync.c \
 *      proto/sync.c proto/delta.c proto/cert.c proto/mpjson.c proto/util.c \
 *      proto/err.c $(pkg-config --cflags --libs libsodium jansson libzstd \
 *      msgpack) -o /tmp/gen_sync && /tmp/gen_sync tests/fuzz/corpus/sync
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "delta.h"
#include "err.h"
#include "sync.h"
#include "util.h"

static void check_entries(const qp_sync_msg *m)
{
	qp_vv vv, empty;
	qp_vv_range *r;
	size_t n, live = 0;

	if (m->nentries > QP_SYNC_VECTOR_MAX ||
	    (m->nentries == 0) != (m->entries == NULL))
		abort();
	qp_vv_init(&vv);
	qp_vv_init(&empty);
	if (qp_vv_merge(&vv, m->entries, m->nentries) != 0 ||
	    vv.n != m->nentries)
		abort();
	for (size_t i = 0; i < m->nentries; i++) {
		if (qp_vv_get(&vv, &m->entries[i].feed) != m->entries[i].seq)
			abort();
		live += m->entries[i].seq > 0;
	}
	if (qp_vv_missing(&vv, &empty, NULL, 0, &r, &n) != 0 || n != live)
		abort();
	for (size_t i = 0; i < n; i++)
		if (r[i].from != 0 || r[i].to != qp_vv_get(&vv, &r[i].feed))
			abort();
	free(r);
	if (qp_vv_missing(&vv, &vv, NULL, 0, &r, &n) != 0 || n != 0)
		abort();
	qp_vv_free(&vv);
}

static void check_items(const qp_sync_msg *m, const uint8_t *data, size_t size)
{
	size_t bytes = 0;

	if ((m->nitems == 0) != (m->items == NULL))
		abort();
	for (size_t i = 0; i < m->nitems; i++) {
		if (m->items[i] < data || m->lens[i] > size ||
		    (size_t)(m->items[i] - data) > size - m->lens[i])
			abort();
		bytes += m->lens[i];
		if (m->type == QP_SYNC_REVOKES && m->lens[i] != QP_REV_LEN)
			abort();
		if ((m->type == QP_SYNC_CERTS || m->type == QP_SYNC_CHAIN) &&
		    (m->lens[i] < QP_CERT_MIN || m->lens[i] > QP_CERT_MAX))
			abort();
		if (m->type == QP_SYNC_DELTAS) {
			if (m->lens[i] < QP_SYNC_DELTA_MIN ||
			    m->lens[i] > QP_DELTA_MAX)
				abort();
			/* The receiver's next step; must not crash. */
			(void)qp_delta_verify(m->items[i], m->lens[i], NULL);
		}
	}
	if (m->type == QP_SYNC_DELTAS &&
	    (m->nitems == 0 || m->nitems > QP_SYNC_BATCH_MAX ||
	     (m->nitems > 1 && bytes > QP_SYNC_BATCH_BYTES)))
		abort();
	if (m->type == QP_SYNC_REVOKES && m->nitems > QP_SYNC_REV_MAX)
		abort();
	if (m->type == QP_SYNC_CERTS && m->nitems > QP_SYNC_CERTS_MAX)
		abort();
	if (m->type == QP_SYNC_CHAIN && m->nitems > QP_SYNC_CHAIN_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	qp_sync_msg m;
	uint8_t *again;
	size_t alen;
	static int init;
	int rc;

	if (!init) {
		if (qp_crypto_init() != 0)
			abort();
		init = 1;
	}
	rc = qp_sync_decode(data, size, &m);
	if (rc < 0) {
		if (rc != QP_EPROTO && rc != QP_ETOOBIG && rc != QP_EVERSION)
			abort();
		return 0;
	}
	if (rc != m.type || rc < QP_SYNC_VECTOR || rc > QP_SYNC_CHAIN)
		abort();
	switch (m.type) {
	case QP_SYNC_VECTOR:
	case QP_SYNC_ACK: check_entries(&m); break;
	case QP_SYNC_DELTAS:
	case QP_SYNC_REVOKES:
	case QP_SYNC_CERTS:
	case QP_SYNC_CHAIN: check_items(&m, data, size); break;
	case QP_SYNC_ERROR:
		if (m.code >= 0 || strlen(m.reason) >= QP_SYNC_WHY_MAX)
			abort();
		break;
	default: break;
	}
	if (qp_sync_encode(&m, &again, &alen) != 0 || alen != size ||
	    memcmp(again, data, size) != 0)
		abort();
	free(again);
	qp_sync_msg_free(&m);
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

/* Run an encoder into b/n, then write its output as a seed. */
#define EMIT(name, call)                                                       \
	do {                                                                   \
		if ((call) != 0)                                               \
			abort();                                               \
		put(dir, name, b, n);                                          \
		free(b);                                                       \
	} while (0)

int main(int argc, char **argv)
{
	const char *dir = argv[1];
	uint8_t pk[QP_KEY_LEN], sk[QP_SKEY_LEN], seed[32];
	uint8_t prev[QP_HASH_LEN] = {0}, *d[3], *b;
	const uint8_t *revs[2];
	size_t dlen[3], n;
	qp_vv_entry e[5];
	qp_revocation rv;
	qp_feed feed;
	qp_op op;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	if (qp_crypto_init() != 0)
		abort();
	memset(seed, 'A', sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	memcpy(feed.author, pk, QP_KEY_LEN);
	memset(feed.org, 0x42, QP_UUID_LEN);
	for (int i = 0; i < 3; i++) {
		memset(&op, 0, sizeof(op));
		op.type = QP_OP_VOID;
		memset(op.id, i + 1, QP_UUID_LEN);
		strcpy(op.kind, "attendance");
		op.hlc = (uint64_t)(1763899200000 + i) << 16;
		op.reason = qp_xstrdup("entered twice");
		if (qp_delta_build(&feed, (uint64_t)i + 1, prev, &op, 1, sk,
		                   &d[i], &dlen[i]) != 0)
			abort();
		qp_delta_hash(d[i], dlen[i], prev);
		qp_op_clear(&op);
	}
	for (int i = 0; i < 5; i++) {
		e[i].feed = feed;
		e[i].feed.org[15] = (uint8_t)(i * 3);
		e[i].seq = i == 0 ? 0 : (uint64_t)1 << (i * 13);
	}

	EMIT("vector", qp_sync_encode_vector(e, 5, 0, &b, &n));
	EMIT("vector_more", qp_sync_encode_vector(e, 2, 1, &b, &n));
	EMIT("vector_empty", qp_sync_encode_vector(NULL, 0, 0, &b, &n));
	EMIT("deltas",
	     qp_sync_encode_deltas((const uint8_t *const *)d, dlen, 3, &b, &n));
	EMIT("deltas_one",
	     qp_sync_encode_deltas((const uint8_t *const *)d, dlen, 1, &b, &n));
	EMIT("ack", qp_sync_encode_ack(e + 1, 3, 3, &b, &n));

	memset(seed, 'H', sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	memset(&rv, 0, sizeof(rv));
	rv.version = QP_REV_VERSION;
	memcpy(rv.issuer, pk, QP_KEY_LEN);
	memcpy(rv.key, feed.author, QP_KEY_LEN);
	rv.after_seq = 2;
	rv.at = 1763899200;
	if (qp_revocation_build(&rv, sk, &b, &n) != 0)
		abort();
	revs[0] = revs[1] = b;
	{
		uint8_t *rev = b;
		EMIT("revocations",
		     qp_sync_encode_revocations(revs, 2, &b, &n));
		EMIT("revocations_none",
		     qp_sync_encode_revocations(NULL, 0, &b, &n));
		free(rev);
	}
	{
		qp_cert c;
		uint8_t *cert;
		size_t certlen;

		memset(&c, 0, sizeof(c));
		c.version = QP_CERT_VERSION;
		c.role = QP_ROLE_TECHNICIAN;
		memcpy(c.device, feed.author, QP_KEY_LEN);
		memcpy(c.issuer, pk, QP_KEY_LEN);
		c.serial = 1;
		c.issued_at = 1763899200;
		strcpy(c.name, "tablet 7");
		c.norgs = 1;
		memcpy(c.orgs[0], feed.org, QP_UUID_LEN);
		if (qp_cert_build(&c, sk, &cert, &certlen) != 0)
			abort();
		EMIT("certs",
		     qp_sync_encode_certs((const uint8_t *const *)&cert,
		                          &certlen, 1, &b, &n));
		EMIT("chain",
		     qp_sync_encode_chain((const uint8_t *const *)&cert,
		                          &certlen, 1, &b, &n));
		free(cert);
	}
	EMIT("done", qp_sync_encode_done(&b, &n));
	EMIT("error",
	     qp_sync_encode_error(QP_EEXPIRED,
	                          "hub refused: certificate expired", &b, &n));
	EMIT("error_utf8", qp_sync_encode_error(
	                       QP_EREVOKED, "clave revocada: Ñahui", &b, &n));
	/* Refused ones: another version, a non-canonical int, a huge count. */
	put(dir, "bad_version", (const uint8_t *)"\x92\x05\x02", 3);
	put(dir, "bad_noncanonical", (const uint8_t *)"\x92\xcc\x05\x01", 4);
	put(dir, "bad_count",
	    (const uint8_t *)"\x94\x01\x01\xc2\xdd\xff\xff\xff\xff", 9);
	for (int i = 0; i < 3; i++)
		free(d[i]);
	return 0;
}
#endif
