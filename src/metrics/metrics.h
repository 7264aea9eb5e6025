/*
 * metrics: what jobq counts about itself, and its Prometheus exposition.
 *
 * The loop thread records (HTTP requests as they finish, job events as the
 * engine reports them) into fixed-size counters and histograms; a scrape
 * renders them with a snapshot of the figures other modules own (the
 * engine's queues and breakers, the store's group commits, caches,
 * connections: metrics_gauges_t, filled by the caller) and the standard
 * process_* metrics. It knows neither the engine nor the store. Label sets are bounded: routes are the
 * router's patterns, statuses are HTTP codes, queues are the user's queues.
 *
 * Threads: the loop thread only. Ownership: metrics_render() returns a
 * string the caller frees; everything else is owned by the metrics_t.
 */
#ifndef JOBQ_METRICS_H
#define JOBQ_METRICS_H

#include <stdbool.h>

#include "core/job.h"
#include "net/admit.h"
#include "util/histogram.h"

typedef struct metrics metrics_t;

metrics_t *metrics_new(const char *version);
void metrics_free(metrics_t *m);

/* One request answered. route lives as long as the process (the
 * router's patterns), so its address names it. */
void metrics_http(metrics_t *m, const char *route, const char *method, int status,
                  double seconds);
/* A job changed (the engine's persist hook); now_ms is the engine's clock. */
void metrics_job(metrics_t *m, const job_t *job, job_event_t ev, int64_t now_ms);

/* Protection (protection.c). A request refused before its handler ran:
 * reason is one of METRICS_REJECT_REASONS. */
#define METRICS_REJECT_REASONS "unauthorized", "forbidden", "rate_limited", "overloaded", "busy"
void metrics_rejected(metrics_t *m, const char *reason);
#define METRICS_BREAKER_STATES 3 /* closed, open, half_open: the engine's order */
void metrics_breaker(metrics_t *m, unsigned to);
/* Retention's batch: jobs deleted one by one (listed), and PostgreSQL's
 * history partitions dropped whole (their jobs not counted one by one). */
void metrics_retention(metrics_t *m, uint64_t deleted, int64_t dropped);

/* The Faktory protocol (faktory.c): a command received, an -ERR sent for
 * one. verb is one of METRICS_FWP_VERBS; anything else counts as "other". */
#define METRICS_FWP_VERBS "HELLO", "PUSH", "PUSHB", "FETCH", "ACK", "FAIL", "BEAT", "INFO", \
                          "FLUSH", "MUTATE", "QUEUE", "END", "BATCH", "TRACK", "other"
#define METRICS_FWP_NVERBS 15
void metrics_fwp_command(metrics_t *m, const char *verb);
void metrics_fwp_error(metrics_t *m, const char *verb);

/* Outcomes of one queue (NULL: all queues) since start and in the last
 * window_s seconds (at most 300), and its execution time (ms). */
typedef struct metrics_window {
    uint64_t completed, failed;        /* in the window */
    double exec_avg_ms, exec_p95_ms;   /* since start */
    uint64_t exec_count;
} metrics_window_t;
void metrics_window(metrics_t *m, const char *queue, int window_s, int64_t now_ms,
                    metrics_window_t *out);

/* [{"route","method","count","p50_ms","p95_ms","p99_ms","max_ms"}] over
 * every status, new reference. */
json_t *metrics_routes_json(metrics_t *m);

/* One queue as the engine holds it (the name is borrowed). */
typedef struct metrics_queue {
    const char *name;
    bool paused;
    size_t count[JOB_STATE_COUNT];
    int64_t oldest_ready_at; /* 0: nothing queued */
} metrics_queue_t;

/* The store's group-commit figures; statement histograms and their names
 * are borrowed arrays of nstatements. */
typedef struct metrics_store {
    histogram_t commit_seconds, batch_size, roundtrip_seconds;
    const histogram_t *statement_seconds;
    const char *const *statement_names;
    int nstatements;
    uint64_t failed_commits;
    uint64_t carried;
    bool healthy;
    size_t quarantined;
} metrics_store_t;

/* Figures other modules own, read at scrape time. Everything borrowed
 * needs to live only for the metrics_render() call. */
typedef struct metrics_gauges {
    uint64_t cache_hits, cache_misses, cache_evictions, cache_invalidations;
    int64_t cache_entries, cache_bytes;
    int64_t memory_used, memory_limit; /* accounted bytes; limit 0: none */
    admit_figures_t connections;
    const metrics_queue_t *queues;
    size_t nqueues;
    size_t breakers[METRICS_BREAKER_STATES];   /* by state */
    const char *const *breaker_state_names;    /* METRICS_BREAKER_STATES of them */
    metrics_store_t store;
} metrics_gauges_t;

/* Queue names are the clients' to invent, and each queue's counters,
 * histograms and ring of recent outcomes take ~9 KB: the first
 * METRICS_QUEUES_MAX queues seen since start have series of their own;
 * every later one counts under the queue label METRICS_OTHER_QUEUES
 * (which no queue can be named: names are [A-Za-z0-9._:-]), in /metrics
 * and in the all-queues figures, and metrics_window() knows nothing of it
 * by name. Without the bound, a client enqueueing to a new queue each
 * time grew the server by ~10 KB and /metrics by ~3 KB a queue for good. */
#define METRICS_QUEUES_MAX 1000
#define METRICS_OTHER_QUEUES "(other)"

/* Chart history (history.h, series.c): once a second, with the engine's
 * queues as they are now. Queues past METRICS_HISTORY_QUEUES count only
 * in the series of all queues. */
#define METRICS_HISTORY_QUEUES 64
void metrics_history_tick(metrics_t *m, int64_t now_ms, const metrics_queue_t *queues, size_t n);
/* The series of queue (NULL: all queues) as history_json() gives it;
 * NULL if that queue has none (never seen, or past the bound) or out of
 * memory. */
json_t *metrics_history_json(metrics_t *m, const char *queue, int resolution_s, int64_t since_ms);
/* The newest one-second point of a queue's series (NULL: all queues), as
 * history_latest_json() gives it; JSON null if it has none. NULL when out
 * of memory. */
json_t *metrics_history_latest(metrics_t *m, const char *queue);
/* Outcomes of all queues since since_ms (history_outcomes_since). */
void metrics_outcomes_since(metrics_t *m, int64_t since_ms, uint64_t out[3]);

/* Prometheus text exposition format 0.0.4. */
char *metrics_render(metrics_t *m, const metrics_gauges_t *g);

#endif
