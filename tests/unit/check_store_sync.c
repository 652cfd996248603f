/*
 * check_store_sync.c - covers daemon/store_sync.c and
 * daemon/store_sync_peer.c: feed heads and bounded delta reads, trust
 * (own key, root, certificates from the root and from a certified regional
 * hub, unknown issuers, org scope), ingest with the trust check
 * (convergence, duplicates, refusals), revocations (deltas beyond the cut
 * quarantined, held ones taken out of the state by a rebuild that verify
 * agrees with), acks and pending counts, peer notes, kv, and the conflict
 * and quarantine listings.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "err.h"
#include "store.h"
#include "store_internal.h"
#include "store_sync.h"
#include "suites.h"
#include "util.h"

#define ORG1 "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f5001"
#define ORG2 "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f5002"
#define ORG3 "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f5003"

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

/* A key pair that has no store (an issuer, a stranger). */
typedef struct tkey {
	uint8_t pk[QP_KEY_LEN], sk[QP_SKEY_LEN];
} tkey;

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

/* One group, one create of kind from the JSON text; returns the new id. */
static void addf(qp_store *s, const char *kind, char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void addf(qp_store *s, const char *kind, char *id, const char *fmt, ...)
{
	char text[2048];
	va_list ap;
	qp_write w = {.type = QP_OP_CREATE, .kind = kind};
	qp_wgroup g = {.writes = &w, .n = 1};

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	w.rec = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(w.rec);
	ck_assert_int_eq(qp_store_write(s, &g, 1), 0);
	json_decref(w.rec);
	ck_assert_msg(g.rc == 0, "%s: %s", kind, g.err);
	if (id != NULL)
		memcpy(id, g.ids[0], QP_UUID_STRLEN + 1);
	qp_wgroup_clear(&g);
}

static void add_org(qp_store *s, const char *org, const char *ten)
{
	char ruc[12];
	make_ruc(ten, ruc);
	addf(s, "org", NULL,
	     "{\"id\":\"%s\",\"ruc\":\"%s\",\"name\":\"Coop %s\","
	     "\"type\":\"cooperative\"}",
	     org, ruc, ten);
}

static void add_producer(qp_store *s, const char *org, const char *dni,
                         const char *name, char *id)
{
	addf(s, "producer", id,
	     "{\"org\":\"%s\",\"dni\":\"%s\",\"name\":\"%s\",\"sex\":\"F\","
	     "\"community\":\"Huallaga\"}",
	     org, dni, name);
}

static void update1(qp_store *s, const char *id, const char *changes)
{
	qp_write w = {.type = QP_OP_UPDATE, .id = id};
	qp_wgroup g = {.writes = &w, .n = 1};
	w.changes = json_loads(changes, 0, NULL);
	ck_assert_ptr_nonnull(w.changes);
	ck_assert_int_eq(qp_store_write(s, &g, 1), 0);
	json_decref(w.changes);
	ck_assert_msg(g.rc == 0, "update: %s", g.err);
	qp_wgroup_clear(&g);
}

/* Void record id; the group's rc (its message in err). */
static int void1(qp_store *s, const char *id, const char *reason,
                 char err[QP_ERRMSG_LEN])
{
	qp_write w = {.type = QP_OP_VOID, .id = id, .reason = reason};
	qp_wgroup g = {.writes = &w, .n = 1};
	ck_assert_int_eq(qp_store_write(s, &g, 1), 0);
	snprintf(err, QP_ERRMSG_LEN, "%s", g.err);
	qp_wgroup_clear(&g);
	return g.rc;
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

static void digest(qp_store *s, char out[65])
{
	ck_assert_int_eq(qp_store_digest(s, out), 0);
}

static void verify_ok(qp_store *s)
{
	json_t *rep = NULL;
	int rc = qp_store_verify(s, &rep);
	ck_assert_msg(rc == 0, "verify: %s",
	              json_string_value(json_object_get(rep, "error")));
	json_decref(rep);
}

static void org_bytes(const char *org, uint8_t out[QP_UUID_LEN])
{
	ck_assert_int_eq(qp_uuid_parse(org, out), 0);
}

/* A certificate for device issued by issuer, for the given orgs (NULL
 * terminated list of UUID texts). */
static void make_cert(const uint8_t device[QP_KEY_LEN], const tkey *issuer,
                      qp_role role, uint64_t serial, uint8_t **out,
                      size_t *len, ...)
{
	qp_cert *c = calloc(1, sizeof(*c));
	const char *org;
	va_list ap;

	ck_assert_ptr_nonnull(c);
	c->version = QP_CERT_VERSION;
	c->role = role;
	memcpy(c->device, device, QP_KEY_LEN);
	memcpy(c->issuer, issuer->pk, QP_KEY_LEN);
	c->serial = serial;
	c->issued_at = 1700000000 + serial;
	c->expires_at = 0;
	snprintf(c->name, sizeof c->name, "device %llu",
	         (unsigned long long)serial);
	va_start(ap, len);
	while ((org = va_arg(ap, const char *)) != NULL)
		org_bytes(org, c->orgs[c->norgs++]);
	va_end(ap);
	ck_assert_int_eq(qp_cert_build(c, issuer->sk, out, len), 0);
	free(c);
}

static void put_cert(qp_store *s, const uint8_t device[QP_KEY_LEN],
                     const tkey *issuer, qp_role role, uint64_t serial,
                     int want, const char *org1, const char *org2)
{
	uint8_t *c;
	size_t n;
	make_cert(device, issuer, role, serial, &c, &n, org1, org2,
	          (const char *)NULL);
	ck_assert_int_eq(qp_store_cert_put(s, c, n), want);
	free(c);
}

static void revoke(qp_store *s, const tkey *issuer,
                   const uint8_t key[QP_KEY_LEN], uint64_t after, int want)
{
	qp_revocation r = {.version = QP_REV_VERSION, .after_seq = after,
	                   .at = 1700000500};
	uint8_t *b;
	size_t n;
	memcpy(r.issuer, issuer->pk, QP_KEY_LEN);
	memcpy(r.key, key, QP_KEY_LEN);
	ck_assert_int_eq(qp_revocation_build(&r, issuer->sk, &b, &n), 0);
	ck_assert_int_eq(qp_store_revocation_put(s, b, n), want);
	free(b);
}

static void as_key(const tenv *e, tkey *k)
{
	memcpy(k->pk, e->pk, QP_KEY_LEN);
	memcpy(k->sk, e->sk, QP_SKEY_LEN);
}

/* ---- deltas collected through heads and read_deltas --------------- */

typedef struct dlist {
	uint8_t *buf[64];
	size_t len[64];
	uint64_t seq[64];
	size_t n;
} dlist;

static int take(void *ctx, uint64_t seq, const uint8_t *d, size_t len)
{
	dlist *l = ctx;
	ck_assert_uint_lt(l->n, 64);
	l->buf[l->n] = malloc(len);
	memcpy(l->buf[l->n], d, len);
	l->len[l->n] = len;
	l->seq[l->n++] = seq;
	return 0;
}

typedef struct hctx {
	qp_store *s;
	const uint8_t *author;
	dlist *out;
	size_t feeds;
} hctx;

static int each_head(void *ctx, const qp_feed *f, uint64_t seq)
{
	hctx *h = ctx;
	h->feeds++;
	ck_assert_uint_gt(seq, 0);
	if (h->author != NULL && memcmp(f->author, h->author, QP_KEY_LEN) != 0)
		return 0;
	ck_assert_int_eq(qp_store_read_deltas(h->s, f, 0, 0, 0, take, h->out),
	                 0);
	return 0;
}

/* Every delta of s (only author's when non-NULL), feed by feed. */
static void collect(qp_store *s, const uint8_t *author, dlist *out)
{
	hctx h = {s, author, out, 0};
	ck_assert_int_eq(qp_store_heads(s, each_head, &h), 0);
}

static void dlist_free(dlist *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->buf[i]);
	d->n = 0;
}

/* qp_store_ingest of d[from, to): returns dups, checks every rc is want. */
static size_t ingest(qp_store *s, const dlist *d, size_t from, size_t to,
                     int want)
{
	static char whys[64][QP_ERRMSG_LEN];
	int rcs[64];
	size_t dups = 99;
	ck_assert_int_eq(qp_store_ingest(s, (const uint8_t *const *)d->buf +
	                                        from,
	                                 d->len + from, to - from, rcs, whys,
	                                 &dups),
	                 0);
	for (size_t i = 0; i < to - from; i++)
		ck_assert_msg(rcs[i] == want, "delta %zu: %s (%s)", from + i,
		              qp_strerror(rcs[i]), whys[i]);
	return dups;
}

/* ---- heads and reads ---------------------------------------------- */

static int stop_at_two(void *ctx, uint64_t seq, const uint8_t *d, size_t len)
{
	(void)d;
	(void)len;
	*(size_t *)ctx += 1;
	return seq == 2 ? 7 : 0;
}

START_TEST(heads_and_read_deltas)
{
	tenv a;
	dlist all = {0}, part = {0};
	qp_feed f, none;
	uint64_t seq = 99;
	size_t calls = 0;
	hctx h;

	t_open(&a);
	add_org(a.s, ORG1, "2060000001");
	add_producer(a.s, ORG1, "41000001", "Ana", NULL);
	add_producer(a.s, ORG1, "41000002", "Beto", NULL);
	add_producer(a.s, ORG1, "41000003", "Carla", NULL);
	add_org(a.s, ORG2, "2060000002");

	/* Two feeds (one per org), heads 4 and 1, in key order. */
	h = (hctx){a.s, NULL, &all, 0};
	ck_assert_int_eq(qp_store_heads(a.s, each_head, &h), 0);
	ck_assert_uint_eq(h.feeds, 2);
	ck_assert_uint_eq(all.n, 5);
	memcpy(f.author, a.pk, QP_KEY_LEN);
	org_bytes(ORG1, f.org);
	ck_assert_int_eq(qp_store_head(a.s, &f, &seq), 0);
	ck_assert_uint_eq(seq, 4);
	for (size_t i = 0; i < 4; i++)
		ck_assert_uint_eq(all.seq[i], i + 1);
	ck_assert_uint_eq(all.seq[4], 1);

	/* Limits: count, bytes (the first delta always goes). */
	ck_assert_int_eq(qp_store_read_deltas(a.s, &f, 1, 2, 0, take, &part),
	                 0);
	ck_assert_uint_eq(part.n, 2);
	ck_assert_uint_eq(part.seq[0], 2);
	ck_assert_uint_eq(part.seq[1], 3);
	ck_assert_uint_eq(part.len[0], all.len[1]);
	ck_assert_mem_eq(part.buf[0], all.buf[1], all.len[1]);
	dlist_free(&part);
	ck_assert_int_eq(qp_store_read_deltas(a.s, &f, 0, 0,
	                                      all.len[0] + all.len[1] +
	                                          all.len[2] - 1,
	                                      take, &part),
	                 0);
	ck_assert_uint_eq(part.n, 2);
	dlist_free(&part);
	ck_assert_int_eq(qp_store_read_deltas(a.s, &f, 0, 0, 1, take, &part),
	                 0);
	ck_assert_uint_eq(part.n, 1);
	ck_assert_uint_eq(part.seq[0], 1);
	dlist_free(&part);
	ck_assert_int_eq(qp_store_read_deltas(a.s, &f, 4, 0, 0, take, &part),
	                 0);
	ck_assert_uint_eq(part.n, 0);
	/* The callback's non-zero value stops the walk and is returned. */
	ck_assert_int_eq(
	    qp_store_read_deltas(a.s, &f, 0, 0, 0, stop_at_two, &calls), 7);
	ck_assert_uint_eq(calls, 2);

	/* A feed not held: head 0, nothing to read. */
	memcpy(none.author, a.pk, QP_KEY_LEN);
	org_bytes(ORG3, none.org);
	ck_assert_int_eq(qp_store_head(a.s, &none, &seq), 0);
	ck_assert_uint_eq(seq, 0);
	ck_assert_int_eq(qp_store_read_deltas(a.s, &none, 0, 0, 0, take, &part),
	                 0);
	ck_assert_uint_eq(part.n, 0);
	dlist_free(&all);
	t_close(&a);
}
END_TEST

/* ---- trust -------------------------------------------------------- */

static void trust_is(qp_store *s, const uint8_t key[QP_KEY_LEN],
                     const char *org, int want, const char *why_want)
{
	char why[QP_ERRMSG_LEN] = "x";
	uint8_t o[QP_UUID_LEN];
	org_bytes(org, o);
	ck_assert_int_eq(qp_store_trusted(s, key, o, why, sizeof why), want);
	if (why_want != NULL)
		ck_assert_str_eq(why, why_want);
}

static int count_cb(void *ctx, const uint8_t *b, size_t len)
{
	(void)b;
	ck_assert_uint_gt(len, 0);
	*(size_t *)ctx += 1;
	return 0;
}

START_TEST(trust_chain_and_scope)
{
	tenv d;
	tkey hub, regional, dev_a, dev_b, stranger, dev_c;
	char why[QP_ERRMSG_LEN], a8[9], b8[9], r8[9], s8[9];
	uint8_t root[QP_KEY_LEN], *c, *got;
	qp_cert parsed;
	size_t n, len, certs = 0;

	t_open(&d);
	qp_key_generate(hub.pk, hub.sk);
	qp_key_generate(regional.pk, regional.sk);
	qp_key_generate(dev_a.pk, dev_a.sk);
	qp_key_generate(dev_b.pk, dev_b.sk);
	qp_key_generate(dev_c.pk, dev_c.sk);
	qp_key_generate(stranger.pk, stranger.sk);
	qp_hex(dev_a.pk, 4, a8);
	qp_hex(dev_b.pk, 4, b8);
	qp_hex(regional.pk, 4, r8);
	qp_hex(stranger.pk, 4, s8);

	/* Before joining: only this node's own key. */
	ck_assert_int_eq(qp_store_get_root(d.s, root), QP_ENOTFOUND);
	trust_is(d.s, d.pk, ORG1, 0, NULL);
	snprintf(why, sizeof why,
	         "author %s is not trusted: this node has not joined a hub",
	         a8);
	trust_is(d.s, dev_a.pk, ORG1, QP_EAUTH, why);
	put_cert(d.s, dev_a.pk, &hub, QP_ROLE_TECHNICIAN, 1, QP_EAUTH, ORG1,
	         NULL);

	ck_assert_int_eq(qp_store_set_root(d.s, hub.pk), 0);
	ck_assert_int_eq(qp_store_get_root(d.s, root), 0);
	ck_assert_mem_eq(root, hub.pk, QP_KEY_LEN);
	trust_is(d.s, hub.pk, ORG3, 0, NULL);
	trust_is(d.s, d.pk, ORG3, 0, NULL);

	/* A device certified by the hub, for ORG1 only. */
	snprintf(why, sizeof why, "author %s has no certificate from this hub",
	         a8);
	trust_is(d.s, dev_a.pk, ORG1, QP_EAUTH, why);
	put_cert(d.s, dev_a.pk, &hub, QP_ROLE_TECHNICIAN, 1, 0, ORG1, NULL);
	trust_is(d.s, dev_a.pk, ORG1, 0, NULL);
	snprintf(why, sizeof why, "org %s is not in the certificate of %s",
	         ORG2, a8);
	trust_is(d.s, dev_a.pk, ORG2, QP_EAUTH, why);

	/* A newer serial replaces it; an older one does not come back. */
	put_cert(d.s, dev_a.pk, &hub, QP_ROLE_TECHNICIAN, 3, 0, ORG1, ORG2);
	trust_is(d.s, dev_a.pk, ORG2, 0, NULL);
	put_cert(d.s, dev_a.pk, &hub, QP_ROLE_TECHNICIAN, 2, 0, ORG1, NULL);
	trust_is(d.s, dev_a.pk, ORG2, 0, NULL);
	ck_assert_int_eq(qp_store_cert_get(d.s, dev_a.pk, &got, &len), 0);
	ck_assert_int_eq(qp_cert_parse(got, len, &parsed), 0);
	ck_assert_uint_eq(parsed.serial, 3);
	free(got);

	/* A device certified by a regional hub: refused until the regional
	 * hub's own certificate (role hub, from the root) is held. */
	put_cert(d.s, dev_b.pk, &regional, QP_ROLE_TECHNICIAN, 1, QP_EAUTH,
	         ORG2, ORG3);
	put_cert(d.s, regional.pk, &hub, QP_ROLE_HUB, 4, 0, ORG1, ORG2);
	put_cert(d.s, dev_b.pk, &regional, QP_ROLE_TECHNICIAN, 1, 0, ORG2,
	         ORG3);
	trust_is(d.s, dev_b.pk, ORG2, 0, NULL);
	trust_is(d.s, regional.pk, ORG1, 0, NULL);
	/* The regional hub cannot grant an org it does not hold. */
	snprintf(why, sizeof why, "org %s is not in the certificate of %s",
	         ORG3, r8);
	trust_is(d.s, dev_b.pk, ORG3, QP_EAUTH, why);
	snprintf(why, sizeof why, "org %s is not in the certificate of %s",
	         ORG1, b8);
	trust_is(d.s, dev_b.pk, ORG1, QP_EAUTH, why);

	/* A device (not a hub) cannot certify others: no chain through it;
	 * nor can a stranger.  Nothing is stored. */
	put_cert(d.s, dev_c.pk, &dev_a, QP_ROLE_TECHNICIAN, 1, QP_EAUTH, ORG1,
	         NULL);
	put_cert(d.s, dev_c.pk, &stranger, QP_ROLE_TECHNICIAN, 1, QP_EAUTH,
	         ORG1, NULL);
	ck_assert_int_eq(qp_store_cert_get(d.s, dev_c.pk, &got, &len),
	                 QP_ENOTFOUND);
	snprintf(why, sizeof why, "author %s has no certificate from this hub",
	         s8);
	trust_is(d.s, stranger.pk, ORG1, QP_EAUTH, why);

	/* A damaged signature, and garbage. */
	make_cert(dev_c.pk, &hub, QP_ROLE_TECHNICIAN, 1, &c, &n, ORG1,
	          (const char *)NULL);
	c[n - 1] ^= 1;
	ck_assert_int_eq(qp_store_cert_put(d.s, c, n), QP_ESIG);
	ck_assert_int_eq(qp_store_cert_put(d.s, c, 10), QP_EPROTO);
	free(c);

	ck_assert_int_eq(qp_store_certs(d.s, count_cb, &certs), 0);
	ck_assert_uint_eq(certs, 3); /* dev_a, dev_b, regional */
	t_close(&d);
}
END_TEST

/* set_chain: qp_store_set_chain of fresh certificates, role hub, one org:
 * (device[i], issuer[i]) for i < n. */
static void set_chain(qp_store *s, size_t n, const uint8_t *const *devices,
                      const tkey *const *issuers, int want)
{
	uint8_t *c[4];
	size_t len[4];

	ck_assert_uint_le(n, 4);
	for (size_t i = 0; i < n; i++)
		make_cert(devices[i], issuers[i], QP_ROLE_HUB, 1, &c[i], &len[i],
		          ORG1, (const char *)NULL);
	ck_assert_int_eq(qp_store_set_chain(s, (const uint8_t *const *)c, len,
	                                    n),
	                 want);
	for (size_t i = 0; i < n; i++)
		free(c[i]);
}

/* A national hub's view of two levels of hubs below it, and a district
 * tablet's view of the hubs above its own. */
START_TEST(trust_hierarchy)
{
	tenv nat, tab;
	tkey nk, reg, dis, dev, ntab, rogue;
	char why[QP_ERRMSG_LEN], r8[9];
	uint8_t *c;
	size_t n, ups = 0;
	uint64_t gen;

	t_open(&nat);
	as_key(&nat, &nk);
	qp_key_generate(reg.pk, reg.sk);
	qp_key_generate(dis.pk, dis.sk);
	qp_key_generate(dev.pk, dev.sk);
	qp_key_generate(ntab.pk, ntab.sk);
	qp_key_generate(rogue.pk, rogue.sk);
	qp_hex(reg.pk, 4, r8);
	ck_assert_int_eq(qp_store_set_root(nat.s, nat.pk), 0);

	/* national -> regional (ORG1) -> district (ORG1, ORG2) -> tablet. */
	put_cert(nat.s, dev.pk, &dis, QP_ROLE_TECHNICIAN, 1, QP_EAUTH, ORG1,
	         ORG2);
	put_cert(nat.s, reg.pk, &nk, QP_ROLE_HUB, 1, 0, ORG1, NULL);
	put_cert(nat.s, dis.pk, &reg, QP_ROLE_HUB, 1, 0, ORG1, ORG2);
	put_cert(nat.s, dev.pk, &dis, QP_ROLE_TECHNICIAN, 1, 0, ORG1, ORG2);
	trust_is(nat.s, dev.pk, ORG1, 0, NULL);
	trust_is(nat.s, dis.pk, ORG1, 0, NULL);
	/* ORG2 is in the tablet's and the district hub's certificates, but
	 * the regional hub above them does not hold it. */
	snprintf(why, sizeof why, "org %s is not in the certificate of %s",
	         ORG2, r8);
	trust_is(nat.s, dev.pk, ORG2, QP_EAUTH, why);

	/* A hub below cannot certify a hub above it (a cycle), the root,
	 * nor replace what the national hub itself certified. */
	put_cert(nat.s, reg.pk, &dis, QP_ROLE_HUB, 9, QP_EAUTH, ORG1, ORG2);
	put_cert(nat.s, nat.pk, &dis, QP_ROLE_HUB, 9, QP_EAUTH, ORG1, ORG2);
	put_cert(nat.s, ntab.pk, &nk, QP_ROLE_TECHNICIAN, 1, 0, ORG1, NULL);
	put_cert(nat.s, ntab.pk, &dis, QP_ROLE_TECHNICIAN, 5, 0, ORG1, ORG2);
	trust_is(nat.s, ntab.pk, ORG1, 0, NULL);
	{
		char w[QP_ERRMSG_LEN];
		uint8_t o[QP_UUID_LEN];
		org_bytes(ORG2, o);
		ck_assert_int_eq(qp_store_trusted(nat.s, ntab.pk, o, w, sizeof w),
		                 QP_EAUTH);
		snprintf(why, sizeof why, "org %s is not in the certificate of ",
		         ORG2);
		ck_assert_ptr_nonnull(strstr(w, why));
	}
	trust_is(nat.s, dev.pk, ORG1, 0, NULL); /* the chain still holds */
	/* A sibling regional hub cannot take over the district hub's tablet;
	 * the regional hub above the district hub can re-certify it. */
	{
		tkey sib;
		qp_key_generate(sib.pk, sib.sk);
		put_cert(nat.s, sib.pk, &nk, QP_ROLE_HUB, 1, 0, ORG1, ORG2);
		put_cert(nat.s, dev.pk, &sib, QP_ROLE_TECHNICIAN, 8, 0, ORG1,
		         ORG2);
		/* Still via the regional hub, which lacks ORG2. */
		snprintf(why, sizeof why,
		         "org %s is not in the certificate of %s", ORG2, r8);
		trust_is(nat.s, dev.pk, ORG2, QP_EAUTH, why);
		put_cert(nat.s, dev.pk, &reg, QP_ROLE_TECHNICIAN, 9, 0, ORG1,
		         NULL);
		ck_assert_int_eq(qp_store_cert_get(nat.s, dev.pk, &c, &n), 0);
		{
			qp_cert got;
			ck_assert_int_eq(qp_cert_parse(c, n, &got), 0);
			ck_assert_mem_eq(got.issuer, reg.pk, QP_KEY_LEN);
		}
		free(c);
		/* ...and the district hub, below, cannot take it back. */
		put_cert(nat.s, dev.pk, &dis, QP_ROLE_TECHNICIAN, 10, 0, ORG1,
		         ORG2);
		ck_assert_int_eq(qp_store_cert_get(nat.s, dev.pk, &c, &n), 0);
		{
			qp_cert got;
			ck_assert_int_eq(qp_cert_parse(c, n, &got), 0);
			ck_assert_mem_eq(got.issuer, reg.pk, QP_KEY_LEN);
		}
		free(c);
	}
	/* The district hub, two levels down, may revoke its tablet; a key
	 * outside the chain may not. */
	revoke(nat.s, &rogue, dev.pk, 0, QP_EAUTH);
	revoke(nat.s, &dis, dev.pk, 0, 0);
	/* The top hub joined nobody: no chain above it. */
	{
		const uint8_t *d1[] = {nat.pk};
		const tkey *i1[] = {&rogue};
		set_chain(nat.s, 1, d1, i1, QP_EAUTH);
	}

	/* A tablet of the district hub (root = district): what the national
	 * hub certified is refused until the district hub hands down its
	 * chain: its own certificate (from the regional hub), then the
	 * regional hub's (from the national hub). */
	t_open(&tab);
	ck_assert_int_eq(qp_store_set_root(tab.s, dis.pk), 0);
	put_cert(tab.s, tab.pk, &dis, QP_ROLE_TECHNICIAN, 1, 0, ORG1, NULL);
	put_cert(tab.s, ntab.pk, &nk, QP_ROLE_TECHNICIAN, 1, QP_EAUTH, ORG1,
	         NULL);
	{
		const uint8_t *good_d[] = {dis.pk, reg.pk};
		const tkey *good_i[] = {&reg, &nk};
		const uint8_t *skip_d[] = {reg.pk};
		const tkey *skip_i[] = {&nk};
		const uint8_t *gap_d[] = {dis.pk, nk.pk};
		const tkey *gap_i[] = {&reg, &rogue};
		/* Not starting at the joined hub; a broken link. */
		set_chain(tab.s, 1, skip_d, skip_i, QP_EAUTH);
		set_chain(tab.s, 2, gap_d, gap_i, QP_EAUTH);
		put_cert(tab.s, ntab.pk, &nk, QP_ROLE_TECHNICIAN, 1, QP_EAUTH,
		         ORG1, NULL);
		/* Not a hub certificate; a damaged signature. */
		make_cert(dis.pk, &reg, QP_ROLE_TECHNICIAN, 1, &c, &n, ORG1,
		          (const char *)NULL);
		ck_assert_int_eq(qp_store_set_chain(tab.s,
		                                    (const uint8_t *const *)&c,
		                                    &n, 1),
		                 QP_EAUTH);
		free(c);
		make_cert(dis.pk, &reg, QP_ROLE_HUB, 1, &c, &n, ORG1,
		          (const char *)NULL);
		c[n - 1] ^= 1;
		ck_assert_int_eq(qp_store_set_chain(tab.s,
		                                    (const uint8_t *const *)&c,
		                                    &n, 1),
		                 QP_ESIG);
		free(c);
		ck_assert_int_eq(qp_store_chain(tab.s, count_cb, &ups), 0);
		ck_assert_uint_eq(ups, 0); /* a device hands down nothing */
		gen = qp_store_trust_gen(tab.s);
		set_chain(tab.s, 2, good_d, good_i, 0);
		ck_assert(qp_store_trust_gen(tab.s) != gen); /* peers resent */
		gen = qp_store_trust_gen(tab.s);
		set_chain(tab.s, 2, good_d, good_i, 0); /* again: unchanged */
		ck_assert(qp_store_trust_gen(tab.s) == gen);
	}
	put_cert(tab.s, ntab.pk, &nk, QP_ROLE_TECHNICIAN, 1, 0, ORG1, NULL);
	ck_assert(qp_store_trust_gen(tab.s) != gen);
	trust_is(tab.s, ntab.pk, ORG1, 0, NULL);
	trust_is(tab.s, reg.pk, ORG1, 0, NULL);
	trust_is(tab.s, nk.pk, ORG2, 0, NULL); /* the national hub itself */
	/* Nobody certifies the tablet's own hub from below. */
	put_cert(tab.s, dis.pk, &ntab, QP_ROLE_HUB, 7, QP_EAUTH, ORG1, NULL);
	/* An empty chain (the hub became a top hub) takes both anchors
	 * away. */
	ck_assert_int_eq(qp_store_set_chain(tab.s, NULL, NULL, 0), 0);
	put_cert(tab.s, dev.pk, &nk, QP_ROLE_TECHNICIAN, 1, QP_EAUTH, ORG1,
	         NULL);
	put_cert(tab.s, dev.pk, &reg, QP_ROLE_TECHNICIAN, 1, QP_EAUTH, ORG1,
	         NULL);
	t_close(&tab);
	t_close(&nat);
}
END_TEST

/* ---- ingest ------------------------------------------------------- */

/* A hub (root = its own key) and a device it certified for ORG1; the
 * device has joined (root = hub). */
static void hub_and_device(tenv *hub, tenv *dev)
{
	tkey hk;
	t_open(hub);
	t_open(dev);
	as_key(hub, &hk);
	ck_assert_int_eq(qp_store_set_root(hub->s, hub->pk), 0);
	ck_assert_int_eq(qp_store_set_root(dev->s, hub->pk), 0);
	put_cert(hub->s, dev->pk, &hk, QP_ROLE_TECHNICIAN, 1, 0, ORG1, NULL);
	put_cert(dev->s, dev->pk, &hk, QP_ROLE_TECHNICIAN, 1, 0, ORG1, NULL);
}

START_TEST(ingest_converges_and_refuses)
{
	tenv hub, dev, stranger;
	dlist fd = {0}, fs = {0}, twice = {0};
	char dh[65], dd[65], d2[65], why[4][QP_ERRMSG_LEN], s8[9];
	const uint8_t *bufs[4];
	size_t lens[4], dups = 9;
	int rcs[4];
	uint64_t seq;
	qp_feed f;

	hub_and_device(&hub, &dev);
	add_org(dev.s, ORG1, "2060000011");
	add_producer(dev.s, ORG1, "42000001", "Ana", NULL);
	add_producer(dev.s, ORG1, "42000002", "Beto", NULL);
	collect(dev.s, NULL, &fd);
	ck_assert_uint_eq(fd.n, 3);

	/* The hub takes the device's feed: same state. */
	ck_assert_uint_eq(ingest(hub.s, &fd, 0, 3, 0), 0);
	digest(hub.s, dh);
	digest(dev.s, dd);
	ck_assert_str_eq(dh, dd);
	ck_assert_int_eq(stat_int(hub.s, "deltas"), 3);

	/* Again, and a repeat inside one call: counted, nothing changes. */
	ck_assert_uint_eq(ingest(hub.s, &fd, 0, 3, 0), 3);
	for (size_t i = 0; i < 2; i++) {
		twice.buf[twice.n] = fd.buf[2];
		twice.len[twice.n++] = fd.len[2];
	}
	ck_assert_uint_eq(ingest(hub.s, &twice, 0, 2, 0), 2);
	digest(hub.s, d2);
	ck_assert_str_eq(d2, dh);
	ck_assert_int_eq(stat_int(hub.s, "deltas"), 3);
	verify_ok(hub.s);

	/* A fresh device ingests seq 1 twice in one call: applied once. */
	{
		tenv x;
		tkey hk;
		t_open(&x);
		as_key(&hub, &hk);
		ck_assert_int_eq(qp_store_set_root(x.s, hub.pk), 0);
		put_cert(x.s, dev.pk, &hk, QP_ROLE_TECHNICIAN, 1, 0, ORG1,
		         NULL);
		bufs[0] = bufs[1] = fd.buf[0];
		lens[0] = lens[1] = fd.len[0];
		bufs[2] = fd.buf[1];
		lens[2] = fd.len[1];
		ck_assert_int_eq(
		    qp_store_ingest(x.s, bufs, lens, 3, rcs, NULL, &dups), 0);
		ck_assert_int_eq(rcs[0], 0);
		ck_assert_int_eq(rcs[1], 0);
		ck_assert_int_eq(rcs[2], 0);
		ck_assert_uint_eq(dups, 1);
		ck_assert_int_eq(stat_int(x.s, "deltas"), 2);
		t_close(&x);
	}

	/* A stranger's deltas: refused with the reason, nothing kept. */
	t_open(&stranger);
	qp_hex(stranger.pk, 4, s8);
	add_org(stranger.s, ORG1, "2060000011");
	collect(stranger.s, NULL, &fs);
	bufs[0] = fs.buf[0];
	lens[0] = fs.len[0];
	/* and a damaged delta of the device (seq 4 would follow) */
	bufs[1] = fd.buf[1];
	lens[1] = fd.len[1];
	fd.buf[1][QP_DELTA_HDR + 1] ^= 1;
	ck_assert_int_eq(qp_store_ingest(hub.s, bufs, lens, 2, rcs, why, &dups),
	                 0);
	fd.buf[1][QP_DELTA_HDR + 1] ^= 1;
	ck_assert_int_eq(rcs[0], QP_EAUTH);
	{
		char want[QP_ERRMSG_LEN];
		snprintf(want, sizeof want,
		         "author %s has no certificate from this hub", s8);
		ck_assert_str_eq(why[0], want);
	}
	ck_assert_int_eq(rcs[1], QP_ESIG);
	ck_assert_str_eq(why[1], "delta: signature does not verify");
	ck_assert_uint_eq(dups, 0);
	memcpy(f.author, stranger.pk, QP_KEY_LEN);
	org_bytes(ORG1, f.org);
	ck_assert_int_eq(qp_store_head(hub.s, &f, &seq), 0);
	ck_assert_uint_eq(seq, 0);
	ck_assert_int_eq(stat_int(hub.s, "deltas"), 3);

	/* The device accepts the hub's own deltas (the root) in any org. */
	add_org(hub.s, ORG2, "2060000012");
	dlist_free(&fs);
	collect(hub.s, hub.pk, &fs);
	ck_assert_uint_eq(fs.n, 1);
	ck_assert_uint_eq(ingest(dev.s, &fs, 0, 1, 0), 0);
	digest(hub.s, dh);
	digest(dev.s, dd);
	ck_assert_str_eq(dh, dd);

	dlist_free(&fs);
	dlist_free(&fd);
	t_close(&stranger);
	t_close(&hub);
	t_close(&dev);
}
END_TEST

/* ---- revocation --------------------------------------------------- */

/* The device writes 4 deltas in ORG1: org, producer p, producer q, an
 * edit of p's name.  fd gets them. */
static void four_deltas(tenv *dev, dlist *fd, char *p, char *q)
{
	add_org(dev->s, ORG1, "2060000021");
	add_producer(dev->s, ORG1, "43000001", "Ana", p);
	add_producer(dev->s, ORG1, "43000002", "Beto", q);
	update1(dev->s, p, "{\"name\":\"Ana Revoked\"}");
	collect(dev->s, NULL, fd);
	ck_assert_uint_eq(fd->n, 4);
}

static void name_is(qp_store *s, const char *id, const char *want)
{
	json_t *rec;
	ck_assert_int_eq(qp_store_get(s, id, &rec, NULL), 0);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "name")), want);
	json_decref(rec);
}

