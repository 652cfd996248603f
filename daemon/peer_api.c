/* peer_api.c - the API operations of sync (enroll, join, revoke, peers,
 * sync, conflicts, quarantine); see peer.h. */
#include "peer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hlc.h"
#include "store_sync.h"
#include "util.h"
#include "wire.h"

json_t *qp__peer_fail(int code, const char *fmt, const char *arg)
{
	char msg[QP_PATH_MAX + 256];
	snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg, "code",
			 qp_err_name(code));
}

static json_t *ok(void)
{
	return json_pack("{s:b}", "ok", 1);
}

static int parse_key(const json_t *v, uint8_t key[QP_KEY_LEN])
{
	const char *s = json_string_value(v);
	return s != NULL && qp_unhex(s, key, QP_KEY_LEN) == 0 ? 0 : QP_EINVAL;
}

static json_t *cert_json(const qp_cert *c)
{
	char key[2 * QP_KEY_LEN + 1], org[QP_UUID_STRLEN + 1];
	json_t *orgs = json_array();
	for (size_t i = 0; i < c->norgs; i++) {
		qp_uuid_format(c->orgs[i], org);
		json_array_append_new(orgs, json_string(org));
	}
	qp_hex(c->device, QP_KEY_LEN, key);
	return json_pack("{s:s, s:s, s:s, s:o, s:I, s:I}", "device", key, "role",
			 qp_cert_role_name(c->role), "name", c->name, "orgs", orgs,
			 "expires", (json_int_t)c->expires_at, "serial",
			 (json_int_t)c->serial);
}

/* Is the host of addr 0.0.0.0 or :: (listen on every interface, which
 * no device can dial)? */
static int addr_unspecified(const char *addr)
{
	char host[300];
	uint8_t ip[16] = {0}, zero[16] = {0};

	if (qp_token_addr_split(addr, host, sizeof(host), NULL) != 0)
		return 0;
	if (uv_inet_pton(AF_INET, host, ip) != 0 &&
	    uv_inet_pton(AF_INET6, host, ip) != 0)
		return 0;
	return memcmp(ip, zero, sizeof(ip)) == 0;
}

/* The address in the token: --address, else the listen address when a
 * device can dial it.  NULL with *fail set when neither will do. */
static const char *enroll_addr(qp_peers *p, const char *addr, json_t **fail)
{
	char msg[400];

	*fail = NULL;
	if (addr == NULL && p->listen_addr[0] != '\0' &&
	    addr_unspecified(p->listen_addr)) {
		*fail = qp__peer_fail(QP_EINVAL, "%s",
				      qp_fmt(msg, sizeof(msg), "enroll: this hub listens on %s; give --address HOST:PORT that devices can dial",
					     p->listen_addr));
		return NULL;
	}
	if (addr == NULL)
		addr = p->listen_addr[0] ? p->listen_addr : NULL;
	if (addr == NULL || qp_token_addr_split(addr, NULL, 0, NULL) != 0 ||
	    addr_unspecified(addr)) {
		*fail = qp__peer_fail(QP_EINVAL, "enroll: give --address HOST:PORT that devices can dial (got '%.60s')", addr);
		return NULL;
	}
	return addr;
}

/* A certificate's org must be an org record this hub holds, not voided:
 * a mistyped id, or a producer's, would grant nothing anyone can see. */
static json_t *enroll_org_check(qp_peers *p, const uint8_t org[QP_UUID_LEN])
{
	char id[QP_UUID_STRLEN + 1], kind[QP_STORE_KIND_LEN], msg[200];
	int rc, voided = 0;

	qp_uuid_format(org, id);
	rc = qp_store_kind(p->store, id, kind, &voided);
	if (rc == QP_ENOTFOUND)
		return qp__peer_fail(QP_ENOTFOUND, "enroll: org %s is not an organisation this hub holds", id);
	if (rc != 0)
		return qp__peer_fail(rc, "enroll: %s", qp_strerror(rc));
	if (strcmp(kind, "org") != 0)
		return qp__peer_fail(QP_EINVAL, "%s",
				     qp_fmt(msg, sizeof(msg), "enroll: %s is a %s record, not an org",
					    id, kind));
	if (voided)
		return qp__peer_fail(QP_EINVAL, "enroll: org %s is voided on this hub", id);
	return NULL;
}

