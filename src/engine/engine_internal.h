/*
 * engine_internal: the engine's private state, shared by engine.c (job table
 * and transitions), lease.c (lessees and lease outcomes), gate.c (limits,
 * breakers and holds) and lane.c (ready jobs and the choice of the next).
 * Nothing outside src/engine/ includes this file.
 *
 * Ready jobs sit in lanes: one FIFO list per (queue, priority, type,
 * breaker key). Everything that can hold a job back (a queue's or a type's
 * limits, a key's breaker or hold) applies to a whole lane, so a lease skips
 * a held lane in O(1) and other keys in the same queue keep flowing.
 */
#ifndef JOBQ_ENGINE_INTERNAL_H
#define JOBQ_ENGINE_INTERNAL_H

#include <string.h>

#include "engine/engine.h"
#include "engine/breaker.h"
#include "util/check.h"
#include "util/hmap.h"
#include "util/pset.h"
#include "util/sbuf.h"
#include "util/token_bucket.h"

/* What jobs sharing a queue, a type or a breaker key have in common. */
typedef struct egate {
    char *name;          /* owned; the hmap key (a queue's gate borrows its name) */
    size_t refs;         /* lanes using it */
    int running;         /* its jobs running now */
    size_t queued;       /* its jobs in lanes */
    engine_limit_t limit;
    token_bucket_t bucket; /* while limit.rate > 0 */
    breaker_t breaker;   /* key gates */
    int64_t held_until;  /* key gates: a worker reported rate_limited */
} egate_t;

typedef struct elane {
    char *name; /* owned; the key in its queue's lanes map */
    struct equeue *queue;
    egate_t *type, *key; /* a reference each */
    int priority;
    list_node_t ready;  /* queued ejobs, oldest first */
    list_node_t active; /* in queue->active while ready is not empty */
    size_t refs;        /* unfinished ejobs of this lane */
} elane_t;

/* A job as the engine holds it: the record plus its scheduling links.
 * A waiting job (pending, queued, retrying) that no caller holds is frozen
 * (freeze.c): rec.frozen holds its id, a NUL and its job_pack() bytes, a
 * third of a job_t's memory. Read rec only through eng_job() and the
 * accessors below, which know which member is live. */
typedef struct ejob {
    union {
        job_t *job;   /* owned, while thawed (frozen_len == 0) */
        char *frozen; /* owned, while frozen */
    } rec;
    /* A job is in the timer heap or in a list, never both, so the two
     * share their bytes (16 a job): the state says which is live (pending,
     * retrying, running: timer; queued, finished: link), and between the
     * two both read as "in none" (eng_unlink()). */
    union {
        heap_node_t timer; /* run_at (pending/retrying) or lease deadline (running) */
        list_node_t link;  /* in its lane (queued) or the finished list */
    };
    struct equeue *queue;
    elane_t *lane;         /* while unfinished */
    uint64_t seq;          /* order of becoming ready, for FIFO across lanes */
    uint32_t bytes : 28;   /* accounted in engine.bytes (a job is far below 256 MiB) */
    uint32_t releasing : 1; /* shared mode: in engine.releasing (shared.c) */
    uint32_t probe : 1;    /* leased while its breaker was half-open */
    uint32_t parked : 1;   /* in engine.parked (freeze.c) */
    /* Frozen into the spill hooks: rec.frozen then holds the int64 offset
     * they returned and the id; only queued jobs spill. */
    uint32_t spilled : 1;
    uint32_t frozen_len;   /* bytes of job_pack() form while frozen; 0 while thawed */
} ejob_t;

typedef struct equeue {
    char *name; /* owned; the hmap key */
    bool paused;
    hmap_t lanes;       /* name -> elane_t */
    list_node_t active; /* lanes with ready jobs */
    egate_t gate;       /* the queue's limits */
    size_t count[JOB_STATE_COUNT]; /* jobs in memory, by state */
    size_t by_priority[JOB_STATE_COUNT][JOB_PRIORITIES]; /* the same, by priority too */
} equeue_t;

