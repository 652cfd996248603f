/*
 * main.c - quipud: the quipu node daemon.
 *
 * quipud [-d DIR] [-v|-q] [--verify]
 * Runs in the foreground, logs to stderr, stops cleanly on SIGINT/SIGTERM
 * after finishing the commits already in flight.  --verify checks the store
 * offline (signatures, hash links, state rebuilt from the log) and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "err.h"
#include "hlc.h"
#include "log.h"
#include "node.h"
#include "peer.h"
#include "server.h"
#include "store.h"
#include "wire.h"

typedef struct qp_daemon {
	qp_log lg;
	qp_server *srv;
	qp_peers *peers;
	qp_autobackup *backup;
	uv_signal_t sigint, sigterm;
} qp_daemon;

static void usage(FILE *out)
{
	fprintf(out,
		"usage: quipud [-d DIR] [-v|-q] [--verify]\n"
		"  -d, --data DIR  data directory (default: $QUIPU_DATA, else\n"
		"                  $XDG_DATA_HOME/quipu, else ~/.local/share/quipu)\n"
		"  -v, --verbose   log debug messages (each commit)\n"
		"  -q, --quiet     log warnings and errors only\n"
		"      --verify    check every signature and hash link, rebuild the\n"
		"                  state from the log and compare; then exit\n"
		"  -h, --help      this text\n"
		"Initialise a data directory first with: quipu -d DIR init\n");
}

static void on_signal(uv_signal_t *h, int signum)
{
	qp_daemon *d = h->data;
	qp_log_info(&d->lg, "signal %d: finishing in-flight commits and stopping",
		    signum);
	qp_peers_stop(d->peers);
	qp_autobackup_stop(d->backup);
	qp_server_stop(d->srv);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
}

/* 0, or -errno (a short write on a full disk: -ENOSPC). */
static int write_pidfile(const char *path)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), n;
	ssize_t w;
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if ((w = write(fd, buf, (size_t)n)) != n) {
		int e = w < 0 ? errno : ENOSPC;
		close(fd);
		return -e;
	}
	return close(fd) == 0 ? 0 : -errno;
}

static int run_verify(qp_store *st, const qp_log *lg)
{
	json_t *report = NULL;
	int rc = qp_store_verify(st, &report);
	char *text = report ? json_dumps(report, JSON_COMPACT) : NULL;

	if (rc == 0) {
		printf("%s\n", text ? text : "{}");
		fflush(stdout);
	}
	else
		qp_log_error(lg, "verify failed: %s (%s)", qp_strerror(rc),
			     text ? text : "no report");
	free(text);
	json_decref(report);
	return rc == 0 ? 0 : 1;
}

/* The store settings of node.json (plot thresholds, lot yields); a bad
 * value is logged naming the key.  Returns 0 or -1. */
