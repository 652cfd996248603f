/*
 * cmd_plots.c - quipu check plots (the hub's plot review) and quipu layer
 * (the reference layers it checks against).
 *
 * check plots reads every plot and producer over the API and reviews the
 * plots with proto/plotcheck.c against each other and against the layers
 * stored in DIR/layers.  Layers are files of this node, not records: they
 * are not synced, need no daemon, and are written atomically (a temporary
 * file in the same directory, fsync, rename, fsync of the directory), so a
 * crash leaves either the old layer or the new one, and a file that fails
 * the checks changes nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "geo.h"
#include "plotcheck.h"
#include "util.h"

#define LAYER_DIR      "layers"
#define LAYER_EXT      ".geojson"
#define LAYER_NAME_MAX 64
#define ERR_LEN        512

/* ------------------------------------------------------------------ */
/* Layer files. */

/* NAME is [A-Za-z0-9_-]{1,64}: it becomes a file name, so nothing else. */
static int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > LAYER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return 0;
	return 1;
}

static void layer_dir(qp_cli *c, char *buf, size_t len)
{
	qp_fmt(buf, len, "%s/%s", c->node.dir, LAYER_DIR);
}

static void layer_path(qp_cli *c, const char *name, char *buf, size_t len)
{
	qp_fmt(buf, len, "%s/%s/%s%s", c->node.dir, LAYER_DIR, name, LAYER_EXT);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the stored layers, sorted (a missing directory holds
 * none).  *names is a malloc'd array of malloc'd strings. */
static int layer_names(qp_cli *c, char ***names, size_t *n)
{
	char dir[QP_PATH_MAX + 16];
	char **v = NULL;
	size_t cnt = 0, cap = 0, l;
	struct dirent *e;
	DIR *d;

	layer_dir(c, dir, sizeof dir);
	d = opendir(dir);
	if (d == NULL && errno != ENOENT) {
		qp_cli_err("%s: %s", dir, strerror(errno));
		return QP_EXIT_FAIL;
	}
	while (d != NULL && (e = readdir(d)) != NULL) {
		char base[LAYER_NAME_MAX + 1];
		l = strlen(e->d_name);
		/* NAME.geojson only: temporary files start with a dot. */
		if (l <= strlen(LAYER_EXT) ||
		    strcmp(e->d_name + l - strlen(LAYER_EXT), LAYER_EXT) != 0 ||
		    l - strlen(LAYER_EXT) > LAYER_NAME_MAX)
			continue;
		memcpy(base, e->d_name, l - strlen(LAYER_EXT));
		base[l - strlen(LAYER_EXT)] = '\0';
		if (!name_ok(base))
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 8;
			v = qp_xrealloc(v, cap * sizeof *v);
		}
		v[cnt++] = qp_xstrdup(base);
	}
	if (d != NULL)
		closedir(d);
	if (cnt > 1)
		qsort(v, cnt, sizeof *v, cmp_str);
	*names = v;
	*n = cnt;
	return QP_EXIT_OK;
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Read and check stored layer name: *features (new reference) and the
 * file's size in *bytes. */
static int read_layer(qp_cli *c, qp_geo *g, const char *name, json_t **features,
                      size_t *bytes)
{
	char path[QP_PATH_MAX + 96], err[ERR_LEN];
	char *buf = NULL;
	size_t len = 0;
	int status, rc;

	layer_path(c, name, path, sizeof path);
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		qp_cli_err("no layer %s (see quipu layer list)", name);
		return QP_EXIT_FAIL;
	}
	status = qp_cli_read_all(path, QP_LAYER_MAX_BYTES, &buf, &len);
	if (status != QP_EXIT_OK)
		return status;
	rc = qp_layer_parse(g, buf, len, features, err, sizeof err);
	free(buf);
	if (rc != 0) {
		qp_cli_err("layer %s (%s): %s", name, path, err);
		return QP_EXIT_FAIL;
	}
	*bytes = len;
	return QP_EXIT_OK;
}

