/*
 * uuid.c - UUIDv7 identifiers; see uuid.h.
 *
 * Monotonicity follows RFC 9562 section 6.2, method 2: when the clock has
 * not moved past the last id's millisecond (same millisecond, or the wall
 * clock stepped back), the new id keeps the last id's millisecond and adds
 * one to its 74 random bits, treated as one counter.  Should that counter
 * run out, the millisecond is advanced by one and fresh random bits drawn.
 */
#include "uuid.h"
#include "err.h"
#include "util.h"

#include <sodium.h>
#include <string.h>

#define QP__MS_MASK ((UINT64_C(1) << 48) - 1)

static void fresh(uint64_t ms, uint8_t id[QP_UUID_LEN])
{
	for (int i = 0; i < 6; i++)
		id[i] = (uint8_t)(ms >> (40 - 8 * i));
	randombytes_buf(id + 6, QP_UUID_LEN - 6);
	id[6] = (uint8_t)(0x70 | (id[6] & 0x0f)); /* version 7 */
	id[8] = (uint8_t)(0x80 | (id[8] & 0x3f)); /* variant 10 */
}

/* Add one to the 74 random bits (rand_a: 12, rand_b: 62), skipping the
 * version and variant bits.  Returns 0, or -1 when they were all ones. */
static int increment(uint8_t id[QP_UUID_LEN])
{
	for (int i = QP_UUID_LEN - 1; i > 8; i--)
		if (++id[i] != 0)
			return 0;
	if ((id[8] & 0x3f) != 0x3f) {
		id[8]++;
		return 0;
	}
	id[8] = 0x80;
	if (++id[7] != 0)
		return 0;
	if ((id[6] & 0x0f) != 0x0f) {
		id[6]++;
		return 0;
	}
	id[6] = 0x70;
	return -1;
}

/* Make the next id of generator g for wall time now_ms (milliseconds are
 * taken modulo 2^48).  Strictly greater, as bytes, than every id g made
 * before, whatever now_ms does. */
void qp_uuid_v7(qp_uuid_gen *g, uint64_t now_ms, uint8_t out[QP_UUID_LEN])
{
	now_ms &= QP__MS_MASK;
	/* A zeroed generator has no version bits in last: nothing made yet. */
	if (now_ms > g->last_ms || (g->last[6] & 0xf0) != 0x70) {
		fresh(now_ms, g->last);
		g->last_ms = now_ms;
	} else if (increment(g->last) != 0) {
		g->last_ms = (g->last_ms + 1) & QP__MS_MASK;
		fresh(g->last_ms, g->last);
	}
	memcpy(out, g->last, QP_UUID_LEN);
}

/* Canonical lower-case 8-4-4-4-12 text plus NUL into out. */
void qp_uuid_format(const uint8_t id[QP_UUID_LEN], char out[QP_UUID_STRLEN + 1])
{
	static const int groups[5] = {4, 2, 2, 2, 6};
	char *o = out;
	const uint8_t *p = id;

	for (int g = 0; g < 5; g++) {
		if (g > 0)
			*o++ = '-';
		qp_hex(p, (size_t)groups[g], o);
		o += 2 * groups[g];
		p += groups[g];
	}
	*o = '\0';
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parse canonical text (36 characters, hyphens at 8, 13, 18 and 23, hex in
 * any case); out written only on success.  Returns 0 or QP_EPROTO. */
int qp_uuid_parse(const char *s, uint8_t out[QP_UUID_LEN])
{
	uint8_t id[QP_UUID_LEN];
	size_t n = 0;

	if (s == NULL)
		return QP_EPROTO;
	for (int i = 0; i < QP_UUID_STRLEN; i += 2) {
		int hi, lo;
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return QP_EPROTO;
			i++;
		}
		/* A NUL fails nibble(), so a short string stops here. */
		hi = nibble(s[i]);
		if (hi < 0)
			return QP_EPROTO;
		lo = nibble(s[i + 1]);
		if (lo < 0)
			return QP_EPROTO;
		id[n++] = (uint8_t)(hi << 4 | lo);
	}
	if (s[QP_UUID_STRLEN] != '\0')
		return QP_EPROTO;
	memcpy(out, id, QP_UUID_LEN);
	return 0;
}

/* Nonzero when s parses with qp_uuid_parse. */
int qp_uuid_valid(const char *s)
{
	uint8_t id[QP_UUID_LEN];
	return qp_uuid_parse(s, id) == 0;
}
