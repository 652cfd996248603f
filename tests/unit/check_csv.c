/* check_csv.c - covers proto/csv.c: the bounded RFC 4180 reader (quoting,
 * line ends, BOM, bounds, errors with line numbers) and the writer (quoting
 * and the formula-injection guard). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "err.h"
#include "suites.h"

/* Read all of text; returns rows as "a|b|c" lines joined by '\n' (cells
 * with '|' are not used in these tests), with each row's line number in
 * front: "1:a|b\n3:c\n".  On error returns "ERR <code>: <message>". */
static char *read_all(const char *text, size_t len, size_t max_field,
		      size_t max_cols)
{
	qp_csv_reader *r = qp_csv_open(text, len, max_field, max_cols);
	qp_csv_row row;
	char err[256], *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	int rc;
	ck_assert_ptr_nonnull(r);
	while ((rc = qp_csv_next(r, &row, err, sizeof err)) == 1) {
		fprintf(f, "%zu:", row.line);
		for (size_t i = 0; i < row.ncols; i++)
			fprintf(f, "%s%s", i ? "|" : "", row.cols[i]);
		fputc('\n', f);
	}
	if (rc < 0) {
		fprintf(f, "ERR %s: %s", qp_err_name(rc), err);
		/* Errors are sticky. */
		ck_assert_int_eq(qp_csv_next(r, &row, err, sizeof err), rc);
	} else {
		ck_assert_int_eq(qp_csv_next(r, &row, err, sizeof err), 0);
	}
	fclose(f);
	qp_csv_close(r);
	return out;
}