int qp_cli_layers(qp_cli *c, const char *only, struct qp_layer **layers,
                  json_t **owner, size_t *n)
{
	char **names = NULL;
	size_t nnames = 0, bytes, i;
	qp_layer *v = NULL;
	json_t *own = NULL, *fs, *nm;
	qp_geo *g = NULL;
	int status;

	if ((status = qp_cli_paths(c)) != QP_EXIT_OK)
		return status;
	if (only != NULL) {
		if (!name_ok(only)) {
			qp_cli_err("no layer %s (layer names are letters, "
			           "digits, '_' and '-')",
			           only);
			return QP_EXIT_FAIL;
		}
		names = qp_xcalloc(1, sizeof *names);
		names[0] = qp_xstrdup(only);
		nnames = 1;
	} else if ((status = layer_names(c, &names, &nnames)) != 0) {
		return status;
	}
	if (qp_geo_new(&g) != 0 || (own = json_array()) == NULL) {
		qp_cli_err("out of memory");
		status = QP_EXIT_FAIL;
		goto out;
	}
	v = qp_xcalloc(nnames ? nnames : 1, sizeof *v);
	for (i = 0; i < nnames; i++) {
		status = read_layer(c, g, names[i], &fs, &bytes);
		if (status != QP_EXIT_OK)
			goto out;
		/* The owner holds each name and its features. */
		nm = json_string(names[i]);
		json_array_append_new(own, nm);
		json_array_append_new(own, fs);
		v[i].name = json_string_value(nm);
		v[i].features = fs;
	}
	*layers = v;
	*owner = own;
	*n = nnames;
	v = NULL;
	own = NULL;
out:
	free(v);
	json_decref(own);
	qp_geo_free(g);
	free_names(names, nnames);
	return status;
}

/* Write buf to dir/name atomically: a temporary file beside it, synced,
 * renamed over it, and the directory synced so the rename lasts. */