static json_t *do_enroll(qp_peers *p, const json_t *m)
{
	const json_t *orgs = json_object_get(m, "orgs"), *v;
	const char *name = json_string_value(json_object_get(m, "name"));
	const char *role = json_string_value(json_object_get(m, "role"));
	const char *addr = json_string_value(json_object_get(m, "address"));
	json_int_t expires = json_integer_value(json_object_get(m, "expires"));
	uint8_t *cert = NULL;
	size_t certlen, i;
	char *token = NULL, key[2 * QP_KEY_LEN + 1];
	qp_cert c;
	json_t *rep;
	int rc;

	if (!p->is_hub)
		return qp__peer_fail(QP_EINVAL, "enroll: only a hub enrols devices (this node is a field node)", NULL);
	memset(&c, 0, sizeof(c));
	if (parse_key(json_object_get(m, "pubkey"), c.device) != 0)
		return qp__peer_fail(QP_EINVAL, "enroll: pubkey must be 64 hex digits (quipu id on the device)", NULL);
	qp_hex(c.device, QP_KEY_LEN, key);
	if (memcmp(c.device, p->node->pk, QP_KEY_LEN) == 0)
		return qp__peer_fail(QP_EINVAL, "enroll: %s is this hub's own key", key);
	if (p->joined && memcmp(c.device, p->hub_pk, QP_KEY_LEN) == 0)
		return qp__peer_fail(QP_EINVAL, "enroll: %s is the key of the hub this hub joined", key);
	if (name == NULL || *name == '\0' || strlen(name) > QP_CERT_NAME_MAX)
		return qp__peer_fail(QP_EINVAL, "enroll: name must be 1 to 64 bytes", NULL);
	if (!json_is_array(orgs) || json_array_size(orgs) == 0 ||
	    json_array_size(orgs) > QP_CERT_ORGS_MAX)
		return qp__peer_fail(QP_EINVAL, "enroll: at least one org (and at most 256)", NULL);
	json_array_foreach(orgs, i, v) {
		const char *o = json_string_value(v);
		if (o == NULL || qp_uuid_parse(o, c.orgs[i]) != 0)
			return qp__peer_fail(QP_EINVAL, "enroll: org '%.40s' is not an id", o);
	}
	c.norgs = json_array_size(orgs);
	for (i = 0; i < c.norgs; i++)
		if ((rep = enroll_org_check(p, c.orgs[i])) != NULL)
			return rep;
	if (role == NULL || strcmp(role, "technician") == 0)
		c.role = QP_ROLE_TECHNICIAN;
	else if (strcmp(role, "relay") == 0)
		c.role = QP_ROLE_RELAY;
	else if (strcmp(role, "hub") == 0)
		c.role = QP_ROLE_HUB;
	else
		return qp__peer_fail(QP_EINVAL, "enroll: role must be technician, relay or hub, not '%.20s'", role);
	c.version = QP_CERT_VERSION;
	memcpy(c.issuer, p->node->pk, QP_KEY_LEN);
	c.issued_at = qp__now_s();
	c.serial = qp_hlc_wall_ms();
	c.expires_at = expires > 0 ? (uint64_t)expires : 0;
	if (c.expires_at != 0 && c.expires_at <= c.issued_at)
		return qp__peer_fail(QP_EINVAL, "enroll: the expiry date is in the past", NULL);
	snprintf(c.name, sizeof(c.name), "%s", name);
	if ((addr = enroll_addr(p, addr, &rep)) == NULL)
		return rep;
	if ((rc = qp_cert_build(&c, p->node->sk, &cert, &certlen)) != 0)
		return qp__peer_fail(rc, "enroll: cannot sign the certificate", NULL);
	if ((rc = qp_store_cert_put(p->store, cert, certlen)) != 0 ||
	    (rc = qp_token_encode(addr, p->node->pk, cert, certlen, &token)) != 0) {
		free(cert);
		return qp__peer_fail(rc, "enroll: %s", qp_strerror(rc));
	}
	free(cert);
	rep = ok();
	json_object_set_new(rep, "token", json_string(token));
	json_object_set_new(rep, "cert", cert_json(&c));
	free(token);
	return rep;
}

