/*
 * peer.h - quipud's sync engine: sessions with other nodes over links
 * (link.h), the hub's listener, the field node's dialer with backoff, and
 * the API operations of sync (enroll, join, revoke, peers, sync,
 * conflicts, quarantine).
 *
 * A session runs the exchange of proto/sync.h: both sides send their
 * version vectors, then each sends what the other lacks in its scope
 * (oldest first, batches with a window of unacknowledged ones), the
 * receiver ingests each batch in one durable commit and acknowledges it,
 * and acknowledgements are persisted so nothing acknowledged is ever sent
 * again.  A hub sends a device only feeds of the orgs in the device's
 * certificate, and before them the certificates of their authors and the
 * hub's revocations, so the device can check every delta itself.
 *
 * The dialer: a node that joined a hub connects at start, whenever local
 * writes are committed (pushed within a second while connected) and when
 * `quipu sync` asks; failures are retried with capped exponential backoff
 * and jitter while deltas are unsent; the reason of the last failure is
 * kept in plain words for `quipu status`.
 */
#ifndef QP_PEER_H
#define QP_PEER_H

#include <jansson.h>
#include <uv.h>

#include "log.h"
#include "node.h"
#include "store.h"

typedef struct qp_peers qp_peers;

/* A reply that will come later (sync --wait): the server hands the engine
 * a completion it calls exactly once with the reply (owned by the callee),
 * or with NULL when the engine stops first. */
typedef struct qp_deferred {
	void (*done)(struct qp_deferred *d, json_t *reply);
} qp_deferred;

/* Start the engine: listen when node.json has "listen" (hubs), dial the
 * hub when this node has joined one.  Errors: uv codes for a listen
 * failure (address in use...). */
int qp_peers_start(uv_loop_t *loop, qp_node *node, qp_store *store,
		   const qp_log *lg, qp_peers **out);

/* Close every session, the listener and timers; pending deferred replies
 * are completed with NULL.  The engine frees itself once its handles are
 * closed. */
void qp_peers_stop(qp_peers *p);

/* Local writes were committed: push them to connected peers within a
 * second, and dial the hub if not connected. */
void qp_peers_kick(qp_peers *p);

/* Has this node joined a hub (a device, or a hub below another)?  0 for
 * NULL. */
int qp_peers_joined(const qp_peers *p);

/* Handle an API request of the sync family (op in msg).  Returns a reply
 * (new reference, "rid" not set), or NULL when the op is not one of ours
 * (*handled = 0), or NULL with *handled = 1 when the reply is deferred
 * through d (which must stay valid until d->done is called). */
json_t *qp_peers_api(qp_peers *p, const char *op, const json_t *msg,
		     qp_deferred *d, int *handled);

/* Are local writes held because the data directory is a restored copy?
 * On a node that joined a hub, until a sync with it completes; on a top
 * hub, until its operator runs `quipu settle` (API op "settle") once the
 * devices have synced back what it wrote after the backup. */
int qp_peers_holds_writes(const qp_peers *p);

/* Per-peer status for `quipu status` (new reference: an array). */
json_t *qp_peers_status(qp_peers *p);

/* Bundle imports under way, [{path, deltas, done}] (new reference). */
json_t *qp_peers_imports(const qp_peers *p);

#endif
