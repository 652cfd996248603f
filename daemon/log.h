/*
 * log.h - levelled logging to stderr for quipud.
 *
 * Lines look like "2026-11-23T12:00:00.123Z quipud info: listening on ...".
 * The level is kept by the caller (main) in a qp_log struct passed around,
 * so there is no global mutable state.
 */
#ifndef QP_LOG_H
#define QP_LOG_H

enum qp_log_level { QP_LOG_ERROR = 0, QP_LOG_WARN, QP_LOG_INFO, QP_LOG_DEBUG };

typedef struct qp_log {
	int level;
} qp_log;

void qp_log_msg(const qp_log *lg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define qp_log_error(lg, ...) qp_log_msg((lg), QP_LOG_ERROR, __VA_ARGS__)
#define qp_log_warn(lg, ...) qp_log_msg((lg), QP_LOG_WARN, __VA_ARGS__)
#define qp_log_info(lg, ...) qp_log_msg((lg), QP_LOG_INFO, __VA_ARGS__)
#define qp_log_debug(lg, ...) qp_log_msg((lg), QP_LOG_DEBUG, __VA_ARGS__)

#endif
