/*
 * lineage.h - what `quipu trace` (cmd_trace.c) and `quipu dds` (cmd_dds.c)
 * share: every record a lot's lineage touches, read over the API once, with
 * lookups by id and the proto/trace.h index over lots and lot events.
 * Internal to the client.
 */
#ifndef QP_LINEAGE_H
#define QP_LINEAGE_H

#include <jansson.h>

#include "cli.h"
#include "trace.h"

/* A GeoJSON FeatureCollection as the commands write it: the head, then
 * features joined by ",\n" after a first "\n", then the tail (QP_FC_TAIL0
 * when there is no feature). */
#define QP_FC_HEAD  "{\"type\":\"FeatureCollection\",\"features\":["
#define QP_FC_TAIL  "\n]}\n"
#define QP_FC_TAIL0 "]}\n"

typedef struct qp_lineage {
	/* Every non-voided record of these kinds (arrays in id order). */
	json_t *lots, *events, *plots, *producers, *orgs;
	/* Lowercased id -> record (ids are UUIDs, written in either case). */
	json_t *plot_by, *prod_by, *org_by;
	qp_trace *t; /* over lots, events and plots */
} qp_lineage;

/* Fetch lots, lot events, plots, producers and organisations and index
 * them into *d.  Returns an exit status (error printed); on failure *d
 * holds nothing. */
int qp__lineage_load(qp_cli *c, qp_lineage *d);

/* Release what qp__lineage_load made (a zeroed *d is fine). */
void qp__lineage_free(qp_lineage *d);

/* The record with id (any case) in a lowercased-id map, or NULL (also for
 * a NULL id).  Borrowed. */
json_t *qp__by_id(const json_t *by, const char *id);

/* A producer's name for people (prod_by: qp_lineage.prod_by), else its id,
 * else "unknown". */
const char *qp__producer_name(const json_t *prod_by, const char *id);

/* A lot's name for people: "code" of o (a lot record or a result entry),
 * else its "id", else "". */
const char *qp__lot_label(const json_t *o);

#endif
