/*
 * api: jobq's HTTP/JSON contract (docs/api.md), mapped onto the engine and
 * the store. Each resource has its own file; router.c dispatches to them.
 *
 * Threads: the loop thread only. Ownership: the api borrows the engine and
 * store from the server, which outlives every request.
 */
#ifndef JOBQ_API_H
#define JOBQ_API_H

#include <stdbool.h>
#include <stdint.h>

#include "core/job.h"
#include "engine/engine.h"

/* What the api borrows from the server; each handler file includes the
 * headers of what it calls. */
typedef struct engine engine_t;
typedef struct store store_t;
typedef struct config config_t;
typedef struct metrics metrics_t;
typedef struct workers workers_t;
typedef struct perf perf_t;
typedef struct guard guard_t;
typedef struct cache cache_t;
typedef struct admit admit_t;
typedef struct http_req http_req_t;
typedef struct api_events api_events_t;
typedef struct api_bulks api_bulks_t;
struct event_base;

typedef struct api {
    engine_t *engine;
    store_t *store;
    const config_t *cfg;
    metrics_t *metrics;
    workers_t *workers;
    perf_t *perf;
    guard_t *guard;
    cache_t *cache; /* list and stats answers */
    admit_t *admit; /* connection figures, for /metrics */
    api_events_t *events; /* the event streams (GET /v1/events), owned by the server */
    api_bulks_t *bulks;   /* bulk actions (POST /v1/jobs/bulk), owned by the server */
    struct event_base *base; /* the loop, for work spread over its turns */
    int64_t waiting; /* long-poll leases waiting now, bounded by JOBQ_MAX_WAITERS */
    bool draining; /* shutting down: no new work, finish the old */
} api_t;

/* The http_route_fn: ud is the api_t. */
void api_route(void *ud, http_req_t *r);
/* Once a second: a point of chart history from the engine's queues
 * (GET /v1/history). Loop thread. */
void api_history_tick(api_t *a, int64_t now_ms);

/* Event streams (events.c). api_events_free only once the HTTP server has
 * stopped (it closes the streams). Once a second, after the history tick,
 * api_events_tick sends every stream a tick; the engine's job and breaker
 * events are kept for it (cheap, and nothing while no stream is open).
 * api_events_end ends every stream (shutting down). Loop thread. */
api_events_t *api_events_new(void);
void api_events_free(api_events_t *ev);
void api_events_tick(api_t *a, int64_t now_ms);
void api_events_job(api_t *a, const job_t *job, job_event_t ev);
void api_events_breaker(api_t *a, const char *key, engine_breaker_state_t from,
                        engine_breaker_state_t to);
void api_events_end(api_t *a);

/* Bulk actions' registry; free it only after the loop has stopped. */
api_bulks_t *api_bulks_new(void);
void api_bulks_free(api_bulks_t *b);

#endif
