/* server.c - the local API on a Unix socket with group commit; see server.h. */
#include "server.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"
#include "frame.h"
#include "hlc.h"
#include "mpjson.h"
#include "util.h"
#include "wire.h"

/* Stop reading from a client whose unsent replies exceed this. */
#define QP_CLIENT_OUT_HIGH (8u << 20)
#define QP_READ_CHUNK 65536
/* Group commit gathering: a commit waits, polling without blocking, while
 * fewer writes are pending than the recent batches held, until no request
 * has arrived for QP_GATHER_IDLE_NS or the first pending write has waited
 * QP_GATHER_MAX_NS.  An fsync costs far more than the wait, so a batch
 * that is not split in two is worth it. */
#define QP_GATHER_IDLE_NS 40000u
#define QP_GATHER_MAX_NS 400000u

typedef struct qp_client qp_client;

typedef struct qp_req {
	struct qp_req *next;  /* client's FIFO, in arrival order */
	struct qp_req *wnext; /* server's list of writes awaiting commit */
	qp_client *client;    /* NULL once the client has gone */
	json_int_t rid;
	json_t *msg;   /* the request (owned) */
	json_t *reply; /* NULL until answered (owned) */
	int is_write;
	int deferred;      /* answered later by the sync engine */
	qp_deferred def;   /* its completion (peer.h) */
	qp_write *writes;
	size_t nwrites;
} qp_req;

struct qp_client {
	uv_pipe_t pipe;
	qp_server *srv;
	qp_framer fr;
	qp_req *head, *tail;
	size_t waiting_writes; /* writes of this client not yet committed */
	size_t out_bytes;      /* reply bytes handed to libuv, not yet sent */
	int reading;
	int closing;
	int close_after_flush; /* protocol error: close once replies are out */
	qp_client *prev, *next;
};

struct qp_server {
	uv_loop_t *loop;
	qp_node *node;
	qp_store *store;
	const qp_log *lg;
	uv_pipe_t listener;
	uv_check_t check;
	uv_idle_t idle; /* active while gathering: the loop polls, not waits */
	int idling;
	size_t npending;     /* write requests awaiting commit */
	size_t want;         /* recent batch size (decaying maximum) */
	uint64_t first_ns;   /* when the oldest pending write arrived */
	uint64_t last_ns;    /* when the newest one arrived */
	uint8_t rbuf[QP_READ_CHUNK]; /* reads are consumed at once */
	qp_client *clients;
	qp_peers *peers; /* sync engine, or NULL */
	qp_autobackup *backup; /* backup schedule, or NULL */
	qp_req *wfirst, *wlast;
	int stopping;
	int handles; /* open handles of the server itself */
	uint64_t started_ms;
	uint64_t write_batches, write_reqs, records_written, requests, nclients;
	uint64_t max_batch;
	uint64_t write_ns; /* time in qp_store_write: checks, signing, commit */
};

typedef struct qp_out {
	uv_write_t wr;
	qp_client *client;
	size_t len;
	uint8_t data[];
} qp_out;

static void client_close(qp_client *c);
static void client_flush(qp_client *c);
static void server_release(qp_server *srv);
static void on_server_handle_closed(uv_handle_t *h);

/* ---- replies ------------------------------------------------------ */

static json_t *reply_ok(json_int_t rid)
{
	return json_pack("{s:I, s:b}", "rid", rid, "ok", 1);
}

static json_t *reply_err(json_int_t rid, int code, const char *msg)
{
	return json_pack("{s:I, s:b, s:s, s:s}", "rid", rid, "ok", 0, "error",
			 msg, "code", qp_err_name(code));
}

static void req_free(qp_req *r)
{
	if (r == NULL)
		return;
	json_decref(r->msg);
	json_decref(r->reply);
	free(r->writes);
	free(r);
}

/* ---- reads ---------------------------------------------------------- */

static json_t *do_get(qp_server *srv, qp_req *r)
{
	const char *id = json_string_value(json_object_get(r->msg, "id"));
	json_t *rec = NULL, *meta = NULL, *rep;
	char msg[QP_ERRMSG_LEN];
	int rc;

	if (id == NULL)
		return reply_err(r->rid, QP_EINVAL, "get: id required");
	rc = qp_store_get(srv->store, id, &rec, &meta);
	if (rc == QP_ENOTFOUND)
		return reply_err(r->rid, rc,
				 qp_fmt(msg, sizeof(msg), "get: no record with id %.64s", id));
	if (rc != 0)
		return reply_err(r->rid, rc, qp_fmt(msg, sizeof(msg), "get: %s",
						   qp_strerror(rc)));
	rep = reply_ok(r->rid);
	json_object_set_new(rep, "record", rec);
	json_object_set_new(rep, "meta", meta);
	return rep;
}

