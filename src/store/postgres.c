/*
 * The PostgreSQL backend (backend.h). Alone, the writer's connection holds
 * a session advisory lock that a second jobq on the same database cannot
 * take, as the SQLite backend's lock file does, because that jobq keeps the
 * live jobs in its own memory. In cluster mode (opened with a node) every
 * node takes the same lock shared, the database holds each job's owner and
 * claim token, and the writes of a job are conditioned on them (the
 * writes are postgres_write.c's, their statements postgres_statements.c's,
 * the nodes' rows and claims postgres_cluster.c's, the reads
 * postgres_read.c's, history's partitions postgres_history.c's, the
 * wake-ups' session postgres_wake.c's; statements run, pipelined or not,
 * by postgres_pipe.c). This file: a session's lifecycle (connect, its
 * settings and lock, reconnect), migrations, and a batch's transaction.
 *
 * No journal: every batch is one transaction, committed with
 * synchronous_commit on ("fsync" and "os"; "memory" turns it off). Reads
 * stream their rows (single-row mode), so loading a million jobs at start
 * holds one row at a time. A broken connection is reset at the next
 * transaction and the lock taken again; if another jobq took it meanwhile,
 * check_file says so and the store stops acknowledging (store.h).
 */
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
int pg_settle(pg_t *c, PGresult *r, const char *what)
{
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : pg_fail(c, what, r);
    PQclear(r);
    return rc;
}

/* A command just sent (sent: what the PQsend call returned), its result. */
static PGresult *answer(pg_t *c, int sent) { return pgio_last(c->db, sent, c->wait_ms, &c->cut); }

/* Out of the pipeline first: a command alone has no place in it. */
int pg_exec(pg_t *c, const char *sql)
{
    if (pg_unpipe(c) != 0)
        return -1;
    return pg_settle(c, answer(c, PQsendQuery(c->db, sql)), sql);
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
int pg_prepare_all(pg_t *c)
{
    for (int i = c->writer ? 0 : P_GET; !c->prepared && i < P_COUNT_; i++)
        if (pg_settle(c, answer(c, PQsendPrepare(c->db, pg_statements[i].name, pg_statements[i].sql,
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
    if (pg_settle(c, r, "lock_timeout") != 0)
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
    if (pg_unpipe(c) != 0)
        return -1;
    return pg_settle(c, answer(c, PQsendQueryParams(c->db, "SELECT set_config('lock_timeout', $1, false)",
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
int pg_reconnect(pg_t *c)
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

int pg_revive(pg_t *c)
{
    if (PQstatus(c->db) == CONNECTION_OK)
        return 0;
    if (c->in_tx) /* what the transaction did is gone: the caller must start over */
        return pg_fail(c, "connection lost in a transaction", NULL);
    return pg_reconnect(c);
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
    if (pg_revive(c) != 0 ||
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
            (!done && pg_settle(c, answer(c, PQsendQuery(c->db, postgres_schema_migration(v))),
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

static int pg_begin(void *conn)
{
    pg_t *c = conn;
    c->in_tx = false;
    if (pg_revive(c) != 0 || pg_prepare_all(c) != 0)
        return -1;
    c->pending = 0;
    pg_dupes_reset(&c->dupes);
    c->piped = PQenterPipelineMode(c->db) == 1;
    if (c->piped ? pg_send_plain(c, "BEGIN") != 0 : pg_exec(c, "BEGIN") != 0)
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
        rc = pg_send_plain(c, "COMMIT") != 0 || pg_unpipe(c) != 0 ? -1 : 0;
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
    (void)pg_unpipe(c); /* the error that brought us here is already said */
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
