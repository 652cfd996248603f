/* peer.c - sync sessions, the hub listener and the dialer; see peer.h. */
#include "peer_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "hlc.h"
#include "store_sync.h"
#include "util.h"

static void session_pump(qp_session *s);
static void tick_waiters(qp_peers *p);
static void waiter_done(qp_waiter *w, json_t *reply);

/* A full exchange with the hub ended (both sides said DONE): what the hub
 * holds for this node, its own earlier deltas included, is here.  A store
 * that was a restored copy now knows its feeds' heads and may write. */
static void up_complete(qp_peers *p)
{
	p->up_complete_ms = uv_now(p->loop);
	if (qp_store_is_copy(p->store)) {
		int rc = qp_store_copy_settle(p->store);
		if (rc == 0)
			qp_log_info(p->lg, "restored copy caught up with the hub; "
				    "local writes open again");
		else
			qp_log_error(p->lg, "cannot record the restored copy as "
				     "settled: %s", qp_strerror(rc));
	}
}

/* Both sides of session s said DONE: it is a success now, not only when
 * the session closes (it may stay open for a long time), and an older
 * error no longer describes the link. */
static void exchange_done(qp_session *s)
{
	if (s->st != NULL) {
		s->st->last_success_ms = qp_hlc_wall_ms();
		s->st->last_error[0] = '\0';
	}
	if (s->outbound)
		up_complete(s->p);
}

uint64_t qp__now_s(void)
{
	return qp_hlc_wall_ms() / 1000;
}

qp_peer_stat *qp__peer_stat(qp_peers *p, const uint8_t key[QP_KEY_LEN])
{
	qp_peer_stat *st;
	for (st = p->stats; st != NULL; st = st->next)
		if (memcmp(st->key, key, QP_KEY_LEN) == 0)
			return st;
	st = qp_xcalloc(1, sizeof(*st));
	memcpy(st->key, key, QP_KEY_LEN);
	st->state = "idle";
	st->next = p->stats;
	p->stats = st;
	return st;
}

static void key_short(const uint8_t *k, char out[17])
{
	qp_hex(k, 8, out);
}

/* ---- sending ----------------------------------------------------- */

static int send_msg(qp_session *s, uint8_t *msg, size_t len)
{
	int rc = qp_link_send(s->link, msg, len);
	free(msg);
	return rc;
}

static void session_fail(qp_session *s, int code, const char *why)
{
	uint8_t *m;
	size_t n;
	if (s->established && qp_sync_encode_error(code, why, &m, &n) == 0)
		send_msg(s, m, n);
	qp_link_close(s->link, why);
}

/* Our version vector, as held now. */
static int vv_add(void *ctx, const qp_feed *f, uint64_t seq)
{
	return qp_vv_set(ctx, f, seq);
}

static int load_heads(qp_peers *p, qp_vv *vv)
{
	qp_vv_init(vv);
	return qp_store_heads(p->store, vv_add, vv);
}

/* The orgs whose feeds this session carries: the peer's certificate for a
 * device we serve, our own certificate toward our hub. */
static const uint8_t (*session_scope(qp_session *s, size_t *n))[QP_UUID_LEN]
{
	const qp_cert *c = s->outbound ? &s->p->mycert : &s->cert;
	*n = c->norgs;
	return (const uint8_t (*)[QP_UUID_LEN])c->orgs;
}

static int in_scope_org(qp_session *s, const uint8_t org[QP_UUID_LEN])
{
	const qp_cert *c = s->outbound ? &s->p->mycert : &s->cert;
	return qp_cert_allows_org(c, org);
}

static int in_scope(qp_session *s, const qp_feed *f)
{
	return in_scope_org(s, f->org);
}

static int send_vector(qp_session *s)
{
	qp_vv mine, scoped;
	size_t i = 0, n;
	uint8_t *m;
	size_t len;
	int rc;

	if ((rc = load_heads(s->p, &mine)) != 0)
		return rc;
	qp_vv_init(&scoped);
	for (i = 0; i < mine.n; i++)
		if (in_scope(s, &mine.e[i].feed))
			qp_vv_set(&scoped, &mine.e[i].feed, mine.e[i].seq);
	qp_vv_free(&mine);
	i = 0;
	do {
		n = scoped.n - i;
		if (n > QP_SYNC_VECTOR_MAX)
			n = QP_SYNC_VECTOR_MAX;
		rc = qp_sync_encode_vector(scoped.e + i, n, i + n < scoped.n, &m, &len);
		if (rc == 0)
			rc = send_msg(s, m, len);
		i += n;
	} while (rc == 0 && i < scoped.n);
	qp_vv_free(&scoped);
	return rc;
}

/* Certificates and revocations a hub hands a device before any delta, so
 * the device can check every author itself. */
void qp__blobs_add(qp__blobs *b, const uint8_t *d, size_t len)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 16;
		b->b = qp_xrealloc(b->b, b->cap * sizeof(*b->b));
		b->len = qp_xrealloc(b->len, b->cap * sizeof(*b->len));
	}
	b->b[b->n] = qp_xmalloc(len);
	memcpy(b->b[b->n], d, len);
	b->len[b->n++] = len;
}

void qp__blobs_free(qp__blobs *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->b[i]);
	free(b->b);
	free(b->len);
}

int qp__blobs_collect(void *ctx, const uint8_t *d, size_t len)
{
	qp__blobs_add(ctx, d, len);
	return 0;
}