/* A list's org filter must name an org this node holds: a mistyped id
 * would otherwise list nothing and look like an empty org. */
static int check_org(qp_server *srv, const char *org, char *msg, size_t len)
{
	char kind[QP_STORE_KIND_LEN], ex[64];
	int rc;

	if (!qp_uuid_valid(org))
		return qp_errf(QP_EINVAL, msg, len,
			       "list: org: '%s' is not a record id (UUID)",
			       qp_excerpt(org, strlen(org), ex, sizeof ex));
	rc = qp_store_kind(srv->store, org, kind, NULL);
	if (rc == QP_ENOTFOUND)
		return qp_errf(rc, msg, len, "list: org: no org with id %s on "
			       "this node", org);
	if (rc != 0)
		return qp_errf(rc, msg, len, "list: org: %s", qp_strerror(rc));
	if (strcmp(kind, "org") != 0)
		return qp_errf(QP_EINVAL, msg, len,
			       "list: org: %s is a %s record, not an org", org,
			       kind);
	return 0;
}

static json_t *do_list(qp_server *srv, qp_req *r)
{
	const char *kind = json_string_value(json_object_get(r->msg, "kind"));
	const char *org = json_string_value(json_object_get(r->msg, "org"));
	const char *after = json_string_value(json_object_get(r->msg, "after"));
	json_int_t limit = json_integer_value(json_object_get(r->msg, "limit"));
	int voided = json_is_true(json_object_get(r->msg, "voided"));
	char next[QP_UUID_STRLEN + 1] = "", msg[QP_ERRMSG_LEN];
	json_t *list = NULL, *rep;
	int rc;

	if (kind != NULL && qp_schema_kind(kind) == NULL)
		return reply_err(r->rid, QP_EINVAL,
				 qp_fmt(msg, sizeof(msg), "list: unknown kind '%.32s'", kind));
	/* Checked on the first page; the later ones follow from it. */
	if (org != NULL && after == NULL &&
	    (rc = check_org(srv, org, msg, sizeof msg)) != 0)
		return reply_err(r->rid, rc, msg);
	if (limit <= 0 || limit > QP_API_LIST_MAX)
		limit = QP_API_LIST_MAX;
	rc = qp_store_list(srv->store, kind, org, after, (size_t)limit, voided,
			   &list, next);
	if (rc != 0)
		return reply_err(r->rid, rc, qp_fmt(msg, sizeof(msg), "list: %s",
						   qp_strerror(rc)));
	rep = reply_ok(r->rid);
	json_object_set_new(rep, "records", list);
	json_object_set_new(rep, "next", json_string(next));
	return rep;
}

/* The wall clock against the newest stamp the store holds: a device whose
 * date was reset shows as far behind ("wrong": true). */
static json_t *clock_json(const qp_store *st)
{
	uint64_t wall = qp_hlc_wall_ms(), last = qp_store_last_stamp(st);
	uint64_t behind = qp_hlc_behind_ms(last, wall);
	char now_iso[32], last_iso[32];

	qp_hlc_iso(QP_HLC_MAKE(wall, 0), now_iso, sizeof now_iso);
	qp_hlc_iso(last, last_iso, sizeof last_iso);
	return json_pack("{s:s, s:s, s:I, s:b}", "now", now_iso, "last_stamp",
			 last != 0 ? last_iso : "", "behind_s",
			 (json_int_t)(behind / 1000), "wrong",
			 behind > QP_HLC_BEHIND_WRONG_MS);
}

