/* check_mpjson.c - covers proto/mpjson.c: JSON <-> msgpack, strict decoding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "mpjson.h"
#include "suites.h"

#define BIG ((size_t)1 << 20)

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
	ck_assert_msg(v != NULL, "bad test JSON: %s", e.text);
	return v;
}

static int decode(const void *buf, size_t len, json_t **out)
{
	return qp_mpjson_decode(buf, len, BIG, out);
}

/* Decode and expect the given code (and no value). */
static void refuse(const void *buf, size_t len, int code)
{
	json_t *v = NULL;
	ck_assert_int_eq(decode(buf, len, &v), code);
	ck_assert_ptr_null(v);
}

static const char *samples[] = {
	"{\"a\": 1}",
	"[]",
	"{}",
	"null",
	"true",
	"\"\"",
	"-1",
	"0.5",
	"{\"name\": \"Quispe Mamani, Juana\", \"dni\": \"40123456\", "
	"\"sex\": \"F\", \"birth_year\": 1971, \"community\": \"Ñuñoa\"}",
	"{\"geometry\": {\"type\": \"Polygon\", \"coordinates\": "
	"[[[-72.123456, -13.123456], [-72.123457, -13.123456], "
	"[-72.123457, -13.123457], [-72.123456, -13.123456]]]}, "
	"\"area_ha\": 2.75, \"accuracy_m\": 3, \"tenure\": null}",
	"[9223372036854775807, -9223372036854775808, 0, 127, 128, 255, 256, "
	"65535, 65536, 4294967295, 4294967296, -32, -33, -128, -129, -32768, "
	"-32769, -2147483648, -2147483649]",
	"[1e300, -1e-300, 3.141592653589793, -0.0, 1.0]",
	"{\"quality\": {\"score\": 84.5, \"defects\": [], \"notes\": {}, "
	"\"ok\": true, \"flag\": false}, \"emoji\": \"\\ud83c\\udf31 café\"}",
	"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
};

START_TEST(test_roundtrip)
{
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		json_t *v = parse(samples[i]), *back = NULL;
		char *buf = NULL;
		size_t len = 0;

		ck_assert_int_eq(qp_mpjson_encode(v, &buf, &len), 0);
		ck_assert_uint_gt(len, 0);
		ck_assert_int_eq(decode(buf, len, &back), 0);
		ck_assert_msg(json_equal(v, back), "sample %zu differs", i);
		json_decref(back);
		free(buf);
		json_decref(v);
	}
}
END_TEST

START_TEST(test_exact_bytes)
{
	json_t *v = parse("{\"a\": 1, \"b\": [true, null], \"c\": -1}");
	static const uint8_t want[] = {0x83, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92,
				       0xc3, 0xc0, 0xa1, 'c', 0xff};
	char *buf;
	size_t len;

	/* Key order follows insertion; integers use the shortest form. */
	ck_assert_int_eq(qp_mpjson_encode(v, &buf, &len), 0);
	ck_assert_uint_eq(len, sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));
	free(buf);
	json_decref(v);
}
END_TEST

START_TEST(test_pack_into_packer)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	json_t *a = parse("{\"x\": \"y\"}"), *b = parse("[1, 2]");
	json_t *da = NULL, *db = NULL;
	size_t alen;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	ck_assert_int_eq(qp_mpjson_pack(&pk, a), 0);
	alen = sb.size;
	ck_assert_int_eq(qp_mpjson_pack(&pk, b), 0);
	ck_assert_int_eq(qp_mpjson_pack(&pk, NULL), QP_EINVAL);
	/* Two values back to back: one alone is fine, both is trailing. */
	ck_assert_int_eq(decode(sb.data, alen, &da), 0);
	ck_assert_int_eq(decode(sb.data + alen, sb.size - alen, &db), 0);
	ck_assert(json_equal(a, da));
	ck_assert(json_equal(b, db));
	refuse(sb.data, sb.size, QP_EPROTO);
	json_decref(da);
	json_decref(db);
	json_decref(a);
	json_decref(b);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_truncated)
{
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		json_t *v = parse(samples[i]);
		char *buf, *copy;
		size_t len;

		ck_assert_int_eq(qp_mpjson_encode(v, &buf, &len), 0);
		for (size_t n = 0; n < len; n++) {
			/* Exact-size copies so ASan sees any over-read. */
			copy = malloc(n ? n : 1);
			memcpy(copy, buf, n);
			refuse(copy, n, QP_EPROTO);
			free(copy);
		}
		free(buf);
		json_decref(v);
	}
}
END_TEST

