/* check_uuid.c - covers proto/uuid.c: UUIDv7 generation, text form. */
#include <string.h>

#include "delta.h"
#include "err.h"
#include "suites.h"
#include "uuid.h"

static uint64_t id_ms(const uint8_t id[QP_UUID_LEN])
{
	uint64_t ms = 0;
	for (int i = 0; i < 6; i++)
		ms = ms << 8 | id[i];
	return ms;
}

static void check_bits(const uint8_t id[QP_UUID_LEN])
{
	ck_assert_int_eq(id[6] >> 4, 7);       /* version */
	ck_assert_int_eq(id[8] >> 6, 2);       /* variant 10 */
}

START_TEST(test_layout)
{
	qp_uuid_gen g = {0};
	uint8_t a[QP_UUID_LEN], b[QP_UUID_LEN];
	uint64_t now = UINT64_C(1763899200123);

	ck_assert_int_eq(qp_crypto_init(), 0);
	qp_uuid_v7(&g, now, a);
	check_bits(a);
	ck_assert_uint_eq(id_ms(a), now);
	/* Two generators at the same time draw different random bits. */
	{
		qp_uuid_gen g2 = {0};
		qp_uuid_v7(&g2, now, b);
		ck_assert_int_ne(memcmp(a, b, QP_UUID_LEN), 0);
	}
}
END_TEST

START_TEST(test_monotonic_same_ms)
{
	qp_uuid_gen g = {0};
	uint8_t prev[QP_UUID_LEN], cur[QP_UUID_LEN];
	uint64_t now = UINT64_C(1763899200000);

	qp_uuid_v7(&g, now, prev);
	for (int i = 0; i < 10000; i++) {
		qp_uuid_v7(&g, now, cur);
		check_bits(cur);
		ck_assert_uint_eq(id_ms(cur), now);
		ck_assert_int_lt(memcmp(prev, cur, QP_UUID_LEN), 0);
		memcpy(prev, cur, QP_UUID_LEN);
	}
}
END_TEST

START_TEST(test_clock_backwards)
{
	qp_uuid_gen g = {0};
	uint8_t a[QP_UUID_LEN], b[QP_UUID_LEN], c[QP_UUID_LEN];

	qp_uuid_v7(&g, 5000, a);
	qp_uuid_v7(&g, 4000, b); /* wall clock stepped back */
	qp_uuid_v7(&g, 5001, c);
	ck_assert_int_lt(memcmp(a, b, QP_UUID_LEN), 0);
	ck_assert_int_lt(memcmp(b, c, QP_UUID_LEN), 0);
	ck_assert_uint_eq(id_ms(b), 5000);
	ck_assert_uint_eq(id_ms(c), 5001);
	check_bits(b);
}
END_TEST

/* When the 74 random bits are exhausted the millisecond moves on. */
START_TEST(test_counter_overflow)
{
	qp_uuid_gen g = {0};
	uint8_t a[QP_UUID_LEN], b[QP_UUID_LEN];

	qp_uuid_v7(&g, 777, a);
	g.last[6] = 0x7f;
	g.last[7] = 0xff;
	g.last[8] = 0xbf;
	memset(g.last + 9, 0xff, 7);
	memcpy(a, g.last, QP_UUID_LEN);
	qp_uuid_v7(&g, 777, b);
	check_bits(b);
	ck_assert_uint_eq(id_ms(b), 778);
	ck_assert_int_lt(memcmp(a, b, QP_UUID_LEN), 0);

	/* A carry across the variant bits keeps them intact. */
	g.last[8] = 0xbf;
	memset(g.last + 9, 0xff, 7);
	g.last[7] = 0x10;
	qp_uuid_v7(&g, 778, b);
	ck_assert_int_eq(b[7], 0x11);
	ck_assert_int_eq(b[8], 0x80);
	check_bits(b);
}
END_TEST

START_TEST(test_format_parse)
{
	static const uint8_t id[QP_UUID_LEN] = {
		0x01, 0x9a, 0xb3, 0xc4, 0xd5, 0xe6, 0x7f, 0x01,
		0x8a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78};
	char s[QP_UUID_STRLEN + 1];
	uint8_t back[QP_UUID_LEN];

	qp_uuid_format(id, s);
	ck_assert_str_eq(s, "019ab3c4-d5e6-7f01-8abc-def012345678");
	ck_assert_int_eq(qp_uuid_parse(s, back), 0);
	ck_assert_mem_eq(back, id, QP_UUID_LEN);
	memset(back, 0, sizeof(back));
	ck_assert_int_eq(qp_uuid_parse("019AB3C4-D5E6-7F01-8ABC-DEF012345678", back), 0);
	ck_assert_mem_eq(back, id, QP_UUID_LEN);
	/* Other versions are accepted (imported ids keep their form). */
	ck_assert(qp_uuid_valid("123e4567-e89b-12d3-a456-426614174000"));
}
END_TEST

START_TEST(test_parse_refuses)
{
	static const char *bad[] = {
		"",
		"019ab3c4-d5e6-7f01-8abc-def01234567",   /* short */
		"019ab3c4-d5e6-7f01-8abc-def0123456789", /* long */
		"019ab3c4d5e6-7f01-8abc-def0123456789",  /* hyphen missing */
		"019ab3c4-d5e6-7f01-8abc-def01234567g",  /* not hex */
		"019ab3c4_d5e6-7f01-8abc-def012345678",
		"019ab3c4-d5e6-7f01-8abcdef0-12345678",
		" 019ab3c4-d5e6-7f01-8abc-def01234567",
	};
	uint8_t out[QP_UUID_LEN], keep[QP_UUID_LEN];

	memset(out, 0xaa, sizeof(out));
	memcpy(keep, out, sizeof(out));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(qp_uuid_parse(bad[i], out), QP_EPROTO);
		ck_assert(!qp_uuid_valid(bad[i]));
	}
	ck_assert_int_eq(qp_uuid_parse(NULL, out), QP_EPROTO);
	ck_assert_mem_eq(out, keep, sizeof(out)); /* untouched on failure */
}
END_TEST

START_TEST(test_generated_roundtrip)
{
	qp_uuid_gen g = {0};
	uint8_t id[QP_UUID_LEN], back[QP_UUID_LEN];
	char s[QP_UUID_STRLEN + 1];

	for (int i = 0; i < 100; i++) {
		qp_uuid_v7(&g, 1700000000000u + (uint64_t)(i / 10), id);
		qp_uuid_format(id, s);
		ck_assert_uint_eq(strlen(s), QP_UUID_STRLEN);
		ck_assert(qp_uuid_valid(s));
		ck_assert_int_eq(qp_uuid_parse(s, back), 0);
		ck_assert_mem_eq(back, id, QP_UUID_LEN);
	}
}
END_TEST

static void setup(void)
{
	ck_assert_int_eq(qp_crypto_init(), 0);
}

Suite *suite_uuid(void)
{
	Suite *s = suite_create("uuid");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_layout);
	tcase_add_test(tc, test_monotonic_same_ms);
	tcase_add_test(tc, test_clock_backwards);
	tcase_add_test(tc, test_counter_overflow);
	tcase_add_test(tc, test_format_parse);
	tcase_add_test(tc, test_parse_refuses);
	tcase_add_test(tc, test_generated_roundtrip);
	suite_add_tcase(s, tc);
	return s;
}
