/*
 * cmd_backup.c - quipu backup: a copy of the data directory made while
 * quipud goes on serving; quipu restore: a backup put in place of the data
 * directory, checked first.
 *
 * The copy is built in DEST.part (the key, node.json, the reference layers
 * and a compacted snapshot of the store, each synced) and renamed to DEST
 * only when complete, so DEST is either a whole backup or absent.  The
 * store is read through LMDB's lock file as any reader, so quipud neither
 * stops nor waits; the copy is the newest commit when the copy began.
 * Interrupted (SIGINT, SIGTERM, SIGHUP), it removes what it had made.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "err.h"
#include "store.h"
#include "util.h"

/* Layers are few (one file per forest-loss map or protected area). */
#define MADE_MAX 300

/* What this run has made, in order, for the signal handler to remove:
 * built before the signals are caught, then only appended to. */
static struct {
	char path[MADE_MAX][QP_PATH_MAX];
	unsigned char dir[MADE_MAX];
	volatile sig_atomic_t n;
} made;

static void made_add(const char *path, int dir)
{
	int i = made.n;

	if (i == MADE_MAX)
		return;
	snprintf(made.path[i], QP_PATH_MAX, "%s", path);
	made.dir[i] = (unsigned char)dir;
	atomic_signal_fence(memory_order_seq_cst); /* the entry, then n */
	made.n = i + 1;
}

/* Remove what was made, newest first (async-signal-safe). */
static void made_undo(void)
{
	for (int i = made.n - 1; i >= 0; i--)
		if (made.dir[i])
			rmdir(made.path[i]);
		else
			unlink(made.path[i]);
	made.n = 0;
}

static void on_signal(int sig)
{
	made_undo();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* Copy regular file from to a new file to (its mode, at most 0600 for a
 * secret), synced.  Errors: -errno. */
static int copy_file(const char *from, const char *to)
{
	char buf[1 << 16];
	struct stat st;
	int in, out, rc = 0;
	ssize_t n;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(in, &st) != 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		   st.st_mode & 0600);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	made_add(to, 0);
	while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno != EINTR)
				rc = -errno;
			continue;
		}
		for (ssize_t off = 0; rc == 0 && off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno != EINTR)
				rc = -errno;
			else if (w > 0)
				off += w;
		}
	}
	if (rc == 0 && fsync(out) != 0)
		rc = -errno;
	if (close(out) != 0 && rc == 0)
		rc = -errno;
	close(in);
	return rc;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) != 0)
		return -errno;
	made_add(path, 1);
	return 0;
}

/* out = a sep b; -ENAMETOOLONG when it does not fit. */
static int concat(char out[QP_PATH_MAX], const char *a, const char *sep,
		  const char *b)
{
	int n = snprintf(out, QP_PATH_MAX, "%s%s%s", a, sep, b);

	return n < 0 || n >= QP_PATH_MAX ? -ENAMETOOLONG : 0;
}

/* out = dir/name; -ENAMETOOLONG when it does not fit. */
static int join(char out[QP_PATH_MAX], const char *dir, const char *name)
{
	return concat(out, dir, "/", name);
}

