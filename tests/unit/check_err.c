/* check_err.c - covers proto/err.c: codes, names and messages. */
#include <errno.h>
#include <string.h>

#include <locale.h>

#include "err.h"
#include "suites.h"
#include "util.h"

START_TEST(test_own_codes)
{
	ck_assert_int_eq(QP_OK, 0);
	ck_assert_int_eq(QP_EINVAL, -1000);
	ck_assert_str_eq(qp_strerror(QP_EPROTO), "malformed input");
	ck_assert_str_eq(qp_err_name(QP_EPROTO), "QP_EPROTO");
	ck_assert_str_eq(qp_strerror(QP_ESIG), "signature does not verify");
	ck_assert_str_eq(qp_err_name(QP_ETOOBIG), "QP_ETOOBIG");
	ck_assert_str_eq(qp_strerror(QP_EFORK),
			 "two different deltas claim the same feed and seq");
	ck_assert_str_eq(qp_err_name(QP_ENOTSUP), "QP_ENOTSUP");
	ck_assert_str_eq(qp_strerror(0), "success");
	ck_assert_str_eq(qp_err_name(0), "QP_OK");
}
END_TEST

/* Every listed code is in quipu's range, distinct, and has its own name
 * and a message that is not the fallback. */
START_TEST(test_all_listed)
{
	static const int codes[] = {
#define X(name, value, msg) value,
		QP_ERRORS(X)
#undef X
	};
	static const char *names[] = {
#define X(name, value, msg) "QP_" #name,
		QP_ERRORS(X)
#undef X
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);

	for (size_t i = 0; i < n; i++) {
		ck_assert_int_le(codes[i], -1000);
		ck_assert_str_eq(qp_err_name(codes[i]), names[i]);
		ck_assert_str_ne(qp_strerror(codes[i]), "unknown error");
		ck_assert_str_ne(qp_strerror(codes[i]), "");
		for (size_t j = i + 1; j < n; j++)
			ck_assert_int_ne(codes[i], codes[j]);
	}
}
END_TEST

START_TEST(test_errno_codes)
{
	ck_assert_str_eq(qp_strerror(-ENOENT), strerror(ENOENT));
	ck_assert_str_eq(qp_strerror(-EACCES), strerror(EACCES));
	ck_assert_str_eq(qp_err_name(-ENOENT), "errno");
	ck_assert_str_eq(qp_err_name(-999), "errno");
}
END_TEST

START_TEST(test_unknown)
{
	ck_assert_str_eq(qp_strerror(-5000), "unknown error");
	ck_assert_str_eq(qp_err_name(-5000), "QP_EUNKNOWN");
	ck_assert_str_eq(qp_strerror(7), "unknown error");
	ck_assert_str_eq(qp_err_name(7), "QP_EUNKNOWN");
}
END_TEST

/* qp_errf: the message, cut to the buffer, numbers in the C locale even
 * when the thread uses a decimal-comma locale (tried where es_PE or de_DE
 * is installed; the machine may only have C); rc comes back whether or
 * not there is a buffer. */
START_TEST(test_errf)
{
	char buf[32], small[8];
	locale_t es = newlocale(LC_NUMERIC_MASK, "es_PE.UTF-8", (locale_t)0),
		 old = (locale_t)0;

	if (es == (locale_t)0)
		es = newlocale(LC_NUMERIC_MASK, "de_DE.UTF-8", (locale_t)0);
	if (es != (locale_t)0)
		old = uselocale(es);
	ck_assert_int_eq(qp_errf(QP_EVALID, buf, sizeof buf, "lot.kg: %.1f kg",
				 2.5),
			 QP_EVALID);
	ck_assert_str_eq(buf, "lot.kg: 2.5 kg");
	if (es != (locale_t)0) {
		uselocale(old);
		freelocale(es);
	}
	ck_assert_int_eq(qp_errf(QP_EGEOM, small, sizeof small, "%s",
				 "plot.geometry: long"),
			 QP_EGEOM);
	ck_assert_str_eq(small, "plot.ge");
	ck_assert_int_eq(qp_errf(QP_EAUTH, NULL, 0, "%s", "nowhere"), QP_EAUTH);
}
END_TEST

/* qp_excerpt: control bytes become '?', UTF-8 is kept, long text is cut
 * at a character boundary with "...", and a tiny buffer gets "". */
START_TEST(test_excerpt)
{
	/* 38 ASCII bytes, then "ñ" (2 bytes) across the 40-byte cut. */
	const char *s = "Asociacion de Productores de Cafe de P\xc3\xb1" "aqui";
	char buf[64], tiny[4];

	ck_assert_str_eq(qp_excerpt("a\x01" "b\x7f" "\xc3\xa9", 6, buf, sizeof buf),
			 "a?b?\xc3\xa9");
	ck_assert_str_eq(qp_excerpt(s, strlen(s), buf, sizeof buf),
			 "Asociacion de Productores de Cafe de P...");
	ck_assert_str_eq(qp_excerpt("abc", 3, tiny, sizeof tiny), "");
}
END_TEST

Suite *suite_err(void)
{
	Suite *s = suite_create("err");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_own_codes);
	tcase_add_test(tc, test_all_listed);
	tcase_add_test(tc, test_errno_codes);
	tcase_add_test(tc, test_unknown);
	tcase_add_test(tc, test_errf);
	tcase_add_test(tc, test_excerpt);
	suite_add_tcase(s, tc);
	return s;
}
