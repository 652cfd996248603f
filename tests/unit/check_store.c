/*
 * check_store.c - covers daemon/store.c, daemon/store_write.c,
 * daemon/store_verify.c and daemon/apply.c: persistence, the write path
 * (groups, references, natural keys, update, void), the signed feeds,
 * verify (tampering, derived-state mismatch), map growth, and ingest of
 * other nodes' deltas (order independence, idempotence, forks, quarantine).
 */
#include <check.h>
#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "hlc.h"
#include "store.h"
#include "store_internal.h"
#include "store_sync.h"
#include "suites.h"
#include "util.h"

typedef struct tenv {
	char *dir;
	qp_store *s;
	uint8_t pk[QP_KEY_LEN], sk[QP_SKEY_LEN];
} tenv;

static void t_open(tenv *e)
{
	ck_assert_int_eq(qp_crypto_init(), 0);
	e->dir = qp_test_tmpdir();
	qp_key_generate(e->pk, e->sk);
	ck_assert_int_eq(qp_store_open(e->dir, e->pk, e->sk, &e->s), 0);
}

static void t_close(tenv *e)
{
	qp_store_close(e->s);
	qp_test_rmtree(e->dir);
	free(e->dir);
}

/* An 11-digit RUC with a valid SUNAT check digit after ten digits. */
static void make_ruc(const char *ten, char out[12])
{
	static const int w[10] = {5, 4, 3, 2, 7, 6, 5, 4, 3, 2};
	int sum = 0, r;
	for (int i = 0; i < 10; i++)
		sum += (ten[i] - '0') * w[i];
	r = 11 - sum % 11;
	r = r == 10 ? 0 : r == 11 ? 1 : r;
	memcpy(out, ten, 10);
	out[10] = (char)('0' + r);
	out[11] = '\0';
}

/* Write one group holding one create of kind with the JSON text made from
 * fmt.  Returns the group's rc; id (may be NULL) gets the new id, err (may
 * be NULL, 256 bytes) the message. */
static int addf(qp_store *s, const char *kind, char *id, char *err,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int addf(qp_store *s, const char *kind, char *id, char *err,
                const char *fmt, ...)
{
	char text[2048];
	json_error_t je;
	va_list ap;
	qp_write w = {.type = QP_OP_CREATE, .kind = kind};
	qp_wgroup g = {.writes = &w, .n = 1};
	int rc;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	w.rec = json_loads(text, 0, &je);
	ck_assert_msg(w.rec != NULL, "bad test JSON %s: %s", text, je.text);
	ck_assert_int_eq(qp_store_write(s, &g, 1), 0);
	json_decref(w.rec);
	rc = g.rc;
	if (rc == 0 && id != NULL)
		memcpy(id, g.ids[0], QP_UUID_STRLEN + 1);
	if (err != NULL)
		memcpy(err, g.err, QP_ERRMSG_LEN);
	qp_wgroup_clear(&g);
	return rc;
}

static void add_org(qp_store *s, const char *ten, char *id)
{
	char ruc[12], err[QP_ERRMSG_LEN];
	make_ruc(ten, ruc);
	ck_assert_msg(addf(s, "org", id, err,
	                   "{\"ruc\":\"%s\",\"name\":\"Coop %s\","
	                   "\"type\":\"cooperative\"}",
	                   ruc, ten) == 0,
	              "org: %s", err);
}

static void add_producer(qp_store *s, const char *org, const char *dni,
                         const char *name, char *id)
{
	char err[QP_ERRMSG_LEN];
	ck_assert_msg(addf(s, "producer", id, err,
	                   "{\"org\":\"%s\",\"dni\":\"%s\",\"name\":\"%s\","
	                   "\"sex\":\"F\",\"community\":\"Huallaga\"}",
	                   org, dni, name) == 0,
	              "producer: %s", err);
}

static int update1(qp_store *s, const char *id, const char *changes, char *err)
{
	qp_write w = {.type = QP_OP_UPDATE, .id = id};
	qp_wgroup g = {.writes = &w, .n = 1};
	int rc;
	w.changes = json_loads(changes, 0, NULL);
	ck_assert_ptr_nonnull(w.changes);
	ck_assert_int_eq(qp_store_write(s, &g, 1), 0);
	json_decref(w.changes);
	rc = g.rc;
	if (err != NULL)
		memcpy(err, g.err, QP_ERRMSG_LEN);
	qp_wgroup_clear(&g);
	return rc;
}

/* A service of org and a session of it (on date, 09:30 in Peru), into sv
 * and ss (37 bytes each; sv may be NULL to make none and use svc). */
static void add_session(qp_store *s, const char *org, const char *svc,
                        const char *date, char *sv, char *ss)
{
	char err[QP_ERRMSG_LEN];

	if (sv != NULL) {
		ck_assert_int_eq(
		    addf(s, "service", sv, err,
		         "{\"org\":\"%s\",\"title\":\"Poda\","
		         "\"area\":\"production\",\"provider\":\"INIA\"}",
		         org),
		    0);
		svc = sv;
	}
	ck_assert_msg(addf(s, "session", ss, err,
	                   "{\"org\":\"%s\",\"service\":\"%s\","
	                   "\"starts_at\":\"%sT09:30:00-05:00\"}",
	                   org, svc, date) == 0,
	              "%s", err);
}

static int void1(qp_store *s, const char *id, const char *reason, char *err)
{
	qp_write w = {.type = QP_OP_VOID, .id = id, .reason = reason};
	qp_wgroup g = {.writes = &w, .n = 1};
	int rc;
	ck_assert_int_eq(qp_store_write(s, &g, 1), 0);
	rc = g.rc;
	if (err != NULL)
		memcpy(err, g.err, QP_ERRMSG_LEN);
	qp_wgroup_clear(&g);
	return rc;
}

static void verify_ok(qp_store *s)
{
	json_t *rep = NULL;
	int rc = qp_store_verify(s, &rep);
	ck_assert_msg(rc == 0, "verify: %s",
	              json_string_value(json_object_get(rep, "error")));
	ck_assert(json_is_true(json_object_get(rep, "ok")));
	json_decref(rep);
}

static json_int_t stat_int(qp_store *s, const char *key)
{
	json_t *st;
	json_int_t v;
	ck_assert_int_eq(qp_store_stats(s, &st), 0);
	v = json_integer_value(json_object_get(st, key));
	json_decref(st);
	return v;
}

static json_int_t stat_records(qp_store *s, const char *kind)
{
	json_t *st;
	json_int_t v;
	ck_assert_int_eq(qp_store_stats(s, &st), 0);
	v = json_integer_value(
	    json_object_get(json_object_get(st, "records"), kind));
	json_decref(st);
	return v;
}

static const char *get_str(qp_store *s, const char *id, const char *field,
                           char *buf, size_t len)
{
	json_t *rec;
	ck_assert_int_eq(qp_store_get(s, id, &rec, NULL), 0);
	snprintf(buf, len, "%s",
	         json_string_value(json_object_get(rec, field))
	             ? json_string_value(json_object_get(rec, field))
	             : "(absent)");
	json_decref(rec);
	return buf;
}

static size_t list_n(qp_store *s, const char *kind, const char *org, int voided)
{
	json_t *arr;
	char next[QP_UUID_STRLEN + 1];
	size_t n;
	ck_assert_int_eq(
	    qp_store_list(s, kind, org, NULL, 0, voided, &arr, next), 0);
	ck_assert_str_eq(next, "");
	n = json_array_size(arr);
	json_decref(arr);
	return n;
}

/* ---- persistence and basic records -------------------------------- */

START_TEST(reopen_keeps_records)
{
	tenv e;
	char org[37], p[37], buf[64];
	json_t *rec, *meta;
	json_int_t v1, v2;

	t_open(&e);
	add_org(e.s, "2012345678", org);
	add_producer(e.s, org, "12345678", "Ana Quispe", p);
	ck_assert_int_eq(qp_store_get(e.s, p, &rec, &meta), 0);
	v1 = json_integer_value(json_object_get(meta, "version"));
	json_decref(rec);
	json_decref(meta);
	qp_store_close(e.s);

	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	ck_assert_str_eq(get_str(e.s, p, "name", buf, sizeof buf),
	                 "Ana Quispe");
	ck_assert_str_eq(get_str(e.s, org, "org", buf, sizeof buf), org);
	ck_assert_int_eq(stat_int(e.s, "deltas"), 2);
	/* The clock persisted: a later edit gets a later version. */
	ck_assert_int_eq(update1(e.s, p, "{\"name\":\"Ana Q.\"}", NULL), 0);
	ck_assert_int_eq(qp_store_get(e.s, p, &rec, &meta), 0);
	v2 = json_integer_value(json_object_get(meta, "version"));
	ck_assert(v2 > v1);
	json_decref(rec);
	json_decref(meta);
	t_close(&e);
}
END_TEST

/* Copy the file from/name to to/name byte for byte (a backup). */
static void copy_file(const char *from, const char *to, const char *name)
{
	char a[512], b[512], buf[65536];
	FILE *in, *out;
	size_t n;

	snprintf(a, sizeof a, "%s/%s", from, name);
	snprintf(b, sizeof b, "%s/%s", to, name);
	in = fopen(a, "rb");
	out = fopen(b, "wb");
	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
}

/* A store opened from a copy of its data file knows it is a copy until
 * settled; reopening the same file is not a copy. */
START_TEST(copy_detected_until_settled)
{
	tenv e;
	char org[37], *bak = qp_test_tmpdir();

	t_open(&e);
	add_org(e.s, "2012345678", org);
	ck_assert_int_eq(qp_store_is_copy(e.s), 0);
	qp_store_close(e.s);
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	ck_assert_int_eq(qp_store_is_copy(e.s), 0);
	qp_store_close(e.s);

	copy_file(e.dir, bak, "data.mdb");
	ck_assert_int_eq(qp_store_open(bak, e.pk, e.sk, &e.s), 0);
	ck_assert_int_eq(qp_store_is_copy(e.s), 1);
	ck_assert_int_eq(stat_int(e.s, "deltas"), 1); /* the data came along */
	ck_assert_int_eq(qp_store_copy_settle(e.s), 0);
	ck_assert_int_eq(qp_store_is_copy(e.s), 0);
	qp_store_close(e.s);
	ck_assert_int_eq(qp_store_open(bak, e.pk, e.sk, &e.s), 0);
	ck_assert_int_eq(qp_store_is_copy(e.s), 0);
	qp_store_close(e.s);
	/* The original, opened again, is still not a copy of anything. */
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	ck_assert_int_eq(qp_store_is_copy(e.s), 0);
	qp_test_rmtree(bak);
	free(bak);
	t_close(&e);
}
END_TEST

/* qp_store_copy: a compacted copy that opens as a store of its own (and
 * knows it is a copy), holds what the original held and verifies; it never
 * overwrites a data file, and a store that is not there is named so. */
START_TEST(copy_makes_a_backup)
{
	tenv e;
	char org[37], p1[37], p2[37], *bak = qp_test_tmpdir(), path[512];
	qp_store_copy_info info = {0, 0, 0};
	json_t *rec = NULL, *meta = NULL;
	struct stat st;
	json_int_t deltas;

	t_open(&e);
	add_org(e.s, "2012345670", org);
	add_producer(e.s, org, "41829376", "Rosa Huaman", p1);
	add_producer(e.s, org, "41829377", "Juana Quispe", p2);
	ck_assert_int_eq(void1(e.s, p2, "registrada dos veces", NULL), 0);
	deltas = stat_int(e.s, "deltas");
	qp_store_close(e.s);

	ck_assert_int_eq(qp_store_copy(e.dir, bak, &info), 0);
	ck_assert_uint_eq(info.deltas, (uint64_t)deltas);
	ck_assert_uint_eq(info.records, 3); /* the void one too */
	snprintf(path, sizeof path, "%s/data.mdb", bak);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(info.bytes, (uint64_t)st.st_size);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	snprintf(path, sizeof path, "%s/lock.mdb", bak);
	ck_assert_int_ne(access(path, F_OK), 0); /* counted without a lock */

	/* Never over a data file: the one there stays as it was. */
	ck_assert_int_eq(qp_store_copy(e.dir, bak, NULL), QP_EEXIST);
	snprintf(path, sizeof path, "%s/data.mdb", bak);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, info.bytes);
	snprintf(path, sizeof path, "%s/none", e.dir);
	ck_assert_int_eq(qp_store_copy(path, bak, NULL), QP_ENOTFOUND);
	snprintf(path, sizeof path, "%s/none", bak);
	ck_assert_int_eq(qp_store_copy(e.dir, path, NULL), -ENOENT);

	ck_assert_int_eq(qp_store_open(bak, e.pk, e.sk, &e.s), 0);
	ck_assert_int_eq(qp_store_is_copy(e.s), 1);
	ck_assert_int_eq(stat_int(e.s, "deltas"), deltas);
	ck_assert_int_eq(qp_store_get(e.s, p1, &rec, &meta), 0);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "name")),
	                 "Rosa Huaman");
	json_decref(rec);
	json_decref(meta);
	verify_ok(e.s);
	qp_store_close(e.s);
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	ck_assert_int_eq(qp_store_is_copy(e.s), 0); /* the original is not */
	qp_test_rmtree(bak);
	free(bak);
	t_close(&e);
}
END_TEST

