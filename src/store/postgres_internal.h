/*
 * postgres_internal: what the PostgreSQL backend's files share: a
 * connection's state (postgres.c) and the helpers that run statements on
 * it (postgres_pipe.c; every wait on the server is postgres_io.c's,
 * bounded) and
 * the statements they prepare (postgres_statements.c),
 * used by its writes (postgres_write.c), its reads (postgres_read.c),
 * cluster mode's statements (postgres_cluster.c), history's partitions
 * (postgres_history.c) and the wake-ups' session (postgres_wake.c).
 * Nothing outside the backend's files includes it. Threads: a connection
 * belongs to one thread at a time (backend.h).
 */
#ifndef JOBQ_STORE_POSTGRES_INTERNAL_H
#define JOBQ_STORE_POSTGRES_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/backend.h"
#include "util/sbuf.h"

#define PG_PIPE_DEPTH 256 /* see send_plain() */
#define PG_PIPE_SLOTS (PG_PIPE_DEPTH + 2) /* the writes, BEGIN and COMMIT */
#define PG_EXTRA_MAX 48 /* claim shapes: order x (caps, breakers, limits), 16; the dupes check */

/* The prepared statements, by index into pg_statements (postgres_statements.c). */
enum { P_PUT, P_PUT_ANY, P_PUT_DONE, P_PUT_DONE_ANY, P_DELETE, P_DELETE_ANY, P_QUEUE, P_COUNTER, P_INSERT, P_FENCED,
       P_INSERT_AGAIN, P_FENCED_DONE, P_FENCED_DONE_AGAIN, P_FREE_PUT, P_FREE_ANY, P_FREE_DELETE, P_HELD_DELETE, P_BREAKER_OPEN,
       P_BREAKER_REOPEN, P_BREAKER_CLOSE, P_BREAKER_RESET, P_PAYLOAD, P_PAYLOAD_KEEP,
       P_PAYLOAD_MINE, P_GET, P_COUNT_ };
#define PG_PARAMS_MAX 13
typedef struct pg_statement {
    const char *name, *sql;
    int n;
    Oid types[PG_PARAMS_MAX];
    unsigned bin; /* the parameters sent as bytes (bytea), a bit each */
} pg_statement_t;

/* A large payload is written once (migrations 6 and 8): args at least
 * this long are kept apart from the rest of the packed form, in
 * `payloads`, one row per insert of a job (its id and origin; 0 for a
 * node alone's), written as the job is enqueued and deleted with the job;
 * its rows in jobs and history hold the rest and `args_at`, where they go
 * back. So the job's changes (a lease, a heartbeat, its outcome) and its
 * move to history rewrite the rest and leave the args alone. Shorter args
 * stay inside `doc` (NULL `args_at`): the row is rewritten whole at every
 * change anyway. */
#define PG_ARGS_APART 1024
/* The packed form whole again, from a row whose columns are named
 * t "doc" and so on (t: a table's name or alias and a dot; the lookup
 * of its payload needs the row's own id). The row is the disk's: an
 * args_at out of doc's range must not fail the statement (a claim's
 * would fail its whole batch, for ever), so such a row reads as its doc
 * alone, as does one whose payload is missing; its CRC then says it is
 * damaged. */
#define PG_DOC(t)                                                                           \
    "CASE WHEN " t "args_at BETWEEN 0 AND length(" t "doc) THEN overlay(" t "doc PLACING"   \
    " coalesce((SELECT pay.args FROM payloads pay WHERE pay.id = " t "id AND pay.origin ="  \
    " coalesce(" t "origin, 0)), ''::bytea) FROM " t "args_at + 1 FOR 0) ELSE " t "doc END"
/* The payloads of the rows a statement deleted for good (not moved):
 * src gives (id, origin, args_at) rows. */
