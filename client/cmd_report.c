/* PLACEHOLDER: being written; replaced before commit. */
#include "cli.h"
int qp_cmd_report(qp_cli *c, int argc, char **argv)
{
	(void)c; (void)argc; (void)argv;
	qp_cli_err("not built yet");
	return QP_EXIT_FAIL;
}
