/* cli.c - see cli.h: context, errors, options and input shared by commands. */
#include "cli.h"

#include <math.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "geo.h"
#include "util.h"
#include "wire.h"

void qp_cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("quipu: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int qp_cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "quipu: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see quipu %s --help)\n", cmd);
	return QP_EXIT_USAGE;
}

int qp_cli_getopt(qp_cli *c, int argc, char **argv, const char *shortopts,
		  const struct option *longopts, int *status)
{
	char opts[64];
	const qp_cmd *cmd = qp_cli_cmd(argv[0]);
	const char *bad;
	int o;

	/* A leading ':' makes getopt report a missing argument as ':'. */
	qp_fmt(opts, sizeof(opts), ":%s%s", QP_CLI_COMMON_SHORT, shortopts);
	opterr = 0;
	o = getopt_long(argc, argv, opts, longopts, NULL);
	bad = optind > 1 && optind <= argc ? argv[optind - 1] : "?";
	switch (o) {
	case 'h':
		fputs(cmd != NULL ? cmd->usage : "", stdout);
		*status = QP_EXIT_OK;
		return -2;
	case 'd':
		c->opt_dir = optarg;
		return qp_cli_getopt(c, argc, argv, shortopts, longopts,
				     status);
	case ':':
		*status = qp_cli_usage(argv[0], "option %s needs a value", bad);
		return -2;
	case '?':
		if (optopt != 0)
			*status = qp_cli_usage(argv[0], "unknown option -%c",
					       optopt);
		else
			*status = qp_cli_usage(argv[0], "unknown option %s",
					       bad);
		return -2;
	default:
		return o;
	}
}

int qp_cli_json_opts(qp_cli *c, int argc, char **argv, int nops, int *json)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int o, status = QP_EXIT_OK;

	*json = 0;
	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "j", opts, &status)) != -1) {
		if (o == -2)
			return status;
		if (o == 'j')
			*json = 1;
	}
	if (nops >= 0 && qp_cli_operands(argc, argv, nops, "argument") != 0)
		return QP_EXIT_USAGE;
	return -1;
}

int qp_cli_operands(int argc, char **argv, int want, const char *what)
{
	if (argc - optind < want)
		return qp_cli_usage(argv[0], "missing %s", what);
	if (argc - optind > want)
		return qp_cli_usage(argv[0], "unexpected argument \"%s\"",
				    argv[optind + want]);
	return QP_EXIT_OK;
}

int qp_cli_paths(qp_cli *c)
{
	int rc;

	if (c->have_paths)
		return QP_EXIT_OK;
	rc = qp_node_paths(&c->node, c->opt_dir);
	if (rc < 0) {
		qp_cli_err("cannot resolve the data directory: %s%s",
			   qp_strerror(rc),
			   c->opt_dir ? "" : " (set -d DIR or QUIPU_DATA)");
		return QP_EXIT_USAGE;
	}
	c->have_paths = 1;
	return QP_EXIT_OK;
}

/* When no quipud can run on the data directory at all (it does not exist,
 * is not a directory, or holds no node: `init` writes DIR/key), say so in
 * one line and return 1; return 0 when it looks like a node. */
static int no_node(const qp_node *n)
{
	struct stat st;

	if (stat(n->dir, &st) != 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			return 0;
		qp_cli_err("no node at %s: the directory does not exist "
			   "(create one with: quipu -d %s init)", n->dir,
			   n->dir);
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		qp_cli_err("%s is not a directory (the data directory is "
			   "the one `quipu init` made)", n->dir);
		return 1;
	}
	if (access(n->keyfile, F_OK) != 0 && errno == ENOENT) {
		qp_cli_err("no node at %s: it holds no key file (create one "
			   "with: quipu -d %s init)", n->dir, n->dir);
		return 1;
	}
	return 0;
}

int qp_cli_connect(qp_cli *c)
{
	int rc;

	if (c->api != NULL)
		return QP_EXIT_OK;
	rc = qp_cli_paths(c);
	if (rc != QP_EXIT_OK)
		return rc;
	rc = qp_api_connect(c->node.sock, c->timeout_ms, &c->api);
	if (rc < 0 && no_node(&c->node))
		return QP_EXIT_CONN;
	if (rc < 0) {
		qp_cli_err("cannot reach quipud at %s: %s (is it running? "
			   "start it with: quipud -d %s)",
			   c->node.sock,
			   rc == QP_EINVAL ? "socket path too long"
					   : qp_strerror(rc),
			   c->node.dir);
		return QP_EXIT_CONN;
	}
	return QP_EXIT_OK;
}

