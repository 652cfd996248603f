/*
 * uuid.h - UUIDv7 record identifiers (RFC 9562).
 *
 * An id is made by the device that creates the record: 48-bit Unix
 * milliseconds, version 7, 74 random bits (libsodium randombytes).  Ids made
 * by one process are strictly increasing even within one millisecond (the
 * random part is incremented), so ids sort by creation.  Text form is the
 * canonical lower-case 8-4-4-4-12 (36 characters).
 */
#ifndef QP_UUID_H
#define QP_UUID_H

#include <stdint.h>

#define QP_UUID_LEN 16
#define QP_UUID_STRLEN 36 /* without NUL */

typedef struct qp_uuid_gen {
	uint64_t last_ms;
	uint8_t last[QP_UUID_LEN];
} qp_uuid_gen; /* zero-initialise before first use */

/* Make a new id for wall-clock time now_ms into out. */
void qp_uuid_v7(qp_uuid_gen *g, uint64_t now_ms, uint8_t out[QP_UUID_LEN]);

/* Format as 36 characters plus NUL into out (37 bytes). */
void qp_uuid_format(const uint8_t id[QP_UUID_LEN], char out[QP_UUID_STRLEN + 1]);

/* Parse canonical text (any case, hyphens required).  Returns 0 or QP_EPROTO.
 * Accepts any version, so records imported from elsewhere keep their ids. */
int qp_uuid_parse(const char *s, uint8_t out[QP_UUID_LEN]);

/* Nonzero when s is a well-formed id in text form. */
int qp_uuid_valid(const char *s);

#endif