static int node_settings(const qp_node *node, qp_store *st,
			 qp_backup_cfg *bc, const qp_log *lg)
{
	char why[256];
	qp_geo_opts go;
	qp_lots_cfg lc;

	if (qp_node_geo_opts(node, &go, why, sizeof why) != 0 ||
	    qp_node_lots_cfg(node, &lc, why, sizeof why) != 0 ||
	    qp_node_backup_cfg(node, bc, why, sizeof why) != 0) {
		qp_log_error(lg, "%s", why);
		return -1;
	}
	qp_store_set_geo_opts(st, &go);
	qp_store_set_lots_cfg(st, &lc);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"verify", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	qp_daemon d;
	qp_node node;
	qp_store *st = NULL;
	qp_backup_cfg bc;
	uv_loop_t loop;
	const char *dir = NULL;
	int verify = 0, c, rc, status = 1;

	memset(&d, 0, sizeof(d));
	d.lg.level = QP_LOG_INFO;
	while ((c = getopt_long(argc, argv, "d:vqh", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'v': d.lg.level = QP_LOG_DEBUG; break;
		case 'q': d.lg.level = QP_LOG_WARN; break;
		case 'V': verify = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((rc = qp_node_paths(&node, dir)) != 0) {
		fprintf(stderr, "quipud: cannot resolve the data directory: %s%s\n",
			qp_strerror(rc),
			dir != NULL ? "" : " (set -d DIR or QUIPU_DATA)");
		return 2;
	}
	if ((rc = qp_node_load(&node)) != 0) {
		if (rc == QP_EKEY)
			fprintf(stderr, "quipud: %s: no usable key at %s (initialise with: quipu -d %s init; the key must be mode 0600)\n",
				node.dir, node.keyfile, node.dir);
		else if (node.cfg_err[0] != '\0')
			fprintf(stderr, "quipud: %s (%s)\n", node.cfg_err, node.config);
		else
			fprintf(stderr, "quipud: %s: %s\n", node.config, qp_strerror(rc));
		return 1;
	}
	{
		unsigned have, want;
		if (qp_store_format(node.store, &have, &want) == 0 &&
		    have < want)
			qp_log_info(&d.lg, "store %s is of format %u: rebuilding "
				    "its state from the log for format %u "
				    "(a while on a large store; nothing is "
				    "served meanwhile)",
				    node.store, have, want);
	}
	if ((rc = qp_store_open(node.store, node.pk, node.sk, &st)) != 0) {
		qp_log_error(&d.lg, "cannot open store %s: %s", node.store,
			     qp_strerror(rc));
		goto out;
	}
	{
		unsigned from, to;
		double secs;
		if (qp_store_upgraded(st, &from, &to, &secs))
			qp_log_info(&d.lg, "store %s brought from format %u to "
				    "%u: state rebuilt from the log in %.1f s",
				    node.store, from, to, secs);
	}
	{
		uint64_t behind = qp_hlc_behind_ms(qp_store_last_stamp(st),
						   qp_hlc_wall_ms());
		if (behind > QP_HLC_BEHIND_WRONG_MS)
			qp_log_warn(&d.lg, "the clock is %llu days behind what "
				    "this node already recorded: set the "
				    "device's date and time (stamps go on "
				    "from the last one meanwhile)",
				    (unsigned long long)(behind / 86400000));
	}
	if (node_settings(&node, st, &bc, &d.lg) != 0)
		goto out;
	if (verify) {
		status = run_verify(st, &d.lg);
		goto out;
	}

	uv_loop_init(&loop);
	rc = qp_server_start(&loop, &node, st, &d.lg, &d.srv);
	if (rc != 0) {
		if (rc == QP_EEXIST)
			qp_log_error(&d.lg, "another quipud is already serving %s", node.sock);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		goto out;
	}
	if ((rc = qp_peers_start(&loop, &node, st, &d.lg, &d.peers)) != 0) {
		qp_server_stop(d.srv);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		goto out;
	}
	qp_server_set_peers(d.srv, d.peers);
	if (bc.dir[0] != '\0' &&
	    qp_autobackup_start(&loop, node.dir, &bc, &d.lg, &d.backup) == 0)
		qp_server_set_backup(d.srv, d.backup);
	if ((rc = write_pidfile(node.pidfile)) != 0)
		qp_log_warn(&d.lg, "cannot write pid file %s: %s", node.pidfile,
			    qp_strerror(rc));
	uv_signal_init(&loop, &d.sigint);
	uv_signal_init(&loop, &d.sigterm);
	d.sigint.data = d.sigterm.data = &d;
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	/* A client that vanishes mid-reply must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	qp_log_info(&d.lg, "quipud %s (%s) serving %s", QP_VERSION_STRING,
		    qp_node_role(&node), node.sock);

	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		qp_log_warn(&d.lg, "loop closed with handles still open");
	unlink(node.pidfile);
	qp_log_info(&d.lg, "stopped cleanly");
	status = 0;
out:
	qp_store_close(st);
	qp_node_free(&node);
	return status;
}
