/*
 * server.h - quipud's local API: a Unix socket served on one libuv loop.
 *
 * Requests (wire.h) are read from every client as they arrive.  Writes
 * (add/update/void) are not committed one by one: every write request that
 * arrived during one loop iteration is gathered and committed in a single
 * durable LMDB transaction from a uv_check callback (group commit), and each
 * client gets its reply only after that commit returned.  Reads are answered
 * at once, unless the same client has an earlier write still waiting, in
 * which case they wait behind it so a client always reads its own writes;
 * replies leave in request order.
 *
 * A client that sends a bad frame is answered (when possible) and closed;
 * a client that vanishes has its replies dropped; neither disturbs others.
 * A client that stops reading its replies is not read from until its output
 * queue drains below a bound (backpressure), so it cannot grow memory.
 */
#ifndef QP_SERVER_H
#define QP_SERVER_H

#include <uv.h>

#include "log.h"
#include "node.h"
#include "autobackup.h"
#include "peer.h"
#include "store.h"

typedef struct qp_server qp_server;

/* Bind node->sock (mode 0660) and start serving on loop.  A stale socket
 * file is replaced; a live one (another quipud answering) is QP_EEXIST.
 * store and node stay owned by the caller and must outlive the server.  On
 * success *out is set. */
int qp_server_start(uv_loop_t *loop, qp_node *node, qp_store *store,
		    const qp_log *lg, qp_server **out);

/* Route the sync family of API operations to peers, tell it of commits
 * that made new deltas, and add its per-peer status to `status`.  May be
 * NULL (no sync). */
void qp_server_set_peers(qp_server *srv, qp_peers *peers);
/* The backup schedule whose state `status` shows (NULL: none). */
void qp_server_set_backup(qp_server *srv, qp_autobackup *ab);

/* Stop: close the listener, stop reading, commit the writes already
 * received, send their replies, then close every client.  The server frees
 * itself once all its handles are closed; the loop then runs dry. */
void qp_server_stop(qp_server *srv);

#endif
