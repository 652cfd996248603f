/*
 * api.h - the client side of the local API (proto/wire.h): one connection
 * to quipud's Unix socket.  Requests are JSON objects sent as msgpack frames;
 * replies come back as JSON objects in request order.
 *
 * Pipelining: qp_api_send returns the request's rid at once, and several
 * requests may be sent before their replies are read with qp_api_recv in the
 * same order.  While a send waits for the socket to drain, replies that
 * arrive are buffered (at most 64 MiB per reply frame), so a client
 * and a daemon that both write never deadlock.
 *
 * Every wait is bounded by the connection's timeout.
 */
#ifndef QP_API_H
#define QP_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct qp_api qp_api;

/* Connect to the socket at path.  timeout_ms bounds each later wait for the
 * socket (0: wait forever).  On success *out is set; close with
 * qp_api_close.  Errors: -errno of socket()/connect() (e.g. -ECONNREFUSED,
 * -ENOENT), QP_EINVAL when the path does not fit a socket address. */
int qp_api_connect(const char *path, int timeout_ms, qp_api **out);

/* Close the connection and free a.  Accepts NULL. */
void qp_api_close(qp_api *a);

/* Send one request.  Sets "v" and "rid" in req (which stays owned by the
 * caller) and writes the frame.  On success *rid (when non-NULL) gets the
 * request's rid.  Errors: QP_ETOOBIG (encoded request above
 * QP_API_MAX_FRAME; nothing was sent), QP_EINVAL (not encodable),
 * QP_ECLOSED, QP_ETIMEDOUT, -errno. */
int qp_api_send(qp_api *a, json_t *req, uint64_t *rid);

/* Read the reply to the oldest request not yet answered, which must have
 * rid `rid`.  On success *reply gets a new reference to the reply object
 * (ok true or false: the caller looks at "ok").  An error reply the daemon
 * sends before closing a connection (no rid) is returned as the reply too.
 * Errors: QP_EPROTO (not an object, wrong rid, bad frame), QP_ETOOBIG,
 * QP_ECLOSED (daemon closed the connection), QP_ETIMEDOUT, -errno. */
int qp_api_recv(qp_api *a, uint64_t rid, json_t **reply);

/* qp_api_send then qp_api_recv. */
int qp_api_call(qp_api *a, json_t *req, json_t **reply);

#endif
