/* cmd_node.c - quipu init, id, status and verify: the node as a whole. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "util.h"

static int listen_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (colon == NULL || colon == s)
		return 0;
	port = strtol(colon + 1, &end, 10);
	return colon[1] != '\0' && *end == '\0' && port > 0 && port < 65536;
}

int qp_cmd_init(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "role", required_argument, NULL, 'r' },
		{ "listen", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	const char *role = "field", *listen = NULL;
	char hex[2 * QP_KEY_LEN + 1], dflt[32];
	int o, status = QP_EXIT_OK, rc;
	static const uint8_t zero[QP_KEY_LEN];

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "r:l:", opts, &status)) != -1) {
		if (o == -2)
			return status;
		if (o == 'r')
			role = optarg;
		else if (o == 'l')
			listen = optarg;
	}
	if ((status = qp_cli_operands(argc, argv, 0, "")) != QP_EXIT_OK)
		return status;
	if (strcmp(role, "field") != 0 && strcmp(role, "hub") != 0)
		return qp_cli_usage(argv[0], "role must be field or hub, not "
				    "\"%s\"", role);
	if (listen != NULL && strcmp(role, "hub") != 0)
		return qp_cli_usage(argv[0], "--listen is for a hub (add "
				    "--role hub); a field node dials its hub");
	if (listen != NULL && !listen_ok(listen))
		return qp_cli_usage(argv[0], "--listen wants HOST:PORT, not "
				    "\"%s\"", listen);
	/* A hub is useless without a listen address: give it the default
	 * port on every interface rather than a hub nobody can reach. */
	if (listen == NULL && strcmp(role, "hub") == 0)
		listen = qp_fmt(dflt, sizeof(dflt), "0.0.0.0:%d",
				QP_DEFAULT_PORT);
	if ((status = qp_cli_paths(c)) != QP_EXIT_OK)
		return status;
	rc = qp_node_init(&c->node, role, listen);
	if (rc == QP_EEXIST) {
		qp_cli_err("%s is already initialised (it holds a key; an "
			   "identity is never replaced)", c->node.dir);
		return QP_EXIT_FAIL;
	}
	if (rc < 0) {
		qp_cli_err("cannot initialise %s: %s", c->node.dir,
			   qp_strerror(rc));
		return QP_EXIT_FAIL;
	}
	if (memcmp(c->node.pk, zero, QP_KEY_LEN) == 0) {
		rc = qp_node_load(&c->node);
		if (rc < 0) {
			qp_cli_err("%s: key made but cannot be read back: %s",
				   c->node.keyfile, qp_strerror(rc));
			return QP_EXIT_FAIL;
		}
	}
	qp_hex(c->node.pk, QP_KEY_LEN, hex);
	printf("%s\n", hex);
	return QP_EXIT_OK;
}

int qp_cmd_id(qp_cli *c, int argc, char **argv)
{
	char hex[2 * QP_KEY_LEN + 1];
	int status, rc;

	if (!qp_cli_no_args(c, argc, argv, &status))
		return status;
	if ((status = qp_cli_paths(c)) != QP_EXIT_OK)
		return status;
	rc = qp_node_load(&c->node);
	if (rc == QP_EPROTO && c->node.cfg_err[0] != '\0' &&
	    access(c->node.config, F_OK) == 0) {
		qp_cli_err("%s (%s)", c->node.cfg_err, c->node.config);
		return QP_EXIT_FAIL;
	}
	if (rc < 0) {
		qp_cli_err("%s: %s (run quipu -d %s init first?)",
			   rc == QP_EPROTO ? c->node.config : c->node.keyfile,
			   qp_strerror(rc), c->node.dir);
		return QP_EXIT_FAIL;
	}
	qp_hex(c->node.pk, QP_KEY_LEN, hex);
	printf("%s\n", hex);
	return QP_EXIT_OK;
}

/* A status value: the reply carries the store statistics in "store" and
 * the daemon's figures in "daemon" (top level first, for "key"). */
