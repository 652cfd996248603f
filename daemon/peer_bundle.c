/* peer_bundle.c - `quipu bundle export|import`: the deltas of the sync
 * exchange written to a file and read back, so a USB stick can carry them
 * (proto/bundle.h).  The same checks as the network apply on import. */
#include "peer_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "err.h"
#include "store_sync.h"
#include "util.h"

#define QP_BUNDLE_FILE_MAX (2ull << 30) /* largest bundle read back */
#define QP_BUNDLE_BATCH 512
#define QP_BUNDLE_BATCH_WORK (512u << 10) /* or this many bytes of ops
					   * (decompressed), per loop turn */
#define QP_BUNDLE_REFUSED_MAX 20 /* refused deltas listed in the reply */
#define QP_BUNDLE_REASONS_MAX 20 /* distinct refusal reasons counted */

/* Whether key is the hub above this node (the one it joined, or the
 * trust root). */
static int is_hub_key(qp_peers *p, const uint8_t key[QP_KEY_LEN])
{
	uint8_t root[QP_KEY_LEN];

	if (p->joined && memcmp(key, p->hub_pk, QP_KEY_LEN) == 0)
		return 1;
	return qp_store_get_root(p->store, root) == 0 &&
	       memcmp(root, key, QP_KEY_LEN) == 0 &&
	       memcmp(root, p->node->pk, QP_KEY_LEN) != 0;
}

static int vv_add(void *ctx, const qp_feed *f, uint64_t seq)
{
	return qp_vv_set(ctx, f, seq);
}

/* "since": [{"author": hex, "org": uuid, "seq": n}...] into vv. */
static int parse_since(const json_t *a, qp_vv *vv)
{
	const json_t *e;
	size_t i;
	json_array_foreach(a, i, e) {
		qp_feed f;
		const char *au = json_string_value(json_object_get(e, "author"));
		const char *org = json_string_value(json_object_get(e, "org"));
		json_int_t seq = json_integer_value(json_object_get(e, "seq"));
		if (au == NULL || org == NULL || seq < 0 ||
		    qp_unhex(au, f.author, QP_KEY_LEN) != 0 ||
		    qp_uuid_parse(org, f.org) != 0)
			return QP_EINVAL;
		if (qp_vv_get(vv, &f) < (uint64_t)seq && qp_vv_set(vv, &f, (uint64_t)seq) != 0)
			return QP_ETOOBIG;
	}
	return 0;
}

typedef struct wctx {
	int fd;
	qp_bundle_writer *w;
	size_t bytes;
	int rc;
} wctx;

