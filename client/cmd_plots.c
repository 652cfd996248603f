/* PLACEHOLDER: being written; replaced before commit. */
#include "cli.h"
int qp_check_plots(qp_cli *c, int argc, char **argv)
{
	(void)c; (void)argc; (void)argv;
	qp_cli_err("not built yet");
	return QP_EXIT_FAIL;
}
int qp_cmd_layer(qp_cli *c, int argc, char **argv)
{
	(void)c; (void)argc; (void)argv;
	qp_cli_err("not built yet");
	return QP_EXIT_FAIL;
}
int qp_cli_layers(qp_cli *c, const char *only, struct qp_layer **layers, json_t **owner, size_t *n) { (void)c;(void)only;(void)layers;(void)owner;(void)n; return QP_EXIT_FAIL; }
