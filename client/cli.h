/*
 * cli.h - what the quipu commands share: the invocation context (data
 * directory, connection), option parsing, error reporting with the CLI's
 * exit statuses, bounded input reading, JSON input and record output.
 *
 * Every command is `int qp_cmd_NAME(qp_cli *c, int argc, char **argv)` with
 * argv[0] the command name; it returns the process exit status.  Errors are
 * printed as one line "quipu: ..." on stderr by the function that detects
 * them, so callers only pass the status on.
 */
#ifndef QP_CLI_H
#define QP_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "api.h"
#include "node.h"
#include "schema.h"

enum {
	QP_EXIT_OK = 0,
	QP_EXIT_FAIL = 1,  /* refused, not found, daemon error, verify failed */
	QP_EXIT_USAGE = 2, /* bad command line */
	QP_EXIT_CONN = 3,  /* cannot reach quipud */
};

#define QP_CLI_MAX_INPUT ((size_t)256 << 20)  /* add/update input */
#define QP_CLI_MAX_IMPORT ((size_t)2 << 30)   /* import file */
#define QP_CLI_TIMEOUT_MS (600 * 1000)        /* default reply timeout */

typedef struct qp_cli {
	const char *opt_dir; /* -d/--data, or NULL */
	qp_node node;        /* paths (and key, for `id`) */
	int have_paths;
	qp_api *api;         /* connected lazily */
	int timeout_ms;
} qp_cli;

typedef struct qp_cmd {
	const char *name;
	int (*run)(qp_cli *c, int argc, char **argv);
	const char *usage; /* full --help text */
	const char *brief; /* one line for `quipu --help` */
} qp_cmd;

/* The command table (main.c). */
const qp_cmd *qp_cli_cmd(const char *name);

int qp_cmd_init(qp_cli *c, int argc, char **argv);
int qp_cmd_id(qp_cli *c, int argc, char **argv);
int qp_cmd_status(qp_cli *c, int argc, char **argv);
int qp_cmd_verify(qp_cli *c, int argc, char **argv);
int qp_cmd_add(qp_cli *c, int argc, char **argv);
int qp_cmd_update(qp_cli *c, int argc, char **argv);
int qp_cmd_void(qp_cli *c, int argc, char **argv);
int qp_cmd_get(qp_cli *c, int argc, char **argv);
int qp_cmd_list(qp_cli *c, int argc, char **argv);
int qp_cmd_import(qp_cli *c, int argc, char **argv);
int qp_cmd_export(qp_cli *c, int argc, char **argv);
int qp_cmd_backup(qp_cli *c, int argc, char **argv);
int qp_cmd_restore(qp_cli *c, int argc, char **argv);
/* Sync (cmd_sync.c). */
int qp_cmd_enroll(qp_cli *c, int argc, char **argv);
int qp_cmd_join(qp_cli *c, int argc, char **argv);
int qp_cmd_revoke(qp_cli *c, int argc, char **argv);
int qp_cmd_peers(qp_cli *c, int argc, char **argv);
int qp_cmd_sync(qp_cli *c, int argc, char **argv);
int qp_cmd_conflicts(qp_cli *c, int argc, char **argv);
int qp_cmd_settle(qp_cli *c, int argc, char **argv);
int qp_cmd_quarantine(qp_cli *c, int argc, char **argv);
int qp_cmd_forks(qp_cli *c, int argc, char **argv);
int qp_cmd_bundle(qp_cli *c, int argc, char **argv);
/* Review (cmd_check.c). */
int qp_cmd_check(qp_cli *c, int argc, char **argv);
/* `check plots` (cmd_plots.c) and `check lots` (cmd_lots.c): argv[0] is the
 * subcommand name. */
int qp_check_plots(qp_cli *c, int argc, char **argv);
int qp_check_lots(qp_cli *c, int argc, char **argv);
/* Field domain: traceability (cmd_trace.c), reports (cmd_report.c),
 * reference layers (cmd_plots.c). */
int qp_cmd_trace(qp_cli *c, int argc, char **argv);
int qp_cmd_dds(qp_cli *c, int argc, char **argv);
int qp_cmd_report(qp_cli *c, int argc, char **argv);
int qp_cmd_layer(qp_cli *c, int argc, char **argv);

/* The reference layers stored in DIR/layers (cmd_plots.c): every one, or
 * only the one named only.  On success returns 0, *layers gets a malloc'd
 * array of *n layers whose JSON is held by *owner (json_decref it and free
 * *layers after use).  Otherwise returns an exit status (error printed). */
struct qp_layer;
int qp_cli_layers(qp_cli *c, const char *only, struct qp_layer **layers,
		  json_t **owner, size_t *n);

/* Print "quipu: <message>\n" on stderr. */
void qp_cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print a usage error for command cmd ("quipu: cmd: <message> (see quipu
 * cmd --help)") and return QP_EXIT_USAGE. */
int qp_cli_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Options every command takes besides its own: -h/--help, -d/--data DIR. */
#define QP_CLI_COMMON_OPTS                                \
	{ "help", no_argument, NULL, 'h' },               \
	{ "data", required_argument, NULL, 'd' }
#define QP_CLI_COMMON_SHORT "hd:"

/* getopt_long over a command's arguments (argv[0] is the command name; set
 * optind = 0 before the first call).  Handles the common options.  Option
 * arguments are permuted GNU-style, so options may follow operands.
 * Returns the option character of a command-specific option, -1 at the end
 * of options, or -2 when the command must stop with exit status *status
 * (help printed, or a usage error reported). */
int qp_cli_getopt(qp_cli *c, int argc, char **argv, const char *shortopts,
		  const struct option *longopts, int *status);

