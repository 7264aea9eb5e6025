/*
 * engine: jobq's in-memory dispatcher. Every front end (HTTP today, Faktory
 * and built-in runners later) drives jobs through this API and nothing else.
 *
 * The engine owns the job table (id -> job), the lanes of ready jobs (FIFO
 * per queue, priority, type and breaker key), the limits and circuit
 * breakers that hold lanes back, one timer heap for scheduled runs, retries
 * and lease deadlines, and the long-poll lessees waiting for work. It never blocks,
 * never does I/O and never touches SQL: every change it makes is reported
 * through hooks->persist*, which the owner turns into durable writes, and the
 * owner answers its client only once those writes are durable. (The one
 * exception is the owner's choice: the optional spill hooks, which it calls
 * synchronously to keep deep queues out of memory.)
 *
 * Threads: single-threaded. Every call, and every hook and waiter callback it
 * makes, happens on the thread that owns the engine (the event loop).
 *
 * Ownership: jobs handed to engine_enqueue()/engine_load() belong to the
 * engine from then on, whatever the result. Pointers the engine returns are
 * borrowed and valid only until the next engine call: serialize at once.
 * Hooks and waiter callbacks must not call back into the engine.
 */
#ifndef JOBQ_ENGINE_H
#define JOBQ_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"
#include "core/job.h"
#include "util/heap.h"
#include "util/list.h"

typedef struct engine engine_t;

typedef enum {
    ENGINE_BREAKER_CLOSED,
    ENGINE_BREAKER_OPEN,
    ENGINE_BREAKER_HALF_OPEN,
} engine_breaker_state_t;

/* Shared mode: a breaker's change the whole cluster must see (the owner
 * writes it to the database, whose claims then pass over the breaker's
 * jobs while it is open). Each node counts the failures it sees; the
 * breaker it opens is open everywhere; a half-open breaker's one probe
 * is claimed by one node, whose verdict closes or reopens it for all. */
typedef enum {
    ENGINE_SHARED_OPEN,   /* it opened here (another node's opening wins if first) */
    ENGINE_SHARED_REOPEN, /* this node's probe failed */
    ENGINE_SHARED_CLOSE,  /* this node's probe succeeded */
    ENGINE_SHARED_RESET,  /* an operator closed it */
} engine_shared_change_t;

/* What a claim asks the database for: borrowed for the hook's call. */
#define ENGINE_CLAIM_LIMITS 100 /* type and key limits a claim carries, of each kind */
typedef struct engine_claim {
    const char *const *queues;
    const int *caps; /* per queue: its concurrency limit, held cluster-wide (0: none) */
    int nqueues;
    bool queue_order; /* engine_waiter_t.queue_order */
    int max;
    /* The concurrency limits of types, then of breaker keys (at most
     * ENGINE_CLAIM_LIMITS of each), held cluster-wide: names and caps. */
    const char *const *limited;
    const int *limits;
    int ntypes, nkeys;
} engine_claim_t;

typedef struct engine_hooks {
    void *ud;
    int64_t (*now_ms)(void *ud);
    double (*rand_unit)(void *ud); /* uniform [0,1), for backoff jitter */
    void (*persist)(void *ud, const job_t *job, job_event_t ev);
    void (*persist_delete)(void *ud, const char *id);
    void (*persist_queue)(void *ud, const char *queue, bool paused);
    /* The earliest timer moved; call engine_tick() once the clock reaches it.
     * INT64_MAX means no timer is set. */
    void (*deadline_changed)(void *ud, int64_t deadline_ms);
    /* Optional: a breaker changed state (for logs and metrics). */
    void (*breaker_changed)(void *ud, const char *key, engine_breaker_state_t from,
                            engine_breaker_state_t to);
    /* Shared mode: a breaker's change for the whole cluster (above). */
    void (*breaker_shared)(void *ud, const char *key, engine_shared_change_t change);
    /* Optional: a cold tier for queued jobs (the server's spill file). Once
     * the waiting jobs kept in memory pass engine_options_t.resident_budget_bytes,
     * a queued job is frozen into it instead: spill_write returns where
     * the bytes went, or -1 to keep them in memory; spill_read reads them
     * back (0, or -1 on failure); spill_free says they are no longer
     * needed. The store still holds every such job durably: the tier is a
     * cache of it. */
    /* Shared mode (engine_options_t.shared): waiting lessees need jobs
     * that only the database can give. The owner claims up to c->max free
     * jobs of c's queues for this node and hands them to engine_claimed(),
     * even when none came (with n = 0): one call each. One claim asks for
     * every lessee waiting on the same queues (c->max is their sum, at
     * most 1000). */
    void (*claim)(void *ud, const struct engine_claim *c);
    int64_t (*spill_write)(void *ud, const void *bytes, size_t n);
    int (*spill_read)(void *ud, int64_t off, void *buf, size_t n);
    void (*spill_free)(void *ud, int64_t off, size_t n);
} engine_hooks_t;