static json_t *do_join(qp_peers *p, const json_t *m)
{
	const char *tok = json_string_value(json_object_get(m, "token"));
	char *addr = NULL, hub[2 * QP_KEY_LEN + 1];
	uint8_t hub_pk[QP_KEY_LEN], *cert = NULL;
	size_t certlen;
	qp_cert c;
	json_t *rep;
	int rc;

	if (tok == NULL || qp_token_decode(tok, &addr, hub_pk, &cert, &certlen) != 0)
		return qp__peer_fail(QP_EPROTO, "join: not a valid join token", NULL);
	if (qp_cert_parse(cert, certlen, &c) != 0 ||
	    memcmp(c.device, p->node->pk, QP_KEY_LEN) != 0) {
		free(cert);
		free(addr);
		return qp__peer_fail(QP_EAUTH, "join: this token was made for another device's key (run quipu id here and enrol that key)", NULL);
	}
	if (c.expires_at != 0 && c.expires_at <= qp__now_s()) {
		free(cert);
		free(addr);
		return qp__peer_fail(QP_EEXPIRED, "join: the certificate in this token has expired", NULL);
	}
	if ((rc = qp_store_kv_put(p->store, "join", tok, strlen(tok))) != 0) {
		free(cert);
		free(addr);
		return qp__peer_fail(rc, "join: cannot store the token: %s", qp_strerror(rc));
	}
	qp__peer_set_join(p, hub_pk, addr, cert, certlen);
	qp_store_cert_put(p->store, cert, certlen);
	free(cert);
	qp__peer_dial_now(p);
	qp_hex(hub_pk, QP_KEY_LEN, hub);
	rep = ok();
	json_object_set_new(rep, "hub", json_pack("{s:s, s:s}", "key", hub, "address", addr));
	json_object_set_new(rep, "cert", cert_json(&c));
	free(addr);
	return rep;
}

static int feed_of(void *ctx, const qp_feed *f, uint64_t seq)
{
	(void)seq;
	return memcmp(f->author, ctx, QP_KEY_LEN) == 0;
}

/* Does this hub know key: a certificate of it (enrolled here, or by a hub
 * below or above), or deltas it signed?  1 yes, 0 no, or an error. */
static int revoke_known(qp_peers *p, const uint8_t key[QP_KEY_LEN])
{
	uint8_t *cert = NULL;
	size_t len;
	int rc = qp_store_cert_get(p->store, key, &cert, &len);

	free(cert);
	if (rc == 0)
		return 1;
	if (rc != QP_ENOTFOUND)
		return rc;
	rc = qp_store_heads(p->store, feed_of, (void *)key);
	return rc == 1 ? 1 : rc;
}

