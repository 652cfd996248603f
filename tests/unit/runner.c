/*
 * runner.c - runs every unit suite listed in suites.h.
 * CK_RUN_SUITE / CK_RUN_CASE select (Check's own variables); CK_FORK=no runs
 * in-process for gdb and valgrind.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
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
