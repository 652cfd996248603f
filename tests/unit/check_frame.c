/* check_frame.c - covers proto/frame.c: the length-prefixed frame reader. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "suites.h"

/* Append frame (header + body of n bytes of value c) to buf at *len. */
static void put_frame(uint8_t *buf, size_t *len, uint32_t n, uint8_t c)
{
	qp_frame_header(buf + *len, n);
	memset(buf + *len + QP_FRAME_HDR, c, n);
	*len += QP_FRAME_HDR + n;
}

static void expect_frame(qp_framer *f, uint32_t n, uint8_t c)
{
	const uint8_t *body = NULL;
	uint32_t len = 0;

	ck_assert_int_eq(qp_framer_next(f, &body, &len), 1);
	ck_assert_uint_eq(len, n);
	for (uint32_t i = 0; i < n; i++)
		ck_assert_int_eq(body[i], c);
}

static void expect_none(qp_framer *f)
{
	const uint8_t *body;
	uint32_t len;
	ck_assert_int_eq(qp_framer_next(f, &body, &len), 0);
}

START_TEST(test_header)
{
	uint8_t h[QP_FRAME_HDR];
	qp_framer f;

	qp_frame_header(h, 0x01020304);
	ck_assert_int_eq(h[0], 1);
	ck_assert_int_eq(h[3], 4);
	qp_framer_init(&f, 0);
	ck_assert_uint_eq(f.max, QP_FRAME_MAX_DEFAULT);
	ck_assert_ptr_null(f.buf);
	expect_none(&f);
	qp_framer_free(&f);
	qp_framer_free(NULL);
}
END_TEST

START_TEST(test_one_frame)
{
	uint8_t buf[64];
	size_t len = 0;
	qp_framer f;

	qp_framer_init(&f, 1024);
	put_frame(buf, &len, 5, 'x');
	ck_assert_int_eq(qp_framer_feed(&f, buf, len), 0);
	expect_frame(&f, 5, 'x');
	expect_none(&f);
	ck_assert_int_eq(qp_framer_feed(&f, buf, 0), 0);
	expect_none(&f);
	qp_framer_free(&f);
}
END_TEST

START_TEST(test_many_in_one_feed)
{
	uint8_t buf[4096];
	size_t len = 0;
	qp_framer f;

	qp_framer_init(&f, 1024);
	for (int i = 0; i < 10; i++)
		put_frame(buf, &len, (uint32_t)(1 + i * 30), (uint8_t)('a' + i));
	/* and half of one more */
	put_frame(buf, &len, 100, 'z');
	ck_assert_int_eq(qp_framer_feed(&f, buf, len - 50), 0);
	for (int i = 0; i < 10; i++)
		expect_frame(&f, (uint32_t)(1 + i * 30), (uint8_t)('a' + i));
	expect_none(&f);
	ck_assert_int_eq(qp_framer_feed(&f, buf + len - 50, 50), 0);
	expect_frame(&f, 100, 'z');
	expect_none(&f);
	qp_framer_free(&f);
}
END_TEST

START_TEST(test_byte_by_byte)
{
	uint8_t buf[4096];
	size_t len = 0;
	int got = 0;
	qp_framer f;

	qp_framer_init(&f, 1024);
	for (int i = 0; i < 20; i++)
		put_frame(buf, &len, (uint32_t)(1 + i * 7), (uint8_t)i);
	for (size_t i = 0; i < len; i++) {
		const uint8_t *body;
		uint32_t n;
		int rc;

		ck_assert_int_eq(qp_framer_feed(&f, buf + i, 1), 0);
		while ((rc = qp_framer_next(&f, &body, &n)) == 1) {
			ck_assert_uint_eq(n, (uint32_t)(1 + got * 7));
			ck_assert_int_eq(body[0], got);
			ck_assert_int_eq(body[n - 1], got);
			got++;
		}
		ck_assert_int_eq(rc, 0);
	}
	ck_assert_int_eq(got, 20);
	/* Consumed bytes are dropped: the buffer never held everything. */
	ck_assert_uint_lt(f.cap, len);
	qp_framer_free(&f);
}
END_TEST

START_TEST(test_oversize)
{
	uint8_t h[QP_FRAME_HDR];
	qp_framer f;

	qp_framer_init(&f, 1000);
	qp_frame_header(h, 1001);
	/* Refused from the header alone, before anything is allocated. */
	ck_assert_int_eq(qp_framer_feed(&f, h, sizeof(h)), QP_ETOOBIG);
	ck_assert_ptr_null(f.buf);
	ck_assert_uint_eq(f.cap, 0);
	/* Sticky. */
	ck_assert_int_eq(qp_framer_feed(&f, "x", 1), QP_ETOOBIG);
	{
		const uint8_t *body;
		uint32_t n;
		ck_assert_int_eq(qp_framer_next(&f, &body, &n), QP_ETOOBIG);
	}
	qp_framer_free(&f);

	/* 0xffffffff split across two feeds. */
	qp_framer_init(&f, QP_FRAME_MAX_DEFAULT);
	ck_assert_int_eq(qp_framer_feed(&f, "\xff\xff", 2), 0);
	ck_assert_int_eq(qp_framer_feed(&f, "\xff\xff", 2), QP_ETOOBIG);
	qp_framer_free(&f);
}
END_TEST