/* Circuit breakers, one per breaker key (a job's breaker_key, else its
 * type). Only dependency failures count: timeout, unavailable, internal. */
typedef struct engine_breaker_options {
    int failures;         /* this many in a row open it; 0: rule off */
    double ratio;         /* this failure ratio over the window opens it; 0: off */
    int min_requests;     /* outcomes in the window before the ratio applies */
    int64_t window_ms;
    int64_t cooldown_ms;  /* open this long, doubling per re-open ... */
    int64_t cooldown_max_ms; /* ... up to this */
    int probes;           /* jobs leased at once while half-open */
} engine_breaker_options_t;

/* Execution limits for one queue or one job type; 0 means unlimited. */
typedef struct engine_limit {
    int concurrency; /* running jobs at once */
    double rate;     /* leases per second ... */
    double burst;    /* ... with a bucket this deep (0: max(1, rate)) */
} engine_limit_t;

typedef struct engine_options {
    int64_t finished_in_memory; /* finished jobs kept for reads; at least 1 */
    engine_breaker_options_t breaker;
    /* Priority aging: a queued job counts one priority level higher per
     * aging_ms it has waited. 0: off (strict priority). */
    int64_t aging_ms;
    /* While the jobs held take more than this many bytes (estimated, see
     * job_memory_estimate), finished jobs are dropped from memory, least
     * recently read first; the store still has them. 0: no byte budget. */
    int64_t finished_budget_bytes;
    /* Bytes of packed waiting jobs kept in memory before queued ones go to
     * the spill hooks; 0: all stay in memory. */
    int64_t resident_budget_bytes;
    /* Waiting jobs used lately (enqueued, read, retried) stay thawed, up
     * to this many, before the oldest is frozen: most are leased or read
     * again soon, and freezing costs a pack and an unpack. 0: 256. */
    int thawed_max;
    /* Shared mode: the jobs are a database's, shared with other nodes
     * (cluster mode, docs/architecture.md). The engine keeps only the jobs
     * this node runs: an enqueued job, or one whose attempt ends, is
     * persisted and leaves memory at the end of the call; a job loaded
     * for a read leaves after the next call and is never leased. A lessee
     * finding nothing waits (with wait_ms 0, until the claim it started is
     * answered) while hooks.claim asks the database; claims go out again
     * after claim_poll_ms (jittered) while lessees wait and the last
     * claims came back short, at once when they came back full or a job
     * was enqueued here. */
    bool shared;
    int64_t claim_poll_ms;
} engine_options_t;

/* A lessee. The caller fills the public part and keeps the waiter alive
 * until its callback has run or it has been cancelled. */
typedef struct engine_waiter engine_waiter_t;
typedef void (*engine_lease_cb)(engine_waiter_t *w, job_t **jobs, int n);
struct engine_waiter {
    const char *worker;
    const char *const *queues;
    int nqueues;
    int max;            /* 1..ENGINE_LEASE_MAX */
    /* false: strict priority across the queues, ties to the one listed
     * first (HTTP); true: the queues in the order listed, priority within
     * each (the Faktory protocol's FETCH). */
    bool queue_order;
    engine_lease_cb cb; /* jobs leased, or n = 0 when wait_ms ran out */
    /* Optional: asked before jobs are handed to a waiting lessee; false drops
     * the lessee (its cb runs with n = 0) so no job goes to a gone client. */
    bool (*alive)(engine_waiter_t *w);
    void *ud;
    list_node_t link_; /* engine-private */
    heap_node_t deadline_;
    bool once_;  /* shared mode, wait_ms 0: answered when the claims out are */
    bool asked_; /* shared mode: a claim went out for it this round */
};
#define ENGINE_LEASE_MAX 100

engine_t *engine_new(const engine_hooks_t *hooks, const engine_options_t *opt);
void engine_free(engine_t *e); /* frees every job; waiters are dropped silently */

/* Recovery and reads from the store: takes a job in any state as stored,
 * without persisting. A job already present is kept and the new one freed.
 * Shared mode: the job is a copy to read or act on in the next call; it
 * leaves memory after that call (one already present on its way out
 * stays as long). */
void engine_load(engine_t *e, job_t *job);
/* While held, no finished job is evicted from memory: a caller that loads
 * several jobs from the store and then acts on all of them (a batch replay)
 * finds them all. Holds nest; the last release evicts what is due. */
