/*
 * store_internal: the store's private state, shared by store.c (the loop
 * thread's side, opening and recovery) and writer.c (the store thread).
 * Nothing outside src/store/ includes this file.
 */
#ifndef JOBQ_STORE_INTERNAL_H
#define JOBQ_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/backend.h"
#include "store/journal.h"
#include "store/store.h"
#include "util/bloom.h"
#include "util/hmap.h"

/* Same order as store_statement_t, which times them. */
typedef enum {
    OP_PUT, OP_DELETE, OP_QUEUE, OP_GET, OP_LIST, OP_STATS, OP_PURGE, OP_IDS,
    OP_CLAIM, OP_BEAT, /* cluster mode: writes with jobs as their result */
    OP_LEAVE,          /* cluster mode: the node stops */
    OP_BREAKER,        /* cluster mode: a breaker's change */
    OP_BREAKERS        /* cluster mode: read the breakers */
} op_kind_t;

typedef struct op {
    struct op *next;
    op_kind_t kind;
    int64_t queued_ns; /* when the loop queued it, for the round-trip figure */
    uint64_t seq; /* writes: their number; reads: the last write before them */
    uint64_t idhash; /* puts and deletes: hmap_hash of their job's id, from their hand-off (0: not yet) */
    job_event_t ev;
    store_row_t row;   /* OP_PUT; strings point into str[] and doc */
    store_query_t q;   /* OP_LIST; strings point into str[] */
    store_purge_t purge; /* OP_PURGE; after_id points into str[] */
    const char *name;  /* OP_DELETE id, OP_QUEUE name, OP_GET the first id */
    size_t nids;       /* OP_GET: ids, NUL-separated from name on */
    bool many;         /* OP_GET: answer an array (store_get_jobs) */
    size_t max_bytes;  /* OP_GET: stop before the next id past this many stored bytes */
    bool paused;
    bool superseded;   /* OP_PUT: a later put or delete of the job is in the same batch */
    bool first_seen;   /* the job's first write in the batch was looked at (apply.c) */
    bool carry;        /* OP_PUT: its job is carried past this compaction (carry.c) */
    uint8_t carries;   /* an enqueue: compactions its job was carried past (carry.c) */
    const char *was;   /* OP_PUT: the state its row has, if it exists and is known (static) */
    char *doc;         /* owned */
    store_read_cb cb;
    void *ud;
    /* OP_STATS: callers that joined this read (store_stats; loop thread),
     * each answered with a copy of its result. */
    struct store_joined {
        store_read_cb cb;
        void *ud;
    } *joined;
    size_t njoined, joined_cap;
    bool taken;        /* reads: a reader has it (under mu) */
    json_t *result;
    char *error;
    bloom_t *ids;      /* OP_IDS: what the scan found, owned */
    bool refused;      /* OP_PUT in cluster mode: the database refused it (row.refused) */
    bool dropped;      /* OP_CLAIM, OP_BEAT: left out of a batch that kept failing (apply.c) */
    /* OP_CLAIM, OP_BEAT (cluster mode): what to claim, and what came back,
     * owned until handed to the callback. */
    backend_claim_t claim;
    char **queues;
    int *caps;
    char **limited;    /* OP_CLAIM: claim.limits' names and caps, owned */
    int *limit_caps;
    job_t **jobs;
    int64_t *tokens;
    bool *probes;      /* OP_CLAIM: probes[i], jobs[i] is its breaker's probe */
    int njobs, jobs_cap;
    store_breaker_change_t change; /* OP_BREAKER, with name (the key) and: */
    int64_t cooldown_ms, cooldown_max_ms;
    store_beat_t beat;
    bool beat_breakers;    /* OP_BEAT: the beat found a breaker not closed */
    uint64_t beat_gen;     /* OP_BEAT: breakers_gen when it was queued */
    store_jobs_cb jobs_cb;
    store_beat_cb beat_cb;
    char str[];
} op_t;

#define STORE_READERS 2    /* read-only connections, one thread each */
#define STORE_READS_MAX 256 /* reads queued or running at most; then "busy" */
/* A batch the store thread has held this long makes it unhealthy: longer
 * than PostgreSQL's lock waits alone (5 s), which fail cleanly first, and
 * than any commit of a disk that works. */
#define STORE_STALL_NS (10 * 1000000000LL)

/* A transaction of store_apply in progress (apply.c). */
typedef struct store_applying {
    op_t *batch, *next; /* the writes, and the next one to run */
    bool live, open;    /* open: the transaction has begun */
    uint64_t gen;
    int attempt;
    int64_t totals[JOB_EV_COUNT];
} store_applying_t;