#define PG_PAYLOADS_GONE(src)                                                               \
    "DELETE FROM payloads pay USING (" src ") g(id, origin, at) WHERE g.at IS NOT NULL"     \
    " AND pay.id = g.id AND pay.origin = coalesce(g.origin, 0)"
/* history's partitions now (the default one too), by oid, as
 * history_counts keys them (migration 7). */
#define PG_HISTORY_PARTS "SELECT inhrelid FROM pg_inherits WHERE inhparent = 'history'::regclass"
/* Counted (migration 7): the writer's session says it counts its own
 * changes of history (jobq.counted), and the triggers pass over them. A
 * move's one row, as a plain upsert; ... */
#define PG_COUNTED(i)                                                                       \
    "INSERT INTO history_counts AS h SELECT tableoid,queue,state,pg_backend_pid()%32,1"     \
    " FROM " i " ON CONFLICT (part,queue,state,shard) DO UPDATE SET n=h.n+1"
/* ... and rows in (+1) and out (-1) of any number, summed first (an
 * upsert may not reach one row twice in a statement): src gives
 * (partition oid, queue, state, +1 or -1) rows. */
#define PG_COUNT(src)                                                                       \
    "INSERT INTO history_counts AS h SELECT p,q,s,pg_backend_pid()%32,sum(d) FROM (" src    \
    ") x(p,q,s,d) GROUP BY 1,2,3 HAVING sum(d)<>0 ON CONFLICT (part,queue,state,shard)"      \
    " DO UPDATE SET n=h.n+excluded.n"
#define PG_OUT(d) "SELECT tableoid,queue,state,-1 FROM " d
#define PG_IN(i) "SELECT tableoid,queue,state,1 FROM " i
#define PG_GONE "RETURNING tableoid,queue,state,id,origin,args_at"
extern const pg_statement_t pg_statements[P_COUNT_];

/* Row i of a result to a reader; a nonzero return stops there. */
typedef int (*row_fn)(const PGresult *r, int row, void *ud);
/* A backend_doc_cb and its ud, as row functions take them; or (fn set)
 * a row function of its own for ud. */
typedef struct doc_call {
    backend_doc_cb cb;
    void *ud;
    row_fn fn;
} doc_call_t;

/* Cluster mode: the enqueues of the transaction under way, to be checked
 * against history before it commits (postgres_dupes.c). */
typedef struct pg_dupes {
    sbuf_t ids, origins; /* array literals being built */
    bool **refused;      /* per insert: where to say it was undone */
    size_t n, cap;
    size_t from;         /* the first insert not yet checked (the arrays hold from..n) */
    int64_t oldest;      /* the oldest insert's created_at */
} pg_dupes_t;

typedef struct pg {
    PGconn *db;
    bool writer;    /* holds the lock, prepares the writes */
    bool prepared;  /* the statements exist on this session */
    bool lock_lost; /* another jobq holds the lock now */
    bool in_tx;     /* begun and not yet ended: a broken session is not made again */
    bool piped;     /* in pipeline mode: writes are sent without waiting for their results */
    int pending;    /* writes sent whose results are not read yet */
    bool *refused[PG_PIPE_SLOTS]; /* per write pending: where to say it changed no row */
    doc_call_t rows[PG_PIPE_SLOTS]; /* per query pending (a claim): who reads its rows */
    /* Statements prepared on this session beyond the fixed ones (claims,
     * by shape): their names; forgotten with the session. */
    char extra[PG_EXTRA_MAX][24];
    int nextra;
    /* Cluster mode (opened with a node): its name, its row, the TTL. */
    bool cluster;
    pg_dupes_t dupes; /* the writer's: this transaction's enqueues */
    char node_name[64];
    int64_t node, ttl_ms;
    backend_sync_t sync;
    char lock_wait[32]; /* the session's lock_timeout, as PostgreSQL shows it */
    /* How long a wait for the server may go without it answering before
     * the session is cut (postgres_io.c): its lock wait and then some. */
    int64_t wait_ms;
    bool cut;  /* the last wait was cut: said so by pg_fail */
    char *url; /* to connect again */
    char sqlstate[6];
    char err[512];
} pg_t;

