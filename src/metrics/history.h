/*
 * history: what a dashboard's charts show, kept in fixed rings so that
 * loading a page costs no store query. One series per queue (and one for
 * all queues): a point a second for the last 15 minutes and a point a
 * minute for the last 24 hours, each with the depth by state at its end,
 * the outcomes within it, and the percentiles of the queue wait of the
 * attempts that started in it and of the run time of those that ended.
 *
 * The registry already keeps cumulative counters and histograms per queue;
 * history_tick() turns their change since the previous tick into a point,
 * so recording a job event costs nothing more. Percentiles come from the
 * difference of two cumulative histograms (their buckets), so they are as
 * exact as the buckets (histogram.h).
 *
 * Memory is fixed when a series is made: ~150 KiB each (one allocation).
 * Threads: one owner (the loop thread). Ownership: the caller owns each
 * series; history_json returns a new reference.
 */
#ifndef JOBQ_HISTORY_H
#define JOBQ_HISTORY_H

#include <jansson.h>
#include <stdint.h>

#include "util/histogram.h"

#define HISTORY_SECONDS 900 /* 15 minutes of one-second points */
#define HISTORY_MINUTES 1440 /* 24 hours of one-minute points */

/* Depth columns, in this order. */
enum { HISTORY_QUEUED, HISTORY_RUNNING, HISTORY_RETRYING, HISTORY_PENDING, HISTORY_DEPTHS };

/* A series' figures now: the depth, and the cumulative outcomes and
 * histograms since start (borrowed for the call). */
typedef struct history_input {
    uint32_t depth[HISTORY_DEPTHS];
    uint64_t completed, failed, cancelled;
    const histogram_t *wait, *run;
} history_input_t;

typedef struct history history_t;

history_t *history_new(void); /* NULL when out of memory */
void history_free(history_t *h);
/* Once a second (now_ms on the wall clock): a one-second point for the
 * interval since the previous tick and, when a minute has turned, a
 * one-minute point. The figures must count from zero when the series is
 * made: the first point holds everything before the first tick. */
void history_tick(history_t *h, int64_t now_ms, const history_input_t *in);
/* {"resolution_s": 1 or 60, "points": [{"t","queued","running","retrying",
 * "pending","completed","failed","cancelled","wait_ms","run_ms"}, ...]},
 * oldest first, points at or after since_ms; wait_ms and run_ms are
 * {"p50","p95","p99"} or null when nothing started or ended. NULL when
 * out of memory. */
json_t *history_json(const history_t *h, int resolution_s, int64_t since_ms);
/* The newest one-second point in that form, or JSON null before the first
 * tick. NULL when out of memory. */
json_t *history_latest_json(const history_t *h);
/* Outcomes (completed, failed, cancelled) of the intervals that began at or
 * after since_ms, to the minute: one-minute points, then the one-second
 * points of the minute still open. */
void history_outcomes_since(const history_t *h, int64_t since_ms, uint64_t out[3]);


#endif