/* Queue names for the wake-ups (wake.c), or `any` once they overflow. */
#define STORE_WAKE_NAMES 32
typedef struct store_wake_set {
    char names[STORE_WAKE_NAMES][JOB_NAME_MAX + 1];
    int n;
    bool any;
} store_wake_set_t;

typedef struct store_reader {
    struct store *store;
    void *conn;
    pthread_t thread;
    bool running;
} store_reader_t;

struct store {
    const backend_ops_t *ops;
    void *conn;
    durability_t durability;
    int efd;
    pthread_t thread;
    bool running;

    pthread_mutex_t mu; /* guards everything down to `committed` */
    pthread_cond_t cv;
    op_t *head, *tail;  /* queued for the thread */
    bool writer_owns;   /* the thread has taken a batch and owns the journal until done */
    op_t *done;         /* processed, for store_dispatch */
    op_t *done_tail;
    bool stopping;
    uint64_t committed;
    char last_error[512];
    op_t *rhead, *rtail;    /* reads waiting for a reader */
    int reads_queued;       /* queued or running */
    pthread_cond_t read_cv; /* a read arrived, or writes were committed */
    store_reader_t readers[STORE_READERS];
    char *url;

    /* Group-commit figures: written by the store thread under mu, except
     * the round trip, which the loop thread owns. */
    store_figures_t fig;
    histogram_t roundtrip;
    histogram_t st_private[STORE_ST_COUNT]; /* store thread; copied into fig per batch */
    store_faults_t faults;
    int64_t slow_commit_ms;
    int64_t compact_ms;      /* pending writes this old are compacted (writer.c) */
    double last_commit_s; /* store thread: the COMMIT statement alone, last batch */
    int64_t fail_started_ns; /* store thread: first commit under commit_fail_ms */
    bool injected;           /* store thread: the last failure was a fault seam's ... */
    const char *injected_why; /* ... which says this (static) */
    uint64_t commits;        /* store thread: for commit_lost_every */
    bool lost;               /* store thread: the file check before this commit failed */
    char lost_why[400];

    /* The journal (journal.h), when the backend keeps one: writes are
     * acknowledged once journaled and wait in `pending` until a compaction
     * applies them to the database. Journal and pending are guarded by mu:
     * in `os` durability the loop thread journals its batches itself while
     * the store thread has nothing queued (store_flush); otherwise, and
     * whenever anything is unusual, the store thread does. */
    journal_t *journal;
    bool journal_ready; /* replayed and a generation started (store.c) */
    op_t *pending, *pending_tail;
    size_t npending, pending_bytes;
    /* Store thread: the compaction under way, applied in steps between
     * journal batches (writer.c); its writes left `pending` when it began. */
    bool compacting;
    /* Store thread: a purge asked for history's upkeep (backend.h), to run
     * once its batch committed (writer.c), with its horizons. */
    bool upkeep_due;
    store_purge_t upkeep;
    store_applying_t compaction;
    op_t *compaction_last;
    uint64_t compaction_upto; /* the last write before which all are in it (carry.c) */
    int64_t pending_since_ns;
    uint64_t applied;    /* guarded by mu: the last write in the database, which reads see */
    uint64_t read_wants; /* guarded by mu: a reader waits for the database to reach this */
    /* Guarded by mu: id -> the last write of that job not yet in the
     * database, from its hand-off to the writer (store_flush) until a
     * compaction applies it, so a point lookup need wait for nothing. An
     * insert that failed (memory) leaves a gap: lookups then wait for the
     * database to reach index_gap_seq. */
    hmap_t pending_ids;
    uint64_t index_gap_seq;

