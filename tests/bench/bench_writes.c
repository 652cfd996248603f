/*
 * bench_writes.c - durable, acknowledged writes through a running quipud's
 * local API (proto/wire.h), spoken directly with qp_mpjson_encode, the
 * framer and qp_mpjson_decode (independent of the client in client/).
 *
 * Usage: bench_writes SOCK MODE [options]
 *   SOCK   quipud's socket (DIR/quipud.sock)
 *   MODE   rate      single-record `add` requests/s, acknowledged, with
 *                    1 request in flight, then 64 in flight as 8 connections
 *                    x 8 pipelined requests and as 64 connections x 1
 *          logbytes  write --records N attendance records in requests of
 *                    --batch B (one request in flight) and report the log
 *                    bytes per record from the status deltas
 *   --seconds S      duration of each rate measurement (default 2)
 *   --baseline R     records/s of bench_lmdb_fsync: adds "ratio_to_baseline"
 *   --records N      logbytes: records to write (default 10000)
 *   --batch B        logbytes: records per request (default 500)
 *
 * Every record is an attendance of one of 64 producers at one session of a
 * service of an organisation that the benchmark creates first (a fresh org
 * each run, so runs can share a node).  Each result is one JSON line on
 * stdout; progress and errors go to stderr.  Exit 0, or 1 on any error
 * (including a refused write).
 */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "frame.h"
#include "mpjson.h"
#include "util.h"
#include "wire.h"

/* Attendance names each (session, producer) pair once, as the store
 * requires: NSESSIONS x NPRODUCERS records at most per run. */
#define NPRODUCERS 256
#define NSESSIONS 8192
#define MAXCONN 64

typedef struct conn {
	int fd;
	qp_framer fr;
	uint64_t next_rid;   /* rid of the next request sent */
	uint64_t want_rid;   /* rid of the next reply expected */
	int inflight;
} conn;

