/*
 * mpjson.c - jansson values to msgpack and back; see mpjson.h.
 *
 * Decoding runs in two passes.  qp__mpjson_check walks the raw bytes once,
 * allocating nothing, and proves that every declared length and element
 * count fits in the input and that nesting is bounded.  Only then does
 * msgpack-c unpack the bytes: its unpacker allocates each container's
 * element array up front from the declared count, so a five-byte input
 * claiming four billion elements must never reach it.  After the check the
 * total number of elements is at most the number of input bytes, which
 * bounds everything msgpack-c and jansson allocate.
 */
#include "mpjson.h"
#include "err.h"
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Deepest nesting qp__mpjson_check can track (delta bodies nest two levels
 * above a record payload). */
#define QP__CHECK_STACK 64
/* First zone chunk for one decode; msgpack-c grows it as needed. */
#define QP__ZONE_CHUNK 2048

static uint64_t get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int qp__mpjson_check(const char *buf, size_t len, int max_depth, size_t *used)
{
	const uint8_t *start = (const uint8_t *)buf;
	const uint8_t *p = start, *end = start + len;
	uint64_t left[QP__CHECK_STACK]; /* values still due per open container */
	int top = 0;

	if (max_depth < 0 || max_depth > QP__CHECK_STACK)
		return QP_EINVAL;
	if (buf == NULL)
		return QP_EPROTO;
	for (;;) {
		uint64_t skip = 0, count = 0;
		size_t lenbytes = 0;
		int container = 0, map = 0;
		uint8_t b;

		if (p == end)
			return QP_EPROTO;
		b = *p++;
		if (b <= 0x7f || b >= 0xe0) {
			/* positive or negative fixint */
		} else if (b <= 0x8f) {
			container = map = 1;
			count = b & 0x0f;
		} else if (b <= 0x9f) {
			container = 1;
			count = b & 0x0f;
		} else if (b <= 0xbf) {
			skip = b & 0x1f;
		} else {
			switch (b) {
			case 0xc0: /* nil */
			case 0xc2: /* false */
			case 0xc3: /* true */
				break;
			case 0xc4: /* bin 8 */
			case 0xd9: /* str 8 */
				lenbytes = 1;
				break;
			case 0xc5:
			case 0xda:
				lenbytes = 2;
				break;
			case 0xc6:
			case 0xdb:
				lenbytes = 4;
				break;
			case 0xca: /* float 32 */
				skip = 4;
				break;
			case 0xcb: /* float 64 */
				skip = 8;
				break;
			case 0xcc: /* uint 8..64 */
			case 0xd0: /* int 8..64 */
				skip = 1;
				break;
			case 0xcd:
			case 0xd1:
				skip = 2;
				break;
			case 0xce:
			case 0xd2:
				skip = 4;
				break;
			case 0xcf:
			case 0xd3:
				skip = 8;
				break;
			case 0xdc: /* array 16/32 */
				container = 1;
				lenbytes = 2;
				break;
			case 0xdd:
				container = 1;
				lenbytes = 4;
				break;
			case 0xde: /* map 16/32 */
				container = map = 1;
				lenbytes = 2;
				break;
			case 0xdf:
				container = map = 1;
				lenbytes = 4;
				break;
			default: /* 0xc1 is reserved; ext types have no JSON form */
				return QP_EPROTO;
			}
		}
		if (lenbytes > 0) {
			if ((size_t)(end - p) < lenbytes)
				return QP_EPROTO;
			if (container)
				count = get_be(p, lenbytes);
			else
				skip = get_be(p, lenbytes);
			p += lenbytes;
		}
		if ((uint64_t)(end - p) < skip)
			return QP_EPROTO;
		p += skip;
		if (container) {
			if (map)
				count *= 2; /* at most 2^33: no overflow */
			if (top >= max_depth)
				return QP_EPROTO;
			/* Every element takes at least one byte. */
			if (count > (uint64_t)(end - p))
				return QP_EPROTO;
			if (count > 0) {
				left[top++] = count;
				continue;
			}
		}
		/* One value is complete; close the containers it completes. */
		for (;;) {
			if (top == 0) {
				*used = (size_t)(p - start);
				return 0;
			}
			if (--left[top - 1] > 0)
				break;
			top--;
		}
	}
}

static int pack_value(msgpack_packer *pk, const json_t *v, int depth);

