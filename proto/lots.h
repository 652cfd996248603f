/*
 * lots.h - mass balance of lots: how much product a custody step may put
 * out for what it took in, and the review that finds lots used beyond what
 * they hold.
 *
 * A merge, split or transform event takes inputs [{lot, kg}] and gives
 * outputs [{lot, kg}].  Its outputs may weigh at most
 *     sum over inputs of kg * yield(input product -> output product)
 * plus QP_LOTS_TOLERANCE of that (scales and moisture differ).  A lot may
 * be taken as input, over all events, for at most its kg plus the same
 * tolerance.  The device refuses an event that breaks either rule; at the
 * hub, where events of devices that never saw each other meet, the review
 * flags what only breaks after merge.
 *
 * Yields are upper bounds of real conversions (coffee cherry gives about
 * 0.18-0.22 of its weight as parchment); a pair not in the table may not
 * convert at all, except a product into itself (1) and "other" (1).  A
 * node may set its own yields and tolerance (node.json "lots"); they
 * decide what its users may record and what its review flags, never how
 * received events merge.
 */
#ifndef QP_LOTS_H
#define QP_LOTS_H

#include <jansson.h>
#include <stddef.h>

#define QP_LOTS_TOLERANCE 0.02 /* 2% over the bound is accepted */
#define QP_LOTS_MAX_YIELDS 32

/* Yields and tolerance.  A conversion listed here replaces the built-in
 * one for the same pair. */
typedef struct qp_lots_cfg {
	double tolerance; /* fraction: 0.02 = 2% */
	size_t n;
	struct qp_lots_conv {
		char from[32], to[32];
		double yield;
	} conv[QP_LOTS_MAX_YIELDS];
} qp_lots_cfg;

/* The built-in table and QP_LOTS_TOLERANCE. */
qp_lots_cfg qp_lots_cfg_default(void);

/* Read a "lots" object {"tolerance_pct": 0-50, "yields": {"FROM>TO": y}}
 * over the defaults (o may be NULL: the defaults).  FROM and TO must be
 * products of the schema, y in (0, 10].  Returns 0, or QP_EINVAL with one
 * line in err naming the key. */
int qp_lots_cfg_parse(const json_t *o, qp_lots_cfg *cfg, char *err,
		      size_t errlen);

/* The largest kg of product `to` that one kg of product `from` can become:
 * a conversion of cfg (NULL: the defaults), else 1 for the same product or
 * when either is "other", else 0.  NULL products give 0. */
double qp_lots_yield(const qp_lots_cfg *cfg, const char *from, const char *to);

/* What a lot looks like to the balance: product and kg.  Returns 0, or
 * QP_ENOTFOUND when id names no lot (the event is then checked as far as
 * possible; the reference check reports the missing lot). */
typedef int (*qp_lot_lookup)(void *ctx, const char *id, const char **product,
			     double *kg);

/* Check one lot_event record's own balance (merge, split and transform;
 * other types pass) under cfg (NULL: the defaults).  Returns 0 when the outputs fit, QP_EVALID with one
 * line in err ("lot_event.outputs: 300 kg from 1000 kg exceeds the yield:
 * at most 255 kg of coffee-parchment") otherwise.  *max_out (when non-NULL)
 * gets the bound, tolerance included. */
int qp_lots_event_check(const qp_lots_cfg *cfg, const json_t *event,
			qp_lot_lookup lookup, void *ctx, double *max_out,
			char *err, size_t errlen);

/* The kg event takes from lot id as input (0 when it does not). */
double qp_lots_input_kg(const json_t *event, const char *id);

/* Review lots and lot_events (JSON arrays of records; voided ones must
 * already be left out) under cfg (NULL: the defaults).  *findings gets a new array, sorted by lot code
 * then event id, of
 *   {"type": "overconsumed", "lot": id, "code": c, "kg": k,
 *    "consumed": c, "events": [ids]}
 *   {"type": "yield", "event": id, "lot": id, "inputs_kg": i,
 *    "outputs_kg": o, "max_kg": m, "reason": text}
 *   {"type": "unsourced", "lot": id, "code": c, "kg": k, "made": m,
 *    "events": [ids]}  (a lot events put m kg into declares more, beyond
 *    the tolerance: the rest has no origin)
 *   {"type": "cycle", "lot": id, "code": c, "lots": [ids], "events": [ids]}
 *     (lots that come out of each other through events: a custody chain
 *     no trace can follow; "lot" is the one with the first code)
 * Returns 0 or QP_EINVAL. */
int qp_lots_review(const qp_lots_cfg *cfg, const json_t *lots,
		   const json_t *events, json_t **findings);

#endif