void engine_hold_eviction(engine_t *e);
void engine_release_eviction(engine_t *e);
/* Recovery: sets a queue's paused flag without persisting. */
void engine_load_queue(engine_t *e, const char *queue, bool paused);

/* ERR_OK if engine_enqueue(job) would succeed (new id or identical replay). */
err_t engine_enqueue_check(engine_t *e, const job_t *job, problem_t *p);
/* Accepts a parsed job: pending if its run_at is ahead, else queued.
 * *created says whether it is new or a replay; *out is the job as stored. */
err_t engine_enqueue(engine_t *e, job_t *job, bool *created, const job_t **out, problem_t *p);

const job_t *engine_get(engine_t *e, const char *id);

err_t engine_cancel(engine_t *e, const char *id, const job_t **out, problem_t *p);
err_t engine_retry(engine_t *e, const char *id, const job_t **out, problem_t *p);
err_t engine_delete(engine_t *e, const char *id, problem_t *p);
/* Retention deleted a finished job from the store: drop it from memory too,
 * without persisting anything. Jobs not finished (retried meanwhile) stay. */
void engine_forget(engine_t *e, const char *id);

/* Leases up to w->max ready jobs into out[] and returns how many. If none
 * is ready and wait_ms > 0, registers w: its callback runs exactly once,
 * with jobs as soon as some are ready, or with none after wait_ms. */
int engine_lease(engine_t *e, engine_waiter_t *w, int64_t wait_ms, job_t **out);
void engine_waiter_cancel(engine_t *e, engine_waiter_t *w);
bool engine_waiter_waiting(const engine_waiter_t *w);
/* Shared mode: jobs the owner claimed for this node (ownership passes),
 * in the order they should be leased; `asked`: the claim's max. They go to
 * waiting lessees; those none takes are persisted (given back) at once.
 * probe (NULL: none): probe[i], jobs[i] is the probe of its breaker,
 * half-open, which the database gave this node: the breaker is half-open
 * here too, and that job's outcome decides for the cluster. */
void engine_claimed(engine_t *e, job_t **jobs, const bool *probe, int n, int asked);
/* Shared mode: a running job of a dead node, now this node's (ownership
 * passes): its attempt ends at once, as an expired lease's would. */
void engine_take_over(engine_t *e, job_t *job);
/* Shared mode: forgets a job without persisting anything (the database
 * refused a write of it: another node holds it now), or every job (this
 * node's claims are void). Lessees holding them learn of it when they
 * report (ERR_NOT_FOUND). */
void engine_drop(engine_t *e, const char *id);
void engine_drop_all(engine_t *e);
/* Shared mode: another node made jobs of these queues free to claim (n 0:
 * of any queue). Lessees waiting on one of them are asked for now, not at
 * the next poll; without such a lessee it changes nothing. */
void engine_woken(engine_t *e, const char *const *queues, int n);
/* Answers every waiting lessee with no jobs (shutdown). */
void engine_release_waiters(engine_t *e);

err_t engine_heartbeat(engine_t *e, const char *id, const char *lease_id, json_t *progress,
                       int64_t extend_ms, const job_t **out, problem_t *p);
err_t engine_complete(engine_t *e, const char *id, const char *lease_id, json_t *result,
                      const job_t **out, problem_t *p);
/* retry: -1 follows the error type, 0 never, 1 if attempts remain. */
err_t engine_fail(engine_t *e, const char *id, const char *lease_id, err_t type,
                  const char *message, json_t *context, int retry, const job_t **out,
                  problem_t *p);
/* The same, with a least delay before the retry (a server's Retry-After):
 * the retry waits for the longer of it and the job's backoff. */
err_t engine_fail_after(engine_t *e, const char *id, const char *lease_id, err_t type,
                        const char *message, json_t *context, int retry, int64_t retry_after_ms,
                        const job_t **out, problem_t *p);

/* The message of the error recorded when a lease runs out. */
#define ENGINE_LEASE_EXPIRED "lease expired before the worker reported"

/* ---- Operators (admin.c): on jobs that are not running ---- */

/* Deletes a job in any state but running (ERR_CONFLICT then). */
err_t engine_remove(engine_t *e, const char *id, problem_t *p);
/* Moves a pending, retrying or queued job straight to failed. */
err_t engine_kill(engine_t *e, const char *id, const job_t **out, problem_t *p);
/* Makes a pending or retrying job ready now. */
err_t engine_run_now(engine_t *e, const char *id, const job_t **out, problem_t *p);
/* Calls fn for every job in memory (every unfinished one, and the finished
 * ones still held) until it returns false. fn must not call the engine. */
