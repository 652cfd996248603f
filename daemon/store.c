/*
 * store.c - the LMDB store of a quipu node (see store.h; the merge of ops
 * into record state is in apply.c).
 *
 * Layout notes beyond store.h: idx_kind holds three keys per record (kind +
 * org, kind alone, org alone; see apply.c) so every listing is one range
 * scan in id order; `forks` (store_internal.h) keeps deltas that fork a
 * feed.  The write path is in store_write.c, verify and ingest in
 * store_verify.c.  The map starts at 64 MiB and doubles whenever a transaction
 * finds it full: the transaction is aborted and redone from the start, so a
 * full map never fails a write.
 */
#include "store.h"
#include "apply.h"
#include "err.h"
#include "hlc.h"
#include "mpjson.h"
#include "node.h"
#include "store_internal.h"
#include "store_sync_internal.h"
#include "util.h"

#include <lmdb.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define MAP_START (64u << 20)
/* Layout version in meta "schema": 1, the first; 2 adds the counters of
 * apply.h, the attendance key (a person once per session) and the other
 * holders of a natural key (apply.c: voiding its owner hands it on); 3
 * adds the void's base and author to the record state and the edits kept
 * against a void they did not see (apply.c).  A store of a newer format
 * is refused (QP_EVERSION); an older one is brought up to date when
 * opened, by rebuilding its state from the log (qp__store_upgrade). */
#define STORE_FORMAT 3
#define PREFILL_LOW   ((off_t)2 << 20) /* refill when less is left */
#define PREFILL_CHUNK ((off_t)QP__PREFILL_CHUNK)

/* ---- environment -------------------------------------------------- */

/* Keep the data file written with zeros some way past the pages LMDB has
 * used.  LMDB appends pages at the end of the file as the store grows;
 * when a commit writes past the end (or into blocks never written), the
 * fdatasync of that commit must also write the file system's metadata
 * (block allocation, file size), which on ext4 is one more synchronous
 * write per commit.  Writing zeros ahead of need, a chunk at a time and
 * synced once, makes the commits that follow overwrite blocks that already
 * exist.  Called with the write lock held (a top-level write transaction
 * was just begun), so no other writer is writing the region beyond the
 * last committed page, which holds nothing any reader can see.  Failures
 * are ignored: the file then grows as LMDB writes, as it would anyway. */
static void prefill(qp_store *s)
{
	static const char zeros[1u << 16];
	MDB_envinfo info;
	struct stat st;
	int fd;
	off_t used, end, want, off;

	if (mdb_env_info(s->env, &info) != 0)
		return;
	used = (off_t)(info.me_last_pgno + 1) * (off_t)s->psize;
	if (s->filled >= used + PREFILL_LOW)
		return;
	if (mdb_env_get_fd(s->env, &fd) != 0 || fstat(fd, &st) != 0)
		return;
	end = st.st_size > used ? st.st_size : used;
	if (end >= used + PREFILL_LOW) {
		s->filled = end;
		return;
	}
	want = used + PREFILL_CHUNK + used / 8;
	if (want > (off_t)info.me_mapsize)
		want = (off_t)info.me_mapsize;
	want -= want % (off_t)s->psize;
	for (off = end; off < want;) {
		size_t n = (size_t)(want - off) < sizeof zeros
		               ? (size_t)(want - off)
		               : sizeof zeros;
		ssize_t w = pwrite(fd, zeros, n, off);
		if (w <= 0)
			break;
		off += w;
	}
	if (off > end && fdatasync(fd) == 0)
		s->filled = off;
}

/* Begin a transaction, adopting a map grown by another process. */
int qp__store_txn_begin(qp_store *s, MDB_txn *parent, unsigned flags,
                        MDB_txn **txn)
{
	int rc = mdb_txn_begin(s->env, parent, flags, txn);
	if (rc == MDB_MAP_RESIZED) {
		if (mdb_env_set_mapsize(s->env, 0) != 0)
			return QP_ESTORE;
		rc = mdb_txn_begin(s->env, parent, flags, txn);
	}
	if (rc == 0 && parent == NULL && !(flags & MDB_RDONLY))
		prefill(s);
	return qp__mdb(rc);
}

static int map_usage(qp_store *s, size_t *used, size_t *size)
{
	MDB_envinfo info;
	MDB_stat st;
	if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
		return QP_ESTORE;
	*used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
	*size = info.me_mapsize;
	return 0;
}

/* Double the map.  No transaction of this process may be active. */
int qp__store_grow(qp_store *s)
{
	size_t used, size;
	if (map_usage(s, &used, &size) != 0)
		return QP_ESTORE;
	return mdb_env_set_mapsize(s->env, size * 2) == 0 ? 0 : QP_ESTORE;
}

/* Set the map size now (see store_internal.h). */
int qp__store_set_mapsize(qp_store *s, size_t bytes)
{
	return mdb_env_set_mapsize(s->env, bytes) == 0 ? 0 : QP_ESTORE;
}

/* ---- meta's be64 values: the clock and the counters --------------- */

