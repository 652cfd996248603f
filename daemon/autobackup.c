/*
 * autobackup.c - backups of the node on a schedule (see autobackup.h).
 *
 * One backup runs at a time, as a child process whose stdout (the summary
 * line) and stderr (the reason it failed) are read through pipes.  It is
 * done when it has exited and both pipes are closed; then the schedule
 * moves on.  Handles: the timer for the object's life, the process and
 * its two pipes while a backup runs; the object is freed when the last
 * one closes after qp_autobackup_stop.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "autobackup.h"
#include "err.h"
#include "util.h"

#define NAME_PREFIX "quipu-"
#define STAMP_LEN 16                   /* YYYYMMDDTHHMMSSZ */
#define RETRY_MS (10u * 60u * 1000u)   /* after a failed backup */
#define FIRST_DELAY_MS 1000u           /* a due backup, after start-up */
#define TEXT_MAX 512                   /* what is kept of the child's output */
#define KEPT_MAX 4096                  /* backups looked at when pruning */

struct qp_autobackup {
	uv_loop_t *loop;
	const qp_log *lg;
	qp_backup_cfg cfg;
	uint64_t every_ms;
	char datadir[QP_PATH_MAX], quipu[QP_PATH_MAX], dest[QP_PATH_MAX + 64];
	uv_timer_t timer;
	uv_process_t proc;
	uv_pipe_t out, err;
	char rbuf[4096];
	char outbuf[TEXT_MAX], errbuf[TEXT_MAX];
	size_t outlen, errlen;
	int handles;  /* open: the timer, and the process and pipes */
	int child_open; /* of those, the process and pipes */
	int running;  /* a backup is under way */
	int stopping;
	int64_t exit_status;
	int term_signal;
	time_t last_ok, last_error_at;
	char last_path[QP_PATH_MAX + 64], last_error[TEXT_MAX];
	uint64_t next_ms; /* loop time of the next backup */
};

static void on_timer(uv_timer_t *t);

/* ---- names ------------------------------------------------------------ */

/* The time in a backup's name quipu-YYYYMMDDTHHMMSSZ, or -1 when name is
 * not one (a ".part" suffix is allowed when part is non-NULL: *part is
 * then set to whether it is there). */
static time_t name_time(const char *name, int *part)
{
	struct tm tm;
	char again[STAMP_LEN + 1];
	const char *st = name + strlen(NAME_PREFIX);
	time_t t;

	if (strncmp(name, NAME_PREFIX, strlen(NAME_PREFIX)) != 0 ||
	    strlen(st) < STAMP_LEN)
		return -1;
	if (strcmp(st + STAMP_LEN, "") != 0 &&
	    (part == NULL || strcmp(st + STAMP_LEN, ".part") != 0))
		return -1;
	if (part != NULL)
		*part = st[STAMP_LEN] != '\0';
	memset(&tm, 0, sizeof tm);
	if (sscanf(st, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	/* Exactly the form this module writes, nothing looser. */
	if (strftime(again, sizeof again, "%Y%m%dT%H%M%SZ", gmtime_r(&t, &tm)) !=
	        STAMP_LEN ||
	    memcmp(again, st, STAMP_LEN) != 0)
		return -1;
	return t;
}

static void iso_time(time_t t, char out[32])
{
	struct tm tm;

	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}

/* ---- pruning ---------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) == 0 ? 0 : -1;
	return unlink(path) == 0 ? 0 : -1;
}

static int rm_tree(const char *path)
{
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -errno;
}

static int newer_first(const void *a, const void *b)
{
	return -strcmp(*(char *const *)a, *(char *const *)b);
}

/* Visit the backups in dir: fn(ctx, name, time, part) for each. */
static void each_backup(const char *dir,
			void (*fn)(void *ctx, const char *name, time_t t,
				   int part),
			void *ctx)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		int part = 0;
		time_t t = name_time(e->d_name, &part);

		if (t != (time_t)-1)
			fn(ctx, e->d_name, t, part);
	}
	closedir(d);
}

static void newest_cb(void *ctx, const char *name, time_t t, int part)
{
	(void)name;
	if (!part && t > *(time_t *)ctx)
		*(time_t *)ctx = t;
}