static json_t *do_status(qp_server *srv, qp_req *r)
{
	json_t *stats = NULL, *rep, *d;
	char key[2 * QP_KEY_LEN + 1];
	uint64_t durable, durable_ns;
	int rc = qp_store_stats(srv->store, &stats);

	if (rc != 0)
		return reply_err(r->rid, rc, "status: cannot read store statistics");
	/* The digest reads every record: only when asked for. */
	if (json_is_true(json_object_get(r->msg, "digest"))) {
		char hex[65];
		if ((rc = qp_store_digest(srv->store, hex)) != 0) {
			json_decref(stats);
			return reply_err(r->rid, rc,
					 "status: cannot compute the digest");
		}
		json_object_set_new(stats, "digest", json_string(hex));
	}
	qp_store_commit_time(srv->store, &durable, &durable_ns);
	qp_hex(srv->node->pk, QP_KEY_LEN, key);
	d = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		      "version", QP_VERSION_STRING, "role", qp_node_role(srv->node),
		      "data", srv->node->dir, "pid", (json_int_t)getpid(),
		      "uptime_s",
		      (json_int_t)((qp_hlc_wall_ms() - srv->started_ms) / 1000),
		      "clients", (json_int_t)srv->nclients, "requests",
		      (json_int_t)srv->requests, "write_batches",
		      (json_int_t)srv->write_batches, "write_requests",
		      (json_int_t)srv->write_reqs, "records_written",
		      (json_int_t)srv->records_written, "max_batch",
		      (json_int_t)srv->max_batch);
	/* Where a write's time goes: the whole store write of each batch
	 * (checks, state, signing, commit) and its durable commit alone. */
	json_object_set_new(d, "write_us", json_integer((json_int_t)(srv->write_ns / 1000)));
	json_object_set_new(d, "restored_copy",
			    json_boolean(qp_peers_holds_writes(srv->peers)));
	/* ...released by `quipu settle` (a top hub), not by a sync. */
	json_object_set_new(d, "restored_settle",
			    json_boolean(qp_peers_holds_writes(srv->peers) &&
					 !qp_peers_joined(srv->peers)));
	json_object_set_new(d, "durable_commits", json_integer((json_int_t)durable));
	json_object_set_new(d, "clock", clock_json(srv->store));
	json_object_set_new(d, "commit_us", json_integer((json_int_t)(durable_ns / 1000)));
	if (srv->backup != NULL)
		json_object_set_new(d, "backup", qp_autobackup_status(srv->backup));
	rep = reply_ok(r->rid);
	json_object_set_new(rep, "key", json_string(key));
	json_object_set_new(rep, "daemon", d);
	json_object_set_new(rep, "store", stats);
	json_object_set_new(rep, "peers", qp_peers_status(srv->peers));
	json_object_set_new(rep, "bundle_imports", qp_peers_imports(srv->peers));
	return rep;
}

static json_t *do_verify(qp_server *srv, qp_req *r)
{
	json_t *report = NULL, *rep;
	char msg[QP_ERRMSG_LEN];
	const char *why;
	int rc = qp_store_verify(srv->store, &report);

	if (rc != 0) {
		why = report ? json_string_value(json_object_get(report, "error")) : NULL;
		qp_log_error(srv->lg, "verify failed: %s", why ? why : qp_strerror(rc));
		rep = reply_err(r->rid, rc,
				qp_fmt(msg, sizeof(msg), "verify: %s",
				       why ? why : qp_strerror(rc)));
		if (report != NULL)
			json_object_set_new(rep, "report", report);
		return rep;
	}
	rep = reply_ok(r->rid);
	json_object_set_new(rep, "report", report);
	return rep;
}

static json_t *do_id(qp_server *srv, qp_req *r)
{
	char key[2 * QP_KEY_LEN + 1];
	json_t *rep = reply_ok(r->rid);
	qp_hex(srv->node->pk, QP_KEY_LEN, key);
	json_object_set_new(rep, "key", json_string(key));
	json_object_set_new(rep, "role", json_string(qp_node_role(srv->node)));
	json_object_set_new(rep, "version", json_string(QP_VERSION_STRING));
	return rep;
}

static json_t *answer_read(qp_server *srv, qp_req *r)
{
	const char *op = json_string_value(json_object_get(r->msg, "op"));
	char msg[QP_ERRMSG_LEN];

	if (strcmp(op, "get") == 0)
		return do_get(srv, r);
	if (strcmp(op, "list") == 0)
		return do_list(srv, r);
	if (strcmp(op, "status") == 0)
		return do_status(srv, r);
	if (strcmp(op, "verify") == 0)
		return do_verify(srv, r);
	if (strcmp(op, "id") == 0)
		return do_id(srv, r);
	if (srv->peers != NULL) {
		int handled = 0;
		json_t *rep = qp_peers_api(srv->peers, op, r->msg, &r->def, &handled);
		if (handled && rep == NULL) {
			r->deferred = 1; /* qp_peers completes it through r->def */
			return NULL;
		}
		if (handled) {
			json_object_set_new(rep, "rid", json_integer(r->rid));
			return rep;
		}
	}
	return reply_err(r->rid, QP_EINVAL,
			 qp_fmt(msg, sizeof(msg), "unknown op '%.32s'", op));
}