START_TEST(test_trailing)
{
	static const uint8_t one_extra[] = {0x81, 0xa1, 'a', 0x01, 0x00};
	static const uint8_t two_values[] = {0x01, 0x02};
	json_t *v = NULL;

	refuse(one_extra, sizeof(one_extra), QP_EPROTO);
	refuse(two_values, sizeof(two_values), QP_EPROTO);
	ck_assert_int_eq(decode(one_extra, sizeof(one_extra) - 1, &v), 0);
	json_decref(v);
}
END_TEST

START_TEST(test_size_limit)
{
	static const uint8_t s[] = {0xa5, 'h', 'e', 'l', 'l', 'o'};
	json_t *v = NULL;

	ck_assert_int_eq(qp_mpjson_decode((const char *)s, sizeof(s), 5, &v),
			 QP_ETOOBIG);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(qp_mpjson_decode((const char *)s, sizeof(s), 6, &v), 0);
	ck_assert_str_eq(json_string_value(v), "hello");
	json_decref(v);
	refuse(s, 0, QP_EPROTO);
	refuse(NULL, 0, QP_EPROTO);
}
END_TEST

static void nested(uint8_t *buf, int depth, uint8_t open)
{
	for (int i = 0; i < depth - 1; i++)
		buf[i] = open; /* one-element container */
	buf[depth - 1] = open & 0xf0; /* empty innermost */
}

START_TEST(test_depth)
{
	uint8_t buf[4096];
	json_t *v = NULL;

	nested(buf, QP_MPJSON_MAX_DEPTH, 0x91);
	ck_assert_int_eq(decode(buf, QP_MPJSON_MAX_DEPTH, &v), 0);
	json_decref(v);
	nested(buf, QP_MPJSON_MAX_DEPTH + 1, 0x91);
	refuse(buf, QP_MPJSON_MAX_DEPTH + 1, QP_EPROTO);
	/* Deep enough to blow a naive recursive decoder's stack. */
	memset(buf, 0x91, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = 0xc0;
	refuse(buf, sizeof(buf), QP_EPROTO);

	/* Maps: {"": {"": ... {}}} */
	for (int i = 0; i < QP_MPJSON_MAX_DEPTH; i++) {
		buf[2 * i] = 0x81;
		buf[2 * i + 1] = 0xa0;
	}
	buf[2 * (QP_MPJSON_MAX_DEPTH - 1)] = 0x80;
	ck_assert_int_eq(decode(buf, 2 * (QP_MPJSON_MAX_DEPTH - 1) + 1, &v), 0);
	json_decref(v);
	buf[2 * (QP_MPJSON_MAX_DEPTH - 1)] = 0x81;
	buf[2 * QP_MPJSON_MAX_DEPTH] = 0x80;
	refuse(buf, 2 * QP_MPJSON_MAX_DEPTH + 1, QP_EPROTO);
}
END_TEST

START_TEST(test_encode_depth)
{
	json_t *v = json_array(), *inner = v;
	char *buf = NULL;
	size_t len;

	for (int i = 1; i < QP_MPJSON_MAX_DEPTH; i++) {
		json_t *a = json_array();
		json_array_append_new(inner, a);
		inner = a;
	}
	ck_assert_int_eq(qp_mpjson_encode(v, &buf, &len), 0);
	free(buf);
	buf = NULL;
	json_array_append_new(inner, json_object());
	ck_assert_int_eq(qp_mpjson_encode(v, &buf, &len), QP_EINVAL);
	ck_assert_ptr_null(buf);
	json_decref(v);
}
END_TEST

/* A five-byte input declaring 2^32-1 elements must be refused by the
 * pre-check, not by an allocation failing (that would be QP_ENOMEM). */
START_TEST(test_huge_count)
{
	static const uint8_t arr[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00};
	static const uint8_t map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa0, 0x00};
	static const uint8_t arr16[] = {0xdc, 0xff, 0xff, 0x01, 0x02};
	static const uint8_t mid[] = {0x92, 0xdd, 0x01, 0x00, 0x00, 0x00, 0xc0};
	static const uint8_t str[] = {0xdb, 0xff, 0xff, 0xff, 0xf0, 'a'};
	static const uint8_t bin[] = {0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00};
	size_t used = 0;
	int limited = 0;
#ifndef __SANITIZE_ADDRESS__
	struct rlimit old, lim;
	/* Outside ASan (which reserves terabytes), cap the address space a
	 * little above what the process uses, so a large allocation fails. */
	const char *fork_env = getenv("CK_FORK");
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;
	if (f != NULL && fscanf(f, "%lu", &pages) == 1 &&
	    (fork_env == NULL || strcmp(fork_env, "no") != 0) &&
	    getrlimit(RLIMIT_AS, &old) == 0) {
		lim = old;
		lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) +
			       (64u << 20);
		limited = setrlimit(RLIMIT_AS, &lim) == 0;
	}
	if (f != NULL)
		fclose(f);