static int write_atomic(const char *dir, const char *name, const char *buf,
                        size_t len)
{
	char tmp[QP_PATH_MAX + 96], path[QP_PATH_MAX + 96];
	size_t off = 0;
	ssize_t w;
	int fd, e = 0;

	qp_fmt(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name);
	qp_fmt(path, sizeof path, "%s/%s", dir, name);
	fd = mkostemp(tmp, O_CLOEXEC); /* 0600 */
	if (fd < 0) {
		qp_cli_err("%s: %s", dir, strerror(errno));
		return QP_EXIT_FAIL;
	}
	while (off < len) {
		w = write(fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			e = errno;
			goto fail;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		e = errno;
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		e = errno;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		e = errno;
		goto fail;
	}
	if ((e = -qp_sync_path(dir)) != 0) {
		qp_cli_err("%s: %s", dir, strerror(e));
		return QP_EXIT_FAIL;
	}
	return QP_EXIT_OK;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	qp_cli_err("writing %s: %s", path, strerror(e));
	return QP_EXIT_FAIL;
}


/* The data directory must exist (quipu init made it); the layer directory
 * is made on first use, private like the rest. */
static int make_layer_dir(qp_cli *c, char *dir, size_t len)
{
	struct stat st;
	int rc;

	if (stat(c->node.dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		qp_cli_err("%s: no data directory here (run quipu init first)",
		           c->node.dir);
		return QP_EXIT_FAIL;
	}
	layer_dir(c, dir, len);
	if (mkdir(dir, 0700) != 0) {
		if (errno == EEXIST)
			return QP_EXIT_OK;
		qp_cli_err("%s: %s", dir, strerror(errno));
		return QP_EXIT_FAIL;
	}
	/* A new directory entry lasts only once its parent is synced. */
	if ((rc = qp_sync_path(c->node.dir)) != 0) {
		qp_cli_err("%s: %s", c->node.dir, qp_strerror(rc));
		return QP_EXIT_FAIL;
	}
	return QP_EXIT_OK;
}

/* Check a layer NAME given on the command line and resolve the node's
 * paths: what load and remove do first. */
static int layer_begin(qp_cli *c, const char *name)
{
	if (!name_ok(name))
		return qp_cli_usage("layer",
		                    "invalid layer name '%s' (1 to 64 letters, "
		                    "digits, '_' or '-')",
		                    name);
	return qp_cli_paths(c);
}

static int layer_load(qp_cli *c, const char *name, const char *file)
{
	char dir[QP_PATH_MAX + 16], fname[LAYER_NAME_MAX + 16], err[ERR_LEN];
	char *buf = NULL;
	size_t len = 0;
	json_t *fs = NULL;
	qp_geo *g = NULL;
	int status, rc;

	if ((status = layer_begin(c, name)) != QP_EXIT_OK)
		return status;
	status = qp_cli_read_all(file, QP_LAYER_MAX_BYTES, &buf, &len);
	if (status != QP_EXIT_OK)
		return status;
	if (qp_geo_new(&g) != 0) {
		qp_cli_err("out of memory");
		status = QP_EXIT_FAIL;
		goto out;
	}
	rc = qp_layer_parse(g, buf, len, &fs, err, sizeof err);
	if (rc != 0) {
		qp_cli_err("layer load %s: %s", file, err);
		status = QP_EXIT_FAIL;
		goto out;
	}
	if ((status = make_layer_dir(c, dir, sizeof dir)) != QP_EXIT_OK)
		goto out;
	/* The file as given, byte for byte: it has passed the checks, and
	 * its coordinates keep every digit they were written with. */
	qp_fmt(fname, sizeof fname, "%s%s", name, LAYER_EXT);
	if ((status = write_atomic(dir, fname, buf, len)) != QP_EXIT_OK)
		goto out;
	printf("loaded layer %s: %zu feature%s\n", name, json_array_size(fs),
	       json_array_size(fs) == 1 ? "" : "s");
out:
	json_decref(fs);
	qp_geo_free(g);
	free(buf);
	return status;
}

static int layer_list(qp_cli *c)
{
	char **names = NULL;
	size_t n = 0, bytes, i;
	json_t *fs;
	qp_geo *g = NULL;
	int status;

	if ((status = qp_cli_paths(c)) != QP_EXIT_OK)
		return status;
	if ((status = layer_names(c, &names, &n)) != QP_EXIT_OK)
		return status;
	if (qp_geo_new(&g) != 0) {
		qp_cli_err("out of memory");
		status = QP_EXIT_FAIL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((status = read_layer(c, g, names[i], &fs, &bytes)) != 0)
			goto out;
		printf("%s %zu features %zu bytes\n", names[i],
		       json_array_size(fs), bytes);
		json_decref(fs);
	}
out:
	qp_geo_free(g);
	free_names(names, n);
	return status;
}

static int layer_remove(qp_cli *c, const char *name)
{
	char path[QP_PATH_MAX + 96], dir[QP_PATH_MAX + 16];
	int status, rc;

	if ((status = layer_begin(c, name)) != QP_EXIT_OK)
		return status;
	layer_path(c, name, path, sizeof path);
	layer_dir(c, dir, sizeof dir);
	if (unlink(path) != 0) {
		if (errno == ENOENT)
			qp_cli_err("no layer %s (see quipu layer list)", name);
		else
			qp_cli_err("%s: %s", path, strerror(errno));
		return QP_EXIT_FAIL;
	}
	if ((rc = qp_sync_path(dir)) != 0) {
		qp_cli_err("%s: %s", dir, qp_strerror(rc));
		return QP_EXIT_FAIL;
	}
	printf("removed layer %s\n", name);
	return QP_EXIT_OK;
}

/* layer load NAME FILE | list | remove NAME */
int qp_cmd_layer(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    QP_CLI_COMMON_OPTS,
	    {NULL, 0, NULL, 0},
	};
	int status = 0, o, nops;
	const char *sub;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "", opts, &status)) != -1)
		if (o == -2)
			return status;
	nops = argc - optind;
	if (nops < 1)
		return qp_cli_usage("layer",
		                    "what to do: load, list or remove");
	sub = argv[optind];
	if (strcmp(sub, "load") == 0) {
		if (nops != 3)
			return qp_cli_usage("layer",
			                    "load needs NAME and FILE");
		return layer_load(c, argv[optind + 1], argv[optind + 2]);
	}
	if (strcmp(sub, "list") == 0) {
		if (nops != 1)
			return qp_cli_usage("layer", "unexpected argument \"%s\"",
			                    argv[optind + 1]);
		return layer_list(c);
	}
	if (strcmp(sub, "remove") == 0) {
		if (nops != 2)
			return qp_cli_usage("layer", "remove needs NAME");
		return layer_remove(c, argv[optind + 1]);
	}
	return qp_cli_usage("layer",
	                    "unknown subcommand '%s' (load, list or "
	                    "remove)",
	                    sub);
}

