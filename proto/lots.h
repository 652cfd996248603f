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
 * convert at all, except a product into itself (1) and "other" (1).
 */
#ifndef QP_LOTS_H
#define QP_LOTS_H

#include <jansson.h>
#include <stddef.h>

#define QP_LOTS_TOLERANCE 0.02 /* 2% over the bound is accepted */

/* The largest kg of product `to` that one kg of product `from` can become:
 * 1 for the same product or when either is "other", the table value for a
 * known conversion, else 0.  NULL arguments give 0. */
double qp_lots_yield(const char *from, const char *to);

/* What a lot looks like to the balance: product and kg.  Returns 0, or
 * QP_ENOTFOUND when id names no lot (the event is then checked as far as
 * possible; the reference check reports the missing lot). */
typedef int (*qp_lot_lookup)(void *ctx, const char *id, const char **product,
			     double *kg);

/* Check one lot_event record's own balance (merge, split and transform;
 * other types pass).  Returns 0 when the outputs fit, QP_EVALID with one
 * line in err ("lot_event.outputs: 300 kg from 1000 kg exceeds the yield:
 * at most 255 kg of coffee-parchment") otherwise.  *max_out (when non-NULL)
 * gets the bound, tolerance included. */
int qp_lots_event_check(const json_t *event, qp_lot_lookup lookup, void *ctx,
			double *max_out, char *err, size_t errlen);

/* The kg event takes from lot id as input (0 when it does not). */
double qp_lots_input_kg(const json_t *event, const char *id);

/* Review lots and lot_events (JSON arrays of records; voided ones must
 * already be left out).  *findings gets a new array, sorted by lot code
 * then event id, of
 *   {"type": "overconsumed", "lot": id, "code": c, "kg": k,
 *    "consumed": c, "events": [ids]}
 *   {"type": "yield", "event": id, "lot": id, "inputs_kg": i,
 *    "outputs_kg": o, "max_kg": m, "reason": text}
 * Returns 0 or QP_EINVAL. */
int qp_lots_review(const json_t *lots, const json_t *events, json_t **findings);

#endif