#endif
	refuse(arr, sizeof(arr), QP_EPROTO);
	refuse(map, sizeof(map), QP_EPROTO);
	refuse(arr16, sizeof(arr16), QP_EPROTO);
	refuse(mid, sizeof(mid), QP_EPROTO);
	refuse(str, sizeof(str), QP_EPROTO);
	refuse(bin, sizeof(bin), QP_EPROTO);
	ck_assert_int_eq(qp__mpjson_check((const char *)arr, sizeof(arr), 32,
					  &used), QP_EPROTO);
#ifndef __SANITIZE_ADDRESS__
	if (limited)
		setrlimit(RLIMIT_AS, &old);
#endif
	(void)limited;
}
END_TEST

START_TEST(test_garbage)
{
	static const uint8_t reserved[] = {0xc1};
	static const uint8_t fixext[] = {0xd4, 0x01, 0x02};
	static const uint8_t ext8[] = {0xc7, 0x01, 0x05, 0x00};
	static const uint8_t nan[] = {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
	static const uint8_t inf[] = {0xca, 0x7f, 0x80, 0, 0};
	json_t *v;
	uint8_t buf[64];
	unsigned seed = 12345;

	refuse(reserved, sizeof(reserved), QP_EPROTO);
	refuse(fixext, sizeof(fixext), QP_EPROTO);
	refuse(ext8, sizeof(ext8), QP_EPROTO);
	refuse(nan, sizeof(nan), QP_EPROTO);
	refuse(inf, sizeof(inf), QP_EPROTO);
	/* Random bytes: never a crash, and a clean result either way. */
	for (int i = 0; i < 20000; i++) {
		size_t n = 1 + (size_t)(rand_r(&seed) % sizeof(buf));
		int rc;
		for (size_t j = 0; j < n; j++)
			buf[j] = (uint8_t)rand_r(&seed);
		v = NULL;
		rc = decode(buf, n, &v);
		ck_assert(rc == 0 || rc == QP_EPROTO);
		ck_assert((rc == 0) == (v != NULL));
		json_decref(v);
	}
}
END_TEST

START_TEST(test_keys)
{
	static const uint8_t dup[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02};
	static const uint8_t intkey[] = {0x81, 0x01, 0x02};
	static const uint8_t binkey[] = {0x81, 0xc4, 0x01, 'a', 0x02};
	static const uint8_t nulkey[] = {0x81, 0xa3, 'a', 0x00, 'b', 0x02};
	static const uint8_t badkey[] = {0x81, 0xa1, 0xff, 0x02};
	static const uint8_t okdup_nested[] = {0x82, 0xa1, 'a', 0x81, 0xa1, 'a',
					       0x01, 0xa1, 'b', 0x81, 0xa1, 'a',
					       0x02};
	static const uint8_t empty_key[] = {0x81, 0xa0, 0x01};
	json_t *v = NULL;

	refuse(dup, sizeof(dup), QP_EPROTO);
	refuse(intkey, sizeof(intkey), QP_EPROTO);
	refuse(binkey, sizeof(binkey), QP_EPROTO);
	refuse(nulkey, sizeof(nulkey), QP_EPROTO);
	refuse(badkey, sizeof(badkey), QP_EPROTO);
	ck_assert_int_eq(decode(okdup_nested, sizeof(okdup_nested), &v), 0);
	json_decref(v);
	ck_assert_int_eq(decode(empty_key, sizeof(empty_key), &v), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(v, "")), 1);
	json_decref(v);
}
END_TEST

START_TEST(test_utf8)
{
	static const uint8_t bad_byte[] = {0xa2, 'a', 0xff};
	static const uint8_t overlong[] = {0xa2, 0xc0, 0x80};
	static const uint8_t surrogate[] = {0xa3, 0xed, 0xa0, 0x80};
	static const uint8_t cut[] = {0xa2, 0xc3, 'a'};
	static const uint8_t ok[] = {0xa4, 'a', 0xc3, 0xb1, 'o'};
	static const uint8_t nul[] = {0xa3, 'a', 0x00, 'b'};
	json_t *v = NULL;

	refuse(bad_byte, sizeof(bad_byte), QP_EPROTO);
	refuse(overlong, sizeof(overlong), QP_EPROTO);
	refuse(surrogate, sizeof(surrogate), QP_EPROTO);
	refuse(cut, sizeof(cut), QP_EPROTO);
	ck_assert_int_eq(decode(ok, sizeof(ok), &v), 0);
	ck_assert_str_eq(json_string_value(v), "a\xc3\xb1o");
	json_decref(v);
	/* NUL inside a string value is kept (jansson knows its length). */
	ck_assert_int_eq(decode(nul, sizeof(nul), &v), 0);
	ck_assert_uint_eq(json_string_length(v), 3);
	json_decref(v);
}
END_TEST