static int cert_collect(void *ctx, const uint8_t *cert, size_t len)
{
	qp__blobs *b = ctx;
	qp_cert c;
	size_t i;
	if (qp_cert_parse(cert, len, &c) != 0)
		return 0;
	for (i = 0; i < c.norgs; i++)
		if (in_scope_org(b->s, c.orgs[i])) {
			qp__blobs_add(b, cert, len);
			break;
		}
	return 0;
}

/* Keep the certificates a peer sent, in any order: one whose issuer a
 * later one makes trusted is tried again. */
size_t qp__peer_take_certs(qp_peers *p, const uint8_t *const *items,
			   const size_t *lens, size_t n, const char *from)
{
	int *rc = qp_xcalloc(n ? n : 1, sizeof(*rc));
	int progress = 1;
	size_t i, kept = 0;

	for (i = 0; i < n; i++)
		rc[i] = QP_EAUTH;
	/* A certificate may come before the one of the hub that issued it:
	 * go round while any is taken. */
	while (progress) {
		progress = 0;
		for (i = 0; i < n; i++) {
			if (rc[i] != QP_EAUTH)
				continue;
			rc[i] = qp_store_cert_put(p->store, items[i], lens[i]);
			if (rc[i] != QP_EAUTH)
				progress = 1;
		}
	}
	/* Certificates from outside our anchors are expected (a device of
	 * another branch of the programme). */
	for (i = 0; i < n; i++) {
		if (rc[i] == 0)
			kept++;
		else
			qp_log_msg(p->lg,
				   rc[i] == QP_EAUTH ? QP_LOG_DEBUG : QP_LOG_WARN,
				   "certificate from %s not kept: %s", from,
				   qp_strerror(rc[i]));
	}
	free(rc);
	return kept;
}

static void take_certs(qp_session *s, const qp_sync_msg *m)
{
	qp__peer_take_certs(s->p, m->items, m->lens, m->nitems,
			    qp_link_addr(s->link));
}

static int send_trust(qp_session *s)
{
	qp__blobs b = {0};
	uint8_t *m;
	size_t len, i, n;
	int rc = 0;

	/* To a node that joined us: the hubs above us first, so it can
	 * anchor them before the certificates they issued (empty from a top
	 * hub, which clears a chain held from before). */
	if (!s->outbound) {
		b.s = s;
		qp_store_chain(s->p->store, qp__blobs_collect, &b);
		if (b.n <= QP_SYNC_CHAIN_MAX &&
		    (rc = qp_sync_encode_chain((const uint8_t *const *)b.b,
					       b.len, b.n, &m, &len)) == 0)
			rc = send_msg(s, m, len);
		qp__blobs_free(&b);
		memset(&b, 0, sizeof(b));
	}
	b.s = s;
	qp_store_certs(s->p->store, cert_collect, &b);
	for (i = 0; rc == 0 && i < b.n; i += n) {
		n = b.n - i > QP_SYNC_CERTS_MAX ? QP_SYNC_CERTS_MAX : b.n - i;
		rc = qp_sync_encode_certs((const uint8_t *const *)b.b + i, b.len + i,
					  n, &m, &len);
		if (rc == 0)
			rc = send_msg(s, m, len);
	}
	qp__blobs_free(&b);
	memset(&b, 0, sizeof(b));
	b.s = s;
	qp_store_revocations(s->p->store, qp__blobs_collect, &b);
	for (i = 0; rc == 0 && i < b.n; i += n) {
		n = b.n - i > QP_SYNC_REV_MAX ? QP_SYNC_REV_MAX : b.n - i;
		rc = qp_sync_encode_revocations((const uint8_t *const *)b.b + i,
						n, &m, &len);
		if (rc == 0)
			rc = send_msg(s, m, len);
	}
	qp__blobs_free(&b);
	if (rc == 0)
		s->trust_sent = qp_store_trust_gen(s->p->store);
	return rc;
}

/* One DELTAS batch under construction. */
typedef struct batch {
	qp__blobs d;
	size_t bytes;
	qp_session *s;
	const qp_feed *feed;
	uint64_t last;
	uint64_t acked;
	int full;
} batch;

static int batch_take(void *ctx, uint64_t seq, const uint8_t *d, size_t len)
{
	batch *b = ctx;
	if (!qp_sync_batch_fits(b->d.n, b->bytes, len)) {
		b->full = 1;
		return 1;
	}
	qp__blobs_add(&b->d, d, len);
	b->bytes += len;
	b->last = seq;
	if (seq <= b->acked)
		b->s->st->resent_after_ack++;
	return 0;
}