typedef struct prune_list {
	char *names[KEPT_MAX];
	size_t n;
	qp_autobackup *ab;
} prune_list;

static void prune_cb(void *ctx, const char *name, time_t t, int part)
{
	prune_list *l = ctx;
	char path[QP_PATH_MAX + 64];

	(void)t;
	if (part) { /* cut off before it finished: nothing worth keeping */
		snprintf(path, sizeof path, "%s/%s", l->ab->cfg.dir, name);
		if (rm_tree(path) == 0)
			qp_log_info(l->ab->lg, "backup: removed %s, left "
				    "unfinished by an earlier run", path);
		return;
	}
	if (l->n < KEPT_MAX)
		l->names[l->n++] = qp_xstrdup(name);
}

/* Keep the newest cfg.keep backups in dir; remove the rest. */
static void prune(qp_autobackup *ab)
{
	prune_list l = {.n = 0, .ab = ab};
	char path[QP_PATH_MAX + 64];
	int rc;

	each_backup(ab->cfg.dir, prune_cb, &l);
	qsort(l.names, l.n, sizeof *l.names, newer_first);
	for (size_t i = 0; i < l.n; i++) {
		if (i >= ab->cfg.keep) {
			snprintf(path, sizeof path, "%s/%s", ab->cfg.dir,
				 l.names[i]);
			if ((rc = rm_tree(path)) == 0)
				qp_log_info(ab->lg, "backup: removed %s (keeping "
					    "the newest %u)", path, ab->cfg.keep);
			else
				qp_log_warn(ab->lg, "backup: cannot remove %s: %s",
					    path, qp_strerror(rc));
		}
		free(l.names[i]);
	}
}

/* The card is full: remove the oldest backup to make room, when that
 * leaves at least one.  Returns 1 when one was removed. */
static int make_room(qp_autobackup *ab)
{
	prune_list l = {.n = 0, .ab = ab};
	char path[QP_PATH_MAX + 64];
	int removed = 0, rc;

	each_backup(ab->cfg.dir, prune_cb, &l);
	qsort(l.names, l.n, sizeof *l.names, newer_first);
	if (l.n >= 2) {
		snprintf(path, sizeof path, "%s/%s", ab->cfg.dir,
			 l.names[l.n - 1]);
		if ((rc = rm_tree(path)) == 0) {
			qp_log_warn(ab->lg, "backup: %s is full: removed the "
				    "oldest backup, %s, to make room",
				    ab->cfg.dir, path);
			removed = 1;
		} else {
			qp_log_warn(ab->lg, "backup: cannot remove %s: %s", path,
				    qp_strerror(rc));
		}
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.names[i]);
	return removed;
}

/* ---- the child -------------------------------------------------------- */

static void release(qp_autobackup *ab)
{
	if (--ab->handles == 0 && ab->stopping)
		free(ab);
}

static void schedule(qp_autobackup *ab, uint64_t delay_ms)
{
	if (ab->stopping)
		return;
	ab->next_ms = uv_now(ab->loop) + delay_ms;
	uv_timer_start(&ab->timer, on_timer, delay_ms, 0);
}

/* The first line of text, without "quipu: " and the line break. */
static void first_line(const char *text, char *out, size_t cap)
{
	size_t n;

	if (strncmp(text, "quipu: ", 7) == 0)
		text += 7;
	n = strcspn(text, "\n");
	snprintf(out, cap, "%.*s", (int)n, text);
}

