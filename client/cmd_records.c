/* cmd_records.c - quipu add, update, void, get and list: single requests
 * about records. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "util.h"
#include "wire.h"

/* Print a JSON value as one line. */
static void print_json(const json_t *v)
{
	char *s = qp_cli_dumps(v);

	printf("%s\n", s);
	free(s);
}

int qp_cmd_add(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "file", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL;
	const qp_kind *k;
	char *buf = NULL, err[QP_ERRMSG_LEN], why[QP_ERRMSG_LEN + 32];
	size_t len = 0, n = 0, i, line, at, *lines = NULL;
	json_t *recs = NULL, *req = NULL, *reply = NULL, *obj, *ids, *idx;
	qp_jsonin in;
	uint64_t rid;
	int o, rc, status = QP_EXIT_OK;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "f:", opts, &status)) != -1) {
		if (o == -2)
			return status;
		if (o == 'f')
			file = optarg;
	}
	if ((status = qp_cli_operands(argc, argv, 1, "KIND")) != QP_EXIT_OK)
		return status;
	if ((k = qp_cli_kind(argv[optind])) == NULL)
		return QP_EXIT_USAGE;
	status = qp_cli_read_all(file, QP_CLI_MAX_INPUT, &buf, &len);
	if (status != QP_EXIT_OK)
		return status;

	/* Parse everything before sending anything: add is all or nothing. */
	status = QP_EXIT_FAIL;
	recs = json_array();
	lines = qp_xmalloc(sizeof(*lines) * (QP_API_MAX_RECORDS + 1));
	qp_jsonin_init(&in, buf, len);
	while ((rc = qp_jsonin_next(&in, &obj, &line, err, sizeof(err))) == 1) {
		if (n == QP_API_MAX_RECORDS) {
			json_decref(obj);
			qp_cli_err("more than %d records in one add; use "
				   "quipu import FILE for large inputs",
				   QP_API_MAX_RECORDS);
			goto out;
		}
		lines[n++] = line;
		json_array_append_new(recs, obj);
	}
	if (rc < 0) {
		qp_cli_err("line %zu: %s", line, err);
		goto out;
	}
	if (n == 0) {
		qp_cli_err("no records in %s", file ? file : "stdin");
		goto out;
	}
	req = json_pack("{s:s, s:s, s:O}", "op", "add", "kind", k->name,
			"records", recs);
	if ((status = qp_cli_connect(c)) != QP_EXIT_OK)
		goto out;
	rc = qp_api_send(c->api, req, &rid);
	if (rc == QP_ETOOBIG) {
		qp_cli_err("input too large for one request (%u MiB); use "
			   "quipu import FILE", QP_API_MAX_FRAME >> 20);
		status = QP_EXIT_FAIL;
		goto out;
	}
	if (rc == 0)
		rc = qp_api_recv(c->api, rid, &reply);
	if (rc < 0) {
		status = qp_cli_api_fail(c, rc);
		goto out;
	}
	status = QP_EXIT_FAIL;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		qp_cli_add_refusal(reply, lines, n, &at, why, sizeof(why));
		if (at > 0)
			qp_cli_err("line %zu: %s", at, why);
		else
			qp_cli_err("%s", why);
		goto out;
	}
	ids = json_object_get(reply, "ids");
	if (!json_is_array(ids) || json_array_size(ids) != n) {
		qp_cli_err("malformed add reply from quipud");
		goto out;
	}
	json_array_foreach(ids, i, obj)
		printf("%s\n", json_string_value(obj) ? json_string_value(obj)
						      : "?");
	/* Accepted with warnings (geometry): said on stderr, still exit 0. */
	json_array_foreach(json_object_get(reply, "warnings"), i, obj) {
		idx = json_object_get(obj, "index");
		const char *w = json_string_value(json_object_get(obj, "warning"));
		if (w == NULL || !json_is_integer(idx) ||
		    json_integer_value(idx) < 0 ||
		    (size_t)json_integer_value(idx) >= n)
			continue;
		fprintf(stderr, "quipu: warning: line %zu: %s\n",
			lines[json_integer_value(idx)], w);
	}
	status = QP_EXIT_OK;
out:
	json_decref(reply);
	json_decref(req);
	json_decref(recs);
	free(lines);
	free(buf);
	return status;
}