/* Send batches of what the peer lacks while the window allows. */
static void session_pump(qp_session *s)
{
	qp_peers *p = s->p;
	qp_vv mine;
	qp_vv_range *miss = NULL;
	const uint8_t (*orgs)[QP_UUID_LEN];
	size_t nmiss = 0, norgs, i = 0;
	uint8_t *m;
	size_t len;
	int rc;

	if (!s->established || !s->got_vector || p->stopping)
		return;
	if (load_heads(p, &mine) != 0)
		return;
	orgs = session_scope(s, &norgs);
	rc = qp_vv_missing(&mine, &s->sent, orgs, norgs, &miss, &nmiss);
	qp_vv_free(&mine);
	if (rc != 0)
		return;
	/* New certificates or revocations (a device enrolled since the
	 * session began) go before the deltas they vouch for. */
	if (nmiss > 0 && (!s->outbound || p->is_hub) &&
	    qp_store_trust_gen(p->store) != s->trust_sent && send_trust(s) != 0) {
		free(miss);
		session_fail(s, -EIO, "cannot send certificates");
		return;
	}
	while (s->inflight < QP_PEER_WINDOW && i < nmiss &&
	       qp_link_queued(s->link) < (16u << 20)) {
		batch b;
		memset(&b, 0, sizeof(b));
		b.s = s;
		/* Fill one batch from as many feeds as fit, oldest first. */
		while (i < nmiss && !b.full) {
			qp_vv_range *r = &miss[i];
			uint64_t from = qp_vv_get(&s->sent, &r->feed);
			b.feed = &r->feed;
			b.last = from;
			qp_store_ack_get(p->store, s->peer, &r->feed, &b.acked);
			qp_store_read_deltas(p->store, &r->feed, from,
					     QP_SYNC_BATCH_MAX - b.d.n, SIZE_MAX,
					     batch_take, &b);
			if (b.last > from)
				qp_vv_set(&s->sent, &r->feed, b.last);
			if (b.last >= r->to)
				i++;
			else if (b.d.n >= QP_SYNC_BATCH_MAX)
				b.full = 1;
			else if (b.last == from && !b.full)
				i++; /* the log ended early: nothing more here */
		}
		if (b.d.n == 0) {
			qp__blobs_free(&b.d);
			break;
		}
		rc = qp_sync_encode_deltas((const uint8_t *const *)b.d.b, b.d.len,
					   b.d.n, &m, &len);
		s->st->deltas_sent += b.d.n;
		qp__blobs_free(&b.d);
		if (rc != 0 || send_msg(s, m, len) != 0) {
			free(miss);
			session_fail(s, rc ? rc : -EIO, "cannot send deltas");
			return;
		}
		s->inflight++;
		s->done_sent = 0;
	}
	free(miss);
	if (i >= nmiss && s->inflight == 0 && !s->done_sent) {
		if (qp_sync_encode_done(&m, &len) == 0 && send_msg(s, m, len) == 0) {
			s->done_sent = 1;
			if (s->peer_done)
				exchange_done(s);
		}
	}
}

/* ---- acknowledgements ---------------------------------------------- */

/* Acknowledgements are gathered in memory and stored every tick (and when
 * the session ends) in one transaction: one sync per tick instead of one
 * per batch.  Losing the last tick's worth in a crash costs a few deltas
 * sent again, which the receiver takes as duplicates. */
static void ack_note(qp_session *s, const qp_vv_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].seq > qp_vv_get(&s->ack_dirty, &e[i].feed))
			qp_vv_set(&s->ack_dirty, &e[i].feed, e[i].seq);
}

static void ack_flush(qp_session *s)
{
	if (s->ack_dirty.n == 0 || !s->established)
		return;
	qp_store_ack_set_many(s->p->store, s->peer, s->ack_dirty.e, s->ack_dirty.n);
	qp_vv_free(&s->ack_dirty);
	qp_vv_init(&s->ack_dirty);
}

/* ---- receiving --------------------------------------------------- */

/* A peer's own delta stamped more than a day ahead of this node's clock
 * says its date is wrong: noted for `quipu peers` and logged once per
 * session (its stamps do not move this node's clock: store_verify.c). */
static void note_clock(qp_session *s, const qp_delta_hdr *h)
{
	uint64_t wall = qp_hlc_wall_ms(), ms = QP_HLC_MS(h->hlc);
	uint64_t ahead = ms > wall ? ms - wall : 0;

	if (memcmp(h->feed.author, s->peer, QP_KEY_LEN) != 0)
		return;
	if (ahead <= QP_HLC_AHEAD_MAX_MS) {
		s->st->clock_ahead_ms = 0;
		return;
	}
	if (s->st->clock_ahead_ms == 0)
		qp_log_warn(s->p->lg, "deltas of %s (%s) are stamped %llu days "
			    "ahead of this clock: that device's date is wrong",
			    s->st->name[0] ? s->st->name : "a peer",
			    qp_link_addr(s->link),
			    (unsigned long long)((ahead + 43200000) / 86400000));
	s->st->clock_ahead_ms = ahead;
}

static void on_deltas(qp_session *s, const qp_sync_msg *m)
{
	qp_peers *p = s->p;
	int *rcs = qp_xcalloc(m->nitems, sizeof(int));
	char (*whys)[QP_ERRMSG_LEN] = qp_xcalloc(m->nitems, QP_ERRMSG_LEN);
	qp_vv heads;
	size_t dups = 0, i, refused = 0;
	uint8_t *out;
	size_t len;
	int rc;

	rc = qp_store_ingest(p->store, m->items, m->lens, m->nitems, rcs, whys,
			     &dups);
	if (rc != 0) {
		free(rcs);
		free(whys);
		session_fail(s, rc, "cannot commit received deltas");
		return;
	}
	qp_vv_init(&heads);
	for (i = 0; i < m->nitems; i++) {
		qp_delta_hdr h;
		uint64_t head = 0;
		if (rcs[i] != 0) {
			refused++;
			if (refused <= 3)
				qp_log_warn(p->lg, "delta from %s refused: %s",
					    qp_link_addr(s->link),
					    whys[i][0] ? whys[i] : qp_strerror(rcs[i]));
		}
		if (qp_delta_verify(m->items[i], m->lens[i], &h) != 0)
			continue;
		if (rcs[i] == 0)
			note_clock(s, &h);
		qp_store_head(p->store, &h.feed, &head);
		if (head > 0)
			qp_vv_set(&heads, &h.feed, head);
		/* What the peer sent, it has. */
		if (head > qp_vv_get(&s->sent, &h.feed))
			qp_vv_set(&s->sent, &h.feed, head);
		if (head > qp_vv_get(&s->acked, &h.feed))
			qp_vv_set(&s->acked, &h.feed, head);
	}
	/* The sender holds what it sent. */
	ack_note(s, heads.e, heads.n);
	s->st->deltas_received += m->nitems - refused;
	s->st->deltas_refused += refused;
	free(rcs);
	free(whys);
	if (qp_sync_encode_ack(heads.e, heads.n, m->nitems, &out, &len) == 0)
		send_msg(s, out, len);
	qp_vv_free(&heads);
	/* Others may want what just arrived (a hub forwards). */
	qp_peers_kick(p);
}