struct engine {
    engine_hooks_t h;
    engine_options_t opt;
    pset_t jobs;   /* ejob_t by eng_id() */
    hmap_t queues; /* name -> equeue_t */
    hmap_t types;  /* type -> egate_t */
    hmap_t keys;   /* breaker key -> egate_t */
    /* Shared mode: the concurrency limits of types and keys that claims
     * carry (engine_claim_t.limited), rebuilt after a limit changes;
     * names borrowed from their gates, which a limit keeps alive. */
    const char *claim_limited[2 * ENGINE_CLAIM_LIMITS];
    int claim_limits[2 * ENGINE_CLAIM_LIMITS];
    int claim_ntypes, claim_nkeys;
    bool claim_limits_stale;
    size_t keys_swept; /* how many keys the last sweep left */
    size_t queues_swept; /* how many queues the last sweep left (eng_queue) */
    uint64_t ready_seq;
    int64_t gate_wake; /* a held lane may open by itself then; INT64_MAX: none */
    heap_t timers; /* ejob_t.timer */
    heap_t waiter_deadlines;
    list_node_t waiters;  /* engine_waiter_t.link_, oldest first */
    int eviction_holds;   /* engine_hold_eviction() nesting */
    int in_hook;          /* > 0 while a hook or lessee callback runs */
    list_node_t finished; /* terminal ejobs, oldest first */
    list_node_t graveyard; /* discarded ejobs, freed on the next call (admin.c) */
    size_t nfinished;
    int64_t bytes; /* job_memory_estimate() of every job held */
    bool ready_added; /* a job became ready since the last dispatch */
    uint64_t deletes;
    int64_t reported_deadline;
    /* Jobs used lately, kept thawed, oldest first (freeze.c): a ring. */
    struct {
        ejob_t **v;
        size_t cap, head, n;
    } parked;
    int64_t resident_bytes; /* packed bytes of frozen jobs kept in memory */
    size_t nspilled;
    struct sbuf pack; /* scratch for freezing */
    /* Shared mode (shared.c): jobs the database holds again, left at the
     * end of this call (age 0) or, loaded for a read, of the next one; and
     * the claims asked for and not yet answered. */
    struct eng_release {
        ejob_t *ej;
        int age;
    } *releasing;
    size_t nreleasing, releasing_cap;
    int claims_in_flight;
    int64_t claim_at;
    bool demand; /* a lessee may wait with no claim out for it */
    bool news;   /* a job was enqueued here since a claim came back short */
};

static inline int64_t eng_now(engine_t *e) { return e->h.now_ms(e->h.ud); }

/* ---- freeze.c: the two forms of a job ---- */
static inline bool eng_frozen(const ejob_t *ej) { return ej->frozen_len != 0; }

/* A job's priority, frozen or not: only waiting jobs freeze, and every
 * unfinished job has its lane, whose priority is the job's (it never
 * changes in the engine). */
static inline int eng_priority(const ejob_t *ej)
{
    return eng_frozen(ej) ? ej->lane->priority : ej->rec.job->priority;
}

/* The queue's counts of a job in state s: one more, or one less. */
static inline void eng_count_in(const ejob_t *ej, job_state_t s)
{
    ej->queue->count[s]++;
    ej->queue->by_priority[s][eng_priority(ej)]++;
}
static inline void eng_count_out(const ejob_t *ej, job_state_t s)
{
    ej->queue->count[s]--;
    ej->queue->by_priority[s][eng_priority(ej)]--;
}
#define ENG_SPILL_HEAD sizeof(int64_t) /* the offset before a spilled job's id */
static inline const char *eng_id(const ejob_t *ej)
{
    if (!eng_frozen(ej))
        return ej->rec.job->id;
    return ej->spilled ? ej->rec.frozen + ENG_SPILL_HEAD : ej->rec.frozen;
}
job_state_t eng_state(const ejob_t *ej);
/* 0 if a spilled job's bytes cannot be read. */
int64_t eng_run_at(engine_t *e, const ejob_t *ej);
/* The job record, thawing a frozen job; NULL only when out of memory or
 * the spill tier cannot read it back (eng_thaw_problem() says so). */