static json_t *do_revoke(qp_peers *p, const json_t *m)
{
	qp_revocation r;
	uint8_t *rev = NULL;
	size_t revlen;
	json_t *after = json_object_get(m, "after_seq"), *rep;
	char key[2 * QP_KEY_LEN + 1];
	int rc;

	if (!p->is_hub)
		return qp__peer_fail(QP_EINVAL, "revoke: only a hub revokes keys", NULL);
	memset(&r, 0, sizeof(r));
	if (parse_key(json_object_get(m, "key"), r.key) != 0)
		return qp__peer_fail(QP_EINVAL, "revoke: key must be 64 hex digits", NULL);
	qp_hex(r.key, QP_KEY_LEN, key);
	if (memcmp(r.key, p->node->pk, QP_KEY_LEN) == 0)
		return qp__peer_fail(QP_EINVAL, "revoke: %s is this hub's own key", key);
	if ((rc = revoke_known(p, r.key)) < 0)
		return qp__peer_fail(rc, "revoke: %s", qp_strerror(rc));
	if (rc == 0)
		return qp__peer_fail(QP_ENOTFOUND, "revoke: no device with key %s is enrolled here", key);
	r.version = 1;
	memcpy(r.issuer, p->node->pk, QP_KEY_LEN);
	r.at = qp__now_s();
	if (json_is_integer(after) && json_integer_value(after) >= 0) {
		r.after_seq = (uint64_t)json_integer_value(after);
	} else {
		/* Default: everything held so far stays valid evidence. */
		uint64_t max = 0;
		uint8_t *cert = NULL;
		size_t clen;
		qp_cert c;
		if (qp_store_cert_get(p->store, r.key, &cert, &clen) == 0 &&
		    qp_cert_parse(cert, clen, &c) == 0) {
			for (size_t i = 0; i < c.norgs; i++) {
				qp_feed f;
				uint64_t h = 0;
				memcpy(f.author, r.key, QP_KEY_LEN);
				memcpy(f.org, c.orgs[i], QP_UUID_LEN);
				qp_store_head(p->store, &f, &h);
				if (h > max)
					max = h;
			}
		}
		free(cert);
		r.after_seq = max;
	}
	if ((rc = qp_revocation_build(&r, p->node->sk, &rev, &revlen)) != 0)
		return qp__peer_fail(rc, "revoke: cannot sign", NULL);
	rc = qp_store_revocation_put(p->store, rev, revlen);
	free(rev);
	if (rc != 0)
		return qp__peer_fail(rc, "revoke: %s", qp_strerror(rc));
	/* Close a live session of that key at once. */
	for (qp_session *s = p->sessions; s != NULL; s = s->next)
		if (s->established && memcmp(s->peer, r.key, QP_KEY_LEN) == 0)
			qp_link_close(s->link, "key revoked");
	qp_peers_kick(p);
	rep = ok();
	json_object_set_new(rep, "revocation", json_pack("{s:s, s:I}", "key", key,
							  "after_seq", (json_int_t)r.after_seq));
	return rep;
}

static void iso(uint64_t ms, char out[32])
{
	if (ms == 0)
		snprintf(out, 32, "never");
	else
		qp_hlc_iso(QP_HLC_MAKE(ms, 0), out, 32);
}

static json_t *stat_json(qp_peers *p, const qp_peer_stat *st)
{
	char key[2 * QP_KEY_LEN + 1], a[32], b[32], c[32];
	uint64_t pending = 0, bin = st->bytes_in, bout = st->bytes_out;
	json_t *o;

	qp_hex(st->key, QP_KEY_LEN, key);
	if (p->joined && memcmp(st->key, p->hub_pk, QP_KEY_LEN) == 0)
		pending = qp__peer_pending_up(p);
	iso(st->last_ack_ms, a);
	iso(st->last_success_ms, b);
	iso(st->last_contact_ms, c);
	o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "key", key,
		      "name", st->name, "address", st->addr, "state", st->state,
		      "pending", (json_int_t)pending, "last_ack", a, "last_success",
		      b, "last_contact", c, "last_error", st->last_error);
	json_object_set_new(o, "clock_ahead_s",
			    json_integer((json_int_t)(st->clock_ahead_ms / 1000)));
	if (strcmp(st->state, "backoff") == 0 && st->next_attempt_ms > uv_now(p->loop))
		json_object_set_new(o, "next_attempt_s",
				    json_integer((json_int_t)((st->next_attempt_ms - uv_now(p->loop)) / 1000)));
	{
		/* Bytes of a live session count too, not only closed ones. */
		for (qp_session *s = p->sessions; s != NULL; s = s->next)
			if (s->st == st && s->link != NULL) {
				const qp_link_stats *ls = qp_link_stats_get(s->link);
				bin += ls->bytes_in;
				bout += ls->bytes_out;
			}
	}
	json_object_set_new(o, "counters",
			    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				      "deltas_sent", (json_int_t)st->deltas_sent,
				      "deltas_received", (json_int_t)st->deltas_received,
				      "deltas_refused", (json_int_t)st->deltas_refused,
				      "deltas_resent_after_ack", (json_int_t)st->resent_after_ack,
				      "bytes_in", (json_int_t)bin,
				      "bytes_out", (json_int_t)bout,
				      "sessions", (json_int_t)st->sessions));
	return o;
}