static void reads_as(const char *text, const char *want)
{
	char *got = read_all(text, strlen(text), 0, 0);
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(test_basic)
{
	reads_as("", "");
	reads_as("a,b,c\n1,2,3\n", "1:a|b|c\n2:1|2|3\n");
	reads_as("a,b\n1,2", "1:a|b\n2:1|2\n");	  /* no final newline */
	reads_as("a,b\r\n1,2\r\n", "1:a|b\n2:1|2\n"); /* CRLF */
	reads_as("a,b\r1,2\r", "1:a|b\n2:1|2\n");     /* old Mac CR */
	reads_as("a,,\n", "1:a||\n");		      /* empty fields */
	reads_as(",\n", "1:|\n");
	reads_as("a,b,\n", "1:a|b|\n");
	/* Blank lines are skipped, but line numbers still count them. */
	reads_as("\n\na\r\n\r\nb\n\n", "3:a\n5:b\n");
	/* Spaces are data. */
	reads_as(" a , b \n", "1: a | b \n");
	/* A UTF-8 BOM at the start is skipped, only there. */
	reads_as("\xef\xbb\xbf" "dni,name\n", "1:dni|name\n");
	reads_as("x\n\xef\xbb\xbfy\n", "1:x\n2:\xef\xbb\xbfy\n");
}
END_TEST

START_TEST(test_quoting)
{
	reads_as("\"a,b\",\"say \"\"hi\"\"\"\n", "1:a,b|say \"hi\"\n");
	reads_as("\"\"\n", "1:\n");
	reads_as("\"\",\"\"\n", "1:|\n");
	/* Embedded newlines: the next row's line number accounts for them. */
	reads_as("name,notes\n\"Rosa\",\"line one\nline two\r\nthree\"\nx,y\n",
		 "1:name|notes\n2:Rosa|line one\nline two\r\nthree\n5:x|y\n");
	/* A quote inside an unquoted field is literal. */
	reads_as("5\" pipe,ok\n", "1:5\" pipe|ok\n");
	/* Quoted field at end of input without newline. */
	reads_as("a,\"b\"", "1:a|b\n");
	reads_as("\"\xc3\xb1" "and\xc3\xba\"\r\n", "1:\xc3\xb1" "and\xc3\xba\n");
}
END_TEST

START_TEST(test_errors)
{
	reads_as("a,b\nc,d\n\"open,\nstill open\n",
		 "1:a|b\n2:c|d\nERR QP_EPROTO: line 3: unterminated quoted field");
	reads_as("a,\"b\"c\n",
		 "ERR QP_EPROTO: line 1: text after the closing quote of a field");
	{
		static const char nul[] = "a,b\nc\0d\n";
		char *got = read_all(nul, sizeof nul - 1, 0, 0);
		ck_assert_str_eq(got, "1:a|b\nERR QP_EPROTO: line 2: NUL byte in input");
		free(got);
	}
	{
		const char *t = "ok,12345678\nx,123456789\n";
		char *got = read_all(t, strlen(t), 8, 0);
		ck_assert_str_eq(got, "1:ok|12345678\nERR QP_ETOOBIG: line 2: field "
				      "longer than 8 bytes");
		free(got);
		t = "a\n\"12\n34\"\n\"12\n345678\"\n";
		got = read_all(t, strlen(t), 8, 0);
		ck_assert_str_eq(got, "1:a\n2:12\n34\nERR QP_ETOOBIG: line 4: field "
				      "longer than 8 bytes");
		free(got);
	}
	{
		const char *t = "a,b,c\n1,2,3,4\n";
		char *got = read_all(t, strlen(t), 0, 3);
		ck_assert_str_eq(got, "1:a|b|c\nERR QP_ETOOBIG: line 2: more than 3 "
				      "columns");
		free(got);
	}
	{
		/* The default bound on columns. */
		char *t = malloc(2 * QP_CSV_MAX_COLS + 3), *got;
		for (int i = 0; i <= QP_CSV_MAX_COLS; i++) {
			t[2 * i] = 'x';
			t[2 * i + 1] = ',';
		}
		t[2 * QP_CSV_MAX_COLS + 1] = '\n';
		t[2 * QP_CSV_MAX_COLS + 2] = '\0';
		got = read_all(t, strlen(t), 0, 0);
		ck_assert_str_eq(got, "ERR QP_ETOOBIG: line 1: more than 256 columns");
		free(got);
		free(t);
	}
	ck_assert_ptr_null(qp_csv_open(NULL, 3, 0, 0));
	qp_csv_close(NULL);
}
END_TEST

static char *write_to_string(const char *const *fields, size_t n)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	qp_csv_write_row(f, fields, n);
	fclose(f);
	return out;
}

static void writes_as(const char *field, const char *want)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	qp_csv_write_field(f, field);
	fclose(f);
	ck_assert_str_eq(out, want);
	free(out);
}

START_TEST(test_writer)
{
	char *s;
	writes_as("plain", "plain");
	writes_as("", "");
	writes_as(NULL, "");
	writes_as("a,b", "\"a,b\"");
	writes_as("say \"hi\"", "\"say \"\"hi\"\"\"");
	writes_as("two\nlines", "\"two\nlines\"");
	writes_as("cr\r", "\"cr\r\"");
	/* Formula guard. */
	writes_as("=SUM(A1:A9)", "\"'=SUM(A1:A9)\"");
	writes_as("+51 984 123 456", "\"'+51 984 123 456\"");
	writes_as("@cmd", "\"'@cmd\"");
	writes_as("-x", "\"'-x\"");
	writes_as("-", "\"'-\"");
	writes_as("-12.5", "-12.5");
	writes_as("=\"x\"", "\"'=\"\"x\"\"\"");
	writes_as("a=b", "a=b");
	/* A value that already looks guarded is guarded again, so that the
	 * reader's undo (qp_schema_from_text) gives it back unchanged. */
	writes_as("'=x", "\"''=x\"");
	writes_as("''+1", "\"'''+1\"");
	writes_as("'-1", "\"''-1\"");
	writes_as("'", "'");
	writes_as("''", "''");
	writes_as("'quoted'", "'quoted'");
	writes_as("\xef\xbb\xbfx", "\"\xef\xbb\xbfx\"");

	{
		const char *row[] = {"id", "name, full", "-77.04"};
		s = write_to_string(row, 3);
		ck_assert_str_eq(s, "id,\"name, full\",-77.04\r\n");
		free(s);
	}
	{
		const char *row[] = {""};
		s = write_to_string(row, 1);
		ck_assert_str_eq(s, "\"\"\r\n");
		free(s);
	}
	{
		const char *row[] = {"", ""};
		s = write_to_string(row, 2);
		ck_assert_str_eq(s, ",\r\n");
		free(s);
	}
}
END_TEST

