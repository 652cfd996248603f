/*
 * store_sync.h - the store's side of sync: feed heads and deltas for
 * version vectors, trust (certificates, revocations, the hub key), ingest
 * of other nodes' deltas with the trust check, per-peer acknowledgements
 * and notes, and a small key/value area for node settings (join token).
 *
 * Named databases added to the environment (see store.h for the others):
 *   certs      device key(32) -> certificate bytes (cert.h), newest serial
 *   revoked    key(32) -> signed revocation bytes (cert.h)
 *   peers      peer key(32) -> msgpack map of notes (name, address, last
 *              contact, last error, counters)
 *   acks       peer key(32) + feed(48) -> be64 seq the peer acknowledged
 *   kv         text key -> bytes (e.g. "join" -> join token text;
 *              "up:" + key(32) -> a role=hub certificate of key)
 *
 * Trust: a delta is accepted when its author is this node or an anchor,
 * or a key with a certificate in certs issued by an anchor or by a hub
 * that a chain of role=hub certificates in certs links to an anchor (a
 * national hub -> regional hub -> ... -> device, at most 8 hubs deep), and
 * when the delta's org is among the orgs of that certificate and of every
 * hub certificate on the chain (a hub cannot grant an org it does not
 * hold).  The anchors are the trust root (a device's join-token hub key; a
 * hub's own key), a hub's upstream hub, and the hubs above the hub this
 * node joined: the issuers of the role=hub certificates that hub handed
 * down about itself and the hubs above it (kv "up:" + key, kept by
 * qp_store_set_chain), so a regional hub's tablets trust what the
 * national hub certified.  No certificate of an anchor is kept in certs
 * but a hub's own, issued by the hub it joined.  A revoked
 * key's deltas with seq > after_seq are stored (nothing signed is dropped)
 * but their ops go to quarantine with reason "key revoked after seq N".
 */
#ifndef QP_STORE_SYNC_H
#define QP_STORE_SYNC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "delta.h"
#include "store.h"
#include "sync.h"

/* Call fn for every feed held with its head seq (highest contiguous seq),
 * in key order.  fn returns 0 to go on, non-zero to stop (returned). */
int qp_store_heads(qp_store *s,
		   int (*fn)(void *ctx, const qp_feed *f, uint64_t seq),
		   void *ctx);

/* Head seq of one feed (0 when not held). */
int qp_store_head(qp_store *s, const qp_feed *f, uint64_t *seq);

/* Call fn with the deltas of feed f with seq > after, in seq order, at most
 * max_n deltas and (after the first) max_bytes bytes.  The bytes are valid
 * only during the call: copy them.  Returns 0, fn's non-zero value, or
 * QP_ESTORE. */
int qp_store_read_deltas(qp_store *s, const qp_feed *f, uint64_t after,
			 size_t max_n, size_t max_bytes,
			 int (*fn)(void *ctx, uint64_t seq, const uint8_t *d,
				   size_t len),
			 void *ctx);

/* Set the trust root (hub key).  Persisted in kv ("root"). */
int qp_store_set_root(qp_store *s, const uint8_t root[QP_KEY_LEN]);
/* Get it: QP_ENOTFOUND when not set (a field node that never joined). */
int qp_store_get_root(qp_store *s, uint8_t root[QP_KEY_LEN]);

/* A hub that joined a higher hub (regional -> national) trusts that hub
 * as a second anchor: its deltas, the certificates it issued, and the hubs
 * it certified.  Persisted in kv ("upstream"). */
int qp_store_set_upstream(qp_store *s, const uint8_t up[QP_KEY_LEN]);

/* Store a certificate after verifying it was issued by an anchor or by a
 * hub chained to one (see Trust above; expiry is not checked here: an expired
 * certificate still vouches for what was signed while it was valid).
 * Replaces an older serial for the same device.  Errors: QP_EAUTH,
 * QP_ESIG, QP_EPROTO. */
int qp_store_cert_put(qp_store *s, const uint8_t *cert, size_t len);
/* Replace the chain of hubs above this node with certs[0..n): what the
 * hub it joined (a device's root, a hub's upstream) sent in CHAIN, that
 * hub's own role=hub certificate first, then each next one the role=hub
 * certificate of the issuer of the one before (at most 8).  Every
 * signature must verify under its issuer; the issuers become anchors.
 * Nothing changes on an error.  Call it only with what arrived over an
 * authenticated session with the joined hub: that hub vouches for the
 * hubs above it.  n = 0 clears the chain.  Errors: QP_EAUTH (not a hub
 * certificate, or not the next link; nothing joined), QP_ESIG, QP_EPROTO,
 * QP_ETOOBIG. */
int qp_store_set_chain(qp_store *s, const uint8_t *const *certs,
		       const size_t *lens, size_t n);
/* Call fn with what this node hands down in CHAIN to those who joined it:
 * its own role=hub certificate (when it joined a hub), then its chain,
 * bottom up.  Nothing for a top hub or a device. */
