/* The PostgreSQL backend's reads (backend.h): a job by id, lists,
 * retention's scan, what recovery loads, and the counts; binary results,
 * one row at a time (pg_each_row). */
#include <stdio.h>
#include <stdlib.h>

#include "store/postgres_internal.h"

int pg_doc_row(const PGresult *r, int row, void *ud)
{
    doc_call_t *d = ud;
    store_doc_t doc = { .doc = PQgetvalue(r, row, 0), .len = (size_t)PQgetlength(r, row, 0),
                        .created_at = pg_int8_at(r, row, 1), .id = PQgetvalue(r, row, 2),
                        .queue = PQgetvalue(r, row, 3), .type = PQgetvalue(r, row, 4),
                        .token = PQnfields(r) > 5 ? pg_int8_at(r, row, 5) : 0,
                        .probe = PQnfields(r) > 6 && PQgetvalue(r, row, 6)[0] != 0 };
    return d->cb(d->ud, &doc);
}

int pg_get_job(void *conn, const char *id, backend_doc_cb cb, void *ud)
{
    doc_call_t d = { cb, ud };
    const char *vals[1] = { id };
    return pg_each_row(conn, PG_GET, NULL, 1, NULL, vals, pg_doc_row, &d);
}

int pg_list_jobs(void *conn, const store_query_t *q, backend_doc_cb cb, void *ud)
{
    char sql[BACKEND_LIST_SQL_MAX];
    backend_list_sql(q, "jobs_all", '$', sql, sizeof sql);
    char cur[24], lim[16], prio[16], from[24], to[24];
    snprintf(cur, sizeof cur, "%lld", (long long)q->cursor_created_at);
    snprintf(lim, sizeof lim, "%d", q->limit);
    snprintf(prio, sizeof prio, "%d", q->priority);
    snprintf(from, sizeof from, "%lld", (long long)q->created_from);
    snprintf(to, sizeof to, "%lld", (long long)q->created_to);
    const char *vals[9] = { q->queue, q->state, q->type, cur, q->cursor_id ? q->cursor_id : "",
                            lim, prio, from, to };
    static const Oid types[9] = { 25, 25, 25, 20, 25, 23, 23, 20, 20 };
    doc_call_t d = { cb, ud };
    return pg_each_row(conn, NULL, sql, 9, types, vals, pg_doc_row, &d);
}

typedef struct purge_scan {
    const store_purge_t *p;
    store_purged_t *out;
    char (*doomed)[201];
    int n;
} purge_scan_t;

static int purge_row(const PGresult *r, int row, void *ud)
{
    purge_scan_t *ps = ud;
    ps->out->scanned++;
    snprintf(ps->out->last_id, sizeof ps->out->last_id, "%s", PQgetvalue(r, row, 0));
    ps->out->last_created_at = pg_int8_at(r, row, 3);
    if (backend_purge_due(PQgetvalue(r, row, 1), pg_int8_at(r, row, 2), ps->p) && ps->n < ps->p->limit)
        snprintf(ps->doomed[ps->n++], sizeof ps->doomed[0], "%s", PQgetvalue(r, row, 0));
    return 0;
}

/* Collects first and deletes after, as the SQLite backend does; the
 * scan reads jobs (finished rows there: written before history, or by
 * a node alone before schema 7), and history goes by partitions. */
int pg_purge(void *conn, const store_purge_t *p, backend_id_cb cb, void *ud,
                    store_purged_t *out)
{
    pg_t *c = conn;
    char sql[BACKEND_PURGE_SQL_MAX];
    backend_purge_sql(p->has_cursor, '$', sql, sizeof sql);
    char horizon[24], after[24], lim[16];
    snprintf(horizon, sizeof horizon, "%lld", (long long)backend_purge_horizon(p));
    snprintf(after, sizeof after, "%lld", (long long)p->after_created_at);
    snprintf(lim, sizeof lim, "%d", p->limit);
    const char *vals[5] = { horizon, NULL, after, p->after_id ? p->after_id : "", lim };
    static const Oid types[5] = { 20, 20, 20, 25, 23 };
    *out = (store_purged_t){ 0 };
    purge_scan_t ps = { p, out, calloc((size_t)(p->limit > 0 ? p->limit : 1), 201), 0 };
    if (!ps.doomed)
        return snprintf(c->err, sizeof c->err, "out of memory"), -1;
    int rc = pg_each_row(c, NULL, sql, 5, types, vals, purge_row, &ps);
    for (int i = 0; rc == 0 && i < ps.n; i++) {
        rc = pg_delete_job(c, ps.doomed[i]);
        if (rc == 0)
            rc = cb(ud, ps.doomed[i]);
    }
    free(ps.doomed);
    /* History: what its default partition holds, deleted when due (its
     * partitions: history_upkeep, after the batch). A full batch of them
     * says the sweep is not over, as a full scan does: under a short
     * retention, jobs finish into it faster than a batch a rest takes. */
    int deleted = 0;
    if (rc == 0)
        rc = pg_history_purge_default(c, p, cb, ud, &deleted);
    if (deleted >= p->limit && out->scanned < p->limit)
        out->scanned = p->limit;
    return rc;
}

