/*
 * workers: who is working, and how well. One record per worker id, fed by
 * the lease API (a poll counts as being seen) and by the engine's job events
 * (attempts started and how they ended).
 *
 * A worker silent for longer than gone_ms is reported as gone; one silent
 * for ten times that is forgotten. At most WORKERS_MAX records are kept;
 * past that the longest-silent is forgotten first.
 *
 * Threads: the loop thread only. Ownership: workers_json() returns a new
 * reference; everything else is owned by the workers_t.
 */
#ifndef JOBQ_WORKERS_H
#define JOBQ_WORKERS_H

#include <jansson.h>
#include <stdint.h>

#include "core/job.h"
#include "engine/engine.h"

#define WORKERS_MAX 10000

typedef struct workers workers_t;

workers_t *workers_new(int64_t gone_ms);
void workers_free(workers_t *w);

/* The worker asked for work or reported on it. */
void workers_seen(workers_t *w, const char *worker, int64_t now_ms);
/* A job event from the engine (its persist hook). */
void workers_job(workers_t *w, const job_t *job, engine_event_t ev, int64_t now_ms);

/* {"workers":[...]} sorted by id; prunes forgotten workers first. */
json_t *workers_json(workers_t *w, int64_t now_ms);

#endif
