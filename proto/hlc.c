/*
 * hlc.c - hybrid logical clock; see hlc.h.
 *
 * Because a timestamp is (ms << 16 | counter), "the next value after last"
 * is simply last + 1: the counter increments, and when it is full the carry
 * moves into the milliseconds, which is the overflow rule hlc.h asks for.
 * A local event therefore gets max(now_ms << 16, last + 1).
 */
#include "hlc.h"

#include <stdio.h>
#include <time.h>

#define QP__HLC_MS_MASK ((UINT64_C(1) << 48) - 1)

/* Wall clock in Unix milliseconds (CLOCK_REALTIME). */
uint64_t qp_hlc_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Issue a timestamp for a local event at wall time now_ms (taken modulo
 * 2^48), strictly greater than every value issued or observed before.  The
 * one exception is the all-ones value, where the clock saturates: it cannot
 * be reached before the year 10889 unless a value that large is observed. */
uint64_t qp_hlc_now(qp_hlc *c, uint64_t now_ms)
{
	uint64_t wall = QP_HLC_MAKE(now_ms & QP__HLC_MS_MASK, 0);
	uint64_t next = c->last == UINT64_MAX ? UINT64_MAX : c->last + 1;

	c->last = wall > next ? wall : next;
	return c->last;
}

uint64_t qp_hlc_behind_ms(uint64_t t, uint64_t now_ms)
{
	return QP_HLC_MS(t) > now_ms ? QP_HLC_MS(t) - now_ms : 0;
}

/* Merge a remote timestamp: later local events order after it. */
void qp_hlc_observe(qp_hlc *c, uint64_t remote)
{
	if (remote > c->last)
		c->last = remote;
}

/* ISO 8601 UTC with milliseconds into out[0..outlen), always NUL-terminated
 * when outlen > 0 (25 bytes hold every time before the year 10000). */
void qp_hlc_iso(uint64_t t, char *out, unsigned long outlen)
{
	uint64_t ms = QP_HLC_MS(t);
	time_t secs = (time_t)(ms / 1000u);
	struct tm tm;

	if (out == NULL || outlen == 0)
		return;
	if (gmtime_r(&secs, &tm) == NULL) {
		out[0] = '\0';
		return;
	}
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000u));
}
