/*
 * link.h - one authenticated, encrypted TCP connection between two nodes.
 *
 * A link runs the handshake of handshake.h over frames (frame.h) on a libuv
 * TCP stream, then carries messages sealed in the secretstream channel.
 * The sync logic sits on top and sees only whole plaintext messages.
 *
 * Lifetime: a link is created by qp_link_dial (client side) or
 * qp_link_accept (server side).  on_closed is called exactly once, after
 * which the link frees itself at a safe point of the loop; the owner must
 * not touch it after on_closed returns.  If qp_link_dial/accept fails, no
 * callback is ever called.
 *
 * Timeouts: the handshake must finish within hs_timeout_ms; an established
 * link with nothing received for idle_timeout_ms is closed (the sync layer
 * sends keepalives when it wants a link kept open).
 *
 * Failure reasons are plain words for `quipu status` and the log: "no
 * route to host", "hub refused: certificate expired", "handshake timed out",
 * "peer sent a frame larger than the limit", "connection reset by peer".
 */
#ifndef QP_LINK_H
#define QP_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "handshake.h"
#include "log.h"

typedef struct qp_link qp_link;

typedef struct qp_link_cbs {
	/* Handshake done; qp_link_peer() names the peer. */
	void (*on_established)(qp_link *l, void *ud);
	/* One decrypted message; msg is valid only during the call. */
	void (*on_message)(qp_link *l, const uint8_t *msg, size_t len,
			   void *ud);
	/* The link is gone: code 0 after a graceful close by either side,
	 * else the failure code; why is a one-line reason. */
	void (*on_closed)(qp_link *l, int code, const char *why, void *ud);
} qp_link_cbs;

typedef struct qp_link_opts {
	uint64_t hs_timeout_ms;   /* default 10 s */
	uint64_t idle_timeout_ms; /* default 120 s */
} qp_link_opts;

typedef struct qp_link_stats {
	uint64_t bytes_in, bytes_out; /* counted at the socket */
	uint64_t msgs_in, msgs_out;
} qp_link_stats;

/* Dial addr ("HOST:PORT") and run the client handshake, pinning server_pk
 * and presenting cert.  Keys and cert are copied.  Errors: QP_EINVAL (bad
 * address), -errno/uv codes for immediate socket failures. */
int qp_link_dial(uv_loop_t *loop, const char *addr,
		 const uint8_t pk[QP_KEY_LEN], const uint8_t sk[QP_SKEY_LEN],
		 const uint8_t server_pk[QP_KEY_LEN], const uint8_t *cert,
		 size_t certlen, const qp_link_opts *o, const qp_link_cbs *cbs,
		 void *ud, const qp_log *lg, qp_link **out);

/* Accept a pending connection on server and run the server handshake;
 * check_peer decides whether the client's key and certificate are
 * welcome (its reason is sent to the client in a REFUSE). */
int qp_link_accept(uv_stream_t *server, const uint8_t pk[QP_KEY_LEN],
		   const uint8_t sk[QP_SKEY_LEN], qp_hs_check_peer_fn check_peer,
		   void *check_ctx, const qp_link_opts *o,
		   const qp_link_cbs *cbs, void *ud, const qp_log *lg,
		   qp_link **out);

/* Seal and queue one message (at most QP_CHANNEL_MAX bytes).  Errors:
 * QP_EINVAL before establishment or after close, QP_ETOOBIG. */
int qp_link_send(qp_link *l, const uint8_t *msg, size_t len);

/* Bytes sealed and queued but not yet written to the socket, for flow
 * control by the sync layer. */
size_t qp_link_queued(const qp_link *l);

/* Close: a final sealed message is sent when established (so the peer sees
 * a graceful end), then the socket is shut down.  on_closed follows with
 * code 0 and why (or "closed" when NULL). */
void qp_link_close(qp_link *l, const char *why);

/* The peer's static key (valid once established). */
const uint8_t *qp_link_peer(const qp_link *l);
const qp_link_stats *qp_link_stats_get(const qp_link *l);
/* The peer's address as text ("127.0.0.1:40123"). */
const char *qp_link_addr(const qp_link *l);

#endif