/* ---- writes --------------------------------------------------------- */

/* Turn an add/update/void request into store writes.  Returns NULL and
 * sets r->writes, or returns an error reply for a malformed request. */
static json_t *prepare_write(qp_req *r, const char *op)
{
	json_t *m = r->msg, *recs, *v;
	const char *kind, *id, *reason;
	char msg[QP_ERRMSG_LEN];
	size_t i;

	if (strcmp(op, "add") == 0) {
		kind = json_string_value(json_object_get(m, "kind"));
		recs = json_object_get(m, "records");
		if (kind == NULL || qp_schema_kind(kind) == NULL)
			return reply_err(r->rid, QP_EINVAL,
					 qp_fmt(msg, sizeof(msg), "add: unknown kind '%.32s'",
						kind ? kind : ""));
		if (!json_is_array(recs) || json_array_size(recs) == 0)
			return reply_err(r->rid, QP_EINVAL, "add: records must be a non-empty array");
		if (json_array_size(recs) > QP_API_MAX_RECORDS)
			return reply_err(r->rid, QP_ETOOBIG,
					 qp_fmt(msg, sizeof(msg),
						"add: at most %u records per request",
						QP_API_MAX_RECORDS));
		r->nwrites = json_array_size(recs);
		r->writes = qp_xcalloc(r->nwrites, sizeof(qp_write));
		json_array_foreach(recs, i, v) {
			if (!json_is_object(v))
				return reply_err(r->rid, QP_EINVAL,
						 qp_fmt(msg, sizeof(msg),
							"add: record %zu is not an object", i));
			r->writes[i].type = QP_OP_CREATE;
			r->writes[i].kind = kind;
			r->writes[i].rec = v;
		}
		return NULL;
	}
	id = json_string_value(json_object_get(m, "id"));
	if (id == NULL)
		return reply_err(r->rid, QP_EINVAL,
				 qp_fmt(msg, sizeof(msg), "%s: id required", op));
	r->nwrites = 1;
	r->writes = qp_xcalloc(1, sizeof(qp_write));
	r->writes[0].id = id;
	if (strcmp(op, "update") == 0) {
		v = json_object_get(m, "fields");
		if (!json_is_object(v) || json_object_size(v) == 0)
			return reply_err(r->rid, QP_EINVAL,
					 "update: fields must be a non-empty object");
		r->writes[0].type = QP_OP_UPDATE;
		r->writes[0].changes = v;
		return NULL;
	}
	reason = json_string_value(json_object_get(m, "reason"));
	if (reason == NULL || *reason == '\0')
		return reply_err(r->rid, QP_EINVAL, "void: reason required");
	r->writes[0].type = QP_OP_VOID;
	r->writes[0].reason = reason;
	return NULL;
}

/* Answer the reads that were waiting behind this client's writes. */
static void answer_waiting_reads(qp_client *c)
{
	for (qp_req *r = c->head; r != NULL; r = r->next) {
		if (r->reply != NULL)
			continue;
		if (r->is_write || r->deferred)
			break; /* still waiting for a later commit or for sync */
		r->reply = answer_read(c->srv, r);
	}
}

/* The note the store left for write k of g (store.h), or NULL. */
static const char *write_note(const qp_wgroup *g, size_t k)
{
	const json_t *n;
	size_t i;

	json_array_foreach(g->notes, i, n)
		if ((size_t)json_integer_value(json_object_get(n, "index")) == k)
			return json_string_value(json_object_get(n, "note"));
	return NULL;
}

/* Attach "warnings": [{"index": i, "warning": text}] to the reply of an
 * accepted add or update of records with geometry: what the store changed
 * on the way in (a ring's winding) and what the EUDR checks accepted but
 * flagged (qp_store_get derives it from the stored record). */
