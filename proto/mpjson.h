/*
 * mpjson.h - JSON values (jansson) to msgpack and back.
 *
 * Records and local API messages are JSON objects in memory and msgpack on
 * disk and on the wire.  The mapping is: object <-> map (string keys only),
 * array <-> array, string <-> str, integer <-> int, real <-> float64,
 * true/false/null <-> bool/nil.  msgpack bin is decoded as a string of lower-
 * case hex (it never appears in records).
 *
 * Decoding is strict and bounded: input longer than max_len, nesting deeper
 * than QP_MPJSON_MAX_DEPTH, containers claiming more elements than bytes
 * remain, non-string map keys, duplicate keys, invalid UTF-8 and trailing
 * bytes are all refused with QP_EPROTO (QP_ETOOBIG for the size limit).
 */
#ifndef QP_MPJSON_H
#define QP_MPJSON_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

#define QP_MPJSON_MAX_DEPTH 32

/* Append the msgpack encoding of v to pk.  Returns 0, or QP_EINVAL for a
 * value msgpack cannot hold. */
int qp_mpjson_pack(msgpack_packer *pk, const json_t *v);

/* Encode v into a new buffer.  On success *out (malloc'd, caller frees) and
 * *outlen are set. */
int qp_mpjson_encode(const json_t *v, char **out, size_t *outlen);

/* Decode exactly one value occupying all of buf[0..len).  On success *out is
 * a new reference the caller must json_decref. */
int qp_mpjson_decode(const char *buf, size_t len, size_t max_len, json_t **out);

/* Decode an already-unpacked msgpack object (used by codecs that embed JSON
 * values in larger msgpack structures).  Same rules as qp_mpjson_decode. */
int qp_mpjson_from_object(const msgpack_object *o, json_t **out);

/* Internal (for delta.c): check, without allocating, that buf[0..len) starts
 * with one well-formed msgpack value: every declared length and element count
 * fits in the bytes that remain, containers nest at most max_depth (<= 64)
 * deep, no reserved byte or ext type.  Run before msgpack_unpack, whose
 * allocations follow the declared counts.  On success *used is the length
 * of the value.  Returns 0 or QP_EPROTO (QP_EINVAL for a bad max_depth). */
int qp__mpjson_check(const char *buf, size_t len, int max_depth, size_t *used);

#endif