/* Exactly want operands after the options (argv[optind...]), else a usage
 * error naming what is missing ("missing ID") or the first extra operand.
 * Returns QP_EXIT_OK or QP_EXIT_USAGE. */
int qp_cli_operands(int argc, char **argv, int want, const char *what);

/* The options of a command whose only own option is -j/--json: parse
 * them, set *json, and check that exactly nops operands follow (any number
 * when nops < 0).  Returns -1 to go on, or the exit status to stop with
 * (help printed, or a usage error reported). */
int qp_cli_json_opts(qp_cli *c, int argc, char **argv, int nops, int *json);

/* Resolve the data directory paths (once).  Returns an exit status. */
int qp_cli_paths(qp_cli *c);

/* Connect to quipud (once).  Prints the "cannot reach" error and returns
 * QP_EXIT_CONN on failure. */
int qp_cli_connect(qp_cli *c);

/* Report a local API failure (rc from api.h) and return the exit status:
 * QP_EXIT_CONN for a lost or unreachable daemon, else QP_EXIT_FAIL. */
int qp_cli_api_fail(qp_cli *c, int rc);

/* Connect when needed, send req and read the reply.  On success (ok:true)
 * returns 0 with *reply set (caller decrefs).  An ok:false reply is printed
 * as "quipu: <error>" and QP_EXIT_FAIL returned. */
int qp_cli_call(qp_cli *c, json_t *req, json_t **reply);

/* Parse argv of a command that takes only the common options and no
 * operands: 1 when the command goes on, 0 when it must return *status
 * (--help was printed, or a usage error). */
int qp_cli_no_args(qp_cli *c, int argc, char **argv, int *status);
/* The same for a command that takes exactly one operand (name, for the
 * usage message): the operand, or NULL when the command must return
 * *status. */
const char *qp_cli_one_arg(qp_cli *c, int argc, char **argv,
			   const char *name, int *status);

/* Such a command that only sends {"op": op}: returns as qp_cli_call
 * does. */
int qp_cli_call_op(qp_cli *c, int argc, char **argv, const char *op,
		   json_t **reply);

/* The "error" text of an ok:false reply (never NULL). */
const char *qp_cli_reply_error(const json_t *reply);

/* The error of a refused add request whose records came from lines
 * lines[0..n) of the input, into buf: with " (also line T)" when the
 * reply's "twin" names an earlier record that gave the same natural key.
 * *line gets the line of the refused record (the reply's "index"), or 0
 * when the reply names none. */
const char *qp_cli_add_refusal(const json_t *reply, const size_t *lines,
			       size_t n, size_t *line, char *buf, size_t len);

/* Read all of path ("-" or NULL: stdin) into a malloc'd, NUL-terminated
 * buffer, refusing more than max bytes.  Returns an exit status; prints the
 * error. */
int qp_cli_read_all(const char *path, size_t max, char **buf, size_t *len);

/* The kind named name, or an error printed and NULL. */
const qp_kind *qp_cli_kind(const char *name);

/* JSON input: one object (possibly over several lines), several objects one
 * after another, or JSON lines.  Blank lines are skipped. */
typedef struct qp_jsonin {
	const char *buf;
	size_t len;
	size_t off;   /* next unread byte */
	size_t line;  /* 1-based line of buf[off] */
	int by_line;  /* JSON lines: each line parsed on its own */
} qp_jsonin;

void qp_jsonin_init(qp_jsonin *in, const char *buf, size_t len);

/* Next object: returns 1 with *obj (new reference) and *line (where it
 * starts), 0 at the end of input, or -1 with *line set to the line of the
 * error and the reason in err ("JSON: '}' expected near end of file",
 * "expected a JSON object"). */
int qp_jsonin_next(qp_jsonin *in, json_t **obj, size_t *line, char *err,
		   size_t errlen);

/* Byte offset reached (for progress). */
size_t qp_jsonin_offset(const qp_jsonin *in);

/* Compact JSON text of v, keys in the object's order, each real written
 * with the fewest digits (15 to 17) that give back the same double, so
 * that a coordinate stored as -76.123456 prints as -76.123456 whatever else
 * the record holds (jansson can only set one precision for a whole dump).
 * Returns a malloc'd string. */
char *qp_cli_dumps(const json_t *v);

/* An area in hectares as text: at least 2 decimals and 3 significant
 * digits ("3.20", "0.420", "0.00500"), so a small overlap does not print
 * as 0.00. */
void qp_cli_ha_text(double ha, char *buf, size_t len);

/* Output formats of list and export. */
typedef enum qp_outfmt { QP_OUT_JSONL, QP_OUT_CSV, QP_OUT_GEOJSON } qp_outfmt;

/* Parse a --format value; -1 when unknown. */
int qp_cli_outfmt(const char *s, int allow_geojson);

/* The field that holds a record's geometry (plot.geometry,
 * session.place), or NULL when the kind has none. */
const qp_field *qp_cli_geom_field(const qp_kind *k);

/* Page through `list` for kind (restricted to org when non-NULL, voided
 * records included when voided) and write every record to out in fmt.
 * *count gets the number of records written; for GeoJSON, records without
 * a geometry are left out and counted in *nogeom (when not NULL).  Returns
 * an exit status (errors printed). */
int qp_cli_list_write(qp_cli *c, const qp_kind *k, const char *org,
		      int voided, qp_outfmt fmt, FILE *out, size_t *count,
		      size_t *nogeom);

/* Every record of kind (restricted to org when non-NULL; voided records
 * included only when voided), paged over `list`.  On success returns 0 and
 * *out gets a new JSON array in id order; otherwise returns an exit status
 * (error printed). */
int qp_cli_fetch_all(qp_cli *c, const char *kind, const char *org,
		     int voided, json_t **out);

#endif
