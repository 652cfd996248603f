/* check_hlc.c - covers proto/hlc.c: the hybrid logical clock. */
#include <string.h>

#include "hlc.h"
#include "suites.h"

START_TEST(test_packing)
{
	uint64_t t = QP_HLC_MAKE(UINT64_C(1763899200123), 7);
	ck_assert_uint_eq(QP_HLC_MS(t), UINT64_C(1763899200123));
	ck_assert_uint_eq(QP_HLC_COUNT(t), 7);
	/* Later ms beats any counter. */
	ck_assert_uint_lt(QP_HLC_MAKE(10, 0xffff), QP_HLC_MAKE(11, 0));
}
END_TEST

START_TEST(test_now_follows_wall)
{
	qp_hlc c = {0};
	uint64_t a = qp_hlc_now(&c, 1000);
	uint64_t b = qp_hlc_now(&c, 1000);
	uint64_t d = qp_hlc_now(&c, 1005);

	ck_assert_uint_eq(a, QP_HLC_MAKE(1000, 0));
	ck_assert_uint_eq(b, QP_HLC_MAKE(1000, 1));
	ck_assert_uint_eq(d, QP_HLC_MAKE(1005, 0));
	ck_assert_uint_eq(c.last, d);
}
END_TEST

START_TEST(test_wall_backwards)
{
	qp_hlc c = {0};
	uint64_t prev = qp_hlc_now(&c, 50000000);

	/* The wall clock jumps back an hour: time keeps moving forward. */
	for (int i = 0; i < 1000; i++) {
		uint64_t t = qp_hlc_now(&c, 50000000 - 3600000u + (uint64_t)i);
		ck_assert_uint_gt(t, prev);
		ck_assert_uint_eq(QP_HLC_MS(t), 50000000);
		prev = t;
	}
	ck_assert_uint_eq(QP_HLC_COUNT(prev), 1000);
	/* Once the wall clock passes the old time again, it takes over. */
	ck_assert_uint_eq(qp_hlc_now(&c, 50000001), QP_HLC_MAKE(50000001, 0));
}
END_TEST

START_TEST(test_counter_overflow)
{
	qp_hlc c = {QP_HLC_MAKE(2000, 0xfffe)};
	uint64_t a = qp_hlc_now(&c, 2000);
	uint64_t b = qp_hlc_now(&c, 2000);
	uint64_t d = qp_hlc_now(&c, 2000);

	ck_assert_uint_eq(a, QP_HLC_MAKE(2000, 0xffff));
	ck_assert_uint_eq(b, QP_HLC_MAKE(2001, 0));
	ck_assert_uint_eq(d, QP_HLC_MAKE(2001, 1));
}
END_TEST

START_TEST(test_behind)
{
	uint64_t t = QP_HLC_MAKE(5000000, 7);

	ck_assert_uint_eq(qp_hlc_behind_ms(t, 4000000), 1000000);
	ck_assert_uint_eq(qp_hlc_behind_ms(t, 5000000), 0);
	ck_assert_uint_eq(qp_hlc_behind_ms(t, 6000000), 0);
	ck_assert_uint_eq(qp_hlc_behind_ms(0, 0), 0);
	ck_assert_uint_gt(QP_HLC_BEHIND_WRONG_MS, QP_HLC_AHEAD_MAX_MS);
}
END_TEST

START_TEST(test_observe)
{
	qp_hlc c = {0};
	uint64_t remote = QP_HLC_MAKE(90000, 42), t;

	qp_hlc_now(&c, 1000);
	qp_hlc_observe(&c, remote);
	t = qp_hlc_now(&c, 1001); /* local clock is behind the remote one */
	ck_assert_uint_eq(t, QP_HLC_MAKE(90000, 43));
	/* An older remote value changes nothing. */
	qp_hlc_observe(&c, QP_HLC_MAKE(5, 0));
	ck_assert_uint_eq(c.last, t);
	ck_assert_uint_gt(qp_hlc_now(&c, 1002), t);
	/* Observing the value just issued still yields a greater one. */
	qp_hlc_observe(&c, c.last);
	ck_assert_uint_gt(qp_hlc_now(&c, 0), t);
}
END_TEST

START_TEST(test_iso)
{
	char buf[32];

	qp_hlc_iso(QP_HLC_MAKE(UINT64_C(1795435200123), 9), buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-11-23T12:00:00.123Z");
	qp_hlc_iso(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
	qp_hlc_iso(QP_HLC_MAKE(1, 0), buf, 25);
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.001Z");
	qp_hlc_iso(QP_HLC_MAKE(1, 0), buf, 5); /* truncated, terminated */
	ck_assert_str_eq(buf, "1970");
}
END_TEST

START_TEST(test_wall_ms)
{
	uint64_t a = qp_hlc_wall_ms(), b = qp_hlc_wall_ms();
	ck_assert_uint_gt(a, UINT64_C(1600000000000)); /* after 2020 */
	ck_assert_uint_le(a, b + 1000);
}
END_TEST

Suite *suite_hlc(void)
{
	Suite *s = suite_create("hlc");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_packing);
	tcase_add_test(tc, test_now_follows_wall);
	tcase_add_test(tc, test_wall_backwards);
	tcase_add_test(tc, test_counter_overflow);
	tcase_add_test(tc, test_observe);
	tcase_add_test(tc, test_iso);
	tcase_add_test(tc, test_behind);
	tcase_add_test(tc, test_wall_ms);
	suite_add_tcase(s, tc);
	return s;
}