typedef struct bench {
	const char *sock;
	char org[40];
	char producers[NPRODUCERS][40];
	char (*sessions)[40]; /* NSESSIONS */
	uint64_t seq; /* picks the producer and session of the next record */
} bench;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int conn_open(conn *c, const char *path)
{
	struct sockaddr_un sa;
	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->next_rid = c->want_rid = 1;
	qp_framer_init(&c->fr, QP_API_MAX_FRAME);
	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "bench_writes: socket path too long\n");
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		fprintf(stderr, "bench_writes: connect %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

static void conn_close(conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	qp_framer_free(&c->fr);
}

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Send req (its "v" and "rid" set here) on c. */
static int conn_send(conn *c, json_t *req)
{
	char *body = NULL;
	size_t len = 0;
	uint8_t hdr[QP_FRAME_HDR];
	int rc;

	json_object_set_new(req, "v", json_integer(QP_API_VERSION));
	json_object_set_new(req, "rid", json_integer((json_int_t)c->next_rid));
	if ((rc = qp_mpjson_encode(req, &body, &len)) != 0)
		return rc;
	qp_frame_header(hdr, (uint32_t)len);
	rc = write_all(c->fd, hdr, sizeof hdr);
	if (rc == 0)
		rc = write_all(c->fd, body, len);
	free(body);
	if (rc == 0) {
		c->next_rid++;
		c->inflight++;
	}
	return rc;
}

/* Take one complete reply from c's framer, if held: returns 1 with *reply
 * set, 0 when more bytes are needed, <0 on error. */
static int conn_take(conn *c, json_t **reply)
{
	const uint8_t *body;
	uint32_t len;
	json_t *r = NULL, *rid;
	int rc = qp_framer_next(&c->fr, &body, &len);
	if (rc <= 0)
		return rc;
	if ((rc = qp_mpjson_decode((const char *)body, len, QP_API_MAX_FRAME,
				   &r)) != 0)
		return rc;
	rid = json_object_get(r, "rid");
	if (!json_is_integer(rid) ||
	    (uint64_t)json_integer_value(rid) != c->want_rid) {
		char *s = json_dumps(r, JSON_COMPACT);
		fprintf(stderr, "bench_writes: unexpected reply %s\n", s);
		free(s);
		json_decref(r);
		return QP_EPROTO;
	}
	c->want_rid++;
	c->inflight--;
	*reply = r;
	return 1;
}

/* Read once from c into its framer (blocking). */
static int conn_fill(conn *c)
{
	char buf[65536];
	ssize_t n;
	do
		n = recv(c->fd, buf, sizeof buf, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return QP_ECLOSED;
	return qp_framer_feed(&c->fr, buf, (size_t)n);
}

/* Wait for the next reply on c. */
static int conn_recv(conn *c, json_t **reply)
{
	int rc;
	while ((rc = conn_take(c, reply)) == 0)
		if ((rc = conn_fill(c)) != 0)
			return rc;
	return rc < 0 ? rc : 0;
}

/* A reply must be ok; otherwise print why. */
static int reply_ok(json_t *r, const char *what)
{
	if (json_is_true(json_object_get(r, "ok")))
		return 0;
	fprintf(stderr, "bench_writes: %s refused: %s\n", what,
		json_string_value(json_object_get(r, "error")) ?
			json_string_value(json_object_get(r, "error")) :
			"(no error text)");
	return -1;
}

/* One request and its reply on c; *reply is ok or an error was printed. */
static int call(conn *c, json_t *req, json_t **reply, const char *what)
{
	json_t *r = NULL;
	int rc = conn_send(c, req);
	if (rc == 0)
		rc = conn_recv(c, &r);
	if (rc != 0) {
		fprintf(stderr, "bench_writes: %s: %s\n", what, qp_strerror(rc));
		return -1;
	}
	if (reply_ok(r, what) != 0) {
		json_decref(r);
		return -1;
	}
	*reply = r;
	return 0;
}

/* add KIND with records (stolen); copies the first id to id_out (40 bytes)
 * and the others to ids[] when given. */
static int add(conn *c, const char *kind, json_t *records, char *id_out,
	       char (*ids)[40])
{
	json_t *req = json_pack("{s:s, s:s, s:o}", "op", "add", "kind", kind,
				"records", records);
	json_t *r = NULL, *arr;
	size_t i;
	int rc = call(c, req, &r, kind);
	json_decref(req);
	if (rc != 0)
		return -1;
	arr = json_object_get(r, "ids");
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		fprintf(stderr, "bench_writes: add %s: reply without ids\n", kind);
		json_decref(r);
		return -1;
	}
	for (i = 0; i < json_array_size(arr); i++) {
		const char *s = json_string_value(json_array_get(arr, i));
		if (s == NULL)
			s = "";
		if (i == 0 && id_out != NULL)
			qp_fmt(id_out, 40, "%s", s);
		if (ids != NULL)
			qp_fmt(ids[i], 40, "%s", s);
	}
	json_decref(r);
	return 0;
}

/* An 11-digit RUC with prefix 20 and a valid SUNAT check digit; random so
 * each run makes a new organisation. */
static void make_ruc(char out[12])
{
	static const int w[10] = {5, 4, 3, 2, 7, 6, 5, 4, 3, 2};
	unsigned seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
	int i, s = 0, r;
	srand(seed);
	out[0] = '2';
	out[1] = '0';
	for (i = 2; i < 10; i++)
		out[i] = (char)('0' + rand() % 10);
	for (i = 0; i < 10; i++)
		s += (out[i] - '0') * w[i];
	r = 11 - s % 11;
	if (r == 10)
		r = 0;
	else if (r == 11)
		r = 1;
	out[10] = (char)('0' + r);
	out[11] = '\0';
}

/* Create the org, service, session and producers the records refer to. */
static int setup(bench *b, conn *c)
{
	char ruc[12], svc[40];
	json_t *recs;
	int i;

	make_ruc(ruc);
	if (add(c, "org",
		json_pack("[{s:s, s:s, s:s, s:s}]", "ruc", ruc, "name",
			  "Cooperativa Agraria de Prueba de Carga", "type",
			  "cooperative", "region", "Junín"),
		b->org, NULL) != 0)
		return -1;
	if (add(c, "service",
		json_pack("[{s:s, s:s, s:s, s:s}]", "org", b->org, "title",
			  "Manejo integrado de la roya", "area", "production",
			  "provider", "Programa de prueba"),
		svc, NULL) != 0)
		return -1;
	b->sessions = qp_xcalloc(NSESSIONS, sizeof(*b->sessions));
	for (i = 0; i < NSESSIONS; i += 1024) {
		int j;
		recs = json_array();
		for (j = i; j < i + 1024; j++) {
			char at[32];
			/* One a day from 2026-01-01, at 09:00 or 14:00. */
			qp_fmt(at, sizeof at, "2026-%02d-%02dT%02d:00:00-05:00",
			       1 + (j / 2 / 28) % 12, 1 + (j / 2) % 28,
			       j % 2 ? 14 : 9);
			json_array_append_new(
			    recs, json_pack("{s:s, s:s, s:s}", "org", b->org,
					    "service", svc, "starts_at", at));
		}
		if (add(c, "session", recs, NULL, b->sessions + i) != 0)
			return -1;
	}
	recs = json_array();
	for (i = 0; i < NPRODUCERS; i++) {
		char dni[9], name[64];
		qp_fmt(dni, sizeof dni, "%08d", 47000000 + i);
		qp_fmt(name, sizeof name, "Productor de Carga %d", i);
		json_array_append_new(recs, json_pack("{s:s, s:s, s:s, s:s}",
						      "org", b->org, "dni", dni,
						      "name", name, "sex",
						      i % 2 ? "M" : "F"));
	}
	return add(c, "producer", recs, NULL, b->producers);
}

static json_t *attendance(bench *b)
{
	static const char *const st[] = {"present", "present", "left-early",
					 "absent"};
	uint64_t k = b->seq++;
	if (k >= (uint64_t)NPRODUCERS * NSESSIONS) {
		fprintf(stderr, "bench_writes: more than %d attendance records "
			"in one run; shorten QP_BENCH_SECONDS\n",
			NPRODUCERS * NSESSIONS);
		exit(1);
	}
	return json_pack("{s:s, s:s, s:s, s:s}", "org", b->org, "session",
			 b->sessions[k / NPRODUCERS], "producer",
			 b->producers[k % NPRODUCERS], "status",
			 st[(k / NPRODUCERS) % 4]);
}

static json_t *add_req(bench *b, size_t nrec)
{
	json_t *recs = json_array();
	size_t i;
	for (i = 0; i < nrec; i++)
		json_array_append_new(recs, attendance(b));
	return json_pack("{s:s, s:s, s:o}", "op", "add", "kind", "attendance",
			 "records", recs);
}

static void emit(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
				   JSON_REAL_PRECISION(10));
	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(o);
}