/* The quarantine must hold exactly the ops of seq 3 and 4 of author. */
static void quarantine_is_revoked(qp_store *s, const uint8_t *author)
{
	char hex[2 * QP_KEY_LEN + 1];
	json_t *q, *e;
	size_t i;

	qp_hex(author, QP_KEY_LEN, hex);
	ck_assert_int_eq(qp_store_quarantine(s, 0, &q), 0);
	ck_assert_uint_eq(json_array_size(q), 2);
	json_array_foreach(q, i, e)
	{
		ck_assert_str_eq(
		    json_string_value(json_object_get(e, "author")), hex);
		ck_assert_str_eq(json_string_value(json_object_get(e, "org")),
		                 ORG1);
		ck_assert_int_eq(json_integer_value(json_object_get(e, "seq")),
		                 (json_int_t)i + 3);
		ck_assert_int_eq(
		    json_integer_value(json_object_get(e, "op_index")), 0);
		ck_assert_str_eq(
		    json_string_value(json_object_get(e, "reason")),
		    "key revoked after seq 2");
		ck_assert(json_is_object(json_object_get(e, "op")));
	}
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_array_get(q, 1), "op"),
	                     "type")),
	                 "update");
	json_decref(q);
	ck_assert_int_eq(qp_store_quarantine(s, 1, &q), 0);
	ck_assert_uint_eq(json_array_size(q), 1);
	json_decref(q);
}