START_TEST(test_round_trip)
{
	static const char *tricky[] = {
		"",	       "a",	  " lead",     "trail ",   "a,b",
		"\"",	       "\"\"",	  "x\"y",      "line\nbreak",
		"crlf\r\nx",   "cr\ronly", "\n",      ",",	   "'quoted'",
		"=1+2",	       "+51 984", "@SUM(A1)", "-cmd",	   "-5",
		"\xef\xbb\xbf", "Ñandú ü", "tab\there", "\"a\",\"b\"", "'",
	};
	size_t n = sizeof tricky / sizeof tricky[0];
	char *buf = NULL, err[256];
	size_t len = 0, rows = 0;
	FILE *f = open_memstream(&buf, &len);
	qp_csv_reader *r;
	qp_csv_row row;

	/* Each tricky string alone, and all of them in one row. */
	for (size_t i = 0; i < n; i++)
		qp_csv_write_row(f, &tricky[i], 1);
	qp_csv_write_row(f, tricky, n);
	fclose(f);

	r = qp_csv_open(buf, len, 0, 0);
	while (qp_csv_next(r, &row, err, sizeof err) == 1) {
		size_t first = rows < n ? rows : 0;
		size_t count = rows < n ? 1 : n;
		ck_assert_uint_eq(row.ncols, count);
		for (size_t i = 0; i < count; i++) {
			const char *want = tricky[first + i];
			char guarded[64];
			if (strchr("=+@", want[0]) != NULL && want[0] != '\0') {
				snprintf(guarded, sizeof guarded, "'%s", want);
				want = guarded;
			} else if (want[0] == '-' &&
				   !(want[1] >= '0' && want[1] <= '9')) {
				snprintf(guarded, sizeof guarded, "'%s", want);
				want = guarded;
			}
			ck_assert_str_eq(row.cols[i], want);
		}
		rows++;
	}
	ck_assert_uint_eq(rows, n + 1);
	qp_csv_close(r);
	free(buf);
}
END_TEST

START_TEST(test_big_input)
{
	/* 20000 rows; the row buffer is reused, lines keep counting. */
	char *buf = NULL;
	size_t len = 0, rows = 0;
	FILE *f = open_memstream(&buf, &len);
	qp_csv_reader *r;
	qp_csv_row row;
	char err[256];
	for (int i = 0; i < 20000; i++)
		fprintf(f, "%d,\"multi\nline %d\",x\n", i, i);
	fclose(f);
	r = qp_csv_open(buf, len, 0, 0);
	while (qp_csv_next(r, &row, err, sizeof err) == 1) {
		char want[32];
		snprintf(want, sizeof want, "%zu", rows);
		ck_assert_str_eq(row.cols[0], want);
		ck_assert_uint_eq(row.line, 2 * rows + 1);
		ck_assert_uint_eq(row.ncols, 3);
		rows++;
	}
	ck_assert_uint_eq(rows, 20000);
	qp_csv_close(r);
	free(buf);
}
END_TEST

Suite *suite_csv(void)
{
	Suite *s = suite_create("csv");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_basic);
	tcase_add_test(tc, test_quoting);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_writer);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_big_input);
	suite_add_tcase(s, tc);
	return s;
}
