/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "hlc.h"

void qp_log_msg(const qp_log *lg, int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	char when[32];
	va_list ap;

	if (lg != NULL && level > lg->level)
		return;
	qp_hlc_iso(((uint64_t)qp_hlc_wall_ms()) << 16, when, sizeof(when));
	fprintf(stderr, "%s quipud %s: ", when, names[level & 3]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