static const json_t *sget(const json_t *reply, const char *key)
{
	static const char *const parts[] = { "store", "stats", "daemon", NULL };
	const json_t *v = json_object_get(reply, key);
	size_t i;

	for (i = 0; v == NULL && parts[i] != NULL; i++)
		v = json_object_get(json_object_get(reply, parts[i]), key);
	return v;
}

static void fmt_size(char *buf, size_t len, double b)
{
	if (b >= (double)(1u << 30))
		qp_fmt(buf, len, "%.1f GiB", b / (double)(1u << 30));
	else if (b >= (double)(1u << 20))
		qp_fmt(buf, len, "%.1f MiB", b / (double)(1u << 20));
	else
		qp_fmt(buf, len, "%.0f KiB", b / 1024);
}

static void print_map(const json_t *size, const json_t *used)
{
	char a[32], b[32];

	if (!json_is_integer(size))
		return;
	fmt_size(a, sizeof(a), (double)json_integer_value(size));
	if (json_is_integer(used)) {
		fmt_size(b, sizeof(b), (double)json_integer_value(used));
		printf("%-12s %s (%s used)\n", "map size", a, b);
	} else {
		printf("%-12s %s\n", "map size", a);
	}
}

static void print_value(const char *label, const json_t *v)
{
	char *s;

	if (v == NULL)
		return;
	if (json_is_string(v)) {
		printf("%-12s %s\n", label, json_string_value(v));
		return;
	}
	s = qp_cli_dumps(v);
	printf("%-12s %s\n", label, s);
	free(s);
}

/* Bundle imports under way: how far each has got. */
static void print_imports(const json_t *a)
{
	const json_t *e;
	size_t i;

	json_array_foreach(a, i, e)
		printf("%-12s %s: %lld of %lld deltas stored\n", "importing",
		       json_string_value(json_object_get(e, "path")),
		       (long long)json_integer_value(json_object_get(e, "done")),
		       (long long)json_integer_value(json_object_get(e, "deltas")));
}

/* The backup schedule (node.json "backup"): when the last one was made,
 * or why the last attempt failed, and when the next is due. */
static void print_backup(const json_t *b)
{
	const char *ok, *err;
	long long next;
	char when[64];

	if (!json_is_object(b))
		return;
	ok = json_string_value(json_object_get(b, "last_ok"));
	err = json_string_value(json_object_get(b, "last_error"));
	next = (long long)json_integer_value(json_object_get(b, "next_in_s"));
	if (json_is_true(json_object_get(b, "running")))
		snprintf(when, sizeof when, "one under way");
	else if (next >= 7200)
		snprintf(when, sizeof when, "next in %.1f h", (double)next / 3600);
	else if (next < 120)
		snprintf(when, sizeof when, "next in %lld s", next);
	else
		snprintf(when, sizeof when, "next in %lld min", (next + 59) / 60);
	if (err != NULL)
		printf("%-12s FAILED at %s: %s; last good: %s; %s\n", "backup",
		       json_string_value(json_object_get(b, "last_error_at")),
		       err, ok ? ok : "none", when);
	else if (ok != NULL)
		printf("%-12s %s to %s; %s\n", "backup", ok,
		       json_string_value(json_object_get(b, "last_path")), when);
	else
		printf("%-12s none yet to %s; %s\n", "backup",
		       json_string_value(json_object_get(b, "dir")), when);
}

/* The daemon's clock; a date that is wrong (far behind what the node
 * already holds) is said plainly, with what to do. */
static void print_clock(const json_t *c)
{
	const char *now = json_string_value(json_object_get(c, "now"));
	const char *last = json_string_value(json_object_get(c, "last_stamp"));
	json_int_t behind = json_integer_value(json_object_get(c, "behind_s"));

	if (now == NULL)
		return;
	if (!json_is_true(json_object_get(c, "wrong"))) {
		printf("%-12s %s\n", "clock", now);
		return;
	}
	printf("%-12s %s: WRONG, %lld days behind what this node already "
	       "recorded (%s); set the device's date and time\n", "clock", now,
	       (long long)(behind / 86400), last ? last : "?");
}

