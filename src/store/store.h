/*
 * store: durable storage of jobs behind a group-committing writer thread.
 *
 * The loop thread queues writes (store_put_job, store_delete_job,
 * store_put_queue, store_purge) and reads; each write gets a sequence
 * number. The writes of one loop iteration are made durable together in ONE
 * journal write (a later compaction applies them to the database in one
 * transaction): in "os" durability by the loop itself at store_flush, which
 * then answers their waiters at once; otherwise, or when anything is
 * unusual, by the store thread (writer.c), which reports back through a
 * file descriptor the loop watches (store_notify_fd -> store_dispatch).
 * Reads go to a pool of read-only connections (reader.c); each waits until
 * the writes queued before it are in the database, so it sees every one of
 * them (a point lookup sees them through an index and waits for nothing).
 *
 * A request that changed a job answers only when store_when_durable() says
 * its sequence number is durable (immediately in "memory" durability).
 * A commit that fails (full disk, I/O error) is retried with backoff until
 * it succeeds; meanwhile store_healthy() is false so that callers can refuse
 * new work instead of piling it up.
 *
 * Threads: store_open/migrate/load before store_start on any one thread;
 * after store_start every function except the store's own threads (writer
 * and readers) belongs to the loop thread. Callbacks run on the loop thread,
 * inside store_dispatch() or, for durability waiters, store_flush().
 * Ownership: the store copies what it is given; results handed to callbacks
 * are borrowed for the duration of the callback.
 */
#ifndef JOBQ_STORE_H
#define JOBQ_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/job.h"
#include "util/histogram.h"
#include "util/list.h"

typedef struct store store_t;

typedef struct store_query {
    const char *queue, *state, *type; /* NULL: any */
    bool by_priority;                 /* false: any priority (so a zeroed query has no filter) */
    int priority;                     /* 0..4, with by_priority */
    int64_t created_from, created_to; /* created_at in [from, to); 0: open */
    /* Filters read from each job itself, so the read examines at most
     * STORE_LIST_SCAN rows a call and says where it stopped: text (a
     * substring of the args, result or error messages, ASCII case
     * ignored), breaker_key, worker (holding its lease), finished_at in
     * [finished_from, finished_to). NULL / 0: any. */
    const char *text, *breaker_key, *worker;
    int64_t finished_from, finished_to;
    int limit;                        /* 1..1000 */
    bool has_cursor;                  /* continue after (created_at, id) */
    int64_t cursor_created_at;
    const char *cursor_id;
} store_query_t;
#define STORE_LIST_SCAN 5000
/* A page of a list ends before the job that would take its jobs' stored
 * forms past this (one job at least): a thousand jobs of a megabyte each
 * would otherwise be built in memory, several times over, for one reply.
 * Its next_cursor resumes there. */
#define STORE_LIST_BYTES (16u << 20)
/* Whether q has filters of the second kind. */
bool store_query_scans(const store_query_t *q);

/* Retention: one batch of a sweep over every job, oldest first. */
typedef struct store_purge {
    int64_t completed_before; /* completed/cancelled jobs finished before this go; 0: keep */
    int64_t failed_before;    /* failed jobs finished before this go; 0: keep */
    int64_t partition_min_ms; /* PostgreSQL: history's narrowest partition (0: 1 s) */
    bool waiting;             /* waiting jobs (queued, pending, retrying) go too (FLUSH) */
    bool has_cursor;          /* continue after (after_created_at, after_id) */
    int64_t after_created_at;
    const char *after_id;
    int limit;
} store_purge_t;

/* Opens the database named by url (sqlite://path). */
store_t *store_open(const char *url, durability_t durability, char *err, size_t errlen);
void store_close(store_t *s); /* stops the thread first if running */

int store_schema_status(store_t *s, int *current, int *latest, char *err, size_t errlen);
/* Applies missing migrations; refuses a database newer than this binary. */
int store_migrate(store_t *s, char *err, size_t errlen);
/* Refuses to run against an unmigrated or newer schema. */
int store_check_schema(store_t *s, char *err, size_t errlen);