static void reply_warnings(qp_server *srv, qp_req *r, const qp_wgroup *g)
{
	const char *op = json_string_value(json_object_get(r->msg, "op"));
	const char *kind = json_string_value(json_object_get(r->msg, "kind"));
	json_t *list = NULL, *rec, *meta;
	const char *w, *note;
	char *text;

	if (op == NULL || (strcmp(op, "update") != 0 &&
			   (strcmp(op, "add") != 0 || kind == NULL ||
			    (strcmp(kind, "plot") != 0 &&
			     strcmp(kind, "session") != 0))))
		return;
	for (size_t k = 0; k < g->n; k++) {
		if (qp_store_get(srv->store, g->ids[k], &rec, &meta) != 0)
			continue;
		w = json_string_value(json_object_get(meta, "warnings"));
		note = write_note(g, k);
		if (w != NULL || note != NULL) {
			if (asprintf(&text, "%s%s%s", note ? note : "",
				     note && w ? "; " : "", w ? w : "") < 0)
				abort();
			if (list == NULL)
				list = json_array();
			json_array_append_new(list,
					      json_pack("{s:I, s:s}", "index",
							(json_int_t)k,
							"warning", text));
			free(text);
		}
		json_decref(rec);
		json_decref(meta);
	}
	if (list != NULL)
		json_object_set_new(r->reply, "warnings", list);
}

/* Commit every write received so far in one transaction and answer it. */
static void commit_pending(qp_server *srv)
{
	qp_req *r, *next;
	qp_wgroup *groups;
	size_t n = 0, i = 0, records = 0;
	char msg[QP_ERRMSG_LEN];
	uint64_t t0;
	int rc;

	for (r = srv->wfirst; r != NULL; r = r->wnext)
		n++;
	if (n == 0)
		return;
	groups = qp_xcalloc(n, sizeof(*groups));
	for (r = srv->wfirst; r != NULL; r = r->wnext, i++) {
		groups[i].writes = r->writes;
		groups[i].n = r->nwrites;
		records += r->nwrites;
	}
	t0 = qp_mono_ns();
	rc = qp_store_write(srv->store, groups, n);
	srv->write_ns += qp_mono_ns() - t0;
	if (rc != 0)
		qp_log_error(srv->lg, "commit of %zu requests failed: %s", n,
			     qp_strerror(rc));
	else
		qp_log_debug(srv->lg, "committed %zu requests, %zu records", n,
			     records);
	srv->write_batches++;
	srv->write_reqs += n;
	if (n > srv->max_batch)
		srv->max_batch = n;

	i = 0;
	for (r = srv->wfirst; r != NULL; r = next, i++) {
		qp_wgroup *g = &groups[i];
		next = r->wnext;
		r->wnext = NULL;
		if (g->rc == 0) {
			json_t *ids = json_array();
			for (size_t k = 0; k < g->n; k++)
				json_array_append_new(ids, json_string(g->ids[k]));
			r->reply = reply_ok(r->rid);
			if (json_string_value(json_object_get(r->msg, "id")) != NULL &&
			    g->n == 1)
				json_object_set_new(r->reply, "id",
						    json_string(g->ids[0]));
			json_object_set_new(r->reply, "ids", ids);
			reply_warnings(srv, r, g);
			srv->records_written += g->n;
		} else {
			const char *e = g->err[0] ? g->err
						  : qp_fmt(msg, sizeof(msg), "store: %s",
							   qp_strerror(g->rc));
			r->reply = reply_err(r->rid, g->rc, e);
			/* A batch that could not be committed failed as a
			 * whole: no record of the request is to blame. */
			if (rc == 0)
				json_object_set_new(
				    r->reply, "index",
				    json_integer((json_int_t)g->failed));
			if (g->twin > 0)
				json_object_set_new(
				    r->reply, "twin",
				    json_integer((json_int_t)g->twin - 1));
		}
		qp_wgroup_clear(g);
		if (r->client == NULL) {
			req_free(r); /* its client went away; nobody to tell */
			continue;
		}
		r->is_write = 0;
		r->client->waiting_writes--;
	}
	srv->wfirst = srv->wlast = NULL;
	srv->npending = 0;
	if (rc == 0 && srv->peers != NULL)
		qp_peers_kick(srv->peers); /* push new deltas to the hub */
	srv->want = n > srv->want - srv->want / 8 ? n : srv->want - srv->want / 8;
	free(groups);

	for (qp_client *c = srv->clients; c != NULL; c = c->next) {
		answer_waiting_reads(c);
		client_flush(c);
	}
}

static void on_idle(uv_idle_t *h)
{
	(void)h; /* only keeps the loop from blocking while gathering */
}