/* The operator of a restored top hub says its devices have synced back
 * what it wrote after the backup: local writes open again.  A node that
 * joined a hub settles by itself when a sync with the hub completes. */
static json_t *do_settle(qp_peers *p)
{
	json_t *rep;
	int was, rc;

	if (p->joined)
		return qp__peer_fail(QP_EINVAL, "settle: this node settles by itself when `quipu sync --wait` reaches its hub", NULL);
	was = qp_store_is_copy(p->store);
	if (was && (rc = qp_store_copy_settle(p->store)) != 0)
		return qp__peer_fail(rc, "settle: %s", qp_strerror(rc));
	if (was)
		qp_log_info(p->lg, "restored copy settled by the operator; "
			    "local writes open again");
	rep = ok();
	json_object_set_new(rep, "was_copy", json_boolean(was));
	return rep;
}

json_t *qp_peers_imports(const qp_peers *p)
{
	return p != NULL ? qp__peer_bundle_imports(p) : json_array();
}

json_t *qp_peers_status(qp_peers *p)
{
	json_t *a = json_array();
	if (p == NULL)
		return a;
	if (p->joined)
		qp__peer_stat(p, p->hub_pk);
	for (qp_peer_stat *st = p->stats; st != NULL; st = st->next)
		json_array_append_new(a, stat_json(p, st));
	return a;
}

typedef struct ackedctx {
	qp_peers *p;
	const qp_cert *c;
	uint64_t acked;
} ackedctx;

static int acked_feed(void *ctx, const qp_feed *f, uint64_t head)
{
	ackedctx *a = ctx;
	uint64_t seq = 0;
	if (!qp_cert_allows_org(a->c, f->org))
		return 0;
	qp_store_ack_get(a->p->store, a->c->device, f, &seq);
	a->acked += seq < head ? seq : head;
	return 0;
}

/* Enrolled devices (certificates held) with what we know of each. */
typedef struct peers_ctx {
	qp_peers *p;
	json_t *list;
} peers_ctx;

static int peer_row(void *ctx, const uint8_t *cert, size_t len)
{
	peers_ctx *pc = ctx;
	qp_cert c;
	json_t *row;
	uint64_t lag = 0;
	qp_peer_stat *st;

	if (qp_cert_parse(cert, len, &c) != 0)
		return 0;
	row = cert_json(&c);
	qp_store_pending(pc->p->store, c.device, (const uint8_t (*)[QP_UUID_LEN])c.orgs,
			 c.norgs, &lag);
	json_object_set(row, "key", json_object_get(row, "device"));
	json_object_set_new(row, "lag", json_integer((json_int_t)lag));
	{
		ackedctx a = {pc->p, &c, 0};
		qp_store_heads(pc->p->store, acked_feed, &a);
		json_object_set_new(row, "acked", json_integer((json_int_t)a.acked));
	}
	/* pending: deltas in its scope it has not acknowledged (= lag). */
	json_object_set_new(row, "pending", json_integer((json_int_t)lag));
	{
		uint64_t after = 0;
		int rv = qp__peer_revoked(pc->p, c.device, &after);
		json_object_set_new(row, "revoked", json_boolean(rv));
		if (rv)
			json_object_set_new(row, "revoked_after_seq", json_integer((json_int_t)after));
	}
	for (st = pc->p->stats; st != NULL; st = st->next)
		if (memcmp(st->key, c.device, QP_KEY_LEN) == 0) {
			json_t *s = stat_json(pc->p, st);
			json_object_set(row, "last_contact", json_object_get(s, "last_contact"));
			json_object_set(row, "state", json_object_get(s, "state"));
			json_object_set(row, "last_error", json_object_get(s, "last_error"));
			json_object_set(row, "clock_ahead_s", json_object_get(s, "clock_ahead_s"));
			json_object_set(row, "address", json_object_get(s, "address"));
			json_object_set(row, "counters", json_object_get(s, "counters"));
			json_decref(s);
		}
	if (json_object_get(row, "last_contact") == NULL) {
		/* Not seen since quipud started: what was noted before. */
		json_t *note = NULL;
		const char *lc = NULL;
		if (qp_store_peer_get(pc->p->store, c.device, &note) == 0)
			lc = json_string_value(json_object_get(note, "last_contact"));
		json_object_set_new(row, "last_contact", json_string(lc ? lc : "never"));
		json_decref(note);
	}
	json_array_append_new(pc->list, row);
	return 0;
}