/* ncon connections, depth requests in flight on each, for secs seconds.
 * Returns acknowledged requests per second, or < 0 on error. */
static double run_rate(bench *b, int ncon, int depth, double secs,
		       uint64_t *done_out, double *elapsed_out)
{
	conn cs[MAXCONN];
	struct pollfd pf[MAXCONN];
	uint64_t done = 0;
	double t0, t1, rate = -1;
	int i, opened = 0, stop = 0, inflight = 0;

	for (i = 0; i < ncon; i++) {
		int rc = conn_open(&cs[i], b->sock);
		opened++;
		if (rc != 0)
			goto out;
	}
	t0 = now_s();
	for (i = 0; i < ncon; i++)
		for (int d = 0; d < depth; d++) {
			json_t *req = add_req(b, 1);
			int rc = conn_send(&cs[i], req);
			json_decref(req);
			if (rc != 0) {
				fprintf(stderr, "bench_writes: send: %s\n",
					qp_strerror(rc));
				goto out;
			}
			inflight++;
		}
	while (inflight > 0) {
		for (i = 0; i < ncon; i++) {
			pf[i].fd = cs[i].fd;
			pf[i].events = cs[i].inflight > 0 ? POLLIN : 0;
			pf[i].revents = 0;
		}
		if (poll(pf, (nfds_t)ncon, 30000) <= 0) {
			fprintf(stderr, "bench_writes: no reply within 30 s\n");
			goto out;
		}
		for (i = 0; i < ncon; i++) {
			json_t *r = NULL;
			int rc;
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if ((rc = conn_fill(&cs[i])) != 0) {
				fprintf(stderr, "bench_writes: read: %s\n",
					qp_strerror(rc));
				goto out;
			}
			while ((rc = conn_take(&cs[i], &r)) == 1) {
				int bad = reply_ok(r, "add attendance");
				json_decref(r);
				if (bad)
					goto out;
				done++;
				inflight--;
				if (!stop && now_s() - t0 >= secs)
					stop = 1;
				if (!stop) {
					json_t *req = add_req(b, 1);
					rc = conn_send(&cs[i], req);
					json_decref(req);
					if (rc != 0) {
						fprintf(stderr,
							"bench_writes: send: %s\n",
							qp_strerror(rc));
						goto out;
					}
					inflight++;
				}
			}
			if (rc < 0) {
				fprintf(stderr, "bench_writes: reply: %s\n",
					qp_strerror(rc));
				goto out;
			}
		}
	}
	t1 = now_s();
	*done_out = done;
	*elapsed_out = t1 - t0;
	rate = (double)done / (t1 - t0);
out:
	for (i = 0; i < opened; i++)
		conn_close(&cs[i]);
	return rate;
}