/* The be64 at meta key[0..kl) into *n (absent: 0). */
static int meta_get64(MDB_txn *txn, const qp__dbs *db, const char *key,
                      size_t kl, uint64_t *n)
{
	MDB_val k = {kl, (void *)key}, d;
	int rc = mdb_get(txn, db->meta, &k, &d);

	*n = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return qp__mdb(rc);
	if (d.mv_size != 8)
		return QP_ECORRUPT;
	*n = qp_get_be64(d.mv_data);
	return 0;
}

static int meta_put64(MDB_txn *txn, const qp__dbs *db, const char *key,
                      size_t kl, uint64_t n)
{
	uint8_t b[8];
	MDB_val k = {kl, (void *)key}, d = {8, b};

	qp_put_be64(b, n);
	return qp__mdb(mdb_put(txn, db->meta, &k, &d, 0));
}

static int meta_add64(MDB_txn *txn, const qp__dbs *db, const char *key,
                      size_t kl, uint64_t n)
{
	uint64_t v;
	int rc = meta_get64(txn, db, key, kl, &v);
	return rc != 0 ? rc : meta_put64(txn, db, key, kl, v + n);
}

/* Observe the persisted clock, so it never goes back across restarts or
 * across processes sharing the store. */
int qp__store_hlc_load(qp_store *s, MDB_txn *txn)
{
	uint64_t last;
	int rc = meta_get64(txn, &s->db, "hlc", 3, &last);
	if (rc == 0)
		qp_hlc_observe(&s->hlc, last);
	return rc;
}

/* Persist the clock in meta "hlc" (big-endian). */
int qp__store_hlc_save(qp_store *s, MDB_txn *txn)
{
	return meta_put64(txn, &s->db, "hlc", 3, s->hlc.last);
}

/* The data file's identity, FILE_ID_LEN bytes big-endian: device, inode,
 * and its birth time (seconds, nanoseconds; zero where the file system
 * keeps none).  A file system may give a restored copy the inode number
 * of the file it replaces, but not the birth time. */
#define FILE_ID_OLD 16 /* device and inode only, as stores first kept it */
#define FILE_ID_LEN 28
static int file_id(qp_store *s, uint8_t id[FILE_ID_LEN])
{
	struct statx st;
	mdb_filehandle_t fd;

	if (mdb_env_get_fd(s->env, &fd) != 0 ||
	    statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &st) != 0)
		return QP_ESTORE;
	qp_put_be64(id, makedev(st.stx_dev_major, st.stx_dev_minor));
	qp_put_be64(id + 8, st.stx_ino);
	if (!(st.stx_mask & STATX_BTIME))
		st.stx_btime.tv_sec = st.stx_btime.tv_nsec = 0;
	qp_put_be64(id + 16, (uint64_t)st.stx_btime.tv_sec);
	qp_put_be32(id + 24, st.stx_btime.tv_nsec);
	return 0;
}

static int settle_tx(qp_store *s, MDB_txn *txn)
{
	uint8_t id[FILE_ID_LEN];
	MDB_val k = {4, "file"}, d = {sizeof id, id};
	int rc = file_id(s, id);

	return rc != 0 ? rc : qp__mdb(mdb_put(txn, s->db.meta, &k, &d, 0));
}

/* Compare the data file with the one recorded in meta "file" (recording
 * it when none is): a different one marks the store a copy.  An identity
 * of the first kind (no birth time) that matches is brought up to date. */
static int copy_check(qp_store *s, MDB_txn *txn)
{
	uint8_t id[FILE_ID_LEN];
	MDB_val k = {4, "file"}, d;
	int rc;

	if ((rc = file_id(s, id)) != 0)
		return rc;
	rc = mdb_get(txn, s->db.meta, &k, &d);
	if (rc == MDB_NOTFOUND ||
	    (rc == 0 && d.mv_size == FILE_ID_OLD &&
	     memcmp(d.mv_data, id, FILE_ID_OLD) == 0))
		return settle_tx(s, txn);
	if (rc != 0)
		return qp__mdb(rc);
	s->copy = d.mv_size != sizeof id || memcmp(d.mv_data, id, sizeof id) != 0;
	return 0;
}

/* Was the store upgraded when opened (see store.h). */
int qp_store_upgraded(const qp_store *s, unsigned *from, unsigned *to,
                      double *seconds)
{
	if (s == NULL || s->upgraded_from == 0)
		return 0;
	*from = s->upgraded_from;
	*to = STORE_FORMAT;
	*seconds = (double)s->upgrade_ns / 1e9;
	return 1;
}

/* Is the store a copy (see store.h). */
int qp_store_is_copy(const qp_store *s)
{
	return s != NULL && s->copy;
}

/* Settle a copy (see store.h). */
int qp_store_copy_settle(qp_store *s)
{
	MDB_txn *txn;
	int rc, tries = 0;

	if (s == NULL)
		return QP_EINVAL;
	for (;;) {
		if ((rc = qp__store_txn_begin(s, NULL, 0, &txn)) != 0)
			break;
		if ((rc = settle_tx(s, txn)) == 0)
			rc = qp__mdb(mdb_txn_commit(txn));
		else
			mdb_txn_abort(txn);
		if (rc != QP__EMAPFULL || tries++ >= QP__MAP_RETRIES ||
		    (rc = qp__store_grow(s)) != 0)
			break;
	}
	if (rc == 0)
		s->copy = 0;
	return rc == QP__EMAPFULL ? QP_ESTORE : rc;
}