static void on_ack(qp_session *s, const qp_sync_msg *m)
{
	qp_peers *p = s->p;
	size_t i;

	if (s->inflight > 0)
		s->inflight--;
	ack_note(s, m->entries, m->nentries);
	for (i = 0; i < m->nentries; i++) {
		if (m->entries[i].seq > qp_vv_get(&s->acked, &m->entries[i].feed))
			qp_vv_set(&s->acked, &m->entries[i].feed, m->entries[i].seq);
	}
	s->st->last_ack_ms = qp_hlc_wall_ms();
	if (s->inflight == 0) {
		/* Caught up: store the acknowledgements now rather than at the
		 * next tick, so a waiting `sync --wait` sees them at once. */
		ack_flush(s);
		/* Sent but not taken: the peer refused them (its log and
		 * `quipu quarantine` say why).  Say so here too. */
		uint64_t lost = 0;
		for (i = 0; i < s->sent.n; i++) {
			uint64_t a = qp_vv_get(&s->acked, &s->sent.e[i].feed);
			if (s->sent.e[i].seq > a)
				lost += s->sent.e[i].seq - a;
		}
		if (lost > 0)
			snprintf(s->st->last_error, sizeof(s->st->last_error),
				 "%s refused %llu delta%s (its log says why)",
				 s->outbound ? "hub" : "peer", (unsigned long long)lost,
				 lost == 1 ? "" : "s");
	}
	session_pump(s);
	tick_waiters(p);
}

static void on_message(qp_link *l, const uint8_t *buf, size_t len, void *ud)
{
	qp_session *s = ud;
	qp_sync_msg m;
	size_t i;
	int type = qp_sync_decode(buf, len, &m);
	(void)l;

	s->last_activity_ms = uv_now(s->p->loop);
	s->st->last_contact_ms = qp_hlc_wall_ms();
	/* A certificate that expires during a session ends it there. */
	if (!s->outbound && s->cert.expires_at != 0 &&
	    qp__now_s() >= s->cert.expires_at) {
		if (type > 0)
			qp_sync_msg_free(&m);
		session_fail(s, QP_EEXPIRED, "certificate expired");
		return;
	}
	if (type < 0) {
		session_fail(s, type, "malformed sync message");
		return;
	}
	switch (type) {
	case QP_SYNC_VECTOR:
		if (qp_vv_merge(&s->sent, m.entries, m.nentries) != 0) {
			session_fail(s, QP_EPROTO, "bad version vector");
			break;
		}
		qp_vv_merge(&s->acked, m.entries, m.nentries);
		/* What the peer holds needs no sending and is not pending. */
		ack_note(s, m.entries, m.nentries);
		if (!m.more) {
			/* A new round: answer it with DONE once caught up. */
			s->got_vector = 1;
			s->done_sent = 0;
			session_pump(s);
		}
		break;
	case QP_SYNC_DELTAS:
		on_deltas(s, &m);
		break;
	case QP_SYNC_ACK:
		on_ack(s, &m);
		break;
	case QP_SYNC_CERTS:
		take_certs(s, &m);
		break;
	case QP_SYNC_CHAIN:
		/* Only the hub we joined (the session we dialled, whose key
		 * the handshake proved) speaks for the hubs above it. */
		if (s == s->p->up) {
			int rc = qp_store_set_chain(s->p->store, m.items, m.lens,
						    m.nitems);
			if (rc != 0)
				qp_log_warn(s->p->lg,
					    "hub chain from %s not kept: %s",
					    qp_link_addr(s->link), qp_strerror(rc));
		}
		break;
	case QP_SYNC_REVOKES:
		for (i = 0; i < m.nitems; i++) {
			int rc = qp_store_revocation_put(s->p->store, m.items[i], m.lens[i]);
			if (rc != 0)
				qp_log_warn(s->p->lg, "revocation from %s refused: %s",
					    qp_link_addr(s->link), qp_strerror(rc));
		}
		break;
	case QP_SYNC_DONE:
		s->peer_done = 1;
		if (s->done_sent && s->inflight == 0)
			exchange_done(s);
		tick_waiters(s->p);
		break;
	case QP_SYNC_ERROR:
		snprintf(s->st->last_error, sizeof(s->st->last_error),
			 "peer gave up: %s", m.reason);
		qp_link_close(s->link, s->st->last_error);
		break;
	}
	qp_sync_msg_free(&m);
}

/* ---- session lifetime -------------------------------------------- */