static void meta_edit(const char *dir, const char *key, const void *v,
                      size_t len, uint8_t old[8]);

/* A restored file may get the inode number of the one it replaces: its
 * birth time still tells it apart.  A store that recorded device and inode
 * only (16 bytes) is not taken for a copy of itself. */
START_TEST(copy_detected_on_reused_inode)
{
	tenv e;
	char org[37], path[600];
	uint8_t id[28];
	struct stat st;

	t_open(&e);
	add_org(e.s, "2012345678", org);
	qp_store_close(e.s);
	snprintf(path, sizeof path, "%s/data.mdb", e.dir);
	ck_assert_int_eq(stat(path, &st), 0);
	/* The identity of an older store: device and inode. */
	qp_put_be64(id, (uint64_t)st.st_dev);
	qp_put_be64(id + 8, (uint64_t)st.st_ino);
	meta_edit(e.dir, "file", id, 16, NULL);
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	ck_assert_int_eq(qp_store_is_copy(e.s), 0);
	qp_store_close(e.s);
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	ck_assert_int_eq(qp_store_is_copy(e.s), 0);
	qp_store_close(e.s);
	/* Same device and inode, another birth time: the file was replaced. */
	memset(id + 16, 0, 12);
	id[23] = 1;
	meta_edit(e.dir, "file", id, sizeof id, NULL);
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	ck_assert_int_eq(qp_store_is_copy(e.s), 1);
	t_close(&e);
}
END_TEST

/* Behind the store's back (it must be closed): in database db, set key
 * key[0..kl) to the len bytes v, or delete it when v is NULL; with old
 * set, read its value first into old[0..8). */
static void db_edit(const char *dir, const char *db, const void *key,
                    size_t kl, const void *v, size_t len, uint8_t old[8])
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {kl, (void *)key}, d = {len, (void *)v};

	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 16), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, db, 0, &dbi), 0);
	if (old != NULL) {
		MDB_val o;
		ck_assert_int_eq(mdb_get(txn, dbi, &k, &o), 0);
		ck_assert_uint_le(o.mv_size, 8);
		memcpy(old, o.mv_data, o.mv_size);
	}
	if (v != NULL)
		ck_assert_int_eq(mdb_put(txn, dbi, &k, &d, 0), 0);
	else
		ck_assert_int_eq(mdb_del(txn, dbi, &k, NULL), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void meta_edit(const char *dir, const char *key, const void *v,
                      size_t len, uint8_t old[8])
{
	db_edit(dir, "meta", key, strlen(key), v, len, old);
}

START_TEST(newer_schema_refused)
{
	tenv e;
	uint8_t v[4] = {0, 0, 0, 99};

	t_open(&e);
	qp_store_close(e.s);
	meta_edit(e.dir, "schema", v, 4, NULL);
	e.s = NULL;
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), QP_EVERSION);
	ck_assert_ptr_null(e.s);
	ck_assert_int_eq(qp_store_open("/nonexistent/quipu", e.pk, e.sk, &e.s),
	                 -ENOENT);
	t_close(&e);
}
END_TEST

/* Attendance of a producer at a session of an org (org, session,
 * producer), and of a person by DNI (org, session, dni). */
static const char ATT_BY_PRODUCER[] =
    "{\"org\":\"%s\",\"session\":\"%s\",\"status\":\"present\","
    "\"producer\":\"%s\"}";
static const char ATT_BY_DNI[] =
    "{\"org\":\"%s\",\"session\":\"%s\",\"status\":\"present\","
    "\"dni\":\"%s\",\"name\":\"Invitada\"}";

/* A person is recorded once per session: a double tap or a file imported
 * twice does not count anyone twice. */
START_TEST(attendance_once_per_session)
{
	tenv e;
	char org[37], p[37], sv[37], s1[37], s2[37], at[37], at2[37],
	    err[QP_ERRMSG_LEN], want[QP_ERRMSG_LEN];

	t_open(&e);
	add_org(e.s, "2060000001", org);
	add_producer(e.s, org, "40000001", "Rosa", p);
	add_session(e.s, org, NULL, "2026-11-23", sv, s1);
	add_session(e.s, org, sv, "2026-11-30", NULL, s2);
	ck_assert_int_eq(addf(e.s, "attendance", at, err, ATT_BY_PRODUCER, org, s1, p),
	                 0);
	ck_assert_int_eq(addf(e.s, "attendance", NULL, err, ATT_BY_PRODUCER, org, s1, p),
	                 QP_EEXIST);
	snprintf(want, sizeof want,
	         "attendance.producer: %s is already registered for this "
	         "session as %s",
	         p, at);
	ck_assert_str_eq(err, want);
	/* Another session is another attendance. */
	ck_assert_int_eq(addf(e.s, "attendance", NULL, err, ATT_BY_PRODUCER, org, s2, p),
	                 0);
	/* A person without a producer record, by DNI. */
	ck_assert_int_eq(addf(e.s, "attendance", at2, err, ATT_BY_DNI, org, s1,
	                      "40000009"),
	                 0);
	ck_assert_int_eq(addf(e.s, "attendance", NULL, err, ATT_BY_DNI, org, s1,
	                      "40000009"),
	                 QP_EEXIST);
	snprintf(want, sizeof want,
	         "attendance.dni: 40000009 is already registered for this "
	         "session as %s",
	         at2);
	ck_assert_str_eq(err, want);
	/* Voided, the place is free again (the correction of a wrong
	 * status: void it and record the person anew). */
	ck_assert_int_eq(void1(e.s, at, "wrong status", err), 0);
	ck_assert_int_eq(addf(e.s, "attendance", NULL, err, ATT_BY_PRODUCER, org, s1, p),
	                 0);
	ck_assert_int_eq(stat_records(e.s, "attendance"), 4);
	verify_ok(e.s);
	t_close(&e);
}
END_TEST

/* A registered producer given by her DNI is that producer (as report
 * attendance and check duplicates count persons): recorded once by id,
 * she is not recorded again at the session by DNI, nor the other way. */
START_TEST(attendance_producer_by_dni_is_one_person)
{
	tenv e;
	char org[37], org2[37], p[37], q[37], sv[37], ss[37], at[37], at2[37],
	    err[QP_ERRMSG_LEN], want[QP_ERRMSG_LEN];

	t_open(&e);
	add_org(e.s, "2060000001", org);
	add_org(e.s, "2060000002", org2);
	add_producer(e.s, org, "40000001", "Rosa", p);
	add_producer(e.s, org, "40000002", "Juana", q);
	add_session(e.s, org, NULL, "2026-11-23", sv, ss);
	/* By id, then by her DNI. */
	ck_assert_int_eq(addf(e.s, "attendance", at, err, ATT_BY_PRODUCER, org, ss, p),
	                 0);
	ck_assert_int_eq(addf(e.s, "attendance", NULL, err, ATT_BY_DNI, org, ss,
	                      "40000001"),
	                 QP_EEXIST);
	snprintf(want, sizeof want,
	         "attendance.dni: 40000001 is producer %s's DNI, already "
	         "registered for this session as %s",
	         p, at);
	ck_assert_str_eq(err, want);
	/* By DNI, then by id. */
	ck_assert_int_eq(addf(e.s, "attendance", at2, err, ATT_BY_DNI, org, ss,
	                      "40000002"),
	                 0);
	ck_assert_int_eq(addf(e.s, "attendance", NULL, err, ATT_BY_PRODUCER, org, ss, q),
	                 QP_EEXIST);
	snprintf(want, sizeof want,
	         "attendance.producer: %s (DNI 40000002) is already registered "
	         "for this session by DNI as %s",
	         q, at2);
	ck_assert_str_eq(err, want);
	/* In another org the DNI names no producer of it: another person to
	 * the report, so accepted (only the DNI key of the session holds). */
	ck_assert_int_eq(addf(e.s, "attendance", NULL, err, ATT_BY_DNI, org2, ss,
	                      "40000001"),
	                 0);
	/* Voided, the place is free again. */
	ck_assert_int_eq(void1(e.s, at2, "by DNI by mistake", err), 0);
	ck_assert_int_eq(addf(e.s, "attendance", NULL, err, ATT_BY_PRODUCER, org, ss, q),
	                 0);
	ck_assert_int_eq(stat_records(e.s, "attendance"), 4);
	verify_ok(e.s);
	t_close(&e);
}
END_TEST

START_TEST(create_kinds_and_get)
{
	tenv e;
	char org[37], p[37], sv[37], ss[37], at[37], err[QP_ERRMSG_LEN];
	char key[65];
	json_t *rec, *meta;

	t_open(&e);
	add_org(e.s, "2060000001", org);
	add_producer(e.s, org, "40000001", "Rosa", p);
	add_session(e.s, org, NULL, "2026-11-23", sv, ss);
	ck_assert_msg(addf(e.s, "attendance", at, err,
	                   "{\"org\":\"%s\",\"session\":\"%s\","
	                   "\"status\":\"present\",\"producer\":\"%s\"}",
	                   org, ss, p) == 0,
	              "%s", err);

	ck_assert_int_eq(qp_store_get(e.s, at, &rec, &meta), 0);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "kind")),
	                 "attendance");
	ck_assert_str_eq(json_string_value(json_object_get(rec, "id")), at);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "org")), org);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "session")),
	                 ss);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "status")),
	                 "present");
	qp_hex(e.pk, QP_KEY_LEN, key);
	ck_assert_str_eq(json_string_value(json_object_get(meta, "author")),
	                 key);
	ck_assert_int_eq(json_integer_value(json_object_get(meta, "conflicts")),
	                 0);
	ck_assert_ptr_null(json_object_get(meta, "voided"));
	ck_assert_ptr_nonnull(json_object_get(meta, "created"));
	json_decref(rec);
	json_decref(meta);

	/* An org record belongs to itself; ids given in upper case are
	 * stored canonically. */
	ck_assert_int_eq(qp_store_get(e.s, org, &rec, NULL), 0);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "org")), org);
	json_decref(rec);
	ck_assert_int_eq(
	    addf(e.s, "service", NULL, err,
	         "{\"id\":\"0190A0B0-C0D0-7E0F-8a0b-0C0D0E0F1011\","
	         "\"org\":\"%s\",\"title\":\"T\",\"area\":"
	         "\"management\",\"provider\":\"P\"}",
	         org),
	    0);
	ck_assert_int_eq(qp_store_get(e.s,
	                              "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1011",
	                              &rec, NULL),
	                 0);
	json_decref(rec);
	ck_assert_int_eq(
	    addf(e.s, "service", NULL, err,
	         "{\"id\":\"0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1011\","
	         "\"org\":\"%s\",\"title\":\"T\",\"area\":"
	         "\"management\",\"provider\":\"P\"}",
	         org),
	    QP_EEXIST);
	ck_assert_str_eq(err, "service.id: a record with this id exists");
	ck_assert_int_eq(
	    addf(e.s, "service", NULL, err,
	         "{\"id\":\"00000000-0000-0000-0000-000000000000\","
	         "\"org\":\"%s\",\"title\":\"T\",\"area\":"
	         "\"management\",\"provider\":\"P\"}",
	         org),
	    QP_EVALID);
	ck_assert_str_eq(err, "service.id: the nil UUID is not an id (leave id "
	                      "out to get a new one)");
	ck_assert_int_eq(addf(e.s, "service", NULL, err,
	                      "{\"kind\":\"producer\",\"org\":\"%s\"}", org),
	                 QP_EVALID);
	ck_assert_str_eq(err,
	                 "service.kind: does not match the command's kind");
	ck_assert_int_eq(qp_store_get(e.s, "nope", &rec, NULL), QP_ENOTFOUND);
	ck_assert_int_eq(qp_store_get(e.s,
	                              "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1012",
	                              &rec, NULL),
	                 QP_ENOTFOUND);
	t_close(&e);
}
END_TEST