void engine_job_foreach(engine_t *e, bool (*fn)(void *ud, const job_t *job), void *ud);

void engine_pause(engine_t *e, const char *queue, bool paused);
bool engine_queue_paused(engine_t *e, const char *queue);

typedef struct engine_queue_info {
    const char *name;
    bool paused;
    /* Jobs in memory by state: exact for unfinished states; finished ones
     * count only those still held in memory. */
    size_t count[JOB_STATE_COUNT];
    size_t by_priority[JOB_STATE_COUNT][JOB_PRIORITIES]; /* the same, by priority too */
    int64_t oldest_ready_at; /* run_at of the longest-waiting queued job; 0 if none */
} engine_queue_info_t;
/* Calls fn for every queue the engine holds, in no particular order: those
 * with a job in memory, paused or limited (it lets go of the others, since
 * queue names are the clients' to invent). */
void engine_queue_foreach(engine_t *e, void (*fn)(void *ud, const engine_queue_info_t *q),
                          void *ud);

/* Fires every timer due at or before now (the hooks' clock). */
void engine_tick(engine_t *e);
int64_t engine_next_deadline(const engine_t *e);
size_t engine_job_count(const engine_t *e);
/* Estimated bytes of every job held, and the finished ones among them. */
int64_t engine_memory_bytes(const engine_t *e);
void engine_set_finished_budget(engine_t *e, int64_t bytes);
void engine_set_resident_budget(engine_t *e, int64_t bytes);
/* Freezes every waiting job kept thawed for having been used lately (the
 * server calls it when a second passes, so a quiet server holds none). */
void engine_freeze_idle(engine_t *e);
/* Jobs whose bytes are in the spill tier now. */
size_t engine_spilled_count(const engine_t *e);
/* How many jobs were ever deleted: a read from the store that started before
 * a delete may return the deleted job, and must not bring it back. */
uint64_t engine_deletes(const engine_t *e);


/* ---- Breakers and limits (gate.c) ---- */

/* Replaces the breaker options and aging (SIGHUP); breakers keep state. */
void engine_set_options(engine_t *e, const engine_breaker_options_t *b, int64_t aging_ms);
typedef enum { ENGINE_LIMIT_QUEUE, ENGINE_LIMIT_TYPE, ENGINE_LIMIT_KEY } engine_limit_kind_t;
/* Sets (or with a zero limit, clears) the limit of one queue, type or
 * breaker key (a download host, say).
 * Returns 0, or -1 if out of memory. */
int engine_set_limit(engine_t *e, engine_limit_kind_t kind, const char *name,
                     const engine_limit_t *limit);
/* Clears every limit (before a reload sets them again). */
void engine_clear_limits(engine_t *e);

typedef struct engine_limit_info {
    engine_limit_kind_t kind;
    const char *name;
    engine_limit_t limit;
    int running;   /* its jobs running now */
    size_t queued; /* its jobs waiting in lanes (keys only; queues: see queue counts) */
    double tokens; /* in the bucket now, when rate-limited */
} engine_limit_info_t;
/* Calls fn for every queue, type and key that has a limit. */
void engine_limit_foreach(engine_t *e, void (*fn)(void *ud, const engine_limit_info_t *l),
                          void *ud);

/* Why a queued job is not being leased: writes e.g. "breaker:api.example.com",
 * "paused:emails", "concurrency:type:video" or "rate:key:example.com" into buf and returns it, or
 * returns NULL when nothing holds it back but jobs ahead of it. */
const char *engine_blocked_by(engine_t *e, const job_t *job, char *buf, size_t len);

typedef struct engine_breaker_info {
    const char *key;
    engine_breaker_state_t state;
    int consecutive_failures;
    uint32_t window_failures, window_total;
    uint64_t failures, successes; /* lifetime, while the key is known */
    int64_t opened_at;            /* 0: never */
    int64_t next_probe_at;        /* open: when it turns half-open; else 0 */
    int64_t cooldown_ms;          /* the cool-down it is in (or will use) */
    int64_t held_until;           /* a worker's rate_limited hold; 0 if none */
    int probes_in_flight;
    size_t queued;                /* jobs of this key waiting to be leased */
} engine_breaker_info_t;
void engine_breaker_foreach(engine_t *e, void (*fn)(void *ud, const engine_breaker_info_t *b),
                            void *ud);
/* Closes a breaker by hand and lifts any hold. ERR_NOT_FOUND if no job has
 * that key in memory and no breaker remembers it. */
err_t engine_breaker_reset(engine_t *e, const char *key, problem_t *p);
const char *engine_breaker_state_name(engine_breaker_state_t s);

#endif
