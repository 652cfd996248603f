/*
 * frame.h - length-prefixed frames: a 4-byte big-endian length followed by
 * that many bytes of msgpack body.  Used by the local API and (later) the
 * sync protocol.  A length above the reader's limit is refused before any
 * allocation; a zero length is refused too.
 *
 * The reader is pure buffer logic with no I/O: feed it whatever bytes
 * arrived, then take complete frames out one by one.
 */
#ifndef QP_FRAME_H
#define QP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define QP_FRAME_HDR 4
#define QP_FRAME_MAX_DEFAULT (16u << 20) /* 16 MiB */

typedef struct qp_framer {
	uint32_t max;  /* largest body accepted */
	uint32_t ahead; /* largest body of a frame behind the next one (0: max);
			 * see qp_framer_feed */
	uint8_t *buf;  /* owned */
	size_t len;    /* bytes held */
	size_t cap;
	size_t off;    /* start of the unconsumed part */
	int failed;    /* sticky: once a bad length is seen, always fails */
} qp_framer;

void qp_framer_init(qp_framer *f, uint32_t max);
void qp_framer_free(qp_framer *f);

/* Append n received bytes.  Returns 0, or QP_ETOOBIG/QP_EPROTO when the
 * stream announces a frame longer than max (or of length zero); the framer is
 * then failed and the connection should be closed.  A protocol that raises
 * max once a first phase ends (a handshake, then a channel) sets ahead to
 * the raised limit: frames already received behind the next one are then
 * checked against ahead here, and against max when they come next (a peer
 * may send its first channel frame right behind its last handshake
 * message, and both can arrive in one read). */
int qp_framer_feed(qp_framer *f, const void *data, size_t n);

/* Take the next complete frame.  Returns 1 with *body and *len pointing into the
 * framer's buffer (valid until the next feed/next/free call), 0 when no
 * complete frame is held, or a negative code when failed. */
int qp_framer_next(qp_framer *f, const uint8_t **body, uint32_t *len);

/* Write the 4-byte header for a body of len bytes. */
void qp_frame_header(uint8_t hdr[QP_FRAME_HDR], uint32_t len);

#endif
