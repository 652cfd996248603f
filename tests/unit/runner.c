/*
 * runner.c - runs every unit suite listed in suites.h.
 * CK_RUN_SUITE / CK_RUN_CASE select (Check's own variables); CK_FORK=no runs
 * in-process for gdb and valgrind.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <check.h>

#include "suites.h"

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* JSON written with single quotes, to keep the literals readable. */
json_t *qp_test_json(const char *text)
{
	char *s = strdup(text);
	json_error_t je;
	json_t *v;
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	v = json_loads(s, JSON_DECODE_ANY, &je);
	if (v == NULL)
		ck_abort_msg("bad test JSON: %s (%s)", text, je.text);
	free(s);
	return v;
}

/* Area (ha) on the WGS84 ellipsoid of the cell between two parallels and
 * two meridians, from the closed form of the authalic integral: an
 * expectation computed without PROJ or GEOS.  For cells of a few hundred
 * metres the geodesic edges differ from the parallels by far less than
 * 1e-6 of the area. */
double qp_test_cell_ha(double lon1, double lat1, double lon2, double lat2)
{
	const double a = 6378137.0, f = 1 / 298.257223563;
	const double e2 = f * (2 - f), e = sqrt(e2), b = a * (1 - f);
	const double rad = M_PI / 180;
	double s1 = sin(lat1 * rad), s2 = sin(lat2 * rad);
#define F(s)                                                                   \
	((s) / (1 - e2 * (s) * (s)) +                                          \
	 log((1 + e * (s)) / (1 - e * (s))) / (2 * e))
	double area =
	    fabs((lon2 - lon1) * rad) * b * b / 2 * fabs(F(s2) - F(s1));
#undef F
	return area / 10000.0;
}

void qp_test_rmtree(const char *path)
{
	if (path != NULL)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *qp_test_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p;
	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&p, "%s/quipu-unit-XXXXXX", base) < 0)
		abort();
	if (mkdtemp(p) == NULL) {
		perror("mkdtemp");
		abort();
	}
	return p;
}

int main(void)
{
	SRunner *sr = srunner_create(NULL);
	int failed;
#define QP__SUITE_ADD(name) srunner_add_suite(sr, suite_##name());
	QP_SUITES(QP__SUITE_ADD)
#undef QP__SUITE_ADD
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