    _Atomic bool healthy;
    /* When the store thread took the batch it is making durable (0: none).
     * A store held in one longer than STORE_STALL_NS (a database that
     * stopped answering, a disk that hangs) is unhealthy meanwhile, as a
     * failing one is, though no call has failed yet. */
    _Atomic int64_t batch_since_ns;
    _Atomic bool writer_exited; /* store_writer_main returned (store_stop's timed wait) */
    _Atomic bool dead;        /* the database file was lost: nothing commits any more */
    _Atomic bool disk_full;
    uint64_t next_seq;        /* loop thread */
    op_t *stats_read;         /* loop thread: the last stats read queued, until answered */
    op_t *local, *local_tail; /* loop thread: not yet handed to the store thread */
    void (*kick)(void *ud);
    void *kick_ud;
    uint64_t committed_seen;  /* loop thread's copy */
    /* Loop thread: the filter of ids stored (store_may_hold), as two
     * filters so that neither is shared between threads: every id written
     * since start, and every id the database held then (ids_stored, from
     * a reader's scan at start; NULL until it lands). */
    bloom_t ids_written;
    bloom_t *ids_stored;
    bool dispatching;         /* loop thread: running waiters (no re-entry) */
    list_node_t waiters;      /* store_waiter_t, by seq */
    struct quarantined {
        char id[JOB_NAME_MAX + 1];
        char why[200];
        int64_t at_ms;
    } *quarantine;            /* loop thread; up to STORE_QUARANTINE_MAX */
    size_t nquarantine, quarantine_seen;
    /* Cluster mode (cluster.c), loop thread: the claim token of every job
     * this node holds (id -> token), writes refused and not yet answered
     * (their seqs, ascending), and who hears of a refusal. */
    bool cluster;
    int64_t node_ttl_ns;
    int64_t node_ok_until_ns; /* the row's renewal asked for then, plus the TTL */
    uint64_t origin_base, origin_next; /* store_row_t.origin */
    hmap_t tokens;
    /* Jobs no node held when this node last saw them (read, or given
     * back), and their rows' tokens then: an operator's change of one is
     * conditioned on it (store_row_t.free_token). Bounded: past
     * STORE_FREE_TOKENS it starts again empty (changes then unconditioned
     * on the token, as before a read). */
    hmap_t free_tokens;
    uint64_t *refused;
    size_t nrefused, refused_cap;
    void (*refused_cb)(void *ud, const char *id);
    void *refused_ud;
    /* Cluster mode's wake-ups (wake.c): the thread, its eventfd (an
     * announcement to make, or stop), and under mu the queues to announce
     * and those other nodes announced; who hears of those (loop thread). */
    pthread_t wake_thread;
    bool wake_running, wake_stop;
    int wake_efd;
    store_wake_set_t announce, heard;
    bool heard_breaker;    /* under mu: a node announced a breaker it opened */
    bool announce_breaker; /* under mu: this node opened one, to announce */
    void (*woken_cb)(void *ud, const char *const *queues, int n);
    void *woken_ud;
    /* Whether some breaker is not closed in the cluster, as far as this
     * node knows (loop thread): claims pass over their jobs only then, the
     * rest of the time with the cheaper statement. Set by this node's own
     * opening, another's announcement (STORE_WAKE_BREAKER) or a beat that
     * found one; cleared by a beat that found none and began after the
     * last of those (breakers_gen). */
    bool breakers_open;
    uint64_t breakers_gen;
};

#define STORE_FREE_TOKENS 4096

/* The announcement of a breaker that opened, beside the queue names. */
#define STORE_WAKE_BREAKER "!breaker"

/* store.c: the first scan of the ids stored, for the id filter (queued
 * to a reader by store_start). */
void store_scan_ids(store_t *s);

/* wake.c: the wake-ups' thread, started and stopped with the store's in
 * cluster mode; announce from the loop thread. */
int store_wake_start(store_t *s, char *err, size_t len);
void store_wake_stop(store_t *s);
void store_wake_announce(store_t *s, const char *queue);
void store_wake_dispatch(store_t *s); /* store_dispatch: tells woken_cb what was heard */

/* Links first..last (already linked to each other) after *tail. Every op
 * list here (queued, pending, done, reads) is a head and a tail. */
static inline void store_ops_append(op_t **head, op_t **tail, op_t *first, op_t *last)
{
    if (*tail)
        (*tail)->next = first;
    else
        *head = first;
    *tail = last;
}

void store_free_op(op_t *op);
void store_free_ops(op_t *list); /* every op linked from list */
/* The job a write is about (puts and deletes), else NULL. */
static inline const char *store_op_id(const op_t *op)
{
    return op->kind == OP_PUT ? op->row.id : op->kind == OP_DELETE ? op->name : NULL;
}
/* The hash of the job id a write is about (store_op_id), computed once. */
static inline uint64_t store_op_hash(op_t *op, const char *id)
{
    if (!op->idhash)
        op->idhash = hmap_hash(id);
    return op->idhash;
}
/* An op with copies of nstr (at most STORE_OP_STRS) strings (NULL stays
 * NULL) in its str[]. */
#define STORE_OP_STRS 8
op_t *store_new_op_n(op_kind_t kind, const char *const *in, const char **out, int nstr);
/* The usual four strings. */
static inline op_t *store_new_op(op_kind_t kind, const char *in[4], const char *out[4])
{
    return store_new_op_n(kind, in, out, 4);
}

/* records.c: a write op as a journal record and back. _read returns NULL
 * for a record that does not decode (damage, or a bug). */
