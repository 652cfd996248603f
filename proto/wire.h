/*
 * wire.h - the local API between quipu and quipud, version 1.
 *
 * Transport: the Unix stream socket DIR/quipud.sock.  Each message is a
 * frame (frame.h): 4-byte big-endian length, then a msgpack map that is the
 * JSON object described here (mpjson.h maps JSON to msgpack).  A client may
 * pipeline: send several requests before reading replies.  Replies carry the
 * request's "rid" and come back in request order.
 *
 * Request:  {"v": 1, "rid": uint, "op": OP, ...arguments}
 * Reply:    {"rid": uint, "ok": true, ...results}
 *        or {"rid": uint, "ok": false, "error": "one line", "code": name}
 *
 * OP        arguments                              results
 * id        -                                      key (hex), role, version
 * add       kind, records: [obj...]                ids: [id...]      (1)
 * update    id, fields: obj                        id                (1)
 * void      id, reason                             id                (1)
 * get       id                                     record, meta
 * list      kind?, org?, after?, limit?, voided?   records: [...], next
 * status    -                                      stats (store.h) + daemon
 * verify    -                                      report (store.h)
 *
 * Sync ops (issue 3; /work/notes/sync.md):
 * enroll    pubkey (hex), orgs: [uuid...], name,   token, cert: {device, role,
 *           role?, expires? (unix s, 0 = never),     name, orgs, expires}
 *           address?
 * join      token                                  hub: {key, address}, orgs
 * revoke    key (hex), after_seq?                  revocation: {key, after_seq}
 * peers     -                                      peers: [{key, name, role,
 *                                                    orgs, address?,
 *                                                    last_contact, lag, acked,
 *                                                    pending, last_error,
 *                                                    revoked?}]
 * sync      wait?, timeout_ms?                     - (with wait: ok once the
 *                                                    hub acked every local
 *                                                    delta, else an error)
 * conflicts limit?                                 conflicts: [{id, kind,
 *                                                    field, values: [{value,
 *                                                    author, hlc}]}]
 * quarantine limit?                                quarantine: [{author, org,
 *                                                    seq, op_index, reason,
 *                                                    op}]
 * bundle_export path (absolute), for? (hex key),   path, deltas, bytes
 *           since? ([{author, org, seq}])
 * bundle_import path (absolute)                    deltas, applied,
 *                                                    duplicates,
 *                                                    refused: [{reason}]
 * status also carries "peers": [{key, name, address, state
 * (connected|idle|backoff), pending, last_ack, last_success, last_error,
 * next_attempt_s, counters}].
 *
 * (1) Acknowledged only after the write is durable.  An accepted add of
 * plots or sessions, or an update, may carry "warnings": [{"index": i,
 * "warning": text}] (a ring's winding turned to RFC 7946, declared area
 * far from the measured one, low GPS accuracy): the record was written.
 * All records of one request are accepted or refused together; on refusal
 * "index" names the failing record (0-based) and nothing was written;
 * "twin", when present, names the earlier record of the request that gave
 * the same natural key.
 *
 * A request frame larger than QP_API_MAX_FRAME, a body that is not a map,
 * or a wrong "v" gets an error reply when possible and the connection is
 * closed.
 */
#ifndef QP_WIRE_H
#define QP_WIRE_H

#define QP_API_VERSION 1
#define QP_API_MAX_FRAME (16u << 20) /* 16 MiB per request */
#define QP_API_MAX_RECORDS 10000     /* records per add request */
#define QP_API_LIST_MAX 1000         /* records per list reply page */
#define QP_VERSION_STRING "0.1.0"

#endif
