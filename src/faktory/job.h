/*
 * fwp job: a Faktory job <-> a jobq job (the mapping is docs/faktory.md).
 *
 * A pushed job becomes an ordinary jobq job: jid -> id, jobtype -> type,
 * retry -> max_retries (0: discarded when it fails; -1: no retries),
 * reserve_for -> timeout_ms, at -> run_at, priority (1-9) or
 * custom.priority -> priority, custom.breaker_key, custom.backoff (else
 * Faktory's own retry curve). What jobq has no field for (custom,
 * backtrace, retry, created_at, priority as sent) rides in job->faktory
 * and comes back unchanged. Any jobq job can be written in Faktory's shape,
 * whoever enqueued it.
 *
 * Threads: any, for distinct jobs. Ownership: as job.h.
 */
#ifndef JOBQ_FAKTORY_JOB_H
#define JOBQ_FAKTORY_JOB_H

#include <jansson.h>

#include "core/job.h"
#include "util/sbuf.h"

#define FWP_RETRY_DEFAULT 25
#define FWP_RESERVE_DEFAULT_S 1800
#define FWP_ERRTYPE_MAX 100
#define FWP_MESSAGE_MAX 1000
#define FWP_BACKTRACE_MAX 50

/* Validates a pushed job. Errors name the Faktory field ("jid",
 * "custom.priority"). defaults supply a custom.backoff's missing fields. */
err_t fwp_job_parse(json_t *obj, const job_defaults_t *defaults, int64_t now_ms, job_t **out,
                    problem_t *p);

/* The job as FETCH hands it out. */
void fwp_job_write(const job_t *j, sbuf_t *out);

/* Faktory's failure object for the job's latest failure (new reference),
 * or NULL if it never failed. */
json_t *fwp_job_failure(const job_t *j);

/* A FAIL's errtype as jobq's error type: jobq's own names map to
 * themselves (a worker may say "timeout" to feed the breaker), anything
 * else is internal. */
err_t fwp_errtype(const char *errtype);

#endif
