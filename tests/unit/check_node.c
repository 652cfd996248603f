/*
 * check_node.c - covers daemon/node.c: data-directory resolution, init
 * (key mode 0600, refusal to replace an identity) and key loading.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "node.h"
#include "suites.h"

START_TEST(paths_from_option_and_env)
{
	qp_node n;
	ck_assert_int_eq(qp_node_paths(&n, "/tmp/qx"), 0);
	ck_assert_str_eq(n.sock, "/tmp/qx/quipud.sock");
	ck_assert_str_eq(n.keyfile, "/tmp/qx/key");
	setenv("QUIPU_DATA", "/tmp/from-env", 1);
	ck_assert_int_eq(qp_node_paths(&n, NULL), 0);
	ck_assert_str_eq(n.dir, "/tmp/from-env");
	unsetenv("QUIPU_DATA");
	setenv("XDG_DATA_HOME", "/tmp/xdg", 1);
	ck_assert_int_eq(qp_node_paths(&n, NULL), 0);
	ck_assert_str_eq(n.dir, "/tmp/xdg/quipu");
	unsetenv("XDG_DATA_HOME");
	setenv("HOME", "/home/tec", 1);
	ck_assert_int_eq(qp_node_paths(&n, NULL), 0);
	ck_assert_str_eq(n.dir, "/home/tec/.local/share/quipu");
	{
		char longdir[QP_PATH_MAX];
		memset(longdir, 'x', sizeof longdir - 1);
		longdir[0] = '/';
		longdir[sizeof longdir - 1] = '\0';
		ck_assert_int_eq(qp_node_paths(&n, longdir), -ENAMETOOLONG);
	}
}
END_TEST

START_TEST(init_then_load)
{
	char *tmp = qp_test_tmpdir(), dir[512];
	qp_node a, b;
	struct stat st;
	uint8_t pk[QP_KEY_LEN];

	snprintf(dir, sizeof(dir), "%s/node", tmp);
	ck_assert_int_eq(qp_node_paths(&a, dir), 0);
	ck_assert_int_eq(qp_node_init(&a, "field", NULL), 0);
	memcpy(pk, a.pk, sizeof(pk));
	ck_assert_int_eq(stat(a.keyfile, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(stat(a.dir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	/* A second init never replaces the identity. */
	ck_assert_int_eq(qp_node_paths(&b, dir), 0);
	ck_assert_int_eq(qp_node_init(&b, "field", NULL), QP_EEXIST);
	ck_assert_int_eq(qp_node_load(&b), 0);
	ck_assert_mem_eq(b.pk, pk, QP_KEY_LEN);
	ck_assert_str_eq(qp_node_role(&b), "field");
	qp_node_free(&a);
	qp_node_free(&b);
	qp_test_rmtree(tmp);
	free(tmp);
}
END_TEST

START_TEST(hub_role_and_listen)
{
	char *tmp = qp_test_tmpdir();
	qp_node a;
	ck_assert_int_eq(qp_node_paths(&a, tmp), 0);
	ck_assert_int_eq(qp_node_init(&a, "relay", NULL), QP_EINVAL);
	ck_assert_int_eq(qp_node_init(&a, "hub", "127.0.0.1:7420"), 0);
	qp_node_free(&a);
	ck_assert_int_eq(qp_node_paths(&a, tmp), 0);
	ck_assert_int_eq(qp_node_load(&a), 0);
	ck_assert_str_eq(qp_node_role(&a), "hub");
	ck_assert_str_eq(json_string_value(json_object_get(a.cfg, "listen")),
			 "127.0.0.1:7420");
	qp_node_free(&a);
	qp_test_rmtree(tmp);
	free(tmp);
}
END_TEST