/* Plot geometry goes through geo.h at write time: a bow-tie is refused
 * naming ring and vertex and leaves nothing; a clockwise ring is stored
 * counter-clockwise (op and state alike: verify rebuilds the same); the
 * measured area and warnings are in the meta. */
START_TEST(plot_geometry_checked)
{
	tenv e;
	char org[37], p[37], pl[37], err[QP_ERRMSG_LEN];
	json_int_t d0;
	json_t *rec, *meta, *ring;
	const char *w;

	t_open(&e);
	add_org(e.s, "2060000009", org);
	add_producer(e.s, org, "40000009", "Rosa", p);
	d0 = stat_int(e.s, "deltas");
	ck_assert_int_eq(
	    addf(e.s, "plot", NULL, err,
	         "{\"org\":\"%s\",\"producer\":\"%s\",\"crop\":\"coffee\","
	         "\"geometry\":{\"type\":\"Polygon\",\"coordinates\":"
	         "[[[-74.64,-11.25],[-74.639085,-11.2491],"
	         "[-74.639085,-11.25],[-74.64,-11.2491],[-74.64,-11.25]]]}}",
	         org, p),
	    QP_EVALID);
	ck_assert_msg(strstr(err, "plot.geometry: ring 0 self-intersects "
	                          "near vertex ") == err,
	              "%s", err);
	ck_assert_int_eq(stat_int(e.s, "deltas"), d0);
	ck_assert_uint_eq(list_n(e.s, "plot", NULL, 1), 0);

	/* Clockwise, declared 3.2 ha for about 1 ha. */
	ck_assert_msg(
	    addf(e.s, "plot", pl, err,
	         "{\"org\":\"%s\",\"producer\":\"%s\",\"crop\":\"coffee\","
	         "\"area_ha\":3.2,"
	         "\"geometry\":{\"type\":\"Polygon\",\"coordinates\":"
	         "[[[-74.64,-11.25],[-74.64,-11.2491],"
	         "[-74.639085,-11.2491],[-74.639085,-11.25],[-74.64,-11.25]]]}}",
	         org, p) == 0,
	    "%s", err);
	ck_assert_int_eq(qp_store_get(e.s, pl, &rec, &meta), 0);
	ring = json_array_get(
	    json_object_get(json_object_get(rec, "geometry"), "coordinates"),
	    0);
	/* Reversed: the second position is now the south-east corner. */
	ck_assert(json_real_value(json_array_get(json_array_get(ring, 1), 0)) ==
	          -74.639085);
	ck_assert(json_real_value(json_array_get(json_array_get(ring, 1), 1)) ==
	          -11.25);
	ck_assert(json_real_value(json_object_get(meta, "area_ha_measured")) >
	          0.95);
	ck_assert(json_real_value(json_object_get(meta, "area_ha_measured")) <
	          1.05);
	w = json_string_value(json_object_get(meta, "warnings"));
	ck_assert_msg(w != NULL && strstr(w, "plot.geometry: declared area "
	                                     "3.20 ha differs from measured") ==
	                               w,
	              "%s", w ? w : "(none)");
	json_decref(rec);
	json_decref(meta);
	verify_ok(e.s);
	t_close(&e);
}
END_TEST

START_TEST(list_by_kind_and_org)
{
	tenv e;
	char a[37], b[37], pa[5][37], pb[3][37], dni[24], next[37],
	    prev[37] = "";
	json_t *arr;
	size_t total = 0, pages = 0;

	t_open(&e);
	add_org(e.s, "2060000002", a);
	add_org(e.s, "2060000003", b);
	for (int i = 0; i < 5; i++) {
		snprintf(dni, sizeof dni, "1000000%d", i);
		add_producer(e.s, a, dni, "A", pa[i]);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(dni, sizeof dni, "2000000%d", i);
		add_producer(e.s, b, dni, "B", pb[i]);
	}
	ck_assert_int_eq(addf(e.s, "service", NULL, NULL,
	                      "{\"org\":\"%s\",\"title\":\"T\",\"area\":"
	                      "\"management\",\"provider\":\"P\"}",
	                      b),
	                 0);
	ck_assert_uint_eq(list_n(e.s, "producer", NULL, 0), 8);
	ck_assert_uint_eq(list_n(e.s, "producer", a, 0), 5);
	ck_assert_uint_eq(list_n(e.s, "producer", b, 0), 3);
	ck_assert_uint_eq(list_n(e.s, "service", a, 0), 0);
	ck_assert_uint_eq(list_n(e.s, NULL, b, 0),
	                  5); /* org, 3 producers, service */
	ck_assert_uint_eq(list_n(e.s, NULL, NULL, 0), 11);
	ck_assert_uint_eq(list_n(e.s, "org", NULL, 0), 2);
	ck_assert_uint_eq(list_n(e.s, "lot", NULL, 0), 0);

	/* Pages of 2 over org a's producers: 2, 2, 1, in id order. */
	do {
		ck_assert_int_eq(qp_store_list(e.s, "producer", a,
		                               prev[0] ? prev : NULL, 2, 0,
		                               &arr, next),
		                 0);
		for (size_t i = 0; i < json_array_size(arr); i++) {
			const char *id = json_string_value(
			    json_object_get(json_array_get(arr, i), "id"));
			ck_assert_str_eq(id, pa[total + i]);
		}
		total += json_array_size(arr);
		pages++;
		json_decref(arr);
		memcpy(prev, next, sizeof prev);
	} while (next[0] != '\0');
	ck_assert_uint_eq(total, 5);
	ck_assert_uint_eq(pages, 3);

	/* Across orgs, still in id order. */
	ck_assert_int_eq(
	    qp_store_list(e.s, "producer", NULL, pa[4], 0, 0, &arr, next), 0);
	ck_assert_uint_eq(json_array_size(arr), 3);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_array_get(arr, 0), "id")),
	    pb[0]);
	json_decref(arr);
	t_close(&e);
}
END_TEST

/* ---- the write path ------------------------------------------------ */

START_TEST(refused_group_changes_nothing)
{
	tenv e;
	char org[37], text[3][256];
	qp_write w[3];
	qp_wgroup g[2];

	t_open(&e);
	add_org(e.s, "2060000004", org);
	snprintf(text[0], sizeof text[0],
	         "{\"org\":\"%s\",\"dni\":\"30000001\",\"name\":\"X\",\"sex\":"
	         "\"M\"}",
	         org);
	snprintf(
	    text[1], sizeof text[1],
	    "{\"org\":\"%s\",\"dni\":\"3000\",\"name\":\"Y\",\"sex\":\"M\"}",
	    org);
	snprintf(text[2], sizeof text[2],
	         "{\"org\":\"%s\",\"dni\":\"30000003\",\"name\":\"Z\",\"sex\":"
	         "\"X\"}",
	         org);
	memset(w, 0, sizeof w);
	memset(g, 0, sizeof g);
	for (int i = 0; i < 3; i++) {
		w[i].type = QP_OP_CREATE;
		w[i].kind = "producer";
		w[i].rec = json_loads(text[i], 0, NULL);
	}
	g[0].writes = w;
	g[0].n = 2;
	g[1].writes = w + 2;
	g[1].n = 1;
	ck_assert_int_eq(qp_store_write(e.s, g, 2), 0);
	ck_assert_int_eq(g[0].rc, QP_EVALID);
	ck_assert_uint_eq(g[0].failed, 1);
	ck_assert_str_eq(g[0].err, "producer.dni: must be exactly 8 digits");
	ck_assert_ptr_null(g[0].ids);
	ck_assert_int_eq(g[1].rc, 0);
	ck_assert_uint_eq(list_n(e.s, "producer", NULL, 0), 1);
	/* The refused group's DNI is free; one delta for the accepted one. */
	ck_assert_int_eq(stat_int(e.s, "deltas"), 2);
	ck_assert_int_eq(addf(e.s, "producer", NULL, NULL,
	                      "{\"org\":\"%s\",\"dni\":\"30000001\",\"name\":"
	                      "\"X\",\"sex\":\"M\"}",
	                      org),
	                 0);
	for (int i = 0; i < 3; i++)
		json_decref(w[i].rec);
	qp_wgroup_clear(&g[0]);
	qp_wgroup_clear(&g[1]);
	t_close(&e);
}
END_TEST

START_TEST(references_must_resolve)
{
	tenv e;
	char org[37], p[37], sv[37], err[QP_ERRMSG_LEN], want[QP_ERRMSG_LEN];
	const char *missing = "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1099";
	qp_write w[2];
	qp_wgroup g = {.writes = w, .n = 2};
	char t0[256], t1[256];

	t_open(&e);
	add_org(e.s, "2060000005", org);
	add_producer(e.s, org, "50000001", "P", p);
	ck_assert_int_eq(addf(e.s, "session", NULL, err,
	                      "{\"org\":\"%s\",\"service\":\"%s\","
	                      "\"starts_at\":\"2026-11-23T09:30:00-05:00\"}",
	                      org, missing),
	                 QP_EVALID);
	snprintf(want, sizeof want,
	         "session.service: no service with id %s on this node",
	         missing);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(addf(e.s, "session", NULL, err,
	                      "{\"org\":\"%s\",\"service\":\"%s\","
	                      "\"starts_at\":\"2026-11-23T09:30:00-05:00\"}",
	                      org, p),
	                 QP_EVALID);
	snprintf(want, sizeof want,
	         "session.service: %s is a producer, not a service", p);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(addf(e.s, "producer", NULL, err,
	                      "{\"org\":\"%s\",\"dni\":\"50000002\",\"name\":"
	                      "\"Q\",\"sex\":\"F\"}",
	                      missing),
	                 QP_EVALID);
	snprintf(want, sizeof want,
	         "producer.org: no org with id %s on this node", missing);
	ck_assert_str_eq(err, want);

	/* A record made earlier in the same group resolves. */
	memset(w, 0, sizeof w);
	snprintf(
	    t0, sizeof t0,
	    "{\"id\":\"0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f2000\",\"org\":\"%s\","
	    "\"title\":\"T\",\"area\":\"management\",\"provider\":\"P\"}",
	    org);
	snprintf(t1, sizeof t1,
	         "{\"org\":\"%s\",\"service\":\"0190a0b0-c0d0-7e0f-8a0b-"
	         "0c0d0e0f2000\",\"starts_at\":\"2026-11-23T09:30:00-05:00\"}",
	         org);
	w[0].type = w[1].type = QP_OP_CREATE;
	w[0].kind = "service";
	w[1].kind = "session";
	w[0].rec = json_loads(t0, 0, NULL);
	w[1].rec = json_loads(t1, 0, NULL);
	ck_assert_int_eq(qp_store_write(e.s, &g, 1), 0);
	ck_assert_msg(g.rc == 0, "%s", g.err);
	memcpy(sv, g.ids[0], sizeof sv);
	ck_assert_str_eq(sv, "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f2000");
	qp_wgroup_clear(&g);
	json_decref(w[0].rec);
	json_decref(w[1].rec);
	t_close(&e);
}
END_TEST