int qp_cli_api_fail(qp_cli *c, int rc)
{
	switch (rc) {
	case QP_ECLOSED:
		qp_cli_err("quipud closed the connection (did it stop?)");
		return QP_EXIT_CONN;
	case QP_ETIMEDOUT:
		qp_cli_err("no reply from quipud within %d s",
			   c->timeout_ms / 1000);
		return QP_EXIT_CONN;
	case QP_EPROTO:
		qp_cli_err("malformed reply from quipud");
		return QP_EXIT_FAIL;
	case QP_ETOOBIG:
		qp_cli_err("request larger than the %u MiB the local API "
			   "takes", QP_API_MAX_FRAME >> 20);
		return QP_EXIT_FAIL;
	default:
		qp_cli_err("talking to quipud: %s", qp_strerror(rc));
		return rc <= -1000 ? QP_EXIT_FAIL : QP_EXIT_CONN;
	}
}

const char *qp_cli_reply_error(const json_t *reply)
{
	const char *e = json_string_value(json_object_get(reply, "error"));

	return e != NULL && e[0] != '\0' ? e : "request refused by quipud";
}

/* Member key of reply as an index below n into *out; 0, or -1. */
static int reply_index(const json_t *reply, const char *key, size_t n,
		       size_t *out)
{
	const json_t *v = json_object_get(reply, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (size_t)json_integer_value(v) >= n)
		return -1;
	*out = (size_t)json_integer_value(v);
	return 0;
}

const char *qp_cli_add_refusal(const json_t *reply, const size_t *lines,
			       size_t n, size_t *line, char *buf, size_t len)
{
	size_t i, t;

	*line = reply_index(reply, "index", n, &i) == 0 ? lines[i] : 0;
	if (reply_index(reply, "twin", n, &t) == 0)
		return qp_fmt(buf, len, "%s (also line %zu)",
			      qp_cli_reply_error(reply), lines[t]);
	return qp_fmt(buf, len, "%s", qp_cli_reply_error(reply));
}

/* The common options, then nops operands named names. */
static int common_only(qp_cli *c, int argc, char **argv, int nops,
		       const char *names, int *status)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	int o;

	*status = QP_EXIT_OK;
	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "", opts, status)) != -1)
		if (o == -2)
			return 0;
	*status = qp_cli_operands(argc, argv, nops, names);
	return *status == QP_EXIT_OK;
}

int qp_cli_no_args(qp_cli *c, int argc, char **argv, int *status)
{
	return common_only(c, argc, argv, 0, "", status);
}

const char *qp_cli_one_arg(qp_cli *c, int argc, char **argv,
			   const char *name, int *status)
{
	return common_only(c, argc, argv, 1, name, status) ? argv[optind]
							   : NULL;
}

int qp_cli_call_op(qp_cli *c, int argc, char **argv, const char *op,
		   json_t **reply)
{
	json_t *req;
	int status;

	if (!qp_cli_no_args(c, argc, argv, &status))
		return status;
	req = json_pack("{s:s}", "op", op);
	status = qp_cli_call(c, req, reply);
	json_decref(req);
	return status;
}

int qp_cli_call(qp_cli *c, json_t *req, json_t **reply)
{
	json_t *r = NULL;
	int rc;

	rc = qp_cli_connect(c);
	if (rc != QP_EXIT_OK)
		return rc;
	rc = qp_api_call(c->api, req, &r);
	if (rc < 0)
		return qp_cli_api_fail(c, rc);
	if (!json_is_true(json_object_get(r, "ok"))) {
		qp_cli_err("%s", qp_cli_reply_error(r));
		json_decref(r);
		return QP_EXIT_FAIL;
	}
	*reply = r;
	return QP_EXIT_OK;
}

int qp_cli_read_all(const char *path, size_t max, char **out, size_t *outlen)
{
	const char *name = path == NULL || strcmp(path, "-") == 0 ? NULL : path;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	struct stat st;
	ssize_t n;
	int fd, status = QP_EXIT_FAIL;

	fd = name != NULL ? open(name, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0) {
		qp_cli_err("%s: %s", name, strerror(errno));
		return QP_EXIT_FAIL;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		if ((uint64_t)st.st_size > max)
			goto toobig;
		cap = (size_t)st.st_size + 1;
	}
	if (cap < 65536)
		cap = 65536;
	buf = qp_xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max)
				goto toobig;
			cap *= 2;
			buf = qp_xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			qp_cli_err("%s: %s", name ? name : "stdin",
				   strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			goto toobig;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
	status = QP_EXIT_OK;
	goto out;
toobig:
	qp_cli_err("%s: input larger than %zu MiB", name ? name : "stdin",
		   max >> 20);
out:
	free(buf);
	if (name != NULL)
		close(fd);
	return status;
}

