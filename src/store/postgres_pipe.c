/*
 * Statements on a PostgreSQL session (postgres_internal.h): inside a
 * transaction they go into libpq's pipeline and their results are read
 * at the drain (one round trip a batch, its claims' rows included);
 * outside one, and for every read, they run at once, rows streamed one at
 * a time in binary. Every wait is postgres_io.c's, bounded. The sessions
 * themselves, their transactions and migrations are postgres.c's.
 */
#include <endian.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "store/postgres_internal.h"

/* A command just sent (sent: what the PQsend call returned), its result. */
static PGresult *answer(pg_t *c, int sent) { return pgio_last(c->db, sent, c->wait_ms, &c->cut); }

/* A write conditioned on its claim (cluster mode) that changed no row was
 * refused: said where its row asked. */
static void no_rows(pg_t *c, const PGresult *r, int i)
{
    if (c->refused[i] && !strcmp(PQcmdTuples((PGresult *)r), "0"))
        *c->refused[i] = true;
    c->refused[i] = NULL;
}

/* A pipelined query's rows (pg_pipe_rows) to its reader. */
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
int pg_unpipe(pg_t *c)
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
int pg_send_plain(pg_t *c, const char *sql)
{
    if (!PQsendQueryParams(c->db, sql, 0, NULL, NULL, NULL, NULL, 0))
        return pg_fail(c, sql, NULL);
    c->rows[c->pending] = (doc_call_t){ 0 };
    c->refused[c->pending++] = NULL;
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
    return pg_settle(c, r, pg_statements[which].sql);
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
    if (pg_unpipe(c) != 0 || pg_revive(c) != 0)
        return -1;
    int rc = name && pg_prepare_all(c) != 0 ? -1
                                         : send_each(c, name, sql, n, types, vals, fn, ud, &rows);
    if (rc != 0 && rows == 0 && !c->in_tx && pg_reconnect(c) == 0 &&
        (!name || pg_prepare_all(c) == 0))
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
    if (pg_unpipe(c) != 0 || pg_revive(c) != 0 ||
        pg_settle(c, answer(c, PQsendPrepare(c->db, name, sql, n, types)), name) != 0)
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

int pg_pipe_rows(pg_t *c, const char *name, const char *sql, int n, const Oid *types,
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