static int pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	if (n > UINT32_MAX)
		return QP_EINVAL;
	if (msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0)
		return QP_ENOMEM;
	return 0;
}

static int pack_object(msgpack_packer *pk, const json_t *v, int depth)
{
	/* jansson's iterator API is not const-qualified but does not modify. */
	json_t *o = (json_t *)v;
	size_t n = json_object_size(o);
	int rc;

	if (n > UINT32_MAX)
		return QP_EINVAL;
	if (msgpack_pack_map(pk, n) != 0)
		return QP_ENOMEM;
	for (void *it = json_object_iter(o); it != NULL;
	     it = json_object_iter_next(o, it)) {
		rc = pack_str(pk, json_object_iter_key(it),
			      json_object_iter_key_len(it));
		if (rc == 0)
			rc = pack_value(pk, json_object_iter_value(it), depth + 1);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int pack_array(msgpack_packer *pk, const json_t *v, int depth)
{
	size_t n = json_array_size(v);
	int rc;

	if (n > UINT32_MAX)
		return QP_EINVAL;
	if (msgpack_pack_array(pk, n) != 0)
		return QP_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		rc = pack_value(pk, json_array_get(v, i), depth + 1);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* depth counts the containers enclosing v.  Refusing what the decoder would
 * refuse keeps every encoding decodable (and stops on a cyclic value). */
static int pack_value(msgpack_packer *pk, const json_t *v, int depth)
{
	int r;

	if (v == NULL)
		return QP_EINVAL;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (depth >= QP_MPJSON_MAX_DEPTH)
			return QP_EINVAL;
		return pack_object(pk, v, depth);
	case JSON_ARRAY:
		if (depth >= QP_MPJSON_MAX_DEPTH)
			return QP_EINVAL;
		return pack_array(pk, v, depth);
	case JSON_STRING:
		return pack_str(pk, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		r = msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
		break;
	case JSON_REAL:
		r = msgpack_pack_double(pk, json_real_value(v));
		break;
	case JSON_TRUE:
		r = msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		r = msgpack_pack_false(pk);
		break;
	case JSON_NULL:
		r = msgpack_pack_nil(pk);
		break;
	default:
		return QP_EINVAL;
	}
	return r == 0 ? 0 : QP_ENOMEM;
}

/* Append the msgpack encoding of v to pk.  Returns 0, QP_EINVAL (NULL, nesting
 * deeper than QP_MPJSON_MAX_DEPTH, a string or container too large for
 * msgpack) or QP_ENOMEM (the packer's writer failed).  On error pk may hold
 * a partial encoding. */
int qp_mpjson_pack(msgpack_packer *pk, const json_t *v)
{
	if (pk == NULL)
		return QP_EINVAL;
	return pack_value(pk, v, 0);
}

/* Encode v into a new malloc'd buffer (*out, *outlen), written only on
 * success.  Errors as qp_mpjson_pack. */
int qp_mpjson_encode(const json_t *v, char **out, size_t *outlen)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	rc = qp_mpjson_pack(&pk, v);
	if (rc != 0) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	*outlen = sb.size;
	*out = msgpack_sbuffer_release(&sb);
	return 0;
}

static int from_obj(const msgpack_object *o, int depth, json_t **out);

static int from_str(const char *s, size_t n, json_t **out)
{
	/* json_stringn refuses invalid UTF-8; it also fails on OOM, which
	 * cannot be told apart and is reported as malformed input. */
	json_t *v = json_stringn(n > 0 ? s : "", n);
	if (v == NULL)
		return QP_EPROTO;
	*out = v;
	return 0;
}

static int from_bin(const char *s, size_t n, json_t **out)
{
	char small[129];
	char *hex = small;
	json_t *v;

	if (n > (SIZE_MAX - 1) / 2)
		return QP_ETOOBIG;
	if (2 * n + 1 > sizeof(small))
		hex = qp_xmalloc(2 * n + 1);
	qp_hex((const uint8_t *)s, n, hex);
	v = json_stringn_nocheck(hex, 2 * n);
	if (hex != small)
		free(hex);
	if (v == NULL)
		return QP_ENOMEM;
	*out = v;
	return 0;
}

static int from_array(const msgpack_object *o, int depth, json_t **out)
{
	json_t *a = json_array(), *item;
	int rc;

	if (a == NULL)
		return QP_ENOMEM;
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		rc = from_obj(&o->via.array.ptr[i], depth + 1, &item);
		if (rc != 0)
			goto fail;
		if (json_array_append_new(a, item) != 0) {
			rc = QP_ENOMEM;
			goto fail;
		}
	}
	*out = a;
	return 0;
fail:
	json_decref(a);
	return rc;
}

static int from_map(const msgpack_object *o, int depth, json_t **out)
{
	json_t *m = json_object(), *val;
	int rc;

	if (m == NULL)
		return QP_ENOMEM;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		const char *k = kv->key.via.str.ptr;
		size_t klen = kv->key.via.str.size, before;

		rc = QP_EPROTO;
		if (kv->key.type != MSGPACK_OBJECT_STR)
			goto fail;
		if (klen == 0)
			k = "";
		/* jansson keys are read back as C strings by most callers: a
		 * key with a NUL inside would alias a shorter one. */
		if (memchr(k, '\0', klen) != NULL)
			goto fail;
		rc = from_obj(&kv->val, depth + 1, &val);
		if (rc != 0)
			goto fail;
		before = json_object_size(m);
		/* setn_new checks the key's UTF-8 and consumes val either way;
		 * a duplicate replaces the earlier value, leaving the size. */
		if (json_object_setn_new(m, k, klen, val) != 0 ||
		    json_object_size(m) == before) {
			rc = QP_EPROTO;
			goto fail;
		}
	}
	*out = m;
	return 0;
fail:
	json_decref(m);
	return rc;
}