START_TEST(revocation_quarantines_beyond_cut)
{
	tenv hub, dev, late, ref;
	tkey hk, stranger;
	dlist fd = {0};
	char p[37], q[37], dh[65], dl[65], dr[65];
	json_t *rec;
	uint64_t seq;
	qp_feed f;
	int rcs[4];

	hub_and_device(&hub, &dev);
	as_key(&hub, &hk);
	four_deltas(&dev, &fd, p, q);

	/* A store that only ever saw seq 1 and 2. */
	t_open(&ref);
	ck_assert_int_eq(qp__store_ingest_many(ref.s,
	                                       (const uint8_t *const *)fd.buf,
	                                       fd.len, 2, rcs),
	                 0);
	digest(ref.s, dr);

	/* Revocation first: seq 3 and 4 are stored, their ops quarantined. */
	qp_key_generate(stranger.pk, stranger.sk);
	revoke(hub.s, &stranger, dev.pk, 2, QP_EAUTH);
	revoke(hub.s, &hk, dev.pk, 2, 0);
	ck_assert_uint_eq(ingest(hub.s, &fd, 0, 4, 0), 0);
	memcpy(f.author, dev.pk, QP_KEY_LEN);
	org_bytes(ORG1, f.org);
	ck_assert_int_eq(qp_store_head(hub.s, &f, &seq), 0);
	ck_assert_uint_eq(seq, 4);
	ck_assert_int_eq(qp_store_get(hub.s, q, &rec, NULL), QP_ENOTFOUND);
	name_is(hub.s, p, "Ana");
	digest(hub.s, dh);
	ck_assert_str_eq(dh, dr);
	quarantine_is_revoked(hub.s, dev.pk);
	ck_assert_uint_eq(ingest(hub.s, &fd, 0, 4, 0), 4);
	verify_ok(hub.s);

	/* Revocation after the deltas were applied: the state is rebuilt
	 * without them (q disappears, p's edit reverts). */
	t_open(&late);
	ck_assert_int_eq(qp_store_set_root(late.s, hub.pk), 0);
	put_cert(late.s, dev.pk, &hk, QP_ROLE_TECHNICIAN, 1, 0, ORG1, NULL);
	ck_assert_uint_eq(ingest(late.s, &fd, 0, 4, 0), 0);
	name_is(late.s, p, "Ana Revoked");
	ck_assert_int_eq(qp_store_get(late.s, q, &rec, NULL), 0);
	json_decref(rec);
	revoke(late.s, &hk, dev.pk, 2, 0);
	ck_assert_int_eq(qp_store_get(late.s, q, &rec, NULL), QP_ENOTFOUND);
	name_is(late.s, p, "Ana");
	digest(late.s, dl);
	ck_assert_str_eq(dl, dr);
	quarantine_is_revoked(late.s, dev.pk);
	verify_ok(late.s);
	/* A looser revocation changes nothing; state survives a reopen. */
	revoke(late.s, &hk, dev.pk, 3, 0);
	quarantine_is_revoked(late.s, dev.pk);
	qp_store_close(late.s);
	ck_assert_int_eq(qp_store_open(late.dir, late.pk, late.sk, &late.s), 0);
	digest(late.s, dl);
	ck_assert_str_eq(dl, dr);
	verify_ok(late.s);
	{
		size_t nrev = 0;
		ck_assert_int_eq(qp_store_revocations(late.s, count_cb, &nrev),
		                 0);
		ck_assert_uint_eq(nrev, 1);
	}

	dlist_free(&fd);
	t_close(&ref);
	t_close(&late);
	t_close(&hub);
	t_close(&dev);
}
END_TEST