/* postgres_io.c: libpq's asynchronous API under a bound of silence (see
 * there). A non-blocking session, connected within ms, or NULL with err. */
PGconn *pgio_connect(const char *const *keys, const char *const *vals, int64_t ms, char *err,
                     size_t len);
/* PQgetResult, waiting at most ms while the server says nothing; past
 * that the session is cut (*cut set) and its error result returned. */
PGresult *pgio_result(PGconn *db, int64_t ms, bool *cut);
/* What PQexec would return for a command just sent (sent: what the
 * PQsend call returned; 0 gives NULL): every result read, the first error
 * kept, else the last result. */
PGresult *pgio_last(PGconn *db, int sent, int64_t ms, bool *cut);

/* postgres.c: a session's lifecycle. A command's result, freed: 0 if it
 * succeeded (with rows or without), else -1 with the error kept. */
int pg_settle(pg_t *c, PGresult *r, const char *what);
/* The session's prepared statements (the writer's, or a reader's one),
 * once a session. */
int pg_prepare_all(pg_t *c);
/* The session made again, with its settings, lock and statements; or,
 * pg_revive, only if it broke (and not inside a transaction, whose work
 * is gone: -1, the caller starts over). */
int pg_reconnect(pg_t *c);
int pg_revive(pg_t *c);

/* postgres_pipe.c: out of pipeline mode, every result read (before a
 * read inside a transaction, a commit, a rollback); and a command with no
 * parameters sent into the pipeline (BEGIN, COMMIT). */
int pg_unpipe(pg_t *c);
int pg_send_plain(pg_t *c, const char *sql);

/* A new session with jobq's settings and bounded waits (brief: a 2 s
 * connect and a 5 s TCP timeout, for the wake-ups' session), or NULL with
 * err. */
PGconn *pg_connect(const char *url, bool brief, char *err, size_t len);
/* Keeps the error of `what` (r's, else the session's) and its SQLSTATE;
 * returns -1. */
int pg_fail(pg_t *c, const char *what, const PGresult *r);
/* A statement with no result wanted: 0, or -1 with the error kept. */
int pg_exec(pg_t *c, const char *sql);
/* lock_timeout back to the session's own (postgres.c: bound_lock_waits)
 * after a statement that wanted a shorter one. */
int pg_restore_lock_wait(pg_t *c);
/* Column col of row `row` of a binary result as a bigint (0 if not one). */
int64_t pg_int8_at(const PGresult *r, int row, int col);
/* Runs a query (or the prepared statement `name`) with text parameters and
 * hands each row to fn as it arrives; a nonzero return stops there. A
 * read outside a transaction that failed before its first row is made
 * again once on a new session. */
int pg_each_row(pg_t *c, const char *name, const char *sql, int n, const Oid *types,
                const char *const *vals, row_fn fn, void *ud);
/* A statement of a shape that recurs (a claim), prepared on this session
 * as `name` the first time, so that PostgreSQL plans it once, not at every
 * call (a claim's plan cost ~1 ms of the server's CPU); past PG_EXTRA_MAX
 * shapes it runs unprepared. Inside a transaction it goes into the
 * pipeline with the writes, and its rows reach call's callback when the
 * pipeline's results are read (at the latest, at the commit): one round
 * trip for a whole batch, claims included. Rows of a transaction that then
 * fails reach the callback too (a retry takes back what it took: backend.h,
 * held). Outside a transaction, as pg_each_row. */
int pg_pipe_rows(pg_t *c, const char *name, const char *sql, int n, const Oid *types,
                 const char *const *vals, doc_call_t call);
/* Whether statement `name` is prepared on this session (pg_pipe_rows):
 * its text is then not needed (NULL will do). */
