/* PLACEHOLDER for proto/report.c tests; replaced by the real suite. */
#include "suites.h"
Suite *suite_report(void)
{
	return suite_create("report");
}