static int write_fd(void *ctx, const uint8_t *buf, size_t len)
{
	wctx *c = ctx;
	while (len > 0) {
		ssize_t n = write(c->fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
		c->bytes += (size_t)n;
	}
	return 0;
}

/* The certificates and revocations this node holds, as a bundle's trust
 * items (those over the bundle's limits are left out). */
typedef struct trustset {
	qp__blobs certs, revs;
	qp_bundle_item *items;
	size_t n;
} trustset;

static int trust_gather(qp_peers *p, trustset *t)
{
	int rc;

	if ((rc = qp_store_certs(p->store, qp__blobs_collect, &t->certs)) != 0 ||
	    (rc = qp_store_revocations(p->store, qp__blobs_collect,
				       &t->revs)) != 0)
		return rc;
	t->items = qp_xcalloc(t->certs.n + t->revs.n + 1, sizeof(*t->items));
	for (size_t i = 0; i < t->certs.n + t->revs.n; i++) {
		int cert = i < t->certs.n;
		size_t j = cert ? i : i - t->certs.n;
		const qp__blobs *b = cert ? &t->certs : &t->revs;

		if (t->n == QP_BUNDLE_TRUST_MAX || b->len[j] > QP_BUNDLE_ITEM_MAX)
			continue;
		t->items[t->n].type = cert ? QP_BUNDLE_CERT : QP_BUNDLE_REVOCATION;
		t->items[t->n].p = b->b[j];
		t->items[t->n++].len = b->len[j];
	}
	return 0;
}

static void trust_free(trustset *t)
{
	qp__blobs_free(&t->certs);
	qp__blobs_free(&t->revs);
	free(t->items);
}

static int add_delta(void *ctx, uint64_t seq, const uint8_t *d, size_t len)
{
	wctx *c = ctx;
	(void)seq;
	c->rc = qp_bundle_writer_add(c->w, d, len);
	return c->rc;
}

json_t *qp__peer_bundle_export(qp_peers *p, const json_t *m)
{
	const char *path = json_string_value(json_object_get(m, "path"));
	const char *forkey = json_string_value(json_object_get(m, "for"));
	const json_t *since = json_object_get(m, "since");
	qp_vv mine, theirs;
	qp_vv_range *miss = NULL;
	size_t nmiss = 0, i;
	uint64_t count = 0;
	qp_cert c;
	trustset trust = {0};
	int have_scope = 0, rc;
	char tmp[QP_PATH_MAX + 16];
	wctx w = {-1, NULL, 0, 0};
	json_t *rep = NULL;

	if (path == NULL || path[0] != '/' || strlen(path) >= QP_PATH_MAX)
		return qp__peer_fail(QP_EINVAL, "bundle export: an absolute file path is required", NULL);
	qp_vv_init(&mine);
	qp_vv_init(&theirs);
	if (since != NULL && (!json_is_array(since) || parse_since(since, &theirs) != 0)) {
		rep = qp__peer_fail(QP_EINVAL, "bundle export: since must be a list of {author, org, seq}", NULL);
		goto out;
	}
	if ((rc = qp_store_heads(p->store, vv_add, &mine)) != 0) {
		rep = qp__peer_fail(rc, "bundle export: %s", qp_strerror(rc));
		goto out;
	}
	if (forkey != NULL) {
		uint8_t key[QP_KEY_LEN], *cert = NULL;
		size_t clen;
		if (qp_unhex(forkey, key, QP_KEY_LEN) != 0) {
			rep = qp__peer_fail(QP_EINVAL, "bundle export: --for needs a 64-hex key", NULL);
			goto out;
		}
		/* Only that device's orgs, less what it acknowledged.  A key
		 * with no certificate here is this node's hub (it takes
		 * everything) or a mistake, which must not get every org. */
		if (qp_store_cert_get(p->store, key, &cert, &clen) == 0 &&
		    qp_cert_parse(cert, clen, &c) == 0)
			have_scope = 1;
		free(cert);
		if (!have_scope && !is_hub_key(p, key)) {
			rep = qp__peer_fail(QP_ENOTFOUND, "bundle export: no device with key %.64s is enrolled here, and it is not this node's hub", forkey);
			goto out;
		}
		for (i = 0; i < mine.n; i++) {
			uint64_t a = 0;
			qp_store_ack_get(p->store, key, &mine.e[i].feed, &a);
			if (a > qp_vv_get(&theirs, &mine.e[i].feed))
				qp_vv_set(&theirs, &mine.e[i].feed, a);
		}
	}
	if ((rc = qp_vv_missing(&mine, &theirs,
				have_scope ? (const uint8_t (*)[QP_UUID_LEN])c.orgs : NULL,
				have_scope ? c.norgs : 0, &miss, &nmiss)) != 0) {
		rep = qp__peer_fail(rc, "bundle export: %s", qp_strerror(rc));
		goto out;
	}
	for (i = 0; i < nmiss; i++)
		count += miss[i].to - miss[i].from;
	if (count > UINT32_MAX) {
		rep = qp__peer_fail(QP_ETOOBIG, "bundle export: too many deltas for one bundle", NULL);
		goto out;
	}
	/* The certificates and revocations go along, so a device that has
	 * not synced since a colleague was enrolled trusts the colleague's
	 * deltas (each is checked against its issuer on import). */
	if ((rc = trust_gather(p, &trust)) != 0) {
		rep = qp__peer_fail(rc, "bundle export: %s", qp_strerror(rc));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w.fd < 0) {
		rep = qp__peer_fail(-errno, "bundle export: cannot create %s", tmp);
		goto out;
	}
	rc = qp_bundle_writer_open(write_fd, &w, p->node->pk, qp__now_s(),
				   (uint32_t)count, since ? &theirs : NULL,
				   trust.items, trust.n, &w.w);
	for (i = 0; rc == 0 && i < nmiss; i++) {
		rc = qp_store_read_deltas(p->store, &miss[i].feed, miss[i].from,
					  (size_t)(miss[i].to - miss[i].from), 0,
					  add_delta, &w);
		if (rc == 0)
			rc = w.rc;
	}
	if (rc == 0)
		rc = qp_bundle_writer_finish(w.w);
	if (rc == 0 && fsync(w.fd) != 0)
		rc = -errno;
	if (close(w.fd) != 0 && rc == 0)
		rc = -errno;
	w.fd = -1;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0) {
		unlink(tmp);
		rep = qp__peer_fail(rc, "bundle export: %s", qp_strerror(rc));
		goto out;
	}
	rep = json_pack("{s:b, s:s, s:I, s:I}", "ok", 1, "path", path, "deltas",
			(json_int_t)count, "bytes", (json_int_t)w.bytes);
out:
	qp_bundle_writer_free(w.w);
	if (w.fd >= 0)
		close(w.fd);
	trust_free(&trust);
	free(miss);
	qp_vv_free(&mine);
	qp_vv_free(&theirs);
	return rep;
}