static void print_uptime(const json_t *v)
{
	long long s, d, h, m;
	char buf[64];

	if (!json_is_integer(v))
		return;
	s = (long long)json_integer_value(v);
	d = s / 86400;
	h = s / 3600 % 24;
	m = s / 60 % 60;
	if (d > 0)
		qp_fmt(buf, sizeof(buf), "%lldd %lldh %02lldm", d, h, m);
	else if (h > 0)
		qp_fmt(buf, sizeof(buf), "%lldh %02lldm %02llds", h, m, s % 60);
	else if (m > 0)
		qp_fmt(buf, sizeof(buf), "%lldm %02llds", m, s % 60);
	else
		qp_fmt(buf, sizeof(buf), "%llds", s);
	printf("%-12s %s\n", "uptime", buf);
}

static void print_records(const json_t *recs)
{
	const char *kind;
	json_t *n;
	json_int_t total = 0;
	int first = 1;

	if (!json_is_object(recs))
		return;
	json_object_foreach((json_t *)recs, kind, n)
		total += json_integer_value(n);
	printf("%-12s %lld", "records", (long long)total);
	json_object_foreach((json_t *)recs, kind, n) {
		if (json_integer_value(n) == 0)
			continue;
		printf("%s%s %lld", first ? " (" : ", ", kind,
		       (long long)json_integer_value(n));
		first = 0;
	}
	printf("%s\n", first ? "" : ")");
}

/* Text of a peer's member for a status line: control characters blanked
 * (it may come from the network), dflt when absent, null or empty. */
static void peer_text(FILE *out, const json_t *p, const char *key,
		      const char *dflt)
{
	const json_t *v = json_object_get(p, key);
	const char *s = json_string_value(v);
	char *dump = NULL;

	if (v == NULL || json_is_null(v) || (s != NULL && *s == '\0'))
		s = dflt;
	else if (s == NULL)
		s = dump = qp_cli_dumps(v);
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, out);
	free(dump);
}

/* One line per sync peer:
 * "peer KEY16 NAME STATE: pending N, last ack ISO, last success ISO,
 * last error: TEXT". */
static void print_peers(const json_t *peers)
{
	const json_t *p, *key;
	size_t i;

	json_array_foreach(peers, i, p) {
		key = json_object_get(p, "key");
		printf("peer %.16s ",
		       json_is_string(key) ? json_string_value(key) : "?");
		peer_text(stdout, p, "name", "-");
		putchar(' ');
		peer_text(stdout, p, "state", "?");
		printf(": pending ");
		peer_text(stdout, p, "pending", "?");
		printf(", last ack ");
		peer_text(stdout, p, "last_ack", "never");
		printf(", last success ");
		peer_text(stdout, p, "last_success", "never");
		printf(", last error: ");
		peer_text(stdout, p, "last_error", "none");
		putchar('\n');
	}
}

/* "commit time  0.41 ms per durable commit (writes 0.78 ms per batch)":
 * the disk's share of a batch of local writes, and the whole store write
 * (checks, state, signing and the commit). */
/* Average time of a durable commit (n of them took commit_us) and of a
 * whole store write (batches of them took write_us). */
static void print_commit_time(const json_t *n, const json_t *commit_us,
			      const json_t *batches, const json_t *write_us)
{
	json_int_t k = json_integer_value(n), b = json_integer_value(batches);

	if (k <= 0 || b <= 0 || !json_is_integer(commit_us) ||
	    !json_is_integer(write_us))
		return;
	printf("%-12s %.2f ms per durable commit (whole write %.2f ms per "
	       "batch)\n", "commit time",
	       (double)json_integer_value(commit_us) / 1000.0 / (double)k,
	       (double)json_integer_value(write_us) / 1000.0 / (double)b);
}