/* The backup ended: both pipes and the process are closed. */
static void finished(qp_autobackup *ab)
{
	char line[TEXT_MAX];
	uint64_t retry;

	ab->running = 0;
	if (ab->exit_status == 0 && ab->term_signal == 0) {
		first_line(ab->outbuf, line, sizeof line);
		qp_log_info(ab->lg, "backup: %s", line);
		ab->last_ok = time(NULL);
		snprintf(ab->last_path, sizeof ab->last_path, "%s", ab->dest);
		ab->last_error[0] = '\0';
		prune(ab);
		schedule(ab, ab->every_ms);
		return;
	}
	if (ab->stopping)
		snprintf(line, sizeof line, "stopped with quipud");
	else if (ab->errlen > 0)
		first_line(ab->errbuf, line, sizeof line);
	else if (ab->term_signal != 0)
		snprintf(line, sizeof line, "quipu backup killed by signal %d",
			 ab->term_signal);
	else
		snprintf(line, sizeof line, "quipu backup exited with status %lld",
			 (long long)ab->exit_status);
	snprintf(ab->last_error, sizeof ab->last_error, "%s", line);
	ab->last_error_at = time(NULL);
	if (!ab->stopping && (strstr(line, strerror(ENOSPC)) != NULL ||
			      strstr(line, strerror(EDQUOT)) != NULL) &&
	    make_room(ab)) {
		schedule(ab, FIRST_DELAY_MS);
		return;
	}
	retry = ab->every_ms < RETRY_MS ? ab->every_ms : RETRY_MS;
	if (!ab->stopping)
		qp_log_warn(ab->lg, "backup to %s failed: %s; trying again in "
			    "%llu s", ab->cfg.dir, line,
			    (unsigned long long)(retry / 1000));
	schedule(ab, retry);
}

static void on_child_closed(uv_handle_t *h)
{
	qp_autobackup *ab = h->data;

	if (--ab->child_open == 0)
		finished(ab);
	release(ab);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	qp_autobackup *ab = h->data;

	(void)hint;
	buf->base = ab->rbuf;
	buf->len = sizeof ab->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	qp_autobackup *ab = s->data;
	int is_out = s == (uv_stream_t *)&ab->out;
	char *dst = is_out ? ab->outbuf : ab->errbuf;
	size_t *len = is_out ? &ab->outlen : &ab->errlen;

	if (n < 0) {
		uv_close((uv_handle_t *)s, on_child_closed);
		return;
	}
	if ((size_t)n > sizeof ab->outbuf - 1 - *len)
		n = (ssize_t)(sizeof ab->outbuf - 1 - *len);
	memcpy(dst + *len, buf->base, (size_t)n);
	*len += (size_t)n;
	dst[*len] = '\0';
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
	qp_autobackup *ab = p->data;

	ab->exit_status = status;
	ab->term_signal = sig;
	uv_close((uv_handle_t *)p, on_child_closed);
}

/* Start one backup: quipu -d DATA backup DIR/quipu-STAMP. */
static void run_backup(qp_autobackup *ab)
{
	char stamp[STAMP_LEN + 1];
	char *args[6];
	uv_process_options_t o;
	uv_stdio_container_t io[3];
	struct tm tm;
	time_t now = time(NULL);
	int rc;

	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
	snprintf(ab->dest, sizeof ab->dest, "%s/" NAME_PREFIX "%s", ab->cfg.dir,
		 stamp);
	ab->outlen = ab->errlen = 0;
	ab->outbuf[0] = ab->errbuf[0] = '\0';
	ab->exit_status = -1;
	ab->term_signal = 0;
	uv_pipe_init(ab->loop, &ab->out, 0);
	uv_pipe_init(ab->loop, &ab->err, 0);
	ab->out.data = ab->err.data = ab->proc.data = ab;
	args[0] = ab->quipu;
	args[1] = "-d";
	args[2] = ab->datadir;
	args[3] = "backup";
	args[4] = ab->dest;
	args[5] = NULL;
	memset(&o, 0, sizeof o);
	io[0].flags = UV_IGNORE;
	io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[1].data.stream = (uv_stream_t *)&ab->out;
	io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[2].data.stream = (uv_stream_t *)&ab->err;
	o.file = ab->quipu;
	o.args = args;
	o.stdio = io;
	o.stdio_count = 3;
	o.exit_cb = on_child_exit;
	ab->handles += 3;
	ab->child_open = 3;
	ab->running = 1;
	qp_log_info(ab->lg, "backup: copying %s to %s", ab->datadir, ab->dest);
	if ((rc = uv_spawn(ab->loop, &ab->proc, &o)) != 0) {
		/* The process handle is to be closed even so. */
		snprintf(ab->errbuf, sizeof ab->errbuf, "cannot run %.300s: %s",
			 ab->quipu, uv_strerror(rc));
		ab->errlen = strlen(ab->errbuf);
		ab->exit_status = 1;
		uv_close((uv_handle_t *)&ab->proc, on_child_closed);
		uv_close((uv_handle_t *)&ab->out, on_child_closed);
		uv_close((uv_handle_t *)&ab->err, on_child_closed);
		return;
	}
	uv_read_start((uv_stream_t *)&ab->out, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&ab->err, on_alloc, on_read);
}