START_TEST(natural_keys_unique)
{
	tenv e;
	char a[37], b[37], p[37], err[QP_ERRMSG_LEN], want[QP_ERRMSG_LEN],
	    ruc[12];

	t_open(&e);
	add_org(e.s, "2060000006", a);
	add_org(e.s, "2060000007", b);
	add_producer(e.s, a, "12345678", "Ana", p);
	ck_assert_int_eq(addf(e.s, "producer", NULL, err,
	                      "{\"org\":\"%s\",\"dni\":\"12345678\",\"name\":"
	                      "\"Otra\",\"sex\":\"F\"}",
	                      a),
	                 QP_EEXIST);
	snprintf(
	    want, sizeof want,
	    "producer.dni: 12345678 is already registered in this org as %s",
	    p);
	ck_assert_str_eq(err, want);
	/* Twice in one request: the message names no id, as the first of
	 * the two goes with the refused group; the group names the write
	 * that gave the key first (twin: 1 + its index). */
	{
		qp_write w[3];
		qp_wgroup g = {.writes = w, .n = 3};
		char t[3][256];
		static const char *const dnis[3] = {"34567890", "23456789",
		                                    "23456789"};
		memset(w, 0, sizeof w);
		for (int i = 0; i < 3; i++) {
			snprintf(t[i], sizeof t[i],
			         "{\"org\":\"%s\",\"dni\":\"%s\",\"name\":"
			         "\"Uno\",\"sex\":\"F\"}",
			         a, dnis[i]);
			w[i].type = QP_OP_CREATE;
			w[i].kind = "producer";
			w[i].rec = json_loads(t[i], 0, NULL);
		}
		ck_assert_int_eq(qp_store_write(e.s, &g, 1), 0);
		ck_assert_int_eq(g.rc, QP_EEXIST);
		ck_assert_str_eq(g.err, "producer.dni: 23456789 is given twice");
		ck_assert_uint_eq(g.failed, 2);
		ck_assert_uint_eq(g.twin, 2);
		qp_wgroup_clear(&g);
		for (int i = 0; i < 3; i++)
			json_decref(w[i].rec);
	}
	/* Another org may register the same person. */
	add_producer(e.s, b, "12345678", "Ana", NULL);
	/* RUC is unique across orgs. */
	make_ruc("2060000006", ruc);
	ck_assert_int_eq(
	    addf(e.s, "org", NULL, err,
	         "{\"ruc\":\"%s\",\"name\":\"Dup\",\"type\":\"firm\"}", ruc),
	    QP_EEXIST);
	snprintf(want, sizeof want, "org.ruc: %s is already registered as %s",
	         ruc, a);
	ck_assert_str_eq(err, want);
	/* Changing the DNI to a taken one is refused; to a free one frees the
	 * old value. */
	add_producer(e.s, a, "87654321", "Beto", NULL);
	ck_assert_int_eq(update1(e.s, p, "{\"dni\":\"87654321\"}", err),
	                 QP_EEXIST);
	ck_assert_int_eq(update1(e.s, p, "{\"dni\":\"11112222\"}", err), 0);
	add_producer(e.s, a, "12345678", "Nueva", NULL);
	/* A voided record gives its key back. */
	ck_assert_int_eq(void1(e.s, p, "duplicate entry", NULL), 0);
	add_producer(e.s, a, "11112222", "Otra vez", NULL);
	verify_ok(e.s);
	t_close(&e);
}
END_TEST

START_TEST(update_changes_fields)
{
	tenv e;
	char org[37], p[37], buf[64], err[QP_ERRMSG_LEN];
	json_t *rec, *meta;
	json_int_t v1, v2, d0;

	t_open(&e);
	add_org(e.s, "2060000008", org);
	add_producer(e.s, org, "60000001", "Ana", p);
	ck_assert_int_eq(qp_store_get(e.s, p, &rec, &meta), 0);
	v1 = json_integer_value(json_object_get(meta, "version"));
	json_decref(rec);
	json_decref(meta);

	ck_assert_int_eq(update1(e.s, p,
	                         "{\"name\":\"Ana María\",\"phone\":"
	                         "\"+51 987 654 321\",\"community\":null}",
	                         err),
	                 0);
	ck_assert_int_eq(qp_store_get(e.s, p, &rec, &meta), 0);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "name")),
	                 "Ana María");
	ck_assert_str_eq(json_string_value(json_object_get(rec, "dni")),
	                 "60000001");
	ck_assert_str_eq(json_string_value(json_object_get(rec, "phone")),
	                 "+51 987 654 321");
	ck_assert_ptr_null(json_object_get(rec, "community"));
	v2 = json_integer_value(json_object_get(meta, "version"));
	ck_assert(v2 > v1);
	json_decref(rec);
	json_decref(meta);

	/* Nothing changes: accepted, no delta. */
	d0 = stat_int(e.s, "deltas");
	ck_assert_int_eq(update1(e.s, p, "{\"name\":\"Ana María\"}", err), 0);
	ck_assert_int_eq(stat_int(e.s, "deltas"), d0);

	ck_assert_int_eq(update1(e.s, p, "{\"org\":\"x\"}", err), QP_EVALID);
	ck_assert_str_eq(err, "producer.org: cannot be changed");
	ck_assert_int_eq(update1(e.s, p, "{\"sex\":\"Q\"}", err), QP_EVALID);
	ck_assert_str_eq(get_str(e.s, p, "sex", buf, sizeof buf), "F");
	ck_assert_int_eq(update1(e.s, p, "{\"name\":null}", err), QP_EVALID);
	ck_assert_str_eq(err, "producer.name: required");
	ck_assert_int_eq(update1(e.s, p, "{\"color\":\"red\"}", err),
	                 QP_EVALID);
	ck_assert_str_eq(err, "producer.color: unknown field");
	ck_assert_int_eq(update1(e.s, "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1099",
	                         "{\"name\":\"x\"}", err),
	                 QP_ENOTFOUND);
	ck_assert_str_eq(err, "update: no record with id "
	                      "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1099");
	verify_ok(e.s);
	t_close(&e);
}
END_TEST

START_TEST(append_only_refuses_update)
{
	tenv e;
	char org[37], p[37], sv[37], ss[37], at[37], err[QP_ERRMSG_LEN];

	t_open(&e);
	add_org(e.s, "2060000009", org);
	add_producer(e.s, org, "70000001", "Ana", p);
	add_session(e.s, org, NULL, "2026-11-23", sv, ss);
	ck_assert_int_eq(addf(e.s, "attendance", at, err,
	                      "{\"org\":\"%s\",\"session\":\"%s\","
	                      "\"status\":\"present\",\"producer\":\"%s\"}",
	                      org, ss, p),
	                 0);
	ck_assert_int_eq(update1(e.s, at, "{\"status\":\"absent\"}", err),
	                 QP_EVALID);
	ck_assert_str_eq(err,
	                 "attendance: append-only; void it and add a new one");
	ck_assert_int_eq(void1(e.s, at, "wrong person", err), 0);
	t_close(&e);
}
END_TEST

START_TEST(void_hides_from_list)
{
	tenv e;
	char org[37], p[37], q[37], err[QP_ERRMSG_LEN], want[QP_ERRMSG_LEN];
	char big[1100];
	json_t *rec, *meta;

	t_open(&e);
	add_org(e.s, "2060000010", org);
	add_producer(e.s, org, "80000001", "Ana", p);
	add_producer(e.s, org, "80000002", "Beto", q);
	ck_assert_int_eq(void1(e.s, p, "", err), QP_EVALID);
	ck_assert_str_eq(err, "void: reason required");
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ck_assert_int_eq(void1(e.s, p, big, err), QP_EVALID);
	ck_assert_str_eq(err, "void: reason longer than 1000 bytes");
	ck_assert_int_eq(void1(e.s, p, "entered twice", err), 0);
	ck_assert_uint_eq(list_n(e.s, "producer", org, 0), 1);
	ck_assert_uint_eq(list_n(e.s, "producer", org, 1), 2);
	ck_assert_uint_eq(list_n(e.s, NULL, NULL, 0), 2);
	ck_assert_int_eq(qp_store_get(e.s, p, &rec, &meta), 0);
	ck_assert_str_eq(json_string_value(json_object_get(meta, "voided")),
	                 "entered twice");
	json_decref(rec);
	json_decref(meta);
	ck_assert_int_eq(void1(e.s, p, "again", err), QP_EVALID);
	snprintf(want, sizeof want, "producer: record %s is already voided", p);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(update1(e.s, p, "{\"name\":\"x\"}", err), QP_EVALID);
	snprintf(want, sizeof want, "producer: record %s is voided", p);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(
	    void1(e.s, "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1099", "r", err),
	    QP_ENOTFOUND);
	t_close(&e);
}
END_TEST

/* err must be "<prefix><id><suffix>". */
static void err_is(const char *err, const char *prefix, const char *id,
                   const char *suffix)
{
	char want[QP_ERRMSG_LEN];
	snprintf(want, sizeof want, "%s%s%s", prefix, id, suffix);
	ck_assert_str_eq(err, want);
}

#define PLOT_OF(org, prod)                                                   \
	"{\"org\":\"%s\",\"producer\":\"%s\",\"crop\":\"coffee\","          \
	"\"geometry\":{\"type\":\"Point\",\"coordinates\":[-74.5,-10.5]}}",  \
	    org, prod

/* A new reference names a live record of the record's own org (custody
 * and verification may cross orgs); an update does not look up again the
 * references it leaves as they are. */
START_TEST(refs_own_org_and_live)
{
	tenv e;
	char a[37], b[37], pa[37], pb[37], pv[37], plot[37], la[37], lb[37],
	    err[QP_ERRMSG_LEN];

	t_open(&e);
	add_org(e.s, "2060000021", a);
	add_org(e.s, "2060000022", b);
	add_producer(e.s, a, "41000001", "Ana", pa);
	add_producer(e.s, b, "41000002", "Berta", pb);
	add_producer(e.s, a, "41000003", "Vilma", pv);

	ck_assert_int_eq(addf(e.s, "plot", NULL, err, PLOT_OF(a, pb)),
	                 QP_EVALID);
	err_is(err, "plot.producer: producer ", pb,
	       " belongs to another organisation");
	{
		/* References are stored in canonical (lower) case. */
		char up[37];
		json_t *rec, *meta;
		for (size_t i = 0; i < 37; i++)
			up[i] = (char)toupper((unsigned char)pa[i]);
		ck_assert_int_eq(addf(e.s, "plot", plot, err, PLOT_OF(a, up)),
		                 0);
		ck_assert_int_eq(qp_store_get(e.s, plot, &rec, &meta), 0);
		ck_assert_str_eq(json_string_value(json_object_get(rec,
		                                                   "producer")),
		                 pa);
		json_decref(rec);
		json_decref(meta);
	}

	/* A voided record cannot be referred to anew ... */
	ck_assert_int_eq(void1(e.s, pv, "registered twice", err), 0);
	ck_assert_int_eq(addf(e.s, "plot", NULL, err, PLOT_OF(a, pv)),
	                 QP_EVALID);
	err_is(err, "plot.producer: producer ", pv, " is voided");
	{
		char ch[96];
		snprintf(ch, sizeof ch, "{\"producer\":\"%s\"}", pv);
		ck_assert_int_eq(update1(e.s, plot, ch, err), QP_EVALID);
		err_is(err, "plot.producer: producer ", pv, " is voided");
	}
	/* ... but a record pointing at one can still be corrected. */
	ck_assert_int_eq(void1(e.s, pa, "moved away", err), 0);
	ck_assert_int_eq(update1(e.s, plot, "{\"crop\":\"cacao\"}", err), 0);

	/* Custody passes lots between orgs. */
	ck_assert_int_eq(addf(e.s, "lot", la, err,
	                      "{\"org\":\"%s\",\"code\":\"A-9\","
	                      "\"product\":\"coffee-parchment\",\"kg\":100}",
	                      a),
	                 0);
	ck_assert_int_eq(addf(e.s, "lot", lb, err,
	                      "{\"org\":\"%s\",\"code\":\"B-9\","
	                      "\"product\":\"coffee-parchment\",\"kg\":100}",
	                      b),
	                 0);
	ck_assert_msg(addf(e.s, "lot_event", NULL, err,
	                   "{\"org\":\"%s\",\"lot\":\"%s\",\"type\":\"merge\","
	                   "\"inputs\":[{\"lot\":\"%s\",\"kg\":100}],"
	                   "\"outputs\":[{\"lot\":\"%s\",\"kg\":100}]}",
	                   b, lb, la, lb) == 0,
	              "cross-org merge: %s", err);
	verify_ok(e.s);
	t_close(&e);
}
END_TEST

