/*
 * breaker: one circuit breaker's state machine, with no clock and no I/O of
 * its own (the caller passes the time), so it is tested on its own.
 *
 *   closed --(N retryable failures in a row, or failure ratio over the
 *             rolling window)--> open --(cool-down)--> half-open
 *   half-open --(a success)--> closed; --(a failure)--> open again, with the
 *   cool-down doubled up to its cap.
 *
 * A breaker_t is a plain value inside its owner (the engine's key gate).
 */
#ifndef JOBQ_BREAKER_H
#define JOBQ_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"

#define BREAKER_BUCKETS 10 /* the rolling window in tenths */

typedef struct breaker {
    engine_breaker_state_t state;
    int consecutive;      /* retryable failures in a row */
    int probes_out;       /* half-open: probe jobs leased, not yet reported */
    int64_t opened_at;    /* last time it opened; 0 if never */
    int64_t probe_at;     /* open: when it turns half-open */
    int64_t cooldown_ms;  /* the current cool-down; 0 = base */
    uint64_t failures, successes; /* lifetime outcomes */
    int64_t bucket_at;    /* start of the newest window bucket */
    uint32_t ok[BREAKER_BUCKETS], bad[BREAKER_BUCKETS];
} breaker_t;

/* May a job of this key be leased now? Moves open -> half-open once the
 * cool-down has passed. If not, *wake is lowered to when it may change by
 * itself (INT64_MAX-safe: only ever lowered). Returns the state before any
 * move in *was so the caller can report a transition. */
bool breaker_allows(breaker_t *b, const engine_breaker_options_t *o, int64_t now,
                    int64_t *wake);
/* A job was leased while half-open: it is a probe. */
void breaker_leased(breaker_t *b);
/* Records an attempt's outcome (probe: the job was leased half-open).
 * Returns the new state. */
engine_breaker_state_t breaker_record(breaker_t *b, const engine_breaker_options_t *o,
                                      int64_t now, bool failed, bool probe);
/* Back to closed with a clean history (operator reset). */
void breaker_reset(breaker_t *b);
/* Failures and outcomes in the rolling window ending now. */
void breaker_window(breaker_t *b, const engine_breaker_options_t *o, int64_t now,
                    uint32_t *bad, uint32_t *total);
/* Nothing worth remembering: closed, no failures in a row, none in flight,
 * and no outcome left in the rolling window. */
bool breaker_idle(const breaker_t *b, const engine_breaker_options_t *o, int64_t now);

#endif
