/*
 * report.h - attendance against commitments: the aggregation behind
 * `quipu report attendance`.  Pure computation over the records the client
 * fetched (no I/O): attendance is deduplicated (the same person recorded at
 * one session on two devices counts once, with the best status), grouped
 * by any combination of org, service, provider, sex and month, and
 * measured: attendance rate, distinct persons and women's share, sessions
 * held against planned, person-hours, services committed and attended.
 *
 * Definitions (the shared spec in notes/domain.md):
 * - person: attendance.producer, else the producer of attendance.org
 *   registered with attendance.dni, else "dni:" + attendance.dni.
 * - status rank: present > left-early > proxy > absent; attended = any but
 *   absent.
 * - session hours: ends_at - starts_at when both parse, else
 *   service.hours / service.sessions_planned when both are set, else 0.
 *   Person-hours: present and proxy the full session, left-early half,
 *   absent none.  Sums of hours are rounded to 6 decimals.
 * - Attendance whose session is not among the sessions given (voided) is
 *   left out, as are records without a session, a known status or a
 *   person.  Commitments count only when accepted and their service is
 *   among the services given.
 */
#ifndef QP_REPORT_H
#define QP_REPORT_H

#include <jansson.h>
#include <stddef.h>

typedef enum qp_report_key {
	QP_RK_ORG,      /* attendance.org: columns org, org_name */
	QP_RK_SERVICE,  /* session.service: columns service, service_title */
	QP_RK_PROVIDER, /* service.provider */
	QP_RK_SEX,      /* producer.sex, "unknown" for non-registered */
	QP_RK_MONTH,    /* session.starts_at "YYYY-MM" (as written) */
} qp_report_key;

#define QP_REPORT_NKEYS 5

/* A grouping: keys[0..n) in the order given, no key twice. */
typedef struct qp_report_by {
	size_t n;
	qp_report_key keys[QP_REPORT_NKEYS];
} qp_report_by;

/* Parse a --by value: key names separated by commas ("org,month"); NULL
 * means "org".  Returns 0 and fills *by, or QP_EINVAL with one line in err:
 * "unknown group key 'x' (org, service, provider, sex or month)", "group
 * key 'org' given twice", "empty group key". */
int qp_report_parse_by(const char *text, qp_report_by *by, char *err,
                       size_t errlen);

/* The name of a key ("org", ...). */
const char *qp_report_key_name(qp_report_key k);

/* Registered producers by org and DNI (a new object to pass to
 * qp_report_person), from an array of producer records. */
json_t *qp_report_dni_index(const json_t *producers);

/* The person an attendance names, as the report counts persons (malloc'd;
 * NULL when it names none): the producer id, else the producer of the
 * attendance's org registered with its DNI (by_dni from
 * qp_report_dni_index), else "dni:" and the DNI.  `check duplicates`
 * groups by the same. */
char *qp_report_person(const json_t *by_dni, const json_t *attendance);

/* The records the report reads: JSON arrays of records as `list` returns
 * them (borrowed; NULL is an empty array).  Entries that are not objects
 * are skipped. */
typedef struct qp_report_input {
	const json_t *orgs;
	const json_t *producers;
	const json_t *services;
	const json_t *sessions;
	const json_t *attendance;
	const json_t *commitments;
} qp_report_input;

/* Compute the attendance report.  On success returns 0 and *report gets a
 * new object
 *   {"by": [names],
 *    "rows": [{<key columns>, attendances, attended, absent,
 *              attendance_rate, persons, women, women_share,
 *              sessions_held, sessions_planned, hours,
 *              committed_services, attended_services}],
 *    "totals": {<the metrics over every attendance>},
 *    "duplicates_merged": n}
 * Key columns: org and org_name, service and service_title, provider,
 * sex, month (null when unknown; sex is "unknown").  Rows are sorted by
 * their key values (null first).  attendance_rate = attended / attendances
 * and women_share = women / attended persons of known sex (0 when the
 * divisor is 0).  sessions_planned is null when the grouping holds sex or
 * month; committed_services and attended_services are null unless the
 * grouping is org alone.  When the grouping holds only org, service and
 * provider, groups with planned sessions but no attendance appear too
 * (an org that committed to services nobody attended).
 * Errors: QP_EINVAL (NULL in, by or report, a bad grouping, or an input
 * that is not an array). */
int qp_report_attendance(const qp_report_input *in, const qp_report_by *by,
                         json_t **report);

#endif