/* ---- acks, peers, kv ---------------------------------------------- */

START_TEST(acks_and_pending)
{
	tenv a;
	tkey peer;
	qp_feed f1, f2;
	uint64_t seq = 9, pend = 0;
	uint8_t o2[1][QP_UUID_LEN], o3[1][QP_UUID_LEN];

	t_open(&a);
	qp_key_generate(peer.pk, peer.sk);
	add_org(a.s, ORG1, "2060000031");
	add_producer(a.s, ORG1, "44000001", "Ana", NULL);
	add_producer(a.s, ORG1, "44000002", "Beto", NULL);
	add_org(a.s, ORG2, "2060000032");
	memcpy(f1.author, a.pk, QP_KEY_LEN);
	org_bytes(ORG1, f1.org);
	memcpy(f2.author, a.pk, QP_KEY_LEN);
	org_bytes(ORG2, f2.org);
	org_bytes(ORG2, o2[0]);
	org_bytes(ORG3, o3[0]);

	ck_assert_int_eq(qp_store_ack_get(a.s, peer.pk, &f1, &seq), 0);
	ck_assert_uint_eq(seq, 0);
	ck_assert_int_eq(qp_store_pending(a.s, peer.pk, NULL, 0, &pend), 0);
	ck_assert_uint_eq(pend, 4);
	ck_assert_int_eq(qp_store_ack_set(a.s, peer.pk, &f1, 2), 0);
	ck_assert_int_eq(qp_store_ack_set(a.s, peer.pk, &f1, 1), 0);
	ck_assert_int_eq(qp_store_ack_get(a.s, peer.pk, &f1, &seq), 0);
	ck_assert_uint_eq(seq, 2);
	ck_assert_int_eq(qp_store_pending(a.s, peer.pk, NULL, 0, &pend), 0);
	ck_assert_uint_eq(pend, 2);
	ck_assert_int_eq(qp_store_pending(a.s, peer.pk, o2, 1, &pend), 0);
	ck_assert_uint_eq(pend, 1);
	ck_assert_int_eq(qp_store_pending(a.s, peer.pk, o3, 1, &pend), 0);
	ck_assert_uint_eq(pend, 0);
	/* An ack beyond the head (the peer holds more) counts nothing. */
	ck_assert_int_eq(qp_store_ack_set(a.s, peer.pk, &f1, 9), 0);
	ck_assert_int_eq(qp_store_ack_set(a.s, peer.pk, &f2, 1), 0);
	ck_assert_int_eq(qp_store_pending(a.s, peer.pk, NULL, 0, &pend), 0);
	ck_assert_uint_eq(pend, 0);
	ck_assert_int_eq(qp_store_ack_get(a.s, peer.pk, &f1, &seq), 0);
	ck_assert_uint_eq(seq, 9);
	/* Another peer's acks are its own. */
	ck_assert_int_eq(qp_store_pending(a.s, a.pk, NULL, 0, &pend), 0);
	ck_assert_uint_eq(pend, 4);
	t_close(&a);
}
END_TEST