/* Recovery: hands every active job (to keep: ownership passes) and every
 * queue's paused flag to the owner's callbacks. A stored job that cannot
 * be read is quarantined and skipped, never handed over. */
typedef struct store_recovery {
    void *ud;
    void (*job)(void *ud, job_t *job);
    void (*queue)(void *ud, const char *name, bool paused);
} store_recovery_t;
int store_load(store_t *s, const store_recovery_t *to, size_t *njobs, char *err, size_t errlen);

int store_start(store_t *s, char *err, size_t errlen);
/* Fault-injection seams for tests (beanstalkd's falloc idea): sleep
 * delay_ms before every commit, to widen the window between a write and its
 * durability (in `os` durability, where the loop thread journals, only the
 * database's commits: the window between an acknowledgement and the
 * database); refuse every commit for fail_ms after the first one, as a
 * full or broken disk would. Call before store_start. */
typedef struct store_faults {
    int64_t commit_delay_ms;
    int64_t commit_fail_ms;
    int64_t read_delay_ms; /* list and stats reads take this much longer: a slow query */
    int64_t step_delay_ms; /* each step of a transaction (a compaction's, a batch's) starts this much later: a slow database */
    /* A backend without a journal (PostgreSQL): every Nth commit that
     * succeeded is reported failed, as when the session breaks in COMMIT
     * and its outcome is unknown; the batch is then run again. 0: never. */
    int64_t commit_lost_every;
} store_faults_t;
void store_set_faults(store_t *s, const store_faults_t *f);
/* Commits slower than this are logged at warn (0: never). Before start. */
void store_set_slow_commit_ms(store_t *s, int64_t ms);
/* How long acknowledged writes may wait in the journal before they are
 * applied to the database (writer.c; default 250). Before start. */
void store_set_compact_interval_ms(store_t *s, int64_t ms);
/* Commits everything queued, then stops the thread: 0. With give_up_ms >
 * 0, a writer whose commits keep failing for that long (the database is
 * gone) is left behind: -1, and the store must then be neither used nor
 * freed (the caller exits; nothing it held was acknowledged unless the
 * journal holds it, and a restart replays that). */
int store_stop(store_t *s, int64_t give_up_ms);

/* Writes: return the write's sequence number. */
uint64_t store_put_job(store_t *s, const job_t *job, job_event_t ev);
uint64_t store_delete_job(store_t *s, const char *id);
uint64_t store_put_queue(store_t *s, const char *name, bool paused);
/* The sequence number of the last write queued. */
uint64_t store_last_seq(const store_t *s);

/* Caller-owned; the store links it until seq is durable, then calls cb. */
typedef struct store_waiter store_waiter_t;
struct store_waiter {
    list_node_t link;
    uint64_t seq;
    bool failed; /* set before cb: seq will never be durable (the database was lost) */
    /* Set before cb, in cluster mode: the database refused the write seq
     * (its job is another node's now, or another node created it first);
     * nothing of it was stored. Front ends answer with STORE_REFUSED. */
    bool refused;
    void (*cb)(store_waiter_t *w);
};
/* Calls w->cb once seq is durable: at once (before returning) if it is.
 * The waiter must stay alive until then, or be cancelled. */
void store_when_durable(store_t *s, store_waiter_t *w, uint64_t seq);
/* The same, but where the loop journals itself ("os" durability) it first
 * journals everything queued, so that w->cb runs before this returns
 * (when nothing unusual holds the write back): a request answered inside
 * its handler is spared a suspend and a resume. Other waiters made durable
 * meanwhile run later, from store_dispatch, never from inside this call. */
void store_when_durable_now(store_t *s, store_waiter_t *w, uint64_t seq);
/* Unlinks a waiter whose callback has not run (a no-op otherwise, and on a
 * zeroed waiter): its owner may then free it. */
void store_waiter_cancel(store_waiter_t *w);