static void on_check(uv_check_t *h)
{
	qp_server *srv = h->data;
	uint64_t now;

	if (srv->npending == 0)
		return;
	if (srv->npending < srv->want && !srv->stopping) {
		now = uv_hrtime();
		if (now - srv->last_ns < QP_GATHER_IDLE_NS &&
		    now - srv->first_ns < QP_GATHER_MAX_NS) {
			if (!srv->idling) {
				uv_idle_start(&srv->idle, on_idle);
				srv->idling = 1;
			}
			return;
		}
	}
	if (srv->idling) {
		uv_idle_stop(&srv->idle);
		srv->idling = 0;
	}
	commit_pending(srv);
}

/* ---- requests ------------------------------------------------------- */

/* The sync engine answers a deferred request (sync --wait); NULL when it
 * stopped first. */
static void on_deferred_done(qp_deferred *d, json_t *reply)
{
	qp_req *r = (qp_req *)((char *)d - offsetof(qp_req, def));
	qp_client *c = r->client;

	if (reply == NULL)
		reply = reply_err(r->rid, QP_ECLOSED, "quipud is stopping");
	else
		json_object_set_new(reply, "rid", json_integer(r->rid));
	r->deferred = 0;
	if (c == NULL) { /* its client went away */
		json_decref(reply);
		req_free(r);
		return;
	}
	r->reply = reply;
	answer_waiting_reads(c);
	client_flush(c);
}

static void client_enqueue(qp_client *c, qp_req *r)
{
	if (c->tail)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
}

/* A protocol error: answer once with rid 0 and close after flushing. */
static void client_protocol_error(qp_client *c, int code, const char *why)
{
	qp_req *r = qp_xcalloc(1, sizeof(*r));
	qp_log_warn(c->srv->lg, "client protocol error: %s", why);
	r->client = c;
	r->reply = reply_err(0, code, why);
	client_enqueue(c, r);
	c->close_after_flush = 1;
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		c->reading = 0;
	}
}

static void handle_frame(qp_client *c, const uint8_t *body, uint32_t len)
{
	qp_server *srv = c->srv;
	json_t *msg = NULL, *err;
	const char *op;
	qp_req *r;
	int rc;

	rc = qp_mpjson_decode((const char *)body, len, QP_API_MAX_FRAME, &msg);
	if (rc != 0 || !json_is_object(msg)) {
		json_decref(msg);
		client_protocol_error(c, QP_EPROTO, "request is not a msgpack map");
		return;
	}
	if (json_integer_value(json_object_get(msg, "v")) != QP_API_VERSION) {
		json_decref(msg);
		client_protocol_error(c, QP_EVERSION,
				      "unsupported API version (this quipud speaks v1)");
		return;
	}
	op = json_string_value(json_object_get(msg, "op"));
	if (op == NULL || !json_is_integer(json_object_get(msg, "rid"))) {
		json_decref(msg);
		client_protocol_error(c, QP_EPROTO, "request needs op and rid");
		return;
	}
	srv->requests++;
	r = qp_xcalloc(1, sizeof(*r));
	r->client = c;
	r->msg = msg;
	r->rid = json_integer_value(json_object_get(msg, "rid"));
	r->def.done = on_deferred_done;
	client_enqueue(c, r);

	if (strcmp(op, "add") == 0 || strcmp(op, "update") == 0 ||
	    strcmp(op, "void") == 0) {
		/* A restored copy could sign a seq it signed before the backup
		 * (a fork of its own log): it gets its own deltas back first. */
		if (qp_peers_holds_writes(srv->peers)) {
			r->reply = reply_err(r->rid, QP_ERESTORED,
					     qp_peers_joined(srv->peers)
					     ? "writes wait: this data directory is a restored copy; "
					       "run `quipu sync --wait` with the hub reachable first, "
					       "so no record number this tablet already used is used again"
					     : "writes wait: this hub's data directory is a restored "
					       "copy; let the devices sync first (they bring back what "
					       "this hub wrote after the backup), then run `quipu settle`");
			return;
		}
		if ((err = prepare_write(r, op)) != NULL) {
			r->reply = err;
			return;
		}
		r->is_write = 1;
		c->waiting_writes++;
		srv->last_ns = uv_hrtime();
		if (srv->npending++ == 0)
			srv->first_ns = srv->last_ns;
		if (srv->wlast)
			srv->wlast->wnext = r;
		else
			srv->wfirst = r;
		srv->wlast = r;
		return;
	}
	if (c->waiting_writes == 0)
		r->reply = answer_read(srv, r);
}

/* ---- client I/O ----------------------------------------------------- */