int qp_cmd_update(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "file", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL, *id;
	char *buf = NULL, err[QP_ERRMSG_LEN];
	size_t len = 0, line;
	json_t *fields = NULL, *extra = NULL, *req = NULL, *reply = NULL;
	qp_jsonin in;
	int o, rc, status = QP_EXIT_OK;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "f:", opts, &status)) != -1) {
		if (o == -2)
			return status;
		if (o == 'f')
			file = optarg;
	}
	if ((status = qp_cli_operands(argc, argv, 1, "ID")) != QP_EXIT_OK)
		return status;
	id = argv[optind];
	status = qp_cli_read_all(file, QP_CLI_MAX_INPUT, &buf, &len);
	if (status != QP_EXIT_OK)
		return status;
	status = QP_EXIT_FAIL;
	qp_jsonin_init(&in, buf, len);
	rc = qp_jsonin_next(&in, &fields, &line, err, sizeof(err));
	if (rc == 1) {
		rc = qp_jsonin_next(&in, &extra, &line, err, sizeof(err));
		if (rc == 1)
			qp_fmt(err, sizeof(err), "update takes one JSON "
			       "object of changed fields");
		rc = rc == 0 ? 1 : -1;
	} else if (rc == 0) {
		qp_cli_err("no JSON object in %s", file ? file : "stdin");
		goto out;
	}
	if (rc != 1) {
		qp_cli_err("line %zu: %s", line, err);
		goto out;
	}
	req = json_pack("{s:s, s:s, s:O}", "op", "update", "id", id, "fields",
			fields);
	status = qp_cli_call(c, req, &reply);
	if (status != QP_EXIT_OK)
		goto out;
	printf("%s\n", json_string_value(json_object_get(reply, "id"))
			       ? json_string_value(json_object_get(reply, "id"))
			       : id);
out:
	json_decref(reply);
	json_decref(req);
	json_decref(extra);
	json_decref(fields);
	free(buf);
	return status;
}

int qp_cmd_void(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "reason", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *reason = NULL, *id;
	json_t *req, *reply = NULL;
	int o, status = QP_EXIT_OK;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "r:", opts, &status)) != -1) {
		if (o == -2)
			return status;
		if (o == 'r')
			reason = optarg;
	}
	if ((status = qp_cli_operands(argc, argv, 1, "ID")) != QP_EXIT_OK)
		return status;
	if (reason == NULL || reason[0] == '\0')
		return qp_cli_usage(argv[0], "--reason TEXT is required");
	id = argv[optind];
	req = json_pack("{s:s, s:s, s:s}", "op", "void", "id", id, "reason",
			reason);
	if (req == NULL) {
		qp_cli_err("reason is not valid UTF-8");
		return QP_EXIT_FAIL;
	}
	status = qp_cli_call(c, req, &reply);
	json_decref(req);
	if (status != QP_EXIT_OK)
		return status;
	printf("%s\n", json_string_value(json_object_get(reply, "id"))
			       ? json_string_value(json_object_get(reply, "id"))
			       : id);
	json_decref(reply);
	return QP_EXIT_OK;
}

int qp_cmd_get(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "meta", no_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *req, *reply = NULL, *out, *rec;
	const char *why;
	char ex[64];
	int o, meta = 0, status = QP_EXIT_OK;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "m", opts, &status)) != -1) {
		if (o == -2)
			return status;
		if (o == 'm')
			meta = 1;
	}
	if ((status = qp_cli_operands(argc, argv, 1, "ID")) != QP_EXIT_OK)
		return status;
	req = json_pack("{s:s, s:s}", "op", "get", "id", argv[optind]);
	if (req == NULL)
		return qp_cli_usage(argv[0], "ID is not valid UTF-8");
	status = qp_cli_call(c, req, &reply);
	json_decref(req);
	if (status != QP_EXIT_OK)
		return status;
	rec = json_object_get(reply, "record");
	if (!json_is_object(rec)) {
		qp_cli_err("malformed get reply from quipud");
		json_decref(reply);
		return QP_EXIT_FAIL;
	}
	if (meta) {
		out = json_pack("{s:O, s:O}", "record", rec, "meta",
				json_object_get(reply, "meta")
					? json_object_get(reply, "meta")
					: json_null());
		print_json(out);
		json_decref(out);
	} else {
		print_json(rec);
	}
	/* Without --meta a voided record would read like a live one. */
	why = json_string_value(
		json_object_get(json_object_get(reply, "meta"), "voided"));
	if (!meta && why != NULL)
		fprintf(stderr, "quipu: note: %s is voided: %s\n",
			json_string_value(json_object_get(rec, "id")),
			qp_excerpt(why, strlen(why), ex, sizeof ex));
	json_decref(reply);
	return QP_EXIT_OK;
}

int qp_cmd_list(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "format", required_argument, NULL, 'F' },
		{ "org", required_argument, NULL, 'O' },
		{ "voided", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	const char *org = NULL;
	const qp_kind *k;
	int o, fmt = QP_OUT_JSONL, voided = 0, status = QP_EXIT_OK;
	size_t n;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "F:O:", opts, &status)) !=
	       -1) {
		if (o == -2)
			return status;
		if (o == 'F' && (fmt = qp_cli_outfmt(optarg, 0)) < 0)
			return qp_cli_usage(argv[0], "--format is jsonl or "
					    "csv, not \"%s\"", optarg);
		if (o == 'O')
			org = optarg;
		if (o == 'v')
			voided = 1;
	}
	if ((status = qp_cli_operands(argc, argv, 1, "KIND")) != QP_EXIT_OK)
		return status;
	if ((k = qp_cli_kind(argv[optind])) == NULL)
		return QP_EXIT_USAGE;
	return qp_cli_list_write(c, k, org, voided, (qp_outfmt)fmt, stdout,
				 &n, NULL);
}