/* Find key in the status reply: at top level or one object deep. */
static json_t *status_get(json_t *st, const char *key)
{
	json_t *v = json_object_get(st, key), *sub;
	const char *k;
	if (v != NULL)
		return v;
	json_object_foreach(st, k, sub)
		if (json_is_object(sub) && (v = json_object_get(sub, key)) != NULL)
			return v;
	return NULL;
}

static int status(conn *c, json_t **out)
{
	json_t *req = json_pack("{s:s}", "op", "status");
	int rc = call(c, req, out, "status");
	json_decref(req);
	return rc;
}

static double num(json_t *v)
{
	return json_is_number(v) ? json_number_value(v) : -1;
}

/* x to one decimal. */
static double round1(double x)
{
	return (double)(int64_t)(x * 10 + 0.5) / 10;
}

/* User and system CPU seconds process pid has used (from /proc: the
 * daemon runs on this machine); -1 when they cannot be read. */
static int cpu_seconds(long pid, double *user, double *sys)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	long tck = sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if (pid <= 0 || tck <= 0 || (f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15, counted after the command name's ')'. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &ut, &st) != 2)
		return -1;
	*user = (double)ut / (double)tck;
	*sys = (double)st / (double)tck;
	return 0;
}

/* What quipud's status says of the commits between s0 and s1: how many
 * records each durable commit carried, the time of the commit alone (LMDB's
 * page writes and fsyncs) and of the whole store write, the share of the
 * wall time el spent in the commit, and commit_bound: the rate if nothing
 * but the commit took time (records per commit / commit time). */
