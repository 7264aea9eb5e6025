/*
 * perf: the figures behind GET /v1/perf that no other module keeps:
 * event-loop lag, CPU use of the process and the machine (sampled once a
 * second), and the slowest recent requests.
 *
 * Threads: the loop thread only. Ownership: perf_json() returns a new
 * reference; the perf_t owns everything else.
 */
#ifndef JOBQ_PERF_H
#define JOBQ_PERF_H

#include <jansson.h>
#include <stdint.h>

#define PERF_SLOWEST 10
#define PERF_SLOW_WINDOW_MS (5 * 60 * 1000)

typedef struct perf perf_t;

perf_t *perf_new(void);
void perf_free(perf_t *p);

/* A periodic timer meant to fire at due_ns fired at now_ns (monotonic). */
void perf_tick(perf_t *p, int64_t due_ns, int64_t now_ns);
/* A finished request, for the slowest-requests list. */
void perf_request(perf_t *p, const char *route, const char *method, int status,
                  const char *request_id, double seconds, int64_t now_ms);

/* {"loop_lag_ms":{...},"cpu":{...},"slowest_requests":[...]} */
json_t *perf_json(perf_t *p, int64_t now_ms);

#endif
