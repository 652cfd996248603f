/* node.c - data directory, identity key and node.json; see node.h. */
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cert.h"
#include "err.h"
#include "util.h"

static int join_path(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, QP_PATH_MAX, "%s/%s", dir, name);
	return (n < 0 || n >= QP_PATH_MAX) ? -ENAMETOOLONG : 0;
}

int qp_node_paths(qp_node *n, const char *opt_dir)
{
	const char *dir = opt_dir, *base;
	char tmp[QP_PATH_MAX];
	int rc;

	memset(n, 0, sizeof(*n));
	if (dir == NULL || *dir == '\0')
		dir = getenv("QUIPU_DATA");
	if (dir == NULL || *dir == '\0') {
		if ((base = getenv("XDG_DATA_HOME")) != NULL && *base != '\0')
			rc = snprintf(tmp, sizeof(tmp), "%s/quipu", base);
		else if ((base = getenv("HOME")) != NULL && *base != '\0')
			rc = snprintf(tmp, sizeof(tmp), "%s/.local/share/quipu",
				      base);
		else
			return QP_EINVAL;
		if (rc < 0 || rc >= (int)sizeof(tmp))
			return -ENAMETOOLONG;
		dir = tmp;
	}
	if (strlen(dir) >= QP_PATH_MAX - 32)
		return -ENAMETOOLONG;
	/* The socket path must fit in sockaddr_un.sun_path (108 bytes). */
	snprintf(n->dir, sizeof(n->dir), "%s", dir);
	if ((rc = join_path(n->store, dir, "store")) != 0 ||
	    (rc = join_path(n->sock, dir, "quipud.sock")) != 0 ||
	    (rc = join_path(n->pidfile, dir, "quipud.pid")) != 0 ||
	    (rc = join_path(n->keyfile, dir, "key")) != 0 ||
	    (rc = join_path(n->config, dir, "node.json")) != 0)
		return rc;
	return 0;
}

/* mkdir -p with the given mode for the last component. */
static int make_dirs(const char *path, mode_t mode)
{
	char buf[QP_PATH_MAX];
	size_t len = strlen(path);
	if (len >= sizeof(buf))
		return QP_EINVAL;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Write data to path atomically (tmp + fsync + rename) with mode. */
static int write_file(const char *path, const void *data, size_t len,
		      mode_t mode, int exclusive)
{
	char tmp[QP_PATH_MAX + 8];
	int fd, rc = 0;
	if (exclusive && access(path, F_OK) == 0)
		return QP_EEXIST;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) != 0 || write(fd, data, len) != (ssize_t)len ||
	    fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
	return rc;
}

int qp_node_init(qp_node *n, const char *role, const char *listen)
{
	json_t *cfg = NULL;
	char *text = NULL;
	int rc;

	if (role == NULL)
		role = "field";
	if (strcmp(role, "field") != 0 && strcmp(role, "hub") != 0)
		return QP_EINVAL;
	if ((rc = qp_crypto_init()) != 0)
		return rc;
	if ((rc = make_dirs(n->dir, 0700)) != 0)
		return rc;
	if (access(n->keyfile, F_OK) == 0)
		return QP_EEXIST;
	qp_key_generate(n->pk, n->sk);
	cfg = json_pack("{s:i, s:s}", "version", 1, "role", role);
	if (cfg == NULL)
		return QP_ENOMEM;
	if (listen != NULL)
		json_object_set_new(cfg, "listen", json_string(listen));
	text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (text == NULL) {
		rc = QP_ENOMEM;
		goto out;
	}
	if ((rc = make_dirs(n->store, 0700)) != 0)
		goto out;
	if ((rc = write_file(n->config, text, strlen(text), 0644, 0)) != 0)
		goto out;
	/* The key is written last: its presence marks an initialised node. */
	rc = write_file(n->keyfile, n->sk, QP_SKEY_LEN, 0600, 1);
	if (rc == 0) {
		n->cfg = cfg;
		cfg = NULL;
	}
out:
	free(text);
	json_decref(cfg);
	return rc;
}