static int open_dbs(qp_store *s)
{
	static const char *const names[] = {
	    "log",       "feeds",      "records", "idx_kind", "idx_key",
	    "conflicts", "quarantine", "meta",    "forks"};
	MDB_dbi *dbis[] = {&s->db.log,        &s->db.feeds,   &s->db.records,
	                   &s->db.idx_kind,   &s->db.idx_key, &s->db.conflicts,
	                   &s->db.quarantine, &s->db.meta,    &s->db.forks};
	uint8_t ver[4];
	MDB_val k = {6, "schema"}, d;
	MDB_txn *txn;
	int rc = qp__store_txn_begin(s, NULL, 0, &txn);

	if (rc != 0)
		return rc;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((rc = mdb_dbi_open(txn, names[i], MDB_CREATE, dbis[i])) !=
		    0)
			goto fail;
	}
	rc = mdb_get(txn, s->db.meta, &k, &d);
	if (rc == 0 && (d.mv_size != 4 ||
	                qp_get_be32(d.mv_data) > STORE_FORMAT)) {
		mdb_txn_abort(txn);
		return d.mv_size != 4 ? QP_ECORRUPT : QP_EVERSION;
	}
	if (rc == 0 && qp_get_be32(d.mv_data) < STORE_FORMAT)
		/* qp__store_upgrade, once the dbs are open */
		s->upgraded_from = qp_get_be32(d.mv_data);
	if (rc == MDB_NOTFOUND) {
		qp_put_be32(ver, STORE_FORMAT);
		d.mv_size = 4;
		d.mv_data = ver;
		rc = mdb_put(txn, s->db.meta, &k, &d, 0);
	}
	if (rc != 0)
		goto fail;
	if ((rc = qp__store_hlc_load(s, txn)) != 0 ||
	    (rc = copy_check(s, txn)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return qp__mdb(mdb_txn_commit(txn));
fail:
	mdb_txn_abort(txn);
	return qp__mdb(rc);
}

/* The layout version of the store in path, read without changing it (see
 * store.h). */
int qp_store_format(const char *path, unsigned *format, unsigned *current)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi meta;
	MDB_val k = {6, "schema"}, d;
	int rc;

	if (path == NULL || format == NULL || current == NULL)
		return QP_EINVAL;
	*current = STORE_FORMAT;
	if (mdb_env_create(&env) != 0)
		return QP_ESTORE;
	if ((rc = mdb_env_set_maxdbs(env, 16)) == 0 &&
	    (rc = mdb_env_open(env, path, MDB_RDONLY | MDB_NOTLS, 0600)) ==
	        0 &&
	    (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) == 0 &&
	    (rc = mdb_dbi_open(txn, "meta", 0, &meta)) == 0)
		rc = mdb_get(txn, meta, &k, &d);
	if (rc == 0 && d.mv_size != 4)
		rc = QP_ECORRUPT;
	else if (rc == 0)
		*format = qp_get_be32(d.mv_data);
	else
		rc = rc == ENOENT || rc == MDB_NOTFOUND ? QP_ENOTFOUND
		                                        : QP_ESTORE;
	if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

/* Entries of the named database name in the environment of txn. */
static int db_entries(MDB_txn *txn, const char *name, uint64_t *n)
{
	MDB_dbi dbi;
	MDB_stat st;
	int rc = mdb_dbi_open(txn, name, 0, &dbi);

	if (rc == 0)
		rc = mdb_stat(txn, dbi, &st);
	if (rc == 0)
		*n = st.ms_entries;
	return rc;
}

/* Count what the copy in dest holds, opening it without a lock file (it is
 * not in use) and read-only. */
static int copy_count(const char *dest, qp_store_copy_info *info)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	int rc;

	if (mdb_env_create(&env) != 0)
		return QP_ESTORE;
	if ((rc = mdb_env_set_maxdbs(env, 16)) == 0 &&
	    (rc = mdb_env_open(env, dest, MDB_RDONLY | MDB_NOLOCK, 0600)) == 0 &&
	    (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) == 0 &&
	    (rc = db_entries(txn, "log", &info->deltas)) == 0)
		rc = db_entries(txn, "records", &info->records);
	if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc == 0 ? 0 : QP_ESTORE;
}

/* An LMDB result as a status: a system error as -errno. */
static int copy_rc(int rc)
{
	if (rc == 0)
		return 0;
	if (rc == ENOENT)
		return QP_ENOTFOUND;
	return rc > 0 && rc < 1000 ? -rc : QP_ESTORE;
}