static void on_established(qp_link *l, void *ud)
{
	qp_session *s = ud;
	qp_peers *p = s->p;
	char k[17];

	s->established = 1;
	memcpy(s->peer, qp_link_peer(l), QP_KEY_LEN);
	s->st = qp__peer_stat(p, s->peer);
	s->st->state = "connected";
	s->st->sessions++;
	s->st->last_contact_ms = qp_hlc_wall_ms();
	s->last_activity_ms = uv_now(p->loop);
	snprintf(s->st->addr, sizeof(s->st->addr), "%s", qp_link_addr(l));
	if (!s->outbound) {
		snprintf(s->st->name, sizeof(s->st->name), "%s", s->cert.name);
		/* Remember the device's certificate: it vouches for its deltas. */
	} else {
		s->st->name[0] = '\0';
		snprintf(s->st->name, sizeof(s->st->name), "hub");
	}
	key_short(s->peer, k);
	qp_log_info(p->lg, "sync session with %s (%s) at %s", k, s->st->name,
		    qp_link_addr(l));
	/* A hub hands its devices (and a regional hub its national hub) the
	 * certificates that vouch for the deltas that follow. */
	if ((!s->outbound || p->is_hub) && send_trust(s) != 0) {
		session_fail(s, -EIO, "cannot send certificates");
		return;
	}
	if (send_vector(s) != 0)
		session_fail(s, -EIO, "cannot send version vector");
}

/* Failures that retrying cannot fix: the hub refused us, or is not the
 * hub we pinned. */
static int refusal_code(int code)
{
	return code == QP_EAUTH || code == QP_EEXPIRED || code == QP_EREVOKED ||
	       code == QP_ESIG || code == QP_EVERSION;
}

static void fail_waiters(qp_peers *p, int code, const char *why)
{
	qp_waiter *w;
	char msg[600];

	snprintf(msg, sizeof(msg), "sync: %s", why);
	while ((w = p->waiters) != NULL) {
		p->waiters = w->next;
		waiter_done(w, json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg,
					 "code", qp_err_name(code)));
	}
}

/* Keep what survives a restart of quipud: name, address, last contact. */
static void note_peer(qp_peers *p, const qp_peer_stat *st)
{
	char when[32];
	json_t *o;

	if (st->last_contact_ms == 0)
		return;
	qp_hlc_iso(QP_HLC_MAKE(st->last_contact_ms, 0), when, sizeof(when));
	o = json_pack("{s:s, s:s, s:s}", "name", st->name, "address", st->addr,
		      "last_contact", when);
	if (o != NULL)
		qp_store_peer_note(p->store, st->key, o);
	json_decref(o);
}