/* The layers directory's regular files, when there is one. */
static int copy_layers(const char *from, const char *to, char *failed,
		       size_t cap)
{
	char a[QP_PATH_MAX], b[QP_PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(from);
	int rc = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	if ((rc = make_dir(to)) != 0) {
		snprintf(failed, cap, "%s", to);
		closedir(d);
		return rc;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		struct stat st;

		if (e->d_name[0] == '.' || join(a, from, e->d_name) != 0 ||
		    join(b, to, e->d_name) != 0 || lstat(a, &st) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if ((rc = copy_file(a, b)) != 0)
			snprintf(failed, cap, "%s", a);
	}
	closedir(d);
	if (rc == 0 && (rc = qp_sync_path(to)) != 0)
		snprintf(failed, cap, "%s", to);
	return rc;
}

/* The directory that holds path (for syncing the rename into it). */
static void parent_of(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(out, cap, ".");
	else if (slash == path)
		snprintf(out, cap, "/");
	else
		snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* Make the directory that a backup or a restore (what) is built in, and
 * from now on remove what is made there if the command is interrupted.
 * Returns 0, or -1 with the reason printed. */
static int begin_part(const char *what, const char *part)
{
	if (mkdir(part, 0700) != 0) {
		if (errno == EEXIST)
			qp_cli_err("%s: %s exists: a %s that was stopped before "
				   "it finished; remove it and run the %s again",
				   what, part, what, what);
		else
			qp_cli_err("%s: cannot create %s: %s", what, part,
				   strerror(errno));
		return -1;
	}
	made_add(part, 1);
	catch_signals();
	return 0;
}

/* Copy a node's files but its store (key, node.json, the layers) from n
 * into the directory to, and make to/store; failed names the path an
 * error was about. */
static int copy_node_files(const qp_node *n, const char *to, char *failed,
			   size_t cap)
{
	char p[QP_PATH_MAX], from[QP_PATH_MAX];
	int rc;

	if ((rc = join(p, to, "key")) != 0 ||
	    (rc = copy_file(n->keyfile, p)) != 0) {
		snprintf(failed, cap, "%s", n->keyfile);
		return rc;
	}
	if ((rc = join(p, to, "node.json")) != 0 ||
	    ((rc = copy_file(n->config, p)) != 0 && rc != -ENOENT)) {
		snprintf(failed, cap, "%s", n->config);
		return rc;
	}
	if ((rc = join(from, n->dir, "layers")) != 0 ||
	    (rc = join(p, to, "layers")) != 0 ||
	    (rc = copy_layers(from, p, failed, cap)) != 0)
		return rc;
	if ((rc = join(p, to, "store")) != 0 || (rc = make_dir(p)) != 0) {
		snprintf(failed, cap, "%s", p);
		return rc;
	}
	return 0;
}

/* Build the backup in part; failed names the path an error was about. */
static int build(const qp_node *n, const char *part, qp_store_copy_info *info,
		 char *failed, size_t cap)
{
	char p[QP_PATH_MAX], file[QP_PATH_MAX];
	int rc;

	if ((rc = copy_node_files(n, part, failed, cap)) != 0 ||
	    (rc = join(p, part, "store")) != 0 ||
	    (rc = join(file, p, "data.mdb")) != 0)
		return rc;
	/* Registered before the copy, so an interruption removes it. */
	made_add(file, 0);
	if ((rc = qp_store_copy(n->store, p, info)) != 0) {
		snprintf(failed, cap, "%s", rc == QP_EEXIST || rc < 0 ? p : n->store);
		return rc;
	}
	if ((rc = qp_sync_path(part)) != 0)
		snprintf(failed, cap, "%s", part);
	return rc;
}

int qp_cmd_backup(qp_cli *c, int argc, char **argv)
{
	char part[QP_PATH_MAX], parent[QP_PATH_MAX], failed[QP_PATH_MAX] = "";
	qp_store_copy_info info;
	const char *dest;
	struct stat st;
	int status = QP_EXIT_OK, rc;

	if ((dest = qp_cli_one_arg(c, argc, argv, "DEST", &status)) == NULL)
		return status;
	if (dest[0] == '\0' ||
	    strlen(dest) + sizeof ".part/store/data.mdb" > QP_PATH_MAX ||
	    concat(part, dest, "", ".part") != 0)
		return qp_cli_usage(argv[0], "DEST must be a directory path "
				    "shorter than %d bytes", QP_PATH_MAX - 32);
	if ((status = qp_cli_paths(c)) != QP_EXIT_OK)
		return status;
	if ((rc = qp_node_load(&c->node)) < 0) {
		qp_cli_err("backup: %s: %s (run quipu -d %s init first?)",
			   rc == QP_EPROTO ? c->node.config : c->node.keyfile,
			   rc == QP_EPROTO && c->node.cfg_err[0]
				   ? c->node.cfg_err : qp_strerror(rc),
			   c->node.dir);
		return QP_EXIT_FAIL;
	}
	if (lstat(dest, &st) == 0) {
		qp_cli_err("backup: %s already exists; name a directory that "
			   "does not exist yet (a backup never overwrites)",
			   dest);
		return QP_EXIT_FAIL;
	}
	parent_of(dest, parent, sizeof parent);
	if (begin_part("backup", part) != 0)
		return QP_EXIT_FAIL;
	rc = build(&c->node, part, &info, failed, sizeof failed);
	if (rc == 0 && rename(part, dest) != 0) {
		rc = -errno;
		snprintf(failed, sizeof failed, "%s", dest);
	}
	if (rc != 0) {
		made_undo();
		if (rc == QP_ENOTFOUND)
			qp_cli_err("backup: no store in %s (run quipu -d %s "
				   "init first?)", c->node.store, c->node.dir);
		else
			qp_cli_err("backup: %s: %s; nothing was kept", failed,
				   qp_strerror(rc));
		return QP_EXIT_FAIL;
	}
	made.n = 0; /* it is DEST now: nothing to undo */
	if ((rc = qp_sync_path(parent)) != 0) {
		qp_cli_err("backup: %s is complete but its directory %s could "
			   "not be synced: %s", dest, parent, qp_strerror(rc));
		return QP_EXIT_FAIL;
	}
	printf("backed up %s to %s: %llu deltas, %llu records, %.1f MiB\n",
	       c->node.dir, dest, (unsigned long long)info.deltas,
	       (unsigned long long)info.records,
	       (double)info.bytes / (1024.0 * 1024.0));
	return QP_EXIT_OK;
}

/* ---- restore ------------------------------------------------------- */

/* Copy the backup's files into stage. */
static int stage_backup(const qp_node *bk, const char *stage, char *failed,
			size_t cap)
{
	char p[QP_PATH_MAX], from[QP_PATH_MAX];
	int rc;

	if ((rc = copy_node_files(bk, stage, failed, cap)) != 0)
		return rc;
	if ((rc = join(from, bk->store, "data.mdb")) != 0 ||
	    (rc = join(p, stage, "store/data.mdb")) != 0 ||
	    (rc = copy_file(from, p)) != 0) {
		snprintf(failed, cap, "%s", from);
		return rc;
	}
	/* Opening the store to verify it makes its lock file. */
	if (join(p, stage, "store/lock.mdb") == 0)
		made_add(p, 0);
	return 0;
}

/* Open the staged store and check it as `quipu verify` does: every
 * signature and hash link, the state rebuilt from the log. */
static int verify_staged(const qp_node *bk, const char *stage,
			 uint64_t *deltas, uint64_t *records, char *why,
			 size_t cap)
{
	char p[QP_PATH_MAX];
	qp_store *s = NULL;
	json_t *rep = NULL;
	int rc;

	if ((rc = join(p, stage, "store")) != 0)
		return rc;
	if ((rc = qp_store_open(p, bk->pk, bk->sk, &s)) != 0) {
		snprintf(why, cap, "its store does not open: %s",
			 qp_strerror(rc));
		return rc;
	}
	rc = qp_store_verify(s, &rep);
	if (rc != 0) {
		const char *e = json_string_value(json_object_get(rep, "error"));
		snprintf(why, cap, "it does not verify: %s",
			 e != NULL ? e : qp_strerror(rc));
	} else {
		*deltas = (uint64_t)json_integer_value(json_object_get(rep, "deltas"));
		*records = (uint64_t)json_integer_value(json_object_get(rep, "records"));
	}
	json_decref(rep);
	qp_store_close(s);
	return rc;
}

/* Is a quipud answering on the node's socket? */
static int daemon_running(const qp_node *n)
{
	qp_api *api = NULL;

	if (qp_api_connect(n->sock, 2000, &api) != 0)
		return 0;
	qp_api_close(api);
	return 1;
}

/* Give what was made to uid:gid (root restoring a daemon user's node). */
static void made_chown(uid_t uid, gid_t gid)
{
	for (int i = 0; i < made.n; i++)
		if (lchown(made.path[i], uid, gid) != 0 && errno != ENOENT)
			return;
}

/* Move dir aside (to a new name in *aside, "" when dir was an empty
 * directory, now removed) and put stage in its place.  On failure dir is
 * as it was and why names what failed. */
static int swap_in(const char *stage, const char *dir, int have_dir,
		   char *aside, size_t cap, char *why, size_t whycap)
{
	char stamp[32];
	struct stat st;
	struct tm tm;
	time_t now = time(NULL);
	int rc, emptied = 0;

	aside[0] = '\0';
	if (have_dir) {
		strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ",
			 gmtime_r(&now, &tm));
		snprintf(aside, cap, "%.4000s.replaced-%s", dir, stamp);
		for (int i = 2; i < 100 && lstat(aside, &st) == 0; i++)
			snprintf(aside, cap, "%.4000s.replaced-%s-%d", dir,
				 stamp, i);
		if (rmdir(dir) == 0) {
			aside[0] = '\0';
			emptied = 1;
		} else if (rename(dir, aside) != 0) {
			rc = -errno;
			snprintf(why, whycap, "cannot move %.1000s aside to "
				 "%.1000s", dir, aside);
			return rc;
		}
	}
	if (rename(stage, dir) == 0)
		return 0;
	rc = -errno;
	if (emptied)
		mkdir(dir, 0700);
	else if (aside[0] != '\0')
		rename(aside, dir);
	snprintf(why, whycap, "cannot put the backup in place at %.1000s", dir);
	return rc;
}

int qp_cmd_restore(qp_cli *c, int argc, char **argv)
{
	char stage[QP_PATH_MAX], aside[QP_PATH_MAX], parent[QP_PATH_MAX],
	    failed[QP_PATH_MAX] = "", why[2200] = "", hexa[17], hexb[17];
	const char *backup;
	qp_node bk = {0};
	sigset_t hold, was;
	uint64_t deltas = 0, records = 0;
	struct stat st;
	int status = QP_EXIT_OK, rc, have_dir, own_key;

	if ((backup = qp_cli_one_arg(c, argc, argv, "BACKUP", &status)) == NULL)
		return status;
	if ((status = qp_cli_paths(c)) != QP_EXIT_OK)
		return status;
	if (strlen(c->node.dir) + sizeof ".replaced-YYYYMMDDTHHMMSSZ" >
		QP_PATH_MAX ||
	    concat(stage, c->node.dir, "", ".restore-part") != 0)
		return qp_cli_usage(argv[0], "the data directory path is too long");
	if (daemon_running(&c->node)) {
		qp_cli_err("restore: quipud is running on %s; stop it first "
			   "(the restore replaces its data directory)",
			   c->node.dir);
		return QP_EXIT_FAIL;
	}
	status = QP_EXIT_FAIL;
	if ((rc = qp_node_paths(&bk, backup)) != 0) {
		qp_cli_err("restore: %s: %s", backup, qp_strerror(rc));
		goto out;
	}
	if ((rc = qp_node_load(&bk)) < 0) {
		qp_cli_err("restore: %s is not a quipu backup: %s", backup,
			   bk.cfg_err[0] ? bk.cfg_err
					 : "no usable key in it");
		goto out;
	}
	{
		char p[QP_PATH_MAX];
		if (join(p, bk.store, "data.mdb") != 0 || stat(p, &st) != 0) {
			qp_cli_err("restore: %s is not a quipu backup: it has no "
				   "store/data.mdb", backup);
			goto out;
		}
	}
	have_dir = lstat(c->node.dir, &st) == 0;
	own_key = qp_node_load(&c->node) == 0;
	if (own_key && memcmp(c->node.pk, bk.pk, QP_KEY_LEN) != 0) {
		qp_hex(c->node.pk, 8, hexa);
		qp_hex(bk.pk, 8, hexb);
		qp_cli_err("restore: %s is another node (key %s...) than the "
			   "backup's (key %s...); move %s away first to put "
			   "the backup in its place",
			   c->node.dir, hexa, hexb, c->node.dir);
		goto out;
	}
	parent_of(c->node.dir, parent, sizeof parent);
	if (begin_part("restore", stage) != 0)
		goto out;
	if ((rc = stage_backup(&bk, stage, failed, sizeof failed)) != 0) {
		made_undo();
		qp_cli_err("restore: %s: %s; nothing was changed", failed,
			   qp_strerror(rc));
		goto out;
	}
	if (verify_staged(&bk, stage, &deltas, &records, why, sizeof why) != 0) {
		made_undo();
		qp_cli_err("restore: %s: %s; nothing was changed", backup,
			   why);
		goto out;
	}
	if ((rc = qp_sync_path(stage)) != 0) {
		made_undo();
		qp_cli_err("restore: %s: %s; nothing was changed", stage,
			   qp_strerror(rc));
		goto out;
	}
	/* What the restore replaces is kept beside it, never deleted.  The
	 * two renames are not to be cut apart by a signal. */
	if (have_dir && geteuid() == 0)
		made_chown(st.st_uid, st.st_gid);
	sigemptyset(&hold);
	sigaddset(&hold, SIGINT);
	sigaddset(&hold, SIGTERM);
	sigaddset(&hold, SIGHUP);
	sigprocmask(SIG_BLOCK, &hold, &was);
	rc = swap_in(stage, c->node.dir, have_dir, aside, sizeof aside, why,
		     sizeof why);
	if (rc != 0)
		made_undo();
	else
		made.n = 0;
	sigprocmask(SIG_SETMASK, &was, NULL);
	if (rc != 0) {
		qp_cli_err("restore: %s: %s; nothing was changed", why,
			   qp_strerror(rc));
		goto out;
	}
	qp_sync_path(parent);
	printf("restored %s from %s: %llu deltas, %llu records, verified",
	       c->node.dir, backup, (unsigned long long)deltas,
	       (unsigned long long)records);
	if (aside[0] != '\0')
		printf("; what it replaced is in %s", aside);
	printf("\n");
	status = QP_EXIT_OK;
out:
	qp_node_free(&bk);
	return status;
}