/* A backup of the store (see store.h). */
int qp_store_copy(const char *path, const char *dest, qp_store_copy_info *info)
{
	char file[PATH_MAX];
	qp_store_copy_info got = {0, 0, 0};
	MDB_env *env = NULL;
	struct stat st;
	int fd = -1, rc;

	if (path == NULL || dest == NULL ||
	    strlen(dest) + sizeof "/data.mdb" > sizeof file)
		return QP_EINVAL;
	snprintf(file, sizeof file, "%s/data.mdb", dest);
	if (mdb_env_create(&env) != 0)
		return QP_ESTORE;
	/* Read-only: LMDB's lock file lets this process read a snapshot
	 * while quipud goes on writing, and it never waits for the writer. */
	rc = mdb_env_set_maxdbs(env, 16);
	if (rc == 0)
		rc = mdb_env_open(env, path, MDB_RDONLY | MDB_NOTLS, 0600);
	if (rc != 0) {
		mdb_env_close(env);
		return copy_rc(rc);
	}
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = errno == EEXIST ? QP_EEXIST : -errno;
		mdb_env_close(env);
		return rc;
	}
	rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
	mdb_env_close(env);
	rc = copy_rc(rc);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (rc == 0 && fstat(fd, &st) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0)
		rc = qp_sync_path(dest);
	if (rc == 0) {
		got.bytes = (uint64_t)st.st_size;
		rc = copy_count(dest, &got);
	}
	if (rc != 0) {
		unlink(file);
		return rc;
	}
	if (info != NULL)
		*info = got;
	return 0;
}

uint64_t qp_store_last_stamp(const qp_store *s)
{
	return s != NULL ? s->hlc.last : 0;
}

/* Open the store in directory path (see store.h). */
int qp_store_open(const char *path, const uint8_t pk[QP_KEY_LEN],
                  const uint8_t sk[QP_SKEY_LEN], qp_store **out)
{
	qp_store *s;
	size_t used, size;
	int rc, tries = 0;

	if (path == NULL || pk == NULL || sk == NULL || out == NULL)
		return QP_EINVAL;
	if ((rc = qp_crypto_init()) != 0)
		return rc;
	s = qp_xcalloc(1, sizeof(*s));
	memcpy(s->pk, pk, QP_KEY_LEN);
	memcpy(s->sk, sk, QP_SKEY_LEN);
	s->geo_opts = qp_geo_opts_default();
	s->lots_cfg = qp_lots_cfg_default();
	if ((rc = qp_geo_new(&s->geo)) != 0) {
		free(s);
		return rc;
	}
	if (mdb_env_create(&s->env) != 0) {
		qp_geo_free(s->geo);
		free(s);
		return QP_ESTORE;
	}
	if (mdb_env_set_maxdbs(s->env, 16) != 0 ||
	    mdb_env_set_mapsize(s->env, MAP_START) != 0) {
		rc = QP_ESTORE;
		goto fail;
	}
	rc = mdb_env_open(s->env, path, MDB_NOTLS, 0600);
	if (rc != 0) {
		rc = rc > 0 ? -rc : QP_ESTORE;
		goto fail;
	}
	{
		MDB_stat st;
		if (mdb_env_stat(s->env, &st) != 0) {
			rc = QP_ESTORE;
			goto fail;
		}
		s->psize = st.ms_psize;
	}
	while ((rc = open_dbs(s)) == QP__EMAPFULL &&
	       tries++ < QP__MAP_RETRIES) {
		if ((rc = qp__store_grow(s)) != 0)
			goto fail;
	}
	if (rc == 0 && s->upgraded_from != 0) {
		uint64_t t0 = qp_mono_ns();
		rc = qp__store_upgrade(s, STORE_FORMAT);
		s->upgrade_ns = qp_mono_ns() - t0;
	}
	if (rc != 0)
		goto fail;
	/* Grow ahead of need, so a full map stays the exception. */
	while ((rc = map_usage(s, &used, &size)) == 0 && used > size / 5 * 4) {
		if ((rc = qp__store_grow(s)) != 0)
			break;
	}
	if (rc != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	rc = rc == QP__EMAPFULL ? QP_ESTORE : rc;
	mdb_env_close(s->env);
	qp_geo_free(s->geo);
	free(s->scope);
	sodium_memzero(s->sk, sizeof(s->sk));
	free(s);
	return rc;
}

/* Close the environment and wipe the secret key.  Accepts NULL. */
void qp_store_close(qp_store *s)
{
	if (s == NULL)
		return;
	mdb_env_close(s->env);
	qp_geo_free(s->geo);
	free(s->scope);
	sodium_memzero(s->sk, sizeof(s->sk));
	free(s);
}

/* A feed's head: seq and hash of its newest delta (0 and zeros if new). */
int qp__head_get(qp_store *s, MDB_txn *txn, const qp_feed *feed, uint64_t *seq,
                 uint8_t hash[QP_HASH_LEN])
{
	MDB_val k = {QP__FEED_LEN, (void *)feed}, d;
	int rc = mdb_get(txn, s->db.feeds, &k, &d);
	if (rc == MDB_NOTFOUND) {
		*seq = 0;
		memset(hash, 0, QP_HASH_LEN);
		return 0;
	}
	if (rc != 0)
		return qp__mdb(rc);
	if (d.mv_size != QP__HEAD_LEN)
		return QP_ECORRUPT;
	*seq = qp_get_be64(d.mv_data);
	memcpy(hash, (uint8_t *)d.mv_data + 8, QP_HASH_LEN);
	return 0;
}

/* Record a feed's new head. */
int qp__head_put(qp_store *s, MDB_txn *txn, const qp_feed *feed, uint64_t seq,
                 const uint8_t hash[QP_HASH_LEN])
{
	uint8_t v[QP__HEAD_LEN];
	MDB_val k = {QP__FEED_LEN, (void *)feed}, d = {sizeof v, v};
	qp_put_be64(v, seq);
	memcpy(v + 8, hash, QP_HASH_LEN);
	return qp__mdb(mdb_put(txn, s->db.feeds, &k, &d, 0));
}

/* Begin a read-only transaction and wrap it for the apply helpers. */
int qp__read_begin(qp_store *s, qp__tx *t, MDB_txn **txn)
{
	int rc = qp__store_txn_begin(s, NULL, MDB_RDONLY, txn);
	if (rc != 0)
		return rc == QP__EMAPFULL ? QP_ESTORE : rc;
	t->txn = *txn;
	t->db = &s->db;
	t->conflicts_maybe = 1;
	return 0;
}

/* Entries in a database (0 when it cannot be read). */
size_t qp__entries(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_stat st;
	return mdb_stat(txn, dbi, &st) == 0 ? st.ms_entries : 0;
}

int qp_store_held_apart(qp_store *s, uint64_t *quarantine, uint64_t *forks)
{
	MDB_txn *txn;
	qp__tx t;
	int rc = qp__read_begin(s, &t, &txn);

	if (rc != 0)
		return rc;
	*quarantine = qp__entries(txn, s->db.quarantine);
	*forks = qp__entries(txn, s->db.forks);
	mdb_txn_abort(txn);
	return 0;
}

/* BLAKE2b-256 over every (key, value) of dbi in key order, each framed by
 * its length, so no two different contents hash alike by concatenation. */
int qp__digest_db(MDB_txn *txn, MDB_dbi dbi, uint8_t out[QP_HASH_LEN],
                  size_t *count)
{
	crypto_generichash_state h;
	MDB_cursor *c;
	MDB_val k, d;
	uint8_t len[4];
	size_t n = 0;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0)
		return qp__mdb(rc);
	crypto_generichash_init(&h, NULL, 0, QP_HASH_LEN);
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		qp_put_be32(len, (uint32_t)k.mv_size);
		crypto_generichash_update(&h, len, 4);
		crypto_generichash_update(&h, k.mv_data, k.mv_size);
		qp_put_be32(len, (uint32_t)d.mv_size);
		crypto_generichash_update(&h, len, 4);
		crypto_generichash_update(&h, d.mv_data, d.mv_size);
		n++;
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return qp__mdb(rc);
	crypto_generichash_final(&h, out, QP_HASH_LEN);
	if (count != NULL)
		*count = n;
	return 0;
}