START_TEST(test_numbers)
{
	static const uint8_t u64max[] = {0xcf, 0xff, 0xff, 0xff, 0xff,
					 0xff, 0xff, 0xff, 0xff};
	static const uint8_t over[] = {0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t i64max[] = {0xcf, 0x7f, 0xff, 0xff, 0xff,
					 0xff, 0xff, 0xff, 0xff};
	static const uint8_t i64min[] = {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t f32[] = {0xca, 0x3f, 0xc0, 0x00, 0x00}; /* 1.5 */
	static const uint8_t u8[] = {0xcc, 0x05};                     /* long form */
	json_t *v = NULL;

	refuse(u64max, sizeof(u64max), QP_EPROTO);
	refuse(over, sizeof(over), QP_EPROTO);
	ck_assert_int_eq(decode(i64max, sizeof(i64max), &v), 0);
	ck_assert(json_integer_value(v) == INT64_MAX);
	json_decref(v);
	ck_assert_int_eq(decode(i64min, sizeof(i64min), &v), 0);
	ck_assert(json_integer_value(v) == INT64_MIN);
	json_decref(v);
	ck_assert_int_eq(decode(f32, sizeof(f32), &v), 0);
	ck_assert(json_is_real(v));
	ck_assert(json_real_value(v) == 1.5);
	json_decref(v);
	ck_assert_int_eq(decode(u8, sizeof(u8), &v), 0);
	ck_assert_int_eq(json_integer_value(v), 5);
	json_decref(v);
}
END_TEST

START_TEST(test_bin_hex)
{
	static const uint8_t bin[] = {0xc4, 0x03, 0x01, 0xab, 0xff};
	static const uint8_t empty[] = {0xc4, 0x00};
	uint8_t big[3 + 300];
	json_t *v = NULL;

	ck_assert_int_eq(decode(bin, sizeof(bin), &v), 0);
	ck_assert_str_eq(json_string_value(v), "01abff");
	json_decref(v);
	ck_assert_int_eq(decode(empty, sizeof(empty), &v), 0);
	ck_assert_str_eq(json_string_value(v), "");
	json_decref(v);
	big[0] = 0xc5;
	big[1] = 0x01;
	big[2] = 0x2c;
	memset(big + 3, 0xee, 300);
	ck_assert_int_eq(decode(big, sizeof(big), &v), 0);
	ck_assert_uint_eq(json_string_length(v), 600);
	ck_assert_int_eq(strncmp(json_string_value(v), "eeee", 4), 0);
	json_decref(v);
}
END_TEST

START_TEST(test_from_object)
{
	msgpack_object kv_key = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};
	msgpack_object_kv kv;
	msgpack_object map, str;
	json_t *v = NULL;

	kv_key.via.u64 = 3;
	kv.key = kv_key;
	kv.val.type = MSGPACK_OBJECT_NIL;
	map.type = MSGPACK_OBJECT_MAP;
	map.via.map.size = 1;
	map.via.map.ptr = &kv;
	ck_assert_int_eq(qp_mpjson_from_object(&map, &v), QP_EPROTO);
	ck_assert_ptr_null(v);

	str.type = MSGPACK_OBJECT_STR;
	str.via.str.ptr = "k";
	str.via.str.size = 1;
	kv.key = str;
	ck_assert_int_eq(qp_mpjson_from_object(&map, &v), 0);
	ck_assert(json_is_null(json_object_get(v, "k")));
	json_decref(v);

	map.type = MSGPACK_OBJECT_EXT;
	ck_assert_int_eq(qp_mpjson_from_object(&map, &v), QP_EPROTO);
	ck_assert_int_eq(qp_mpjson_from_object(NULL, &v), QP_EINVAL);
}
END_TEST

Suite *suite_mpjson(void)
{
	Suite *s = suite_create("mpjson");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_exact_bytes);
	tcase_add_test(tc, test_pack_into_packer);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_trailing);
	tcase_add_test(tc, test_size_limit);
	tcase_add_test(tc, test_depth);
	tcase_add_test(tc, test_encode_depth);
	tcase_add_test(tc, test_huge_count);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_keys);
	tcase_add_test(tc, test_utf8);
	tcase_add_test(tc, test_numbers);
	tcase_add_test(tc, test_bin_hex);
	tcase_add_test(tc, test_from_object);
	suite_add_tcase(s, tc);
	return s;
}