START_TEST(peer_notes_and_kv)
{
	tenv a;
	tkey p1, p2;
	json_t *o, *arr;
	void *v;
	size_t len;
	char hex[2 * QP_KEY_LEN + 1];

	t_open(&a);
	qp_key_generate(p1.pk, p1.sk);
	qp_key_generate(p2.pk, p2.sk);

	ck_assert_int_eq(qp_store_peer_get(a.s, p1.pk, &o), 0);
	ck_assert_uint_eq(json_object_size(o), 0);
	json_decref(o);
	o = json_pack("{s:s, s:s, s:i}", "name", "hub", "address", "h:7420",
	              "sessions", 1);
	ck_assert_int_eq(qp_store_peer_note(a.s, p1.pk, o), 0);
	json_decref(o);
	o = json_pack("{s:n, s:s, s:i}", "address", "last_error",
	              "connection refused", "sessions", 2);
	ck_assert_int_eq(qp_store_peer_note(a.s, p1.pk, o), 0);
	json_decref(o);
	ck_assert_int_eq(qp_store_peer_get(a.s, p1.pk, &o), 0);
	ck_assert_uint_eq(json_object_size(o), 3);
	ck_assert_str_eq(json_string_value(json_object_get(o, "name")), "hub");
	ck_assert_str_eq(json_string_value(json_object_get(o, "last_error")),
	                 "connection refused");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "sessions")), 2);
	ck_assert_ptr_null(json_object_get(o, "address"));
	json_decref(o);
	o = json_pack("{s:s}", "name", "other");
	ck_assert_int_eq(qp_store_peer_note(a.s, p2.pk, o), 0);
	json_decref(o);
	ck_assert_int_eq(qp_store_peer_note(a.s, p2.pk, NULL), QP_EINVAL);

	ck_assert_int_eq(qp_store_peers(a.s, &arr), 0);
	ck_assert_uint_eq(json_array_size(arr), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *e = json_array_get(arr, i);
		const char *k = json_string_value(json_object_get(e, "key"));
		qp_hex(p1.pk, QP_KEY_LEN, hex);
		if (strcmp(k, hex) == 0) {
			ck_assert_str_eq(
			    json_string_value(json_object_get(e, "name")),
			    "hub");
			continue;
		}
		qp_hex(p2.pk, QP_KEY_LEN, hex);
		ck_assert_str_eq(k, hex);
	}
	json_decref(arr);
	/* Removing every note removes the peer from the list. */
	o = json_pack("{s:n}", "name");
	ck_assert_int_eq(qp_store_peer_note(a.s, p2.pk, o), 0);
	json_decref(o);
	ck_assert_int_eq(qp_store_peers(a.s, &arr), 0);
	ck_assert_uint_eq(json_array_size(arr), 1);
	json_decref(arr);

	/* kv */
	ck_assert_int_eq(qp_store_kv_get(a.s, "join", &v, &len), QP_ENOTFOUND);
	ck_assert_int_eq(qp_store_kv_put(a.s, "join", "quipu1:abc", 10), 0);
	ck_assert_int_eq(qp_store_kv_get(a.s, "join", &v, &len), 0);
	ck_assert_uint_eq(len, 10);
	ck_assert_str_eq((char *)v, "quipu1:abc");
	free(v);
	ck_assert_int_eq(qp_store_kv_put(a.s, "join", "x", 1), 0);
	ck_assert_int_eq(qp_store_kv_get(a.s, "join", &v, &len), 0);
	ck_assert_uint_eq(len, 1);
	free(v);
	ck_assert_int_eq(qp_store_kv_put(a.s, "empty", NULL, 0), 0);
	ck_assert_int_eq(qp_store_kv_get(a.s, "empty", &v, &len), 0);
	ck_assert_uint_eq(len, 0);
	free(v);
	ck_assert_int_eq(qp_store_kv_put(a.s, "", "x", 1), QP_EINVAL);
	/* Survives a reopen. */
	qp_store_close(a.s);
	ck_assert_int_eq(qp_store_open(a.dir, a.pk, a.sk, &a.s), 0);
	ck_assert_int_eq(qp_store_kv_get(a.s, "join", &v, &len), 0);
	ck_assert_mem_eq(v, "x", 1);
	free(v);
	ck_assert_int_eq(qp_store_peer_get(a.s, p1.pk, &o), 0);
	ck_assert_uint_eq(json_object_size(o), 3);
	json_decref(o);
	t_close(&a);
}
END_TEST

