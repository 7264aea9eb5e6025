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
#include "core/errors.h"

#define WORKERS_MAX 10000

typedef struct workers workers_t;

workers_t *workers_new(int64_t gone_ms);
void workers_free(workers_t *w);

/* The worker asked for work or reported on it. */
void workers_seen(workers_t *w, const char *worker, int64_t now_ms);
/* A job event from the engine (its persist hook). */
void workers_job(workers_t *w, const job_t *job, job_event_t ev, int64_t now_ms);

/* Worker processes that said who they are (the Faktory protocol's HELLO
 * with a wid) and can be told to stop fetching (quiet) or to exit
 * (terminate); they learn it on their next heartbeat. */
typedef enum { WORKERS_ACTIVE, WORKERS_QUIET, WORKERS_TERMINATE } workers_state_t;
const char *workers_state_name(workers_state_t s);

/* Registers (or refreshes) a process; labels is borrowed. -1: no memory. */
int workers_hello(workers_t *w, const char *wid, const char *protocol, const char *hostname,
                  int64_t pid, json_t *labels, int64_t now_ms);
/* A heartbeat, with what the process says of itself (current_state may be
 * NULL, rss_kb < 0 if not sent): *state is what it was told. -1 if wid is
 * not a registered process. */
int workers_beat(workers_t *w, const char *wid, const char *current_state, int64_t rss_kb,
                 int64_t now_ms, workers_state_t *state);
/* What a process was told; WORKERS_ACTIVE if unknown. */
workers_state_t workers_state(const workers_t *w, const char *wid);
/* When the process last sent a heartbeat (or HELLO); 0 if unknown. */
int64_t workers_last_beat(const workers_t *w, const char *wid);
/* Tells a process to quiet or terminate. ERR_NOT_FOUND: no such process
 * (a worker that only leases over HTTP cannot be told anything). */
err_t workers_signal(workers_t *w, const char *wid, workers_state_t to, problem_t *p);
/* Registered processes heard from within gone_ms. */
size_t workers_processes(const workers_t *w, int64_t now_ms);
/* Workers of any kind (lessees over HTTP, processes, runners) heard from
 * within gone_ms. */
size_t workers_live(const workers_t *w, int64_t now_ms);

/* {"workers":[...]} sorted by id; prunes forgotten workers first. */
json_t *workers_json(workers_t *w, int64_t now_ms);

#endif