static json_t *do_peers(qp_peers *p)
{
	peers_ctx pc = {p, json_array()};
	json_t *rep;

	/* A tablet holds its colleagues' certificates too, but enrols
	 * nobody: rows of lag and pending would mean nothing there. */
	if (!p->is_hub) {
		json_decref(pc.list);
		return qp__peer_fail(QP_EINVAL, "peers: only a hub lists the devices it enrolled; on this node, quipu status shows the link to its hub", NULL);
	}
	qp_store_certs(p->store, peer_row, &pc);
	rep = ok();
	json_object_set_new(rep, "peers", pc.list);
	return rep;
}

json_t *qp_peers_api(qp_peers *p, const char *op, const json_t *m,
		     qp_deferred *d, int *handled)
{
	json_t *rep, *list = NULL;
	json_int_t limit = json_integer_value(json_object_get(m, "limit"));
	int rc;

	*handled = 1;
	if (strcmp(op, "enroll") == 0)
		return do_enroll(p, m);
	if (strcmp(op, "join") == 0)
		return do_join(p, m);
	if (strcmp(op, "revoke") == 0)
		return do_revoke(p, m);
	if (strcmp(op, "peers") == 0)
		return do_peers(p);
	if (strcmp(op, "settle") == 0)
		return do_settle(p);
	if (strcmp(op, "bundle_export") == 0)
		return qp__peer_bundle_export(p, m);
	if (strcmp(op, "bundle_import") == 0)
		return qp__peer_bundle_import(p, m, d);
	if (strcmp(op, "conflicts") == 0 || strcmp(op, "quarantine") == 0 ||
	    strcmp(op, "forks") == 0) {
		size_t lim = limit > 0 ? (size_t)limit : 0;
		rc = op[0] == 'c' ? qp_store_conflicts(p->store, lim, &list)
		     : op[0] == 'q' ? qp_store_quarantine(p->store, lim, &list)
				    : qp_store_forks(p->store, lim, &list);
		if (rc != 0)
			return qp__peer_fail(rc, "%s", qp_strerror(rc));
		rep = ok();
		json_object_set_new(rep, op, list);
		return rep;
	}
	if (strcmp(op, "sync") == 0) {
		json_int_t t = json_integer_value(json_object_get(m, "timeout_ms"));
		if (!p->joined)
			return qp__peer_fail(QP_EINVAL, "sync: this node has not joined a hub (quipu join TOKEN)", NULL);
		if (json_is_true(json_object_get(m, "wait"))) {
			qp__peer_wait(p, d, t > 0 ? (uint64_t)t : 60000);
			return NULL;
		}
		p->backoff_ms = 0;
		qp__peer_stat(p, p->hub_pk)->next_attempt_ms = 0;
		qp__peer_dial_now(p);
		rep = ok();
		json_object_set_new(rep, "pending", json_integer((json_int_t)qp__peer_pending_up(p)));
		return rep;
	}
	*handled = 0;
	return NULL;
}
