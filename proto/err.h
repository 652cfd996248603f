/*
 * err.h - quipu's one list of error codes.
 *
 * Every function in libquipu, quipud and quipu that can fail returns int:
 * 0 on success or a negative code.  Codes from -1 to -999 are -errno values
 * passed through from the system; codes from -1000 down are quipu's own,
 * generated with their names and messages from the X-macro list below.
 * LMDB, libsodium, zstd and msgpack errors are mapped onto this list and are
 * never returned raw.
 */
#ifndef QP_ERR_H
#define QP_ERR_H

#define QP_ERRORS(X)                                                        \
	X(EINVAL, -1000, "invalid argument")                                \
	X(ENOMEM, -1001, "out of memory")                                   \
	X(EPROTO, -1002, "malformed input")                                 \
	X(ETOOBIG, -1003, "input exceeds a size limit")                     \
	X(ESIG, -1004, "signature does not verify")                         \
	X(ECHAIN, -1005, "hash chain link does not match")                  \
	X(ESEQ, -1006, "sequence number out of order")                      \
	X(ENOTFOUND, -1007, "not found")                                    \
	X(EEXIST, -1008, "already exists")                                  \
	X(EVALID, -1009, "record fails validation")                         \
	X(ESTORE, -1010, "storage error")                                   \
	X(EFORK, -1011, "two different deltas claim the same feed and seq") \
	X(ECORRUPT, -1012, "stored data is corrupt")                        \
	X(EVERSION, -1013, "unsupported format version")                    \
	X(ECONN, -1014, "cannot reach quipud")                              \
	X(ECLOSED, -1015, "connection closed")                              \
	X(ETIMEDOUT, -1016, "timed out")                                    \
	X(EKEY, -1017, "key file missing or unreadable")                    \
	X(ECRYPTO, -1018, "cryptographic operation failed")                 \
	X(ECOMPRESS, -1019, "compression failed")                           \
	X(EMISMATCH, -1020, "derived state does not match the log")         \
	X(ENOTSUP, -1021, "not supported")                                  \
	X(EEXPIRED, -1022, "certificate expired")                           \
	X(EREVOKED, -1023, "key revoked")                                   \
	X(EAUTH, -1024, "peer authentication failed")                       \
	X(EGEOM, -1025, "geometry fails a rule")                            \
	X(ERESTORED, -1026, "restored copy: sync with the hub before writing") \
	X(EVOIDED, -1027, "record is voided")                               \
	X(ESCOPE, -1028, "record belongs to another organisation")

enum qp_err {
	QP_OK = 0,
#define QP__ERR_ENUM(name, value, msg) QP_##name = (value),
	QP_ERRORS(QP__ERR_ENUM)
#undef QP__ERR_ENUM
};

/* Human-readable message for any code (quipu's own or -errno).  Static
 * storage; never NULL. */
const char *qp_strerror(int code);

/* Symbolic name ("QP_EPROTO", or "errno" for system codes).  Static storage. */
const char *qp_err_name(int code);

#endif