job_t *eng_job(engine_t *e, ejob_t *ej);
err_t eng_thaw_problem(problem_t *p, const char *id);
/* A frozen job's record as a new job_t the caller frees, leaving ej as it
 * is; NULL only when out of memory. */
job_t *eng_unpack(engine_t *e, const ejob_t *ej);
/* The record of a job that cannot be frozen (running or finished). */
static inline job_t *eng_thawed(const ejob_t *ej)
{
    CHECK(!eng_frozen(ej));
    return ej->rec.job;
}
/* Freezes a waiting job now; jobs in other states, and a job that cannot
 * be packed for lack of memory, stay as they are. */
void eng_freeze(engine_t *e, ejob_t *ej);
/* ej was just used (thawed, changed or handed to a caller): it stays
 * thawed until thawed_max later ones push it out of the ring, which is
 * never within the call that handed it out (engine.h: pointers live until
 * the next call). */
void eng_park(engine_t *e, ejob_t *ej);
/* Before ej is freed. */
void eng_unpark(engine_t *e, ejob_t *ej);
/* Frees the record in whichever form it is. */
void eng_free_rec(engine_t *e, ejob_t *ej);

/* The queue, made if new (NULL only if out of memory). Making one first
 * frees, whenever the map has doubled, the queues nothing needs: no job in
 * memory, no lane, not paused, no limit (gate.c: eng_queue_unused); so a
 * pointer from here lasts until the next call only while its queue is in
 * one of those uses. Queue names are the clients' to invent. */
equeue_t *eng_queue(engine_t *e, const char *name);
/* What a queue or a lane named name holds besides its jobs (its table slot
 * and malloc's headers included), in engine.bytes: a client naming a new
 * queue or type for every job would otherwise hold several times the
 * memory the limit counts. */
#define ENG_QUEUE_BYTES(name) ((int64_t)(sizeof(equeue_t) + strlen(name) + 1 + 64))
#define ENG_LANE_BYTES(name) ((int64_t)(sizeof(elane_t) + strlen(name) + 1 + 48))
bool eng_queue_unused(engine_t *e, const equeue_t *q);
/* Every state change goes through here so per-queue counts and running
 * counts stay exact. */
void eng_set_state(engine_t *e, ejob_t *ej, job_state_t s);
void eng_make_ready(engine_t *e, ejob_t *ej);
void eng_schedule(engine_t *e, ejob_t *ej, job_state_t state, int64_t at);
void eng_finish(engine_t *e, ejob_t *ej, job_state_t state, job_event_t ev);
void eng_unlink(engine_t *e, ejob_t *ej);
void eng_persist(engine_t *e, ejob_t *ej, job_event_t ev);
/* Brings the job's share of engine.bytes up to date. */
void eng_account(engine_t *e, ejob_t *ej);
/* Frees a finished job held only in memory (the store keeps it). */
void eng_drop(engine_t *e, ejob_t *ej);
/* Runs after every public operation: hands ready jobs to lessees, evicts
 * surplus finished jobs and reports a moved deadline. */
void eng_settle(engine_t *e);
void eng_dispatch(engine_t *e);
void eng_expire_lease(engine_t *e, ejob_t *ej);
void eng_expire_waiter(engine_t *e, engine_waiter_t *w);
ejob_t *eng_find(engine_t *e, const char *id, problem_t *p);
/* A job into the table, its queue and lane (not placed in any list or
 * timer); NULL when out of memory. */
ejob_t *eng_adopt(engine_t *e, job_t *job);
/* admin.c: a failed job with discard_failed leaves at once; its record is
 * freed by eng_reap() at the start of the next call. */
void eng_discard(engine_t *e, ejob_t *ej);
void eng_reap(engine_t *e);

