/* PLACEHOLDER for proto/lots.c tests; replaced by the real suite. */
#include "suites.h"
Suite *suite_lots(void)
{
	return suite_create("lots");
}