bool pg_extra_known(const pg_t *c, const char *name);
/* A statement whose rows do not matter, in the pipeline inside a
 * transaction (its error fails the transaction at the drain), else run. */
int pg_pipe_exec(pg_t *c, const char *sql, int n, const Oid *types, const char *const *vals);
/* postgres_dupes.c: each enqueue of a transaction noted (-1: out of
 * memory), then checked in one statement before its COMMIT, and before
 * any claim that could take what they inserted; an insert of an id
 * another node's job has in history meanwhile is undone there and its
 * write refused (store_row_t.refused). */
void pg_dupes_reset(pg_dupes_t *d);
void pg_dupes_free(pg_dupes_t *d);
int pg_dupes_note(pg_dupes_t *d, const store_row_t *r);
int pg_dupes_check(pg_t *c);
/* A row of doc, created_at, id, queue, type [, token] to a doc_call_t. */
int pg_doc_row(const PGresult *r, int row, void *ud);

/* Runs prepared statement `which` (in the batch's pipeline inside a
 * transaction, else at once), its parameters text but for the bytea ones
 * (pg_statement_t.bin); where refused asks, says whether it changed no
 * row (at the drain, for a pipelined one). */
int pg_run(pg_t *c, int which, const char *const *vals, const int *lens, bool *refused);
/* The name the lookup by id is prepared under on every session. */
#define PG_GET "get"

/* postgres_write.c: backend.h's writes; pg_delete_job is also
 * retention's delete of a row of jobs. */
int pg_put_job(void *conn, const store_row_t *r);
int pg_delete_job(void *conn, const char *id);
int pg_delete_any(void *conn, const char *id);
int pg_delete_fenced(void *conn, const char *id, int64_t token, int64_t free_token,
                     bool *refused);
int pg_put_breaker(void *conn, const char *key, store_breaker_change_t change,
                   int64_t cooldown_ms, int64_t cooldown_max_ms);
int pg_put_queue(void *conn, const char *name, bool paused);
int pg_add_counter(void *conn, const char *name, int64_t delta);

/* postgres_read.c: backend.h's reads */
int pg_get_job(void *conn, const char *id, backend_doc_cb cb, void *ud);
int pg_list_jobs(void *conn, const store_query_t *q, backend_doc_cb cb, void *ud);
int pg_purge(void *conn, const store_purge_t *p, backend_id_cb cb, void *ud, store_purged_t *out);
int pg_load_active(void *conn, backend_doc_cb cb, void *ud);
int pg_load_queues(void *conn, backend_queue_cb cb, void *ud);
int pg_count_states(void *conn, backend_count_cb cb, void *ud);
int pg_counters(void *conn, backend_counter_cb cb, void *ud);
int pg_oldest_ready(void *conn, int64_t now_ms, backend_counter_cb cb, void *ud);
int pg_breakers(void *conn, backend_breaker_cb cb, void *ud);

/* postgres_history.c: backend.h's history_upkeep; the due rows of the
 * default partition deleted, each id to cb (in the purge's batch). */
int pg_history_upkeep(void *conn, const store_purge_t *p, int *dropped);
int pg_history_purge_default(pg_t *c, const store_purge_t *p, backend_id_cb cb, void *ud,
                             int *deleted);

/* postgres_cluster.c */
int pg_node_beat(void *conn, store_beat_t *beat, bool *breakers, backend_doc_cb adopted,
                 void *ud);
int pg_node_leave(void *conn);
int pg_held(void *conn, const int64_t *tokens, int n, backend_doc_cb cb, void *ud);
int pg_claim(void *conn, const backend_claim_t *q, backend_doc_cb cb, void *ud);

/* postgres_wake.c: backend.h's wake_* */
void *pg_wake_open(const char *url, char *err, size_t len);
int pg_wake_fd(void *w);
int pg_wake_read(void *w, void (*cb)(void *ud, const char *payload), void *ud);
int pg_wake_send(void *w, const char *payload);
void pg_wake_close(void *w);

#endif
