/*
 * suites.h - every Check suite of the unit runner (tests/unit/runner.c).
 * One suite per module; tests/unit/check_<module>.c covers <dir>/<module>.c.
 */
#ifndef QP_SUITES_H
#define QP_SUITES_H

#include <check.h>

#define QP_SUITES(X) \
	X(err)       \
	X(uuid)      \
	X(hlc)       \
	X(mpjson)    \
	X(frame)     \
	X(delta)     \
	X(cert)      \
	X(handshake) \
	X(schema)    \
	X(geo)       \
	X(csv)       \
	X(store)     \
	X(store_sync) \
	X(node)      \
	X(link)      \
	X(sync)      \
	X(bundle)    \
	X(lots)      \
	X(trace)     \
	X(plotcheck) \
	X(report)

#define QP__SUITE_DECL(name) Suite *suite_##name(void);
QP_SUITES(QP__SUITE_DECL)
#undef QP__SUITE_DECL

/* A fresh temporary directory for one test (mkdtemp under $TMPDIR); the
 * caller removes it with qp_test_rmtree.  Returns a malloc'd path. */
char *qp_test_tmpdir(void);
void qp_test_rmtree(const char *path);

/* JSON written with single quotes (turned into double quotes), to keep test
 * literals readable; a bad literal aborts the test. */
#include <jansson.h>
json_t *qp_test_json(const char *text);

/* Area (ha) on the WGS84 ellipsoid of the cell between two parallels and
 * two meridians, in closed form: an expectation computed without PROJ or
 * GEOS. */
double qp_test_cell_ha(double lon1, double lat1, double lon2, double lat2);

#endif
