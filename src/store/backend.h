/*
 * backend: the interface a durable store implements (SQLite today,
 * PostgreSQL later). Private to src/store/: store.c, writer.c and reader.c
 * drive it; nothing outside the store includes it.
 *
 * Threads: a connection is used by one thread at a time: the caller of
 * open() until store_start(), the store thread after that; each
 * open_reader() connection by its reader thread only.
 * Every function returns 0 on success and -1 on error with a message in the
 * connection (backend_ops.errmsg). A failed write leaves the transaction to
 * be rolled back by the caller. Strings in rows are borrowed for the call.
 */
#ifndef JOBQ_STORE_BACKEND_H
#define JOBQ_STORE_BACKEND_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h" /* store_query_t, store_purge_t */

#define BACKEND_TOKEN_UNKNOWN (-2) /* store_row_t.free_token: no condition on it */

typedef struct store_row {
    const char *id, *queue, *type, *state;
    int priority;
    int64_t created_at, updated_at, run_at;
    const void *doc; /* the job's packed form (job_pack()), doc_len bytes */
    size_t doc_len;
    job_pack_args_t args; /* where in doc its args are (zero: unknown) */
    /* No row with this id can exist yet: the job's enqueue is the first
     * write of it in this transaction, so the backend need not look for
     * an old row (to uncount its state). False whenever unsure. */
    bool fresh;
    /* Not fresh: the state the job's row has if there is one, known from
     * the writes before (a static string), or NULL when unknown. With it
     * the backend updates the row without reading it first; a row that
     * is not there (deleted since) is inserted. */
    const char *was;
    /* Cluster mode (cluster() below): the token of the claim this node
     * holds the job under (0: none), and where to say that the database
     * refused the write because the job is not this node's to change (it
     * was claimed since, or another node created it first). */
    int64_t token;
    bool *refused;
    /* Cluster mode, a job no node holds: the token its row had when this
     * node last saw it (read, or given back; BACKEND_TOKEN_UNKNOWN; -1: it
     * was held then). An operator's change is refused if a claim came
     * between (the job was claimed, run and given back since: the change
     * would overwrite that attempt), or if a node held it when it was read.
     * Tokens start at 0 (a job never claimed). */
    int64_t free_token;
    int64_t origin; /* cluster mode, an enqueue: tells its own insert from another node's */
    bool again;     /* the transaction runs again (its first run may have committed) */
    const char *bkey; /* the job's breaker key if it names one, else NULL (its type is) */
} store_row_t;

/* A job as a backend hands it back: its bytes (packed, or the JSON document
 * a store written before packing holds) and the columns beside them. */
typedef struct store_doc {
    const void *doc;
    size_t len;
    const char *id, *queue, *type;
    int64_t created_at;
    int64_t token; /* claims and adoptions (cluster mode): the claim's token */
    bool probe;    /* claims: the probe of its breaker, half-open, is this node's */
} store_doc_t;

/* A claim (cluster mode): up to max free jobs of the queues that are due,
 * in the order a lease takes them (engine.h: queue_order). */
#define BACKEND_CLAIM_QUEUES 100 /* queues of one claim at most (the engine's ENGINE_LEASE_MAX) */
typedef struct backend_claim {
    const char *const *queues;
    const int *caps; /* per queue, NULL for none: jobs held cluster-wide at most (0: no limit) */
    int nqueues;
    bool queue_order;
    int max;
    bool breakers; /* some breaker may be open: pass over its jobs (else a cheaper claim) */
    store_limits_t limits; /* of types and keys (ntypes + nkeys 0: none) */
} backend_claim_t;
#define BACKEND_CLAIM_LIMITS 100 /* of each kind (the engine's ENGINE_CLAIM_LIMITS) */

typedef struct store_purged {
    int scanned;         /* jobs looked at; < limit means the sweep is over */
    int64_t last_created_at;
    char last_id[201];   /* JOB_NAME_MAX + 1 */
} store_purged_t;
typedef int (*backend_id_cb)(void *ud, const char *id);

typedef int (*backend_doc_cb)(void *ud, const store_doc_t *d);
typedef int (*backend_queue_cb)(void *ud, const char *name, bool paused);
typedef int (*backend_count_cb)(void *ud, const char *queue, const char *state, int64_t n);
typedef int (*backend_counter_cb)(void *ud, const char *name, int64_t value);
/* A breaker that is not closed (cluster mode); times in ms since the epoch,
 * by the database's clock. */
