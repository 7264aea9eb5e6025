/*
 * The PostgreSQL backend (backend.h). Alone, the writer's connection holds
 * a session advisory lock that a second jobq on the same database cannot
 * take, as the SQLite backend's lock file does, because that jobq keeps the
 * live jobs in its own memory. In cluster mode (opened with a node) every
 * node takes the same lock shared, the database holds each job's owner and
 * claim token, and the writes of a job are conditioned on them (the
 * writes are postgres_write.c's, their statements postgres_statements.c's,
 * the nodes' rows and claims postgres_cluster.c's, the reads
 * postgres_read.c's,
 * history's partitions postgres_history.c's, the wake-ups' session
 * postgres_wake.c's).
 *
 * No journal: every batch is one transaction, committed with
 * synchronous_commit on ("fsync" and "os"; "memory" turns it off). Reads
 * stream their rows (single-row mode), so loading a million jobs at start
 * holds one row at a time. A broken connection is reset at the next
 * transaction and the lock taken again; if another jobq took it meanwhile,
 * check_file says so and the store stops acknowledging (store.h).
 */
#include <endian.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"
#include "store/postgres_internal.h"
#include "store/postgres_schema.h"
#include "util/clock.h"

/* jobq's advisory lock keys: fixed, arbitrary, one for the writer's
 * session and one for a migration's transaction. */
#define PG_LOCK_KEY "1785358188"
#define PG_MIGRATE_KEY "1785358189"

int pg_fail(pg_t *c, const char *what, const PGresult *r)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", st ? st : "");
    char silent[96];
    snprintf(silent, sizeof silent, "PostgreSQL did not answer for %lld ms; the session was closed",
             (long long)c->wait_ms);
    const char *msg = c->cut                                     ? silent
                      : r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
                                                        : PQerrorMessage(c->db);
    /* The statement, cut short: a claim's runs to kilobytes, and the
     * server's reason must fit after it. */
    snprintf(c->err, sizeof c->err, "%.80s%s: %s", what, strlen(what) > 80 ? "..." : "", msg);
    size_t n = strlen(c->err);
    while (n && (c->err[n - 1] == '\n' || c->err[n - 1] == ' '))
        c->err[--n] = '\0';
    return -1;
}

/* A command's result, freed: 0 if it succeeded (with rows or without),
 * else -1 with the error kept. */
static int settle(pg_t *c, PGresult *r, const char *what)
{
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : pg_fail(c, what, r);
    PQclear(r);
    return rc;
}

static int unpipe(pg_t *c);

/* A command just sent (sent: what the PQsend call returned), its result. */
static PGresult *answer(pg_t *c, int sent) { return pgio_last(c->db, sent, c->wait_ms, &c->cut); }

/* Out of the pipeline first: a command alone has no place in it. */
int pg_exec(pg_t *c, const char *sql)
{
    if (unpipe(c) != 0)
        return -1;
    return settle(c, answer(c, PQsendQuery(c->db, sql)), sql);
}

/* A one-row boolean answer ("SELECT pg_try_advisory_lock(...)"). */
static int ask(pg_t *c, const char *sql, bool *yes)
{
    PGresult *r = answer(c, PQsendQuery(c->db, sql));
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? 0 : pg_fail(c, sql, r);
    *yes = rc == 0 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return rc;
}

_Static_assert(P_GET == P_COUNT_ - 1, "a reader prepares from P_GET on");

/* The writer's statements, or a reader's one (get). */
static int prepare_all(pg_t *c)
{
    for (int i = c->writer ? 0 : P_GET; !c->prepared && i < P_COUNT_; i++)
        if (settle(c, answer(c, PQsendPrepare(c->db, pg_statements[i].name, pg_statements[i].sql,
                                              pg_statements[i].n, pg_statements[i].types)),
                   pg_statements[i].sql) != 0)
            return -1;
    c->prepared = true;
    return 0;
}

/* How long a statement of jobq's waits for a lock another session holds
 * (an operator's transaction left open on a job's row, a LOCK TABLE, DDL)
 * before it fails: the batch is then retried, readiness fails and new
 * writes answer 503 meanwhile, instead of every write waiting behind it
 * unseen. A cluster node's writer waits out a node paused in a
 * transaction (whose session ends once idle in it for the TTL) first. */
