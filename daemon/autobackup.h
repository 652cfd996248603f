/*
 * autobackup.h - backups of the node on a schedule (node.json "backup").
 *
 * A tablet can be offline for weeks: what it recorded exists only on it
 * until it syncs.  With a "backup" object in node.json, quipud copies the
 * data directory to DIR/quipu-YYYYMMDDTHHMMSSZ (UTC) every every_hours,
 * by running `quipu -d DATA backup DEST` (the quipu next to quipud) as a
 * child process, so the copy is exactly a hand-made `quipu backup`: taken
 * while quipud serves, complete or absent.  After each backup the oldest
 * beyond keep are removed, and so are unfinished DEST.part directories
 * left by a run that was cut off (a power cut).  A backup that fails for
 * want of space removes the oldest backup (never the last one) and is
 * tried again at once, so a full card keeps the newest backups that fit
 * rather than none that are new.  A backup is due at start
 * when the newest one in DIR is older than the period (or there is
 * none); a failed one (card not inserted, disk full) is retried every 10
 * minutes, or every period when that is shorter.
 */
#ifndef QP_AUTOBACKUP_H
#define QP_AUTOBACKUP_H

#include <jansson.h>
#include <uv.h>

#include "log.h"
#include "node.h"

typedef struct qp_autobackup qp_autobackup;

/* Start the schedule of cfg (cfg->dir non-empty) for the node whose data
 * directory is datadir.  *out is set (stop it with qp_autobackup_stop).
 * Errors: QP_ENOTFOUND (no quipu program next to quipud: the reason is
 * logged), QP_EINVAL. */
int qp_autobackup_start(uv_loop_t *loop, const char *datadir,
			const qp_backup_cfg *cfg, const qp_log *lg,
			qp_autobackup **out);

/* Stop: a backup under way is interrupted (it removes what it made).
 * The object is freed once its handles are closed, as the loop runs on.
 * Accepts NULL. */
void qp_autobackup_stop(qp_autobackup *ab);

/* {"dir", "every_hours", "keep", "running", "last_ok" (ISO 8601 UTC or
 * null), "last_path", "last_error", "last_error_at", "next_in_s"}. */
json_t *qp_autobackup_status(const qp_autobackup *ab);

#endif
