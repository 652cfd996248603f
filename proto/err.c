/* err.c - messages and names for the codes in err.h. */
#include "err.h"

#include <string.h>

const char *qp_strerror(int code)
{
	if (code == 0)
		return "success";
	if (code < 0 && code > -1000)
		return strerror(-code);
	switch (code) {
#define QP__ERR_MSG(name, value, msg) \
	case (value):                 \
		return (msg);
		QP_ERRORS(QP__ERR_MSG)
#undef QP__ERR_MSG
	}
	return "unknown error";
}

const char *qp_err_name(int code)
{
	if (code == 0)
		return "QP_OK";
	if (code < 0 && code > -1000)
		return "errno";
	switch (code) {
#define QP__ERR_NAME(name, value, msg) \
	case (value):                  \
		return "QP_" #name;
		QP_ERRORS(QP__ERR_NAME)
#undef QP__ERR_NAME
	}
	return "QP_EUNKNOWN";
}