const qp_kind *qp_cli_kind(const char *name)
{
	const qp_kind *k = qp_schema_kind(name), *all;
	char list[512] = "";
	size_t n, i, used = 0;

	if (k != NULL)
		return k;
	all = qp_schema_kinds(&n);
	for (i = 0; i < n && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used,
					 "%s%s", i ? ", " : "", all[i].name);
	qp_cli_err("unknown kind \"%s\" (kinds: %s)", name, list);
	return NULL;
}

/* ---- JSON input ---- */

static size_t line_end(const char *buf, size_t len, size_t off)
{
	const char *nl = memchr(buf + off, '\n', len - off);

	return nl != NULL ? (size_t)(nl - buf) : len;
}

static int blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

void qp_jsonin_init(qp_jsonin *in, const char *buf, size_t len)
{
	size_t off = 0, end;
	json_error_t e;
	json_t *v;

	memset(in, 0, sizeof(*in));
	in->buf = buf;
	in->len = len;
	in->line = 1;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		in->off = off = 3;
	/* JSON lines when the first non-blank line is a whole object by
	 * itself: then each line is parsed alone and an error names exactly
	 * the broken line.  Otherwise values may span lines. */
	while (off < len) {
		end = line_end(buf, len, off);
		if (!blank(buf + off, end - off)) {
			v = json_loadb(buf + off, end - off, 0, &e);
			in->by_line = json_is_object(v);
			json_decref(v);
			return;
		}
		off = end + 1;
	}
}

static int parse_fail(size_t *line, size_t at, const json_error_t *e,
		      char *err, size_t errlen)
{
	*line = at;
	qp_fmt(err, errlen, "JSON: %s", e->text);
	return -1;
}

int qp_jsonin_next(qp_jsonin *in, json_t **obj, size_t *line, char *err,
		   size_t errlen)
{
	json_error_t e;
	json_t *v;
	size_t end, start, i;

	if (in->by_line) {
		for (;;) {
			if (in->off >= in->len)
				return 0;
			end = line_end(in->buf, in->len, in->off);
			start = in->off;
			*line = in->line;
			in->off = end + 1;
			in->line++;
			if (!blank(in->buf + start, end - start))
				break;
		}
		v = json_loadb(in->buf + start, end - start,
			       JSON_REJECT_DUPLICATES, &e);
		if (v == NULL) {
			/* A pretty-printed object among JSON lines is fine
			 * when it parses across lines; otherwise the error is
			 * the one of its own line. */
			json_error_t e2;

			v = json_loadb(in->buf + start, in->len - start,
				       JSON_DISABLE_EOF_CHECK |
					       JSON_REJECT_DUPLICATES,
				       &e2);
			if (v == NULL)
				return parse_fail(line, *line, &e, err, errlen);
			in->off = start;
			in->line = *line;
			for (i = 0; i < (size_t)e2.position && in->off < in->len;
			     i++, in->off++)
				if (in->buf[in->off] == '\n')
					in->line++;
		}
	} else {
		while (in->off < in->len &&
		       strchr(" \t\r\n", in->buf[in->off]) != NULL) {
			if (in->buf[in->off] == '\n')
				in->line++;
			in->off++;
		}
		if (in->off >= in->len)
			return 0;
		*line = in->line;
		v = json_loadb(in->buf + in->off, in->len - in->off,
			       JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES,
			       &e);
		if (v == NULL)
			return parse_fail(line,
					  in->line + (size_t)(e.line > 1
								? e.line - 1
								: 0),
					  &e, err, errlen);
		for (i = 0; i < (size_t)e.position && in->off < in->len;
		     i++, in->off++)
			if (in->buf[in->off] == '\n')
				in->line++;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		qp_fmt(err, errlen, "expected a JSON object");
		return -1;
	}
	*obj = v;
	return 1;
}

size_t qp_jsonin_offset(const qp_jsonin *in)
{
	return in->off < in->len ? in->off : in->len;
}