/* Reads run on a pool of read-only connections (reader.c), each once every
 * write queued before it is in the database (get: at once, through the
 * index of writes not yet applied). `result` is borrowed (json_incref
 * it to keep it), or NULL with an error message. get: a stored document or
 * json null. list: {"jobs":[docs], "next_cursor": cursor or null}. stats:
 * {"queues":{q:{state:n}}, "totals":{name:n}}. When STORE_READS_MAX reads
 * are already waiting, cb gets the error STORE_BUSY (still from
 * store_dispatch, never from inside the call).
 *
 * While the store cannot commit (store_healthy() false), a list or stats
 * read that would wait for a write not yet applied is answered at once with
 * the store's error
 * instead of waiting for the disk to come back.
 *
 * Lifetime: a read cannot be cancelled (a reader thread may be running it),
 * so cb always runs exactly once, and ud must stay alive until it has; an
 * owner that goes away first keeps ud alive and lets cb free it (the API's
 * calls do: api_internal.h). */
#define STORE_BUSY "busy: too many reads are waiting"
#define STORE_REFUSED                                                                  \
    "refused by the database: another jobq node holds this job now (this node lost its " \
    "claim), claimed it since it was read here, or created it first; nothing was "      \
    "stored (read the job again)"
typedef void (*store_read_cb)(void *ud, json_t *result, const char *error);
void store_get_job(store_t *s, const char *id, store_read_cb cb, void *ud);
/* false: the store certainly holds no job with this id (nor a write of
 * one on its way), so a lookup would find nothing; true: it may. A filter
 * of every id written since start and every id the database held then
 * (scanned by a reader at start; until that lands, always true). Callers
 * skip store_get_job on false: an idempotent enqueue of a new id, or a
 * request for a job that never was, needs no read. */
bool store_may_hold(const store_t *s, const char *id);
/* The scan has landed (until then store_may_hold is always true), and the
 * filter's memory. */
bool store_id_filter_ready(const store_t *s);
size_t store_id_filter_bytes(const store_t *s);
/* n >= 1 ids in one read: result is an array, a document or null per id,
 * in order. The read stops before the id that would be read once the
 * stored forms read so far reach max_bytes (it reads one at least), so
 * the array may be shorter than n: the caller reads the rest later or
 * refuses. Ids are client-chosen and each may name a job of a megabyte;
 * unbounded, a thousand of them would be built in memory for one request. */
#define STORE_GET_BYTES (16u << 20)
/* The bound for the ids one request named, when requests carry at most
 * request_max bytes: STORE_GET_BYTES, or twice request_max if larger, so
 * that a request sent again (its jobs stored as it sent them) is always
 * read whole. */
static inline size_t store_get_budget(size_t request_max)
{
    return request_max > STORE_GET_BYTES / 2 ? 2 * request_max : STORE_GET_BYTES;
}
/* What a front end answers when the read was cut (the same words on every
 * protocol). */
#define STORE_GET_TOO_MUCH                                                                 \
    "the stored jobs these ids name come to more than %zu bytes, more than one request " \
    "may read: nothing was changed; send them in smaller batches"
void store_get_jobs(store_t *s, const char *const *ids, size_t n, size_t max_bytes,
                    store_read_cb cb, void *ud);
void store_list_jobs(store_t *s, const store_query_t *q, store_read_cb cb, void *ud);
/* Result: {"queues":{name:{state:n}}, "states":{state:n}, "totals":
 * {event:n}, "queues_truncated":bool, "queue_count":n}, and in cluster mode
 * "oldest_ready_at":{queue:run_at ms} for the queues listed with a job due
 * and free to claim (a node's memory holds none of those). "queues" holds
 * the first STORE_STATS_QUEUES queue names in byte order; "states" counts
 * every queue's jobs. Queue names are the clients' to invent, and every
 * reader of these figures (/v1/queues, /v1/stats, /metrics on a cluster
 * node) works through "queues" on the loop thread: with 100,000 queues a
 * /v1/queues took 300 ms of it and held a liveness probe as long.
 * Callers while a stats read is under way join it when it will see every
 * write queued before them (store.c: join_stats): one count serves them
 * all, each answered with its own copy. */