int pg_load_active(void *conn, backend_doc_cb cb, void *ud)
{
    doc_call_t d = { cb, ud };
    return pg_each_row(conn, NULL,
                    "SELECT " PG_DOC("jobs.") ", created_at, id, queue, type FROM jobs"
                    " WHERE state IN ('pending','queued','running','retrying')"
                    " ORDER BY run_at, created_at, id",
                    0, NULL, NULL, pg_doc_row, &d);
}

typedef struct any_call {
    void (*cb)(void);
    void *ud;
} any_call_t;

static int queue_row(const PGresult *r, int row, void *ud)
{
    any_call_t *a = ud;
    return ((backend_queue_cb)a->cb)(a->ud, PQgetvalue(r, row, 0), PQgetvalue(r, row, 1)[0] != 0);
}

static int count_row(const PGresult *r, int row, void *ud)
{
    any_call_t *a = ud;
    return ((backend_count_cb)a->cb)(a->ud, PQgetvalue(r, row, 0), PQgetvalue(r, row, 1),
                                     pg_int8_at(r, row, 2));
}

static int counter_row(const PGresult *r, int row, void *ud)
{
    any_call_t *a = ud;
    return ((backend_counter_cb)a->cb)(a->ud, PQgetvalue(r, row, 0), pg_int8_at(r, row, 1));
}

int pg_load_queues(void *conn, backend_queue_cb cb, void *ud)
{
    any_call_t a = { (void (*)(void))cb, ud };
    return pg_each_row(conn, NULL, "SELECT name, paused FROM queues", 0, NULL, NULL, queue_row, &a);
}

/* The rows of jobs counted, and history's counts (migration 7) of the
 * partitions it has: a partition dropped leaves its counts behind until
 * the next upkeep deletes them (postgres_history.c). One statement, so
 * one snapshot: a job moving between the tables is counted once. jobs
 * holds the live jobs (and finished ones written before schema 7 by a
 * node alone, counted here row by row until retention deletes them). */
int pg_count_states(void *conn, backend_count_cb cb, void *ud)
{
    any_call_t a = { (void (*)(void))cb, ud };
    return pg_each_row(conn, NULL, "SELECT queue, state, sum(n)::bigint FROM (SELECT queue,"
                       " state, count(*) AS n FROM jobs GROUP BY 1, 2 UNION ALL SELECT queue,"
                       " state, n FROM history_counts WHERE part IN (" PG_HISTORY_PARTS "))"
                       " x GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY queue COLLATE \"C\"",
                       0, NULL, NULL, count_row, &a);
}

/* Due and free to claim, as a claim's ready index has them (jobs_ready:
 * its entries, read whole; the counts beside it read every row). */
int pg_oldest_ready(void *conn, int64_t now_ms, backend_counter_cb cb, void *ud)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *vals[1] = { now };
    static const Oid types[1] = { 20 };
    any_call_t a = { (void (*)(void))cb, ud };
    return pg_each_row(conn, NULL, "SELECT queue, min(run_at) FROM jobs WHERE owner IS NULL"
                       " AND state IN ('queued','pending','retrying') AND run_at <= $1"
                       " GROUP BY 1", 1, types, vals, counter_row, &a);
}

/* Summed over the nodes' shards ("name#k": pg_add_counter). */
int pg_counters(void *conn, backend_counter_cb cb, void *ud)
{
    any_call_t a = { (void (*)(void))cb, ud };
    return pg_each_row(conn, NULL, "SELECT split_part(name, '#', 1), sum(value)::bigint"
                       " FROM counters GROUP BY 1", 0, NULL, NULL, counter_row, &a);
}

#define PG_MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

static int breaker_row(const PGresult *r, int row, void *ud)
{
    const struct { backend_breaker_cb cb; void *ud; } *call = ud;
    backend_breaker_t b = { .key = PQgetvalue(r, row, 0), .opened_at = pg_int8_at(r, row, 1),
                            .probe_at = pg_int8_at(r, row, 2), .cooldown_ms = pg_int8_at(r, row, 3),
                            .probe_node = pg_int8_at(r, row, 4),
                            .probe_until = pg_int8_at(r, row, 5), .now = pg_int8_at(r, row, 6) };
    return call->cb(call->ud, &b);
}

int pg_breakers(void *conn, backend_breaker_cb cb, void *ud)
{
    struct { backend_breaker_cb cb; void *ud; } call = { cb, ud };
    return pg_each_row(conn, NULL, "SELECT key, " PG_MS("opened_at") ", " PG_MS("probe_at")
                       ", cooldown_ms, coalesce(probe_node, 0), coalesce(" PG_MS("probe_until")
                       ", 0), " PG_MS("now()") " FROM breakers ORDER BY key LIMIT 10000",
                       0, NULL, NULL, breaker_row, &call);
}
