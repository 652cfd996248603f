/*
 * peer_internal.h - shared between peer.c (sessions, dialer, listener) and
 * peer_api.c (the API operations of sync).  Not a public interface.
 */
#ifndef QP_PEER_INTERNAL_H
#define QP_PEER_INTERNAL_H

#include <stdint.h>
#include <uv.h>

#include "cert.h"
#include "link.h"
#include "peer.h"
#include "sync.h"

#define QP_PEER_WINDOW 4          /* unacknowledged batches in flight */
#define QP_PEER_BACKOFF_MIN 250   /* ms */
#define QP_PEER_BACKOFF_MAX 300000
#define QP_PEER_PULL_MS 60000     /* a joined node syncs at least this often */
#define QP_PEER_IDLE_CLOSE_MS 30000
#define QP_PEER_PUSH_MS 50        /* local commits are pushed after this */

/* What we know of one peer, in memory, for status. */
typedef struct qp_peer_stat {
	uint8_t key[QP_KEY_LEN];
	char name[QP_CERT_NAME_MAX + 1];
	char addr[300];
	const char *state; /* "connected", "connecting", "backoff", "idle" */
	char last_error[400];
	uint64_t last_contact_ms, last_ack_ms, last_success_ms;
	uint64_t next_attempt_ms;
	uint64_t deltas_sent, deltas_received, deltas_refused;
	uint64_t resent_after_ack;
	uint64_t bytes_in, bytes_out, sessions;
	/* How far ahead of this node's clock the peer's own newest delta was
	 * stamped, when more than QP_HLC_AHEAD_MAX_MS (its date is wrong), else
	 * 0. */
	uint64_t clock_ahead_ms;
	struct qp_peer_stat *next;
} qp_peer_stat;

typedef struct qp_waiter {
	qp_deferred *d;
	uint64_t deadline_ms;
	uint64_t since_ms; /* only an exchange completed after this counts */
	struct qp_waiter *next;
} qp_waiter;

typedef struct qp_session {
	qp_peers *p;
	qp_link *link;
	int outbound;     /* we dialed (upstream) */
	int established;
	uint8_t peer[QP_KEY_LEN];
	qp_cert cert;     /* inbound: the peer's certificate (its scope) */
	int have_cert;
	qp_peer_stat *st;
	qp_vv sent;       /* per feed: what the peer has, or has been sent */
	qp_vv acked;      /* per feed: what the peer acknowledged */
	qp_vv ack_dirty;  /* acknowledgements not yet stored */
	int got_vector;
	uint64_t trust_sent; /* qp_store_trust_gen when trust was last sent */
	int inflight;
	int done_sent, peer_done;
	uint64_t last_activity_ms;
	struct qp_session *next;
} qp_session;

struct qp_peers {
	uv_loop_t *loop;
	qp_node *node;
	qp_store *store;
	const qp_log *lg;
	int is_hub;
	uint8_t root[QP_KEY_LEN];
	int have_root;
	/* listener (hubs) */
	uv_tcp_t listener;
	int listening;
	char listen_addr[300];
	/* upstream (a node that joined a hub) */
	int joined;
	uint8_t hub_pk[QP_KEY_LEN];
	char hub_addr[QP_ADDR_MAX + 1];
	uint8_t *cert;
	size_t certlen;
	qp_cert mycert;
	qp_session *up;
	uint64_t up_complete_ms; /* last time both sides of the upstream
				  * session had nothing more to send */
	uint64_t backoff_ms;
	uv_timer_t tick;  /* retries, waiters, idle close: every 250 ms */
	uv_timer_t push;  /* coalesces local commits */
	int push_armed;
	qp_session *sessions;
	qp_waiter *waiters;
	qp_peer_stat *stats;
	struct qp__bundle_job *imports; /* bundle imports under way */
	int stopping;
	int handles;
};

qp_peer_stat *qp__peer_stat(qp_peers *p, const uint8_t key[QP_KEY_LEN]);
/* Drop one reference to the engine (each open handle holds one); the
 * last frees it. */
void qp__peers_release(qp_peers *p);
void qp__peer_dial_now(qp_peers *p);
uint64_t qp__peer_pending_up(qp_peers *p);
void qp__peer_set_join(qp_peers *p, const uint8_t hub_pk[QP_KEY_LEN],
		       const char *addr, const uint8_t *cert, size_t certlen);
uint64_t qp__now_s(void);
/* Queue a `sync --wait` request: completed when the hub has acknowledged
 * every local delta, or with an error at the timeout.  Dials now. */
void qp__peer_wait(qp_peers *p, qp_deferred *d, uint64_t timeout_ms);
/* 1 when key has been revoked (by the root), with its cut in *after. */
int qp__peer_revoked(qp_peers *p, const uint8_t key[QP_KEY_LEN], uint64_t *after);
/* An error reply {"ok": false, "error": fmt with arg, "code": name}. */
json_t *qp__peer_fail(int code, const char *fmt, const char *arg);

/* Copies of byte strings (certificates, revocations, deltas) gathered for
 * a message or a file; s is the session a collector filters for, when it
 * needs one. */
typedef struct qp__blobs {
	uint8_t **b;
	size_t *len;
	size_t n, cap;
	qp_session *s;
} qp__blobs;
void qp__blobs_add(qp__blobs *b, const uint8_t *d, size_t len);
void qp__blobs_free(qp__blobs *b);
/* A store iteration callback adding each item to the qp__blobs ctx. */
int qp__blobs_collect(void *ctx, const uint8_t *d, size_t len);
/* Store the certificates items[i][0..lens[i]) that chain to this node's
 * anchors (in any order); the others are logged as from `from`.  Returns
 * how many were kept (new or already held). */
size_t qp__peer_take_certs(qp_peers *p, const uint8_t *const *items,
			   const size_t *lens, size_t n, const char *from);
/* bundle_export / bundle_import API operations (peer_bundle.c).  An
 * import that got past its checks goes on a batch per loop turn, so the
 * node keeps serving meanwhile, and answers through d (NULL returned). */
json_t *qp__peer_bundle_export(qp_peers *p, const json_t *m);
json_t *qp__peer_bundle_import(qp_peers *p, const json_t *m,
				qp_deferred *d);
/* The imports under way, [{path, deltas, done}], for status. */
json_t *qp__peer_bundle_imports(const qp_peers *p);
/* quipud is stopping: each import under way is answered with how far it
 * got (what it stored stays; importing the file again finishes it). */
void qp__peer_bundle_stop(qp_peers *p);

#endif