/* ---- JSON output ---- */

/* A growing output buffer. */
typedef struct sbuf {
	char *p;
	size_t len, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 256;
		b->p = qp_xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* The shortest "%.Ng" (N from 15 to 17) that reads back as d, written as
 * jansson writes reals: a ".0" when it would look like an integer, no '+'
 * or leading zeros in the exponent. */
static void sb_real(sbuf *b, double d)
{
	char t[48], *e;
	int p, n;

	for (p = 15; p < 17; p++) {
		snprintf(t, sizeof(t), "%.*g", p, d);
		if (strtod(t, NULL) == d)
			break;
	}
	if (p == 17)
		snprintf(t, sizeof(t), "%.17g", d);
	e = strchr(t, 'e');
	if (e != NULL) {
		n = e[1] == '-' ? 2 : 1;
		if (e[1] == '+')
			memmove(e + 1, e + 2, strlen(e + 2) + 1);
		while (e[n] == '0' && e[n + 1] != '\0')
			memmove(e + n, e + n + 1, strlen(e + n + 1) + 1);
	} else if (strchr(t, '.') == NULL) {
		strcat(t, ".0");
	}
	sb_put(b, t, strlen(t));
}

static void sb_string(sbuf *b, const char *s, size_t n)
{
	char esc[8];
	size_t i, run = 0;
	unsigned char ch;

	sb_put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		sb_put(b, s + run, i - run);
		run = i + 1;
		switch (ch) {
		case '"':
			sb_put(b, "\\\"", 2);
			break;
		case '\\':
			sb_put(b, "\\\\", 2);
			break;
		case '\n':
			sb_put(b, "\\n", 2);
			break;
		case '\r':
			sb_put(b, "\\r", 2);
			break;
		case '\t':
			sb_put(b, "\\t", 2);
			break;
		case '\b':
			sb_put(b, "\\b", 2);
			break;
		case '\f':
			sb_put(b, "\\f", 2);
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			sb_put(b, esc, 6);
		}
	}
	sb_put(b, s + run, n - run);
	sb_put(b, "\"", 1);
}

/* coords: v lies inside a GeoJSON "coordinates" member, whose numbers are
 * written with at least 6 decimals (EUDR), and more when needed to read
 * back exactly. */
static void sb_json_in(sbuf *b, const json_t *v, int coords)
{
	char c[QP_GEO_COORD_LEN];
	const char *key;
	char t[32];
	json_t *x;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		sb_put(b, "{", 1);
		i = 0;
		json_object_foreach((json_t *)v, key, x) {
			if (i++)
				sb_put(b, ",", 1);
			sb_string(b, key, strlen(key));
			sb_put(b, ":", 1);
			sb_json_in(b, x, coords || strcmp(key, "coordinates") == 0);
		}
		sb_put(b, "}", 1);
		break;
	case JSON_ARRAY:
		sb_put(b, "[", 1);
		json_array_foreach(v, i, x) {
			if (i)
				sb_put(b, ",", 1);
			sb_json_in(b, x, coords);
		}
		sb_put(b, "]", 1);
		break;
	case JSON_STRING:
		sb_string(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		if (coords && qp_geo_format_coord((double)json_integer_value(v),
						  c, sizeof(c)) == 0) {
			sb_put(b, c, strlen(c));
			break;
		}
		snprintf(t, sizeof(t), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		sb_put(b, t, strlen(t));
		break;
	case JSON_REAL:
		if (coords && qp_geo_format_coord(json_real_value(v), c,
						  sizeof(c)) == 0) {
			sb_put(b, c, strlen(c));
			break;
		}
		sb_real(b, json_real_value(v));
		break;
	case JSON_TRUE:
		sb_put(b, "true", 4);
		break;
	case JSON_FALSE:
		sb_put(b, "false", 5);
		break;
	default:
		sb_put(b, "null", 4);
		break;
	}
}

char *qp_cli_dumps(const json_t *v)
{
	sbuf b = { NULL, 0, 0 };

	sb_put(&b, "", 0);
	sb_json_in(&b, v, 0);
	return b.p;
}

void qp_cli_ha_text(double ha, char *buf, size_t len)
{
	int dec = 2;

	if (ha > 0 && ha < 1) {
		dec = 2 - (int)floor(log10(ha));
		if (dec > 8)
			dec = 8;
	}
	qp_fmt(buf, len, "%.*f", dec, ha);
}