/* One buffer serves every read: on_read consumes it before returning. */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	qp_client *c = h->data;
	(void)hint;
	buf->base = (char *)c->srv->rbuf;
	buf->len = QP_READ_CHUNK;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	qp_client *c = s->data;
	const uint8_t *body;
	uint32_t len;
	int rc;

	if (nread < 0) {
		if (nread != UV_EOF)
			qp_log_debug(c->srv->lg, "client read: %s", uv_strerror((int)nread));
		client_close(c);
		return;
	}
	rc = qp_framer_feed(&c->fr, buf->base, (size_t)nread);
	if (rc != 0) {
		client_protocol_error(c, rc, "frame longer than the API limit or empty");
		client_flush(c);
		return;
	}
	while (!c->close_after_flush &&
	       (rc = qp_framer_next(&c->fr, &body, &len)) == 1)
		handle_frame(c, body, len);
	client_flush(c);
}

static void on_written(uv_write_t *wr, int status)
{
	qp_out *o = (qp_out *)wr;
	qp_client *c = o->client;

	c->out_bytes -= o->len;
	free(o);
	if (status < 0) {
		client_close(c);
		return;
	}
	if (!c->reading && !c->closing && !c->close_after_flush &&
	    !c->srv->stopping && c->out_bytes < QP_CLIENT_OUT_HIGH / 2) {
		if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0)
			c->reading = 1;
	}
	if (c->close_after_flush && c->out_bytes == 0 && c->head == NULL)
		client_close(c);
}

/* The frame of r's reply (header + msgpack), appended to *buf. */
static void frame_reply(qp_req *r, uint8_t **buf, size_t *len, size_t *cap)
{
	char *body;
	size_t blen;

	if (qp_mpjson_encode(r->reply, &body, &blen) != 0 ||
	    blen > QP_API_MAX_FRAME) {
		/* Cannot happen for replies we build; say so, don't hang. */
		json_decref(r->reply);
		r->reply = reply_err(r->rid, QP_ETOOBIG, "reply too large");
		if (qp_mpjson_encode(r->reply, &body, &blen) != 0)
			abort();
	}
	if (*len + QP_FRAME_HDR + blen > *cap) {
		*cap = 2 * (*len + QP_FRAME_HDR + blen);
		*buf = qp_xrealloc(*buf, *cap);
	}
	qp_frame_header(*buf + *len, (uint32_t)blen);
	memcpy(*buf + *len + QP_FRAME_HDR, body, blen);
	*len += QP_FRAME_HDR + blen;
	free(body);
}

/* Send every reply that is ready, in request order, as one write: a
 * client pipelining many requests gets the replies of one commit in one
 * system call. */
static void client_flush(qp_client *c)
{
	uint8_t *buf = NULL;
	size_t len = offsetof(qp_out, data), cap = 0;
	qp_out *o;
	qp_req *r;
	uv_buf_t b;

	while (!c->closing && (r = c->head) != NULL && r->reply != NULL) {
		c->head = r->next;
		if (c->head == NULL)
			c->tail = NULL;
		frame_reply(r, &buf, &len, &cap);
		req_free(r);
	}
	if (buf != NULL) {
		o = (qp_out *)buf;
		o->client = c;
		o->len = len - offsetof(qp_out, data);
		b = uv_buf_init((char *)o->data, (unsigned)o->len);
		if (uv_write(&o->wr, (uv_stream_t *)&c->pipe, &b, 1,
			     on_written) != 0) {
			free(o);
			client_close(c);
			return;
		}
		c->out_bytes += o->len;
	}
	if (c->out_bytes > QP_CLIENT_OUT_HIGH && c->reading) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		c->reading = 0;
	}
	if (c->close_after_flush && c->out_bytes == 0 && c->head == NULL)
		client_close(c);
}