/* depth counts the containers enclosing o. */
static int from_obj(const msgpack_object *o, int depth, json_t **out)
{
	json_t *v;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		v = json_null();
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		v = json_boolean(o->via.boolean);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		/* jansson integers are int64: refuse rather than wrap. */
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return QP_EPROTO;
		v = json_integer((json_int_t)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		v = json_integer((json_int_t)o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (!isfinite(o->via.f64))
			return QP_EPROTO; /* JSON has no NaN or infinity */
		v = json_real(o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
		return from_str(o->via.str.ptr, o->via.str.size, out);
	case MSGPACK_OBJECT_BIN:
		return from_bin(o->via.bin.ptr, o->via.bin.size, out);
	case MSGPACK_OBJECT_ARRAY:
		if (depth >= QP_MPJSON_MAX_DEPTH)
			return QP_EPROTO;
		return from_array(o, depth, out);
	case MSGPACK_OBJECT_MAP:
		if (depth >= QP_MPJSON_MAX_DEPTH)
			return QP_EPROTO;
		return from_map(o, depth, out);
	default:
		return QP_EPROTO;
	}
	if (v == NULL)
		return QP_ENOMEM;
	*out = v;
	return 0;
}

/* Convert an unpacked msgpack object; *out (new reference) written only on
 * success.  Errors: QP_EPROTO (non-string or duplicate keys, invalid UTF-8,
 * integers beyond int64, non-finite floats, ext, nesting deeper than
 * QP_MPJSON_MAX_DEPTH), QP_ENOMEM. */
int qp_mpjson_from_object(const msgpack_object *o, json_t **out)
{
	if (o == NULL || out == NULL)
		return QP_EINVAL;
	return from_obj(o, 0, out);
}

/* Decode exactly one value filling buf[0..len); see mpjson.h for the rules.
 * Errors: QP_ETOOBIG (len > max_len), QP_EPROTO, QP_ENOMEM. */
int qp_mpjson_decode(const char *buf, size_t len, size_t max_len, json_t **out)
{
	msgpack_zone zone;
	msgpack_object obj;
	size_t used = 0, off = 0;
	int rc;

	if (len > max_len)
		return QP_ETOOBIG;
	if (buf == NULL || len == 0)
		return QP_EPROTO;
	rc = qp__mpjson_check(buf, len, QP_MPJSON_MAX_DEPTH, &used);
	if (rc != 0)
		return rc;
	if (used != len)
		return QP_EPROTO; /* trailing bytes */
	if (!msgpack_zone_init(&zone, QP__ZONE_CHUNK))
		return QP_ENOMEM;
	switch (msgpack_unpack(buf, len, &off, &zone, &obj)) {
	case MSGPACK_UNPACK_SUCCESS:
		rc = from_obj(&obj, 0, out);
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		rc = QP_ENOMEM;
		break;
	default:
		rc = QP_EPROTO; /* unreachable after the check */
		break;
	}
	msgpack_zone_destroy(&zone);
	return rc;
}
