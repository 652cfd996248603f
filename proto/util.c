/* util.c - see util.h. */
#include "util.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void qp__oom(size_t n)
{
	fprintf(stderr, "quipu: out of memory allocating %zu bytes\n", n);
	abort();
}

void *qp_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		qp__oom(n);
	return p;
}

void *qp_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		qp__oom(n * size);
	return p;
}

void *qp_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		qp__oom(n);
	return q;
}

char *qp_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = qp_xmalloc(n);
	memcpy(d, s, n);
	return d;
}

void qp_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void qp_put_be64(uint8_t *p, uint64_t v)
{
	qp_put_be32(p, (uint32_t)(v >> 32));
	qp_put_be32(p + 4, (uint32_t)v);
}

uint32_t qp_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

uint64_t qp_get_be64(const uint8_t *p)
{
	return ((uint64_t)qp_get_be32(p) << 32) | qp_get_be32(p + 4);
}

void qp_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int qp__nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int qp_unhex(const char *in, uint8_t *out, size_t n)
{
	if (strlen(in) != 2 * n)
		return QP_EPROTO;
	for (size_t i = 0; i < n; i++) {
		int hi = qp__nibble(in[2 * i]), lo = qp__nibble(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return QP_EPROTO;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

const char *qp_excerpt(const char *s, size_t n, char *buf, size_t len)
{
	size_t o = 0, i;

	if (len < 8) {
		if (len > 0)
			buf[0] = '\0';
		return buf;
	}
	for (i = 0; i < n && o + 4 < len && i < 40; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (i < n) {
		while (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
			o--; /* drop continuation bytes of a cut character */
		if (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0xc0)
			o--; /* and its lead byte */
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

char *qp_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return buf;
}

int qp_verrf(int rc, char *err, size_t errlen, const char *fmt, va_list ap)
{
	qp_cloc l;

	if (err == NULL || errlen == 0)
		return rc;
	qp_cloc_enter(&l);
	vsnprintf(err, errlen, fmt, ap);
	qp_cloc_leave(&l);
	return rc;
}

int qp_errf(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc = qp_verrf(rc, err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

void qp_cloc_enter(qp_cloc *l)
{
	l->c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	l->old = l->c != (locale_t)0 ? uselocale(l->c) : (locale_t)0;
}

void qp_cloc_leave(qp_cloc *l)
{
	if (l->c == (locale_t)0)
		return;
	uselocale(l->old);
	freelocale(l->c);
}

/* The monotonic clock in ns (see util.h). */
uint64_t qp_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Lowercased copy of s (ASCII letters only, so UTF-8 stays valid): into buf
 * when it fits, else a malloc'd string the caller frees. */
static char *lower(const char *s, char *buf, size_t len)
{
	size_t n = strlen(s), i;
	char *k = n < len ? buf : qp_xmalloc(n + 1);

	for (i = 0; i < n; i++)
		k[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a')
						    : s[i];
	k[n] = '\0';
	return k;
}

json_t *qp_id_get(const json_t *map, const char *id)
{
	char buf[64], *k = lower(id, buf, sizeof(buf));
	json_t *v = json_object_get(map, k);

	if (k != buf)
		free(k);
	return v;
}

void qp_id_set(json_t *map, const char *id, json_t *v)
{
	char buf[64], *k = lower(id, buf, sizeof(buf));

	json_object_set_new(map, k, v);
	if (k != buf)
		free(k);
}