/* The trust items of a bundle: certificates that chain to this node's
 * anchors are kept (as from the network), revocations by a trusted issuer
 * too; the rest is left, as sync leaves it.  Returns the certificates
 * kept. */
static size_t take_trust(qp_peers *p, const qp_bundle_reader *r)
{
	const uint8_t **items = qp_xcalloc(r->ntrust + 1, sizeof(*items));
	size_t *lens = qp_xcalloc(r->ntrust + 1, sizeof(*lens)), n = 0, kept;
	int rc;

	for (size_t i = 0; i < r->ntrust; i++) {
		if (r->trust[i].type != QP_BUNDLE_CERT)
			continue;
		items[n] = r->trust[i].p;
		lens[n++] = r->trust[i].len;
	}
	kept = qp__peer_take_certs(p, items, lens, n, "a bundle");
	for (size_t i = 0; i < r->ntrust; i++) {
		if (r->trust[i].type != QP_BUNDLE_REVOCATION)
			continue;
		rc = qp_store_revocation_put(p->store, r->trust[i].p,
					     r->trust[i].len);
		if (rc != 0)
			qp_log_msg(p->lg, rc == QP_EAUTH ? QP_LOG_DEBUG : QP_LOG_WARN,
				   "revocation from a bundle not kept: %s",
				   qp_strerror(rc));
	}
	free(items);
	free(lens);
	return kept;
}

/* Read a whole file (bounded) into memory. */
static int slurp(const char *path, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return QP_EINVAL;
	}
	if ((uint64_t)st.st_size > QP_BUNDLE_FILE_MAX) {
		close(fd);
		return QP_ETOOBIG;
	}
	buf = qp_xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = got;
	return 0;
}

typedef struct imp {
	qp_peers *p;
	const uint8_t *d[QP_BUNDLE_BATCH];
	size_t len[QP_BUNDLE_BATCH];
	size_t n, work; /* deltas in hand, and their bytes with ops' */
	uint64_t total, applied, dups, refused;
	json_t *reasons; /* the first refused deltas: {index, reason} */
	json_t *why;     /* distinct reasons: {reason, count} */
	int rc;
} imp;

/* Count one refusal under its reason: the client prints each distinct
 * reason once with its count rather than the same line over and over.
 * Past QP_BUNDLE_REASONS_MAX reasons a refusal is only counted in
 * refused_count. */
static void imp_count_why(imp *im, const char *reason)
{
	json_t *e;
	size_t i;

	json_array_foreach(im->why, i, e) {
		if (strcmp(json_string_value(json_object_get(e, "reason")),
			   reason) != 0)
			continue;
		json_object_set_new(e, "count",
				    json_integer(json_integer_value(
							 json_object_get(e, "count")) + 1));
		return;
	}
	if (json_array_size(im->why) < QP_BUNDLE_REASONS_MAX)
		json_array_append_new(im->why, json_pack("{s:s, s:I}", "reason",
							 reason, "count",
							 (json_int_t)1));
}