/* ------------------------------------------------------------------ */
/* check plots */

/* "plot ID (producer NAME)", the producer's name when it is known, else
 * its id. */
static void plot_text(const json_t *f, size_t i, const json_t *names, char *buf,
                      size_t len)
{
	const char *id =
	    json_string_value(json_array_get(json_object_get(f, "plots"), i));
	const char *p = json_string_value(
	    json_array_get(json_object_get(f, "producers"), i));
	const char *name =
	    p ? json_string_value(json_object_get(names, p)) : NULL;

	qp_fmt(buf, len, "plot %s (producer %s)", id ? id : "?",
	       name ? name
	       : p  ? p
	            : "unknown");
}

static void print_finding(const json_t *f, const json_t *names)
{
	const char *type = json_string_value(json_object_get(f, "type"));
	char a[512], b[512], ha[32];
	double pct = json_number_value(json_object_get(f, "overlap_pct"));
	double area = json_number_value(json_object_get(f, "overlap_ha"));
	/* Findings about points have no area (plotcheck.h). */
	int point = !(area > 0);

	plot_text(f, 0, names, a, sizeof a);
	qp_cli_ha_text(area, ha, sizeof ha);
	if (strcmp(type, "geometry") == 0) {
		printf("geometry: %s: %s\n", a,
		       json_string_value(json_object_get(f, "reason")));
	} else if (strcmp(type, "forest_loss") == 0) {
		printf("forest_loss: %s: layer %s feature %lld: ", a,
		       json_string_value(json_object_get(f, "layer")),
		       (long long)json_integer_value(
		           json_object_get(f, "feature")));
		/* Only a point meets a layer with no area. */
		if (point)
			printf("the point lies inside\n");
		else
			printf("%s ha, %.1f%% of the plot\n", ha, pct);
	} else {
		plot_text(f, 1, names, b, sizeof b);
		if (point)
			printf("%s: %s and %s: the same point\n", type, a, b);
		else
			printf("%s: %s and %s: %s ha, %.1f%% of the smaller\n",
			       type, a, b, ha, pct);
	}
}

/* Parse a percentage in [0, 100]. */
static int parse_pct(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0 && v <= 100))
		return -1;
	*out = v;
	return 0;
}