/* ---- conflicts ---------------------------------------------------- */

START_TEST(conflicts_after_exchange)
{
	tenv hub, dev;
	dlist fh = {0}, fd = {0};
	char p[37], dh[65], dd[65];
	json_t *c, *e, *vals, *rec;
	size_t i;

	hub_and_device(&hub, &dev);
	add_org(hub.s, ORG1, "2060000041");
	add_producer(hub.s, ORG1, "45000001", "Ana", p);
	collect(hub.s, NULL, &fh);
	ck_assert_uint_eq(ingest(dev.s, &fh, 0, fh.n, 0), 0);
	dlist_free(&fh);
	ck_assert_int_eq(qp_store_conflicts(dev.s, 0, &c), 0);
	ck_assert_uint_eq(json_array_size(c), 0);
	json_decref(c);

	/* Both edit the name without seeing each other. */
	update1(hub.s, p, "{\"name\":\"Ana H\"}");
	update1(dev.s, p, "{\"name\":\"Ana D\"}");
	collect(hub.s, hub.pk, &fh);
	collect(dev.s, dev.pk, &fd);
	ck_assert_uint_eq(ingest(dev.s, &fh, 0, fh.n, 0), fh.n - 1);
	ck_assert_uint_eq(ingest(hub.s, &fd, 0, fd.n, 0), 0);
	digest(hub.s, dh);
	digest(dev.s, dd);
	ck_assert_str_eq(dh, dd);

	ck_assert_int_eq(qp_store_get(dev.s, p, &rec, NULL), 0);
	for (int n = 0; n < 2; n++) {
		ck_assert_int_eq(
		    qp_store_conflicts(n ? hub.s : dev.s, 0, &c), 0);
		ck_assert_uint_eq(json_array_size(c), 1);
		e = json_array_get(c, 0);
		ck_assert_str_eq(json_string_value(json_object_get(e, "id")),
		                 p);
		ck_assert_str_eq(json_string_value(json_object_get(e, "kind")),
		                 "producer");
		ck_assert_str_eq(
		    json_string_value(json_object_get(e, "field")), "name");
		vals = json_object_get(e, "values");
		ck_assert_uint_eq(json_array_size(vals), 2);
		/* The current value first, then the one kept for review. */
		ck_assert(json_equal(
		    json_object_get(json_array_get(vals, 0), "value"),
		    json_object_get(rec, "name")));
		json_array_foreach(vals, i, e)
		{
			const char *v =
			    json_string_value(json_object_get(e, "value"));
			ck_assert(strcmp(v, "Ana H") == 0 ||
			          strcmp(v, "Ana D") == 0);
			ck_assert(json_is_string(json_object_get(e, "author")));
			ck_assert(json_is_integer(json_object_get(e, "hlc")));
		}
		ck_assert(!json_equal(
		    json_object_get(json_array_get(vals, 0), "value"),
		    json_object_get(json_array_get(vals, 1), "value")));
		json_decref(c);
	}
	json_decref(rec);
	dlist_free(&fh);
	dlist_free(&fd);
	t_close(&hub);
	t_close(&dev);
}
END_TEST