static void imp_flush(imp *im)
{
	int rcs[QP_BUNDLE_BATCH];
	char (*whys)[QP_ERRMSG_LEN] = qp_xcalloc(QP_BUNDLE_BATCH, QP_ERRMSG_LEN);
	size_t dups = 0, i;
	int rc;

	if (im->n == 0 || im->rc != 0) {
		free(whys);
		return;
	}
	rc = qp_store_ingest(im->p->store, im->d, im->len, im->n, rcs, whys, &dups);
	if (rc != 0) {
		im->rc = rc;
		free(whys);
		return;
	}
	for (i = 0; i < im->n; i++) {
		const char *why;

		if (rcs[i] == 0)
			continue;
		im->refused++;
		why = whys[i][0] ? whys[i] : qp_strerror(rcs[i]);
		imp_count_why(im, why);
		if (json_array_size(im->reasons) < QP_BUNDLE_REFUSED_MAX)
			json_array_append_new(im->reasons,
					      json_pack("{s:I, s:s}", "index",
							(json_int_t)(im->total + i),
							"reason", why));
	}
	/* Applied: accepted and new (duplicates change nothing). */
	for (i = 0; i < im->n; i++)
		im->applied += rcs[i] == 0;
	im->applied -= dups;
	im->dups += dups;
	im->total += im->n;
	im->n = 0;
	im->work = 0;
	free(whys);
}

/* One bundle import under way: its file in memory, checked whole, and
 * stored a batch per turn of the event loop (on_import_turn), so that
 * syncs and local requests are served while a large bundle goes in. */
typedef struct qp__bundle_job {
	qp_peers *p;
	qp_deferred *d;
	uv_idle_t idle;
	char path[QP_PATH_MAX];
	uint8_t *buf;
	size_t len;
	qp_bundle_reader r;
	uint64_t deltas; /* in the bundle */
	size_t certs;
	uint64_t q0, f0; /* held apart before it began */
	imp im;
	struct qp__bundle_job *next;
} qp__bundle_job;

static void job_closed(uv_handle_t *h)
{
	qp__bundle_job *j = h->data;
	qp_peers *p = j->p;

	json_decref(j->im.reasons);
	json_decref(j->im.why);
	free(j->buf);
	free(j);
	qp__peers_release(p);
}