static void on_timer(uv_timer_t *t)
{
	qp_autobackup *ab = t->data;

	if (!ab->running && !ab->stopping)
		run_backup(ab);
}

/* ---- the module ------------------------------------------------------- */

/* The quipu program next to this quipud. */
static int find_quipu(char *out, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) == NULL)
		return QP_ENOTFOUND;
	*slash = '\0';
	if ((size_t)snprintf(out, cap, "%s/quipu", self) >= cap)
		return QP_EINVAL;
	return access(out, X_OK) == 0 ? 0 : QP_ENOTFOUND;
}

int qp_autobackup_start(uv_loop_t *loop, const char *datadir,
			const qp_backup_cfg *cfg, const qp_log *lg,
			qp_autobackup **out)
{
	qp_autobackup *ab;
	time_t newest = 0, now = time(NULL);
	uint64_t delay;
	double ms;

	if (cfg == NULL || cfg->dir[0] != '/' || cfg->keep == 0 ||
	    strlen(datadir) >= QP_PATH_MAX)
		return QP_EINVAL;
	ab = qp_xcalloc(1, sizeof *ab);
	ab->loop = loop;
	ab->lg = lg;
	ab->cfg = *cfg;
	ms = cfg->every_hours * 3600e3;
	ab->every_ms = ms < 1000 ? 1000 : (uint64_t)ms;
	snprintf(ab->datadir, sizeof ab->datadir, "%s", datadir);
	if (find_quipu(ab->quipu, sizeof ab->quipu) != 0) {
		qp_log_error(lg, "backup: no quipu program at %s, next to "
			     "quipud: scheduled backups are off", ab->quipu);
		free(ab);
		return QP_ENOTFOUND;
	}
	uv_timer_init(loop, &ab->timer);
	ab->timer.data = ab;
	ab->handles = 1;
	each_backup(cfg->dir, newest_cb, &newest);
	if (newest == 0 || now < newest ||
	    (uint64_t)(now - newest) * 1000 >= ab->every_ms)
		delay = FIRST_DELAY_MS;
	else
		delay = ab->every_ms - (uint64_t)(now - newest) * 1000;
	qp_log_info(lg, "backup: to %s every %g h, keeping %u; next in %llu s",
		    cfg->dir, cfg->every_hours, cfg->keep,
		    (unsigned long long)(delay / 1000));
	schedule(ab, delay);
	*out = ab;
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	release(h->data);
}

void qp_autobackup_stop(qp_autobackup *ab)
{
	if (ab == NULL || ab->stopping)
		return;
	ab->stopping = 1;
	uv_timer_stop(&ab->timer);
	uv_close((uv_handle_t *)&ab->timer, on_timer_closed);
	/* quipu backup removes what it made when it is told to stop. */
	if (ab->running && ab->exit_status == -1)
		uv_process_kill(&ab->proc, SIGTERM);
}

json_t *qp_autobackup_status(const qp_autobackup *ab)
{
	char t[32];
	uint64_t now = uv_now(ab->loop);
	json_t *o = json_pack("{s:s, s:f, s:I, s:b}", "dir", ab->cfg.dir,
			      "every_hours", ab->cfg.every_hours, "keep",
			      (json_int_t)ab->cfg.keep, "running", ab->running);

	if (ab->last_ok != 0) {
		iso_time(ab->last_ok, t);
		json_object_set_new(o, "last_ok", json_string(t));
		json_object_set_new(o, "last_path", json_string(ab->last_path));
	} else {
		json_object_set_new(o, "last_ok", json_null());
	}
	if (ab->last_error[0] != '\0') {
		iso_time(ab->last_error_at, t);
		json_object_set_new(o, "last_error", json_string(ab->last_error));
		json_object_set_new(o, "last_error_at", json_string(t));
	}
	if (!ab->running)
		json_object_set_new(o, "next_in_s",
				    json_integer((json_int_t)(ab->next_ms > now
					    ? (ab->next_ms - now) / 1000 : 0)));
	return o;
}