#define PG_LOCK_WAIT_MS 5000
/* Beyond its lock wait, how long a wait for the server may go without a
 * byte from it (postgres_io.c): jobq's statements are index lookups and
 * ranges, which answer in milliseconds; a read that scans (a list with a
 * filter no index serves) gets this long. A lock_timeout of the session's
 * own longer than PG_WAIT_MAX_MS counts as jobq's. */
#define PG_ANSWER_MS 25000
#define PG_WAIT_MAX_MS (10 * 60 * 1000)

/* lock_timeout, unless the URL's options, the role or the database set
 * one: what the session has then is kept (and is what upkeep restores). */
static int bound_lock_waits(pg_t *c)
{
    int64_t ms = PG_LOCK_WAIT_MS + (c->writer && c->cluster ? c->ttl_ms : 0);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT set_config('lock_timeout', '%lld', false) WHERE"
             " current_setting('lock_timeout') = '0'", (long long)ms);
    PGresult *r = answer(c, PQsendQuery(c->db, sql));
    if (settle(c, r, "lock_timeout") != 0)
        return -1;
    r = answer(c, PQsendQuery(c->db, "SELECT current_setting('lock_timeout'),"
                                     " (SELECT setting FROM pg_settings WHERE name = 'lock_timeout')"));
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                     PQgetlength(r, 0, 0) < (int)sizeof c->lock_wait
                 ? 0
                 : pg_fail(c, "lock_timeout", r);
    if (rc == 0) {
        memcpy(c->lock_wait, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0) + 1);
        /* A lock wait within the bound fails cleanly (lock_timeout) before
         * the session is cut. */
        long long lock_ms = atoll(PQgetvalue(r, 0, 1));
        c->wait_ms = (lock_ms > 0 && lock_ms < PG_WAIT_MAX_MS ? lock_ms : PG_LOCK_WAIT_MS) +
                     PG_ANSWER_MS;
    }
    PQclear(r);
    return rc;
}

int pg_restore_lock_wait(pg_t *c)
{
    const char *vals[1] = { c->lock_wait };
    if (unpipe(c) != 0)
        return -1;
    return settle(c, answer(c, PQsendQueryParams(c->db, "SELECT set_config('lock_timeout', $1, false)",
                                                 1, NULL, vals, NULL, NULL, 0)),
                  "lock_timeout");
}

/* The session's settings, and the writer's lock: lock_lost when another
 * session holds it. */
static int setup(pg_t *c)
{
    /* Prepared statements keep one generic plan: every one jobq sends is
     * an index lookup or range whatever its parameters, and planning a
     * claim again at each call cost more than running it. No JIT: it
     * compiles at every execution, and pays only for long analytic
     * queries; a seq scan of a few rows that enable_seqscan=off prices at
     * 1e10 (a cluster node's beat counting `nodes`) took 21-55 ms of
     * compiling each time, inside the batch's transaction. */
    if (pg_exec(c, c->sync == BACKEND_SYNC_OFF ? "SET synchronous_commit=off"
                                            : "SET synchronous_commit=on") != 0 ||
        pg_exec(c, "SET plan_cache_mode=force_generic_plan") != 0 ||
        pg_exec(c, "SET jit=off") != 0 || bound_lock_waits(c) != 0)
        return -1;
    if (!c->writer)
        return pg_exec(c, "SET default_transaction_read_only=on");
    /* A node stopped in a transaction (SIGSTOP, a hung host) holds its
     * row and advisory locks, and another node's batch would wait on them
     * for as long: its session ends once idle in it past the node's TTL,
     * when it is dead to the cluster anyway. jobq's own transactions are
     * never idle for more than moments. */
    char idle[96];
    snprintf(idle, sizeof idle, "SET idle_in_transaction_session_timeout=%lld",
             (long long)(c->cluster && c->ttl_ms > 0 ? c->ttl_ms : 60000));
    /* The writer counts its inserts into history itself (migration 7). */
    if (pg_exec(c, idle) != 0 || pg_exec(c, "SET jobq.counted = on") != 0)
        return -1;
    /* Cluster mode's writer reads the jobs nodes hold through partial
     * indexes (jobs_owned, jobs_held) whose entries die as fast as claims
     * end. Its generic plans are made once, often while the table is
     * small, and one counting the held jobs of a type chose to scan the
     * whole table at every claim for good (then a bitmap scan of
     * jobs_owned, which went through every entry dead since the last
     * vacuum: 6,487 for none held, in the bench; a plain index scan marks
     * the dead ones as it passes, and the next skips them). Every
     * statement of the writer is an index lookup or range by design, so
     * neither kind of scan is let in. */
    if (c->cluster && (pg_exec(c, "SET enable_seqscan=off") != 0 ||
                       pg_exec(c, "SET enable_bitmapscan=off") != 0))
        return -1;
    bool got = false;
    /* Cluster nodes share the lock, so that a jobq that keeps the jobs in
     * its own memory (not in cluster mode) cannot join them, nor they it. */
    if (ask(c, c->cluster ? "SELECT pg_try_advisory_lock_shared(" PG_LOCK_KEY ")"
                          : "SELECT pg_try_advisory_lock(" PG_LOCK_KEY ")", &got) != 0)
        return -1;
    c->lock_lost = c->lock_lost || !got; /* once taken, what this jobq holds is stale */
    if (!got) {
        snprintf(c->err, sizeof c->err, "%s",
                 c->cluster ? "a jobq that is not in cluster mode is using this database"
                            : "another jobq is using this database (it holds its lock); "
                              "several need cluster mode (JOBQ_CLUSTER=on) on every one");
        return -1;
    }
    return 0;
}