/* The one void conflict of s: a void of p (reason) standing over the
 * edit of field that gave value. */
static void want_void_conflict(qp_store *s, const char *p, const char *field,
                               const char *reason, const char *value)
{
	json_t *c, *e, *vals;

	ck_assert_int_eq(qp_store_conflicts(s, 0, &c), 0);
	ck_assert_uint_eq(json_array_size(c), 1);
	e = json_array_get(c, 0);
	ck_assert_str_eq(json_string_value(json_object_get(e, "id")), p);
	ck_assert_str_eq(json_string_value(json_object_get(e, "field")), field);
	ck_assert(json_is_true(json_object_get(e, "void")));
	vals = json_object_get(e, "values");
	ck_assert_uint_eq(json_array_size(vals), 2);
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_array_get(vals, 0), "void")),
	                 reason);
	ck_assert(json_is_integer(
	    json_object_get(json_array_get(vals, 0), "hlc")));
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_array_get(vals, 1), "value")),
	                 value);
	json_decref(c);
}

static size_t nconflicts(qp_store *s)
{
	json_t *c;
	size_t n;
	ck_assert_int_eq(qp_store_conflicts(s, 0, &c), 0);
	n = json_array_size(c);
	json_decref(c);
	return n;
}

/* A void and an edit that did not see each other: the record stays
 * voided on both sides, whichever arrived first, and the edit is listed
 * against the void until a void that saw it confirms it. */