/* A lot's plots are its producer's. */
START_TEST(lot_plots_of_its_producer)
{
	tenv e;
	char a[37], p1[37], p2[37], pl1[37], pl2[37], err[QP_ERRMSG_LEN];
	char want[QP_ERRMSG_LEN];

	t_open(&e);
	add_org(e.s, "2060000051", a);
	add_producer(e.s, a, "41000051", "Rosa", p1);
	add_producer(e.s, a, "41000052", "Juan", p2);
	ck_assert_int_eq(addf(e.s, "plot", pl1, err, PLOT_OF(a, p1)), 0);
	ck_assert_int_eq(addf(e.s, "plot", pl2, err, PLOT_OF(a, p2)), 0);
	ck_assert_int_eq(addf(e.s, "lot", NULL, err,
	                      "{\"org\":\"%s\",\"code\":\"RX\",\"product\":"
	                      "\"coffee-cherry\",\"kg\":100,\"producer\":\"%s\","
	                      "\"plots\":[\"%s\",\"%s\"]}",
	                      a, p1, pl1, pl2),
	                 QP_EVALID);
	snprintf(want, sizeof want,
	         "lot.plots[1]: plot %s is producer %s's, not the lot's "
	         "producer %s",
	         pl2, p2, p1);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(addf(e.s, "lot", NULL, err,
	                      "{\"org\":\"%s\",\"code\":\"RX\",\"product\":"
	                      "\"coffee-cherry\",\"kg\":100,\"producer\":\"%s\","
	                      "\"plots\":[\"%s\"]}",
	                      a, p1, pl1),
	                 0);
	verify_ok(e.s);
	t_close(&e);
}
END_TEST

/* With a scope (a joined node's certificate), local writes go to its
 * orgs only; without one, to any. */
START_TEST(write_scope)
{
	tenv e;
	char a[37], b[37], p[37], err[QP_ERRMSG_LEN], want[QP_ERRMSG_LEN];
	uint8_t scope[1][QP_UUID_LEN];

	t_open(&e);
	add_org(e.s, "2060000041", a);
	add_org(e.s, "2060000042", b);
	add_producer(e.s, b, "41000041", "Berta", p);
	ck_assert_int_eq(qp_uuid_parse(a, scope[0]), 0);
	qp_store_set_scope(e.s, (const uint8_t (*)[QP_UUID_LEN])scope, 1);
	add_producer(e.s, a, "41000042", "Ana", NULL);
	ck_assert_int_eq(addf(e.s, "producer", NULL, err,
	                      "{\"org\":\"%s\",\"dni\":\"41000043\","
	                      "\"name\":\"Bea\",\"sex\":\"F\"}",
	                      b),
	                 QP_ESCOPE);
	snprintf(want, sizeof want,
	         "producer.org: this node is enrolled for 1 other org, not %s; "
	         "the hub would never receive it",
	         b);
	ck_assert_str_eq(err, want);
	/* Updates and voids of records of other orgs too. */
	ck_assert_int_eq(update1(e.s, p, "{\"name\":\"Berta Q\"}", err),
	                 QP_ESCOPE);
	ck_assert_int_eq(void1(e.s, p, "moved", err), QP_ESCOPE);
	qp_store_set_scope(e.s, NULL, 0); /* scoped to nothing */
	ck_assert_int_eq(addf(e.s, "producer", NULL, err,
	                      "{\"org\":\"%s\",\"dni\":\"41000044\","
	                      "\"name\":\"Ada\",\"sex\":\"F\"}",
	                      a),
	                 QP_ESCOPE);
	verify_ok(e.s);
	t_close(&e);
}
END_TEST

/* A lot custody events take from keeps its product and enough kg, and
 * cannot be voided before them. */
START_TEST(lot_in_use_kept)
{
	tenv e;
	char org[37], a[37], b[37], ev[37], err[QP_ERRMSG_LEN];

	t_open(&e);
	add_org(e.s, "2060000031", org);
	ck_assert_int_eq(addf(e.s, "lot", a, err,
	                      "{\"org\":\"%s\",\"code\":\"R-1\","
	                      "\"product\":\"coffee-cherry\",\"kg\":1000}",
	                      org),
	                 0);
	ck_assert_int_eq(addf(e.s, "lot", b, err,
	                      "{\"org\":\"%s\",\"code\":\"X-1\","
	                      "\"product\":\"coffee-parchment\",\"kg\":200}",
	                      org),
	                 0);
	/* Unused, a lot may change freely. */
	ck_assert_int_eq(update1(e.s, a, "{\"kg\":1001}", err), 0);
	ck_assert_int_eq(addf(e.s, "lot_event", ev, err,
	                      "{\"org\":\"%s\",\"lot\":\"%s\","
	                      "\"type\":\"transform\","
	                      "\"inputs\":[{\"lot\":\"%s\",\"kg\":1000}],"
	                      "\"outputs\":[{\"lot\":\"%s\",\"kg\":200}]}",
	                      org, b, a, b),
	                 0);
	ck_assert_int_eq(update1(e.s, a, "{\"kg\":10}", err), QP_EVALID);
	ck_assert_str_eq(err, "lot.kg: lot R-1 already gives 1000 kg to custody "
	                      "events; it cannot hold only 10 kg");
	ck_assert_int_eq(update1(e.s, a, "{\"product\":\"cacao-wet\"}", err),
	                 QP_EVALID);
	err_is(err, "lot.product: lot R-1 is already an input of event ", ev,
	       "; its product cannot change");
	ck_assert_int_eq(update1(e.s, a, "{\"kg\":990}", err), 0); /* 2% */
	ck_assert_int_eq(void1(e.s, a, "oops", err), QP_EVALID);
	err_is(err, "void: lot R-1 is an input of event ", ev,
	       "; void that event first");
	ck_assert_int_eq(void1(e.s, ev, "weighed wrong", err), 0);
	ck_assert_int_eq(update1(e.s, a, "{\"kg\":10}", err), 0);
	ck_assert_int_eq(void1(e.s, a, "oops", err), 0);
	verify_ok(e.s);
	t_close(&e);
}
END_TEST

START_TEST(lot_mass_balance_enforced)
{
	tenv e;
	char org[37], a[37], b[37], c[37], ev[37], err[QP_ERRMSG_LEN];

	t_open(&e);
	add_org(e.s, "2060000011", org);
	ck_assert_int_eq(addf(e.s, "lot", a, err,
	                      "{\"org\":\"%s\",\"code\":\"A-1\","
	                      "\"product\":\"coffee-cherry\",\"kg\":1000}",
	                      org),
	                 0);
	ck_assert_int_eq(addf(e.s, "lot", b, err,
	                      "{\"org\":\"%s\",\"code\":\"B-1\","
	                      "\"product\":\"coffee-parchment\",\"kg\":150}",
	                      org),
	                 0);
	ck_assert_int_eq(addf(e.s, "lot", c, err,
	                      "{\"org\":\"%s\",\"code\":\"C-1\","
	                      "\"product\":\"coffee-parchment\",\"kg\":50}",
	                      org),
	                 0);
#define TRANSFORM(in, inkg, out, outkg)                                     \
	"{\"org\":\"%s\",\"lot\":\"%s\",\"type\":\"transform\","         \
	"\"inputs\":[{\"lot\":\"%s\",\"kg\":" inkg "}],"                     \
	"\"outputs\":[{\"lot\":\"%s\",\"kg\":" outkg "}]}",                  \
	    org, out, in, out
	/* 600 kg of cherry give at most 600 * 0.25 * 1.02 = 153 kg. */
	ck_assert_int_eq(addf(e.s, "lot_event", NULL, err,
	                      TRANSFORM(a, "600", b, "160")),
	                 QP_EVALID);
	ck_assert_str_eq(err, "lot_event.outputs: 160 kg out of 600 kg in "
	                      "exceeds the yield: at most 153 kg of "
	                      "coffee-parchment");
	ck_assert_int_eq(addf(e.s, "lot_event", ev, err,
	                      TRANSFORM(a, "600", b, "150")),
	                 0);
	/* 600 of 1000 kg are used: 420 more would pass 1020. */
	ck_assert_int_eq(addf(e.s, "lot_event", NULL, err,
	                      TRANSFORM(a, "421", c, "50")),
	                 QP_EVALID);
	ck_assert_str_eq(err, "lot_event.inputs[0].kg: lot A-1 holds 1000 kg "
	                      "and 600 kg of it is already used; 421 kg more "
	                      "is too much");
	ck_assert_int_eq(addf(e.s, "lot_event", NULL, err,
	                      TRANSFORM(a, "400", c, "50")),
	                 0);
	/* Voiding the first event gives its 600 kg back. */
	ck_assert_int_eq(void1(e.s, ev, "weighed twice", err), 0);
	ck_assert_int_eq(addf(e.s, "lot_event", NULL, err,
	                      TRANSFORM(a, "600", b, "150")),
	                 0);
	/* Cherry cannot become cacao; a void lot cannot be used. */
	ck_assert_int_eq(void1(e.s, c, "never existed", err), 0);
	ck_assert_int_eq(addf(e.s, "lot_event", NULL, err,
	                      TRANSFORM(c, "10", b, "1")),
	                 QP_EVALID);
	{
		char want[128];
		snprintf(want, sizeof want,
		         "lot_event.inputs[0].lot: lot %s is voided", c);
		ck_assert_str_eq(err, want);
	}
#undef TRANSFORM
	verify_ok(e.s);
	t_close(&e);
}
END_TEST

/* ---- feeds and verify --------------------------------------------- */

START_TEST(feeds_chain_and_verify)
{
	tenv e;
	char a[37], b[37];
	json_t *st, *fd, *rep;
	qp_write w[2];
	qp_wgroup g = {.writes = w, .n = 2};
	char t0[256], t1[256];

	t_open(&e);
	add_org(e.s, "2060000011", a);
	add_org(e.s, "2060000012", b);
	/* Three batches, each writing to both orgs: one delta per org each. */
	for (int i = 0; i < 3; i++) {
		memset(w, 0, sizeof w);
		snprintf(t0, sizeof t0,
		         "{\"org\":\"%s\",\"dni\":\"9000000%d\",\"name\":\"A\","
		         "\"sex\":\"F\"}",
		         a, i);
		snprintf(t1, sizeof t1,
		         "{\"org\":\"%s\",\"dni\":\"9100000%d\",\"name\":\"B\","
		         "\"sex\":\"M\"}",
		         b, i);
		w[0].type = w[1].type = QP_OP_CREATE;
		w[0].kind = w[1].kind = "producer";
		w[0].rec = json_loads(t0, 0, NULL);
		w[1].rec = json_loads(t1, 0, NULL);
		ck_assert_int_eq(qp_store_write(e.s, &g, 1), 0);
		ck_assert_msg(g.rc == 0, "%s", g.err);
		qp_wgroup_clear(&g);
		json_decref(w[0].rec);
		json_decref(w[1].rec);
	}
	ck_assert_int_eq(qp_store_stats(e.s, &st), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(st, "deltas")), 8);
	ck_assert_int_eq(json_integer_value(json_object_get(st, "feeds")), 2);
	ck_assert_int_gt(json_integer_value(json_object_get(st, "log_bytes")),
	                 8 * (QP_DELTA_HDR + QP_DELTA_SIG));
	fd = json_object_get(st, "feeds_detail");
	ck_assert_uint_eq(json_array_size(fd), 2);
	for (size_t i = 0; i < 2; i++)
		ck_assert_int_eq(json_integer_value(json_object_get(
		                     json_array_get(fd, i), "seq")),
		                 4);
	ck_assert_int_eq(json_integer_value(json_object_get(
	                     json_object_get(st, "records"), "producer")),
	                 6);
	json_decref(st);

	ck_assert_int_eq(qp_store_verify(e.s, &rep), 0);
	ck_assert(json_is_true(json_object_get(rep, "ok")));
	ck_assert_int_eq(json_integer_value(json_object_get(rep, "deltas")), 8);
	ck_assert_int_eq(json_integer_value(json_object_get(rep, "ops")), 8);
	ck_assert_int_eq(json_integer_value(json_object_get(rep, "records")),
	                 8);
	ck_assert_str_eq(
	    json_string_value(json_object_get(rep, "digest")),
	    json_string_value(json_object_get(rep, "rebuilt_digest")));
	json_decref(rep);
	t_close(&e);
}
END_TEST

