/*
 * cmd_lots.c - quipu check lots: the mass balance of lots once every
 * device's events have met at the hub.  A device refuses an event that
 * takes more of a lot than it holds or puts out more than the yield allows
 * (lots.h); two devices that never saw each other can each take most of
 * the same lot, and only here does the sum show.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lots.h"

/* The node's yields and tolerance (node.json "lots"), so the review flags
 * what this node's own tablets would refuse.  Without a readable node.json
 * the built-in ones serve (the daemon reports what is wrong with the
 * node).  Returns an exit status. */
static int node_lots_cfg(qp_cli *c, qp_lots_cfg *cfg)
{
	char why[256];
	int rc;

	if ((rc = qp_cli_paths(c)) != QP_EXIT_OK)
		return rc;
	*cfg = qp_lots_cfg_default();
	if (qp_node_load_config(&c->node) != 0) {
		if (access(c->node.config, F_OK) != 0)
			return QP_EXIT_OK; /* no node.json: the defaults */
		qp_cli_err("%s (%s)", c->node.cfg_err, c->node.config);
		return QP_EXIT_FAIL;
	}
	if (qp_node_lots_cfg(&c->node, cfg, why, sizeof why) != 0) {
		qp_cli_err("%s", why);
		return QP_EXIT_FAIL;
	}
	return QP_EXIT_OK;
}

/* The finding's event ids after its text, and the end of the line. */
static void print_events(const json_t *f)
{
	const json_t *ev;
	size_t i;

	json_array_foreach(json_object_get(f, "events"), i, ev)
		printf(" %s", json_string_value(ev));
	printf("\n");
}

static void print_finding(const json_t *f)
{
	const char *type = json_string_value(json_object_get(f, "type"));

	if (strcmp(type, "overconsumed") == 0) {
		printf("overconsumed: lot %s (%s) holds %.10g kg; events take "
		       "%.10g kg:",
		       json_string_value(json_object_get(f, "code")),
		       json_string_value(json_object_get(f, "lot")),
		       json_number_value(json_object_get(f, "kg")),
		       json_number_value(json_object_get(f, "consumed")));
		print_events(f);
		return;
	}
	if (strcmp(type, "unsourced") == 0) {
		printf("unsourced: lot %s (%s) holds %.10g kg; its events put "
		       "%.10g kg into it:",
		       json_string_value(json_object_get(f, "code")),
		       json_string_value(json_object_get(f, "lot")),
		       json_number_value(json_object_get(f, "kg")),
		       json_number_value(json_object_get(f, "made")));
		print_events(f);
		return;
	}
	if (strcmp(type, "cycle") == 0) {
		printf("cycle: lot %s (%s) comes out of its own descendants; "
		       "events:",
		       json_string_value(json_object_get(f, "code")),
		       json_string_value(json_object_get(f, "lot")));
		print_events(f);
		return;
	}
	printf("yield: event %s (lot %s): %.10g kg out of %.10g kg in, at most "
	       "%.10g kg\n",
	       json_string_value(json_object_get(f, "event")),
	       json_string_value(json_object_get(f, "code")),
	       json_number_value(json_object_get(f, "outputs_kg")),
	       json_number_value(json_object_get(f, "inputs_kg")),
	       json_number_value(json_object_get(f, "max_kg")));
}

int qp_check_lots(qp_cli *c, int argc, char **argv)
{
	json_t *lots = NULL, *events = NULL, *found = NULL, *f;
	qp_lots_cfg cfg;
	int json, status;
	size_t i;
	char *s;

	if ((status = qp_cli_json_opts(c, argc, argv, 1, &json)) >= 0)
		return status;
	if ((status = node_lots_cfg(c, &cfg)) != 0 ||
	    (status = qp_cli_fetch_all(c, "lot", NULL, 0, &lots)) != 0 ||
	    (status = qp_cli_fetch_all(c, "lot_event", NULL, 0, &events)) != 0)
		goto out;
	if (qp_lots_review(&cfg, lots, events, &found) != 0) {
		qp_cli_err("check lots: the records could not be reviewed");
		status = QP_EXIT_FAIL;
		goto out;
	}
	if (json) {
		s = json_dumps(found, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	} else if (json_array_size(found) == 0) {
		printf("no findings (%zu lots, %zu events)\n",
		       json_array_size(lots), json_array_size(events));
	} else {
		json_array_foreach(found, i, f)
			print_finding(f);
	}
out:
	json_decref(found);
	json_decref(events);
	json_decref(lots);
	return status;
}