static void on_client_closed(uv_handle_t *h)
{
	qp_client *c = h->data;
	qp_server *srv = c->srv;
	qp_req *r, *next;

	/* Writes still waiting for the commit stay queued there (they were
	 * received, so they are committed); only the link back is cut. */
	for (r = c->head; r != NULL; r = next) {
		next = r->next;
		r->next = NULL;
		if ((r->is_write || r->deferred) && r->reply == NULL)
			r->client = NULL;
		else
			req_free(r);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nclients--;
	qp_framer_free(&c->fr);
	free(c);
	if (srv->stopping)
		server_release(srv);
}

static void client_close(qp_client *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	c->reading = 0;
	uv_close((uv_handle_t *)&c->pipe, on_client_closed);
}

static void on_connection(uv_stream_t *l, int status)
{
	qp_server *srv = l->data;
	qp_client *c;

	if (status < 0) {
		qp_log_warn(srv->lg, "accept: %s", uv_strerror(status));
		return;
	}
	c = qp_xcalloc(1, sizeof(*c));
	c->srv = srv;
	qp_framer_init(&c->fr, QP_API_MAX_FRAME);
	uv_pipe_init(srv->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = c;
	srv->clients = c;
	srv->nclients++;
	if (uv_accept(l, (uv_stream_t *)&c->pipe) != 0 ||
	    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) != 0) {
		client_close(c);
		return;
	}
	c->reading = 1;
}

/* ---- start and stop ------------------------------------------------- */

/* Is another quipud answering on this socket path? */
static int socket_live(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), live;
	struct sockaddr_un sa;

	size_t len = strlen(path);

	if (fd < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (len >= sizeof(sa.sun_path)) {
		close(fd);
		return 0;
	}
	memcpy(sa.sun_path, path, len + 1);
	live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return live;
}

int qp_server_start(uv_loop_t *loop, qp_node *node, qp_store *store,
		    const qp_log *lg, qp_server **out)
{
	qp_server *srv;
	int rc;

	if (strlen(node->sock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return QP_EINVAL;
	if (socket_live(node->sock))
		return QP_EEXIST;
	unlink(node->sock); /* stale, from a daemon that died */

	srv = qp_xcalloc(1, sizeof(*srv));
	srv->loop = loop;
	srv->node = node;
	srv->store = store;
	srv->lg = lg;
	srv->started_ms = qp_hlc_wall_ms();
	uv_pipe_init(loop, &srv->listener, 0);
	srv->listener.data = srv;
	srv->handles++;
	if ((rc = uv_pipe_bind(&srv->listener, node->sock)) == 0 &&
	    (rc = (chmod(node->sock, 0660) != 0) ? -errno : 0) == 0)
		rc = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
	if (rc != 0) {
		qp_log_error(lg, "cannot listen on %s: %s", node->sock, uv_strerror(rc));
		/* The caller runs the loop once more, which frees srv. */
		srv->stopping = 1;
		uv_close((uv_handle_t *)&srv->listener, on_server_handle_closed);
		return rc;
	}
	uv_check_init(loop, &srv->check);
	srv->check.data = srv;
	srv->handles++;
	uv_check_start(&srv->check, on_check);
	uv_idle_init(loop, &srv->idle);
	srv->idle.data = srv;
	srv->handles++;
	*out = srv;
	return 0;
}

void qp_server_set_backup(qp_server *srv, qp_autobackup *ab)
{
	srv->backup = ab;
}

void qp_server_set_peers(qp_server *srv, qp_peers *peers)
{
	srv->peers = peers;
}

/* Called as each of the server's own handles (and, while stopping, each
 * client) closes; frees the server once nothing refers to it. */
static void server_release(qp_server *srv)
{
	if (srv->handles > 0 || srv->clients != NULL)
		return;
	free(srv);
}

static void on_server_handle_closed(uv_handle_t *h)
{
	qp_server *srv = h->data;
	srv->handles--;
	server_release(srv);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	qp_client *c = req->data;
	(void)status;
	free(req);
	client_close(c);
}

void qp_server_stop(qp_server *srv)
{
	qp_client *c, *next;

	if (srv->stopping)
		return;
	srv->stopping = 1;
	for (c = srv->clients; c != NULL; c = c->next) {
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->pipe);
			c->reading = 0;
		}
	}
	/* Finish the commit of everything already received, and answer it. */
	commit_pending(srv);
	for (c = srv->clients; c != NULL; c = next) {
		uv_shutdown_t *sh;
		next = c->next;
		if (c->closing)
			continue;
		sh = qp_xmalloc(sizeof(*sh));
		sh->data = c;
		if (uv_shutdown(sh, (uv_stream_t *)&c->pipe, on_shutdown) != 0) {
			free(sh);
			client_close(c);
		}
	}
	uv_check_stop(&srv->check);
	uv_close((uv_handle_t *)&srv->check, on_server_handle_closed);
	uv_idle_stop(&srv->idle);
	uv_close((uv_handle_t *)&srv->idle, on_server_handle_closed);
	uv_close((uv_handle_t *)&srv->listener, on_server_handle_closed);
	unlink(srv->node->sock);
}