START_TEST(void_against_unseen_edit)
{
	tenv hub, dev;
	dlist fh = {0}, fd = {0};
	char p[37], q[37], dh[65], dd[65], err[QP_ERRMSG_LEN];
	json_t *rec;

	hub_and_device(&hub, &dev);
	add_org(hub.s, ORG1, "2060000041");
	add_producer(hub.s, ORG1, "45000001", "Ana", p);
	add_producer(hub.s, ORG1, "45000002", "Beto", q);
	collect(hub.s, NULL, &fh);
	ck_assert_uint_eq(ingest(dev.s, &fh, 0, fh.n, 0), 0);
	dlist_free(&fh);

	/* The hub voids Ana while the tablet corrects her name. */
	ck_assert_int_eq(void1(hub.s, p, "duplicado", err), 0);
	update1(dev.s, p, "{\"name\":\"Ana D\"}");
	/* Re-voiding with nothing kept against the void is refused. */
	ck_assert_int_eq(void1(hub.s, p, "otra vez", err), QP_EVALID);
	ck_assert_str_eq(err + strlen(err) - strlen("is already voided"),
	                 "is already voided");
	collect(hub.s, hub.pk, &fh);
	collect(dev.s, dev.pk, &fd);
	/* The tablet gets the void after its edit, the hub the edit after
	 * its void. */
	ck_assert_uint_eq(ingest(dev.s, &fh, 0, fh.n, 0), fh.n - 1);
	ck_assert_uint_eq(ingest(hub.s, &fd, 0, fd.n, 0), 0);
	dlist_free(&fh);
	dlist_free(&fd);
	want_void_conflict(hub.s, p, "name", "duplicado", "Ana D");
	want_void_conflict(dev.s, p, "name", "duplicado", "Ana D");
	digest(hub.s, dh);
	digest(dev.s, dd);
	ck_assert_str_eq(dh, dd);
	{
		json_t *meta = NULL;
		ck_assert_int_eq(qp_store_get(hub.s, p, &rec, &meta), 0);
		ck_assert_str_eq(
		    json_string_value(json_object_get(meta, "voided")),
		    "duplicado");
		json_decref(meta);
		json_decref(rec);
	}

	/* An edit the voider had seen is no conflict: the tablet edits
	 * Beto, the hub receives it, then voids him. */
	update1(dev.s, q, "{\"name\":\"Beto R\"}");
	collect(dev.s, dev.pk, &fd);
	ingest(hub.s, &fd, 0, fd.n, 0);
	dlist_free(&fd);
	ck_assert_int_eq(void1(hub.s, q, "se retiró", err), 0);
	ck_assert_uint_eq(nconflicts(hub.s), 1);

	/* The hub confirms Ana's void: settled there, and on the tablet
	 * once it has the confirmation. */
	ck_assert_int_eq(void1(hub.s, p, "duplicado, confirmado", err), 0);
	ck_assert_uint_eq(nconflicts(hub.s), 0);
	collect(hub.s, hub.pk, &fh);
	ingest(dev.s, &fh, 0, fh.n, 0);
	dlist_free(&fh);
	ck_assert_uint_eq(nconflicts(dev.s), 0);
	digest(hub.s, dh);
	digest(dev.s, dd);
	ck_assert_str_eq(dh, dd);
	t_close(&hub);
	t_close(&dev);
}
END_TEST

Suite *suite_store_sync(void)
{
	Suite *s = suite_create("store_sync");
	TCase *tc = tcase_create("store_sync");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, heads_and_read_deltas);
	tcase_add_test(tc, trust_chain_and_scope);
	tcase_add_test(tc, trust_hierarchy);
	tcase_add_test(tc, ingest_converges_and_refuses);
	tcase_add_test(tc, revocation_quarantines_beyond_cut);
	tcase_add_test(tc, acks_and_pending);
	tcase_add_test(tc, peer_notes_and_kv);
	tcase_add_test(tc, conflicts_after_exchange);
	tcase_add_test(tc, void_against_unseen_edit);
	suite_add_tcase(s, tc);
	return s;
}