#define STORE_STATS_QUEUES 10000
void store_stats(store_t *s, store_read_cb cb, void *ud);
/* Retention, one batch: a write, ordered with the others. Result:
 * {"deleted":[ids], "scanned":n, "dropped":partitions,
 * "cursor":{"created_at":ms,"id":id}}; "dropped": PostgreSQL's history
 * partitions dropped after the batch committed, whose jobs went without
 * being listed. */
void store_purge(store_t *s, const store_purge_t *p, store_read_cb cb, void *ud);

/* Hand-off coalescing. Without a kick, every operation is handed to the
 * store thread at once (one lock, one wake-up each). With one, operations
 * collect on the loop thread and the store calls kick(ud) when the first
 * arrives; the owner then calls store_flush() once, later in the same loop
 * iteration, so everything the iteration produced travels in one hand-off
 * (or, in "os" durability, one journal write). store_flush() may run
 * durability waiters, so call it where their callbacks may run, never
 * from inside one. */
void store_set_kick(store_t *s, void (*kick)(void *ud), void *ud);
void store_flush(store_t *s);

int store_notify_fd(const store_t *s);
/* Drains the notification fd and runs every due callback. */
void store_dispatch(store_t *s);

/* Group-commit figures since start, copied under the store's lock. */
/* What the store thread times, per statement kind. */
typedef enum {
    STORE_ST_PUT, STORE_ST_DELETE, STORE_ST_QUEUE, STORE_ST_GET, STORE_ST_LIST, STORE_ST_STATS,
    STORE_ST_PURGE, STORE_ST_COMMIT, STORE_ST_COUNT
} store_statement_t;
const char *store_statement_name(store_statement_t st);

typedef struct store_figures {
    histogram_t statement_seconds[STORE_ST_COUNT];
    histogram_t commit_seconds; /* one sample per committed batch */
    histogram_t batch_size;     /* operations per batch */
    histogram_t roundtrip_seconds; /* queued -> handed back, per operation */
    uint64_t failed_commits;
    uint64_t carried; /* running jobs a timed compaction left for the next (carry) */
} store_figures_t;
void store_figures(store_t *s, store_figures_t *out);

/* Quarantine: stored jobs that cannot be read (malformed, too deep, not a
 * job), found by recovery or by a later read. They stay in the database
 * untouched and are never loaded; their ids are refused to new jobs (the
 * API answers 409) until an admin deletes them. At most
 * STORE_QUARANTINE_MAX are listed (all are still counted). Loop thread (or
 * before store_start). */
#define STORE_QUARANTINE_MAX 1000
void store_quarantine_note(store_t *s, const char *id, const char *why);
typedef void (*store_quarantine_fn)(void *ud, const char *id, const char *why, int64_t at_ms);
void store_quarantine_foreach(const store_t *s, store_quarantine_fn fn, void *ud);
size_t store_quarantine_count(const store_t *s);
void store_quarantine_forget(store_t *s, const char *id);

/* ---- Cluster mode (PostgreSQL): several jobq nodes on one database, which
 * holds every job's owner and claim token (docs/architecture.md). The
 * store keeps the token of each job this node holds and conditions every
 * write of it on that token; a write the database refuses is reported to
 * its waiter (refused) and to the refused callback, never retried. ---- */

/* store_open for a node of a cluster: its recovery (store_load) loads no
 * jobs (they are the cluster's); a backend without cluster mode refuses. */
store_t *store_open_cluster(const char *url, durability_t durability, const char *node_name,
                            int64_t ttl_ms, char *err, size_t len);
bool store_clustered(const store_t *s);
/* cb(ud, id): a write of job id was refused; the owner forgets the job. */
void store_set_refused(store_t *s, void (*cb)(void *ud, const char *id), void *ud);
/* cb(ud, queues, n): another node made jobs of these queues free to claim
 * (n 0: of any queue). Loop thread, from store_dispatch. Set before
 * store_start; without it the node neither listens nor announces. */