/* Open the environment behind the store's back to damage it. */
typedef enum { FLIP_LOG, DROP_RECORD, DROP_LAST_LOG } damage;

static void damage_store(const char *dir, damage what)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *c;
	MDB_val k, d;
	uint8_t *copy;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 16), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(
	    mdb_dbi_open(txn, what == DROP_RECORD ? "records" : "log", 0, &dbi),
	    0);
	ck_assert_int_eq(mdb_cursor_open(txn, dbi, &c), 0);
	ck_assert_int_eq(
	    mdb_cursor_get(c, &k, &d,
	                   what == DROP_LAST_LOG ? MDB_LAST : MDB_FIRST),
	    0);
	if (what == FLIP_LOG) {
		copy = malloc(d.mv_size);
		memcpy(copy, d.mv_data, d.mv_size);
		copy[d.mv_size - 70] ^= 0x01; /* in the body */
		d.mv_data = copy;
		ck_assert_int_eq(mdb_cursor_put(c, &k, &d, MDB_CURRENT), 0);
		free(copy);
	} else {
		ck_assert_int_eq(mdb_cursor_del(c, 0), 0);
	}
	mdb_cursor_close(c);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void verify_after(damage what, int want, const char *needle)
{
	tenv e;
	char org[37];
	json_t *rep;

	t_open(&e);
	add_org(e.s, "2060000013", org);
	add_producer(e.s, org, "11000001", "Ana", NULL);
	add_producer(e.s, org, "11000002", "Beto", NULL);
	ck_assert_int_eq(qp_store_verify(e.s, &rep), 0);
	json_decref(rep);
	qp_store_close(e.s);
	damage_store(e.dir, what);
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	ck_assert_int_eq(qp_store_verify(e.s, &rep), want);
	ck_assert(json_is_false(json_object_get(rep, "ok")));
	ck_assert_msg(strstr(json_string_value(json_object_get(rep, "error")),
	                     needle) != NULL,
	              "error: %s",
	              json_string_value(json_object_get(rep, "error")));
	json_decref(rep);
	/* verify changed nothing: the same answer again. */
	ck_assert_int_eq(qp_store_verify(e.s, &rep), want);
	json_decref(rep);
	t_close(&e);
}

START_TEST(verify_detects_tampered_delta)
{
	verify_after(FLIP_LOG, QP_ESIG, "seq 1");
}
END_TEST

START_TEST(verify_detects_lost_state)
{
	verify_after(DROP_RECORD, QP_EMISMATCH, "differs");
}
END_TEST

/* Status reads kept counts; verify proves them. */
START_TEST(verify_detects_miscount)
{
	tenv e;
	char org[37];
	uint8_t seven[8] = {0, 0, 0, 0, 0, 0, 0, 7};
	json_t *rep;

	t_open(&e);
	add_org(e.s, "2060000013", org);
	add_producer(e.s, org, "11000001", "Ana", NULL);
	qp_store_close(e.s);
	meta_edit(e.dir, "n:producer", seven, 8, NULL);
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	ck_assert_int_eq(qp_store_verify(e.s, &rep), QP_EMISMATCH);
	ck_assert_str_eq(json_string_value(json_object_get(rep, "error")),
	                 "the store counts 7 producer records but holds 1");
	json_decref(rep);
	qp_store_close(e.s);
	/* The records right again, the log bytes wrong. */
	{
		uint8_t one[8] = {0, 0, 0, 0, 0, 0, 0, 1}, lb[8];
		char want[128];
		meta_edit(e.dir, "n:producer", one, 8, NULL);
		meta_edit(e.dir, "log_bytes", seven, 8, lb);
		snprintf(want, sizeof want,
		         "the store counts 7 bytes of log but holds %llu",
		         (unsigned long long)qp_get_be64(lb));
		ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
		ck_assert_int_eq(qp_store_verify(e.s, &rep), QP_EMISMATCH);
		ck_assert_str_eq(
		    json_string_value(json_object_get(rep, "error")), want);
		json_decref(rep);
		qp_store_close(e.s);
	}
	/* A counter of the wrong size is damage. */
	meta_edit(e.dir, "n:producer", seven + 7, 1, NULL);
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	ck_assert_int_eq(qp_store_verify(e.s, &rep), QP_ECORRUPT);
	json_decref(rep);
	t_close(&e);
}
END_TEST

/* A store of the first format (no counters, no attendance key) is
 * brought up to date when opened: its state is rebuilt from the log. */
START_TEST(format1_store_upgraded)
{
	tenv e;
	char org[37], p[37], sv[37], ss[37], err[QP_ERRMSG_LEN],
	    key[16 + 2 * 37];
	uint8_t one[4] = {0, 0, 0, 1}, ver[8];
	json_int_t log_bytes;

	t_open(&e);
	add_org(e.s, "2060000013", org);
	add_producer(e.s, org, "11000001", "Ana", p);
	add_producer(e.s, org, "11000002", "Beto", NULL);
	add_session(e.s, org, NULL, "2026-11-23", sv, ss);
	ck_assert_int_eq(addf(e.s, "attendance", NULL, err, ATT_BY_PRODUCER, org, ss, p), 0);
	log_bytes = stat_int(e.s, "log_bytes");
	ck_assert_int_gt(log_bytes, 0);
	qp_store_close(e.s);
	/* What format 1 held: no counters, no attendance key. */
	meta_edit(e.dir, "schema", one, 4, NULL);
	meta_edit(e.dir, "n:producer", NULL, 0, NULL);
	meta_edit(e.dir, "n:org", NULL, 0, NULL);
	meta_edit(e.dir, "log_bytes", NULL, 0, NULL);
	db_edit(e.dir, "idx_key", key,
	        (size_t)snprintf(key, sizeof key, "producer%c%s%c%s", 0, ss,
	                         0, p),
	        NULL, 0, NULL);

	{
		/* What quipud reads first, to say an upgrade is coming. */
		unsigned have = 0, want = 0;
		ck_assert_int_eq(qp_store_format(e.dir, &have, &want), 0);
		ck_assert_uint_eq(have, 1);
		ck_assert_uint_eq(want, 3);
		ck_assert_int_eq(qp_store_format("/nonexistent/quipu", &have,
		                                 &want),
		                 QP_ENOTFOUND);
	}
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	{
		unsigned from = 0, to = 0;
		double secs = -1;
		ck_assert_int_eq(qp_store_upgraded(e.s, &from, &to, &secs), 1);
		ck_assert_uint_eq(from, 1);
		ck_assert_uint_eq(to, 3);
		ck_assert(secs >= 0);
	}
	ck_assert_int_eq(stat_records(e.s, "producer"), 2);
	ck_assert_int_eq(stat_records(e.s, "org"), 1);
	ck_assert_int_eq(stat_records(e.s, "attendance"), 1);
	ck_assert_int_eq(stat_int(e.s, "log_bytes"), log_bytes);
	ck_assert_int_eq(addf(e.s, "attendance", NULL, err, ATT_BY_PRODUCER, org, ss, p),
	                 QP_EEXIST);
	verify_ok(e.s);
	qp_store_close(e.s);
	{
		unsigned have = 0, want = 0;
		ck_assert_int_eq(qp_store_format(e.dir, &have, &want), 0);
		ck_assert_uint_eq(have, want);
	}
	/* Now format 3, which an older quipud refuses. */
	meta_edit(e.dir, "schema", one, 4, ver);
	ck_assert_mem_eq(ver, ((uint8_t[]){0, 0, 0, 3}), 4);
	meta_edit(e.dir, "schema", ver, 4, NULL);
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	{
		unsigned from, to;
		double secs;
		ck_assert_int_eq(qp_store_upgraded(e.s, &from, &to, &secs), 0);
	}
	/* Counting goes on from there. */
	add_producer(e.s, org, "11000003", "Carla", NULL);
	ck_assert_int_eq(stat_records(e.s, "producer"), 3);
	verify_ok(e.s);
	t_close(&e);
}
END_TEST

START_TEST(verify_detects_lost_delta)
{
	verify_after(DROP_LAST_LOG, QP_ECHAIN, "head says seq 3");
}
END_TEST

START_TEST(map_grows_when_full)
{
	tenv e;
	char org[37], text[256];
	json_t *st;
	json_int_t size0;
	qp_write w[50];
	qp_wgroup g = {.writes = w, .n = 50};

	t_open(&e);
	ck_assert_int_eq(qp__store_set_mapsize(e.s, 256 << 10), 0);
	size0 = stat_int(e.s, "map_size");
	ck_assert_int_le(size0, 1 << 20);
	add_org(e.s, "2060000014", org);
	for (int b = 0; b < 40; b++) {
		memset(w, 0, sizeof w);
		for (int i = 0; i < 50; i++) {
			snprintf(text, sizeof text,
			         "{\"org\":\"%s\",\"dni\":\"%08d\",\"name\":"
			         "\"Productor %d con un nombre "
			         "largo\",\"sex\":\"F\","
			         "\"community\":\"Comunidad %d\"}",
			         org, b * 50 + i, i, b);
			w[i].type = QP_OP_CREATE;
			w[i].kind = "producer";
			w[i].rec = json_loads(text, 0, NULL);
		}
		ck_assert_int_eq(qp_store_write(e.s, &g, 1), 0);
		ck_assert_msg(g.rc == 0, "%s", g.err);
		qp_wgroup_clear(&g);
		for (int i = 0; i < 50; i++)
			json_decref(w[i].rec);
	}
	ck_assert_uint_eq(list_n(e.s, "producer", org, 0), 2000);
	ck_assert_int_eq(qp_store_stats(e.s, &st), 0);
	ck_assert_int_gt(json_integer_value(json_object_get(st, "map_size")),
	                 size0);
	json_decref(st);
	verify_ok(e.s);
	t_close(&e);
}
END_TEST

/* ---- ingest ------------------------------------------------------- */

/* Every delta of every feed of s (only author's feeds when non-NULL),
 * feed by feed, each in seq order. */
typedef struct dlist {
	uint8_t *buf[64];
	size_t len[64];
	size_t n;
} dlist;

static void export_feeds(qp_store *s, dlist *out, const uint8_t *author)
{
	json_t *st, *fd;
	size_t nf;
	ck_assert_int_eq(qp_store_stats(s, &st), 0);
	fd = json_object_get(st, "feeds_detail");
	nf = json_array_size(fd);
	for (size_t j = 0; j < nf; j++) {
		json_t *f = json_array_get(fd, j);
		qp_feed feed;
		json_int_t seq = json_integer_value(json_object_get(f, "seq"));
		ck_assert_int_eq(
		    qp_unhex(json_string_value(json_object_get(f, "author")),
		             feed.author, QP_KEY_LEN),
		    0);
		ck_assert_int_eq(
		    qp_uuid_parse(json_string_value(json_object_get(f, "org")),
		                  feed.org),
		    0);
		if (author != NULL &&
		    memcmp(author, feed.author, QP_KEY_LEN) != 0)
			continue;
		for (json_int_t q = 1; q <= seq; q++) {
			ck_assert_uint_lt(out->n, 64);
			ck_assert_int_eq(qp__store_log_get(s, &feed,
			                                   (uint64_t)q,
			                                   &out->buf[out->n],
			                                   &out->len[out->n]),
			                 0);
			out->n++;
		}
	}
	json_decref(st);
}

