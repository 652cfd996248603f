/*
 * cmd_check.c - quipu check duplicates: records that should be one but
 * arrived as several, once tablets that never saw each other have synced:
 * producers with the same DNI in one organisation, organisations with the
 * same RUC.  On a device these are refused at write time; at the hub,
 * where every device's records meet, they are flagged here for review.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

/* Every record of kind (voided ones left out), paged over the API.  On
 * success *out is a new array. */
static int fetch_all(qp_cli *c, const char *kind, json_t **out)
{
	char after[QP_UUID_STRLEN + 1] = "";
	json_t *all = json_array(), *req, *reply = NULL, *recs;
	const char *next;
	int status;

	for (;;) {
		req = json_pack("{s:s, s:s, s:i}", "op", "list", "kind", kind,
				"limit", (int)QP_API_LIST_MAX);
		if (after[0] != '\0')
			json_object_set_new(req, "after", json_string(after));
		status = qp_cli_call(c, req, &reply);
		json_decref(req);
		if (status != 0) {
			json_decref(all);
			return status;
		}
		recs = json_object_get(reply, "records");
		json_array_extend(all, recs);
		next = json_string_value(json_object_get(reply, "next"));
		if (next == NULL || next[0] == '\0' || json_array_size(recs) == 0) {
			json_decref(reply);
			break;
		}
		snprintf(after, sizeof(after), "%s", next);
		json_decref(reply);
	}
	*out = all;
	return 0;
}

/* Group recs by the text of field (and org when per_org), and append one
 * finding per group of two or more to found. */
static void group(json_t *recs, const char *kind, const char *field,
		  int per_org, json_t *found)
{
	json_t *groups = json_object(), *r, *g;
	const char *key;
	size_t i;

	json_array_foreach(recs, i, r) {
		const char *v = json_string_value(json_object_get(r, field));
		const char *org = json_string_value(json_object_get(r, "org"));
		char *k;
		if (v == NULL)
			continue;
		if (asprintf(&k, "%s\x1f%s", per_org && org ? org : "", v) < 0)
			abort();
		g = json_object_get(groups, k);
		if (g == NULL) {
			g = json_pack("{s:s, s:s, s:s, s:[]}", "kind", kind, "field",
				      field, "value", v, "ids");
			if (per_org && org)
				json_object_set_new(g, "org", json_string(org));
			json_object_set_new(groups, k, g);
		}
		json_array_append(json_object_get(g, "ids"), json_object_get(r, "id"));
		free(k);
	}
	json_object_foreach(groups, key, g) {
		if (json_array_size(json_object_get(g, "ids")) > 1)
			json_array_append(found, g);
	}
	json_decref(groups);
}

int qp_cmd_check(qp_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *found, *recs = NULL, *f, *ids;
	int json = 0, status = 0, o;
	size_t i, j;
	char *s;

	optind = 0;
	while ((o = qp_cli_getopt(c, argc, argv, QP_CLI_COMMON_SHORT "j", opts,
				  &status)) != -1) {
		if (o == -2)
			return status;
		if (o == 'j')
			json = 1;
	}
	if (optind >= argc || strcmp(argv[optind], "duplicates") != 0)
		return qp_cli_usage("check", "what to check: duplicates");
	if (optind + 1 != argc)
		return qp_cli_usage("check", "unexpected argument '%s'", argv[optind + 1]);

	found = json_array();
	if ((status = fetch_all(c, "producer", &recs)) == 0) {
		group(recs, "producer", "dni", 1, found);
		json_decref(recs);
		recs = NULL;
		if ((status = fetch_all(c, "org", &recs)) == 0)
			group(recs, "org", "ruc", 0, found);
		json_decref(recs);
	}
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
			printf(": %zu records:", json_array_size(ids));
			for (j = 0; j < json_array_size(ids); j++)
				printf(" %s", json_string_value(json_array_get(ids, j)));
			printf("\n");
		}
	}
	json_decref(found);
	return QP_EXIT_OK;
}