static void commit_figures(json_t *o, json_t *s0, json_t *s1, double el,
			   double baseline)
{
	double n = num(status_get(s1, "durable_commits")) -
		   num(status_get(s0, "durable_commits"));
	double cus = num(status_get(s1, "commit_us")) -
		     num(status_get(s0, "commit_us"));
	double wus = num(status_get(s1, "write_us")) -
		     num(status_get(s0, "write_us"));
	double rec = num(status_get(s1, "records_written")) -
		     num(status_get(s0, "records_written"));
	double per, bound;

	if (n <= 0 || cus <= 0 || el <= 0)
		return;
	per = rec / n;
	bound = per / (cus / n) * 1e6;
	json_object_set_new(o, "records_per_commit",
			    json_real((double)(int64_t)(per * 10) / 10));
	json_object_set_new(o, "commit_us",
			    json_real((double)(int64_t)(cus / n * 10) / 10));
	json_object_set_new(o, "store_write_us",
			    json_real((double)(int64_t)(wus / n * 10) / 10));
	json_object_set_new(o, "commit_share",
			    json_real((double)(int64_t)(cus / 1e6 / el * 100) / 100));
	json_object_set_new(o, "commit_bound",
			    json_real((double)(int64_t)(bound * 10) / 10));
	if (baseline > 0)
		json_object_set_new(o, "commit_bound_ratio",
				    json_real((double)(int64_t)(bound / baseline * 100) / 100));
}

static int mode_rate(bench *b, conn *c, double secs, double baseline)
{
	static const struct {
		const char *name;
		int ncon, depth;
	} runs[] = {
		{"write_1_inflight", 1, 1},
		{"write_64_inflight_8conn", 8, 8},
		{"write_64_inflight_64conn", 64, 1},
	};
	size_t i;
	for (i = 0; i < sizeof runs / sizeof runs[0]; i++) {
		uint64_t done = 0;
		double el = 0, rate;
		json_t *o, *s0 = NULL, *s1 = NULL;
		fprintf(stderr, "bench_writes: %s for %.1f s\n", runs[i].name,
			secs);
		double u0 = 0, y0 = 0, u1 = 0, y1 = 0;
		long pid;
		int cpu;
		if (status(c, &s0) != 0)
			return -1;
		pid = (long)num(status_get(s0, "pid"));
		cpu = cpu_seconds(pid, &u0, &y0);
		rate = run_rate(b, runs[i].ncon, runs[i].depth, secs, &done, &el);
		if (cpu == 0)
			cpu = cpu_seconds(pid, &u1, &y1);
		if (rate < 0 || status(c, &s1) != 0) {
			json_decref(s0);
			return -1;
		}
		o = json_pack("{s:s, s:f, s:s, s:i, s:i, s:i, s:I, s:f, s:i}",
			      "bench", runs[i].name, "value",
			      (double)(int64_t)(rate * 10) / 10, "unit",
			      "records/s", "inflight",
			      runs[i].ncon * runs[i].depth, "connections",
			      runs[i].ncon, "per_connection", runs[i].depth,
			      "requests", (json_int_t)done, "seconds",
			      (double)(int64_t)(el * 1000) / 1000,
			      "records_per_request", 1);
		if (baseline > 0) {
			json_object_set_new(o, "baseline", json_real(baseline));
			json_object_set_new(
				o, "ratio_to_baseline",
				json_real((double)(int64_t)(rate / baseline * 100) /
					  100));
		}
		commit_figures(o, s0, s1, el, baseline);
		/* Where quipud's time went: CPU per record, and how busy its
		 * one thread was (1.0: never waiting). */
		if (cpu == 0 && done > 0 && el > 0) {
			json_object_set_new(o, "daemon_user_us_per_record",
					    json_real(round1((u1 - u0) * 1e6 / (double)done)));
			json_object_set_new(o, "daemon_sys_us_per_record",
					    json_real(round1((y1 - y0) * 1e6 / (double)done)));
			json_object_set_new(o, "daemon_busy",
					    json_real(round1((u1 - u0 + y1 - y0) / el * 10) / 10));
		}
		json_decref(s0);
		json_decref(s1);
		emit(o);
	}
	return 0;
}