int qp_cmd_status(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "json", no_argument, NULL, 'j' },
		{ "digest", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const plain[] = {
		"deltas", "feeds", "conflicts", "quarantine", NULL,
	};
	json_t *req, *reply = NULL;
	const json_t *v;
	int o, status = QP_EXIT_OK, as_json = 0, digest = 0;
	size_t i;
	char *s;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "j", opts, &status)) != -1) {
		if (o == -2)
			return status;
		if (o == 'j')
			as_json = 1;
		if (o == 'D')
			digest = 1;
	}
	if ((status = qp_cli_operands(argc, argv, 0, "")) != QP_EXIT_OK)
		return status;
	req = json_pack("{s:s, s:b}", "op", "status", "digest", digest);
	status = qp_cli_call(c, req, &reply);
	json_decref(req);
	if (status != QP_EXIT_OK)
		return status;
	if (as_json) {
		s = qp_cli_dumps(reply);
		printf("%s\n", s);
		free(s);
		json_decref(reply);
		return QP_EXIT_OK;
	}
	print_value("key", sget(reply, "key"));
	print_value("role", sget(reply, "role"));
	print_value("version", sget(reply, "version"));
	print_value("data", sget(reply, "data"));
	print_value("pid", sget(reply, "pid"));
	print_uptime(sget(reply, "uptime_s"));
	print_clock(sget(reply, "clock"));
	print_records(sget(reply, "records"));
	for (i = 0; plain[i] != NULL; i++)
		print_value(plain[i], sget(reply, plain[i]));
	print_map(sget(reply, "map_size"), sget(reply, "map_used"));
	print_value("digest", sget(reply, "digest"));
	print_value("clients", sget(reply, "clients"));
	print_value("requests", sget(reply, "requests"));
	print_value("commits", sget(reply, "durable_commits"));
	if ((v = sget(reply, "write_requests")) != NULL)
		printf("%-12s %lld requests in %lld batches, %lld records "
		       "(largest group commit: %lld requests)\n", "writes",
		       (long long)json_integer_value(v),
		       (long long)json_integer_value(
			       sget(reply, "write_batches")),
		       (long long)json_integer_value(
			       sget(reply, "records_written")),
		       (long long)json_integer_value(sget(reply, "max_batch")));
	print_commit_time(sget(reply, "durable_commits"),
			  sget(reply, "commit_us"), sget(reply, "write_batches"),
			  sget(reply, "write_us"));
	if (json_is_true(sget(reply, "restored_copy")))
		printf("%-12s %s\n", "restored",
		       json_is_true(sget(reply, "restored_settle"))
			   ? "a copy of this hub's data: local writes wait until "
			     "the devices have synced back what it wrote after "
			     "the backup and you run `quipu settle`"
			   : "a copy of this node's data: local writes wait "
			     "until `quipu sync --wait` reaches the hub");
	print_backup(sget(reply, "backup"));
	print_peers(sget(reply, "peers"));
	print_imports(json_object_get(reply, "bundle_imports"));
	json_decref(reply);
	return QP_EXIT_OK;
}

int qp_cmd_verify(qp_cli *c, int argc, char **argv)
{
	json_t *reply = NULL;
	const json_t *rep;
	const char *digest, *rebuilt;
	int status = qp_cli_call_op(c, argc, argv, "verify", &reply);

	if (status != QP_EXIT_OK)
		return status;
	rep = json_object_get(reply, "report");
	if (!json_is_object(rep))
		rep = reply;
	digest = json_string_value(json_object_get(rep, "digest"));
	rebuilt = json_string_value(json_object_get(rep, "rebuilt_digest"));
	if (json_is_false(json_object_get(rep, "ok")) ||
	    (digest && rebuilt && strcmp(digest, rebuilt) != 0)) {
		const char *e = json_string_value(json_object_get(rep, "error"));

		if (e != NULL && *e)
			qp_cli_err("verify failed: %s", e);
		else if (digest && rebuilt)
			qp_cli_err("verify failed: state digest %s does not "
				   "match %s rebuilt from the log", digest,
				   rebuilt);
		else
			qp_cli_err("verify failed: the log does not verify");
		json_decref(reply);
		return QP_EXIT_FAIL;
	}
	printf("verified %lld deltas, %lld ops, %lld records; state digest %s "
	       "matches the log\n",
	       (long long)json_integer_value(json_object_get(rep, "deltas")),
	       (long long)json_integer_value(json_object_get(rep, "ops")),
	       (long long)json_integer_value(json_object_get(rep, "records")),
	       digest ? digest : "?");
	json_decref(reply);
	return QP_EXIT_OK;
}