int qp_node_load(qp_node *n)
{
	struct stat st;
	ssize_t got;
	int fd, rc;

	if ((rc = qp_crypto_init()) != 0)
		return rc;
	fd = open(n->keyfile, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return QP_EKEY;
	/* A key readable by group or others has leaked; refuse to use it. */
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 077) != 0 || st.st_size != QP_SKEY_LEN) {
		close(fd);
		return QP_EKEY;
	}
	got = read(fd, n->sk, QP_SKEY_LEN);
	close(fd);
	if (got != QP_SKEY_LEN)
		return QP_EKEY;
	crypto_sign_ed25519_sk_to_pk(n->pk, n->sk);

	if ((rc = qp_node_load_config(n)) != 0) {
		sodium_memzero(n->sk, sizeof(n->sk));
		return rc;
	}
	return 0;
}

/* The top level of node.json: known keys, each of the right type. */
static int check_config(const json_t *cfg, char *err, size_t errlen)
{
	static const char *const keys[] = {"version", "role", "listen",
					   "plots", "lots", "backup", NULL};
	const char *key, *role = "field";
	const json_t *v;
	size_t i;

	json_object_foreach((json_t *)cfg, key, v) {
		for (i = 0; keys[i] != NULL && strcmp(keys[i], key) != 0; i++)
			;
		if (keys[i] == NULL)
			return qp_errf(QP_EPROTO, err, errlen,
				       "node.json: unknown key \"%.40s\" (known: "
				       "version, role, listen, plots, lots, backup)",
				       key);
	}
	v = json_object_get(cfg, "version");
	if (v != NULL && (!json_is_integer(v) || json_integer_value(v) != 1))
		return qp_errf(QP_EPROTO, err, errlen,
			       "node.json: version: must be 1 (the version "
			       "this quipud reads)");
	v = json_object_get(cfg, "role");
	if (v != NULL) {
		role = json_string_value(v);
		if (role == NULL ||
		    (strcmp(role, "field") != 0 && strcmp(role, "hub") != 0))
			return qp_errf(QP_EPROTO, err, errlen,
				       "node.json: role: must be \"field\" or "
				       "\"hub\"");
	}
	v = json_object_get(cfg, "listen");
	if (v != NULL && (!json_is_string(v) ||
			  qp_token_addr_split(json_string_value(v), NULL, 0,
					      NULL) != 0))
		return qp_errf(QP_EPROTO, err, errlen,
			       "node.json: listen: must be \"HOST:PORT\"");
	if (v != NULL && strcmp(role, "hub") != 0)
		return qp_errf(QP_EPROTO, err, errlen,
			       "node.json: listen: only a hub listens for sync "
			       "(role is \"%s\")",
			       role);
	return 0;
}

int qp_node_load_config(qp_node *n)
{
	json_error_t jerr;

	n->cfg_err[0] = '\0';
	json_decref(n->cfg);
	n->cfg = json_load_file(n->config, JSON_REJECT_DUPLICATES, &jerr);
	if (n->cfg == NULL) {
		if (jerr.line > 0)
			return qp_errf(QP_EPROTO, n->cfg_err, sizeof n->cfg_err,
				       "node.json: line %d column %d: %s",
				       jerr.line, jerr.column, jerr.text);
		return qp_errf(QP_EPROTO, n->cfg_err, sizeof n->cfg_err,
			       "node.json: %s", jerr.text);
	}
	if (!json_is_object(n->cfg) ||
	    check_config(n->cfg, n->cfg_err, sizeof n->cfg_err) != 0) {
		if (n->cfg_err[0] == '\0')
			qp_errf(0, n->cfg_err, sizeof n->cfg_err,
				"node.json: must be a JSON object");
		json_decref(n->cfg);
		n->cfg = NULL;
		return QP_EPROTO;
	}
	return 0;
}

void qp_node_free(qp_node *n)
{
	if (n == NULL)
		return;
	json_decref(n->cfg);
	n->cfg = NULL;
	sodium_memzero(n->sk, sizeof(n->sk));
}

const char *qp_node_role(const qp_node *n)
{
	const char *r = n->cfg ? json_string_value(json_object_get(n->cfg, "role")) : NULL;
	return r ? r : "field";
}

