/*
 * util.h - small helpers shared by every module: allocation that aborts on
 * exhaustion (internal memory only; decoders bound sizes before calling),
 * big-endian integer packing and bounded string formatting.
 */
#ifndef QP_UTIL_H
#define QP_UTIL_H

#include <jansson.h>
#include <locale.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Allocate or abort the process with a message.  Never returns NULL. */
void *qp_xmalloc(size_t n);
void *qp_xcalloc(size_t n, size_t size);
void *qp_xrealloc(void *p, size_t n);
char *qp_xstrdup(const char *s);

void qp_put_be32(uint8_t *p, uint32_t v);
void qp_put_be64(uint8_t *p, uint64_t v);
uint32_t qp_get_be32(const uint8_t *p);
uint64_t qp_get_be64(const uint8_t *p);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void qp_hex(const uint8_t *in, size_t n, char *out);
/* Parse exactly 2n hex digits into out.  Returns 0 or QP_EPROTO. */
int qp_unhex(const char *in, uint8_t *out, size_t n);

/* Write a message ("field: reason") into err, when err is not NULL and
 * errlen > 0, with numbers in the C locale, and return rc: how modules
 * report why beside an error code. */
int qp_errf(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int qp_verrf(int rc, char *err, size_t errlen, const char *fmt, va_list ap);

/* A printable excerpt of untrusted text s[0..n) for a message, in buf:
 * control bytes become '?', and text longer than 40 bytes (or than buf)
 * is cut at a UTF-8 boundary and ends with "...".  Returns buf. */
const char *qp_excerpt(const char *s, size_t n, char *buf, size_t len);

/* Maps keyed by record id, whatever case the id was typed in (ids are
 * UUIDs; records may hold references as a user typed them): the key is
 * the id with ASCII letters lowered.  qp_id_set steals v. */
json_t *qp_id_get(const json_t *map, const char *id);
void qp_id_set(json_t *map, const char *id, json_t *v);

/* snprintf into a fixed buffer, never overflowing; returns buf. */
char *qp_fmt(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Numbers are read and written in the C locale whatever the process set: a
 * tablet configured for es_PE must still read and write "2.5".  Between
 * qp_cloc_enter and qp_cloc_leave the calling thread (only it: uselocale)
 * uses the C locale; if it cannot be made, nothing changes. */
typedef struct qp_cloc {
	locale_t c, old;
} qp_cloc;

void qp_cloc_enter(qp_cloc *l);
void qp_cloc_leave(qp_cloc *l);

/* Nanoseconds of the monotonic clock (for durations and deadlines). */
uint64_t qp_mono_ns(void);

#endif