static void dlist_free(dlist *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->buf[i]);
	d->n = 0;
}

static void ingest_all(qp_store *s, const dlist *d)
{
	for (size_t i = 0; i < d->n; i++)
		ck_assert_int_eq(qp__store_ingest(s, d->buf[i], d->len[i]), 0);
}

START_TEST(ingest_order_does_not_matter)
{
	tenv a, b, c, x;
	char org[37], p[37], q[37], da[65], db[65], dc[65], dx[65], buf[64];
	dlist fa = {0}, fb = {0}, all = {0}, rev = {0};
	json_t *rec, *meta;

	t_open(&a);
	t_open(&b);
	t_open(&c);
	t_open(&x);
	/* a registers the org and two producers; b gets them. */
	add_org(a.s, "2060000015", org);
	add_producer(a.s, org, "12000001", "Ana", p);
	add_producer(a.s, org, "12000002", "Beto", q);
	export_feeds(a.s, &fa, NULL);
	ingest_all(b.s, &fa);
	ck_assert_uint_eq(list_n(b.s, "producer", org, 0), 2);
	dlist_free(&fa);
	/* Both edit p's name without seeing each other: a conflict.  b also
	 * edits q and adds a producer of its own into the same org. */
	ck_assert_int_eq(update1(a.s, p, "{\"name\":\"Ana A\"}", NULL), 0);
	ck_assert_int_eq(update1(b.s, p, "{\"name\":\"Ana B\"}", NULL), 0);
	ck_assert_int_eq(update1(b.s, q, "{\"phone\":\"987654321\"}", NULL), 0);
	add_producer(b.s, org, "12000003", "Carla", NULL);
	ck_assert_int_eq(void1(a.s, q, "moved away", NULL), 0);

	/* c gets a's feed then b's; x gets b's feed first, so b's edits
	 * arrive before the records they edit exist. */
	export_feeds(a.s, &fa, a.pk);
	export_feeds(b.s, &fb, b.pk);
	for (size_t i = 0; i < fa.n; i++) {
		all.buf[all.n] = fa.buf[i];
		all.len[all.n++] = fa.len[i];
	}
	for (size_t i = 0; i < fb.n; i++) {
		all.buf[all.n] = fb.buf[i];
		all.len[all.n++] = fb.len[i];
		rev.buf[rev.n] = fb.buf[i];
		rev.len[rev.n++] = fb.len[i];
	}
	for (size_t i = 0; i < fa.n; i++) {
		rev.buf[rev.n] = fa.buf[i];
		rev.len[rev.n++] = fa.len[i];
	}
	ingest_all(c.s, &all);
	ingest_all(x.s, &rev);
	/* a and b exchange what they lack (ingest is idempotent). */
	ingest_all(a.s, &all);
	ingest_all(b.s, &all);

	ck_assert_int_eq(qp_store_digest(a.s, da), 0);
	ck_assert_int_eq(qp_store_digest(b.s, db), 0);
	ck_assert_int_eq(qp_store_digest(c.s, dc), 0);
	ck_assert_int_eq(qp_store_digest(x.s, dx), 0);
	ck_assert_str_eq(da, db);
	ck_assert_str_eq(da, dc);
	ck_assert_str_eq(da, dx);

	/* Every node picked the same winner and kept the loser for review. */
	ck_assert_str_eq(get_str(x.s, p, "name", buf, 32),
	                 get_str(a.s, p, "name", buf + 32, 32));
	ck_assert_int_eq(qp_store_get(x.s, p, &rec, &meta), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(meta, "conflicts")),
	                 1);
	json_decref(rec);
	json_decref(meta);
	ck_assert_int_eq(qp_store_get(c.s, q, &rec, &meta), 0);
	ck_assert_str_eq(json_string_value(json_object_get(meta, "voided")),
	                 "moved away");
	ck_assert_str_eq(json_string_value(json_object_get(rec, "phone")),
	                 "987654321");
	json_decref(rec);
	json_decref(meta);
	/* Two: p's name, and q's phone, which b gave without seeing a's
	 * void (nor a b's phone): kept against the void for review. */
	ck_assert_int_eq(stat_int(x.s, "conflicts"), 2);
	ck_assert_int_eq(stat_int(c.s, "conflicts"), 2);
	ck_assert_int_eq(stat_int(a.s, "conflicts"), 2);
	ck_assert_int_eq(stat_int(b.s, "conflicts"), 2);
	ck_assert_int_eq(qp_store_get(x.s, q, &rec, &meta), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(meta, "conflicts")),
	                 1);
	json_decref(rec);
	json_decref(meta);

	/* Again: nothing changes. */
	ingest_all(x.s, &all);
	ck_assert_int_eq(qp_store_digest(x.s, dx), 0);
	ck_assert_str_eq(da, dx);
	verify_ok(x.s);
	verify_ok(c.s);
	verify_ok(a.s);

	dlist_free(&fa); /* all and rev only borrow fa's and fb's buffers */
	dlist_free(&fb);

	/* a, having seen both values, settles the name: the conflict is
	 * resolved wherever that edit arrives. */
	ck_assert_int_eq(update1(a.s, p, "{\"name\":\"Ana Quispe\"}", NULL), 0);
	ck_assert_int_eq(stat_int(a.s, "conflicts"), 1);
	/* ...and, having seen b's phone, confirms q's void. */
	ck_assert_int_eq(void1(a.s, q, "moved away (confirmed)", NULL), 0);
	ck_assert_int_eq(stat_int(a.s, "conflicts"), 0);
	export_feeds(a.s, &fa, a.pk);
	ingest_all(x.s, &fa);
	ck_assert_int_eq(stat_int(x.s, "conflicts"), 0);
	ck_assert_str_eq(get_str(x.s, p, "name", buf, sizeof buf),
	                 "Ana Quispe");
	ck_assert_int_eq(qp_store_digest(a.s, da), 0);
	ck_assert_int_eq(qp_store_digest(x.s, dx), 0);
	ck_assert_str_eq(da, dx);
	verify_ok(x.s);
	dlist_free(&fa);
	t_close(&a);
	t_close(&b);
	t_close(&c);
	t_close(&x);
}
END_TEST

/* A delta of feed (e's key, org) signed by e, holding ops from JSON text
 * [[type, id, kind, fields-or-reason], ...]. */
static void make_delta_at(tenv *e, const char *org, uint64_t seq,
                          const uint8_t prev[QP_HASH_LEN], uint64_t ms,
                          const char *ops_json, uint8_t **out, size_t *len);

static void make_delta(tenv *e, const char *org, uint64_t seq,
                       const uint8_t prev[QP_HASH_LEN], const char *ops_json,
                       uint8_t **out, size_t *len)
{
	make_delta_at(e, org, seq, prev, 1700000000000ull + seq, ops_json, out,
	              len);
}

/* The same, its ops stamped at wall time ms. */
static void make_delta_at(tenv *e, const char *org, uint64_t seq,
                          const uint8_t prev[QP_HASH_LEN], uint64_t ms,
                          const char *ops_json, uint8_t **out, size_t *len)
{
	json_t *arr = json_loads(ops_json, 0, NULL), *o;
	qp_op ops[8];
	qp_feed feed;
	size_t i, n = json_array_size(arr);

	ck_assert_ptr_nonnull(arr);
	memset(ops, 0, sizeof ops);
	memcpy(feed.author, e->pk, QP_KEY_LEN);
	ck_assert_int_eq(qp_uuid_parse(org, feed.org), 0);
	json_array_foreach(arr, i, o)
	{
		ops[i].type =
		    (qp_op_type)json_integer_value(json_array_get(o, 0));
		ck_assert_int_eq(
		    qp_uuid_parse(json_string_value(json_array_get(o, 1)),
		                  ops[i].id),
		    0);
		snprintf(ops[i].kind, sizeof ops[i].kind, "%s",
		         json_string_value(json_array_get(o, 2)));
		ops[i].hlc = QP_HLC_MAKE(ms, i);
		if (ops[i].type == QP_OP_VOID)
			ops[i].reason =
			    strdup(json_string_value(json_array_get(o, 3)));
		else
			ops[i].fields = json_incref(json_array_get(o, 3));
	}
	ck_assert_int_eq(
	    qp_delta_build(&feed, seq, prev, ops, n, e->sk, out, len), 0);
	for (i = 0; i < n; i++)
		qp_op_clear(&ops[i]);
	json_decref(arr);
}

/* A tablet whose date was set back a year: the store's last stamp shows
 * it, and new stamps go on from that stamp. */
START_TEST(clock_set_back)
{
	tenv e;
	char org[37], p[37];
	uint64_t wall = qp_hlc_wall_ms(), year = 365ull * 24 * 3600 * 1000;
	uint8_t be[8];
	json_t *rec, *meta;

	t_open(&e);
	add_org(e.s, "2060000015", org);
	qp_store_close(e.s);
	e.s = NULL;
	/* Stamps a year ahead of the wall clock: as if the clock went back. */
	qp_put_be64(be, QP_HLC_MAKE(wall + year, 0));
	meta_edit(e.dir, "hlc", be, 8, NULL);
	ck_assert_int_eq(qp_store_open(e.dir, e.pk, e.sk, &e.s), 0);
	ck_assert_uint_eq(qp_store_last_stamp(e.s), QP_HLC_MAKE(wall + year, 0));
	ck_assert_uint_gt(qp_hlc_behind_ms(qp_store_last_stamp(e.s),
	                                   qp_hlc_wall_ms()),
	                  QP_HLC_BEHIND_WRONG_MS);
	add_producer(e.s, org, "12000001", "Ana", p);
	ck_assert_int_eq(qp_store_get(e.s, p, &rec, &meta), 0);
	ck_assert_uint_gt(
	    (uint64_t)json_integer_value(json_object_get(meta, "version")),
	    QP_HLC_MAKE(wall + year, 0));
	ck_assert_uint_eq(
	    qp_store_last_stamp(e.s),
	    (uint64_t)json_integer_value(json_object_get(meta, "version")));
	json_decref(rec);
	json_decref(meta);
	t_close(&e);
}
END_TEST

/* A tablet whose clock runs ten days ahead edits a record: its edit wins
 * for now, but does not drag this node's clock along, and an edit made
 * here afterwards, which saw it, still takes effect. */
START_TEST(edit_after_future_stamp)
{
	tenv a, b;
	char org[37], p[37], q[37], buf[64], ops[256];
	uint8_t zero[QP_HASH_LEN] = {0}, *d;
	size_t len;
	uint64_t wall = qp_hlc_wall_ms(), ahead = 10ull * 24 * 3600 * 1000;
	json_t *rec, *meta;

	t_open(&a);
	t_open(&b);
	add_org(a.s, "2060000015", org);
	add_producer(a.s, org, "12000001", "Ana", p);
	snprintf(ops, sizeof ops,
	         "[[2, \"%s\", \"producer\", {\"name\":\"Ana del futuro\"}]]",
	         p);
	make_delta_at(&b, org, 1, zero, wall + ahead, ops, &d, &len);
	ck_assert_int_eq(qp__store_ingest(a.s, d, len), 0);
	free(d);
	ck_assert_str_eq(get_str(a.s, p, "name", buf, sizeof buf),
	                 "Ana del futuro");
	/* This node's clock stayed where it was. */
	add_producer(a.s, org, "12000002", "Beto", q);
	ck_assert_int_eq(qp_store_get(a.s, q, &rec, &meta), 0);
	ck_assert_uint_lt(
	    QP_HLC_MS((uint64_t)json_integer_value(json_object_get(meta,
	                                                           "version"))),
	    wall + 3600 * 1000);
	json_decref(rec);
	json_decref(meta);
	/* An edit here, based on the future-stamped one, orders after it. */
	ck_assert_int_eq(update1(a.s, p, "{\"name\":\"Ana Quispe\"}", NULL), 0);
	ck_assert_str_eq(get_str(a.s, p, "name", buf, sizeof buf),
	                 "Ana Quispe");
	ck_assert_int_eq(stat_int(a.s, "conflicts"), 0);
	verify_ok(a.s);
	t_close(&a);
	t_close(&b);
}
END_TEST