typedef struct backend_breaker {
    const char *key;
    int64_t opened_at, probe_at, cooldown_ms;
    int64_t probe_node;  /* 0: no probe out */
    int64_t probe_until;
    int64_t now;         /* the database's clock when read */
} backend_breaker_t;
typedef int (*backend_breaker_cb)(void *ud, const backend_breaker_t *b);

typedef enum { BACKEND_SYNC_FULL, BACKEND_SYNC_OS, BACKEND_SYNC_OFF } backend_sync_t;

/* Cluster mode: several jobq nodes on one database, which holds every
 * job's owner and claim token (docs/architecture.md). */
typedef struct backend_node {
    const char *name; /* for operators: host:pid */
    int64_t ttl_ms;   /* a node row not renewed this long is dead */
} backend_node_t;

typedef struct backend_ops {
    const char *scheme; /* the URL scheme it serves, e.g. "sqlite" */
    const char *alias;  /* another name for it, or NULL */
    /* node: cluster mode (NULL: one jobq alone), which a backend without
     * node_beat and claim refuses. In cluster mode the writer's puts are
     * conditioned on the tokens in their rows, and deletes touch only free
     * jobs. */
    int (*open)(const char *url, backend_sync_t sync, const backend_node_t *node, void **conn,
                char *err, size_t errlen);
    /* A read-only connection to a database open() created and migrated. */
    int (*open_reader)(const char *url, void **conn, char *err, size_t errlen);
    void (*close)(void *conn);
    /* The writer's database is still the one it opened: 0, or -1 with why
     * (deleted, replaced). rescue() writes all it holds back to where the
     * database belongs (or beside it), saying where. */
    int (*check_file)(void *conn, char *why, size_t len);
    int (*rescue)(void *conn, char *where, size_t len);
    const char *(*errmsg)(void *conn);
    /* A full disk is reported apart so callers can refuse new work. */
    bool (*err_is_full)(void *conn);

    int (*schema_version)(void *conn, int *current, int *latest);
    int (*migrate)(void *conn); /* applies every missing migration, in order */

    /* The journal (store/journal.h) beside the database: its path (0), or
     * -1 for a backend that takes every write directly. The generation
     * applied is recorded in the same transaction as what it applied. */
    int (*journal_path)(void *conn, char *buf, size_t len);
    int (*journal_applied)(void *conn, uint64_t *gen);
    int (*set_journal_applied)(void *conn, uint64_t gen);

    int (*begin)(void *conn);
    int (*commit)(void *conn);
    int (*rollback)(void *conn);

    int (*put_job)(void *conn, const store_row_t *row);
    int (*delete_job)(void *conn, const char *id);
    int (*put_queue)(void *conn, const char *name, bool paused);
    int (*add_counter)(void *conn, const char *name, int64_t delta);
    /* Looks at up to p->limit jobs after the cursor and deletes those past
     * retention, calling cb with each deleted id. */
    int (*purge)(void *conn, const store_purge_t *p, backend_id_cb cb, void *ud,
                 store_purged_t *out);
    /* Optional (PostgreSQL): the DDL a purge asks for (history's partitions
     * made ahead, and dropped past p's horizons: *dropped of them), run
     * once the purge's batch committed, outside any transaction, so that
     * no batch holds the tables' locks it takes; 0 also when it gave up
     * for now. */
    int (*history_upkeep)(void *conn, const store_purge_t *p, int *dropped);

    /* Returns 0 and calls cb once if found, 0 without calling it if not. */
    int (*get_job)(void *conn, const char *id, backend_doc_cb cb, void *ud);
    int (*list_jobs)(void *conn, const store_query_t *q, backend_doc_cb cb, void *ud);
    /* Every job not completed, failed or cancelled, oldest run_at first. */
    int (*load_active)(void *conn, backend_doc_cb cb, void *ud);
    int (*load_queues)(void *conn, backend_queue_cb cb, void *ud);
    int (*count_states)(void *conn, backend_count_cb cb, void *ud);
    int (*counters)(void *conn, backend_counter_cb cb, void *ud);
    /* Cluster mode: per queue, the run_at of its longest-waiting job that
     * is due and free to claim (a queue with none is not listed). NULL
     * where a jobq alone knows it from its own memory. */
    int (*oldest_ready)(void *conn, int64_t now_ms, backend_counter_cb cb, void *ud);
    /* Every job id stored, in any order, for the store's filter of ids
     * (store_may_hold). NULL for a backend that other processes write to:
     * ids it did not see written may appear at any time, so it has no
     * filter and every lookup asks the database. */
    int (*scan_ids)(void *conn, backend_id_cb cb, void *ud);

    /* Cluster mode (open with a node); NULL where the backend has none.
     * Registers the node or renews its row; *lost: its row had expired
     * (every claim it held is void) and it registered anew. Then adopts
     * the running jobs of nodes whose rows expired (cb with each, now this
     * node's under a new token) and frees their other claims. *node: the
     * node's id now. In the batch's transaction. */
    int (*node_beat)(void *conn, store_beat_t *beat, bool *breakers, backend_doc_cb adopted,
                     void *ud);
    /* The node stops: its row expires now, so that the next beat of
     * another node takes over its running jobs without waiting a TTL. */
    int (*node_leave)(void *conn);
    /* Claims for this node up to q->max free jobs that are due, calling cb
     * with each (token set), in the order they should be leased. */
    int (*claim)(void *conn, const backend_claim_t *q, backend_doc_cb cb, void *ud);
    /* The jobs this node still holds under these tokens, to cb. A claim or
     * beat retried after a commit whose outcome was unknown (the session
     * broke in COMMIT) takes back first what its first attempt may have
     * taken: otherwise those jobs would stay this node's, in no memory. */
    int (*held)(void *conn, const int64_t *tokens, int n, backend_doc_cb cb, void *ud);
    /* Deletes a job this node holds under token (0: a job no node holds,
     * whose row's token must still be free_token unless that is 0),
     * setting *refused when the job is there and not this node's to
     * delete; one already gone is not refused. */
    int (*delete_fenced)(void *conn, const char *id, int64_t token, int64_t free_token,
                         bool *refused);
    /* A breaker's change for the whole cluster (store.h: store_put_breaker),
     * in the batch's transaction; and the breakers not closed, to cb. */
    int (*put_breaker)(void *conn, const char *key, store_breaker_change_t change,
                       int64_t cooldown_ms, int64_t cooldown_max_ms);
    int (*breakers)(void *conn, backend_breaker_cb cb, void *ud);

    /* Wake-ups between nodes (cluster mode; NULL where the backend has
     * none), on a session of their own that no data transaction uses, for
     * the store's wake thread only (wake.c). wake_open connects and
     * listens (NULL with err on failure); wake_fd is the session's socket,
     * to poll for input; wake_read hands each payload another session
     * announced to cb (-1: the session broke); wake_send announces one.
     * Blocking calls with short timeouts (wake_open's connect: 2 s). */
    void *(*wake_open)(const char *url, char *err, size_t len);
    int (*wake_fd)(void *w);
    int (*wake_read)(void *w, void (*cb)(void *ud, const char *payload), void *ud);
    int (*wake_send)(void *w, const char *payload);
    void (*wake_close)(void *w);
} backend_ops_t;

/* backend_sql.c, for both backends. The list's SELECT for q from table
 * (jobs; PostgreSQL's jobs_all, with history), and
 * retention's scan (rows of id, state, updated_at, created_at), with
 * parameters numbered mark1..mark9 ('?' for SQLite, '$' for PostgreSQL;
 * which number is which is written there), into sql. Retention scans
 * only jobs created before the horizon (nothing newer can be due), and
 * takes a job in `state` last changed at updated_at when it is due. */
#define BACKEND_LIST_SQL_MAX 640
#define BACKEND_PURGE_SQL_MAX 200
void backend_list_sql(const store_query_t *q, const char *table, char mark, char *sql,
                      size_t n);
void backend_purge_sql(bool has_cursor, char mark, char *sql, size_t n);
int64_t backend_purge_horizon(const store_purge_t *p);
bool backend_purge_due(const char *state, int64_t updated_at, const store_purge_t *p);

extern const backend_ops_t backend_sqlite;
extern const backend_ops_t backend_postgres;

#endif
