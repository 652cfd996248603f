/*
 * bench_lmdb_fsync.c - the baseline for quipud's write benchmarks: one
 * durable LMDB commit per record, as a naive store without group commit
 * would do it.  Each record is a ~300-byte msgpack value (an attendance-like
 * record made with qp_mpjson_encode) put under a big-endian counter key in
 * its own transaction, committed with LMDB's default sync.
 *
 * Usage: bench_lmdb_fsync DIR [SECONDS]
 *   DIR      an existing directory on the file system under test (the
 *            environment is created in DIR/lmdb-fsync and removed after)
 *   SECONDS  how long to write (default 2)
 * Prints one JSON line:
 *   {"bench":"lmdb_fsync_baseline","value":N,"unit":"records/s",...}
 */
#include <errno.h>
#include <jansson.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "mpjson.h"
#include "util.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The file system type, so a result measured on tmpfs (where fsync is free)
 * is recognisable as such. */
static const char *fs_name(const char *path)
{
	struct statfs sf;
	if (statfs(path, &sf) != 0)
		return "unknown";
	switch ((unsigned long)sf.f_type) {
	case 0xEF53UL:
		return "ext4";
	case 0x01021994UL:
		return "tmpfs";
	case 0x58465342UL:
		return "xfs";
	case 0x9123683EUL:
		return "btrfs";
	case 0x794C7630UL:
		return "overlayfs";
	case 0x6969UL:
		return "nfs";
	case 0x2FC12FC1UL:
		return "zfs";
	default:
		return "other";
	}
}

/* A realistic record value of about 300 bytes. */
static int make_value(char **out, size_t *outlen)
{
	json_t *rec = json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
		"id", "0193a5f0-7c1e-7b2a-9d4e-5f6a7b8c9d0e",
		"kind", "attendance",
		"org", "0193a5f0-1111-7222-8333-444455556666",
		"session", "0193a5f0-2222-7333-8444-555566667777",
		"producer", "0193a5f0-3333-7444-8555-666677778888",
		"status", "present",
		"note", "Llegó con su esposa; trajo muestras de hojas con roya",
		"recorded_by", "Ing. Rosa Mamani Quispe",
		"recorded_at", "2026-11-23T09:41:07-05:00");
	int rc;
	if (rec == NULL)
		return -1;
	rc = qp_mpjson_encode(rec, out, outlen);
	json_decref(rec);
	return rc;
}

static void rmtree_env(const char *dir)
{
	char p[4200];
	unlink(qp_fmt(p, sizeof p, "%s/data.mdb", dir));
	unlink(qp_fmt(p, sizeof p, "%s/lock.mdb", dir));
	rmdir(dir);
}

int main(int argc, char **argv)
{
	char dir[4096];
	double secs = 2.0, t0, t1;
	char *val = NULL;
	size_t vlen = 0;
	MDB_env *env = NULL;
	MDB_dbi dbi;
	MDB_txn *txn;
	uint64_t n = 0;
	int rc, ret = 1;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: bench_lmdb_fsync DIR [SECONDS]\n");
		return 2;
	}
	if (argc == 3)
		secs = atof(argv[2]);
	if (secs <= 0)
		secs = 2.0;
	qp_fmt(dir, sizeof dir, "%s/lmdb-fsync", argv[1]);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	if (make_value(&val, &vlen) != 0) {
		fprintf(stderr, "bench_lmdb_fsync: cannot encode the value\n");
		goto out;
	}
	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_mapsize(env, (size_t)1 << 30)) != 0 ||
	    (rc = mdb_env_open(env, dir, 0, 0600)) != 0) {
		fprintf(stderr, "bench_lmdb_fsync: %s\n", mdb_strerror(rc));
		goto out;
	}
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		fprintf(stderr, "bench_lmdb_fsync: %s\n", mdb_strerror(rc));
		goto out;
	}

	t0 = t1 = now_s();
	do {
		uint8_t kb[8];
		MDB_val k = {sizeof kb, kb}, v = {vlen, val};
		qp_put_be64(kb, n);
		if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
			break;
		if ((rc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
			mdb_txn_abort(txn);
			break;
		}
		/* The commit syncs: one fsync (or two) per record. */
		if ((rc = mdb_txn_commit(txn)) != 0)
			break;
		n++;
		t1 = now_s();
	} while (t1 - t0 < secs);
	if (rc != 0) {
		fprintf(stderr, "bench_lmdb_fsync: %s\n", mdb_strerror(rc));
		goto out;
	}
	printf("{\"bench\":\"lmdb_fsync_baseline\",\"value\":%.1f,"
	       "\"unit\":\"records/s\",\"records\":%llu,\"seconds\":%.3f,"
	       "\"value_bytes\":%zu,\"commits_per_record\":1,\"fs\":\"%s\"}\n",
	       (double)n / (t1 - t0), (unsigned long long)n, t1 - t0, vlen,
	       fs_name(argv[1]));
	ret = 0;
out:
	if (env != NULL)
		mdb_env_close(env);
	rmtree_env(dir);
	free(val);
	return ret;
}