static void on_closed(qp_link *l, int code, const char *why, void *ud)
{
	qp_session *s = ud;
	qp_peers *p = s->p;
	qp_session **pp;
	(void)l;

	if (s->st != NULL) {
		const qp_link_stats *ls = qp_link_stats_get(l);
		s->st->bytes_in += ls->bytes_in;
		s->st->bytes_out += ls->bytes_out;
		s->st->state = "idle";
		if (code != 0)
			snprintf(s->st->last_error, sizeof(s->st->last_error), "%s", why);
		else if (s->peer_done && s->done_sent)
			s->st->last_success_ms = qp_hlc_wall_ms();
	}
	if (s->outbound) {
		qp_peer_stat *st = qp__peer_stat(p, p->hub_pk);
		if (code != 0) {
			snprintf(st->last_error, sizeof(st->last_error), "%s", why);
			p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : QP_PEER_BACKOFF_MIN;
			if (p->backoff_ms > QP_PEER_BACKOFF_MAX)
				p->backoff_ms = QP_PEER_BACKOFF_MAX;
		} else if (s->peer_done && s->done_sent) {
			p->backoff_ms = 0;
			st->last_success_ms = qp_hlc_wall_ms();
			st->last_error[0] = '\0';
		}
		{
			/* Jitter of +-20% so a fleet of tablets does not retry
			 * in step after an outage. */
			uint64_t d = p->backoff_ms ? p->backoff_ms : QP_PEER_PULL_MS;
			d = d * (80 + randombytes_uniform(41)) / 100;
			st->next_attempt_ms = uv_now(p->loop) + d;
			st->state = p->backoff_ms ? "backoff" : "idle";
		}
		p->up = NULL;
		qp_log_info(p->lg, "sync with hub ended: %s", why);
		/* A refusal will not mend itself by retrying: tell whoever
		 * waits at once instead of at their timeout. */
		if (refusal_code(code))
			fail_waiters(p, code, why);
	}
	if (s->st != NULL)
		note_peer(p, s->st);
	for (pp = &p->sessions; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	ack_flush(s);
	qp_vv_free(&s->ack_dirty);
	qp_vv_free(&s->sent);
	qp_vv_free(&s->acked);
	free(s);
	if (!p->stopping)
		tick_waiters(p);
	qp__peers_release(p);
}

static const qp_link_cbs session_cbs = {on_established, on_message, on_closed};

static qp_session *session_new(qp_peers *p, int outbound)
{
	qp_session *s = qp_xcalloc(1, sizeof(*s));
	s->p = p;
	s->outbound = outbound;
	qp_vv_init(&s->sent);
	qp_vv_init(&s->acked);
	qp_vv_init(&s->ack_dirty);
	s->next = p->sessions;
	p->sessions = s;
	p->handles++; /* released when the session is freed */
	return s;
}

static void session_unlink(qp_peers *p, qp_session *s)
{
	qp_session **pp;
	for (pp = &p->sessions; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	free(s);
	qp__peers_release(p);
}

/* ---- hub side: who may connect ----------------------------------- */

typedef struct revfind {
	const uint8_t *key;
	const uint8_t *root;
	int found;
	uint64_t after;
} revfind;

static int rev_find(void *ctx, const uint8_t *rev, size_t len)
{
	revfind *f = ctx;
	qp_revocation r;
	if (qp_revocation_verify(rev, len, f->root, &r) == 0 &&
	    memcmp(r.key, f->key, QP_KEY_LEN) == 0) {
		f->found = 1;
		f->after = r.after_seq;
		return 1;
	}
	return 0;
}

int qp__peer_revoked(qp_peers *p, const uint8_t key[QP_KEY_LEN], uint64_t *after)
{
	revfind f = {key, p->have_root ? p->root : p->node->pk, 0, 0};
	qp_store_revocations(p->store, rev_find, &f);
	if (f.found && after != NULL)
		*after = f.after;
	return f.found;
}

/* Whether this hub issued the device of c a newer certificate than c
 * (enrolled again, e.g. for other orgs): the old one must not keep
 * granting what the new one took away. */
static int superseded(qp_peers *p, const qp_cert *c)
{
	uint8_t *held = NULL;
	size_t len;
	qp_cert h;
	int newer = 0;

	if (qp_store_cert_get(p->store, c->device, &held, &len) == 0 &&
	    qp_cert_parse(held, len, &h) == 0 &&
	    memcmp(h.issuer, c->issuer, QP_KEY_LEN) == 0 && h.serial > c->serial)
		newer = 1;
	free(held);
	return newer;
}

static int check_peer(void *ctx, const uint8_t pk[QP_KEY_LEN],
		      const uint8_t *cert, size_t certlen, char *why,
		      size_t whylen)
{
	qp_session *s = ctx;
	qp_peers *p = s->p;
	int rc;

	rc = qp_cert_verify(cert, certlen, p->node->pk, qp__now_s(), &s->cert);
	switch (rc) {
	case 0:
		break;
	case QP_EEXPIRED:
		snprintf(why, whylen, "certificate expired");
		return rc;
	case QP_EAUTH:
		snprintf(why, whylen, "certificate not issued by this hub");
		return rc;
	default:
		snprintf(why, whylen, "bad certificate: %s", qp_strerror(rc));
		return rc;
	}
	s->have_cert = 1;
	if (qp__peer_revoked(p, pk, NULL)) {
		snprintf(why, whylen, "key revoked");
		return QP_EREVOKED;
	}
	if (superseded(p, &s->cert)) {
		snprintf(why, whylen, "certificate superseded by a newer "
			 "enrolment; join again with the newest token");
		return QP_EAUTH;
	}
	/* Keep the newest certificate: it vouches for this device's deltas. */
	qp_store_cert_put(p->store, cert, certlen);
	return 0;
}

static void on_connection(uv_stream_t *l, int status)
{
	qp_peers *p = l->data;
	qp_session *s;
	qp_link_opts o = {0};

	if (status < 0 || p->stopping)
		return;
	s = session_new(p, 0);
	s->st = NULL;
	if (qp_link_accept(l, p->node->pk, p->node->sk, check_peer, s, &o,
			   &session_cbs, s, p->lg, &s->link) != 0) {
		session_unlink(p, s);
		return;
	}
}

/* ---- upstream ---------------------------------------------------- */

uint64_t qp__peer_pending_up(qp_peers *p)
{
	uint64_t n = 0;
	if (!p->joined)
		return 0;
	qp_store_pending(p->store, p->hub_pk,
			 (const uint8_t (*)[QP_UUID_LEN])p->mycert.orgs,
			 p->mycert.norgs, &n);
	return n;
}

void qp__peer_dial_now(qp_peers *p)
{
	qp_session *s;
	qp_peer_stat *st;
	qp_link_opts o = {0};
	int rc;

	if (!p->joined || p->up != NULL || p->stopping)
		return;
	st = qp__peer_stat(p, p->hub_pk);
	snprintf(st->addr, sizeof(st->addr), "%s", p->hub_addr);
	if (st->name[0] == '\0')
		snprintf(st->name, sizeof(st->name), "hub");
	s = session_new(p, 1);
	s->st = st;
	st->state = "connecting";
	rc = qp_link_dial(p->loop, p->hub_addr, p->node->pk, p->node->sk,
			  p->hub_pk, p->cert, p->certlen, &o, &session_cbs, s,
			  p->lg, &s->link);
	if (rc != 0) {
		snprintf(st->last_error, sizeof(st->last_error),
			 "cannot dial %s: %s", p->hub_addr,
			 rc > -1000 ? uv_strerror(rc) : qp_strerror(rc));
		st->state = "backoff";
		st->next_attempt_ms = uv_now(p->loop) + QP_PEER_BACKOFF_MAX;
		session_unlink(p, s);
		return;
	}
	p->up = s;
}

void qp__peer_set_join(qp_peers *p, const uint8_t hub_pk[QP_KEY_LEN],
		       const char *addr, const uint8_t *cert, size_t certlen)
{
	free(p->cert);
	p->cert = qp_xmalloc(certlen);
	memcpy(p->cert, cert, certlen);
	p->certlen = certlen;
	qp_cert_parse(cert, certlen, &p->mycert);
	/* What this node writes must be for its certificate's orgs, or it
	 * would never reach the hub. */
	qp_store_set_scope(p->store,
			   (const uint8_t (*)[QP_UUID_LEN])p->mycert.orgs,
			   p->mycert.norgs);
	memcpy(p->hub_pk, hub_pk, QP_KEY_LEN);
	snprintf(p->hub_addr, sizeof(p->hub_addr), "%s", addr);
	p->joined = 1;
	p->backoff_ms = 0;
	if (!p->is_hub) {
		memcpy(p->root, hub_pk, QP_KEY_LEN);
		p->have_root = 1;
		qp_store_set_root(p->store, hub_pk);
	} else {
		/* A regional hub: the national hub is a second anchor. */
		qp_store_set_upstream(p->store, hub_pk);
	}
}

/* ---- timers ------------------------------------------------------- */

static void waiter_done(qp_waiter *w, json_t *reply)
{
	w->d->done(w->d, reply);
	free(w);
}

/* Complete `sync --wait` requests whose condition holds or whose time ran
 * out. */
static void tick_waiters(qp_peers *p)
{
	qp_waiter **pp = &p->waiters, *w;
	uint64_t now = uv_now(p->loop), pending = (uint64_t)-1;
	qp_peer_stat *st = p->joined ? qp__peer_stat(p, p->hub_pk) : NULL;
	char msg[600];

	while ((w = *pp) != NULL) {
		if (pending == (uint64_t)-1)
			pending = qp__peer_pending_up(p);
		/* Done when the hub acknowledged every local delta and a full
		 * exchange (both sides said DONE) finished after the request,
		 * so what the hub holds for us has arrived too. */
		if (pending == 0 && p->up_complete_ms >= w->since_ms) {
			*pp = w->next;
			waiter_done(w, json_pack("{s:b, s:I}", "ok", 1, "pending", (json_int_t)0));
			continue;
		}
		if (now >= w->deadline_ms) {
			*pp = w->next;
			/* Nothing to send, but what the hub holds for us did
			 * not arrive: say that, not "0 deltas". */
			if (pending == 0)
				snprintf(msg, sizeof(msg),
					 "sync: no full exchange with the hub before the timeout (nothing local is waiting)%s%s",
					 st && st->last_error[0] ? "; last error: " : "",
					 st && st->last_error[0] ? st->last_error : "");
			else
				snprintf(msg, sizeof(msg),
					 "sync: %llu delta%s not acknowledged by the hub after the timeout%s%s",
					 (unsigned long long)pending, pending == 1 ? "" : "s",
					 st && st->last_error[0] ? "; last error: " : "",
					 st && st->last_error[0] ? st->last_error : "");
			waiter_done(w, json_pack("{s:b, s:s, s:s, s:I}", "ok", 0, "error", msg,
						 "code", qp_err_name(QP_ETIMEDOUT),
						 "pending", (json_int_t)pending));
			continue;
		}
		pp = &w->next;
	}
}

static void on_tick(uv_timer_t *t)
{
	qp_peers *p = t->data;
	uint64_t now = uv_now(p->loop);
	qp_session *s, *next;

	for (s = p->sessions; s != NULL; s = s->next)
		ack_flush(s);
	tick_waiters(p);
	if (p->joined && p->up == NULL) {
		qp_peer_stat *st = qp__peer_stat(p, p->hub_pk);
		/* Retry after backoff, pull periodically, and go at once for a
		 * waiting `sync --wait` unless the hub is failing. */
		if (now >= st->next_attempt_ms ||
		    (p->waiters != NULL && p->backoff_ms == 0))
			qp__peer_dial_now(p);
	}
	/* An upstream session with nothing left either way is closed after a
	 * while; the next local write or the periodic pull reopens it. */
	for (s = p->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->outbound && s->established && s->done_sent && s->peer_done &&
		    s->inflight == 0 && p->waiters == NULL &&
		    now - s->last_activity_ms > QP_PEER_IDLE_CLOSE_MS)
			qp_link_close(s->link, "sync complete");
	}
}

static void on_push(uv_timer_t *t)
{
	qp_peers *p = t->data;
	qp_session *s;

	p->push_armed = 0;
	for (s = p->sessions; s != NULL; s = s->next)
		session_pump(s);
	if (p->joined && p->up == NULL && qp__peer_pending_up(p) > 0) {
		qp_peer_stat *st = qp__peer_stat(p, p->hub_pk);
		/* Within backoff, wait for the next attempt; else go now. */
		if (p->backoff_ms == 0 || uv_now(p->loop) >= st->next_attempt_ms)
			qp__peer_dial_now(p);
	}
}

void qp_peers_kick(qp_peers *p)
{
	if (p == NULL || p->stopping || p->push_armed)
		return;
	p->push_armed = 1;
	uv_timer_start(&p->push, on_push, QP_PEER_PUSH_MS, 0);
}

/* ---- start and stop ---------------------------------------------- */

static int start_listener(qp_peers *p, const char *addr)
{
	char host[256];
	uint16_t port;
	struct sockaddr_storage ss;
	int rc;

	if (qp_token_addr_split(addr, host, sizeof(host), &port) != 0)
		return QP_EINVAL;
	/* The split removed the brackets of an IPv6 literal ("[::]:7420"):
	 * a colon left in host says IPv6. */
	if (strchr(host, ':') != NULL) {
		rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
	} else {
		rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
	}
	if (rc != 0)
		return rc;
	uv_tcp_init(p->loop, &p->listener);
	p->listener.data = p;
	p->handles++;
	p->listening = 1;
	if ((rc = uv_tcp_bind(&p->listener, (struct sockaddr *)&ss, 0)) != 0 ||
	    (rc = uv_listen((uv_stream_t *)&p->listener, 128, on_connection)) != 0)
		return rc;
	snprintf(p->listen_addr, sizeof(p->listen_addr), "%s", addr);
	qp_log_info(p->lg, "listening for sync on %s", addr);
	return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
	qp__peers_release(h->data);
}

/* Drop one reference (a handle or a session); the last frees the engine,
 * so a session closing after qp_peers_stop still finds it. */
void qp__peers_release(qp_peers *p)
{
	if (--p->handles > 0)
		return;
	while (p->stats != NULL) {
		qp_peer_stat *n = p->stats->next;
		free(p->stats);
		p->stats = n;
	}
	free(p->cert);
	free(p);
}

int qp_peers_start(uv_loop_t *loop, qp_node *node, qp_store *store,
		   const qp_log *lg, qp_peers **out)
{
	qp_peers *p = qp_xcalloc(1, sizeof(*p));
	const char *listen = json_string_value(json_object_get(node->cfg, "listen"));
	void *tok = NULL;
	size_t toklen;
	int rc;

	p->loop = loop;
	p->node = node;
	p->store = store;
	p->lg = lg;
	p->is_hub = strcmp(qp_node_role(node), "hub") == 0;
	uv_timer_init(loop, &p->tick);
	uv_timer_init(loop, &p->push);
	p->tick.data = p->push.data = p;
	p->handles = 2;
	if (p->is_hub) {
		memcpy(p->root, node->pk, QP_KEY_LEN);
		p->have_root = 1;
		qp_store_set_root(store, node->pk);
	}
	/* A node that joined a hub: the token is kept in the store. */
	if (qp_store_kv_get(store, "join", &tok, &toklen) == 0) {
		char *text = qp_xmalloc(toklen + 1), *addr = NULL;
		uint8_t hub[QP_KEY_LEN], *cert = NULL;
		size_t certlen;
		memcpy(text, tok, toklen);
		text[toklen] = '\0';
		if (qp_token_decode(text, &addr, hub, &cert, &certlen) == 0)
			qp__peer_set_join(p, hub, addr, cert, certlen);
		else
			qp_log_error(lg, "stored join token is unreadable; join again");
		free(addr);
		free(cert);
		free(text);
		free(tok);
	}
	if (listen != NULL && (rc = start_listener(p, listen)) != 0) {
		qp_log_error(lg, "cannot listen for sync on %s: %s", listen,
			     rc > -1000 ? uv_strerror(rc) : qp_strerror(rc));
		p->stopping = 1;
		if (p->listening)
			uv_close((uv_handle_t *)&p->listener, on_handle_closed);
		uv_close((uv_handle_t *)&p->tick, on_handle_closed);
		uv_close((uv_handle_t *)&p->push, on_handle_closed);
		return rc;
	}
	uv_timer_start(&p->tick, on_tick, 250, 250);
	if (qp_store_is_copy(store)) {
		/* A node that joined a hub asks it for its heads; a top hub's
		 * own deltas are with the devices, which bring them back as
		 * they sync, and its operator says when that is done; a node
		 * with neither has nobody to ask. */
		if (p->joined)
			qp_log_warn(lg, "this data directory is a copy (restored "
				    "from a backup, or moved): local writes wait "
				    "until a sync with the hub brings back what it "
				    "holds of this node's own log");
		else if (p->is_hub)
			qp_log_warn(lg, "this hub's data directory is a copy "
				    "(restored from a backup, or moved): local "
				    "writes wait until the devices have synced "
				    "back what this hub wrote after the backup "
				    "and you run `quipu settle`");
		else
			qp_store_copy_settle(store);
	}
	if (p->joined)
		qp__peer_dial_now(p);
	*out = p;
	return 0;
}

/* Local writes held on a restored copy (see peer.h). */
int qp_peers_holds_writes(const qp_peers *p)
{
	return p != NULL && qp_store_is_copy(p->store) &&
	       (p->joined || p->is_hub);
}

/* Joined a hub (see peer.h). */
int qp_peers_joined(const qp_peers *p)
{
	return p != NULL && p->joined;
}

void qp_peers_stop(qp_peers *p)
{
	qp_session *s, *next;
	qp_waiter *w;

	if (p == NULL || p->stopping)
		return;
	p->stopping = 1;
	qp__peer_bundle_stop(p);
	while ((w = p->waiters) != NULL) {
		p->waiters = w->next;
		waiter_done(w, NULL);
	}
	for (s = p->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->link != NULL)
			qp_link_close(s->link, "quipud stopping");
	}
	uv_timer_stop(&p->tick);
	uv_timer_stop(&p->push);
	uv_close((uv_handle_t *)&p->tick, on_handle_closed);
	uv_close((uv_handle_t *)&p->push, on_handle_closed);
	if (p->listening)
		uv_close((uv_handle_t *)&p->listener, on_handle_closed);
}

/* ---- waiters (used by peer_api.c) --------------------------------- */

void qp__peer_wait(qp_peers *p, qp_deferred *d, uint64_t timeout_ms)
{
	qp_waiter *w = qp_xcalloc(1, sizeof(*w));
	w->d = d;
	w->deadline_ms = uv_now(p->loop) + timeout_ms;
	w->since_ms = uv_now(p->loop);
	w->next = p->waiters;
	p->waiters = w;
	qp__peer_stat(p, p->hub_pk)->next_attempt_ms = 0;
	p->backoff_ms = 0;
	if (p->up != NULL && p->up->established && p->up->got_vector) {
		/* Start a new round on the open session: vectors again, then
		 * DONE from both sides once each has what the other holds. */
		p->up->peer_done = 0;
		p->up->done_sent = 0;
		if (send_vector(p->up) == 0)
			session_pump(p->up);
	} else {
		qp__peer_dial_now(p);
	}
}
