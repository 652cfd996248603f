/*
 * cmd_check.c - quipu check duplicates: records that should be one but
 * arrived as several, once tablets that never saw each other have synced:
 * producers with the same DNI in one organisation, organisations with the
 * same RUC (both refused on a device at write time), and one person's
 * attendance at one session recorded twice (reports count it once; a
 * reviewer voids the extra record).  At the hub, where every device's
 * records meet, they are flagged here for review.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "report.h"
#include "wire.h"

/* The value a record is grouped by: its field, or for "person" (an
 * attendance) the person as `report attendance` counts persons
 * (qp_report_person: a registered producer given by DNI is that producer).
 * Returns a malloc'd string or NULL. */
static char *group_value(const json_t *r, const char *field,
			 const json_t *by_dni)
{
	const char *v;

	if (strcmp(field, "person") == 0)
		return qp_report_person(by_dni, r);
	v = json_string_value(json_object_get(r, field));
	return v != NULL ? qp_xstrdup(v) : NULL;
}

/* Group recs by the value of field within scope (a field such as "org"
 * or "session", or NULL for none), and append one finding per group of
 * two or more to found. */
static void group(json_t *recs, const char *kind, const char *field,
		  const char *scope, const json_t *by_dni, json_t *found)
{
	json_t *groups = json_object(), *r, *g;
	const char *key, *sv;
	size_t i;

	json_array_foreach(recs, i, r) {
		char *v = group_value(r, field, by_dni), *k;
		sv = scope ? json_string_value(json_object_get(r, scope)) : NULL;
		if (v == NULL)
			continue;
		if (asprintf(&k, "%s\x1f%s", sv ? sv : "", v) < 0)
			abort();
		g = json_object_get(groups, k);
		if (g == NULL) {
			g = json_pack("{s:s, s:s, s:s, s:[]}", "kind", kind, "field",
				      field, "value", v, "ids");
			if (sv != NULL)
				json_object_set_new(g, scope, json_string(sv));
			json_object_set_new(groups, k, g);
		}
		json_array_append(json_object_get(g, "ids"), json_object_get(r, "id"));
		free(k);
		free(v);
	}
	json_object_foreach(groups, key, g) {
		if (json_array_size(json_object_get(g, "ids")) > 1)
			json_array_append(found, g);
	}
	json_decref(groups);
}

/* What should be one record: a producer's DNI within an org, an org's
 * RUC, a person's attendance at one session. */
static const struct dup_rule {
	const char *kind, *field, *scope;
} dups[] = {
	{ "producer", "dni", "org" },
	{ "org", "ruc", NULL },
	{ "attendance", "person", "session" },
};

static int check_duplicates(qp_cli *c, int argc, char **argv)
{
	json_t *found, *recs = NULL, *f, *ids, *by_dni = NULL;
	int json, status;
	size_t i, j;
	char *s;

	if ((status = qp_cli_json_opts(c, argc, argv, 1, &json)) >= 0)
		return status;
	status = QP_EXIT_OK;
	found = json_array();
	for (i = 0; i < sizeof(dups) / sizeof(dups[0]) && status == 0; i++) {
		if ((status = qp_cli_fetch_all(c, dups[i].kind, NULL, 0,
					       &recs)) != 0)
			break;
		/* The producers (the first rule) tell registered DNIs. */
		if (by_dni == NULL)
			by_dni = qp_report_dni_index(recs);
		group(recs, dups[i].kind, dups[i].field, dups[i].scope, by_dni,
		      found);
		json_decref(recs);
	}
	json_decref(by_dni);
	if (status != 0) {
		json_decref(found);
		return status;
	}
	if (json) {
		s = json_dumps(found, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	} else if (json_array_size(found) == 0) {
		printf("no duplicates\n");
	} else {
		json_array_foreach(found, i, f) {
			ids = json_object_get(f, "ids");
			printf("%s %s %s", json_string_value(json_object_get(f, "kind")),
			       json_string_value(json_object_get(f, "field")),
			       json_string_value(json_object_get(f, "value")));
			if (json_object_get(f, "org"))
				printf(" (org %s)", json_string_value(json_object_get(f, "org")));
			if (json_object_get(f, "session"))
				printf(" (session %s)", json_string_value(json_object_get(f, "session")));
			printf(": %zu records:", json_array_size(ids));
			for (j = 0; j < json_array_size(ids); j++)
				printf(" %s", json_string_value(json_array_get(ids, j)));
			printf("\n");
		}
	}
	json_decref(found);
	return QP_EXIT_OK;
}

/* The first operand of argv (skipping options and the value of -d/--data),
 * or NULL. */
static const char *first_operand(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--data") == 0)
			i++;
		else if (argv[i][0] != '-')
			return argv[i];
	}
	return NULL;
}

/* check SUBCOMMAND: each subcommand parses the whole argv (argv[0] is
 * "check", so --help and usage errors speak of `check`). */
int qp_cmd_check(qp_cli *c, int argc, char **argv)
{
	const char *what = first_operand(argc, argv);
	int status, json;

	if (what != NULL && strcmp(what, "duplicates") == 0)
		return check_duplicates(c, argc, argv);
	if (what != NULL && strcmp(what, "plots") == 0)
		return qp_check_plots(c, argc, argv);
	if (what != NULL && strcmp(what, "lots") == 0)
		return qp_check_lots(c, argc, argv);
	if ((status = qp_cli_json_opts(c, argc, argv, -1, &json)) >= 0)
		return status;
	if (what == NULL)
		return qp_cli_usage("check", "what to check: duplicates, plots or lots");
	return qp_cli_usage("check", "unknown check '%s' (duplicates, plots or lots)",
			    what);
}