/* ---- geometry ----------------------------------------------------- */

void qp_store_set_geo_opts(qp_store *s, const qp_geo_opts *o)
{
	s->geo_opts = *o;
}

void qp_store_set_lots_cfg(qp_store *s, const qp_lots_cfg *cfg)
{
	s->lots_cfg = *cfg;
}

void qp_store_set_scope(qp_store *s, const uint8_t (*orgs)[QP_UUID_LEN],
                        size_t n)
{
	free(s->scope);
	s->scope = n > 0 ? qp_xmalloc(n * QP_UUID_LEN) : NULL;
	if (n > 0)
		memcpy(s->scope, orgs, n * QP_UUID_LEN);
	s->nscope = n;
	s->scoped = 1;
}

/* A record's numeric field as a double, NAN when absent (see geo.h). */
static double num_or_nan(const json_t *rec, const char *name)
{
	const json_t *v = json_object_get(rec, name);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Check a plot's geometry or a session's place (see apply.h). */
int qp__geo_check(qp_store *s, const char *kind, const json_t *rec,
                  qp_geo_result *res, const char **path, json_t **fixed,
                  char *err, size_t errlen)
{
	qp_geo_opts o = s->geo_opts;
	const json_t *g;
	double ha = NAN, acc = NAN;

	if (kind == NULL)
		return 1;
	if (strcmp(kind, "plot") == 0) {
		g = json_object_get(rec, "geometry");
		ha = num_or_nan(rec, "area_ha");
		acc = num_or_nan(rec, "accuracy_m");
		o.path = "plot.geometry";
	} else if (strcmp(kind, "session") == 0) {
		g = json_object_get(rec, "place");
		o.path = "session.place";
	} else {
		return 1;
	}
	if (g == NULL)
		return 1;
	*path = o.path;
	return qp_geo_check_plot(s->geo, g, ha, acc, &o, res, fixed, err,
	                         errlen);
}

/* Add what the geometry checks derive to a record's meta: the measured
 * geodesic area of a polygon plot, the warnings, or the reason a stored
 * geometry fails them (one received from an older node). */
static void geo_meta(qp_store *s, const json_t *rec, json_t *m)
{
	qp_geo_result res;
	const char *path = NULL;
	char err[QP_ERRMSG_LEN], w[QP_ERRMSG_LEN + sizeof res.warnings];
	const char *kind = json_string_value(json_object_get(rec, "kind"));
	int rc = qp__geo_check(s, kind, rec, &res, &path, NULL, err,
	                       sizeof err);

	if (rc == 1)
		return;
	if (rc != 0) {
		json_object_set_new(m, "geometry_error", json_string(err));
		return;
	}
	if (!(res.flags & QP_GEO_F_POINT))
		json_object_set_new(m, "area_ha_measured",
		                    json_real(res.area_ha));
	if (res.warnings[0] != '\0') {
		qp_fmt(w, sizeof w, "%s: %s", path, res.warnings);
		json_object_set_new(m, "warnings", json_string(w));
	}
}

/* ---- reads -------------------------------------------------------- */

static void put_iso(json_t *o, const char *key, uint64_t hlc)
{
	char buf[40];
	qp_hlc_iso(hlc, buf, sizeof buf);
	json_object_set_new(o, key, json_string(buf));
}

/* A read of record id: its canonical form into norm and a read
 * transaction; QP_ENOTFOUND when id is no UUID. */
static int record_read_begin(qp_store *s, const char *id,
                             char norm[QP_UUID_STRLEN + 1], qp__tx *t,
                             MDB_txn **txn)
{
	uint8_t b[QP_UUID_LEN];

	if (qp_uuid_parse(id, b) != 0)
		return QP_ENOTFOUND;
	qp_uuid_format(b, norm);
	return qp__read_begin(s, t, txn);
}

/* Read one record and its meta (see store.h). */
int qp_store_get(qp_store *s, const char *id, json_t **rec, json_t **meta)
{
	char norm[QP_UUID_STRLEN + 1];
	json_t *st = NULL, *m = NULL, *v;
	MDB_txn *txn;
	qp__tx t;
	size_t nc = 0;
	int rc;

	if (s == NULL || id == NULL || rec == NULL)
		return QP_EINVAL;
	if ((rc = record_read_begin(s, id, norm, &t, &txn)) != 0)
		return rc;
	if ((rc = qp__state_get(&t, norm, &st)) != 0)
		goto out;
	if (meta != NULL) {
		if ((rc = qp__conflict_count(&t, norm, &nc)) != 0)
			goto out;
		m = json_object();
		if ((v = json_object_get(st, "c")) != NULL)
			put_iso(m, "created", (uint64_t)json_integer_value(v));
		v = json_object_get(st, "u");
		put_iso(m, "updated", (uint64_t)json_integer_value(v));
		json_object_set_new(m, "version",
		                    json_integer(json_integer_value(v)));
		if ((v = json_object_get(st, "a")) != NULL)
			json_object_set(m, "author", v);
		if ((v = json_object_get(st, "v")) != NULL) {
			json_object_set(m, "voided", v);
			put_iso(m, "voided_at",
			        (uint64_t)json_integer_value(
			            json_object_get(st, "vh")));
		}
		json_object_set_new(m, "conflicts",
		                    json_integer((json_int_t)nc));
		geo_meta(s, json_object_get(st, "r"), m);
		*meta = m;
	}
	*rec = json_incref(json_object_get(st, "r"));
out:
	mdb_txn_abort(txn);
	json_decref(st);
	return rc;
}

_Static_assert(QP_STORE_KIND_LEN == QP__KIND_LEN, "one kind length");

/* A record's kind and void mark (see store.h). */
int qp_store_kind(qp_store *s, const char *id, char kind[QP_STORE_KIND_LEN],
                  int *voided)
{
	char norm[QP_UUID_STRLEN + 1];
	MDB_txn *txn;
	qp__tx t;
	int rc;

	if ((rc = record_read_begin(s, id, norm, &t, &txn)) != 0)
		return rc;
	rc = qp__state_peek(&t, norm, kind, NULL, voided);
	mdb_txn_abort(txn);
	return rc;
}

/* List records in id order (see store.h). */
int qp_store_list(qp_store *s, const char *kind, const char *org,
                  const char *after, size_t limit, int with_voided,
                  json_t **out, char next[QP_UUID_STRLEN + 1])
{
	char prefix[QP__KIND_LEN + QP_UUID_STRLEN + 4],
	    seek[sizeof prefix + 64];
	char orgn[QP_UUID_STRLEN + 1], aftern[QP_UUID_STRLEN + 1],
	    last[QP_UUID_STRLEN + 1] = "";
	uint8_t b[QP_UUID_LEN];
	size_t pl = 0, sl, count = 0;
	int rc, more = 0, byrec = kind == NULL && org == NULL;
	json_t *arr, *st, *void_reason;
	MDB_cursor *c = NULL;
	MDB_txn *txn;
	MDB_val k, d;
	qp__tx t;

	if (s == NULL || out == NULL || next == NULL ||
	    (kind != NULL && strlen(kind) >= QP__KIND_LEN))
		return QP_EINVAL;
	if (org != NULL) {
		if (qp_uuid_parse(org, b) != 0) {
			*out = json_array(); /* no org has such an id */
			next[0] = '\0';
			return 0;
		}
		qp_uuid_format(b, orgn);
	}
	/* kind \0 org \0 | kind \0 \0 | \0 org \0 | (records) */
	if (kind != NULL) {
		pl = strlen(kind);
		memcpy(prefix, kind, pl);
		prefix[pl++] = '\0';
	} else if (org != NULL) {
		prefix[pl++] = '\0';
	}
	if (org != NULL) {
		memcpy(prefix + pl, orgn, QP_UUID_STRLEN);
		pl += QP_UUID_STRLEN;
	}
	if (!byrec)
		prefix[pl++] = '\0';
	memcpy(seek, prefix, pl);
	sl = pl;
	if (after != NULL && after[0] != '\0') {
		if (qp_uuid_parse(after, b) == 0) {
			qp_uuid_format(b, aftern);
			after = aftern;
		}
		sl += snprintf(seek + pl, sizeof(seek) - pl, "%.60s", after);
	}
	if ((rc = qp__read_begin(s, &t, &txn)) != 0)
		return rc;
	arr = json_array();
	if ((rc = mdb_cursor_open(txn, byrec ? s->db.records : s->db.idx_kind,
	                          &c)) != 0)
		goto out;
	k.mv_size = sl;
	k.mv_data = seek;
	rc = mdb_cursor_get(c, &k, &d, sl > 0 ? MDB_SET_RANGE : MDB_FIRST);
	if (rc == 0 && sl > pl && k.mv_size == sl &&
	    memcmp(k.mv_data, seek, sl) == 0)
		rc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
	for (; rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		char id[QP_UUID_STRLEN + 1];
		if (k.mv_size != pl + QP_UUID_STRLEN ||
		    memcmp(k.mv_data, prefix, pl) != 0) {
			if (k.mv_size >= pl &&
			    memcmp(k.mv_data, prefix, pl) == 0)
				continue; /* a longer key form; not ours */
			break;
		}
		if (limit > 0 && count == limit) {
			more = 1;
			break;
		}
		memcpy(id, (char *)k.mv_data + pl, QP_UUID_STRLEN);
		id[QP_UUID_STRLEN] = '\0';
		if (byrec) {
			if (qp_mpjson_decode(d.mv_data, d.mv_size,
			                     QP_DELTA_MAX_RAW, &st) != 0 ||
			    !json_is_object(json_object_get(st, "r"))) {
				rc = QP_ECORRUPT;
				goto out;
			}
		} else if ((rc = qp__state_get(&t, id, &st)) != 0) {
			goto out;
		}
		void_reason = json_object_get(st, "v");
		if (void_reason == NULL || with_voided) {
			json_t *r = json_object_get(st, "r");
			/* Marked, so a listing with voided records tells
			 * them apart: "voided" is no field of any kind. */
			if (void_reason != NULL) {
				r = json_copy(r);
				json_object_set(r, "voided", void_reason);
				json_array_append_new(arr, r);
			} else {
				json_array_append(arr, r);
			}
			memcpy(last, id, sizeof last);
			count++;
		}
		json_decref(st);
	}
	rc = rc == MDB_NOTFOUND || rc == 0 ? 0 : qp__mdb(rc);
out:
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc != 0) {
		json_decref(arr);
		return rc == QP__EMAPFULL ? QP_ESTORE : rc;
	}
	*out = arr;
	snprintf(next, QP_UUID_STRLEN + 1, "%s", more ? last : "");
	return 0;
}