/* The layers named (each once), or every stored layer when none is. */
static int load_layers(qp_cli *c, char **want, size_t nwant, qp_layer **layers,
                       json_t **owner, size_t *n)
{
	qp_layer *all = NULL, *one = NULL;
	json_t *own, *o1 = NULL;
	size_t cnt = 0, n1 = 0;
	int status;

	if (nwant == 0)
		return qp_cli_layers(c, NULL, layers, owner, n);
	own = json_array();
	all = qp_xcalloc(nwant, sizeof *all);
	for (size_t i = 0; i < nwant; i++) {
		int dup = 0;
		for (size_t j = 0; j < i; j++)
			dup |= strcmp(want[i], want[j]) == 0;
		if (dup)
			continue;
		status = qp_cli_layers(c, want[i], &one, &o1, &n1);
		if (status != QP_EXIT_OK) {
			free(all);
			json_decref(own);
			return status;
		}
		json_array_append_new(own, o1);
		for (size_t k = 0; k < n1; k++)
			all[cnt++] = one[k];
		free(one);
	}
	*layers = all;
	*owner = own;
	*n = cnt;
	return QP_EXIT_OK;
}

int qp_check_plots(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    QP_CLI_COMMON_OPTS,
	    {"json", no_argument, NULL, 'j'},
	    {"min-overlap", required_argument, NULL, 'm'},
	    {"layer", required_argument, NULL, 'l'},
	    {NULL, 0, NULL, 0},
	};
	qp_plotcheck_opts po = qp_plotcheck_opts_default();
	char **want = qp_xcalloc((size_t)argc + 1, sizeof *want);
	size_t nwant = 0, nlayers = 0, i;
	qp_layer *layers = NULL;
	json_t *owner = NULL, *plots = NULL, *prods = NULL, *names = NULL;
	json_t *found = NULL, *f;
	qp_geo *g = NULL;
	int json = 0, status = 0, o, rc;
	char *s;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, "j", opts, &status)) != -1) {
		if (o == -2)
			goto out;
		if (o == 'j') {
			json = 1;
		} else if (o == 'm') {
			if (parse_pct(optarg, &po.min_overlap_pct) != 0) {
				status =
				    qp_cli_usage("check",
				                 "--min-overlap: '%s' is not a "
				                 "percentage from 0 to 100",
				                 optarg);
				goto out;
			}
		} else if (o == 'l') {
			if (!name_ok(optarg)) {
				status = qp_cli_usage(
				    "check", "--layer: invalid layer name '%s'",
				    optarg);
				goto out;
			}
			want[nwant++] = optarg;
		}
	}
	/* argv[optind] is "plots". */
	if (optind + 1 != argc) {
		status = qp_cli_usage("check", "unexpected argument \"%s\"",
		                      argv[optind + 1]);
		goto out;
	}

	/* Local first: a bad layer is reported before the daemon is asked
	 * for every plot. */
	status = load_layers(c, want, nwant, &layers, &owner, &nlayers);
	if (status != QP_EXIT_OK)
		goto out;
	if ((status = qp_cli_fetch_all(c, "plot", NULL, 0, &plots)) != 0 ||
	    (status = qp_cli_fetch_all(c, "producer", NULL, 0, &prods)) != 0)
		goto out;
	names = json_object();
	json_array_foreach(prods, i, f)
	{
		const char *id = json_string_value(json_object_get(f, "id"));
		json_t *nm = json_object_get(f, "name");
		if (id != NULL && json_is_string(nm))
			json_object_set(names, id, nm);
	}
	if (qp_geo_new(&g) != 0) {
		qp_cli_err("out of memory");
		status = QP_EXIT_FAIL;
		goto out;
	}
	rc = qp_plotcheck_run(g, plots, layers, nlayers, NULL, &po, &found);
	if (rc != 0) {
		qp_cli_err("check plots: %s", qp_strerror(rc));
		status = QP_EXIT_FAIL;
		goto out;
	}
	if (json) {
		s = qp_cli_dumps(found);
		printf("%s\n", s);
		free(s);
	} else if (json_array_size(found) == 0) {
		printf("no findings\n");
	} else {
		json_array_foreach(found, i, f)
		{
			print_finding(f, names);
		}
	}
	status = QP_EXIT_OK;
out:
	json_decref(found);
	qp_geo_free(g);
	json_decref(names);
	json_decref(prods);
	json_decref(plots);
	json_decref(owner);
	free(layers);
	free(want);
	return status;
}