/* Answer the import's request with rep and let the job go. */
static void job_end(qp__bundle_job *j, json_t *rep)
{
	qp__bundle_job **pp;

	for (pp = &j->p->imports; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	qp_bundle_reader_free(&j->r);
	if (j->im.applied > 0 && !j->p->stopping)
		qp_peers_kick(j->p); /* carry them on to the hub */
	j->d->done(j->d, rep);
	uv_idle_stop(&j->idle);
	uv_close((uv_handle_t *)&j->idle, job_closed);
}

/* The reply of an import that stored every delta it could. */
static json_t *job_reply(qp__bundle_job *j)
{
	uint64_t q1 = 0, f1 = 0;
	imp *im = &j->im;

	/* What is stored but not applied (ops of a revoked key, deltas that
	 * fork a feed) is counted apart from what was applied: the change of
	 * the store's counts while the import ran (a sync meanwhile may add
	 * to them). */
	if (im->rc == 0)
		im->rc = qp_store_held_apart(j->p->store, &q1, &f1);
	if (im->rc != 0)
		return qp__peer_fail(im->rc, "bundle import: storing failed: %s",
				     qp_strerror(im->rc));
	q1 -= q1 >= j->q0 ? j->q0 : q1;
	f1 -= f1 >= j->f0 ? j->f0 : f1;
	im->applied -= f1 <= im->applied ? f1 : im->applied;
	return json_pack("{s:b, s:I, s:I, s:I, s:I, s:O, s:O, s:I, s:I, s:I}",
			 "ok", 1, "deltas", (json_int_t)im->total, "applied",
			 (json_int_t)im->applied, "duplicates", (json_int_t)im->dups,
			 "refused_count", (json_int_t)im->refused, "refused",
			 im->reasons, "refused_reasons", im->why, "certificates",
			 (json_int_t)j->certs, "quarantined_ops", (json_int_t)q1,
			 "forks", (json_int_t)f1);
}

/* One batch (QP_BUNDLE_BATCH deltas, or QP_BUNDLE_BATCH_WORK) per turn. */
static void on_import_turn(uv_idle_t *h)
{
	qp__bundle_job *j = h->data;
	const uint8_t *d;
	size_t dlen;
	int more = 1;

	while (j->im.n < QP_BUNDLE_BATCH && j->im.work < QP_BUNDLE_BATCH_WORK &&
	       (more = qp_bundle_reader_next(&j->r, &d, &dlen) == 1)) {
		j->im.d[j->im.n] = d;
		j->im.len[j->im.n++] = dlen;
		j->im.work += dlen + qp_delta_raw_size(d, dlen);
	}
	imp_flush(&j->im);
	if (!more || j->im.rc != 0)
		job_end(j, job_reply(j));
}

json_t *qp__peer_bundle_import(qp_peers *p, const json_t *m, qp_deferred *d)
{
	const char *path = json_string_value(json_object_get(m, "path"));
	qp__bundle_job *j;
	const uint8_t *dd;
	size_t dlen;
	json_t *rep;
	int rc;

	if (path == NULL || path[0] != '/' || strlen(path) >= QP_PATH_MAX)
		return qp__peer_fail(QP_EINVAL, "bundle import: an absolute file path is required", NULL);
	j = qp_xcalloc(1, sizeof(*j));
	j->p = p;
	j->d = d;
	snprintf(j->path, sizeof(j->path), "%s", path);
	if ((rc = slurp(path, &j->buf, &j->len)) != 0) {
		free(j);
		return qp__peer_fail(rc, "bundle import: cannot read %s", path);
	}
	/* A damaged bundle is bad input and changes nothing: check all of it
	 * (every length and the trailer checksum) before storing any delta. */
	if ((rc = qp_bundle_reader_open(&j->r, j->buf, j->len)) == 0) {
		while ((rc = qp_bundle_reader_next(&j->r, &dd, &dlen)) == 1)
			j->deltas++;
		if (rc == 0)
			rc = qp_bundle_reader_finish(&j->r);
	}
	if (rc != 0) {
		rep = qp__peer_fail(rc, "bundle import: %s; nothing was imported",
				    j->r.why[0] ? j->r.why : "not a quipu bundle");
		qp_bundle_reader_free(&j->r);
		free(j->buf);
		free(j);
		return rep;
	}
	qp_bundle_reader_free(&j->r);
	qp_bundle_reader_open(&j->r, j->buf, j->len);
	j->certs = take_trust(p, &j->r);
	if ((rc = qp_store_held_apart(p->store, &j->q0, &j->f0)) != 0) {
		qp_bundle_reader_free(&j->r);
		free(j->buf);
		free(j);
		return qp__peer_fail(rc, "bundle import: %s", qp_strerror(rc));
	}
	j->im.p = p;
	j->im.reasons = json_array();
	j->im.why = json_array();
	uv_idle_init(p->loop, &j->idle);
	j->idle.data = j;
	p->handles++;
	j->next = p->imports;
	p->imports = j;
	uv_idle_start(&j->idle, on_import_turn);
	return NULL;
}

json_t *qp__peer_bundle_imports(const qp_peers *p)
{
	json_t *a = json_array();

	for (const qp__bundle_job *j = p->imports; j != NULL; j = j->next)
		json_array_append_new(a, json_pack("{s:s, s:I, s:I}", "path",
						   j->path, "deltas",
						   (json_int_t)j->deltas, "done",
						   (json_int_t)j->im.total));
	return a;
}

void qp__peer_bundle_stop(qp_peers *p)
{
	char why[QP_PATH_MAX + 200];

	while (p->imports != NULL) {
		qp__bundle_job *j = p->imports;
		/* What is stored stays; the batch in hand was not stored. */
		snprintf(why, sizeof(why),
			 "bundle import: quipud is stopping: %llu of %llu "
			 "deltas of %s were stored; import it again to finish "
			 "(what is here already is skipped)",
			 (unsigned long long)j->im.total,
			 (unsigned long long)j->deltas, j->path);
		job_end(j, qp__peer_fail(QP_ECLOSED, "%s", why));
	}
}