enum { REC_PUT = 1, REC_DELETE = 2, REC_QUEUE = 3 };
int store_record_write(journal_t *j, const op_t *op);
op_t *store_record_read(uint8_t kind, const unsigned char *p, size_t n);
/* writer.c: the last write of job id not yet in the database: 1 with its
 * document in *doc (a new reference; NULL if the write deletes it), 0 if
 * there is none (the database has its last write), -1 when out of memory.
 * Any thread; takes mu. */
int store_pending_doc(store_t *s, const char *id, json_t **doc, size_t *len);
/* docs.c: a stored job's bytes, packed or JSON, as a job (fills p if they
 * do not read), or as its stored JSON document: for bytes that do not read,
 * a stand-in {"id":..., "unreadable": why}, so that readers never drop a
 * row silently (quarantine, docs/operations.md). NULL when out of memory.
 * Any thread. */
err_t store_doc_job(const store_doc_t *d, job_t **out, problem_t *p);
json_t *store_doc_json(const store_doc_t *d);
/* apply.c: applies ops (a compaction, or the journal's replay at start)
 * to the database in one transaction, marking journal generation gen
 * applied (0: none); retries until it commits. The caller then owns ops again.
 * live: the ops come from this process, so a job's enqueue is its first
 * write ever (row.fresh may be set); not for a replay, whose database may
 * already hold some of them (an operator's restore, a reset journal_state). */
void store_apply(store_t *s, op_t *ops, bool live, uint64_t gen);
/* The same transaction in steps, so that the store thread can journal
 * batches between them (writer.c): a step runs up to max writes, and the
 * last one commits (true). A failed attempt rolls back, waits (backoff)
 * and starts over at the next step. Between steps the database is in the
 * middle of a transaction: nothing else may use the writer's connection. */
void store_apply_start(store_applying_t *a, op_t *ops, bool live, uint64_t gen);
bool store_apply_step(store_t *s, store_applying_t *a, size_t max);
/* apply.c, shared with the journal's commits in writer.c. why: the error,
 * or NULL for the database's own. */
void store_set_health(store_t *s, bool ok, const char *why);
void store_file_lost(store_t *s, const char *why);
bool store_injected_failure(store_t *s); /* the commit_fail_ms seam says fail */
void store_fault_delay(const store_t *s); /* the commit_delay_ms seam */
void store_backoff(int attempt);          /* sleeps before retry number attempt+1 */
/* Appends first..last to the done list (caller holds mu); store_notify()
 * then wakes the loop (after unlocking) to run store_dispatch. */
void store_done_append(store_t *s, op_t *first, op_t *last);
void store_notify(store_t *s);
/* store.c: queues op with the writes, numbered as the last write before it
 * (a claim or a beat: nobody waits for it as for a write). */
void store_submit_unnumbered(store_t *s, op_t *op);
/* cluster.c: the loop thread's side of cluster mode. */
void store_cluster_init(store_t *s, int64_t ttl_ms); /* store_open_cluster */
void store_cluster_row(store_t *s, op_t *op, const job_t *job);   /* a put's token */
void store_cluster_delete(store_t *s, op_t *op);                   /* a delete's token */
void store_cluster_done(store_t *s, op_t *done);   /* ops handed back, before callbacks */
bool store_cluster_refused(store_t *s, uint64_t seq); /* a waiter's write was refused */
void store_cluster_prune(store_t *s);              /* refusals all waiters have seen */
void store_cluster_free(store_t *s);
/* apply.c: claims and beats, run in the batch's transaction. */
int store_run_claim(store_t *s, op_t *op);
int store_run_beat(store_t *s, op_t *op);
int store_run_leave(store_t *s);
void store_free_claimed(op_t *op);
/* carry.c: at a timed compaction, with mu held and the journal just
 * rotated, takes the writes of new running jobs out of first..last
 * into carried..carried_last and adds each such job's last write to the
 * journal's batch; the caller must commit that batch before the
 * compaction commits. Returns how many jobs it carries (0: nothing moved,
 * and the journal's batch is as it was). */
#define CARRY_MAX 2 /* compactions a new job may be carried past */
size_t store_carry(store_t *s, op_t **first, op_t **last, op_t **carried, op_t **carried_last);
/* writer.c: batch..last join the pending writes (caller holds mu). */
void store_add_pending(store_t *s, op_t *batch, op_t *last);
/* writer.c: pending writes should be compacted now (caller holds mu). */
bool store_compaction_due(const store_t *s, int64_t now);
bool store_has_purge(const op_t *batch); /* it never goes to the journal */
/* The store thread's body: takes, applies and hands back batches until
 * stopping and drained. */
void *store_writer_main(void *arg);
/* reader.c: the read pool, started after the writer, stopped after it. */
int store_readers_start(store_t *s, char *err, size_t errlen);
void store_readers_stop(store_t *s);

#endif
