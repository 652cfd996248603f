/*
 * trace.h - lot lineage: which received lots, producers and plots a lot is
 * made of (upstream), and which lots and shipments hold product of a lot or
 * of a producer (downstream).  Pure computation over lot and lot_event
 * records, no I/O; `quipu trace` and `quipu dds` fetch the records and
 * print the results.
 *
 * The custody graph: the parents of lot L are the inputs of every event
 * that lists L among its outputs (merge, split, transform).  A lot that no
 * event outputs is a leaf: a lot received from a producer.  Receive, ship
 * and claim events name their lot in "lot" and have no outputs.
 *
 * Upstream from X, kg are charged back: need(X) = X.kg; an event e
 * producing L charges each input k with
 *     i_k * need(L) * (o_L,e / sum over e' of o_L,e') / sum(outputs of e)
 * so L's need is split across the events that produced it in proportion to
 * what each produced, and within an event the inputs pay in proportion to
 * their kg.  need(leaf) is the kg of that received lot that ended in X; a
 * leaf's share is need(leaf) / sum of need over all leaves.  The share of
 * an intermediate lot is the part of that leaf mass that passed through it
 * (so X has share 1, and the shares of the leaves add up to 1).  Producer
 * kg: sum of need over its leaf lots (a leaf lot's producer is its
 * "producer", else the producer of its first known plot).  Plot kg: a leaf
 * lot's need split evenly over the plots it names.
 *
 * Downstream from a start set (share 1 each): for every event e consuming a
 * tracked lot k, every output j gets
 *     share(j) += share(k) * i_k / sum(inputs of e) * o_j,e / sum over e' of o_j,e'
 * (the part of j that e made, as upstream), in topological order; shares
 * are capped at 1 (a start lot that is
 * also made of another start lot is still all the producer's).  Shipments
 * and claims are the ship and claim events of lots with share > 0; a
 * shipment's kg is share * the shipped lot's kg.
 *
 * A cycle, or a lot more than QP_TRACE_MAX_DEPTH events away from the
 * start (longest path), stops the trace with an error naming the lot (its
 * code, else its id).  Events that name lots missing from the lot records
 * (voided, or not synced yet) still count: such a lot appears with
 * "missing": true and no code, product or kg.
 *
 * Ids are compared case-insensitively (UUIDs); codes exactly.
 */
#ifndef QP_TRACE_H
#define QP_TRACE_H

#include <jansson.h>
#include <stddef.h>

#define QP_TRACE_MAX_DEPTH 64

typedef struct qp_trace qp_trace;

/* Index the records: lots and events are JSON arrays of lot and lot_event
 * records, plots an array of plot records (or NULL: no plots known, used
 * only to find a plot's producer).  Voided records must be left out by the
 * caller (`qp_cli_fetch_all` with voided 0 does).  Items that are not
 * objects with a string "id" are skipped, as are malformed inputs/outputs
 * entries (no lot id, or kg not a number > 0).  The arrays are referenced,
 * not copied: they must not be modified while *out lives.  Returns 0 with
 * *out set (free with qp_trace_free), or QP_EINVAL when lots or events is
 * not an array or out is NULL. */
int qp_trace_new(const json_t *lots, const json_t *events, const json_t *plots,
		 qp_trace **out);

/* Free an index; NULL is accepted. */
void qp_trace_free(qp_trace *t);

/* The lot record whose id or code is key (borrowed, valid while t lives),
 * or NULL: also when key is a code that several lots carry (codes are
 * unique within an org only; qp_trace_code_shared tells). */
const json_t *qp_trace_find(const qp_trace *t, const char *key);

/* Nonzero when more than one lot carries code. */
int qp_trace_code_shared(const qp_trace *t, const char *code);

/* Upstream of the lot with id lot_id.  On success returns 0 and *out gets
 * a new object:
 *   {"direction": "up",
 *    "lots": [{id, code, product, kg, share, kg_in, depth, leaf,
 *              missing?}],        sorted by depth, code, id; depth is the
 *                                 fewest events between X and the lot
 *    "events": [{id, type, lot, inputs?, outputs?}],  the events that made
 *                                 these lots and the receive events of the
 *                                 leaves, sorted by id
 *    "producers": [{id, kg, share}],                  kg descending, id
 *    "plots": [{id, producer, kg, share, missing?}]}  kg descending, id;
 *                                 producer null when unknown; missing when
 *                                 no plot record has that id
 * kg are rounded to 6 decimals, shares to 9.  Errors (err gets one line):
 *   QP_ENOTFOUND  no lot record with id lot_id;
 *   QP_EPROTO     a cycle ("lot CODE is its own ancestor");
 *   QP_ETOOBIG    deeper than QP_TRACE_MAX_DEPTH ("lot CODE lies more than
 *                 64 events upstream of X");
 *   QP_EINVAL     NULL arguments. */
int qp_trace_up(const qp_trace *t, const char *lot_id, json_t **out, char *err,
		size_t errlen);

/* Downstream of the lots whose ids are in start (a JSON array of strings;
 * ids without a lot record are ignored).  On success returns 0 and *out
 * gets a new object:
 *   {"direction": "down",
 *    "lots": [{id, code, product, kg, share, depth, missing?}],
 *    "events": [{id, type, lot, inputs?, outputs?}],  consuming events,
 *                                 ships and claims of tracked lots, by id
 *    "shipments": [{event, lot, code, buyer, destination, container,
 *                   document, kg, share}],             by event id
 *    "claims": [{event, lot, code, reason}]}           by event id
 * Absent fields are null.  Errors as qp_trace_up (cycle: "lot CODE is its
 * own descendant"; depth: "... events downstream"); an empty or unknown
 * start set is not an error (empty result). */
int qp_trace_down(const qp_trace *t, const json_t *start, json_t **out,
		  char *err, size_t errlen);

/* The ids of every lot whose "producer" is producer_id or that names a plot
 * of that producer, as a new JSON array (in lot record order), for
 * qp_trace_down.  Returns 0, or QP_EINVAL for NULL arguments. */
int qp_trace_producer_lots(const qp_trace *t, const char *producer_id,
			   json_t **out);

#endif
