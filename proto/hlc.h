/*
 * hlc.h - hybrid logical clock: 48-bit wall milliseconds and a 16-bit counter
 * packed in one uint64_t (ms << 16 | counter), so timestamps compare as plain
 * integers.  Monotonic even when the wall clock jumps back: the clock never
 * returns a value <= one it has returned or observed.
 */
#ifndef QP_HLC_H
#define QP_HLC_H

#include <stdint.h>

typedef struct qp_hlc {
	uint64_t last; /* last value issued or observed; persist it */
} qp_hlc;

#define QP_HLC_MS(t) ((t) >> 16)
#define QP_HLC_COUNT(t) ((t)&0xffffu)
#define QP_HLC_MAKE(ms, c) (((uint64_t)(ms) << 16) | ((uint64_t)(c)&0xffffu))

/* How far another node's clock may lead ours before its stamps stop
 * pulling our clock forward (a tablet with a wrong date must not drag
 * every node's clock into the future): one day. */
#define QP_HLC_AHEAD_MAX_MS (24ull * 3600 * 1000)

/* A wall clock this far behind the newest stamp a node holds is wrong (the
 * stamp may lead by up to QP_HLC_AHEAD_MAX_MS without that): two days. */
#define QP_HLC_BEHIND_WRONG_MS (2 * QP_HLC_AHEAD_MAX_MS)

/* Milliseconds by which wall time now_ms is behind stamp t (0 when not). */
uint64_t qp_hlc_behind_ms(uint64_t t, uint64_t now_ms);

/* Wall clock in Unix milliseconds (CLOCK_REALTIME). */
uint64_t qp_hlc_wall_ms(void);

/* Issue a timestamp for a local event at wall time now_ms.  Strictly greater
 * than every value issued or observed before.  When the counter would
 * overflow the ms part is advanced by one. */
uint64_t qp_hlc_now(qp_hlc *c, uint64_t now_ms);

/* Merge a timestamp received from elsewhere so later local events order
 * after it. */
void qp_hlc_observe(qp_hlc *c, uint64_t remote);

/* Format as ISO 8601 UTC with milliseconds ("2026-11-23T12:00:00.123Z") into
 * out (at least 25 bytes). */
void qp_hlc_iso(uint64_t t, char *out, unsigned long outlen);

#endif