/* Notices ("already exists, skipping") are not errors, and stderr is the
 * log's: dropped. */
static void no_notice(void *arg, const char *message) { (void)arg, (void)message; }

static void pg_close(void *conn)
{
    pg_t *c = conn;
    if (!c)
        return;
    PQfinish(c->db);
    pg_dupes_free(&c->dupes);
    free(c->url);
    free(c);
}

PGconn *pg_connect(const char *url, bool brief, char *err, size_t len)
{
    /* The URL comes last, so what it says wins over these defaults. */
    /* Bounded waits: a peer whose host is gone (a partition, a dead host)
     * is given up within about half a minute by TCP, a server that is
     * there but silent by postgres_io.c. */
    const char *keys[] = { "connect_timeout", "application_name", "keepalives_idle",
                           "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                           "dbname", NULL };
    const char *vals[] = { brief ? "2" : "10", "jobq", "10", "5", "3", brief ? "5000" : "30000",
                           url, NULL };
    PGconn *db = pgio_connect(keys, vals, brief ? 2000 : 10000, err, len);
    if (db)
        PQsetNoticeProcessor(db, no_notice, NULL);
    return db;
}

static int connect_to(const char *url, bool writer, backend_sync_t sync,
                      const backend_node_t *node, void **out, char *err, size_t len)
{
    pg_t *c = calloc(1, sizeof *c);
    if (!c)
        return snprintf(err, len, "out of memory"), -1;
    c->writer = writer;
    c->sync = sync;
    c->wait_ms = PG_LOCK_WAIT_MS + PG_ANSWER_MS; /* until the session says its own */
    if (!(c->url = strdup(url))) {
        pg_close(c);
        return snprintf(err, len, "out of memory"), -1;
    }
    if (node) {
        c->cluster = true;
        c->ttl_ms = node->ttl_ms;
        snprintf(c->node_name, sizeof c->node_name, "%s", node->name);
    }
    if (!(c->db = pg_connect(url, false, err, len))) {
        pg_close(c);
        return -1;
    }
    if (setup(c) != 0) {
        snprintf(err, len, "%s", c->err);
        pg_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

static int pg_open(const char *url, backend_sync_t sync, const backend_node_t *node, void **out,
                   char *err, size_t len)
{
    return connect_to(url, true, sync, node, out, err, len);
}

static int pg_open_reader(const char *url, void **out, char *err, size_t len)
{
    return connect_to(url, false, BACKEND_SYNC_FULL, NULL, out, err, len);
}

/* A connection that broke is made again (by the store's retries, which
 * come here through begin), with its settings, lock and statements. */
static int reconnect(pg_t *c)
{
    char err[sizeof c->err - 16];
    PGconn *db = pg_connect(c->url, false, err, sizeof err);
    c->prepared = false;
    c->nextra = 0;
    c->cut = false;
    if (!db) {
        c->sqlstate[0] = '\0';
        snprintf(c->err, sizeof c->err, "reconnect: %s", err);
        return -1;
    }
    PQfinish(c->db);
    c->db = db;
    c->piped = false;
    c->pending = 0;
    return setup(c);
}

static int revive(pg_t *c)
{
    if (PQstatus(c->db) == CONNECTION_OK)
        return 0;
    if (c->in_tx) /* what the transaction did is gone: the caller must start over */
        return pg_fail(c, "connection lost in a transaction", NULL);
    return reconnect(c);
}

static const char *pg_errmsg(void *conn) { return ((pg_t *)conn)->err; }

/* disk_full (53100) and the rest of class 53, insufficient resources. */
static bool pg_err_is_full(void *conn) { return !strncmp(((pg_t *)conn)->sqlstate, "53", 2); }

static int pg_check_file(void *conn, char *why, size_t len)
{
    pg_t *c = conn;
    if (!c->lock_lost)
        return 0;
    snprintf(why, len, "the connection to PostgreSQL broke and another jobq took the database");
    return -1;
}

static int pg_rescue(void *conn, char *where, size_t len)
{
    (void)conn;
    snprintf(where, len, "nothing to write back: PostgreSQL holds everything committed");
    return 0;
}

static int pg_schema_version(void *conn, int *current, int *latest)
{
    pg_t *c = conn;
    *latest = postgres_schema_latest();
    *current = 0;
    if (revive(c) != 0 ||
        pg_exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations("
                "version integer PRIMARY KEY, applied_at bigint NOT NULL)") != 0)
        return -1;
    PGresult *r = answer(c, PQsendQuery(c->db, "SELECT COALESCE(MAX(version),0) FROM schema_migrations"));
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                 ? 0
                 : pg_fail(c, "schema version", r);
    if (rc == 0)
        *current = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

/* Each migration in its own transaction, under a lock that makes a
 * second migrator (on a session without the writer's lock: another
 * tool, a node starting beside another) wait, then find the version
 * applied and skip it. Its waits are bounded longer than a batch's: a
 * migration of a large table may hold that lock for a while. */
static int migrate_from(pg_t *c, int cur, int latest)
{
    for (int v = cur + 1; v <= latest; v++) {
        char mark[160];
        snprintf(mark, sizeof mark,
                 "INSERT INTO schema_migrations VALUES(%d,%lld) ON CONFLICT DO NOTHING", v,
                 (long long)clock_now_ms());
        char done_q[120];
        snprintf(done_q, sizeof done_q,
                 "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version=%d)", v);
        bool done = false;
        if (pg_exec(c, "BEGIN") || pg_exec(c, "SET LOCAL lock_timeout = '60s'") ||
            pg_exec(c, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_KEY ")") ||
            ask(c, done_q, &done) ||
            (!done && settle(c, answer(c, PQsendQuery(c->db, postgres_schema_migration(v))),
                             "migration")) ||
            pg_exec(c, mark) || pg_exec(c, "COMMIT")) {
            char why[sizeof c->err - 64];
            snprintf(why, sizeof why, "%.400s", c->err);
            pg_exec(c, "ROLLBACK");
            snprintf(c->err, sizeof c->err, "migration %d failed: %s", v, why);
            return -1;
        }
    }
    return 0;
}

static int pg_migrate(void *conn)
{
    pg_t *c = conn;
    int cur, latest;
    if (pg_schema_version(c, &cur, &latest) != 0)
        return -1;
    int64_t wait_ms = c->wait_ms;
    c->wait_ms = PG_WAIT_MAX_MS; /* a migration may rewrite a large table, silently */
    int rc = migrate_from(c, cur, latest);
    c->wait_ms = wait_ms;
    return rc;
}

/* A write conditioned on its claim (cluster mode) that changed no row was
 * refused: said where its row asked. */
static void no_rows(pg_t *c, const PGresult *r, int i)
{
    if (c->refused[i] && !strcmp(PQcmdTuples((PGresult *)r), "0"))
        *c->refused[i] = true;
    c->refused[i] = NULL;
}

/* A pipelined query's rows (pg_pipe_docs) to its reader. */
static int read_rows(pg_t *c, const PGresult *r, int i)
{
    doc_call_t call = c->rows[i]; /* set (or cleared) as each statement is sent */
    for (int row = 0; (call.cb || call.fn) && row < PQntuples(r); row++)
        if ((call.fn ? call.fn(r, row, call.ud) : pg_doc_row(r, row, &call)) != 0)
            return pg_fail(c, "a claimed row could not be kept", NULL);
    return 0;
}

/* Reads the results of every write sent since the last drain, up to the
 * pipeline's sync: 0, or -1 with the first error (PostgreSQL skips what
 * follows an error, and the transaction is then aborted). */
static int drain(pg_t *c)
{
    if (!c->piped || !c->pending)
        return 0;
    int rc = PQpipelineSync(c->db) == 1 ? 0 : pg_fail(c, "pipeline sync", NULL);
    for (int nulls = 0; rc == 0 || PQstatus(c->db) == CONNECTION_OK;) {
        PGresult *r = pgio_result(c->db, c->wait_ms, &c->cut);
        if (!r) { /* the end of one write's results; more than one a write is a lost session */
            if (++nulls > c->pending + 1 || PQstatus(c->db) != CONNECTION_OK)
                break;
            continue;
        }
        /* Rows may come one result each: libpq keeps the single-row mode
         * of a read made outside the pipeline (pg_each_row) for the first
         * query of the next one. */
        ExecStatusType st = PQresultStatus(r);
        bool done = st == PGRES_PIPELINE_SYNC;
        bool rows = st == PGRES_TUPLES_OK || st == PGRES_SINGLE_TUPLE;
        if (!done && st != PGRES_COMMAND_OK && !rows && rc == 0)
            rc = pg_fail(c, c->cut ? "pipelined write" : PQresStatus(st), r); /* the status says it when the server did not */
        else if (!done && nulls < PG_PIPE_SLOTS) {
            no_rows(c, r, nulls);
            if (rc == 0 && rows)
                rc = read_rows(c, r, nulls);
        }
        PQclear(r);
        if (done) {
            c->pending = 0;
            return rc;
        }
    }
    c->pending = 0;
    return rc ? rc : pg_fail(c, "pipelined write: the connection broke", NULL);
}

/* Out of pipeline mode, every result read: before a read inside the
 * transaction (retention's scan), the commit and a rollback. */
static int unpipe(pg_t *c)
{
    if (!c->piped)
        return 0;
    int rc = drain(c);
    c->piped = false;
    if (PQstatus(c->db) == CONNECTION_OK && !PQexitPipelineMode(c->db) && rc == 0)
        rc = pg_fail(c, "leaving pipeline mode", NULL);
    return rc;
}

/* A transaction goes out in a pipeline, BEGIN to COMMIT: a batch of N
 * writes costs one round trip to the server every PG_PIPE_DEPTH writes
 * and one for the rest with the commit, not N + 2. PostgreSQL skips what
 * follows an error in a pipeline, the COMMIT too, so a commit cannot run
 * outside the transaction it ends. The depth bounds what the server must
 * answer before jobq reads (a blocking session that only writes could
 * otherwise fill both sockets' buffers and wait on the other side). */
static int send_plain(pg_t *c, const char *sql)
{
    if (!PQsendQueryParams(c->db, sql, 0, NULL, NULL, NULL, NULL, 0))
        return pg_fail(c, sql, NULL);
    c->rows[c->pending] = (doc_call_t){ 0 };
    c->refused[c->pending++] = NULL;
    return 0;
}

static int pg_begin(void *conn)
{
    pg_t *c = conn;
    c->in_tx = false;
    if (revive(c) != 0 || prepare_all(c) != 0)
        return -1;
    c->pending = 0;
    pg_dupes_reset(&c->dupes);
    c->piped = PQenterPipelineMode(c->db) == 1;
    if (c->piped ? send_plain(c, "BEGIN") != 0 : pg_exec(c, "BEGIN") != 0)
        return -1;
    c->in_tx = true;
    return 0;
}

/* Outside a pipeline (retention's scan left it), COMMIT with no
 * transaction open would only warn: the session must still be in the one
 * that began, without an error. */
static int pg_commit(void *conn)
{
    pg_t *c = conn;
    int rc;
    if (c->cluster && pg_dupes_check(c) != 0)
        return -1;
    if (c->piped) {
        rc = send_plain(c, "COMMIT") != 0 || unpipe(c) != 0 ? -1 : 0;
    } else if (PQstatus(c->db) != CONNECTION_OK ||
               PQtransactionStatus(c->db) != PQTRANS_INTRANS) {
        return pg_fail(c, "commit: the transaction was lost", NULL);
    } else {
        rc = pg_exec(c, "COMMIT");
    }
    c->in_tx = rc != 0; /* a failed commit is rolled back by the caller */
    return rc;
}

static int pg_rollback(void *conn)
{
    pg_t *c = conn;
    (void)unpipe(c); /* the error that brought us here is already said */
    c->in_tx = false;
    if (PQstatus(c->db) != CONNECTION_OK || PQtransactionStatus(c->db) == PQTRANS_IDLE)
        return 0;
    return pg_exec(c, "ROLLBACK");
}

/* No journal: every batch goes to the database as one transaction. */
static int pg_journal_path(void *conn, char *buf, size_t len)
{
    (void)conn, (void)buf, (void)len;
    return -1;
}
static int pg_journal_applied(void *conn, uint64_t *gen)
{
    (void)conn;
    *gen = 0;
    return 0;
}
static int pg_set_journal_applied(void *conn, uint64_t gen)
{
    (void)conn, (void)gen;
    return 0;
}

/* Inside a transaction, whether statements can go into a pipeline: a
 * read (held, retention's scan) left it to read its rows, and what comes
 * after goes back into one. */
static bool piped_in_tx(pg_t *c)
{
    if (!c->piped && c->in_tx && PQtransactionStatus(c->db) == PQTRANS_INTRANS)
        c->piped = PQenterPipelineMode(c->db) == 1;
    return c->piped;
}

/* A statement just sent into the pipeline: who hears of its row count and
 * who reads its rows, when the results are drained. */
static int sent(pg_t *c, bool *refused, doc_call_t rows)
{
    c->rows[c->pending] = rows;
    c->refused[c->pending++] = refused;
    return c->pending >= PG_PIPE_DEPTH ? drain(c) : 0;
}

int pg_run(pg_t *c, int which, const char *const *vals, const int *lens, bool *refused)
{
    int formats[PG_PARAMS_MAX] = { 0 };
    for (int i = 0; i < pg_statements[which].n; i++)
        formats[i] = (pg_statements[which].bin >> i) & 1u;
    if (piped_in_tx(c)) {
        if (!PQsendQueryPrepared(c->db, pg_statements[which].name, pg_statements[which].n, vals, lens,
                                 formats, 0))
            return pg_fail(c, pg_statements[which].sql, NULL);
        return sent(c, refused, (doc_call_t){ 0 });
    }
    PGresult *r = answer(c, PQsendQueryPrepared(c->db, pg_statements[which].name,
                                                pg_statements[which].n, vals, lens, formats, 0));
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        c->refused[0] = refused;
        no_rows(c, r, 0);
    }
    return settle(c, r, pg_statements[which].sql);
}

/* ---- reads: binary results, one row at a time ---- */

int64_t pg_int8_at(const PGresult *r, int row, int col)
{
    uint64_t v;
    if (PQgetlength(r, row, col) != 8)
        return 0;
    memcpy(&v, PQgetvalue(r, row, col), 8);
    return (int64_t)be64toh(v);
}


/* Sends a query (or a prepared statement, when `name` is set) and hands
 * each row to fn as it arrives; a nonzero return stops at that row (the
 * rest is read and dropped). Parameters are text. *rows: how many went
 * to fn. */
static int send_each(pg_t *c, const char *name, const char *sql, int n, const Oid *types,
                     const char *const *vals, row_fn fn, void *ud, int *rows)
{
    *rows = 0;
    int sent = name ? PQsendQueryPrepared(c->db, name, n, vals, NULL, NULL, 1)
                    : PQsendQueryParams(c->db, sql, n, types, vals, NULL, NULL, 1);
    if (!sent || !PQsetSingleRowMode(c->db))
        return pg_fail(c, name ? name : sql, NULL);
    int rc = 0;
    PGresult *r;
    while ((r = pgio_result(c->db, c->wait_ms, &c->cut))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE && rc == 0) {
            rc = fn(r, 0, ud);
            ++*rows;
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && rc == 0) {
            rc = pg_fail(c, name ? name : sql, r);
        }
        PQclear(r);
    }
    return rc;
}

/* The same; a read outside a transaction that failed before any row
 * arrived (preparing its statement included) is made again once on a new
 * session. libpq may still call a
 * session whose server restarted "OK" after a send found it closed, so
 * the failure itself, not the session's status, decides. */
int pg_each_row(pg_t *c, const char *name, const char *sql, int n, const Oid *types,
                    const char *const *vals, row_fn fn, void *ud)
{
    int rows = 0;
    if (unpipe(c) != 0 || revive(c) != 0)
        return -1;
    int rc = name && prepare_all(c) != 0 ? -1
                                         : send_each(c, name, sql, n, types, vals, fn, ud, &rows);
    if (rc != 0 && rows == 0 && !c->in_tx && reconnect(c) == 0 &&
        (!name || prepare_all(c) == 0))
        rc = send_each(c, name, sql, n, types, vals, fn, ud, &rows);
    return rc;
}


/* Prepares `name` on this session if it is new: 1 if it exists now, 0 if
 * there is no room for it (run it unprepared), -1 on an error. */
bool pg_extra_known(const pg_t *c, const char *name)
{
    for (int i = 0; i < c->nextra; i++)
        if (!strcmp(c->extra[i], name))
            return true;
    return false;
}

static int prepare_extra(pg_t *c, const char *name, const char *sql, int n, const Oid *types)
{
    if (pg_extra_known(c, name))
        return 1;
    if (c->nextra == PG_EXTRA_MAX)
        return 0;
    if (unpipe(c) != 0 || revive(c) != 0 ||
        settle(c, answer(c, PQsendPrepare(c->db, name, sql, n, types)), name) != 0)
        return -1;
    snprintf(c->extra[c->nextra++], sizeof c->extra[0], "%s", name);
    return 1;
}

static int no_row(const PGresult *r, int row, void *ud) { return (void)r, (void)row, (void)ud, 0; }

int pg_pipe_exec(pg_t *c, const char *sql, int n, const Oid *types, const char *const *vals)
{
    if (!piped_in_tx(c))
        return pg_each_row(c, NULL, sql, n, types, vals, no_row, NULL);
    if (!PQsendQueryParams(c->db, sql, n, types, vals, NULL, NULL, 1))
        return pg_fail(c, sql, NULL);
    return sent(c, NULL, (doc_call_t){ 0 });
}

int pg_pipe_docs(pg_t *c, const char *name, const char *sql, int n, const Oid *types,
                 const char *const *vals, doc_call_t call)
{
    int known = prepare_extra(c, name, sql, n, types);
    if (known < 0)
        return -1;
    row_fn fn = call.fn ? call.fn : pg_doc_row;
    void *ud = call.fn ? call.ud : &call;
    if (!known)
        return pg_each_row(c, NULL, sql, n, types, vals, fn, ud);
    if (!piped_in_tx(c))
        return pg_each_row(c, name, NULL, n, types, vals, fn, ud);
    if (!PQsendQueryPrepared(c->db, name, n, vals, NULL, NULL, 1))
        return pg_fail(c, name, NULL);
    return sent(c, NULL, call);
}

const backend_ops_t backend_postgres = {
    .scheme = "postgres",
    .alias = "postgresql",
    .open = pg_open,
    .open_reader = pg_open_reader,
    .close = pg_close,
    .check_file = pg_check_file,
    .rescue = pg_rescue,
    .errmsg = pg_errmsg,
    .err_is_full = pg_err_is_full,
    .schema_version = pg_schema_version,
    .migrate = pg_migrate,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .put_job = pg_put_job,
    .delete_job = pg_delete_any,
    .put_queue = pg_put_queue,
    .put_breaker = pg_put_breaker,
    .breakers = pg_breakers,
    .add_counter = pg_add_counter,
    .journal_path = pg_journal_path,
    .journal_applied = pg_journal_applied,
    .set_journal_applied = pg_set_journal_applied,
    .purge = pg_purge,
    .history_upkeep = pg_history_upkeep,
    .get_job = pg_get_job,
    .list_jobs = pg_list_jobs,
    .load_active = pg_load_active,
    .load_queues = pg_load_queues,
    .count_states = pg_count_states,
    .oldest_ready = pg_oldest_ready,
    .counters = pg_counters,
    .wake_open = pg_wake_open,
    .wake_fd = pg_wake_fd,
    .wake_read = pg_wake_read,
    .wake_send = pg_wake_send,
    .wake_close = pg_wake_close,
    .scan_ids = NULL, /* no filter: every lookup asks the database */
    .node_beat = pg_node_beat,
    .node_leave = pg_node_leave,
    .held = pg_held,
    .delete_fenced = pg_delete_fenced,
    .claim = pg_claim,
};
