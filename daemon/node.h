/*
 * node.h - a node's data directory: where things live, its identity key and
 * its configuration.  Shared by quipud and quipu.
 *
 * Layout of DIR:
 *   key          ed25519 secret key, 64 raw bytes, mode 0600
 *   node.json    {"role": "field"|"hub", "listen": "HOST:PORT",
 *                 "plots": {"max_accuracy_m": 10, "area_tolerance_pct": 10},
 *                 "lots": {"tolerance_pct": 2, "yields": {"A>B": y}},
 *                 ...}
 *   store/       LMDB environment (data.mdb, lock.mdb)
 *   quipud.sock  local API socket (mode 0660), present while quipud runs
 *   quipud.pid   pid of the running quipud
 *
 * The directory is chosen by -d/--data, else $QUIPU_DATA, else
 * $XDG_DATA_HOME/quipu, else $HOME/.local/share/quipu.
 */
#ifndef QP_NODE_H
#define QP_NODE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "delta.h"
#include "geo.h"
#include "lots.h"

#define QP_PATH_MAX 4096
#define QP_DEFAULT_PORT 7420

typedef struct qp_node {
	char dir[QP_PATH_MAX];
	char store[QP_PATH_MAX];
	char sock[QP_PATH_MAX];
	char pidfile[QP_PATH_MAX];
	char keyfile[QP_PATH_MAX];
	char config[QP_PATH_MAX];
	uint8_t pk[QP_KEY_LEN];
	uint8_t sk[QP_SKEY_LEN];
	json_t *cfg; /* node.json contents (owned) */
	char cfg_err[240]; /* why node.json was refused (one line), or "" */
} qp_node;

/* Resolve the data directory (opt_dir may be NULL) and fill the paths.
 * Does not touch the file system.  Returns 0, -ENAMETOOLONG (the directory
 * path leaves no room for its files) or QP_EINVAL (no directory given and
 * no home directory). */
int qp_node_paths(qp_node *n, const char *opt_dir);

/* Create the directory (0700), a new key (0600), node.json with the role
 * (and listen address when non-NULL) and the store directory.  Refuses
 * (QP_EEXIST) when a key already exists, so an identity is never replaced. */
int qp_node_init(qp_node *n, const char *role, const char *listen);

/* Load key and node.json of an initialised node.  Errors: QP_EKEY (missing,
 * wrong size, or readable by others), QP_EPROTO (bad node.json, with the
 * reason in n->cfg_err). */
int qp_node_load(qp_node *n);

/* Load node.json alone (no key), e.g. for a command that reads settings.
 * It must be a JSON object of known keys: "version" 1, "role" "field" or
 * "hub", "listen" "HOST:PORT" (a hub's), "plots" and "lots" objects (their
 * contents are checked by qp_node_geo_opts and qp_node_lots_cfg).  Errors:
 * QP_EPROTO with one line in n->cfg_err naming the key, or the line and
 * column of a JSON syntax error. */
int qp_node_load_config(qp_node *n);

/* Release what qp_node_load allocated and wipe the secret key. */
void qp_node_free(qp_node *n);

/* The plot-check thresholds of node.json's "plots" object over the
 * defaults of geo.h: "max_accuracy_m" (GPS accuracy above which a plot is
 * flagged) and "area_tolerance_pct" (declared vs measured area).  Returns
 * 0, or QP_EPROTO with one line in err naming the key when a value is not
 * a positive number. */
int qp_node_geo_opts(const qp_node *n, qp_geo_opts *o, char *err,
		     size_t errlen);

/* The mass-balance settings of node.json's "lots" object over the
 * built-in ones (lots.h).  Returns 0, or QP_EPROTO with one line in err
 * ("node.json: lots.yields.X: ...") when a value is wrong. */
int qp_node_lots_cfg(const qp_node *n, qp_lots_cfg *cfg, char *err,
		     size_t errlen);

/* Backups on a schedule, from node.json's "backup" object:
 *   {"dir": "/media/sd/quipu", "every_hours": 24, "keep": 7}
 * dir (required, absolute) is where quipud puts a backup of the node
 * every every_hours (default 24; fractions allowed), keeping the newest
 * keep (default 7).  dir[0] is '\0' when node.json has no "backup".
 * Returns 0, or QP_EPROTO with one line in err naming the key. */
typedef struct qp_backup_cfg {
	char dir[QP_PATH_MAX];
	double every_hours;
	unsigned keep;
} qp_backup_cfg;
int qp_node_backup_cfg(const qp_node *n, qp_backup_cfg *cfg, char *err,
		       size_t errlen);

/* fsync the file or directory at path (for a directory: the entries
 * made in it are durable).  Returns 0 or -errno. */
int qp_sync_path(const char *path);

/* Role from node.json ("field" when unset). */
const char *qp_node_role(const qp_node *n);

#endif
