/*
 * engine_internal: the engine's private state, shared by engine.c (job table
 * and transitions), lease.c (lessees and lease outcomes) and queue.c.
 * Nothing outside src/engine/ includes this file.
 */
#ifndef JOBQ_ENGINE_INTERNAL_H
#define JOBQ_ENGINE_INTERNAL_H

#include "engine/engine.h"
#include "util/hmap.h"

/* A job as the engine holds it: the record plus its scheduling links. */
typedef struct ejob {
    job_t *job;            /* owned */
    heap_node_t timer;     /* run_at (pending/retrying) or lease deadline (running) */
    list_node_t link;      /* in a ready list (queued) or the finished list */
    struct equeue *queue;
} ejob_t;

typedef struct equeue {
    char *name; /* owned; the hmap key */
    bool paused;
    list_node_t ready[JOB_PRIORITIES];
    size_t count[JOB_STATE_COUNT]; /* jobs in memory, by state */
} equeue_t;

struct engine {
    engine_hooks_t h;
    engine_options_t opt;
    hmap_t jobs;   /* id -> ejob_t */
    hmap_t queues; /* name -> equeue_t */
    heap_t timers; /* ejob_t.timer */
    heap_t waiter_deadlines;
    list_node_t waiters;  /* engine_waiter_t.link_, oldest first */
    list_node_t finished; /* terminal ejobs, oldest first */
    size_t nfinished;
    bool ready_added; /* a job became ready since the last dispatch */
    uint64_t deletes;
    int64_t reported_deadline;
};

static inline int64_t eng_now(engine_t *e) { return e->h.now_ms(e->h.ud); }

equeue_t *eng_queue(engine_t *e, const char *name); /* NULL only if out of memory */
/* Every state change goes through here so per-queue counts stay exact. */
static inline void eng_set_state(ejob_t *ej, job_state_t s)
{
    ej->queue->count[ej->job->state]--;
    ej->job->state = s;
    ej->queue->count[s]++;
}
void eng_make_ready(engine_t *e, ejob_t *ej);
void eng_schedule(engine_t *e, ejob_t *ej, job_state_t state, int64_t at);
void eng_finish(engine_t *e, ejob_t *ej, job_state_t state, engine_event_t ev);
void eng_unlink(engine_t *e, ejob_t *ej);
void eng_persist(engine_t *e, ejob_t *ej, engine_event_t ev);
/* Runs after every public operation: hands ready jobs to lessees, evicts
 * surplus finished jobs and reports a moved deadline. */
void eng_settle(engine_t *e);
void eng_dispatch(engine_t *e);
void eng_expire_lease(engine_t *e, ejob_t *ej);
void eng_expire_waiter(engine_t *e, engine_waiter_t *w);
ejob_t *eng_find(engine_t *e, const char *id, problem_t *p);

#endif