START_TEST(plot_thresholds_from_config)
{
	qp_node n = {0};
	qp_geo_opts o;
	char err[256] = "";

	/* No "plots": geo.h's defaults. */
	ck_assert_int_eq(qp_node_geo_opts(&n, &o, err, sizeof err), 0);
	ck_assert(o.max_accuracy_m == qp_geo_opts_default().max_accuracy_m);
	n.cfg = json_pack("{s:{s:f, s:i}}", "plots", "max_accuracy_m", 25.0,
			  "area_tolerance_pct", 15);
	ck_assert_int_eq(qp_node_geo_opts(&n, &o, err, sizeof err), 0);
	ck_assert(o.max_accuracy_m == 25.0);
	ck_assert(o.area_tolerance > 0.1499 && o.area_tolerance < 0.1501);
	json_object_set_new(json_object_get(n.cfg, "plots"), "max_accuracy_m",
			    json_string("ten"));
	ck_assert_int_eq(qp_node_geo_opts(&n, &o, err, sizeof err), QP_EPROTO);
	ck_assert_str_eq(err, "node.json: plots.max_accuracy_m: must be a "
			      "positive number");
	json_object_set_new(n.cfg, "plots", json_integer(3));
	ck_assert_int_eq(qp_node_geo_opts(&n, &o, err, sizeof err), QP_EPROTO);
	ck_assert_str_eq(err, "node.json: plots: must be an object");
	json_decref(n.cfg);
}
END_TEST

/* node.json "backup": defaults, every value checked with the key named. */
static void backup_refused(qp_node *n, const char *json, const char *want)
{
	qp_backup_cfg b;
	char err[256] = "";

	json_decref(n->cfg);
	n->cfg = json_loads(json, 0, NULL);
	ck_assert_ptr_nonnull(n->cfg);
	ck_assert_int_eq(qp_node_backup_cfg(n, &b, err, sizeof err), QP_EPROTO);
	ck_assert_str_eq(err, want);
}

START_TEST(backup_from_config)
{
	qp_node n = {0};
	qp_backup_cfg b;
	char err[256] = "";

	/* No "backup": none scheduled. */
	ck_assert_int_eq(qp_node_backup_cfg(&n, &b, err, sizeof err), 0);
	ck_assert_str_eq(b.dir, "");
	n.cfg = json_pack("{s:{s:s}}", "backup", "dir", "/media/sd/quipu");
	ck_assert_int_eq(qp_node_backup_cfg(&n, &b, err, sizeof err), 0);
	ck_assert_str_eq(b.dir, "/media/sd/quipu");
	ck_assert(b.every_hours == 24);
	ck_assert_uint_eq(b.keep, 7);
	json_object_set_new(json_object_get(n.cfg, "backup"), "every_hours",
			    json_real(0.5));
	json_object_set_new(json_object_get(n.cfg, "backup"), "keep",
			    json_integer(30));
	ck_assert_int_eq(qp_node_backup_cfg(&n, &b, err, sizeof err), 0);
	ck_assert(b.every_hours == 0.5);
	ck_assert_uint_eq(b.keep, 30);
	backup_refused(&n, "{\"backup\": \"/media/sd\"}",
		       "node.json: backup: must be an object {\"dir\": ..., "
		       "\"every_hours\": ..., \"keep\": ...}");
	backup_refused(&n, "{\"backup\": {}}",
		       "node.json: backup.dir: must be an absolute directory "
		       "path (shorter than 4032 bytes)");
	backup_refused(&n, "{\"backup\": {\"dir\": \"sd/quipu\"}}",
		       "node.json: backup.dir: must be an absolute directory "
		       "path (shorter than 4032 bytes)");
	backup_refused(&n, "{\"backup\": {\"dir\": \"/sd\", \"every_hours\": 0}}",
		       "node.json: backup.every_hours: must be a number of "
		       "hours above 0 and at most 8760 (0.5: every half hour)");
	backup_refused(&n, "{\"backup\": {\"dir\": \"/sd\", \"every_hours\": \"24\"}}",
		       "node.json: backup.every_hours: must be a number of "
		       "hours above 0 and at most 8760 (0.5: every half hour)");
	backup_refused(&n, "{\"backup\": {\"dir\": \"/sd\", \"keep\": 2.5}}",
		       "node.json: backup.keep: must be a whole number of "
		       "backups from 1 to 1000");
	backup_refused(&n, "{\"backup\": {\"dir\": \"/sd\", \"keep\": 1001}}",
		       "node.json: backup.keep: must be a whole number of "
		       "backups from 1 to 1000");
	backup_refused(&n, "{\"backup\": {\"dir\": \"/sd\", \"hours\": 3}}",
		       "node.json: backup: unknown key \"hours\" (known: dir, "
		       "every_hours, keep)");
	json_decref(n.cfg);
}
END_TEST