int qp_store_chain(qp_store *s,
		   int (*fn)(void *ctx, const uint8_t *cert, size_t len),
		   void *ctx);
/* Copy of the certificate of key (malloc'd).  QP_ENOTFOUND when none. */
int qp_store_cert_get(qp_store *s, const uint8_t key[QP_KEY_LEN],
		      uint8_t **cert, size_t *len);
/* A number that changes whenever a certificate, a revocation or the hub
 * chain is stored in this process (a peer is then sent them again). */
uint64_t qp_store_trust_gen(const qp_store *s);
/* Call fn for every stored certificate (bytes valid during the call). */
int qp_store_certs(qp_store *s,
		   int (*fn)(void *ctx, const uint8_t *cert, size_t len),
		   void *ctx);

/* Store a signed revocation (issuer must be the root or a certified hub).
 * Ops of the key's deltas already held with seq > after_seq are moved to
 * quarantine and the record state is rebuilt without them, in the same
 * transaction.  Errors as qp_store_cert_put. */
int qp_store_revocation_put(qp_store *s, const uint8_t *rev, size_t len);
int qp_store_revocations(qp_store *s,
			 int (*fn)(void *ctx, const uint8_t *rev, size_t len),
			 void *ctx);

/* Is author trusted to write in org?  0 yes; QP_EAUTH with a reason in why
 * ("author abcd1234 has no certificate from this hub", "org X is not in
 * the certificate of abcd1234"). */
int qp_store_trusted(qp_store *s, const uint8_t author[QP_KEY_LEN],
		     const uint8_t org[QP_UUID_LEN], char *why, size_t whylen);

/* Ingest n deltas from a peer or a bundle in one commit: each is verified
 * (qp_delta_verify), trust-checked (untrusted: refused, nothing kept,
 * rcs[i] = QP_EAUTH and why[i] set), then stored and applied as
 * qp__store_ingest_many does (duplicates: rcs[i] = 0, *dups counts them;
 * revoked beyond after_seq: stored, ops quarantined).  whys may be NULL;
 * else an array of n buffers of QP_ERRMSG_LEN.  Returns 0 when the commit
 * succeeded, else a storage error (nothing kept). */
int qp_store_ingest(qp_store *s, const uint8_t *const *deltas,
		    const size_t *lens, size_t n, int *rcs,
		    char (*whys)[QP_ERRMSG_LEN], size_t *dups);

/* Per-peer acknowledgements: the highest seq of feed f that peer has
 * durably acknowledged.  set keeps the maximum. */
int qp_store_ack_set(qp_store *s, const uint8_t peer[QP_KEY_LEN],
		     const qp_feed *f, uint64_t seq);
/* The same for n entries in one transaction (what a peer's VECTOR says it
 * holds, or what it sent us, counts as acknowledged too). */
int qp_store_ack_set_many(qp_store *s, const uint8_t peer[QP_KEY_LEN],
			  const qp_vv_entry *e, size_t n);
int qp_store_ack_get(qp_store *s, const uint8_t peer[QP_KEY_LEN],
		     const qp_feed *f, uint64_t *seq);
/* Deltas held in the given orgs (NULL, 0: all) that peer has not
 * acknowledged: the sum over feeds of head - max(acked, 0). */
int qp_store_pending(qp_store *s, const uint8_t peer[QP_KEY_LEN],
		     const uint8_t (*orgs)[QP_UUID_LEN], size_t norgs,
		     uint64_t *pending);

/* Peer notes: merge the members of obj into the peer's stored map (a null
 * member deletes).  get returns a new reference ({} when none). */
int qp_store_peer_note(qp_store *s, const uint8_t peer[QP_KEY_LEN],
		       const json_t *obj);
int qp_store_peer_get(qp_store *s, const uint8_t peer[QP_KEY_LEN],
		      json_t **out);
/* All peers with notes: [{"key": hex, ...notes}]. */
int qp_store_peers(qp_store *s, json_t **out);

/* kv area for node settings. */
int qp_store_kv_put(qp_store *s, const char *key, const void *v, size_t len);
int qp_store_kv_get(qp_store *s, const char *key, void **v, size_t *len);

/* Listings for review: conflicts [{id, kind, field, void, values:[{value,
 * author, hlc}]}] (void true: values[0] is the void, {void: reason,
 * author, hlc}, and the rest edits of field it had not seen) and
 * quarantine [{author, org, seq, op, reason}], at most limit entries (0:
 * all). */
int qp_store_conflicts(qp_store *s, size_t limit, json_t **out);
int qp_store_quarantine(qp_store *s, size_t limit, json_t **out);
/* Kept forks [{author, org, seq, what ("fork": the log holds other bytes
 * at that seq; "unlinked": it holds none, the delta lies past a fork or
 * does not chain to the head), hash, held_hash (or null), bytes, nops,
 * ops: [{type, kind, id}] (the first 20)}], in feed and seq order, at
 * most limit (0: all). */
int qp_store_forks(qp_store *s, size_t limit, json_t **out);

#endif