/* A positive number under plots.KEY, or the default left as it is. */
static int plots_num(const json_t *plots, const char *key, double scale,
		     double *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(plots, key);

	if (v == NULL)
		return 0;
	if (!json_is_number(v) || !(json_number_value(v) > 0) ||
	    json_number_value(v) > 1e6) {
		snprintf(err, errlen,
			 "node.json: plots.%s: must be a positive number", key);
		return QP_EPROTO;
	}
	*out = json_number_value(v) * scale;
	return 0;
}

int qp_node_geo_opts(const qp_node *n, qp_geo_opts *o, char *err,
		     size_t errlen)
{
	const json_t *plots = n->cfg ? json_object_get(n->cfg, "plots") : NULL;
	qp_geo_opts t = qp_geo_opts_default();
	int rc;

	if (plots != NULL && !json_is_object(plots)) {
		snprintf(err, errlen, "node.json: plots: must be an object");
		return QP_EPROTO;
	}
	if ((rc = plots_num(plots, "max_accuracy_m", 1, &t.max_accuracy_m,
			    err, errlen)) != 0 ||
	    (rc = plots_num(plots, "area_tolerance_pct", 0.01,
			    &t.area_tolerance, err, errlen)) != 0)
		return rc;
	*o = t;
	return 0;
}

int qp_node_lots_cfg(const qp_node *n, qp_lots_cfg *cfg, char *err,
		     size_t errlen)
{
	char why[200];

	if (qp_lots_cfg_parse(n->cfg ? json_object_get(n->cfg, "lots") : NULL,
			      cfg, why, sizeof why) != 0) {
		snprintf(err, errlen, "node.json: %s", why);
		return QP_EPROTO;
	}
	return 0;
}

/* node.json's "backup" object (see node.h). */
int qp_node_backup_cfg(const qp_node *n, qp_backup_cfg *cfg, char *err,
		       size_t errlen)
{
	const json_t *b = n->cfg ? json_object_get(n->cfg, "backup") : NULL;
	const json_t *v;
	const char *key, *dir;

	memset(cfg, 0, sizeof *cfg);
	cfg->every_hours = 24;
	cfg->keep = 7;
	if (b == NULL)
		return 0;
	if (!json_is_object(b))
		return qp_errf(QP_EPROTO, err, errlen,
			       "node.json: backup: must be an object "
			       "{\"dir\": ..., \"every_hours\": ..., \"keep\": ...}");
	json_object_foreach((json_t *)b, key, v) {
		if (strcmp(key, "dir") != 0 && strcmp(key, "every_hours") != 0 &&
		    strcmp(key, "keep") != 0)
			return qp_errf(QP_EPROTO, err, errlen,
				       "node.json: backup: unknown key \"%.40s\" "
				       "(known: dir, every_hours, keep)",
				       key);
	}
	dir = json_string_value(json_object_get(b, "dir"));
	if (dir == NULL || dir[0] != '/' ||
	    strlen(dir) >= sizeof cfg->dir - 64)
		return qp_errf(QP_EPROTO, err, errlen,
			       "node.json: backup.dir: must be an absolute "
			       "directory path (shorter than %zu bytes)",
			       sizeof cfg->dir - 64);
	snprintf(cfg->dir, sizeof cfg->dir, "%s", dir);
	v = json_object_get(b, "every_hours");
	if (v != NULL) {
		if (!json_is_number(v) || !(json_number_value(v) > 0) ||
		    json_number_value(v) > 8760)
			return qp_errf(QP_EPROTO, err, errlen,
				       "node.json: backup.every_hours: must be "
				       "a number of hours above 0 and at most "
				       "8760 (0.5: every half hour)");
		cfg->every_hours = json_number_value(v);
	}
	v = json_object_get(b, "keep");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 1000)
			return qp_errf(QP_EPROTO, err, errlen,
				       "node.json: backup.keep: must be a whole "
				       "number of backups from 1 to 1000");
		cfg->keep = (unsigned)json_integer_value(v);
	}
	return 0;
}

int qp_sync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}