/* BLAKE2b-256 of the record state (see store.h). */
int qp_store_digest(qp_store *s, char out[65])
{
	uint8_t h[QP_HASH_LEN];
	MDB_txn *txn;
	qp__tx t;
	int rc;

	if (s == NULL || out == NULL)
		return QP_EINVAL;
	if ((rc = qp__read_begin(s, &t, &txn)) != 0)
		return rc;
	rc = qp__digest_db(txn, s->db.records, h, NULL);
	mdb_txn_abort(txn);
	if (rc == 0)
		qp_hex(h, QP_HASH_LEN, out);
	return rc;
}

/* ---- counters (see apply.h) --------------------------------------- */

#define LOG_BYTES_KEY "log_bytes"

/* The meta key of kind's counter: "n:" kind. */
static size_t kind_key(const char *kind, char key[2 + QP__KIND_LEN])
{
	size_t kl = strnlen(kind, QP__KIND_LEN);
	key[0] = 'n';
	key[1] = ':';
	memcpy(key + 2, kind, kl);
	return kl + 2;
}

int qp__kind_count_add(MDB_txn *txn, const qp__dbs *db, const char *kind,
                       uint64_t n)
{
	char key[2 + QP__KIND_LEN];
	return meta_add64(txn, db, key, kind_key(kind, key), n);
}