/* Two devices that did not see each other record one person at one
 * session; where both records meet, a reviewer voids one of them.  The
 * other still holds the person's place, whichever of the two held the
 * key: a third record of her is refused until both are voided. */
START_TEST(duplicate_keeps_key_when_one_voided)
{
	tenv a, b;
	char org[37], p[37], sv[37], ss[37], at_a[37], at_b[37], at3[37],
	    err[QP_ERRMSG_LEN], want[QP_ERRMSG_LEN];
	dlist fa = {0}, fb = {0};

	t_open(&a);
	t_open(&b);
	add_org(a.s, "2060000017", org);
	add_producer(a.s, org, "13000001", "Ana", p);
	add_session(a.s, org, NULL, "2026-11-23", sv, ss);
	export_feeds(a.s, &fa, NULL);
	ingest_all(b.s, &fa);
	dlist_free(&fa);
	ck_assert_int_eq(addf(a.s, "attendance", at_a, err, ATT_BY_PRODUCER, org, ss, p), 0);
	ck_assert_int_eq(addf(b.s, "attendance", at_b, err, ATT_BY_PRODUCER, org, ss, p), 0);
	export_feeds(a.s, &fa, a.pk);
	export_feeds(b.s, &fb, b.pk);
	ingest_all(a.s, &fb);
	ingest_all(b.s, &fa);
	dlist_free(&fa);
	dlist_free(&fb);

	/* At a, at_a held the key: voided, at_b takes it. */
	ck_assert_int_eq(void1(a.s, at_a, "duplicate", err), 0);
	ck_assert_int_eq(addf(a.s, "attendance", NULL, err, ATT_BY_PRODUCER, org, ss, p),
	                 QP_EEXIST);
	snprintf(want, sizeof want,
	         "attendance.producer: %s is already registered for this "
	         "session as %s",
	         p, at_b);
	ck_assert_str_eq(err, want);
	verify_ok(a.s);
	/* At b, at_b holds it and at_a is voided the same way: the other
	 * holder goes, the key stays. */
	ck_assert_int_eq(void1(b.s, at_a, "duplicate", err), 0);
	ck_assert_int_eq(addf(b.s, "attendance", NULL, err, ATT_BY_PRODUCER, org, ss, p),
	                 QP_EEXIST);
	ck_assert_str_eq(err, want);
	/* Both voided, the place is free. */
	ck_assert_int_eq(void1(a.s, at_b, "wrong status", err), 0);
	ck_assert_int_eq(addf(a.s, "attendance", at3, err, ATT_BY_PRODUCER, org, ss, p), 0);
	ck_assert_int_eq(stat_records(a.s, "attendance"), 3);
	verify_ok(a.s);
	verify_ok(b.s);
	t_close(&a);
	t_close(&b);
}
END_TEST

START_TEST(ingest_forks_gaps_quarantine)
{
	tenv a, b;
	char org[37], ops[1024], ruc[12];
	uint8_t zero[QP_HASH_LEN] = {0}, h1[QP_HASH_LEN], *d1, *d1x, *d2, *d3;
	size_t l1, l1x, l2, l3;
	const char *oid = "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f3000";
	json_t *rec;

	t_open(&a);
	t_open(&b);
	snprintf(org, sizeof org, "%s", oid);
	make_ruc("2060000016", ruc);
	snprintf(
	    ops, sizeof ops,
	    "[[1, \"%s\", \"org\", {\"ruc\":\"%s\",\"name\":\"C\","
	    "\"type\":\"firm\"}],"
	    " [1, \"0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f3001\", \"bogus\", {}],"
	    " [1, \"0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f3002\", \"producer\","
	    "  {\"dni\":\"1\",\"name\":\"X\",\"sex\":\"F\"}],"
	    " [1, \"0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f3003\", \"producer\","
	    "  {\"dni\":\"13000001\",\"name\":\"Y\",\"sex\":\"F\","
	    "   \"shoe\":1}],"
	    " [1, \"0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f3004\", \"producer\","
	    "  {\"dni\":\"13000002\",\"name\":\"Z\",\"sex\":\"M\"}]]",
	    oid, ruc);
	make_delta(&a, org, 1, zero, ops, &d1, &l1);
	qp_delta_hash(d1, l1, h1);
	make_delta(
	    &a, org, 1, zero,
	    "[[3, \"0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f3004\", \"producer\","
	    " \"other\"]]",
	    &d1x, &l1x);
	make_delta(
	    &a, org, 2, h1,
	    "[[3, \"0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f3004\", \"producer\","
	    " \"gone\"]]",
	    &d2, &l2);
	make_delta(
	    &a, org, 3, h1,
	    "[[3, \"0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f3002\", \"producer\","
	    " \"gone\"]]",
	    &d3, &l3);

	/* A gap is refused and nothing kept. */
	ck_assert_int_eq(qp__store_ingest(b.s, d2, l2), QP_ESEQ);
	ck_assert_int_eq(stat_int(b.s, "deltas"), 0);
	/* Bad ops go to quarantine, good ones apply. */
	ck_assert_int_eq(qp__store_ingest(b.s, d1, l1), 0);
	ck_assert_int_eq(stat_int(b.s, "quarantine"), 3);
	ck_assert_int_eq(qp_store_get(b.s,
	                              "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f3004",
	                              &rec, NULL),
	                 0);
	json_decref(rec);
	ck_assert_int_eq(qp_store_get(b.s,
	                              "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f3002",
	                              &rec, NULL),
	                 QP_ENOTFOUND);
	ck_assert_int_eq(qp__store_ingest(b.s, d1, l1), 0); /* idempotent */
	/* A damaged signature is refused. */
	d2[QP_DELTA_HDR + 2] ^= 1;
	ck_assert_int_eq(qp__store_ingest(b.s, d2, l2), QP_ESIG);
	d2[QP_DELTA_HDR + 2] ^= 1;
	/* Seq 3 on a feed whose head is 1: a gap. */
	ck_assert_int_eq(qp__store_ingest(b.s, d3, l3), QP_ESEQ);
	/* Same feed and seq, other bytes: a fork; the feed stops there. */
	ck_assert_int_eq(qp__store_ingest(b.s, d1x, l1x), QP_EFORK);
	ck_assert_int_eq(stat_int(b.s, "forks"), 1);
	ck_assert_int_eq(qp__store_ingest(b.s, d2, l2), QP_EFORK);
	ck_assert_int_eq(stat_int(b.s, "deltas"), 1);
	verify_ok(b.s);
	/* The fork is listed for review against the held delta (seq 2, past
	 * the fork, was refused, not kept: its sender keeps it). */
	{
		json_t *fk = NULL, *f1;
		uint8_t hx[QP_HASH_LEN];
		char hexx[2 * QP_HASH_LEN + 1], hex1[2 * QP_HASH_LEN + 1];
		ck_assert_int_eq(qp_store_forks(b.s, 0, &fk), 0);
		ck_assert_uint_eq(json_array_size(fk), 1);
		f1 = json_array_get(fk, 0);
		qp_delta_hash(d1x, l1x, hx);
		qp_hex(hx, QP_HASH_LEN, hexx);
		qp_hex(h1, QP_HASH_LEN, hex1);
		ck_assert_int_eq(json_integer_value(json_object_get(f1, "seq")), 1);
		ck_assert_str_eq(json_string_value(json_object_get(f1, "what")),
		                 "fork");
		ck_assert_str_eq(json_string_value(json_object_get(f1, "hash")),
		                 hexx);
		ck_assert_str_eq(
		    json_string_value(json_object_get(f1, "held_hash")), hex1);
		ck_assert_int_ge(json_integer_value(json_object_get(f1, "nops")),
		                 1);
		ck_assert_uint_eq(json_array_size(json_object_get(f1, "ops")),
		                  (size_t)json_integer_value(
		                      json_object_get(f1, "nops")));
		json_decref(fk);
	}

	/* On a fresh node the chain and the wrong link are told apart. */
	{
		tenv c;
		const uint8_t *dl[3] = {d1, d2, d3};
		size_t ll[3] = {l1, l2, l3};
		int rcs[3];
		t_open(&c);
		ck_assert_int_eq(qp__store_ingest_many(c.s, dl, ll, 3, rcs), 0);
		ck_assert_int_eq(rcs[0], 0);
		ck_assert_int_eq(rcs[1], 0);
		ck_assert_int_eq(rcs[2], QP_ECHAIN);
		ck_assert_int_eq(stat_int(c.s, "deltas"), 2);
		ck_assert_int_eq(stat_int(c.s, "forks"), 1);
		/* Seq 3 with a wrong link: nothing held at that seq. */
		{
			json_t *fk = NULL, *f;
			ck_assert_int_eq(qp_store_forks(c.s, 0, &fk), 0);
			ck_assert_uint_eq(json_array_size(fk), 1);
			f = json_array_get(fk, 0);
			ck_assert_int_eq(
			    json_integer_value(json_object_get(f, "seq")), 3);
			ck_assert_str_eq(
			    json_string_value(json_object_get(f, "what")),
			    "unlinked");
			ck_assert(json_is_null(json_object_get(f, "held_hash")));
			json_decref(fk);
		}
		ck_assert_int_eq(
		    qp_store_get(c.s, "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f3004",
		                 &rec, NULL),
		    0);
		json_decref(rec);
		ck_assert_uint_eq(list_n(c.s, "producer", org, 0), 0);
		ck_assert_uint_eq(list_n(c.s, "producer", org, 1), 1);
		t_close(&c);
	}
	free(d1);
	free(d1x);
	free(d2);
	free(d3);
	t_close(&a);
	t_close(&b);
}
END_TEST

Suite *suite_store(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, reopen_keeps_records);
	tcase_add_test(tc, copy_detected_until_settled);
	tcase_add_test(tc, newer_schema_refused);
	tcase_add_test(tc, copy_detected_on_reused_inode);
	tcase_add_test(tc, format1_store_upgraded);
	tcase_add_test(tc, create_kinds_and_get);
	tcase_add_test(tc, plot_geometry_checked);
	tcase_add_test(tc, list_by_kind_and_org);
	tcase_add_test(tc, refused_group_changes_nothing);
	tcase_add_test(tc, references_must_resolve);
	tcase_add_test(tc, natural_keys_unique);
	tcase_add_test(tc, attendance_once_per_session);
	tcase_add_test(tc, attendance_producer_by_dni_is_one_person);
	tcase_add_test(tc, update_changes_fields);
	tcase_add_test(tc, append_only_refuses_update);
	tcase_add_test(tc, void_hides_from_list);
	tcase_add_test(tc, lot_mass_balance_enforced);
	tcase_add_test(tc, refs_own_org_and_live);
	tcase_add_test(tc, lot_in_use_kept);
	tcase_add_test(tc, write_scope);
	tcase_add_test(tc, lot_plots_of_its_producer);
	tcase_add_test(tc, feeds_chain_and_verify);
	tcase_add_test(tc, verify_detects_tampered_delta);
	tcase_add_test(tc, verify_detects_lost_state);
	tcase_add_test(tc, verify_detects_lost_delta);
	tcase_add_test(tc, verify_detects_miscount);
	tcase_add_test(tc, map_grows_when_full);
	tcase_add_test(tc, copy_makes_a_backup);
	tcase_add_test(tc, ingest_order_does_not_matter);
	tcase_add_test(tc, ingest_forks_gaps_quarantine);
	tcase_add_test(tc, duplicate_keeps_key_when_one_voided);
	tcase_add_test(tc, edit_after_future_stamp);
	tcase_add_test(tc, clock_set_back);
	suite_add_tcase(s, tc);
	return s;
}