static int mode_logbytes(bench *b, conn *c, long nrec, long batch)
{
	json_t *s0 = NULL, *s1 = NULL, *o;
	double lb0, lb1, d0, d1, mu0, mu1, t0, t1;
	long left = nrec;
	int ret = -1;

	if (status(c, &s0) != 0)
		return -1;
	fprintf(stderr, "bench_writes: %ld attendance records in requests of %ld\n",
		nrec, batch);
	t0 = now_s();
	while (left > 0) {
		size_t n = (size_t)(left < batch ? left : batch);
		json_t *req = add_req(b, n), *r = NULL;
		int rc = call(c, req, &r, "add attendance");
		json_decref(req);
		if (rc != 0)
			goto out;
		json_decref(r);
		left -= (long)n;
	}
	t1 = now_s();
	if (status(c, &s1) != 0)
		goto out;
	lb0 = num(status_get(s0, "log_bytes"));
	lb1 = num(status_get(s1, "log_bytes"));
	d0 = num(status_get(s0, "deltas"));
	d1 = num(status_get(s1, "deltas"));
	mu0 = num(status_get(s0, "map_used"));
	mu1 = num(status_get(s1, "map_used"));
	o = json_pack("{s:s}", "bench", "log_bytes_per_record");
	if (lb0 >= 0 && lb1 >= 0)
		json_object_set_new(o, "value",
				    json_real((double)(int64_t)((lb1 - lb0) /
								(double)nrec * 10) /
					      10));
	else
		json_object_set_new(o, "value", json_null());
	json_object_set_new(o, "unit", json_string("B/record"));
	json_object_set_new(o, "batch", json_integer(batch));
	json_object_set_new(o, "records", json_integer(nrec));
	json_object_set_new(o, "kind", json_string("attendance"));
	if (d0 >= 0 && d1 >= 0)
		json_object_set_new(o, "deltas", json_integer((json_int_t)(d1 - d0)));
	if (mu0 >= 0 && mu1 >= 0)
		json_object_set_new(o, "map_used_bytes_per_record",
				    json_real((double)(int64_t)((mu1 - mu0) /
								(double)nrec * 10) /
					      10));
	json_object_set_new(o, "records_per_s",
			    json_real((double)(int64_t)(nrec / (t1 - t0) * 10) / 10));
	if (lb0 < 0 || lb1 < 0)
		json_object_set_new(o, "error",
				    json_string("status has no log_bytes"));
	emit(o);
	ret = 0;
out:
	json_decref(s0);
	json_decref(s1);
	return ret;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_writes SOCK rate|logbytes [--seconds S] "
		"[--baseline R] [--records N] [--batch B]\n");
}

int main(int argc, char **argv)
{
	bench b;
	conn c;
	double secs = 2.0, baseline = 0;
	long nrec = 10000, batch = 500;
	int i, ret = 1;

	if (argc < 3) {
		usage();
		return 2;
	}
	for (i = 3; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc) {
			usage();
			return 2;
		}
		if (strcmp(a, "--seconds") == 0)
			secs = atof(argv[++i]);
		else if (strcmp(a, "--baseline") == 0)
			baseline = atof(argv[++i]);
		else if (strcmp(a, "--records") == 0)
			nrec = atol(argv[++i]);
		else if (strcmp(a, "--batch") == 0)
			batch = atol(argv[++i]);
		else {
			usage();
			return 2;
		}
	}
	if (secs <= 0 || nrec <= 0 || batch <= 0 ||
	    batch > QP_API_MAX_RECORDS) {
		usage();
		return 2;
	}
	memset(&b, 0, sizeof b);
	b.sock = argv[1];
	if (conn_open(&c, b.sock) != 0)
		goto out;
	if (setup(&b, &c) != 0)
		goto out;
	if (strcmp(argv[2], "rate") == 0)
		ret = mode_rate(&b, &c, secs, baseline) == 0 ? 0 : 1;
	else if (strcmp(argv[2], "logbytes") == 0)
		ret = mode_logbytes(&b, &c, nrec, batch) == 0 ? 0 : 1;
	else {
		usage();
		ret = 2;
	}
out:
	conn_close(&c);
	free(b.sessions);
	return ret;
}