void store_set_woken(store_t *s, void (*cb)(void *ud, const char *const *queues, int n),
                     void *ud);
/* Jobs handed over (ownership passes: free what is not kept), the claim's
 * max, and an error or NULL. */
/* probe[i]: jobs[i] is its breaker's probe, half-open, claimed for this
 * node (NULL: none is). */
typedef void (*store_jobs_cb)(void *ud, job_t **jobs, const bool *probe, int n, int asked,
                              const char *error);
/* Claims up to max free due jobs of the queues for this node, in the order
 * they should be leased; cb runs exactly once, from store_dispatch. Claims
 * travel with the writes (after every write queued before them) but have
 * no sequence number of their own. caps (NULL: none): per queue, how many
 * of its jobs the whole cluster may hold at once (0: no limit). */
typedef struct store_limits {
    const char *const *names; /* types, then breaker keys */
    const int *caps;          /* how many of their jobs the cluster may hold at once */
    int ntypes, nkeys;        /* at most BACKEND_CLAIM_LIMITS each */
} store_limits_t;
/* limits (NULL: none): concurrency limits of types and breaker keys, held
 * cluster-wide like the queues' caps. */
void store_claim(store_t *s, const char *const *queues, const int *caps, int nqueues,
                 bool queue_order, int max, const store_limits_t *limits, store_jobs_cb cb,
                 void *ud);
/* A circuit breaker's change for the whole cluster, a write like the others
 * (engine.h: breaker_shared says which). OPEN: it opens for cooldown_ms
 * unless another node opened it first; REOPEN: this node's probe failed,
 * it opens again for twice its last cool-down (at most cooldown_max_ms);
 * CLOSE: this node's probe succeeded; RESET: an operator closed it. */
typedef enum {
    STORE_BREAKER_OPEN, STORE_BREAKER_REOPEN, STORE_BREAKER_CLOSE, STORE_BREAKER_RESET
} store_breaker_change_t;
uint64_t store_put_breaker(store_t *s, const char *key, store_breaker_change_t change,
                           int64_t cooldown_ms, int64_t cooldown_max_ms);
/* The breakers not closed, cluster-wide, as {"breakers": [{"key",
 * "state" ("open" or "half_open"), "opened_at", "next_probe_at",
 * "cooldown_ms", "probe_node"}]} (times RFC 3339, by the database's clock). */
void store_breakers(store_t *s, store_read_cb cb, void *ud);
/* Registers or renews the node, then takes over the running jobs of dead
 * nodes (handed to cb as running jobs whose attempts the owner ends).
 * lost: the node's row had expired, every claim it held is void (its
 * tokens are forgotten here), and it registered anew as `node`. */
typedef struct store_beat {
    int64_t node;
    bool lost;
    int nodes; /* nodes alive now, this one included */
} store_beat_t;
typedef void (*store_beat_cb)(void *ud, const store_beat_t *b, job_t **adopted, int n,
                              const char *error);
void store_node_beat(store_t *s, store_beat_cb cb, void *ud);
/* The first beat, run here and now (before store_start, after migration
 * and recovery): the node has its row before it takes any request, so it
 * never answers 503 for want of one. cb runs before this returns. */
int store_cluster_join(store_t *s, store_beat_cb cb, void *ud, char *err, size_t len);
/* The node stops (queue it before store_stop): its row expires at once, so
 * that other nodes take over its running jobs at their next beat. */
void store_node_leave(store_t *s);

/* False while commits fail, while the store thread has held one batch
 * for more than 10 s (a database or disk that stopped answering), and on
 * a cluster node whose row may have expired. Any thread. */
bool store_healthy(const store_t *s);
/* Why it is not healthy; "" when healthy. Copies into buf. */
void store_last_error(store_t *s, char *buf, size_t len);
bool store_disk_full(const store_t *s);

#endif