START_TEST(test_oversize_after_good)
{
	uint8_t buf[256];
	size_t len = 0;
	qp_framer f;

	qp_framer_init(&f, 100);
	put_frame(buf, &len, 10, 'a');
	qp_frame_header(buf + len, 5000);
	len += QP_FRAME_HDR;
	ck_assert_int_eq(qp_framer_feed(&f, buf, len), QP_ETOOBIG);
	ck_assert_ptr_null(f.buf);
	qp_framer_free(&f);

	/* Fed separately, the good frame comes out before the failure. */
	qp_framer_init(&f, 100);
	ck_assert_int_eq(qp_framer_feed(&f, buf, 14), 0);
	expect_frame(&f, 10, 'a');
	ck_assert_int_eq(qp_framer_feed(&f, buf + 14, 4), QP_ETOOBIG);
	qp_framer_free(&f);
}
END_TEST

/* A handshake's small limit, then a channel's larger one: a channel frame
 * that arrives right behind the last handshake message (one read) waits
 * under the raised limit (ahead) and comes out once max is raised; while
 * max stays small it is refused when it comes next. */
START_TEST(test_limit_raised_midstream)
{
	uint8_t buf[1024];
	size_t len = 0;
	qp_framer f;
	const uint8_t *body;
	uint32_t n;

	put_frame(buf, &len, 10, 'h');
	put_frame(buf, &len, 500, 'c');
	qp_framer_init(&f, 100);
	f.ahead = 1000;
	ck_assert_int_eq(qp_framer_feed(&f, buf, len), 0);
	expect_frame(&f, 10, 'h');
	f.max = 1000; /* the handshake is over */
	expect_frame(&f, 500, 'c');
	expect_none(&f);
	qp_framer_free(&f);

	qp_framer_init(&f, 100);
	f.ahead = 1000;
	ck_assert_int_eq(qp_framer_feed(&f, buf, len), 0);
	expect_frame(&f, 10, 'h');
	ck_assert_int_eq(qp_framer_next(&f, &body, &n), QP_ETOOBIG);
	qp_framer_free(&f);

	/* The next frame itself is held to max, and nothing goes past ahead. */
	len = 0;
	put_frame(buf, &len, 500, 'c');
	qp_framer_init(&f, 100);
	f.ahead = 1000;
	ck_assert_int_eq(qp_framer_feed(&f, buf, len), QP_ETOOBIG);
	qp_framer_free(&f);
	len = 0;
	put_frame(buf, &len, 10, 'h');
	qp_frame_header(buf + len, 5000);
	len += QP_FRAME_HDR;
	qp_framer_init(&f, 100);
	f.ahead = 1000;
	ck_assert_int_eq(qp_framer_feed(&f, buf, len), QP_ETOOBIG);
	qp_framer_free(&f);
}
END_TEST

START_TEST(test_zero_length)
{
	static const uint8_t zero[QP_FRAME_HDR] = {0};
	qp_framer f;

	qp_framer_init(&f, 100);
	ck_assert_int_eq(qp_framer_feed(&f, zero, sizeof(zero)), QP_EPROTO);
	ck_assert_int_eq(qp_framer_feed(&f, zero, 1), QP_EPROTO);
	qp_framer_free(&f);
}
END_TEST

/* A large announced frame arriving in pieces: the buffer grows with the
 * data and never beyond the frame's end. */
START_TEST(test_growth_bounded)
{
	const uint32_t body = 300000;
	uint8_t *buf = malloc(QP_FRAME_HDR + body);
	size_t done = 0, total = QP_FRAME_HDR + body;
	qp_framer f;

	qp_frame_header(buf, body);
	memset(buf + QP_FRAME_HDR, 7, body);
	qp_framer_init(&f, 1u << 20);
	while (done < total) {
		size_t n = total - done < 4099 ? total - done : 4099;
		ck_assert_int_eq(qp_framer_feed(&f, buf + done, n), 0);
		done += n;
		ck_assert_uint_le(f.cap, total);
		ck_assert_uint_ge(f.cap, done);
		if (done < total)
			expect_none(&f);
	}
	expect_frame(&f, body, 7);
	qp_framer_free(&f);
	free(buf);
}
END_TEST

START_TEST(test_steady_state)
{
	uint8_t buf[8192];
	size_t len = 0, cap_after_warmup = 0;
	qp_framer f;

	for (int i = 0; i < 50; i++)
		put_frame(buf, &len, 100, (uint8_t)i);
	qp_framer_init(&f, 1000);
	/* Stream 10 rounds of the same bytes in odd-sized pieces, draining
	 * after each: capacity stays flat. */
	for (int round = 0; round < 10; round++) {
		size_t pos = 0;
		int got = 0;
		while (pos < len) {
			const uint8_t *b;
			uint32_t n;
			size_t k = len - pos < 37 ? len - pos : 37;
			ck_assert_int_eq(qp_framer_feed(&f, buf + pos, k), 0);
			pos += k;
			while (qp_framer_next(&f, &b, &n) == 1) {
				ck_assert_int_eq(b[0], got);
				got++;
			}
		}
		ck_assert_int_eq(got, 50);
		if (round == 0)
			cap_after_warmup = f.cap;
		ck_assert_uint_eq(f.cap, cap_after_warmup);
	}
	ck_assert_uint_le(cap_after_warmup, 512);
	qp_framer_free(&f);
}
END_TEST

Suite *suite_frame(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_header);
	tcase_add_test(tc, test_one_frame);
	tcase_add_test(tc, test_many_in_one_feed);
	tcase_add_test(tc, test_byte_by_byte);
	tcase_add_test(tc, test_oversize);
	tcase_add_test(tc, test_oversize_after_good);
	tcase_add_test(tc, test_zero_length);
	tcase_add_test(tc, test_limit_raised_midstream);
	tcase_add_test(tc, test_growth_bounded);
	tcase_add_test(tc, test_steady_state);
	suite_add_tcase(s, tc);
	return s;
}
