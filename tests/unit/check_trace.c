/* PLACEHOLDER for proto/trace.c tests; replaced by the real suite. */
#include "suites.h"
Suite *suite_trace(void)
{
	return suite_create("trace");
}