/* shared.c: shared mode (engine_options_t.shared). */
static inline bool eng_shared(const engine_t *e) { return e->opt.shared; }
/* A job the database holds again (persisted in a state other than
 * running, or loaded for a read): it leaves memory at the end of the call
 * (age 0) or of the next one (1). */
void eng_release_later(engine_t *e, ejob_t *ej, int age);
/* A job leaving memory read again: it stays at least until the end of the
 * call `age` calls from now (a MUTATE page loads, then acts on, each). */
void eng_release_keep(engine_t *e, ejob_t *ej, int age);
/* Before dispatch in eng_settle: what is due leaves; claims go out. */
void eng_shared_settle(engine_t *e);
void eng_shared_free(engine_t *e);
/* Before a job's record is freed or buried: it leaves engine.releasing. */
void eng_release_cancel(engine_t *e, ejob_t *ej);
#define ENG_ONCE_WAIT_MS 10000 /* a wait_ms 0 lessee whose claim never comes back */

/* gate.c */
typedef enum {
    ENG_HOLD_NONE, ENG_HOLD_CONCURRENCY, ENG_HOLD_RATE, ENG_HOLD_BREAKER, ENG_HOLD_KEY
} eng_hold_t;
egate_t *eng_gate_get(hmap_t *map, const char *name); /* created on first use; NULL: no memory */
egate_t *eng_key_gate(engine_t *e, const char *name);  /* the same, sweeping idle keys */
void eng_gate_release(engine_t *e, hmap_t *map, egate_t *g); /* frees it if nothing needs it */
/* Whether a gate's own limits hold its jobs now; *wake is lowered to when
 * a held one may open by itself. */
eng_hold_t eng_gate_limits(egate_t *g, int64_t now, int64_t *wake);
/* What holds a lane back, and which gate (*by): its type's limits, then
 * its key's hold, breaker and limits. */
eng_hold_t eng_lane_holds(engine_t *e, elane_t *l, int64_t now, int64_t *wake, egate_t **by);

void eng_gates_leased(engine_t *e, ejob_t *ej);
void eng_gates_running(engine_t *e, ejob_t *ej, int delta);
typedef enum { ENG_OUTCOME_NONE, ENG_OUTCOME_OK, ENG_OUTCOME_FAILED } eng_outcome_t;
void eng_gates_outcome(engine_t *e, ejob_t *ej, eng_outcome_t o);
/* A worker said the key's dependency is rate limiting: hold its lanes. */
void eng_gates_hold(engine_t *e, ejob_t *ej, int64_t until);
/* Shared mode: ej is its breaker's probe, claimed for this node: the
 * breaker turns half-open here (probe); no lessee took it, so the breaker
 * is closed here again and the database's probe lapses (probe_unused). */
void eng_gates_probe(engine_t *e, ejob_t *ej);
void eng_gates_probe_unused(engine_t *e, ejob_t *ej);
void eng_gates_free(engine_t *e);

/* lane.c */
int eng_lane_attach(engine_t *e, ejob_t *ej); /* -1 if out of memory */
void eng_lane_detach(engine_t *e, ejob_t *ej);
void eng_lane_push(engine_t *e, ejob_t *ej);
void eng_lane_remove(ejob_t *ej);
/* The ready job w should get next, honouring pauses, limits and breakers. */
ejob_t *eng_next_ready(engine_t *e, const engine_waiter_t *w);
void eng_queue_free(void *q); /* an equeue_t, as hmap_free_values takes it */

/* The engine's contract (engine.h): loop thread only, and never re-entered
 * from its own hooks or lessee callbacks, which would see half-made
 * changes. ENG_ENTER opens every public function that changes state;
 * ENG_HOOK wraps every call out. Checked in the test build. */
#define ENG_ENTER(e) (CHECK_LOOP_THREAD(), CHECK((e)->in_hook == 0), eng_reap(e))
#define ENG_HOOK(e, call) do { (e)->in_hook++; call; (e)->in_hook--; } while (0)

#endif