int qp__kind_count_get(MDB_txn *txn, const qp__dbs *db, const char *kind,
                       uint64_t *n)
{
	char key[2 + QP__KIND_LEN];
	return meta_get64(txn, db, key, kind_key(kind, key), n);
}

/* Empty the derived state, to be rebuilt from the log (see apply.h). */
int qp__state_clear(qp_store *s, MDB_txn *txn)
{
	MDB_dbi drop[] = {s->db.records, s->db.idx_kind, s->db.idx_key,
	                  s->db.conflicts};
	size_t nk;
	const qp_kind *kinds = qp_schema_kinds(&nk);
	char key[2 + QP__KIND_LEN];
	int rc;

	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
		if ((rc = qp__mdb(mdb_drop(txn, drop[i], 0))) != 0)
			return rc;
	}
	for (size_t i = 0; i < nk; i++) {
		rc = meta_put64(txn, &s->db, key, kind_key(kinds[i].name, key),
		                0);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int qp__log_put(MDB_txn *txn, const qp__dbs *db, MDB_val *k, MDB_val *d)
{
	int rc = qp__mdb(mdb_put(txn, db->log, k, d, MDB_NOOVERWRITE));
	if (rc != 0)
		return rc;
	return meta_add64(txn, db, LOG_BYTES_KEY, strlen(LOG_BYTES_KEY),
	                     d->mv_size);
}

int qp__log_bytes_get(MDB_txn *txn, const qp__dbs *db, uint64_t *n)
{
	return meta_get64(txn, db, LOG_BYTES_KEY, strlen(LOG_BYTES_KEY), n);
}

/* Records of kind in idx_kind: its keys kind \0 \0 id. */
int qp__kind_recount(MDB_txn *txn, const qp__dbs *db, const char *kind,
                     uint64_t *out)
{
	char prefix[QP__KIND_LEN + 2];
	size_t pl = strnlen(kind, QP__KIND_LEN);
	MDB_cursor *c;
	MDB_val k, d;
	uint64_t n = 0;
	int rc;

	memcpy(prefix, kind, pl);
	prefix[pl++] = '\0';
	prefix[pl++] = '\0';
	k.mv_size = pl;
	k.mv_data = prefix;
	if ((rc = mdb_cursor_open(txn, db->idx_kind, &c)) != 0)
		return qp__mdb(rc);
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
	     rc == 0 && k.mv_size >= pl && memcmp(k.mv_data, prefix, pl) == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		if (k.mv_size == pl + QP_UUID_STRLEN)
			n++;
	}
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return qp__mdb(rc);
	*out = n;
	return 0;
}