START_TEST(load_refuses_bad_keys)
{
	char *tmp = qp_test_tmpdir();
	qp_node a;
	FILE *f;

	ck_assert_int_eq(qp_node_paths(&a, tmp), 0);
	ck_assert_int_eq(qp_node_load(&a), QP_EKEY); /* not initialised */
	ck_assert_int_eq(qp_node_init(&a, NULL, NULL), 0);
	qp_node_free(&a);
	/* Readable by others: refused. */
	ck_assert_int_eq(chmod(a.keyfile, 0644), 0);
	ck_assert_int_eq(qp_node_load(&a), QP_EKEY);
	/* Wrong size: refused. */
	ck_assert_int_eq(chmod(a.keyfile, 0600), 0);
	f = fopen(a.keyfile, "ab");
	fputc('x', f);
	fclose(f);
	ck_assert_int_eq(qp_node_load(&a), QP_EKEY);
	qp_node_free(&a);
	qp_test_rmtree(tmp);
	free(tmp);
}
END_TEST

/* node.json: known keys of the right type, or one line naming the key
 * (or the line and column of a syntax error). */
static void config_refused(qp_node *n, const char *text, const char *want)
{
	FILE *f = fopen(n->config, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(qp_node_load_config(n), QP_EPROTO);
	ck_assert_ptr_null(n->cfg);
	ck_assert_str_eq(n->cfg_err, want);
}

START_TEST(config_checked)
{
	char *tmp = qp_test_tmpdir();
	qp_node a = {0};

	ck_assert_int_eq(qp_node_paths(&a, tmp), 0);
	ck_assert_int_eq(qp_node_init(&a, "hub", "127.0.0.1:7420"), 0);
	ck_assert_int_eq(qp_node_load_config(&a), 0);
	config_refused(&a, "{\"role\":\"fieldx\"}",
		       "node.json: role: must be \"field\" or \"hub\"");
	config_refused(&a, "{\"role\":\"Hub\"}",
		       "node.json: role: must be \"field\" or \"hub\"");
	config_refused(&a, "{\"version\":2}",
		       "node.json: version: must be 1 (the version this "
		       "quipud reads)");
	config_refused(&a, "{\"version\":1,\"plot\":{}}",
		       "node.json: unknown key \"plot\" (known: version, role, "
		       "listen, plots, lots, backup)");
	config_refused(&a, "{\"role\":\"hub\",\"listen\":\"nonsense\"}",
		       "node.json: listen: must be \"HOST:PORT\"");
	config_refused(&a, "{\"role\":\"field\",\"listen\":\"127.0.0.1:7000\"}",
		       "node.json: listen: only a hub listens for sync (role "
		       "is \"field\")");
	config_refused(&a, "{\"role\":\"hub\",\n \"listen\": 7420,}",
		       "node.json: line 2 column 17: string or '}' expected "
		       "near '}'");
	config_refused(&a, "[1]", "node.json: must be a JSON object");
	qp_node_free(&a);
	qp_test_rmtree(tmp);
	free(tmp);
}
END_TEST

Suite *suite_node(void)
{
	Suite *s = suite_create("node");
	TCase *tc = tcase_create("node");
	tcase_add_test(tc, paths_from_option_and_env);
	tcase_add_test(tc, init_then_load);
	tcase_add_test(tc, hub_role_and_listen);
	tcase_add_test(tc, load_refuses_bad_keys);
	tcase_add_test(tc, config_checked);
	tcase_add_test(tc, plot_thresholds_from_config);
	tcase_add_test(tc, backup_from_config);
	suite_add_tcase(s, tc);
	return s;
}
