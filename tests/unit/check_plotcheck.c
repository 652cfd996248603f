/* PLACEHOLDER for proto/plotcheck.c tests; replaced by the real suite. */
#include "suites.h"
Suite *suite_plotcheck(void)
{
	return suite_create("plotcheck");
}