/* Total bytes of the log's values (LMDB knows each size without reading
 * the value's pages). */
int qp__log_bytes_recount(MDB_txn *txn, const qp__dbs *db, uint64_t *out)
{
	MDB_cursor *c;
	MDB_val k, d;
	uint64_t n = 0;
	int rc;

	if ((rc = mdb_cursor_open(txn, db->log, &c)) != 0)
		return qp__mdb(rc);
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT))
		n += d.mv_size;
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return qp__mdb(rc);
	*out = n;
	return 0;
}

int qp__log_bytes_set(MDB_txn *txn, const qp__dbs *db, uint64_t n)
{
	return meta_put64(txn, db, LOG_BYTES_KEY, strlen(LOG_BYTES_KEY), n);
}

/* Statistics (see store.h). */
int qp_store_stats(qp_store *s, json_t **out)
{
	char hex[2 * QP_KEY_LEN + 1], org[QP_UUID_STRLEN + 1];
	json_t *o, *recs, *fd;
	size_t nk, used, size;
	uint64_t n = 0, lb = 0;
	const qp_kind *kinds = qp_schema_kinds(&nk);
	MDB_cursor *c = NULL;
	MDB_txn *txn;
	MDB_val k, d;
	qp__tx t;
	int rc;

	if (s == NULL || out == NULL)
		return QP_EINVAL;
	if ((rc = map_usage(s, &used, &size)) != 0)
		return rc;
	if ((rc = qp__read_begin(s, &t, &txn)) != 0)
		return rc;
	o = json_object();
	recs = json_object();
	json_object_set_new(o, "records", recs);
	for (size_t i = 0; i < nk; i++) {
		if ((rc = qp__kind_count_get(txn, &s->db, kinds[i].name, &n)) !=
		    0)
			goto out;
		json_object_set_new(recs, kinds[i].name,
		                    json_integer((json_int_t)n));
	}
	json_object_set_new(
	    o, "deltas", json_integer((json_int_t)qp__entries(txn, s->db.log)));
	if ((rc = qp__log_bytes_get(txn, &s->db, &lb)) != 0)
		goto out;
	json_object_set_new(o, "log_bytes", json_integer((json_int_t)lb));
	json_object_set_new(
	    o, "feeds",
	    json_integer((json_int_t)qp__entries(txn, s->db.feeds)));
	json_object_set_new(
	    o, "conflicts",
	    json_integer((json_int_t)qp__entries(txn, s->db.conflicts)));
	json_object_set_new(
	    o, "quarantine",
	    json_integer((json_int_t)qp__entries(txn, s->db.quarantine)));
	json_object_set_new(
	    o, "forks",
	    json_integer((json_int_t)qp__entries(txn, s->db.forks)));
	json_object_set_new(o, "map_size", json_integer((json_int_t)size));
	json_object_set_new(o, "map_used", json_integer((json_int_t)used));
	qp_hex(s->pk, QP_KEY_LEN, hex);
	json_object_set_new(o, "key", json_string(hex));
	fd = json_array();
	json_object_set_new(o, "feeds_detail", fd);
	if ((rc = mdb_cursor_open(txn, s->db.feeds, &c)) != 0) {
		rc = qp__mdb(rc);
		goto out;
	}
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		if (k.mv_size != QP__FEED_LEN || d.mv_size != QP__HEAD_LEN)
			continue;
		qp_hex(k.mv_data, QP_KEY_LEN, hex);
		qp_uuid_format((uint8_t *)k.mv_data + QP_KEY_LEN, org);
		json_array_append_new(
		    fd, json_pack("{s:s, s:s, s:I}", "author", hex, "org", org,
		                  "seq", (json_int_t)qp_get_be64(d.mv_data)));
	}
	rc = rc == MDB_NOTFOUND ? 0 : qp__mdb(rc);
out:
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc != 0) {
		json_decref(o);
		return rc == QP__EMAPFULL ? QP_ESTORE : rc;
	}
	*out = o;
	return 0;
}
